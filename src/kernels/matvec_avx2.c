/* Row kernels of the matrix-vector products (matvec.h) on the avx2 path, 8 lanes wide: 32 values at a time
 * as four vectors, value k into accumulator slot k / 8 % 4, then a plain loop over the last values of a
 * float row. F16 and BF16 by conversion and shift; Q8_0, Q4_K and Q6_K expanded in registers by av_qload32
 * (gemm_quant.h: the operations of av_dequantize_rows, the same bits); Q4_0 and Q5_K below, likewise.
 * Compiled with -mavx2 -mfma -mf16c (see the Makefile); called only after gemm_cpu.c found AVX2, FMA and
 * F16C. */
#include "gemm_quant.h"
#include "matvec.h"

#define AI static inline __attribute__((always_inline))

enum { CHUNK = 4096 }; /* values whose group factors are computed at once: (CHUNK / 16) floats each */

/* Weight values [k, k + 8) of an F32, F16 or BF16 row as f32, exactly. */
AI __m256 load_w8(av_dtype t, const void *w, int64_t k) {
    switch (t) {
    case AV_DTYPE_F16: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + k)));
    case AV_DTYPE_BF16: {
        __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + k)));
        return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
    }
    default: return _mm256_loadu_ps((const float *)w + k);
    }
}

/* Q4_0 block v / 32 (v a multiple of 32): values 0-15 are the low nibbles of its 16 bytes, 16-31 the high
 * ones. ggml's (q - 8) * d is exact in f32 (4 + 11 bits), so q * d + (-8 d) rounds to the same value. */
AI void load_q4_0(const void *w, int64_t v, __m256 out[4]) {
    const av_block_q4_0 *b = (const av_block_q4_0 *)w + v / AV_QK;
    __m256 d = _mm256_set1_ps(av_half(b->d)), md = _mm256_mul_ps(d, _mm256_set1_ps(-8.0f));
    __m128i raw = _mm_loadu_si128((const __m128i *)b->qs);
    __m256i lo = _mm256_cvtepu8_epi32(raw), hi = _mm256_cvtepu8_epi32(_mm_srli_si128(raw, 8));
    __m256i q[4] = {_mm256_and_si256(lo, _mm256_set1_epi32(0x0f)),
                    _mm256_and_si256(hi, _mm256_set1_epi32(0x0f)), _mm256_srli_epi32(lo, 4),
                    _mm256_srli_epi32(hi, 4)};
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++)
        out[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q[i]), d, md);
}

/* Q4_K and Q5_K values [v, v + 32), sub-block j = v % 256 / 32: the nibbles of qs[32 (j / 2) + l] (low for
 * even j), for Q5_K plus 16 * bit j of qh[l]; s, m: the sub-block's factors (av_mv_k_factors8). ggml's
 * s q - m with s q exact (at most 17 + 5 bits): the fused form rounds to the same value. */
AI void load_q45_k(av_dtype t, const void *w, int64_t v, float s, float m, __m256 out[4]) {
    const av_block_q5_k *b5 = (const av_block_q5_k *)w + v / AV_QK_K;
    int j = (int)(v % AV_QK_K / 32);
    const uint8_t *qh = b5->qh,
                  *qs = (t == AV_DTYPE_Q4_K ? ((const av_block_q4_k *)w + v / AV_QK_K)->qs : b5->qs) +
                        32 * (j / 2);
    __m128i shift = _mm_cvtsi32_si128(4 * (j & 1)), bit = _mm_cvtsi32_si128(j);
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        __m256i q = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(qs + 8 * i)));
        q = _mm256_and_si256(_mm256_srl_epi32(q, shift), _mm256_set1_epi32(0x0f));
        if (t == AV_DTYPE_Q5_K) {
            __m256i h = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(qh + 8 * i)));
            h = _mm256_slli_epi32(_mm256_and_si256(_mm256_srl_epi32(h, bit), _mm256_set1_epi32(1)), 4);
            q = _mm256_or_si256(q, h);
        }
        out[i] = _mm256_fmsub_ps(_mm256_set1_ps(s), _mm256_cvtepi32_ps(q), _mm256_set1_ps(m));
    }
}

/* The factors of a row's values [k0, k0 + n): per 16-value group of Q8_0 and Q6_K (av_dequant_groups), per
 * 32-value sub-block of Q4_K and Q5_K (s, m: (n / 16) each). */
AI void row_factors(av_dtype t, const void *w, int64_t k0, int64_t n, float *s, float *m) {
    if (t != AV_DTYPE_Q4_K && t != AV_DTYPE_Q5_K) {
        av_dequant_groups(t, w, k0, (int)n / 16, s, m);
        return;
    }
    const av_block_q4_k *b4 = (const av_block_q4_k *)w + k0 / AV_QK_K;
    const av_block_q5_k *b5 = (const av_block_q5_k *)w + k0 / AV_QK_K;
    for (int64_t i = 0; i < n / AV_QK_K; i++)
        if (t == AV_DTYPE_Q4_K)
            av_mv_k_factors8(b4[i].d, b4[i].dmin, b4[i].scales, s + 8 * i, m + 8 * i);
        else
            av_mv_k_factors8(b5[i].d, b5[i].dmin, b5[i].scales, s + 8 * i, m + 8 * i);
}

/* Values [k, k + 32) of a row of dtype t; s, m: the factors of their groups (row_factors, from value k0). */
AI void load32(av_dtype t, const void *w, int64_t k, int64_t k0, const float *s, const float *m,
               __m256 out[4]) {
    if (av_dtype_grouped(t) && t != AV_DTYPE_Q4_K)
        av_qload32(t, w, k, s + (k - k0) / 16, m + (k - k0) / 16, out);
    else if (t == AV_DTYPE_Q4_0)
        load_q4_0(w, k, out);
    else if (t == AV_DTYPE_Q4_K || t == AV_DTYPE_Q5_K)
        load_q45_k(t, w, k, s[(k - k0) / 32], m[(k - k0) / 32], out);
    else
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++)
            out[q] = load_w8(t, w, k + 8 * q);
}

AI float hsum(__m256 a, __m256 b, __m256 c, __m256 d) { /* (a + b) + (c + d), then the 8 lanes */
    __m256 s = _mm256_add_ps(_mm256_add_ps(a, b), _mm256_add_ps(c, d));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

AI void row_kind(av_dtype t, const void *w, const float *x, int64_t ldx, int64_t n, int nx, float *out) {
    __m256 acc[AV_MV_NX][4];
    float s[CHUNK / 16], m[CHUNK / 16]; /* the factors of a grouped row's 16-value groups */
#pragma GCC unroll 4
    for (int i = 0; i < nx; i++)
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++)
            acc[i][q] = _mm256_setzero_ps();
    size_t row_bytes = 0, step; /* bytes of the row, of 32 of its values (rounded down for Q6_K) */
    av_dtype_nbytes(t, (size_t)n, &row_bytes);
    step = row_bytes * 32 / (size_t)n;
    const char *at = w; /* where value k is read, to within step */
    int64_t k = 0;
    for (int64_t k0 = 0; k0 < n; k0 += CHUNK) {
        int64_t end = n - k0 < CHUNK ? n : k0 + CHUNK;
        if (av_dtype_grouped(t) || t == AV_DTYPE_Q5_K) row_factors(t, w, k0, end - k0, s, m);
        for (k = k0; k + 32 <= end; k += 32) {
            __m256 wv[4];
            av_mv_prefetch(at, t == AV_DTYPE_F32 ? 128 : 64);
            at += step;
            load32(t, w, k, k0, s, m, wv);
#pragma GCC unroll 4
            for (int q = 0; q < 4; q++)
#pragma GCC unroll 4
                for (int i = 0; i < nx; i++)
                    acc[i][q] = _mm256_fmadd_ps(wv[q], _mm256_loadu_ps(x + i * ldx + k + 8 * q), acc[i][q]);
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < nx; i++) {
        float sum = hsum(acc[i][0], acc[i][1], acc[i][2], acc[i][3]);
        for (int64_t kk = k; kk < n; kk++) /* float rows only: a grouped row is whole blocks */
            sum += av_mv_weight(t, w, kk) * x[i * ldx + kk];
        out[i] = sum;
    }
}

AV_MV_ROW_TABLE(row_kind)

av_mv_row_fn av_mv_row_avx2(av_dtype t) { return mv_row_for(t); }
