/* Conversions between f32 and every weight type, by table: av_dequantize_rows expands rows of any weight
 * (mapped in its stored type) right where a kernel needs them, and av_quantize writes the types `convert`
 * produces. The per-type code lives in quants_legacy.c, quants_k.c and quants_iq.c. */
#include "kernels.h"
#include "quants.h"

#include <string.h>

#if defined(__F16C__) && defined(__AVX2__)
#include <immintrin.h>
#define AV_HAVE_F16C 1
#endif

/* f16 -> f32; the F16C path converts 8 at a time and gives the same (exact) values. */
static void dequant_f16(const void *src, float *dst, int64_t n) {
    const uint16_t *h = src;
    int64_t i = 0;
#ifdef AV_HAVE_F16C
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
#endif
    for (; i < n; i++)
        dst[i] = av_f16_to_f32(h[i]);
}

static void dequant_bf16(const void *src, float *dst, int64_t n) {
    const uint16_t *h = src;
    int64_t i = 0;
#ifdef AV_HAVE_F16C
    for (; i + 8 <= n; i += 8) {
        __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(h + i)));
        _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
    }
#endif
    for (; i < n; i++)
        dst[i] = av_bf16_to_f32(h[i]);
}

static void dequant_f32(const void *src, float *dst, int64_t n) {
    memcpy(dst, src, sizeof(float) * (size_t)n);
}

static void quant_f32(const float *x, void *dst, int64_t n) { memcpy(dst, x, sizeof(float) * (size_t)n); }

static void quant_f16(const float *x, void *dst, int64_t n) { av_f32_to_f16_n(x, dst, (size_t)n); }

static void quant_bf16(const float *x, void *dst, int64_t n) {
    uint16_t *h = dst;
    for (int64_t i = 0; i < n; i++)
        h[i] = av_f32_to_bf16(x[i]);
}

typedef void (*to_f32_fn)(const void *src, float *dst, int64_t n);
typedef void (*from_f32_fn)(const float *src, void *dst, int64_t n);

static const struct {
    to_f32_fn to_f32;     /* NULL: not a weight type */
    from_f32_fn from_f32; /* NULL: attnviz does not write this type */
} conv[] = {
    [AV_DTYPE_F32] = {dequant_f32, quant_f32},
    [AV_DTYPE_F16] = {dequant_f16, quant_f16},
    [AV_DTYPE_BF16] = {dequant_bf16, quant_bf16},
    [AV_DTYPE_Q8_0] = {av_dequant_q8_0, av_quant_q8_0},
    [AV_DTYPE_I32] = {NULL, NULL},
    [AV_DTYPE_I64] = {NULL, NULL},
    [AV_DTYPE_U8] = {NULL, NULL},
    [AV_DTYPE_Q4_0] = {av_dequant_q4_0, av_quant_q4_0},
    [AV_DTYPE_Q4_1] = {av_dequant_q4_1, NULL},
    [AV_DTYPE_Q5_0] = {av_dequant_q5_0, NULL},
    [AV_DTYPE_Q5_1] = {av_dequant_q5_1, NULL},
    [AV_DTYPE_Q2_K] = {av_dequant_q2_k, NULL},
    [AV_DTYPE_Q3_K] = {av_dequant_q3_k, NULL},
    [AV_DTYPE_Q4_K] = {av_dequant_q4_k, av_quant_q4_k},
    [AV_DTYPE_Q5_K] = {av_dequant_q5_k, NULL},
    [AV_DTYPE_Q6_K] = {av_dequant_q6_k, NULL},
    [AV_DTYPE_IQ4_NL] = {av_dequant_iq4_nl, NULL},
    [AV_DTYPE_IQ4_XS] = {av_dequant_iq4_xs, NULL},
};
_Static_assert(sizeof conv / sizeof conv[0] == AV_DTYPE_COUNT, "one conversion row per av_dtype");

void av_dequantize(av_dtype t, const void *src, float *dst, int64_t n) {
    if ((unsigned)t < AV_DTYPE_COUNT && conv[t].to_f32)
        conv[t].to_f32(src, dst, n);
    else
        memset(dst, 0, sizeof(float) * (size_t)n); /* not a weight type: refused when the model was checked */
}

void av_dequant_groups(av_dtype t, const void *row, int64_t v0, int n, float *s, float *m) {
    switch (t) {
    case AV_DTYPE_Q8_0: av_groups_q8_0(row, v0, n, s, m); break;
    case AV_DTYPE_Q4_K: av_groups_q4_k(row, v0, n, s, m); break;
    case AV_DTYPE_Q5_K: av_groups_q5_k(row, v0, n, s, m); break;
    case AV_DTYPE_Q6_K: av_groups_q6_k(row, v0, n, s, m); break;
    default: break;
    }
}

void av_dequantize_rows(const av_tensor *w, int64_t row0, int64_t n_rows, float *dst) {
    int64_t cols = w->shape[w->ndim - 1];
    size_t row_bytes = av_tensor_row_bytes(w);
    av_dequantize(w->dtype, (const uint8_t *)w->data + (size_t)row0 * row_bytes, dst, n_rows * cols);
}

int av_dtype_can_quantize(av_dtype t) { return (unsigned)t < AV_DTYPE_COUNT && conv[t].from_f32 != NULL; }

int av_quantize(av_dtype t, const float *src, void *dst, int64_t n) {
    if (!av_dtype_can_quantize(t) || n % av_dtype_block_size(t)) return -1;
    conv[t].from_f32(src, dst, n);
    return 0;
}

const av_dtype_codec av_quant_codec = {av_dequantize, av_quantize, av_dtype_can_quantize};

void av_quantize_q8_0(const float *x, av_block_q8_0 *out, size_t n) { av_quant_q8_0(x, out, (int64_t)n); }
