/* Per-type conversions between f32 and GGUF's quantized types (layouts in core/dtype.h), split by family:
 * quants_legacy.c (32-value blocks), quants_k.c (256-value super-blocks), quants_iq.c (non-linear grids).
 *
 * Dequantization computes every value with the same float operations, in the same order, as ggml's
 * dequantize_row_* (an f16 scale times a small integer, products formed left to right, no fused
 * multiply-add: these files build with -ffp-contract=off), so results are bit-identical to llama.cpp's;
 * tests/cli/test_llamacpp_quants.sh checks that against libggml for every type. The quantizers reproduce
 * ggml's reference quantizers (quantize_row_*_ref) the same way.
 *
 * Every function takes n values, a whole number of blocks (the callers check row sizes when a file is
 * opened). */
#ifndef AV_QUANTS_H
#define AV_QUANTS_H

#include "core/dtype.h"

#include <string.h>
#ifdef __F16C__
#include <immintrin.h>
#endif

/* blocks -> f32: y (n) */
void av_dequant_q4_0(const void *blocks, float *y, int64_t n);
void av_dequant_q4_1(const void *blocks, float *y, int64_t n);
void av_dequant_q5_0(const void *blocks, float *y, int64_t n);
void av_dequant_q5_1(const void *blocks, float *y, int64_t n);
void av_dequant_q8_0(const void *blocks, float *y, int64_t n);
void av_dequant_q2_k(const void *blocks, float *y, int64_t n);
void av_dequant_q3_k(const void *blocks, float *y, int64_t n);
void av_dequant_q4_k(const void *blocks, float *y, int64_t n);
void av_dequant_q5_k(const void *blocks, float *y, int64_t n);
void av_dequant_q6_k(const void *blocks, float *y, int64_t n);
void av_dequant_iq4_nl(const void *blocks, float *y, int64_t n);
void av_dequant_iq4_xs(const void *blocks, float *y, int64_t n);

/* ---- 16-value groups: how the vector kernels expand Q8_0, Q4_K and Q6_K (gemm_quant.h) ----
 * For group g of the values [v0, v0 + 16 n) of a row (row: its first block; v0 and 16 n whole blocks), the
 * factors ggml's dequantization applies to the group's stored integers q, computed as ggml computes them:
 *   Q8_0: value = q * s[g]      Q4_K: value = s[g] * q - m[g]      Q6_K: value = s[g] * (q - 32)
 * (m[g] = 0 for Q8_0 and Q6_K). s, m: (n) */
void av_groups_q8_0(const void *row, int64_t v0, int n, float *s, float *m);
void av_groups_q4_k(const void *row, int64_t v0, int n, float *s, float *m);
void av_groups_q6_k(const void *row, int64_t v0, int n, float *s, float *m);
/* Q5_K: value = s[g] * q - m[g] with q its 5-bit integer (the AVX2 matrix-vector products). */
void av_groups_q5_k(const void *row, int64_t v0, int n, float *s, float *m);
/* 1 for the types av_qload32 / av_qload16 expand (gemm_quant.h): Q8_0, Q4_K, Q6_K. */
static inline int av_dtype_grouped(av_dtype t) {
    return t == AV_DTYPE_Q8_0 || t == AV_DTYPE_Q4_K || t == AV_DTYPE_Q6_K;
}
/* The factors of Q8_0, Q4_K, Q5_K or Q6_K rows (nothing for another type). */
void av_dequant_groups(av_dtype t, const void *row, int64_t v0, int n, float *s, float *m);

/* All eight 6-bit scales (*sc) or mins (*mn) of a Q4_K / Q5_K super-block at once, byte j = sub-block j's:
 * bytes 0-3 of s hold the low 6 bits of scales 0-3, bytes 4-7 those of mins 0-3, bytes 8-11 the low nibbles
 * of scales 4-7 and high nibbles of mins 4-7, whose top 2 bits are the top bits of bytes 0-3 (scales) and
 * 4-7 (mins). */
static inline void av_k_scales_mins8(const uint8_t s[AV_K_SCALE_SIZE], uint64_t *sc, uint64_t *mn) {
    uint32_t a = av_load_le32(s), b = av_load_le32(s + 4), c = av_load_le32(s + 8);
    *sc = (a & 0x3f3f3f3fu) | (uint64_t)((c & 0x0f0f0f0fu) | ((a >> 6) & 0x03030303u) << 4) << 32;
    *mn = (b & 0x3f3f3f3fu) | (uint64_t)(((c >> 4) & 0x0f0f0f0fu) | ((b >> 6) & 0x03030303u) << 4) << 32;
}

/* f32 -> blocks: x (n) */
void av_quant_q4_0(const float *x, void *blocks, int64_t n);
void av_quant_q8_0(const float *x, void *blocks, int64_t n);
void av_quant_q4_k(const float *x, void *blocks, int64_t n);

/* An f16 scale as f32 (exact either way; inline with F16C, which the x86-64-v3 build has). */
static inline float av_half(uint16_t h) {
#ifdef __F16C__
    return _cvtsh_ss(h);
#else
    return av_f16_to_f32(h);
#endif
}

/* ggml's nearest_int: round to nearest, ties to even, through the float addition of 1.5 * 2^23 (the sum's low
 * mantissa bits are the rounded integer). Exact for |v| < 2^22, which the quantizers guarantee. */
static inline int av_nearest_int(float v) {
    float shifted = v + 12582912.0f;
    int32_t bits;
    memcpy(&bits, &shifted, sizeof bits);
    return (bits & 0x007fffff) - 0x00400000;
}

#endif
