/* The demo translator (models/demo-fr-en, trained by scripts/train_translator.py) run by the C engine:
 *   - "le chat noir" decodes greedily to "the black cat", and in the last decoder layer's cross-attention
 *     averaged over heads the row of "black" peaks on "noir" and the row of "cat" on "chat";
 *   - on the held-out sentences (models/demo-fr-en/heldout.tsv: unseen noun-colour combinations) the rows of
 *     "black" peak on noir/noire/noirs/noires and the rows of "cat" on chat/chats;
 *   - the held-out exact-match accuracy and argmax alignment accuracy reproduce the model card's numbers
 *     (models/demo-fr-en/eval.json, "c_engine") within 1 point.
 * `test_demo --measure DIR` prints the measurements as JSON instead (the training script writes them into the
 * model card). */
#include "attnviz.h"
#include "harness.h"

#include <jansson.h>

#define DEMO_DIR "models/demo-fr-en"
enum { MAX_WORDS = 64 };

typedef struct {
    int sentences, exact;
    int rows, hits; /* aligned target-word rows, and those whose argmax is the aligned source word */
    int black_rows, black_hits, cat_rows, cat_hits;
} demo_stats;

/* Sets err to msg; returns -1. */
static int fail(av_err *err, const char *msg) {
    snprintf(err->msg, sizeof err->msg, "%s", msg);
    return -1;
}

static av_model *g_model;
static char g_load_error[256];

static int load_model(const char *dir) {
    if (g_model) return 0;
    av_err err = {{0}};
    av_model_params mp = av_model_default_params();
    if (av_model_load(dir, &mp, &g_model, &err)) {
        snprintf(g_load_error, sizeof g_load_error, "%.200s", err.msg);
        return -1;
    }
    return 0;
}

/* Missing encoder-decoder support in the engine is a skip (with the reason); anything else is a failure. */
#define NEED_MODEL()                                                                                         \
    do {                                                                                                     \
        if (load_model(DEMO_DIR)) {                                                                          \
            if (strstr(g_load_error, "not supported"))                                                       \
                SKIP("the engine cannot load the Marian demo model: %s", g_load_error);                      \
            REQUIREF(0, "cannot load %s: %s", DEMO_DIR, g_load_error);                                       \
        }                                                                                                    \
    } while (0)

static int split_words(char *s, char **w, int max) {
    int n = 0;
    for (char *tok = strtok(s, " "); tok && n < max; tok = strtok(NULL, " "))
        w[n++] = tok;
    return n;
}

/* Argmax over keys of the head-averaged row q of view v. */
static int mean_argmax(const av_attn_view *v, int q) {
    int best = 0;
    double bestv = -1;
    for (int k = 0; k < v->n_key; k++) {
        double s = 0;
        for (int h = 0; h < v->n_heads; h++)
            s += v->data[((size_t)h * v->n_query + q) * v->n_key + k];
        if (s > bestv) {
            bestv = s;
            best = k;
        }
    }
    return best;
}

/* Greedy translation of fr compared with the reference words en (then </s>). */
static int translate_exact(av_model *m, const char *fr, char **en, int n_en, av_err *err) {
    av_trace *t = NULL;
    if (av_trace_from_pair(m, fr, NULL, 32, NULL, &t, err)) return -1;
    const av_tokenizer *tok = av_model_tokenizer(m);
    int T = av_trace_n_tokens(t), ok = T == n_en + 2;
    for (int i = 0; ok && i < n_en; i++)
        ok = av_trace_token_id(t, i + 1) == av_tokenizer_find(tok, en[i]);
    if (ok) ok = av_trace_token_id(t, T - 1) == av_tokenizer_eos(tok);
    av_trace_free(t);
    return ok;
}

/* One held-out line "fr<TAB>en<TAB>i-j ..." into st. */
static int measure_line(av_model *m, char *line, demo_stats *st, av_err *err) {
    char *fr = line, *en = strchr(fr, '\t'), *al = en ? strchr(en + 1, '\t') : NULL;
    if (!al) return fail(err, "heldout.tsv: a line without three tab-separated columns");
    *en++ = 0;
    *al++ = 0;
    char frcopy[2048], encopy[2048];
    snprintf(frcopy, sizeof frcopy, "%s", fr);
    snprintf(encopy, sizeof encopy, "%s", en);
    char *fw[MAX_WORDS], *ew[MAX_WORDS];
    int nf = split_words(frcopy, fw, MAX_WORDS), ne = split_words(encopy, ew, MAX_WORDS);
    int align[MAX_WORDS];
    for (int j = 0; j < ne; j++)
        align[j] = -1;
    for (char *p = strtok(al, " "); p; p = strtok(NULL, " ")) {
        int i, j;
        if (sscanf(p, "%d-%d", &i, &j) == 2 && i >= 0 && i < nf && j >= 0 && j < ne) align[j] = i;
    }
    int ex = translate_exact(m, fr, ew, ne, err);
    if (ex < 0) return -1;
    st->exact += ex;
    st->sentences++;
    av_trace *t = NULL;
    if (av_trace_from_pair(m, fr, en, 32, NULL, &t, err)) return -1;
    av_attn_view v;
    int L = av_trace_n_layers(t, AV_ATTN_CROSS);
    if (L < 1 || av_trace_attn(t, AV_ATTN_CROSS, L - 1, &v, err)) {
        av_trace_free(t);
        return L < 1 ? fail(err, "the trace has no cross-attention") : -1;
    }
    if (v.n_query != ne + 1 || v.n_key != nf + 1) {
        av_trace_free(t);
        return fail(err, "cross-attention shape does not match the sentence");
    }
    for (int j = 0; j < ne; j++) { /* decoder row j + 1 has input ew[j] (row 0 is the start token) */
        if (align[j] < 0) continue;
        int arg = mean_argmax(&v, j + 1), hit = arg == align[j];
        st->rows++;
        st->hits += hit;
        if (strcmp(ew[j], "black") == 0) {
            st->black_rows++;
            st->black_hits += arg < nf && strncmp(fw[arg], "noir", 4) == 0;
        } else if (strcmp(ew[j], "cat") == 0) {
            st->cat_rows++;
            st->cat_hits += arg < nf && strncmp(fw[arg], "chat", 4) == 0;
        }
    }
    av_trace_free(t);
    return 0;
}

static int measure(av_model *m, const char *dir, demo_stats *st, av_err *err) {
    char path[4096], line[2048];
    memset(st, 0, sizeof *st);
    snprintf(path, sizeof path, "%s/heldout.tsv", dir);
    FILE *f = fopen(path, "r");
    if (!f) return fail(err, "cannot open heldout.tsv in the model directory");
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (line[0]) rc = measure_line(m, line, st, err);
    }
    fclose(f);
    return rc;
}

static demo_stats g_stats;
static int g_measured; /* 1 ok, -1 failed */
static char g_measure_error[512];

static int stats_once(void) {
    if (!g_measured) {
        av_err err = {{0}};
        g_measured = measure(g_model, DEMO_DIR, &g_stats, &err) ? -1 : 1;
        snprintf(g_measure_error, sizeof g_measure_error, "%s", err.msg);
    }
    return g_measured > 0 ? 0 : -1;
}

/* eval.json "c_engine" member key, or -1 */
static double card_value(const char *key) {
    json_error_t je;
    json_t *root = json_load_file(DEMO_DIR "/eval.json", 0, &je);
    json_t *v = json_object_get(json_object_get(root, "c_engine"), key);
    double x = json_is_number(v) ? json_number_value(v) : -1;
    json_decref(root);
    return x;
}

/* The model card states value as "**NN.N%**" (the training script writes both from the same measurement). */
static int card_states(double value) {
    FILE *f = fopen(DEMO_DIR "/MODEL_CARD.md", "r");
    if (!f) return 0;
    static char text[1 << 16];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    char want[32];
    snprintf(want, sizeof want, "**%.1f%%**", 100 * value);
    return strstr(text, want) != NULL;
}

static void test_demo_le_chat_noir(void) {
    NEED_MODEL();
    av_err err = {{0}};
    av_trace *t = NULL;
    REQUIREF(av_trace_from_pair(g_model, "le chat noir", NULL, 32, NULL, &t, &err) == 0, "%s", err.msg);
    const av_tokenizer *tok = av_model_tokenizer(g_model);
    const char *want[] = {"the", "black", "cat"};
    int T = av_trace_n_tokens(t);
    CHECKF(T == 5, "greedy output has %d tokens, want <start> the black cat </s>", T);
    for (int i = 0; i < 3 && i + 1 < T; i++)
        CHECKF(av_trace_token_id(t, i + 1) == av_tokenizer_find(tok, want[i]), "token %d is '%s', want '%s'",
               i + 1, av_trace_token(t, i + 1), want[i]);
    CHECK(T == 5 && av_trace_token_id(t, 4) == av_tokenizer_eos(tok));
    av_attn_view v;
    int L = av_trace_n_layers(t, AV_ATTN_CROSS);
    REQUIRE(L >= 1);
    REQUIREF(av_trace_attn(t, AV_ATTN_CROSS, L - 1, &v, &err) == 0, "%s", err.msg);
    REQUIRE(v.n_key == 4 && v.n_query == T); /* le chat noir </s> */
    if (T == 5) {
        CHECKF(mean_argmax(&v, 2) == 2, "row 'black' peaks on source %d, want 2 (noir)", mean_argmax(&v, 2));
        CHECKF(mean_argmax(&v, 3) == 1, "row 'cat' peaks on source %d, want 1 (chat)", mean_argmax(&v, 3));
    }
    av_trace_free(t);
}

static void test_demo_heldout_black_cat(void) {
    NEED_MODEL();
    REQUIREF(stats_once() == 0, "%s", g_measure_error);
    REQUIRE(g_stats.black_rows >= 20 && g_stats.cat_rows >= 5);
    CHECKF(g_stats.black_hits * 10 >= g_stats.black_rows * 9, "'black' peaks on noir in only %d of %d rows",
           g_stats.black_hits, g_stats.black_rows);
    CHECKF(g_stats.cat_hits * 10 >= g_stats.cat_rows * 9, "'cat' peaks on chat in only %d of %d rows",
           g_stats.cat_hits, g_stats.cat_rows);
}

static void test_demo_heldout_alignment_accuracy(void) {
    NEED_MODEL();
    REQUIREF(stats_once() == 0, "%s", g_measure_error);
    double acc = (double)g_stats.hits / g_stats.rows, card = card_value("align_acc");
    REQUIREF(card >= 0, DEMO_DIR "/eval.json has no c_engine.align_acc");
    CHECKF(fabs(acc - card) <= 0.01, "alignment accuracy %.4f, the model card says %.4f", acc, card);
    CHECKF(card_states(card), "MODEL_CARD.md does not state the alignment accuracy %.1f%%", 100 * card);
}

static void test_demo_heldout_exact_match(void) {
    NEED_MODEL();
    REQUIREF(stats_once() == 0, "%s", g_measure_error);
    double em = (double)g_stats.exact / g_stats.sentences, card = card_value("exact_match");
    REQUIREF(card >= 0, DEMO_DIR "/eval.json has no c_engine.exact_match");
    CHECKF(fabs(em - card) <= 0.01, "exact match %.4f, the model card says %.4f", em, card);
    CHECKF(card_states(card), "MODEL_CARD.md does not state the exact match %.1f%%", 100 * card);
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--measure") == 0) {
        av_err err = {{0}};
        demo_stats s;
        if (load_model(argv[2]) || measure(g_model, argv[2], &s, &err)) {
            fprintf(stderr, "test_demo --measure: %s\n", g_load_error[0] ? g_load_error : err.msg);
            return 1;
        }
        printf("{\"sentences\": %d, \"exact_match\": %.6f, \"aligned_rows\": %d, \"align_acc\": %.6f, "
               "\"black_rows\": %d, \"black_hits\": %d, \"cat_rows\": %d, \"cat_hits\": %d}\n",
               s.sentences, (double)s.exact / s.sentences, s.rows, (double)s.hits / s.rows, s.black_rows,
               s.black_hits, s.cat_rows, s.cat_hits);
        av_model_free(g_model);
        return 0;
    }
    RUN(test_demo_le_chat_noir);
    RUN(test_demo_heldout_black_cat);
    RUN(test_demo_heldout_alignment_accuracy);
    RUN(test_demo_heldout_exact_match);
    av_model_free(g_model);
    return h_exit_code();
}
