/* Inside the forward pass: the state of a run over one stack, shared by forward.c (the blocks) and embed.c
 * (embeddings in front of the stack, the output head after it). */
#ifndef AV_FORWARD_H
#define AV_FORWARD_H

#include "model.h"

/* What one block keeps for its backward pass when it runs with a tape (av_block_run; forward_grad.c reads
 * it): the input of every norm, the queries and the feed-forward's pre-activations, each (n, width), and
 * the attention probabilities. The keys and values stay in the state's cache. NULL buffers are not kept. */
typedef enum av_tape_slot {
    AV_TAPE_ATTN_NORM = 0, /* (n, dim) input of attn_norm (pre-norm: the block input; post-norm: x + attn) */
    AV_TAPE_ATTN_OUT_NORM, /* (n, dim) input of attn_out_norm (the attention output) */
    AV_TAPE_FFN_NORM,      /* (n, dim) */
    AV_TAPE_FFN_OUT_NORM,  /* (n, dim) */
    AV_TAPE_Q_NORM,        /* (n, q_dim) queries before the per-head q norm */
    AV_TAPE_K_NORM,        /* (n, kv_dim) keys before the per-head k norm */
    AV_TAPE_Q,             /* (n, q_dim) queries as the scores saw them (after q norm and RoPE) */
    AV_TAPE_GATE,          /* (n, hidden) gate pre-activations (gated feed-forward) */
    AV_TAPE_UP,            /* (n, hidden) up projections (the pre-activations when not gated) */
    AV_TAPE_MOE_IN,        /* (n, dim) input of a mixture of experts (its backward recomputes the rest) */
    AV_TAPE_COUNT
} av_tape_slot;

typedef struct av_tape {
    float *buf[AV_TAPE_COUNT]; /* batches: (n_seq, n, width), sequence-major as the rows of x */
    float *probs;              /* (n_seq, n_heads, n, n) attention probabilities */
} av_tape;

struct av_state {
    const av_model *m;
    const av_stack *st;
    int max_tokens, n_threads;
    int n_seq;        /* sequences side by side (av_state_new_batch); 1 otherwise */
    float *kb, *vb;   /* batches: (n_alloc, kv_dim) a chunk's new keys and values before they go to the
                         cache of their sequence; NULL for one sequence (written in place) */
    av_tape *tape;    /* when set, blocks keep what their backward pass needs (av_block_run) */
    int cache_layers; /* layers the cache holds: every layer of a decoder, one for an encoder */
    float *k_cache, *v_cache; /* (cache_layers, n_seq, max_tokens, kv_dim) post-RoPE keys, values */
    av_attn_panels
        *panels;              /* (cache_layers, n_seq) each cache as attention panels kept for generation's
                                 single queries (kernels.h), or NULL: a one-layer cache, reused by every layer */
    float *cross_k, *cross_v; /* (n_layers, S, kv_dim) of the attached encoder output, or NULL */
    int S;
    float *rel;     /* (n_heads, 2 * max_tokens - 1) relative-position bias by key - query (T5), or NULL */
    int n_alloc;    /* rows the chunk buffers hold */
    int n_last;     /* rows of the last run: x holds the stack's output for them */
    float *x;       /* (n_alloc, dim) residual stream (batches: n_alloc counts the rows of every sequence) */
    float *xb;      /* (n_alloc, max(dim, q_dim)) sub-layer input and output */
    float *q;       /* (n_alloc, q_dim) */
    float *att;     /* (n_alloc, q_dim) attention output, heads side by side */
    float *h1, *h2; /* (n_alloc, hidden) */
    float *moe_x,
        *moe_y;      /* (n_alloc, dim) a mixture's rows gathered for one expert, and its output; or NULL */
    float *moe_out;  /* (n_alloc, dim) the mixture's weighted sum */
    float *moe_p;    /* (n_alloc, n_experts) router probabilities */
    int *moe_rows;   /* (n_alloc) the rows routed to one expert */
    float *scores;   /* (n_threads, AV_ATTN_QUERY_BLOCK, max(max_tokens, S)) when not capturing */
    float *wscratch; /* (largest non-F32 matrix) dequantized weights, or NULL when all are F32 */
    /* RoPE angles of the last chunk's positions, reused by every layer with the same frequencies */
    float *rope_cs;         /* (rope_n, 2, rope_pairs): cos, then sin, of positions rope_pos0.. */
    size_t rope_cs_len;     /* floats allocated */
    const float *rope_freq; /* the key: the frequency table (or NULL and rope_theta), scale, positions */
    float rope_theta, rope_mscale;
    int rope_pairs, rope_pos0, rope_n;
};

/* Grows the per-chunk buffers (x, xb, ...) to n rows. */
int av_state_reserve(av_state *s, int n, av_err *err);
/* The dense feed-forward of rows: out (rows, dim) = f(in (rows, dim)), through s->h1/h2 (in and out may be
 * the same buffer); the gate and up activations go to the tape when there is one. */
void av_ffn_dense(av_state *s, const av_ffn *f, const float *in, int rows, float *out);
/* A mixture of experts on n rows (moe.c): out (n, dim), which must differ from in. */
void av_ffn_moe(av_state *s, const av_moe *moe, const float *in, int n, float *out);
/* Its backward (forward_grad.c): d (G, n, dim), in the gradient of the output, out that of the input in (n,
 * dim); recomputes the routing and each expert's activations from in. */
int av_ffn_moe_grad(av_state *s, const av_moe *moe, const float *in, float *d, int G, int n, av_err *err);
/* Rotates the n_h heads of one row of q or k (contiguous) to position pos with block B's RoPE: its frequency
 * table when it has one (scaled, partial rotary, longrope's long table for states past rope_long_from), else
 * its base. A negative pos applies the transpose (the backward pass). */
void av_block_rope(const av_state *s, const av_block *B, float *row, int n_h, int pos);
/* Runs the n rows of s->x (embedded) at positions pos0.. through every block and the final norm, in place.
 * Batches: n rows of each of the s->n_seq sequences (n_seq * n rows of x). */
int av_stack_run(av_state *s, int n, int pos0, const av_pass *p, av_err *err);
/* The same for block l alone (then p->on_layer), and the final norm alone. */
int av_stack_run_layer(av_state *s, int l, int n, int pos0, const av_pass *p, av_err *err);
void av_stack_final_norm(av_state *s, int n);
/* Runs the n rows of s->x (positions 0..n-1 of each of the s->n_seq sequences) through block l alone,
 * keeping s->tape when set; p (may be NULL) captures as av_stack_run does (one sequence). */
int av_block_run(av_state *s, int l, int n, const av_pass *p, av_err *err);
/* Copies positions [0, n_pos) of every layer's keys and values of sequence src_seq of src into sequence
 * dst_seq of dst (same model and stack): a shared prefix computed once. */
void av_state_copy_prefix(av_state *dst, int dst_seq, const av_state *src, int src_seq, int n_pos);

/* ---- embeddings and the head (embed.c) ---- */

/* x (n, dim) = the token rows of ids: tok[id] * scale, what Hugging Face calls inputs_embeds (attribution
 * perturbs and differentiates these). */
int av_embed_tokens(const av_model *m, const av_stack *st, const int32_t *ids, int n, float *x, av_err *err);
/* Adds the position, token-type and sinusoid rows of ids (positions pos0..) to x (n, dim), in place, without
 * the embedding norm. */
int av_embed_positions(const av_model *m, const av_stack *st, const int32_t *ids, int n, int pos0, float *x,
                       av_err *err);
/* Runs n rows (positions pos0..) of each of the s->n_seq sequences whose token rows are given: tok_rows
 * (n_seq, n, dim), ids (n_seq, n) for the positions (RoBERTa counts non-pad tokens). */
int av_forward_embeds(const av_model *m, av_state *s, const int32_t *ids, const float *tok_rows, int n,
                      int pos0, const av_pass *p, av_err *err);
/* logits (rows, n_out) of stack outputs x (rows, dim), x not in s->xb (the head's scratch). */
int av_head_logits(const av_model *m, av_state *s, const float *x, int rows, float *logits, av_err *err);

/* ---- backward (forward_grad.c, embed_grad.c): the reverse of the pass above, for attribution ---- */

/* Gradients of G copies through a stack run of n rows from position 0 of each of the s->n_seq sequences
 * (a batch: integrated gradients' points side by side, every linear layer's gradient over all their rows at
 * once). resid: the forward's residual streams (av_pass.resid, every entry, (n_seq, n, dim)). dx (n_seq, G,
 * n, dim): in, the gradient of the stack output (after the final norm); out, the gradient of its input (the
 * embeddings after their norm). The blocks are re-run one at a time from their stored inputs with a tape
 * (one layer's activations in memory at a time). attn_x_grad: optional (n_seq, G, n_layers, n_heads, n), sum
 * over queries of A * dL/dA per key. */
int av_stack_backward(av_state *s, const float *const *resid, float *dx, int G, int n, float *attn_x_grad,
                      av_err *err);
/* The gradient of log softmax(logits(x))[token] with respect to one stack output row x (dim), through the
 * head (transform, scale, soft-cap): dx (dim). *logp: the log-probability. */
int av_head_grad(const av_model *m, av_state *s, const float *x, int token, float *dx, double *logp,
                 av_err *err);
/* The same for n rows at once (one read of the head's weights per HEAD_GRAD_ROWS rows): x (n, dim) not in
 * s->xb, tokens (n), dx (n, dim), logp (n) or NULL. */
int av_head_grad_rows(const av_model *m, av_state *s, const float *x, const int32_t *tokens, int n, float *dx,
                      double *logp, av_err *err);
/* Through the embedding norm: dx (G, n, dim) from the gradient after it to the gradient of the token rows;
 * pre (n, dim): the embeddings before the norm (token rows plus positions). Nothing to do without a norm. */
int av_embed_grad(const av_model *m, const av_stack *st, const float *pre, float *dx, int G, int n,
                  av_err *err);

#endif
