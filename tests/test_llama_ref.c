/* The Llama forward pass against an independent PyTorch implementation (scripts/ref_llama.py) on the real
 * stories260K model: token ids, logits and every attention matrix; greedy generation against the model's
 * published text; structural properties of every attention row. */
#include "harness.h"
#include "io/io.h"
#include "model/model.h"

static av_model *load_model(void) {
    char path[4096], tok[4096];
    if (!h_shared_file(path, sizeof path, "models/stories260K/stories260K.bin") ||
        !h_shared_file(tok, sizeof tok, "models/stories260K/tok512.bin"))
        return NULL;
    av_model_params p = av_model_default_params();
    p.tokenizer_path = tok;
    av_model *m = NULL;
    av_err err = {{0}};
    if (av_model_load(path, &p, &m, &err)) {
        fprintf(stderr, "load failed: %s\n", err.msg);
        return NULL;
    }
    return m;
}

static void test_reference_logits_and_attention(void) {
    av_model *m = load_model();
    if (!m) SKIP("../shared/models/stories260K not found");
    av_safetensors ref;
    av_err err = {{0}};
    REQUIREF(av_st_open("tests/fixtures/stories260K_ref.safetensors", &ref, &err) == 0, "%s", err.msg);
    json_error_t je;
    json_t *prompts = json_loads(av_st_meta(&ref, "prompts"), 0, &je);
    REQUIRE(json_is_array(prompts) && json_array_size(prompts) >= 3);
    float worst_logit = 0, worst_attn = 0;
    for (size_t p = 0; p < json_array_size(prompts); p++) {
        const char *text = json_string_value(json_array_get(prompts, p));
        char name[64];
        snprintf(name, sizeof name, "p%zu.ids", p);
        const av_tensor *ids = av_st_find(&ref, name);
        snprintf(name, sizeof name, "p%zu.logits", p);
        const av_tensor *logits = av_st_find(&ref, name);
        REQUIRE(ids && logits);
        av_run_params rp = av_run_default_params();
        rp.want_logits = 1;
        av_trace *t = NULL;
        REQUIREF(av_trace_from_text(m, text, &rp, &t, &err) == 0, "%s", err.msg);
        int T = av_trace_n_tokens(t);
        CHECKF(T == ids->shape[0], "prompt %zu: %d tokens, reference %lld", p, T, (long long)ids->shape[0]);
        for (int i = 0; i < T && i < ids->shape[0]; i++)
            CHECKF(av_trace_token_id(t, i) == ((const int32_t *)ids->data)[i], "prompt %zu token %d", p, i);
        av_tensor lg;
        REQUIRE(av_trace_logits(t, &lg) == 0);
        if (T == ids->shape[0] && logits->shape[0] == T) {
            float d = h_max_abs_diff(lg.data, logits->data, (size_t)T * 512);
            worst_logit = d > worst_logit ? d : worst_logit;
            CHECKF(d <= 1e-4f, "prompt %zu: logits differ by %g", p, d);
            for (int l = 0; l < 5; l++) {
                snprintf(name, sizeof name, "p%zu.attn.%d", p, l);
                const av_tensor *ra = av_st_find(&ref, name);
                av_attn_view v;
                REQUIRE(ra && av_trace_attn(t, AV_ATTN_SELF, l, &v, &err) == 0);
                REQUIRE(v.n_heads == ra->shape[0] && v.n_query == T && v.n_key == T);
                float da = h_max_abs_diff(v.data, ra->data, (size_t)v.n_heads * (size_t)T * (size_t)T);
                worst_attn = da > worst_attn ? da : worst_attn;
                CHECKF(da <= 1e-4f, "prompt %zu layer %d: attention differs by %g", p, l, da);
            }
        }
        av_trace_free(t);
    }
    printf("# max |logit diff| %.3g, max |attention diff| %.3g (limit 1e-4)\n", worst_logit, worst_attn);
    json_decref(prompts);
    av_st_close(&ref);
    av_model_free(m);
}

static void test_attention_rows_are_causal_distributions(void) {
    av_model *m = load_model();
    if (!m) SKIP("../shared/models/stories260K not found");
    av_trace *t = NULL;
    av_err err = {{0}};
    const char *text =
        "Tom and Sue went to the park to play with a ball. They had fun! The sun was warm and the "
        "sky was blue. Tom threw the ball high and Sue ran to catch it.";
    REQUIREF(av_trace_from_text(m, text, NULL, &t, &err) == 0, "%s", err.msg);
    int T = av_trace_n_tokens(t);
    REQUIRE(T > 30);
    double worst = 0;
    int nonzero_above = 0;
    for (int l = 0; l < av_trace_n_layers(t, AV_ATTN_SELF); l++) {
        av_attn_view v;
        REQUIRE(av_trace_attn(t, AV_ATTN_SELF, l, &v, &err) == 0);
        for (int h = 0; h < v.n_heads; h++)
            for (int q = 0; q < T; q++) {
                const float *row = v.data + ((size_t)h * (size_t)T + (size_t)q) * (size_t)T;
                double sum = 0;
                for (int k = 0; k < T; k++) {
                    sum += row[k];
                    if (k > q && row[k] != 0.0f) nonzero_above++;
                    CHECK(row[k] >= 0.0f);
                }
                if (fabs(sum - 1.0) > worst) worst = fabs(sum - 1.0);
            }
    }
    printf("# %d tokens: max |row sum - 1| = %.3g, entries above the diagonal not 0: %d\n", T, worst,
           nonzero_above);
    CHECKF(worst <= 1e-5, "a row sums to 1 +- %g", worst);
    CHECK(nonzero_above == 0);
    av_trace_free(t);
    av_model_free(m);
}

typedef struct text_buf {
    char s[8192];
    size_t n;
} text_buf;

static void collect(void *ctx, const char *bytes, size_t len) {
    text_buf *b = ctx;
    if (b->n + len < sizeof b->s) {
        memcpy(b->s + b->n, bytes, len);
        b->n += len;
        b->s[b->n] = 0;
    }
}

static void test_greedy_generation_reproduces_published_text(void) {
    av_model *m = load_model();
    if (!m) SKIP("../shared/models/stories260K not found");
    const char *published =
        "Once upon a time, there was a little girl named Lily. She loved to play outside in "
        "the park. One day, she saw a big, red ball. She wanted to play with it, but it was "
        "too high.";
    text_buf out = {{0}, 0};
    int32_t *ids = NULL;
    size_t n = 0;
    av_err err = {{0}};
    REQUIREF(av_generate_greedy(m, "", 200, collect, &out, &ids, &n, &err) == 0, "%s", err.msg);
    CHECKF(strncmp(out.s, published, strlen(published)) == 0, "generated: %.120s", out.s);
    /* the whole 200-step id sequence of the PyTorch reference */
    json_t *ref = NULL;
    REQUIRE(av_json_load_file("tests/fixtures/stories260K_greedy_ids.json", &ref, &err) == 0);
    REQUIRE(json_is_array(ref));
    CHECKF(json_array_size(ref) == n, "%zu ids, reference %zu", n, json_array_size(ref));
    for (size_t i = 0; i < n && i < json_array_size(ref); i++)
        CHECKF(ids[i] == json_integer_value(json_array_get(ref, i)), "id %zu: %d vs %lld", i, ids[i],
               (long long)json_integer_value(json_array_get(ref, i)));
    json_decref(ref);
    free(ids);
    av_model_free(m);
}

static void test_tokenizer_matches_reference_cases(void) {
    av_model *m = load_model();
    if (!m) SKIP("../shared/models/stories260K not found");
    json_t *cases = NULL;
    av_err err = {{0}};
    REQUIRE(av_json_load_file("tests/fixtures/stories260K_tok.json", &cases, &err) == 0);
    size_t i;
    json_t *c;
    int checked = 0;
    json_array_foreach(cases, i, c) {
        const char *hex = av_json_str(c, "text_hex");
        json_t *want = json_object_get(c, "ids");
        REQUIRE(hex && json_is_array(want));
        size_t len = strlen(hex) / 2;
        char *text = malloc(len + 1);
        for (size_t k = 0; k < len; k++) {
            unsigned v;
            sscanf(hex + 2 * k, "%2x", &v);
            text[k] = (char)v;
        }
        text[len] = 0;
        int32_t *ids;
        size_t n;
        REQUIRE(av_tokenizer_encode(av_model_tokenizer(m), text, len, 1, &ids, &n, &err) == 0);
        int same = n == json_array_size(want);
        for (size_t k = 0; same && k < n; k++)
            same = ids[k] == json_integer_value(json_array_get(want, k));
        CHECKF(same, "case %zu (hex %s) differs", i, hex);
        checked++;
        free(ids);
        free(text);
    }
    CHECK(checked >= 20);
    json_decref(cases);
    av_model_free(m);
}

static void test_context_window_and_empty_input(void) {
    av_model *m = load_model();
    if (!m) SKIP("../shared/models/stories260K not found");
    av_model_info info = av_model_get_info(m);
    size_t n = (size_t)info.max_seq_len + 1;
    int32_t *ids = calloc(n, sizeof *ids);
    for (size_t i = 0; i < n; i++)
        ids[i] = 300;
    av_trace *t = NULL;
    av_err err = {{0}};
    CHECK(av_trace_from_ids(m, ids, n, NULL, &t, &err) == -1);
    CHECKF(strstr(err.msg, "context window") != NULL, "message: %s", err.msg);
    CHECK(av_trace_from_ids(m, ids, 0, NULL, &t, &err) == -1 && strstr(err.msg, "empty") != NULL);
    ids[0] = 512; /* outside the vocabulary */
    CHECK(av_trace_from_ids(m, ids, 3, NULL, &t, &err) == -1 && strstr(err.msg, "vocabulary") != NULL);
    free(ids);
    av_model_free(m);
}

int main(void) {
    RUN(test_reference_logits_and_attention);
    RUN(test_attention_rows_are_causal_distributions);
    RUN(test_greedy_generation_reproduces_published_text);
    RUN(test_tokenizer_matches_reference_cases);
    RUN(test_context_window_and_empty_input);
    return h_exit_code();
}
