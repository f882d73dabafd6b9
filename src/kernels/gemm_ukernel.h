/* The register-tiled GEMM micro-kernel, written once and instantiated per instruction set: gemm_avx512.c and
 * gemm_avx2.c define the vector type and operations below, then include this file.
 *
 *   UK_NAME, UK_NAME_ROWS   the two functions: A packed, A read in place
 *   UK_MR, UK_NV       tile: UK_MR rows of C x UK_NV vectors of UK_VL columns (NR = UK_NV * UK_VL)
 *   UK_ROWS_S, UK_ROWS_M   fewer rows the kernel is also instantiated for (UK_ROWS_S < UK_ROWS_M < UK_MR)
 *   uk_vec, UK_VL      vector type and its float lanes
 *   UK_ZERO(), UK_SET1(x), UK_LOAD(p), UK_STORE(p, v), UK_FMA(a, b, c) = a * b + c, UK_MUL(a, b),
 * UK_PREFETCH(p) UK_LOADN(p, n), UK_STOREN(p, v, n)   the first n lanes (1 <= n <= UK_VL; other lanes read as
 * 0 / untouched)
 *
 * C (m, n) = alpha * A (m, k) B (k, n) + beta * C, with m <= MR, n <= NR, from packed panels:
 * a: (k, MR) floats, a[p * MR + i] = A[i][p];  b: (k, NR) floats, b[p * NR + j] = B[p][j];  c: rows ldc
 * apart. Every output is one f32 fused multiply-add chain over p = 0, 1, ..., k-1 (the scalar reference
 * kernel in gemm.c computes the same chain with fmaf, so all kernels agree bit for bit). beta == 0 never
 * reads C.
 *
 * A tile of m < MR rows (the last token tile of a GEMM: 512 tokens are 42 x 12 + 8, 85 x 6 + 2) runs the
 * smallest instantiation that covers m: it computes UK_ROWS_S, UK_ROWS_M or UK_MR rows (the packed A panel
 * keeps its stride MR); each output's chain, and so its bits, is the same in all of them. */
#include "gemm.h"

#define UK_NR (UK_NV * UK_VL)
#ifndef UK_B_AHEAD
#define UK_B_AHEAD 16
#endif
#ifndef UK_C_AHEAD
#define UK_C_AHEAD 24
#endif

/* Step p: acc[0, rows) += A[0, rows)[p] B[p, :] (b points at B's step p). */
static inline __attribute__((always_inline)) void uk_step(int a_rows, int rows, const float *restrict a,
                                                          const float *const ar[UK_MR], int p,
                                                          const float *restrict b, uk_vec acc[UK_MR][UK_NV]) {
    uk_vec bv[UK_NV];
#pragma GCC unroll 4
    for (int j = 0; j < UK_NV; j++)
        bv[j] = UK_LOAD(b + j * UK_VL);
    UK_PREFETCH(b + UK_B_AHEAD * UK_NR); /* B streams from L2: ask for its lines early */
    if (UK_NR * 4 > 64) UK_PREFETCH(b + UK_B_AHEAD * UK_NR + 16);
#pragma GCC unroll 16
    for (int i = 0; i < rows; i++) {
        uk_vec av = UK_SET1(a_rows ? ar[i][p] : a[p * UK_MR + i]);
#pragma GCC unroll 4
        for (int j = 0; j < UK_NV; j++)
            acc[i][j] = UK_FMA(av, bv[j], acc[i][j]);
    }
}

/* C rows [0, m) from `rows` >= m rows of accumulators (a compile-time constant after inlining). */
static inline __attribute__((always_inline)) void
uk_tile(int a_rows, int rows, int k, const float *restrict a, int64_t lda, const float *restrict b,
        float *restrict c, int64_t ldc, int m, int n, float alpha, float beta) {
    uk_vec acc[UK_MR][UK_NV];
    const float *ar[UK_MR]; /* A rows read in place (rows past m repeat the last one; never stored) */
#pragma GCC unroll 16
    for (int i = 0; i < rows; i++) {
        ar[i] = a + (i < m ? i : m - 1) * lda;
#pragma GCC unroll 4
        for (int j = 0; j < UK_NV; j++)
            acc[i][j] = UK_ZERO();
    }
    /* C is read or written last: its lines are asked for UK_C_AHEAD steps before the end, late enough that
     * the A and B lines streaming through L1 meanwhile do not evict them again */
    int p = 0, p_c = k > UK_C_AHEAD ? k - UK_C_AHEAD : 0;
    for (; p < p_c; p++, b += UK_NR)
        uk_step(a_rows, rows, a, ar, p, b, acc);
#pragma GCC unroll 16
    for (int i = 0; i < rows; i++) {
        UK_PREFETCH(c + (i < m ? i : 0) * ldc);
        UK_PREFETCH(c + (i < m ? i : 0) * ldc + UK_NR - 1);
    }
    for (; p < k; p++, b += UK_NR)
        uk_step(a_rows, rows, a, ar, p, b, acc);
    const uk_vec va = UK_SET1(alpha), vb = UK_SET1(beta);
#pragma GCC unroll 16
    for (int i = 0; i < rows; i++) {
        if (i >= m) break; /* constant indices after unrolling keep acc in registers */
        float *ci = c + i * ldc;
#pragma GCC unroll 4
        for (int j = 0; j < UK_NV; j++) {
            int left = n - j * UK_VL;
            if (left <= 0) break;
            uk_vec r = UK_MUL(va, acc[i][j]);
            if (beta != 0.0f)
                r = UK_FMA(vb, left >= UK_VL ? UK_LOAD(ci + j * UK_VL) : UK_LOADN(ci + j * UK_VL, left), r);
            if (left >= UK_VL)
                UK_STORE(ci + j * UK_VL, r);
            else
                UK_STOREN(ci + j * UK_VL, r, left);
        }
    }
}

#define UK_CAT2(x, y) x##y
#define UK_CAT(x, y) UK_CAT2(x, y)
/* UK_NAME_<rows> and UK_NAME_ROWS_<rows>: the tile of `rows` rows, A packed or read in place */
#define UK_INSTANCE(rows)                                                                                    \
    static __attribute__((noinline)) AV_UKERNEL_DECL(UK_CAT(UK_CAT(UK_NAME, _), rows)) {                     \
        uk_tile(0, rows, k, a, lda, b, c, ldc, m, n, alpha, beta);                                           \
    }                                                                                                        \
    static __attribute__((noinline)) AV_UKERNEL_DECL(UK_CAT(UK_CAT(UK_NAME_ROWS, _), rows)) {                \
        uk_tile(1, rows, k, a, lda, b, c, ldc, m, n, alpha, beta);                                           \
    }
UK_INSTANCE(UK_ROWS_S)
UK_INSTANCE(UK_ROWS_M)
UK_INSTANCE(UK_MR)

/* The smallest instantiation covering m rows (a tail call) */
#define UK_PICK(name)                                                                                        \
    if (m <= UK_ROWS_S)                                                                                      \
        UK_CAT(UK_CAT(name, _), UK_ROWS_S)(k, a, lda, b, c, ldc, m, n, alpha, beta);                         \
    else if (m <= UK_ROWS_M)                                                                                 \
        UK_CAT(UK_CAT(name, _), UK_ROWS_M)(k, a, lda, b, c, ldc, m, n, alpha, beta);                         \
    else                                                                                                     \
        UK_CAT(UK_CAT(name, _), UK_MR)(k, a, lda, b, c, ldc, m, n, alpha, beta)

AV_UKERNEL_DECL(UK_NAME) { UK_PICK(UK_NAME); }

AV_UKERNEL_DECL(UK_NAME_ROWS) { UK_PICK(UK_NAME_ROWS); }

#undef UK_PICK
#undef UK_INSTANCE
#undef UK_CAT
#undef UK_CAT2
#undef UK_NR
