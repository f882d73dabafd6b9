/* The Llama layout on the one block, shared by the llama2.c, GGUF and Hugging Face llama loaders: a causal
 * stack of pre-RMSNorm blocks with RoPE, grouped-query attention and a SwiGLU feed-forward, a final norm and
 * a classifier (tied to the token embedding unless stored). Mistral and Qwen2 add data (windows, biases). */
#include "model.h"

#include <math.h>

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
