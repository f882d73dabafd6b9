/* The optional parts of the one block against independent PyTorch references (scripts/make_block_extras.py,
 * tests/fixtures/extras/): Qwen3's q/k norms, Gemma 2's attention and final-logit soft-capping, Gemma 2/3's
 * extra output norms, Gemma 3's per-layer RoPE base with a local sliding window, Gemma's embedding scale and
 * (1 + w) norms, and all of them together. Each model is built here from its tensors the way a family file
 * maps a checkpoint; each is checked for logits and every layer's attention, lazily too, and in KV-cache
 * chunks. */
#include "harness.h"
#include "io/io.h"
#include "model/model.h"

#define DIR "tests/fixtures/extras/"
#define TOL 1e-4f

static const av_tensor *find(const av_safetensors *f, const char *fmt, ...) AV_PRINTF(2, 3);
static const av_tensor *find(const av_safetensors *f, const char *fmt, ...) {
    char name[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return av_st_find(f, name);
}

/* The block extras of layer l from the fixture's tensors and per-layer config arrays. */
static void set_block(av_block *B, const av_safetensors *f, const json_t *cfg, int l) {
    const struct {
        av_tensor *dst;
        const char *name;
    } ts[] = {{&B->attn_norm.w, "attn_norm"},
              {&B->attn.q.w, "q"},
              {&B->attn.k.w, "k"},
              {&B->attn.v.w, "v"},
              {&B->attn.o.w, "o"},
              {&B->q_norm.w, "q_norm"},
              {&B->k_norm.w, "k_norm"},
              {&B->attn_out_norm.w, "attn_out_norm"},
              {&B->ffn_norm.w, "ffn_norm"},
              {&B->ffn.gate.w, "gate"},
              {&B->ffn.up.w, "up"},
              {&B->ffn.down.w, "down"},
              {&B->ffn_out_norm.w, "ffn_out_norm"}};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
        const av_tensor *t = find(f, "layers.%d.%s", l, ts[i].name);
        if (t) *ts[i].dst = *t;
    }
    B->attn_scale = (float)json_number_value(json_array_get(json_object_get(cfg, "attn_scale"), (size_t)l));
    B->attn_softcap =
        (float)json_number_value(json_array_get(json_object_get(cfg, "attn_softcap"), (size_t)l));
    B->window = (int)json_integer_value(json_array_get(json_object_get(cfg, "window"), (size_t)l));
    B->rope_theta = (float)json_number_value(json_array_get(json_object_get(cfg, "rope_theta"), (size_t)l));
}

static av_model *build(const av_safetensors *f, const json_t *cfg, av_err *err) {
    av_model *m = av_model_new();
    int L = (int)json_array_size(json_object_get(cfg, "window"));
#define I(key) ((int)json_integer_value(json_object_get(cfg, key)))
#define N(key) ((float)json_number_value(json_object_get(cfg, key)))
    av_llama_cfg c = {I("dim"),      I("hidden"), L,        I("n_heads"), I("n_kv_heads"),
                      I("head_dim"), N("eps"),    10000.0f, AV_ROPE_HALF};
    m->vocab_size = I("vocab");
    m->max_seq_len = 64;
    snprintf(m->name, sizeof m->name, "extras");
    m->format = AV_MODEL_FORMAT_HF;
    if (av_llama_init(m, &c, err) ||
        av_act_parse(json_string_value(json_object_get(cfg, "act")), &m->stacks[0].cfg.act)) {
        av_model_free(m);
        return NULL;
    }
    av_stack *st = &m->stacks[0];
    st->cfg.norm_offset = N("norm_offset");
    st->emb.scale = N("emb_scale");
    m->head.softcap = N("final_softcap");
    m->tok_emb = *av_st_find(f, "embed");
    st->final_norm.w = *av_st_find(f, "norm");
    m->head.out.w = av_st_find(f, "lm_head") ? *av_st_find(f, "lm_head") : m->tok_emb;
    m->head.n_out = m->vocab_size;
    for (int l = 0; l < L; l++)
        set_block(&st->blocks[l], f, cfg, l);
#undef I
#undef N
    if (av_model_check(m, err)) {
        av_model_free(m);
        return NULL;
    }
    return m;
}

/* Max |attention - reference| over every layer of t. */
static float attn_diff(const av_trace *t, const av_safetensors *f) {
    float worst = 0;
    av_err err = {{0}};
    for (int l = 0; l < av_trace_n_layers(t, AV_ATTN_SELF); l++) {
        av_attn_view v;
        const av_tensor *r = find(f, "attn.self.%d", l);
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

static void check_variant(const char *name) {
    char path[256];
    snprintf(path, sizeof path, DIR "%s.safetensors", name);
    av_safetensors f;
    av_err err = {{0}};
    REQUIREF(av_st_open(path, &f, &err) == 0, "%s", err.msg);
    json_t *cfg = json_loads(av_st_meta(&f, "config"), 0, NULL);
    av_model *m = cfg ? build(&f, cfg, &err) : NULL;
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
