/* The tiny decoders of tests/fixtures/extras/ (scripts/make_block_extras.py) built in C from their tensors,
 * the way a family file maps a checkpoint onto the one block: shared by test_block_extras.c (forward) and
 * test_attrib.c (backward and attribution). */
#ifndef AV_TEST_EXTRAS_MODEL_H
#define AV_TEST_EXTRAS_MODEL_H

#include "io/io.h"
#include "model/model.h"

#include <stdarg.h>

static const av_tensor *extras_find(const av_safetensors *f, const char *fmt, ...) AV_PRINTF(2, 3);
static const av_tensor *extras_find(const av_safetensors *f, const char *fmt, ...) {
    char name[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return av_st_find(f, name);
}

/* The block extras of layer l from the fixture's tensors and per-layer config arrays. */
static void extras_set_block(av_block *B, const av_safetensors *f, const json_t *cfg, int l) {
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
        const av_tensor *t = extras_find(f, "layers.%d.%s", l, ts[i].name);
        if (t) *ts[i].dst = *t;
    }
    B->attn_scale = (float)json_number_value(json_array_get(json_object_get(cfg, "attn_scale"), (size_t)l));
    B->attn_softcap =
        (float)json_number_value(json_array_get(json_object_get(cfg, "attn_softcap"), (size_t)l));
    B->window = (int)json_integer_value(json_array_get(json_object_get(cfg, "window"), (size_t)l));
    B->rope_theta = (float)json_number_value(json_array_get(json_object_get(cfg, "rope_theta"), (size_t)l));
}

static av_model *extras_build(const av_safetensors *f, const json_t *cfg, av_err *err) {
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
        extras_set_block(&st->blocks[l], f, cfg, l);
#undef I
#undef N
    if (av_model_check(m, err)) {
        av_model_free(m);
        return NULL;
    }
    return m;
}

#endif
