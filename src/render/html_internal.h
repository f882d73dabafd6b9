/* Internals of the standalone HTML page shared by html.c (page, attention sets) and html_analysis.c (head
 * statistics and roles, attention rollout and value norms embedded for the viewer's analysis views). */
#ifndef AV_HTML_INTERNAL_H
#define AV_HTML_INTERNAL_H

#include "render/plot.h"

#include "core/core.h"

#include <jansson.h>
#include <stddef.h>

/* Appends rows x n_key floats (row-major) to blob in the page's encoding and records the offsets in desc:
 *   f16   : "off" of IEEE halves, 2-byte aligned;
 *   u8cbrt: "soff" of a float32 scale per row (the row's maximum), 4-byte aligned, then "off" of one byte per
 *           value, cube-root companded: value = (code / 255)^3 * scale (values are >= 0; negative ones are
 *           stored as 0), so small weights keep their contrast (an image model's [CLS] row, whose own weight
 *           is 100 times its weights on patches, keeps some 30 levels over the patches instead of 3): the
 * error is at most 0.6% of the row's maximum at the top and about 3 / (2 * 255 * (v / scale)^(1/3)) of a
 *           small value v. */
int av_html_encode(av_buf *blob, const float *data, size_t rows, int n_key, int u8, json_t *desc,
                   av_err *err);

/* ---- long traces (html_long.c) ---- */

/* The cells a side of the pooled overview a page embeds for kind, or 0 when the matrices themselves fit
 * max_bytes (values of every kind's matrices at bytes_per_value). */
int av_html_pool_cells(const av_trace *t, double max_bytes, double bytes_per_value);
/* Every head of every layer of every kind pooled (max) to cells a side: sets like the full matrices' plus
 * meta "pooled" {kind: {rows, cols, n_query, n_key, pool}} and range labels ("0-127"); full (may be NULL)
 * receives every token label {kind: {q, k}} for the Rows view. */
int av_html_encode_pooled(const av_trace *t, int cells, int u8, av_buf *blob, json_t *sets, json_t *labels,
                          json_t *pooled, json_t *full, av_err *err);
/* The query rows [q0, q1) of every layer of kind exactly, within max_bytes: meta "rows" [{kind, layer, q0,
 * nq, nk, heads, off[, soff]}] (per layer: the mean over heads, then each head when the budget allows). */
int av_html_encode_rows(const av_trace *t, const av_html_params *p, int u8, double max_bytes, av_buf *blob,
                        json_t *meta, av_err *err);
/* Queries and keys of the self-attention (neuron view), float32, when the trace keeps them and they fit
 * max_bytes: meta "qk" {n, d, heads, kv_heads, causal, layers: [{layer, scale, softcap, window, qoff, koff}]}
 * or "qk_note" saying why not. */
int av_html_encode_qk(const av_trace *t, double max_bytes, av_buf *blob, json_t *meta, av_err *err);
/* The query/key map (html_qkmap.c): for every kind whose queries and keys the trace keeps, every head's
 * queries and keys projected to 2-D as the corpus report does (AttentionViz's normalization, then PCA),
 * sampled evenly when a side passes what max_bytes allows; the layers that fit max_bytes and a bound on the
 * PCA work, the page's first layer first (always). Meta "qkmap" (docs/VIEWER.md), or "qkmap_note" saying
 * why not. */
int av_html_encode_qkmap(const av_trace *t, const av_html_params *p, double max_bytes, av_buf *blob,
                         json_t *meta, av_err *err);
/* 1 when the trace keeps the queries and keys of some attention kind (the Q/K map can be drawn). */
int av_html_has_qk(const av_trace *t);
/* The trace's "image" tensor (what an image model saw) as base64 PNG, or NULL (none, or out of memory). */
char *av_html_image_png(const av_trace *t);
/* A colormap as 256 RGB triples (768 integers), the table the pages color with. */
json_t *av_html_cmap_table(av_cmap cm);

/* Largest rollout matrix embedded (rows x cols values): above it the page says where to get it. */
#define AV_HTML_ROLLOUT_MAX (1u << 20)

typedef struct av_html_rollout {
    float *m; /* (rows, cols), owned */
    int rows, cols;
    json_t *desc; /* borrowed from the analysis JSON: receives "off" / "soff" */
} av_html_rollout;

/* What the page embeds for the analysis views; see docs/VIEWER.md ("Analysis views"). */
typedef struct av_html_analysis {
    json_t *json; /* meta "analysis", owned */
    av_html_rollout rollout[4];
    int n_rollout;
    const float **vnorm; /* (vn_layers) pointers to (vn_heads, vn_tokens) F32 in the trace, or NULL */
    int vn_layers, vn_heads, vn_tokens;
    json_t *vn_desc; /* borrowed: receives "offs" */
} av_html_analysis;

/* Computes per-head statistics and roles of every attention kind, rollout (mean fusion, residual 0.5; the
 * encoder-decoder variant for cross-attention) and collects the value norms. What cannot be computed is
 * recorded as a message for the viewer to show; only running out of memory fails. */
int av_html_analysis_compute(const av_trace *t, const av_html_params *p, av_html_analysis *a, av_err *err);
/* Page bytes the analysis adds in this encoding (base64 of its blob part, plus an allowance for its JSON). */
size_t av_html_analysis_bytes(const av_html_analysis *a, int u8);
/* Appends the matrices to blob (recording their offsets) and moves the JSON into meta as "analysis". */
int av_html_analysis_encode(av_html_analysis *a, int u8, av_buf *blob, json_t *meta, av_err *err);
void av_html_analysis_free(av_html_analysis *a);

/* A JSON array of the integers v (n) (html_attr.c). */
json_t *av_html_json_ints(const int32_t *v, size_t n);
/* Meta "attribution" and "lens" (html_attr.c) when the trace holds them: the data of the Attribution and
 * Logit lens tabs. */
int av_html_attr_encode(const av_trace *t, json_t *meta, av_err *err);

#endif /* AV_HTML_INTERNAL_H */
