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

/* ---- GEMM paths (gemm_cpu.c): which kernels run the products ----
 * scalar: the plain reference micro-kernel; avx2 / avx512: the vector micro-kernels of the same driver
 * (gemm.c); amx: the split-bf16 tile kernel for prompt products against 16/8-bit weights, avx512 for the
 * rest; sgemm: OpenBLAS everywhere. The default is the fastest this CPU and OS support; ATTNVIZ_GEMM=<name>
 * forces one (benchmarks, tests). */
typedef enum av_gemm_path {
    AV_GEMM_SCALAR = 0,
    AV_GEMM_AVX2,
    AV_GEMM_AVX512,
    AV_GEMM_AMX,
    AV_GEMM_SGEMM,
    AV_GEMM_PATH_COUNT
} av_gemm_path;

const char *av_gemm_path_name(av_gemm_path p);            /* "scalar", "avx2", "avx512", "amx", "sgemm" */
int av_gemm_path_parse(const char *s, av_gemm_path *out); /* 0, or -1 for an unknown name */
int av_gemm_path_supported(av_gemm_path p);               /* 1 when this CPU and OS can run it */
av_gemm_path av_gemm_path_get(void);                      /* the path in use */
int av_gemm_path_set(av_gemm_path p);                     /* 0, or -1 (unchanged) when not supported */

/* 1 when this process can use AMX-BF16 tiles: CPU features, OS state and permission, checked once. */
int av_amx_ready(void);

/* 1 when the CPU's vector gathers are fast enough to fetch scattered block scales (Intel's), 0 where a
 * 16-lane gather costs more than converting each scale where it is used (AMD's Zen): the AVX-512
 * matrix-vector kernels fetch their scales as it says (docs/BENCHMARKS.md, "Scales by gather on Intel, in
 * place on AMD (session 38)"). av_fast_gathers_set forces the answer (0 or 1; -1: the CPU's again), for
 * tests. */
int av_fast_gathers(void);
void av_fast_gathers_set(int fast);

/* C (m, n) = alpha op(A) op(B) + beta C, row-major f32 like cblas_sgemm(CblasRowMajor, ...): op(A) (m, k) is
 * A (m, k) with row stride lda, or A^T for A (k, m) when trans_a; op(B) (k, n) is B (k, n), or B^T for B (n,
 * k) when trans_b. beta == 0 never reads C. Runs on the path's micro-kernel (OpenBLAS on the sgemm path),
 * each output one f32 accumulation chain over k; splits columns over n_threads when the product is large. */
void av_gemm_f32(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int64_t lda,
                 const float *b, int64_t ldb, float beta, float *c, int64_t ldc, int n_threads);
/* C (n, n) = A^T A + beta C for A (k, n), rows lda apart (the Gram matrix of A's columns), single-threaded:
 * the same bits as av_gemm_f32(1, 0, n, n, k, 1, a, lda, a, lda, beta, c, ldc, 1), at a fraction of its cost
 * for small n (no packing buffers per call; tiles below the diagonal mirrored, not computed). */
void av_gram_f32(int n, int k, const float *a, int64_t lda, float beta, float *c, int64_t ldc);
/* The same for n_heads column blocks of n columns side by side in rows [r0, r0 + k) of w (F32 or F16: read in
 * place, F16 converted exactly), from block h0: C_h (n, n) at c + (h - h0) n^2 = W_h^T W_h + beta C_h, W_h =
 * columns [h n, (h + 1) n) (the value norms' per-head Gram matrices of W_o's rows), each head's rows
 * converted 512 at a time into one small f32 block that the micro-kernel reads as both operands (no packing,
 * no copy of w). The bits of av_gram_f32 on the same values. -1 (nothing written) for other dtypes and on the
 * sgemm path (or out of memory): the caller converts the rows to f32 and uses av_gram_f32. */
int av_gram_heads(const av_tensor *w, int64_t r0, int k, int h0, int n_heads, int n, float beta, float *c);

/* y = x W^T with split-bf16 ("bf16x3") AMX tile products, f32 accumulation (see gemm_amx.c for the error
 * bound). Shapes as av_matmul. Returns 0, or -1 (nothing usable written) when AMX is unavailable or memory
 * runs out. */
/* av_matmul uses the AMX kernel from this many rows of x and weight values (out x in, all weights of a call)
 */
enum { AV_AMX_MIN_ROWS = 16, AV_AMX_MIN_WEIGHTS = 1 << 16 };
int av_matmul_bf16x3(float *y, const float *x, const av_tensor *w, int n, int n_threads);
/* The same for several weights (same `in`) against one x: x is split and packed once, and the threads share
 * all the weights' output features. y[i]: (n, w[i] rows). */
enum { AV_MATMUL_MANY_MAX = 4 };
int av_matmul_bf16x3_many(float *const *y, const float *x, const av_tensor *const *w, int count, int n,
                          int n_threads);

/* y = x W^T.  x: (n, in), W: (out, in) of any supported dtype, y: (n, out). Up to AV_GEMV_MAX_ROWS rows of x
 * (token-by-token generation) run as matrix-vector products, more on the GEMM path (av_gemm_path_get).
 * scratch: (out, in) floats used by the sgemm path to dequantize non-F32 weights; may be NULL. */
enum { AV_GEMV_MAX_ROWS = 7 };
void av_matmul(float *y, const float *x, const av_tensor *w, int n, float *scratch, int n_threads);
/* y[i] = x W_i^T for count (<= AV_MATMUL_MANY_MAX) weights of the same input width, e.g. q/k/v or gate/up:
 * one packing of x on the AMX path, av_matmul per weight otherwise. */
void av_matmul_many(float *const *y, const float *x, const av_tensor *const *w, int count, int n,
                    float *scratch, int n_threads);

/* out[i] = x[i] / rms(x) * weight  for each of n rows of size dim (rows split over threads). weight: (dim).
 */
void av_rmsnorm(float *out, const float *x, const av_tensor *weight, int n, int dim, float eps,
                int n_threads);
/* x[i] += y[i] for n values (8 at a time). */
void av_add_to(float *x, const float *y, size_t n);
/* x += add, then out = av_rmsnorm(x), row by row in one pass (a residual add and the next norm: the same bits
 * as the two apart). out may be add. */
void av_rmsnorm_add(float *out, float *x, const float *add, const av_tensor *weight, int n, int dim,
                    float eps, int n_threads);

/* In-place softmax over x[0..n), and its three passes: the largest value (-inf for none); x[i] =
 * exp(x[i] - mx) for values <= a finite mx, returning their sum; x[i] *= s. */
void av_softmax(float *x, int n);
float av_max_value(const float *x, int n);
float av_exp_shift_sum(float *x, int n, float mx);
void av_scale(float *x, int n, float s);
/* av_exp_shift_sum(x, n, mx) when x[n0..n) already hold the exponentials, as one av_exp_shift_sum call over
 * x[n0..n) with the same mx left them (n0 a multiple of 16: each value had the same formula as in one call
 * over x[0..n)): exps x[0..n0) and returns the sum of all n in av_exp_shift_sum's order, bit for bit. */
float av_exp_shift_sum_from(float *x, int n0, int n, float mx);
/* Its 16-lane pieces and SwiGLU's (ops_avx512.c, AVX-512 only): each handles whole 16-value chunks from the
 * start of its range and returns the index where it stopped. max: *mx in, max(*mx, x[0..i)) out; exp_sum:
 * x[k] = exp(x[k] - mx), added into the 8 partial sums in the 8-lane order; scale: x[k] *= s; swiglu: as
 * av_swiglu. */
int av_max_avx512(const float *x, int n, float *mx);
int av_exp_sum_avx512(float *x, int n, float mx, float sum8[8]);
int av_scale_avx512(float *x, int n, float s);
int64_t av_swiglu_avx512(float *g, const float *u, int64_t i0, int64_t i1);

/* Rotary embedding for one position on a vector of n_heads heads of head_dim. */
void av_rope(float *v, int n_heads, int head_dim, int pos, float theta, int half_style);
/* The same with the inverse frequencies given (freq: (rot_dims/2)), on the first rot_dims values of each head
 * (partial rotary; pairs (i, i + rot_dims/2) or (2i, 2i+1)), cos and sin scaled by mscale. */
void av_rope_table(float *v, int n_heads, int head_dim, int rot_dims, int pos, const float *freq,
                   float mscale, int half_style);
/* The two halves of both: cos and sin of the n_pairs angles at position pos (freq[i] * pos times mscale when
 * freq is given, else pos / theta^(2i / head_dim)), and the rotation of pairs [0, n_pairs) of each head by
 * them. Forward passes compute the angles of a chunk's positions once and rotate every row of q and k of
 * every layer with them (the same bits as av_rope / av_rope_table). */
void av_rope_angles(int pos, int n_pairs, int head_dim, float theta, const float *freq, float mscale,
                    float *c, float *s);
void av_rope_rotate(float *v, int n_heads, int head_dim, int n_pairs, const float *c, const float *s,
                    int half_style);

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

enum { AV_ATTN_QUERY_BLOCK = 128 }; /* query rows per block (scratch, capture) */

/* Where captured rows go when not straight into the capture's memory (a trace written past the page cache,
 * trace/capture.c): consecutive rows of a head, as many whole blocks of AV_ATTN_QUERY_BLOCK rows of probs_ld
 * floats as a buffer holds (max_floats, at least one block), are computed in a buffer from take(), whole (0
 * past the keys a row sees), then handed to put() with dst, their place in the capture (an address of it,
 * never dereferenced by put), and n, their floats. */
typedef struct av_probs_sink {
    float *(*take)(void *ctx);
    void (*put)(void *ctx, float *rows, const float *dst, size_t n);
    void *ctx;
    size_t max_floats;
} av_probs_sink;

/* One cache's keys and values as av_attention_stream's panels, kept between its calls so that each step of
 * token-by-token generation packs only its new key: keys [0, n) of the cache, packed for `kernel` (the GEMM
 * path's micro-kernel when they were), room for cap keys. The owner zeroes it to start, lowers n to at most
 * p before it changes cache rows from p on, and frees panels. */
typedef struct av_attn_panels {
    float *panels; /* (n_kv_heads, cap / NR, head_dim, NR) key panels, then (n_kv_heads, ceil(head_dim / NR),
                      cap, NR) value panels */
    const void *kernel;
    int cap, n;
} av_attn_panels;

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
    const av_probs_sink *probs_sink; /* optional: the capture's rows go through it (probs_zeroed ignored) */
    const struct av_attn_pool *pool; /* optional: pooled overview of every head's probabilities */
    av_attn_panels *panels; /* optional: k and v's panels kept between calls (a single query uses them) */
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
enum { AV_ATTN_POOL_MAX_COLS = 4096 }; /* the most cells a side the capture asks for */
/* One query row's cells while av_attention_stream computes it, each (pool cols) against its own reference
 * ref: the largest exp(score - ref) of the cell's keys so far and their sum. ref is the row's running maximum
 * when the cell last took keys (-inf before: max and sum 0). */
typedef struct av_attn_pool_row {
    float *max, *sum, *ref;
} av_attn_pool_row;
/* The cells [0, n) of a row that hold its keys [0, n_keys) (n_keys >= 1). */
int av_attn_pool_cells(const av_attn_pool *p, int n_keys);
/* The pool's cell bounds: lo[c] = c * n_key / cols, the first key of cell c, for c in [0, cols]. */
void av_attn_pool_bounds(const av_attn_pool *p, int *lo);
/* Keys [k0, k0 + n) of a row into its cells: x[0..n) their exp(score - m), m the row's running maximum
 * (>= every ref); lo the bounds. Cells against a smaller reference are brought to m first. Each cell's part
 * is summed in 8 lanes (its values 8t + k into lane k), the lanes added k and k + 4, then k and k + 2, then
 * 0 and 1, then the values past the last 8 in order: the same bits on every path. */
void av_attn_pool_add_tile(const av_attn_pool *p, const int *lo, const av_attn_pool_row *row, const float *x,
                           int k0, int n, float m);
/* Adds query row q of head h to the pool from its cells [0, n_cells), m its largest score and inv 1 / the
 * sum of exp(score - m) over its keys. row->ref is overwritten. */
void av_attn_pool_add_row(const av_attn_pool *p, int h, int q, const av_attn_pool_row *row, int n_cells,
                          float m, float inv);

/* Runs attention for all heads. It streams over tiles of keys (av_attention_stream); scratch: (n_threads,
 * AV_ATTN_QUERY_BLOCK, n_k) floats, used when that path cannot run (no micro-kernel, out of memory). Memory
 * is linear in n_k without capture. */
void av_attention(const av_attn_args *a, float *scratch, int n_threads);
/* Query rows [0, n_q) of head h in blocks of AV_ATTN_QUERY_BLOCK rows, in order: fn(ctx, h, r0, nr, rows),
 * with rows where the block's captured rows are computed (probs_ld apart; NULL without a capture): in place,
 * or in a buffer of the sink that takes as many consecutive blocks as it holds and is handed over full. */
typedef void (*av_attn_block_fn)(void *ctx, int h, int r0, int nr, float *rows);
void av_attn_head_blocks(const av_attn_args *a, int h, av_attn_block_fn fn, void *ctx);
/* The streamed attention of a (attention_stream.c): outputs, the pooled overview and the captured
 * probabilities, exact softmax with a running maximum; -1 (nothing done) when the GEMM path has no
 * micro-kernel or memory for the packed keys and values is short. */
int av_attention_stream(const av_attn_args *a, int n_threads);
/* Keys visible to query row i of a: [0, n). */
int av_attn_visible_keys(const av_attn_args *a, int i);
/* Soft-capping, the relative-position bias and the key masks of head h, query row i on the scores of keys
 * [k0, k1) (row[0] is key k0). */
void av_attn_mask_scores(const av_attn_args *a, int h, int i, float *row, int k0, int k1);
/* The probabilities of query rows [r0, r0 + nr) of head h alone (v, out and probs of a are not used): scores,
 * soft-capping, bias, masks, softmax, into probs (nr rows of ld floats). Returns how many keys were written
 * per row: those the block's last row can see (entries a row cannot see are 0); later keys are untouched.
 * av_attention computes its probabilities with this function; lazy traces recompute rows with it. */
int av_attention_probs(const av_attn_args *a, int h, int r0, int nr, float *probs, int ld);

void av_quantize_q8_0(const float *x, av_block_q8_0 *out, size_t n); /* n % 32 == 0 */

/* ---- backward: gradients with respect to inputs (ops_grad.c, matmul_grad.c, attention_grad.c) ----
 * The reverse of the kernels above, for attribution (no weight gradients). A backward pass carries G
 * gradient copies (one per attributed target) through the same activations: a gradient dy (G, n, dim) goes
 * with activations x (n, dim), row r of copy c with row r of x. accumulate: dx += instead of dx =. */

/* dx (n, in) = dy (n, out) W (out, in): the input gradient of y = x W^T. W of any dtype; scratch: (out, in)
 * floats for non-F32 weights. n counts every row of every copy. */
void av_matmul_grad(float *dx, const float *dy, const av_tensor *w, int n, float *scratch, int accumulate,
                    int n_threads);
/* Norms: x (n, dim) the forward input, w (dim) the f32 weights the forward scaled by (offset included); dy,
 * dx (G, n, dim); dx may equal dy. */
void av_rmsnorm_grad(float *dx, const float *dy, const float *x, const float *w, int G, int n, int dim,
                     float eps, int accumulate);
void av_layernorm_grad(float *dx, const float *dy, const float *x, const float *w, int G, int n, int dim,
                       float eps, int accumulate);
/* y = act(x): dx (G, n) = dy act'(x); x (n) the pre-activations. dx may equal dy. */
void av_activate_grad(float *dx, const float *dy, const float *x, size_t n, int G, av_act act);
/* h = act(g) u (gated feed-forward): dg = dh u act'(g), du = dh act(g); g, u (n); dh, dg, du (G, n). */
void av_gated_grad(float *dg, float *du, const float *dh, const float *g, const float *u, size_t n, int G,
                   av_act act);
/* RoPE's gradient: the inverse rotation of one position's heads, in place. */
void av_rope_grad(float *dv, int n_heads, int head_dim, int pos, float theta, int half_style);
/* y = c tanh(x / c): d (n) *= dy/dx, from the capped values y (n). */
void av_softcap_grad(float *d, const float *y, size_t n, float c);
/* log sum exp x[0..n), in double. */
double av_logsumexp(const float *x, int n);
/* dx (n) = d log softmax(x)[target] / dx = onehot(target) - softmax(x); returns log softmax(x)[target]. */
double av_log_softmax_grad(float *dx, const float *x, int n, int target);

/* Attention's backward: a holds the forward's arguments with probs (probs_head_stride, probs_ld) pointing at
 * the probabilities it computed. dout, dq (G, n_q, n_heads*head_dim) and dk, dv (G, n_k,
 * n_kv_heads*head_dim) are contiguous; dq, dk and dv are written (not accumulated). attn_x_grad: optional
 * (G, n_heads, n_k), sum over queries of P * dP (attention x gradient per head and key). */
typedef struct av_attn_grad_args {
    const av_attn_args *a;
    int G;
    const float *dout;
    float *dq, *dk, *dv;
    float *attn_x_grad;
} av_attn_grad_args;
/* Returns 0, or -1 when scratch memory runs out. */
int av_attention_grad(const av_attn_grad_args *g, int n_threads);

#endif
