/* The 4-bit non-linear types: each 4-bit index selects one of 16 fixed levels (denser near zero, where
 * weights are), times a block scale. IQ4_NL has 32-value blocks with an f16 scale; IQ4_XS 256-value
 * super-blocks whose eight 32-value sub-blocks carry 6-bit scales. Operations and order follow ggml's
 * dequantize_row_iq4_*. */
#include "quants.h"

/* The 16 levels (ggml's kvalues_iq4nl): part of the format. */
static const int8_t iq4_grid[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

/* 16 bytes of indices -> 32 values dl * grid[q]: low nibbles first, then high nibbles. y: (32) */
static void iq4_values(const uint8_t qs[16], float dl, float *y) {
    for (int j = 0; j < 16; j++)
        y[j] = dl * (float)iq4_grid[qs[j] & 0x0f];
    for (int j = 0; j < 16; j++)
        y[j + 16] = dl * (float)iq4_grid[qs[j] >> 4];
}

void av_dequant_iq4_nl(const void *restrict blocks, float *restrict y, int64_t n) {
    const av_block_iq4_nl *b = blocks;
    for (int64_t i = 0; i < n / AV_QK; i++)
        iq4_values(b[i].qs, av_half(b[i].d), y + i * AV_QK);
}

void av_dequant_iq4_xs(const void *restrict blocks, float *restrict y, int64_t n) {
    const av_block_iq4_xs *b = blocks;
    for (int64_t i = 0; i < n / AV_QK_K; i++) {
        float d = av_half(b[i].d);
        for (int ib = 0; ib < 8; ib++, y += 32) {
            int ls = ((b[i].scales_l[ib / 2] >> 4 * (ib % 2)) & 0x0f) | ((b[i].scales_h >> 2 * ib) & 3) << 4;
            iq4_values(b[i].qs + 16 * ib, d * (float)(ls - 32), y);
        }
    }
}
