/* The reverse of embed.c: the gradient of a target's log-probability with respect to one stack output row,
 * through the output head (log-softmax, final soft-cap, projection, scale, BERT's transform), and the
 * gradient through the embedding norm back to the token rows. */
#include "forward.h"

#include <stdlib.h>
#include <string.h>

/* The BERT-style transform h = norm(act(x W_d + b_d)): dy (dim) -> dx (dim), recomputing z = x W_d + b_d. */
static int transform_grad(const av_model *m, av_state *s, const float *x, float *dy, float *dx, av_err *err) {
    const av_head *h = &m->head;
    const av_stack_cfg *c = &s->st->cfg;
    int dim = c->dim;
    float *z = malloc(sizeof(float) * 3 * (size_t)dim); /* z, act(z), norm weights: (dim) each */
    if (!z) return av_errf(err, "out of memory");
    float *a = z + dim, *nw = a + dim;
    av_linear_apply(z, x, &h->dense, 1, s->wscratch, 1);
    memcpy(a, z, sizeof(float) * (size_t)dim);
    av_activate(a, (size_t)dim, h->dense_act);
    av_dequantize_rows(&h->dense_norm.w, 0, 1, nw);
    av_layernorm_grad(dy, dy, a, nw, 1, 1, dim, c->eps, 0);
    av_activate_grad(dy, dy, z, (size_t)dim, 1, h->dense_act);
    av_matmul_grad(dx, dy, &h->dense.w, 1, s->wscratch, 0, 1);
    free(z);
    return 0;
}

enum { HEAD_GRAD_ROWS = 32 }; /* rows through the head at a time: (HEAD_GRAD_ROWS, n_out) logits */

/* Rows r0..r0+n of av_head_grad_rows. */
static int head_grad_chunk(const av_model *m, av_state *s, const float *x, const int32_t *tokens, int n,
                           float *dx, double *logp, av_err *err) {
    const av_head *h = &m->head;
    int dim = s->st->cfg.dim, V = h->n_out;
    float *logits =
        malloc(sizeof(float) * (2 * (size_t)V + (size_t)dim) * (size_t)n); /* logits, dlogits, dy */
    if (!logits) return av_errf(err, "out of memory");
    float *dl = logits + (size_t)n * (size_t)V, *dy = dl + (size_t)n * (size_t)V;
    int rc = av_head_logits(m, s, x, n, logits, err);
    for (int r = 0; rc == 0 && r < n; r++) {
        size_t o = (size_t)r * (size_t)V;
        double lp = av_log_softmax_grad(dl + o, logits + o, V, tokens[r]);
        if (logp) logp[r] = lp;
        if (h->softcap > 0) av_softcap_grad(dl + o, logits + o, (size_t)V, h->softcap);
    }
    if (rc == 0) av_matmul_grad(dy, dl, &h->out.w, n, s->wscratch, 0, s->n_threads); /* (n, dim) */
    for (size_t i = 0; rc == 0 && i < (size_t)n * (size_t)dim; i++)
        dy[i] *= h->scale;
    for (int r = 0; rc == 0 && r < n; r++) {
        size_t o = (size_t)r * (size_t)dim;
        if (h->dense.w.data)
            rc = transform_grad(m, s, x + o, dy + o, dx + o, err);
        else
            memcpy(dx + o, dy + o, sizeof(float) * (size_t)dim);
    }
    free(logits);
    return rc;
}

int av_head_grad_rows(const av_model *m, av_state *s, const float *x, const int32_t *tokens, int n, float *dx,
                      double *logp, av_err *err) {
    int dim = s->st->cfg.dim;
    for (int r = 0; r < n; r++)
        if (tokens[r] < 0 || tokens[r] >= m->head.n_out)
            return av_errf(err, "target token %d is outside the output vocabulary (%d)", tokens[r],
                           m->head.n_out);
    for (int r0 = 0; r0 < n; r0 += HEAD_GRAD_ROWS) {
        int nr = n - r0 < HEAD_GRAD_ROWS ? n - r0 : HEAD_GRAD_ROWS;
        size_t o = (size_t)r0 * (size_t)dim;
        if (head_grad_chunk(m, s, x + o, tokens + r0, nr, dx + o, logp ? logp + r0 : NULL, err)) return -1;
    }
    return 0;
}

int av_head_grad(const av_model *m, av_state *s, const float *x, int token, float *dx, double *logp,
                 av_err *err) {
    int32_t t = token;
    return av_head_grad_rows(m, s, x, &t, 1, dx, logp, err);
}

int av_embed_grad(const av_model *m, const av_stack *st, const float *pre, float *dx, int G, int n,
                  av_err *err) {
    const av_norm *nm = &st->emb.norm;
    int dim = st->cfg.dim;
    if (!nm->w.data) return 0;
    float *w = malloc(sizeof(float) * (size_t)dim); /* (dim) */
    if (!w) return av_errf(err, "out of memory");
    av_dequantize_rows(&nm->w, 0, 1, w);
    av_layernorm_grad(dx, dx, pre, w, G, n, dim, st->cfg.eps, 0);
    free(w);
    return 0;
}
