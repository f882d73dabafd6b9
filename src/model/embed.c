/* In front of and after a stack (see model.h): token embeddings (learned, offset, RoBERTa-style or sinusoidal
 * positions, token types, scaling, norm), image patches with the class token, the output head, and the two
 * entry points that run them around av_stack_run: av_forward_ids and av_forward_pixels. */
#include "forward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Marian: [sin(p w_0) .. sin(p w_{half-1}) | cos(p w_0) .. cos(p w_{half-1})] added to row. */
static void add_sinusoid(float *row, int pos, int dim) {
    int half = dim / 2;
    for (int k = 0; k < half; k++) {
        double a = pos / pow(10000.0, 2.0 * k / dim);
        row[k] += (float)sin(a);
        row[half + k] += (float)cos(a);
    }
}

/* Adds row r of table t to x (dim); tmp: (dim) scratch. */
static void add_row(float *x, const av_tensor *t, int64_t r, float *tmp, int dim) {
    av_dequantize_rows(t, r, 1, tmp);
    for (int d = 0; d < dim; d++)
        x[d] += tmp[d];
}

/* Position-table row of token i (position pos0 + i) of ids: learned offset or RoBERTa counting. */
static int64_t pos_row(const av_model *m, const av_embed *e, const int32_t *ids, int i, int pos0) {
    if (!e->pos_from_pad) return pos0 + i + e->pos_offset;
    int nonpad = 0; /* encoders: the whole input is one chunk from position 0 */
    for (int k = 0; k <= i; k++)
        nonpad += ids[k] != m->pad_id;
    return ids[i] == m->pad_id ? m->pad_id : m->pad_id + nonpad;
}

int av_embed_tokens(const av_model *m, const av_stack *st, const int32_t *ids, int n, float *x, av_err *err) {
    const av_embed *e = &st->emb;
    int dim = st->cfg.dim;
    for (int i = 0; i < n; i++) {
        float *xi = x + (size_t)i * (size_t)dim;
        if (ids[i] < 0 || ids[i] >= m->vocab_size)
            return av_errf(err, "token id %d at position %d is outside the vocabulary (%d)", ids[i], i,
                           m->vocab_size);
        av_dequantize_rows(e->tok.data ? &e->tok : &m->tok_emb, ids[i], 1, xi);
        if (e->scale != 1.0f)
            for (int d = 0; d < dim; d++)
                xi[d] *= e->scale;
    }
    return 0;
}

/* av_embed_positions with token types: (n) ids or NULL (all 0; BERT sentence pairs: 0 = A, 1 = B). */
static int add_positions(const av_model *m, const av_stack *st, const int32_t *ids, int n, int pos0,
                         const uint8_t *types, float *x, av_err *err) {
    const av_embed *e = &st->emb;
    int dim = st->cfg.dim;
    float tmp_stack[1024], *tmp = dim <= 1024 ? tmp_stack : malloc(sizeof(float) * (size_t)dim); /* (dim) */
    if (!tmp) return av_errf(err, "out of memory");
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        float *xi = x + (size_t)i * (size_t)dim;
        if (e->sinusoidal) add_sinusoid(xi, pos0 + i, dim);
        int64_t p = pos_row(m, e, ids, i, pos0);
        if (e->pos.data && p >= e->pos.shape[0])
            rc = av_errf(err, "position %lld is past the model's %lld position embeddings", (long long)p,
                         (long long)e->pos.shape[0]);
        else if (e->pos.data)
            add_row(xi, &e->pos, p, tmp, dim);
        if (rc == 0 && types && types[i] && (!e->type.data || types[i] >= e->type.shape[0]))
            rc = av_errf(err, "token type %d at position %d: the model has %lld token types", types[i],
                         pos0 + i, e->type.data ? (long long)e->type.shape[0] : 0LL);
        if (rc == 0 && e->type.data) add_row(xi, &e->type, types ? types[i] : 0, tmp, dim);
    }
    if (tmp != tmp_stack) free(tmp);
    return rc;
}

int av_embed_positions(const av_model *m, const av_stack *st, const int32_t *ids, int n, int pos0, float *x,
                       av_err *err) {
    return add_positions(m, st, ids, n, pos0, NULL, x, err);
}

/* The embedding norm (BERT, BART) over rows of x. */
static void embed_norm(const av_stack *st, float *x, int rows) {
    if (st->emb.norm.w.data)
        av_norm_apply(AV_NORM_LAYER, &st->emb.norm, st->cfg.eps, 0, x, x, rows, st->cfg.dim, 1);
}

/* s->x rows = embeddings of ids[0..n) at positions pos0..; types: (n) token type ids or NULL (all 0). */
static int embed_ids(const av_model *m, av_state *s, const int32_t *ids, int n, int pos0,
                     const uint8_t *types, av_err *err) {
    if (av_embed_tokens(m, s->st, ids, n, s->x, err) ||
        add_positions(m, s->st, ids, n, pos0, types, s->x, err))
        return -1;
    embed_norm(s->st, s->x, n);
    return 0;
}

/* s->x = [prefix; patches W_p^T + b_p] + positions for pixels (channels, image_size, image_size): the prefix
 * is the class token (ViT) or the given row (t2i: the time token); the learned positions cover every token,
 * or the patches only when the table has one row per patch (t2i). */
static int embed_pixels(const av_model *m, av_state *s, const float *pixels, const float *prefix,
                        av_err *err) {
    const av_vision *v = &m->vision;
    int g = v->grid, p = v->patch_size, C = v->channels, S = v->image_size, dim = s->st->cfg.dim;
    int N = g * g, P = C * p * p;
    float *patches =
        malloc(sizeof(float) * (size_t)N * (size_t)P); /* (N, P): patch (gy, gx), values (c, ky, kx) */
    if (!patches) return av_errf(err, "out of memory");
    for (int gy = 0; gy < g; gy++)
        for (int gx = 0; gx < g; gx++)
            for (int c = 0; c < C; c++)
                for (int ky = 0; ky < p; ky++)
                    memcpy(patches + (size_t)(gy * g + gx) * (size_t)P + (size_t)(c * p + ky) * (size_t)p,
                           pixels + ((size_t)c * (size_t)S + (size_t)(gy * p + ky)) * (size_t)S +
                               (size_t)(gx * p),
                           sizeof(float) * (size_t)p);
    if (prefix)
        memcpy(s->x, prefix, sizeof(float) * (size_t)dim);
    else
        av_dequantize_rows(&v->cls_token, 0, 1, s->x);
    av_linear_apply(s->x + dim, patches, &v->patch, N, s->wscratch, s->n_threads);
    free(patches);
    int t0 = s->st->emb.pos.shape[0] == N; /* first token with a position row */
    for (int t = t0; t <= N; t++)
        add_row(s->x + (size_t)t * (size_t)dim, &s->st->emb.pos, t - t0, s->xb, dim);
    return 0;
}

/* logits (rows, n_out) of x (rows, dim): softcap(out(scale * h)), h = x or the transform's norm(act(dense)).
 */
int av_head_logits(const av_model *m, av_state *s, const float *x, int rows, float *logits, av_err *err) {
    const av_head *h = &m->head;
    const av_stack_cfg *c = &s->st->cfg;
    size_t len = (size_t)rows * (size_t)c->dim;
    if (!h->out.w.data) return av_errf(err, "this checkpoint has no output head (no logits)");
    if (h->dense.w.data || h->scale != 1.0f) {
        float *tmp = s->xb; /* (rows, dim): x points into s->x */
        if (h->dense.w.data) {
            av_linear_apply(tmp, x, &h->dense, rows, s->wscratch, s->n_threads);
            av_activate(tmp, len, h->dense_act);
            av_norm_apply(AV_NORM_LAYER, &h->dense_norm, c->eps, 0, tmp, tmp, rows, c->dim, 1);
        } else {
            memcpy(tmp, x, sizeof(float) * len);
        }
        for (size_t i = 0; i < len; i++)
            tmp[i] *= h->scale;
        x = tmp;
    }
    av_linear_apply(logits, x, &h->out, rows, s->wscratch, s->n_threads);
    for (size_t i = 0; h->softcap > 0 && i < (size_t)rows * (size_t)h->n_out; i++)
        logits[i] = h->softcap * tanhf(logits[i] / h->softcap);
    return 0;
}

static const av_pass no_pass;

int av_forward_ids(const av_model *m, av_state *s, const int32_t *ids, int n, int pos0, const av_pass *p,
                   av_err *err) {
    if (!p) p = &no_pass;
    if (n <= 0) return av_errf(err, "empty input: nothing to run");
    if (av_state_reserve(s, n, err) || embed_ids(m, s, ids, n, pos0, p->token_types, err) ||
        av_stack_run(s, n, pos0, p, err))
        return -1;
    if (!p->logits) return 0;
    int first = p->logits_all ? 0 : n - 1;
    return av_head_logits(m, s, s->x + (size_t)first * (size_t)s->st->cfg.dim, n - first, p->logits, err);
}

/* Copies rows [p0, p0 + n) between the whole residual stream xs (T, dim) and the state's chunk buffer. */
static void swap_rows(av_state *s, float *xs, int p0, int n, int to_state) {
    size_t dim = (size_t)s->st->cfg.dim, off = (size_t)p0 * dim, len = sizeof(float) * (size_t)n * dim;
    if (to_state)
        memcpy(s->x, xs + off, len);
    else
        memcpy(xs + off, s->x, len);
}

int av_forward_ids_layerwise(const av_model *m, av_state *s, const int32_t *ids, int n, int chunk,
                             const av_pass *p, av_err *err) {
    if (!p) p = &no_pass;
    if (n <= 0 || chunk <= 0) return av_errf(err, "empty input: nothing to run");
    if (!s->st->cfg.causal || s->cache_layers != 1)
        return av_errf(err,
                       "internal error: a layer-by-layer run needs a causal stack and a one-layer state");
    int dim = s->st->cfg.dim, rc = -1;
    float *xs =
        malloc(sizeof(float) * (size_t)n * (size_t)dim); /* (n, dim) the residual stream of all rows */
    if (!xs) return av_errf(err, "out of memory for the residual stream of %d tokens", n);
    if (av_state_reserve(s, chunk < n ? chunk : n, err)) goto done;
    for (int p0 = 0; p0 < n; p0 += chunk) {
        int k = n - p0 < chunk ? n - p0 : chunk;
        if (embed_ids(m, s, ids + p0, k, p0, p->token_types ? p->token_types + p0 : NULL, err)) goto done;
        swap_rows(s, xs, p0, k, 0);
    }
    for (int l = 0; l < s->st->n_layers; l++)
        for (int p0 = 0; p0 < n; p0 += chunk) {
            int k = n - p0 < chunk ? n - p0 : chunk;
            swap_rows(s, xs, p0, k, 1);
            if (av_stack_run_layer(s, l, k, p0, p, err)) goto done;
            swap_rows(s, xs, p0, k, 0);
        }
    for (int p0 = 0; p0 < n; p0 += chunk) { /* final norm and logits, chunk by chunk */
        int k = n - p0 < chunk ? n - p0 : chunk;
        swap_rows(s, xs, p0, k, 1);
        av_stack_final_norm(s, k);
        if (p->logits && av_head_logits(m, s, s->x, k, p->logits + (size_t)p0 * (size_t)m->head.n_out, err))
            goto done;
    }
    rc = 0;
done:
    free(xs);
    return rc;
}

int av_forward_pixels(const av_model *m, av_state *s, const float *pixels, const av_pass *p, av_err *err) {
    if (!p) p = &no_pass;
    int T = m->vision.grid * m->vision.grid + 1;
    if (m->family != AV_FAMILY_VIT) return av_errf(err, "%s is not an image model", m->name);
    if (av_state_reserve(s, T, err) || embed_pixels(m, s, pixels, NULL, err) || av_stack_run(s, T, 0, p, err))
        return -1;
    return p->logits ? av_head_logits(m, s, s->x, 1, p->logits, err) : 0; /* the class token */
}

int av_forward_embeds(const av_model *m, av_state *s, const int32_t *ids, const float *tok_rows, int n,
                      int pos0, const av_pass *p, av_err *err) {
    int dim = s->st->cfg.dim, rows = n * s->n_seq;
    if (!p) p = &no_pass;
    if (n <= 0) return av_errf(err, "empty input: nothing to run");
    if (av_state_reserve(s, rows, err)) return -1;
    memcpy(s->x, tok_rows, sizeof(float) * (size_t)rows * (size_t)dim);
    for (int b = 0; b < s->n_seq; b++)
        if (av_embed_positions(m, s->st, ids + (size_t)b * (size_t)n, n, pos0,
                               s->x + (size_t)b * (size_t)n * (size_t)dim, err))
            return -1;
    embed_norm(s->st, s->x, rows);
    return av_stack_run(s, n, pos0, p, err);
}

int av_forward_denoiser(const av_model *m, av_state *s, const float *x, const float *time_token,
                        const av_pass *p, float *out, av_err *err) {
    const av_vision *v = &m->vision;
    int g = v->grid, pp = v->patch_size, C = v->channels, S = v->image_size, N = g * g, P = C * pp * pp;
    if (!p) p = &no_pass;
    if (m->family != AV_FAMILY_T2I || s->st != &m->stacks[1] || !s->cross_k)
        return av_errf(err, "internal error: the denoiser runs on stack 1 attached to a text encoding");
    float *rows =
        malloc(sizeof(float) * (size_t)N * (size_t)P); /* (N, P): values (c, dy, dx) of each patch */
    if (!rows) return av_errf(err, "out of memory");
    if (av_state_reserve(s, N + 1, err) || embed_pixels(m, s, x, time_token, err) ||
        av_stack_run(s, N + 1, 0, p, err) || av_head_logits(m, s, s->x + s->st->cfg.dim, N, rows, err)) {
        free(rows);
        return -1;
    }
    for (int n = 0; n < N; n++) /* patch n = (gy, gx) back to the image */
        for (int c = 0; c < C; c++)
            for (int dy = 0; dy < pp; dy++)
                memcpy(out + ((size_t)c * (size_t)S + (size_t)((n / g) * pp + dy)) * (size_t)S +
                           (size_t)((n % g) * pp),
                       rows + (size_t)n * (size_t)P + (size_t)(c * pp + dy) * (size_t)pp,
                       sizeof(float) * (size_t)pp);
    free(rows);
    return 0;
}
