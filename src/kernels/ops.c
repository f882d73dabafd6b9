/* Element-wise and row-wise kernels: dequantization, RMSNorm, softmax, RoPE, SwiGLU, Q8_0 quantization. */
#include "kernels.h"

#include <math.h>
#include <string.h>

#if defined(__F16C__) && defined(__AVX__)
#include <immintrin.h>
#define AV_HAVE_F16C 1
#endif

/* dst[i] = f16 src[i] as f32; the F16C path converts 8 at a time and gives the same values. */
static void f16_to_f32_row(const uint16_t *src, float *dst, size_t n) {
    size_t i = 0;
#ifdef AV_HAVE_F16C
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
#endif
    for (; i < n; i++) dst[i] = av_f16_to_f32(src[i]);
}

static void bf16_to_f32_row(const uint16_t *src, float *dst, size_t n) {
    size_t i = 0;
#ifdef AV_HAVE_F16C
    for (; i + 8 <= n; i += 8) {
        __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(src + i)));
        _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
    }
#endif
    for (; i < n; i++) dst[i] = av_bf16_to_f32(src[i]);
}

static float weight_at(const av_tensor *w, size_t i) {
    switch (w->dtype) {
    case AV_DTYPE_F16: return av_f16_to_f32(((const uint16_t *)w->data)[i]);
    case AV_DTYPE_BF16: return av_bf16_to_f32(((const uint16_t *)w->data)[i]);
    default: return ((const float *)w->data)[i];
    }
}

void av_dequantize_rows(const av_tensor *w, int64_t row0, int64_t n_rows, float *dst) {
    size_t cols = (size_t)(w->ndim == 1 ? w->shape[0] : w->shape[1]);
    size_t start = (size_t)row0 * cols, n = (size_t)n_rows * cols;
    switch (w->dtype) {
    case AV_DTYPE_F32: memcpy(dst, (const float *)w->data + start, n * 4); break;
    case AV_DTYPE_F16: f16_to_f32_row((const uint16_t *)w->data + start, dst, n); break;
    case AV_DTYPE_BF16: bf16_to_f32_row((const uint16_t *)w->data + start, dst, n); break;
    case AV_DTYPE_Q8_0: {
        const av_block_q8_0 *b = (const av_block_q8_0 *)w->data + start / 32;
        for (size_t k = 0; k < n / 32; k++) {
            float d = av_f16_to_f32(b[k].d);
            for (int j = 0; j < 32; j++) dst[k * 32 + (size_t)j] = d * (float)b[k].qs[j];
        }
        break;
    }
    default: memset(dst, 0, n * 4); break; /* rejected earlier by av_model_check */
    }
}

void av_rmsnorm(float *out, const float *x, const av_tensor *weight, int n, int dim, float eps) {
    for (int r = 0; r < n; r++) {
        const float *xr = x + (size_t)r * (size_t)dim;
        float *o = out + (size_t)r * (size_t)dim;
        double ss = 0;
        for (int i = 0; i < dim; i++) ss += (double)xr[i] * xr[i];
        float scale = 1.0f / sqrtf((float)(ss / dim) + eps);
        for (int i = 0; i < dim; i++) o[i] = xr[i] * scale * weight_at(weight, (size_t)i);
    }
}

void av_softmax(float *x, int n) {
    if (n <= 0) return;
    float mx = x[0];
    for (int i = 1; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    float sum = 0;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    float inv = 1.0f / sum;
    for (int i = 0; i < n; i++) x[i] *= inv;
}

void av_rope(float *v, int n_heads, int head_dim, int pos, float theta, int half_style) {
    int half = head_dim / 2;
    for (int i = 0; i < half; i++) {
        float freq = 1.0f / powf(theta, (float)(2 * i) / (float)head_dim);
        float angle = (float)pos * freq;
        float c = cosf(angle), s = sinf(angle);
        for (int h = 0; h < n_heads; h++) {
            float *hv = v + (size_t)h * (size_t)head_dim;
            int a = half_style ? i : 2 * i, b = half_style ? i + half : 2 * i + 1;
            float x0 = hv[a], x1 = hv[b];
            hv[a] = x0 * c - x1 * s;
            hv[b] = x0 * s + x1 * c;
        }
    }
}

void av_swiglu(float *g, const float *u, size_t n) {
    for (size_t i = 0; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

void av_quantize_q8_0(const float *x, av_block_q8_0 *out, size_t n) {
    for (size_t k = 0; k < n / 32; k++) {
        const float *xb = x + k * 32;
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fabsf(xb[j]) > amax ? fabsf(xb[j]) : amax;
        float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
        out[k].d = av_f32_to_f16(d);
        for (int j = 0; j < 32; j++) out[k].qs[j] = (int8_t)roundf(xb[j] * id);
    }
}
