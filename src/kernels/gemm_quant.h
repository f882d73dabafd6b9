/* Q8_0, Q4_K and Q6_K values expanded in vector registers, for the packing of the GEMM (gemm_pack_avx2.c,
 * gemm_pack_avx512.c) and the matrix-vector products (matmul.c): the weights are read once, in their stored
 * form, and never pass through an f32 row in memory.
 *
 * Exactness: the stored integers q of 32 (16) consecutive values of a row are unpacked into 32-bit lanes, and
 * the group's factors from av_dequant_groups (computed as ggml computes them, quants.h) are applied with the
 * operations of av_dequantize_rows, in its order: q * s (Q8_0), s * q - m (Q4_K: a product, then a
 * difference), s * (q - 32) (Q6_K). Each is one correctly rounded IEEE operation on the same operands, so the
 * lanes hold the bits av_dequantize_rows writes (tests/test_gemm.c compares the panels). The files using
 * these are C11 builds (-std=c11: no contraction of the product and difference into a fused multiply-add).
 *
 * v, the value index in the row, is a multiple of 32 (16 for the 16-lane version); row is the row's first
 * block. */
#ifndef AV_GEMM_QUANT_H
#define AV_GEMM_QUANT_H

#include "quants.h"

#if defined(__AVX2__)
#include <immintrin.h>

/* Values [v, v + 32) as four vectors of 8: the index arithmetic once for 32 values, whose bytes are
 * contiguous in every grouped type. s, m: the factors of their two 16-value groups. */
static inline __attribute__((always_inline)) void av_qload32(av_dtype t, const uint8_t *row, int64_t v,
                                                             const float *s, const float *m, __m256 out[4]) {
    __m256i q[4];
    if (t == AV_DTYPE_Q8_0) {
        const int8_t *b = ((const av_block_q8_0 *)row + v / AV_QK)->qs;
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++)
            q[i] = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(b + 8 * i)));
    } else if (t == AV_DTYPE_Q4_K) {
        int r = (int)(v % AV_QK_K);
        const uint8_t *b = ((const av_block_q4_k *)row + v / AV_QK_K)->qs + 32 * (r / 64);
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            q[i] = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(b + 8 * i)));
            q[i] = r % 64 ? _mm256_srli_epi32(q[i], 4) : _mm256_and_si256(q[i], _mm256_set1_epi32(0x0f));
        }
    } else { /* Q6_K: the 32 values' 6-bit integers in the byte lanes first (shifts within 16-bit lanes leave
              * only bits of the byte itself once masked), then widened */
        int r = (int)(v % AV_QK_K), h = r / 128, k = r % 128 / 32;
        const av_block_q6_k *b = (const av_block_q6_k *)row + v / AV_QK_K;
        __m256i lo = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h + 32 * (k & 1)));
        __m256i hi = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * h));
        lo = _mm256_and_si256(_mm256_srl_epi16(lo, _mm_cvtsi32_si128(4 * (k >> 1))), _mm256_set1_epi8(0x0f));
        hi = _mm256_and_si256(_mm256_srl_epi16(hi, _mm_cvtsi32_si128(2 * k)), _mm256_set1_epi8(3));
        __m256i q8 = _mm256_sub_epi8(_mm256_or_si256(lo, _mm256_slli_epi16(hi, 4)), _mm256_set1_epi8(32));
        __m128i a = _mm256_castsi256_si128(q8), c = _mm256_extracti128_si256(q8, 1);
        q[0] = _mm256_cvtepi8_epi32(a);
        q[1] = _mm256_cvtepi8_epi32(_mm_srli_si128(a, 8));
        q[2] = _mm256_cvtepi8_epi32(c);
        q[3] = _mm256_cvtepi8_epi32(_mm_srli_si128(c, 8));
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        __m256 f = _mm256_cvtepi32_ps(q[i]), vs = _mm256_set1_ps(s[i / 2]);
        if (t == AV_DTYPE_Q8_0)
            out[i] = _mm256_mul_ps(f, vs);
        else if (t == AV_DTYPE_Q6_K)
            out[i] = _mm256_mul_ps(vs, f);
        else
            out[i] = _mm256_sub_ps(_mm256_mul_ps(vs, f), _mm256_set1_ps(m[i / 2]));
    }
}
#endif

#if defined(__AVX512F__)
/* The 16-lane versions: values [v, v + 16), one whole group. */
static inline __attribute__((always_inline)) __m512i av_qints16(av_dtype t, const uint8_t *row, int64_t v) {
    if (t == AV_DTYPE_Q8_0) {
        const av_block_q8_0 *b = (const av_block_q8_0 *)row + v / AV_QK;
        return _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(b->qs + v % AV_QK)));
    }
    int r = (int)(v % AV_QK_K);
    if (t == AV_DTYPE_Q4_K) {
        const av_block_q4_k *b = (const av_block_q4_k *)row + v / AV_QK_K;
        __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(b->qs + 32 * (r / 64) + r % 32)));
        return _mm512_and_si512(_mm512_srli_epi32(q, 4 * ((r / 32) & 1)), _mm512_set1_epi32(0x0f));
    }
    const av_block_q6_k *b = (const av_block_q6_k *)row + v / AV_QK_K;
    int h = r / 128, k = r % 128 / 32, l = r % 32;
    __m512i lo = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(b->ql + 64 * h + 32 * (k & 1) + l)));
    __m512i hi = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(b->qh + 32 * h + l)));
    lo = _mm512_and_si512(_mm512_srli_epi32(lo, 4 * (k >> 1)), _mm512_set1_epi32(0x0f));
    hi = _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(hi, 2 * k), _mm512_set1_epi32(3)), 4);
    return _mm512_sub_epi32(_mm512_or_si512(lo, hi), _mm512_set1_epi32(32));
}

static inline __attribute__((always_inline)) __m512 av_qload16(av_dtype t, const uint8_t *row, int64_t v,
                                                               float s, float m) {
    __m512 q = _mm512_cvtepi32_ps(av_qints16(t, row, v));
    if (t == AV_DTYPE_Q8_0) return _mm512_mul_ps(q, _mm512_set1_ps(s));
    __m512 x = _mm512_mul_ps(_mm512_set1_ps(s), q);
    return t == AV_DTYPE_Q4_K ? _mm512_sub_ps(x, _mm512_set1_ps(m)) : x;
}
#endif

#endif
