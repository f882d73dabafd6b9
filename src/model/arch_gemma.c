/* The Gemma family on the one block (arch.h): embeddings times sqrt(dim), RMSNorms that scale by (1 + w)
 * (Hugging Face stores w; llama.cpp's converter stores 1 + w in GGUF), a gated tanh-GELU feed-forward, the
 * output tied to the embedding. Gemma 2: soft-capped attention scores and logits, even layers with a sliding
 * window, norms on the attention and feed-forward outputs, scores scaled by query_pre_attn_scalar^-0.5. Gemma
 * 3 (text): q/k norms, 5 local (sliding, RoPE base 10000) : 1 global layers (RoPE base 1e6, with the
 *     checkpoint's RoPE scaling, linear 8 for 4B+), no attention soft-cap.
 * GGUF files leave some of this implicit and attnviz decides as llama.cpp does: Gemma 2 soft-caps 50 / 30 and
 * a window of 4096 when the keys are absent; Gemma 3's window pattern 6 when absent and no window at all
 * without attention.sliding_window; the attention scale 1/sqrt(dim / heads) for the 27B shapes (46 layers for
 * Gemma 2, 62 for Gemma 3; query_pre_attn_scalar = dim / heads there) and 1/sqrt(head size) otherwise. */
#include "arch.h"

#include <math.h>
#include <string.h>

double av_arch_gguf_attn_scale(const av_arch *a, const av_arch_cfg *c) {
    int layers_27b = strcmp(a->gguf, "gemma2") == 0 ? 46 : strcmp(a->gguf, "gemma3") == 0 ? 62 : -1;
    return c->n_layers == layers_27b ? 1.0 / sqrt((double)(c->dim / c->n_heads))
                                     : 1.0 / sqrt((double)c->head_dim);
}

static int gemma2_gguf(const av_gguf *g, av_arch_cfg *c, av_err *err) {
    int period;
    c->attn_scale = av_arch_gguf_attn_scale(c->arch, c);
    c->scale.local_too = 1; /* llama.cpp: the local layers share the global scaling */
    if (av_gguf_arch_int(g, c, "attention.sliding_window", 4096, 0, 1 << 24, &c->window, err) ||
        av_gguf_arch_int(g, c, "attention.sliding_window_pattern", 2, 0, 1 << 20, &period, err) ||
        av_gguf_arch_num(g, c, "rope.freq_base_swa", c->rope_theta, &c->rope_theta_local, err) ||
        av_gguf_arch_num(g, c, "attn_logit_softcapping", 50.0, &c->attn_softcap, err) ||
        av_gguf_arch_num(g, c, "final_logit_softcapping", 30.0, &c->final_softcap, err))
        return -1;
    av_arch_window_period(c, period);
    return 0;
}

static int gemma3_gguf(const av_gguf *g, av_arch_cfg *c, av_err *err) {
    int period = 6;
    c->attn_scale = av_arch_gguf_attn_scale(c->arch, c);
    if (av_gguf_arch_int(g, c, "attention.sliding_window", 0, 0, 1 << 24, &c->window, err) ||
        av_gguf_arch_num(g, c, "final_logit_softcapping", 0, &c->final_softcap, err))
        return -1;
    if (c->window == 0) return 0; /* llama.cpp: no sliding window, one RoPE for every layer */
    if (av_gguf_arch_int(g, c, "attention.sliding_window_pattern", 6, 0, 1 << 20, &period, err) ||
        av_gguf_arch_num(g, c, "rope.freq_base_swa", 10000.0, &c->rope_theta_local, err))
        return -1;
    av_arch_window_period(c, period);
    return 0;
}

/* hidden_activation (newer configs), else hidden_act; Gemma 1's "gelu" means the tanh approximation (what
 * transformers and llama.cpp run for every Gemma). */
static int hf_act(const av_hf_dir *h, av_arch_cfg *c, av_err *err) {
    const char *act = av_hf_str(h, "hidden_activation");
    if (!act) act = av_hf_str(h, "hidden_act");
    if (!act || strcmp(act, "gelu") == 0) act = "gelu_pytorch_tanh";
    if (av_act_parse(act, &c->act))
        return av_errf(err, "%s: activation '%.40s' is not supported", h->cfg_path, act);
    return 0;
}

/* The layer pattern of Gemma 2 and 3 configs: layer_types when present, else every `period`-th layer global.
 */
static int hf_layers(const av_hf_dir *h, av_arch_cfg *c, int period, av_err *err) {
    av_arch_window_period(c, period);
    return av_hf_layer_types(h, c->n_layers, c->sliding, err) < 0 ? -1 : 0;
}

/* Gemma 2 and 3 (q/k norms mark Gemma 3): soft-caps (Gemma 2 caps 50 / 30 by default), windows, the scale
 * query_pre_attn_scalar^-0.5. Gemma 3's local layers' RoPE base is rope_local_base_freq (or
 * rope_parameters.sliding_attention, read with the rest of RoPE by hf_decoder.c into rope_theta_local). */
static int gemma23_hf(const av_hf_dir *h, av_arch_cfg *c, av_err *err) {
    int g3 = (c->arch->flags & AV_ARCH_QK_NORM) != 0, period = 2;
    double scalar;
    if (g3 && json_is_true(json_object_get(h->cfg, "use_bidirectional_attention")))
        return av_errf(err, "%s: \"use_bidirectional_attention\" (EmbeddingGemma) is not supported",
                       h->cfg_path);
    c->scale.local_too = !g3;
    if (hf_act(h, c, err) || av_hf_num(h, "query_pre_attn_scalar", 256, &scalar, err) ||
        av_hf_num(h, "attn_logit_softcapping", g3 ? 0 : 50.0, &c->attn_softcap, err) ||
        av_hf_num(h, "final_logit_softcapping", g3 ? 0 : 30.0, &c->final_softcap, err) ||
        av_hf_int(h, "sliding_window", 4096, 1, 1 << 24, &c->window, err) ||
        (g3 && av_hf_int(h, "sliding_window_pattern", 6, 1, 1 << 20, &period, err)) ||
        hf_layers(h, c, period, err))
        return -1;
    if (g3 && !(c->rope_theta_local > 0) &&
        av_hf_num(h, "rope_local_base_freq", 10000.0, &c->rope_theta_local, err))
        return -1;
    c->attn_scale = 1.0 / sqrt(scalar);
    return scalar > 0 ? 0 : av_errf(err, "%s: \"query_pre_attn_scalar\" must be positive", h->cfg_path);
}

/* The "<arch>." keys of the Gemma 2 and 3 hooks: windows and the local RoPE base, then the soft-caps. */
#define GEMMA_SWA "attention.sliding_window attention.sliding_window_pattern rope.freq_base_swa "

/* name, hf_type, gguf, hf_class, flags, act, tied_default, eps_default, theta_default, head_dim_default,
 * gguf_keys, hf_keys, gguf_known (arch.h) */
const av_arch av_arch_gemmas[] = {
    {"gemma", "gemma", "gemma", "GemmaForCausalLM", AV_ARCH_GEMMA | AV_ARCH_GGUF_TIED, AV_ACT_GELU_TANH, 1,
     1e-6, 10000.0, 256, NULL, hf_act, NULL},
    {"gemma2", "gemma2", "gemma2", "Gemma2ForCausalLM", AV_ARCH_GEMMA | AV_ARCH_SANDWICH | AV_ARCH_GGUF_TIED,
     AV_ACT_GELU_TANH, 1, 1e-6, 10000.0, 256, gemma2_gguf, gemma23_hf,
     GEMMA_SWA "attn_logit_softcapping final_logit_softcapping"},
    {"gemma3", "gemma3_text", "gemma3", "Gemma3ForCausalLM",
     AV_ARCH_GEMMA | AV_ARCH_SANDWICH | AV_ARCH_QK_NORM, AV_ACT_GELU_TANH, 1, 1e-6, 1e6, 256, gemma3_gguf,
     gemma23_hf, GEMMA_SWA "final_logit_softcapping"}};
