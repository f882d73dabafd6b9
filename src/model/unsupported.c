/* Keys and tensors that change the math and are not implemented: refused with the key's name (issue #19: a
 * Llama 3.1 GGUF with rope_freqs ran and gave logits 0.6-0.9 off). This file decides, for every
 * architecture, which keys pass; the loaders read the ones they apply:
 *   - gguf_keys: the "<arch>." keys of GGUF decoders (src/model/arch.h). GGUF_APPLIED keys are read by
 *     gguf_decoder.c for every family; a family's own keys are listed in its av_arch entry (gguf_known) and
 *     read by its family file; the others pass only with their neutral value; a key in no table is refused
 *     (it may change the math).
 *   - hf_keys: config.json keys that pass only when absent, null or neutral, except for the families that
 *     apply them (configs carry many harmless keys, so here the table lists the harmful ones).
 *   - unused tensors: a GGUF tensor no loader took, or a safetensors tensor no loader took, is refused unless
 *     hf_ignorable lists it (buffers and heads outside what attnviz computes).
 *   - tied heads: with tie_word_embeddings (hf_heads: the default per family) the output layer is the
 *     embedding; a stored head that differs from it is refused (the decoders check theirs in hf_decoder.c).
 * When an architecture change implements an entry, it lists the family under "applied by" here. */
#include "unsupported.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum key_rule {
    KEY_NUM = 0, /* neutral when numeric (bool: 0/1) and equal to num */
    KEY_ANY,     /* never changes the math */
    KEY_NULL,    /* config.json only: neutral when null (absent always is) */
    KEY_EMPTY,   /* config.json only: neutral when an empty list */
} key_rule;

typedef struct math_key {
    const char *key; /* GGUF: after "<arch>."; config.json: the member name */
    key_rule rule;
    double num;
    const char *what; /* what it does, for the refusal */
} math_key;

/* 1 when name is one of the space-separated words (a name with a space never is: GGUF keys are untrusted). */
static int applies_to(const char *words, const char *name) {
    size_t n = strchr(name, ' ') ? 0 : strlen(name);
    for (const char *p = words; n && (p = strstr(p, name)); p += n)
        if ((p == words || p[-1] == ' ') && (p[n] == ' ' || p[n] == 0)) return 1;
    return 0;
}

/* ---- GGUF ---- */

/* The "<arch>." keys gguf_decoder.c reads for every family (rope.scaling.type: none and linear; it refuses
 * the others). */
#define GGUF_APPLIED                                                                                         \
    "context_length embedding_length block_count feed_forward_length attention.head_count "                  \
    "attention.head_count_kv attention.key_length attention.value_length attention.layer_norm_rms_epsilon "  \
    "rope.dimension_count rope.freq_base rope.scaling.type rope.scaling.factor rope.scale_linear "           \
    "rope.scaling.attn_factor rope.scaling.original_context_length vocab_size expert_count "                 \
    "expert_used_count"

/* The others: neutral values pass. */
static const math_key gguf_keys[] = {
    {"rope.scaling.finetuned", KEY_ANY, 0, NULL},
    {"pooling_type", KEY_ANY, 0, NULL}, /* embeddings only: the logits do not use it */
    {"tensor_data_layout", KEY_ANY, 0, NULL},
    {"attention.causal", KEY_NUM, 1, "non-causal attention"},
    {"attention.sliding_window", KEY_NUM, 0, "sliding-window attention"},
    {"attention.layer_norm_epsilon", KEY_NUM, 0, "LayerNorm instead of RMSNorm"},
    {"attention.clamp_kqv", KEY_NUM, 0, "clamped q/k/v"},
    {"attention.max_alibi_bias", KEY_NUM, 0, "ALiBi position biases"},
    {"attention.scale", KEY_NUM, 0, "an attention scale other than 1/sqrt(head size)"},
    {"attn_logit_softcapping", KEY_NUM, 0, "attention logit soft-capping"},
    {"final_logit_softcapping", KEY_NUM, 0, "final logit soft-capping"},
    {"logit_scale", KEY_NUM, 1, "scaled logits"},
    {"embedding_scale", KEY_NUM, 1, "scaled embeddings"},
    {"residual_scale", KEY_NUM, 1, "scaled residuals"},
    {"use_parallel_residual", KEY_NUM, 0, "parallel attention and feed-forward"},
    {"expert_shared_count", KEY_NUM, 0, "shared experts"},
    {"expert_weights_scale", KEY_NUM, 1, "scaled expert weights"},
    {"leading_dense_block_count", KEY_NUM, 0, "dense layers before the experts"},
    {"interleave_moe_layer_step", KEY_NUM, 0, "experts in some layers only"},
};

/* Tensors known to need math a family lacks (a clearer message than "not used"). */
static const struct {
    const char *suffix, *what;
} gguf_tensor_notes[] = {
    {"rope_freqs.weight", "RoPE frequency factors"},
    {"_norm.bias", "LayerNorm biases"},
    {".bias", "biases"},
    {"attn_q_norm.weight", "query normalization"},
    {"attn_k_norm.weight", "key normalization"},
    {"ffn_gate_inp.weight", "a mixture of experts"},
};

static int is_numeric(av_gguf_type t) { return t != AV_GGUF_STRING && t != AV_GGUF_ARRAY; }

static double gguf_num(const av_gguf_value *v) {
    switch (v->type) {
    case AV_GGUF_F32:
    case AV_GGUF_F64: return v->num.f;
    case AV_GGUF_I8:
    case AV_GGUF_I16:
    case AV_GGUF_I32:
    case AV_GGUF_I64: return (double)v->num.i;
    default: return (double)v->num.u;
    }
}

/* 1 when a key's value leaves the math unchanged. */
static int gguf_neutral(const math_key *k, const av_gguf_value *v) {
    if (k->rule == KEY_ANY) return 1;
    return k->rule == KEY_NUM && is_numeric(v->type) && gguf_num(v) == k->num;
}

static int refuse_gguf_key(const av_gguf *g, const av_gguf_kv *kv, const math_key *k, const char *arch,
                           av_err *err) {
    char shown[64] = "";
    if (kv->v.type == AV_GGUF_STRING)
        av_printable(shown, sizeof shown, kv->v.str, (size_t)kv->v.str_len);
    else if (is_numeric(kv->v.type))
        snprintf(shown, sizeof shown, "%.9g", gguf_num(&kv->v));
    else
        snprintf(shown, sizeof shown, "(an array)");
    if (!k)
        return av_errf(
            err,
            "%s: key '%s' = %s is not known to attnviz's %s and may change the math: refused rather "
            "than ignored",
            g->name, kv->key, shown, arch);
    return av_errf(err,
                   "%s: key '%s' = %s means %s, which attnviz does not implement for %s: refused rather than "
                   "ignored",
                   g->name, kv->key, shown, k->what, arch);
}

int av_gguf_refuse_unsupported(const av_gguf *g, const char *arch, const char *family_keys, av_err *err) {
    size_t alen = strlen(arch);
    for (int64_t i = 0; i < g->n_kv; i++) {
        const av_gguf_kv *kv = &g->kv[i];
        if (strncmp(kv->key, arch, alen) != 0 || kv->key[alen] != '.') continue;
        const char *key = kv->key + alen + 1;
        if (applies_to(GGUF_APPLIED, key) || (family_keys && applies_to(family_keys, key))) continue;
        const math_key *k = NULL;
        for (size_t j = 0; j < sizeof gguf_keys / sizeof gguf_keys[0] && !k; j++)
            if (strcmp(key, gguf_keys[j].key) == 0) k = &gguf_keys[j];
        if (!k || !gguf_neutral(k, &kv->v)) return refuse_gguf_key(g, kv, k, arch, err);
    }
    return 0;
}

int av_gguf_refuse_tensor(const av_gguf *g, const char *name, const char *arch, av_err *err) {
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof gguf_tensor_notes / sizeof gguf_tensor_notes[0]; i++) {
        size_t k = strlen(gguf_tensor_notes[i].suffix);
        if (n >= k && strcmp(name + n - k, gguf_tensor_notes[i].suffix) == 0)
            return av_errf(err,
                           "%s: tensor '%.96s' holds %s, which attnviz's %s does not apply: refused rather "
                           "than ignored (llama.cpp refuses it too)",
                           g->name, name, gguf_tensor_notes[i].what, arch);
    }
    return av_errf(err,
                   "%s: tensor '%.96s' is not used by attnviz's %s and may change the math: refused rather "
                   "than ignored (llama.cpp refuses it too)",
                   g->name, name, arch);
}

/* ---- Hugging Face config.json ---- */

#define DECODERS "llama mistral mixtral qwen2 qwen3 qwen3_moe gemma gemma2 gemma3_text phi3"

typedef struct hf_key {
    math_key k;
    const char *applied_by; /* model types that read it (the key passes there), space separated */
    const char *concerns;   /* model types it is checked for, NULL: every family */
} hf_key;

static const hf_key hf_keys[] = {
    {{"rope_scaling", KEY_NULL, 0, "RoPE scaling (linear, dynamic NTK, YaRN, Llama 3 frequency factors)"},
     DECODERS,
     NULL}, /* hf_decoder.c refuses the types it does not implement */
    {{"attn_logit_softcapping", KEY_NUM, 0, "attention logit soft-capping"}, "gemma2 gemma3_text", NULL},
    {{"final_logit_softcapping", KEY_NUM, 0, "final logit soft-capping"}, "gemma2 gemma3_text", NULL},
    {{"query_pre_attn_scalar", KEY_NULL, 0, "a query scale other than 1/sqrt(head_dim)"},
     "gemma2 gemma3_text",
     NULL},
    {{"sliding_window_pattern", KEY_NULL, 0, "a local/global layer pattern"}, "gemma3_text", NULL},
    {{"rope_local_base_freq", KEY_NULL, 0, "a RoPE base for local layers"}, "gemma3_text", NULL},
    {{"hidden_activation", KEY_NULL, 0, "another activation"}, "gemma gemma2 gemma3_text", NULL},
    {{"sliding_window", KEY_NULL, 0, "sliding-window attention"},
     "mistral mixtral qwen2 qwen3 qwen3_moe gemma2 gemma3_text phi3",
     DECODERS},
    {{"use_sliding_window", KEY_NUM, 0, "sliding-window attention"}, "qwen2 qwen3 qwen3_moe", DECODERS},
    {{"partial_rotary_factor", KEY_NUM, 1, "partial rotary embeddings"}, "phi3", NULL},
    {{"rotary_pct", KEY_NUM, 1, "partial rotary embeddings"}, "", NULL},
    {{"rope_interleaved", KEY_NUM, 0, "interleaved rotary pairs in a Hugging Face checkpoint"}, "", NULL},
    {{"alibi", KEY_NUM, 0, "ALiBi position biases"}, "", NULL},
    {{"use_alibi", KEY_NUM, 0, "ALiBi position biases"}, "", NULL},
    {{"logit_scale", KEY_NUM, 1, "scaled logits"}, "", NULL},
    {{"logits_scaling", KEY_NUM, 1, "scaled logits"}, "", NULL},
    {{"embedding_multiplier", KEY_NUM, 1, "scaled embeddings"}, "", NULL},
    {{"residual_multiplier", KEY_NUM, 1, "scaled residuals"}, "", NULL},
    {{"attention_multiplier", KEY_NULL, 0, "an attention scale other than 1/sqrt(head_dim)"}, "", NULL},
    {{"num_experts", KEY_NUM, 0, "a mixture of experts"}, "qwen3_moe", NULL},
    {{"num_local_experts", KEY_NUM, 0, "a mixture of experts"}, "mixtral", NULL},
    {{"num_experts_per_tok", KEY_NULL, 0, "a mixture of experts"}, "mixtral qwen3_moe", DECODERS},
    {{"moe_intermediate_size", KEY_NULL, 0, "a mixture of experts"}, "qwen3_moe", DECODERS},
    {{"norm_topk_prob", KEY_NULL, 0, "a mixture of experts"}, "qwen3_moe", DECODERS},
    {{"decoder_sparse_step", KEY_NULL, 0, "a mixture of experts"}, "qwen3_moe", DECODERS},
    {{"mlp_only_layers", KEY_EMPTY, 0, "dense layers among the experts"}, "qwen3_moe", DECODERS},
    {{"shared_expert_intermediate_size", KEY_NUM, 0, "shared experts"}, "", NULL},
    {{"n_shared_experts", KEY_NUM, 0, "shared experts"}, "", NULL},
    {{"use_qk_norm", KEY_NUM, 0, "q/k norms"}, "", NULL},
    {{"qk_layernorm", KEY_NUM, 0, "q/k norms"}, "", NULL},
    {{"clip_qkv", KEY_NULL, 0, "clipped q/k/v"}, "", NULL},
    {{"layer_norm_eps", KEY_NULL, 0, "LayerNorm instead of RMSNorm"}, "", DECODERS},
    {{"layer_norm_epsilon", KEY_NULL, 0, "LayerNorm instead of RMSNorm"}, "", DECODERS},
    {{"use_parallel_residual", KEY_NUM, 0, "parallel attention and feed-forward"}, "", DECODERS},
    {{"parallel_attn", KEY_NUM, 0, "parallel attention and feed-forward"}, "", DECODERS},
    {{"is_causal", KEY_NUM, 1, "bidirectional attention"}, "", DECODERS},
    {{"use_bidirectional_attention", KEY_NUM, 0, "bidirectional attention"}, "", DECODERS},
    {{"mlp_bias", KEY_NUM, 0, "feed-forward biases"}, "llama", DECODERS},
    {{"attention_bias", KEY_NUM, 0, "attention biases on q, k, v and o"},
     "llama qwen3 qwen3_moe gemma gemma2 gemma3_text",
     DECODERS},
    {{"is_decoder", KEY_NUM, 0, "a causal BERT decoder"}, "", "bert roberta distilbert"},
    {{"add_cross_attention", KEY_NUM, 0, "cross-attention layers"}, "", "bert roberta gpt2"},
    {{"add_final_layer_norm", KEY_NUM, 0, "a final layer norm in each stack (mBART)"}, "", "bart marian"},
};

static int hf_neutral(const math_key *k, const json_t *v) {
    if (!v || json_is_null(v)) return 1;
    switch (k->rule) {
    case KEY_NUM:
        if (json_is_boolean(v)) return (json_is_true(v) ? 1.0 : 0.0) == k->num;
        return json_is_number(v) && json_number_value(v) == k->num;
    case KEY_EMPTY: return json_is_array(v) && json_array_size(v) == 0;
    case KEY_NULL: /* rope_scaling {"rope_type": "default"} is plain RoPE */
        return json_is_object(v) && json_object_size(v) == 1 &&
               ((json_string_value(json_object_get(v, "rope_type")) &&
                 strcmp(json_string_value(json_object_get(v, "rope_type")), "default") == 0) ||
                (json_string_value(json_object_get(v, "type")) &&
                 strcmp(json_string_value(json_object_get(v, "type")), "default") == 0));
    default: return 1;
    }
}

int av_hf_refuse_unsupported_keys(const av_hf_dir *h, av_err *err) {
    for (size_t i = 0; i < sizeof hf_keys / sizeof hf_keys[0]; i++) {
        const hf_key *k = &hf_keys[i];
        const json_t *v = json_object_get(h->cfg, k->k.key);
        if (applies_to(k->applied_by, h->model_type) ||
            (k->concerns && !applies_to(k->concerns, h->model_type)) || hf_neutral(&k->k, v))
            continue;
        char *shown = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        char text[80];
        av_printable(text, sizeof text, shown ? shown : "?", shown ? strlen(shown) : 1);
        free(shown);
        return av_errf(err,
                       "%s: \"%s\": %s means %s, which attnviz does not implement for %s models: refused "
                       "rather than ignored",
                       h->cfg_path, k->k.key, text, k->k.what, h->model_type);
    }
    return 0;
}

/* Tensors a loader may leave unused: buffers (recomputed) and heads outside what attnviz computes. */
static const char *const hf_ignorable[] = {
    ".attn.bias",          /* GPT-2's causal-mask buffer */
    ".attn.masked_bias",   /* GPT-2's masking constant */
    "position_ids",        /* BERT-style arange buffers */
    "pooler.dense.weight", /* BERT / ViT pooler: only for sentence classification */
    "pooler.dense.bias",
    "cls.seq_relationship.weight", /* BERT's next-sentence head */
    "cls.seq_relationship.bias",
};

/* Output heads the family loaders take when stored, and the embedding Hugging Face ties them to. */
static const struct {
    const char *model_type, *head, *emb; /* emb: candidates separated by '|', the first present counts */
} hf_heads[] = {
    {"gpt2", "lm_head.weight", "transformer.wte.weight|wte.weight"},
    {"bert", "cls.predictions.decoder.weight", "bert.embeddings.word_embeddings.weight"},
    {"roberta", "lm_head.decoder.weight", "roberta.embeddings.word_embeddings.weight"},
    {"distilbert", "vocab_projector.weight", "distilbert.embeddings.word_embeddings.weight"},
    {"bart", "lm_head.weight", "model.decoder.embed_tokens.weight|model.shared.weight"},
    {"marian", "lm_head.weight", "model.decoder.embed_tokens.weight|model.shared.weight"},
};

int av_hf_refuse_tie_mismatch(const av_hf_dir *h, av_err *err) {
    json_t *tv = json_object_get(h->cfg, "tie_word_embeddings");
    if (json_is_false(tv) || (json_is_integer(tv) && json_integer_value(tv) == 0))
        return 0; /* default: tied */
    for (size_t i = 0; i < sizeof hf_heads / sizeof hf_heads[0]; i++) {
        if (strcmp(h->model_type, hf_heads[i].model_type) != 0) continue;
        const av_tensor *head = av_hf_find(h, hf_heads[i].head), *emb = NULL;
        char names[128];
        snprintf(names, sizeof names, "%s", hf_heads[i].emb);
        for (char *save = NULL, *n = strtok_r(names, "|", &save); n && !emb; n = strtok_r(NULL, "|", &save))
            emb = av_hf_find(h, n);
        if (head && emb && !av_tensor_same(head, emb))
            return av_errf(
                err,
                "%s: %s differs from the embedding it is tied to (\"tie_word_embeddings\" is true, the "
                "default): refused rather than guessing which one the output uses",
                h->dir, hf_heads[i].head);
    }
    return 0;
}

int av_hf_refuse_unused_tensors(const av_hf_dir *h, av_err *err) {
    for (int s = 0; s < h->m->n_shards; s++) {
        const av_safetensors *st = &h->m->shards[s];
        for (int i = 0; i < st->n; i++) {
            if (h->used[s] && h->used[s][i]) continue;
            const char *name = st->entries[i].name;
            size_t n = strlen(name);
            int ok = 0;
            for (size_t k = 0; k < sizeof hf_ignorable / sizeof hf_ignorable[0] && !ok; k++) {
                size_t m = strlen(hf_ignorable[k]);
                ok = n >= m && strcmp(name + n - m, hf_ignorable[k]) == 0;
            }
            if (!ok)
                return av_errf(
                    err,
                    "%s: tensor '%.96s' is not used by attnviz's %s and may change the math: refused "
                    "rather than ignored",
                    h->dir, name, h->model_type);
        }
    }
    return 0;
}

static float element(const av_tensor *t, size_t i) {
    if (t->dtype == AV_DTYPE_F32) return ((const float *)t->data)[i];
    uint16_t h = ((const uint16_t *)t->data)[i];
    return t->dtype == AV_DTYPE_F16 ? av_f16_to_f32(h) : av_bf16_to_f32(h);
}

int av_hf_check_sinusoids(const av_hf_dir *h, const char *name, av_err *err) {
    const av_tensor *t = av_hf_find(h, name);
    if (!t) return 0;
    int64_t n_pos = t->ndim == 2 ? t->shape[0] : 0, dim = t->ndim == 2 ? t->shape[1] : 0;
    size_t esz = t->dtype == AV_DTYPE_F32 ? 4 : 2;
    if (n_pos <= 0 || dim <= 0 || dim % 2 ||
        (t->dtype != AV_DTYPE_F32 && t->dtype != AV_DTYPE_F16 && t->dtype != AV_DTYPE_BF16) ||
        (size_t)(n_pos * dim) * esz != t->nbytes)
        return av_errf(err, "%s: tensor '%s' is not a [positions, d_model] float table", h->dir, name);
    double tol = t->dtype == AV_DTYPE_BF16 ? 1e-2 : t->dtype == AV_DTYPE_F16 ? 2e-3 : 1e-5;
    for (int64_t p = 0; p < n_pos; p++)
        for (int64_t k = 0; k < dim / 2; k++) {
            double a = (double)p / pow(10000.0, 2.0 * (double)k / (double)dim);
            double s = element(t, (size_t)(p * dim + k)), c = element(t, (size_t)(p * dim + dim / 2 + k));
            if (!(fabs(s - sin(a)) <= tol && fabs(c - cos(a)) <= tol)) /* NaN fails too */
                return av_errf(
                    err,
                    "%s: tensor '%s' row %lld is not the sinusoidal table attnviz computes: learned "
                    "positions are not supported for this model type (refused rather than ignored)",
                    h->dir, name, (long long)p);
        }
    return 0;
}
