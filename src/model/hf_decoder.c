/* Hugging Face decoder directories (the families of arch.h): config.json keys into an av_arch_cfg (the common
 * ones here, the family's own in its family file), weights by the name table of arch.c, the tokenizer next
 * to them. HF checkpoints permute q/k rows for the rotate-half RoPE (pairs (i, i + d/2)): AV_ROPE_HALF.
 *
 * Config keys that change the math are applied here or refused by unsupported.c (its table names the
 * families that apply each key); RoPE comes from rope_theta + rope_scaling (transformers 4) or
 * rope_parameters (transformers 5, per layer type for Gemma 3). Every tensor of the weight files must be
 * taken (av_hf_route checks). */
#include "arch.h"
#include "tok/tok.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- sizes, activation, biases ---- */

static int read_sizes(const av_hf_dir *h, av_arch_cfg *c, av_err *err) {
    if (av_hf_int(h, "hidden_size", -1, 1, AV_ARCH_MAX_DIM, &c->dim, err) ||
        av_hf_int(h, "intermediate_size", c->arch->flags & AV_ARCH_MOE ? 1 : -1, 1, AV_ARCH_MAX_HIDDEN,
                  &c->hidden, err) ||
        av_hf_int(h, "num_hidden_layers", -1, 1, AV_ARCH_MAX_LAYERS, &c->n_layers, err) ||
        av_hf_int(h, "num_attention_heads", -1, 1, AV_ARCH_MAX_HEADS, &c->n_heads, err) ||
        av_hf_int(h, "num_key_value_heads", c->n_heads, 1, AV_ARCH_MAX_HEADS, &c->n_kv_heads, err) ||
        av_hf_int(h, "max_position_embeddings", -1, 1, AV_ARCH_MAX_CTX, &c->ctx, err) ||
        av_hf_int(h, "vocab_size", -1, 1, AV_ARCH_MAX_VOCAB, &c->vocab, err) ||
        av_hf_num(h, "rms_norm_eps", c->arch->eps_default, &c->eps, err))
        return -1;
    int def = c->arch->head_dim_default ? c->arch->head_dim_default : c->dim / c->n_heads;
    if (av_hf_int(h, "head_dim", def, 2, AV_ARCH_MAX_DIM, &c->head_dim, err)) return -1;
    if (!(c->eps > 0)) return av_errf(err, "%s: \"rms_norm_eps\" must be positive", h->cfg_path);
    return 0;
}

static int read_act_bias_tie(const av_hf_dir *h, av_arch_cfg *c, av_err *err) {
    const char *act = av_hf_str(h, "hidden_act");
    if (!act) act = "silu";
    if (av_act_parse(act, &c->act))
        return av_errf(err, "%s: \"hidden_act\" '%.40s' is not supported", h->cfg_path, act);
    int attn_bias;
    json_t *tv = json_object_get(h->cfg, "tie_word_embeddings");
    if (av_hf_bool(h, "attention_bias", 0, &attn_bias, err) ||
        av_hf_bool(h, "mlp_bias", 0, &c->bias_mlp, err))
        return -1;
    c->bias_qkv = attn_bias || (c->arch->flags & AV_ARCH_HF_QKV_BIAS);
    c->bias_o = attn_bias;
    if (json_is_integer(tv)) { /* 0 / 1 in some configs */
        c->tied = json_integer_value(tv) != 0;
        return 0;
    }
    return av_hf_bool(h, "tie_word_embeddings", c->arch->tied_default, &c->tied, err);
}

/* ---- RoPE ---- */

/* A JSON array of n positive numbers into floats owned by m. */
static int factor_array(av_model *m, const av_hf_dir *h, const json_t *rp, const char *key, int n,
                        const float **out, av_err *err) {
    json_t *a = json_object_get(rp, key);
    if (!json_is_array(a) || json_array_size(a) != (size_t)n)
        return av_errf(err, "%s: rope scaling \"%s\" must list %d numbers", h->cfg_path, key, n);
    float *f = malloc(sizeof(float) * (size_t)n); /* (n) */
    if (av_model_own(m, f, err)) return -1;
    for (int i = 0; i < n; i++) {
        json_t *v = json_array_get(a, (size_t)i);
        f[i] = json_is_number(v) ? (float)json_number_value(v) : 0.0f;
        if (!(f[i] > 0))
            return av_errf(err, "%s: rope scaling \"%s\"[%d] must be positive", h->cfg_path, key, i);
    }
    *out = f;
    return 0;
}

static int rope_num(const av_hf_dir *h, const json_t *rp, const char *key, double def, double *out,
                    av_err *err) {
    if (av_json_num(rp, key, def, out, err)) return av_err_prefix(err, "%s: rope scaling", h->cfg_path);
    if (!(*out > 0)) return av_errf(err, "%s: rope scaling \"%s\" must be positive", h->cfg_path, key);
    return 0;
}

/* Llama 3 and longrope need the original context (in the scaling object, or top-level for Phi-3). */
static int scaling_params(av_model *m, const av_hf_dir *h, const json_t *rp, const char *type, av_arch_cfg *c,
                          av_err *err) {
    av_rope_scale *s = &c->scale;
    double orig = 0;
    int rot = av_arch_rot_dims(c) / 2;
    if (strcmp(type, "linear") && strcmp(type, "llama3") && strcmp(type, "longrope") && strcmp(type, "su"))
        return av_errf(
            err,
            "%s: \"rope_scaling\" type '%.32s' is not implemented (linear, llama3, longrope are): refused "
            "rather than ignored",
            h->cfg_path, type);
    if (av_json_num(rp, "original_max_position_embeddings", 0, &orig, err) ||
        (orig == 0 && av_hf_num(h, "original_max_position_embeddings", 0, &orig, err)))
        return av_err_prefix(err, "%s", h->cfg_path);
    if (orig == 0 && strcmp(type, "linear") != 0)
        return av_errf(err, "%s: rope scaling '%.32s' needs \"original_max_position_embeddings\"",
                       h->cfg_path, type);
    if (orig < 0 || orig > AV_ARCH_MAX_CTX)
        return av_errf(err, "%s: \"original_max_position_embeddings\" is out of range", h->cfg_path);
    s->orig_ctx = (int)orig;
    if (strcmp(type, "linear") == 0) {
        s->type = AV_ROPE_SCALING_LINEAR;
        return rope_num(h, rp, "factor", -1, &s->factor, err);
    }
    if (strcmp(type, "llama3") == 0) {
        s->type = AV_ROPE_SCALING_LLAMA3;
        return rope_num(h, rp, "factor", 8, &s->factor, err) ||
                       rope_num(h, rp, "low_freq_factor", 1, &s->low_freq_factor, err) ||
                       rope_num(h, rp, "high_freq_factor", 4, &s->high_freq_factor, err)
                   ? -1
                   : (s->low_freq_factor == s->high_freq_factor
                          ? av_errf(err, "%s: llama3 rope scaling with equal frequency factors", h->cfg_path)
                          : 0);
    }
    s->type = AV_ROPE_SCALING_LONGROPE; /* "su": its older name */
    double factor = (double)c->ctx / orig;
    if (factor_array(m, h, rp, "short_factor", rot, &s->factors, err) ||
        factor_array(m, h, rp, "long_factor", rot, &s->long_factors, err) ||
        av_json_num(rp, "attention_factor", factor <= 1 ? 1.0 : sqrt(1 + log(factor) / log(orig)),
                    &s->attn_factor, err))
        return -1;
    return s->attn_factor > 0 ? 0
                              : av_errf(err, "%s: longrope attention_factor must be positive", h->cfg_path);
}

/* One RoPE description (a rope_scaling object, or one of rope_parameters): theta and scaling. */
static int rope_object(av_model *m, const av_hf_dir *h, const json_t *rp, double *theta, int scale_ok,
                       av_arch_cfg *c, av_err *err) {
    const char *type = av_json_str(rp, "rope_type");
    if (!type) type = av_json_str(rp, "type");
    if (json_object_get(rp, "rope_theta") && rope_num(h, rp, "rope_theta", 0, theta, err)) return -1;
    if (!type || strcmp(type, "default") == 0) return 0;
    if (!scale_ok)
        return av_errf(err, "%s: RoPE scaling of local layers is not supported (refused rather than ignored)",
                       h->cfg_path);
    return scaling_params(m, h, rp, type, c, err);
}

static int read_rope(av_model *m, const av_hf_dir *h, av_arch_cfg *c, av_err *err) {
    json_t *params = json_object_get(h->cfg, "rope_parameters"),
           *scaling = json_object_get(h->cfg, "rope_scaling");
    json_t *rp = params && !json_is_null(params)     ? params
                 : scaling && !json_is_null(scaling) ? scaling
                                                     : NULL;
    double partial = 1;
    if (av_hf_num(h, "rope_theta", c->arch->theta_default, &c->rope_theta, err) ||
        av_hf_num(h, "partial_rotary_factor", 1, &partial, err) ||
        (rp && av_json_num(rp, "partial_rotary_factor", partial, &partial, err)))
        return -1;
    c->rope_dims = (int)(partial * c->head_dim) & ~1;
    if (!(partial > 0 && partial <= 1) || c->rope_dims < 2)
        return av_errf(err, "%s: \"partial_rotary_factor\" must be in (0, 1]", h->cfg_path);
    if (rp && !json_is_object(rp)) return av_errf(err, "%s: RoPE parameters must be an object", h->cfg_path);
    json_t *full = json_object_get(rp, "full_attention"), *local = json_object_get(rp, "sliding_attention");
    if (full || local) { /* per layer type (Gemma 3 in transformers 5) */
        if ((full && rope_object(m, h, full, &c->rope_theta, 1, c, err)) ||
            (local && rope_object(m, h, local, &c->rope_theta_local, 0, c, err)))
            return -1;
    } else if (rp && rope_object(m, h, rp, &c->rope_theta, 1, c, err)) {
        return -1;
    }
    if (!(c->rope_theta > 0)) return av_errf(err, "%s: \"rope_theta\" must be positive", h->cfg_path);
    return 0;
}

/* ---- windows ---- */

/* Mistral, Mixtral, Phi-3: sliding_window on every layer; Qwen: with use_sliding_window, on layers >=
 * max_window_layers. (Gemma 2 and 3 set their pattern in their hook.) */
static int read_window(const av_hf_dir *h, av_arch_cfg *c, av_err *err) {
    const char *t = c->arch->hf_type;
    int qwen = strncmp(t, "qwen", 4) == 0, use = 1, from = 0;
    if (c->arch->flags & AV_ARCH_SANDWICH) return 0;
    if (strcmp(t, "llama") == 0 || strcmp(t, "gemma") == 0) return 0;
    if (qwen && (av_hf_bool(h, "use_sliding_window", 0, &use, err) ||
                 av_hf_int(h, "max_window_layers", 0, 0, AV_ARCH_MAX_LAYERS, &from, err)))
        return -1;
    if (!use || av_hf_int(h, "sliding_window", 0, 0, AV_ARCH_MAX_CTX, &c->window, err)) return use ? -1 : 0;
    for (int l = from; l < c->n_layers && c->window > 0; l++)
        c->sliding[l] = 1;
    return 0;
}

int av_hf_layer_types(const av_hf_dir *h, int n_layers, unsigned char *sliding, av_err *err) {
    json_t *lt = json_object_get(h->cfg, "layer_types");
    if (!lt || json_is_null(lt)) return 0;
    if (!json_is_array(lt) || json_array_size(lt) != (size_t)n_layers)
        return av_errf(err, "%s: \"layer_types\" must list the %d layers", h->cfg_path, n_layers);
    for (int l = 0; l < n_layers; l++) {
        const char *t = json_string_value(json_array_get(lt, (size_t)l));
        int s = t && strcmp(t, "sliding_attention") == 0;
        if (!s && !(t && strcmp(t, "full_attention") == 0))
            return av_errf(err, "%s: \"layer_types\"[%d] must be sliding_attention or full_attention",
                           h->cfg_path, l);
        sliding[l] = (unsigned char)s;
    }
    return 1;
}

/* "layer_types" (newer configs) must name exactly the sliding layers the other keys give. */
static int check_layer_types(const av_hf_dir *h, const av_arch_cfg *c, av_err *err) {
    unsigned char types[AV_ARCH_MAX_LAYERS];
    int rc = av_hf_layer_types(h, c->n_layers, types, err);
    for (int l = 0; rc > 0 && l < c->n_layers; l++)
        if (types[l] != (c->sliding[l] && c->window > 0))
            return av_errf(err,
                           "%s: \"layer_types\"[%d] is '%s' but the other keys give this layer %s attention: "
                           "refused rather than guessing",
                           h->cfg_path, l, types[l] ? "sliding_attention" : "full_attention",
                           types[l] ? "full" : "sliding");
    return rc < 0 ? -1 : 0;
}

static int read_config(av_model *m, const av_hf_dir *h, av_arch_cfg *c, av_err *err) {
    c->format = AV_MODEL_FORMAT_HF;
    c->scale.attn_factor = 1;
    if (read_sizes(h, c, err) || read_act_bias_tie(h, c, err) || read_rope(m, h, c, err) ||
        read_window(h, c, err) || (c->arch->hf_keys && c->arch->hf_keys(h, c, err)) ||
        check_layer_types(h, c, err))
        return -1;
    if (c->rope_dims != c->head_dim && !(c->arch->flags & AV_ARCH_PARTIAL_ROPE))
        return av_errf(err, "%s: partial rotary embeddings are not supported for %s", h->cfg_path,
                       c->arch->hf_type);
    return 0;
}

/* ---- weights ---- */

static int find(const void *ctx, const char *name, int optional, av_tensor *t, av_err *err) {
    return av_hf_take(ctx, t, optional, err, "%s", name);
}

/* The output layer: the embedding when tied (a stored lm_head must then hold the same numbers), else
 * lm_head.weight, which must be there. */
static int take_head(const av_hf_dir *h, av_model *m, const av_arch_cfg *c, av_err *err) {
    av_tensor head;
    if (av_hf_take(h, &head, 1, err, "lm_head.weight")) return -1;
    if (!c->tied && !head.data)
        return av_errf(
            err,
            "%s: \"tie_word_embeddings\" is false but there is no lm_head.weight: refused rather than "
            "guessing the output layer",
            h->cfg_path);
    if (c->tied && head.data && !av_tensor_same(&head, &m->tok_emb))
        return av_errf(err,
                       "%s: \"tie_word_embeddings\" is true but lm_head.weight differs from the embedding: "
                       "refused rather than guessing which one the output uses",
                       h->cfg_path);
    m->head.out.w = c->tied ? m->tok_emb : head;
    m->head.n_out = m->vocab_size;
    return 0;
}

int av_hf_decoder_load(av_hf_dir *h, av_model *m, const av_arch *a, av_err *err) {
    av_arch_cfg *c = calloc(1, sizeof *c);
    if (av_model_own(m, c, err)) return -1;
    c->arch = a;
    const av_tensor *emb;
    if (read_config(m, h, c, err) || av_hf_open_weights(h, err)) return -1;
    if (!(emb = av_hf_find(h, "model.embed_tokens.weight")))
        return av_errf(err, "%s: missing tensor 'model.embed_tokens.weight'", h->dir);
    if (av_arch_init(m, c, emb->dtype, err) ||
        av_hf_take(h, &m->tok_emb, 0, err, "model.embed_tokens.weight") ||
        av_hf_take(h, &m->stacks[0].final_norm.w, 0, err, "model.norm.weight") || take_head(h, m, c, err) ||
        av_arch_take_weights(m, c, find, h, err))
        return -1;
    m->arch_cfg = c;
    return 0;
}
