/* The optional parts of the one block against independent PyTorch references (scripts/make_block_extras.py,
 * tests/fixtures/extras/): Qwen3's q/k norms, Gemma 2's attention and final-logit soft-capping, Gemma 2/3's
 * extra output norms, Gemma 3's per-layer RoPE base with a local sliding window, Gemma's embedding scale and
 * (1 + w) norms, and all of them together. Each model is built here from its tensors the way a family file
 * maps a checkpoint; each is checked for logits and every layer's attention, lazily too, and in KV-cache
 * chunks. */
#include "extras_model.h"
#include "harness.h"

#define DIR "tests/fixtures/extras/"
#define TOL 1e-4f

/* Max |attention - reference| over every layer of t. */
static float attn_diff(const av_trace *t, const av_safetensors *f) {
    float worst = 0;
    av_err err = {{0}};
    for (int l = 0; l < av_trace_n_layers(t, AV_ATTN_SELF); l++) {
        av_attn_view v;
        const av_tensor *r = extras_find(f, "attn.self.%d", l);
        if (!r || av_trace_attn(t, AV_ATTN_SELF, l, &v, &err)) return INFINITY;
        float d = h_max_abs_diff(v.data, r->data, (size_t)av_tensor_numel(r));
        worst = d > worst ? d : worst;
    }
    return worst;
}

/* Logits of ids in chunks of 4 against the KV cache. */
static int chunked_logits(const av_model *m, const int32_t *ids, int T, float *out, av_err *err) {
    av_state *s = NULL;
    int rc = av_state_new(m, 0, T, 1, &s, err);
    for (int p0 = 0; !rc && p0 < T; p0 += 4) {
        av_pass p = {.logits = out + (size_t)p0 * (size_t)m->vocab_size, .logits_all = 1};
        rc = av_forward_ids(m, s, ids + p0, T - p0 < 4 ? T - p0 : 4, p0, &p, err);
    }
    av_state_free(s);
    return rc;
}

/* Logits of ids in one chunk; with keep_resid the pass also keeps every layer's residual stream, which makes
 * each layer add its feed-forward output to x itself (no deferral into the next layer's norm). */
static int logits_of(const av_model *m, const int32_t *ids, int T, float *out, int keep_resid, av_err *err) {
    int L = m->stacks[0].n_layers;
    float **resid = calloc((size_t)L + 1, sizeof *resid),
          *buf = malloc(sizeof(float) * (size_t)(L + 1) * (size_t)T * (size_t)m->stacks[0].cfg.dim);
    for (int l = 0; l <= L; l++)
        resid[l] = buf + (size_t)l * (size_t)T * (size_t)m->stacks[0].cfg.dim;
    av_state *s = NULL;
    av_pass p = {.logits = out, .logits_all = 1, .resid = keep_resid ? resid : NULL};
    int rc = av_state_new(m, 0, T, 2, &s, err) || av_forward_ids(m, s, ids, T, 0, &p, err);
    av_state_free(s);
    free(buf), free(resid);
    return rc;
}

static void check_variant(const char *name) {
    char path[256];
    snprintf(path, sizeof path, DIR "%s.safetensors", name);
    av_safetensors f;
    av_err err = {{0}};
    REQUIREF(av_st_open(path, &f, &err) == 0, "%s", err.msg);
    json_t *cfg = json_loads(av_st_meta(&f, "config"), 0, NULL);
    av_model *m = cfg ? extras_build(&f, cfg, &err) : NULL;
    REQUIREF(m, "%s: %s", name, err.msg);
    const av_tensor *ids = av_st_find(&f, "ids"), *logits = av_st_find(&f, "logits");
    int T = (int)ids->shape[0];
    av_run_params rp = av_run_default_params();
    rp.want_logits = 1;
    av_trace *full = NULL, *lazy = NULL;
    REQUIREF(av_trace_from_ids(m, ids->data, (size_t)T, &rp, &full, &err) == 0, "%s: %s", name, err.msg);
    rp.lazy = 1;
    REQUIREF(av_trace_from_ids(m, ids->data, (size_t)T, &rp, &lazy, &err) == 0, "%s: %s", name, err.msg);
    av_tensor lg;
    REQUIRE(av_trace_logits(full, &lg) == 0);
    float dl = h_max_abs_diff(lg.data, logits->data, (size_t)av_tensor_numel(logits));
    float da = attn_diff(full, &f), dz = attn_diff(lazy, &f);
    float *chunked = malloc(sizeof(float) * (size_t)av_tensor_numel(logits));
    /* the feed-forward's residual add deferred into the next layer's RMSNorm (av_stack_run) gives the bits of
     * the add done in its own layer */
    float *kept = malloc(sizeof(float) * (size_t)av_tensor_numel(logits));
    REQUIREF(logits_of(m, ids->data, T, chunked, 0, &err) == 0 &&
                 logits_of(m, ids->data, T, kept, 1, &err) == 0,
             "%s", err.msg);
    CHECKF(memcmp(chunked, kept, sizeof(float) * (size_t)av_tensor_numel(logits)) == 0,
           "%s: logits differ when the feed-forward's residual add waits for the next layer's norm", name);
    free(kept);
    REQUIREF(chunked_logits(m, ids->data, T, chunked, &err) == 0, "%s", err.msg);
    float dc = h_max_abs_diff(chunked, logits->data, (size_t)av_tensor_numel(logits));
    printf("# %-14s max |diff| vs PyTorch: logits %.2g, attention %.2g, lazy attention %.2g, chunked logits "
           "%.2g\n",
           name, dl, da, dz, dc);
    CHECKF(dl <= TOL && da <= TOL && dz <= TOL && dc <= TOL,
           "%s: logits %g, attention %g, lazy %g, chunked %g differ from the reference", name, dl, da, dz,
           dc);
    free(chunked);
    av_trace_free(full);
    av_trace_free(lazy);
    av_model_free(m);
    json_decref(cfg);
    av_st_close(&f);
}

static void test_base_head_size_apart_from_dim(void) { check_variant("base"); }
static void test_qk_norms_qwen3(void) { check_variant("qk_norm"); }
static void test_attention_softcap_gemma2(void) { check_variant("attn_softcap"); }
static void test_final_logit_softcap_gemma2(void) { check_variant("final_softcap"); }
static void test_sandwich_norms_gemma2(void) { check_variant("sandwich"); }
static void test_rope_base_and_window_per_layer_gemma3(void) { check_variant("rope_per_layer"); }
static void test_embedding_scale_gemma(void) { check_variant("emb_scale"); }
static void test_norm_offset_gemma(void) { check_variant("norm_offset"); }
static void test_all_together(void) { check_variant("gemma"); }

int main(void) {
    RUN(test_base_head_size_apart_from_dim);
    RUN(test_qk_norms_qwen3);
    RUN(test_attention_softcap_gemma2);
    RUN(test_final_logit_softcap_gemma2);
    RUN(test_sandwich_norms_gemma2);
    RUN(test_rope_base_and_window_per_layer_gemma3);
    RUN(test_embedding_scale_gemma);
    RUN(test_norm_offset_gemma);
    RUN(test_all_together);
    return h_exit_code();
}
