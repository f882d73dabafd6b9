/* Q4_K rows in the dot product of matmul.c's matrix-vector path (token-by-token generation: one per weight
 * row and row of x), 16 lanes wide, on the avx512 and amx paths. Q4_K is the bulk of Q4_K_M files and the
 * most work per byte to expand; here each sub-block's 16 possible values come from a table, lut[q] = s * q -
 * m (the two operations av_dequantize_rows applies, on the same operands: the same bits), looked up by the
 * 4-bit integers with one permute, instead of a conversion, a product and a difference per value: 1.3x the
 * 8-lane loop's speed here. (For F16, Q8_0 and Q6_K the 8-lane code measured faster: 512-bit conversions
 * leave fewer ports.) The 32 partial sums are the 8-lane code's, lane for lane: accumulator a holds
 * matmul.c's s0 | s1 (values k .. k + 15 of each 32), b holds s2 | s3, and the final sum is formed in the
 * same order, so the paths agree bit for bit (tests/test_gemm.c). Compiled with -mavx512f -mavx512bw
 * -mavx512vl (see the Makefile); called only after gemm_cpu.c found AVX-512. */
#include "gemm.h"

#include <immintrin.h>

float av_dot_q4_k_avx512(const void *w, const float *x, int64_t n, const float *s, const float *m,
                         int64_t *done) {
    const __m512 iota = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    __m512 a = _mm512_setzero_ps(), b = a;
    int64_t k = 0;
    for (; k + 32 <= n; k += 32) { /* one sub-block: the low (r % 64 == 0) or high nibbles of 32 bytes */
        int r = (int)(k % AV_QK_K);
        const uint8_t *q = ((const av_block_q4_k *)w + k / AV_QK_K)->qs + 32 * (r / 64);
        __m512 lut = _mm512_sub_ps(_mm512_mul_ps(_mm512_set1_ps(s[k / 16]), iota), _mm512_set1_ps(m[k / 16]));
        __m512i lo = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)q));
        __m512i hi = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(q + 16)));
        if (r % 64) lo = _mm512_srli_epi32(lo, 4), hi = _mm512_srli_epi32(hi, 4);
        /* the permute reads an index's low 4 bits: the low nibble needs no mask */
        a = _mm512_fmadd_ps(_mm512_permutexvar_ps(lo, lut), _mm512_loadu_ps(x + k), a);
        b = _mm512_fmadd_ps(_mm512_permutexvar_ps(hi, lut), _mm512_loadu_ps(x + k + 16), b);
    }
    *done = k;
    /* (s0 + s1) + (s2 + s3), then the 8 lanes as matmul.c sums them */
    __m256 s01 = _mm256_add_ps(_mm512_castps512_ps256(a),
                               _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)));
    __m256 s23 = _mm256_add_ps(_mm512_castps512_ps256(b),
                               _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(b), 1)));
    __m256 v = _mm256_add_ps(s01, s23);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}
