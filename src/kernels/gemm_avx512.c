/* The AVX-512 micro-kernel: 12 rows x 32 columns of C in 24 zmm accumulators (gemm_ukernel.h). This file
 * alone is compiled with -mavx512f (see the Makefile); it runs only after gemm_cpu.c found AVX-512F and the
 * OS's ZMM state enabled. */
#include <immintrin.h>

#define UK_NAME av_ukernel_avx512
#define UK_NAME_ROWS av_ukernel_avx512_rows
#define UK_NAME_STEPS av_ukernel_avx512_steps
#define UK_MR 12 /* AV_UK_AVX512_MR (a number: it names the instantiations) */
#define UK_ROWS_M 8
#define UK_ROWS_S 4
#define UK_NV AV_UK_AVX512_NV
#define UK_VL 16
typedef __m512 uk_vec;
#define UK_ZERO() _mm512_setzero_ps()
#define UK_SET1(x) _mm512_set1_ps(x)
#define UK_LOAD(p) _mm512_loadu_ps(p)
#define UK_STORE(p, v) _mm512_storeu_ps(p, v)
#define UK_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define UK_MUL(a, b) _mm512_mul_ps(a, b)
#define UK_PREFETCH(p) _mm_prefetch((const char *)(p), _MM_HINT_T0)
#define UK_LOADN(p, n) _mm512_maskz_loadu_ps((__mmask16)((1u << (n)) - 1), p)
#define UK_STOREN(p, v, n) _mm512_mask_storeu_ps(p, (__mmask16)((1u << (n)) - 1), v)

#include "gemm_ukernel.h"

_Static_assert(UK_MR == AV_UK_AVX512_MR, "UK_MR is the tile of gemm.h");
