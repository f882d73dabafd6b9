/* The one transformer block (see block.h): its pieces (norms, biased linear layers), shape checks, parameter
 * counts and T5's relative-position buckets (value norms: vnorm.c). forward.c runs blocks. */
#include "block.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* ---- small pieces ---- */

int av_act_parse(const char *name, av_act *out) {
    static const struct {
        const char *name;
        av_act act;
    } acts[] = {{"gelu", AV_ACT_GELU},
                {"gelu_new", AV_ACT_GELU_TANH},
                {"gelu_pytorch_tanh", AV_ACT_GELU_TANH},
                {"gelu_fast", AV_ACT_GELU_TANH},
                {"relu", AV_ACT_RELU},
                {"silu", AV_ACT_SILU},
                {"swish", AV_ACT_SILU},
                {"quick_gelu", AV_ACT_QUICK_GELU}};
    for (size_t i = 0; name && i < sizeof acts / sizeof acts[0]; i++)
        if (strcmp(name, acts[i].name) == 0) {
            *out = acts[i].act;
            return 0;
        }
    return -1;
}

/* out = norm(x), after x += add when add is given (x then writable: acc). */
static void norm_run(av_norm_kind kind, const av_norm *nm, float eps, float offset, float *out,
                     const float *x, float *acc, const float *add, int rows, int n, int n_threads) {
    av_tensor w = nm->w;
    float stack_w[1024], *shifted = NULL; /* (n) offset + w: Gemma's norms */
    if (offset != 0.0f) {
        shifted = n <= 1024 ? stack_w : malloc(sizeof(float) * (size_t)n);
        if (!shifted) offset = 0.0f, shifted = NULL; /* cannot happen for real sizes; keep going unscaled */
    }
    if (shifted) {
        av_dequantize_rows(&nm->w, 0, 1, shifted);
        for (int i = 0; i < n; i++)
            shifted[i] += offset;
        w = av_tensor_f32(shifted, n, 0);
    }
    if (kind == AV_NORM_RMS && add) {
        av_rmsnorm_add(out, acc, add, &w, rows, n, eps, n_threads);
    } else {
        if (add) av_add_to(acc, add, (size_t)rows * (size_t)n);
        if (kind == AV_NORM_RMS)
            av_rmsnorm(out, x, &w, rows, n, eps, n_threads);
        else
            av_layernorm(out, x, &w, &nm->b, rows, n, eps);
    }
    if (shifted != stack_w) free(shifted);
}

void av_norm_apply(av_norm_kind kind, const av_norm *nm, float eps, float offset, float *out, const float *x,
                   int rows, int n, int n_threads) {
    norm_run(kind, nm, eps, offset, out, x, NULL, NULL, rows, n, n_threads);
}

void av_norm_apply_add(av_norm_kind kind, const av_norm *nm, float eps, float offset, float *out, float *x,
                       const float *add, int rows, int n, int n_threads) {
    norm_run(kind, nm, eps, offset, out, x, x, add, rows, n, n_threads);
}

void av_linear_apply(float *y, const float *x, const av_linear *l, int n, float *wscratch, int n_threads) {
    av_matmul(y, x, &l->w, n, wscratch, n_threads);
    if (l->b.data) av_add_bias(y, &l->b, n, (int)l->w.shape[0]);
}

av_tensor av_tensor_f32(const float *data, int64_t rows, int64_t cols) {
    av_tensor t = {AV_DTYPE_F32, 2, {rows, cols, 0, 0}, data, (size_t)(rows * (cols ? cols : 1)) * 4};
    if (!cols) t.ndim = 1;
    return t;
}

av_tensor av_tensor_rows(const av_tensor *t, int64_t r0, int64_t n) {
    av_tensor v = *t;
    size_t row_bytes = 0; /* a 1-D tensor (a bias): rows of one value */
    av_dtype_row_bytes(t->dtype, t->ndim == 1 ? 1 : t->shape[1], &row_bytes);
    v.shape[0] = n;
    v.data = (const char *)t->data + (size_t)r0 * row_bytes;
    v.nbytes = (size_t)n * row_bytes;
    return v;
}

av_tensor av_tensor_view2d(const av_tensor *t, int64_t rows, int64_t cols) {
    av_tensor v = {0};
    if (av_tensor_numel(t) != rows * cols) return v;
    v = *t;
    v.ndim = 2;
    v.shape[0] = rows;
    v.shape[1] = cols;
    v.shape[2] = v.shape[3] = 0;
    return v;
}

/* ---- shape checks ---- */

int av_tensor_same(const av_tensor *a, const av_tensor *b) {
    return a->dtype == b->dtype && a->nbytes == b->nbytes && memcmp(a->data, b->data, a->nbytes) == 0;
}

void av_tensor_shape_text(const av_tensor *t, char *buf, size_t n) {
    buf[0] = 0;
    for (int i = 0; i < t->ndim && i < AV_MAX_DIMS; i++)
        snprintf(buf + strlen(buf), n - strlen(buf), "%s%lld", i ? ", " : "", (long long)t->shape[i]);
}

int av_weight_check(const av_tensor *t, const char *name, int64_t rows, int64_t cols, int optional,
                    const char *cfg, av_err *err) {
    if (!t->data) return optional ? 0 : av_errf(err, "missing tensor: %s", name);
    if (!av_dtype_is_weight(t->dtype))
        return av_errf(err, "%s: unsupported weight type %s", name, av_dtype_name(t->dtype));
    if (cols == 0 && av_dtype_is_quantized(t->dtype)) /* norms and biases are read as plain floats */
        return av_errf(err,
                       "%s: %s vectors are not supported (norm weights and biases must be F32, F16 or BF16)",
                       name, av_dtype_name(t->dtype));
    int ok = cols == 0 ? (t->ndim == 1 && t->shape[0] == rows)
                       : (t->ndim == 2 && t->shape[0] == rows && t->shape[1] == cols);
    if (!ok) {
        char got[96];
        av_tensor_shape_text(t, got, sizeof got);
        if (cols)
            return av_errf(err, "%s: shape [%s] does not match %s (expected [%lld, %lld])", name, got, cfg,
                           (long long)rows, (long long)cols);
        return av_errf(err, "%s: shape [%s] does not match %s (expected [%lld])", name, got, cfg,
                       (long long)rows);
    }
    size_t nbytes;
    if ((cols ? cols : rows) % av_dtype_block_size(t->dtype))
        return av_errf(err, "%s: %s rows must be a multiple of %d values", name, av_dtype_name(t->dtype),
                       av_dtype_block_size(t->dtype));
    if (!av_dtype_nbytes(t->dtype, (size_t)rows * (size_t)(cols ? cols : 1), &nbytes) || nbytes != t->nbytes)
        return av_errf(err, "%s: %zu bytes of data for its shape and type", name, t->nbytes);
    return 0;
}

/* "<name>.weight" (rows, cols; cols 0: a vector) and the optional "<name>.bias" (rows). */
static int pair_check(const av_tensor *w, const av_tensor *b, const char *name, int64_t rows, int64_t cols,
                      const char *cfg, av_err *err) {
    char buf[160];
    snprintf(buf, sizeof buf, "%s.weight", name);
    if (av_weight_check(w, buf, rows, cols, 0, cfg, err)) return -1;
    snprintf(buf, sizeof buf, "%s.bias", name);
    return av_weight_check(b, buf, rows, 0, 1, cfg, err);
}

int av_norm_check(const av_norm *n, const char *name, int dim, const char *cfg, av_err *err) {
    return pair_check(&n->w, &n->b, name, dim, 0, cfg, err);
}

int av_linear_check(const av_linear *l, const char *name, int64_t out, int64_t in, const char *cfg,
                    av_err *err) {
    return pair_check(&l->w, &l->b, name, out, in, cfg, err);
}

int av_linear_split3(const av_tensor *w, const av_tensor *b, int64_t rows, int64_t in, av_attn_weights *out,
                     const char *name, av_err *err) {
    av_linear fused = {*w, b ? *b : (av_tensor){0}}, *parts[3] = {&out->q, &out->k, &out->v};
    if (av_linear_check(&fused, name, 3 * rows, in, "config.json", err)) return -1;
    for (int i = 0; i < 3; i++) {
        parts[i]->w = av_tensor_rows(w, i * rows, rows);
        parts[i]->b = fused.b.data ? av_tensor_rows(&fused.b, i * rows, rows) : (av_tensor){0};
    }
    return 0;
}

/* What a block check reports against: the stack's name and config, and the block. */
typedef struct check_ctx {
    const char *what, *cfg;
    int layer;
    av_err *err;
} check_ctx;

static int check_norm_opt(const check_ctx *c, const av_norm *n, const char *part, int dim) {
    char name[160];
    snprintf(name, sizeof name, "%s layer %d %s", c->what, c->layer, part);
    return n->w.data || n->b.data ? av_norm_check(n, name, dim, c->cfg, c->err) : 0;
}

static int check_lin(const check_ctx *c, const av_linear *l, const char *part, int64_t out, int64_t in) {
    char name[160];
    snprintf(name, sizeof name, "%s layer %d %s", c->what, c->layer, part);
    return av_linear_check(l, name, out, in, c->cfg, c->err);
}

static int check_attn(const check_ctx *c, const av_attn_weights *a, const char *part, const av_stack_cfg *s) {
    char name[64];
    const av_linear *ls[4] = {&a->q, &a->k, &a->v, &a->o};
    int64_t q_dim = (int64_t)s->n_heads * s->head_dim, kv_dim = (int64_t)s->n_kv_heads * s->head_dim;
    int64_t out[4] = {q_dim, kv_dim, kv_dim, s->dim}, in[4] = {s->dim, s->dim, s->dim, q_dim};
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s.%c", part, "qkvo"[i]);
        if (check_lin(c, ls[i], name, out[i], in[i])) return -1;
    }
    return 0;
}

static int check_ffn(const check_ctx *c, const av_ffn *f, const char *part, const av_stack_cfg *s) {
    char name[96];
    snprintf(name, sizeof name, "%s gate", part);
    if (f->gate.w.data && check_lin(c, &f->gate, name, s->hidden, s->dim)) return -1;
    snprintf(name, sizeof name, "%s up", part);
    if (check_lin(c, &f->up, name, s->hidden, s->dim)) return -1;
    snprintf(name, sizeof name, "%s down", part);
    return check_lin(c, &f->down, name, s->dim, s->hidden);
}

enum { MAX_EXPERTS = 1024, MAX_EXPERTS_USED = 64 }; /* moe.c's limit on experts per token */

static int check_moe(const check_ctx *c, const av_moe *moe, const av_stack_cfg *s) {
    if (moe->n_experts < 1 || moe->n_experts > MAX_EXPERTS || moe->n_used < 1 ||
        moe->n_used > moe->n_experts || moe->n_used > MAX_EXPERTS_USED || !moe->experts)
        return av_errf(c->err, "%s layer %d: %d experts, %d used per token: out of range (at most %d and %d)",
                       c->what, c->layer, moe->n_experts, moe->n_used, MAX_EXPERTS, MAX_EXPERTS_USED);
    if (check_lin(c, &moe->router, "ffn router", moe->n_experts, s->dim)) return -1;
    for (int e = 0; e < moe->n_experts; e++) {
        char part[48];
        snprintf(part, sizeof part, "expert %d", e);
        if (!moe->experts[e].gate.w.data)
            return av_errf(c->err, "%s layer %d %s: experts must be gated", c->what, c->layer, part);
        if (check_ffn(c, &moe->experts[e], part, s)) return -1;
    }
    return 0;
}

/* A rotation table is needed for partial rotary and must come with a positive scale. */
static int check_rope(const check_ctx *c, const av_block *B, const av_stack_cfg *s) {
    if (s->rope == AV_ROPE_NONE) return 0;
    if (!(B->rope_theta > 0))
        return av_errf(c->err, "%s layer %d: the RoPE base must be positive", c->what, c->layer);
    if (s->rope_dims && s->rope_dims != s->head_dim && !B->rope_scaled.freq)
        return av_errf(c->err, "internal error: %s layer %d: partial rotary without a frequency table",
                       c->what, c->layer);
    if ((B->rope_scaled.freq || B->rope_scaled.freq_long) && !(B->rope_scaled.mscale > 0))
        return av_errf(c->err, "%s layer %d: the RoPE attention factor must be positive", c->what, c->layer);
    return 0;
}

static int check_block(const check_ctx *c, const av_block *B, const av_stack_cfg *s) {
    char name[160];
    snprintf(name, sizeof name, "%s layer %d attention norm", c->what, c->layer);
    if (av_norm_check(&B->attn_norm, name, s->dim, c->cfg, c->err) ||
        check_attn(c, &B->attn, "self_attention", s) ||
        check_norm_opt(c, &B->q_norm, "q norm", s->head_dim) ||
        check_norm_opt(c, &B->k_norm, "k norm", s->head_dim) ||
        check_norm_opt(c, &B->attn_out_norm, "attention output norm", s->dim))
        return -1;
    if (B->cross.q.w.data && (check_norm_opt(c, &B->cross_norm, "cross-attention norm", s->dim) ||
                              check_attn(c, &B->cross, "cross_attention", s)))
        return -1;
    snprintf(name, sizeof name, "%s layer %d ffn norm", c->what, c->layer);
    if (av_norm_check(&B->ffn_norm, name, s->dim, c->cfg, c->err) ||
        (B->moe.router.w.data ? check_moe(c, &B->moe, s) : check_ffn(c, &B->ffn, "ffn", s)) ||
        check_norm_opt(c, &B->ffn_out_norm, "ffn output norm", s->dim) || check_rope(c, B, s))
        return -1;
    if (!(B->attn_scale > 0) || B->attn_softcap < 0 || B->window < 0)
        return av_errf(c->err,
                       "%s layer %d: attention scale must be positive, soft-cap and window not negative",
                       c->what, c->layer);
    return 0;
}

/* A stack of 0 layers is embeddings and the final norm only (attnviz-t2i's text side); each loader sets its
 * own minimum layer count. */
static int check_cfg(const av_stack *st, const char *what, av_err *err) {
    const av_stack_cfg *c = &st->cfg;
    if (c->dim <= 0 || c->n_heads <= 0 || c->head_dim <= 0 || c->hidden <= 0 || st->n_layers < 0)
        return av_errf(err,
                       "%s: non-positive size or negative layer count in the config (dim %d, heads %d, head "
                       "size %d, ffn %d, layers %d)",
                       what, c->dim, c->n_heads, c->head_dim, c->hidden, st->n_layers);
    if (c->dim > (1 << 16) || c->hidden > (1 << 19) || c->n_heads > 1024 || c->head_dim > 4096 ||
        st->n_layers > 1024)
        return av_errf(err, "%s: config sizes are implausibly large (dim %d, ffn %d, heads %d, layers %d)",
                       what, c->dim, c->hidden, c->n_heads, st->n_layers);
    if (c->n_kv_heads <= 0 || c->n_heads % c->n_kv_heads)
        return av_errf(err, "%d attention heads are not a multiple of %d kv heads", c->n_heads,
                       c->n_kv_heads);
    if (c->rope != AV_ROPE_NONE && c->head_dim % 2)
        return av_errf(err, "head size %d is odd (RoPE needs pairs)", c->head_dim);
    if (c->rope_dims < 0 || c->rope_dims > c->head_dim || c->rope_dims % 2)
        return av_errf(err, "%s: %d rotary values per head of %d: must be even and at most the head size",
                       what, c->rope_dims, c->head_dim);
    if (!(c->eps > 0)) return av_errf(err, "%s: the norm epsilon must be positive", what);
    return 0;
}

int av_stack_check(av_stack *st, const char *what, const char *cfg, av_err *err) {
    if (!st->cfg.n_kv_heads) st->cfg.n_kv_heads = st->cfg.n_heads;
    if (check_cfg(st, what, err)) return -1;
    for (int l = 0; l < st->n_layers; l++) {
        check_ctx c = {what, cfg, l, err};
        if (check_block(&c, &st->blocks[l], &st->cfg)) return -1;
    }
    char name[128];
    snprintf(name, sizeof name, "%s final norm", what);
    if (st->final_norm.w.data && av_norm_check(&st->final_norm, name, st->cfg.dim, cfg, err)) return -1;
    if (st->rel.table.data) {
        snprintf(name, sizeof name, "%s relative_attention_bias", what);
        if (av_weight_check(&st->rel.table, name, st->rel.n_buckets, st->cfg.n_heads, 0, cfg, err)) return -1;
    }
    return 0;
}

/* ---- stacks ---- */

av_stack_cfg av_stack_cfg_mha(int dim, int n_heads, int head_dim, int hidden, av_norm_kind norm, float eps,
                              av_act act) {
    return (av_stack_cfg){.dim = dim,
                          .n_heads = n_heads,
                          .n_kv_heads = n_heads,
                          .head_dim = head_dim,
                          .hidden = hidden,
                          .norm = norm,
                          .eps = eps,
                          .act = act};
}

int av_stack_alloc(av_stack *st, int n_layers, av_err *err) {
    size_t n = (size_t)(n_layers > 0 ? n_layers : 1);
    st->blocks = calloc(n, sizeof *st->blocks);
    st->vnorm_grams = calloc(n, sizeof *st->vnorm_grams);
    if (!st->blocks || !st->vnorm_grams) {
        av_stack_free(st);
        return av_errf(err, "out of memory");
    }
    st->n_layers = n_layers;
    st->emb.scale = 1.0f;
    for (int l = 0; l < n_layers; l++)
        st->blocks[l].rope_scaled.mscale = 1.0f;
    return 0;
}

void av_stack_free(av_stack *st) {
    for (int l = 0; st->vnorm_grams && l < st->n_layers; l++)
        free(atomic_load(&st->vnorm_grams[l]));
    free(st->vnorm_grams);
    st->vnorm_grams = NULL;
    free(st->blocks);
    st->blocks = NULL;
    st->n_layers = 0;
}

static int64_t numel_or0(const av_tensor *t) { return t->data ? av_tensor_numel(t) : 0; }
static int64_t linear_params(const av_linear *l) { return numel_or0(&l->w) + numel_or0(&l->b); }
static int64_t norm_params(const av_norm *n) { return numel_or0(&n->w) + numel_or0(&n->b); }
static int64_t attn_params(const av_attn_weights *a) {
    return linear_params(&a->q) + linear_params(&a->k) + linear_params(&a->v) + linear_params(&a->o);
}
static int64_t ffn_params(const av_ffn *f) {
    return linear_params(&f->up) + linear_params(&f->gate) + linear_params(&f->down);
}
static int64_t moe_params(const av_moe *moe) {
    int64_t n = linear_params(&moe->router);
    for (int e = 0; moe->router.w.data && e < moe->n_experts; e++)
        n += ffn_params(&moe->experts[e]);
    return n;
}

int64_t av_stack_n_params(const av_stack *st) {
    const av_embed *e = &st->emb;
    int64_t n = norm_params(&st->final_norm) + numel_or0(&e->tok) + numel_or0(&e->pos) + numel_or0(&e->type) +
                norm_params(&e->norm) + numel_or0(&st->rel.table);
    for (int l = 0; l < st->n_layers; l++) {
        const av_block *B = &st->blocks[l];
        n += norm_params(&B->attn_norm) + attn_params(&B->attn) + norm_params(&B->q_norm) +
             norm_params(&B->k_norm) + norm_params(&B->attn_out_norm) + norm_params(&B->cross_norm) +
             attn_params(&B->cross) + norm_params(&B->ffn_norm) + ffn_params(&B->ffn) + moe_params(&B->moe) +
             norm_params(&B->ffn_out_norm);
    }
    return n;
}

int av_stack_max_experts(const av_stack *st) {
    int n = 0;
    for (int l = 0; l < st->n_layers; l++)
        if (st->blocks[l].moe.router.w.data && st->blocks[l].moe.n_experts > n)
            n = st->blocks[l].moe.n_experts;
    return n;
}

/* ---- T5 relative positions ---- */

/* Bucket of relative position rel = key - query, in float32 exactly as the PyTorch implementation does it. */
static int t5_bucket(int rel, int bidirectional, int n_buckets, int max_distance) {
    int bucket = 0, n = n_buckets;
    if (bidirectional) {
        n /= 2;
        if (rel > 0) bucket += n;
        rel = rel < 0 ? -rel : rel;
    } else {
        rel = rel < 0 ? -rel : 0;
    }
    int max_exact = n / 2;
    if (rel < max_exact) return bucket + rel;
    float v = logf((float)rel / (float)max_exact) / (float)log((double)max_distance / max_exact) *
              (float)(n - max_exact);
    int large = max_exact + (int)v;
    return bucket + (large < n - 1 ? large : n - 1);
}

void av_rel_pos_bias(const av_stack *st, int n, float *out) {
    const av_rel_pos *r = &st->rel;
    int H = st->cfg.n_heads, len = 2 * n - 1;
    float row[4096]; /* (n_heads) one bucket's biases; av_stack_check bounds n_heads by 1024 */
    for (int d = 1 - n; d < n; d++) {
        av_dequantize_rows(&r->table, t5_bucket(d, !st->cfg.causal, r->n_buckets, r->max_distance), 1, row);
        for (int h = 0; h < H; h++)
            out[(size_t)h * (size_t)len + (size_t)(d + n - 1)] = row[h];
    }
}
