/* A decoder's tensors under the target format's names (export_int.h): the plan (which architecture the target
 * calls it, what it cannot represent), and the tensors with the conversions between the formats' conventions:
 *   - q/k rows between Meta's interleaved RoPE pairs (GGUF llama, llama2.c) and rotate-half (everything
 * else): HF row h*hd + j*hd/2 + i holds Meta row h*hd + 2i + j (w.view(heads, hd/2, 2, dim).transpose(1, 2));
 *   - Gemma's norms: w in Hugging Face, 1 + w in GGUF;
 *   - Phi-3's fused q|k|v and gate|up matrices, built from the block's views;
 *   - experts: GGUF stacks them into 3-D tensors, Hugging Face keeps one matrix each;
 *   - RoPE scaling tensors of GGUF (rope_freqs from Llama 3 parameters, Phi-3's longrope factors). */
#include "export_int.h"
#include "kernels/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void *ex_alloc(ex_bufs *b, size_t n, av_err *err) {
    if (b->n == b->cap) {
        int cap = b->cap ? 2 * b->cap : 64;
        void **grown = realloc(b->p, sizeof *grown * (size_t)cap);
        if (!grown) return av_errf(err, "out of memory"), NULL;
        b->p = grown;
        b->cap = cap;
    }
    void *p = av_malloc_checked(n ? n : 1, err);
    if (p) b->p[b->n++] = p;
    return p;
}

void av_ex_free(ex_bufs *b) {
    for (int i = 0; i < b->n; i++)
        free(b->p[i]);
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ---- the plan ---- */

/* A llama2.c checkpoint as a configuration (it has none of its own). */
static void llama2c_cfg(const av_model *m, av_arch_cfg *c) {
    const av_stack *st = &m->stacks[0];
    memset(c, 0, sizeof *c);
    *c = (av_arch_cfg){.arch = av_arch_by_hf_type("llama"),
                       .format = m->format,
                       .dim = st->cfg.dim,
                       .hidden = st->cfg.hidden,
                       .n_layers = st->n_layers,
                       .n_heads = st->cfg.n_heads,
                       .n_kv_heads = st->cfg.n_kv_heads,
                       .head_dim = st->cfg.head_dim,
                       .rope_dims = st->cfg.head_dim,
                       .vocab = m->vocab_size,
                       .ctx = m->max_seq_len,
                       .eps = st->cfg.eps,
                       .rope_theta = st->blocks[0].rope_theta,
                       .act = AV_ACT_SILU,
                       .tied = av_model_head_tied(m)};
    c->scale.attn_factor = 1;
}

static const av_arch *target_arch(const av_arch_cfg *c, int gguf) {
    if (gguf) return av_arch_by_gguf(c->arch->gguf, strlen(c->arch->gguf));
    if (c->n_experts && !(c->arch->flags & AV_ARCH_MOE))
        return av_arch_by_hf_type("mixtral"); /* GGUF llama */
    return c->arch;
}

int av_ex_window_period(const av_arch_cfg *c) {
    for (int p = 1; p <= c->n_layers + 1; p++) {
        int ok = 1;
        for (int l = 0; l < c->n_layers && ok; l++)
            ok = (c->sliding[l] != 0) == (l % p < p - 1);
        if (ok) return p;
    }
    return 0;
}

/* The attention scale the target implies: 1 with it in *scale, 0 when the target states any scale
 * (config.json of Gemma 2 and 3: query_pre_attn_scalar). */
static int expect_scale(const ex_plan *p, double *scale) {
    *scale = p->gguf ? av_arch_gguf_attn_scale(p->target.arch, &p->c) : 1.0 / sqrt((double)p->c.head_dim);
    return p->gguf || !(p->target.arch->flags & AV_ARCH_SANDWICH);
}

/* What the target cannot hold, named; 0 when everything is representable. */
static int check_windows(const ex_plan *p, av_err *err) {
    const av_arch_cfg *c = &p->c;
    const av_arch *t = p->target.arch;
    int any = 0;
    for (int l = 0; l < c->n_layers; l++) /* a window as long as the context never masks anything */
        any |= c->sliding[l] && c->window > 0 && c->window < c->ctx;
    if (!any) return 0;
    if (t->flags & AV_ARCH_SANDWICH) /* Gemma 2/3: a period pattern in GGUF, any pattern in config.json */
        return !p->gguf || av_ex_window_period(c)
                   ? 0
                   : av_errf(err, "the sliding layers are not a pattern GGUF %s can state", t->gguf);
    if (p->gguf)
        return av_errf(err, "the sliding window (%d) would be lost: llama.cpp's %s %s", c->window, t->gguf,
                       strcmp(t->gguf, "phi3") ? "has none" : "does not apply it");
    if (!p->gguf && strcmp(t->hf_type, "llama") == 0)
        return av_errf(err, "the sliding window (%d) would be lost: Hugging Face llama has none", c->window);
    for (int l = 1; l < c->n_layers; l++) /* Qwen: layers >= max_window_layers; the others: every layer */
        if (c->sliding[l - 1] && !c->sliding[l])
            return av_errf(err, "the sliding layers are not a pattern config.json can state for %s",
                           t->hf_type);
    if (c->sliding[0] == 0 && strncmp(t->hf_type, "qwen", 4) != 0)
        return av_errf(err, "windows on some layers only: %s applies one to every layer", t->hf_type);
    return 0;
}

static int check_attention(const ex_plan *p, av_err *err) {
    const av_arch_cfg *c = &p->c;
    const av_arch *t = p->target.arch;
    double scale, have = c->attn_scale > 0 ? c->attn_scale : 1.0 / sqrt((double)c->head_dim);
    if (expect_scale(p, &scale) && fabs(have - scale) > 1e-6 * scale)
        return av_errf(err, "an attention scale of %g where %s %s uses %g", have,
                       p->gguf ? "GGUF" : "Hugging Face", t->name, scale);
    int gemma2 = strcmp(t->gguf, "gemma2") == 0, gemma3 = strcmp(t->gguf, "gemma3") == 0;
    if (c->attn_softcap > 0 && !gemma2 && !(gemma3 && !p->gguf))
        return av_errf(err, "attention soft-capping: %s %s has none", p->gguf ? "GGUF" : "Hugging Face",
                       t->name);
    if (c->final_softcap > 0 && !gemma2 && !gemma3)
        return av_errf(err, "final soft-capping: %s has none", t->name);
    if (p->gguf && gemma2 && !(c->attn_softcap > 0 && c->final_softcap > 0))
        return av_errf(err, "Gemma 2 without soft-capping: llama.cpp's gemma2 always caps");
    if (c->rope_theta_local > 0 && c->rope_theta_local != c->rope_theta &&
        (!(gemma2 || gemma3) || (gemma2 && !p->gguf)))
        return av_errf(err, "a RoPE base for local layers: %s %s has none", p->gguf ? "GGUF" : "Hugging Face",
                       t->name);
    if (c->rope_dims != c->head_dim && !(t->flags & AV_ARCH_PARTIAL_ROPE))
        return av_errf(err, "partial rotary embeddings: %s has none", t->name);
    return 0;
}

static int check_rope_moe(const ex_plan *p, av_err *err) {
    const av_arch_cfg *c = &p->c;
    const av_arch *t = p->target.arch;
    av_rope_scaling s = c->scale.type;
    if (!p->gguf && s == AV_ROPE_SCALING_FACTORS) /* Llama 3's, restated as its parameters when they fit */
        return av_errf(err,
                       "RoPE frequency factors (GGUF rope_freqs) that no Llama 3 rope_scaling reproduces");
    if (s == AV_ROPE_SCALING_LONGROPE && strcmp(t->gguf, "phi3") && strcmp(t->gguf, "llama"))
        return av_errf(err, "longrope scaling: %s has none", t->name);
    if (c->scale.attn_factor != 1 && s != AV_ROPE_SCALING_LONGROPE)
        return av_errf(err, "a RoPE attention factor without longrope scaling has no form in %s",
                       p->gguf ? "GGUF" : "config.json");
    int gemma3 = strcmp(t->gguf, "gemma3") == 0;
    if (s != AV_ROPE_SCALING_NONE && c->rope_theta_local > 0 && c->scale.local_too == gemma3)
        return av_errf(err, "RoPE scaling of %s layers: %s scales %s",
                       c->scale.local_too ? "every" : "the global", t->name,
                       gemma3 ? "only the global ones" : "every layer");
    if (p->gguf && c->n_experts && !c->norm_topk)
        return av_errf(err, "experts whose weights are not renormalized: llama.cpp always renormalizes them");
    if (p->gguf && !c->tied && (t->flags & AV_ARCH_GGUF_TIED))
        return av_errf(err, "an output layer apart from the embedding: GGUF %s ties them", t->gguf);
    return 0;
}

static int check_biases(const ex_plan *p, av_err *err) {
    const av_arch_cfg *c = &p->c;
    const av_arch *t = p->target.arch;
    const char *fmt = p->gguf ? "GGUF" : "Hugging Face";
    if (p->gguf) {
        if ((c->bias_o || c->bias_mlp) && !(t->flags & AV_ARCH_GGUF_BIASES))
            return av_errf(err, "output or feed-forward biases: %s %s has none", fmt, t->gguf);
        return 0;
    }
    const char *ty = t->hf_type;
    int qkvo = strcmp(ty, "llama") == 0 || strncmp(ty, "qwen3", 5) == 0 || strncmp(ty, "gemma", 5) == 0;
    int qkv_only = (t->flags & AV_ARCH_HF_QKV_BIAS) != 0;
    if ((c->bias_qkv || c->bias_o) && !qkvo && !qkv_only)
        return av_errf(err, "attention biases: %s %s has none", fmt, ty);
    if (qkvo && c->bias_qkv != c->bias_o)
        return av_errf(err, "q/k/v biases without an output bias (or the reverse): %s %s has both or none",
                       fmt, ty);
    if (qkv_only && c->bias_o) return av_errf(err, "an output bias: %s %s has none", fmt, ty);
    if (c->bias_mlp && strcmp(ty, "llama") != 0)
        return av_errf(err, "feed-forward biases: %s %s has none", fmt, ty);
    return 0;
}

int av_ex_plan(const av_model *m, int gguf, ex_plan *p, av_err *err) {
    memset(p, 0, sizeof *p);
    p->m = m;
    p->gguf = gguf;
    if (m->arch_cfg)
        p->c = *m->arch_cfg;
    else if (m->family == AV_FAMILY_LLAMA && m->n_stacks == 1)
        llama2c_cfg(m, &p->c);
    else {
        char list[256];
        av_arch_list(list, sizeof list, 0);
        return av_errf(err, "converting %s models is not supported (the decoder families are: %s)",
                       m->arch[0] ? m->arch : "these", list);
    }
    p->target = p->c;
    p->target.arch = target_arch(&p->c, gguf);
    p->target.format = gguf ? AV_MODEL_FORMAT_GGUF : AV_MODEL_FORMAT_HF;
    if (!gguf && (p->target.arch->flags & AV_ARCH_HF_QKV_BIAS))
        p->target.bias_qkv = 1; /* zeros when absent */
    if (p->target.arch->flags & AV_ARCH_GEMMA)
        p->norm_add = m->stacks[0].cfg.norm_offset - (gguf ? 0.0f : 1.0f);
    av_rope_scale fit;
    if (!gguf && p->c.scale.type == AV_ROPE_SCALING_FACTORS &&
        (p->c.scale.factor == 0 || p->c.scale.factor == 1) &&
        av_rope_fit_llama3(p->c.rope_theta, av_arch_rot_dims(&p->c), p->c.scale.factors, &fit) == 0)
        p->c.scale = p->target.scale = fit;
    if (check_windows(p, err) || check_attention(p, err) || check_rope_moe(p, err) || check_biases(p, err))
        return av_err_prefix(err, "%s cannot be written as %s %s without changing its results",
                             m->name[0] ? m->name : "the model", gguf ? "GGUF" : "Hugging Face",
                             gguf ? p->target.arch->gguf : p->target.arch->hf_type);
    return 0;
}

/* ---- tensors ---- */

typedef struct ex_list {
    const ex_plan *p;
    ex_bufs *b;
    ex_tensor *v;
    int n, cap;
    av_err *err;
} ex_list;

static int push(ex_list *L, av_tensor t, const char *name) {
    if (L->n == L->cap) {
        int cap = L->cap ? 2 * L->cap : 256;
        ex_tensor *grown = realloc(L->v, sizeof *grown * (size_t)cap);
        if (!grown) return av_errf(L->err, "out of memory");
        L->v = grown;
        L->cap = cap;
    }
    ex_tensor *e = &L->v[L->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->src = t;
    return 0;
}

/* A layer tensor under the target's prefix. */
static int push_layer(ex_list *L, av_tensor t, int layer, const char *part) {
    char name[112];
    snprintf(name, sizeof name, L->p->gguf ? "blk.%d.%s" : "model.layers.%d.%s", layer, part);
    return push(L, t, name);
}

/* A copy of t's values as F32 (dequantized), owned by the export. */
static int as_f32(ex_list *L, const av_tensor *t, av_tensor *out) {
    int64_t rows = t->ndim == 1 ? 1 : av_tensor_numel(t) / t->shape[t->ndim - 1];
    int64_t cols = t->shape[t->ndim - 1];
    float *f = ex_alloc(L->b, sizeof(float) * (size_t)(rows * cols), L->err); /* (rows, cols) */
    if (!f) return -1;
    av_dequantize_rows(t->ndim > 2 ? &(av_tensor){.dtype = t->dtype,
                                                  .ndim = 2,
                                                  .shape = {rows, cols},
                                                  .data = t->data,
                                                  .nbytes = t->nbytes}
                                   : t,
                       0, rows, f);
    *out = *t;
    out->dtype = AV_DTYPE_F32;
    out->data = f;
    out->nbytes = sizeof(float) * (size_t)(rows * cols);
    return 0;
}

/* Norms: Gemma's w <-> 1 + w. */
static int shifted(ex_list *L, const av_tensor *t, float add, av_tensor *out) {
    if (as_f32(L, t, out)) return -1;
    float *f = (float *)out->data;
    for (int64_t i = 0; i < av_tensor_numel(out); i++)
        f[i] += add;
    return 0;
}

/* q/k rows (or bias values) of `heads` heads between the RoPE pair orders (export.c's header). */
static int permuted(ex_list *L, const av_tensor *t, int heads, int to_half, av_tensor *out) {
    int hd = L->p->c.head_dim, half = hd / 2;
    size_t row = 0; /* a bias: rows of one value */
    av_dtype_row_bytes(t->dtype, t->ndim == 1 ? 1 : t->shape[1], &row);
    uint8_t *dst = ex_alloc(L->b, t->nbytes, L->err); /* (heads * hd, row) */
    if (!dst) return -1;
    const uint8_t *src = t->data;
    for (int h = 0; h < heads; h++)
        for (int i = 0; i < half; i++)
            for (int j = 0; j < 2; j++) {
                size_t r_half = (size_t)h * (size_t)hd + (size_t)(j * half + i),
                       r_int = (size_t)h * (size_t)hd + (size_t)(2 * i + j);
                memcpy(dst + (to_half ? r_half : r_int) * row, src + (to_half ? r_int : r_half) * row, row);
            }
    *out = *t;
    out->data = dst;
    return 0;
}

/* Parts one after another: rows of one matrix (fused), or a 3-D stack (experts). Parts of one type are
 * copied as stored; mixed types go through F32. */
static int concat(ex_list *L, const av_tensor *const *parts, int n, int stack, av_tensor *out) {
    av_tensor conv[3];
    size_t bytes = 0;
    int64_t rows = 0, cols = parts[0]->shape[parts[0]->ndim - 1];
    int mixed = 0;
    for (int i = 0; i < n; i++) {
        mixed |= parts[i]->dtype != parts[0]->dtype || parts[i]->shape[parts[i]->ndim - 1] != cols;
        rows += parts[i]->shape[0];
    }
    if (mixed && n > 3) return av_errf(L->err, "experts of different types or shapes cannot be stacked");
    for (int i = 0; mixed && i < n; i++)
        if (as_f32(L, parts[i], &conv[i])) return -1;
    for (int i = 0; i < n; i++)
        bytes += (mixed ? &conv[i] : parts[i])->nbytes;
    uint8_t *dst = ex_alloc(L->b, bytes, L->err), *at = dst;
    if (!dst) return -1;
    for (int i = 0; i < n; i++) {
        const av_tensor *t = mixed ? &conv[i] : parts[i];
        memcpy(at, t->data, t->nbytes);
        at += t->nbytes;
    }
    *out = (av_tensor){.dtype = mixed ? AV_DTYPE_F32 : parts[0]->dtype, .data = dst, .nbytes = bytes};
    if (stack) {
        out->ndim = 3;
        out->shape[0] = n, out->shape[1] = parts[0]->shape[0], out->shape[2] = cols;
    } else {
        out->ndim = 2;
        out->shape[0] = rows, out->shape[1] = cols;
    }
    return 0;
}

static int zeros(ex_list *L, int64_t n, av_tensor *out) {
    float *z = ex_alloc(L->b, sizeof(float) * (size_t)n, L->err); /* (n) */
    if (!z) return -1;
    memset(z, 0, sizeof(float) * (size_t)n);
    *out = av_tensor_f32(z, n, 0);
    return 0;
}

/* One plain tensor of layer l, converted to the target's conventions. */
static int layer_plain(ex_list *L, int l, const av_arch_entry *e) {
    const ex_plan *p = L->p;
    const av_block *B = &p->m->stacks[0].blocks[l];
    av_tensor t = *(const av_tensor *)((const char *)B + e->off);
    int src_half = p->m->stacks[0].cfg.rope == AV_ROPE_HALF;
    int dst_half = !(p->gguf && (p->target.arch->flags & AV_ARCH_GGUF_META));
    if (!t.data) { /* a bias the target requires and the model lacks (HF Qwen2): zeros */
        size_t len = strlen(e->gguf);
        if (len < 5 || strcmp(e->gguf + len - 5, ".bias") != 0)
            return av_errf(L->err, "internal error: layer %d has no %s", l, e->gguf);
        int64_t n =
            e->qk == 1 ? (int64_t)p->c.n_heads * p->c.head_dim : (int64_t)p->c.n_kv_heads * p->c.head_dim;
        if (zeros(L, n, &t)) return -1;
    } else if (e->qk && src_half != dst_half) {
        if (permuted(L, &t, e->qk == 1 ? p->c.n_heads : p->c.n_kv_heads, dst_half, &t)) return -1;
    } else if (e->norm && p->norm_add != 0 && shifted(L, &t, p->norm_add, &t)) {
        return -1;
    }
    return push_layer(L, t, l, p->gguf ? e->gguf : e->hf);
}

static int layer_fused(ex_list *L, int l) {
    const av_block *B = &L->p->m->stacks[0].blocks[l];
    const av_tensor *qkv[3] = {&B->attn.q.w, &B->attn.k.w, &B->attn.v.w},
                    *gu[2] = {&B->ffn.gate.w, &B->ffn.up.w};
    av_tensor a, b;
    return concat(L, qkv, 3, 0, &a) || push_layer(L, a, l, av_arch_fused_qkv[!L->p->gguf]) ||
                   concat(L, gu, 2, 0, &b) || push_layer(L, b, l, av_arch_fused_gate_up[!L->p->gguf])
               ? -1
               : 0;
}

static int layer_experts(ex_list *L, int l) {
    const ex_plan *p = L->p;
    const av_moe *moe = &p->m->stacks[0].blocks[l].moe;
    int E = moe->n_experts;
    for (int j = 0; j < 3; j++) {
        if (!p->gguf) {
            for (int e = 0; e < E; e++) {
                const av_linear *lin[3] = {&moe->experts[e].gate, &moe->experts[e].up, &moe->experts[e].down};
                char part[96];
                av_arch_hf_expert(p->target.arch, e, j, part, sizeof part);
                if (push_layer(L, lin[j]->w, l, part)) return -1;
            }
            continue;
        }
        const av_tensor **parts = ex_alloc(L->b, sizeof *parts * (size_t)E, L->err); /* (E) */
        av_tensor all;
        if (!parts) return -1;
        for (int e = 0; e < E; e++)
            parts[e] = j == 0   ? &moe->experts[e].gate.w
                       : j == 1 ? &moe->experts[e].up.w
                                : &moe->experts[e].down.w;
        if (concat(L, parts, E, 1, &all) || push_layer(L, all, l, av_arch_gguf_experts[j])) return -1;
    }
    return 0;
}

/* GGUF's RoPE scaling tensors: rope_freqs (Llama 3: the divisors convert_hf_to_gguf.py computes, in double)
 * and longrope's factors. */
static int rope_tensors(ex_list *L) {
    const av_rope_scale *s = &L->p->c.scale;
    int n = av_arch_rot_dims(&L->p->c) / 2;
    if (s->type == AV_ROPE_SCALING_FACTORS)
        return push(L, av_tensor_f32(s->factors, n, 0), "rope_freqs.weight");
    if (s->type == AV_ROPE_SCALING_LONGROPE)
        return push(L, av_tensor_f32(s->long_factors, n, 0), "rope_factors_long.weight") ||
                       push(L, av_tensor_f32(s->factors, n, 0), "rope_factors_short.weight")
                   ? -1
                   : 0;
    if (s->type != AV_ROPE_SCALING_LLAMA3) return 0;
    float *f = ex_alloc(L->b, sizeof(float) * (size_t)n, L->err); /* (n) */
    if (!f) return -1;
    for (int i = 0; i < n; i++) {
        double freq = 1.0 / pow(L->p->c.rope_theta, 2.0 * i / (2.0 * n)), wavelen = 2 * M_PI / freq;
        double ctx = s->orig_ctx,
               smooth = (ctx / wavelen - s->low_freq_factor) / (s->high_freq_factor - s->low_freq_factor);
        f[i] = (float)(wavelen < ctx / s->high_freq_factor  ? 1.0
                       : wavelen > ctx / s->low_freq_factor ? s->factor
                                                            : 1 / ((1 - smooth) / s->factor + smooth));
    }
    return push(L, av_tensor_f32(f, n, 0), "rope_freqs.weight");
}

/* The written type of each tensor: GGUF vectors F32; matrices `want`, or (rows that the type's blocks cannot
 * tile) Q4_0 for Q4_K with rows of 32k values, else F16. */
static int written_types(ex_list *L, av_dtype want, av_export_report *rep) {
    for (int i = 0; i < L->n; i++) {
        ex_tensor *e = &L->v[i];
        e->dst = L->p->gguf && e->src.ndim == 1 ? AV_DTYPE_F32 : want;
        int64_t cols = e->src.shape[e->src.ndim - 1];
        if (cols % av_dtype_block_size(e->dst)) {
            int q4_0 = e->dst == AV_DTYPE_Q4_K && cols % av_dtype_block_size(AV_DTYPE_Q4_0) == 0;
            e->dst = q4_0 ? AV_DTYPE_Q4_0 : AV_DTYPE_F16;
            rep->n_fallback++;
            rep->fallback[e->dst]++;
        }
        if (!av_dtype_nbytes(e->dst, (size_t)av_tensor_numel(&e->src), &e->dst_bytes))
            return av_errf(L->err, "%s: size overflows", e->name);
    }
    return 0;
}

int av_ex_tensors(const ex_plan *p, av_dtype want, ex_bufs *b, ex_tensor **out, int *n_out,
                  av_export_report *rep, av_err *err) {
    ex_list L = {p, b, NULL, 0, 0, err};
    const av_model *m = p->m;
    const av_stack *st = &m->stacks[0];
    av_arch_entry entries[AV_ARCH_MAX_ENTRIES];
    int n_entries = av_arch_entries(&p->target, entries), rc = 0;
    unsigned flags = av_arch_cfg_flags(&p->target);
    av_tensor fin = st->final_norm.w;
    rc = push(&L, m->tok_emb, p->gguf ? "token_embd.weight" : "model.embed_tokens.weight") ||
         (p->gguf && rope_tensors(&L));
    for (int l = 0; !rc && l < st->n_layers; l++) {
        for (int i = 0; !rc && i < n_entries; i++)
            rc = layer_plain(&L, l, &entries[i]);
        rc = rc || ((flags & AV_ARCH_FUSED) && layer_fused(&L, l)) ||
             ((flags & AV_ARCH_MOE) && layer_experts(&L, l));
    }
    rc = rc || (p->norm_add != 0 && shifted(&L, &st->final_norm.w, p->norm_add, &fin)) ||
         push(&L, fin, p->gguf ? "output_norm.weight" : "model.norm.weight") ||
         (!p->c.tied && push(&L, m->head.out.w, p->gguf ? "output.weight" : "lm_head.weight")) ||
         written_types(&L, want, rep);
    if (rc) {
        free(L.v);
        return -1;
    }
    *out = L.v;
    *n_out = L.n;
    return 0;
}
