/* The BERT family from Hugging Face directories: BERT, RoBERTa and DistilBERT. Post-norm blocks with biases,
 * bidirectional attention, learned positions (RoBERTa: counted from padding_idx + 1 over non-pad tokens),
 * token type 0 (BERT, RoBERTa), embedding LayerNorm, and the masked-LM head when the checkpoint has one
 * (dense + activation + LayerNorm, decoder tied to the word embeddings, output bias). Older checkpoints name
 * LayerNorm parameters gamma/beta; both spellings load. */
#include "hf.h"

#include <math.h>
#include <string.h>

/* A LayerNorm "<base>.weight/.bias" or "<base>.gamma/.beta"; base is printf-formatted. */
static int take_norm(const av_hf_dir *h, av_norm *n, int optional, av_err *err, const char *base) {
    if (av_hf_take(h, &n->w, 1, err, "%s.weight", base) || av_hf_take(h, &n->b, 1, err, "%s.bias", base))
        return -1;
    if (!n->w.data &&
        (av_hf_take(h, &n->w, 1, err, "%s.gamma", base) || av_hf_take(h, &n->b, 1, err, "%s.beta", base)))
        return -1;
    if (!n->w.data && !optional) return av_errf(err, "%s: missing tensor '%s.weight'", h->dir, base);
    return 0;
}

typedef struct bert_names {
    const char *q, *k, *v, *o, *attn_norm, *up, *down, *mlp_norm; /* inside one layer */
    const char *layers;                                           /* "encoder.layer" / "transformer.layer" */
} bert_names;

static const bert_names names_bert = {
    "attention.self.query",   "attention.self.key",         "attention.self.value",
    "attention.output.dense", "attention.output.LayerNorm", "intermediate.dense",
    "output.dense",           "output.LayerNorm",           "encoder.layer"};
static const bert_names names_distil = {"attention.q_lin",   "attention.k_lin",   "attention.v_lin",
                                        "attention.out_lin", "sa_layer_norm",     "ffn.lin1",
                                        "ffn.lin2",          "output_layer_norm", "transformer.layer"};

static int load_layers(const av_hf_dir *h, av_stack *st, const char *p, const bert_names *nm, av_err *err) {
    char b[256];
    for (int l = 0; l < st->n_layers; l++) {
        av_block *B = &st->blocks[l];
        struct {
            av_linear *lin;
            const char *name;
        } lins[] = {{&B->attn.q, nm->q}, {&B->attn.k, nm->k},  {&B->attn.v, nm->v},
                    {&B->attn.o, nm->o}, {&B->ffn.up, nm->up}, {&B->ffn.down, nm->down}};
        for (size_t i = 0; i < sizeof lins / sizeof lins[0]; i++)
            if (av_hf_take_wb(h, &lins[i].lin->w, &lins[i].lin->b, AV_HF_OPT_BIAS, err, "%s%s.%d.%s", p,
                              nm->layers, l, lins[i].name))
                return -1;
        snprintf(b, sizeof b, "%s%s.%d.%s", p, nm->layers, l, nm->attn_norm);
        if (take_norm(h, &B->attn_norm, 0, err, b)) return -1;
        snprintf(b, sizeof b, "%s%s.%d.%s", p, nm->layers, l, nm->mlp_norm);
        if (take_norm(h, &B->ffn_norm, 0, err, b)) return -1;
        B->attn_scale = 1.0f / sqrtf((float)st->cfg.head_dim);
    }
    return 0;
}

/* The masked-LM head: transform (dense, act, norm) + decoder (tied unless stored) + bias. */
static int load_mlm_head(const av_hf_dir *h, av_model *m, const char *dense, const char *norm,
                         const char *decoder, const char *bias, av_err *err) {
    if (av_hf_take(h, &m->head.dense.w, 1, err, "%s.weight", dense)) return -1;
    if (!m->head.dense.w.data) return 0; /* a bare encoder: no logits */
    if (av_hf_take(h, &m->head.dense.b, 1, err, "%s.bias", dense) ||
        take_norm(h, &m->head.dense_norm, 0, err, norm) ||
        av_hf_take(h, &m->head.out.w, 1, err, "%s.weight", decoder) ||
        av_hf_take(h, &m->head.out.b, 1, err, "%s", bias))
        return -1;
    if (!m->head.out.b.data && av_hf_take(h, &m->head.out.b, 1, err, "%s.bias", decoder)) return -1;
    if (!m->head.out.w.data) m->head.out.w = m->tok_emb; /* tied */
    m->head.n_out = m->vocab_size;
    return 0;
}

int av_bert_load(av_hf_dir *h, av_model *m, av_err *err) {
    int distil = strcmp(h->model_type, "distilbert") == 0, roberta = strcmp(h->model_type, "roberta") == 0;
    int dim, n_layers, n_heads, hidden, n_pos, vocab, pad;
    double eps = 1e-12;
    const char *act = av_hf_str(h, distil ? "activation" : "hidden_act");
    if (distil ? (av_hf_int(h, "dim", -1, 1, 1 << 16, &dim, err) ||
                  av_hf_int(h, "n_layers", -1, 1, 1024, &n_layers, err) ||
                  av_hf_int(h, "n_heads", -1, 1, 1024, &n_heads, err) ||
                  av_hf_int(h, "hidden_dim", -1, 1, 1 << 19, &hidden, err))
               : (av_hf_int(h, "hidden_size", -1, 1, 1 << 16, &dim, err) ||
                  av_hf_int(h, "num_hidden_layers", -1, 1, 1024, &n_layers, err) ||
                  av_hf_int(h, "num_attention_heads", -1, 1, 1024, &n_heads, err) ||
                  av_hf_int(h, "intermediate_size", -1, 1, 1 << 19, &hidden, err) ||
                  av_hf_num(h, "layer_norm_eps", 1e-12, &eps, err)))
        return -1;
    if (av_hf_int(h, "max_position_embeddings", 512, 1, 1 << 20, &n_pos, err) ||
        av_hf_int(h, "vocab_size", -1, 1, 1 << 22, &vocab, err) ||
        av_hf_int(h, "pad_token_id", roberta ? 1 : 0, 0, 1 << 22, &pad, err))
        return -1;
    const char *pos_type = av_hf_str(h, "position_embedding_type");
    if (pos_type && strcmp(pos_type, "absolute") != 0)
        return av_errf(err, "%s: position_embedding_type '%.32s' is not supported (only absolute)",
                       h->cfg_path, pos_type);
    if (dim % n_heads)
        return av_errf(err, "%s: hidden size %d is not a multiple of %d heads", h->cfg_path, dim, n_heads);
    av_stack_cfg *c = &m->stacks[0].cfg;
    *c = av_stack_cfg_mha(dim, n_heads, dim / n_heads, hidden, AV_NORM_LAYER, (float)eps, AV_ACT_GELU);
    c->post_norm = 1;
    if (act && av_act_parse(act, &c->act))
        return av_errf(err, "%s: activation '%.32s' is not supported", h->cfg_path, act);
    m->family = AV_FAMILY_BERT;
    m->n_stacks = 1;
    snprintf(m->arch, sizeof m->arch, "%s", distil ? "distilbert" : roberta ? "roberta" : "bert");
    m->vocab_size = vocab;
    m->pad_id = pad;
    m->stacks[0].emb.pos_from_pad = roberta;
    m->max_seq_len = roberta ? n_pos - pad - 1 : n_pos;
    if (m->max_seq_len < 1)
        return av_errf(err, "%s: max_position_embeddings %d leaves no positions after padding_idx %d",
                       h->cfg_path, n_pos, pad);

    const char *root = distil ? "distilbert" : roberta ? "roberta" : "bert";
    char p[32], b[256];
    snprintf(p, sizeof p, "%s.", root);
    snprintf(b, sizeof b, "%sembeddings.word_embeddings.weight", p);
    if (!av_hf_find(h, b)) p[0] = 0; /* a bare BertModel / RobertaModel / DistilBertModel checkpoint */
    snprintf(b, sizeof b, "%sembeddings.LayerNorm", p);
    if (av_hf_take(h, &m->tok_emb, 0, err, "%sembeddings.word_embeddings.weight", p) ||
        av_hf_take(h, &m->stacks[0].emb.pos, 0, err, "%sembeddings.position_embeddings.weight", p) ||
        (!distil &&
         av_hf_take(h, &m->stacks[0].emb.type, 0, err, "%sembeddings.token_type_embeddings.weight", p)) ||
        take_norm(h, &m->stacks[0].emb.norm, 0, err, b) || av_stack_alloc(&m->stacks[0], n_layers, err) ||
        load_layers(h, &m->stacks[0], p, distil ? &names_distil : &names_bert, err))
        return -1;
    m->head.dense_act = c->act;
    if (distil)
        return load_mlm_head(h, m, "vocab_transform", "vocab_layer_norm", "vocab_projector",
                             "vocab_projector.bias", err);
    if (roberta) {
        m->head.dense_act = AV_ACT_GELU; /* RobertaLMHead uses exact GELU whatever hidden_act says */
        return load_mlm_head(h, m, "lm_head.dense", "lm_head.layer_norm", "lm_head.decoder", "lm_head.bias",
                             err);
    }
    return load_mlm_head(h, m, "cls.predictions.transform.dense", "cls.predictions.transform.LayerNorm",
                         "cls.predictions.decoder", "cls.predictions.bias", err);
}
