/* Element-wise and row-wise kernels: RMSNorm, LayerNorm, activations, biases, softmax, RoPE, SwiGLU. */
#include "kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__F16C__) && defined(__AVX__)
#include <immintrin.h>
#define AV_HAVE_F16C 1
#endif

/* Element i of a 1-D float weight (norms and biases are F32, F16 or BF16: av_model_check refuses others). */
static float weight_at(const av_tensor *w, size_t i) {
    switch (w->dtype) {
    case AV_DTYPE_F16: return av_f16_to_f32(((const uint16_t *)w->data)[i]);
    case AV_DTYPE_BF16: return av_bf16_to_f32(((const uint16_t *)w->data)[i]);
    default: return ((const float *)w->data)[i];
    }
}

typedef struct rmsnorm_job {
    float *out;
    const float *x;   /* (n, dim) */
    const float *add; /* (n, dim) added to x first (x then points at writable rows), or NULL */
    const av_tensor *weight;
    const float *w; /* (dim) the weight in f32, or NULL: converted per element */
    int dim;
    float eps;
} rmsnorm_job;

/* sum x[i]^2 in double: 16 running sums where AVX2 is built in (one chain would wait on each add's latency),
 * one sum otherwise. */
static double sum_squares(const float *x, int n) {
    int i = 0;
    double ss = 0;
#ifdef AV_HAVE_F16C
    __m256d s[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd()};
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 4; k++) {
            __m256d v = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4 * k));
            s[k] = _mm256_fmadd_pd(v, v, s[k]);
        }
    double lanes[4];
    _mm256_storeu_pd(lanes, _mm256_add_pd(_mm256_add_pd(s[0], s[1]), _mm256_add_pd(s[2], s[3])));
    ss = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
#endif
    for (; i < n; i++)
        ss += (double)x[i] * x[i];
    return ss;
}

void av_add_to(float *x, const float *y, size_t n) {
    size_t i = 0;
#ifdef AV_HAVE_F16C
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_add_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
#endif
    for (; i < n; i++)
        x[i] += y[i];
}

/* o[i] = x[i] * s * w[i] for n values, 8 at a time where AVX2 is built in (the same two roundings). */
static void scale_by(float *o, const float *x, float s, const float *w, int n) {
    int i = 0;
#ifdef AV_HAVE_F16C
    __m256 vs = _mm256_set1_ps(s);
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(o + i,
                         _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vs), _mm256_loadu_ps(w + i)));
#endif
    for (; i < n; i++)
        o[i] = x[i] * s * w[i];
}

static void rmsnorm_rows(void *ctx, int tid, int64_t r0, int64_t r1) {
    const rmsnorm_job *j = ctx;
    int dim = j->dim;
    for (int64_t r = r0; r < r1; r++) {
        const float *xr = j->x + (size_t)r * (size_t)dim;
        float *o = j->out + (size_t)r * (size_t)dim;
        if (j->add) /* the residual add, while the row is in L1 (out may be add: read first) */
            av_add_to((float *)xr, j->add + (size_t)r * (size_t)dim, (size_t)dim);
        double ss = sum_squares(xr, dim);
        float scale = 1.0f / sqrtf((float)(ss / dim) + j->eps);
        if (j->w) /* the common case */
            scale_by(o, xr, scale, j->w, dim);
        else
            for (int i = 0; i < dim; i++)
                o[i] = xr[i] * scale * weight_at(j->weight, (size_t)i);
    }
}

static void rmsnorm_run(float *out, const float *x, const float *add, const av_tensor *weight, int n, int dim,
                        float eps, int n_threads) {
    float stack_w[4096], *w = dim <= 4096 ? stack_w : malloc(sizeof(float) * (size_t)dim); /* (dim) or NULL */
    if (w) av_dequantize_rows(weight, 0, 1, w);
    rmsnorm_job j = {out, x, add, weight, w, dim, eps};
    av_parallel_for((int64_t)n * dim > (1 << 16) ? n_threads : 1, n, rmsnorm_rows, &j);
    if (w != stack_w) free(w);
}

void av_rmsnorm(float *out, const float *x, const av_tensor *weight, int n, int dim, float eps,
                int n_threads) {
    rmsnorm_run(out, x, NULL, weight, n, dim, eps, n_threads);
}

void av_rmsnorm_add(float *out, float *x, const float *add, const av_tensor *weight, int n, int dim,
                    float eps, int n_threads) {
    rmsnorm_run(out, x, add, weight, n, dim, eps, n_threads);
}

void av_layernorm(float *out, const float *x, const av_tensor *weight, const av_tensor *bias, int n, int dim,
                  float eps) {
    int has_bias = bias && bias->data;
    for (int r = 0; r < n; r++) {
        const float *xr = x + (size_t)r * (size_t)dim;
        float *o = out + (size_t)r * (size_t)dim;
        double sum = 0, ss = 0;
        for (int i = 0; i < dim; i++)
            sum += xr[i];
        double mean = sum / dim;
        for (int i = 0; i < dim; i++)
            ss += ((double)xr[i] - mean) * ((double)xr[i] - mean);
        float inv = (float)(1.0 / sqrt(ss / dim + (double)eps)), mf = (float)mean;
        for (int i = 0; i < dim; i++) {
            float v = (xr[i] - mf) * inv * weight_at(weight, (size_t)i);
            o[i] = has_bias ? v + weight_at(bias, (size_t)i) : v;
        }
    }
}

void av_activate(float *x, size_t n, av_act act) {
    switch (act) {
    case AV_ACT_GELU:
        for (size_t i = 0; i < n; i++)
            x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
        break;
    case AV_ACT_GELU_TANH:
        for (size_t i = 0; i < n; i++) {
            float v = x[i];
            x[i] = 0.5f * v * (1.0f + tanhf(0.79788456080286536f * (v + 0.044715f * v * v * v)));
        }
        break;
    case AV_ACT_RELU:
        for (size_t i = 0; i < n; i++)
            x[i] = x[i] > 0.0f ? x[i] : 0.0f;
        break;
    case AV_ACT_SILU:
        for (size_t i = 0; i < n; i++)
            x[i] = x[i] / (1.0f + expf(-x[i]));
        break;
    case AV_ACT_QUICK_GELU:
        for (size_t i = 0; i < n; i++)
            x[i] = x[i] / (1.0f + expf(-1.702f * x[i]));
        break;
    }
}

void av_add_bias(float *y, const av_tensor *b, int n, int cols) {
    for (int r = 0; r < n; r++) {
        float *yr = y + (size_t)r * (size_t)cols;
        for (int c = 0; c < cols; c++)
            yr[c] += weight_at(b, (size_t)c);
    }
}

/* exp(x) for x <= 0 (softmax inputs after the max is subtracted): 2^n * p(r) with n = round(x / ln 2),
 * r = x - n ln 2 in two parts, p the Cephes degree-6 polynomial; within 2 ulp of expf. Below -87.3 -> 0.
 * NaN (from NaN or infinite weights) comes out as NaN, never reaching the float-to-int conversion. */
static float exp_nonpos(float x) {
    if (x != x) return x;
    if (x < -87.3f) return 0.0f;
    float n = rintf(x * 1.44269504088896341f);
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    return ldexpf(p, (int)n);
}

#ifdef AV_HAVE_F16C
static inline __attribute__((always_inline)) __m256 exp_nonpos8(__m256 x) {
    __m256 small = _mm256_cmp_ps(x, _mm256_set1_ps(-87.3f), _CMP_LT_OQ);
    x = _mm256_max_ps(_mm256_set1_ps(-87.3f), x); /* this operand order keeps NaN (as the scalar path) */
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fmadd_ps(n, _mm256_set1_ps(2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(small, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}
#endif

#ifdef AV_HAVE_F16C
/* exp_nonpos exactly as the scalar function computes it (each product and sum rounded on its own, no fused
 * multiply-adds; ldexpf as a product with 2^n, which is normal for every n >= -126 that x >= -87.3 gives, so
 * the one rounding is the same), 8 lanes at a time: the tails of rows shorter than a vector. */
static inline __attribute__((always_inline)) __m256 exp_nonpos8_unfused(__m256 x) {
    __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q),
           small = _mm256_cmp_ps(x, _mm256_set1_ps(-87.3f), _CMP_LT_OQ);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_add_ps(_mm256_sub_ps(x, _mm256_mul_ps(n, _mm256_set1_ps(0.693359375f))),
                             _mm256_mul_ps(n, _mm256_set1_ps(2.12194440e-4f)));
    static const float c[5] = {1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f, 1.6666665459e-1f,
                               5.0000001201e-1f};
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    for (int k = 0; k < 5; k++)
        p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(c[k]));
    p = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(_mm256_mul_ps(p, r), r), r), _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    __m256 y = _mm256_andnot_ps(small, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
    return _mm256_blendv_ps(y, x, nan); /* NaN comes out as itself, as from the scalar function */
}

/* The first n (0..8) lanes of x and nothing past them: a mask for maskload / maskstore. */
static inline __m256i lanes_below(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
#endif

#ifdef AV_HAVE_F16C
/* Whether the 16-lane code of ops_avx512.c runs: on the paths that use AVX-512 (avx2 stays 8 lanes wide, as
 * on an AVX2-only machine). */
static int use_avx512(void) {
    av_gemm_path p = av_gemm_path_get();
    return p == AV_GEMM_AVX512 || p == AV_GEMM_AMX;
}
#endif

/* The largest of x[0..n) (-inf when n <= 0). */
float av_max_value(const float *x, int n) {
    int i = 0;
    float mx = -INFINITY;
#ifdef AV_HAVE_F16C
    if (use_avx512()) i = av_max_avx512(x, n, &mx);
    __m256 vmx = _mm256_set1_ps(mx);
    for (; i + 8 <= n; i += 8)
        vmx = _mm256_max_ps(vmx, _mm256_loadu_ps(x + i));
    float lanes[8];
    _mm256_storeu_ps(lanes, vmx);
    for (int k = 0; k < 8; k++)
        mx = lanes[k] > mx ? lanes[k] : mx;
#endif
    for (; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    return mx;
}

#ifdef AV_HAVE_F16C
/* x[k] = exp(x[k] - mx) for the whole 8-value chunks of x[0..n), added into the 8 lane sums *vsum chunk by
 * chunk (on the AVX-512 paths 16 values at a time, as two 8-value chunks); returns where it stopped. */
static int exp_chunks(float *x, int n, float mx, __m256 *vsum) {
    float sums[8];
    int i = 0;
    _mm256_storeu_ps(sums, *vsum);
    if (use_avx512()) i = av_exp_sum_avx512(x, n, mx, sums);
    __m256 vmx = _mm256_set1_ps(mx), v = _mm256_loadu_ps(sums);
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp_nonpos8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmx));
        _mm256_storeu_ps(x + i, e);
        v = _mm256_add_ps(v, e);
    }
    *vsum = v;
    return i;
}

/* The 8 lane sums added in lane order. */
static float lane_total(__m256 vsum) {
    float lanes[8], sum = 0;
    _mm256_storeu_ps(lanes, vsum);
    for (int k = 0; k < 8; k++)
        sum += lanes[k];
    return sum;
}
#endif

/* x[i] = exp(x[i] - mx) for x[0..n) (every x[i] <= mx, mx finite); returns their sum, added in 8 lanes. */
float av_exp_shift_sum(float *x, int n, float mx) {
    int i = 0;
    float sum = 0;
#ifdef AV_HAVE_F16C
    __m256 vsum = _mm256_setzero_ps();
    i = exp_chunks(x, n, mx, &vsum);
    sum = lane_total(vsum);
    if (i < n) { /* the last n - i < 8 values: the scalar function's bits, added in the same order */
        float lanes[8];
        __m256i m = lanes_below(n - i);
        __m256 e = exp_nonpos8_unfused(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), _mm256_set1_ps(mx)));
        _mm256_maskstore_ps(x + i, m, e);
        _mm256_storeu_ps(lanes, e);
        for (int k = 0; i < n; k++, i++)
            sum += lanes[k];
    }
#endif
    for (; i < n; i++) {
        x[i] = exp_nonpos(x[i] - mx);
        sum += x[i];
    }
    return sum;
}

float av_exp_shift_sum_from(float *x, int n0, int n, float mx) {
    int i = 0;
    float sum = 0;
#ifdef AV_HAVE_F16C
    __m256 vsum = _mm256_setzero_ps();
    i = exp_chunks(x, n0, mx, &vsum);
    for (; i + 8 <= n; i += 8) /* the given exponentials, into the lanes as exp_chunks adds its own */
        vsum = _mm256_add_ps(vsum, _mm256_loadu_ps(x + i));
    sum = lane_total(vsum);
#endif
    for (; i < n0; i++) {
        x[i] = exp_nonpos(x[i] - mx);
        sum += x[i];
    }
    for (; i < n; i++) /* the tail (< 8 values) after the lanes, in order */
        sum += x[i];
    return sum;
}

/* x[0..n) *= s */
void av_scale(float *x, int n, float s) {
    int i = 0;
#ifdef AV_HAVE_F16C
    if (use_avx512()) i = av_scale_avx512(x, n, s);
    __m256 vs = _mm256_set1_ps(s);
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), vs));
#endif
    for (; i < n; i++)
        x[i] *= s;
}

/* Softmax in place; the vector path computes the same function (exp_nonpos) 8 lanes at a time. A row with
 * no finite value (every key masked: all -inf) becomes all zero rather than NaN. */
void av_softmax(float *x, int n) {
    if (n <= 0) return;
    float mx = av_max_value(x, n);
    if (mx == -INFINITY) {
        memset(x, 0, sizeof(float) * (size_t)n);
        return;
    }
    av_scale(x, n, 1.0f / av_exp_shift_sum(x, n, mx));
}

void av_rope_angles(int pos, int n_pairs, int head_dim, float theta, const float *freq, float mscale,
                    float *c, float *s) {
    for (int i = 0; i < n_pairs; i++) {
        if (freq) {
            float angle = (float)pos * freq[i];
            c[i] = cosf(angle) * mscale;
            s[i] = sinf(angle) * mscale;
        } else {
            float angle = (float)pos * (1.0f / powf(theta, (float)(2 * i) / (float)head_dim));
            c[i] = cosf(angle);
            s[i] = sinf(angle);
        }
    }
}

void av_rope_rotate(float *v, int n_heads, int head_dim, int n_pairs, const float *c, const float *s,
                    int half_style) {
    for (int h = 0; h < n_heads; h++) {
        float *hv = v + (size_t)h * (size_t)head_dim;
        if (half_style) { /* pairs (i, i + n_pairs): two contiguous runs, 8 pairs at a time */
            int i = 0;
#ifdef AV_HAVE_F16C
            for (; i + 8 <= n_pairs; i += 8) {
                __m256 x0 = _mm256_loadu_ps(hv + i), x1 = _mm256_loadu_ps(hv + i + n_pairs);
                __m256 vc = _mm256_loadu_ps(c + i), vs = _mm256_loadu_ps(s + i);
                _mm256_storeu_ps(hv + i, _mm256_sub_ps(_mm256_mul_ps(x0, vc), _mm256_mul_ps(x1, vs)));
                _mm256_storeu_ps(hv + i + n_pairs,
                                 _mm256_add_ps(_mm256_mul_ps(x0, vs), _mm256_mul_ps(x1, vc)));
            }
#endif
            for (; i < n_pairs; i++) {
                float x0 = hv[i], x1 = hv[i + n_pairs];
                hv[i] = x0 * c[i] - x1 * s[i];
                hv[i + n_pairs] = x0 * s[i] + x1 * c[i];
            }
        } else {
            for (int i = 0; i < n_pairs; i++) {
                float x0 = hv[2 * i], x1 = hv[2 * i + 1];
                hv[2 * i] = x0 * c[i] - x1 * s[i];
                hv[2 * i + 1] = x0 * s[i] + x1 * c[i];
            }
        }
    }
}

/* cos and sin of one position on the stack (head_dim <= 4096: av_stack_check), then the rotation. */
enum { ROPE_MAX_PAIRS = 2048 };

void av_rope(float *v, int n_heads, int head_dim, int pos, float theta, int half_style) {
    float c[ROPE_MAX_PAIRS], s[ROPE_MAX_PAIRS];
    int half = head_dim / 2 < ROPE_MAX_PAIRS ? head_dim / 2 : ROPE_MAX_PAIRS;
    av_rope_angles(pos, half, head_dim, theta, NULL, 1.0f, c, s);
    av_rope_rotate(v, n_heads, head_dim, half, c, s, half_style);
}

void av_rope_table(float *v, int n_heads, int head_dim, int rot_dims, int pos, const float *freq,
                   float mscale, int half_style) {
    float c[ROPE_MAX_PAIRS], s[ROPE_MAX_PAIRS];
    int half = rot_dims / 2 < ROPE_MAX_PAIRS ? rot_dims / 2 : ROPE_MAX_PAIRS;
    av_rope_angles(pos, half, head_dim, 0.0f, freq, mscale, c, s);
    av_rope_rotate(v, n_heads, head_dim, half, c, s, half_style);
}

typedef struct swiglu_job {
    float *g;
    const float *u;
} swiglu_job;

/* silu(g) u with sigmoid(g) from t = exp(-|g|) (never overflows): 1 / (1 + t) for g >= 0, t / (1 + t) below;
 * the vector path computes the same function 8 lanes at a time. */
static void swiglu_range(void *ctx, int tid, int64_t i0, int64_t i1) {
    const swiglu_job *j = ctx;
    int64_t i = i0;
#ifdef AV_HAVE_F16C
    if (use_avx512()) i = av_swiglu_avx512(j->g, j->u, i0, i1);
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    for (; i + 8 <= i1; i += 8) {
        __m256 g = _mm256_loadu_ps(j->g + i);
        __m256 t = exp_nonpos8(_mm256_or_ps(g, sign)); /* exp(-|g|) */
        __m256 num = _mm256_blendv_ps(one, t, _mm256_cmp_ps(g, _mm256_setzero_ps(), _CMP_LT_OQ));
        __m256 sig = _mm256_div_ps(num, _mm256_add_ps(one, t));
        _mm256_storeu_ps(j->g + i, _mm256_mul_ps(_mm256_mul_ps(g, sig), _mm256_loadu_ps(j->u + i)));
    }
#endif
    for (; i < i1; i++) {
        float g = j->g[i], t = exp_nonpos(-fabsf(g));
        j->g[i] = g * ((g < 0 ? t : 1.0f) / (1.0f + t)) * j->u[i];
    }
}

void av_swiglu(float *g, const float *u, size_t n, int n_threads) {
    swiglu_job j = {g, u};
    av_parallel_for(n > (1 << 16) ? n_threads : 1, (int64_t)n, swiglu_range, &j);
}
