/* The reverse of forward.c: gradients of G copies (one per attributed target) from the stack output back to
 * its input, through the final norm and every block in reverse, kernel by kernel (the kernels' *_grad.c
 * files). Only input gradients: attribution asks how the output moves with the input, never for weight
 * gradients.
 *
 * Memory plan (recompute, not store): the forward run keeps the residual stream entering each block
 * (av_pass.resid: (n_layers + 1) x n x dim floats); the backward re-runs block l alone from that input with
 * a tape (av_block_run), so only one block's activations are in memory at a time: the inputs of its norms,
 * its queries (keys and values stay in the state's cache), the gate and up pre-activations, and its
 * attention probabilities (n_heads x n x n). That costs one more forward pass of every block, against
 * n_layers times those activations kept.
 *
 * Batches (s->n_seq sequences, integrated gradients' points): the tape and the gradients hold every
 * sequence's rows one after another, each sequence's G copies together: (n_seq, G, n, width). The linear
 * layers' gradients run over all n_seq * G * n rows at once (one read of each weight); norms, activations and
 * attention, which depend on a sequence's own activations, run sequence by sequence.
 *
 * One block, pre-norm (post-norm moves each norm after its residual add, and its gradient with it):
 *     a = norm1(x0); o = out_norm1(attn(a)); x1 = x0 + o
 *     b = norm2(x1); f = out_norm2(W_d h), h = act(W_g b) * (W_u b) (or act(W_u b)); x2 = x1 + f */
#include "forward.h"

#include <stdlib.h>
#include <string.h>

/* Buffers of a backward pass over n rows of B sequences with G copies each. */
typedef struct grad_ws {
    av_tape tape;
    int B;       /* sequences (s->n_seq) */
    float *df;   /* (B, G, n, dim) a sub-layer's output gradient, then its input's */
    float *datt; /* (B, G, n, q_dim) gradient of the attention output (heads side by side) */
    float *dq;   /* (B, G, n, q_dim) */
    float *dk;   /* (B, G, n, kv_dim) */
    float *dv;   /* (B, G, n, kv_dim) */
    float *dh;   /* (B, G, n, hidden) */
    float *du;   /* (B, G, n, hidden) */
    float *nw;   /* (max(dim, head_dim)) f32 weights of a norm */
    float *axg;  /* (B, G, n_heads, n) one layer's attention x gradient, or NULL */
} grad_ws;

static void ws_free(grad_ws *w) {
    for (int k = 0; k < AV_TAPE_COUNT; k++)
        free(w->tape.buf[k]);
    float *bufs[] = {w->tape.probs, w->df, w->datt, w->dq, w->dk, w->dv, w->dh, w->du, w->nw, w->axg};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        free(bufs[i]);
}

static int ws_alloc(grad_ws *w, const av_stack *st, int B, int G, int n, int want_axg, av_err *err) {
    const av_stack_cfg *c = &st->cfg;
    size_t rows = (size_t)B * (size_t)n, grows = (size_t)G * rows,
           q_dim = (size_t)c->n_heads * (size_t)c->head_dim,
           kv_dim = (size_t)c->n_kv_heads * (size_t)c->head_dim, dim = (size_t)c->dim,
           hid = (size_t)c->hidden;
    size_t tape_w[AV_TAPE_COUNT] = {dim, dim, dim, dim, q_dim, kv_dim, q_dim, hid, hid, dim};
    int ok = 1;
    memset(w, 0, sizeof *w);
    w->B = B;
    for (int k = 0; k < AV_TAPE_COUNT; k++)
        ok &= (w->tape.buf[k] = malloc(sizeof(float) * rows * tape_w[k])) != NULL;
    w->tape.probs = calloc((size_t)c->n_heads * rows * (size_t)n, sizeof(float));
    w->df = malloc(sizeof(float) * grows * dim);
    w->datt = malloc(sizeof(float) * grows * q_dim);
    w->dq = malloc(sizeof(float) * grows * q_dim);
    w->dk = malloc(sizeof(float) * grows * kv_dim);
    w->dv = malloc(sizeof(float) * grows * kv_dim);
    w->dh = malloc(sizeof(float) * grows * hid);
    w->du = malloc(sizeof(float) * grows * hid);
    w->nw = malloc(sizeof(float) * (dim > (size_t)c->head_dim ? dim : (size_t)c->head_dim));
    w->axg = want_axg ? malloc(sizeof(float) * (size_t)G * (size_t)c->n_heads * rows) : NULL;
    ok &= w->tape.probs && w->df && w->datt && w->dq && w->dk && w->dv && w->dh && w->du && w->nw &&
          (!want_axg || w->axg);
    if (ok) return 0;
    ws_free(w);
    return av_errf(err, "out of memory for the backward pass (%d sequences of %d rows, %d gradients)", B, n,
                   G);
}

/* dx (B, G, n, width) = (or +=) the input gradient of norm nm at its inputs x (B, n, width), given dy (may
 * be dx when not accumulating). */
static void norm_grad(const av_state *s, grad_ws *w, av_norm_kind kind, const av_norm *nm, const float *x,
                      const float *dy, float *dx, int G, int n, int width, int acc) {
    const av_stack_cfg *c = &s->st->cfg;
    size_t plane = (size_t)n * (size_t)width, gplane = (size_t)G * plane;
    av_dequantize_rows(&nm->w, 0, 1, w->nw);
    for (int i = 0; i < width; i++)
        w->nw[i] += c->norm_offset;
    for (int b = 0; b < w->B; b++) {
        const float *xb = x + (size_t)b * plane, *dyb = dy + (size_t)b * gplane;
        float *dxb = dx + (size_t)b * gplane;
        if (kind == AV_NORM_RMS)
            av_rmsnorm_grad(dxb, dyb, xb, w->nw, G, n, width, c->eps, acc);
        else
            av_layernorm_grad(dxb, dyb, xb, w->nw, G, n, width, c->eps, acc);
    }
}

/* The gradient of a residual sub-layer, d (B, G, n, dim): in, that of its output; out, that of its input.
 * sub() turns w->df, the gradient of the sub-layer's output (before its output norm is undone here), into
 * the gradient of the sub-layer's input, in w->df. k: the tape slot of the sub-layer's norm (k + 1: of its
 * output norm). */
typedef int (*sub_grad_fn)(av_state *s, const av_block *B, int l, grad_ws *w, int G, int n, av_err *err);
static int residual_grad(av_state *s, const av_block *B, int l, grad_ws *w, float *d, int G, int n,
                         const av_norm *nm, const av_norm *out_norm, av_tape_slot k, sub_grad_fn sub,
                         av_err *err) {
    const av_stack_cfg *c = &s->st->cfg;
    size_t len = (size_t)w->B * (size_t)G * (size_t)n * (size_t)c->dim;
    if (c->post_norm) norm_grad(s, w, c->norm, nm, w->tape.buf[k], d, d, G, n, c->dim, 0);
    memcpy(w->df, d, sizeof(float) * len);
    if (out_norm->w.data)
        norm_grad(s, w, c->norm, out_norm, w->tape.buf[k + 1], w->df, w->df, G, n, c->dim, 0);
    if (sub(s, B, l, w, G, n, err)) return -1;
    if (c->post_norm) { /* the sub-layer read the block's stream itself */
        for (size_t i = 0; i < len; i++)
            d[i] += w->df[i];
        return 0;
    }
    norm_grad(s, w, c->norm, nm, w->tape.buf[k], w->df, d, G, n, c->dim, 1);
    return 0;
}

/* Feed-forward: w->df (B, G, n, dim) gradient of W_d h -> gradient of its input b. */
static int ffn_grad(av_state *s, const av_block *B, int l, grad_ws *w, int G, int n, av_err *err) {
    const av_stack_cfg *c = &s->st->cfg;
    const av_ffn *f = &B->ffn;
    size_t len = (size_t)n * (size_t)c->hidden, glen = (size_t)G * len; /* one sequence's tape, gradients */
    int rows = w->B * G * n, nt = s->n_threads;
    for (int b = 0; B->moe.router.w.data && b < w->B; b++) /* a mixture of experts: per sequence */
        if (av_ffn_moe_grad(s, &B->moe, w->tape.buf[AV_TAPE_MOE_IN] + (size_t)b * (size_t)n * (size_t)c->dim,
                            w->df + (size_t)b * (size_t)G * (size_t)n * (size_t)c->dim, G, n, err))
            return -1;
    if (B->moe.router.w.data) return 0;
    av_matmul_grad(w->dh, w->df, &f->down.w, rows, s->wscratch, 0, nt); /* dh (B, G, n, hidden) */
    for (int b = 0; b < w->B; b++) {
        float *dh = w->dh + (size_t)b * glen, *up = w->tape.buf[AV_TAPE_UP] + (size_t)b * len;
        if (f->gate.w.data)
            av_gated_grad(dh, w->du + (size_t)b * glen, dh, w->tape.buf[AV_TAPE_GATE] + (size_t)b * len, up,
                          len, G, c->act);
        else
            av_activate_grad(dh, dh, up, len, G, c->act);
    }
    if (f->gate.w.data) {
        av_matmul_grad(w->df, w->dh, &f->gate.w, rows, s->wscratch, 0, nt);
        av_matmul_grad(w->df, w->du, &f->up.w, rows, s->wscratch, 1, nt);
    } else {
        av_matmul_grad(w->df, w->dh, &f->up.w, rows, s->wscratch, 0, nt);
    }
    return 0;
}

/* Per-head q/k norm and RoPE backward of d (B, G, n, n_h heads) in place; pre: the tape's inputs of the
 * norm. */
static void qk_grad(av_state *s, const av_block *B, grad_ws *w, const av_norm *nm, const float *pre, float *d,
                    int G, int n, int n_h) {
    const av_stack_cfg *c = &s->st->cfg;
    int hs = c->head_dim;
    for (int r = 0; c->rope != AV_ROPE_NONE && r < w->B * G * n; r++) /* a rotation (times a scale): its
                                                                        transpose */
        av_block_rope(s, B, d + (size_t)r * (size_t)n_h * (size_t)hs, n_h, -(r % n));
    if (nm->w.data) norm_grad(s, w, AV_NORM_RMS, nm, pre, d, d, G, n * n_h, hs, 0);
}

/* The attention backward of sequence b of the batch: its queries, probabilities and cached keys and values.
 */
static int attn_grad_seq(av_state *s, const av_block *B, int l, grad_ws *w, int b, int G, int n) {
    const av_stack_cfg *c = &s->st->cfg;
    int q_dim = c->n_heads * c->head_dim, kv_dim = c->n_kv_heads * c->head_dim;
    size_t seq = (size_t)s->max_tokens * (size_t)kv_dim, /* one sequence's cache of one layer */
        cache = ((size_t)(s->cache_layers > 1 ? l : 0) * (size_t)s->n_seq + (size_t)b) * seq,
           nq = (size_t)G * (size_t)n * (size_t)q_dim, nk = (size_t)G * (size_t)n * (size_t)kv_dim;
    av_attn_args a = {.n_heads = c->n_heads,
                      .n_kv_heads = c->n_kv_heads,
                      .head_dim = c->head_dim,
                      .n_q = n,
                      .n_k = n,
                      .q = w->tape.buf[AV_TAPE_Q] + (size_t)b * (size_t)n * (size_t)q_dim,
                      .q_stride = q_dim,
                      .k = s->k_cache + cache,
                      .k_stride = kv_dim,
                      .v = s->v_cache + cache,
                      .v_stride = kv_dim,
                      .scale = B->attn_scale,
                      .softcap = B->attn_softcap,
                      .causal = c->causal,
                      .window = B->window,
                      .probs = w->tape.probs + (size_t)b * (size_t)c->n_heads * (size_t)n * (size_t)n,
                      .probs_head_stride = (size_t)n * (size_t)n,
                      .probs_ld = n};
    av_attn_grad_args g = {&a,
                           G,
                           w->datt + (size_t)b * nq,
                           w->dq + (size_t)b * nq,
                           w->dk + (size_t)b * nk,
                           w->dv + (size_t)b * nk,
                           w->axg ? w->axg + (size_t)b * (size_t)G * (size_t)c->n_heads * (size_t)n : NULL};
    return av_attention_grad(&g, s->n_threads);
}

/* Self-attention: w->df (B, G, n, dim) gradient of its output projection -> gradient of its input a. */
static int attn_grad(av_state *s, const av_block *B, int l, grad_ws *w, int G, int n, av_err *err) {
    const av_stack_cfg *c = &s->st->cfg;
    int rows = w->B * G * n, nt = s->n_threads;
    const av_attn_weights *A = &B->attn;
    av_matmul_grad(w->datt, w->df, &A->o.w, rows, s->wscratch, 0, nt); /* (B, G, n, q_dim) */
    for (int b = 0; b < w->B; b++)
        if (attn_grad_seq(s, B, l, w, b, G, n))
            return av_errf(err, "out of memory in the attention backward pass");
    qk_grad(s, B, w, &B->q_norm, w->tape.buf[AV_TAPE_Q_NORM], w->dq, G, n, c->n_heads);
    qk_grad(s, B, w, &B->k_norm, w->tape.buf[AV_TAPE_K_NORM], w->dk, G, n, c->n_kv_heads);
    av_matmul_grad(w->df, w->dq, &A->q.w, rows, s->wscratch, 0, nt);
    av_matmul_grad(w->df, w->dk, &A->k.w, rows, s->wscratch, 1, nt);
    av_matmul_grad(w->df, w->dv, &A->v.w, rows, s->wscratch, 1, nt);
    return 0;
}

/* Block l: re-run from its input resid (B, n, dim) with the tape, then d (B, G, n, dim) from its output's
 * gradient to its input's. axg_out: (B, G, n_layers, n_heads, n) or NULL. */
static int block_grad(av_state *s, int l, const float *resid, grad_ws *w, float *d, int G, int n,
                      float *axg_out, av_err *err) {
    const av_stack *st = s->st;
    const av_block *B = &st->blocks[l];
    memcpy(s->x, resid, sizeof(float) * (size_t)w->B * (size_t)n * (size_t)st->cfg.dim);
    s->tape = &w->tape;
    int rc = av_block_run(s, l, n, NULL, err);
    s->tape = NULL;
    if (rc ||
        residual_grad(s, B, l, w, d, G, n, &B->ffn_norm, &B->ffn_out_norm, AV_TAPE_FFN_NORM, ffn_grad, err) ||
        residual_grad(s, B, l, w, d, G, n, &B->attn_norm, &B->attn_out_norm, AV_TAPE_ATTN_NORM, attn_grad,
                      err))
        return -1;
    int H = st->cfg.n_heads;
    for (int c = 0; axg_out && c < w->B * G; c++)
        memcpy(axg_out + ((size_t)c * (size_t)st->n_layers + (size_t)l) * (size_t)H * (size_t)n,
               w->axg + (size_t)c * (size_t)H * (size_t)n, sizeof(float) * (size_t)H * (size_t)n);
    return 0;
}

int av_stack_backward(av_state *s, const float *const *resid, float *dx, int G, int n, float *attn_x_grad,
                      av_err *err) {
    const av_stack *st = s->st;
    const av_stack_cfg *c = &st->cfg;
    grad_ws w;
    if (s->cross_k || n > s->max_tokens || G <= 0)
        return av_errf(err, "internal error: the backward pass takes sequences without cross-attention");
    if (av_state_reserve(s, n * s->n_seq, err) || ws_alloc(&w, st, s->n_seq, G, n, attn_x_grad != NULL, err))
        return -1;
    int rc = 0;
    if (st->final_norm.w.data)
        norm_grad(s, &w, c->norm, &st->final_norm, resid[st->n_layers], dx, dx, G, n, c->dim, 0);
    for (int l = st->n_layers - 1; l >= 0 && rc == 0; l--)
        rc = block_grad(s, l, resid[l], &w, dx, G, n, attn_x_grad, err);
    ws_free(&w);
    return rc;
}
