/* The model: every family is embeddings + one or two stacks of the one block (block.h) + an output head.
 * Loaders (llama2c.c, gguf_decoder.c and hf_decoder.c for the decoder families of arch.h, and for Hugging
 * Face directories of the other families gpt2.c, bert.c, vit.c, encdec.c) only translate checkpoint names and
 * config keys onto these fields; av_model_check validates every shape; forward.c runs them, with a KV cache,
 * for every family. A loaded model is read-only (the one exception: each stack keeps the value norms' Gram
 * matrices, computed on first use, vnorm.c): runs keep their state in an av_state and take thread counts from
 * their parameters. */
#ifndef AV_MODEL_H
#define AV_MODEL_H

#include "block.h"
#include "core/core.h"
#include "io/image.h"
#include "io/io.h"

#define AV_MAX_SHARDS 64
enum { AV_MAX_STACKS = 2 };

/* logits = softcap(out(scale * h)), h = x, or norm(act(x W_d + b_d)) with a transform (BERT masked LM) */
typedef struct av_head {
    av_linear dense; /* (dim, dim) transform, or empty */
    av_norm dense_norm;
    av_act dense_act;
    float scale;   /* 1, or dim^-0.5 (T5 with a tied head) */
    av_linear out; /* (n_out, dim) + optional bias, or empty: no head */
    float softcap; /* > 0: logits = c tanh(logits / c) (Gemma 2 final-logit soft-capping) */
    int n_out;     /* vocabulary or classes; 0 without a head */
} av_head;

/* Images (ViT): x = [cls_token; patches W_p^T + b_p] + pos (the stack's learned positions). */
typedef struct av_vision {
    av_linear patch;     /* (dim, channels * patch * patch), flattened (c, ky, kx) as a conv weight */
    av_tensor cls_token; /* (1, dim) */
    int image_size, patch_size, grid, channels;
    av_image_prep prep;
    char **labels; /* (head.n_out) class names, or NULL */
} av_vision;

/* Text-to-image diffusion (t2i, docs/T2I_MODEL.md): stacks[0] is the text encoder, stacks[1] the denoiser
 * over [time token; patches] (its emb.pos holds the patches' positions), vision.patch embeds patches,
 * head.out maps the patch rows back to pixels (n_out = channels * patch^2). */
typedef struct av_diffusion {
    av_linear time_1, time_2;  /* (dim, freq_dim), (dim, dim): time token = time_2(GELU(time_1(sinusoid))) */
    int freq_dim;              /* sinusoid size: cos of freq_dim / 2 frequencies, then sin */
    double max_period;         /* sinusoid frequencies exp(-ln(max_period) j / half) */
    int n_train_steps;         /* T of the noise schedule */
    double cosine_s, max_beta; /* squaredcos_cap_v2 schedule */
    int default_steps;         /* DDIM steps when a run does not choose */
    float guidance;            /* classifier-free guidance scale */
    int max_text;              /* longest prompt in tokens, [CLS] and [SEP] included */
    int cls_id, sep_id;
} av_diffusion;

struct av_model {
    char name[128];
    char arch[32]; /* "llama", "mistral", "qwen2", "gpt2", "bert", "roberta", "vit", "marian", "t5", ... */
    av_model_format format;
    av_family family;
    /* a summary of stacks[0] for av_model_info (filled by av_model_check), plus vocabulary and context */
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, head_dim, vocab_size, max_seq_len;

    av_stack stacks[AV_MAX_STACKS]; /* the only stack (n_stacks 1), or the encoder then the decoder (2) */
    int n_stacks;
    av_tensor
        tok_emb; /* (vocab, dim) token table shared by the stacks (an embedding's own tok overrides it) */
    av_head head;
    av_vision vision;
    av_diffusion diff;                        /* t2i only */
    int pad_id, bos_id, eos_id, dec_start_id; /* special tokens, -1 when unknown */

    av_mapped_file files[AV_MAX_SHARDS]; /* llama2.c / GGUF mappings */
    int n_files;
    av_safetensors shards[AV_MAX_SHARDS]; /* Hugging Face shards */
    int n_shards;
    void **owned; /* buffers a loader allocated (freed with the model) */
    int n_owned;

    const struct av_arch_cfg *arch_cfg; /* decoder families (arch.h): the checkpoint's configuration, owned */

    av_tokenizer *tok;
    char tok_error[256]; /* why a tokenizer file next to the weights did not load ("" when none was tried) */
    int n_threads;       /* default for runs that do not set their own (av_model_params) */
};

/* Loaders: fill m (from av_model_new) or return -1 with a message. The caller frees m on failure. */
int av_load_llama2c(const char *path, av_model *m, av_err *err);
int av_load_gguf(const char *path, av_model *m, av_err *err);
int av_load_hf_dir(const char *dir, av_model *m, av_err *err);

/* A zeroed model with the defaults loaders start from (head scale 1, special tokens -1). */
av_model *av_model_new(void);
/* Checks config sanity and every tensor's dtype and shape; fills the summary fields. */
int av_model_check(av_model *m, av_err *err);
/* Keeps a loader-allocated buffer alive for the model's lifetime (p NULL, a failed allocation: "out of
 * memory"; p is freed when this fails). */
int av_model_own(av_model *m, void *p, av_err *err);
/* 1 when the head's projection is the token table itself (tied). */
int av_model_head_tied(const av_model *m);

/* ---- the Llama layout (llama2.c, GGUF, Hugging Face llama / mistral / qwen2 checkpoints) ---- */

/* What the Llama loaders read from their config: sizes, epsilon, RoPE. */
typedef struct av_llama_cfg {
    int dim, hidden, n_layers, n_heads, n_kv_heads, head_dim; /* head_dim 0: dim / n_heads */
    float eps, rope_theta;
    av_rope_style rope;
} av_llama_cfg;

/* Sets m up as a Llama-family decoder (family, one causal pre-RMSNorm stack with SwiGLU, RoPE, scale
 * 1/sqrt(head_dim)) and allocates its blocks. */
int av_llama_init(av_model *m, const av_llama_cfg *c, av_err *err);

/* ---- forward pass (forward.c) ---- */

/* Per run and stack: KV cache (every layer of a decoder; one layer's worth for an encoder, which runs in one
 * chunk), cross-attention keys and values, scratch buffers. */
typedef struct av_state av_state;
/* A state for up to max_tokens positions of stack `stack` of m; n_threads 0: the model's default. */
int av_state_new(const av_model *m, int stack, int max_tokens, int n_threads, av_state **out, av_err *err);
/* A state for av_forward_ids_layerwise: a KV cache of one layer. */
int av_state_new_layerwise(const av_model *m, int stack, int max_tokens, int n_threads, av_state **out,
                           av_err *err);
/* The same for a batch of n_seq sequences run side by side (perturbed inputs for attribution): linear layers,
 * norms and the feed-forward take the rows of every sequence at once, attention runs per sequence over its
 * own KV cache. Chunk rows are sequence-major: (n_seq, n, dim). Nothing is captured in batches. */
int av_state_new_batch(const av_model *m, int stack, int max_tokens, int n_seq, int n_threads, av_state **out,
                       av_err *err);
void av_state_free(av_state *s);
/* Decoder stacks: computes every layer's cross-attention keys and values from the output of encoder state
 * enc's last run (its S rows). */
int av_state_attach(av_state *dec, const av_state *enc, av_err *err);

/* What one pass captures of one attention kind, per layer l (NULL arrays or entries: nothing). Rows
 * pos0..pos0+n-1 of the buffers are written. */
typedef struct av_capture {
    float **attn;  /* (n_heads, T, n_key) probabilities (row stride n_key) */
    float **vnorm; /* (n_heads, T): ||v_j W_o^h|| (Kobayashi et al. 2020), self-attention only */
    float **q;     /* (n_heads, T, head_dim) queries as the scores see them (after q norm and RoPE) */
    float **k;     /* (n_kv_heads, n_key, head_dim) keys likewise (cross: written by the pass at pos0 0) */
    int T, n_key;  /* query rows the buffers hold; keys (T for self-attention, the source length for cross) */
    int zeroed;    /* 1 when attn starts all zero (calloc, file holes): unreachable entries are not written */
    const av_attn_pool *pool;  /* (n_layers) pooled overviews of every head's probabilities, or NULL */
    const av_probs_sink *sink; /* or NULL: where attn's rows are written instead of through attn itself
                                  (attn's addresses only name their place: trace/capture.c) */
} av_capture;

/* Called after each block of a pass (layer l done for the chunk's n rows at pos0). */
typedef void (*av_layer_fn)(void *ctx, int layer, int pos0, int n);

/* One forward call: captures and outputs. */
typedef struct av_pass {
    av_capture self, cross;
    float
        *logits; /* (n, n_out) when logits_all, else (n_out) of the last row (images: of [CLS]); NULL: none */
    int logits_all;
    const uint8_t *token_types; /* (n) token type ids (BERT sentence pairs: 0 = A, 1 = B), or NULL: all 0 */
    av_layer_fn on_layer;       /* optional progress (av_stack_run: the residual stream may still lack
                                   the layer's feed-forward output then, added by the next layer's norm) */
    void *on_layer_ctx;
    float **resid; /* optional (n_layers + 1) -> (rows, dim): the residual stream entering block l at entry l,
                      leaving the last block (before the final norm) at entry n_layers; NULL entries: skipped.
                      rows: every row of the chunk (of every sequence of a batch). The logit lens and the
                      backward pass (forward_grad.c) read them. */
} av_pass;

/* Runs ids[0..n) at positions pos0..pos0+n-1 of the state's stack (the cache holds 0..pos0-1; encoders take
 * the whole input at pos0 0). p may be NULL. */
int av_forward_ids(const av_model *m, av_state *s, const int32_t *ids, int n, int pos0, const av_pass *p,
                   av_err *err);
/* The same pass over a whole causal input ids[0..n), layer by layer: every chunk of `chunk` rows through
 * layer 0, then through layer 1, ... The results equal chunked av_forward_ids calls, but only one layer's
 * keys and values are held (the state must come from av_state_new_layerwise), plus the residual stream of
 * all n rows: the memory of long lazy runs. */
int av_forward_ids_layerwise(const av_model *m, av_state *s, const int32_t *ids, int n, int chunk,
                             const av_pass *p, av_err *err);
/* Greedy decoding (generate.c) against the KV cache of a fresh state s: seq[0..n) is the start; tokens are
 * appended (argmax of the last row's logits) up to cap, or until stop(ctx, seq, new length) is nonzero after
 * appending one. *n_out: the length reached. */
typedef int (*av_stop_fn)(void *ctx, const int32_t *seq, int n);
int av_decode_greedy(const av_model *m, av_state *s, int32_t *seq, int n, int cap, av_stop_fn stop, void *ctx,
                     int *n_out, av_err *err);
/* Decoding with a caller's choice of each token (generate.c): next(ctx, logits of the last row (n_out),
 * n_out, err) returns the token appended, or -1 (err set) to fail; NULL: greedy. With start_rows, the start
 * runs in chunks of at most AV_DECODE_LOGITS_FLOATS logits and every row's logits (n_rows, n_out) are handed
 * over (the prompt's own log-probabilities); it returns 0 or -1 (err set). */
#define AV_DECODE_LOGITS_FLOATS (16u << 20)
typedef int32_t (*av_next_fn)(void *ctx, const float *logits, int n_vocab, av_err *err);
typedef struct av_decoder {
    av_next_fn next;
    av_stop_fn stop;
    void *ctx; /* handed to every callback */
    int (*start_rows)(void *ctx, const float *logits, int row0, int n_rows, av_err *err);
} av_decoder;
int av_decode(const av_model *m, av_state *s, int32_t *seq, int n, int cap, const av_decoder *d, int *n_out,
              av_err *err);
/* A decoder-only prompt's ids (the tokenizer's specials with add_bos), or the start token (GPT-2's BOS) for
 * an empty prompt that encodes to nothing; *ids malloc'd. */
int av_model_prompt_ids(const av_model *m, const char *prompt, int add_bos, int32_t **ids, size_t *n,
                        av_err *err);
/* Images: pixels (channels, image_size, image_size), normalized -> attention over [CLS] + patches. */
int av_forward_pixels(const av_model *m, av_state *s, const float *pixels, const av_pass *p, av_err *err);
/* t2i: one denoiser evaluation on the state of stack 1 (attached to a text encoding): x (channels,
 * image_size, image_size) in model space, time_token (dim) -> out (channels, image_size, image_size). */
int av_forward_denoiser(const av_model *m, av_state *s, const float *x, const float *time_token,
                        const av_pass *p, float *out, av_err *err);
/* ---- text-to-image diffusion (diffusion.c, docs/T2I_MODEL.md) ---- */

/* ab (n_train_steps): the cumulative products of (1 - beta_t) of the squaredcos_cap_v2 schedule, float64. */
void av_t2i_alphas_cumprod(const av_model *m, double *ab);
/* ts (n): the DDIM timesteps of n steps, trailing spacing: (n - i) T / n - 1 for i = 0..n-1. */
void av_t2i_timesteps(int T, int n, int32_t *ts);
/* out (freq_dim): [cos(t w_j) | sin(t w_j)], computed in double, rounded to float. */
void av_t2i_time_sinusoid(const av_model *m, int t, float *out);
/* out (dim): the denoiser's time token for timestep t (s: a denoiser state, for its scratch). */
int av_t2i_time_token(const av_model *m, av_state *s, int t, float *out, av_err *err);
/* A prompt's ids: [CLS] words [SEP] with the model's tokenizer; *ids malloc'd. Longer than max_text: error.
 */
int av_t2i_prompt_ids(const av_model *m, const char *prompt, int32_t **ids, size_t *n, av_err *err);

/* Decodes and preprocesses an image file for m: out (3, image_size, image_size) malloc'd; seen (may be NULL)
 * receives the 8-bit crop the model sees and its box in the file's pixels. */
int av_vit_preprocess_file(const av_model *m, const char *path, float **out, av_image_seen *seen,
                           av_err *err);

#endif
