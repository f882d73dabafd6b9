/* Lazy traces of every family and mask against full traces of the same run: every row of every head of every
 * kind, on the tiny reference models (causal GPT-2, bidirectional BERT/RoBERTa/DistilBERT, Qwen2/Mistral
 * sliding windows, Marian/BART/T5 encoder, decoder and cross-attention with T5's relative-position buckets,
 * ViT) and on the real ViT-Tiny; a hand-built lazy kind with soft-capping, a relative bias and a key-padding
 * mask against plain loops written here; version 2 save/load round trips and a version 1 lazy trace written
 * by hand. */
#include "harness.h"
#include "io/io.h"
#include "model/model.h"
#include "trace/trace.h"

#define TINY "tests/fixtures/tiny/"
#define TOL 1e-5f

/* Max |lazy row - full row| over every layer, head and query of every kind full holds; -1 on a mismatch of
 * shapes or a kind the lazy trace does not hold lazily. *n_kinds counts the kinds compared. */
static float compare_kinds(const av_trace *full, const av_trace *lazy, int *n_kinds) {
    float worst = 0;
    av_err err = {{0}};
    *n_kinds = 0;
    for (int k = 0; k < AV_ATTN_KIND_COUNT; k++) {
        av_attn_kind kind = (av_attn_kind)k;
        int L = av_trace_n_layers(full, kind), nq = av_trace_n_query(full, kind),
            nk = av_trace_n_key(full, kind);
        if (!L) continue;
        if (av_trace_n_layers(lazy, kind) != L || av_trace_n_query(lazy, kind) != nq ||
            av_trace_n_key(lazy, kind) != nk ||
            av_trace_n_heads(lazy, kind) != av_trace_n_heads(full, kind) || !lazy->lazy_kinds[k].n_layers)
            return -1;
        float *row = malloc(sizeof(float) * (size_t)nk);
        for (int l = 0; l < L; l++) {
            av_attn_view v;
            if (av_trace_attn(full, kind, l, &v, &err)) return -1;
            for (int h = 0; h < v.n_heads; h++)
                for (int q = 0; q < nq; q++) {
                    if (av_trace_attn_row(lazy, kind, l, h, q, row, &err)) return -1;
                    float d = h_max_abs_diff(row, v.data + ((size_t)h * (size_t)nq + (size_t)q) * (size_t)nk,
                                             (size_t)nk);
                    worst = d > worst ? d : worst;
                }
        }
        free(row);
        (*n_kinds)++;
    }
    return worst;
}

/* Saves lazy, loads it back and compares every row with the in-memory trace. */
static int round_trip_exact(const av_trace *lazy, const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s-lazy.safetensors", h_tmpdir(), name);
    av_trace *back = NULL;
    av_err err = {{0}};
    if (av_trace_save(lazy, path, &err) || av_trace_load(path, &back, &err)) {
        fprintf(stderr, "%s: %s\n", name, err.msg);
        return 0;
    }
    int n; /* back's whole matrices (materialized) against lazy's rows */
    float d = compare_kinds(back, lazy, &n);
    int ok = d >= 0 && d <= 1e-6f && strcmp(av_trace_meta(back, "version"), "2") == 0;
    av_trace_free(back);
    return ok;
}

static av_model *load_tiny(const char *name, av_err *err) {
    char dir[256];
    snprintf(dir, sizeof dir, TINY "%s", name);
    av_model *m = NULL;
    return av_model_load(dir, NULL, &m, err) == 0 ? m : NULL;
}

/* One full and one lazy run of the tiny model's reference input. */
static int run_both(const av_model *m, const av_safetensors *ref, av_trace **full, av_trace **lazy,
                    av_err *err) {
    const av_tensor *ids = av_st_find(ref, "ids"), *src = av_st_find(ref, "src"),
                    *tgt = av_st_find(ref, "tgt"), *px = av_st_find(ref, "pixels");
    av_run_params rp = av_run_default_params();
    rp.want_logits = 1;
    for (int lazy_run = 0; lazy_run < 2; lazy_run++) {
        av_trace **t = lazy_run ? lazy : full;
        rp.lazy = lazy_run;
        int rc = ids   ? av_trace_from_ids(m, ids->data, (size_t)ids->shape[0], &rp, t, err)
                 : src ? av_trace_from_pair_ids(m, src->data, (size_t)src->shape[0], tgt->data,
                                                (size_t)tgt->shape[0], 0, &rp, t, err)
                       : av_trace_from_pixels(m, px->data, (int)px->shape[1], (int)px->shape[2], &rp, t, NULL,
                                              0, err);
        if (rc) return -1;
    }
    return 0;
}

static void test_every_tiny_family(void) {
    static const char *names[] = {"gpt2",   "bert", "roberta", "distilbert", "qwen2", "mistral",
                                  "marian", "bart", "t5",      "t5v11",      "vit"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        av_err err = {{0}};
        av_model *m = load_tiny(names[i], &err);
        char path[256];
        snprintf(path, sizeof path, TINY "%s/reference.safetensors", names[i]);
        av_safetensors ref;
        REQUIREF(m && av_st_open(path, &ref, &err) == 0, "%s: %s", names[i], err.msg);
        av_trace *full = NULL, *lazy = NULL;
        REQUIREF(run_both(m, &ref, &full, &lazy, &err) == 0, "%s: %s", names[i], err.msg);
        int n_kinds = 0;
        float d = compare_kinds(full, lazy, &n_kinds);
        av_tensor a, b;
        float dl = av_trace_logits(full, &a) == 0 && av_trace_logits(lazy, &b) == 0
                       ? h_max_abs_diff(a.data, b.data, (size_t)av_tensor_numel(&a))
                       : 0;
        printf("# %-10s %d kind%s: max |lazy - full| %.3g, logits %.3g\n", names[i], n_kinds,
               n_kinds > 1 ? "s" : "", d, dl);
        CHECKF(d >= 0 && d <= TOL && n_kinds == (av_st_find(&ref, "src") ? 3 : 1),
               "%s: lazy and full differ by %g", names[i], d);
        CHECKF(dl == 0, "%s: a lazy run changed the logits by %g", names[i], dl);
        CHECKF(round_trip_exact(lazy, names[i]), "%s: the saved lazy trace reads back differently", names[i]);
        av_trace_free(full);
        av_trace_free(lazy);
        av_st_close(&ref);
        av_model_free(m);
    }
}

static void test_greedy_decoding_lazily(void) {
    av_err err = {{0}};
    av_model *m = load_tiny("t5", &err);
    REQUIREF(m, "%s", err.msg);
    int32_t src[6] = {5, 9, 12, 30, 7, 1};
    av_run_params rp = av_run_default_params();
    av_trace *full = NULL, *lazy = NULL;
    REQUIREF(av_trace_from_pair_ids(m, src, 6, NULL, 0, 5, &rp, &full, &err) == 0, "%s", err.msg);
    rp.lazy = 1;
    REQUIREF(av_trace_from_pair_ids(m, src, 6, NULL, 0, 5, &rp, &lazy, &err) == 0, "%s", err.msg);
    int n_kinds;
    float d = compare_kinds(full, lazy, &n_kinds);
    CHECKF(d >= 0 && d <= TOL && n_kinds == 3, "lazy and full differ by %g (%d kinds)", d, n_kinds);
    CHECK(av_trace_n_tokens(full) == av_trace_n_tokens(lazy));
    av_trace_free(full);
    av_trace_free(lazy);
    av_model_free(m);
}

static void test_real_vit_tiny(void) {
    char path[4096], img[4096];
    if (!h_shared_file(path, sizeof path, "models/vit-tiny/model.safetensors") ||
        !h_shared_file(img, sizeof img, "images/chelsea.png"))
        SKIP("../shared vit-tiny or chelsea.png not found");
    *strrchr(path, '/') = 0;
    av_model *m = NULL;
    av_err err = {{0}};
    REQUIREF(av_model_load(path, NULL, &m, &err) == 0, "%s", err.msg);
    av_run_params rp = av_run_default_params();
    av_trace *full = NULL, *lazy = NULL;
    REQUIREF(av_trace_from_image(m, img, &rp, &full, NULL, 0, &err) == 0, "%s", err.msg);
    rp.lazy = 1;
    REQUIREF(av_trace_from_image(m, img, &rp, &lazy, NULL, 0, &err) == 0, "%s", err.msg);
    int n_kinds;
    float d = compare_kinds(full, lazy, &n_kinds);
    printf("# ViT-Tiny, 197 tokens, 12 layers x 3 heads: max |lazy - full| = %.3g\n", d);
    CHECKF(d >= 0 && d <= TOL, "lazy and full differ by %g", d);
    CHECK(strcmp(av_trace_meta(lazy, "patch_grid"), "14x14") == 0);
    av_trace_free(full);
    av_trace_free(lazy);
    av_model_free(m);
}

/* ---- a hand-built lazy kind against plain loops ---- */

enum { H = 2, G = 1, T = 7, D = 4 };

/* Row q of head h the way the format defines it: scale q.k, soft-cap, + bias(k - q), masked keys out,
 * softmax. */
static void reference_row(const float *q, const float *k, const float *bias, const uint8_t *mask, float scale,
                          float cap, int h, int qi, float *out) {
    double s[T], mx = -1e300, sum = 0;
    for (int j = 0; j < T; j++) {
        double dot = 0;
        for (int d = 0; d < D; d++)
            dot += (double)q[((size_t)h * T + (size_t)qi) * D + d] * k[(size_t)j * D + d];
        dot *= scale;
        dot = cap * tanh(dot / cap) + bias[h * (2 * T - 1) + (j - qi) + T - 1];
        s[j] = mask[j] ? dot : -INFINITY;
        mx = s[j] > mx ? s[j] : mx;
    }
    for (int j = 0; j < T; j++)
        sum += mask[j] ? exp(s[j] - mx) : 0;
    for (int j = 0; j < T; j++)
        out[j] = mask[j] ? (float)(exp(s[j] - mx) / sum) : 0.0f;
}

static float *copy(const float *p, size_t n) {
    float *c = malloc(sizeof *c * n);
    memcpy(c, p, sizeof *c * n);
    return c;
}

static void test_masks_bias_and_softcap_against_loops(void) {
    float q[H * T * D], k[G * T * D], bias[H * (2 * T - 1)];
    uint8_t mask[T] = {1, 0, 1, 1, 0, 1, 1};
    unsigned seed = 3;
    for (int i = 0; i < H * T * D; i++)
        q[i] = (float)rand_r(&seed) / RAND_MAX * 4 - 2;
    for (int i = 0; i < G * T * D; i++)
        k[i] = (float)rand_r(&seed) / RAND_MAX * 4 - 2;
    for (int i = 0; i < H * (2 * T - 1); i++)
        bias[i] = (float)rand_r(&seed) / RAND_MAX - 0.5f;
    av_trace *t = av_trace_new();
    av_err err = {{0}};
    char **labels = calloc(T, sizeof *labels);
    int32_t *ids = calloc(T, sizeof *ids);
    for (int i = 0; i < T; i++)
        labels[i] = strdup("x");
    REQUIRE(av_trace_set_tokens(t, labels, ids, T, &err) == 0);
    const float **qs = malloc(sizeof *qs), **ks = malloc(sizeof *ks);
    qs[0] = copy(q, sizeof q / sizeof *q);
    ks[0] = copy(k, sizeof k / sizeof *k);
    float *scale = malloc(sizeof *scale), *cap = malloc(sizeof *cap);
    int *window = calloc(1, sizeof *window);
    uint8_t *km = malloc(T);
    memcpy(km, mask, T);
    scale[0] = 0.7f, cap[0] = 1.5f;
    av_lazy_kind lz = {.n_layers = 1,
                       .lazy = 1,
                       .n_heads = H,
                       .n_kv_heads = G,
                       .head_dim = D,
                       .n_query = T,
                       .n_key = T,
                       .q = qs,
                       .k = ks,
                       .scale = scale,
                       .softcap = cap,
                       .window = window,
                       .rel_bias = copy(bias, sizeof bias / sizeof *bias),
                       .key_mask = km,
                       .owns_qk = 1,
                       .owns_extras = 1};
    REQUIREF(av_trace_set_lazy(t, AV_ATTN_ENC, &lz, &err) == 0, "%s", err.msg);
    char path[512];
    snprintf(path, sizeof path, "%s/hand-lazy.safetensors", h_tmpdir());
    av_trace *back = NULL;
    REQUIREF(av_trace_save(t, path, &err) == 0 && av_trace_load(path, &back, &err) == 0, "%s", err.msg);
    float worst = 0, row[T], want[T];
    for (int h = 0; h < H; h++)
        for (int i = 0; i < T; i++) {
            reference_row(q, k, bias, mask, 0.7f, 1.5f, h, i, want);
            for (int pass = 0; pass < 2; pass++) {
                REQUIRE(av_trace_attn_row(pass ? back : t, AV_ATTN_ENC, 0, h, i, row, &err) == 0);
                float d = h_max_abs_diff(row, want, T);
                worst = d > worst ? d : worst;
                CHECK(row[1] == 0.0f && row[4] == 0.0f); /* padding keys are exactly 0 */
            }
        }
    printf("# enc kind with soft-cap 1.5, relative bias and 2 padding keys: max |lazy - loops| = %.3g\n",
           worst);
    CHECKF(worst <= 1e-6f, "differs by %g", worst);
    CHECK(av_trace_n_layers(back, AV_ATTN_ENC) == 1 && av_trace_n_layers(back, AV_ATTN_SELF) == 0);
    av_trace_free(back);
    av_trace_free(t);
}

/* A version 1 lazy trace (what attnviz wrote before version 2): q.0 / k.0, attn_scale, causal. */
static void test_version1_lazy_trace_loads(void) {
    float q[H * T * D], k[G * T * D];
    unsigned seed = 5;
    for (int i = 0; i < H * T * D; i++)
        q[i] = (float)rand_r(&seed) / RAND_MAX * 2 - 1;
    for (int i = 0; i < G * T * D; i++)
        k[i] = (float)rand_r(&seed) / RAND_MAX * 2 - 1;
    av_st_writer w;
    av_st_writer_init(&w);
    av_err err = {{0}};
    int64_t qs[3] = {H, T, D}, ks[3] = {G, T, D};
    const char *meta[][2] = {{"format", "attnviz-trace"},
                             {"version", "1"},
                             {"lazy", "1"},
                             {"attn_scale", "0.5"},
                             {"causal", "1"},
                             {"tokens", "[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\"]"},
                             {"token_ids", "[1,2,3,4,5,6,7]"}};
    for (size_t i = 0; i < sizeof meta / sizeof meta[0]; i++)
        REQUIRE(av_st_writer_meta(&w, meta[i][0], meta[i][1], &err) == 0);
    char path[512];
    snprintf(path, sizeof path, "%s/v1-lazy.safetensors", h_tmpdir());
    REQUIRE(av_st_writer_add(&w, "q.0", AV_DTYPE_F32, AV_DTYPE_F32, 3, qs, q, &err) == 0 &&
            av_st_writer_add(&w, "k.0", AV_DTYPE_F32, AV_DTYPE_F32, 3, ks, k, &err) == 0 &&
            av_st_writer_save(&w, path, &err) == 0);
    av_st_writer_free(&w);
    av_trace *t = NULL;
    REQUIREF(av_trace_load(path, &t, &err) == 0, "%s", err.msg);
    CHECK(av_trace_is_lazy(t) && av_trace_n_layers(t, AV_ATTN_SELF) == 1 &&
          av_trace_n_heads(t, AV_ATTN_SELF) == H);
    float row[T], worst = 0;
    for (int h = 0; h < H; h++)
        for (int i = 0; i < T; i++) { /* causal softmax of 0.5 q.k by hand */
            REQUIRE(av_trace_attn_row(t, AV_ATTN_SELF, 0, h, i, row, &err) == 0);
            double s[T], mx = -1e300, sum = 0;
            for (int j = 0; j <= i; j++) {
                s[j] = 0;
                for (int d = 0; d < D; d++)
                    s[j] += 0.5 * q[((size_t)h * T + (size_t)i) * D + d] * k[(size_t)j * D + d];
                mx = s[j] > mx ? s[j] : mx;
            }
            for (int j = 0; j <= i; j++)
                sum += exp(s[j] - mx);
            for (int j = 0; j < T; j++) {
                float want = j <= i ? (float)(exp(s[j] - mx) / sum) : 0.0f;
                worst = fabsf(row[j] - want) > worst ? fabsf(row[j] - want) : worst;
            }
        }
    CHECKF(worst <= 1e-6f, "version 1 rows differ from the causal softmax by %g", worst);
    av_trace_free(t);
}

int main(void) {
    RUN(test_every_tiny_family);
    RUN(test_greedy_decoding_lazily);
    RUN(test_real_vit_tiny);
    RUN(test_masks_bias_and_softcap_against_loops);
    RUN(test_version1_lazy_trace_loads);
    return h_exit_code();
}
