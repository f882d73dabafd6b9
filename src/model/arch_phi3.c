/* Phi-3 / Phi-3.5 on the one block (arch.h): q|k|v in one matrix and gate|up in another (views split at
 * load), longrope scaling for the 128k models (short factors for runs within
 * original_max_position_embeddings, long ones beyond, cos and sin times the attention factor sqrt(1 + ln(max
 * / original) / ln(original))), and partial rotary where the config says (Phi-4-mini). Hugging Face configs
 * carry a sliding_window that transformers applies and attnviz's Hugging Face path applies too; llama.cpp
 * ignores phi3's attention.sliding_window ("Phi SWA is currently disabled"), and attnviz's GGUF path follows
 * it: a GGUF Phi-3 attends to every earlier token. The two agree for prompts shorter than the window (2047
 * tokens). */
#include "arch.h"

static const char *const phi3_known[] = {"attention.sliding_window", NULL}; /* accepted, not applied */

const av_arch av_arch_phi3 = {.name = "phi3",
                              .hf_type = "phi3",
                              .gguf = "phi3",
                              .hf_class = "Phi3ForCausalLM",
                              .flags = AV_ARCH_FUSED | AV_ARCH_PARTIAL_ROPE,
                              .act = AV_ACT_SILU,
                              .eps_default = 1e-5,
                              .theta_default = 10000.0,
                              .gguf_known = phi3_known};
