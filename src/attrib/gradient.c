/* Gradient attribution with respect to the input embeddings e_j (the token rows, tok[id] * scale): one
 * forward pass keeps the residual stream of every layer, the head gives d log p(target_i) / d (output row)
 * for every target, and the backward pass (model/forward_grad.c) carries all n_target gradients back to the
 * token rows at once. Then, per target i and source position j (Captum's definitions, reduced over the
 * embedding with the usual choices of inseq):
 *     saliency   || g_ij ||_2
 *     ixg        e_j . g_ij
 *     ig         (e_j - b_j) . sum_k w_k g_ij(b + alpha_k (e - b)), source rows only on the path
 *     attn-grad  sum over layers, heads and queries q of A_qj dlogp/dA_qj (Hao et al. 2021) */
#include "attrib.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void av_ig_points(av_ig_rule rule, int steps, double *alpha, double *w) {
    int n = steps;
    if (rule == AV_IG_GAUSS_LEGENDRE) { /* Legendre roots by Newton's method from Tricomi's guess */
        for (int i = 0; i < n; i++) {
            double z = cos(M_PI * (i + 0.75) / (n + 0.5)), pp = 1;
            for (int it = 0; it < 100; it++) {
                double p1 = 1, p2 = 0;
                for (int j = 1; j <= n; j++) {
                    double p3 = p2;
                    p2 = p1;
                    p1 = ((2.0 * j - 1.0) * z * p2 - (j - 1.0) * p3) / j;
                }
                pp = n * (z * p1 - p2) / (z * z - 1.0);
                double dz = p1 / pp;
                z -= dz;
                if (fabs(dz) < 1e-15) break;
            }
            alpha[n - 1 - i] = 0.5 * (z + 1.0); /* ascending, as numpy's leggauss */
            w[n - 1 - i] = 1.0 / ((1.0 - z * z) * pp * pp);
        }
        return;
    }
    for (int k = 0; k < n; k++) {
        w[k] = 1.0 / n;
        alpha[k] = rule == AV_IG_RIEMANN_LEFT    ? (double)k / n
                   : rule == AV_IG_RIEMANN_RIGHT ? (k + 1.0) / n
                                                 : (k + 0.5) / n;
        if (rule == AV_IG_RIEMANN_TRAPEZOID) {
            alpha[k] = n > 1 ? (double)k / (n - 1) : 0.5;
            w[k] = n > 1 ? (k == 0 || k == n - 1 ? 0.5 : 1.0) / (n - 1) : 1.0;
        }
    }
}

/* What gradient evaluations need: a state of B sequences side by side and their buffers. */
typedef struct grad_run {
    const av_attr_task *t;
    av_state *s;   /* n_seq B */
    int B, dim;    /* sequences per pass; model width */
    float **resid; /* (n_layers + 1) -> (B, T, dim) */
    float *dx;     /* (B, n_target, T, dim) */
    float *pre;    /* (T, dim) one sequence's embeddings before their norm */
    int32_t *ids;  /* (B, T) the ids of every sequence (positions and RoBERTa's pad count) */
} grad_run;

static void run_free(grad_run *r) {
    for (int l = 0; r->resid && l <= r->t->m->stacks[0].n_layers; l++)
        free(r->resid[l]);
    free(r->resid);
    free(r->dx);
    free(r->pre);
    free(r->ids);
    av_state_free(r->s);
    r->resid = NULL, r->dx = r->pre = NULL, r->ids = NULL, r->s = NULL;
}

/* Buffers and a state for B sequences (r->t set). */
static int run_init(grad_run *r, int B, av_err *err) {
    const av_attr_task *t = r->t;
    int L = t->m->stacks[0].n_layers;
    r->B = B;
    r->dim = t->m->stacks[0].cfg.dim;
    size_t plane = (size_t)t->T * (size_t)r->dim;
    r->resid = calloc((size_t)L + 1, sizeof *r->resid);
    r->dx = malloc(sizeof(float) * plane * (size_t)t->n_target * (size_t)B);
    r->pre = malloc(sizeof(float) * plane);
    r->ids = malloc(sizeof *r->ids * (size_t)t->T * (size_t)B);
    int ok = r->resid && r->dx && r->pre && r->ids;
    for (int l = 0; ok && l <= L; l++)
        ok = (r->resid[l] = malloc(sizeof(float) * plane * (size_t)B)) != NULL;
    for (int b = 0; ok && b < B; b++)
        memcpy(r->ids + (size_t)b * (size_t)t->T, t->ids, sizeof *r->ids * (size_t)t->T);
    if (ok && av_state_new_batch(t->m, 0, t->T, B, t->n_threads, &r->s, err) == 0) return 0;
    run_free(r);
    return ok ? -1
              : av_errf(err, "out of memory for the residual streams (%d layers x %d tokens x %d sequences)",
                        L, t->T, B);
}

/* The run set up for B sequences (a new state when the count changes). */
static int run_resize(grad_run *r, int B, av_err *err) {
    if (r->s && r->B == B) return 0;
    run_free(r);
    return run_init(r, B, err);
}

/* r->dx (B, n_target, T, dim) = d log p(target_i) / d token rows, at the token rows `rows` (B, T, dim) of the
 * run's B sequences; axg: optional (B, n_target, n_layers, n_heads, T). */
static int grad_at(grad_run *r, const float *rows, float *axg, av_err *err) {
    const av_attr_task *t = r->t;
    const av_stack *st = &t->m->stacks[0];
    size_t plane = (size_t)t->T * (size_t)r->dim, G = (size_t)t->n_target;
    av_pass p = {.resid = r->resid};
    if (av_forward_embeds(t->m, r->s, r->ids, rows, t->T, 0, &p, err)) return -1;
    memset(r->dx, 0, sizeof(float) * plane * G * (size_t)r->B);
    size_t n = G * (size_t)r->B, D = (size_t)r->dim;
    float *xg = malloc(sizeof(float) * 2 * n * D); /* (B, G, dim) the target rows, then their gradients */
    int32_t *tok = malloc(sizeof *tok * n);        /* (B, G) */
    int rc = xg && tok ? 0 : av_errf(err, "out of memory");
    for (size_t k = 0; rc == 0 && k < n; k++) { /* row k = (b, i) */
        memcpy(xg + k * D, r->s->x + (k / G) * plane + (size_t)t->rows[k % G] * D, sizeof(float) * D);
        tok[k] = t->targets[k % G];
    }
    if (rc == 0) rc = av_head_grad_rows(t->m, r->s, xg, tok, (int)n, xg + n * D, NULL, err);
    for (size_t k = 0; rc == 0 && k < n; k++)
        memcpy(r->dx + k * plane + (size_t)t->rows[k % G] * D, xg + (n + k) * D, sizeof(float) * D);
    free(xg), free(tok);
    if (rc || av_stack_backward(r->s, (const float *const *)r->resid, r->dx, t->n_target, t->T, axg, err))
        return -1;
    for (int b = 0; st->emb.norm.w.data && b < r->B; b++) {
        memcpy(r->pre, rows + (size_t)b * plane, sizeof(float) * plane);
        if (av_embed_positions(t->m, st, t->ids, t->T, 0, r->pre, err) ||
            av_embed_grad(t->m, st, r->pre, r->dx + (size_t)b * G * plane, t->n_target, t->T, err))
            return -1;
    }
    return 0;
}

/* log p of the targets at token rows `rows` (T, dim) (a forward pass only): out (n_target). */
static int logp_at(grad_run *r, const float *rows, float *out, av_err *err) {
    const av_attr_task *t = r->t;
    if (run_resize(r, 1, err)) return -1;
    float *x = malloc(sizeof(float) * (size_t)t->n_target * (size_t)r->dim); /* (n_target, dim) */
    int rc =
        x ? av_forward_embeds(t->m, r->s, t->ids, rows, t->T, 0, NULL, err) : av_errf(err, "out of memory");
    for (int i = 0; rc == 0 && i < t->n_target; i++)
        memcpy(x + (size_t)i * (size_t)r->dim, r->s->x + (size_t)t->rows[i] * (size_t)r->dim,
               sizeof(float) * (size_t)r->dim);
    if (rc == 0) rc = av_attr_target_logp(t, r->s, x, t->n_target, out, err);
    free(x);
    return rc;
}

/* Saliency, input x gradient and attention x gradient from one gradient at the input x (T, dim). */
static int plain_grads(grad_run *r, const float *x, unsigned mask, av_attr_grads *g, av_err *err) {
    const av_attr_task *t = r->t;
    const av_stack *st = &t->m->stacks[0];
    int L = st->n_layers, H = st->cfg.n_heads, S = t->S, T = t->T, dim = r->dim;
    float *axg = NULL; /* (n_target, L, H, T) */
    if (run_resize(r, 1, err)) return -1;
    if ((mask & 1u << AV_ATTR_ATTN_GRAD) &&
        !(axg = malloc(sizeof(float) * (size_t)t->n_target * (size_t)L * (size_t)H * (size_t)T)))
        return av_errf(err, "out of memory");
    int rc = grad_at(r, x, axg, err);
    for (int i = 0; rc == 0 && i < t->n_target; i++)
        for (int j = 0; j < S; j++) {
            const float *gj = r->dx + ((size_t)i * (size_t)T + (size_t)j) * (size_t)dim,
                        *ej = x + (size_t)j * dim;
            double ss = 0, dot = 0;
            for (int d = 0; d < dim; d++)
                ss += (double)gj[d] * gj[d], dot += (double)gj[d] * ej[d];
            size_t o = (size_t)i * (size_t)S + (size_t)j;
            if (g->out[AV_ATTR_SALIENCY]) g->out[AV_ATTR_SALIENCY][o] = (float)sqrt(ss);
            if (g->out[AV_ATTR_IXG]) g->out[AV_ATTR_IXG][o] = (float)dot;
            if (!axg) continue;
            double sum = 0;
            for (int lh = 0; lh < L * H; lh++) {
                float v = axg[((size_t)i * (size_t)L * (size_t)H + (size_t)lh) * (size_t)T + (size_t)j];
                g->axg_heads[((size_t)i * (size_t)L * (size_t)H + (size_t)lh) * (size_t)S + (size_t)j] = v;
                sum += v;
            }
            g->out[AV_ATTR_ATTN_GRAD][o] = (float)sum;
        }
    free(axg);
    return rc;
}

/* Integration points per pass: about BATCH_BYTES of residual streams, tapes, gradients and caches per
 * batch (the caller's max_batch caps it), spread evenly over the passes. */
static int ig_batch(const av_attr_task *t, int K) {
    const av_stack *st = &t->m->stacks[0];
    const av_stack_cfg *c = &st->cfg;
    size_t q = (size_t)c->n_heads * (size_t)c->head_dim, kv = (size_t)c->n_kv_heads * (size_t)c->head_dim,
           G = (size_t)t->n_target, T = (size_t)t->T;
    size_t row = (size_t)(st->n_layers + 4) * (size_t)c->dim +
                 2 * kv * (size_t)st->n_layers                                        /* streams, cache */
                 + 5 * (size_t)c->dim + 3 * q + 2 * kv + 4 * (size_t)c->hidden        /* state, tape */
                 + G * (2 * (size_t)c->dim + 2 * q + 2 * kv + 2 * (size_t)c->hidden); /* gradients */
    size_t per = 4 * T * (row + (size_t)c->n_heads * T);
    int cap = t->p->max_batch > 0 ? t->p->max_batch : (int)(((size_t)1 << 30) / (per ? per : 1));
    cap = cap < 1 ? 1 : cap > K ? K : cap;
    int passes = (K + cap - 1) / cap;
    return (K + passes - 1) / passes;
}

/* Integrated gradients along the straight path from the baseline rows b to x over the source rows, the
 * points in batches of sequences (one forward and one backward pass per batch). */
static int integrated(grad_run *r, const float *x, av_attr_grads *g, av_err *err) {
    const av_attr_task *t = r->t;
    int S = t->S, K = t->p->steps, B = K > 0 ? ig_batch(t, K) : 1;
    size_t src = (size_t)S * (size_t)r->dim, plane = (size_t)t->T * (size_t)r->dim;
    if (K < 1) return av_errf(err, "integrated gradients need at least 1 step, got %d", K);
    double *alpha = malloc(sizeof(double) * 2 * (size_t)K), *w = alpha ? alpha + K : NULL;
    float *b = calloc(src, sizeof(float)), *path = malloc(sizeof(float) * plane * (size_t)B);
    double *acc = calloc(src * (size_t)t->n_target, sizeof(double)); /* (n_target, S, dim) */
    int rc = alpha && b && path && acc ? 0 : av_errf(err, "out of memory");
    if (rc == 0 && t->p->baseline == AV_BASELINE_TOKEN) {
        int32_t *bid = malloc(sizeof *bid * (size_t)S);
        for (int j = 0; bid && j < S; j++)
            bid[j] = t->baseline_id;
        rc = bid ? av_embed_tokens(t->m, &t->m->stacks[0], bid, S, b, err) : av_errf(err, "out of memory");
        free(bid);
    }
    if (rc == 0) av_ig_points(t->p->ig_rule, K, alpha, w);
    for (int k0 = 0; rc == 0 && k0 < K; k0 += B) {
        int nb = K - k0 < B ? K - k0 : B;
        for (int q = 0; q < nb; q++) { /* (nb, T, dim): point k0 + q on the source rows, the rest as x */
            float *pq = path + (size_t)q * plane;
            memcpy(pq, x, sizeof(float) * plane);
            for (size_t e = 0; e < src; e++)
                pq[e] = (float)(b[e] + alpha[k0 + q] * ((double)x[e] - b[e]));
        }
        rc = run_resize(r, nb, err) || grad_at(r, path, NULL, err) ? -1 : 0;
        for (int q = 0; rc == 0 && q < nb; q++)
            for (int i = 0; i < t->n_target; i++) {
                const float *d = r->dx + ((size_t)q * (size_t)t->n_target + (size_t)i) * plane;
                for (size_t e = 0; e < src; e++)
                    acc[(size_t)i * src + e] += w[k0 + q] * d[e];
            }
        if (rc == 0 && t->p->progress) t->p->progress(t->p->progress_ctx, "ig", k0 + nb, K);
    }
    if (rc == 0) { /* f(baseline): the path's start */
        memcpy(path, x, sizeof(float) * plane);
        memcpy(path, b, sizeof(float) * src);
        rc = logp_at(r, path, g->ig_fb, err);
    }
    for (int i = 0; rc == 0 && i < t->n_target; i++) {
        double total = 0;
        for (int j = 0; j < S; j++) {
            double a = 0;
            for (int d = 0; d < r->dim; d++) {
                size_t e = (size_t)j * (size_t)r->dim + (size_t)d;
                a += ((double)x[e] - b[e]) * acc[(size_t)i * src + e];
            }
            g->out[AV_ATTR_IG][(size_t)i * (size_t)S + (size_t)j] = (float)a;
            total += a;
        }
        g->ig_delta[i] = (float)(total - ((double)t->logp[i] - g->ig_fb[i]));
    }
    free(alpha), free(b), free(path), free(acc);
    return rc;
}

int av_attr_gradients(const av_attr_task *t, unsigned mask, av_attr_grads *g, av_err *err) {
    grad_run r = {.t = t, .dim = t->m->stacks[0].cfg.dim};
    if (t->p->baseline == AV_BASELINE_REMOVE && (mask & 1u << AV_ATTR_IG))
        return av_errf(err, "integrated gradients need a baseline embedding (token or zero), not removal");
    float *x = malloc(sizeof(float) * (size_t)t->T * (size_t)r.dim); /* (T, dim) the input's token rows */
    int rc =
        x ? av_embed_tokens(t->m, &t->m->stacks[0], t->ids, t->T, x, err) : av_errf(err, "out of memory");
    unsigned plain = 1u << AV_ATTR_SALIENCY | 1u << AV_ATTR_IXG | 1u << AV_ATTR_ATTN_GRAD;
    if (rc == 0 && (mask & plain)) rc = plain_grads(&r, x, mask, g, err);
    if (rc == 0 && t->p->progress && (mask & plain)) t->p->progress(t->p->progress_ctx, "gradient", 1, 1);
    if (rc == 0 && (mask & 1u << AV_ATTR_IG)) rc = integrated(&r, x, g, err);
    free(x);
    run_free(&r);
    return rc;
}
