/* Phi-3 / Phi-3.5 on the one block (arch.h): q|k|v in one matrix and gate|up in another (views split at
 * load), longrope scaling for the 128k models (short factors for runs within
 * original_max_position_embeddings, long ones beyond, cos and sin times the attention factor sqrt(1 + ln(max
 * / original) / ln(original))), and partial rotary where the config says (Phi-4-mini). Hugging Face configs
 * carry a sliding_window that transformers applies and attnviz's Hugging Face path applies too; llama.cpp
 * ignores phi3's attention.sliding_window ("Phi SWA is currently disabled"), and attnviz's GGUF path follows
 * it: a GGUF Phi-3 attends to every earlier token. The two agree for prompts shorter than the window (2047
 * tokens). */
#include "arch.h"

/* name, hf_type, gguf, hf_class, flags, act, tied_default, eps_default, theta_default, head_dim_default,
 * gguf_keys, hf_keys, gguf_known (arch.h) */
const av_arch av_arch_phi3s[] = {{"phi3", "phi3", "phi3", "Phi3ForCausalLM",
                                  AV_ARCH_FUSED | AV_ARCH_PARTIAL_ROPE, AV_ACT_SILU, 0, 1e-5, 10000.0, 0,
                                  NULL, NULL, "attention.sliding_window" /* accepted, not applied */}};
