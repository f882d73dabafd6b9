/* The one capture of every family (capture.c): a run declares the attention kinds it produces, gets buffers
 * for them (full matrices, zeroed, possibly straight in the output file; or a lazy kind's queries and keys),
 * hands av_capture views to the forward pass (model.h), and turns the result into a trace. The
 * av_trace_from_* entry points (runs.c) prepare the inputs of each family around it. */
#ifndef AV_CAPTURE_H
#define AV_CAPTURE_H

#include "model/model.h"
#include "trace.h"

/* What a run captures of one kind. */
typedef struct cap_kind {
    int stack; /* the model stack whose blocks compute it */
    int cross; /* 1: the stack's cross-attention */
    int n_layers, n_heads, n_kv_heads, head_dim, n_query, n_key;
    float **attn;       /* (n_layers) -> (n_heads, n_query, n_key); NULL when lazy */
    float **q, **k;     /* lazy or keep_qk: (n_layers) -> (n_heads, n_query, head_dim), (n_kv_heads, n_key,
                           head_dim) */
    av_attn_pool *pool; /* lazy with an overview: (n_layers) pooled max and sum of every head */
    int pool_rows, pool_cols;
} cap_kind;

typedef struct av_run_capture {
    const av_model *m;
    const av_run_params *p;
    cap_kind kinds[AV_ATTN_KIND_COUNT]; /* n_layers 0: not captured */
    float **vnorm;                      /* (n_layers of self) -> (n_heads, n_query): single-stack models */
    float *logits;                      /* (n_logits, n_out), or NULL */
    int n_logits;
    av_st_prealloc *pre; /* the output file the attention (or a lazy run's queries and keys) goes into */
    int mapped;          /* the full or lazy buffers lie in that file's mapping: never free()d */
    int write_out; /* set before av_cap_alloc by a run that reads no full attention before av_cap_finish:
                      the attention in the file may then be written past the page cache */
    av_direct_writer *direct; /* that writer (the file's attention rows go through sink), or NULL */
    av_probs_sink sink;
    /* An F16 trace written as it is captured: the file holds the attention as F16, and the forward pass
     * names each row's place by an f32 address in coords, an inaccessible reservation as large as the
     * attention in f32 (never read or written: rows reach the file through sink, converted there). NULL for
     * F32 traces and F16 ones kept in memory until they are saved. */
    unsigned char *coords;
    size_t coords_len;
} av_run_capture;

/* Starts a capture for a run of m with p (checks the trace dtype). */
int av_cap_init(av_run_capture *c, const av_model *m, const av_run_params *p, av_err *err);
/* Declares kind as computed by stack `stack` (its cross-attention when cross) over n_query x n_key. */
void av_cap_declare(av_run_capture *c, av_attn_kind kind, int stack, int cross, int n_query, int n_key);
/* Allocates every declared kind (and vnorm for self, logits rows when the run wants them and the model has a
 * head); in-file when the parameters name an output and the attention is large enough. */
int av_cap_alloc(av_run_capture *c, int n_logits, av_err *err);
/* The forward pass's view of kind (an empty capture when it is not declared). */
av_capture av_cap_view(const av_run_capture *c, av_attn_kind kind);
/* Progress of a run (av_cap_on_layer, the forward pass's av_layer_fn): after each layer of each chunk, a
 * lazy run's pages of that layer leave memory (they are in the output file) and the caller's
 * av_run_params.on_progress / progress hear how far the run is. */
typedef struct av_cap_progress {
    const av_run_params *p;
    const av_run_capture *c;
    av_attn_kind kind; /* the kind the stack computes (whose pages to release) */
    int n_layers, n_tokens, causal;
    double per_row, per_pair; /* work of one row through one layer (weights), of one query-key pair */
    double done, total;
} av_cap_progress;

void av_cap_progress_init(av_cap_progress *r, const av_run_capture *c, av_attn_kind kind, int n_tokens);
void av_cap_on_layer(void *ctx, int layer, int pos0, int n);

/* Moves everything captured into a new trace (first waiting for the attention still being written) with the
 * model's metadata (labels are the caller's). */
int av_cap_finish(av_run_capture *c, av_trace **out, av_err *err);
void av_cap_free(av_run_capture *c);

/* Trace metadata: a JSON array of the labels of ids (or of the ids themselves) under key. */
int av_cap_json_list(const av_model *m, av_trace *t, const char *key, const int32_t *ids, size_t n,
                     int as_ids, av_err *err);
/* The trace tokens from ids (labels from the tokenizer, or "#id"). */
int av_cap_set_tokens(const av_model *m, av_trace *t, const int32_t *ids, size_t n, av_err *err);
/* The metadata of a run over m's image patches (images.c): patch_grid, prefix_tokens, image and patch sizes,
 * "predictions" from preds (taken; NULL: none), and the tokens: first ("[CLS]", the time token), then
 * "row,col" of each grid x grid patch. */
int av_cap_image_meta(const av_model *m, av_trace *t, const char *first, json_t *preds, av_err *err);

/* Encoder-decoders (runs.c): the encoder on src (S tokens; capturing kind ENC when c is given), its output
 * attached to the decoder state dec. */
int av_run_encode_source(const av_model *m, const av_run_capture *c, const int32_t *src, int S, av_state *dec,
                         int n_threads, av_err *err);
/* A source text's ids as the model's encoder takes them (BART: <s> source </s>; ending in end-of-sequence);
 * *src malloc'd. */
int av_run_source_ids(const av_model *m, const char *source, int32_t **src, size_t *ns, av_err *err);

#endif