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

int av_head_grad(const av_model *m, av_state *s, const float *x, int token, float *dx, double *logp,
                 av_err *err) {
    const av_head *h = &m->head;
    int dim = s->st->cfg.dim;
    if (token < 0 || token >= h->n_out)
        return av_errf(err, "target token %d is outside the output vocabulary (%d)", token, h->n_out);
    float *logits = malloc(sizeof(float) * (2 * (size_t)h->n_out + (size_t)dim)); /* logits, dlogits, dy */
    if (!logits) return av_errf(err, "out of memory");
    float *dl = logits + h->n_out, *dy = dl + h->n_out;
    int rc = av_head_logits(m, s, x, 1, logits, err);
    if (rc == 0) {
        *logp = av_log_softmax_grad(dl, logits, h->n_out, token);
        if (h->softcap > 0) av_softcap_grad(dl, logits, (size_t)h->n_out, h->softcap);
        av_matmul_grad(dy, dl, &h->out.w, 1, s->wscratch, 0, s->n_threads); /* (dim) */
        for (int i = 0; i < dim; i++)
            dy[i] *= h->scale;
        if (h->dense.w.data)
            rc = transform_grad(m, s, x, dy, dx, err);
        else
            memcpy(dx, dy, sizeof(float) * (size_t)dim);
    }
    free(logits);
    return rc;
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
