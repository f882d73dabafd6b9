/* Internals of the standalone HTML page shared by html.c (page, attention sets) and html_analysis.c (head
 * statistics and roles, attention rollout and value norms embedded for the viewer's analysis views). */
#ifndef AV_HTML_INTERNAL_H
#define AV_HTML_INTERNAL_H

#include "render/plot.h"

#include "core/core.h"

#include <jansson.h>
#include <stddef.h>

/* Appends rows x n_key floats (row-major) to blob in the page's encoding and records the offsets in desc:
 *   f16: "off" of IEEE halves, 2-byte aligned;
 *   u8 : "soff" of a float32 scale per row (the row's maximum), 4-byte aligned, then "off" of one byte per
 *        value: value = code * scale / 255 (values are >= 0; negative ones are stored as 0). */
int av_html_encode(av_buf *blob, const float *data, size_t rows, int n_key, int u8, json_t *desc,
                   av_err *err);

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

/* Meta "attribution" and "lens" (html_attr.c) when the trace holds them: the data of the Attribution and
 * Logit lens tabs. */
int av_html_attr_encode(const av_trace *t, json_t *meta, av_err *err);

#endif /* AV_HTML_INTERNAL_H */
