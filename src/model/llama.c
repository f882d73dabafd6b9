/* The Llama layout on the one block, shared by the llama2.c, GGUF and Hugging Face llama loaders: a causal
 * stack of pre-RMSNorm blocks with RoPE, grouped-query attention and a SwiGLU feed-forward, a final norm and
 * a classifier (tied to the token embedding unless stored). Mistral and Qwen2 add data (windows, biases). */
#include "model.h"

#include <math.h>

const char *const av_llama_gguf_layer_names[AV_LLAMA_LAYER_WEIGHTS] = {
    "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_down", "ffn_up"};
const char *const av_llama_hf_layer_names[AV_LLAMA_LAYER_WEIGHTS] = {
    "input_layernorm",  "self_attn.q_proj", "self_attn.k_proj",
    "self_attn.v_proj", "self_attn.o_proj", "post_attention_layernorm",
    "mlp.gate_proj",    "mlp.down_proj",    "mlp.up_proj"};

int av_llama_init(av_model *m, const av_llama_cfg *c, av_err *err) {
    int head_dim = c->head_dim;
    if (!head_dim) {
        if (c->dim % c->n_heads)
            return av_errf(err, "dim %d is not a multiple of %d heads", c->dim, c->n_heads);
        head_dim = c->dim / c->n_heads;
    }
    m->family = AV_FAMILY_LLAMA;
    m->n_stacks = 1;
    av_stack *st = &m->stacks[0];
    st->cfg = (av_stack_cfg){.dim = c->dim,
                             .n_heads = c->n_heads,
                             .n_kv_heads = c->n_kv_heads,
                             .head_dim = head_dim,
                             .hidden = c->hidden,
                             .norm = AV_NORM_RMS,
                             .eps = c->eps,
                             .act = AV_ACT_SILU,
                             .causal = 1,
                             .rope = c->rope};
    if (av_stack_alloc(st, c->n_layers, err)) return -1;
    for (int l = 0; l < c->n_layers; l++) {
        st->blocks[l].attn_scale = 1.0f / sqrtf((float)head_dim);
        st->blocks[l].rope_theta = c->rope_theta;
    }
    return 0;
}

int av_llama_take_layers(av_model *m, av_llama_take_fn take, const void *ctx, av_err *err) {
    av_stack *st = &m->stacks[0];
    if (!m->head.out.w.data) m->head.out.w = m->tok_emb;
    m->head.n_out = m->vocab_size;
    for (int l = 0; l < st->n_layers; l++) {
        av_tensor *w[AV_LLAMA_LAYER_WEIGHTS] = AV_LLAMA_LAYER_WEIGHT_PTRS(&st->blocks[l]);
        for (int k = 0; k < AV_LLAMA_LAYER_WEIGHTS; k++)
            if (take(ctx, l, k, w[k], err)) return -1;
    }
    return 0;
}
