/* y = x W^T. On CPUs with AMX, prompts against 16/8-bit weights go to the split-bf16 tile kernel
 * (gemm_amx.c); everything else runs on OpenBLAS, single-threaded (av_kernels_init): our own threads split
 * the work, so the process has one threading layer and nothing spins. F32 weights go straight to sgemm from
 * the mapping. Other types are dequantized slice by slice into a scratch matrix when there are enough rows to
 * amortize it, or multiplied row by row (matrix-vector) during token-by-token generation. */
#include "kernels.h"

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
            for (int64_t r = 0; r < nr; r++)
                j->y[(size_t)t * (size_t)j->out + (size_t)(r0 + r)] = dot_f32(buf + r * j->in, xt, j->in);
        }
    }
    free(buf);
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

/* Whether the AMX split-bf16 kernel takes these products: prompt-sized n and no F32 weight. 16-bit and 8-bit
 * weights carry relative rounding of their own, 2^-11 (f16) to 2^-8 (bf16, q8_0): the bf16x3 product's
 * (<= 2^-15) is below it. F32 weights keep exact f32 sgemm. (av_amx_ready is checked by the kernel.) */
static int amx_suits(const av_tensor *const *w, int count, int n) {
    if (n < AV_AMX_MIN_ROWS || count > AV_MATMUL_MANY_MAX) return 0;
    for (int i = 0; i < count; i++)
        if (w[i]->dtype == AV_DTYPE_F32) return 0;
    return 1;
}

void av_kernels_init(void) { openblas_set_num_threads(1); }

void av_matmul(float *y, const float *x, const av_tensor *w, int n, float *scratch, int n_threads) {
    int64_t out = w->shape[0], in = w->shape[1];
    int64_t work = (int64_t)n * out * in;
    int nt = work > (1 << 18) ? n_threads : 1;
    if (amx_suits(&w, 1, n) && av_matmul_bf16x3(y, x, w, n, nt) == 0) return;
    if (w->dtype != AV_DTYPE_F32 && (n < 8 || !scratch)) {
        matvec_job j = {w, x, y, n, in, out};
        av_parallel_for(nt, out, matvec_range, &j);
        return;
    }
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
    if (amx_suits(w, count, n) && av_matmul_bf16x3_many(y, x, w, count, n, n_threads) == 0) return;
    for (int i = 0; i < count; i++)
        av_matmul(y[i], x, w[i], n, scratch, n_threads);
}
