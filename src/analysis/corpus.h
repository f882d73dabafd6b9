/* Corpus statistics: per-head attention statistics accumulated over whole data sets, exactly mergeable across
 * threads, processes and machines (docs/CORPUS.md).
 *
 * Every input ("example") is measured on its own (corpus_example.c): per head, the statistics of
 * av_head_stats_layer plus duplicate/induction scores from the example's own repeated tokens, the attention
 * mass per relative-position bin and per special token. The accumulator (corpus_acc.c) adds these per-example
 * values as fixed-point integers (corpus_fx.c), so a sum does not depend on the order of the additions: any
 * split of the inputs over threads or MPI ranks gives bit-identical sums. Distributions go into quantile
 * sketches with integer bucket counts (DDSketch, relative accuracy AV_SKETCH_ALPHA), which merge the same
 * way. Corpus means are means over examples (each input weighs the same, whatever its length).
 *
 * Conventions as in analysis.h: 0 or -1 with a message in err; no global state. */
#ifndef AV_CORPUS_H
#define AV_CORPUS_H

#include "analysis.h"
#include "core/core.h"

#include <signal.h>
#include <stdint.h>

/* ---- exact sums (corpus_fx.c) ------------------------------------------------------------------------- */

/* A real number as an integer count of 2^-AV_FX_FRAC_BITS: sums of these are exact and order-free.
 * Values are truncated toward zero to that grid (error < 3.6e-15 each) and clamped to +-AV_FX_MAX_ABS, so
 * 2^31 examples of squared values stay far inside the 127 bits. */
typedef __int128 av_fx;
#define AV_FX_FRAC_BITS 48
#define AV_FX_MAX_ABS 1099511627776.0 /* 2^40 */

av_fx av_fx_from(double x);
double av_fx_to_double(av_fx s);
/* The integer count in decimal (exact; for reports that must compare bit for bit). */
void av_fx_str(av_fx s, char buf[48]);

/* Count, sum and sum of squares of a value over examples (NaN values are not counted). */
typedef struct av_moments {
    av_fx sum, sum_sq;
    uint64_t n;
} av_moments;

void av_moments_add(av_moments *m, double x);
void av_moments_merge(av_moments *dst, const av_moments *src);
double av_moments_mean(const av_moments *m); /* NaN when n == 0 */
double av_moments_sd(const av_moments *m);   /* sample standard deviation; NaN when n < 2 */

/* ---- quantile sketches (corpus_fx.c) ----------------------------------------------------------------- */

/* DDSketch (Masson, Rim, Lee 2019) with a fixed range: bucket 0 counts values <= lo, bucket i >= 1 counts
 * (lo g^(i-1), lo g^i], g = (1 + a) / (1 - a), the last bucket also everything above; a quantile comes back
 * within relative error a (values above lo). Counts are integers: sketches merge exactly. */
#define AV_SKETCH_ALPHA 0.02
#define AV_SKETCH_QUANTILES 21 /* reports give quantiles 0, 0.05, ..., 1 */

typedef struct av_sketch_range {
    double lo, hi;
} av_sketch_range;

int av_sketch_buckets(av_sketch_range r);
int av_sketch_index(av_sketch_range r, int n_buckets, double x);
/* Value at quantile q in [0, 1] of counts (n_buckets); NaN when empty. */
double av_sketch_quantile(av_sketch_range r, const uint64_t *counts, int n_buckets, double q);

/* ---- relative positions ---------------------------------------------------------------------------- */

/* Offsets d = query - key in bins: |d| = 0..7 one bin each, then two bins per octave, the last open-ended;
 * negative offsets (keys after the query: bidirectional attention) mirror the positive ones. */
#define AV_POS_SIDE 44
#define AV_POS_BINS (2 * AV_POS_SIDE - 1)
int av_pos_bin(int64_t d);
/* Offsets [*lo, *hi] of bin b (*hi = INT64_MAX / *lo = INT64_MIN for the open ends). */
void av_pos_bin_range(int b, int64_t *lo, int64_t *hi);

/* ---- per-example measurements (corpus_example.c) ------------------------------------------------------ */

typedef enum av_cm {
    AV_CM_ENTROPY = 0, /* the av_head_stats fields, in that order */
    AV_CM_ENTROPY_NORM,
    AV_CM_DISTANCE,
    AV_CM_FIRST,
    AV_CM_SELF,
    AV_CM_PREV,
    AV_CM_SPECIAL,
    AV_CM_PUNCT,
    AV_CM_UNIFORMITY,
    AV_CM_FIRST_NORM,
    AV_CM_DUPLICATE, /* mean over rows i whose token occurred before of sum_j a[i][j], j its earlier
                        occurrences */
    AV_CM_INDUCTION, /* the same with a[i][j+1] over occurrences j with j + 1 < i (the tokens that followed)
                      */
    AV_CM_COUNT
} av_cm;

const char *av_cm_name(av_cm m);
av_sketch_range av_cm_range(av_cm m);
/* The role score read from a metric (previous_token <- prev, broad <- uniformity, ...). */
av_cm av_cm_of_role(av_role r);

#define AV_CORPUS_MAX_GROUPS AV_ATTN_KIND_COUNT /* one group per attention kind */
#define AV_CORPUS_LABEL_MAX 48                  /* special-token labels longer than this are cut */

/* One attention kind of a model: n_layers x n_heads heads. positional: query i and key i are the same token.
 */
typedef struct av_corpus_group {
    av_attn_kind kind;
    int n_layers, n_heads, positional;
} av_corpus_group;

typedef struct av_corpus_layout {
    int n_groups;
    av_corpus_group groups[AV_CORPUS_MAX_GROUPS];
    int n_heads; /* all heads of all groups; head index = group offset + layer * n_heads + head */
} av_corpus_layout;

/* Copies at most AV_CORPUS_LABEL_MAX - 1 bytes of src, cut at a UTF-8 character boundary. */
void av_corpus_label_copy(char dst[AV_CORPUS_LABEL_MAX], const char *src);

int av_corpus_layout_equal(const av_corpus_layout *a, const av_corpus_layout *b);
/* Group, layer and head of a flat head index. */
void av_corpus_head_at(const av_corpus_layout *lay, int index, int *group, int *layer, int *head);

typedef struct av_corpus_example {
    av_corpus_layout layout;
    int64_t line;   /* 1-based line of the input */
    int n_tokens;   /* longest side (query or key) over the groups */
    double *metric; /* (n_heads, AV_CM_COUNT), NaN where a metric does not apply */
    double *pos;    /* (n_heads, AV_POS_BINS) mean attention mass per offset bin; NaN for cross heads */
    int n_labels;
    char **labels;     /* (n_labels) distinct special-token labels among the keys, sorted */
    double *label_pos; /* (n_labels, n_heads) mean mass on that label; NaN where the head's keys lack it */
} av_corpus_example;

/* Measures every head of every attention kind of a trace (full or lazy, one head at a time: memory stays at
 * one n_query x n_key matrix). */
int av_corpus_measure(const av_trace *t, int64_t line, av_corpus_example *ex, av_err *err);
void av_corpus_example_free(av_corpus_example *ex);

/* Queries and keys of one layer of a lazy trace's kind, as its scores saw them (after q/k norms and RoPE):
 * q (n_heads, n_query, dim), k (n_kv_heads, n_key, dim), with their display labels (av_trace_side_labels;
 * NULL when unknown) and the padding keys. Returns -1 with a message when the trace keeps none for that kind
 * (full traces). Free with av_corpus_qk_view_free. */
typedef struct av_corpus_qk_view {
    int n_heads, n_kv_heads, n_query, n_key, dim;
    const float *q, *k;
    const uint8_t *key_mask; /* (n_key) 0 = padding key, or NULL */
    char **q_labels;         /* (n_query) owned, or NULL */
    char **k_labels;         /* (n_key) owned, or NULL */
} av_corpus_qk_view;
int av_corpus_trace_qk(const av_trace *t, av_attn_kind kind, int layer, av_corpus_qk_view *out, av_err *err);
void av_corpus_qk_view_free(av_corpus_qk_view *v);

/* ---- the accumulator (corpus_acc.c) ------------------------------------------------------------------ */

typedef enum av_bad {
    AV_BAD_JSON = 0,   /* "invalid_json" */
    AV_BAD_FIELD,      /* "missing_field": no such key, or not a string */
    AV_BAD_EMPTY,      /* "empty_text" */
    AV_BAD_TOO_LONG,   /* "too_long": more tokens than the model's context */
    AV_BAD_LINE_BYTES, /* "line_too_large": longer than --max-line-bytes */
    AV_BAD_ERROR,      /* "model_error": the run failed otherwise (message kept for the first such line) */
    AV_BAD_COUNT
} av_bad;

const char *av_bad_name(av_bad b);
#define AV_BAD_KEEP 100 /* line numbers kept per reason: the smallest ones */

typedef struct av_corpus_top {
    double score;
    int64_t line; /* -1: empty slot */
} av_corpus_top;

typedef struct av_corpus_label {
    char *label;
    av_moments *m; /* (n_heads) */
} av_corpus_label;

typedef struct av_corpus_acc {
    int ready; /* layout set (by the first example or a merge) */
    av_corpus_layout layout;
    int top_k;
    uint64_t n_examples, n_tokens;
    int max_tokens;
    av_moments *metric; /* (n_heads, AV_CM_COUNT) */
    uint64_t *sketch;   /* (n_heads, sketch_len): AV_CM_COUNT sketches back to back */
    int sketch_len, sketch_off[AV_CM_COUNT + 1];
    av_fx *pos;              /* (n_heads, AV_POS_BINS) sums of per-example mean mass */
    uint64_t *pos_n;         /* (n_heads) examples summed into pos */
    av_corpus_label *labels; /* (n_labels) sorted by label */
    int n_labels;
    uint64_t *votes;    /* (n_heads, AV_ROLE_COUNT + 1) examples whose best role was r; the last: none */
    av_corpus_top *top; /* (n_heads, AV_ROLE_COUNT, top_k) best first (score desc, then line asc) */
    uint64_t bad[AV_BAD_COUNT];
    int64_t bad_lines[AV_BAD_COUNT][AV_BAD_KEEP]; /* ascending */
    int n_bad_lines[AV_BAD_COUNT];
    int64_t error_line; /* smallest model_error line, -1 when none */
    char error_msg[256];
} av_corpus_acc;

void av_corpus_acc_init(av_corpus_acc *a, int top_k);
void av_corpus_acc_free(av_corpus_acc *a);
/* Allocates the (zeroed) per-head arrays of layout; a must be freshly initialized. */
int av_corpus_acc_alloc(av_corpus_acc *a, const av_corpus_layout *lay, av_err *err);
int av_corpus_acc_add(av_corpus_acc *a, const av_corpus_example *ex, av_err *err);
void av_corpus_acc_bad(av_corpus_acc *a, av_bad reason, int64_t line, const char *msg);
/* dst += src (exact: the result does not depend on how inputs were split or in which order merged). */
int av_corpus_acc_merge(av_corpus_acc *dst, const av_corpus_acc *src, av_err *err);

/* The corpus-level role of head h: scores are the mean per-example scores; confidence is the share of
 * examples (with every score defined) whose own best role is that role. */
typedef struct av_corpus_role {
    av_head_roles roles; /* mean scores and the pick (av_roles_pick) */
    double confidence;
    double ci95; /* half-width of the 95% confidence interval of the best score's mean */
} av_corpus_role;
void av_corpus_acc_role(const av_corpus_acc *a, int h, av_corpus_role *out);

/* Binary form (state files, MPI transfer): appended to b; read back through the bounded reader. */
void av_corpus_acc_write(const av_corpus_acc *a, av_buf *b);
int av_corpus_acc_read(av_corpus_acc *a, av_reader *r, av_err *err);

/* ---- query/key samples (corpus_qk.c) ------------------------------------------------------------------ */

/* A deterministic sample of query and key vectors of one head of one attention kind (the queries and keys of
 * cross-attention are the decoder's and the encoder's positions): every (input line, position, side) gets a
 * priority from a hash of (seed, line, position, side); the n_max smallest of each side are kept. The sample
 * is the same however the inputs were split: bottom-k sets merge exactly. */
typedef struct av_qk_point {
    uint64_t prio;
    int64_t line;
    int32_t pos, n_tokens; /* position on its side, and that side's length */
    int is_key;
    char label[AV_CORPUS_LABEL_MAX];
    float *vec; /* (dim), owned */
} av_qk_point;

typedef struct av_corpus_qk {
    av_attn_kind kind;
    int layer, head, n_max, dim; /* dim 0 until the first trace */
    uint64_t seed;
    av_qk_point *pts; /* (n, up to 2 * n_max before trimming per side) */
    int n, cap;
} av_corpus_qk;

void av_corpus_qk_init(av_corpus_qk *s, av_attn_kind kind, int layer, int head, int n_max, uint64_t seed);
void av_corpus_qk_free(av_corpus_qk *s);
int av_corpus_qk_add(av_corpus_qk *s, const av_trace *t, int64_t line, av_err *err);
int av_corpus_qk_merge(av_corpus_qk *dst, const av_corpus_qk *src, av_err *err);
/* Keeps the n_max smallest priorities per side, sorted queries first then keys, each by priority. */
int av_corpus_qk_finish(av_corpus_qk *s, av_err *err);
void av_corpus_qk_write(const av_corpus_qk *s, av_buf *b);
int av_corpus_qk_read(av_corpus_qk *s, av_reader *r, av_err *err);

/* ---- projections (corpus_proj.c, corpus_tsne.c) ------------------------------------------------------- */

/* AttentionViz's normalization of a joint query/key map (Yeh et al. 2023): keys translated so their mean
 * equals the queries' mean, then queries scaled by c and keys by 1/c with c^2 = mean |k| / mean |q|, so both
 * sides have the same mean norm. Every softmax row is unchanged (a shift of all keys adds a constant to a
 * query's scores; the scaling keeps q.k). x (n, d), is_key (n). */
void av_qk_normalize(double *x, const int *is_key, int n, int d);
/* Projection on the first two principal components of the rows of x (n, d): out (n, 2); var (2) receives the
 * explained variance ratios. Each component's sign is fixed so that its largest-magnitude entry is positive.
 */
int av_pca2(const double *x, int n, int d, double *out, double var[2], av_err *err);

typedef struct av_tsne_params {
    double perplexity; /* default 30 */
    int n_iter;        /* default 1000 */
    double theta;      /* Barnes-Hut opening angle (default 0.5); 0: exact gradients */
    uint64_t seed;     /* initial jitter */
    int n_threads;     /* 0: all cores; the result does not depend on it */
} av_tsne_params;

av_tsne_params av_tsne_default_params(void);
/* t-SNE (van der Maaten and Hinton 2008; Barnes-Hut: van der Maaten 2014) of the rows of x (n, d) into out
 * (n, 2), initialized from the PCA projection (scaled to standard deviation 1e-4). */
int av_tsne2(const double *x, int n, int d, const av_tsne_params *p, double *out, av_err *err);

#endif /* AV_CORPUS_H */
