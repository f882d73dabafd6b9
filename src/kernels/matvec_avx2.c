/* Row kernels of the matrix-vector products (matvec.h) on the avx2 path, 8 lanes wide, value k into
 * accumulator slot k / 8 % 4: F32, F16 and BF16 32 values at a time (by conversion and shift), then a plain
 * loop over the last values of a float row; the quantized types a block (Q8_0, Q4_0) or super-block (Q4_K,
 * Q5_K, Q6_K) at a time, with the operations of av_dequantize_rows on the same operands (the same bits),
 * every slot and shift a constant and the integers widened from memory (a load and one shuffle): row_q4_k
 * takes the eight sub-blocks' factors from the packed scales, row_k56 assembles the 5- and 6-bit integers in
 * bytes first, a super-block ahead. 1.3-2.5x the rate of the former 32-value steps through gemm_quant.h's
 * av_qload32
 * (docs/BENCHMARKS.md "Generation bandwidth (session 26)" and its "Value expansion" part).
 * Every kernel prefetches AV_MV_PREFETCH bytes ahead (matvec.h).
 * Compiled with -mavx2 -mfma -mf16c (see the Makefile); called only after gemm_cpu.c found AVX2, FMA and
 * F16C. */
#include "matvec.h"

#define AI static inline __attribute__((always_inline))

/* Factors computed once per block go through memory and come back as broadcasts from it (a load, no vector
 * port), as in matvec_avx512.c. */
#define VIA_MEMORY() __asm__ volatile("" ::: "memory")

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

typedef struct acc {
    __m256 v[AV_MV_NX][4]; /* (rows of x, slots) */
} acc;

/* slot g += w * x[i][k .. k + 8) for the nx rows of x, xk = x[0] + k. */
AI void fma_x(acc *a, int nx, int g, __m256 w, const float *xk, int64_t ldx) {
#pragma GCC unroll 4
    for (int i = 0; i < nx; i++)
        a->v[i][g] = _mm256_fmadd_ps(w, _mm256_loadu_ps(xk + i * ldx), a->v[i][g]);
}

/* Q4_K a super-block at a time with every shift a constant: sub-block j's values 32j + 8g + l, l < 8, into
 * slot g (the order of the 32-value steps), from the nibbles of qs[32 (j / 2) + 8g + l] (low for even j),
 * widened once for both sub-blocks. ggml's s q - m with s q exact (at most 17 + 4 bits): the fused form
 * rounds to the same value. The factors are computed a super-block ahead (s, m: this one's and the next
 * one's), so the broadcasts read values stored a super-block earlier: read back from the stores just made,
 * each waited for them (10% slower on Zen 3, docs/BENCHMARKS.md "Generation kernels: each super-block
 * unpacked one ahead (session 32)"). */
AI void row_q4_k(acc *a, int nx, const void *w, const float *x, int64_t ldx, int64_t n) {
    const __m256i low4 = _mm256_set1_epi32(0x0f);
    const av_block_q4_k *b = w;
    const int64_t blocks = n / AV_QK_K;
    _Alignas(32) float s[2][8], m[2][8]; /* [i & 1]: super-block i's */
    if (blocks > 0) av_mv_k_factors8(b[0].d, b[0].dmin, b[0].scales, s[0], m[0]);
    for (int64_t i = 0; i < blocks; i++, x += AV_QK_K) {
        av_mv_prefetch(&b[i], sizeof b[i]);
        if (i + 1 < blocks)
            av_mv_k_factors8(b[i + 1].d, b[i + 1].dmin, b[i + 1].scales, s[(i + 1) & 1], m[(i + 1) & 1]);
        VIA_MEMORY();
        const float *si = s[i & 1], *mi = m[i & 1];
#pragma GCC unroll 4
        for (int p = 0; p < 4; p++) {
            __m256i q[4];
#pragma GCC unroll 4
            for (int g = 0; g < 4; g++)
                q[g] = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(b[i].qs + 32 * p + 8 * g)));
#pragma GCC unroll 2
            for (int j = 2 * p; j < 2 * p + 2; j++) /* the sub-blocks: low nibbles, then high ones */
#pragma GCC unroll 4
                for (int g = 0; g < 4; g++) {
                    __m256i v = j & 1 ? _mm256_srli_epi32(q[g], 4) : _mm256_and_si256(q[g], low4);
                    __m256 wv =
                        _mm256_fmsub_ps(_mm256_set1_ps(si[j]), _mm256_cvtepi32_ps(v), _mm256_set1_ps(mi[j]));
                    fma_x(a, nx, g, wv, x + 32 * j + 8 * g, ldx);
                }
        }
    }
}

/* The 256 integers of a Q5_K super-block in bytes, value order: value 32j + l is the nibble of qs[32 (j / 2)
 * + l] (low for even j) plus 16 * bit j of qh[l]. Shifts within 16-bit lanes leave only bits of the byte
 * itself once masked. */
AI void q5_unpack(const av_block_q5_k *b, uint8_t q[AV_QK_K]) {
    const __m256i low4 = _mm256_set1_epi8(0x0f), bit4 = _mm256_set1_epi8(0x10);
    const __m256i qh = _mm256_loadu_si256((const __m256i *)b->qh);
#pragma GCC unroll 4
    for (int p = 0; p < 4; p++) {
        __m256i qs = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * p));
#pragma GCC unroll 2
        for (int j = 2 * p; j < 2 * p + 2; j++) {
            __m256i nib = _mm256_and_si256(j & 1 ? _mm256_srli_epi16(qs, 4) : qs, low4);
            __m256i hi = j < 4 ? _mm256_slli_epi16(qh, 4 - j) : _mm256_srli_epi16(qh, j - 4);
            _mm256_store_si256((__m256i *)(q + 32 * j), _mm256_or_si256(nib, _mm256_and_si256(hi, bit4)));
        }
    }
}

/* The 256 integers q - 32 of a Q6_K super-block in bytes, value order, and s = d * sc of each 16 values.
 * Value 128h + 32k + l (k, h as in matvec_avx512.c) is the low 4 bits of ql[64h + 32 (k & 1) + l] (the high
 * nibble for k >= 2) below bits 2k, 2k + 1 of qh[32h + l]; every shift a constant. */
AI void q6_unpack(const av_block_q6_k *b, int8_t q[AV_QK_K], float s[16]) {
    const __m256i low4 = _mm256_set1_epi8(0x0f), high2 = _mm256_set1_epi8(0x30), bias = _mm256_set1_epi8(32);
    __m256 d = _mm256_set1_ps(av_half(b->d));
#pragma GCC unroll 2
    for (int c = 0; c < 2; c++) {
        __m256i sc = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(b->scales + 8 * c)));
        _mm256_storeu_ps(s + 8 * c, _mm256_mul_ps(d, _mm256_cvtepi32_ps(sc)));
    }
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        __m256i ql[2] = {_mm256_loadu_si256((const __m256i *)(b->ql + 64 * h)),
                         _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h + 32))};
        __m256i qh = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * h));
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) { /* bits of the byte itself only, once masked */
            __m256i lo = k < 2 ? ql[k] : _mm256_srli_epi16(ql[k - 2], 4);
            __m256i hi = k < 2 ? _mm256_slli_epi16(qh, 4 - 2 * k) : _mm256_srli_epi16(qh, 2 * k - 4);
            __m256i q6 = _mm256_or_si256(_mm256_and_si256(lo, low4), _mm256_and_si256(hi, high2));
            _mm256_store_si256((__m256i *)(q + 128 * h + 32 * k), _mm256_sub_epi8(q6, bias));
        }
    }
}

/* Super-block i of a Q5_K or Q6_K row unpacked: its integers in bytes and its factors (Q5_K: s, m of each
 * 32 values; Q6_K: s of each 16). */
AI void unpack_k56(av_dtype t, const void *w, int64_t i, int8_t q[AV_QK_K], float s[16], float m[8]) {
    if (t == AV_DTYPE_Q5_K) {
        const av_block_q5_k *b = (const av_block_q5_k *)w + i;
        av_mv_k_factors8(b->d, b->dmin, b->scales, s, m);
        q5_unpack(b, (uint8_t *)q);
    } else {
        q6_unpack((const av_block_q6_k *)w + i, q, s);
    }
}

/* Q5_K and Q6_K a super-block at a time, value k into slot k / 8 % 4: ggml's s q - m (Q5_K, s q exact in at
 * most 17 + 5 bits, so the fused form rounds to the same value) and s (q - 32) (Q6_K). The integers are
 * unpacked in bytes a super-block ahead and widened 8 at a time from memory (a load and one shuffle each;
 * from a register the upper 8-byte quarters take two more shuffles), so the loads read bytes stored a
 * super-block earlier (row_q4_k). Q5_K's fifth bits merged 32 values at a time instead of 8 per step: ~5
 * vector operations per 8 values instead of ~7.5. */
AI void row_k56(av_dtype t, acc *a, int nx, const void *w, const float *x, int64_t ldx, int64_t n) {
    const size_t bytes = t == AV_DTYPE_Q5_K ? sizeof(av_block_q5_k) : sizeof(av_block_q6_k);
    const int64_t blocks = n / AV_QK_K;
    _Alignas(32) int8_t q[2][AV_QK_K]; /* [i & 1]: super-block i's */
    _Alignas(32) float s[2][16], m[2][8];
    if (blocks > 0) unpack_k56(t, w, 0, q[0], s[0], m[0]);
    for (int64_t i = 0; i < blocks; i++, x += AV_QK_K) {
        av_mv_prefetch((const char *)w + (size_t)i * bytes, bytes);
        if (i + 1 < blocks) unpack_k56(t, w, i + 1, q[(i + 1) & 1], s[(i + 1) & 1], m[(i + 1) & 1]);
        VIA_MEMORY(); /* else GCC widens from registers, with the extra shuffles */
        const int8_t *qi = q[i & 1];
        const float *si = s[i & 1], *mi = m[i & 1];
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) /* values 32k .. 32k + 32 */
#pragma GCC unroll 4
            for (int g = 0; g < 4; g++) {
                __m128i b8 = _mm_loadl_epi64((const __m128i *)(qi + 32 * k + 8 * g));
                __m256 wv;
                if (t == AV_DTYPE_Q5_K)
                    wv = _mm256_fmsub_ps(_mm256_set1_ps(si[k]), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b8)),
                                         _mm256_set1_ps(mi[k]));
                else
                    wv = _mm256_mul_ps(_mm256_set1_ps(si[2 * k + g / 2]),
                                       _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b8)));
                fma_x(a, nx, g, wv, x + 32 * k + 8 * g, ldx);
            }
    }
}

/* Q8_0 a block at a time: ggml's q * d, the 32 integers widened 8 at a time from memory. */
AI void row_q8_0(acc *a, int nx, const void *w, const float *x, int64_t ldx, int64_t n) {
    const av_block_q8_0 *b = w;
    for (int64_t i = 0; i < n / AV_QK; i++, x += AV_QK) {
        av_mv_prefetch(&b[i], sizeof b[i]);
        __m256 d = _mm256_set1_ps(av_half(b[i].d));
#pragma GCC unroll 4
        for (int g = 0; g < 4; g++) {
            __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(b[i].qs + 8 * g)));
            fma_x(a, nx, g, _mm256_mul_ps(_mm256_cvtepi32_ps(q), d), x + 8 * g, ldx);
        }
    }
}

/* Q4_0 a block at a time: values 0-15 are the low nibbles of its 16 bytes, 16-31 the high ones, each half
 * widened from memory (a load and one shuffle; from a register the upper 8 bytes take another). ggml's
 * (q - 8) * d is exact in f32 (4 + 11 bits), so q * d + (-8 d) rounds to the same value. */
AI void row_q4_0(acc *a, int nx, const void *w, const float *x, int64_t ldx, int64_t n) {
    const __m256i low4 = _mm256_set1_epi32(0x0f);
    const av_block_q4_0 *b = w;
    for (int64_t i = 0; i < n / AV_QK; i++, x += AV_QK) {
        av_mv_prefetch(&b[i], sizeof b[i]);
        __m256 d = _mm256_set1_ps(av_half(b[i].d)), md = _mm256_mul_ps(d, _mm256_set1_ps(-8.0f));
        __m256i q[2] = {_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)b[i].qs)),
                        _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(b[i].qs + 8)))};
#pragma GCC unroll 4
        for (int g = 0; g < 4; g++) { /* values 8g .. 8g + 8 */
            __m256i v = g < 2 ? _mm256_and_si256(q[g], low4) : _mm256_srli_epi32(q[g - 2], 4);
            fma_x(a, nx, g, _mm256_fmadd_ps(_mm256_cvtepi32_ps(v), d, md), x + 8 * g, ldx);
        }
    }
}

/* F32, F16 and BF16, 32 values at a time. */
AI void row_float(av_dtype t, acc *a, int nx, const void *w, const float *x, int64_t ldx, int64_t n) {
    const size_t size = t == AV_DTYPE_F32 ? 4 : 2; /* bytes per value */
    for (int64_t k = 0; k + 32 <= n; k += 32) {
        av_mv_prefetch((const char *)w + size * (size_t)k, 32 * size);
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++)
            fma_x(a, nx, q, load_w8(t, w, k + 8 * q), x + k + 8 * q, ldx);
    }
}

AI float hsum(__m256 a, __m256 b, __m256 c, __m256 d) { /* (a + b) + (c + d), then the 8 lanes */
    __m256 s = _mm256_add_ps(_mm256_add_ps(a, b), _mm256_add_ps(c, d));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

AI void row_kind(av_dtype t, const void *w, const float *x, int64_t ldx, int64_t n, int nx, float *out) {
    acc a;
#pragma GCC unroll 4
    for (int i = 0; i < nx; i++)
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++)
            a.v[i][q] = _mm256_setzero_ps();
    if (t == AV_DTYPE_Q4_K)
        row_q4_k(&a, nx, w, x, ldx, n);
    else if (t == AV_DTYPE_Q5_K || t == AV_DTYPE_Q6_K)
        row_k56(t, &a, nx, w, x, ldx, n);
    else if (t == AV_DTYPE_Q4_0)
        row_q4_0(&a, nx, w, x, ldx, n);
    else if (t == AV_DTYPE_Q8_0)
        row_q8_0(&a, nx, w, x, ldx, n);
    else
        row_float(t, &a, nx, w, x, ldx, n);
    int64_t k = n / 32 * 32; /* float rows only: a quantized row is whole blocks */
#pragma GCC unroll 4
    for (int i = 0; i < nx; i++) {
        float sum = hsum(a.v[i][0], a.v[i][1], a.v[i][2], a.v[i][3]);
        for (int64_t kk = k; kk < n; kk++)
            sum += av_mv_weight(t, w, kk) * x[i * ldx + kk];
        out[i] = sum;
    }
}

AV_MV_ROWS_TABLE(row_kind)

av_mv_rows_fn av_mv_rows_avx2(av_dtype t) { return mv_rows_for(t); }
