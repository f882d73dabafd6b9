/* Inverse RoPE frequencies of scaled or partial rotary embeddings (arch.h av_rope_table_make), computed in
 * float32 with the operations Hugging Face's rope initializers use (modeling_rope_utils.py), which the GGUF
 * forms (rope_freqs, rope_factors_*, rope.scaling.factor) restate as per-frequency divisors:
 *   plain     f_i = 1 / theta^(2i/d)                      d: the rotated values per head
 *   linear    f_i / factor
 *   llama3    f_i / factor below the low-frequency wavelength bound, f_i above the high one, and between
 *             (1 - s) f_i / factor + s f_i with s = (orig_ctx / wavelength - low) / (high - low)
 *   factors   f_i / factors[i]  (/ factor when a linear factor is given too: ggml applies both)
 *   longrope  1 / (factors[i] theta^(2i/d)), short or long factors; cos and sin scaled separately. */
#include "arch.h"

#include <math.h>
#include <stdlib.h>

static float llama3(float f, const av_rope_scale *s) {
    float factor = (float)s->factor, low = (float)s->low_freq_factor, high = (float)s->high_freq_factor;
    float ctx = (float)s->orig_ctx, wavelen = (float)(2 * M_PI) / f;
    float low_wavelen = ctx / low, high_wavelen = ctx / high;
    if (wavelen < high_wavelen) return f;
    if (wavelen > low_wavelen) return f / factor;
    float smooth = (ctx / wavelen - low) / (high - low);
    return (1.0f - smooth) * f / factor + smooth * f;
}

const float *av_rope_table_make(av_model *m, double theta, int rot_dims, const av_rope_scale *s, int which,
                                av_err *err) {
    int half = rot_dims / 2;
    float *f = malloc(sizeof(float) * (size_t)(half > 0 ? half : 1)); /* (rot_dims/2) */
    if (av_model_own(m, f, err)) return NULL;
    av_rope_scaling type = s ? s->type : AV_ROPE_SCALING_NONE;
    const float *factors = which && s ? s->long_factors : s ? s->factors : NULL;
    float linear = s && s->factor > 0 ? (float)s->factor : 1.0f;
    for (int i = 0; i < half; i++) {
        float p = powf((float)theta, (float)(2 * i) / (float)rot_dims);
        switch (type) {
        case AV_ROPE_SCALING_NONE: f[i] = 1.0f / p; break;
        case AV_ROPE_SCALING_LINEAR: f[i] = 1.0f / p / linear; break;
        case AV_ROPE_SCALING_LLAMA3: f[i] = llama3(1.0f / p, s); break;
        case AV_ROPE_SCALING_FACTORS: f[i] = 1.0f / p / factors[i] / linear; break;
        case AV_ROPE_SCALING_LONGROPE: f[i] = 1.0f / (factors[i] * p); break;
        }
    }
    return f;
}

/* Llama 3 parameters that give GGUF rope_freqs divisors back (export to config.json): factor = the largest
 * divisor; the band between the wavelength bounds L = ctx / low and H = ctx / high fixed by two band points
 * (s = (L / w - 1) / (L / H - 1)), or placed between the neighbouring wavelengths with fewer; then ctx
 * rounded to an integer and every divisor checked against HF's float32 formula (1e-5 relative). 0, or -1 when
 * none fits. */
int av_rope_fit_llama3(double theta, int rot_dims, const float *ff, av_rope_scale *out) {
    int n = rot_dims / 2, band[2] = {-1, -1}, n_band = 0, last_one = -1, first_full = n;
    double factor = 1, w[4096];
    if (n < 1 || n > 4096) return -1;
    for (int i = 0; i < n; i++)
        factor = ff[i] > factor ? ff[i] : factor;
    for (int i = 0; i < n; i++) {
        w[i] = 2 * M_PI * pow(theta, 2.0 * i / rot_dims);
        if (fabs(ff[i] - 1) < 1e-6)
            last_one = i;
        else if (fabs(ff[i] - factor) < 1e-6 * factor)
            first_full = first_full < i ? first_full : i;
        else if (n_band < 2)
            band[n_band++] = i;
    }
    if (factor <= 1) return -1;
    double lo_w = last_one >= 0 ? w[last_one] : w[0] / 2,
           hi_w = first_full < n ? w[first_full] : w[n - 1] * 2, L, H;
    if (n_band == 2) {
        double s1 = (1 / ff[band[0]] - 1 / factor) / (1 - 1 / factor),
               s2 = (1 / ff[band[1]] - 1 / factor) / (1 - 1 / factor);
        double r = (w[band[1]] - w[band[0]]) / (s1 * w[band[0]] - s2 * w[band[1]]);
        L = (s1 * r + 1) * w[band[0]];
        H = L / (r + 1);
    } else if (n_band == 1) { /* L between the band point and the first full one; H from the point */
        double s1 = (1 / ff[band[0]] - 1 / factor) / (1 - 1 / factor), w1 = w[band[0]];
        L = sqrt(w1 * hi_w);
        H = L / ((L / w1 - 1) / s1 + 1);
        if (!(H > lo_w && H < w1)) return -1;
    } else { /* no band: both bounds between the last unscaled and the first scaled wavelength */
        H = sqrt(lo_w * hi_w);
        L = H * 1.0001;
    }
    if (!(L > H && H > 0)) return -1;
    av_rope_scale s = {
        .type = AV_ROPE_SCALING_LLAMA3, .factor = factor, .orig_ctx = (int)lround(L), .attn_factor = 1};
    if (s.orig_ctx < 1) return -1;
    s.low_freq_factor = s.orig_ctx / L;
    s.high_freq_factor = s.orig_ctx / H;
    for (int i = 0; i < n; i++) {
        float f = 1.0f / powf((float)theta, (float)(2 * i) / (float)rot_dims), g = llama3(f, &s);
        if (fabs(f / g - ff[i]) > 1e-5 * ff[i]) return -1;
    }
    *out = s;
    return 0;
}
