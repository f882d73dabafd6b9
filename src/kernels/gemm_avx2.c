/* The AVX2 + FMA micro-kernel: 6 rows x 16 columns of C in 12 ymm accumulators (gemm_ukernel.h). The build's
 * baseline (x86-64-v3) has these instructions; gemm_cpu.c still checks CPUID before choosing it. */
#include <immintrin.h>

#define UK_NAME av_ukernel_avx2
#define UK_NAME_ROWS av_ukernel_avx2_rows
#define UK_NAME_STEPS av_ukernel_avx2_steps
#define UK_MR 6 /* AV_UK_AVX2_MR (a number: it names the instantiations) */
/* Rows 5 and 4: a tile of 1-4 rows takes 4 cycles per step whatever its rows (fewer than 8 chains wait on the
 * 4-cycle multiply-add latency of the two FMA units), 5 rows 5 cycles instead of the 6-row kernel's 6
 * (docs/BENCHMARKS.md "Row tiles of at least 4 (session 35)"). */
#define UK_ROWS_M 5
#define UK_ROWS_S 4
#define UK_NV AV_UK_AVX2_NV
#define UK_VL 8
typedef __m256 uk_vec;
#define UK_ZERO() _mm256_setzero_ps()
#define UK_SET1(x) _mm256_set1_ps(x)
#define UK_LOAD(p) _mm256_loadu_ps(p)
#define UK_STORE(p, v) _mm256_storeu_ps(p, v)
#define UK_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define UK_MUL(a, b) _mm256_mul_ps(a, b)
#define UK_PREFETCH(p) _mm_prefetch((const char *)(p), _MM_HINT_T0)
/* lanes [0, n) of 8: compare the lane index with n */
#define UK_LANES(n) _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define UK_LOADN(p, n) _mm256_maskload_ps(p, UK_LANES(n))
#define UK_STOREN(p, v, n) av_store_first8(p, v, n)

#include "gemm_ukernel.h"

_Static_assert(UK_MR == AV_UK_AVX2_MR, "UK_MR is the tile of gemm.h");
