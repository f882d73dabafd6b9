/* y = x W^T: the dispatcher. Prompts (n >= AV_GEMV_MAX_ROWS + 1 rows of x) go to the path's GEMM
 * (gemm_cpu.c): the AMX split-bf16 tile kernel (gemm_amx.c) for 16/8-bit weights where the CPU has it, the
 * project's packed GEMM (gemm.c) on its AVX-512 / AVX2 / scalar micro-kernel otherwise, or OpenBLAS on the
 * sgemm path (weights dequantized slice by slice into a scratch matrix, single-threaded sgemm per thread:
 * av_kernels_init). Token-by-token generation (a few rows) is matrix-vector work, bound by memory: each
 * weight row is converted and dotted with every row of x while it is in cache. */
#include "gemm.h"

#include <cblas.h>
#include <stdlib.h>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

/* sum a[k] b[k]: four 8-wide accumulators where AVX2 + FMA are built in (token-by-token generation is one
 * such dot product per weight row), plain loop otherwise. */
static float dot_f32(const float *a, const float *b, int64_t n) {
    int64_t k = 0;
    float acc = 0;
#if defined(__AVX2__) && defined(__FMA__)
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (; k + 32 <= n; k += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(b + k), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k + 8), _mm256_loadu_ps(b + k + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k + 16), _mm256_loadu_ps(b + k + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k + 24), _mm256_loadu_ps(b + k + 24), s3);
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    acc = _mm_cvtss_f32(h);
#endif
    for (; k < n; k++)
        acc += a[k] * b[k];
    return acc;
}

typedef struct matvec_job {
    const av_tensor *w;
    const float *x; /* (n, in) */
    float *y;       /* (n, out) */
    int n;
    int64_t in, out;
} matvec_job;

/* Weight rows [start, end): each row is converted in L1-sized column blocks (a multiple of every quantization
 * block) and dotted with every row of x while it is there. F32 rows are dotted in place. */
static void matvec_range(void *ctx, int tid, int64_t start, int64_t end) {
    const matvec_job *j = ctx;
    enum { CHUNK = 4096 };
    float buf[CHUNK]; /* (CHUNK) columns of one weight row */
    for (int64_t r = start; r < end; r++) {
        for (int t = 0; t < j->n; t++)
            j->y[(size_t)t * (size_t)j->out + (size_t)r] = 0.0f;
        for (int64_t k0 = 0; k0 < j->in; k0 += CHUNK) {
            int kc = j->in - k0 < CHUNK ? (int)(j->in - k0) : CHUNK;
            const float *wr = (const float *)j->w->data + r * j->in + k0;
            if (j->w->dtype != AV_DTYPE_F32) {
                av_weight_block_f32(j->w, r, k0, kc, buf);
                wr = buf;
            }
            for (int t = 0; t < j->n; t++)
                j->y[(size_t)t * (size_t)j->out + (size_t)r] +=
                    dot_f32(wr, j->x + (size_t)t * (size_t)j->in + k0, kc);
        }
    }
}

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

void av_kernels_init(void) {
    openblas_set_num_threads(1);
}

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
    for (int i = 0; i < count && n <= AV_GEMV_MAX_ROWS; i++) {
        if (path == AV_GEMM_SGEMM && w[i]->dtype == AV_DTYPE_F32) {
            matmul_sgemm(y[i], x, w[i], n, scratch, nt);
            continue;
        }
        matvec_job j = {w[i], x, y[i], n, in, w[i]->shape[0]};
        av_parallel_for(nt, j.out, matvec_range, &j);
    }
    if (n <= AV_GEMV_MAX_ROWS) return;
    if (path == AV_GEMM_AMX && amx_suits(w, count, n) && av_matmul_bf16x3_many(y, x, w, count, n, nt) == 0)
        return;
    const av_ukernel *uk = av_gemm_ukernel(path);
    if (uk && av_gemm_weights(y, x, w, count, n, nt, uk) == 0) return;
    for (int i = 0; i < count; i++) {
        if (w[i]->dtype != AV_DTYPE_F32 && !scratch) { /* no room to dequantize: row by row */
            matvec_job j = {w[i], x, y[i], n, in, w[i]->shape[0]};
            av_parallel_for(nt, j.out, matvec_range, &j);
        } else
            matmul_sgemm(y[i], x, w[i], n, scratch, nt);
    }
}

void av_matmul(float *y, const float *x, const av_tensor *w, int n, float *scratch, int n_threads) {
    av_matmul_many(&y, x, &w, 1, n, scratch, n_threads);
}
