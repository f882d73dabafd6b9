/* y = x W^T: the dispatcher. Prompts (n >= AV_GEMV_MAX_ROWS + 1 rows of x) go to the path's GEMM
 * (gemm_cpu.c): the AMX split-bf16 tile kernel (gemm_amx.c) for 16/8-bit weights where the CPU has it, the
 * project's packed GEMM (gemm.c) on its AVX-512 / AVX2 / scalar micro-kernel otherwise, or OpenBLAS on the
 * sgemm path (weights dequantized slice by slice into a scratch matrix, single-threaded sgemm per thread:
 * av_kernels_init). Token-by-token generation (a few rows) is matrix-vector work, bound by memory: matvec.c
 * reads each weight row once in its stored form and multiplies it into every row of x while it is in
 * cache. */
#include "gemm.h"
#include "matvec.h"

#include <cblas.h>
#include <stdlib.h>

typedef struct gemm_job {
    const av_tensor *w;
    const float *wf; /* (out, in) F32 weights: the mapping, or the dequantized scratch */
    const float *x;  /* (n, in) */
    float *y;        /* (n, out) */
    float *scratch;  /* (out, in) or NULL */
    int n;
    int64_t in, out;
} gemm_job;

static void dequant_range(void *ctx, int tid, int64_t r0, int64_t r1) {
    const gemm_job *j = ctx;
    av_dequantize_rows(j->w, r0, r1 - r0, j->scratch + r0 * j->in);
}

/* Token rows [m0, m1) against all output features: one single-threaded sgemm. Splitting tokens rather than
 * features measured 1.1-1.4x faster here (features split at 1024 columns alias in cache). */
static void gemm_tokens(void *ctx, int tid, int64_t m0, int64_t m1) {
    const gemm_job *j = ctx;
    int in = (int)j->in, out = (int)j->out;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(m1 - m0), out, in, 1.0f, j->x + m0 * j->in, in,
                j->wf, in, 0.0f, j->y + m0 * j->out, out);
}

/* Output features [r0, r1) for all (few) tokens: used when there are too few tokens to split. */
static void gemm_features(void *ctx, int tid, int64_t r0, int64_t r1) {
    const gemm_job *j = ctx;
    const float *wf = j->wf + r0 * j->in;
    int rows = (int)(r1 - r0), in = (int)j->in;
    if (j->n == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, rows, in, 1.0f, wf, in, j->x, 1, 0.0f, j->y + r0, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->n, rows, in, 1.0f, j->x, in, wf, in, 0.0f,
                    j->y + r0, (int)j->out);
}

/* Whether the AMX split-bf16 kernel takes these products: prompt-sized n, weights large enough that the tile
 * setup pays (measured: below ~256 x 256 the AVX-512 kernel is faster), and no F32 weight. 16-bit and 8-bit
 * weights carry relative rounding of their own, 2^-11 (f16) to 2^-8 (bf16, q8_0): the bf16x3 product's
 * (<= 2^-15) is below it. F32 weights keep exact f32 products. */
static int amx_suits(const av_tensor *const *w, int count, int n) {
    if (n < AV_AMX_MIN_ROWS || count > AV_MATMUL_MANY_MAX) return 0;
    int64_t weights = 0;
    for (int i = 0; i < count; i++) {
        if (w[i]->dtype == AV_DTYPE_F32) return 0;
        weights += w[i]->shape[0] * w[i]->shape[1];
    }
    return weights >= AV_AMX_MIN_WEIGHTS;
}

void av_kernels_init(void) { openblas_set_num_threads(1); }

static int threads_for(int64_t n, int64_t out, int64_t in, int n_threads) {
    return n * out * in > (1 << 18) ? n_threads : 1;
}

/* The sgemm path (and the fallback when the packed GEMM runs out of memory). */
static void matmul_sgemm(float *y, const float *x, const av_tensor *w, int n, float *scratch, int nt) {
    int64_t out = w->shape[0], in = w->shape[1];
    gemm_job j = {w, w->data, x, y, scratch, n, in, out};
    if (w->dtype != AV_DTYPE_F32) {
        av_parallel_for(nt, out, dequant_range, &j);
        j.wf = scratch;
    }
    if (nt > 1 && n >= 32 * nt)
        av_parallel_for(nt, n, gemm_tokens, &j);
    else if (nt > 1 && out >= 64)
        av_parallel_for(nt, out, gemm_features, &j);
    else
        gemm_features(&j, 0, 0, out);
}

void av_matmul_many(float *const *y, const float *x, const av_tensor *const *w, int count, int n,
                    float *scratch, int n_threads) {
    if (count > AV_MATMUL_MANY_MAX) {
        for (int i = 0; i < count; i++)
            av_matmul(y[i], x, w[i], n, scratch, n_threads);
        return;
    }
    av_gemm_path path = av_gemm_path_get();
    int64_t in = w[0]->shape[1], out_total = 0;
    for (int i = 0; i < count; i++)
        out_total += w[i]->shape[0];
    int nt = threads_for(n, out_total, in, n_threads);
    if (n <= AV_GEMV_MAX_ROWS) {
        int sgemv = 0; /* the sgemm path keeps OpenBLAS's sgemv for F32 weights */
        for (int i = 0; i < count && path == AV_GEMM_SGEMM; i++)
            sgemv |= w[i]->dtype == AV_DTYPE_F32;
        if (!sgemv) {
            av_matvec_many(y, x, w, count, n, nt, path);
            return;
        }
        for (int i = 0; i < count; i++)
            if (w[i]->dtype == AV_DTYPE_F32)
                matmul_sgemm(y[i], x, w[i], n, scratch, nt);
            else
                av_matvec_many(&y[i], x, &w[i], 1, n, nt, path);
        return;
    }
    if (path == AV_GEMM_AMX && amx_suits(w, count, n) && av_matmul_bf16x3_many(y, x, w, count, n, nt) == 0)
        return;
    const av_ukernel *uk = av_gemm_ukernel(path);
    if (uk && av_gemm_weights(y, x, w, count, n, nt, uk) == 0) return;
    for (int i = 0; i < count; i++) {
        if (w[i]->dtype != AV_DTYPE_F32 && !scratch) /* no room to dequantize: row by row */
            av_matvec_many(&y[i], x, &w[i], 1, n, nt, path);
        else
            matmul_sgemm(y[i], x, w[i], n, scratch, nt);
    }
}

void av_matmul(float *y, const float *x, const av_tensor *w, int n, float *scratch, int n_threads) {
    av_matmul_many(&y, x, &w, 1, n, scratch, n_threads);
}
