/* Block layouts of GGUF's quantized weight types, byte for byte as ggml stores them (little-endian; every
 * field 1- or 2-byte aligned, so a block starts at any even offset). A row of `cols` values is cols / block
 * consecutive blocks (core.h: av_dtype_row_bytes); the type table of core/dtype.c gives each type's name,
 * GGUF type id, values per block and bytes per block.
 *
 * Notation in the comments: d, dmin are f16 scales; q the stored integers; x the value.
 *   legacy (32 values a block):  Q4_0 x = d (q - 8)     Q4_1 x = d q + m     Q5_0 x = d (q - 16)
 *                                Q5_1 x = d q + m       Q8_0 x = d q          IQ4_NL x = d grid[q]
 *   k-quants (256 values a super-block of 16 or 8 sub-blocks with their own integer scales):
 *                                Q2_K x = d s q - dmin m   (16 x 16, 4-bit s and m, 2-bit q)
 *                                Q3_K x = d (s - 32) (q - 4 h)   (16 x 16, 6-bit s, 2-bit q + high bit)
 *                                Q4_K x = d s q - dmin m   (8 x 32, 6-bit s and m, 4-bit q)
 *                                Q5_K x = d s q - dmin m   (8 x 32, 6-bit s and m, 5-bit q)
 *                                Q6_K x = d s (q - 32)     (16 x 16, 8-bit signed s, 6-bit q)
 *   i-quants:                    IQ4_XS x = d (s - 32) grid[q]   (256 values, 8 x 32, 6-bit s) */
#ifndef AV_DTYPE_H
#define AV_DTYPE_H

#include "core.h"

enum {
    AV_QK = 32,          /* values per block of the legacy types and IQ4_NL */
    AV_QK_K = 256,       /* values per super-block of the k-quants and IQ4_XS */
    AV_K_SCALE_SIZE = 12 /* bytes of packed 6-bit scales and mins (Q4_K, Q5_K) or scales (Q3_K) */
};

typedef struct av_block_q4_0 {
    uint16_t d;
    uint8_t qs[AV_QK / 2]; /* value j in the low nibble of byte j, value j + 16 in its high nibble */
} av_block_q4_0;
_Static_assert(sizeof(av_block_q4_0) == 2 + AV_QK / 2, "Q4_0 block size");

typedef struct av_block_q4_1 {
    uint16_t d, m;
    uint8_t qs[AV_QK / 2];
} av_block_q4_1;
_Static_assert(sizeof(av_block_q4_1) == 4 + AV_QK / 2, "Q4_1 block size");

typedef struct av_block_q5_0 {
    uint16_t d;
    uint8_t qh[4]; /* bit j: the fifth bit of value j (a little-endian u32) */
    uint8_t qs[AV_QK / 2];
} av_block_q5_0;
_Static_assert(sizeof(av_block_q5_0) == 2 + 4 + AV_QK / 2, "Q5_0 block size");

typedef struct av_block_q5_1 {
    uint16_t d, m;
    uint8_t qh[4];
    uint8_t qs[AV_QK / 2];
} av_block_q5_1;
_Static_assert(sizeof(av_block_q5_1) == 4 + 4 + AV_QK / 2, "Q5_1 block size");

typedef struct av_block_q8_0 {
    uint16_t d;
    int8_t qs[AV_QK];
} av_block_q8_0;
_Static_assert(sizeof(av_block_q8_0) == 2 + AV_QK, "Q8_0 block size");

typedef struct av_block_q2_k {
    uint8_t scales[AV_QK_K / 16]; /* low nibble: scale, high nibble: min, of each 16 values */
    uint8_t qs[AV_QK_K / 4];
    uint16_t d, dmin;
} av_block_q2_k;
_Static_assert(sizeof(av_block_q2_k) == AV_QK_K / 16 + AV_QK_K / 4 + 4, "Q2_K block size");

typedef struct av_block_q3_k {
    uint8_t hmask[AV_QK_K / 8]; /* high bits: set means q, clear means q - 4 */
    uint8_t qs[AV_QK_K / 4];    /* low 2 bits */
    uint8_t scales[AV_K_SCALE_SIZE];
    uint16_t d;
} av_block_q3_k;
_Static_assert(sizeof(av_block_q3_k) == AV_QK_K / 8 + AV_QK_K / 4 + AV_K_SCALE_SIZE + 2, "Q3_K block size");

typedef struct av_block_q4_k {
    uint16_t d, dmin;
    uint8_t scales[AV_K_SCALE_SIZE];
    uint8_t qs[AV_QK_K / 2];
} av_block_q4_k;
_Static_assert(sizeof(av_block_q4_k) == 4 + AV_K_SCALE_SIZE + AV_QK_K / 2, "Q4_K block size");

typedef struct av_block_q5_k {
    uint16_t d, dmin;
    uint8_t scales[AV_K_SCALE_SIZE];
    uint8_t qh[AV_QK_K / 8];
    uint8_t qs[AV_QK_K / 2];
} av_block_q5_k;
_Static_assert(sizeof(av_block_q5_k) == 4 + AV_K_SCALE_SIZE + AV_QK_K / 8 + AV_QK_K / 2, "Q5_K block size");

typedef struct av_block_q6_k {
    uint8_t ql[AV_QK_K / 2]; /* low 4 bits */
    uint8_t qh[AV_QK_K / 4]; /* high 2 bits */
    int8_t scales[AV_QK_K / 16];
    uint16_t d;
} av_block_q6_k;
_Static_assert(sizeof(av_block_q6_k) == AV_QK_K / 2 + AV_QK_K / 4 + AV_QK_K / 16 + 2, "Q6_K block size");

typedef struct av_block_iq4_nl {
    uint16_t d;
    uint8_t qs[AV_QK / 2]; /* indices into the 16-value grid, packed as Q4_0 */
} av_block_iq4_nl;
_Static_assert(sizeof(av_block_iq4_nl) == 2 + AV_QK / 2, "IQ4_NL block size");

typedef struct av_block_iq4_xs {
    uint16_t d;
    uint16_t scales_h;              /* bits 2i, 2i+1: high bits of sub-block i's scale */
    uint8_t scales_l[AV_QK_K / 64]; /* nibble i: low bits of sub-block i's scale */
    uint8_t qs[AV_QK_K / 2];
} av_block_iq4_xs;
_Static_assert(sizeof(av_block_iq4_xs) == 4 + AV_QK_K / 64 + AV_QK_K / 2, "IQ4_XS block size");

/* GGUF tensor type ids (ggml.h's enum ggml_type: part of the file format) of the types attnviz reads. */
enum {
    AV_GGML_NONE = -1,
    AV_GGML_F32 = 0,
    AV_GGML_F16 = 1,
    AV_GGML_Q4_0 = 2,
    AV_GGML_Q4_1 = 3,
    AV_GGML_Q5_0 = 6,
    AV_GGML_Q5_1 = 7,
    AV_GGML_Q8_0 = 8,
    AV_GGML_Q2_K = 10,
    AV_GGML_Q3_K = 11,
    AV_GGML_Q4_K = 12,
    AV_GGML_Q5_K = 13,
    AV_GGML_Q6_K = 14,
    AV_GGML_IQ4_NL = 20,
    AV_GGML_IQ4_XS = 23,
    AV_GGML_I32 = 26,
    AV_GGML_I64 = 27,
    AV_GGML_BF16 = 30
};

/* One row of the type table. */
typedef struct av_dtype_traits {
    const char *name;   /* "Q4_K", as ggml names it */
    int ggml_type;      /* GGUF tensor type id (GGML_TYPE_*), -1 when GGUF has none */
    int block;          /* values per block: 1 for plain types */
    size_t block_bytes; /* bytes per block */
} av_dtype_traits;

/* Conversions between f32 and the quantized types. They live in kernels/, above io/: the writers of io/
 * convert F32, F16 and BF16 themselves and take the others from a codec their caller hands them
 * (kernels.h: av_quant_codec). */
typedef struct av_dtype_codec {
    void (*to_f32)(av_dtype t, const void *src, float *dst, int64_t n); /* n values, whole blocks */
    int (*from_f32)(av_dtype t, const float *src, void *dst,
                    int64_t n); /* 0, or -1: a type it does not write */
    int (*writes)(av_dtype t);  /* 1 for the types from_f32 writes */
} av_dtype_codec;

/* The table row of t (NULL outside [0, AV_DTYPE_COUNT)). */
const av_dtype_traits *av_dtype_get_traits(av_dtype t);
/* The dtype of a GGUF tensor type id; -1 when attnviz does not read that type. */
int av_dtype_from_ggml(uint32_t ggml_type, av_dtype *out);

#endif
