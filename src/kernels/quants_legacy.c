/* The legacy GGUF types: 32 values a block with one f16 scale (and an f16 offset for the _1 types).
 * Each block's first 16 values sit in the low nibbles of qs[0..15], the next 16 in the high nibbles.
 * Operations and their order follow ggml's dequantize_row_* and quantize_row_*_ref (see quants.h). */
#include "quants.h"

#include <math.h>
#include <string.h>

void av_dequant_q4_0(const void *restrict blocks, float *restrict y, int64_t n) {
    const av_block_q4_0 *b = blocks;
    for (int64_t i = 0; i < n / AV_QK; i++, y += AV_QK) {
        float d = av_half(b[i].d);
        for (int j = 0; j < AV_QK / 2; j++)
            y[j] = (float)((b[i].qs[j] & 0x0f) - 8) * d;
        for (int j = 0; j < AV_QK / 2; j++)
            y[j + AV_QK / 2] = (float)((b[i].qs[j] >> 4) - 8) * d;
    }
}

void av_dequant_q4_1(const void *restrict blocks, float *restrict y, int64_t n) {
    const av_block_q4_1 *b = blocks;
    for (int64_t i = 0; i < n / AV_QK; i++, y += AV_QK) {
        float d = av_half(b[i].d), m = av_half(b[i].m);
        for (int j = 0; j < AV_QK / 2; j++)
            y[j] = (float)(b[i].qs[j] & 0x0f) * d + m;
        for (int j = 0; j < AV_QK / 2; j++)
            y[j + AV_QK / 2] = (float)(b[i].qs[j] >> 4) * d + m;
    }
}

/* The 5-bit values of a Q5 block: low nibbles from qs, fifth bits from the 32-bit mask qh. q: (32) */
static void q5_values(const uint8_t qh_bytes[4], const uint8_t qs[AV_QK / 2], int q[AV_QK]) {
    uint32_t qh;
    memcpy(&qh, qh_bytes, sizeof qh);
    for (int j = 0; j < AV_QK / 2; j++) {
        q[j] = (qs[j] & 0x0f) | (int)(((qh >> j) << 4) & 0x10);
        q[j + AV_QK / 2] = (qs[j] >> 4) | (int)((qh >> (j + 12)) & 0x10);
    }
}

void av_dequant_q5_0(const void *restrict blocks, float *restrict y, int64_t n) {
    const av_block_q5_0 *b = blocks;
    int q[AV_QK];
    for (int64_t i = 0; i < n / AV_QK; i++, y += AV_QK) {
        float d = av_half(b[i].d);
        q5_values(b[i].qh, b[i].qs, q);
        for (int j = 0; j < AV_QK; j++)
            y[j] = (float)(q[j] - 16) * d;
    }
}

void av_dequant_q5_1(const void *restrict blocks, float *restrict y, int64_t n) {
    const av_block_q5_1 *b = blocks;
    int q[AV_QK];
    for (int64_t i = 0; i < n / AV_QK; i++, y += AV_QK) {
        float d = av_half(b[i].d), m = av_half(b[i].m);
        q5_values(b[i].qh, b[i].qs, q);
        for (int j = 0; j < AV_QK; j++)
            y[j] = (float)q[j] * d + m;
    }
}

void av_dequant_q8_0(const void *restrict blocks, float *restrict y, int64_t n) {
    const av_block_q8_0 *b = blocks;
    for (int64_t i = 0; i < n / AV_QK; i++, y += AV_QK) {
        float d = av_half(b[i].d);
        for (int j = 0; j < AV_QK; j++)
            y[j] = (float)b[i].qs[j] * d;
    }
}

void av_groups_q8_0(const void *row, int64_t v0, int n, float *s, float *m) {
    const av_block_q8_0 *b = (const av_block_q8_0 *)row + v0 / AV_QK;
    for (int g = 0; g < n; g += 2, b++) { /* v0 and 16 n are whole blocks */
        s[g] = s[g + 1] = av_half(b->d);
        m[g] = m[g + 1] = 0.0f;
    }
}

/* Q4_0: the value of largest magnitude (the first such, sign kept) becomes -8, so d = max / -8; the others
 * are truncated after adding 8.5 (round half up, shifted into 0..15). */
void av_quant_q4_0(const float *x, void *blocks, int64_t n) {
    av_block_q4_0 *b = blocks;
    for (int64_t i = 0; i < n / AV_QK; i++, x += AV_QK) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < AV_QK; j++)
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        float d = max / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = av_f32_to_f16(d);
        for (int j = 0; j < AV_QK / 2; j++) {
            int lo = (int8_t)(x[j] * id + 8.5f), hi = (int8_t)(x[j + AV_QK / 2] * id + 8.5f);
            b[i].qs[j] = (uint8_t)((lo < 15 ? lo : 15) | (hi < 15 ? hi : 15) << 4);
        }
    }
}

/* Q8_0: d = max |x| / 127, values rounded half away from zero. */
void av_quant_q8_0(const float *x, void *blocks, int64_t n) {
    av_block_q8_0 *b = blocks;
    for (int64_t i = 0; i < n / AV_QK; i++, x += AV_QK) {
        float amax = 0.0f;
        for (int j = 0; j < AV_QK; j++)
            amax = amax > fabsf(x[j]) ? amax : fabsf(x[j]);
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = av_f32_to_f16(d);
        for (int j = 0; j < AV_QK; j++)
            b[i].qs[j] = (int8_t)roundf(x[j] * id);
    }
}
