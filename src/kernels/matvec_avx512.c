/* Row kernels of the matrix-vector products (matvec.h) on the avx512 and amx paths, 16 lanes wide. Compiled
 * with -mavx512f -mavx512bw -mavx512vl (see the Makefile); called only after gemm_cpu.c found AVX-512.
 *
 * Each kernel produces the row's exact f32 values 16 at a time and multiplies each vector into the rows of x
 * with fused multiply-adds, value k into accumulator slot k / 16 % 4 (so every dtype's sums are the F32
 * kernel's, lane for lane). How the values are made, with the operations of av_dequantize_rows on the same
 * operands (quants.h; the same bits):
 *  - F16 by conversion, BF16 by a shift, F32 as they are;
 *  - Q8_0 as q * d after an int -> float conversion; Q6_K likewise, s * (q - 32), its 6-bit integers
 *    assembled 64 at a time in bytes first;
 *  - 4- and 5-bit types from a table in a register: the 16 (Q4_0, Q4_K) or 32 (Q5_K) values a sub-block can
 *    take, (i - 8) * d or s * i - m (s * i is exact: at most 11 + 6 + 5 bits, so the fused s * i - m rounds
 *    once, as the product and difference do), looked up by the integers with one permute; Q4_K's and Q5_K's
 *    factors 16 super-blocks at a time, ahead of their values.
 * The f16 block scales (Q8_0, Q4_0; Q4_K's and Q5_K's d and dmin) come by 16-lane gathers where those are
 * fast (av_fast_gathers: Intel), else each block's is converted where it is used (AMD's Zen, whose gathers
 * cost more than the conversions): two instantiations of the four kernels, chosen per call.
 * Every kernel is bound by its count of vector operations per value on the two 512-bit ports (a permute or
 * widening on port 5, shifts on port 0, conversions, multiplies and fused multiply-adds on either): measured
 * at 80-90% of that budget, docs/BENCHMARKS.md "Value expansion (session 26, later)".
 * Every kernel prefetches AV_MV_PREFETCH bytes ahead of its reads, a line per 64 bytes read (matvec.h). */
#include "matvec.h"
#include "quants.h"

#include <immintrin.h>
#include <stddef.h>

#define AI static inline __attribute__((always_inline))

/* Factors computed once per block go through memory and come back as broadcasts from it, which take no
 * vector port: without this compiler barrier GCC keeps them in registers and broadcasts lane by lane with
 * shuffles, on the port the permutes and widenings need (measured 1.5x slower). */
#define VIA_MEMORY() __asm__ volatile("" ::: "memory")

enum { SLOTS = 4 }; /* accumulators per row of x: 4 independent chains hide the fused multiply-add latency */

typedef struct acc {
    __m512 v[AV_MV_NX][SLOTS];
} acc;

/* slot += w * x[i][k .. k + 16) for the nx rows of x, xk = x[0] + k (the slot of value k: k / 16 % 4, a
 * constant in every caller, so that the accumulators stay in registers). */
AI void fma_x(acc *a, int nx, int slot, __m512 w, const float *xk, int64_t ldx) {
#pragma GCC unroll 4
    for (int i = 0; i < nx; i++)
        a->v[i][slot] = _mm512_fmadd_ps(w, _mm512_loadu_ps(xk + i * ldx), a->v[i][slot]);
}

/* ---- F32, F16, BF16 ---- */

AI __m512 float16(av_dtype t, const void *w, int64_t k, __mmask16 m) {
    const uint16_t *h = (const uint16_t *)w + k;
    switch (t) {
    case AV_DTYPE_F16: return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, h));
    case AV_DTYPE_BF16:
        return _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, h)), 16));
    default: return _mm512_maskz_loadu_ps(m, (const float *)w + k);
    }
}

AI void row_float(av_dtype t, acc *a, int nx, const void *w, const float *x, int64_t ldx, int64_t n) {
    const size_t size = t == AV_DTYPE_F32 ? 4 : 2; /* bytes per value */
    int64_t k = 0;
    for (; k + 64 <= n; k += 64) {
        av_mv_prefetch((const char *)w + size * (size_t)k, 64 * size);
#pragma GCC unroll 4
        for (int s = 0; s < 4; s++)
            fma_x(a, nx, s, float16(t, w, k + 16 * s, 0xffff), x + k + 16 * s, ldx);
    }
    if (k < n) /* the last values: partial vectors read as 0 past n */
#pragma GCC unroll 4
        for (int s = 0; s < 4; s++) {
            int64_t left = n - k - 16 * s;
            if (left <= 0) break;
            __mmask16 m = left >= 16 ? 0xffff : (__mmask16)((1u << left) - 1);
            __m512 v = float16(t, w, k + 16 * s, m);
#pragma GCC unroll 4
            for (int i = 0; i < nx; i++)
                a->v[i][s] =
                    _mm512_fmadd_ps(v, _mm512_maskz_loadu_ps(m, x + i * ldx + k + 16 * s), a->v[i][s]);
        }
}

/* ---- the 32-value legacy blocks ---- */

/* One block, values k0 .. k0 + 32 of x (k0: 0 or 32 in a pair of blocks, so every slot is a constant); d: its
 * scale as f32. */
AI void legacy_block(av_dtype t, acc *a, int nx, const void *blk, float d, const float *x, int64_t ldx,
                     int k0) {
    if (t == AV_DTYPE_Q8_0) {
        const av_block_q8_0 *b = blk;
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) { /* ggml: q * d */
            __m512i q = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(b->qs + 16 * h)));
            fma_x(a, nx, k0 / 16 + h, _mm512_mul_ps(_mm512_cvtepi32_ps(q), _mm512_set1_ps(d)),
                  x + k0 + 16 * h, ldx);
        }
    } else { /* Q4_0 */
        const av_block_q4_0 *b = blk;
        const __m512 centered = _mm512_setr_ps(-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7);
        __m512 lut = _mm512_mul_ps(centered, _mm512_set1_ps(d)); /* ggml: (q - 8) * d */
        __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)b->qs));
        /* values 0-15: low nibbles (the permute reads an index's low 4 bits), 16-31: high nibbles */
        fma_x(a, nx, k0 / 16, _mm512_permutexvar_ps(q, lut), x + k0, ldx);
        fma_x(a, nx, k0 / 16 + 1, _mm512_permutexvar_ps(_mm512_srli_epi32(q, 4), lut), x + k0 + 16, ldx);
    }
}

/* The f16 scales (the first 2 bytes) of nb blocks `bytes` apart as f32, 16 at a time by a gather. d: (nb) */
AI void legacy_scales(const uint8_t *b, size_t bytes, int nb, float *d) {
    const __m512i at =
        _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                           _mm512_set1_epi32((int)bytes));
    for (int i = 0; i < nb; i += 16, b += 16 * bytes) {
        __mmask16 m = nb - i >= 16 ? 0xffff : (__mmask16)((1u << (nb - i)) - 1);
        __m512i v =
            _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m, at, b, 1); /* d and 2 bytes after */
        _mm512_mask_storeu_ps(d + i, m, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(v)));
    }
}

/* The f16 scale of the block at b as f32, converted where it is used. */
AI float legacy_scale(const uint8_t *b) {
    return _mm_cvtss_f32(_mm_maskz_cvtph_ps(1, _mm_cvtsi32_si128(av_load_le16(b))));
}

enum { LEGACY_GROUP = 128 }; /* legacy blocks whose scales are gathered at a time */

/* gather: the scales of LEGACY_GROUP blocks by gathers, ahead of their blocks (broadcast back from memory:
 * no vector port); else each block's converted where it is used (a conversion and a broadcast more per block,
 * no gather: 1.16x (Q4_0) and 1.17x (Q8_0) as fast on Zen 5, whose gathers are slow). */
AI void row_legacy(av_dtype t, int gather, acc *a, int nx, const void *w, const float *x, int64_t ldx,
                   int64_t n) {
    size_t bytes = t == AV_DTYPE_Q8_0 ? sizeof(av_block_q8_0) : sizeof(av_block_q4_0);
    const uint8_t *b = w;
    float d[LEGACY_GROUP];
    for (int64_t b0 = 0; b0 < n / AV_QK; b0 += LEGACY_GROUP) {
        int nb = n / AV_QK - b0 < LEGACY_GROUP ? (int)(n / AV_QK - b0) : LEGACY_GROUP, i = 0;
        if (gather) {
            legacy_scales(b, bytes, nb, d);
            VIA_MEMORY();
        }
        for (; i + 2 <= nb; i += 2, b += 2 * bytes, x += 2 * AV_QK) {
            av_mv_prefetch(b, t == AV_DTYPE_Q8_0 ? 2 * sizeof(av_block_q8_0) : 2 * sizeof(av_block_q4_0));
            legacy_block(t, a, nx, b, gather ? d[i] : legacy_scale(b), x, ldx, 0);
            legacy_block(t, a, nx, b + bytes, gather ? d[i + 1] : legacy_scale(b + bytes), x, ldx, 32);
        }
        if (i < nb) { /* an odd count only in the last group (LEGACY_GROUP is even) */
            legacy_block(t, a, nx, b, gather ? d[i] : legacy_scale(b), x, ldx, 0);
            b += bytes, x += AV_QK;
        }
    }
}

/* ---- k-quants: 256-value super-blocks ---- */

/* s * (i + from) - m for i = 0..15 */
AI __m512 k_table(float s, float m, float from) {
    const __m512 iota = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    return _mm512_fmsub_ps(_mm512_set1_ps(s), _mm512_add_ps(iota, _mm512_set1_ps(from)), _mm512_set1_ps(m));
}

/* The factors of nb <= K_GROUP Q4_K or Q5_K super-blocks `bytes` apart (both begin with d, dmin and the
 * packed scales): f[i] = the eight sub-blocks' scales s = d * sc, then their mins m = dmin * mn (ggml's d1,
 * m1; the products of av_mv_k_factors8). The 6-bit integers are unpacked by scalar code and enter a register
 * whole (not through byte stores and a vector load, which the store buffer cannot forward). d and dmin:
 * gather: of all nb by one 16-lane gather and two f16 conversions, broadcast back from memory (4 vector
 * operations per super-block: widen, convert, blend, multiply; +8-10% on Intel, docs/BENCHMARKS.md "Value
 * expansion (session 26, later)"); else each super-block's converted together and spread to the register's
 * halves by a permute (5 operations, no gather: the gather cost 3-5% of a Q4_K row on Zen 5, "K-quant
 * factors without a gather, huge pages for the forward pass's buffers (session 37)"). f: (nb, 16) */
enum { K_GROUP = 16 };
AI void k_factors(int gather, const uint8_t *b, size_t bytes, int nb, float (*f)[16]) {
    const __m512i halves = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    float dmf[2 * K_GROUP]; /* gather: (nb, 2) d, dmin */
    if (gather) {
        const __m512i at =
            _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                               _mm512_set1_epi32((int)bytes));
        __mmask16 live = nb >= 16 ? 0xffff : (__mmask16)((1u << nb) - 1);
        __m512i dm = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), live, at, b, 1);
        _mm512_storeu_ps(dmf, _mm512_cvtph_ps(_mm512_castsi512_si256(dm)));
        _mm512_storeu_ps(dmf + 16, _mm512_cvtph_ps(_mm512_extracti64x4_epi64(dm, 1)));
        VIA_MEMORY();
    }
    for (int i = 0; i < nb; i++, b += bytes) {
        uint64_t sc, mn;
        av_k_scales_mins8(b + offsetof(av_block_q4_k, scales), &sc, &mn);
        __m512 d =
            gather ? _mm512_mask_blend_ps(0xff00, _mm512_set1_ps(dmf[2 * i]), _mm512_set1_ps(dmf[2 * i + 1]))
                   : _mm512_permutexvar_ps(halves, _mm512_castps128_ps512(_mm_maskz_cvtph_ps(
                                                       3, _mm_cvtsi32_si128((int)av_load_le32(b)))));
        __m512 v = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_set_epi64x((long long)mn, (long long)sc)));
        _mm512_storeu_ps(f[i], _mm512_mul_ps(d, v));
    }
}

/* Sub-blocks 2p (low nibbles of qs[32p .. 32p + 32)) and 2p + 1 (high nibbles) are values 64p .. 64p + 64. */
AI void row_q4_k(int gather, acc *a, int nx, const void *w, const float *x, int64_t ldx, int64_t n) {
    const av_block_q4_k *b = w;
    float f[K_GROUP][16]; /* the factors of K_GROUP super-blocks */
    for (int64_t i0 = 0; i0 < n / AV_QK_K; i0 += K_GROUP) {
        int nb = n / AV_QK_K - i0 < K_GROUP ? (int)(n / AV_QK_K - i0) : K_GROUP;
        k_factors(gather, (const uint8_t *)&b[i0], sizeof *b, nb, f);
        VIA_MEMORY();
        for (int i = 0; i < nb; i++, x += AV_QK_K) {
            const uint8_t *qs = b[i0 + i].qs;
            const float *s = f[i], *m = f[i] + 8;
            av_mv_prefetch(&b[i0 + i], sizeof *b);
#pragma GCC unroll 4
            for (int p = 0; p < 4; p++) {
                __m512i q0 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(qs + 32 * p)));
                __m512i q1 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(qs + 32 * p + 16)));
                __m512 lo = k_table(s[2 * p], m[2 * p], 0), hi = k_table(s[2 * p + 1], m[2 * p + 1], 0);
                fma_x(a, nx, 0, _mm512_permutexvar_ps(q0, lo), x + 64 * p, ldx);
                fma_x(a, nx, 1, _mm512_permutexvar_ps(q1, lo), x + 64 * p + 16, ldx);
                fma_x(a, nx, 2, _mm512_permutexvar_ps(_mm512_srli_epi32(q0, 4), hi), x + 64 * p + 32, ldx);
                fma_x(a, nx, 3, _mm512_permutexvar_ps(_mm512_srli_epi32(q1, 4), hi), x + 64 * p + 48, ldx);
            }
        }
    }
}

/* Q5_K's value of sub-block j at l: the nibble plus 16 * bit j of qh[l]; as a 5-bit index into two tables
 * (values 0-15, 16-31): bits 0-3 from the nibble, bit 4 from qh moved there (higher bits are ignored). */
AI __m512 q5_value(__m512i nib, __m512i qh, int j, __m512 lo, __m512 hi) {
    __m512i bit = j <= 4 ? _mm512_slli_epi32(qh, 4 - j) : _mm512_srli_epi32(qh, j - 4);
    __m512i idx = _mm512_ternarylogic_epi32(nib, bit, _mm512_set1_epi32(0x0f), 0xe4); /* c ? a : b, bitwise */
    return _mm512_permutex2var_ps(lo, idx, hi);
}

AI void row_q5_k(int gather, acc *a, int nx, const void *w, const float *x, int64_t ldx, int64_t n) {
    const av_block_q5_k *b = w;
    float f[K_GROUP][16]; /* the factors of K_GROUP super-blocks */
    for (int64_t i0 = 0; i0 < n / AV_QK_K; i0 += K_GROUP) {
        int nb = n / AV_QK_K - i0 < K_GROUP ? (int)(n / AV_QK_K - i0) : K_GROUP;
        k_factors(gather, (const uint8_t *)&b[i0], sizeof *b, nb, f);
        VIA_MEMORY();
        for (int i = 0; i < nb; i++, x += AV_QK_K) {
            const av_block_q5_k *bi = &b[i0 + i];
            const float *s = f[i], *m = f[i] + 8;
            av_mv_prefetch(bi, sizeof *bi);
            __m512i h0 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)bi->qh));
            __m512i h1 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(bi->qh + 16)));
#pragma GCC unroll 4
            for (int p = 0; p < 4; p++) {
                __m512i q0 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(bi->qs + 32 * p)));
                __m512i q1 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(bi->qs + 32 * p + 16)));
                int j = 2 * p;
                __m512 lo = k_table(s[j], m[j], 0), hi = k_table(s[j], m[j], 16);
                fma_x(a, nx, 0, q5_value(q0, h0, j, lo, hi), x + 64 * p, ldx);
                fma_x(a, nx, 1, q5_value(q1, h1, j, lo, hi), x + 64 * p + 16, ldx);
                lo = k_table(s[j + 1], m[j + 1], 0), hi = k_table(s[j + 1], m[j + 1], 16);
                fma_x(a, nx, 2, q5_value(_mm512_srli_epi32(q0, 4), h0, j + 1, lo, hi), x + 64 * p + 32, ldx);
                fma_x(a, nx, 3, q5_value(_mm512_srli_epi32(q1, 4), h1, j + 1, lo, hi), x + 64 * p + 48, ldx);
            }
        }
    }
}

/* Q6_K's integers q - 32 in value order, q (256), and s (16) = d * sc of each 16 values (ggml's) of
 * super-block b. Half h (128 values) takes low 4 bits from ql[64h ..] (values 0-63: low nibbles of its 64
 * bytes, 64-127: high nibbles) and 2 high bits from qh[32h + l] (bits 2k, 2k + 1 for value 32k + l), 64
 * values at a time: byte lanes 0-31 are values 32k + l, lanes 32-63 values 32(k + 1) + l, in order. */
AI void q6_unpack(const av_block_q6_k *b, int8_t q[AV_QK_K], float s[16]) {
    const __m512i up = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);     /* k = 0, 1 */
    const __m512i down = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1); /* k = 2, 3 */
    const __m512i low4 = _mm512_set1_epi8(0x0f), high2 = _mm512_set1_epi8(0x30), bias = _mm512_set1_epi8(32);
    _mm512_storeu_ps(
        s,
        _mm512_mul_ps(_mm512_set1_ps(av_half(b->d)),
                      _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)b->scales)))));
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        __m512i ql = _mm512_loadu_si512(b->ql + 64 * h);
        __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(b->qh + 32 * h)));
#pragma GCC unroll 2
        for (int half = 0; half < 2; half++) { /* k = 0, 1, then k = 2, 3 */
            __m512i lo = half ? _mm512_srli_epi16(ql, 4) : ql;
            __m512i hi = half ? _mm512_srlv_epi16(qh, down) : _mm512_sllv_epi16(qh, up);
            __m512i q6 = _mm512_ternarylogic_epi32(lo, low4, _mm512_and_si512(hi, high2), 0xea); /* a&b|c */
            _mm512_store_si512(q + 128 * h + 64 * half, _mm512_sub_epi8(q6, bias));
        }
    }
}

/* Q6_K: ggml's (d * sc) * (q - 32), the integers widened 16 at a time from memory (a load and one shuffle;
 * from a register the upper quarters take an extraction more). Super-block i + 1 is unpacked while
 * super-block i is multiplied, so the loads read bytes stored a super-block earlier: read back from the
 * stores just made, each waited for them (Zen 5: 1.24-1.38x slower, docs/BENCHMARKS.md "Q6_K unpacked one
 * ahead, row kernels on blocks of rows (session 38)"; the AVX2 kernels' row_k56 likewise). */
AI void row_q6_k(acc *a, int nx, const void *w, const float *x, int64_t ldx, int64_t n) {
    const av_block_q6_k *b = w;
    const int64_t blocks = n / AV_QK_K;
    _Alignas(64) int8_t q[2][AV_QK_K]; /* [i & 1]: super-block i's */
    _Alignas(64) float s[2][16];
    if (blocks > 0) q6_unpack(&b[0], q[0], s[0]);
    for (int64_t i = 0; i < blocks; i++, x += AV_QK_K) {
        av_mv_prefetch(&b[i], sizeof b[i]);
        if (i + 1 < blocks) q6_unpack(&b[i + 1], q[(i + 1) & 1], s[(i + 1) & 1]);
        VIA_MEMORY(); /* else GCC widens from registers, after an extraction (two shuffles) */
        const int8_t *qi = q[i & 1];
        const float *si = s[i & 1];
#pragma GCC unroll 16
        for (int g = 0; g < 16; g++) {
            __m512 v =
                _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_load_si128((const __m128i *)(qi + 16 * g))));
            fma_x(a, nx, g % 4, _mm512_mul_ps(_mm512_set1_ps(si[g]), v), x + 16 * g, ldx);
        }
    }
}

/* ---- one kernel per dtype, instantiated for 1 .. AV_MV_NX rows of x ---- */

/* gather: block scales fetched by gathers (av_fast_gathers: Intel), else converted in place (AMD). */
AI void row_body(av_dtype t, int gather, const void *w, const float *x, int64_t ldx, int64_t n, int nx,
                 float *out) {
    acc a;
#pragma GCC unroll 4
    for (int i = 0; i < nx; i++)
#pragma GCC unroll 4
        for (int s = 0; s < SLOTS; s++)
            a.v[i][s] = _mm512_setzero_ps();
    switch (t) {
    case AV_DTYPE_Q8_0:
    case AV_DTYPE_Q4_0: row_legacy(t, gather, &a, nx, w, x, ldx, n); break;
    case AV_DTYPE_Q4_K: row_q4_k(gather, &a, nx, w, x, ldx, n); break;
    case AV_DTYPE_Q5_K: row_q5_k(gather, &a, nx, w, x, ldx, n); break;
    case AV_DTYPE_Q6_K: row_q6_k(&a, nx, w, x, ldx, n); break;
    default: row_float(t, &a, nx, w, x, ldx, n); break;
    }
#pragma GCC unroll 4
    for (int i = 0; i < nx; i++) /* (s0 + s1) + (s2 + s3), then the 16 lanes */
        out[i] = _mm512_reduce_add_ps(
            _mm512_add_ps(_mm512_add_ps(a.v[i][0], a.v[i][1]), _mm512_add_ps(a.v[i][2], a.v[i][3])));
}

AI void row_kind(av_dtype t, const void *w, const float *x, int64_t ldx, int64_t n, int nx, float *out) {
    row_body(t, 0, w, x, ldx, n, nx, out);
}

AI void row_gathered(av_dtype t, const void *w, const float *x, int64_t ldx, int64_t n, int nx, float *out) {
    row_body(t, 1, w, x, ldx, n, nx, out);
}

AV_MV_ROWS_TABLE(row_kind)
AV_MV_ROWS_FN(mv_rows_q8_0_gathered, row_gathered, AV_DTYPE_Q8_0)
AV_MV_ROWS_FN(mv_rows_q4_0_gathered, row_gathered, AV_DTYPE_Q4_0)
AV_MV_ROWS_FN(mv_rows_q4_k_gathered, row_gathered, AV_DTYPE_Q4_K)
AV_MV_ROWS_FN(mv_rows_q5_k_gathered, row_gathered, AV_DTYPE_Q5_K)

av_mv_rows_fn av_mv_rows_avx512(av_dtype t) {
    if (av_fast_gathers()) switch (t) {
        case AV_DTYPE_Q8_0: return mv_rows_q8_0_gathered;
        case AV_DTYPE_Q4_0: return mv_rows_q4_0_gathered;
        case AV_DTYPE_Q4_K: return mv_rows_q4_k_gathered;
        case AV_DTYPE_Q5_K: return mv_rows_q5_k_gathered;
        default: break;
        }
    return mv_rows_for(t);
}
