/* The decoder architectures (arch.h): the list, the one table of layer weight names in both formats, and
 * av_arch_init / av_arch_take_weights, which turn a checkpoint's av_arch_cfg and weights into blocks. */
#include "arch.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* The family files' tables (arch_llama.c, arch_qwen.c, arch_gemma.c, arch_phi3.c). */
extern const av_arch av_arch_llamas[3], av_arch_qwens[3], av_arch_gemmas[3], av_arch_phi3s[1];

const av_arch *const av_archs[] = {
    &av_arch_llamas[0], &av_arch_llamas[1], &av_arch_llamas[2], &av_arch_qwens[0],  &av_arch_qwens[1],
    &av_arch_qwens[2],  &av_arch_gemmas[0], &av_arch_gemmas[1], &av_arch_gemmas[2], &av_arch_phi3s[0]};
const int av_n_archs = (int)(sizeof av_archs / sizeof av_archs[0]);

const av_arch *av_arch_by_hf_type(const char *model_type) {
    for (int i = 0; model_type && i < av_n_archs; i++)
        if (strcmp(av_archs[i]->hf_type, model_type) == 0) return av_archs[i];
    return NULL;
}

const av_arch *av_arch_by_hf_class(const char *class_name) {
    for (int i = 0; class_name && i < av_n_archs; i++)
        if (strcmp(av_archs[i]->hf_class, class_name) == 0) return av_archs[i];
    return NULL;
}

void av_arch_window_period(av_arch_cfg *c, int period) {
    for (int l = 0; l < c->n_layers && l < AV_ARCH_MAX_LAYERS; l++)
        c->sliding[l] = period == 0 || l % period < period - 1;
}

const av_arch *av_arch_by_gguf(const char *gguf_arch, size_t len) {
    for (int i = 0; i < av_n_archs; i++) /* the first entry of a GGUF name is its family's base */
        if (strlen(av_archs[i]->gguf) == len && memcmp(av_archs[i]->gguf, gguf_arch, len) == 0)
            return av_archs[i];
    return NULL;
}

void av_arch_list(char *out, size_t n, int gguf) {
    out[0] = 0;
    for (int i = 0; i < av_n_archs; i++) {
        const char *name = gguf ? av_archs[i]->gguf : av_archs[i]->hf_type;
        int dup = 0;
        for (int j = 0; j < i && !dup; j++)
            dup = strcmp(gguf ? av_archs[j]->gguf : av_archs[j]->hf_type, name) == 0;
        if (!dup) snprintf(out + strlen(out), n - strlen(out), "%s%s", out[0] ? ", " : "", name);
    }
}

/* ---- the layer weight names ---- */

enum { REQ = 0, BIAS_QKV, BIAS_O, BIAS_MLP }; /* required, or a bias the checkpoint may have */
enum { DENSE = 1 << 16, SPLIT = 1 << 17 };    /* pseudo-flags: no mixture; separate q/k/v and gate/up */

#define BF(field) offsetof(av_block, field)
typedef struct layer_name {
    size_t off;            /* the av_tensor in av_block */
    const char *gguf, *hf; /* after "blk.N." and "model.layers.N." */
    unsigned need;         /* applies to the architectures with all these flags (arch.h, DENSE, SPLIT) */
    unsigned skip;         /* and none of these */
    int kind;
} layer_name;

static const layer_name layer_names[] = {
    {BF(attn_norm.w), "attn_norm.weight", "input_layernorm.weight", 0, 0, REQ},
    {BF(attn.q.w), "attn_q.weight", "self_attn.q_proj.weight", SPLIT, 0, REQ},
    {BF(attn.q.b), "attn_q.bias", "self_attn.q_proj.bias", SPLIT, 0, BIAS_QKV},
    {BF(attn.k.w), "attn_k.weight", "self_attn.k_proj.weight", SPLIT, 0, REQ},
    {BF(attn.k.b), "attn_k.bias", "self_attn.k_proj.bias", SPLIT, 0, BIAS_QKV},
    {BF(attn.v.w), "attn_v.weight", "self_attn.v_proj.weight", SPLIT, 0, REQ},
    {BF(attn.v.b), "attn_v.bias", "self_attn.v_proj.bias", SPLIT, 0, BIAS_QKV},
    {BF(attn.o.w), "attn_output.weight", "self_attn.o_proj.weight", 0, 0, REQ},
    {BF(attn.o.b), "attn_output.bias", "self_attn.o_proj.bias", 0, 0, BIAS_O},
    {BF(q_norm.w), "attn_q_norm.weight", "self_attn.q_norm.weight", AV_ARCH_QK_NORM, 0, REQ},
    {BF(k_norm.w), "attn_k_norm.weight", "self_attn.k_norm.weight", AV_ARCH_QK_NORM, 0, REQ},
    {BF(attn_out_norm.w), "post_attention_norm.weight", "post_attention_layernorm.weight", AV_ARCH_SANDWICH,
     0, REQ},
    {BF(ffn_norm.w), "ffn_norm.weight", "post_attention_layernorm.weight", 0, AV_ARCH_SANDWICH, REQ},
    {BF(ffn_norm.w), "ffn_norm.weight", "pre_feedforward_layernorm.weight", AV_ARCH_SANDWICH, 0, REQ},
    {BF(ffn.gate.w), "ffn_gate.weight", "mlp.gate_proj.weight", DENSE | SPLIT, 0, REQ},
    {BF(ffn.gate.b), "ffn_gate.bias", "mlp.gate_proj.bias", DENSE | SPLIT, 0, BIAS_MLP},
    {BF(ffn.up.w), "ffn_up.weight", "mlp.up_proj.weight", DENSE | SPLIT, 0, REQ},
    {BF(ffn.up.b), "ffn_up.bias", "mlp.up_proj.bias", DENSE | SPLIT, 0, BIAS_MLP},
    {BF(ffn.down.w), "ffn_down.weight", "mlp.down_proj.weight", DENSE, 0, REQ},
    {BF(ffn.down.b), "ffn_down.bias", "mlp.down_proj.bias", DENSE, 0, BIAS_MLP},
    {BF(ffn_out_norm.w), "post_ffw_norm.weight", "post_feedforward_layernorm.weight", AV_ARCH_SANDWICH, 0,
     REQ},
    {BF(moe.router.w), "ffn_gate_inp.weight", "block_sparse_moe.gate.weight",
     AV_ARCH_MOE | AV_ARCH_HF_MIXTRAL, 0, REQ},
    {BF(moe.router.w), "ffn_gate_inp.weight", "mlp.gate.weight", AV_ARCH_MOE, AV_ARCH_HF_MIXTRAL, REQ},
};
enum { N_LAYER_NAMES = sizeof layer_names / sizeof layer_names[0] };
_Static_assert((int)N_LAYER_NAMES <= (int)AV_ARCH_MAX_ENTRIES, "av_arch_entries' output holds every name");

/* Fused (Phi-3): q|k|v rows in one matrix, gate|up rows in another. */
const char *const av_arch_fused_qkv[2] = {"attn_qkv.weight", "self_attn.qkv_proj.weight"};
const char *const av_arch_fused_gate_up[2] = {"ffn_up.weight", "mlp.gate_up_proj.weight"};
/* Experts: GGUF 3-D tensors (experts, rows, cols); HF one matrix per expert. Order: gate, up, down. */
const char *const av_arch_gguf_experts[3] = {"ffn_gate_exps.weight", "ffn_up_exps.weight",
                                             "ffn_down_exps.weight"};
static const char *const hf_experts[2][3] = {{"gate_proj", "up_proj", "down_proj"}, {"w1", "w3", "w2"}};

unsigned av_arch_cfg_flags(const av_arch_cfg *c) { return c->arch->flags | (c->n_experts ? AV_ARCH_MOE : 0); }

void av_arch_hf_expert(const av_arch *a, int expert, int part, char *out, size_t n) {
    int mixtral = (a->flags & AV_ARCH_HF_MIXTRAL) != 0;
    snprintf(out, n, "%s.experts.%d.%s.weight", mixtral ? "block_sparse_moe" : "mlp", expert,
             hf_experts[mixtral][part]);
}

/* The flags a configuration's blocks have, with the pseudo-flags. */
static unsigned cfg_flags(const av_arch_cfg *c) {
    unsigned f = av_arch_cfg_flags(c);
    f |= (f & AV_ARCH_MOE) ? 0 : DENSE;
    f |= (f & AV_ARCH_FUSED) ? 0 : SPLIT;
    return f;
}

static int applies(const layer_name *ln, unsigned flags, const av_arch_cfg *c) {
    if ((flags & ln->need) != ln->need || (flags & ln->skip)) return 0;
    int has[] = {1, c->bias_qkv, c->bias_o, c->bias_mlp};
    return has[ln->kind];
}

static av_tensor *field(av_block *B, size_t off) { return (av_tensor *)((char *)B + off); }

/* ---- taking weights ---- */

typedef struct take_ctx {
    const av_arch_cfg *c;
    av_arch_find_fn find;
    const void *ctx;
    int gguf;
} take_ctx;

static int take(const take_ctx *k, int layer, const char *part, int optional, av_tensor *t, av_err *err) {
    char name[128];
    snprintf(name, sizeof name, k->gguf ? "blk.%d.%s" : "model.layers.%d.%s", layer, part);
    return k->find(k->ctx, name, optional, t, err);
}

/* rows [r0, r0 + n) of a fused matrix, after checking it has `total` rows of `cols`. */
static int split_rows(const av_tensor *w, int64_t total, int64_t cols, const int64_t *rows, int n_parts,
                      av_tensor **out, const char *what, av_err *err) {
    if (w->ndim != 2 || w->shape[0] != total || w->shape[1] != cols)
        return av_errf(err, "%s: shape [%lld, %lld] does not match the config (expected [%lld, %lld])", what,
                       (long long)w->shape[0], (long long)(w->ndim > 1 ? w->shape[1] : 0), (long long)total,
                       (long long)cols);
    int64_t r0 = 0;
    for (int i = 0; i < n_parts; i++) {
        *out[i] = av_tensor_rows(w, r0, rows[i]);
        r0 += rows[i];
    }
    return 0;
}

static int take_fused(const take_ctx *k, av_block *B, int l, av_err *err) {
    const av_arch_cfg *c = k->c;
    av_tensor qkv, gate_up;
    int64_t q = (int64_t)c->n_heads * c->head_dim, kv = (int64_t)c->n_kv_heads * c->head_dim;
    int64_t qkv_rows[3] = {q, kv, kv}, ff[2] = {c->hidden, c->hidden};
    av_tensor *qkv_out[3] = {&B->attn.q.w, &B->attn.k.w, &B->attn.v.w},
              *ff_out[2] = {&B->ffn.gate.w, &B->ffn.up.w};
    char what[64];
    snprintf(what, sizeof what, "layer %d fused q/k/v", l);
    if (take(k, l, av_arch_fused_qkv[!k->gguf], 0, &qkv, err) ||
        split_rows(&qkv, q + 2 * kv, c->dim, qkv_rows, 3, qkv_out, what, err))
        return -1;
    snprintf(what, sizeof what, "layer %d fused gate/up", l);
    return take(k, l, av_arch_fused_gate_up[!k->gguf], 0, &gate_up, err) ||
                   split_rows(&gate_up, 2 * (int64_t)c->hidden, c->dim, ff, 2, ff_out, what, err)
               ? -1
               : 0;
}

static int take_experts(const take_ctx *k, av_model *m, av_block *B, int l, av_err *err) {
    const av_arch_cfg *c = k->c;
    int E = c->n_experts;
    av_ffn *ex = calloc((size_t)E, sizeof *ex); /* (n_experts) */
    if (av_model_own(m, ex, err)) return -1;
    B->moe.experts = ex;
    for (int j = 0; j < 3; j++) {
        int64_t rows = j < 2 ? c->hidden : c->dim, cols = j < 2 ? c->dim : c->hidden;
        if (!k->gguf) {
            for (int e = 0; e < E; e++) {
                char part[96];
                av_linear *lin[3] = {&ex[e].gate, &ex[e].up, &ex[e].down};
                av_arch_hf_expert(c->arch, e, j, part, sizeof part);
                if (take(k, l, part, 0, &lin[j]->w, err)) return -1;
            }
            continue;
        }
        av_tensor all;
        if (take(k, l, av_arch_gguf_experts[j], 0, &all, err)) return -1;
        if (all.ndim != 3 || all.shape[0] != E || all.shape[1] != rows || all.shape[2] != cols)
            return av_errf(err, "blk.%d.%s: shape does not match the config (expected [%d, %lld, %lld])", l,
                           av_arch_gguf_experts[j], E, (long long)rows, (long long)cols);
        av_tensor flat = av_tensor_view2d(&all, (int64_t)E * rows, cols);
        for (int e = 0; e < E; e++) {
            av_linear *lin[3] = {&ex[e].gate, &ex[e].up, &ex[e].down};
            lin[j]->w = av_tensor_rows(&flat, (int64_t)e * rows, rows);
        }
    }
    return 0;
}

int av_arch_take_weights(av_model *m, const av_arch_cfg *c, av_arch_find_fn find, const void *ctx,
                         av_err *err) {
    take_ctx k = {c, find, ctx, c->format == AV_MODEL_FORMAT_GGUF};
    unsigned flags = cfg_flags(c);
    av_stack *st = &m->stacks[0];
    for (int l = 0; l < st->n_layers; l++) {
        av_block *B = &st->blocks[l];
        for (int i = 0; i < N_LAYER_NAMES; i++) {
            const layer_name *ln = &layer_names[i];
            if (applies(ln, flags, c) && take(&k, l, k.gguf ? ln->gguf : ln->hf, 0, field(B, ln->off), err))
                return -1;
        }
        if ((flags & AV_ARCH_FUSED) && take_fused(&k, B, l, err)) return -1;
        if ((flags & AV_ARCH_MOE) && take_experts(&k, m, B, l, err)) return -1;
    }
    return 0;
}

int av_arch_entries(const av_arch_cfg *c, av_arch_entry *out) {
    unsigned flags = cfg_flags(c);
    int n = 0;
    for (int i = 0; i < N_LAYER_NAMES; i++) {
        const layer_name *ln = &layer_names[i];
        if (!applies(ln, flags, c)) continue;
        int q = ln->off == BF(attn.q.w) || ln->off == BF(attn.q.b),
            k = ln->off == BF(attn.k.w) || ln->off == BF(attn.k.b);
        int norm = strstr(ln->gguf, "norm.weight") != NULL;
        out[n++] = (av_arch_entry){ln->gguf, ln->hf, ln->off, norm, q ? 1 : k ? 2 : 0};
    }
    return n;
}

/* ---- blocks from a configuration ---- */

float av_arch_gemma_emb_scale(int dim, av_dtype emb, av_model_format fmt) {
    float s = sqrtf((float)dim);
    if (fmt != AV_MODEL_FORMAT_HF) return s;
    if (emb == AV_DTYPE_BF16) return av_bf16_to_f32(av_f32_to_bf16(s));
    if (emb == AV_DTYPE_F16) return av_f16_to_f32(av_f32_to_f16(s));
    return s;
}

/* The RoPE tables of layer l: scaled, or partial rotary (which needs a table even when plain). */
static int layer_rope(av_model *m, const av_arch_cfg *c, int l, av_err *err) {
    av_block *B = &m->stacks[0].blocks[l];
    int local = c->sliding[l] && c->rope_theta_local > 0, rot = av_arch_rot_dims(c);
    double theta = local ? c->rope_theta_local : c->rope_theta;
    int scaled = c->scale.type != AV_ROPE_SCALING_NONE && (!local || c->scale.local_too);
    B->rope_theta = (float)theta;
    if (!scaled && rot == c->head_dim) return 0;
    const av_rope_scale *s = scaled ? &c->scale : NULL;
    if (!(B->rope_scaled.freq = av_rope_table_make(m, theta, rot, s, 0, err))) return -1;
    if (s && s->type == AV_ROPE_SCALING_LONGROPE) {
        if (!(B->rope_scaled.freq_long = av_rope_table_make(m, theta, rot, s, 1, err))) return -1;
        B->rope_scaled.mscale = (float)s->attn_factor;
    }
    return 0;
}

int av_arch_init(av_model *m, const av_arch_cfg *c, av_dtype emb_dtype, av_err *err) {
    av_llama_cfg base = {c->dim,
                         c->hidden,
                         c->n_layers,
                         c->n_heads,
                         c->n_kv_heads,
                         c->head_dim,
                         (float)c->eps,
                         (float)c->rope_theta,
                         c->format == AV_MODEL_FORMAT_GGUF && (c->arch->flags & AV_ARCH_GGUF_META)
                             ? AV_ROPE_INTERLEAVED
                             : AV_ROPE_HALF};
    if (c->n_layers > AV_ARCH_MAX_LAYERS)
        return av_errf(err, "%d layers: at most %d are supported", c->n_layers, AV_ARCH_MAX_LAYERS);
    if (av_llama_init(m, &base, err)) return -1;
    snprintf(m->arch, sizeof m->arch, "%s", c->arch->name);
    m->format = c->format;
    m->vocab_size = c->vocab;
    m->max_seq_len = c->ctx;
    av_stack *st = &m->stacks[0];
    st->cfg.act = c->act;
    st->cfg.rope_dims = c->rope_dims == c->head_dim ? 0 : c->rope_dims;
    st->cfg.rope_long_from = c->scale.orig_ctx;
    if (c->arch->flags & AV_ARCH_GEMMA) {
        st->cfg.norm_offset = c->format == AV_MODEL_FORMAT_HF ? 1.0f : 0.0f; /* GGUF stores 1 + w */
        st->emb.scale = av_arch_gemma_emb_scale(c->dim, emb_dtype, c->format);
    }
    m->head.softcap = (float)c->final_softcap;
    for (int l = 0; l < c->n_layers; l++) {
        av_block *B = &st->blocks[l];
        if (c->attn_scale > 0) B->attn_scale = (float)c->attn_scale;
        B->attn_softcap = (float)c->attn_softcap;
        B->window = c->sliding[l] ? c->window : 0;
        if (layer_rope(m, c, l, err)) return -1;
        if (c->n_experts) {
            B->moe.n_experts = c->n_experts;
            B->moe.n_used = c->n_used;
            B->moe.norm_topk = c->norm_topk;
        }
    }
    return 0;
}
