/* The reverse of ops.c: gradients with respect to the inputs of RMSNorm, LayerNorm, the activations, the
 * gated feed-forward product, RoPE, soft-capping and log-softmax. No weight gradients: attribution needs
 * d output / d input only.
 *
 * Gradient copies: a backward pass carries G gradients at once (one per attributed target) through the same
 * activations, so dy holds G blocks of the rows x holds: dy (G, n, dim) against x (n, dim). Each function
 * writes dx (same shape as dy) or adds into it (accumulate), and dx may equal dy unless noted. Sums run in
 * double, as the forward norms do. */
#include "kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void store(float *dst, float v, int accumulate) { *dst = accumulate ? *dst + v : v; }

/* y = x r w, r = 1/sqrt(mean(x^2) + eps). With g = w dy: dx = r g - x r^3 sum(g x) / dim. */
void av_rmsnorm_grad(float *dx, const float *dy, const float *x, const float *w, int G, int n, int dim,
                     float eps, int accumulate) {
    for (int64_t r = 0; r < (int64_t)G * n; r++) {
        const float *xr = x + (size_t)(r % n) * (size_t)dim, *gy = dy + (size_t)r * (size_t)dim;
        float *o = dx + (size_t)r * (size_t)dim;
        double ss = 0, gx = 0;
        for (int i = 0; i < dim; i++) {
            ss += (double)xr[i] * xr[i];
            gx += (double)w[i] * gy[i] * xr[i];
        }
        double rs = 1.0 / sqrt(ss / dim + (double)eps), c = gx * rs * rs * rs / dim;
        for (int i = 0; i < dim; i++)
            store(o + i, (float)(rs * w[i] * gy[i] - c * xr[i]), accumulate);
    }
}

/* y = xhat w + b, xhat = (x - mean) r. With g = w dy: dx = r (g - mean(g) - xhat mean(g xhat)). */
void av_layernorm_grad(float *dx, const float *dy, const float *x, const float *w, int G, int n, int dim,
                       float eps, int accumulate) {
    for (int64_t r = 0; r < (int64_t)G * n; r++) {
        const float *xr = x + (size_t)(r % n) * (size_t)dim, *gy = dy + (size_t)r * (size_t)dim;
        float *o = dx + (size_t)r * (size_t)dim;
        double sum = 0, ss = 0, gs = 0, gxh = 0;
        for (int i = 0; i < dim; i++)
            sum += xr[i];
        double mean = sum / dim;
        for (int i = 0; i < dim; i++)
            ss += ((double)xr[i] - mean) * ((double)xr[i] - mean);
        double rs = 1.0 / sqrt(ss / dim + (double)eps);
        for (int i = 0; i < dim; i++) {
            double g = (double)w[i] * gy[i];
            gs += g;
            gxh += g * ((double)xr[i] - mean) * rs;
        }
        gs /= dim;
        gxh /= dim;
        for (int i = 0; i < dim; i++) {
            double g = (double)w[i] * gy[i], xh = ((double)xr[i] - mean) * rs;
            store(o + i, (float)(rs * (g - gs - xh * gxh)), accumulate);
        }
    }
}

/* act(x) and act'(x) of one pre-activation, the derivatives of av_activate's formulas. */
static void act_and_slope(av_act act, float xf, double *f, double *df) {
    double x = xf;
    switch (act) {
    case AV_ACT_GELU: {
        double cdf = 0.5 * (1.0 + erf(x * 0.70710678118654752)), pdf = exp(-0.5 * x * x) * 0.3989422804014327;
        *f = x * cdf;
        *df = cdf + x * pdf;
        return;
    }
    case AV_ACT_GELU_TANH: {
        const double k = 0.79788456080286536, a = 0.044715;
        double t = tanh(k * (x + a * x * x * x));
        *f = 0.5 * x * (1.0 + t);
        *df = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * k * (1.0 + 3.0 * a * x * x);
        return;
    }
    case AV_ACT_RELU:
        *f = x > 0 ? x : 0;
        *df = x > 0 ? 1 : 0;
        return;
    case AV_ACT_SILU:
    case AV_ACT_QUICK_GELU: {
        double b = act == AV_ACT_SILU ? 1.0 : 1.702, s = 1.0 / (1.0 + exp(-b * x));
        *f = x * s;
        *df = s + b * x * s * (1.0 - s);
        return;
    }
    }
    *f = x;
    *df = 1;
}

/* y = act(x): dx = dy act'(x). x (n), dy (G, n). */
void av_activate_grad(float *dx, const float *dy, const float *x, size_t n, int G, av_act act) {
    for (size_t r = 0; r < (size_t)G * n; r++) {
        double f, df;
        act_and_slope(act, x[r % n], &f, &df);
        dx[r] = (float)(dy[r] * df);
    }
}

/* h = act(g) u: dg = dh u act'(g), du = dh act(g). g, u (n); dh, dg, du (G, n); dg or du may equal dh. */
void av_gated_grad(float *dg, float *du, const float *dh, const float *g, const float *u, size_t n, int G,
                   av_act act) {
    for (size_t r = 0; r < (size_t)G * n; r++) {
        double f, df, d = dh[r];
        act_and_slope(act, g[r % n], &f, &df);
        du[r] = (float)(d * f);
        dg[r] = (float)(d * u[r % n] * df);
    }
}

void av_rope_grad(float *dv, int n_heads, int head_dim, int pos, float theta, int half_style) {
    av_rope(dv, n_heads, head_dim, -pos, theta, half_style); /* a rotation: its transpose turns back */
}

/* y = c tanh(x / c): dy/dx = 1 - (y / c)^2, from the capped value y. */
void av_softcap_grad(float *d, const float *y, size_t n, float c) {
    for (size_t i = 0; i < n; i++) {
        float t = y[i] / c;
        d[i] *= 1.0f - t * t;
    }
}

double av_logsumexp(const float *x, int n) {
    float mx = x[0];
    for (int i = 1; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    double s = 0;
    for (int i = 0; i < n; i++)
        s += exp((double)x[i] - mx);
    return mx + log(s);
}

double av_log_softmax_grad(float *dx, const float *x, int n, int target) {
    double lse = av_logsumexp(x, n);
    for (int i = 0; i < n; i++)
        dx[i] = (float)((i == target ? 1.0 : 0.0) - exp((double)x[i] - lse));
    return (double)x[target] - lse;
}
