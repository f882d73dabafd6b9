/* Encoder-decoders from Hugging Face directories, mapped onto two stacks of the one block (the decoder's with
 * cross-attention).
 *
 * Marian / BART: post-norm blocks with biases; embeddings scaled by sqrt(d_model) when scale_embedding;
 * Marian: fixed sinusoidal positions from 0 (sin | cos halves), no embedding norm, swish; BART: learned
 * positions with offset 2 and layernorm_embedding, GELU. Decoder cross-attention is encoder_attn; logits add
 * final_logits_bias; the head is tied to the (decoder) token embedding unless lm_head is stored.
 *
 * T5: pre-norm with RMS-style T5LayerNorm (no mean, no bias), no biases anywhere, no attention scaling,
 * relative position buckets (block 0's relative_attention_bias shared by every layer; bidirectional in the
 * encoder, causal in the decoder; none in cross-attention), ReLU or gated-GELU MLP, final norms, and a head
 * tied to `shared` scaled by d_model^-0.5 (or an untied lm_head). */
#include "hf.h"
#include "unsupported.h"

#include <math.h>
#include <string.h>

/* Two stacks of n_enc and n_dec blocks. */
static int encdec_init(av_model *m, int n_enc, int n_dec, av_err *err) {
    m->family = AV_FAMILY_ENCDEC;
    m->n_stacks = 2;
    return av_stack_alloc(&m->stacks[0], n_enc, err) || av_stack_alloc(&m->stacks[1], n_dec, err) ? -1 : 0;
}

static av_stack_cfg encdec_cfg(int dim, int heads, int head_dim, int hidden, av_norm_kind norm, float eps,
                               int post_norm, av_act act, int causal) {
    av_stack_cfg c = av_stack_cfg_mha(dim, heads, head_dim, hidden, norm, eps, act);
    c.post_norm = post_norm;
    c.causal = causal;
    return c;
}

/* ---- Marian / BART ---- */

#define BART_LAYER "model.%s.layers.%d.%s" /* side, layer, part: + ".weight" / ".bias" */

/* model.<side>.layers.<l>.<which>.{q,k,v,out}_proj.weight / .bias */
static int take_attn(const av_hf_dir *h, av_attn_weights *a, av_err *err, const char *side, int l,
                     const char *which) {
    av_linear *ls[4] = {&a->q, &a->k, &a->v, &a->o};
    const char *names[4] = {"q_proj", "k_proj", "v_proj", "out_proj"};
    for (int i = 0; i < 4; i++)
        if (av_hf_take_wb(h, &ls[i]->w, &ls[i]->b, AV_HF_OPT_BIAS, err, "model.%s.layers.%d.%s.%s", side, l,
                          which, names[i]))
            return -1;
    return 0;
}

static int bart_stack(const av_hf_dir *h, av_stack *st, const char *side, int decoder, av_err *err) {
    for (int l = 0; l < st->n_layers; l++) {
        av_block *B = &st->blocks[l];
        if (take_attn(h, &B->attn, err, side, l, "self_attn") ||
            av_hf_take_wb(h, &B->attn_norm.w, &B->attn_norm.b, 0, err, BART_LAYER, side, l,
                          "self_attn_layer_norm") ||
            (decoder && (take_attn(h, &B->cross, err, side, l, "encoder_attn") ||
                         av_hf_take_wb(h, &B->cross_norm.w, &B->cross_norm.b, 0, err, BART_LAYER, side, l,
                                       "encoder_attn_layer_norm"))) ||
            av_hf_take_wb(h, &B->ffn.up.w, &B->ffn.up.b, AV_HF_OPT_BIAS, err, BART_LAYER, side, l, "fc1") ||
            av_hf_take_wb(h, &B->ffn.down.w, &B->ffn.down.b, AV_HF_OPT_BIAS, err, BART_LAYER, side, l,
                          "fc2") ||
            av_hf_take_wb(h, &B->ffn_norm.w, &B->ffn_norm.b, 0, err, BART_LAYER, side, l, "final_layer_norm"))
            return -1;
        B->attn_scale = 1.0f / sqrtf((float)st->cfg.head_dim);
    }
    return 0;
}

static int bart_embed(const av_hf_dir *h, const av_model *m, av_embed *e, const char *side, int marian,
                      av_err *err) {
    if (av_hf_take(h, &e->tok, 1, err, "model.%s.embed_tokens.weight", side)) return -1;
    if (e->tok.data == m->tok_emb.data) memset(&e->tok, 0, sizeof e->tok);
    if (marian) {
        e->sinusoidal = 1; /* a stored embed_positions table must hold the same values (unsupported.c) */
        char name[64];
        snprintf(name, sizeof name, "model.%s.embed_positions.weight", side);
        return av_hf_check_sinusoids(h, name, err);
    }
    e->pos_offset = 2;
    return av_hf_take(h, &e->pos, 0, err, "model.%s.embed_positions.weight", side) ||
           av_hf_take_wb(h, &e->norm.w, &e->norm.b, 0, err, "model.%s.layernorm_embedding", side);
}

int av_bart_load(av_hf_dir *h, av_model *m, av_err *err) {
    int marian = strcmp(h->model_type, "marian") == 0;
    int dim, enc_l, dec_l, enc_h, dec_h, enc_ff, dec_ff, n_pos, vocab, scale_emb, pre_norm, pad, eos, start;
    const char *act = av_hf_str(h, "activation_function");
    if (av_hf_int(h, "d_model", -1, 1, 1 << 16, &dim, err) ||
        av_hf_int(h, "encoder_layers", -1, 1, 1024, &enc_l, err) ||
        av_hf_int(h, "decoder_layers", -1, 1, 1024, &dec_l, err) ||
        av_hf_int(h, "encoder_attention_heads", -1, 1, 1024, &enc_h, err) ||
        av_hf_int(h, "decoder_attention_heads", -1, 1, 1024, &dec_h, err) ||
        av_hf_int(h, "encoder_ffn_dim", -1, 1, 1 << 19, &enc_ff, err) ||
        av_hf_int(h, "decoder_ffn_dim", -1, 1, 1 << 19, &dec_ff, err) ||
        av_hf_int(h, "max_position_embeddings", 1024, 1, 1 << 20, &n_pos, err) ||
        av_hf_int(h, "vocab_size", -1, 1, 1 << 22, &vocab, err) ||
        av_hf_bool(h, "scale_embedding", marian, &scale_emb, err) ||
        av_hf_bool(h, "normalize_before", 0, &pre_norm, err) ||
        av_hf_int(h, "pad_token_id", 1, 0, 1 << 22, &pad, err) ||
        av_hf_int(h, "eos_token_id", 2, 0, 1 << 22, &eos, err) ||
        av_hf_int(h, "decoder_start_token_id", marian ? pad : eos, 0, 1 << 22, &start, err))
        return -1;
    if (pre_norm)
        return av_errf(err, "%s: normalize_before (pre-norm, mBART style) is not supported", h->cfg_path);
    if (dim % enc_h || enc_h != dec_h)
        return av_errf(err,
                       "%s: d_model %d must split evenly into %d encoder heads, the same as the decoder's %d",
                       h->cfg_path, dim, enc_h, dec_h);
    av_act a = marian ? AV_ACT_SILU : AV_ACT_GELU;
    if (act && av_act_parse(act, &a))
        return av_errf(err, "%s: activation_function '%.32s' is not supported", h->cfg_path, act);
    if (encdec_init(m, enc_l, dec_l, err)) return -1;
    m->stacks[0].cfg = encdec_cfg(dim, enc_h, dim / enc_h, enc_ff, AV_NORM_LAYER, 1e-5f, 1, a, 0);
    m->stacks[1].cfg = encdec_cfg(dim, dec_h, dim / dec_h, dec_ff, AV_NORM_LAYER, 1e-5f, 1, a, 1);
    snprintf(m->arch, sizeof m->arch, "%s", marian ? "marian" : "bart");
    m->vocab_size = vocab;
    m->max_seq_len = n_pos;
    m->pad_id = pad;
    m->eos_id = eos;
    m->bos_id = marian ? -1 : 0;
    m->dec_start_id = start;
    m->stacks[0].emb.scale = m->stacks[1].emb.scale = scale_emb ? sqrtf((float)dim) : 1.0f;
    if (av_hf_take(h, &m->tok_emb, 1, err, "model.shared.weight")) return -1;
    if (!m->tok_emb.data && av_hf_take(h, &m->tok_emb, 0, err, "model.encoder.embed_tokens.weight"))
        return -1;
    av_tensor bias;
    if (bart_embed(h, m, &m->stacks[0].emb, "encoder", marian, err) ||
        bart_embed(h, m, &m->stacks[1].emb, "decoder", marian, err) ||
        bart_stack(h, &m->stacks[0], "encoder", 0, err) || bart_stack(h, &m->stacks[1], "decoder", 1, err) ||
        av_hf_take(h, &m->head.out.w, 1, err, "lm_head.weight") ||
        av_hf_take(h, &bias, 1, err, "final_logits_bias"))
        return -1;
    if (!m->head.out.w.data) m->head.out.w = m->stacks[1].emb.tok.data ? m->stacks[1].emb.tok : m->tok_emb;
    if (bias.data) { /* (1, vocab) */
        if (av_tensor_numel(&bias) != vocab)
            return av_errf(err, "final_logits_bias: %lld values do not match config.json (vocab_size %d)",
                           (long long)av_tensor_numel(&bias), vocab);
        m->head.out.b = bias;
        m->head.out.b.ndim = 1;
        m->head.out.b.shape[0] = vocab;
        m->head.out.b.shape[1] = 0;
    }
    m->head.n_out = vocab;
    return 0;
}

/* ---- T5 ---- */

#define T5_LAYER "%s.block.%d.layer." /* side, block: then the layer's index and part */

static int t5_stack(const av_hf_dir *h, av_stack *st, const char *side, int decoder, av_err *err) {
    const char *names[4] = {"q", "k", "v", "o"};
    int ff = decoder ? 2 : 1; /* the feed-forward's layer */
    int gated = av_hf_find(h, "encoder.block.0.layer.1.DenseReluDense.wi_0.weight") != NULL; /* wi_0, wi_1 */
    for (int l = 0; l < st->n_layers; l++) {
        av_block *B = &st->blocks[l];
        av_linear *self[4] = {&B->attn.q, &B->attn.k, &B->attn.v, &B->attn.o};
        av_linear *cross[4] = {&B->cross.q, &B->cross.k, &B->cross.v, &B->cross.o};
        for (int i = 0; i < 4; i++)
            if (av_hf_take(h, &self[i]->w, 0, err, T5_LAYER "0.SelfAttention.%s.weight", side, l, names[i]) ||
                (decoder && av_hf_take(h, &cross[i]->w, 0, err, T5_LAYER "1.EncDecAttention.%s.weight", side,
                                       l, names[i])))
                return -1;
        if (av_hf_take(h, &B->attn_norm.w, 0, err, T5_LAYER "0.layer_norm.weight", side, l) ||
            (decoder && av_hf_take(h, &B->cross_norm.w, 0, err, T5_LAYER "1.layer_norm.weight", side, l)) ||
            av_hf_take(h, &B->ffn_norm.w, 0, err, T5_LAYER "%d.layer_norm.weight", side, l, ff) ||
            (gated &&
             av_hf_take(h, &B->ffn.gate.w, 0, err, T5_LAYER "%d.DenseReluDense.wi_0.weight", side, l, ff)) ||
            av_hf_take(h, &B->ffn.up.w, 0, err,
                       gated ? T5_LAYER "%d.DenseReluDense.wi_1.weight"
                             : T5_LAYER "%d.DenseReluDense.wi.weight",
                       side, l, ff) ||
            av_hf_take(h, &B->ffn.down.w, 0, err, T5_LAYER "%d.DenseReluDense.wo.weight", side, l, ff))
            return -1;
        B->attn_scale = 1.0f; /* T5 folds the scaling into its initialization */
    }
    return av_hf_take(h, &st->final_norm.w, 0, err, "%s.final_layer_norm.weight", side);
}

int av_t5_load(av_hf_dir *h, av_model *m, av_err *err) {
    int dim, d_kv, d_ff, enc_l, dec_l, heads, buckets, max_dist, vocab, tied, pad, eos, start;
    double eps;
    const char *ff = av_hf_str(h, "feed_forward_proj");
    if (av_hf_int(h, "d_model", -1, 1, 1 << 16, &dim, err) || av_hf_int(h, "d_kv", -1, 1, 4096, &d_kv, err) ||
        av_hf_int(h, "d_ff", -1, 1, 1 << 19, &d_ff, err) ||
        av_hf_int(h, "num_layers", -1, 1, 1024, &enc_l, err) ||
        av_hf_int(h, "num_decoder_layers", enc_l, 1, 1024, &dec_l, err) ||
        av_hf_int(h, "num_heads", -1, 1, 1024, &heads, err) ||
        av_hf_int(h, "relative_attention_num_buckets", 32, 4, 4096, &buckets, err) ||
        av_hf_int(h, "relative_attention_max_distance", 128, 1, 1 << 20, &max_dist, err) ||
        av_hf_int(h, "vocab_size", -1, 1, 1 << 22, &vocab, err) ||
        av_hf_num(h, "layer_norm_epsilon", 1e-6, &eps, err) ||
        av_hf_bool(h, "tie_word_embeddings", 1, &tied, err) ||
        av_hf_int(h, "pad_token_id", 0, 0, 1 << 22, &pad, err) ||
        av_hf_int(h, "eos_token_id", 1, 0, 1 << 22, &eos, err) ||
        av_hf_int(h, "decoder_start_token_id", pad, 0, 1 << 22, &start, err))
        return -1;
    if (max_dist <= buckets / 2) /* the logarithmic buckets divide by log(max_distance / (buckets / 2)) */
        return av_errf(err, "%s: relative_attention_max_distance %d must exceed half the %d buckets",
                       h->cfg_path, max_dist, buckets);
    av_act a = AV_ACT_RELU;
    int gated = 0;
    if (ff) { /* "relu", "gated-gelu" (gelu_new), "gated-silu", ... */
        gated = strncmp(ff, "gated-", 6) == 0;
        const char *name = gated ? ff + 6 : ff;
        if (strcmp(ff, "gated-gelu") == 0) name = "gelu_new";
        if (av_act_parse(name, &a))
            return av_errf(err, "%s: feed_forward_proj '%.32s' is not supported", h->cfg_path, ff);
    }
    if (encdec_init(m, enc_l, dec_l, err)) return -1;
    for (int i = 0; i < 2; i++) {
        m->stacks[i].cfg = encdec_cfg(dim, heads, d_kv, d_ff, AV_NORM_RMS, (float)eps, 0, a, i);
        m->stacks[i].rel.n_buckets = buckets;
        m->stacks[i].rel.max_distance = max_dist;
    }
    snprintf(m->arch, sizeof m->arch, "t5");
    m->vocab_size = vocab;
    m->max_seq_len = 4096; /* relative positions have no table limit; bounds the T x T captures */
    m->pad_id = pad;
    m->eos_id = eos;
    m->dec_start_id = start;
    if (av_hf_take(h, &m->tok_emb, 1, err, "shared.weight")) return -1;
    if (!m->tok_emb.data && av_hf_take(h, &m->tok_emb, 0, err, "encoder.embed_tokens.weight")) return -1;
    if (av_hf_take(h, &m->stacks[0].rel.table, 0, err,
                   "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight") ||
        av_hf_take(h, &m->stacks[1].rel.table, 0, err,
                   "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight") ||
        t5_stack(h, &m->stacks[0], "encoder", 0, err) || t5_stack(h, &m->stacks[1], "decoder", 1, err) ||
        av_hf_take(h, &m->head.out.w, tied, err, "lm_head.weight"))
        return -1;
    if (gated != (m->stacks[0].blocks[0].ffn.gate.w.data != NULL))
        return av_errf(err,
                       "%s: feed_forward_proj '%s' does not match the checkpoint's DenseReluDense weights",
                       h->cfg_path, ff ? ff : "relu");
    if (tied) {
        m->head.out.w = m->tok_emb;
        m->head.scale = 1.0f / sqrtf((float)dim); /* sequence_output * d_model ** -0.5 */
    }
    m->head.n_out = vocab;
    return 0;
}
