/* Matrix-vector products y = x W^T for a few rows of x (token-by-token generation: one row per sequence),
 * between the dispatcher (matvec.c: threads, rows, dtypes without a kernel) and the row kernels of each
 * instruction set (matvec_avx512.c, matvec_avx2.c, the scalar ones in matvec.c). The design and the error
 * bound are in docs/ARCHITECTURE.md ("Matrix-vector products").
 *
 * A row kernel reads each weight row in its stored form, once, expands each value exactly (the f32 value
 * av_dequantize_rows gives) in registers and multiplies it into up to AV_MV_NX rows of x while it is there:
 * the product is bound by reading the weights from memory, not by expanding them. */
#ifndef AV_MATVEC_H
#define AV_MATVEC_H

#include "kernels.h"

enum { AV_MV_NX = 4 }; /* rows of x one pass over a weight row serves */

/* How far ahead of its reads a row kernel prefetches: a thread's rows are one contiguous stream of weight
 * bytes, so the kernels request the line AV_MV_PREFETCH bytes past the one they read, a line for every 64
 * bytes they read, which keeps ~8 KiB of requests in flight without a burst (a whole row's lines at once
 * overflow the core's fill buffers) and runs into the next row. Measured on 2 threads of the Emerald Rapids
 * VM (docs/BENCHMARKS.md, "Generation bandwidth (session 26)"): 4-16 KiB alike, 1-2 KiB and the hardware's
 * stream detection alone (no software prefetch) far slower. Prefetches never fault: the last ones of a range
 * may point past the weights. */
enum { AV_MV_PREFETCH = 8192 };

/* The prefetches for `bytes` (a constant) of weights read at p. */
static inline __attribute__((always_inline)) void av_mv_prefetch(const void *p, size_t bytes) {
    for (size_t c = 0; c < bytes; c += 64)
        __builtin_prefetch((const char *)p + AV_MV_PREFETCH + c, 0, 3);
}

#ifdef __AVX2__
#include "quants.h"

#include <immintrin.h>

/* The eight sub-blocks' scales s = d * sc and mins m = dmin * mn of a Q4_K / Q5_K super-block (ggml's d1,
 * m1), for the vector paths. */
static inline __attribute__((always_inline)) void
av_mv_k_factors8(uint16_t d, uint16_t dmin, const uint8_t *scales, float s[8], float m[8]) {
    uint64_t sc, mn;
    av_k_scales_mins8(scales, &sc, &mn);
    __m256 isc = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)sc)));
    __m256 imn = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)mn)));
    _mm256_storeu_ps(s, _mm256_mul_ps(_mm256_set1_ps(av_half(d)), isc));
    _mm256_storeu_ps(m, _mm256_mul_ps(_mm256_set1_ps(av_half(dmin)), imn));
}
#endif

/* y[i * ldy + r] = sum_k w_r[k] x[i * ldx + k] for r < rows, i < nx (1 <= nx <= AV_MV_NX), k < n: w_r = w +
 * r * row_bytes, weight rows of the kernel's dtype (n values each, a whole number of its blocks). A kernel
 * takes a block of rows, not one: a call per row cost 2-10% of a 1-row product (docs/BENCHMARKS.md,
 * "Q6_K unpacked one ahead, row kernels on blocks of rows (session 38)"). Every kernel of a path keeps the
 * same partial sums (value k goes to lane-group k / VL % 4, in increasing k), so a quantized row gives the
 * bits of its F32 expansion on the same path. */
typedef void (*av_mv_rows_fn)(const void *w, size_t row_bytes, int64_t rows, const float *x, int64_t ldx,
                              int64_t n, int nx, float *y, int64_t ldy);

/* Value k of an F32, F16 or BF16 row w as f32 (the scalar kernels and the vector kernels' last values). */
static inline float av_mv_weight(av_dtype t, const void *w, int64_t k) {
    switch (t) {
    case AV_DTYPE_F16: return av_f16_to_f32(((const uint16_t *)w)[k]);
    case AV_DTYPE_BF16: return av_bf16_to_f32(((const uint16_t *)w)[k]);
    default: return ((const float *)w)[k];
    }
}

/* The rows of an av_mv_rows_fn, each through body(T, w_r, x, ldx, n, NX, dots) (one row's nx dot products).
 */
#define AV_MV_ROWS_LOOP(body, T, NX)                                                                         \
    for (int64_t r = 0; r < rows; r++) {                                                                     \
        float dots[AV_MV_NX];                                                                                \
        body(T, (const char *)w + (size_t)r * row_bytes, x, ldx, n, NX, dots);                               \
        for (int i = 0; i < NX; i++)                                                                         \
            y[i * ldy + r] = dots[i];                                                                        \
    }

/* Defines kernel `name` (an av_mv_rows_fn) for dtype T from an always-inline body(T, w, x, ldx, n, nx, out)
 * of one row (out[i] for i < nx), instantiated for each nx so that the rows of x are a constant in the loops.
 */
#define AV_MV_ROWS_FN(name, body, T)                                                                         \
    static void name(const void *w, size_t row_bytes, int64_t rows, const float *x, int64_t ldx, int64_t n,  \
                     int nx, float *y, int64_t ldy) {                                                        \
        switch (nx) {                                                                                        \
        case 1: AV_MV_ROWS_LOOP(body, T, 1) break;                                                           \
        case 2: AV_MV_ROWS_LOOP(body, T, 2) break;                                                           \
        case 3: AV_MV_ROWS_LOOP(body, T, 3) break;                                                           \
        default: AV_MV_ROWS_LOOP(body, T, 4) break;                                                          \
        }                                                                                                    \
    }
_Static_assert(AV_MV_NX == 4, "AV_MV_ROWS_FN instantiates 1 .. 4 rows");

/* A vector path's kernels, one per dtype below, from its body(T, w, x, ldx, n, nx, out) (nx a constant), and
 * their lookup `mv_rows_for(t)` (NULL for the other dtypes). */
#define AV_MV_ROWS_TABLE(body)                                                                               \
    AV_MV_ROWS_FN(mv_rows_f32, body, AV_DTYPE_F32)                                                           \
    AV_MV_ROWS_FN(mv_rows_f16, body, AV_DTYPE_F16)                                                           \
    AV_MV_ROWS_FN(mv_rows_bf16, body, AV_DTYPE_BF16)                                                         \
    AV_MV_ROWS_FN(mv_rows_q8_0, body, AV_DTYPE_Q8_0)                                                         \
    AV_MV_ROWS_FN(mv_rows_q4_0, body, AV_DTYPE_Q4_0)                                                         \
    AV_MV_ROWS_FN(mv_rows_q4_k, body, AV_DTYPE_Q4_K)                                                         \
    AV_MV_ROWS_FN(mv_rows_q5_k, body, AV_DTYPE_Q5_K)                                                         \
    AV_MV_ROWS_FN(mv_rows_q6_k, body, AV_DTYPE_Q6_K)                                                         \
    static av_mv_rows_fn mv_rows_for(av_dtype t) {                                                           \
        switch (t) {                                                                                         \
        case AV_DTYPE_F32: return mv_rows_f32;                                                               \
        case AV_DTYPE_F16: return mv_rows_f16;                                                               \
        case AV_DTYPE_BF16: return mv_rows_bf16;                                                             \
        case AV_DTYPE_Q8_0: return mv_rows_q8_0;                                                             \
        case AV_DTYPE_Q4_0: return mv_rows_q4_0;                                                             \
        case AV_DTYPE_Q4_K: return mv_rows_q4_k;                                                             \
        case AV_DTYPE_Q5_K: return mv_rows_q5_k;                                                             \
        case AV_DTYPE_Q6_K: return mv_rows_q6_k;                                                             \
        default: return NULL;                                                                                \
        }                                                                                                    \
    }

/* The kernel of dtype t on a path, or NULL when the path has none for t (matvec.c then expands each row a
 * block of columns at a time and uses the path's F32 kernel). */
av_mv_rows_fn av_mv_rows_avx512(av_dtype t); /* F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K */
av_mv_rows_fn av_mv_rows_avx2(av_dtype t);   /* the same */

/* y[i] (n, out_i) = x (n, in) W_i^T for count <= AV_MATMUL_MANY_MAX weights with the same in, any n, on the
 * row kernels of path p (the sgemm path: the fastest own vector path); the threads claim chunks of the
 * weights' rows, all of them together. */
void av_matvec_many(float *const *y, const float *x, const av_tensor *const *w, int count, int n,
                    int n_threads, av_gemm_path p);

#endif
