/* The mixture-of-experts feed-forward (block.h av_moe): Mixtral and Qwen3-MoE, as Hugging Face and llama.cpp
 * compute it. Per token: p = softmax(x W_router^T) over the experts, the n_used largest p (ties: the lower
 * expert), their weights p_e (divided by their sum with norm_topk), and out = sum_e w_e FFN_e(x). Each expert
 * runs once per chunk on the rows routed to it, gathered into a block, so its weights are read (and expanded
 * from their stored type) once per chunk. */
#include "forward.h"
#include "kernels/sample.h"

#include <stdlib.h>
#include <string.h>

enum { MOE_MAX_USED = 64 }; /* experts per token; the loaders refuse more */

/* One token's experts from its router probabilities p (n_experts): sel and w (n_used), largest probability
 * first (ties: the lower expert), the weights renormalized to sum 1 when the model asks for it. */
static void choose_experts(const av_moe *moe, const float *p, int32_t *sel, float *w) {
    av_top_k(p, moe->n_experts, moe->n_used, sel, w);
    float sum = 0;
    for (int k = 0; moe->norm_topk && k < moe->n_used; k++)
        sum += w[k];
    for (int k = 0; moe->norm_topk && k < moe->n_used; k++)
        w[k] /= sum;
}

void av_ffn_moe(av_state *s, const av_moe *moe, const float *in, int n, float *out) {
    int dim = s->st->cfg.dim, n_exp = moe->n_experts, n_used = moe->n_used;
    size_t row = sizeof(float) * (size_t)dim;
    int32_t sel[MOE_MAX_USED]; /* one token's experts, largest probability first (ties: the lower expert) */
    float w[MOE_MAX_USED];     /* and their weights */
    av_linear_apply(s->moe_p, in, &moe->router, n, s->wscratch, s->n_threads); /* (n, n_exp) logits */
    for (int i = 0; i < n; i++)
        av_softmax(s->moe_p + (size_t)i * (size_t)n_exp, n_exp);
    /* each token's weight per expert, 0 when not chosen, in place of its probabilities */
    for (int i = 0; i < n; i++) {
        float *p = s->moe_p + (size_t)i * (size_t)n_exp;
        choose_experts(moe, p, sel, w);
        memset(p, 0, sizeof(float) * (size_t)n_exp);
        for (int k = 0; k < n_used; k++)
            p[sel[k]] = w[k];
    }
    memset(out, 0, row * (size_t)n);
    for (int e = 0; e < n_exp; e++) {
        int n_e = 0;
        for (int i = 0; i < n; i++)
            if (s->moe_p[(size_t)i * (size_t)n_exp + (size_t)e] != 0.0f) {
                memcpy(s->moe_x + (size_t)n_e * (size_t)dim, in + (size_t)i * (size_t)dim, row);
                s->moe_rows[n_e++] = i;
            }
        if (!n_e) continue;
        av_ffn_dense(s, &moe->experts[e], s->moe_x, n_e, s->moe_y); /* (n_e, dim) */
        for (int r = 0; r < n_e; r++) {
            int i = s->moe_rows[r];
            float we = s->moe_p[(size_t)i * (size_t)n_exp + (size_t)e], *o = out + (size_t)i * (size_t)dim;
            const float *y = s->moe_y + (size_t)r * (size_t)dim;
            for (int d = 0; d < dim; d++)
                o[d] += we * y[d];
        }
    }
}

/* ---- backward (forward_grad.c): d (G, n, dim) from the output to the input, G gradient copies ----
 *
 * With p = softmax(z), z = x W_r^T, the chosen experts S and their weights w (p_e, or p_e / P with
 * P = sum over S of p), out = sum over S of w_e y_e(x), so
 *   dx   = sum over S of J_e^T (w_e dy)      (every chosen expert's feed-forward, in reverse)
 *        + dz W_r,  dz = p * (dp - p . dp)   (the router, through its softmax)
 *   dp_e = dw_e = dy . y_e without norm_topk, (dw_e - dw . w) / P with it; 0 outside S.
 * The choice S is locally constant (the gradient of a top-k is that of its values). Each expert re-runs
 * forward on its rows (keeping its gate and up pre-activations), then runs its backward over the G copies of
 * those rows at once. */

/* Buffers of a mixture's backward over n rows, G copies (sizes for the largest expert: n rows). */
typedef struct moe_ws {
    float *p;     /* (n, n_exp) router probabilities */
    float *w;     /* (n, n_used) weights of the chosen experts */
    int32_t *sel; /* (n, n_used) the chosen experts */
    float *y;     /* (n, n_used, dim) each chosen expert's output, for dw */
    float *xe;    /* (n, dim) one expert's rows gathered */
    float *ye;    /* (n, dim) its output */
    float *g, *u; /* (n, hidden) its gate and up pre-activations */
    float *dye;   /* (G, n, dim) gradient of its output rows, then of its input rows */
    float *dh;    /* (G, n, hidden) */
    float *du;    /* (G, n, hidden) */
    float *dx;    /* (G, n, dim) the input gradient being summed */
    float *dz;    /* (G, n, n_exp) router logits' gradient */
    int *rows;    /* (n) the rows routed to one expert, and (n) their slot k */
} moe_ws;

/* The float buffers of m with their sizes in floats (n_out: how many). */
static void moe_ws_bufs(moe_ws *m, const av_moe *moe, int dim, int hid, int G, int n, float ***p, size_t *len,
                        int *n_out) {
    size_t N = (size_t)n, D = (size_t)dim, H = (size_t)hid, GN = (size_t)G * N, E = (size_t)moe->n_experts,
           K = (size_t)moe->n_used;
    float **ps[] = {&m->p, &m->w,   &m->y,  &m->xe, &m->ye, &m->g,
                    &m->u, &m->dye, &m->dh, &m->du, &m->dx, &m->dz};
    size_t ls[] = {N * E, N * K,  N * K * D, N * D,  N * D,  N * H,
                   N * H, GN * D, GN * H,    GN * H, GN * D, GN * E};
    *n_out = (int)(sizeof ls / sizeof ls[0]);
    memcpy(p, ps, sizeof ps);
    memcpy(len, ls, sizeof ls);
}

static void moe_ws_free(moe_ws *m) {
    float **p[16];
    size_t len[16];
    int nb;
    moe_ws_bufs(m, &(av_moe){0}, 0, 0, 0, 0, p, len, &nb);
    for (int i = 0; i < nb; i++)
        free(*p[i]);
    free(m->sel);
    free(m->rows);
}

static int moe_ws_alloc(moe_ws *m, const av_moe *moe, int dim, int hid, int G, int n) {
    float **p[16];
    size_t len[16];
    int nb, ok = 1;
    memset(m, 0, sizeof *m);
    moe_ws_bufs(m, moe, dim, hid, G, n, p, len, &nb);
    for (int i = 0; i < nb; i++)
        ok &= (*p[i] = malloc(sizeof(float) * (len[i] ? len[i] : 1))) != NULL;
    m->sel = malloc(sizeof(int32_t) * (size_t)n * (size_t)moe->n_used);
    m->rows = malloc(sizeof(int) * 2 * (size_t)n);
    if (ok && m->sel && m->rows) return 0;
    moe_ws_free(m);
    return -1;
}

/* Expert e forward on its rows and backward over the G copies: m->y gets its outputs, m->dx its share. */
static void expert_grad(av_state *s, const av_moe *moe, int e, const float *in, const float *d, moe_ws *m,
                        int G, int n) {
    const av_stack_cfg *cfg = &s->st->cfg;
    int dim = cfg->dim, K = moe->n_used, n_e = 0, *slot = m->rows + n;
    size_t D = (size_t)dim;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < K; k++)
            if (m->sel[(size_t)i * (size_t)K + (size_t)k] == e) {
                memcpy(m->xe + (size_t)n_e * D, in + (size_t)i * D, sizeof(float) * D);
                slot[n_e] = k;
                m->rows[n_e++] = i;
            }
    if (!n_e) return;
    av_tape keep = {.buf = {[AV_TAPE_GATE] = m->g, [AV_TAPE_UP] = m->u}}, *outer = s->tape;
    s->tape = &keep; /* the dense feed-forward keeps the pre-activations here */
    av_ffn_dense(s, &moe->experts[e], m->xe, n_e, m->ye);
    s->tape = outer;
    for (int c = 0; c < G; c++) /* dye (G, n_e, dim) = w_e dy of the expert's rows */
        for (int r = 0; r < n_e; r++) {
            int i = m->rows[r];
            float we = m->w[(size_t)i * (size_t)K + (size_t)slot[r]];
            const float *dy = d + ((size_t)c * (size_t)n + (size_t)i) * D;
            float *o = m->dye + ((size_t)c * (size_t)n_e + (size_t)r) * D;
            for (int j = 0; j < dim; j++)
                o[j] = we * dy[j];
        }
    for (int r = 0; r < n_e; r++)
        memcpy(m->y + ((size_t)m->rows[r] * (size_t)K + (size_t)slot[r]) * D, m->ye + (size_t)r * D,
               sizeof(float) * D);
    const av_ffn *f = &moe->experts[e];
    int rows = G * n_e, nt = s->n_threads;
    av_matmul_grad(m->dh, m->dye, &f->down.w, rows, s->wscratch, 0, nt); /* (G, n_e, hidden) */
    av_gated_grad(m->dh, m->du, m->dh, m->g, m->u, (size_t)n_e * (size_t)cfg->hidden, G, cfg->act);
    av_matmul_grad(m->dye, m->dh, &f->gate.w, rows, s->wscratch, 0, nt); /* (G, n_e, dim) */
    av_matmul_grad(m->dye, m->du, &f->up.w, rows, s->wscratch, 1, nt);
    for (int c = 0; c < G; c++)
        for (int r = 0; r < n_e; r++) {
            const float *src = m->dye + ((size_t)c * (size_t)n_e + (size_t)r) * D;
            float *o = m->dx + ((size_t)c * (size_t)n + (size_t)m->rows[r]) * D;
            for (int j = 0; j < dim; j++)
                o[j] += src[j];
        }
}

/* m->dz (G, n, n_exp): the router logits' gradient from dy (G, n, dim) and the chosen outputs m->y. */
static void router_grad(const av_moe *moe, const float *d, moe_ws *m, int G, int n, int dim) {
    int E = moe->n_experts, K = moe->n_used;
    for (int c = 0; c < G; c++)
        for (int i = 0; i < n; i++) {
            const float *dy = d + ((size_t)c * (size_t)n + (size_t)i) * (size_t)dim,
                        *p = m->p + (size_t)i * E;
            const float *w = m->w + (size_t)i * (size_t)K;
            const int32_t *sel = m->sel + (size_t)i * (size_t)K;
            double dw[MOE_MAX_USED], dwsum = 0, psum = 0, pdp = 0;
            for (int k = 0; k < K; k++) {
                const float *y = m->y + ((size_t)i * (size_t)K + (size_t)k) * (size_t)dim;
                dw[k] = 0;
                for (int j = 0; j < dim; j++)
                    dw[k] += (double)dy[j] * y[j];
                dwsum += dw[k] * w[k];
                psum += p[sel[k]];
            }
            float *dz = m->dz + ((size_t)c * (size_t)n + (size_t)i) * (size_t)E;
            memset(dz, 0, sizeof(float) * (size_t)E);
            for (int k = 0; k < K; k++) { /* dp of the chosen experts, into dz for now */
                dz[sel[k]] = (float)(moe->norm_topk ? (dw[k] - dwsum) / psum : dw[k]);
                pdp += (double)p[sel[k]] * dz[sel[k]];
            }
            for (int e = 0; e < E; e++)
                dz[e] = (float)(p[e] * (dz[e] - pdp));
        }
}

int av_ffn_moe_grad(av_state *s, const av_moe *moe, const float *in, float *d, int G, int n, av_err *err) {
    const av_stack_cfg *c = &s->st->cfg;
    int dim = c->dim, E = moe->n_experts, K = moe->n_used;
    moe_ws m;
    if (moe_ws_alloc(&m, moe, dim, c->hidden, G, n))
        return av_errf(err, "out of memory for the mixture-of-experts backward pass (%d rows)", n);
    memset(m.dx, 0, sizeof(float) * (size_t)G * (size_t)n * (size_t)dim);
    av_linear_apply(m.p, in, &moe->router, n, s->wscratch, s->n_threads); /* (n, n_exp) logits */
    for (int i = 0; i < n; i++) {
        av_softmax(m.p + (size_t)i * (size_t)E, E);
        choose_experts(moe, m.p + (size_t)i * (size_t)E, m.sel + (size_t)i * (size_t)K,
                       m.w + (size_t)i * (size_t)K);
    }
    for (int e = 0; e < E; e++)
        expert_grad(s, moe, e, in, d, &m, G, n);
    router_grad(moe, d, &m, G, n, dim);
    av_matmul_grad(m.dx, m.dz, &moe->router.w, G * n, s->wscratch, 1, s->n_threads);
    memcpy(d, m.dx, sizeof(float) * (size_t)G * (size_t)n * (size_t)dim);
    moe_ws_free(&m);
    return 0;
}
