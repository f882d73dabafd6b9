/* The reverse of attention.c: gradients of the queries, keys and values of grouped-query attention from the
 * gradient of its output, given the probabilities the forward pass computed (P, with exact zeros wherever a
 * key was masked, so masks, windows and the relative-position bias need nothing here). Per head h of kv
 * group g, with O = P V and P = softmax(S), S = softcap(scale Q K^T) + bias:
 *
 *     dP = dO V^T            dV += P^T dO
 *     dS = P * (dP - rowsum(P * dP))           (* soft-cap slope 1 - (S' / c)^2, S' recomputed)
 *     dQ = scale dS K        dK += scale dS^T Q
 *
 * Threads split the (gradient copy, kv group) pairs, so the heads that share keys and values add into them
 * on one thread. Attention x gradient (Hao et al. 2021) comes for free: sum_i P_ij dP_ij per key j. */
#include "kernels.h"

#include <math.h>
#include <stdlib.h>

typedef struct grad_job {
    const av_attn_grad_args *g;
    int failed;
} grad_job;

/* dS in place of dP (n_q, n_k) for head h, and the attention x gradient column sums (n_k) when asked. */
static void softmax_back(const av_attn_args *a, const float *p, float *ds, float *axg) {
    for (int i = 0; i < a->n_q; i++) {
        const float *pr = p + (size_t)i * (size_t)a->probs_ld;
        float *dr = ds + (size_t)i * (size_t)a->n_k;
        double dot = 0;
        for (int j = 0; j < a->n_k; j++)
            dot += (double)pr[j] * dr[j];
        for (int j = 0; j < a->n_k; j++) {
            if (axg) axg[j] += pr[j] * dr[j];
            dr[j] = pr[j] * (float)(dr[j] - dot);
        }
    }
}

/* Multiplies dS (n_q, n_k) by the soft-cap's slope at the recomputed capped scores (scratch s). */
static void softcap_back(const av_attn_args *a, int h, float *ds, float *s) {
    int hs = a->head_dim, kv = h / (a->n_heads / a->n_kv_heads);
    /* s (n_q, n_k) = scale Q_h K_g^T, then capped */
    av_gemm_f32(0, 1, a->n_q, a->n_k, hs, a->scale, a->q + (size_t)h * (size_t)hs, a->q_stride,
                a->k + (size_t)kv * (size_t)hs, a->k_stride, 0.0f, s, a->n_k, 1);
    size_t n = (size_t)a->n_q * (size_t)a->n_k;
    for (size_t i = 0; i < n; i++)
        s[i] = a->softcap * tanhf(s[i] / a->softcap);
    av_softcap_grad(ds, s, n, a->softcap);
}

/* Heads of kv group kv for gradient copy c; dp, s: (n_q, n_k) scratch. */
static void group_grad(const av_attn_grad_args *g, int c, int kv, float *dp, float *s) {
    const av_attn_args *a = g->a;
    int hs = a->head_dim, per = a->n_heads / a->n_kv_heads, q_dim = a->n_heads * hs,
        kv_dim = a->n_kv_heads * hs;
    const float *dout = g->dout + (size_t)c * (size_t)a->n_q * (size_t)q_dim;
    float *dq = g->dq + (size_t)c * (size_t)a->n_q * (size_t)q_dim;
    float *dk = g->dk + (size_t)c * (size_t)a->n_k * (size_t)kv_dim + (size_t)kv * (size_t)hs;
    float *dv = g->dv + (size_t)c * (size_t)a->n_k * (size_t)kv_dim + (size_t)kv * (size_t)hs;
    const float *k = a->k + (size_t)kv * (size_t)hs, *v = a->v + (size_t)kv * (size_t)hs;
    for (int h = kv * per; h < (kv + 1) * per; h++) {
        const float *p = a->probs + (size_t)h * a->probs_head_stride; /* (n_q, n_k), ld probs_ld */
        const float *doh = dout + (size_t)h * (size_t)hs, *qh = a->q + (size_t)h * (size_t)hs;
        float beta = h > kv * per ? 1.0f : 0.0f; /* the group's first head writes dK, dV; the others add */
        float *axg = g->attn_x_grad
                         ? g->attn_x_grad + ((size_t)c * (size_t)a->n_heads + (size_t)h) * (size_t)a->n_k
                         : NULL;
        /* dP (n_q, n_k) = dO_h (n_q, hs) V^T;  dV (n_k, hs) += P^T (n_k, n_q) dO_h */
        av_gemm_f32(0, 1, a->n_q, a->n_k, hs, 1.0f, doh, q_dim, v, a->v_stride, 0.0f, dp, a->n_k, 1);
        av_gemm_f32(1, 0, a->n_k, hs, a->n_q, 1.0f, p, a->probs_ld, doh, q_dim, beta, dv, kv_dim, 1);
        softmax_back(a, p, dp, axg);
        if (a->softcap > 0) softcap_back(a, h, dp, s);
        /* dQ_h (n_q, hs) = scale dS K;  dK (n_k, hs) += scale dS^T (n_k, n_q) Q_h */
        av_gemm_f32(0, 0, a->n_q, hs, a->n_k, a->scale, dp, a->n_k, k, a->k_stride, 0.0f,
                    dq + (size_t)h * (size_t)hs, q_dim, 1);
        av_gemm_f32(1, 0, a->n_k, hs, a->n_q, a->scale, dp, a->n_k, qh, a->q_stride, beta, dk, kv_dim, 1);
    }
}

static void grad_units(void *ctx, int tid, int64_t u0, int64_t u1) {
    grad_job *j = ctx;
    const av_attn_args *a = j->g->a;
    size_t n = (size_t)a->n_q * (size_t)a->n_k;
    float *dp = malloc(sizeof(float) * n * (a->softcap > 0 ? 2 : 1)); /* dP, then the capped scores */
    if (!dp) {
        j->failed = 1;
        return;
    }
    for (int64_t u = u0; u < u1; u++)
        group_grad(j->g, (int)(u / a->n_kv_heads), (int)(u % a->n_kv_heads), dp, dp + n);
    free(dp);
}

int av_attention_grad(const av_attn_grad_args *g, int n_threads) {
    const av_attn_args *a = g->a;
    grad_job j = {g, 0};
    int64_t units = (int64_t)g->G * a->n_kv_heads, work = (int64_t)a->n_q * a->n_k * a->n_heads * g->G;
    if (g->attn_x_grad)
        for (size_t i = 0; i < (size_t)g->G * (size_t)a->n_heads * (size_t)a->n_k; i++)
            g->attn_x_grad[i] = 0.0f;
    av_parallel_for(work > 32768 ? n_threads : 1, units, grad_units, &j);
    return j.failed ? -1 : 0;
}
