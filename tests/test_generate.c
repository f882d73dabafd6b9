/* Generation (src/trace/generation.c) on the tiny reference models of every decoder family
 * (tests/fixtures/tiny, PyTorch references written from the published architectures by
 * scripts/make_tiny_models.py): the prompt's log-probabilities and the first produced token against a
 * long-double log-softmax of the reference logits, encoder-decoder greedy decoding against the reference's,
 * the trace layout (prompt_len, kinds, version 3), seeds, stop conditions and refusals. */
#include "harness.h"

#include "io/io.h"

#include <math.h>

static const char *tiny(char *buf, size_t n, const char *name) {
    snprintf(buf, n, "tests/fixtures/tiny/%s", name);
    return buf;
}

/* log softmax(row)[id] and the argmax, in long double. */
static long double ref_logprob(const float *row, int V, int id, int *argmax) {
    long double mx = -INFINITY, s = 0;
    *argmax = 0;
    for (int k = 0; k < V; k++) {
        if (row[k] > mx) mx = row[k];
        if (row[k] > row[*argmax]) *argmax = k;
    }
    for (int k = 0; k < V; k++)
        s += expl((long double)row[k] - mx);
    return (long double)row[id] - mx - logl(s);
}

/* Decoder-only families: the reference ids as the prompt, three greedy steps. */
static void check_decoder(const char *name) {
    char dir[256];
    av_model *m = NULL;
    av_safetensors ref;
    av_err err = {{0}};
    REQUIREF(av_model_load(tiny(dir, sizeof dir, name), NULL, &m, &err) == 0, "%s: %s", name, err.msg);
    char path[300];
    snprintf(path, sizeof path, "%s/reference.safetensors", dir);
    REQUIREF(av_st_open(path, &ref, &err) == 0, "%s", err.msg);
    const av_tensor *ids = av_st_find(&ref, "ids"), *lg = av_st_find(&ref, "logits");
    int T = (int)ids->shape[0], V = (int)lg->shape[1];
    av_generate_params p = av_generate_default_params();
    p.steps = 3;
    av_trace *t = NULL;
    if (av_generate_ids(m, ids->data, (size_t)T, &p, &t, &err)) {
        CHECKF(0, "%s: %s", name, err.msg);
        goto done;
    }
    av_logprob_view v;
    av_generation_info g;
    REQUIRE(av_trace_logprobs(t, &v, &err) == 0 && av_trace_generation_info(t, &g) == 0);
    CHECKF(g.prompt_len == T && av_trace_n_tokens(t) == T + 3 && av_trace_n_layers(t, AV_ATTN_SELF) > 0,
           "%s: prompt %d of %d tokens", name, g.prompt_len, av_trace_n_tokens(t));
    const int32_t *id = ids->data;
    const float *L = lg->data;
    double worst = 0;
    for (int i = 1; i <= T; i++) { /* the prompt's tokens and the first produced one (row T - 1) */
        int best, tok = i < T ? id[i] : av_trace_token_id(t, T);
        long double want = ref_logprob(L + (size_t)(i - 1) * (size_t)V, V, tok, &best);
        worst = fmax(worst, fabs((double)(v.token[i] - want)));
        if (i == T)
            CHECKF(tok == best && v.alt_ids[(size_t)T * (size_t)v.k] == best, "%s: produced %d, argmax %d",
                   name, tok, best);
    }
    CHECKF(worst <= 1e-4, "%s: log-probabilities differ by %g from the reference's", name, worst);
    CHECK(isnan(v.token[0]) && strcmp(av_trace_meta(t, "version"), "3") == 0);
done:
    av_trace_free(t);
    av_st_close(&ref);
    av_model_free(m);
}

static void test_decoder_families(void) {
    check_decoder("gpt2");
    check_decoder("qwen2");
    check_decoder("mistral");
}

/* Encoder-decoders: greedy decoding from the start token equals the reference's greedy sequence; the first
 * produced token's log-probability is the reference's row 0 (the decoder on its start token). */
static void check_encdec(const char *name) {
    char dir[256], path[300];
    av_model *m = NULL;
    av_safetensors ref;
    av_err err = {{0}};
    REQUIREF(av_model_load(tiny(dir, sizeof dir, name), NULL, &m, &err) == 0, "%s: %s", name, err.msg);
    snprintf(path, sizeof path, "%s/reference.safetensors", dir);
    REQUIREF(av_st_open(path, &ref, &err) == 0, "%s", err.msg);
    const av_tensor *src = av_st_find(&ref, "src"), *greedy = av_st_find(&ref, "greedy"),
                    *lg = av_st_find(&ref, "logits");
    av_generate_params p = av_generate_default_params();
    p.steps = 6;
    av_trace *t = NULL;
    if (av_generate_ids(m, src->data, (size_t)src->shape[0], &p, &t, &err)) {
        CHECKF(0, "%s: %s", name, err.msg);
        goto done;
    }
    int n = av_trace_n_tokens(t), G = (int)greedy->shape[0], best;
    const int32_t *want = greedy->data;
    CHECKF(n == G, "%s: %d tokens, the reference decoded %d", name, n, G);
    for (int i = 0; i < n && i < G; i++)
        CHECKF(av_trace_token_id(t, i) == want[i], "%s: token %d is %d, the reference's %d", name, i,
               av_trace_token_id(t, i), want[i]);
    av_logprob_view v;
    av_generation_info g;
    REQUIRE(av_trace_logprobs(t, &v, &err) == 0 && av_trace_generation_info(t, &g) == 0);
    long double lp = ref_logprob(lg->data, (int)lg->shape[1], want[1], &best);
    CHECKF(fabsl(v.token[1] - lp) <= 1e-4L, "%s: first token log-prob %g vs %Lg", name, v.token[1], lp);
    CHECK(g.prompt_len == 1 && av_trace_n_layers(t, AV_ATTN_CROSS) > 0 &&
          av_trace_n_layers(t, AV_ATTN_ENC) > 0);
    CHECK(strcmp(av_trace_meta(t, "decoding"), "greedy") == 0 && av_trace_n_query(t, AV_ATTN_CROSS) == n);
done:
    av_trace_free(t);
    av_st_close(&ref);
    av_model_free(m);
}

static void test_encoder_decoder_families(void) {
    check_encdec("marian");
    check_encdec("bart");
    check_encdec("t5");
    check_encdec("t5v11");
}

/* Same seed, same tokens; another seed, other tokens; the settings and the stop reason in the metadata. */
static void test_seeds_and_metadata(void) {
    char dir[256];
    av_model *m = NULL;
    av_err err = {{0}};
    REQUIREF(av_model_load(tiny(dir, sizeof dir, "gpt2"), NULL, &m, &err) == 0, "%s", err.msg);
    const int32_t prompt[3] = {5, 17, 3};
    av_generate_params p = av_generate_default_params();
    p.steps = 12, p.want_attention = 0, p.ignore_eos = 1;
    p.sampling = (av_sampling){1.5, 0, 1.0, 0.0, 42};
    av_trace *t[3] = {NULL, NULL, NULL};
    for (int r = 0; r < 3; r++) {
        p.sampling.seed = r < 2 ? 42 : 43;
        REQUIREF(av_generate_ids(m, prompt, 3, &p, &t[r], &err) == 0, "%s", err.msg);
    }
    int same = 1, diff = 0;
    for (int i = 0; i < 15; i++) {
        same &= av_trace_token_id(t[0], i) == av_trace_token_id(t[1], i);
        diff |= av_trace_token_id(t[0], i) != av_trace_token_id(t[2], i);
    }
    CHECK(same && diff && av_trace_n_tokens(t[0]) == 15 && !av_trace_has_attention(t[0]));
    av_generation_info g;
    av_trace_generation_info(t[0], &g);
    CHECKF(strcmp(g.stop_reason, "length") == 0 && strstr(g.sampling, "\"temperature\":1.5") &&
               strstr(g.sampling, "\"seed\":42"),
           "%s %s", g.stop_reason, g.sampling);
    for (int r = 0; r < 3; r++)
        av_trace_free(t[r]);
    /* the context (24 positions) ends it before the steps do */
    p.steps = 100;
    REQUIREF(av_generate_ids(m, prompt, 3, &p, &t[0], &err) == 0, "%s", err.msg);
    av_trace_generation_info(t[0], &g);
    CHECK(av_trace_n_tokens(t[0]) == 24 && strcmp(g.stop_reason, "context") == 0);
    av_trace_free(t[0]);
    /* refusals, each before anything runs */
    static const struct {
        av_sampling s;
        int steps, top;
        const char *expect;
    } bad[] = {{{-1, 0, 1, 0, 0}, 4, 10, "temperature"}, {{1, -2, 1, 0, 0}, 4, 10, "top-k"},
               {{1, 0, 0, 0, 0}, 4, 10, "top-p"},        {{1, 0, 1, 2, 0}, 4, 10, "min-p"},
               {{0, 0, 1, 0, 0}, 0, 10, "steps"},        {{0, 0, 1, 0, 0}, 4, 2000, "top_logprobs"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p.sampling = bad[i].s, p.steps = bad[i].steps, p.top_logprobs = bad[i].top;
        av_trace *x = NULL;
        CHECKF(av_generate_ids(m, prompt, 3, &p, &x, &err) == -1 && !x && strstr(err.msg, bad[i].expect),
               "case %zu: '%s'", i, err.msg);
    }
    p = av_generate_default_params();
    const char *stops[1] = {"x"};
    p.stop = stops, p.n_stop = 1;
    av_trace *x = NULL;
    CHECK(av_generate_ids(m, prompt, 3, &p, &x, &err) == -1 && strstr(err.msg, "stop strings need"));
    CHECK(av_generate_ids(m, prompt, 24, NULL, &x, &err) == -1 && strstr(err.msg, "context window"));
    av_model_free(m);
}

/* The real stories260K: a stop string ends the text where it appears; end-of-sequence is a stop reason. */
static void test_stop_strings(void) {
    char path[512];
    if (!h_shared_file(path, sizeof path, "models/stories260K/stories260K.bin"))
        SKIP("../shared/models/stories260K not found");
    av_model *m = NULL;
    av_err err = {{0}};
    REQUIREF(av_model_load(path, NULL, &m, &err) == 0, "%s", err.msg);
    av_generate_params p = av_generate_default_params();
    const char *stops[2] = {"zzz", " Lily"};
    p.stop = stops, p.n_stop = 2, p.steps = 60, p.want_attention = 0;
    av_trace *t = NULL;
    REQUIREF(av_generate(m, "Once upon a time", &p, &t, &err) == 0, "%s", err.msg);
    av_generation_info g;
    av_trace_generation_info(t, &g);
    int n = av_trace_n_tokens(t);
    CHECKF(strcmp(g.stop_reason, "stop") == 0 && strstr(av_trace_meta(t, "generation"), "\"stop\":\" Lily\""),
           "%s", av_trace_meta(t, "generation"));
    CHECKF(strcmp(av_trace_token(t, n - 1), " Lily") == 0, "last token '%s'", av_trace_token(t, n - 1));
    av_trace_free(t);
    av_model_free(m);
}

int main(void) {
    RUN(test_decoder_families);
    RUN(test_encoder_decoder_families);
    RUN(test_seeds_and_metadata);
    RUN(test_stop_strings);
    return h_exit_code();
}
