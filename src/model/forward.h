/* Inside the forward pass: the state of a run over one stack, shared by forward.c (the blocks) and embed.c
 * (embeddings in front of the stack, the output head after it). */
#ifndef AV_FORWARD_H
#define AV_FORWARD_H

#include "model.h"

struct av_state {
    const av_model *m;
    const av_stack *st;
    int max_tokens, n_threads;
    int cache_layers;         /* layers the cache holds: every layer of a decoder, one for an encoder */
    float *k_cache, *v_cache; /* (cache_layers, max_tokens, kv_dim) post-RoPE keys, values */
    float *cross_k, *cross_v; /* (n_layers, S, kv_dim) of the attached encoder output, or NULL */
    int S;
    float *rel;      /* (n_heads, 2 * max_tokens - 1) relative-position bias by key - query (T5), or NULL */
    int n_alloc;     /* rows the chunk buffers hold */
    int n_last;      /* rows of the last run: x holds the stack's output for them */
    float *x;        /* (n_alloc, dim) residual stream */
    float *xb;       /* (n_alloc, max(dim, q_dim)) sub-layer input and output */
    float *q;        /* (n_alloc, q_dim) */
    float *att;      /* (n_alloc, q_dim) attention output, heads side by side */
    float *h1, *h2;  /* (n_alloc, hidden) */
    float *scores;   /* (n_threads, AV_ATTN_QUERY_BLOCK, max(max_tokens, S)) when not capturing */
    float *wscratch; /* (largest non-F32 matrix) dequantized weights, or NULL when all are F32 */
};

/* Grows the per-chunk buffers (x, xb, ...) to n rows. */
int av_state_reserve(av_state *s, int n, av_err *err);
/* Runs the n rows of s->x (embedded) at positions pos0.. through every block and the final norm, in place. */
int av_stack_run(av_state *s, int n, int pos0, const av_pass *p, av_err *err);
/* The same for block l alone (then p->on_layer), and the final norm alone. */
int av_stack_run_layer(av_state *s, int l, int n, int pos0, const av_pass *p, av_err *err);
void av_stack_final_norm(av_state *s, int n);

#endif
