/* Tiny random-weight Hugging Face directories against their PyTorch references (reference.safetensors next to
 * config.json: ids, logits, attn.<kind>.<layer>), shared by tests/test_families.c
 * (scripts/make_tiny_models.py) and tests/test_decoders.c (scripts/make_tiny_decoders.py). Define TINY_DIR
 * ("tests/fixtures/tiny/") and TOL before including. */
#ifndef AV_TEST_TINY_REF_H
#define AV_TEST_TINY_REF_H

#include "harness.h"
#include "io/io.h"
#include "model/model.h"

#include <sys/stat.h>

/* The model of directory TINY_DIR name (two threads). */
__attribute__((unused)) static av_model *load(const char *name, av_err *err) {
    char dir[256];
    snprintf(dir, sizeof dir, TINY_DIR "%s", name);
    av_model *m = NULL;
    av_model_params p = av_model_default_params();
    p.n_threads = 2;
    return av_model_load(dir, &p, &m, err) == 0 ? m : NULL;
}

__attribute__((unused)) static int open_ref(const char *name, av_safetensors *ref, av_err *err) {
    char path[256];
    snprintf(path, sizeof path, TINY_DIR "%s/reference.safetensors", name);
    return av_st_open(path, ref, err);
}

/* max |diff| of attention kind/layer against ref "attn.<kind>.<layer>"; -1 when shapes differ */
__attribute__((unused)) static float attn_diff(const av_trace *t, const av_safetensors *ref,
                                               av_attn_kind kind, int layer) {
    char name[64];
    snprintf(name, sizeof name, "attn.%s.%d", av_attn_kind_name(kind), layer);
    const av_tensor *r = av_st_find(ref, name);
    av_attn_view v;
    av_err err = {{0}};
    if (!r || av_trace_attn(t, kind, layer, &v, &err)) return -1;
    if (r->ndim != 3 || r->shape[0] != v.n_heads || r->shape[1] != v.n_query || r->shape[2] != v.n_key)
        return -1;
    return h_max_abs_diff(v.data, r->data, (size_t)v.n_heads * (size_t)v.n_query * (size_t)v.n_key);
}

__attribute__((unused)) static int n_ref_layers(const av_safetensors *ref, av_attn_kind kind) {
    int n = 0;
    char name[64];
    for (;; n++) {
        snprintf(name, sizeof name, "attn.%s.%d", av_attn_kind_name(kind), n);
        if (!av_st_find(ref, name)) return n;
    }
}

__attribute__((unused)) static void check_token_model(const char *name, const char *arch) {
    av_err err = {{0}};
    av_model *m = load(name, &err);
    REQUIREF(m, "%s: %s", name, err.msg);
    CHECKF(strcmp(av_model_get_info(m).arch, arch) == 0, "%s: arch %s", name, av_model_get_info(m).arch);
    av_safetensors ref;
    REQUIREF(open_ref(name, &ref, &err) == 0, "%s", err.msg);
    const av_tensor *ids = av_st_find(&ref, "ids"), *logits = av_st_find(&ref, "logits");
    REQUIRE(ids && logits && ids->dtype == AV_DTYPE_I32);
    av_run_params rp = av_run_default_params();
    rp.want_logits = 1;
    av_trace *t = NULL;
    int T = (int)ids->shape[0];
    REQUIREF(av_trace_from_ids(m, ids->data, (size_t)T, &rp, &t, &err) == 0, "%s: %s", name, err.msg);
    av_tensor lg;
    REQUIRE(av_trace_logits(t, &lg) == 0 && lg.shape[0] == T && lg.shape[1] == logits->shape[1]);
    float dl = h_max_abs_diff(lg.data, logits->data, (size_t)av_tensor_numel(logits)), da = 0;
    int L = n_ref_layers(&ref, AV_ATTN_SELF);
    CHECKF(L == av_trace_n_layers(t, AV_ATTN_SELF) && L > 0, "%s: %d layers, reference %d", name,
           av_trace_n_layers(t, AV_ATTN_SELF), L);
    for (int l = 0; l < L; l++) {
        float d = attn_diff(t, &ref, AV_ATTN_SELF, l);
        CHECKF(d >= 0 && d <= TOL, "%s layer %d: attention differs by %g", name, l, d);
        da = d > da ? d : da;
    }
    CHECKF(dl <= TOL, "%s: logits differ by %g", name, dl);
    printf("# %-10s %2d tokens: max |logit diff| %.2g, max |attention diff| %.2g\n", name, T, dl, da);
    av_trace_free(t);
    av_st_close(&ref);
    av_model_free(m);
}

/* A copy of tiny model `name` in a scratch directory with config key set to value (weights linked). */
__attribute__((unused)) static const char *variant(const char *name, const char *key, json_t *value) {
    static char dir[512];
    char src[2048], dst[1024], cfg_path[600];
    snprintf(dir, sizeof dir, "%s/%s-%s", h_tmpdir(), name, key);
    mkdir(dir, 0755);
    const char *files[] = {"model.safetensors", "model.safetensors.index.json",
                           "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(src, sizeof src, "%s/" TINY_DIR "%s/%s", getcwd(dst, sizeof dst) ? dst : ".", name,
                 files[i]);
        snprintf(dst, sizeof dst, "%s/%s", dir, files[i]);
        if (access(src, R_OK) == 0) {
            unlink(dst);
            if (symlink(src, dst)) return NULL;
        }
    }
    snprintf(cfg_path, sizeof cfg_path, TINY_DIR "%s/config.json", name);
    json_t *cfg = json_load_file(cfg_path, 0, NULL);
    if (!cfg) return NULL;
    json_object_set_new(cfg, key, value);
    snprintf(cfg_path, sizeof cfg_path, "%s/config.json", dir);
    int rc = json_dump_file(cfg, cfg_path, 0);
    json_decref(cfg);
    return rc ? NULL : dir;
}

/* The KV cache: the reference input run in chunks of 3 tokens (each against the cached keys and values of
 * the previous ones) gives the logits of one pass over the whole input, and so does the input one token at a
 * time (as generation runs it: attention panels kept between the steps) in a state whose cache held other
 * tokens at those positions first (the panels of their keys must not be read). Decoder-only models (learned
 * positions, RoPE with sliding windows) and the decoders of encoder-decoders (offset and sinusoidal
 * positions, T5's causal relative buckets, cross-attention). */
__attribute__((unused)) static float chunked_vs_whole(const av_model *m, const av_safetensors *ref,
                                                      av_err *err) {
    const av_tensor *ids = av_st_find(ref, "ids"), *src = av_st_find(ref, "src");
    const av_tensor *in = ids ? ids : av_st_find(ref, "tgt");
    int T = (int)in->shape[0], V = m->vocab_size, stack = ids ? 0 : 1;
    float *whole = malloc(sizeof(float) * (size_t)T * (size_t)V),
          *part = malloc(sizeof(float) * (size_t)T * (size_t)V);
    av_state *s[3] = {NULL, NULL, NULL}, *enc = NULL;
    float worst = -1;
    int32_t *other = malloc(sizeof(int32_t) * (size_t)T); /* the input backwards */
    for (int i = 0; i < T; i++)
        other[i] = ((const int32_t *)in->data)[T - 1 - i];
    for (int i = 0; i < 3; i++)
        if (av_state_new(m, stack, T, 1, &s[i], err)) goto done;
    if (src && (av_state_new(m, 0, (int)src->shape[0], 1, &enc, err) ||
                av_forward_ids(m, enc, src->data, (int)src->shape[0], 0, NULL, err) ||
                av_state_attach(s[0], enc, err) || av_state_attach(s[1], enc, err) ||
                av_state_attach(s[2], enc, err)))
        goto done;
    av_pass pw = {.logits = whole, .logits_all = 1};
    if (av_forward_ids(m, s[0], in->data, T, 0, &pw, err)) goto done;
    for (int p0 = 0; p0 < T; p0 += 3) {
        av_pass pc = {.logits = part + (size_t)p0 * (size_t)V, .logits_all = 1};
        if (av_forward_ids(m, s[1], (const int32_t *)in->data + p0, T - p0 < 3 ? T - p0 : 3, p0, &pc, err))
            goto done;
    }
    float chunked = h_max_abs_diff(whole, part, (size_t)T * (size_t)V);
    for (int p0 = 0; p0 < T; p0++)
        if (av_forward_ids(m, s[2], other + p0, 1, p0, NULL, err)) goto done;
    for (int p0 = 0; p0 < T; p0++) {
        av_pass pc = {.logits = part + (size_t)p0 * (size_t)V, .logits_all = 1};
        if (av_forward_ids(m, s[2], (const int32_t *)in->data + p0, 1, p0, &pc, err)) goto done;
    }
    float stepped = h_max_abs_diff(whole, part, (size_t)T * (size_t)V);
    worst = chunked > stepped ? chunked : stepped;
done:
    for (int i = 0; i < 3; i++)
        av_state_free(s[i]);
    av_state_free(enc);
    free(whole);
    free(part);
    free(other);
    return worst;
}

/* The KV cache test of model `name`: its reference input in chunks of 3, and one token at a time over a cache
 * of other tokens, against one pass, within TOL. */
__attribute__((unused)) static void check_chunks(const char *name) {
    av_err err = {{0}};
    av_model *m = load(name, &err);
    av_safetensors ref;
    REQUIREF(m && open_ref(name, &ref, &err) == 0, "%s: %s", name, err.msg);
    float d = chunked_vs_whole(m, &ref, &err);
    printf("# %-10s chunks of 3, single tokens vs one pass: max |logit diff| %.3g\n", name, d);
    CHECKF(d >= 0 && d <= TOL, "%s: %s %g", name,
           d < 0 ? err.msg : "chunked or single-token logits differ by", d);
    av_st_close(&ref);
    av_model_free(m);
}

#endif
