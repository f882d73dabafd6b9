/* attnviz: run transformer models and capture what every layer and head attends to.
 *
 * The one public header of libattnviz. Conventions:
 *   - every fallible call returns 0 on success, -1 on failure, and fills an av_err with one readable line;
 *   - the library never exits or aborts on bad input;
 *   - handles are opaque; what users read (tensors, attention matrices) is exposed as plain-data views.
 */
#ifndef ATTNVIZ_H
#define ATTNVIZ_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AV_VERSION "0.1.0"
#define AV_TRACE_FORMAT "attnviz-trace"
#define AV_TRACE_VERSION "2" /* the newest trace format version read and written (docs/TRACE_FORMAT.md) */
#define AV_MAX_DIMS 4

/* Monotonic clock in seconds (for progress and timing output). */
double av_seconds(void);

/* ---- errors ------------------------------------------------------------------------------------------- */

typedef struct av_err {
    char msg[512]; /* one line, no trailing newline */
} av_err;

/* ---- tensors ------------------------------------------------------------------------------------------ */

typedef enum av_dtype {
    AV_DTYPE_F32 = 0,
    AV_DTYPE_F16,
    AV_DTYPE_BF16,
    AV_DTYPE_Q8_0, /* GGUF block quantization: 32 int8 values sharing one f16 scale (34 bytes a block) */
    AV_DTYPE_I32,
    AV_DTYPE_I64,
    AV_DTYPE_U8,
    /* GGUF block-quantized weight types (docs/MODELS.md; layouts in src/core/dtype.h). Add at the end. */
    AV_DTYPE_Q4_0,
    AV_DTYPE_Q4_1,
    AV_DTYPE_Q5_0,
    AV_DTYPE_Q5_1,
    AV_DTYPE_Q2_K,
    AV_DTYPE_Q3_K,
    AV_DTYPE_Q4_K,
    AV_DTYPE_Q5_K,
    AV_DTYPE_Q6_K,
    AV_DTYPE_IQ4_NL,
    AV_DTYPE_IQ4_XS,
    AV_DTYPE_COUNT
} av_dtype;

/* A read-only view of a tensor living in a mapped file or a buffer owned elsewhere.
 * shape is row-major, outermost first (a weight matrix is [out, in] as in PyTorch). */
typedef struct av_tensor {
    av_dtype dtype;
    int ndim;
    int64_t shape[AV_MAX_DIMS];
    const void *data;
    size_t nbytes;
} av_tensor;

/* "F32", "Q4_K", ... ("?" outside the enum). */
const char *av_dtype_name(av_dtype t);
/* The dtype named s (case-insensitive: "q4_k", "Q4_K"); -1 for an unknown name. */
int av_dtype_parse(const char *s, av_dtype *out);
int64_t av_tensor_numel(const av_tensor *t);

/* ---- attention kinds, model families, model file formats ------------------------------------------------
 * Enums with a stable text name (trace files, JSON, the CLI): _name gives it ("?" out of range), _parse reads
 * it back (0, or -1 for an unknown name). Values are only ever added at the end. */

typedef enum av_attn_kind {
    AV_ATTN_SELF = 0, /* "self": decoder-only and encoder-only models, images */
    AV_ATTN_ENC,      /* "enc": an encoder-decoder's encoder self-attention */
    AV_ATTN_DEC,      /* "dec": its decoder self-attention */
    AV_ATTN_CROSS,    /* "cross": decoder queries over encoder keys */
    AV_ATTN_KIND_COUNT
} av_attn_kind;
const char *av_attn_kind_name(av_attn_kind k);
int av_attn_kind_parse(const char *s, av_attn_kind *out);
/* The trace metadata key labelling the queries (key_side 0) or keys (key_side 1) of kind: "source_tokens" or
 * "target_tokens" for encoder-decoder kinds (cross: target queries x source keys), NULL for self (the trace's
 * own tokens). */
const char *av_attn_kind_labels_key(av_attn_kind kind, int key_side);

typedef enum av_family {
    AV_FAMILY_LLAMA = 0, /* "llama": Llama, Mistral, Qwen2 */
    AV_FAMILY_GPT2,      /* "gpt2" */
    AV_FAMILY_BERT,      /* "bert": BERT, RoBERTa, DistilBERT */
    AV_FAMILY_VIT,       /* "vit" */
    AV_FAMILY_ENCDEC,    /* "encoder-decoder": Marian, BART, T5 */
    AV_FAMILY_COUNT
} av_family;
const char *av_family_name(av_family f);
int av_family_parse(const char *s, av_family *out);

typedef enum av_model_format {
    AV_MODEL_FORMAT_LLAMA2C = 0, /* "llama2c": a llama2.c checkpoint */
    AV_MODEL_FORMAT_GGUF,        /* "gguf" */
    AV_MODEL_FORMAT_HF,          /* "hf": a Hugging Face (or timm) directory */
    AV_MODEL_FORMAT_COUNT
} av_model_format;
const char *av_model_format_name(av_model_format f);
int av_model_format_parse(const char *s, av_model_format *out);

/* ---- tokenizer ---------------------------------------------------------------------------------------- */

typedef struct av_tokenizer av_tokenizer;

/* Loads a tokenizer file; the format is detected from its content. A directory is searched for, in order:
 * tokenizer.json, vocab.txt, vocab.json + merges.txt, encoder.json + vocab.bpe, tokenizer.model,
 * tokenizer.bin. Files: Hugging Face tokenizer.json, a {token: id} vocabulary beside its merges, a
 * SentencePiece .model, a llama2.c tokenizer .bin or a WordPiece vocab.txt (see docs/TOKENIZERS.md). */
int av_tokenizer_load(const char *path, av_tokenizer **out, av_err *err);
void av_tokenizer_free(av_tokenizer *tok);
/* Encodes UTF-8 text. *ids is malloc'd (caller frees). add_bos adds the special tokens the tokenizer itself
 * adds around a text: BOS for SentencePiece and llama2.c, [CLS] ... [SEP] for BERT, what tokenizer.json's
 * post-processor says; nothing for GPT-2. Invalid UTF-8 never fails: SentencePiece models see each bad byte
 * as U+FFFD (as libsentencepiece does), the other kinds replace it by U+FFFD before tokenizing. */
int av_tokenizer_encode(const av_tokenizer *tok, const char *text, size_t len, int add_bos, int32_t **ids,
                        size_t *n_ids, av_err *err);
int av_tokenizer_vocab_size(const av_tokenizer *tok);
int av_tokenizer_bos(const av_tokenizer *tok);
int av_tokenizer_eos(const av_tokenizer *tok);
/* Raw piece of one id (NULL when out of range). */
const char *av_tokenizer_piece(const av_tokenizer *tok, int id);
/* Bytes that id contributes to decoded text after token prev (-1 for none); *len receives the length. */
const char *av_tokenizer_decode_piece(const av_tokenizer *tok, int prev, int id, char buf[8], size_t *len);
/* Human-readable label of token i of a sequence (for axes and tooltips); malloc'd, caller frees. */
char *av_tokenizer_display(const av_tokenizer *tok, const int32_t *ids, size_t n, size_t i);
/* Flags of av_tokenizer_display_ex. */
enum { AV_DISPLAY_VISIBLE_SPACE = 1 /* spaces shown as U+2423 "␣" */ };
/* av_tokenizer_display with flags; NULL only when out of memory. */
char *av_tokenizer_display_ex(const av_tokenizer *tok, const int32_t *ids, size_t n, size_t i,
                              unsigned flags);
/* 1 for special tokens (control tokens such as [CLS], <s>, <|endoftext|>, and the unknown token). */
int av_tokenizer_is_special(const av_tokenizer *tok, int id);
/* Id of a piece spelled exactly as in the vocabulary, -1 when absent. */
int av_tokenizer_find(const av_tokenizer *tok, const char *piece);
/* The algorithm, e.g. "sentencepiece bpe", "byte-level bpe", "wordpiece", "unigram". */
const char *av_tokenizer_model_name(const av_tokenizer *tok);

/* ---- models ------------------------------------------------------------------------------------------- */

typedef struct av_model av_model;

typedef struct av_model_params {
    const char
        *tokenizer_path; /* NULL: taken from the model (GGUF metadata, tokenizer file in the directory) */
    int n_threads;       /* 0: all cores */
} av_model_params;

av_model_params av_model_default_params(void);

/* Opens a model: a llama2.c checkpoint, a GGUF file, or a Hugging Face directory (config.json + safetensors).
 */
int av_model_load(const char *path, const av_model_params *params, av_model **out, av_err *err);
void av_model_free(av_model *m);

typedef struct av_model_info {
    const char *name;       /* e.g. "stories260K" */
    const char *arch;       /* "llama", "mistral", "gpt2", "roberta", "t5", ... */
    av_model_format format; /* the file it was loaded from */
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, max_seq_len;
    int64_t n_params;
    av_family family; /* docs/MODELS.md */
    int n_dec_layers; /* encoder-decoders: decoder layers (n_layers counts the encoder's); 0 otherwise */
} av_model_info;

av_model_info av_model_get_info(const av_model *m);
const av_tokenizer *av_model_tokenizer(const av_model *m);

/* ---- attention traces --------------------------------------------------------------------------------- */

typedef struct av_trace av_trace;

/* One attention matrix set: data[h * n_query * n_key + q * n_key + k]. */
typedef struct av_attn_view {
    int n_heads, n_query, n_key;
    const float *data; /* (n_heads, n_query, n_key) */
} av_attn_view;

/* Progress of a run (av_run_params.on_progress): called after each layer of each chunk of rows. */
typedef struct av_progress {
    int layer, n_layers;  /* the layer just done (0-based) of the stack running, and its layer count */
    int tokens, n_tokens; /* rows through that layer so far, of n_tokens */
    double done, total;   /* work done and in all, in units proportional to the arithmetic: the fraction is
                             done / total (a long causal run's later rows cost more) */
} av_progress;
typedef void (*av_progress_fn)(void *ctx, const av_progress *p);

typedef struct av_run_params {
    int add_bos;     /* default 1 */
    int n_threads;   /* 0: the model's default (av_model_params.n_threads, all cores unless set) */
    av_dtype dtype;  /* trace storage: AV_DTYPE_F32 (default) or AV_DTYPE_F16 */
    int want_logits; /* keep logits of every position in the trace (name "logits", [T, vocab]) */
    int lazy;        /* store every layer's queries and keys (after RoPE) and the parameters of its scores
                        instead of n_query x n_key matrices, for every family and kind (docs/TRACE_FORMAT.md);
                        the forward pass then never holds such a matrix. Any head, row or tile is recomputed
                        exactly on demand (av_trace_attn_row / av_trace_attn_tile). */
    void (*progress)(void *ctx, int done_tokens, int total_tokens); /* optional, called after each chunk */
    void *progress_ctx;
    const char *output_path; /* optional: the path av_trace_save will be given. Full F32 traces (of at least
                                ~0.5 MB) are then captured straight into that file's (temporary, renamed on
                                save) pages, so saving writes no attention data; the file is created before
                                the run. Lazy runs stream their queries, keys and overviews into it as the
                                run goes, so memory does not grow with them (docs/TRACE_FORMAT.md). */
    int pool_cells;          /* lazy traces: a pooled overview of every head (max and mean over cells of
                                tokens), computed during the run so a whole head of a long input shows at
                                once: cells a side; 0 (default): 256 when a side has at least 4096
                                tokens, else none; < 0: none (docs/TRACE_FORMAT.md, "Overviews") */
    int keep_qk;             /* full traces: also store every layer's queries and keys (neuron view) */
    av_progress_fn on_progress; /* optional, called after each layer of each chunk */
    void *on_progress_ctx;
} av_run_params;

av_run_params av_run_default_params(void);

/* Runs the model on text and captures every layer's post-softmax attention. A model is only read: several
 * runs may share one at the same time (each with its own av_run_params.n_threads). */
int av_trace_from_text(const av_model *m, const char *text, const av_run_params *params, av_trace **out,
                       av_err *err);
/* BERT-family encoders on a sentence pair: [CLS] a [SEP] b [SEP] with token type ids 0 for the first part and
 * 1 for the second (RoBERTa: <s> a </s></s> b </s>, no types), as the models were trained on pairs; metadata
 * sentence_b_start (the first token of b) and token_type_ids. */
int av_trace_from_text_pair(const av_model *m, const char *a, const char *b, const av_run_params *params,
                            av_trace **out, av_err *err);
/* Same, on token ids already encoded. */
int av_trace_from_ids(const av_model *m, const int32_t *ids, size_t n, const av_run_params *params,
                      av_trace **out, av_err *err);

int av_trace_save(const av_trace *t, const char *path, av_err *err); /* atomic: temp file + rename */
int av_trace_load(const char *path, av_trace **out, av_err *err);
void av_trace_free(av_trace *t);

/* Metadata value for key (NULL when absent). */
const char *av_trace_meta(const av_trace *t, const char *key);
int av_trace_n_tokens(const av_trace *t);
const char *av_trace_token(const av_trace *t, int i);
int av_trace_token_id(const av_trace *t, int i);
/* Number of layers present for kind; 0 if none. */
int av_trace_n_layers(const av_trace *t, av_attn_kind kind);
/* Attention of one layer; the view stays valid until av_trace_free. */
int av_trace_attn(const av_trace *t, av_attn_kind kind, int layer, av_attn_view *out, av_err *err);
/* Value-vector norms ||v_j W_o^h|| of one layer (norm-based attention, Kobayashi et al. 2020):
 * out->data (n_heads, n_tokens). Returns -1 with a message when the trace has none for that layer. */
int av_trace_vnorm(const av_trace *t, int layer, av_tensor *out, av_err *err);
/* Logits [T, vocab] when the trace holds them; returns 0 and fills out, or -1. */
int av_trace_logits(const av_trace *t, av_tensor *out);
/* Image traces: the 8-bit input the model saw (after resize and crop, before normalization), U8 [3, H, W]
 * ("image" tensor; its place in the original picture is metadata image_crop). 0 and out filled, or -1. */
int av_trace_image(const av_trace *t, av_tensor *out);

/* ---- reading parts of a head: works on full and lazy traces alike ---- */

/* 1 when the trace stores queries/keys (lazy) rather than attention matrices. */
int av_trace_is_lazy(const av_trace *t);
/* Head, query and key counts of one kind; 0 when absent. */
int av_trace_n_heads(const av_trace *t, av_attn_kind kind);
int av_trace_n_query(const av_trace *t, av_attn_kind kind);
int av_trace_n_key(const av_trace *t, av_attn_kind kind);

/* Attention row of query q of one head (head >= 0) or reduced over heads (AV_HEADS_MEAN / AV_HEADS_MAX).
 * out: (n_key) floats. Thread-safe for concurrent readers. */
#define AV_HEADS_MEAN (-1)
#define AV_HEADS_MAX (-2)
#define AV_HEADS_MIN (-3)
int av_trace_attn_row(const av_trace *t, av_attn_kind kind, int layer, int head, int q, float *out,
                      av_err *err);

typedef enum av_pool { AV_POOL_MAX = 0, AV_POOL_MEAN } av_pool;
/* The block [q0, q1) x [k0, k1) of one head (or AV_HEADS_MEAN/MAX) pooled into out_rows x out_cols cells:
 * cell (r, c) covers queries q0 + r*(q1-q0)/out_rows .. and keys likewise, reduced with pool. When out_rows
 * == q1-q0 and out_cols == k1-k0 the cells are exact values. out: (out_rows, out_cols). Thread-safe. */
int av_trace_attn_tile(const av_trace *t, av_attn_kind kind, int layer, int head, int q0, int q1, int k0,
                       int k1, int out_rows, int out_cols, av_pool pool, float *out, av_err *err);

/* av_trace_attn_tile with every option: head may also be AV_HEADS_MIN; exclude_first renormalizes each
 * row of each head over keys 1.. (the first, "sink" token left out) before heads are reduced and cells
 * pooled. A lazy trace with a pooled overview (docs/TRACE_FORMAT.md) answers a whole-matrix tile whose
 * cells are unions of the stored ones (rows and cols dividing the stored counts) from the overview, without
 * recomputing: one head with either pooling, the mean of heads with mean pooling, the max of heads with max
 * pooling. Everything else is computed from the attention. */
typedef struct av_tile_params {
    av_attn_kind kind;
    int layer, head;        /* head >= 0 or AV_HEADS_MEAN / MAX / MIN */
    int q0, q1, k0, k1;     /* the block [q0, q1) x [k0, k1) */
    int out_rows, out_cols; /* cells */
    av_pool pool;
    int exclude_first;
} av_tile_params;
int av_trace_attn_tile_ex(const av_trace *t, const av_tile_params *p, float *out, av_err *err);
/* The overview cells a whole-matrix tile of kind can be answered from at once: *rows x *cols stored cells
 * (any divisor of them works too); 0 and zeros when the kind has no overview. */
int av_trace_overview_cells(const av_trace *t, av_attn_kind kind, int *rows, int *cols);

/* The queries and keys of one layer as the scores saw them (after q/k norms and RoPE), for traces that keep
 * them (lazy traces; full traces run with keep_qk): q (n_heads, n_query, head_dim) and k (n_kv_heads,
 * n_key, head_dim), F32; query head h reads key head h / (n_heads / n_kv_heads). Score of query i and key j:
 * softcap * tanh(scale q_i.k_j / softcap) (no capping when softcap is 0), plus a relative-position bias for
 * T5-style models (rel_bias), then the masks (causal, window, key mask) and the softmax. */
typedef struct av_qk_view {
    av_tensor q, k;
    float scale, softcap;
    int causal, window;
    int has_rel_bias, has_key_mask;
} av_qk_view;
int av_trace_qk(const av_trace *t, av_attn_kind kind, int layer, av_qk_view *out, av_err *err);

/* Picks one head's matrix or reduces over heads. spec: a head index ("5"), "mean", "max" or "min".
 * out: (n_query, n_key) floats. */
int av_attn_select_heads(const av_attn_view *v, const char *spec, float *out, av_err *err);

/* ---- generation --------------------------------------------------------------------------------------- */

/* Greedy (temperature 0) continuation. prompt may be "" (start from BOS). on_piece receives decoded bytes as
 * they are produced (may be NULL). out_ids (optional) receives the whole sequence, malloc'd. */
typedef void (*av_piece_fn)(void *ctx, const char *bytes, size_t len);
int av_generate_greedy(const av_model *m, const char *prompt, int steps, av_piece_fn on_piece, void *ctx,
                       int32_t **out_ids, size_t *n_out, av_err *err);

/* ---- images and encoder-decoders (docs/MODELS.md) ------------------------------------------------------ */

/* One class of an image model's prediction. */
typedef struct av_class_score {
    int id;            /* class index */
    float prob;        /* softmax probability */
    const char *label; /* class name (valid while the model is loaded), or NULL */
} av_class_score;

/* Image models (ViT): decodes a PNG or JPEG file, applies the model's evaluation preprocessing (resize,
 * center crop, mean/std from its config) and captures every layer's attention over [CLS] + patches ("self"
 * kind; metadata patch_grid "14x14", prefix_tokens "1", predictions). top (may be NULL) receives the k most
 * probable classes, best first. */
int av_trace_from_image(const av_model *m, const char *path, const av_run_params *params, av_trace **out,
                        av_class_score *top, int k, av_err *err);
/* Same on an already preprocessed input: pixels (3, height, width), height = width = the model's image size.
 */
int av_trace_from_pixels(const av_model *m, const float *pixels, int height, int width,
                         const av_run_params *params, av_trace **out, av_class_score *top, int k,
                         av_err *err);
/* The model's preprocessing alone: *pixels (3, *height, *width), malloc'd (caller frees). */
int av_image_preprocess(const av_model *m, const char *path, float **pixels, int *height, int *width,
                        av_err *err);

/* Encoder-decoders (Marian, BART, T5): the source is encoded with the tokenizer's special tokens (ending in
 * end-of-sequence); with a target the decoder is teacher-forced on it (decoder start token first), without
 * one it decodes greedily for up to steps tokens or until end-of-sequence. The trace holds attn.enc.<l>,
 * attn.dec.<l>, attn.cross.<l> [n_heads, n_target, n_source]; its tokens are the decoder's, and metadata
 * source_tokens / target_tokens label both sides. av_trace_from_text on such a model decodes greedily. */
int av_trace_from_pair(const av_model *m, const char *source, const char *target, int steps,
                       const av_run_params *params, av_trace **out, av_err *err);
/* Same on ids used exactly as given: src is the encoder input, tgt the decoder input (starting with the
 * decoder start token), or NULL for greedy decoding from the start token. */
int av_trace_from_pair_ids(const av_model *m, const int32_t *src, size_t n_src, const int32_t *tgt,
                           size_t n_tgt, int steps, const av_run_params *params, av_trace **out, av_err *err);

#ifdef __cplusplus
}
#endif
#endif /* ATTNVIZ_H */
