/* GGUF decoder models (llama.cpp's layout): the architecture from general.architecture, its config from the
 * "<arch>." keys (the common ones here, the family's own in its family file), weights as views into the
 * mapping by llama.cpp's tensor names (arch.c), the tokenizer from tokenizer.ggml.* metadata.
 *
 * Nothing that changes the math is ignored: every "<arch>." key is one a reader applies, one whose value
 * leaves the math unchanged, or the file is refused naming it (unsupported.c decides); every tensor must be
 * taken (llama.cpp refuses unused tensors too). Where a file leaves something implicit, attnviz decides as
 * llama.cpp does (Gemma 2's soft-cap defaults, Gemma 3's window pattern, the 27B attention scale rule): the
 * family files say where. */
#include "arch.h"
#include "tok/tok.h"
#include "unsupported.h"

#include <stdlib.h>
#include <string.h>

/* ---- keys ---- */

static const char *arch_key(const av_arch_cfg *c, const char *key, char *buf, size_t n) {
    snprintf(buf, n, "%s.%s", c->arch->gguf, key);
    return buf;
}

int av_gguf_arch_int(const av_gguf *g, const av_arch_cfg *c, const char *key, int64_t def, int64_t lo,
                     int64_t hi, int *out, av_err *err) {
    char name[128];
    int64_t v = def;
    int rc = av_gguf_get_int(g, arch_key(c, key, name, sizeof name), &v, err);
    if (rc < 0) return -1;
    if (rc == 1 && def < lo) return av_errf(err, "%s: missing key '%s'", g->name, name);
    if (v < lo || v > hi)
        return av_errf(err, "%s: %s = %lld is out of range (%lld to %lld)", g->name, name, (long long)v,
                       (long long)lo, (long long)hi);
    *out = (int)v;
    return 0;
}

int av_gguf_arch_num(const av_gguf *g, const av_arch_cfg *c, const char *key, double def, double *out,
                     av_err *err) {
    char name[128];
    float v;
    int rc = av_gguf_get_f32(g, arch_key(c, key, name, sizeof name), &v, err);
    if (rc < 0) return -1;
    if (rc == 1 && def < 0) return av_errf(err, "%s: missing key '%s'", g->name, name);
    *out = rc == 1 ? def : (double)v;
    if (!(*out >= 0) || *out > 1e30) return av_errf(err, "%s: %s = %g is out of range", g->name, name, *out);
    return 0;
}

/* ---- configuration ---- */

static int read_sizes(const av_gguf *g, av_arch_cfg *c, av_err *err) {
    if (av_gguf_arch_int(g, c, "context_length", -1, 1, AV_ARCH_MAX_CTX, &c->ctx, err) ||
        av_gguf_arch_int(g, c, "embedding_length", -1, 1, AV_ARCH_MAX_DIM, &c->dim, err) ||
        av_gguf_arch_int(g, c, "block_count", -1, 1, AV_ARCH_MAX_LAYERS, &c->n_layers, err) ||
        av_gguf_arch_int(g, c, "feed_forward_length", -1, 1, AV_ARCH_MAX_HIDDEN, &c->hidden, err) ||
        av_gguf_arch_int(g, c, "attention.head_count", -1, 1, AV_ARCH_MAX_HEADS, &c->n_heads, err) ||
        av_gguf_arch_int(g, c, "attention.head_count_kv", c->n_heads, 1, AV_ARCH_MAX_HEADS, &c->n_kv_heads,
                         err))
        return -1;
    int head_dim = c->dim / c->n_heads, v_dim;
    if (av_gguf_arch_int(g, c, "attention.key_length", head_dim, 2, AV_ARCH_MAX_DIM, &c->head_dim, err) ||
        av_gguf_arch_int(g, c, "attention.value_length", c->head_dim, 1, AV_ARCH_MAX_DIM, &v_dim, err) ||
        av_gguf_arch_int(g, c, "rope.dimension_count", c->head_dim, 0, c->head_dim, &c->rope_dims, err))
        return -1;
    if (v_dim != c->head_dim)
        return av_errf(
            err,
            "%s: value heads of %d and key heads of %d values: not supported, refused rather than ignored",
            g->name, v_dim, c->head_dim);
    if (c->rope_dims != c->head_dim && !(c->arch->flags & AV_ARCH_PARTIAL_ROPE)) /* llama.cpp asserts it */
        return av_errf(err,
                       "%s: %s.rope.dimension_count %d differs from the head size %d (partial rotary is "
                       "supported for phi3 only, as in llama.cpp)",
                       g->name, c->arch->gguf, c->rope_dims, c->head_dim);
    if (av_gguf_arch_num(g, c, "attention.layer_norm_rms_epsilon", -1, &c->eps, err)) return -1;
    if (!(c->eps > 0))
        return av_errf(err, "%s: %s.attention.layer_norm_rms_epsilon must be positive", g->name,
                       c->arch->gguf);
    return 0;
}

/* rope.scaling.*: linear (or the older rope.scale_linear), none; YaRN and others are refused. longrope
 * (Phi-3) and Llama 3's rope_freqs come with tensors (read_rope_tensors). */
static int read_rope(const av_gguf *g, av_arch_cfg *c, av_err *err) {
    char key[128];
    const char *type = NULL;
    size_t len = 0;
    double factor = 0, linear = 0;
    int rc = av_gguf_get_str(g, arch_key(c, "rope.scaling.type", key, sizeof key), &type, &len, err);
    if (rc < 0 || av_gguf_arch_num(g, c, "rope.freq_base", 10000.0, &c->rope_theta, err) ||
        av_gguf_arch_num(g, c, "rope.scaling.factor", 0, &factor, err) ||
        av_gguf_arch_num(g, c, "rope.scale_linear", 0, &linear, err) ||
        av_gguf_arch_num(g, c, "rope.scaling.attn_factor", 1, &c->scale.attn_factor, err) ||
        av_gguf_arch_int(g, c, "rope.scaling.original_context_length", c->ctx, 1, AV_ARCH_MAX_CTX,
                         &c->scale.orig_ctx, err))
        return -1;
    if (!(c->rope_theta > 0) || !(c->scale.attn_factor > 0))
        return av_errf(err, "%s: rope.freq_base and rope.scaling.attn_factor must be positive", g->name);
    if (factor == 0) factor = linear; /* llama.cpp's fallback to the older key */
    char shown[32];
    av_printable(shown, sizeof shown, type ? type : "linear", type ? len : 6);
    int none = strcmp(shown, "none") == 0, lin = strcmp(shown, "linear") == 0;
    if (strcmp(shown, "longrope") == 0) return 0; /* factors from the tensors */
    if (!none && !lin)
        return av_errf(err,
                       "%s: %s = '%s': RoPE scaling of that type is not implemented (linear, longrope and "
                       "Llama 3's rope_freqs are): refused rather than ignored",
                       g->name, key, shown);
    if (lin && factor != 0 && factor != 1) {
        c->scale.type = AV_ROPE_SCALING_LINEAR;
        c->scale.factor = factor;
    }
    return 0;
}

static int read_experts(const av_gguf *g, av_arch_cfg *c, av_err *err) {
    if (av_gguf_arch_int(g, c, "expert_count", 0, 0, 1024, &c->n_experts, err) ||
        av_gguf_arch_int(g, c, "expert_used_count", 0, 0, 64, &c->n_used, err))
        return -1;
    if ((c->n_experts > 0) != (c->n_used > 0) || c->n_used > c->n_experts)
        return av_errf(err, "%s: %d experts with %d used per token", g->name, c->n_experts, c->n_used);
    if (c->n_experts && !(c->arch->flags & AV_ARCH_MOE) && strcmp(c->arch->gguf, "llama") != 0)
        return av_errf(err, "%s: experts in a %s model are not supported", g->name, c->arch->gguf);
    c->norm_topk = 1; /* llama.cpp renormalizes the chosen experts' weights for llama and qwen3moe */
    return 0;
}

static int read_config(const av_gguf *g, av_arch_cfg *c, av_err *err) {
    const char *name;
    size_t len;
    int rc = av_gguf_get_str(g, "general.architecture", &name, &len, err);
    if (rc < 0) return -1;
    if (rc == 1) return av_errf(err, "%s: no general.architecture key: not a GGUF model file", g->name);
    if (!(c->arch = av_arch_by_gguf(name, len))) {
        char shown[64], list[256];
        av_arch_list(list, sizeof list, 1);
        return av_errf(err, "%s: architecture '%s' is not supported (supported: %s)", g->name,
                       av_printable(shown, sizeof shown, name, len), list);
    }
    c->format = AV_MODEL_FORMAT_GGUF;
    c->act = c->arch->act;
    if (read_sizes(g, c, err) || read_rope(g, c, err) || read_experts(g, c, err) ||
        (c->arch->gguf_keys && c->arch->gguf_keys(g, c, err)) ||
        av_gguf_refuse_unsupported(g, c->arch->gguf, c->arch->gguf_known, err))
        return -1;
    for (int i = 0; i < 3; i++) { /* biases: whichever layer 0 has (llama.cpp creates them when present) */
        char t[64];
        snprintf(t, sizeof t, "blk.0.%s.bias", (const char *[]){"attn_q", "attn_output", "ffn_up"}[i]);
        int *has[3] = {&c->bias_qkv, &c->bias_o, &c->bias_mlp};
        *has[i] = av_gguf_find_tensor(g, t) != NULL;
    }
    c->tied = !av_gguf_find_tensor(g, "output.weight") || (c->arch->flags & AV_ARCH_GGUF_TIED);
    return 0;
}

/* ---- weights ---- */

typedef struct gguf_ctx {
    const av_gguf *g;
    unsigned char *used; /* (n_tensors) */
} gguf_ctx;

static int find(const void *ctx, const char *name, int optional, av_tensor *t, av_err *err) {
    const gguf_ctx *k = ctx;
    const av_gguf_tensor_info *ti = av_gguf_find_tensor(k->g, name);
    memset(t, 0, sizeof *t);
    if (!ti) return optional ? 0 : av_errf(err, "%s: missing tensor '%s'", k->g->name, name);
    k->used[ti - k->g->tensors] = 1;
    *t = ti->t;
    return 0;
}

/* A vector of rot_dims/2 RoPE factors as floats owned by m, or NULL when absent. */
static int rope_factors(av_model *m, const gguf_ctx *k, const char *name, int n, const float **out,
                        av_err *err) {
    av_tensor t;
    *out = NULL;
    if (find(k, name, 1, &t, err) || !t.data) return t.data ? -1 : 0;
    if (t.ndim != 1 || t.shape[0] != n || av_dtype_is_quantized(t.dtype))
        return av_errf(err, "%s: %s must be %d float values", k->g->name, name, n);
    float *f = malloc(sizeof(float) * (size_t)n); /* (n) */
    if (av_model_own(m, f, err)) return -1;
    av_dequantize_rows(&t, 0, 1, f);
    for (int i = 0; i < n; i++)
        if (!(f[i] > 0)) return av_errf(err, "%s: %s[%d] is not positive", k->g->name, name, i);
    *out = f;
    return 0;
}

/* Llama 3's rope_freqs (divisors) or Phi-3's longrope factors, into c->scale. */
static int read_rope_tensors(av_model *m, const gguf_ctx *k, av_arch_cfg *c, av_err *err) {
    int n = av_arch_rot_dims(c) / 2;
    const float *freqs, *lo, *hi;
    if (rope_factors(m, k, "rope_freqs.weight", n, &freqs, err) ||
        rope_factors(m, k, "rope_factors_short.weight", n, &lo, err) ||
        rope_factors(m, k, "rope_factors_long.weight", n, &hi, err))
        return -1;
    if (freqs && (lo || hi)) return av_errf(err, "%s: both rope_freqs and longrope factors", k->g->name);
    if (freqs) {
        c->scale.type = AV_ROPE_SCALING_FACTORS; /* a linear factor, if any, applies on top (ggml) */
        c->scale.factors = freqs;
    } else if (lo || hi) {
        if (!lo || !hi)
            return av_errf(err, "%s: longrope needs both rope_factors_short and _long", k->g->name);
        c->scale.type = AV_ROPE_SCALING_LONGROPE;
        c->scale.factors = lo;
        c->scale.long_factors = hi;
    }
    return 0;
}

static int read_weights(const gguf_ctx *k, av_model *m, const av_arch_cfg *c, av_err *err) {
    if (find(k, "token_embd.weight", 0, &m->tok_emb, err) ||
        find(k, "output_norm.weight", 0, &m->stacks[0].final_norm.w, err) ||
        (!c->tied && find(k, "output.weight", 0, &m->head.out.w, err)))
        return -1;
    if (m->tok_emb.ndim != 2 || m->tok_emb.shape[0] < 1 || m->tok_emb.shape[0] > AV_ARCH_MAX_VOCAB)
        return av_errf(err,
                       "%s: token_embd.weight must be a [vocab, dim] matrix with a vocabulary of 1 to %d",
                       k->g->name, AV_ARCH_MAX_VOCAB);
    m->head.out.w = c->tied ? m->tok_emb : m->head.out.w;
    m->head.n_out = m->vocab_size;
    if (av_arch_take_weights(m, c, find, k, err)) return -1;
    for (int64_t i = 0; i < k->g->n_tensors; i++)
        if (!k->used[i]) return av_gguf_refuse_tensor(k->g, k->g->tensors[i].name, c->arch->gguf, err);
    return 0;
}

static int load(const av_gguf *g, av_model *m, av_err *err) {
    av_arch_cfg *c = calloc(1, sizeof *c);
    if (av_model_own(m, c, err)) return -1;
    gguf_ctx k = {g, calloc((size_t)g->n_tensors + 1, 1)}; /* used: (n_tensors) */
    int rc = -1;
    if (!k.used) return av_errf(err, "out of memory");
    if (read_config(g, c, err)) goto done;
    av_tensor emb;
    if (find(&k, "token_embd.weight", 0, &emb, err)) goto done;
    c->vocab = emb.ndim == 2 ? (int)(emb.shape[0] < AV_ARCH_MAX_VOCAB ? emb.shape[0] : AV_ARCH_MAX_VOCAB) : 0;
    int vocab = c->vocab;
    if (av_gguf_arch_int(g, c, "vocab_size", c->vocab, 1, AV_ARCH_MAX_VOCAB, &vocab, err)) goto done;
    if (vocab != c->vocab) {
        av_errf(err, "%s: %s.vocab_size %d differs from token_embd.weight's %d rows", g->name, c->arch->gguf,
                vocab, c->vocab);
        goto done;
    }
    if (read_rope_tensors(m, &k, c, err) || av_arch_init(m, c, emb.dtype, err) || read_weights(&k, m, c, err))
        goto done;
    m->arch_cfg = c;
    rc = 0;
done:
    free(k.used);
    return rc;
}

int av_load_gguf(const char *path, av_model *m, av_err *err) {
    av_gguf g;
    if (m->n_files >= AV_MAX_SHARDS) return av_errf(err, "%s: too many mapped files", path);
    if (av_gguf_open(path, &g, err)) return -1;
    int rc = load(&g, m, err) || av_tok_load_gguf(&g, &m->tok, err) ? -1 : 0;
    if (rc == 0) {
        const char *name;
        size_t name_len;
        rc = av_gguf_get_str(&g, "general.name", &name, &name_len, err) < 0 ? -1 : 0;
        if (rc == 0 && av_gguf_find_kv(&g, "general.name") && name_len)
            av_printable(m->name, sizeof m->name, name, name_len);
    }
    /* the views point into the mapping: the model keeps it, the parsed index goes */
    m->files[m->n_files++] = g.file;
    memset(&g.file, 0, sizeof g.file);
    av_gguf_close(&g);
    return rc;
}
