/* GPT-2 from a Hugging Face directory: pre-norm blocks with biases, learned positions (wpe), tanh GELU,
 * causal attention, LM head tied to wte. Its Conv1D layers store weights as (in, out); they are transposed
 * once at load (same dtype) and the fused c_attn is split into q, k, v views. Names with or without the
 * "transformer." prefix (GPT2LMHeadModel / GPT2Model checkpoints). */
#include "hf.h"

#include <math.h>
#include <string.h>

int av_gpt2_load(av_hf_dir *h, av_model *m, av_err *err) {
    int dim, n_layers, n_heads, n_pos, vocab, inner, scaled = 1, inv_idx = 0;
    double eps;
    const char *act = av_hf_str(h, "activation_function");
    if (av_hf_int(h, "n_embd", -1, 1, 1 << 16, &dim, err) ||
        av_hf_int(h, "n_layer", -1, 1, 1024, &n_layers, err) ||
        av_hf_int(h, "n_head", -1, 1, 1024, &n_heads, err) ||
        av_hf_int(h, "n_positions", 1024, 1, 1 << 20, &n_pos, err) ||
        av_hf_int(h, "vocab_size", -1, 1, 1 << 22, &vocab, err) ||
        av_hf_int(h, "n_inner", 4 * (int64_t)dim, 1, 1 << 19, &inner, err) ||
        av_hf_num(h, "layer_norm_epsilon", 1e-5, &eps, err) ||
        av_hf_bool(h, "scale_attn_weights", 1, &scaled, err) ||
        av_hf_bool(h, "scale_attn_by_inverse_layer_idx", 0, &inv_idx, err) ||
        av_hf_int(h, "bos_token_id", 50256, -1, 1 << 22, &m->bos_id, err) ||
        av_hf_int(h, "eos_token_id", 50256, -1, 1 << 22, &m->eos_id, err))
        return -1;
    if (dim % n_heads)
        return av_errf(err, "%s: n_embd %d is not a multiple of n_head %d", h->cfg_path, dim, n_heads);
    av_stack_cfg *c = &m->stacks[0].cfg;
    *c = av_stack_cfg_mha(dim, n_heads, dim / n_heads, inner, AV_NORM_LAYER, (float)eps, AV_ACT_GELU_TANH);
    c->causal = 1;
    if (act && av_act_parse(act, &c->act))
        return av_errf(err, "%s: activation_function '%.32s' is not supported", h->cfg_path, act);
    m->family = AV_FAMILY_GPT2;
    m->n_stacks = 1;
    snprintf(m->arch, sizeof m->arch, "gpt2");
    m->vocab_size = vocab;
    m->max_seq_len = n_pos;

    const char *p = av_hf_find(h, "transformer.wte.weight") ? "transformer." : "";
    if (av_hf_take(h, &m->tok_emb, 0, err, "%swte.weight", p) ||
        av_hf_take(h, &m->stacks[0].emb.pos, 0, err, "%swpe.weight", p) ||
        av_hf_take_wb(h, &m->stacks[0].final_norm.w, &m->stacks[0].final_norm.b, 0, err, "%sln_f", p) ||
        av_hf_take(h, &m->head.out.w, 1, err, "lm_head.weight") ||
        av_stack_alloc(&m->stacks[0], n_layers, err))
        return -1;
    if (!m->head.out.w.data) m->head.out.w = m->tok_emb; /* tied */
    m->head.n_out = vocab;
    for (int l = 0; l < n_layers; l++) {
        av_block *B = &m->stacks[0].blocks[l];
        av_tensor qkv_w, qkv_b;
        char name[64];
        snprintf(name, sizeof name, "layer %d attn.c_attn", l);
        if (av_hf_take_wb(h, &B->attn_norm.w, &B->attn_norm.b, 0, err, "%sh.%d.ln_1", p, l) ||
            av_hf_take_wb(h, &qkv_w, &qkv_b, AV_HF_CONV1D, err, "%sh.%d.attn.c_attn", p, l) ||
            av_linear_split3(&qkv_w, &qkv_b, dim, dim, &B->attn, name, err) ||
            av_hf_take_wb(h, &B->attn.o.w, &B->attn.o.b, AV_HF_CONV1D, err, "%sh.%d.attn.c_proj", p, l) ||
            av_hf_take_wb(h, &B->ffn_norm.w, &B->ffn_norm.b, 0, err, "%sh.%d.ln_2", p, l) ||
            av_hf_take_wb(h, &B->ffn.up.w, &B->ffn.up.b, AV_HF_CONV1D, err, "%sh.%d.mlp.c_fc", p, l) ||
            av_hf_take_wb(h, &B->ffn.down.w, &B->ffn.down.b, AV_HF_CONV1D, err, "%sh.%d.mlp.c_proj", p, l))
            return -1;
        B->attn_scale = scaled ? 1.0f / sqrtf((float)c->head_dim) : 1.0f;
        if (inv_idx) B->attn_scale /= (float)(l + 1);
    }
    return 0;
}
