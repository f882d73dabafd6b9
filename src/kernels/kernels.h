/* Numerical kernels. Plain scalar code unless noted; the GEMMs go to OpenBLAS. */
#ifndef AV_KERNELS_H
#define AV_KERNELS_H

#include "core/dtype.h"

/* ---- weight types (quants.c; the formats in core/dtype.h) ---- */

/* Converts rows [row0, row0+n_rows) of a 2-D weight of any weight dtype (F32, F16, BF16, every quantized
 * type) to f32, bit for bit as ggml's dequantize_row_* does. dst: (n_rows, cols). A 1-D tensor is one row.
 * Rows are addressed with av_tensor_row_bytes, so a view of some rows (av_tensor_rows) works too. */
void av_dequantize_rows(const av_tensor *w, int64_t row0, int64_t n_rows, float *dst);
/* n values (whole blocks) of type t at src -> f32. dst: (n) */
void av_dequantize(av_dtype t, const void *src, float *dst, int64_t n);
/* 1 for the types av_quantize writes: F32, F16, BF16, Q8_0, Q4_0, Q4_K. */
int av_dtype_can_quantize(av_dtype t);
/* f32 -> type t for n values (whole blocks), the quantized types exactly as ggml's quantize_row_*_ref.
 * Returns -1 (nothing written) for a type av_dtype_can_quantize refuses or a partial block. */
int av_quantize(av_dtype t, const float *src, void *dst, int64_t n);
/* av_dequantize and av_quantize as one codec, for the writers of io/ (av_gguf_writer.codec,
 * av_st_writer.codec). */
extern const av_dtype_codec av_quant_codec;

/* Makes OpenBLAS single-threaded: attnviz splits work over its own threads (call once, before any GEMM). */
void av_kernels_init(void);

/* 1 when this process can use AMX-BF16 tiles: CPU features, OS state and permission, checked once; 0 when
 * absent or when the environment sets ATTNVIZ_GEMM=sgemm. */
int av_amx_ready(void);

/* y = x W^T with split-bf16 ("bf16x3") AMX tile products, f32 accumulation (see gemm_amx.c for the error
 * bound). Shapes as av_matmul. Returns 0, or -1 (nothing usable written) when AMX is unavailable or memory
 * runs out. */
enum { AV_AMX_MIN_ROWS = 16 }; /* av_matmul uses the AMX kernel from this many rows of x */
int av_matmul_bf16x3(float *y, const float *x, const av_tensor *w, int n, int n_threads);
/* The same for several weights (same `in`) against one x: x is split and packed once, and the threads share
 * all the weights' output features. y[i]: (n, w[i] rows). */
enum { AV_MATMUL_MANY_MAX = 4 };
int av_matmul_bf16x3_many(float *const *y, const float *x, const av_tensor *const *w, int count, int n,
                          int n_threads);

/* y = x W^T.  x: (n, in), W: (out, in) of any supported dtype, y: (n, out).
 * scratch: (out, in) floats used to dequantize non-F32 weights when n is large; may be NULL for F32. */
void av_matmul(float *y, const float *x, const av_tensor *w, int n, float *scratch, int n_threads);
/* y[i] = x W_i^T for count (<= AV_MATMUL_MANY_MAX) weights of the same input width, e.g. q/k/v or gate/up:
 * one packing of x on the AMX path, av_matmul per weight otherwise. */
void av_matmul_many(float *const *y, const float *x, const av_tensor *const *w, int count, int n,
                    float *scratch, int n_threads);

/* out[i] = x[i] / rms(x) * weight  for each of n rows of size dim (rows split over threads). weight: (dim).
 */
void av_rmsnorm(float *out, const float *x, const av_tensor *weight, int n, int dim, float eps,
                int n_threads);

/* In-place softmax over x[0..n). */
void av_softmax(float *x, int n);

/* Rotary embedding for one position on a vector of n_heads heads of head_dim. */
void av_rope(float *v, int n_heads, int head_dim, int pos, float theta, int half_style);

/* SwiGLU gate: g[i] = silu(g[i]) * u[i] for n values (split over threads). */
void av_swiglu(float *g, const float *u, size_t n, int n_threads);

/* LayerNorm of n rows of dim: out = (x - mean) / sqrt(var + eps) * weight + bias. weight, bias: (dim) of any
 * float dtype; bias may be NULL or empty (data NULL). out may equal x. */
void av_layernorm(float *out, const float *x, const av_tensor *weight, const av_tensor *bias, int n, int dim,
                  float eps);

/* Element-wise activations of the MLPs (names as in Hugging Face configs, see av_act_parse in model/block.c).
 */
typedef enum av_act {
    AV_ACT_GELU = 0,   /* exact: 0.5 x (1 + erf(x / sqrt 2))            "gelu" */
    AV_ACT_GELU_TANH,  /* tanh approximation                             "gelu_new", "gelu_pytorch_tanh" */
    AV_ACT_RELU,       /*                                                "relu" */
    AV_ACT_SILU,       /* x sigmoid(x)                                   "silu", "swish" */
    AV_ACT_QUICK_GELU, /* x sigmoid(1.702 x)                             "quick_gelu" */
} av_act;

/* In-place activation of n values. */
void av_activate(float *x, size_t n, av_act act);

/* y[r][c] += b[c] for n rows of cols values; b: (cols) of any float dtype. */
void av_add_bias(float *y, const av_tensor *b, int n, int cols);

/* ---- attention ---- */

enum { AV_ATTN_QUERY_BLOCK = 128 }; /* query rows per scratch block when not capturing */

typedef struct av_attn_args {
    int n_heads, n_kv_heads, head_dim; /* query head h reads kv head h / (n_heads / n_kv_heads) */
    int n_q, n_k;                      /* query rows, key rows */
    const float *q;
    int q_stride; /* (n_q, q_stride): head h at column h*head_dim */
    const float *k;
    int k_stride; /* (n_k, k_stride): kv head g at column g*head_dim */
    const float *v;
    int v_stride; /* (n_k, v_stride) */
    float *out;
    int out_stride;           /* (n_q, out_stride): head h at column h*head_dim */
    float scale;              /* score scale, usually 1/sqrt(head_dim) */
    float softcap;            /* > 0: scores = softcap * tanh(scores / softcap) (Gemma 2), first */
    int q_pos;                /* position of query row 0; the keys sit at positions 0..n_k-1 */
    int causal;               /* the query at position p sees keys 0..p; else all n_k keys */
    int window;               /* > 0 (causal only): a query sees at most the last `window` keys */
    const float *rel_bias;    /* optional (n_heads, rel_stride): the score of query position p and key
                                 k gets rel_bias[h * rel_stride + rel_zero + k - p] (T5 buckets) */
    int rel_stride, rel_zero; /* rel_zero >= the last query position, rel_zero + n_k <= rel_stride */
    const uint8_t *key_mask;  /* optional (n_k): 0 = padding key, never attended */
    float *probs;             /* optional capture: head h rows at probs + h*probs_head_stride */
    size_t probs_head_stride;
    int probs_ld;     /* row stride of the capture (>= n_k) */
    int probs_zeroed; /* 1: the capture starts all zero; keys past a block's reach are not written */
    const struct av_attn_pool *pool; /* optional: pooled overview of every head's probabilities */
} av_attn_args;

/* A pooled overview of whole attention matrices (n_query x n_key) of n_heads heads, accumulated block by
 * block as the rows are computed: cell (r, c) covers queries [r*n_query/rows, (r+1)*n_query/rows) and keys
 * [c*n_key/cols, (c+1)*n_key/cols) (integer division: the cells of av_trace_attn_tile). max receives the
 * largest probability of the cell, sum the sum of its probabilities (both start at 0). */
typedef struct av_attn_pool {
    float *max, *sum; /* (n_heads, rows, cols) */
    int rows, cols, n_query, n_key;
} av_attn_pool;

/* Adds query rows [q0, q0 + nr) of head h to the pool: probs (nr, ld), keys [0, n_keys) of each row (keys
 * past n_keys are 0). Rows of one head must come from one thread at a time. */
void av_attn_pool_rows(const av_attn_pool *p, int h, int q0, int nr, const float *probs, int ld, int n_keys);

/* Runs attention for all heads; scratch: (n_threads, AV_ATTN_QUERY_BLOCK, n_k) floats, used when probs is
 * NULL. Memory is linear in n_k without capture. */
void av_attention(const av_attn_args *a, float *scratch, int n_threads);
/* The probabilities of query rows [r0, r0 + nr) of head h alone (v, out and probs of a are not used): scores,
 * soft-capping, bias, masks, softmax, into probs (nr rows of ld floats). Returns how many keys were written
 * per row: those the block's last row can see (entries a row cannot see are 0); later keys are untouched.
 * av_attention computes its probabilities with this function; lazy traces recompute rows with it. */
int av_attention_probs(const av_attn_args *a, int h, int r0, int nr, float *probs, int ld);

void av_quantize_q8_0(const float *x, av_block_q8_0 *out, size_t n); /* n % 32 == 0 */

#endif
