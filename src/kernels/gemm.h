/* Internal interface between the GEMM driver (gemm.c), its packing routines (gemm_pack.c), the CPU/path
 * selection (gemm_cpu.c) and the micro-kernels (gemm_avx512.c, gemm_avx2.c, the scalar one in gemm.c).
 * The design is in docs/ARCHITECTURE.md ("GEMM"). */
#ifndef AV_GEMM_H
#define AV_GEMM_H

#include "kernels.h"

/* Where a kernel reads A and B (fn, fn_rows, fn_steps below; a constant in each instantiation) */
typedef enum av_uk_mode { AV_UK_PACKED, AV_UK_ROWS, AV_UK_STEPS } av_uk_mode;

/* C (m, n) = alpha * A B + beta * C over k from a packed B panel (k, nr) and A packed (k, mr) ("fn") or read
 * in place, rows lda apart ("fn_rows"); or A and B both columns of one block of k rows lda apart
 * ("fn_steps"); m <= mr, n <= nr; beta == 0 never reads C (see gemm_ukernel.h). */
typedef void (*av_ukernel_fn)(int k, const float *restrict a, int64_t lda, const float *restrict b,
                              float *restrict c, int64_t ldc, int m, int n, float alpha, float beta);

/* Packs weight rows [f0, f0 + rows), columns [k0, k0 + kc) into a panel (see av_pack_weight below). */
typedef void (*av_pack_weight_fn)(const av_tensor *w, int64_t f0, int rows, int64_t k0, int kc, int P,
                                  float *panel, float *tmp);

/* Packs rows of an f32 matrix into a panel (see av_pack_rows below). */
typedef void (*av_pack_rows_fn)(const float *src, int64_t ld, int rows, int kc, int P, float *panel);

typedef struct av_ukernel {
    av_ukernel_fn fn, fn_rows, fn_steps;
    av_pack_weight_fn pack_weight;
    av_pack_rows_fn pack_rows;
    int mr, nr; /* register tile: rows of C (broadcast from A), columns of C (vector lanes, from B) */
} av_ukernel;

#ifdef __AVX__
#include <immintrin.h>

/* Lanes [0, n) of v at d (0 <= n <= 8), nothing past them, with plain stores of 4, 2 and 1 lanes: a masked
 * store (vmaskmovps) takes ~20 cycles on AMD Zen 3, 8x these (6.3 against 0.7 ns per 6-lane store, session
 * 30); the panels of 6-row tiles store one per step. */
static inline __attribute__((always_inline)) void av_store_first8(float *d, __m256 v, int n) {
    if (n >= 8) {
        _mm256_storeu_ps(d, v);
        return;
    }
    __m128 part = _mm256_castps256_ps128(v);
    if (n >= 4) {
        _mm_storeu_ps(d, part);
        part = _mm256_extractf128_ps(v, 1), d += 4, n -= 4;
    }
    if (n >= 2) {
        _mm_storel_pi((__m64 *)d, part);
        part = _mm_movehl_ps(part, part), d += 2, n -= 2;
    }
    if (n) _mm_store_ss(d, part);
}
#endif

/* Register tiles of the kernels. */
enum {
    AV_UK_AVX512_MR = 12, /* 12 x 2 zmm accumulators + 2 B vectors + broadcasts: 27 of 32 registers */
    AV_UK_AVX512_NV = 2,
    AV_UK_AVX2_MR = 6, /* 6 x 2 ymm accumulators + 2 B vectors + 1 broadcast: 15 of 16 registers */
    AV_UK_AVX2_NV = 2,
    AV_UK_SCALAR_MR = 4,
    AV_UK_SCALAR_NR = 16,
};

/* Row tiles of a block of m rows for a kernel of up to mr rows: mr rows each, then the rest, except that the
 * last mr + r rows (r = m % mr, 1-3, after a whole tile) become two tiles of about half each. A tile of 1-4
 * rows takes as long per step as a 4-row one (fewer than 8 accumulator chains wait on the multiply-add
 * latency of two FMA units), so 32 rows of the AVX2 kernel run as 6 6 6 6 4 4 instead of 6 6 6 6 6 2, 27 as
 * 6 6 6 5 4 (its 5-row kernel: 5 cycles a step against 4 + 6); docs/BENCHMARKS.md "Row tiles of at least 4
 * (session 35)". On AVX-512 (kernels of 4, 8 and 12 rows) the halves cost what 12 + 4 did. Tile t (of
 * ceil(m / mr), the count either way) starts at row av_tile_first(m, mr, t) and ends where tile t + 1 starts;
 * packed, it is panel t of mr columns (rows past its own zero). The tiling does not change any output's
 * chain: the same bits for any split. */
enum { AV_UK_MIN_ROWS = 4 };
static inline int av_tile_first(int m, int mr, int t) {
    int whole = m / mr, r = m % mr;
    if (mr <= AV_UK_MIN_ROWS || whole == 0 || r == 0 || r >= AV_UK_MIN_ROWS || t < whole)
        return t * mr < m ? t * mr : m;
    return t == whole ? (whole - 1) * mr + (mr + r + 1) / 2 : m; /* the second half, then the end */
}

#define AV_UKERNEL_DECL(name)                                                                                \
    void name(int k, const float *restrict a, int64_t lda, const float *restrict b, float *restrict c,       \
              int64_t ldc, int m, int n, float alpha, float beta)
AV_UKERNEL_DECL(av_ukernel_avx512);
AV_UKERNEL_DECL(av_ukernel_avx512_rows);
AV_UKERNEL_DECL(av_ukernel_avx512_steps);
AV_UKERNEL_DECL(av_ukernel_avx2);
AV_UKERNEL_DECL(av_ukernel_avx2_rows);
AV_UKERNEL_DECL(av_ukernel_avx2_steps);
/* The AVX2 and AVX-512 packing (gemm_pack_avx2.c, gemm_pack_avx512.c): same panels as av_pack_rows /
 * av_pack_weight. */
void av_pack_rows_avx2(const float *src, int64_t ld, int rows, int kc, int P, float *panel);
void av_pack_weight_avx2(const av_tensor *w, int64_t f0, int rows, int64_t k0, int kc, int P, float *panel,
                         float *tmp);
void av_pack_rows_avx512(const float *src, int64_t ld, int rows, int kc, int P, float *panel);
void av_pack_weight_avx512(const av_tensor *w, int64_t f0, int rows, int64_t k0, int kc, int P, float *panel,
                           float *tmp);

/* av_dequantize_rows with Q8_0, Q4_K and Q6_K expanded 16 values at a time in AVX-512 registers
 * (gemm_quant.h; the same bits); other dtypes go to av_dequantize_rows. Used by the AMX kernel. */
void av_dequantize_rows_avx512(const av_tensor *w, int64_t row0, int64_t n_rows, float *dst);

/* The micro-kernel of a path (AMX: the AVX-512 one, used for everything the tile kernel does not take), or
 * NULL for AV_GEMM_SGEMM. */
const av_ukernel *av_gemm_ukernel(av_gemm_path p);

/* y[i] (n, out_i) = x (n, in) W_i^T for count <= AV_MATMUL_MANY_MAX weights of any dtype with the same in, on
 * micro-kernel uk. Returns 0, or -1 (y incomplete) when memory runs out. */
int av_gemm_weights(float *const *y, const float *x, const av_tensor *const *w, int count, int n,
                    int n_threads, const av_ukernel *uk);

/* Guided scheduling of the weight products' threads (gemm.c's feature blocks, matvec.c's rows): a thread
 * claims a 1 / (2 x threads) share of the `left` units no thread has claimed yet, in whole `unit`s, at least
 * one unit and at most `most`, so that early claims are large and the last ones small and the threads finish
 * a call together (docs/BENCHMARKS.md "Guided block claims and the kept scratch block (session 33)"). */
static inline int64_t av_guided_share(int64_t left, int threads, int64_t unit, int64_t most) {
    int64_t share = (left / (2 * (int64_t)threads) + unit - 1) / unit * unit;
    return share > most ? most : share < unit ? unit : share;
}

/* Scratch blocks av_gemm_weights has allocated so far in this process: one is kept between calls, so a run
 * of calls allocates only when one needs more than any before it (tests/test_gemm.c). */
long av_gemm_scratch_allocations(void);

/* Depth of one packed block: a multiple of every block-quantized type's block (32, 256) so that a block of
 * weight columns starts and ends on quantization blocks. 512 measured 2-5% faster than 256 on the 1B shapes
 * (half the passes over C, twice the contiguous bytes per weight row per block): an A tile is 12 x 512
 * floats, 24 KiB of L1. */
enum { AV_GEMM_KC = 512 };

/* ---- packing (gemm_pack.c) ----
 * A panel of width P holds kc steps of P values: panel[p * P + r]. Rows/columns past the source are zero. */

/* panel[p * P + r] = src[r * ld + p] for r < rows (rows of a row-major matrix become panel columns). */
void av_pack_rows(const float *src, int64_t ld, int rows, int kc, int P, float *panel);
/* panel[p * P + r] = src[p * ld + r] for r < cols (rows of the source are the kc steps). */
void av_pack_cols(const float *src, int64_t ld, int cols, int kc, int P, float *panel);
/* Columns [k0, k0 + kc) of weight row `row` of w (out, in), any dtype, converted exactly to f32: dst (kc).
 * k0 and kc are multiples of the dtype's block (or kc reaches the end of the row). */
void av_weight_block_f32(const av_tensor *w, int64_t row, int64_t k0, int kc, float *dst);
/* The same through av_weight_block_f32 into tmp (rows, kc), then pack_rows: what every path does with the
 * dtypes its own packing does not convert. */
void av_pack_weight_via(const av_tensor *w, int64_t f0, int rows, int64_t k0, int kc, int P, float *panel,
                        float *tmp, av_pack_rows_fn pack_rows);
/* Weight rows [f0, f0 + rows), columns [k0, k0 + kc) of w (out, in), any dtype, converted exactly to f32 and
 * packed as av_pack_rows does. k0 and kc are multiples of the dtype's block; tmp: (rows, kc) floats. */
void av_pack_weight(const av_tensor *w, int64_t f0, int rows, int64_t k0, int kc, int P, float *panel,
                    float *tmp);

#endif
