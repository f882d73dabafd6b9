/* Norm-based attention (Kobayashi et al. 2020): the value norms || v W_h^T || of every head and token.
 * || v W_h^T ||^2 = v G_h v^T with G_h = W_h^T W_h (head_dim x head_dim), W_h = W_o[:, h*hs:(h+1)*hs]: one
 * Gram matrix per head from the weights, then a head_dim^2 quadratic form per token, instead of projecting
 * every value vector to the model width (dim/head_dim times fewer FLOPs per token).
 *
 * The Gram matrices depend on the weights alone: each layer's are computed the first time a run asks for them
 * and kept with the stack until the model is freed (av_stack_vnorm_gram), so repeated runs of one loaded
 * model (the server, corpus, role probes, a lazy run's chunks) do not pay them again; at 32 tokens of the 1.1
 * B shape they were ~14% of the forward. The threads split the heads, never the sum over W_o's rows, so the
 * bits do not depend on the thread count (a trace is the same for any --threads). */
#include "block.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>

enum { GRAM_ROWS = 256 }; /* rows of W_o converted to f32 at a time for dtypes not read in place */

typedef struct gram_job {
    const av_tensor *wo; /* (dim, n_heads * hs) */
    int hs, q_dim;
    float *rows; /* (n, q_dim): rows [r0, r0 + n) of W_o in f32, or NULL: W_o read in place */
    int64_t r0;
    int n;
    float *gram; /* (n_heads, hs, hs) */
    int failed;
} gram_job;

/* Rows [r0 + i0, r0 + i1) of W_o into f32. */
static void gram_convert(void *ctx, int tid, int64_t i0, int64_t i1) {
    const gram_job *j = ctx;
    av_dequantize_rows(j->wo, j->r0 + i0, i1 - i0, j->rows + i0 * j->q_dim);
}

/* Heads [h0, h1): G_h (+)= W_h^T W_h over the job's rows (added when r0 > 0). */
static void gram_add(void *ctx, int tid, int64_t h0, int64_t h1) {
    gram_job *j = ctx;
    size_t hs2 = (size_t)j->hs * (size_t)j->hs;
    float beta = j->r0 > 0 ? 1.0f : 0.0f, *g = j->gram + (size_t)h0 * hs2;
    if (!j->rows) {
        if (av_gram_heads(j->wo, j->r0, j->n, (int)h0, (int)(h1 - h0), j->hs, beta, g)) j->failed = 1;
        return;
    }
    for (int64_t h = h0; h < h1; h++, g += hs2)
        av_gram_f32(j->hs, j->n, j->rows + h * j->hs, j->q_dim, beta, g, j->hs);
}

int av_attn_gram(const av_tensor *wo, int n_heads, int head_dim, int n_threads, float *gram, av_err *err) {
    int dim = (int)wo->shape[0];
    gram_job j = {.wo = wo, .hs = head_dim, .q_dim = (int)wo->shape[1], .gram = gram};
    int threads = (int64_t)dim * head_dim * head_dim * n_heads > (1 << 20) ? n_threads : 1;
    /* F32 and F16 rows are read in place by the GEMM path's kernels, all rows at once */
    int in_place =
        (wo->dtype == AV_DTYPE_F32 || wo->dtype == AV_DTYPE_F16) && av_gemm_path_get() != AV_GEMM_SGEMM;
    float *rows =
        in_place ? NULL : malloc(sizeof(float) * GRAM_ROWS * (size_t)j.q_dim); /* (GRAM_ROWS, q_dim) */
    if (!in_place && !rows) return av_errf(err, "out of memory for the norm-based attention");
    j.rows = rows;
    for (int r0 = 0; r0 < dim && !j.failed; r0 += in_place ? dim : GRAM_ROWS) {
        j.r0 = r0;
        j.n = in_place ? dim : dim - r0 < GRAM_ROWS ? dim - r0 : GRAM_ROWS;
        if (rows) av_parallel_for(threads, j.n, gram_convert, &j);
        av_parallel_for(threads, n_heads, gram_add, &j);
    }
    free(rows);
    return j.failed ? av_errf(err, "out of memory for the norm-based attention") : 0;
}

const float *av_stack_vnorm_gram(const av_stack *st, int layer, int n_threads, av_err *err) {
    float *_Atomic *slot = &st->vnorm_grams[layer];
    float *g = atomic_load(slot), *none = NULL;
    if (g) return g;
    const av_stack_cfg *c = &st->cfg;
    g = malloc(sizeof(float) * (size_t)c->n_heads * (size_t)c->head_dim * (size_t)c->head_dim);
    if (!g) return av_errf(err, "out of memory for the norm-based attention"), NULL;
    if (av_attn_gram(&st->blocks[layer].attn.o.w, c->n_heads, c->head_dim, n_threads, g, err)) {
        free(g);
        return NULL;
    }
    if (!atomic_compare_exchange_strong(slot, &none,
                                        g)) { /* another run kept its copy first: the same bits */
        free(g);
        g = none;
    }
    return g;
}

typedef struct vnorm_job {
    const float *v; /* (n, v_stride) */
    const float *gram;
    int v_stride, n_heads, n_kv_heads, hs, T, t0;
    float *vnorm; /* (n_heads, T) */
    int failed;
} vnorm_job;

/* vnorm for value rows [i0, i1), all heads. */
static void vnorm_rows(void *ctx, int tid, int64_t i0, int64_t i1) {
    vnorm_job *j = ctx;
    int n = (int)(i1 - i0), hs = j->hs;
    float *u = malloc(sizeof(float) * (size_t)n * (size_t)hs); /* (n, hs) = V_h G_h */
    if (!u) {
        j->failed = 1;
        return;
    }
    for (int h = 0; h < j->n_heads; h++) {
        const float *v =
            j->v + (size_t)i0 * (size_t)j->v_stride + (size_t)(h / (j->n_heads / j->n_kv_heads)) * (size_t)hs;
        av_gemm_f32(0, 0, n, hs, hs, 1.0f, v, j->v_stride, j->gram + (size_t)h * (size_t)hs * (size_t)hs, hs,
                    0.0f, u, hs, 1);
        for (int i = 0; i < n; i += 4) { /* 4 rows' sums side by side: 4 dependency chains in flight */
            const float *ur[4], *vr[4];
            for (int r = 0; r < 4; r++) { /* rows past n repeat the last one; never stored */
                int row = i + r < n ? i + r : n - 1;
                ur[r] = u + (size_t)row * (size_t)hs, vr[r] = v + (size_t)row * (size_t)j->v_stride;
            }
            double s0 = 0, s1 = 0, s2 = 0, s3 = 0; /* (named: -O2 kept an array of them in memory) */
            for (int d = 0; d < hs; d++) {
                s0 += (double)ur[0][d] * vr[0][d];
                s1 += (double)ur[1][d] * vr[1][d];
                s2 += (double)ur[2][d] * vr[2][d];
                s3 += (double)ur[3][d] * vr[3][d];
            }
            double ss[4] = {s0, s1, s2, s3};
            for (int r = 0; r < 4 && i + r < n; r++)
                j->vnorm[(size_t)h * (size_t)j->T + (size_t)(j->t0 + (int)i0 + i + r)] =
                    (float)sqrt(ss[r] > 0 ? ss[r] : 0);
        }
    }
    free(u);
}

int av_attn_vnorm(const float *v, int v_stride, const float *gram, int n_heads, int n_kv_heads, int head_dim,
                  int n, float *vnorm, int T, int t0, int n_threads, av_err *err) {
    vnorm_job j = {v, gram, v_stride, n_heads, n_kv_heads, head_dim, T, t0, vnorm, 0};
    int64_t work = (int64_t)n * head_dim * head_dim * n_heads;
    av_parallel_for(work > (1 << 20) ? n_threads : 1, n, vnorm_rows, &j);
    return j.failed ? av_errf(err, "out of memory for the norm-based attention") : 0;
}
