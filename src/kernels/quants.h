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
