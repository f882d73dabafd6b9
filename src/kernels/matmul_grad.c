/* The reverse of matmul.c: the input gradient of y = x W^T is dx = dy W. Weights of any dtype are expanded
 * into the caller's scratch first (as av_matmul does for prompt-sized inputs); the product is one sgemm per
 * thread over a share of the rows, or of the input features when there are few rows (a single target's
 * gradient through the output head). */
#include "kernels.h"

typedef struct grad_job {
    const av_tensor *w;
    const float *wf; /* (out, in) F32 weights: the mapping or the scratch */
    const float *dy; /* (n, out) */
    float *dx;       /* (n, in) */
    float *scratch;  /* (out, in) or NULL */
    int n, accumulate;
    int64_t in, out;
} grad_job;

static void expand_rows(void *ctx, int tid, int64_t r0, int64_t r1) {
    const grad_job *j = ctx;
    av_dequantize_rows(j->w, r0, r1 - r0, j->scratch + r0 * j->in);
}

/* dx rows [m0, m1) (n, in) = dy rows (n, out) W (out, in) */
static void grad_rows(void *ctx, int tid, int64_t m0, int64_t m1) {
    const grad_job *j = ctx;
    av_gemm_f32(0, 0, (int)(m1 - m0), (int)j->in, (int)j->out, 1.0f, j->dy + m0 * j->out, (int)j->out, j->wf,
                (int)j->in, j->accumulate ? 1.0f : 0.0f, j->dx + m0 * j->in, (int)j->in, 1);
}

/* dx columns [c0, c1) for all rows */
static void grad_cols(void *ctx, int tid, int64_t c0, int64_t c1) {
    const grad_job *j = ctx;
    av_gemm_f32(0, 0, j->n, (int)(c1 - c0), (int)j->out, 1.0f, j->dy, (int)j->out, j->wf + c0, (int)j->in,
                j->accumulate ? 1.0f : 0.0f, j->dx + c0, (int)j->in, 1);
}

void av_matmul_grad(float *dx, const float *dy, const av_tensor *w, int n, float *scratch, int accumulate,
                    int n_threads) {
    int64_t out = w->shape[0], in = w->shape[1];
    int nt = (int64_t)n * out * in > (1 << 18) ? n_threads : 1;
    grad_job j = {w, w->data, dy, dx, scratch, n, accumulate, in, out};
    if (w->dtype != AV_DTYPE_F32) {
        av_parallel_for(nt, out, expand_rows, &j);
        j.wf = scratch;
    }
    if (nt > 1 && n >= 32 * nt)
        av_parallel_for(nt, n, grad_rows, &j);
    else
        av_parallel_for(nt > 1 && in >= 64 * nt ? nt : 1, in, grad_cols, &j);
}
