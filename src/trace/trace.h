/* Trace internals: building a trace piece by piece (used by runs, importers and converters), and lazy
 * attention (stored queries and keys, rows recomputed through the forward pass's av_attention_probs). */
#ifndef AV_TRACE_H
#define AV_TRACE_H

#include "io/io.h"

#include <pthread.h>

typedef struct av_attn_set {
    av_attn_kind kind;
    int layer;
    av_attn_view view;
    const uint16_t *f16; /* F16 data (n_heads, n_query, n_key) in a file's mapping: a loaded F16 trace's, or a
                            capture written as F16 (capture.c); NULL otherwise */
    float *owned;        /* f32 data this trace owns (built in memory, or converted from f16 on access) */
} av_attn_set;

/* The queries and keys of one kind as the scores saw them (after q/k norms and RoPE, head-major) and
 * everything else the scores depend on, per docs/TRACE_FORMAT.md: the lazy attention of a kind (rows are
 * recomputed from it), or the queries and keys a full trace keeps beside its matrices (--keep-qk). */
typedef struct av_lazy_kind {
    int n_layers; /* 0: the kind keeps no queries/keys */
    int lazy; /* 1: the attention of the kind is recomputed from q/k; 0: q/k kept beside stored matrices */
    int n_heads, n_kv_heads, head_dim, n_query, n_key;
    int causal;              /* query i sees keys 0..i (queries and keys are the same positions) */
    const float **q;         /* (n_layers) -> (n_heads, n_query, head_dim) */
    const float **k;         /* (n_layers) -> (n_kv_heads, n_key, head_dim) */
    float *scale;            /* (n_layers) score scales */
    float *softcap;          /* (n_layers) score soft-caps, 0: none */
    int *window;             /* (n_layers) causal sliding windows, 0: none */
    const float *rel_bias;   /* (n_heads, n_query + n_key - 1): bias of key - query + n_query - 1, or NULL */
    const uint8_t *key_mask; /* (n_key): 0 = padding key, never attended; or NULL */
    /* pooled overviews computed during the run (version 3): the cells of av_trace_attn_tile for the whole
     * matrix pooled to pool_rows x pool_cols, or NULL */
    const float **pool_max, **pool_mean; /* (n_layers) -> (n_heads, pool_rows, pool_cols) */
    int pool_rows, pool_cols;
    int owns_qk;     /* q[l], k[l] and the pool planes are malloc'd (else in a file's mapping) */
    int owns_extras; /* rel_bias and key_mask are malloc'd (else in the loaded file) */
} av_lazy_kind;

/* A named tensor beyond attention (attr.*, lens.*; docs/TRACE_FORMAT.md): F32 or I32, owned when built in
 * memory, else a view into the loaded file. */
typedef struct av_trace_extra {
    char *name;
    av_tensor t;
    void *owned;
} av_trace_extra;

struct av_trace {
    json_t *meta; /* string -> string, written as __metadata__ */
    int n_tokens;
    char **tokens;      /* (n_tokens) display strings */
    int32_t *token_ids; /* (n_tokens) */
    av_attn_set *sets;
    int n_sets, cap_sets;
    av_dtype store_dtype; /* dtype av_trace_save writes attention in */
    float **vnorm;        /* (n_vnorm) pointers to (n_heads, n_tokens), owned; NULL entries when absent */
    const av_tensor **vnorm_stored; /* (n_vnorm) in the loaded file */
    int n_vnorm, vnorm_heads;
    float *logits; /* (n_tokens, vocab) or NULL */
    int logits_vocab;
    av_tensor logits_view;
    av_safetensors file; /* backing file when loaded */
    int loaded;
    int lazy; /* 1 when some kind is lazy */
    av_lazy_kind lazy_kinds[AV_ATTN_KIND_COUNT];
    pthread_mutex_t lock;     /* guards on-demand conversions in av_trace_attn */
    av_st_prealloc *prealloc; /* the output file the attention was captured into, or NULL (capture.c) */
    uint8_t *image;           /* (3, image_h, image_w) the 8-bit input an image model saw, owned, or NULL */
    av_tensor image_view;     /* U8 [3, h, w]: image, or the loaded file's "image" tensor */
    av_trace_extra *extras;   /* (n_extras) extra.c */
    int n_extras;
    struct av_gen_state *gen; /* log-probabilities and generation metadata (logprobs.h), or NULL */
};

av_trace *av_trace_new(void);
int av_trace_set_meta(av_trace *t, const char *key, const char *value, av_err *err);
int av_trace_set_meta_int(av_trace *t, const char *key, int v, av_err *err);
/* "#<id>": the label of a token no tokenizer names; malloc'd (NULL: out of memory). */
char *av_trace_id_label(int32_t id);
/* Metadata key = the JSON text of v (compact, plus flags such as JSON_ENSURE_ASCII), taking v (NULL: out of
 * memory). */
int av_trace_set_meta_json(av_trace *t, const char *key, json_t *v, size_t flags, av_err *err);
/* Metadata key = a JSON array of the n strings s (ASCII-escaped; invalid UTF-8 shows as U+FFFD). */
int av_trace_set_meta_strings(av_trace *t, const char *key, char *const *s, int n, av_err *err);
/* Raises metadata "version" to at least version: a file records the oldest version that describes it. */
int av_trace_need_version(av_trace *t, int version, av_err *err);
/* Takes ownership of tokens (each malloc'd, and the array) and ids. */
int av_trace_set_tokens(av_trace *t, char **tokens, int32_t *ids, int n, av_err *err);
/* Takes ownership of data (n_heads, n_query, n_key), malloc'd, unless it lies in t->prealloc's mapping. */
int av_trace_add_attn(av_trace *t, av_attn_kind kind, int layer, int n_heads, int n_query, int n_key,
                      float *data, av_err *err);
/* The same for F16 data in t->prealloc's mapping (an F16 capture written into the output file): converted
 * to f32 when read (av_trace_attn), written as it is by av_trace_save to that file as F16. */
int av_trace_add_attn_f16(av_trace *t, av_attn_kind kind, int layer, int n_heads, int n_query, int n_key,
                          const uint16_t *data, av_err *err);
/* Makes kind lazy (lz->lazy = 1) or adds its queries and keys to a full trace (lz->lazy = 0; lazy.c). The
 * trace takes ownership of the arrays (q, k, scale, softcap, window, pool_max, pool_mean: malloc'd) and of
 * the buffers owns_qk / owns_extras say are malloc'd, also when this fails. */
int av_trace_set_lazy(av_trace *t, av_attn_kind kind, const av_lazy_kind *lz, av_err *err);
/* Frees what a lazy kind owns (av_trace_free). */
void av_lazy_free(av_lazy_kind *lz);
/* Rows [q0, q0 + nq) of one head of a lazy kind: out (nq, n_key) exact probabilities, 0 where masked. */
void av_lazy_rows(const av_lazy_kind *lz, int layer, int head, int q0, int nq, float *out);
/* Materializes the full (n_heads, n_query, n_key) attention of one lazy layer; malloc'd. Refuses above
 * max_bytes. */
int av_trace_lazy_materialize(const av_trace *t, av_attn_kind kind, int layer, size_t max_bytes, float **out,
                              av_err *err);
/* Lazy-trace tensors and metadata into w (av_trace_save), and back from t->file (av_trace_load). */
int av_lazy_save(const av_trace *t, av_st_writer *w, int masks, av_err *err);
int av_lazy_load(av_trace *t, const char *path, av_err *err);

/* Extra tensors (extra.c): adds or replaces name, taking ownership of data (malloc'd, F32 or I32 of the
 * shape), also when this fails. */
int av_trace_put_tensor(av_trace *t, const char *name, av_dtype dtype, int ndim, const int64_t *shape,
                        void *data, av_err *err);
/* The loaded file's attr.* and lens.* tensors as extras (av_trace_load); -1 on a bad dtype. */
int av_extra_load(av_trace *t, const char *path, av_err *err);
/* Extras into w (av_trace_save). */
int av_extra_save(const av_trace *t, av_st_writer *w, av_err *err);
void av_extra_free(av_trace *t);

/* Takes ownership of vnorm[l] arrays (n_layers pointers to (n_heads, n_tokens)) and the array itself. */
int av_trace_set_vnorm(av_trace *t, float **vnorm, int n_layers, int n_heads, av_err *err);
/* Takes ownership of rgb (h, w, 3) and stores it as the trace's "image" [3, h, w] (U8, planes). */
int av_trace_set_image(av_trace *t, uint8_t *rgb, int h, int w, av_err *err);
/* Takes ownership of the (n_tokens, vocab) logits, exposed as t->logits_view. */
void av_trace_set_logits(av_trace *t, float *logits, int n_tokens, int vocab);

/* Rows [q0, q0 + n) of one head (or reduced over heads: AV_HEADS_MEAN / MAX / MIN) over every key, exact:
 * out (n, n_key); exclude_first as av_tile_params'. The tile of exact cells av_trace_attn_tile_ex gives, on
 * n_threads threads (0: as that call decides; 1: the calling thread alone, for callers that share out the
 * work themselves). */
int av_trace_rows(const av_trace *t, av_attn_kind kind, int layer, int head, int q0, int n, int exclude_first,
                  int n_threads, float *out, av_err *err);
/* Heads reduced (select.c, tiles.c): out = out + in, max or min of both over n values, for how =
 * AV_HEADS_MEAN (a sum: divide by the heads after the last), AV_HEADS_MAX, AV_HEADS_MIN. */
void av_heads_fold(float *out, const float *in, size_t n, int how);

/* ---- DAAM (daam.c) ------------------------------------------------------------------------------------ */

/* Word maps out (S, size, size) from raw (n_steps, n_layers, n_heads, S, g, g), dims = {n_steps, n_layers,
 * n_heads, S, g}, over range (NULL: everything); see av_trace_daam. */
int av_daam_maps(const float *raw, const int dims[5], int size, const av_daam_range *range, float *out,
                 av_err *err);
/* A trace's DAAM sizes: dims as above from daam.raw and patch_grid, size the image's side; -1 when the trace
 * holds none or they disagree. */
int av_trace_daam_dims(const av_trace *t, int dims[5], int *size, av_err *err);

#endif
