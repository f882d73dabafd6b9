/* attnviz: run transformer models and capture what every layer and head attends to.
 *
 * The one public header of libattnviz. Conventions:
 *   - every fallible call returns 0 on success, -1 on failure, and fills an av_err with one readable line;
 *   - the library never exits or aborts on bad input;
 *   - handles are opaque; what users read (tensors, attention matrices) is exposed as plain-data views.
 *
 * Example: run a model on a sentence, print where the last token looks in layer 0 (mean over heads), save the
 * trace. Build with `cc example.c -Iinclude build/libattnviz.a $(LIBS of the Makefile)` or `-lattnviz`;
 * tests/cli/test_header_example.sh compiles and runs the code between the BEGIN and END lines.
 *
 *   // BEGIN EXAMPLE
 *   #include <stdio.h>
 *   #include "attnviz.h"
 *
 *   int main(int argc, char **argv) {
 *       if (argc != 3) return fprintf(stderr, "usage: %s MODEL TEXT\n", argv[0]), 2;
 *       av_err err;
 *       av_model *model;
 *       av_model_params mp = av_model_default_params();
 *       if (av_model_load(argv[1], &mp, &model, &err) != 0) return fprintf(stderr, "%s\n", err.msg), 1;
 *       av_run_params rp = av_run_default_params();
 *       av_trace *trace;
 *       if (av_trace_from_text(model, argv[2], &rp, &trace, &err) != 0) {
 *           fprintf(stderr, "%s\n", err.msg);
 *           av_model_free(model);
 *           return 1;
 *       }
 *       av_attn_view a; // a.data: (n_heads, n_query, n_key)
 *       if (av_trace_attn(trace, AV_ATTN_SELF, 0, &a, &err) == 0) {
 *           int q = a.n_query - 1;
 *           for (int k = 0; k < a.n_key; k++) {
 *               float mean = 0;
 *               for (int h = 0; h < a.n_heads; h++)
 *                   mean += a.data[((size_t)h * a.n_query + q) * a.n_key + k];
 *               printf("%-12s %.4f\n", av_trace_token(trace, k), mean / a.n_heads);
 *           }
 *       }
 *       int rc = av_trace_save(trace, "example.safetensors", &err);
 *       if (rc != 0) fprintf(stderr, "%s\n", err.msg);
 *       av_trace_free(trace);
 *       av_model_free(model);
 *       return rc != 0;
 *   }
 *   // END EXAMPLE
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
#define AV_TRACE_VERSION "3" /* the newest trace format version read and written (docs/TRACE_FORMAT.md) */
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
    AV_FAMILY_T2I,       /* "t2i": text-to-image diffusion (docs/T2I_MODEL.md) */
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
 * SentencePiece .model, a llama2.c tokenizer .bin, a WordPiece vocab.txt, or a GGUF file's own tokenizer (see
 * docs/TOKENIZERS.md). */
int av_tokenizer_load(const char *path, av_tokenizer **out, av_err *err);
void av_tokenizer_free(av_tokenizer *tok);
/* Encodes UTF-8 text. *ids is malloc'd (caller frees). add_bos adds the special tokens the tokenizer itself
 * adds around a text: BOS for SentencePiece and llama2.c, [CLS] ... [SEP] for BERT, what tokenizer.json's
 * post-processor says, what a GGUF file's tokenizer.ggml.add_bos_token / add_eos_token say (llama.cpp's
 * defaults when absent); nothing for GPT-2. Special tokens written in the text are matched whole. Invalid
 * UTF-8 never fails: SentencePiece models see each bad byte as U+FFFD (as libsentencepiece does), GGUF
 * tokenizers do what llama.cpp does, the other kinds replace it by U+FFFD before tokenizing. */
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
/* The label av_tokenizer_display gives text i of n byte strings read as one text (texts[k]: lens[k] bytes),
 * for tokens that come without a tokenizer (API responses): control characters escaped, a character split
 * over several texts shown on the text where it starts, "·" and <0xNN> bytes on a text holding only its rest,
 * <0xNN> for bytes that never form a character. malloc'd (caller frees); NULL when out of memory. */
char *av_display_bytes(const char *const *texts, const size_t *lens, size_t n, size_t i, unsigned flags);
/* 1 for special tokens (control tokens such as [CLS], <s>, <|endoftext|>, and the unknown token). */
int av_tokenizer_is_special(const av_tokenizer *tok, int id);
/* Id of a piece spelled exactly as in the vocabulary, -1 when absent. */
int av_tokenizer_find(const av_tokenizer *tok, const char *piece);
/* The algorithm, e.g. "sentencepiece bpe", "byte-level bpe", "wordpiece", "unigram". */
const char *av_tokenizer_model_name(const av_tokenizer *tok);

/* ---- chat prompts (docs/TOKENIZERS.md#chat-templates) ------------------------------------------------ */

typedef struct av_chat_params {
    int add_generation_prompt; /* default 1: end with the opening of the assistant's turn */
    const char *chat_template; /* NULL: the tokenizer's own (GGUF tokenizer.chat_template, a Hugging Face
                                  directory's chat_template.jinja or tokenizer_config.json chat_template) */
    const char *bos_token; /* the template's bos_token / eos_token; NULL: the tokenizer's BOS / EOS pieces */
    const char *eos_token;
    int64_t now; /* the time strftime_now() formats (seconds since the epoch); 0: now */
} av_chat_params;

av_chat_params av_chat_default_params(void);

/* Formats a conversation with a chat template (a Jinja subset, docs/TOKENIZERS.md). messages is JSON: an
 * OpenAI-style array [{"role": "user", "content": "..."}, ...] or an object {"messages": [...], ...} whose
 * other keys become template variables (tools, enable_thinking...). *text (malloc'd) is the prompt the model
 * sees and *add_special how to encode it so that the ids are the ones its own runtime gives: GGUF tokenizers
 * follow llama.cpp (a BOS the template writes is removed from the text and *add_special is 1, so encoding
 * adds BOS once); the others follow transformers (*add_special is 0: the template's text is encoded as it
 * is). tok may be NULL when params give the template (then *add_special is 0). */
int av_chat_format(const av_tokenizer *tok, const char *messages, size_t len, const av_chat_params *params,
                   char **text, int *add_special, av_err *err);

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

/* Runs the model on text and captures every layer's post-softmax attention. An empty text runs the special
 * tokens alone (BOS: the first token's distribution) and fails when there are none; the CLI and the server
 * refuse empty input. A model is only read: several runs may share one at the same time (each with its own
 * av_run_params.n_threads). On a text-to-image model it generates an image with av_t2i_default_params()
 * (av_trace_from_t2i); av_trace_from_ids refuses one. */
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

/* ---- log-probabilities and generation in a trace (docs/TRACE_FORMAT.md, version 3) ------------------------
 * From `attnviz generate`, from a model API's response (`attnviz import`), or derived on first use from
 * stored logits (`attnviz run --logits`). Position t scores token t given tokens 0..t-1, so attention row t -
 * 1 is what the model computed while producing token t. Views stay valid until av_trace_free. */

typedef struct av_logprob_view {
    int n_tokens;              /* av_trace_n_tokens */
    int k;                     /* alternatives per position (may be 0) */
    const float *token;        /* (n_tokens) log p(token t | tokens < t), nats; NaN where unknown (t = 0) */
    const float *entropy;      /* (n_tokens) entropy (nats) of the distribution that produced token t; NaN
                                  where unknown (API responses give only the top alternatives) */
    const int32_t *alt_ids;    /* (n_tokens, k) the k most probable tokens at t, best first; -1 where the id
                                  is unknown (APIs give text) or the slot is empty */
    const float *alt_logprobs; /* (n_tokens, k) their log-probabilities; NaN where the slot is empty */
    const int32_t *alt_pieces; /* (n_tokens, k) index into pieces; -1 where the slot is empty */
    const char *const *pieces; /* (n_pieces) display labels of the alternatives */
    int n_pieces;
} av_logprob_view;

/* 1 when the trace holds log-probabilities, or logits to derive them from. */
int av_trace_has_logprobs(const av_trace *t);
/* The log-probabilities; -1 with a message when the trace has none. Thread-safe. */
int av_trace_logprobs(const av_trace *t, av_logprob_view *out, av_err *err);
/* 1 when the trace holds attention (full or lazy); 0 for log-probabilities alone (API responses). */
int av_trace_has_attention(const av_trace *t);

/* The generation metadata ("prompt_len" and the "generation" object); strings stay valid until
 * av_trace_free. Returns -1 (prompt_len -1, the rest NULL/0) when the trace has none. */
typedef struct av_generation_info {
    int prompt_len;       /* tokens given before the produced ones; -1 when the trace is not a generation */
    const char *source;   /* "attnviz" (generate), "api" (import), "logits" (derived from logits) */
    const char *provider; /* API responses: "openai-chat", "openai-completions", "vllm-chat",
                             "vllm-completions", "ollama-generate", "ollama-chat", "llamacpp"; else NULL */
    const char *stop_reason; /* "eos", "stop", "length", ... as the source says; NULL when unknown */
    int top_logprobs;        /* alternatives asked for per position; 0 when unknown */
    int alternatives_cap;    /* the provider's maximum number of alternatives (OpenAI: 20); 0 for none */
    const char *missing;     /* JSON array of what the source does not give ("attention", "prompt_logprobs",
                                "token_ids", "entropy", ...), or NULL */
    const char *sampling;    /* JSON object of the sampling settings, or NULL */
} av_generation_info;
int av_trace_generation_info(const av_trace *t, av_generation_info *out);

/* Model API responses saved with their log-probabilities (OpenAI chat and legacy completions, vLLM with
 * prompt_logprobs, Ollama /api/generate and /api/chat, llama.cpp's /completion), as one JSON document, JSON
 * lines or a server-sent-events dump, become a trace of tokens and log-probabilities without attention
 * (docs/GENERATION.md). Bad or truncated JSON fails with one line naming the place. */
typedef struct av_api_import_params {
    const char *provider; /* NULL or "auto": from the response's shape; "openai", "vllm", "ollama", "llamacpp"
                             (the vendor; chat or completions from the shape), or a provider name of
                             av_generation_info */
    int choice;           /* which choice of a response with several (n > 1); default 0 */
    int max_alternatives; /* alternatives kept per token (default and at most 1024) */
    const char *model;    /* metadata "model" (default: the response's "model") */
} av_api_import_params;

av_api_import_params av_api_import_default_params(void);
/* data: the response file's bytes (size), name: for messages. p may be NULL (defaults). */
int av_trace_from_api(const char *data, size_t size, const char *name, const av_api_import_params *p,
                      av_trace **out, av_err *err);
int av_trace_from_api_file(const char *path, const av_api_import_params *p, av_trace **out, av_err *err);

/* ---- generation (docs/GENERATION.md) ------------------------------------------------------------------- */

/* How each token is chosen, in this order (as Hugging Face transformers applies them): logits / temperature,
 * the top_k most probable, the smallest most-probable prefix reaching top_p, those with p >= min_p * p_max;
 * then one uniform draw of a SplitMix64 stream seeded with seed picks among the rest. temperature 0 (the
 * default) is greedy: the most probable token, the lowest id on ties, no draw. Same seed, same tokens. */
typedef struct av_sampling {
    double temperature; /* >= 0; 0: greedy */
    int top_k;          /* 0: off */
    double top_p;       /* (0, 1]; 1: off */
    double min_p;       /* [0, 1]; 0: off */
    uint64_t seed;
} av_sampling;

av_sampling av_sampling_default_params(void);
/* Checks the ranges; -1 with a message naming the setting. */
int av_sampling_check(const av_sampling *s, av_err *err);

/* Receives the bytes of produced text as they come. */
typedef void (*av_piece_fn)(void *ctx, const char *bytes, size_t len);

typedef struct av_generate_params {
    int steps;               /* tokens to produce at most (default 64; fewer when the context is full) */
    av_sampling sampling;    /* default greedy */
    int top_logprobs;        /* alternatives recorded per position (default 10, at most 1024) */
    const char *const *stop; /* (n_stop) stop strings: generation ends once the produced text holds one */
    int n_stop;
    int ignore_eos;       /* go on after end-of-sequence (default 0: stop there, the token kept) */
    int add_bos;          /* decoder-only prompts: encode with the tokenizer's specials (default 1) */
    av_piece_fn on_piece; /* the produced text as it comes (may be NULL) */
    void *piece_ctx;
    int want_attention; /* capture every layer's attention of the whole sequence (default 1); else the
                           trace holds the tokens and log-probabilities only */
    av_run_params run;  /* how the attention is captured (dtype, lazy, threads, output_path) */
} av_generate_params;

av_generate_params av_generate_default_params(void);
/* Generates with the one decoder and its KV cache. Decoder-only models (Llama family, GPT-2) continue prompt;
 * encoder-decoders (Marian, BART, T5) translate it, decoding from their start token. The trace (version 3)
 * holds the whole sequence, prompt_len (the prompt's tokens; 1, the start token, for encoder-decoders), per
 * position the token's log-probability, the entropy and top_logprobs alternatives (the prompt's tokens scored
 * too), the sampling settings and the stop reason (generation metadata), and every layer's attention (row
 * t - 1 is the attention computed while producing token t). */
int av_generate(const av_model *m, const char *prompt, const av_generate_params *p, av_trace **out,
                av_err *err);
/* Same on ids used as given: the prompt (decoder-only) or the encoder's input (encoder-decoders). */
int av_generate_ids(const av_model *m, const int32_t *ids, size_t n, const av_generate_params *p,
                    av_trace **out, av_err *err);

/* Greedy (temperature 0) continuation without a trace. prompt may be "" (start from BOS). on_piece receives
 * decoded bytes as they are produced (may be NULL). out_ids (optional) receives the whole sequence, malloc'd.
 */
int av_generate_greedy(const av_model *m, const char *prompt, int steps, av_piece_fn on_piece, void *ctx,
                       int32_t **out_ids, size_t *n_out, av_err *err);
/* Same from token ids (e.g. a chat prompt encoded with the BOS rule av_chat_format reports): the sequence
 * starts with ids[0..n_ids) exactly, nothing added. */
int av_generate_greedy_ids(const av_model *m, const int32_t *ids, size_t n_ids, int steps,
                           av_piece_fn on_piece, void *ctx, int32_t **out_ids, size_t *n_out, av_err *err);

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

/* ---- attribution and the logit lens (docs/ATTRIBUTION.md) ----------------------------------------------
 * For a source (the prompt, BOS included) and targets (tokens that follow it in a decoder; predictions at
 * given rows of an encoder's input), how much each source token matters to log p(target_i): perturbation
 * (Captum's FeatureAblation / occlusion, Shapley value sampling) and gradients with respect to the input
 * embeddings (saliency, input x gradient, integrated gradients, attention x gradient per head). The results
 * go into a trace beside the attention of the whole sequence: attr.<method> [n_target, source_len]. */

typedef enum av_attr_method {
    AV_ATTR_OCCLUSION =
        0,             /* "occlusion": log p(target_i | input) - log p(target_i | source group replaced) */
    AV_ATTR_SHAPLEY,   /* "shapley": Shapley value sampling over random permutations of the groups */
    AV_ATTR_SALIENCY,  /* "saliency": || d log p / d e_j ||_2 (e_j: token j's input embedding) */
    AV_ATTR_IXG,       /* "ixg": input x gradient, e_j . d log p / d e_j */
    AV_ATTR_IG,        /* "ig": integrated gradients, (e_j - b_j) . integral of the gradient on the path */
    AV_ATTR_ATTN_GRAD, /* "attn-grad": sum over layers, heads, queries of A * d log p / dA per key */
    AV_ATTR_METHOD_COUNT
} av_attr_method;
const char *av_attr_method_name(av_attr_method m);
int av_attr_method_parse(const char *s, av_attr_method *out);

typedef enum av_attr_baseline {
    AV_BASELINE_TOKEN = 0, /* "token": the token av_attr_params.baseline_id (default: pad, else unk) */
    AV_BASELINE_ZERO,      /* "zero": a zero input embedding */
    AV_BASELINE_REMOVE,    /* "remove": the token is deleted (perturbation methods of decoders only) */
    AV_BASELINE_COUNT
} av_attr_baseline;
const char *av_attr_baseline_name(av_attr_baseline b);
int av_attr_baseline_parse(const char *s, av_attr_baseline *out);

typedef enum av_attr_group {
    AV_GROUP_TOKEN = 0, /* "token": every source token alone */
    AV_GROUP_WORD,      /* "word": a word starts at a piece with a leading space (" ", "▁", "Ġ") or after a
                           special token; WordPiece "##" pieces continue one; special tokens stand alone */
    AV_GROUP_SPAN,      /* "span:N": consecutive runs of group_span tokens */
    AV_GROUP_COUNT
} av_attr_group;

typedef enum av_ig_rule {
    AV_IG_GAUSS_LEGENDRE = 0, /* "gausslegendre" (Captum's default) */
    AV_IG_RIEMANN_LEFT,       /* "riemann_left" */
    AV_IG_RIEMANN_RIGHT,      /* "riemann_right" */
    AV_IG_RIEMANN_MIDDLE,     /* "riemann_middle" */
    AV_IG_RIEMANN_TRAPEZOID,  /* "riemann_trapezoid" */
    AV_IG_RULE_COUNT
} av_ig_rule;
const char *av_ig_rule_name(av_ig_rule r);
int av_ig_rule_parse(const char *s, av_ig_rule *out);

typedef struct av_attr_params {
    unsigned methods;           /* bits (1u << av_attr_method); default: occlusion */
    av_attr_baseline baseline;  /* default AV_BASELINE_TOKEN */
    int baseline_id;            /* -1 (default): the model's pad token, else unk, else mask */
    av_attr_group group;        /* perturbation methods: how source tokens are grouped (default token) */
    int group_span;             /* AV_GROUP_SPAN: tokens per group */
    int samples;                /* shapley: permutations (default 25) */
    uint64_t seed;              /* shapley: SplitMix64 seed of the permutations (default 0) */
    int steps;                  /* ig: integration points (default 32) */
    av_ig_rule ig_rule;         /* ig: default Gauss-Legendre */
    const int32_t *target_rows; /* encoders: the input row each target is predicted at (n_target); default:
                                   the rows holding the mask token, in order */
    int max_batch;              /* occlusion, shapley, ig: sequences per pass (0: within ~1 GiB) */
    int with_attention;         /* also capture the attention of the whole sequence (default 1) */
    av_run_params run;          /* threads, lazy / full attention capture, output path */
    void (*progress)(void *ctx, const char *stage, int done, int total); /* optional */
    void *progress_ctx;
} av_attr_params;

av_attr_params av_attr_default_params(void);
/* Attribution of the targets to every source token (BOS included). Decoders: the sequence is src + tgt and
 * target i is predicted at row n_src - 1 + i; n_tgt 0 refuses (generate them first, see av_attribute_text).
 * Encoders (BERT family): tgt are the expected tokens at av_attr_params.target_rows. */
int av_attribute_ids(const av_model *m, const int32_t *src, size_t n_src, const int32_t *tgt, size_t n_tgt,
                     const av_attr_params *p, av_trace **out, av_err *err);
/* Same from text: source encoded with the tokenizer's special tokens, target without them; target NULL:
 * decoders continue greedily for gen_steps tokens (stopping at end-of-sequence); encoders predict the mask
 * tokens of the source (argmax) when target is NULL. */
int av_attribute_text(const av_model *m, const char *source, const char *target, int gen_steps,
                      const av_attr_params *p, av_trace **out, av_err *err);

typedef struct av_lens_params {
    int k;             /* top tokens kept per layer and position (default 5) */
    av_run_params run; /* the attention of the run is captured as av_trace_from_ids does */
} av_lens_params;
av_lens_params av_lens_default_params(void);
/* The logit lens: the residual stream entering each layer (entry 0: the embeddings) and leaving the last one
 * decoded with the final norm and the output head. lens.topk_ids / lens.topk_logprobs [n_layers + 1, T, k];
 * the rank and log-probability of the next token per layer and position (lens.target_*). */
int av_lens_ids(const av_model *m, const int32_t *ids, size_t n, const av_lens_params *p, av_trace **out,
                av_err *err);
int av_lens_text(const av_model *m, const char *text, const av_lens_params *p, av_trace **out, av_err *err);

/* One attribution of a trace; views stay valid until av_trace_free. */
typedef struct av_attr_view {
    int n_target, source_len;
    const float *scores;          /* (n_target, source_len) attr.<method> */
    const int32_t *target_ids;    /* (n_target) */
    const int32_t *target_rows;   /* (n_target) the logits row each target is predicted at */
    const float *target_logprobs; /* (n_target) log p(target_i) with the original input */
} av_attr_view;
/* -1 with a message when the trace holds no attribution of that method. */
int av_trace_attribution(const av_trace *t, av_attr_method method, av_attr_view *out, av_err *err);

typedef struct av_lens_view {
    int n_entries, n_tokens, k;   /* n_entries = n_layers + 1 */
    const int32_t *topk_ids;      /* (n_entries, n_tokens, k) best first */
    const float *topk_logprobs;   /* (n_entries, n_tokens, k) */
    const int32_t *target_ids;    /* (n_tokens) the next token, -1 at the last position */
    const float *target_logprobs; /* (n_entries, n_tokens) NaN where there is no next token */
    const int32_t *target_ranks;  /* (n_entries, n_tokens) 0 = most probable; -1 where none */
} av_lens_view;
int av_trace_lens(const av_trace *t, av_lens_view *out, av_err *err);

/* Any tensor of a trace by name, built in memory or loaded (attr.*, lens.*, logits, vnorm.<l>, ...); the
 * view stays valid until av_trace_free. -1 when absent. */
int av_trace_tensor(const av_trace *t, const char *name, av_tensor *out);

/* ---- text-to-image diffusion (family t2i, docs/T2I_MODEL.md) ------------------------------------------ */

typedef struct av_t2i_params {
    uint64_t seed;  /* of the starting noise (SplitMix64 + Box-Muller, the spec's section 8) */
    int steps;      /* DDIM steps, 1..num_train_timesteps; 0: the model's default_steps */
    float guidance; /* classifier-free guidance scale; negative: the model's guidance_scale */
    int n_threads;  /* 0: the model's default */
} av_t2i_params;

av_t2i_params av_t2i_default_params(void);

/* Generates an image from prompt with the model's deterministic DDIM sampler (classifier-free guidance) and
 * records the conditional pass's cross-attention at every step. The trace holds "image" F32 [3, H, W] in
 * [0, 1], "daam.raw" F32 [steps, layers, heads, S, g, g] (each patch's attention to each of the S prompt
 * tokens; the time token's row dropped), "daam.words" F32 [S, H, W] (every token's DAAM map over all steps,
 * layers and heads), attn.cross.<l> [heads, 1 + g*g, S] (the mean over steps), and metadata prompt,
 * prompt_tokens, seed, steps, guidance_scale, timesteps, patch_grid. */
int av_trace_from_t2i(const av_model *m, const char *prompt, const av_t2i_params *p, av_trace **out,
                      av_err *err);

/* DAAM (Tang et al. 2022) over half-open ranges of steps, layers and heads ([0, 0): all) of a trace's
 * daam.raw: per prompt token, the sum over the ranges on the patch grid, bilinear upsampling to the image
 * (align_corners false) and min-max normalization to [0, 1]. out: (S, H, W). */
typedef struct av_daam_range {
    int step0, step1, layer0, layer1, head0, head1;
} av_daam_range;
int av_trace_daam(const av_trace *t, const av_daam_range *r, float *out, av_err *err);

/* ---- library ------------------------------------------------------------------------------------------ */

/* The library's version (AV_VERSION of the build), for bindings that load libattnviz.so at run time. */
const char *av_version(void);
/* Frees a buffer the library malloc'd and handed over (ids, figures, pages, statistics), for bindings that
 * cannot reach the C library's free(). NULL is ignored. */
void av_free(void *p);

/* ---- what a trace holds, for bindings ---------------------------------------------------------------- */

/* Every metadata key and value as one JSON object (string -> string), malloc'd (free with av_free); NULL when
 * out of memory. */
char *av_trace_meta_json(const av_trace *t);

/* Every tensor of the file a trace was loaded from, by position 0 .. av_trace_n_file_tensors() - 1, whatever
 * its name (also those this version does not interpret: later trace versions add tensors) and dtype. The view
 * points into the mapped file and stays valid until av_trace_free; *name likewise. A trace built in memory
 * (av_trace_from_*, av_trace_import) has no file: 0 tensors. */
int av_trace_n_file_tensors(const av_trace *t);
int av_trace_file_tensor(const av_trace *t, int i, const char **name, av_tensor *out, av_err *err);

/* ---- bring your own attention (trace/import.c) ----------------------------------------------------------
 */

/* An array given in memory: its name decides its kind as a file member's would ("cross..." -> cross,
 * "encoder..."/"enc..." -> enc, "decoder..."/"dec..." -> dec, else self); tensor: F32, F16 or BF16, C order,
 * one of the shapes below (at most AV_MAX_DIMS dimensions). The data is copied. */
typedef struct av_import_array {
    const char *name;
    av_tensor tensor;
} av_import_array;

/* Attention saved by other tools (.npy per layer, .npz, safetensors files, or arrays in memory), shaped
 * [layers, heads, T, T], [layers, 1, heads, T, T], or per layer [heads, T, T] / [1, heads, T, T] (one layer
 * of a batch-1 output_attentions tuple, when a kind has several arrays) / [T, T]. See docs/VIEWER.md
 * ("Importing attention"). */
typedef struct av_import_params {
    const char *const *inputs; /* (n_inputs) array files, in layer order */
    int n_inputs;
    const av_import_array *arrays; /* (n_arrays) arrays in memory, after the files, in layer order */
    int n_arrays;
    const char
        *tokens_path; /* JSON: ["tok", ...] or {"tokens": [...], "token_ids": [...], "source_tokens": [...],
                         "target_tokens": [...], "model": "...", "patch_grid": "14x14", "prefix_tokens": 1,
                         "metadata": {"key": "value"}}; NULL: tokens are shown as indices */
    const char *tokens_json; /* the same JSON as a string (instead of tokens_path) */
    int kind;                /* an av_attn_kind to force every array to; -1 (default): from the array name */
    int check_rows;          /* validate values in [0, 1] and row sums (default 1) */
    double tolerance;        /* |row sum - 1| allowed; 0: 1e-3 (2e-2 for float16 arrays) */
    av_dtype dtype;          /* trace storage: AV_DTYPE_F32 (default) or AV_DTYPE_F16 */
    const char *model;       /* metadata "model" (overrides the tokens file) */
    const char *patch_grid;  /* "14x14" for image traces */
    int prefix_tokens;       /* tokens before the patches (1 for CLS); -1: unset */
    const char *image_path;  /* a PNG stored base64 in metadata "image_png_base64" for the viewer */
} av_import_params;

av_import_params av_import_default_params(void);
/* Builds a trace from the arrays; each row must be a probability distribution (values in [0, 1], sum 1 within
 * the tolerance) unless check_rows is 0; errors name the array, layer, head and query row. */
int av_trace_import(const av_import_params *p, av_trace **out, av_err *err);

/* ---- figures: PNG and SVG heatmaps (render/) ------------------------------------------------------------
 */

typedef enum av_cmap {
    AV_CMAP_VIRIDIS = 0,
    AV_CMAP_MAGMA,
    AV_CMAP_DIVERGING /* blue-white-red, for signed differences */
} av_cmap;

/* "viridis", "magma", "diverging" (alias "rdbu"); case-insensitive. */
int av_cmap_parse(const char *name, av_cmap *out, av_err *err);
/* Canonical name of cm ("viridis", "magma", "diverging"); "?" when out of range. */
const char *av_cmap_name(av_cmap cm);

typedef struct av_plot_params {
    av_attn_kind kind;   /* default AV_ATTN_SELF */
    int layer;           /* layer index */
    int head;            /* head index, AV_HEADS_MEAN or AV_HEADS_MAX */
    int grid;            /* all layers x heads as thumbnails */
    av_cmap cmap;        /* default viridis */
    int log_scale;       /* color by log10(value) over [log10(vmax) - 4, log10(vmax)] */
    int exclude_first;   /* drop the first token (query row and key column) and renormalize rows to sum 1 */
    double dpi;          /* PNG pixels per inch (default 150); the layout is in CSS px at 96 per inch */
    double cell;         /* cell size in CSS px; 0 = automatic */
    float vmin, vmax;    /* color range; vmin == vmax: automatic (0..max; diverging -a..a) */
    const char *title;   /* NULL: "<model> · layer L · head H" */
    int max_label_chars; /* longer token labels are cut with an ellipsis (default 16) */
    /* a heatmap of a matrix the caller computed (a window, pooled cells, a reduction over layers) instead
     * of (layer, head): matrix (n_rows, n_cols) with a label per row and column; the title is p->title */
    const float *matrix;
    int n_rows, n_cols;
    char *const *row_labels, *const *col_labels;
} av_plot_params;

av_plot_params av_plot_default_params(void);

/* Where the matrix cells landed, in output pixels (PNG) or user units (SVG), for callers and tests.
 * For a grid: the first thumbnail (layer 0, head 0), its cell size and the pitch between thumbnails. */
typedef struct av_plot_geom {
    int width, height;       /* image size */
    double x0, y0;           /* top-left of cell (0, 0) */
    double cell_w, cell_h;   /* size of one matrix cell (after any pooling: one raster cell) */
    int n_rows, n_cols;      /* raster cells shown (queries x keys after exclusion and pooling) */
    double pitch_x, pitch_y; /* grid: distance between thumbnails */
    float vmin, vmax;        /* color range used */
} av_plot_geom;

typedef enum av_plot_format { AV_PLOT_PNG = 0, AV_PLOT_SVG, AV_PLOT_FORMAT_COUNT } av_plot_format;

/* Lays out and encodes the figure (one head, the mean/max over heads, or the grid) into a malloc'd buffer
 * (*out, *n bytes; free with av_free): PNG (libpng, at p->dpi) or SVG (UTF-8 text, NUL-terminated beyond n).
 * geom (may be NULL) receives the cell placement in the output's pixels. */
int av_plot_build(const av_trace *t, const av_plot_params *p, av_plot_format fmt, uint8_t **out, size_t *n,
                  av_plot_geom *geom, av_err *err);
/* Renders to path, .png or .svg chosen by extension; atomic write (temp file + rename). */
int av_plot_render(const av_trace *t, const av_plot_params *p, const char *path, av_plot_geom *geom,
                   av_err *err);

/* ---- the standalone HTML viewer (render/html.c, docs/VIEWER.md) ---------------------------------------- */

typedef enum av_html_precision {
    AV_HTML_AUTO = 0, /* F16 when the page stays under 4 MiB, else U8 */
    AV_HTML_F16,      /* IEEE half floats: ~3 significant digits */
    AV_HTML_U8        /* 8 bits per weight, cube-root companded, a float32 scale per row (docs/VIEWER.md) */
} av_html_precision;

typedef struct av_html_params {
    av_html_precision precision;
    const char *title; /* page title; NULL: the model name */
    const char *view;  /* first view: one of AV_HTML_VIEWS (NULL: steps
                          for generations and traces without attention, image with patches, else heatmap) */
    const char
        *image_path; /* image traces: a PNG to embed as metadata image_png_base64 (NULL: the trace's) */
    int analysis;    /* embed head statistics and roles, rollout and value norms (default 1) */
    const char *roles_path; /* `attnviz roles --json` output: probe roles (incl. induction) for the grid */
    /* what the page shows first (the viewer's controls change it); defaults keep the viewer's choice */
    int kind;         /* an av_attn_kind; -1 (default): self (or cross for encoder-decoders) */
    int layer;        /* default 0 */
    int head;         /* head index, AV_HEADS_MEAN (default) or AV_HEADS_MAX */
    const int *heads; /* (n_heads) heads checked in the head view; NULL: the head above (all for mean) */
    int n_heads;
    const char *theme; /* "light", "dark"; NULL: the browser's preference */
    int exclude_first; /* the page starts with the first (sink) token excluded */
    /* long traces: above max_mb (default 32) of attention the page embeds a pooled overview of every head
     * (max over cells of tokens; a lazy trace's stored overview when it has one) instead of the matrices, and
     * the query rows [rows_q0, rows_q1) of every layer exactly (the Rows view) within the same budget */
    double max_mb;
    int rows_q0, rows_q1; /* rows_q1 <= rows_q0: none */
} av_html_params;

av_html_params av_html_default_params(void);
/* The viewer's views (for --view and the server's ?view=): 1 when name is one of AV_HTML_VIEWS. */
#define AV_HTML_VIEWS                                                                                        \
    "heatmap, model, head, image, summary, rollout, norm, steps, attribution, lens, neuron, rows, qkmap"
int av_html_view_valid(const char *name);
/* Builds the page into a malloc'd NUL-terminated buffer of *n bytes (free with av_free): one file with no
 * network references (CSS, JS and data are inline; a Content-Security-Policy forbids any request). */
int av_html_build(const av_trace *t, const av_html_params *p, char **out, size_t *n, av_err *err);
/* Builds and writes atomically. bytes (may be NULL) receives the file size. */
int av_html_write(const av_trace *t, const av_html_params *p, const char *path, size_t *bytes, av_err *err);

/* ---- analyses (analysis/, formulas in docs/ANALYSIS.md) ------------------------------------------------ */

typedef enum av_reduce { AV_REDUCE_MEAN = 0, AV_REDUCE_MAX, AV_REDUCE_MIN } av_reduce;

/* "mean", "max" or "min". */
int av_reduce_parse(const char *s, av_reduce *out, av_err *err);
const char *av_reduce_name(av_reduce r);

/* Statistics of one head, averaged over the query rows that have a choice (row 0 of a causal layer can only
 * attend to itself and is left out). NaN where a statistic does not apply. */
typedef struct av_head_stats {
    int layer, head;
    int n_rows;          /* query rows averaged */
    double entropy;      /* -sum_j a_ij ln a_ij (nats) */
    double entropy_norm; /* entropy / ln(visible keys): 0 = one key, 1 = uniform */
    double distance;     /* sum_j a_ij |i - j| (positional kinds only) */
    double first;        /* a_i0: attention to the first token (the "sink") */
    double self;         /* a_ii (positional kinds only) */
    double prev;         /* a_i,i-1 (positional kinds only; rows i >= 1) */
    double special;      /* attention mass on special tokens (NaN without token classes) */
    double punct;        /* attention mass on punctuation (NaN without token classes) */
    double uniformity;   /* (sum_j min(a_ij, 1/n) - 1/n) / (1 - 1/n), n visible keys: 0 one-hot, 1 uniform */
    double
        first_norm; /* norm-based share of the first token: a_i0 v_0 / sum_j a_ij v_j (NaN without vnorm) */
} av_head_stats;

/* Every head of every layer of kind (or only layer `layer` when >= 0). *out malloc'd (n_layers * n_heads,
 * layer-major; free with av_free). */
int av_trace_head_stats(const av_trace *t, av_attn_kind kind, int layer, av_head_stats **out, int *n_out,
                        av_err *err);

typedef enum av_role {
    AV_ROLE_NONE = -1,
    AV_ROLE_PREV = 0,  /* "previous_token" */
    AV_ROLE_FIRST,     /* "first_token" (attention sink) */
    AV_ROLE_SELF,      /* "self" */
    AV_ROLE_BROAD,     /* "broad" (near-uniform) */
    AV_ROLE_DUPLICATE, /* "duplicate_token" */
    AV_ROLE_INDUCTION, /* "induction" */
    AV_ROLE_COUNT
} av_role;

#define AV_ROLE_MIN_SCORE 0.3 /* below this best score a head gets AV_ROLE_NONE ("none") */

const char *av_role_name(av_role r);

typedef struct av_head_roles {
    int layer, head;
    double score[AV_ROLE_COUNT]; /* in [0, 1]; NaN when that probe was not run */
    av_role best;                /* argmax of the scores, AV_ROLE_NONE below AV_ROLE_MIN_SCORE */
    double best_score;
} av_head_roles;

/* Fills the previous-token, first-token, self and broad scores from statistics (others NaN) and picks. */
void av_roles_from_stats(const av_head_stats *s, av_head_roles *r);

typedef struct av_roles_params {
    int seq_len;      /* L: length of the random segment, repeated twice after BOS (default 32) */
    int n_samples;    /* random sequences averaged (default 4) */
    uint64_t seed;    /* PRNG seed (default 1) */
    const char *text; /* natural-text probe (NULL: the built-in paragraph) */
} av_roles_params;

av_roles_params av_roles_default_params(void);

typedef struct av_roles_result {
    int n_layers, n_heads;
    av_head_roles *heads; /* (n_layers * n_heads), layer-major */
    int text_tokens;      /* tokens of the natural-text probe actually run */
    const char *text;     /* the natural-text probe (the caller's string or the built-in one) */
    int seq_len, n_samples;
    uint64_t seed;
} av_roles_result;

/* Runs the model under study on ids (n tokens, used as given: no BOS added) and returns its trace. Analysis
 * never runs a model itself; the caller passes this, e.g. av_trace_from_ids with add_bos = 0 (cmd_roles.c).
 */
typedef int (*av_roles_run_fn)(void *ctx, const int32_t *ids, size_t n, av_trace **out, av_err *err);

/* Probes the model's heads: a natural text and repeated random sequences (previous-token, first-token, self,
 * broad, duplicate-token and induction scores), run through run(run_ctx, ...); m gives the layer/head
 * counts, context, vocabulary and tokenizer (read only). Free with av_roles_result_free. */
int av_model_roles(const av_model *m, av_roles_run_fn run, void *run_ctx, const av_roles_params *p,
                   av_roles_result *out, av_err *err);
void av_roles_result_free(av_roles_result *r);

typedef struct av_rollout_params {
    av_reduce fusion; /* how the heads of a layer are fused (default mean) */
    float residual;   /* identity weight r: A' = rownorm((1-r) A + r I); 0.5 (default) is Abnar & Zuidema's */
    int normalize;    /* cross variant only: rescale each output row to sum 1 (default 0: the source share) */
} av_rollout_params;

av_rollout_params av_rollout_default_params(void);

/* Attention rollout over every layer of kind (self, enc or dec) of a trace. out (n_query, n_query). */
int av_rollout_trace(const av_trace *t, av_attn_kind kind, const av_rollout_params *p, float *out,
                     av_err *err);
/* Encoder-decoder rollout: how much each target token's final decoder state draws from each source token.
 * Needs "cross" layers; "dec" (same count as cross) and "enc" are used when present. out (n_target, n_source)
 * must hold the shape of attn.cross.0. See docs/ANALYSIS.md for the recurrence. */
int av_rollout_cross_trace(const av_trace *t, const av_rollout_params *p, float *out, int *n_target,
                           int *n_source, av_err *err);

typedef struct av_flow_params {
    av_reduce fusion; /* head fusion (default mean) */
    float residual;   /* as in rollout (default 0.5) */
    int normalize;    /* rescale each output row to sum 1 (default 1, as Abnar & Zuidema's code) */
    double max_work;  /* size guard: refuse when n_layers * T^4 exceeds it (default AV_FLOW_DEFAULT_MAX_WORK);
                         <= 0 disables the guard */
    int n_threads;    /* 0: all cores */
    void (*progress)(void *ctx, int done, int total); /* optional: source rows done (of the first thread) */
    void *progress_ctx;
} av_flow_params;

#define AV_FLOW_DEFAULT_MAX_WORK 1e9 /* a few seconds at 5 layers x 120 tokens */

av_flow_params av_flow_default_params(void);

/* Attention flow (max-flow from each token after the last layer to each input token through the layered
 * graph of rollout's A'). out (n_query, n_query). Refuses (with a message saying what to do) above max_work.
 */
int av_flow_trace(const av_trace *t, av_attn_kind kind, const av_flow_params *p, float *out, av_err *err);

/* Norm-based attention (Kobayashi et al. 2020) of a self-attention layer: ||alpha_ij v_j W_o^h|| =
 * alpha_ij * vnorm[h][j]; spec is a head index, "mean", "max" or "min" (over the per-head norm-based
 * matrices). normalize_rows rescales each row to sum 1. out (n_query, n_key). */
int av_norm_attn_trace(const av_trace *t, int layer, const char *spec, int normalize_rows, float *out,
                       av_err *err);

#ifdef __cplusplus
}
#endif
#endif /* ATTNVIZ_H */
