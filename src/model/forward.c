/* The one forward pass of every family (see model.h): a chunk of rows at positions pos0.. goes through the
 * blocks of a stack against the KV cache, with q/k/v as one av_matmul_many, the gated feed-forward's gate and
 * up likewise, and attention through av_attention (capturing straight into the caller's buffers).
 * Embeddings and output heads are in embed.c. */
#include "forward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- state ---- */

static size_t matrix_size(const av_tensor *w) {
    return w->data && w->dtype != AV_DTYPE_F32 && w->ndim == 2 ? (size_t)(w->shape[0] * w->shape[1]) : 0;
}

static size_t ffn_largest(const av_ffn *f) {
    size_t a = matrix_size(&f->up.w), b = matrix_size(&f->gate.w), c = matrix_size(&f->down.w);
    return a > b ? (a > c ? a : c) : (b > c ? b : c);
}

/* Elements of the largest non-F32 matrix a run of stack st multiplies with (dequantized into wscratch). */
static size_t largest_matrix(const av_model *m, const av_stack *st) {
    const av_tensor *model_ws[] = {&m->head.out.w, &m->head.dense.w, &m->vision.patch.w, &m->diff.time_1.w,
                                   &m->diff.time_2.w};
    size_t best = 0;
    for (size_t i = 0; i < sizeof model_ws / sizeof model_ws[0]; i++)
        best = matrix_size(model_ws[i]) > best ? matrix_size(model_ws[i]) : best;
    for (int l = 0; l < st->n_layers; l++) {
        const av_block *B = &st->blocks[l];
        const av_linear *ls[] = {&B->attn.q,  &B->attn.k,  &B->attn.v,  &B->attn.o,    &B->cross.q,
                                 &B->cross.k, &B->cross.v, &B->cross.o, &B->moe.router};
        for (size_t i = 0; i < sizeof ls / sizeof ls[0]; i++)
            best = matrix_size(&ls[i]->w) > best ? matrix_size(&ls[i]->w) : best;
        best = ffn_largest(&B->ffn) > best ? ffn_largest(&B->ffn) : best;
        for (int e = 0; B->moe.router.w.data && e < B->moe.n_experts; e++)
            best = ffn_largest(&B->moe.experts[e]) > best ? ffn_largest(&B->moe.experts[e]) : best;
    }
    return best;
}

static int alloc_floats(float **p, size_t a, size_t b, size_t c, av_err *err) {
    size_t n;
    free(*p);
    *p = NULL;
    if (!av_mul_size(a, b, &n) || !av_mul_size(n, c, &n) || !av_mul_size(n, sizeof(float), &n))
        return av_errf(err, "buffer size overflows");
    *p = av_alloc_large(n, 64);
    return *p ? 0 : av_errf(err, "out of memory allocating %zu MiB", n >> 20);
}

void av_state_free(av_state *s) {
    if (!s) return;
    float *bufs[] = {s->k_cache, s->v_cache, s->cross_k,  s->cross_v, s->rel,    s->x,      s->xb,
                     s->q,       s->att,     s->h1,       s->h2,      s->scores, s->moe_x,  s->moe_y,
                     s->moe_p,   s->moe_out, s->wscratch, s->kb,      s->vb,     s->rope_cs};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        free(bufs[i]);
    for (int i = 0; s->panels && i < s->cache_layers * s->n_seq; i++)
        free(s->panels[i].panels);
    free(s->panels);
    free(s->moe_rows);
    free(s);
}

int av_state_reserve(av_state *s, int n, av_err *err) {
    if (n <= s->n_alloc) return 0;
    const av_stack_cfg *c = &s->st->cfg;
    size_t q_dim = (size_t)c->n_heads * (size_t)c->head_dim,
           wide = q_dim > (size_t)c->dim ? q_dim : (size_t)c->dim,
           kv_dim = (size_t)c->n_kv_heads * (size_t)c->head_dim;
    s->n_alloc = 0;
    if (alloc_floats(&s->x, (size_t)n, (size_t)c->dim, 1, err) ||
        alloc_floats(&s->xb, (size_t)n, wide, 1, err) || alloc_floats(&s->q, (size_t)n, q_dim, 1, err) ||
        alloc_floats(&s->att, (size_t)n, q_dim, 1, err) ||
        alloc_floats(&s->h1, (size_t)n, (size_t)c->hidden, 1, err) ||
        alloc_floats(&s->h2, (size_t)n, (size_t)c->hidden, 1, err) ||
        (s->n_seq > 1 && (alloc_floats(&s->kb, (size_t)n, kv_dim, 1, err) ||
                          alloc_floats(&s->vb, (size_t)n, kv_dim, 1, err))))
        return -1;
    size_t n_exp = (size_t)av_stack_max_experts(s->st);
    if (n_exp) {
        free(s->moe_rows);
        s->moe_rows = malloc(sizeof(int) * (size_t)n);
        if (!s->moe_rows || alloc_floats(&s->moe_x, (size_t)n, (size_t)c->dim, 1, err) ||
            alloc_floats(&s->moe_y, (size_t)n, (size_t)c->dim, 1, err) ||
            alloc_floats(&s->moe_out, (size_t)n, (size_t)c->dim, 1, err) ||
            alloc_floats(&s->moe_p, (size_t)n, n_exp, 1, err))
            return s->moe_rows ? -1 : av_errf(err, "out of memory");
    }
    s->n_alloc = n;
    return 0;
}

#define KEPT_PANELS_MAX_CACHE ((size_t)2 << 30) /* bytes: the 1.1 B shape's cache of 32k tokens is 1.4 GB */

static int state_new(const av_model *m, int stack, int max_tokens, int n_seq, int n_threads, int layerwise,
                     av_state **out, av_err *err) {
    *out = NULL;
    if (stack < 0 || stack >= m->n_stacks) return av_errf(err, "the model has no stack %d", stack);
    if (n_seq <= 0) return av_errf(err, "internal error: a batch of %d sequences", n_seq);
    if (max_tokens <= 0) return av_errf(err, "empty input: nothing to run");
    if (max_tokens > m->max_seq_len)
        return av_errf(err, "input is %d tokens but the model's context window is %d", max_tokens,
                       m->max_seq_len);
    av_state *s = calloc(1, sizeof *s);
    if (!s) return av_errf(err, "out of memory");
    const av_stack *st = &m->stacks[stack];
    const av_stack_cfg *c = &st->cfg;
    s->m = m;
    s->st = st;
    s->max_tokens = max_tokens;
    s->n_seq = n_seq;
    s->n_threads = n_threads > 0 ? n_threads : m->n_threads > 0 ? m->n_threads : av_default_threads();
    /* an encoder (or a layer-by-layer run) needs a layer's keys only in that layer */
    s->cache_layers = c->causal && !layerwise ? st->n_layers : 1;
    size_t kv_dim = (size_t)c->n_kv_heads * (size_t)c->head_dim, wmax = largest_matrix(m, st);
    size_t cache_rows = (size_t)s->cache_layers * (size_t)n_seq;
    /* attention panels kept for generation (kernels.h av_attn_panels): a second copy of the cache while
     * generating, so only for caches of at most KEPT_PANELS_MAX_CACHE bytes (beyond, each step packs anew) */
    size_t cache_bytes = 2 * sizeof(float) * cache_rows * (size_t)max_tokens * kv_dim;
    if (s->cache_layers > 1 && cache_bytes <= KEPT_PANELS_MAX_CACHE &&
        !(s->panels = calloc(cache_rows, sizeof *s->panels))) {
        av_state_free(s);
        return av_errf(err, "out of memory");
    }
    if (alloc_floats(&s->k_cache, cache_rows, (size_t)max_tokens, kv_dim, err) ||
        alloc_floats(&s->v_cache, cache_rows, (size_t)max_tokens, kv_dim, err) ||
        alloc_floats(&s->scores, (size_t)s->n_threads, AV_ATTN_QUERY_BLOCK, (size_t)max_tokens, err) ||
        (wmax && alloc_floats(&s->wscratch, wmax, 1, 1, err)) ||
        (st->rel.table.data &&
         alloc_floats(&s->rel, (size_t)c->n_heads, 2 * (size_t)max_tokens - 1, 1, err))) {
        av_state_free(s);
        return -1;
    }
    if (s->rel) av_rel_pos_bias(st, max_tokens, s->rel);
    *out = s;
    return 0;
}

int av_state_new(const av_model *m, int stack, int max_tokens, int n_threads, av_state **out, av_err *err) {
    return state_new(m, stack, max_tokens, 1, n_threads, 0, out, err);
}

int av_state_new_batch(const av_model *m, int stack, int max_tokens, int n_seq, int n_threads, av_state **out,
                       av_err *err) {
    return state_new(m, stack, max_tokens, n_seq, n_threads, 0, out, err);
}

int av_state_new_layerwise(const av_model *m, int stack, int max_tokens, int n_threads, av_state **out,
                           av_err *err) {
    return state_new(m, stack, max_tokens, 1, n_threads, 1, out, err);
}

int av_state_attach(av_state *dec, const av_state *enc, av_err *err) {
    const av_stack *st = dec->st;
    const av_stack_cfg *c = &st->cfg;
    int S = enc->n_last;
    size_t kv_dim = (size_t)c->n_kv_heads * (size_t)c->head_dim;
    if (S <= 0 || enc->st->cfg.dim != c->dim || enc->n_seq != 1 || dec->n_seq != 1)
        return av_errf(err, "internal error: no encoder output to attend to");
    if (alloc_floats(&dec->cross_k, (size_t)st->n_layers, (size_t)S, kv_dim, err) ||
        alloc_floats(&dec->cross_v, (size_t)st->n_layers, (size_t)S, kv_dim, err) ||
        (S > dec->max_tokens &&
         alloc_floats(&dec->scores, (size_t)dec->n_threads, AV_ATTN_QUERY_BLOCK, (size_t)S, err)))
        return -1;
    dec->S = S;
    for (int l = 0; l < st->n_layers; l++) {
        const av_block *B = &st->blocks[l];
        av_linear_apply(dec->cross_k + (size_t)l * (size_t)S * kv_dim, enc->x, &B->cross.k, S, dec->wscratch,
                        dec->n_threads);
        av_linear_apply(dec->cross_v + (size_t)l * (size_t)S * kv_dim, enc->x, &B->cross.v, S, dec->wscratch,
                        dec->n_threads);
    }
    return 0;
}

/* ---- one block ---- */

/* A chunk: n rows at positions pos0.. of each of n_seq sequences (rows = n_seq * n, sequence-major), and
 * what the pass captures (one sequence only). pending: x still lacks the previous layer's feed-forward output
 * (in xb), added by this layer's input norm; defer: leave this layer's own to the next one likewise. */
typedef struct chunk {
    int n, pos0, n_seq, rows;
    const av_pass *p;
    int pending, defer;
} chunk;

/* Keeps src (n floats) in slot k of the state's tape, when a backward pass asked for it. */
static void keep(av_state *s, av_tape_slot k, const float *src, size_t n) {
    if (s->tape && k < AV_TAPE_COUNT && s->tape->buf[k]) memcpy(s->tape->buf[k], src, sizeof(float) * n);
}

/* out = norm(x) for rows of n values; the input goes to the tape's slot k. */
static void norm_rows(av_state *s, av_tape_slot k, av_norm_kind kind, const av_norm *nm, float *out,
                      const float *x, int rows, int n) {
    const av_stack_cfg *c = &s->st->cfg;
    keep(s, k, x, (size_t)rows * (size_t)n);
    av_norm_apply(kind, nm, c->eps, c->norm_offset, out, x, rows, n, s->n_threads);
}

/* Lazy traces: the chunk's rows (n, n_h*hs) into head-major (n_h, T, hs) at position pos0. */
static void store_heads(float *dst, const float *src, int n, int n_h, int hs, int pos0, int T) {
    for (int i = 0; i < n; i++)
        for (int h = 0; h < n_h; h++)
            memcpy(dst + ((size_t)h * (size_t)T + (size_t)(pos0 + i)) * (size_t)hs,
                   src + ((size_t)i * (size_t)n_h + (size_t)h) * (size_t)hs, sizeof(float) * (size_t)hs);
}

/* The sub-layer input: norm(x) into xb (pre-norm, the norm's tape slot k), or x itself (post-norm). */
static const float *sublayer_input(av_state *s, const av_norm *nm, av_tape_slot k, int rows) {
    const av_stack_cfg *c = &s->st->cfg;
    if (c->post_norm) return s->x;
    norm_rows(s, k, c->norm, nm, s->xb, s->x, rows, c->dim);
    return s->xb;
}

/* Rows [r0, r1) of x += xb (rows of dim values). */
static void add_rows(void *ctx, int tid, int64_t r0, int64_t r1) {
    const av_state *s = ctx;
    size_t dim = (size_t)s->st->cfg.dim;
    av_add_to(s->x + (size_t)r0 * dim, s->xb + (size_t)r0 * dim, (size_t)(r1 - r0) * dim);
}

/* x += out_norm(xb) (the sub-layer output, through its own norm when there is one), then the post-norm.
 * Tape slots: k for the post-norm, k + 1 for the output norm. */
static void residual(av_state *s, const av_norm *nm, const av_norm *out_norm, av_tape_slot k, int rows) {
    const av_stack_cfg *c = &s->st->cfg;
    if (out_norm->w.data) norm_rows(s, k + 1, c->norm, out_norm, s->xb, s->xb, rows, c->dim);
    av_parallel_for((int64_t)rows * c->dim > (1 << 16) ? s->n_threads : 1, rows, add_rows, s);
    if (c->post_norm) norm_rows(s, k, c->norm, nm, s->x, s->x, rows, c->dim);
}

/* Attention of the chunk's queries (s->q) over keys k / values v (n_k rows; batches: each sequence's own,
 * seq_stride floats apart) into s->att, capturing cap. */
static void attend(av_state *s, const av_block *B, int self, const float *k, const float *v,
                   size_t seq_stride, int n_k, av_attn_panels *panels, const chunk *ch, const av_capture *cap,
                   int l) {
    const av_stack_cfg *c = &s->st->cfg;
    int q_dim = c->n_heads * c->head_dim, kv_dim = c->n_kv_heads * c->head_dim;
    av_attn_args a = {.n_heads = c->n_heads,
                      .n_kv_heads = c->n_kv_heads,
                      .head_dim = c->head_dim,
                      .n_q = ch->n,
                      .n_k = n_k,
                      .q_stride = q_dim,
                      .k_stride = kv_dim,
                      .v_stride = kv_dim,
                      .out_stride = q_dim,
                      .scale = B->attn_scale,
                      .q_pos = ch->pos0};
    if (self) {
        a.softcap = B->attn_softcap;
        a.causal = c->causal;
        a.window = B->window;
        a.rel_bias = s->rel;
        a.rel_stride = 2 * s->max_tokens - 1;
        a.rel_zero = s->max_tokens - 1;
    }
    if (cap->attn && cap->attn[l]) {
        a.probs = cap->attn[l] + (size_t)ch->pos0 * (size_t)cap->n_key;
        a.probs_head_stride = (size_t)cap->T * (size_t)cap->n_key;
        a.probs_ld = cap->n_key;
        a.probs_zeroed = cap->zeroed;
        a.probs_sink = cap->sink;
    }
    if (cap->pool) a.pool = &cap->pool[l];         /* captures: one sequence (chunk_check) */
    int taped = self && s->tape && s->tape->probs; /* av_block_run: positions 0..n-1 of every sequence */
    if (taped)
        a.probs_head_stride = (size_t)ch->n * (size_t)n_k, a.probs_ld = n_k, a.probs_zeroed = 0,
        a.probs_sink = NULL;
    for (int b = 0; b < ch->n_seq; b++) {
        size_t rows = (size_t)b * (size_t)ch->n * (size_t)q_dim;
        a.q = s->q + rows;
        a.out = s->att + rows;
        a.k = k + (size_t)b * seq_stride;
        a.v = v + (size_t)b * seq_stride;
        a.panels = panels ? &panels[b] : NULL;
        if (taped) a.probs = s->tape->probs + (size_t)b * (size_t)c->n_heads * a.probs_head_stride;
        av_attention(&a, s->scores, s->n_threads);
    }
}

/* Block B's RoPE at a run of state s: its frequency table (or NULL: its base theta), scale and pairs. */
typedef struct rope_src {
    const float *freq;
    float theta, mscale;
    int pairs;
} rope_src;

static rope_src rope_source(const av_state *s, const av_block *B) {
    const av_stack_cfg *c = &s->st->cfg;
    const av_rope_freqs *rf = &B->rope_scaled;
    const float *freq = rf->freq_long && s->max_tokens > c->rope_long_from ? rf->freq_long : rf->freq;
    if (!freq) return (rope_src){NULL, B->rope_theta, 1.0f, c->head_dim / 2};
    return (rope_src){freq, 0.0f, rf->mscale, (c->rope_dims ? c->rope_dims : c->head_dim) / 2};
}

void av_block_rope(const av_state *s, const av_block *B, float *row, int n_h, int pos) {
    const av_stack_cfg *c = &s->st->cfg;
    rope_src r = rope_source(s, B);
    int half = c->rope == AV_ROPE_HALF;
    if (r.freq)
        av_rope_table(row, n_h, c->head_dim, 2 * r.pairs, pos, r.freq, r.mscale, half);
    else
        av_rope(row, n_h, c->head_dim, pos, r.theta, half);
}

/* The angles of positions [pos0, pos0 + n) for block B into s->rope_cs, unless it holds them already (the
 * layers of a stack mostly share their frequencies). 0, or -1 when out of memory (then rope_cs is NULL). */
static int rope_angles(av_state *s, const av_block *B, int pos0, int n) {
    rope_src r = rope_source(s, B);
    if (s->rope_cs && s->rope_freq == r.freq && s->rope_theta == r.theta && s->rope_mscale == r.mscale &&
        s->rope_pairs == r.pairs && s->rope_pos0 == pos0 && s->rope_n == n)
        return 0;
    size_t len = (size_t)n * 2 * (size_t)r.pairs;
    if (len > s->rope_cs_len) {
        free(s->rope_cs);
        s->rope_cs_len = 0;
        if (!(s->rope_cs = malloc(sizeof(float) * len))) return -1;
        s->rope_cs_len = len;
    }
    for (int i = 0; i < n; i++) {
        float *cs = s->rope_cs + (size_t)i * 2 * (size_t)r.pairs;
        av_rope_angles(pos0 + i, r.pairs, s->st->cfg.head_dim, r.theta, r.freq, r.mscale, cs, cs + r.pairs);
    }
    s->rope_freq = r.freq, s->rope_theta = r.theta, s->rope_mscale = r.mscale, s->rope_pairs = r.pairs;
    s->rope_pos0 = pos0, s->rope_n = n;
    return 0;
}

/* RoPE of rows of q or k, then (captures) their heads into the trace's head-major buffer. */
typedef struct rope_job {
    const av_state *s;
    const av_block *B;
    float *x; /* (rows, n_h * head_dim) */
    const chunk *ch;
    int n_h;
    const float *cs; /* (ch->n, 2, pairs) the angles of the chunk's positions (rope_angles), or NULL */
    float *dst;      /* captures (one sequence): (n_h, T, head_dim) at position ch->pos0, or NULL */
    int T;
} rope_job;

static void rope_rows(void *ctx, int tid, int64_t r0, int64_t r1) {
    const rope_job *j = ctx;
    const av_stack_cfg *c = &j->s->st->cfg;
    int hs = c->head_dim, half = c->rope == AV_ROPE_HALF, pairs = j->s->rope_pairs;
    size_t row = (size_t)j->n_h * (size_t)hs;
    for (int64_t r = r0; r < r1; r++) {
        float *x = j->x + (size_t)r * row;
        int i = (int)(r % j->ch->n);
        if (j->cs)
            av_rope_rotate(x, j->n_h, hs, pairs, j->cs + (size_t)i * 2 * (size_t)pairs,
                           j->cs + ((size_t)i * 2 + 1) * (size_t)pairs, half);
        else if (c->rope != AV_ROPE_NONE)
            av_block_rope(j->s, j->B, x, j->n_h, j->ch->pos0 + i);
        for (int h = 0; j->dst && h < j->n_h; h++)
            memcpy(j->dst + ((size_t)h * (size_t)j->T + (size_t)(j->ch->pos0 + i)) * (size_t)hs,
                   x + (size_t)h * (size_t)hs, sizeof(float) * (size_t)hs);
    }
}

/* Per-head RMS norm (input kept in tape slot k) and rotary positions of the chunk's rows of n_h heads (rows
 * of hs values, contiguous); captures then take the heads into dst (n_h, T, hs), or NULL. */
static void qk_positions(av_state *s, const av_block *B, const av_norm *nm, av_tape_slot k, float *x,
                         const chunk *ch, int n_h, float *dst, int T) {
    const av_stack_cfg *c = &s->st->cfg;
    int hs = c->head_dim;
    if (nm->w.data) norm_rows(s, k, AV_NORM_RMS, nm, x, x, ch->rows * n_h, hs);
    if (c->rope == AV_ROPE_NONE && !dst) return;
    int have = c->rope != AV_ROPE_NONE && rope_angles(s, B, ch->pos0, ch->n) == 0;
    rope_job j = {s, B, x, ch, n_h, have ? s->rope_cs : NULL, dst, T};
    av_parallel_for(ch->rows >= 16 ? s->n_threads : 1, ch->rows, rope_rows, &j);
}

/* Batches: the chunk's new keys or values (rows of kv_dim, sequence-major) into each sequence's cache. */
static void scatter_rows(const av_state *s, float *cache, const float *src, const chunk *ch, int kv_dim) {
    for (int b = 0; b < ch->n_seq; b++)
        memcpy(cache + ((size_t)b * (size_t)s->max_tokens + (size_t)ch->pos0) * (size_t)kv_dim,
               src + (size_t)b * (size_t)ch->n * (size_t)kv_dim,
               sizeof(float) * (size_t)ch->n * (size_t)kv_dim);
}

/* Self-attention of the chunk: q, and k/v into the cache rows pos0..; output (rows, dim) in s->xb. */
static int self_attention(av_state *s, const av_block *B, int l, const float *in, const chunk *ch,
                          av_err *err) {
    const av_stack_cfg *c = &s->st->cfg;
    int n = ch->n, rows = ch->rows, kv_dim = c->n_kv_heads * c->head_dim, nt = s->n_threads;
    int cl = s->cache_layers > 1 ? l : 0;
    size_t seq_stride = (size_t)s->max_tokens * (size_t)kv_dim;
    const av_capture *cap = &ch->p->self;
    float *kl = s->k_cache + (size_t)cl * (size_t)s->n_seq * seq_stride; /* (n_seq, max_tokens, kv_dim) */
    float *vl = s->v_cache + (size_t)cl * (size_t)s->n_seq * seq_stride;
    float *kc = s->kb ? s->kb : kl + (size_t)ch->pos0 * (size_t)kv_dim; /* the chunk's rows */
    float *vc = s->vb ? s->vb : vl + (size_t)ch->pos0 * (size_t)kv_dim;
    const av_attn_weights *A = &B->attn;
    av_matmul_many((float *[]){s->q, kc, vc}, in, (const av_tensor *[]){&A->q.w, &A->k.w, &A->v.w}, 3, rows,
                   s->wscratch, nt);
    if (A->q.b.data) av_add_bias(s->q, &A->q.b, rows, c->n_heads * c->head_dim); /* Qwen2: before RoPE */
    if (A->k.b.data) av_add_bias(kc, &A->k.b, rows, kv_dim);
    if (A->v.b.data) av_add_bias(vc, &A->v.b, rows, kv_dim);
    qk_positions(s, B, &B->q_norm, AV_TAPE_Q_NORM, s->q, ch, c->n_heads, cap->q ? cap->q[l] : NULL, cap->T);
    qk_positions(s, B, &B->k_norm, AV_TAPE_K_NORM, kc, ch, c->n_kv_heads, cap->k ? cap->k[l] : NULL,
                 cap->n_key);
    keep(s, AV_TAPE_Q, s->q, (size_t)rows * (size_t)c->n_heads * (size_t)c->head_dim);
    if (s->kb) {
        scatter_rows(s, kl, kc, ch, kv_dim);
        scatter_rows(s, vl, vc, ch, kv_dim);
    }
    av_attn_panels *panels = s->panels ? s->panels + (size_t)cl * (size_t)s->n_seq : NULL;
    for (int b = 0; panels && b < ch->n_seq; b++) /* rows from pos0 on are new: their panels are not kept */
        panels[b].n = panels[b].n < ch->pos0 ? panels[b].n : ch->pos0;
    attend(s, B, 1, kl, vl, seq_stride, ch->pos0 + n, panels, ch, cap, l);
    if (cap->vnorm && cap->vnorm[l]) {
        const float *gram = av_stack_vnorm_gram(s->st, l, nt, err);
        if (!gram || av_attn_vnorm(vc, kv_dim, gram, c->n_heads, c->n_kv_heads, c->head_dim, n, cap->vnorm[l],
                                   cap->T, ch->pos0, nt, err))
            return -1;
    }
    av_linear_apply(s->xb, s->att, &A->o, rows, s->wscratch, nt);
    return 0;
}

/* Cross-attention of the chunk over the attached encoder output; output (n, dim) in s->xb, zero for the
 * positions before cfg.cross_from (their probabilities are still computed and captured). */
static void cross_attention(av_state *s, const av_block *B, int l, const float *in, const chunk *ch) {
    const av_stack_cfg *c = &s->st->cfg;
    size_t kv = (size_t)l * (size_t)s->S * (size_t)c->n_kv_heads * (size_t)c->head_dim;
    const av_capture *cap = &ch->p->cross;
    av_linear_apply(s->q, in, &B->cross.q, ch->n, s->wscratch, s->n_threads);
    if (cap->q && cap->q[l]) store_heads(cap->q[l], s->q, ch->n, c->n_heads, c->head_dim, ch->pos0, cap->T);
    if (cap->k && cap->k[l] && ch->pos0 == 0)
        store_heads(cap->k[l], s->cross_k + kv, s->S, c->n_kv_heads, c->head_dim, 0, cap->n_key);
    attend(s, B, 0, s->cross_k + kv, s->cross_v + kv, 0, s->S, NULL, ch, cap, l);
    av_linear_apply(s->xb, s->att, &B->cross.o, ch->n, s->wscratch, s->n_threads);
    int skip = c->cross_from - ch->pos0; /* rows of this chunk before cross_from */
    if (skip > 0) memset(s->xb, 0, sizeof(float) * (size_t)(skip < ch->n ? skip : ch->n) * (size_t)c->dim);
}

void av_ffn_dense(av_state *s, const av_ffn *f, const float *in, int rows, float *out) {
    const av_stack_cfg *c = &s->st->cfg;
    size_t len = (size_t)rows * (size_t)c->hidden;
    int nt = s->n_threads;
    if (f->gate.w.data) { /* act(x W_gate) * (x W_up) */
        av_matmul_many((float *[]){s->h1, s->h2}, in, (const av_tensor *[]){&f->gate.w, &f->up.w}, 2, rows,
                       s->wscratch, nt);
        if (f->gate.b.data) av_add_bias(s->h1, &f->gate.b, rows, c->hidden);
        if (f->up.b.data) av_add_bias(s->h2, &f->up.b, rows, c->hidden);
        keep(s, AV_TAPE_GATE, s->h1, len);
        keep(s, AV_TAPE_UP, s->h2, len);
        if (c->act == AV_ACT_SILU) {
            av_swiglu(s->h1, s->h2, len, nt);
        } else {
            av_activate(s->h1, len, c->act);
            for (size_t i = 0; i < len; i++)
                s->h1[i] *= s->h2[i];
        }
    } else {
        av_linear_apply(s->h1, in, &f->up, rows, s->wscratch, nt);
        keep(s, AV_TAPE_UP, s->h1, len);
        av_activate(s->h1, len, c->act);
    }
    av_linear_apply(out, s->h1, &f->down, rows, s->wscratch, nt);
}

/* x += xb, then the feed-forward's input norm(x) into xb, in one pass over the rows (pre-norm blocks with no
 * output norm and no cross-attention between the two). */
static const float *residual_into_norm(av_state *s, const av_norm *nm, av_tape_slot k, int rows) {
    const av_stack_cfg *c = &s->st->cfg;
    av_norm_apply_add(c->norm, nm, c->eps, c->norm_offset, s->xb, s->x, s->xb, rows, c->dim, s->n_threads);
    keep(s, k, s->x, (size_t)rows * (size_t)c->dim); /* the norm's input, as norm_rows keeps it */
    return s->xb;
}

static int block_forward(av_state *s, const av_block *B, int l, const chunk *ch, av_err *err) {
    const float *in = ch->pending ? residual_into_norm(s, &B->attn_norm, AV_TAPE_ATTN_NORM, ch->rows)
                                  : sublayer_input(s, &B->attn_norm, AV_TAPE_ATTN_NORM, ch->rows);
    if (self_attention(s, B, l, in, ch, err)) return -1;
    int cross = B->cross.q.w.data && s->cross_k;
    if (!cross && !s->st->cfg.post_norm && !B->attn_out_norm.w.data) {
        in = residual_into_norm(s, &B->ffn_norm, AV_TAPE_FFN_NORM, ch->rows);
    } else {
        residual(s, &B->attn_norm, &B->attn_out_norm, AV_TAPE_ATTN_NORM, ch->rows);
        if (cross) {
            if (s->tape) return av_errf(err, "cross-attention has no backward pass");
            in = sublayer_input(s, &B->cross_norm, AV_TAPE_COUNT, ch->n);
            cross_attention(s, B, l, in, ch);
            residual(s, &B->cross_norm, &(av_norm){0}, AV_TAPE_COUNT, ch->n);
        }
        in = sublayer_input(s, &B->ffn_norm, AV_TAPE_FFN_NORM, ch->rows);
    }
    if (B->moe.router.w.data) { /* the mixture reads in (s->xb or s->x) until its last expert */
        keep(s, AV_TAPE_MOE_IN, in, (size_t)ch->rows * (size_t)s->st->cfg.dim);
        av_ffn_moe(s, &B->moe, in, ch->rows, s->moe_out);
        memcpy(s->xb, s->moe_out, sizeof(float) * (size_t)ch->rows * (size_t)s->st->cfg.dim);
    } else {
        av_ffn_dense(s, &B->ffn, in, ch->rows, s->xb);
    }
    if (!ch->defer) residual(s, &B->ffn_norm, &B->ffn_out_norm, AV_TAPE_FFN_NORM, ch->rows);
    return 0;
}

/* ---- a stack ---- */

static void keep_resid(const av_pass *p, int l, const float *x, size_t n) {
    if (p->resid && p->resid[l]) memcpy(p->resid[l], x, sizeof(float) * n);
}

/* Checks a chunk against the state's positions and the pass's capture buffers. */
static int chunk_check(const av_state *s, int n, int pos0, const av_pass *p, av_err *err) {
    if (pos0 < 0 || n <= 0 || pos0 + n > s->max_tokens)
        return av_errf(err, "positions %d..%d exceed the state's %d positions", pos0, pos0 + n - 1,
                       s->max_tokens);
    if (!s->st->cfg.causal && pos0 > 0)
        return av_errf(err, "internal error: an encoder runs its whole input at once");
    if ((p->self.T && p->self.T < pos0 + n) || (p->cross.T && p->cross.T < pos0 + n))
        return av_errf(err, "capture buffers hold %d positions, need %d", p->self.T, pos0 + n);
    if (s->n_seq > 1 &&
        (p->self.attn || p->self.q || p->self.vnorm || p->self.pool || p->logits || s->cross_k))
        return av_errf(err, "internal error: batches of sequences capture nothing");
    return 0;
}

static int run_layer(av_state *s, int l, int n, int pos0, const av_pass *p, int pending, int defer,
                     av_err *err) {
    if (chunk_check(s, n, pos0, p, err)) return -1;
    chunk ch = {n, pos0, s->n_seq, n * s->n_seq, p, pending, defer};
    keep_resid(p, l, s->x, (size_t)ch.rows * (size_t)s->st->cfg.dim);
    if (block_forward(s, &s->st->blocks[l], l, &ch, err)) return -1;
    if (p->on_layer) p->on_layer(p->on_layer_ctx, l, pos0, n);
    return 0;
}

int av_stack_run_layer(av_state *s, int l, int n, int pos0, const av_pass *p, av_err *err) {
    return run_layer(s, l, n, pos0, p, 0, 0, err);
}

/* Whether layer l's feed-forward residual add (x += xb) can wait for layer l + 1's input RMSNorm, fused into
 * it (av_rmsnorm_add: one pass over the rows and one hand-off to the threads less; the same bits): nothing
 * reads x between the two layers (no residual capture or tape; on_layer sees no state) and the blocks are
 * pre-norm with no norm on the feed-forward's output. */
static int defer_ok(const av_state *s, int l, const av_pass *p) {
    const av_stack_cfg *c = &s->st->cfg;
    return l + 1 < s->st->n_layers && c->norm == AV_NORM_RMS && !c->post_norm &&
           !s->st->blocks[l].ffn_out_norm.w.data && !s->tape && !p->resid;
}

void av_stack_final_norm(av_state *s, int n) {
    const av_stack *st = s->st;
    const av_stack_cfg *c = &st->cfg;
    if (st->final_norm.w.data)
        av_norm_apply(c->norm, &st->final_norm, c->eps, c->norm_offset, s->x, s->x, n * s->n_seq, c->dim,
                      s->n_threads);
    s->n_last = n;
}

int av_stack_run(av_state *s, int n, int pos0, const av_pass *p, av_err *err) {
    for (int l = 0, pending = 0; l < s->st->n_layers; l++) {
        int defer = defer_ok(s, l, p);
        if (run_layer(s, l, n, pos0, p, pending, defer, err)) return -1;
        pending = defer;
    }
    keep_resid(p, s->st->n_layers, s->x, (size_t)n * (size_t)s->n_seq * (size_t)s->st->cfg.dim);
    av_stack_final_norm(s, n);
    return 0;
}

int av_block_run(av_state *s, int l, int n, const av_pass *p, av_err *err) {
    static const av_pass none;
    if (!p) p = &none;
    if (l < 0 || l >= s->st->n_layers) return av_errf(err, "internal error: no block %d", l);
    return av_stack_run_layer(s, l, n, 0, p, err);
}

void av_state_copy_prefix(av_state *dst, int dst_seq, const av_state *src, int src_seq, int n_pos) {
    const av_stack_cfg *c = &dst->st->cfg;
    size_t kv_dim = (size_t)c->n_kv_heads * (size_t)c->head_dim;
    for (int l = 0; l < dst->cache_layers; l++) {
        size_t d = ((size_t)l * (size_t)dst->n_seq + (size_t)dst_seq) * (size_t)dst->max_tokens * kv_dim,
               o = ((size_t)l * (size_t)src->n_seq + (size_t)src_seq) * (size_t)src->max_tokens * kv_dim;
        memcpy(dst->k_cache + d, src->k_cache + o, sizeof(float) * (size_t)n_pos * kv_dim);
        memcpy(dst->v_cache + d, src->v_cache + o, sizeof(float) * (size_t)n_pos * kv_dim);
        if (dst->panels) dst->panels[(size_t)l * (size_t)dst->n_seq + (size_t)dst_seq].n = 0;
    }
}
