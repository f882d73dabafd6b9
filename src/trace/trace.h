/* Trace internals: building a trace piece by piece (used by runs, importers and converters). */
#ifndef AV_TRACE_H
#define AV_TRACE_H

#include "io/io.h"

#include <pthread.h>

typedef struct av_attn_set {
    char kind[8]; /* "self", "enc", "dec", "cross" */
    int layer;
    av_attn_view view;
    const av_tensor *stored; /* in the loaded file (F32 or F16); NULL for a trace built in memory */
    float *owned;            /* f32 data this trace owns (built in memory, or converted from F16 on access) */
} av_attn_set;

/* A lazy trace's stored queries and keys for one layer (post-RoPE, head-major). */
typedef struct av_qk_layer {
    const float *q; /* (n_heads, T, head_dim) */
    const float *k; /* (n_kv_heads, T, head_dim) */
} av_qk_layer;

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
    /* lazy traces (kind "self" only): attention recomputed from q/k */
    int lazy;
    int qk_heads, qk_kv_heads, qk_dim;
    float qk_scale;
    int n_qk;
    av_qk_layer *qk;          /* (n_qk) */
    float **qk_owned;         /* (2 * n_qk) buffers owned when built in memory */
    pthread_mutex_t lock;     /* guards on-demand conversions in av_trace_attn */
    av_st_prealloc *prealloc; /* the output file the attention was captured into, or NULL (capture.c) */
};

av_trace *av_trace_new(void);
int av_trace_set_meta(av_trace *t, const char *key, const char *value, av_err *err);
/* Takes ownership of tokens (each malloc'd, and the array) and ids. */
int av_trace_set_tokens(av_trace *t, char **tokens, int32_t *ids, int n, av_err *err);
/* Takes ownership of data (n_heads, n_query, n_key), malloc'd, unless it lies in t->prealloc's mapping. */
int av_trace_add_attn(av_trace *t, const char *kind, int layer, int n_heads, int n_query, int n_key,
                      float *data, av_err *err);

/* Makes t lazy: takes ownership of q[l] (n_heads, T, head_dim) and k[l] (n_kv_heads, T, head_dim) arrays. */
int av_trace_set_qk(av_trace *t, float **q, float **k, int n_layers, int n_heads, int n_kv_heads,
                    int head_dim, float scale, av_err *err);
/* Materializes the full (n_heads, T, T) attention of one lazy layer; malloc'd. Refuses above max_bytes. */
int av_trace_lazy_materialize(const av_trace *t, int layer, size_t max_bytes, float **out, av_err *err);

/* Takes ownership of vnorm[l] arrays (n_layers pointers to (n_heads, n_tokens)) and the array itself. */
int av_trace_set_vnorm(av_trace *t, float **vnorm, int n_layers, int n_heads, av_err *err);
/* Takes ownership of the (n_tokens, vocab) logits, exposed as t->logits_view. */
void av_trace_set_logits(av_trace *t, float *logits, int n_tokens, int vocab);

#endif
