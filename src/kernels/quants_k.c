/* The k-quants: 256-value super-blocks of 16 or 8 sub-blocks, each sub-block with an integer scale (and min)
 * that multiplies the super-block's f16 scale (and f16 min scale). Value order inside a super-block follows
 * ggml: the low bits of 32 (Q2_K, Q3_K: 16 + 16) consecutive values share a byte range, one bit group at a
 * time. Operations and their order follow ggml's dequantize_row_* and quantize_row_q4_K_ref (see quants.h).
 */
#include "quants.h"

#include <math.h>
#include <string.h>

void av_dequant_q2_k(const void *restrict blocks, float *restrict y, int64_t n) {
    const av_block_q2_k *b = blocks;
    for (int64_t i = 0; i < n / AV_QK_K; i++) {
        float d = av_half(b[i].d), min = av_half(b[i].dmin);
        const uint8_t *sc = b[i].scales;
        for (int half = 0; half < 2; half++) {
            const uint8_t *q = b[i].qs + 32 * half; /* 32 bytes hold 4 bit pairs of 128 values */
            for (int shift = 0; shift < 8; shift += 2)
                for (int part = 0; part < 2; part++, sc++) { /* values q[0..15], then q[16..31] */
                    float dl = d * (float)(*sc & 0x0f), ml = min * (float)(*sc >> 4);
                    for (int l = 0; l < 16; l++)
                        *y++ = dl * (float)((q[16 * part + l] >> shift) & 3) - ml;
                }
        }
    }
}

/* Q3_K's sixteen 6-bit scales from 12 bytes: low nibbles in s[0..7] (scale i < 8: low nibble of s[i], else
 * high nibble of s[i - 8]), the two high bits in s[8..11] (bits 2*(i/4) of s[8 + i%4]). out: (16) */
static void q3_k_scales(const uint8_t s[AV_K_SCALE_SIZE], int out[16]) {
    for (int i = 0; i < 16; i++) {
        int lo = i < 8 ? s[i] & 0x0f : s[i - 8] >> 4;
        int hi = (s[8 + i % 4] >> (2 * (i / 4))) & 3;
        out[i] = (lo | hi << 4) - 32;
    }
}

void av_dequant_q3_k(const void *restrict blocks, float *restrict y, int64_t n) {
    const av_block_q3_k *b = blocks;
    int scales[16];
    for (int64_t i = 0; i < n / AV_QK_K; i++) {
        float d = av_half(b[i].d);
        q3_k_scales(b[i].scales, scales);
        const int *sc = scales;
        uint8_t bit = 1; /* the high-bit plane of the current 32 values */
        for (int half = 0; half < 2; half++) {
            const uint8_t *q = b[i].qs + 32 * half;
            for (int shift = 0; shift < 8; shift += 2, bit = (uint8_t)(bit << 1))
                for (int part = 0; part < 2; part++, sc++) {
                    float dl = d * (float)*sc;
                    for (int l = 0; l < 16; l++) {
                        int k = 16 * part + l;
                        int v = ((q[k] >> shift) & 3) - ((b[i].hmask[k] & bit) ? 0 : 4);
                        *y++ = dl * (float)v;
                    }
                }
        }
    }
}

/* Scale and min of sub-block j (0..7) of Q4_K/Q5_K, 6 bits each packed in 12 bytes: sub-blocks 0-3 in the low
 * 6 bits of s[j] and s[j + 4]; sub-blocks 4-7 in the nibbles of s[j + 4] with their top 2 bits in the top
 * bits of s[j - 4] and s[j]. */
static void k_scale_min(int j, const uint8_t s[AV_K_SCALE_SIZE], uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (uint8_t)((s[j + 4] & 0x0f) | (s[j - 4] >> 6) << 4);
        *m = (uint8_t)((s[j + 4] >> 4) | (s[j] >> 6) << 4);
    }
}

/* One Q4_K or Q5_K super-block (they differ only in Q5_K's fifth bits, qh: NULL for Q4_K): sub-blocks j, j +
 * 1 (j even) are the low and high nibbles of qs[16 j ..], plus 16 where bit j (j + 1) of qh[l] is set. y:
 * (256) */
static inline void k_dequant_4_5(float d, float min, const uint8_t *scales, const uint8_t *qs,
                                 const uint8_t *qh, float *restrict y) {
    for (int j = 0; j < 8; j += 2, y += 64) {
        const uint8_t *q = qs + 16 * j;
        uint8_t sc, m, lo_bit = (uint8_t)(1u << j), hi_bit = (uint8_t)(2u << j);
        k_scale_min(j, scales, &sc, &m);
        float d1 = d * (float)sc, m1 = min * (float)m;
        k_scale_min(j + 1, scales, &sc, &m);
        float d2 = d * (float)sc, m2 = min * (float)m;
        if (qh) {
            for (int l = 0; l < 32; l++)
                y[l] = d1 * (float)((q[l] & 0x0f) + (qh[l] & lo_bit ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++)
                y[32 + l] = d2 * (float)((q[l] >> 4) + (qh[l] & hi_bit ? 16 : 0)) - m2;
        } else {
            for (int l = 0; l < 32; l++)
                y[l] = d1 * (float)(q[l] & 0x0f) - m1;
            for (int l = 0; l < 32; l++)
                y[32 + l] = d2 * (float)(q[l] >> 4) - m2;
        }
    }
}

void av_dequant_q4_k(const void *restrict blocks, float *restrict y, int64_t n) {
    const av_block_q4_k *b = blocks;
    for (int64_t i = 0; i < n / AV_QK_K; i++)
        k_dequant_4_5(av_half(b[i].d), av_half(b[i].dmin), b[i].scales, b[i].qs, NULL, y + i * AV_QK_K);
}

void av_dequant_q5_k(const void *restrict blocks, float *restrict y, int64_t n) {
    const av_block_q5_k *b = blocks;
    for (int64_t i = 0; i < n / AV_QK_K; i++)
        k_dequant_4_5(av_half(b[i].d), av_half(b[i].dmin), b[i].scales, b[i].qs, b[i].qh, y + i * AV_QK_K);
}

void av_dequant_q6_k(const void *restrict blocks, float *restrict y, int64_t n) {
    const av_block_q6_k *b = blocks;
    for (int64_t i = 0; i < n / AV_QK_K; i++) {
        float d = av_half(b[i].d);
        for (int half = 0; half < 2; half++, y += 128) {
            const uint8_t *ql = b[i].ql + 64 * half, *qh = b[i].qh + 32 * half;
            const int8_t *sc = b[i].scales + 8 * half;
            /* value 32 k + l of this half: low 4 bits from ql[l] (k = 0, 2: low/high nibble) or ql[l + 32] (k
             * = 1, 3), high 2 bits from bits 2k of qh[l]; one scale per 16 values */
            for (int k = 0; k < 4; k++) {
                const uint8_t *lo = ql + 32 * (k & 1);
                int lshift = 4 * (k >> 1), hshift = 2 * k;
                for (int g = 0; g < 2; g++) {
                    float ds = d * (float)sc[g + 2 * k];
                    for (int l = 16 * g; l < 16 * g + 16; l++)
                        y[32 * k + l] =
                            ds * (float)((((lo[l] >> lshift) & 0x0f) | ((qh[l] >> hshift) & 3) << 4) - 32);
                }
            }
        }
    }
}

/* out[2 j] = out[2 j + 1] = f * byte j of q (the same product in 8 lanes where AVX2 is built in: this runs
 * once per 256 weights of every matrix-vector product). out: (16) */
static inline void k_factors16(float f, uint64_t q, float *restrict out) {
#ifdef __AVX2__
    __m256 v = _mm256_mul_ps(_mm256_set1_ps(f),
                             _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)q))));
    _mm256_storeu_ps(out, _mm256_permutevar8x32_ps(v, _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3)));
    _mm256_storeu_ps(out + 8, _mm256_permutevar8x32_ps(v, _mm256_setr_epi32(4, 4, 5, 5, 6, 6, 7, 7)));
#else
    for (int j = 0; j < 16; j++)
        out[j] = f * (float)(uint8_t)(q >> (8 * (j / 2)));
#endif
}

/* Super-block by super-block (v0 and 16 n are whole super-blocks, as the callers' column blocks are): the two
 * groups of sub-block j share its factors. Q4_K and Q5_K blocks begin with the same fields (d, dmin,
 * scales); block_bytes tells them apart. */
static void k_groups_4_5(const void *row, size_t block_bytes, int64_t v0, int n, float *restrict s,
                         float *restrict m) {
    const uint8_t *b = (const uint8_t *)row + (size_t)(v0 / AV_QK_K) * block_bytes;
    for (int g = 0; g < n; g += 16, b += block_bytes) {
        const av_block_q4_k *h = (const av_block_q4_k *)b;
        uint64_t sc, mn;
        av_k_scales_mins8(h->scales, &sc, &mn);
        k_factors16(av_half(h->d), sc, s + g);
        k_factors16(av_half(h->dmin), mn, m + g);
    }
}

void av_groups_q4_k(const void *row, int64_t v0, int n, float *restrict s, float *restrict m) {
    k_groups_4_5(row, sizeof(av_block_q4_k), v0, n, s, m);
}

void av_groups_q5_k(const void *row, int64_t v0, int n, float *restrict s, float *restrict m) {
    k_groups_4_5(row, sizeof(av_block_q5_k), v0, n, s, m);
}

/* The scale of values 16 j .. 16 j + 15 of a super-block is scales[j] (see av_dequant_q6_k's indexing). */
void av_groups_q6_k(const void *row, int64_t v0, int n, float *restrict s, float *restrict m) {
    const av_block_q6_k *b = (const av_block_q6_k *)row + v0 / AV_QK_K;
    for (int g = 0; g < n; g += 16, b++) {
        float d = av_half(b->d);
#ifdef __AVX2__
        __m256 vd = _mm256_set1_ps(d);
        for (int j = 0; j < 16; j += 8) {
            __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(b->scales + j)));
            _mm256_storeu_ps(s + g + j, _mm256_mul_ps(vd, _mm256_cvtepi32_ps(q)));
            _mm256_storeu_ps(m + g + j, _mm256_setzero_ps());
        }
#else
        for (int j = 0; j < 16; j++) {
            s[g + j] = d * (float)b->scales[j];
            m[g + j] = 0.0f;
        }
#endif
    }
}

/* ---- Q4_K quantization (ggml's quantize_row_q4_K_ref) ---- */

/* Fits x ~ scale * L + min over n values with L in [0, nmax], min <= 0, minimizing the weighted squared
 * error: the plain min/max grid first, then nstep + 1 shifted grids, each refit by weighted least squares. L
 * (n) gets the levels, Laux (n) is scratch; returns the scale and stores -min in *neg_min. */
static float fit_scale_min(int n, int nmax, const float *x, const float *w, uint8_t *L, uint8_t *Laux,
                           float *neg_min, float rmin, float rdelta, int nstep) {
    float min = x[0], max = x[0], sum_w = w[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *neg_min = -min;
        return 0.0f;
    }
    float iscale = (float)nmax / (max - min), scale = 1 / iscale, best_error = 0;
    for (int i = 0; i < n; i++) {
        int l = av_nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)(l < 0 ? 0 : l > nmax ? nmax : l);
        float diff = scale * (float)L[i] + min - x[i];
        best_error += w[i] * (diff * diff);
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * (float)is + (float)nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = av_nearest_int(iscale * (x[i] - min));
            l = l < 0 ? 0 : l > nmax ? nmax : l;
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * (float)l;
            sum_l2 += w[i] * (float)l * (float)l;
            sum_xl += w[i] * (float)l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (!(D > 0)) continue;
        float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D,
              this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
        if (this_min > 0) {
            this_min = 0;
            this_scale = sum_xl / sum_l2;
        }
        float cur_error = 0;
        for (int i = 0; i < n; i++) {
            float diff = this_scale * (float)Laux[i] + this_min - x[i];
            cur_error += w[i] * (diff * diff);
        }
        if (cur_error < best_error) {
            memcpy(L, Laux, (size_t)n);
            best_error = cur_error;
            scale = this_scale;
            min = this_min;
        }
    }
    *neg_min = -min;
    return scale;
}

/* Packs sub-block j's 6-bit scale ls and min lm (the layout k_scale_min reads). */
static void k_pack_scale_min(int j, uint8_t s[AV_K_SCALE_SIZE], uint8_t ls, uint8_t lm) {
    if (j < 4) {
        s[j] = ls;
        s[j + 4] = lm;
    } else {
        s[j + 4] = (uint8_t)((ls & 0x0f) | (lm & 0x0f) << 4);
        s[j - 4] |= (uint8_t)((ls >> 4) << 6);
        s[j] |= (uint8_t)((lm >> 4) << 6);
    }
}

/* One super-block: eight 32-value fits weighted by rms + |x|, their scales and mins quantized to 6 bits
 * against the largest, then every value re-rounded against its quantized scale and min (sub-blocks whose
 * scale rounds to 0 keep the fit's levels). */
static void quant_q4_k_block(const float *x, av_block_q4_k *b) {
    uint8_t L[AV_QK_K], Laux[32];
    float w[32], scales[8], mins[8], max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        const float *xj = x + 32 * j;
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++)
            sum_x2 += xj[l] * xj[l];
        float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++)
            w[l] = av_x + fabsf(xj[l]);
        scales[j] = fit_scale_min(32, 15, xj, w, L + 32 * j, Laux, &mins[j], -1.0f, 0.1f, 20);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f,
          inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
    memset(b->scales, 0, sizeof b->scales);
    for (int j = 0; j < 8; j++) {
        uint8_t ls = (uint8_t)av_nearest_int(inv_scale * scales[j]),
                lm = (uint8_t)av_nearest_int(inv_min * mins[j]);
        k_pack_scale_min(j, b->scales, ls < 63 ? ls : 63, lm < 63 ? lm : 63);
    }
    b->d = av_f32_to_f16(max_scale / 63.0f);
    b->dmin = av_f32_to_f16(max_min / 63.0f);
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        k_scale_min(j, b->scales, &sc, &m);
        float d = av_half(b->d) * (float)sc;
        if (d == 0.0f) continue;
        float dm = av_half(b->dmin) * (float)m;
        for (int l = 0; l < 32; l++) {
            int q = av_nearest_int((x[32 * j + l] + dm) / d);
            L[32 * j + l] = (uint8_t)(q < 0 ? 0 : q > 15 ? 15 : q);
        }
    }
    for (int j = 0; j < AV_QK_K; j += 64)
        for (int l = 0; l < 32; l++)
            b->qs[j / 2 + l] = (uint8_t)(L[j + l] | L[j + l + 32] << 4);
}

void av_quant_q4_k(const float *x, void *blocks, int64_t n) {
    av_block_q4_k *b = blocks;
    for (int64_t i = 0; i < n / AV_QK_K; i++)
        quant_q4_k_block(x + i * AV_QK_K, &b[i]);
}
