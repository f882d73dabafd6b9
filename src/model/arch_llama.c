/* The Llama family on the one block (arch.h): Llama (1, 2, 3.x with its RoPE scaling), Mistral (a sliding
 * window on every layer in Hugging Face checkpoints) and Mixtral (a mixture of 8 experts, 2 per token, their
 * weights renormalized). In GGUF all three are "llama" files: llama.cpp's converter permutes q/k rows into
 * Meta's interleaved RoPE order, writes Llama 3.1's scaling as the rope_freqs tensor, stacks Mixtral's
 * experts into 3-D ffn_*_exps tensors, and drops Mistral's window (llama.cpp's llama has none, so attnviz's
 * GGUF path has none either; the Hugging Face path applies it, as transformers does). */
#include "arch.h"

#include <string.h>

/* num_local_experts and num_experts_per_tok; Mixtral always renormalizes the chosen experts' weights. */
static int mixtral_keys(const av_hf_dir *h, av_arch_cfg *c, av_err *err) {
    c->norm_topk = 1;
    return av_hf_int(h, "num_local_experts", 8, 1, 1024, &c->n_experts, err) ||
                   av_hf_int(h, "num_experts_per_tok", 2, 1, c->n_experts < 64 ? c->n_experts : 64,
                             &c->n_used, err)
               ? -1
               : 0;
}

/* name, hf_type, gguf, hf_class, flags, act, tied_default, eps_default, theta_default, head_dim_default,
 * gguf_keys, hf_keys, gguf_known (arch.h) */
const av_arch av_arch_llamas[] = {
    {"llama", "llama", "llama", "LlamaForCausalLM", AV_ARCH_GGUF_META | AV_ARCH_GGUF_BIASES, AV_ACT_SILU, 0,
     1e-6, 10000.0, 0, NULL, NULL, NULL},
    {"mistral", "mistral", "llama", "MistralForCausalLM", AV_ARCH_GGUF_META | AV_ARCH_GGUF_BIASES,
     AV_ACT_SILU, 0, 1e-6, 10000.0, 0, NULL, NULL, NULL},
    {"mixtral", "mixtral", "llama", "MixtralForCausalLM",
     AV_ARCH_GGUF_META | AV_ARCH_GGUF_BIASES | AV_ARCH_MOE | AV_ARCH_HF_MIXTRAL, AV_ACT_SILU, 0, 1e-5, 1e6, 0,
     NULL, mixtral_keys, NULL}};
