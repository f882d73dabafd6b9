/* The model: configuration + weight views shared by every loader (llama2.c, GGUF, Hugging Face) and the
 * forward pass. Loaders fill an av_model; av_model_check validates every shape against the config. */
#ifndef AV_MODEL_H
#define AV_MODEL_H

#include "core/core.h"
#include "io/io.h"

#define AV_MAX_SHARDS 64

typedef enum av_rope_style {
    AV_ROPE_INTERLEAVED = 0, /* llama2.c / Meta / GGUF: pairs (2i, 2i+1) */
    AV_ROPE_HALF,            /* Hugging Face "rotate half": pairs (i, i + head_dim/2) */
} av_rope_style;

typedef struct av_llama_layer {
    av_tensor attn_norm;  /* (dim) */
    av_tensor wq;         /* (n_heads*head_dim, dim) */
    av_tensor wk;         /* (n_kv_heads*head_dim, dim) */
    av_tensor wv;         /* (n_kv_heads*head_dim, dim) */
    av_tensor wo;         /* (dim, n_heads*head_dim) */
    av_tensor ffn_norm;   /* (dim) */
    av_tensor w_gate;     /* (hidden_dim, dim)  llama2.c w1 */
    av_tensor w_down;     /* (dim, hidden_dim)  llama2.c w2 */
    av_tensor w_up;       /* (hidden_dim, dim)  llama2.c w3 */
    av_tensor bq, bk, bv; /* (q_dim), (kv_dim), (kv_dim) attention biases (Qwen2), or empty */
    int window;           /* > 0: sliding-window attention over the last `window` keys (Mistral, Qwen2) */
} av_llama_layer;

/* A layer's nine weights in checkpoint order, as an initializer: av_tensor *w[AV_LLAMA_LAYER_WEIGHTS] =
 * ...(L). */
#define AV_LLAMA_LAYER_WEIGHTS 9
#define AV_LLAMA_LAYER_WEIGHT_PTRS(L)                                                                        \
    {                                                                                                        \
        &(L)->attn_norm, &(L)->wq, &(L)->wk, &(L)->wv, &(L)->wo, &(L)->ffn_norm, &(L)->w_gate, &(L)->w_down, \
            &(L)->w_up                                                                                       \
    }
/* Their names in GGUF ("blk.<l>.<name>.weight") and Hugging Face ("model.layers.<l>.<name>.weight") files. */
extern const char *const av_llama_gguf_layer_names[AV_LLAMA_LAYER_WEIGHTS];
extern const char *const av_llama_hf_layer_names[AV_LLAMA_LAYER_WEIGHTS];

/* Which forward pass runs the model. Llama-family models (Llama, Mistral, Qwen2) use the fields of av_model
 * below and llama.c; the other families keep their weights in an av_tf_model (family.h) built from the
 * shared transformer block (block.h). */
typedef enum av_family {
    AV_FAMILY_LLAMA = 0,
    AV_FAMILY_GPT2,   /* decoder-only, learned positions */
    AV_FAMILY_BERT,   /* encoder-only: BERT, RoBERTa, DistilBERT */
    AV_FAMILY_VIT,    /* images: timm and Hugging Face ViT */
    AV_FAMILY_ENCDEC, /* encoder-decoder: Marian, BART, T5 */
} av_family;

struct av_tf_model;

struct av_model {
    char name[128];
    char arch[32];   /* "llama" */
    char format[16]; /* "llama2c", "gguf", "hf" */
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, head_dim, vocab_size, max_seq_len;
    float norm_eps, rope_theta;
    av_rope_style rope;
    int tied; /* classifier shares the token embedding */

    av_tensor tok_emb;      /* (vocab, dim) */
    av_tensor out_norm;     /* (dim) */
    av_tensor cls;          /* (vocab, dim); equal to tok_emb when tied */
    av_llama_layer *layers; /* (n_layers) */

    av_mapped_file files[AV_MAX_SHARDS]; /* llama2.c / GGUF mappings */
    int n_files;
    av_safetensors shards[AV_MAX_SHARDS]; /* Hugging Face shards */
    int n_shards;
    void **owned; /* buffers a loader allocated (freed with the model) */
    int n_owned;

    av_tokenizer *tok;
    int n_threads;

    av_family family;       /* AV_FAMILY_LLAMA for the fields above */
    struct av_tf_model *tf; /* the other families' weights (family.h), owned; NULL for Llama */
};

/* Loaders: fill m (already zeroed) or return -1 with a message. The caller frees m on failure. */
int av_load_llama2c(const char *path, av_model *m, av_err *err);
int av_load_gguf(const char *path, av_model *m, av_err *err);
int av_load_hf_dir(const char *dir, av_model *m, av_err *err);

/* The shared tail of the GGUF and Hugging Face loaders, after tok_emb and cls (when present) are taken: ties
 * the classifier to the embedding when there is none, allocates m->layers and takes weight k of layer l with
 * take(ctx, l, k, &tensor, err) for every layer in checkpoint order. */
typedef int (*av_llama_take_fn)(const void *ctx, int layer, int k, av_tensor *t, av_err *err);
int av_llama_take_layers(av_model *m, av_llama_take_fn take, const void *ctx, av_err *err);

/* Checks config sanity and every tensor's dtype and shape; fills head_dim. */
int av_model_check(av_model *m, av_err *err);
/* Keeps a loader-allocated buffer alive for the model's lifetime. */
int av_model_own(av_model *m, void *p, av_err *err);
/* Makes a 1-D/2-D F32 tensor view over memory. */
av_tensor av_tensor_f32(const float *data, int64_t rows, int64_t cols);

/* ---- forward pass ---- */

/* Per-run state: KV cache and scratch buffers, sized for max_tokens positions. */
typedef struct av_state av_state;
int av_state_new(const av_model *m, int max_tokens, av_state **out, av_err *err);
void av_state_free(av_state *s);

/* Attention capture: attn[l] (n_heads, T, T) for every layer l; rows q0..q0+n-1 are written
 * (row stride T). NULL entries or a NULL capture skip capturing. */
typedef struct av_capture {
    float **attn; /* (n_layers) pointers to (n_heads, T, T) */
    float *
        *vnorm; /* (n_layers) pointers to (n_heads, T): ||v_j W_o^h|| (Kobayashi et al. 2020); may be NULL */
    float *
        *q; /* (n_layers) pointers to (n_heads, T, head_dim) post-RoPE queries (lazy traces); may be NULL */
    float **k; /* (n_layers) pointers to (n_kv_heads, T, head_dim) post-RoPE keys; may be NULL */
    int T;
    int zeroed; /* 1 when attn starts all zero (calloc): never-attended entries are left untouched */
} av_capture;

/* Runs tokens[0..n) at positions pos0..pos0+n-1 (the cache holds 0..pos0-1).
 * logits: (n, vocab) when logits_all, else (vocab) for the last position; may be NULL. */
int av_llama_forward(const av_model *m, av_state *s, const int32_t *tokens, int n, int pos0,
                     const av_capture *cap, float *logits, int logits_all, av_err *err);

#endif
