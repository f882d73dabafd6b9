/* Random quantized weights for tests and benchmarks (tests/test_gemm.c, bench/gemm_bench.c): every byte of
 * every block random (all bit patterns of the stored integers and packed scales) except the f16 scale fields,
 * which get finite values of many magnitudes and both signs, with some zeros and subnormals. Any type, also
 * those attnviz has no quantizer for (Q6_K, ...). */
#ifndef AV_TEST_QUANT_BLOCKS_H
#define AV_TEST_QUANT_BLOCKS_H

#include "core/core.h"
#include "core/dtype.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Byte offsets of the f16 scale fields of one block of t; returns how many (0 for F32/F16/BF16). */
static inline int qb_f16_fields(av_dtype t, size_t off[2]) {
    switch (t) {
    case AV_DTYPE_Q4_0:
    case AV_DTYPE_Q5_0:
    case AV_DTYPE_Q8_0:
    case AV_DTYPE_IQ4_NL:
    case AV_DTYPE_IQ4_XS: off[0] = 0; return 1;
    case AV_DTYPE_Q4_1:
    case AV_DTYPE_Q5_1:
    case AV_DTYPE_Q4_K:
    case AV_DTYPE_Q5_K: off[0] = 0, off[1] = 2; return 2;
    case AV_DTYPE_Q2_K: off[0] = offsetof(av_block_q2_k, d), off[1] = offsetof(av_block_q2_k, dmin); return 2;
    case AV_DTYPE_Q3_K: off[0] = offsetof(av_block_q3_k, d); return 1;
    case AV_DTYPE_Q6_K: off[0] = offsetof(av_block_q6_k, d); return 1;
    default: return 0;
    }
}

/* A finite f16: mostly 2^-14 .. 2^-3 in size (weights of a few tenths at most), 1 in 16 zero or subnormal. */
static inline uint16_t qb_scale(unsigned *seed) {
    int r = rand_r(seed);
    if (r % 16 == 0) return (uint16_t)(rand_r(seed) & 0x83ff); /* zero or subnormal, either sign */
    float mag = ldexpf(1.0f + (float)(r % 1000) / 1000.0f, -14 + rand_r(seed) % 12);
    return av_f32_to_f16(r % 3 == 0 ? -mag : mag);
}

/* n values (whole blocks) of type t: returns malloc'ed blocks (free them), *bytes their size. */
static inline uint8_t *qb_random(av_dtype t, int64_t n, unsigned seed, size_t *bytes) {
    av_dtype_nbytes(t, (size_t)n, bytes);
    uint8_t *q = malloc(*bytes);
    for (size_t i = 0; i < *bytes; i++)
        q[i] = (uint8_t)rand_r(&seed);
    size_t off[2], block = av_dtype_get_traits(t)->block_bytes;
    int nf = qb_f16_fields(t, off);
    for (size_t b = 0; b < *bytes / block; b++)
        for (int f = 0; f < nf; f++) {
            uint16_t h = qb_scale(&seed);
            memcpy(q + b * block + off[f], &h, 2);
        }
    return q;
}

#endif
