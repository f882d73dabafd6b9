/* A decoder's configuration as the target format states it (export_int.h): GGUF keys as llama.cpp's
 * converter writes them (plus what llama.cpp would otherwise default differently: Gemma 2's window pattern,
 * Gemma 3's local RoPE base), or a config.json as transformers writes it. The plan has already refused what
 * the target cannot state (export_arch.c). */
#include "export_int.h"
#include "tok/tok.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Shortest decimal that reads back as the same float (1e-05, not 9.99999975e-06). */
static json_t *json_float(double x) {
    char buf[32];
    float f = (float)x;
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
        if (strtof(buf, NULL) == f) break;
    }
    return json_real(strtod(buf, NULL));
}

static int first_sliding(const av_arch_cfg *c) {
    for (int l = 0; l < c->n_layers; l++)
        if (c->sliding[l]) return l;
    return -1;
}

/* The period of the sliding layers (Gemma's l % p < p - 1), 0 without any. */
static int period(const av_arch_cfg *c) {
    return first_sliding(c) < 0 || c->window <= 0 ? 0 : av_ex_window_period(c);
}

static const char *act_name(av_act a) {
    switch (a) {
    case AV_ACT_GELU: return "gelu";
    case AV_ACT_GELU_TANH: return "gelu_pytorch_tanh";
    case AV_ACT_RELU: return "relu";
    case AV_ACT_QUICK_GELU: return "quick_gelu";
    default: return "silu";
    }
}

/* ---- GGUF ---- */

static uint32_t gguf_file_type(av_dtype t) {
    switch (t) { /* llama.cpp's general.file_type (LLAMA_FTYPE_*) */
    case AV_DTYPE_F16: return 1;
    case AV_DTYPE_Q4_0: return 2;
    case AV_DTYPE_Q8_0: return 7;
    case AV_DTYPE_Q4_K: return 14; /* MOSTLY_Q4_K_S: every matrix Q4_K */
    case AV_DTYPE_BF16: return 32;
    default: return 0;
    }
}

typedef struct kw {
    av_gguf_writer *w;
    const char *arch;
    av_err *err;
    int rc;
} kw;

static void u32(kw *k, const char *key, int64_t v) {
    char name[128];
    snprintf(name, sizeof name, "%s.%s", k->arch, key);
    k->rc = k->rc || av_gguf_writer_u32(k->w, name, (uint32_t)v, k->err);
}

static void f32(kw *k, const char *key, double v) {
    char name[128];
    snprintf(name, sizeof name, "%s.%s", k->arch, key);
    k->rc = k->rc || av_gguf_writer_f32(k->w, name, (float)v, k->err);
}

static void family_keys(kw *k, const ex_plan *p) {
    const av_arch_cfg *c = &p->c;
    const char *g = k->arch;
    int per = period(c), local = c->rope_theta_local > 0 && c->rope_theta_local != c->rope_theta;
    if (strcmp(g, "gemma2") == 0) { /* llama.cpp defaults: soft-caps 50 / 30, window 4096 on even layers */
        f32(k, "attn_logit_softcapping", c->attn_softcap);
        f32(k, "final_logit_softcapping", c->final_softcap);
        u32(k, "attention.sliding_window", per ? c->window : 0);
        u32(k, "attention.sliding_window_pattern", per ? per : 1);
        if (local) f32(k, "rope.freq_base_swa", c->rope_theta_local);
    } else if (strcmp(g, "gemma3") == 0) { /* llama.cpp defaults: pattern 6, local base 10000 */
        if (c->final_softcap > 0) f32(k, "final_logit_softcapping", c->final_softcap);
        if (per) {
            u32(k, "attention.sliding_window", c->window);
            u32(k, "attention.sliding_window_pattern", per);
            f32(k, "rope.freq_base_swa", c->rope_theta_local > 0 ? c->rope_theta_local : c->rope_theta);
        }
    } else if (strcmp(g, "phi3") == 0) { /* stated, not applied by llama.cpp (arch_phi3.c) */
        u32(k, "attention.sliding_window", first_sliding(c) >= 0 ? c->window : 0);
    } else if (strcmp(g, "qwen3moe") == 0) {
        u32(k, "expert_feed_forward_length", c->hidden);
    }
}

static void rope_keys(kw *k, const ex_plan *p) {
    const av_rope_scale *s = &p->c.scale;
    char name[128];
    f32(k, "rope.freq_base", p->c.rope_theta);
    u32(k, "rope.dimension_count", av_arch_rot_dims(&p->c));
    if (s->type == AV_ROPE_SCALING_LINEAR ||
        (s->type == AV_ROPE_SCALING_FACTORS && s->factor > 0 && s->factor != 1)) {
        snprintf(name, sizeof name, "%s.rope.scaling.type", k->arch);
        k->rc = k->rc || av_gguf_writer_str(k->w, name, "linear", k->err);
        f32(k, "rope.scaling.factor", s->factor);
    }
    if (s->type == AV_ROPE_SCALING_LONGROPE) {
        if (strcmp(k->arch, "phi3") != 0) { /* llama.cpp's llama reads longrope only with the type stated */
            snprintf(name, sizeof name, "%s.rope.scaling.type", k->arch);
            k->rc = k->rc || av_gguf_writer_str(k->w, name, "longrope", k->err);
        }
        u32(k, "rope.scaling.original_context_length", s->orig_ctx);
    }
    if (s->attn_factor != 1) f32(k, "rope.scaling.attn_factor", s->attn_factor);
}

int av_ex_gguf_keys(const ex_plan *p, av_gguf_writer *w, av_dtype type, av_err *err) {
    const av_arch_cfg *c = &p->c;
    const av_model *m = p->m;
    kw k = {w, p->target.arch->gguf, err, 0};
    k.rc = av_gguf_writer_str(w, "general.architecture", k.arch, err) ||
           av_gguf_writer_str(w, "general.name", m->name[0] ? m->name : "model", err) ||
           av_gguf_writer_u32(w, "general.alignment", (uint32_t)w->alignment, err) ||
           av_gguf_writer_u32(w, "general.file_type", gguf_file_type(type), err);
    if (strcmp(k.arch, "llama") == 0) u32(&k, "vocab_size", m->vocab_size);
    u32(&k, "context_length", c->ctx);
    u32(&k, "embedding_length", c->dim);
    u32(&k, "block_count", c->n_layers);
    u32(&k, "feed_forward_length", c->hidden);
    u32(&k, "attention.head_count", c->n_heads);
    u32(&k, "attention.head_count_kv", c->n_kv_heads);
    u32(&k, "attention.key_length", c->head_dim);
    u32(&k, "attention.value_length", c->head_dim);
    f32(&k, "attention.layer_norm_rms_epsilon", c->eps);
    rope_keys(&k, p);
    if (c->n_experts) {
        u32(&k, "expert_count", c->n_experts);
        u32(&k, "expert_used_count", c->n_used);
    }
    family_keys(&k, p);
    return k.rc ? -1 : 0;
}

/* ---- config.json ---- */

static json_t *rope_scaling(const av_arch_cfg *c) {
    const av_rope_scale *s = &c->scale;
    if (s->type == AV_ROPE_SCALING_LINEAR)
        return json_pack("{s:s, s:o}", "rope_type", "linear", "factor", json_float(s->factor));
    if (s->type == AV_ROPE_SCALING_LLAMA3)
        return json_pack("{s:s, s:o, s:o, s:o, s:i}", "rope_type", "llama3", "factor", json_float(s->factor),
                         "low_freq_factor", json_float(s->low_freq_factor), "high_freq_factor",
                         json_float(s->high_freq_factor), "original_max_position_embeddings", s->orig_ctx);
    if (s->type != AV_ROPE_SCALING_LONGROPE) return json_null();
    int n = av_arch_rot_dims(c) / 2;
    json_t *lo = json_array(), *hi = json_array();
    for (int i = 0; i < n; i++) {
        json_array_append_new(lo, json_float(s->factors[i]));
        json_array_append_new(hi, json_float(s->long_factors[i]));
    }
    json_t *r = json_pack("{s:s, s:o, s:o}", "type", "longrope", "short_factor", lo, "long_factor", hi);
    double ratio = (double)c->ctx / s->orig_ctx,
           implied = ratio <= 1 ? 1.0 : sqrt(1 + log(ratio) / log(s->orig_ctx));
    if (fabs(implied - s->attn_factor) > 1e-6)
        json_object_set_new(r, "attention_factor", json_float(s->attn_factor));
    return r;
}

static json_t *layer_types(const av_arch_cfg *c) {
    json_t *a = json_array();
    for (int l = 0; l < c->n_layers; l++)
        json_array_append_new(
            a, json_string(c->sliding[l] && c->window > 0 ? "sliding_attention" : "full_attention"));
    return a;
}

static json_t *num_or_null(double v) { return v > 0 ? json_float(v) : json_null(); }

static void family_config(json_t *j, const ex_plan *p) {
    const av_arch_cfg *c = &p->c;
    const char *t = p->target.arch->hf_type;
    int first = first_sliding(c), sliding = first >= 0 && c->window > 0;
    if (strncmp(t, "gemma", 5) == 0)
        json_object_set_new(j, "hidden_activation", json_string(act_name(c->act)));
    if (p->target.arch->flags & AV_ARCH_SANDWICH) {
        double scale = c->attn_scale > 0 ? c->attn_scale : 1.0 / sqrt((double)c->head_dim);
        json_object_set_new(j, "query_pre_attn_scalar", json_float(1.0 / (scale * scale)));
        json_object_set_new(j, "attn_logit_softcapping", num_or_null(c->attn_softcap));
        json_object_set_new(j, "final_logit_softcapping", num_or_null(c->final_softcap));
        json_object_set_new(j, "sliding_window", json_integer(sliding ? c->window : 4096));
        json_object_set_new(j, "layer_types", layer_types(c));
    }
    if (strcmp(t, "gemma3_text") == 0) {
        int per = period(c);
        json_object_set_new(j, "sliding_window_pattern", json_integer(per ? per : 1));
        json_object_set_new(j, "rope_local_base_freq",
                            json_float(c->rope_theta_local > 0 ? c->rope_theta_local : c->rope_theta));
    } else if (strncmp(t, "qwen", 4) == 0) {
        json_object_set_new(j, "use_sliding_window", json_boolean(sliding));
        json_object_set_new(j, "sliding_window", sliding ? json_integer(c->window) : json_null());
        json_object_set_new(j, "max_window_layers", json_integer(sliding ? first : c->n_layers));
    } else if (!(p->target.arch->flags & AV_ARCH_SANDWICH) && strcmp(t, "llama") && strcmp(t, "gemma")) {
        json_object_set_new(j, "sliding_window", sliding ? json_integer(c->window) : json_null());
    }
    if (strcmp(t, "mixtral") == 0)
        json_object_set_new(j, "num_local_experts", json_integer(c->n_experts)),
            json_object_set_new(j, "num_experts_per_tok", json_integer(c->n_used));
    if (strcmp(t, "qwen3_moe") == 0) {
        json_object_set_new(j, "num_experts", json_integer(c->n_experts));
        json_object_set_new(j, "num_experts_per_tok", json_integer(c->n_used));
        json_object_set_new(j, "moe_intermediate_size", json_integer(c->hidden));
        json_object_set_new(j, "norm_topk_prob", json_boolean(c->norm_topk));
        json_object_set_new(j, "decoder_sparse_step", json_integer(1));
        json_object_set_new(j, "mlp_only_layers", json_array());
    }
}

json_t *av_ex_hf_config(const ex_plan *p, av_dtype type, av_err *err) {
    const av_arch_cfg *c = &p->c;
    const av_arch *a = p->target.arch;
    const char *torch = type == AV_DTYPE_F16 ? "float16" : type == AV_DTYPE_BF16 ? "bfloat16" : "float32";
    json_t *j = json_object();
    if (!j) return av_errf(err, "out of memory"), NULL;
    json_object_set_new(j, "architectures", json_pack("[s]", a->hf_class));
    json_object_set_new(j, "model_type", json_string(a->hf_type));
    json_object_set_new(j, "hidden_size", json_integer(c->dim));
    json_object_set_new(j, "intermediate_size", json_integer(c->hidden));
    json_object_set_new(j, "num_hidden_layers", json_integer(c->n_layers));
    json_object_set_new(j, "num_attention_heads", json_integer(c->n_heads));
    json_object_set_new(j, "num_key_value_heads", json_integer(c->n_kv_heads));
    json_object_set_new(j, "head_dim", json_integer(c->head_dim));
    json_object_set_new(j, "max_position_embeddings", json_integer(c->ctx));
    json_object_set_new(j, "vocab_size", json_integer(c->vocab));
    json_object_set_new(j, "rms_norm_eps", json_float(c->eps));
    json_object_set_new(j, "rope_theta", json_float(c->rope_theta));
    json_object_set_new(j, "rope_scaling", rope_scaling(c));
    if (c->scale.type == AV_ROPE_SCALING_LONGROPE)
        json_object_set_new(j, "original_max_position_embeddings", json_integer(c->scale.orig_ctx));
    if (c->rope_dims && c->rope_dims != c->head_dim)
        json_object_set_new(j, "partial_rotary_factor", json_float((double)c->rope_dims / c->head_dim));
    json_object_set_new(j, "tie_word_embeddings", json_boolean(c->tied));
    json_object_set_new(j, "hidden_act", json_string(act_name(c->act)));
    if (strcmp(a->hf_type, "llama") == 0 || strncmp(a->hf_type, "qwen3", 5) == 0 ||
        strncmp(a->hf_type, "gemma", 5) == 0)
        json_object_set_new(j, "attention_bias", json_boolean(c->bias_o));
    if (strcmp(a->hf_type, "llama") == 0) json_object_set_new(j, "mlp_bias", json_boolean(c->bias_mlp));
    family_config(j, p);
    json_object_set_new(j, "torch_dtype", json_string(torch));
    if (p->m->tok) {
        json_object_set_new(j, "bos_token_id", json_integer(p->m->tok->bos));
        json_object_set_new(j, "eos_token_id", json_integer(p->m->tok->eos));
    }
    return j;
}
