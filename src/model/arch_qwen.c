/* The Qwen family on the one block (arch.h): Qwen2 / Qwen2.5 (q/k/v biases; a window on layers >=
 * max_window_layers when use_sliding_window, which released models leave off), Qwen3 (per-head q/k RMS
 * norms, head_dim 128 whatever the width) and Qwen3-MoE (Qwen3 with a mixture of experts in every layer:
 * norm_topk_prob says whether the chosen weights are renormalized, in Hugging Face; llama.cpp always
 * renormalizes, and attnviz's GGUF path does as llama.cpp). GGUF keeps HF's rotate-half RoPE order. */
#include "arch.h"

/* Qwen3-MoE in GGUF: the experts' size (llama.cpp: feed_forward_length / experts used when absent). */
static int qwen3moe_gguf(const av_gguf *g, av_arch_cfg *c, av_err *err) {
    if (!c->n_experts) return av_errf(err, "%s: qwen3moe without qwen3moe.expert_count", g->name);
    return av_gguf_arch_int(g, c, "expert_feed_forward_length", c->hidden / c->n_used, 1, 1 << 19, &c->hidden,
                            err);
}

/* Qwen3-MoE in config.json: experts in every layer (decoder_sparse_step 1, no mlp_only_layers). */
static int qwen3moe_hf(const av_hf_dir *h, av_arch_cfg *c, av_err *err) {
    int step;
    json_t *dense = json_object_get(h->cfg, "mlp_only_layers");
    if (av_hf_int(h, "num_experts", -1, 1, 1024, &c->n_experts, err) ||
        av_hf_int(h, "num_experts_per_tok", -1, 1, c->n_experts < 64 ? c->n_experts : 64, &c->n_used, err) ||
        av_hf_int(h, "moe_intermediate_size", -1, 1, 1 << 19, &c->hidden, err) ||
        av_hf_bool(h, "norm_topk_prob", 0, &c->norm_topk, err) ||
        av_hf_int(h, "decoder_sparse_step", 1, 1, 1 << 20, &step, err))
        return -1;
    if (step != 1 || (dense && !json_is_null(dense) && (!json_is_array(dense) || json_array_size(dense))))
        return av_errf(
            err,
            "%s: \"decoder_sparse_step\" / \"mlp_only_layers\" make some layers dense: not supported "
            "(refused rather than ignored)",
            h->cfg_path);
    return 0;
}

/* name, hf_type, gguf, hf_class, flags, act, tied_default, eps_default, theta_default, head_dim_default,
 * gguf_keys, hf_keys, gguf_known (arch.h) */
const av_arch av_arch_qwens[] = {{"qwen2", "qwen2", "qwen2", "Qwen2ForCausalLM", AV_ARCH_HF_QKV_BIAS,
                                  AV_ACT_SILU, 0, 1e-6, 10000.0, 0, NULL, NULL, NULL},
                                 {"qwen3", "qwen3", "qwen3", "Qwen3ForCausalLM", AV_ARCH_QK_NORM, AV_ACT_SILU,
                                  0, 1e-6, 10000.0, 128, NULL, NULL, NULL},
                                 {"qwen3moe", "qwen3_moe", "qwen3moe", "Qwen3MoeForCausalLM",
                                  AV_ARCH_QK_NORM | AV_ARCH_MOE, AV_ACT_SILU, 0, 1e-6, 10000.0, 128,
                                  qwen3moe_gguf, qwen3moe_hf, "expert_feed_forward_length"}};
