/* The register-tiled GEMM micro-kernel, written once and instantiated per instruction set: gemm_avx512.c and
 * gemm_avx2.c define the vector type and operations below, then include this file.
 *
 *   UK_NAME, UK_NAME_ROWS, UK_NAME_STEPS   the three functions: A packed, A read in place, A and B read
 *                      in place from the columns of one row-major block
 *   UK_MR, UK_NV       tile: UK_MR rows of C x UK_NV vectors of UK_VL columns (NR = UK_NV * UK_VL)
 *   UK_ROWS_S, UK_ROWS_M   fewer rows the kernel is also instantiated for (UK_ROWS_S < UK_ROWS_M < UK_MR)
 *   uk_vec, UK_VL      vector type and its float lanes
 *   UK_ZERO(), UK_SET1(x), UK_LOAD(p), UK_STORE(p, v), UK_FMA(a, b, c) = a * b + c, UK_MUL(a, b),
 * UK_PREFETCH(p) UK_LOADN(p, n), UK_STOREN(p, v, n)   the first n lanes (1 <= n <= UK_VL; other lanes read as
 * 0 / untouched)
 *
 * C (m, n) = alpha * A (m, k) B (k, n) + beta * C, with m <= MR, n <= NR, from packed panels:
 * a: (k, MR) floats, a[p * MR + i] = A[i][p];  b: (k, NR) floats, b[p * NR + j] = B[p][j];  c: rows ldc
 * apart. UK_NAME_ROWS reads A's rows in place, a[i * lda + p] = A[i][p]; UK_NAME_STEPS reads A and B from
 * one block of k rows, lda floats each (the Gram matrices' blocks, gemm.c): a[p * lda + i] = A[i][p] and
 * b[p * lda + j] = B[p][j]. Every output is one f32 fused multiply-add chain over p = 0, 1, ..., k-1 (the
 * scalar reference kernel in gemm.c computes the same chain with fmaf, so all kernels agree bit for bit).
 * beta == 0 never reads C.
 *
 * A tile of m < MR rows (the last token tiles of a GEMM: 512 tokens are 42 x 12 + 8, 84 x 6 + 4 + 4) runs the
 * smallest instantiation that covers m: it computes UK_ROWS_S, UK_ROWS_M or UK_MR rows (the packed A panel
 * keeps its stride MR; UK_NAME_STEPS reads that many columns of A, which must be readable); each output's
 * chain, and so its bits, is the same in all of them. */
#include "gemm.h"

#define UK_NR (UK_NV * UK_VL)
#ifndef UK_B_AHEAD
#define UK_B_AHEAD 16
#endif
#ifndef UK_C_AHEAD
#define UK_C_AHEAD 24
#endif
#ifndef UK_A_AHEAD
#define UK_A_AHEAD 32
#endif

/* Step p: acc[0, rows) += A[0, rows)[p] B[p, :]; b points at B's step p, bs floats past step p - 1. */
static inline __attribute__((always_inline)) void uk_step(av_uk_mode mode, int rows, const float *restrict a,
                                                          int64_t lda, const float *const ar[UK_MR], int p,
                                                          const float *restrict b, int64_t bs,
                                                          uk_vec acc[UK_MR][UK_NV]) {
    uk_vec bv[UK_NV];
#pragma GCC unroll 4
    for (int j = 0; j < UK_NV; j++)
        bv[j] = UK_LOAD(b + j * UK_VL);
    UK_PREFETCH(b + UK_B_AHEAD * bs); /* B streams from L2: ask for its lines early */
    if (UK_NR * 4 > 64) UK_PREFETCH(b + UK_B_AHEAD * bs + 16);
    if (mode == AV_UK_STEPS)
        UK_PREFETCH(a + (p + UK_B_AHEAD) * lda); /* A's columns: other lines of the step */
    /* A packed: a token tile's panel comes from L3 (packed by either thread) for the first B panel it meets,
     * then from L1; asked for ahead, the weights' GEMMs ran 1-3% faster on Zen 5 with both kernels
     * (docs/BENCHMARKS.md "A Zen 5 machine (session 36)"). Past the panel's end it asks for lines of the
     * next one: prefetches never fault. */
    if (mode == AV_UK_PACKED) UK_PREFETCH(a + (p + UK_A_AHEAD) * UK_MR);
#pragma GCC unroll 16
    for (int i = 0; i < rows; i++) {
        uk_vec av = UK_SET1(mode == AV_UK_ROWS    ? ar[i][p]
                            : mode == AV_UK_STEPS ? a[p * lda + i]
                                                  : a[p * UK_MR + i]);
#pragma GCC unroll 4
        for (int j = 0; j < UK_NV; j++)
            acc[i][j] = UK_FMA(av, bv[j], acc[i][j]);
    }
}

/* C rows [0, m) from `rows` >= m rows of accumulators (a compile-time constant after inlining). */
static inline __attribute__((always_inline)) void
uk_tile(av_uk_mode mode, int rows, int k, const float *restrict a, int64_t lda, const float *restrict b,
        float *restrict c, int64_t ldc, int m, int n, float alpha, float beta) {
    uk_vec acc[UK_MR][UK_NV];
    const float *ar[UK_MR]; /* A rows read in place (rows past m repeat the last one; never stored) */
#pragma GCC unroll 16
    for (int i = 0; i < rows; i++) {
        ar[i] = mode == AV_UK_ROWS ? a + (i < m ? i : m - 1) * lda : a;
#pragma GCC unroll 4
        for (int j = 0; j < UK_NV; j++)
            acc[i][j] = UK_ZERO();
    }
    /* C is read or written last: its lines are asked for UK_C_AHEAD steps before the end, late enough that
     * the A and B lines streaming through L1 meanwhile do not evict them again */
    int p = 0, p_c = k > UK_C_AHEAD ? k - UK_C_AHEAD : 0;
    const int64_t bs = mode == AV_UK_STEPS ? lda : UK_NR;
    for (; p < p_c; p++, b += bs)
        uk_step(mode, rows, a, lda, ar, p, b, bs, acc);
#pragma GCC unroll 16
    for (int i = 0; i < rows; i++) {
        UK_PREFETCH(c + (i < m ? i : 0) * ldc);
        UK_PREFETCH(c + (i < m ? i : 0) * ldc + UK_NR - 1);
    }
    for (; p < k; p++, b += bs)
        uk_step(mode, rows, a, lda, ar, p, b, bs, acc);
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
/* name_<rows>: the tile of `rows` rows, A and B read as `mode` says */
#define UK_ONE(name, mode, rows)                                                                             \
    static __attribute__((noinline)) AV_UKERNEL_DECL(UK_CAT(UK_CAT(name, _), rows)) {                        \
        uk_tile(mode, rows, k, a, lda, b, c, ldc, m, n, alpha, beta);                                        \
    }
#define UK_INSTANCE(rows)                                                                                    \
    UK_ONE(UK_NAME, AV_UK_PACKED, rows)                                                                      \
    UK_ONE(UK_NAME_ROWS, AV_UK_ROWS, rows)                                                                   \
    UK_ONE(UK_NAME_STEPS, AV_UK_STEPS, rows)
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

AV_UKERNEL_DECL(UK_NAME_STEPS) { UK_PICK(UK_NAME_STEPS); }

#undef UK_PICK
#undef UK_INSTANCE
#undef UK_ONE
#undef UK_CAT
#undef UK_CAT2
#undef UK_NR
