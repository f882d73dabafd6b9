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
    if (!f || av_model_own(m, f, err)) return f ? NULL : (av_errf(err, "out of memory"), NULL);
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
