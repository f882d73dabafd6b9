/* The one transformer block every family runs, and stacks of them (forward.c runs them).
 *
 * A block is self-attention, optional cross-attention over an encoder's output, and a feed-forward network.
 * Each sub-layer is wrapped pre-norm (x += f(norm(x))) or post-norm (x = norm(x + f(x))) with LayerNorm or
 * RMSNorm; an optional extra norm on the sub-layer output before the residual add gives Gemma's "sandwich".
 * Every linear layer has an optional bias. Attention has grouped-query heads, optional per-head q/k RMS
 * norms, rotary positions (interleaved or rotate-half pairs, base per layer), a bucketed relative-position
 * bias (T5), a per-layer scale, sliding window and score soft-capping. The feed-forward is act(x W_up) W_down
 * or, gated, (act(x W_gate) * x W_up) W_down. Families differ only in the data here: family files (llama2c.c,
 * gguf_decoder.c, hf_decoder.c and arch_*.c, gpt2.c, bert.c, vit.c, encdec.c) map checkpoint names and config
 * keys onto it. */
#ifndef AV_BLOCK_H
#define AV_BLOCK_H

#include "kernels/kernels.h"

typedef enum av_norm_kind { AV_NORM_LAYER = 0, AV_NORM_RMS } av_norm_kind;

typedef enum av_rope_style {
    AV_ROPE_NONE = 0,    /* no rotary positions */
    AV_ROPE_INTERLEAVED, /* llama2.c / Meta / GGUF: pairs (2i, 2i+1) */
    AV_ROPE_HALF,        /* Hugging Face "rotate half": pairs (i, i + head_dim/2) */
} av_rope_style;

typedef struct av_norm {
    av_tensor w; /* (n); data NULL: no norm */
    av_tensor b; /* (n) or empty (RMSNorm, or a LayerNorm without bias) */
} av_norm;

typedef struct av_linear {
    av_tensor w; /* (out, in) as PyTorch nn.Linear stores it */
    av_tensor b; /* (out) or empty */
} av_linear;

typedef struct av_attn_weights {
    av_linear q;    /* (n_heads*head_dim, dim) */
    av_linear k, v; /* (n_kv_heads*head_dim, dim) */
    av_linear o;    /* (dim, n_heads*head_dim) */
} av_attn_weights;

/* The feed-forward network of a block: dense (gate empty: not gated). */
typedef struct av_ffn {
    av_linear up;   /* (hidden, dim) */
    av_linear gate; /* (hidden, dim) or empty */
    av_linear down; /* (dim, hidden) */
} av_ffn;

/* A mixture of experts in place of the dense feed-forward (Mixtral, Qwen3-MoE; moe.c): per token, the
 * router's softmax over n_experts picks the n_used largest probabilities, optionally renormalized to sum 1,
 * and the output is the sum of those experts' gated feed-forwards (hidden size: the stack's) times their
 * weights. */
typedef struct av_moe {
    av_linear router; /* (n_experts, dim), or empty: the block's feed-forward is dense */
    av_ffn *experts;  /* (n_experts) views of the stored weights (GGUF: rows of the 3-D *_exps tensors) */
    int n_experts, n_used;
    int norm_topk; /* 1: the n_used weights divided by their sum */
} av_moe;

/* Rotary positions of a layer. Pair i of a head turns by pos * freq[i] with freq[i] = theta^(-2i/rot_dims),
 * or a table when the checkpoint scales RoPE (linear, Llama 3, longrope: rope.c builds it); cos and sin are
 * multiplied by mscale (longrope's attention factor). */
typedef struct av_rope_freqs {
    const float *freq; /* (rot_dims/2) inverse frequencies, or NULL: theta^(-2i/rot_dims) */
    const float
        *freq_long; /* (rot_dims/2) longrope: for runs longer than the stack's rope_long_from, or NULL */
    float mscale;   /* 1 unless longrope */
} av_rope_freqs;

typedef struct av_block {
    av_norm attn_norm;    /* pre-norm: before self-attention; post-norm: after its residual add */
    av_attn_weights attn; /* self-attention */
    av_norm q_norm,
        k_norm; /* (head_dim) RMS norms of each query/key head before RoPE (Qwen3, Gemma 3), or empty */
    av_norm attn_out_norm; /* on the attention output before the residual add (Gemma 2/3), or empty */
    float attn_scale;      /* score scale: 1/sqrt(head_dim) for most, 1 for T5, query_pre_attn_scalar^-0.5 */
    float attn_softcap;    /* > 0: scores = c tanh(scores / c) (Gemma 2) */
    int window;       /* > 0: causal sliding window over the last `window` keys (Mistral, Qwen2, Gemma) */
    float rope_theta; /* RoPE base of this layer (Gemma 3 mixes local and global bases) */
    av_rope_freqs rope_scaled; /* scaled RoPE of this layer (Llama 3, Phi-3, Gemma 3's global layers) */
    av_norm cross_norm;        /* decoder blocks of encoder-decoders: cross-attention (same scale as attn) */
    av_attn_weights cross;     /* cross.q.w.data NULL: no cross-attention */
    av_norm ffn_norm;
    av_ffn ffn;
    av_moe moe;           /* moe.router.w.data: a mixture of experts replaces ffn */
    av_norm ffn_out_norm; /* on the feed-forward output before the residual add (Gemma 2/3), or empty */
} av_block;

typedef struct av_stack_cfg {
    int dim, n_heads, n_kv_heads, head_dim, hidden; /* q_dim = n_heads * head_dim need not equal dim (T5) */
    av_norm_kind norm;
    float eps;
    float norm_offset; /* every norm of the stack scales by (offset + w): Gemma stores w - 1 (offset 1) */
    int post_norm;     /* 1: BERT, BART, Marian; 0: Llama, GPT-2, ViT, T5 */
    av_act act;
    int causal;         /* decoders: the query at position p sees keys 0..p */
    av_rope_style rope; /* rotary positions on q and k (base per block) */
    int rope_dims;      /* rotated values of each head, from its start (partial rotary): 0 means head_dim */
    int rope_long_from; /* longrope: runs over more positions than this use each block's freq_long */
    int cross_from;     /* positions before it add no cross-attention output (attnviz-t2i: the time token
                           reads no text, so patches are the only path from the prompt); 0: every position */
} av_stack_cfg;

/* Token and position embeddings in front of a stack: x = tok[id] * scale + pos[p + pos_offset] + type[0]
 * (+ a sinusoid), then the optional norm. */
typedef struct av_embed {
    av_tensor tok;    /* (vocab, dim) this stack's own token table, or empty: the model's tok_emb */
    float scale;      /* token rows times this: sqrt(dim) for Marian's scale_embedding and Gemma, else 1 */
    av_tensor pos;    /* (n_pos, dim) learned positions, or empty */
    int pos_offset;   /* row of position 0 (BART 2) */
    int pos_from_pad; /* RoBERTa: position = pad_id + number of non-pad tokens so far; pads get pad_id */
    int sinusoidal;   /* Marian: fixed sin | cos halves instead of learned rows */
    av_tensor type;   /* (n_types, dim): row 0 added (BERT token_type_ids all 0), or empty */
    av_norm norm;     /* LayerNorm after the sum (BERT, BART layernorm_embedding), or empty */
} av_embed;

/* T5's relative-position bias: bucket b of head h adds table[b][h] to the scores (bidirectional buckets in an
 * encoder, causal ones in a decoder); the same table serves every layer of the stack. */
typedef struct av_rel_pos {
    av_tensor table; /* (n_buckets, n_heads), or empty: none */
    int n_buckets, max_distance;
} av_rel_pos;

typedef struct av_stack {
    av_stack_cfg cfg;
    av_embed emb;
    int n_layers;
    av_block *blocks;   /* (n_layers) */
    av_norm final_norm; /* after the last block (Llama norm, GPT-2 ln_f, ViT norm, T5 final_layer_norm), or
                           empty */
    av_rel_pos rel;
    float *_Atomic *vnorm_grams; /* (n_layers) each layer's value-norm Gram matrices (n_heads, head_dim,
                                    head_dim) once a run asked for them (av_stack_vnorm_gram), else NULL; the
                                    one part of a loaded model that runs fill in */
} av_stack;

/* The config of a stack of multi-head (not grouped) blocks: n_kv_heads = n_heads; the rest (post-norm,
 * causal, RoPE, norm offset) zero until the caller sets it. */
av_stack_cfg av_stack_cfg_mha(int dim, int n_heads, int head_dim, int hidden, av_norm_kind norm, float eps,
                              av_act act);
/* Allocates the blocks of a stack (zeroed) and sets the defaults: embedding scale 1. */
int av_stack_alloc(av_stack *st, int n_layers, av_err *err);
void av_stack_free(av_stack *st);
/* Validates every weight of st against its config (fills n_kv_heads 0 as n_heads); what names the stack in
 * messages ("encoder"), cfg the configuration its sizes come from ("config.json"). */
int av_stack_check(av_stack *st, const char *what, const char *cfg, av_err *err);
/* The largest n_experts of the stack's mixtures, 0 without any. */
int av_stack_max_experts(const av_stack *st);
/* Parameter count of a stack, its embedding tables included. */
int64_t av_stack_n_params(const av_stack *st);
/* The bias of key - query distances for the rows of av_attn_args.rel_bias: out (n_heads, 2 * n - 1), entry
 * (h, d + n - 1) for distance d in (-n, n). */
void av_rel_pos_bias(const av_stack *st, int n, float *out);

/* ---- pieces ---- */

/* "gelu", "gelu_new", "relu", "silu", ... -> av_act; -1 for an unknown name. */
int av_act_parse(const char *name, av_act *out);
/* out (rows, n) = norm(x) with the weights scaled by (offset + w); out may equal x. */
void av_norm_apply(av_norm_kind kind, const av_norm *nm, float eps, float offset, float *out, const float *x,
                   int rows, int n, int n_threads);
/* x += add, then out = norm(x) as av_norm_apply (RMSNorm: one pass over each row); out may equal add. */
void av_norm_apply_add(av_norm_kind kind, const av_norm *nm, float eps, float offset, float *out, float *x,
                       const float *add, int rows, int n, int n_threads);
/* y (n, out) = x (n, in) W^T + b; wscratch: (out, in) floats for non-F32 weights, or NULL. */
void av_linear_apply(float *y, const float *x, const av_linear *l, int n, float *wscratch, int n_threads);
/* Shape check of a weight: rows x cols (cols 0: a vector of rows); optional allows an empty tensor. Any
 * weight type av_dequantize_rows reads (F32, F16, BF16; Q8_0 for matrices); cfg names the configuration the
 * expected shape comes from in messages ("config.json", "the config"). */
int av_weight_check(const av_tensor *t, const char *name, int64_t rows, int64_t cols, int optional,
                    const char *cfg, av_err *err);
int av_norm_check(const av_norm *n, const char *name, int dim, const char *cfg, av_err *err);
int av_linear_check(const av_linear *l, const char *name, int64_t out, int64_t in, const char *cfg,
                    av_err *err);
/* A fused projection w (3*rows, in) [+ b (3*rows)] (rows: q, then k, then v) as views in out's q, k, v,
 * after checking its shape against config.json. */
int av_linear_split3(const av_tensor *w, const av_tensor *b, int64_t rows, int64_t in, av_attn_weights *out,
                     const char *name, av_err *err);
/* Rows of a 2-D tensor (or elements of a 1-D one) as a view: [r0, r0 + n). F32, F16, BF16. */
av_tensor av_tensor_rows(const av_tensor *t, int64_t r0, int64_t n);
/* The same data seen as (rows, cols); an empty tensor when the element counts differ. */
av_tensor av_tensor_view2d(const av_tensor *t, int64_t rows, int64_t cols);
/* 1 when a and b hold the same bytes of the same type (a tied output layer stored twice). */
int av_tensor_same(const av_tensor *a, const av_tensor *b);
/* "2, 3" for a [2, 3] tensor, into buf (n bytes). */
void av_tensor_shape_text(const av_tensor *t, char *buf, size_t n);
/* Makes a 1-D (cols 0) or 2-D F32 tensor view over memory. */
av_tensor av_tensor_f32(const float *data, int64_t rows, int64_t cols);

/* ---- norm-based attention (Kobayashi et al. 2020; vnorm.c) ---- */

/* The Gram matrices G_h = W_h^T W_h of the heads' column blocks W_h = wo[:, h*head_dim : (h+1)*head_dim] of
 * an output projection wo (dim, n_heads*head_dim) of any dtype: gram (n_heads, head_dim, head_dim), the same
 * bits for any thread count. Returns 0, or -1 with a message when memory runs out. */
int av_attn_gram(const av_tensor *wo, int n_heads, int head_dim, int n_threads, float *gram, av_err *err);
/* Layer `layer`'s Gram matrices of st: computed by the first run that asks and kept with the stack (runs
 * asking at once may each compute them; one copy is kept). NULL with a message when memory runs out. */
const float *av_stack_vnorm_gram(const av_stack *st, int layer, int n_threads, av_err *err);
/* vnorm[h][t0 + i] = || v_i^h W_o[:, h] || = sqrt(v_i^h G_h v_i^h^T) for n rows of v. v: (n, v_stride), kv
 * head g at column g*head_dim; gram: the layer's (av_stack_vnorm_gram); vnorm: (n_heads, T). Returns 0, or -1
 * with a message when memory runs out. */
int av_attn_vnorm(const float *v, int v_stride, const float *gram, int n_heads, int n_kv_heads, int head_dim,
                  int n, float *vnorm, int T, int t0, int n_threads, av_err *err);

#endif
