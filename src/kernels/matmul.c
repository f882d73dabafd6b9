/* y = x W^T: the dispatcher. Prompts (n >= AV_GEMV_MAX_ROWS + 1 rows of x) go to the path's GEMM
 * (gemm_cpu.c): the AMX split-bf16 tile kernel (gemm_amx.c) for 16/8-bit weights where the CPU has it, the
 * project's packed GEMM (gemm.c) on its AVX-512 / AVX2 / scalar micro-kernel otherwise, or OpenBLAS on the
 * sgemm path (weights dequantized slice by slice into a scratch matrix, single-threaded sgemm per thread:
 * av_kernels_init). Token-by-token generation (a few rows) is matrix-vector work, bound by memory: each
 * weight row is converted and dotted with every row of x while it is in cache. */
#include "gemm.h"
#include "gemm_quant.h"

#include <cblas.h>
#include <stdlib.h>

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define AV_DOT_VECTOR 1
#endif

/* Weight rows the matrix-vector products read in place, converting as they go (Q8_0, Q4_K, Q6_K in vector
 * registers, gemm_quant.h); any other dtype is converted a block of columns at a time into a buffer first. */
static int dot_in_place(av_dtype t) {
#ifdef AV_DOT_VECTOR
    if (av_dtype_grouped(t)) return 1;
#endif
    return t == AV_DTYPE_F32 || t == AV_DTYPE_F16 || t == AV_DTYPE_BF16;
}

/* The factors of a row chunk's 16-value groups (grouped types, see av_dequant_groups): s, m: (CHUNK / 16). */
typedef struct groups {
    const float *s, *m;
} groups;

#ifdef AV_DOT_VECTOR
/* Weight values [k, k + 8) of an F32, F16 or BF16 row as f32, exactly; w: the row's first value. */
static inline __attribute__((always_inline)) __m256 load_w8(av_dtype t, const void *w, int64_t k) {
    switch (t) {
    case AV_DTYPE_F16: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + k)));
    case AV_DTYPE_BF16: {
        __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + k)));
        return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
    }
    default: return _mm256_loadu_ps((const float *)w + k);
    }
}

/* Values [k, k + 32) of a row (w: its first value or, grouped types, block) as four vectors of 8. */
static inline __attribute__((always_inline)) void load_w32(av_dtype t, const void *w, int64_t k, groups g,
                                                           __m256 out[4]) {
    if (av_dtype_grouped(t))
        av_qload32(t, w, k, g.s + k / 16, g.m + k / 16, out);
    else
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++)
            out[i] = load_w8(t, w, k + 8 * i);
}
#endif

/* A float weight value (the scalar tails and non-AVX2 builds: F32, F16, BF16). */
static inline float weight_value(av_dtype t, const void *w, int64_t k) {
    switch (t) {
    case AV_DTYPE_F16: return av_f16_to_f32(((const uint16_t *)w)[k]);
    case AV_DTYPE_BF16: return av_bf16_to_f32(((const uint16_t *)w)[k]);
    default: return ((const float *)w)[k];
    }
}

/* sum w[k] x[k] for a weight row w of dtype t (dot_in_place) and f32 x: four 8-wide accumulators over whole
 * 32-value steps where AVX2 + FMA are built in (token-by-token generation is one such dot product per weight
 * row; for Q4_K on the wide paths matvec_avx512.c keeps the same 32 sums 16 lanes wide), then a plain loop
 * over the rest (all of it
 * otherwise). Every weight value is converted exactly; the lanes and their order do not depend on t or the
 * path. A grouped row's n is a whole number of blocks (no scalar tail). */
static inline __attribute__((always_inline)) float dot_kind(av_dtype t, const void *w, const float *x,
                                                            int64_t n, groups g, int wide) {
    int64_t k = 0;
    float acc = 0;
#ifdef AV_DOT_VECTOR
    if (t == AV_DTYPE_Q4_K && wide) {
        acc = av_dot_q4_k_avx512(w, x, n, g.s, g.m, &k);
        goto tail;
    }
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (; k + 32 <= n; k += 32) {
        __m256 wv[4];
        load_w32(t, w, k, g, wv);
        s0 = _mm256_fmadd_ps(wv[0], _mm256_loadu_ps(x + k), s0);
        s1 = _mm256_fmadd_ps(wv[1], _mm256_loadu_ps(x + k + 8), s1);
        s2 = _mm256_fmadd_ps(wv[2], _mm256_loadu_ps(x + k + 16), s2);
        s3 = _mm256_fmadd_ps(wv[3], _mm256_loadu_ps(x + k + 24), s3);
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    acc = _mm_cvtss_f32(h);
tail:
#endif
    for (; k < n; k++)
        acc += weight_value(t, w, k) * x[k];
    return acc;
}

/* wide: the avx512 or amx path (matvec_avx512.c for Q4_K). */
static float dot_row(av_dtype t, const void *w, const float *x, int64_t n, groups g, int wide) {
    switch (t) {
    case AV_DTYPE_F16: return dot_kind(AV_DTYPE_F16, w, x, n, g, wide);
    case AV_DTYPE_BF16: return dot_kind(AV_DTYPE_BF16, w, x, n, g, wide);
#ifdef AV_DOT_VECTOR
    case AV_DTYPE_Q8_0: return dot_kind(AV_DTYPE_Q8_0, w, x, n, g, wide);
    case AV_DTYPE_Q4_K: return dot_kind(AV_DTYPE_Q4_K, w, x, n, g, wide);
    case AV_DTYPE_Q6_K: return dot_kind(AV_DTYPE_Q6_K, w, x, n, g, wide);
#endif
    default: return dot_kind(AV_DTYPE_F32, w, x, n, g, wide);
    }
}

typedef struct matvec_job {
    const av_tensor *w;
    const float *x; /* (n, in) */
    float *y;       /* (n, out) */
    int n;
    int64_t in, out;
} matvec_job;

/* Weight rows [start, end), each dotted with every row of x while it is in cache, in L1-sized column blocks
 * (a multiple of every quantization block): read in place (dot_in_place) or converted into a buffer first. */
static void matvec_range(void *ctx, int tid, int64_t start, int64_t end) {
    const matvec_job *j = ctx;
    enum { CHUNK = 4096 };
    float buf[CHUNK];                   /* (CHUNK) columns of one weight row */
    float s[CHUNK / 16], m[CHUNK / 16]; /* the factors of a grouped row's 16-value groups */
    av_dtype t = j->w->dtype;
    size_t row_bytes = av_tensor_row_bytes(j->w);
    av_gemm_path path = av_gemm_path_get();
    int wide = path == AV_GEMM_AVX512 || path == AV_GEMM_AMX;
    for (int64_t r = start; r < end; r++) {
        if (r + 2 < end) /* the row after next: ahead of the hardware's stream detection */
            for (size_t at = 0; at < row_bytes; at += 64)
                __builtin_prefetch((const char *)j->w->data + (size_t)(r + 2) * row_bytes + at, 0, 3);
        for (int i = 0; i < j->n; i++)
            j->y[(size_t)i * (size_t)j->out + (size_t)r] = 0.0f;
        for (int64_t k0 = 0; k0 < j->in; k0 += CHUNK) {
            int kc = j->in - k0 < CHUNK ? (int)(j->in - k0) : CHUNK;
            const void *wr = buf;
            av_dtype wt = AV_DTYPE_F32;
            if (dot_in_place(t)) {
                size_t at = 0;
                av_dtype_nbytes(t, (size_t)k0, &at); /* k0: whole blocks */
                wr = (const char *)j->w->data + (size_t)r * row_bytes + at, wt = t;
                if (av_dtype_grouped(t)) av_dequant_groups(t, wr, 0, kc / 16, s, m);
            } else
                av_weight_block_f32(j->w, r, k0, kc, buf);
            for (int i = 0; i < j->n; i++)
                j->y[(size_t)i * (size_t)j->out + (size_t)r] +=
                    dot_row(wt, wr, j->x + (size_t)i * (size_t)j->in + k0, kc, (groups){s, m}, wide);
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
