/* The shared transformer block (see block.h): norms, biased linear layers, self- and cross-attention through
 * av_attention with capture, the MLP, and stacks of blocks with their final norm. */
#include "block.h"

#include <cblas.h>
#include <math.h>
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

void av_norm_apply(av_norm_kind kind, const av_norm *n, float eps, float *out, const float *x, int rows,
                   int dim) {
    if (kind == AV_NORM_RMS)
        av_rmsnorm(out, x, &n->w, rows, dim, eps, 1);
    else
        av_layernorm(out, x, &n->w, &n->b, rows, dim, eps);
}

/* y (n, out) = x W^T + b; wscratch: (out, in) floats for non-F32 weights, or NULL. */
static void linear(float *y, const float *x, const av_linear *l, int n, float *wscratch, int nt) {
    av_matmul(y, x, &l->w, n, wscratch, nt);
    if (l->b.data) av_add_bias(y, &l->b, n, (int)l->w.shape[0]);
}

int av_linear_run(float *y, const float *x, const av_linear *l, int n, int n_threads, av_err *err) {
    float *scratch = NULL;
    if (l->w.dtype != AV_DTYPE_F32 && n >= 8) {
        size_t numel;
        if (!av_shape_numel(l->w.shape, 2, &numel) || !av_mul_size(numel, sizeof(float), &numel))
            return av_errf(err, "weight size overflows");
        scratch = malloc(numel); /* (out, in) */
        if (!scratch)
            return av_errf(err, "out of memory for a %zu MiB weight conversion buffer", numel >> 20);
    }
    linear(y, x, l, n, scratch, n_threads);
    free(scratch);
    return 0;
}

av_tensor av_tensor_rows(const av_tensor *t, int64_t r0, int64_t n) {
    av_tensor v = *t;
    int64_t cols = t->ndim == 1 ? 1 : t->shape[1];
    size_t esz = t->dtype == AV_DTYPE_F32 ? 4 : 2; /* F32, F16, BF16 (checked by the loaders) */
    v.shape[0] = n;
    v.data = (const char *)t->data + (size_t)(r0 * cols) * esz;
    v.nbytes = (size_t)(n * cols) * esz;
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

static void shape_text(const av_tensor *t, char *buf, size_t n) {
    buf[0] = 0;
    for (int i = 0; i < t->ndim && i < AV_MAX_DIMS; i++)
        snprintf(buf + strlen(buf), n - strlen(buf), "%s%lld", i ? ", " : "", (long long)t->shape[i]);
}

int av_weight_check(const av_tensor *t, const char *name, int64_t rows, int64_t cols, int optional,
                    av_err *err) {
    if (!t->data) return optional ? 0 : av_errf(err, "missing tensor: %s", name);
    if (t->dtype != AV_DTYPE_F32 && t->dtype != AV_DTYPE_F16 && t->dtype != AV_DTYPE_BF16)
        return av_errf(err, "%s: unsupported weight type %s (supported: F32, F16, BF16)", name,
                       av_dtype_name(t->dtype));
    int ok = cols == 0 ? (t->ndim == 1 && t->shape[0] == rows)
                       : (t->ndim == 2 && t->shape[0] == rows && t->shape[1] == cols);
    if (!ok) {
        char got[96];
        shape_text(t, got, sizeof got);
        if (cols)
            return av_errf(err, "%s: shape [%s] does not match config.json (expected [%lld, %lld])", name,
                           got, (long long)rows, (long long)cols);
        return av_errf(err, "%s: shape [%s] does not match config.json (expected [%lld])", name, got,
                       (long long)rows);
    }
    return 0;
}

int av_norm_check(const av_norm *n, const char *name, int dim, av_err *err) {
    char buf[160];
    snprintf(buf, sizeof buf, "%s.weight", name);
    if (av_weight_check(&n->w, buf, dim, 0, 0, err)) return -1;
    snprintf(buf, sizeof buf, "%s.bias", name);
    return av_weight_check(&n->b, buf, dim, 0, 1, err);
}

int av_linear_check(const av_linear *l, const char *name, int64_t out, int64_t in, av_err *err) {
    char buf[160];
    snprintf(buf, sizeof buf, "%s.weight", name);
    if (av_weight_check(&l->w, buf, out, in, 0, err)) return -1;
    snprintf(buf, sizeof buf, "%s.bias", name);
    return av_weight_check(&l->b, buf, out, 0, 1, err);
}

int av_linear_split3(const av_tensor *w, const av_tensor *b, int64_t rows, int64_t in, av_linear out[3],
                     const char *name, av_err *err) {
    av_linear fused = {*w, b ? *b : (av_tensor){0}};
    if (av_linear_check(&fused, name, 3 * rows, in, err)) return -1;
    for (int i = 0; i < 3; i++) {
        out[i].w = av_tensor_rows(w, i * rows, rows);
        out[i].b = fused.b.data ? av_tensor_rows(&fused.b, i * rows, rows) : (av_tensor){0};
    }
    return 0;
}

static int64_t numel_or0(const av_tensor *t) { return t->data ? av_tensor_numel(t) : 0; }

static int64_t linear_params(const av_linear *l) { return numel_or0(&l->w) + numel_or0(&l->b); }
static int64_t norm_params(const av_norm *n) { return numel_or0(&n->w) + numel_or0(&n->b); }
static int64_t attn_params(const av_attn_weights *a) {
    return linear_params(&a->q) + linear_params(&a->k) + linear_params(&a->v) + linear_params(&a->o);
}

int64_t av_stack_n_params(const av_stack *st) {
    int64_t n = norm_params(&st->final_norm);
    for (int l = 0; l < st->n_layers; l++) {
        const av_block *B = &st->blocks[l];
        n += norm_params(&B->attn_norm) + attn_params(&B->attn) + norm_params(&B->cross_norm) +
             attn_params(&B->cross) + norm_params(&B->mlp_norm) + linear_params(&B->up) +
             linear_params(&B->gate) + linear_params(&B->down);
    }
    return n;
}

/* ---- stacks ---- */

int av_stack_alloc(av_stack *st, int n_layers, av_err *err) {
    st->blocks = calloc((size_t)(n_layers > 0 ? n_layers : 1), sizeof *st->blocks);
    if (!st->blocks) return av_errf(err, "out of memory");
    st->n_layers = n_layers;
    return 0;
}

void av_stack_free(av_stack *st) {
    free(st->blocks);
    st->blocks = NULL;
    st->n_layers = 0;
}

static int check_attn(const av_attn_weights *a, const char *what, int l, const char *part, int q_dim, int dim,
                      av_err *err) {
    char name[128];
    const av_linear *ls[4] = {&a->q, &a->k, &a->v, &a->o};
    const char *names[4] = {"q", "k", "v", "o"};
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s layer %d %s.%s", what, l, part, names[i]);
        if (av_linear_check(ls[i], name, i < 3 ? q_dim : dim, i < 3 ? dim : q_dim, err)) return -1;
    }
    return 0;
}

int av_stack_check(const av_stack *st, const char *what, av_err *err) {
    const av_stack_cfg *c = &st->cfg;
    if (c->dim <= 0 || c->n_heads <= 0 || c->head_dim <= 0 || c->hidden <= 0 || st->n_layers <= 0)
        return av_errf(
            err, "%s: non-positive size in config.json (dim %d, heads %d, head size %d, ffn %d, layers %d)",
            what, c->dim, c->n_heads, c->head_dim, c->hidden, st->n_layers);
    if (c->dim > (1 << 16) || c->hidden > (1 << 19) || c->n_heads > 1024 || c->head_dim > 4096 ||
        st->n_layers > 1024)
        return av_errf(err, "%s: config.json sizes are implausibly large", what);
    if (!(c->eps > 0)) return av_errf(err, "%s: the norm epsilon must be positive", what);
    int q_dim = c->n_heads * c->head_dim;
    char name[128];
    for (int l = 0; l < st->n_layers; l++) {
        const av_block *B = &st->blocks[l];
        snprintf(name, sizeof name, "%s layer %d attention norm", what, l);
        if (av_norm_check(&B->attn_norm, name, c->dim, err) ||
            check_attn(&B->attn, what, l, "self_attention", q_dim, c->dim, err))
            return -1;
        if (B->cross.q.w.data) {
            snprintf(name, sizeof name, "%s layer %d cross-attention norm", what, l);
            if (av_norm_check(&B->cross_norm, name, c->dim, err) ||
                check_attn(&B->cross, what, l, "cross_attention", q_dim, c->dim, err))
                return -1;
        }
        snprintf(name, sizeof name, "%s layer %d mlp norm", what, l);
        if (av_norm_check(&B->mlp_norm, name, c->dim, err)) return -1;
        snprintf(name, sizeof name, "%s layer %d mlp up", what, l);
        if (av_linear_check(&B->up, name, c->hidden, c->dim, err)) return -1;
        if (B->gate.w.data) {
            snprintf(name, sizeof name, "%s layer %d mlp gate", what, l);
            if (av_linear_check(&B->gate, name, c->hidden, c->dim, err)) return -1;
        }
        snprintf(name, sizeof name, "%s layer %d mlp down", what, l);
        if (av_linear_check(&B->down, name, c->dim, c->hidden, err)) return -1;
        if (!(B->attn_scale > 0))
            return av_errf(err, "%s layer %d: attention scale must be positive", what, l);
    }
    if (st->final_norm.w.data) {
        snprintf(name, sizeof name, "%s final norm", what);
        if (av_norm_check(&st->final_norm, name, c->dim, err)) return -1;
    }
    return 0;
}

/* ---- norm-based attention ----
 * || v W_h^T ||^2 = v G_h v^T with G_h = W_h^T W_h (head_dim x head_dim), W_h = W_o[:, h*hs:(h+1)*hs]: one
 * Gram matrix per head from the weights, then a head_dim^2 quadratic form per token, instead of projecting
 * every value vector to the model width (dim/head_dim times fewer FLOPs per token). */

enum { VNORM_ROWS = 128 }; /* rows of W_o dequantized at a time */

typedef struct vnorm_job {
    const float *v; /* (n, v_stride) */
    const av_tensor *wo;
    int v_stride, n_heads, n_kv_heads, hs, dim, T, t0;
    float *gram;       /* (n_heads, hs, hs) */
    float *gram_parts; /* (threads, n_heads, hs, hs): per-thread sums over W_o row ranges */
    float *vnorm;      /* (n_heads, T) */
    int failed;
} vnorm_job;

/* Partial Gram matrices of every head over W_o rows [r0, r1), into gram_parts[tid] (each row converted once).
 */
static void vnorm_gram(void *ctx, int tid, int64_t r0, int64_t r1) {
    vnorm_job *j = ctx;
    int q_dim = j->n_heads * j->hs;
    float *gram = j->gram_parts + (size_t)tid * (size_t)j->n_heads * (size_t)j->hs * (size_t)j->hs;
    float *blk = j->wo->dtype == AV_DTYPE_F32 ? NULL : malloc(sizeof(float) * VNORM_ROWS * (size_t)q_dim);
    if (j->wo->dtype != AV_DTYPE_F32 && !blk) {
        j->failed = 1;
        return;
    }
    for (int64_t r = r0; r < r1; r += VNORM_ROWS) {
        int nr = r1 - r < VNORM_ROWS ? (int)(r1 - r) : VNORM_ROWS;
        const float *rows = (const float *)j->wo->data + (size_t)r * (size_t)q_dim; /* (nr, q_dim) */
        if (blk) av_dequantize_rows(j->wo, r, nr, blk), rows = blk;
        for (int h = 0; h < j->n_heads; h++)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, j->hs, j->hs, nr, 1.0f, rows + h * j->hs,
                        q_dim, rows + h * j->hs, q_dim, r > r0 ? 1.0f : 0.0f,
                        gram + (size_t)h * (size_t)j->hs * (size_t)j->hs, j->hs);
    }
    free(blk);
}

/* vnorm for value rows [i0, i1), all heads. */
static void vnorm_rows(void *ctx, int tid, int64_t i0, int64_t i1) {
    vnorm_job *j = ctx;
    int n = (int)(i1 - i0), hs = j->hs;
    float *u = malloc(sizeof(float) * (size_t)n * (size_t)hs); /* (n, hs) = V_h G_h */
    if (!u) {
        j->failed = 1;
        return;
    }
    for (int h = 0; h < j->n_heads; h++) {
        const float *v =
            j->v + (size_t)i0 * (size_t)j->v_stride + (size_t)(h / (j->n_heads / j->n_kv_heads)) * (size_t)hs;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, hs, hs, 1.0f, v, j->v_stride,
                    j->gram + (size_t)h * (size_t)hs * (size_t)hs, hs, 0.0f, u, hs);
        for (int i = 0; i < n; i++) {
            double ss = 0;
            for (int d = 0; d < hs; d++)
                ss += (double)u[(size_t)i * (size_t)hs + (size_t)d] *
                      v[(size_t)i * (size_t)j->v_stride + (size_t)d];
            j->vnorm[(size_t)h * (size_t)j->T + (size_t)(j->t0 + (int)i0 + i)] = (float)sqrt(ss > 0 ? ss : 0);
        }
    }
    free(u);
}

int av_attn_vnorm(const float *v, int v_stride, const av_tensor *wo, int n_heads, int n_kv_heads,
                  int head_dim, int n, float *vnorm, int T, int t0, av_err *err) {
    vnorm_job j = {v, wo, v_stride, n_heads, n_kv_heads, head_dim, (int)wo->shape[0],
                   T, t0, NULL,     NULL,    vnorm,      0};
    size_t gram_len = (size_t)n_heads * (size_t)head_dim * (size_t)head_dim;
    int64_t gram_work = (int64_t)j.dim * head_dim * head_dim * n_heads,
            row_work = (int64_t)n * head_dim * head_dim * n_heads;
    int threads = gram_work > (1 << 20) ? av_default_threads() : 1;
    if (threads > j.dim / VNORM_ROWS) threads = j.dim / VNORM_ROWS > 0 ? j.dim / VNORM_ROWS : 1;
    j.gram_parts = malloc(sizeof(float) * gram_len * (size_t)threads);
    if (!j.gram_parts) return av_errf(err, "out of memory for the norm-based attention");
    j.gram = j.gram_parts; /* part 0 collects the sum */
    av_parallel_for(threads, j.dim, vnorm_gram, &j);
    for (int t = 1; t < threads; t++)
        for (size_t i = 0; i < gram_len; i++)
            j.gram[i] += j.gram_parts[(size_t)t * gram_len + i];
    if (!j.failed) av_parallel_for(row_work > (1 << 20) ? 0 : 1, n, vnorm_rows, &j);
    free(j.gram_parts);
    return j.failed ? av_errf(err, "out of memory for the norm-based attention") : 0;
}

/* ---- the forward pass of a stack ---- */

typedef struct block_ws {
    int T, S, n_keys; /* n_keys = max(T, S) */
    float *xb;        /* (T, max(dim, q_dim)) normed input, then sub-layer output */
    float *q;         /* (T, q_dim) */
    float *k, *v;     /* (n_keys, q_dim) */
    float *att;       /* (T, q_dim) attention output, heads side by side */
    float *h1, *h2;   /* (T, hidden) */
    float *scores;    /* (n_threads, AV_ATTN_QUERY_BLOCK, n_keys) when not capturing */
    float *wscratch;  /* (largest non-F32 matrix) or NULL */
    int n_threads;
} block_ws;

static size_t max_nonf32(const av_stack *st) {
    size_t best = 0;
    for (int l = 0; l < st->n_layers; l++) {
        const av_block *B = &st->blocks[l];
        const av_linear *ls[] = {&B->attn.q,  &B->attn.k,  &B->attn.v, &B->attn.o, &B->cross.q, &B->cross.k,
                                 &B->cross.v, &B->cross.o, &B->up,     &B->gate,   &B->down};
        for (size_t i = 0; i < sizeof ls / sizeof ls[0]; i++) {
            const av_tensor *w = &ls[i]->w;
            if (w->data && w->dtype != AV_DTYPE_F32 && (size_t)(w->shape[0] * w->shape[1]) > best)
                best = (size_t)(w->shape[0] * w->shape[1]);
        }
    }
    return best;
}

static void ws_free(block_ws *w) {
    free(w->xb);
    free(w->q);
    free(w->k);
    free(w->v);
    free(w->att);
    free(w->h1);
    free(w->h2);
    free(w->scores);
    free(w->wscratch);
}

static int alloc2(float **p, size_t a, size_t b, av_err *err) {
    size_t n;
    if (!av_mul_size(a, b, &n) || !av_mul_size(n, sizeof(float), &n))
        return av_errf(err, "buffer size overflows");
    *p = malloc(n ? n : 4);
    return *p ? 0 : av_errf(err, "out of memory allocating %zu MiB", n >> 20);
}

static int ws_init(block_ws *w, const av_stack *st, int T, int S, int n_threads, av_err *err) {
    const av_stack_cfg *c = &st->cfg;
    memset(w, 0, sizeof *w);
    size_t q_dim = (size_t)c->n_heads * (size_t)c->head_dim;
    size_t wide = q_dim > (size_t)c->dim ? q_dim : (size_t)c->dim;
    w->T = T;
    w->S = S;
    w->n_keys = S > T ? S : T;
    w->n_threads = n_threads;
    size_t wmax = max_nonf32(st);
    size_t wo_max = q_dim * (size_t)c->dim; /* vnorm dequantizes a whole W_o */
    if (wmax && wmax < wo_max) wmax = wo_max;
    if (alloc2(&w->xb, (size_t)T, wide, err) || alloc2(&w->q, (size_t)T, q_dim, err) ||
        alloc2(&w->k, (size_t)w->n_keys, q_dim, err) || alloc2(&w->v, (size_t)w->n_keys, q_dim, err) ||
        alloc2(&w->att, (size_t)T, q_dim, err) || alloc2(&w->h1, (size_t)T, (size_t)c->hidden, err) ||
        alloc2(&w->h2, (size_t)T, (size_t)c->hidden, err) ||
        alloc2(&w->scores, (size_t)n_threads * AV_ATTN_QUERY_BLOCK, (size_t)w->n_keys, err) ||
        (wmax && alloc2(&w->wscratch, wmax, 1, err))) {
        ws_free(w);
        return -1;
    }
    return 0;
}

/* One attention sub-layer: queries from in (T rows), keys/values from kv_in (n_k rows); result (T, dim) in
 * w->xb. probs: (n_heads, T, n_k) capture or NULL; vnorm: (n_heads, T) or NULL (self-attention only). */
static int attend(const av_stack_cfg *c, const av_attn_weights *A, float scale, block_ws *w, const float *in,
                  int T, const float *kv_in, int n_k, int causal, const float *bias, float *probs,
                  float *vnorm, av_err *err) {
    int q_dim = c->n_heads * c->head_dim, nt = w->n_threads;
    linear(w->q, in, &A->q, T, w->wscratch, nt);
    linear(w->k, kv_in, &A->k, n_k, w->wscratch, nt);
    linear(w->v, kv_in, &A->v, n_k, w->wscratch, nt);
    av_attn_args aa = {0};
    aa.n_heads = aa.n_kv_heads = c->n_heads;
    aa.head_dim = c->head_dim;
    aa.n_q = T;
    aa.n_k = n_k;
    aa.q = w->q;
    aa.k = w->k;
    aa.v = w->v;
    aa.q_stride = aa.k_stride = aa.v_stride = aa.out_stride = q_dim;
    aa.out = w->att;
    aa.scale = scale;
    aa.causal_offset = causal ? 0 : -1;
    aa.bias = bias;
    if (probs) {
        aa.probs = probs;
        aa.probs_head_stride = (size_t)T * (size_t)n_k;
        aa.probs_ld = n_k;
    }
    av_attention(&aa, w->scores, nt);
    if (vnorm &&
        av_attn_vnorm(w->v, q_dim, &A->o.w, c->n_heads, c->n_heads, c->head_dim, n_k, vnorm, T, 0, err))
        return -1;
    linear(w->xb, w->att, &A->o, T, w->wscratch, nt);
    return 0;
}

static void mlp(const av_stack_cfg *c, const av_block *B, block_ws *w, const float *in, int T) {
    int nt = w->n_threads;
    size_t n = (size_t)T * (size_t)c->hidden;
    linear(w->h1, in, &B->up, T, w->wscratch, nt);
    if (B->gate.w.data) { /* act(x W_gate) * (x W_up) */
        linear(w->h2, in, &B->gate, T, w->wscratch, nt);
        av_activate(w->h2, n, c->act);
        for (size_t i = 0; i < n; i++)
            w->h1[i] *= w->h2[i];
    } else {
        av_activate(w->h1, n, c->act);
    }
    linear(w->xb, w->h1, &B->down, T, w->wscratch, nt);
}

/* x += w->xb, then the post-norm when the stack is post-norm. */
static void residual(const av_stack_cfg *c, const av_norm *n, float *x, const block_ws *w, int T) {
    size_t len = (size_t)T * (size_t)c->dim;
    for (size_t i = 0; i < len; i++)
        x[i] += w->xb[i];
    if (c->post_norm) av_norm_apply(c->norm, n, c->eps, x, x, T, c->dim);
}

/* The sub-layer input: norm(x) into w->xb (pre-norm), or x itself (post-norm). */
static const float *sublayer_input(const av_stack_cfg *c, const av_norm *n, const float *x, block_ws *w,
                                   int T) {
    if (c->post_norm) return x;
    av_norm_apply(c->norm, n, c->eps, w->xb, x, T, c->dim);
    return w->xb;
}

int av_stack_forward(const av_stack *st, float *x, int T, const av_stack_run *run, int n_threads,
                     av_err *err) {
    const av_stack_cfg *c = &st->cfg;
    if (T <= 0) return av_errf(err, "empty input: nothing to run");
    int S = run->mem ? run->S : 0;
    if (n_threads <= 0) n_threads = av_default_threads();
    block_ws w;
    if (ws_init(&w, st, T, S, n_threads, err)) return -1;
    for (int l = 0; l < st->n_layers; l++) {
        const av_block *B = &st->blocks[l];
        float *probs = run->self_probs ? run->self_probs[l] : NULL;
        float *vn = run->vnorm ? run->vnorm[l] : NULL;
        const float *in = sublayer_input(c, &B->attn_norm, x, &w, T);
        if (attend(c, &B->attn, B->attn_scale, &w, in, T, in, T, run->causal, run->self_bias, probs, vn,
                   err)) {
            ws_free(&w);
            return -1;
        }
        residual(c, &B->attn_norm, x, &w, T);
        if (B->cross.q.w.data && run->mem) {
            float *cp = run->cross_probs ? run->cross_probs[l] : NULL;
            in = sublayer_input(c, &B->cross_norm, x, &w, T);
            attend(c, &B->cross, B->attn_scale, &w, in, T, run->mem, S, 0, NULL, cp, NULL,
                   err); /* no vnorm: cannot fail */
            residual(c, &B->cross_norm, x, &w, T);
        }
        in = sublayer_input(c, &B->mlp_norm, x, &w, T);
        mlp(c, B, &w, in, T);
        residual(c, &B->mlp_norm, x, &w, T);
    }
    if (st->final_norm.w.data) av_norm_apply(c->norm, &st->final_norm, c->eps, x, x, T, c->dim);
    ws_free(&w);
    return 0;
}
