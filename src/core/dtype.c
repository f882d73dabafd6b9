/* The tensor type table: every av_dtype's name, GGUF type id, values per block and bytes per block, in one
 * place (ggml's type_traits, for the types attnviz reads). Block sizes come from the layouts in dtype.h,
 * whose static asserts pin them to ggml's. */
#include "dtype.h"

#include <strings.h>

#define PLAIN(name, ggml, bytes)                                                                             \
    { name, ggml, 1, bytes }
#define BLOCKS(name, ggml, n, type)                                                                          \
    { name, ggml, n, sizeof(type) }

static const av_dtype_traits traits[] = {
    [AV_DTYPE_F32] = PLAIN("F32", AV_GGML_F32, 4),
    [AV_DTYPE_F16] = PLAIN("F16", AV_GGML_F16, 2),
    [AV_DTYPE_BF16] = PLAIN("BF16", AV_GGML_BF16, 2),
    [AV_DTYPE_Q8_0] = BLOCKS("Q8_0", AV_GGML_Q8_0, AV_QK, av_block_q8_0),
    [AV_DTYPE_I32] = PLAIN("I32", AV_GGML_I32, 4),
    [AV_DTYPE_I64] = PLAIN("I64", AV_GGML_I64, 8),
    [AV_DTYPE_U8] = PLAIN("U8", AV_GGML_NONE, 1),
    [AV_DTYPE_Q4_0] = BLOCKS("Q4_0", AV_GGML_Q4_0, AV_QK, av_block_q4_0),
    [AV_DTYPE_Q4_1] = BLOCKS("Q4_1", AV_GGML_Q4_1, AV_QK, av_block_q4_1),
    [AV_DTYPE_Q5_0] = BLOCKS("Q5_0", AV_GGML_Q5_0, AV_QK, av_block_q5_0),
    [AV_DTYPE_Q5_1] = BLOCKS("Q5_1", AV_GGML_Q5_1, AV_QK, av_block_q5_1),
    [AV_DTYPE_Q2_K] = BLOCKS("Q2_K", AV_GGML_Q2_K, AV_QK_K, av_block_q2_k),
    [AV_DTYPE_Q3_K] = BLOCKS("Q3_K", AV_GGML_Q3_K, AV_QK_K, av_block_q3_k),
    [AV_DTYPE_Q4_K] = BLOCKS("Q4_K", AV_GGML_Q4_K, AV_QK_K, av_block_q4_k),
    [AV_DTYPE_Q5_K] = BLOCKS("Q5_K", AV_GGML_Q5_K, AV_QK_K, av_block_q5_k),
    [AV_DTYPE_Q6_K] = BLOCKS("Q6_K", AV_GGML_Q6_K, AV_QK_K, av_block_q6_k),
    [AV_DTYPE_IQ4_NL] = BLOCKS("IQ4_NL", AV_GGML_IQ4_NL, AV_QK, av_block_iq4_nl),
    [AV_DTYPE_IQ4_XS] = BLOCKS("IQ4_XS", AV_GGML_IQ4_XS, AV_QK_K, av_block_iq4_xs),
};
_Static_assert(sizeof traits / sizeof traits[0] == AV_DTYPE_COUNT, "one table row per av_dtype");

const av_dtype_traits *av_dtype_get_traits(av_dtype t) {
    return (unsigned)t < AV_DTYPE_COUNT ? &traits[t] : NULL;
}

const char *av_dtype_name(av_dtype t) { return (unsigned)t < AV_DTYPE_COUNT ? traits[t].name : "?"; }

int av_dtype_parse(const char *s, av_dtype *out) {
    for (int t = 0; t < AV_DTYPE_COUNT; t++)
        if (strcasecmp(s, traits[t].name) == 0) {
            *out = (av_dtype)t;
            return 0;
        }
    return -1;
}

int av_dtype_from_ggml(uint32_t ggml_type, av_dtype *out) {
    for (int t = 0; t < AV_DTYPE_COUNT; t++)
        if (traits[t].ggml_type >= 0 && (uint32_t)traits[t].ggml_type == ggml_type) {
            *out = (av_dtype)t;
            return 0;
        }
    return -1;
}

int av_dtype_block_size(av_dtype t) { return (unsigned)t < AV_DTYPE_COUNT ? traits[t].block : 1; }

int av_dtype_is_quantized(av_dtype t) { return (unsigned)t < AV_DTYPE_COUNT && traits[t].block > 1; }

int av_dtype_is_weight(av_dtype t) {
    return t == AV_DTYPE_F32 || t == AV_DTYPE_F16 || t == AV_DTYPE_BF16 || av_dtype_is_quantized(t);
}

bool av_dtype_nbytes(av_dtype t, size_t numel, size_t *out) {
    if ((unsigned)t >= AV_DTYPE_COUNT || numel % (size_t)traits[t].block) return false;
    return av_mul_size(numel / (size_t)traits[t].block, traits[t].block_bytes, out);
}

bool av_dtype_row_bytes(av_dtype t, int64_t cols, size_t *out) {
    return cols >= 0 && (uint64_t)cols <= SIZE_MAX && av_dtype_nbytes(t, (size_t)cols, out);
}

size_t av_tensor_row_bytes(const av_tensor *t) {
    size_t n;
    if (t->ndim < 1 || t->ndim > AV_MAX_DIMS) return 0;
    return av_dtype_row_bytes(t->dtype, t->shape[t->ndim - 1], &n) ? n : 0;
}
