/* The one transformer block every non-Llama family runs (GPT-2, BERT/RoBERTa/DistilBERT, ViT, Marian/BART,
 * T5), and stacks of them. A block is: self-attention (through the shared kernel av_attention), optional
 * cross-attention over an encoder's output, and an MLP; each sub-layer is wrapped pre-norm
 * (x += f(norm(x))) or post-norm (x = norm(x + f(x))) with LayerNorm or RMSNorm, every linear layer has an
 * optional bias, and the MLP is act(x W_up) W_down or, gated, (act(x W_gate) * x W_up) W_down.
 * Families differ only in their embeddings and output heads (gpt2.c, bert.c, vit.c, encdec.c). */
#ifndef AV_BLOCK_H
#define AV_BLOCK_H

#include "kernels/kernels.h"
#include "model.h"

typedef enum av_norm_kind { AV_NORM_LAYER = 0, AV_NORM_RMS } av_norm_kind;

typedef struct av_norm {
    av_tensor w; /* (dim); data NULL: no norm */
    av_tensor b; /* (dim) or empty (RMSNorm, or a LayerNorm without bias) */
} av_norm;

typedef struct av_linear {
    av_tensor w; /* (out, in) as PyTorch nn.Linear stores it */
    av_tensor b; /* (out) or empty */
} av_linear;

typedef struct av_attn_weights {
    av_linear q, k, v; /* (n_heads*head_dim, dim) */
    av_linear o;       /* (dim, n_heads*head_dim) */
} av_attn_weights;

typedef struct av_block {
    av_norm attn_norm; /* pre-norm: before self-attention; post-norm: after its residual add */
    av_attn_weights attn;
    float attn_scale;      /* score scale of this layer: 1/sqrt(head_dim) for most, 1 for T5 */
    av_norm cross_norm;    /* decoder blocks only */
    av_attn_weights cross; /* cross.q.w.data NULL: no cross-attention */
    av_norm mlp_norm;
    av_linear up;   /* (hidden, dim) */
    av_linear gate; /* (hidden, dim) or empty: gated MLP */
    av_linear down; /* (dim, hidden) */
} av_block;

typedef struct av_stack_cfg {
    int dim, n_heads, head_dim, hidden; /* q_dim = n_heads * head_dim need not equal dim (T5) */
    av_norm_kind norm;
    float eps;
    int post_norm; /* 1: BERT, BART, Marian; 0: GPT-2, ViT, T5 */
    av_act act;
} av_stack_cfg;

typedef struct av_stack {
    av_stack_cfg cfg;
    int n_layers;
    av_block *blocks;   /* (n_layers) */
    av_norm final_norm; /* after the last block (GPT-2 ln_f, ViT norm, T5 final_layer_norm), or empty */
} av_stack;

/* What one pass over a stack attends to and captures. */
typedef struct av_stack_run {
    int causal;             /* query i sees keys 0..i (decoders) */
    const float *self_bias; /* (n_heads, T, T) additive score bias (T5 relative positions), or NULL */
    const float *mem;       /* (S, dim) encoder output for cross-attention, or NULL */
    int S;
    float **self_probs;  /* NULL, or (n_layers) pointers (entries may be NULL) to (n_heads, T, T) */
    float **cross_probs; /* NULL, or (n_layers) pointers to (n_heads, T, S) */
    float **vnorm;       /* NULL, or (n_layers) pointers to (n_heads, T): ||v_j W_o^h|| */
} av_stack_run;

/* Runs x (T, dim) through every block of st (and its final norm), in place. */
int av_stack_forward(const av_stack *st, float *x, int T, const av_stack_run *run, int n_threads,
                     av_err *err);

/* Allocates the blocks of a stack (zeroed). */
int av_stack_alloc(av_stack *st, int n_layers, av_err *err);
void av_stack_free(av_stack *st);
/* Validates every weight of st against its config; what names the stack in messages ("encoder"). */
int av_stack_check(const av_stack *st, const char *what, av_err *err);
/* Parameter count of a stack. */
int64_t av_stack_n_params(const av_stack *st);

/* ---- pieces the families use around the stacks ---- */

/* "gelu", "gelu_new", "relu", "silu", ... -> av_act; -1 for an unknown name. */
int av_act_parse(const char *name, av_act *out);
/* out (rows, dim) = norm(x); out may equal x. */
void av_norm_apply(av_norm_kind kind, const av_norm *n, float eps, float *out, const float *x, int rows,
                   int dim);
/* y (n, out) = x (n, in) W^T + b. Allocates a dequantization scratch for non-F32 weights when worth it. */
int av_linear_run(float *y, const float *x, const av_linear *l, int n, int n_threads, av_err *err);
/* Shape check of a weight: rows x cols (cols 0: a vector of rows); optional allows an empty tensor. */
int av_weight_check(const av_tensor *t, const char *name, int64_t rows, int64_t cols, int optional,
                    av_err *err);
int av_norm_check(const av_norm *n, const char *name, int dim, av_err *err);
int av_linear_check(const av_linear *l, const char *name, int64_t out, int64_t in, av_err *err);
/* A fused projection w (3*rows, in) [+ b (3*rows)] (rows: q, then k, then v) as three views, after checking
 * its shape against the config. */
int av_linear_split3(const av_tensor *w, const av_tensor *b, int64_t rows, int64_t in, av_linear out[3],
                     const char *name, av_err *err);
/* Rows of a 2-D tensor (or elements of a 1-D one) as a view: [r0, r0 + n). */
av_tensor av_tensor_rows(const av_tensor *t, int64_t r0, int64_t n);
/* The same data seen as (rows, cols); an empty tensor when the element counts differ. */
av_tensor av_tensor_view2d(const av_tensor *t, int64_t rows, int64_t cols);

/* Norm-based attention (Kobayashi et al. 2020): vnorm[h][t0 + i] = || v_i^h W_o[:, h] || for n rows of v.
 * v: (n, v_stride), kv head g at column g*head_dim; wo: (dim, n_heads*head_dim) of any dtype;
 * vnorm: (n_heads, T). Returns 0, or -1 with a message when memory runs out. */
int av_attn_vnorm(const float *v, int v_stride, const av_tensor *wo, int n_heads, int n_kv_heads,
                  int head_dim, int n, float *vnorm, int T, int t0, av_err *err);

#endif
