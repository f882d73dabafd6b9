/* y = x W^T on OpenBLAS. F32 weights go straight to sgemm from the mapping. Other types are dequantized
 * into a scratch matrix (split over threads) when there are enough rows to amortize it, or multiplied
 * row by row (matrix-vector, split over output rows) during token-by-token generation. */
#include "kernels.h"

#include <cblas.h>
#include <stdlib.h>

typedef struct dequant_job {
    const av_tensor *w;
    float *dst; /* (out, in) */
    int64_t cols;
} dequant_job;

static void dequant_range(void *ctx, int tid, int64_t start, int64_t end) {
    dequant_job *j = ctx;
    av_dequantize_rows(j->w, start, end - start, j->dst + start * j->cols);
}

typedef struct matvec_job {
    const av_tensor *w;
    const float *x; /* (n, in) */
    float *y;       /* (n, out) */
    int n;
    int64_t in, out;
} matvec_job;

static void matvec_range(void *ctx, int tid, int64_t start, int64_t end) {
    matvec_job *j = ctx;
    enum { ROWS = 16 };
    float *buf = malloc(sizeof(float) * (size_t)(ROWS * j->in)); /* (ROWS, in) */
    if (!buf) return;
    for (int64_t r0 = start; r0 < end; r0 += ROWS) {
        int64_t nr = end - r0 < ROWS ? end - r0 : ROWS;
        av_dequantize_rows(j->w, r0, nr, buf);
        for (int t = 0; t < j->n; t++) {
            const float *xt = j->x + (size_t)t * (size_t)j->in;
            for (int64_t r = 0; r < nr; r++) {
                const float *wr = buf + r * j->in;
                float acc = 0;
                for (int64_t k = 0; k < j->in; k++) acc += wr[k] * xt[k];
                j->y[(size_t)t * (size_t)j->out + (size_t)(r0 + r)] = acc;
            }
        }
    }
    free(buf);
}

void av_matmul(float *y, const float *x, const av_tensor *w, int n, float *scratch, int n_threads) {
    int64_t out = w->shape[0], in = w->shape[1];
    const float *wf = w->data;
    if (w->dtype != AV_DTYPE_F32) {
        if (n < 8 || !scratch) {
            matvec_job j = {w, x, y, n, in, out};
            av_parallel_for(n_threads, out, matvec_range, &j);
            return;
        }
        dequant_job j = {w, scratch, in};
        av_parallel_for(n_threads, out, dequant_range, &j);
        wf = scratch;
    }
    if (n == 1) {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)out, (int)in, 1.0f, wf, (int)in, x, 1, 0.0f, y, 1);
    } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, (int)out, (int)in, 1.0f, x, (int)in, wf, (int)in,
                    0.0f, y, (int)out);
    }
}
