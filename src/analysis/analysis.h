/* Analysis of attention traces: aggregation over heads/layers, attention rollout and flow, norm-based
 * attention, per-head statistics, head-role detection, and the JSON export the viewer embeds.
 * See docs/ANALYSIS.md for the formulas and the JSON schema.
 *
 * Conventions: matrices are row-major float (n_query, n_key), row = query, column = key; every fallible call
 * returns 0 or -1 with a message in err; no function keeps state between calls. */
#ifndef AV_ANALYSIS_H
#define AV_ANALYSIS_H

#include "attnviz.h"

#include <jansson.h>
#include <stdint.h>

#define AV_ANALYSIS_FORMAT_VERSION "1"

/* ---- reductions (aggregate.c) ------------------------------------------------------------------------ */

typedef enum av_reduce { AV_REDUCE_MEAN = 0, AV_REDUCE_MAX, AV_REDUCE_MIN } av_reduce;

/* "mean", "max" or "min". */
int av_reduce_parse(const char *s, av_reduce *out, av_err *err);
const char *av_reduce_name(av_reduce r);

/* One head of one layer. */
typedef struct av_head_ref {
    int layer, head;
} av_head_ref;

/* out[k] = op over i < n of mats[i][k] for k < numel. n >= 1. */
void av_reduce_mats(const float *const *mats, int n, size_t numel, av_reduce op, float *out);
/* Reduces the heads heads[0..n_sel) of one layer (heads == NULL: all heads) into out (n_query, n_key). */
int av_attn_reduce_heads(const av_attn_view *v, const int *heads, int n_sel, av_reduce op, float *out,
                         av_err *err);
/* Reduces any set of (layer, head) matrices of one attention kind of a trace into out (n_query, n_key):
 * over heads (one layer), over layers (one head index), or a hand-picked set. All must share one shape. */
int av_trace_reduce(const av_trace *t, av_attn_kind kind, const av_head_ref *sel, int n_sel, av_reduce op,
                    float *out, int *n_query, int *n_key, av_err *err);
/* Parses a head set against n_layers x n_heads: a comma list of "L.H", "L.*" (or "L"), "*.H" and "*"
 * ("*" = every head of every layer); negative L counts from the last layer. *out is malloc'd (caller frees),
 * duplicates removed, sorted by (layer, head). */
int av_head_set_parse(const char *spec, int n_layers, int n_heads, av_head_ref **out, int *n_out,
                      av_err *err);

/* ---- attention rollout (rollout.c) -------------------------------------------------------------------- */

typedef struct av_rollout_params {
    av_reduce fusion; /* how the heads of a layer are fused (default mean) */
    float residual;   /* identity weight r: A' = rownorm((1-r) A + r I); 0.5 (default) is Abnar & Zuidema's */
    int normalize;    /* cross variant only: rescale each output row to sum 1 (default 0: the source share) */
} av_rollout_params;

av_rollout_params av_rollout_default_params(void);

/* Rollout of already-fused layers: layers[l] (T, T) for l = 0 (first) .. n_layers-1. out (T, T):
 * out = A'_{n-1} ... A'_1 A'_0, with A'_l = rownorm((1-r) layers[l] + r I). Rows of out sum to 1. */
int av_rollout_mats(const float *const *layers, int n_layers, int T, float residual, float *out, av_err *err);
/* Rollout over every layer of kind (self, enc or dec) of a trace. out (n_query, n_query). */
int av_rollout_trace(const av_trace *t, av_attn_kind kind, const av_rollout_params *p, float *out,
                     av_err *err);
/* Encoder-decoder rollout: how much each target token's final decoder state draws from each source token.
 * Needs "cross" layers; "dec" (same count as cross) and "enc" are used when present. out (n_target, n_source)
 * must hold the shape of attn.cross.0. See docs/ANALYSIS.md for the recurrence. */
int av_rollout_cross_trace(const av_trace *t, const av_rollout_params *p, float *out, int *n_target,
                           int *n_source, av_err *err);

/* ---- attention flow (flow.c) ------------------------------------------------------------------------- */

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

/* Estimated cost of attention flow for n_layers layers of T tokens (the figure the guard compares). */
double av_flow_work(int n_layers, int T);
/* Raw max-flow values: out[i][j] = maximum flow from token i after the last layer to input token j through
 * the layered graph whose edges (l+1, i) -> (l, j) have capacity A'_l[i][j] (A' as in rollout).
 * layers[l] (T, T) fused. Refuses (with a message saying what to do) above max_work. */
int av_flow_mats(const float *const *layers, int n_layers, int T, float residual, double max_work, float *out,
                 av_err *err);
int av_flow_trace(const av_trace *t, av_attn_kind kind, const av_flow_params *p, float *out, av_err *err);

/* ---- norm-based attention (normattn.c), Kobayashi et al. 2020 ----------------------------------------- */

/* out (n_query, n_key): ||alpha_ij v_j W_o^h|| = alpha_ij * vnorm[h][j] for one head h (never builds the
 * (H, N, N, d) tensor). vnorm is (n_heads, n_key) F32, as av_trace_vnorm returns. */
int av_norm_attn_head(const av_attn_view *v, const av_tensor *vnorm, int head, float *out, av_err *err);
/* For a self-attention layer of a trace: spec is a head index, "mean", "max" or "min" (over the per-head
 * norm-based matrices). normalize_rows rescales each row to sum 1 (a distribution comparable to attention).
 */
int av_norm_attn_trace(const av_trace *t, int layer, const char *spec, int normalize_rows, float *out,
                       av_err *err);

/* ---- per-head statistics (headstats.c) ---------------------------------------------------------------- */

enum { AV_TOKCLASS_SPECIAL = 1, AV_TOKCLASS_PUNCT = 2 };

/* Class bits of a display label: special (<s>, </s>, <unk>, <pad>, <|endoftext|>, [CLS], [SEP], ...) and
 * punctuation (only ASCII punctuation after leading spaces / SentencePiece and GPT-2 space marks). */
uint8_t av_token_class(const char *label);

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

/* Statistics of every head of one layer. key_class (n_key) or NULL; vnorm (n_heads, n_key) or NULL;
 * positional: query i and key i are the same token (self-attention kinds, not cross). out (n_heads). */
int av_head_stats_layer(const av_attn_view *v, int layer, int positional, const uint8_t *key_class,
                        const float *vnorm, av_head_stats *out, av_err *err);
/* Every head of every layer of kind (or only layer `layer` when >= 0). *out malloc'd (n_layers * n_heads). */
int av_trace_head_stats(const av_trace *t, av_attn_kind kind, int layer, av_head_stats **out, int *n_out,
                        av_err *err);

/* What av_trace_head_stats_ex computes. */
#define AV_STATS_EVERY_HEAD (-100)
typedef struct av_stats_params {
    int layer; /* -1 (default): every layer */
    int head;  /* AV_STATS_EVERY_HEAD (default), one head, or AV_HEADS_MEAN / MAX / MIN: the statistics of
                  the reduction over heads, as one entry per layer with that head value */
    int exclude_first; /* rows renormalized over keys 1.. (the first token then weighs 0) */
    void (*progress)(void *ctx, int layers_done, int layers); /* after each layer; may be NULL */
    void *progress_ctx;
} av_stats_params;
av_stats_params av_stats_default_params(void);
/* av_trace_head_stats with options, reading rows a block at a time through the tile API (a lazy trace's rows
 * recomputed): no layer is ever held whole. */
int av_trace_head_stats_ex(const av_trace *t, av_attn_kind kind, const av_stats_params *p,
                           av_head_stats **out, int *n_out, av_err *err);

/* ---- head roles (roles.c) ---------------------------------------------------------------------------- */

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
/* Sets best / best_score from the scores. */
void av_roles_pick(av_head_roles *r);
/* Repeated-sequence scores of every head of one layer run on a sequence whose positions first..first+L-1
 * hold L tokens repeated at first+L..first+2L-1: induction[h] = mean_i a[i][i-L+1], duplicate[h] =
 * mean_i a[i][i-L], over i in the second copy. induction, duplicate: (n_heads). */
int av_roles_repeat_scores(const av_attn_view *v, int first, int L, double *induction, double *duplicate,
                           av_err *err);

typedef struct av_roles_params {
    int seq_len;      /* L: length of the random segment, repeated twice after BOS (default 32) */
    int n_samples;    /* random sequences averaged (default 4) */
    uint64_t seed;    /* PRNG seed (default 1) */
    const char *text; /* natural-text probe (NULL: the built-in paragraph) */
} av_roles_params;

av_roles_params av_roles_default_params(void);

/* The built-in natural-text probe. */
const char *av_roles_default_text(void);

/* Probe ids drawn for the random sequences: every id except BOS, EOS and pieces written <...> (unknown,
 * byte and control pieces); all ids when the model has no tokenizer. *out malloc'd. */
int av_roles_candidates(const av_model *m, int32_t **out, int *n_out, av_err *err);
/* The repeated random sequence of sample s: [BOS] + R + R, R of length L; ids (2L+1) caller-allocated.
 * rng_state carries the PRNG (splitmix64) from sample to sample; start it at the seed. */
void av_roles_repeat_sequence(const int32_t *cands, int n_cands, int bos, int L, uint64_t *rng_state,
                              int32_t *ids);

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

/* Scores every head with both probes, run through run(run_ctx, ...); m gives the layer/head counts, context,
 * vocabulary and tokenizer (read only). Free with av_roles_result_free. */
int av_model_roles(const av_model *m, av_roles_run_fn run, void *run_ctx, const av_roles_params *p,
                   av_roles_result *out, av_err *err);
void av_roles_result_free(av_roles_result *r);

/* ---- JSON export (export.c), schema in docs/ANALYSIS.md ----------------------------------------------- */

/* A matrix as an array of rows (numbers rounded to 6 significant digits; NaN -> null). */
json_t *av_json_matrix(const float *m, int rows, int cols);
/* {"format": "attnviz-stats", ...} with "tokens", "heads" (stats + role from the statistics). */
json_t *av_stats_json(const av_trace *t, av_attn_kind kind, const av_head_stats *stats, int n_stats);
/* {"format": "attnviz-roles", ...}. */
json_t *av_roles_json(const av_model *m, const av_roles_result *r);

#endif /* AV_ANALYSIS_H */
