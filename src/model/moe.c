/* The mixture-of-experts feed-forward (block.h av_moe): Mixtral and Qwen3-MoE, as Hugging Face and llama.cpp
 * compute it. Per token: p = softmax(x W_router^T) over the experts, the n_used largest p (ties: the lower
 * expert), their weights p_e (divided by their sum with norm_topk), and out = sum_e w_e FFN_e(x). Each expert
 * runs once per chunk on the rows routed to it, gathered into a block, so its weights are read (and expanded
 * from their stored type) once per chunk. */
#include "forward.h"
#include "kernels/sample.h"

#include <string.h>

enum { MOE_MAX_USED = 64 }; /* experts per token; the loaders refuse more */

void av_ffn_moe(av_state *s, const av_moe *moe, const float *in, int n, float *out) {
    int dim = s->st->cfg.dim, n_exp = moe->n_experts, n_used = moe->n_used;
    size_t row = sizeof(float) * (size_t)dim;
    int32_t sel[MOE_MAX_USED]; /* one token's experts, largest probability first (ties: the lower expert) */
    float w[MOE_MAX_USED];     /* and their weights */
    av_linear_apply(s->moe_p, in, &moe->router, n, s->wscratch, s->n_threads); /* (n, n_exp) logits */
    for (int i = 0; i < n; i++)
        av_softmax(s->moe_p + (size_t)i * (size_t)n_exp, n_exp);
    /* each token's weight per expert, 0 when not chosen, in place of its probabilities */
    for (int i = 0; i < n; i++) {
        float *p = s->moe_p + (size_t)i * (size_t)n_exp;
        av_top_k(p, n_exp, n_used, sel, w);
        float sum = 0;
        for (int k = 0; moe->norm_topk && k < n_used; k++)
            sum += w[k];
        for (int k = 0; moe->norm_topk && k < n_used; k++)
            w[k] /= sum;
        memset(p, 0, sizeof(float) * (size_t)n_exp);
        for (int k = 0; k < n_used; k++)
            p[sel[k]] = w[k];
    }
    memset(out, 0, row * (size_t)n);
    for (int e = 0; e < n_exp; e++) {
        int n_e = 0;
        for (int i = 0; i < n; i++)
            if (s->moe_p[(size_t)i * (size_t)n_exp + (size_t)e] != 0.0f) {
                memcpy(s->moe_x + (size_t)n_e * (size_t)dim, in + (size_t)i * (size_t)dim, row);
                s->moe_rows[n_e++] = i;
            }
        if (!n_e) continue;
        av_ffn_dense(s, &moe->experts[e], s->moe_x, n_e, s->moe_y); /* (n_e, dim) */
        for (int r = 0; r < n_e; r++) {
            int i = s->moe_rows[r];
            float we = s->moe_p[(size_t)i * (size_t)n_exp + (size_t)e], *o = out + (size_t)i * (size_t)dim;
            const float *y = s->moe_y + (size_t)r * (size_t)dim;
            for (int d = 0; d < dim; d++)
                o[d] += we * y[d];
        }
    }
}
