/* Analysis of attention traces: aggregation over heads/layers, attention rollout and flow, norm-based
 * attention, per-head statistics, head-role detection, and the JSON export the viewer embeds.
 * See docs/ANALYSIS.md for the formulas and the JSON schema. The part callers outside src/ use (head
 * statistics, roles, rollout, flow, norm-based attention, their params and results) is declared in
 * include/attnviz.h; this header adds the building blocks the CLI, the viewer page and the tests share.
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

/* Rollout of already-fused layers: layers[l] (T, T) for l = 0 (first) .. n_layers-1. out (T, T):
 * out = A'_{n-1} ... A'_1 A'_0, with A'_l = rownorm((1-r) layers[l] + r I). Rows of out sum to 1. */
int av_rollout_mats(const float *const *layers, int n_layers, int T, float residual, float *out, av_err *err);

/* ---- attention flow (flow.c) ------------------------------------------------------------------------- */

/* Estimated cost of attention flow for n_layers layers of T tokens (the figure the guard compares). */
double av_flow_work(int n_layers, int T);
/* Raw max-flow values: out[i][j] = maximum flow from token i after the last layer to input token j through
 * the layered graph whose edges (l+1, i) -> (l, j) have capacity A'_l[i][j] (A' as in rollout).
 * layers[l] (T, T) fused. Refuses (with a message saying what to do) above max_work. */
int av_flow_mats(const float *const *layers, int n_layers, int T, float residual, double max_work, float *out,
                 av_err *err);

/* ---- norm-based attention (normattn.c), Kobayashi et al. 2020 ----------------------------------------- */

/* out (n_query, n_key): ||alpha_ij v_j W_o^h|| = alpha_ij * vnorm[h][j] for one head h (never builds the
 * (H, N, N, d) tensor). vnorm is (n_heads, n_key) F32, as av_trace_vnorm returns. */
int av_norm_attn_head(const av_attn_view *v, const av_tensor *vnorm, int head, float *out, av_err *err);

/* ---- per-head statistics (headstats.c) ---------------------------------------------------------------- */

enum { AV_TOKCLASS_SPECIAL = 1, AV_TOKCLASS_PUNCT = 2 };

/* Class bits of a display label: special (<s>, </s>, <unk>, <pad>, <|endoftext|>, [CLS], [SEP], ...) and
 * punctuation (only ASCII punctuation after leading spaces / SentencePiece and GPT-2 space marks). */
uint8_t av_token_class(const char *label);

/* 1 when every entry above the diagonal of every head is exactly 0 (a causal self-attention layer). */
int av_attn_is_causal(const av_attn_view *v);
/* Display labels of the queries (key_side 0) or keys (key_side 1) of kind: the metadata list that
 * av_attn_kind_labels_key names, else (self) the trace's tokens. NULL when unknown (or their count is not n)
 * or out of memory. Free with av_labels_free. */
char **av_trace_side_labels(const av_trace *t, av_attn_kind kind, int key_side, int n);
void av_labels_free(char **labels, int n);

/* Statistics of every head of one layer. key_class (n_key) or NULL; vnorm (n_heads, n_key) or NULL;
 * positional: query i and key i are the same token (self-attention kinds, not cross). out (n_heads). */
int av_head_stats_layer(const av_attn_view *v, int layer, int positional, const uint8_t *key_class,
                        const float *vnorm, av_head_stats *out, av_err *err);

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

/* Sets best / best_score from the scores. */
void av_roles_pick(av_head_roles *r);
/* Repeated-sequence scores of every head of one layer run on a sequence whose positions first..first+L-1
 * hold L tokens repeated at first+L..first+2L-1: induction[h] = mean_i a[i][i-L+1], duplicate[h] =
 * mean_i a[i][i-L], over i in the second copy. induction, duplicate: (n_heads). */
int av_roles_repeat_scores(const av_attn_view *v, int first, int L, double *induction, double *duplicate,
                           av_err *err);

/* The built-in natural-text probe. */
const char *av_roles_default_text(void);

/* Probe ids drawn for the random sequences: every id except BOS, EOS and pieces written <...> (unknown,
 * byte and control pieces); all ids when the model has no tokenizer. *out malloc'd. */
int av_roles_candidates(const av_model *m, int32_t **out, int *n_out, av_err *err);
/* The repeated random sequence of sample s: [BOS] + R + R, R of length L; ids (2L+1) caller-allocated.
 * rng_state carries the PRNG (splitmix64) from sample to sample; start it at the seed. */
void av_roles_repeat_sequence(const int32_t *cands, int n_cands, int bos, int L, uint64_t *rng_state,
                              int32_t *ids);

/* ---- JSON export (export.c), schema in docs/ANALYSIS.md ----------------------------------------------- */

/* A matrix as an array of rows (numbers rounded to 6 significant digits; NaN -> null). */
json_t *av_json_matrix(const float *m, int rows, int cols);
/* {"format": "attnviz-stats", ...} with "tokens", "heads" (stats + role from the statistics). */
json_t *av_stats_json(const av_trace *t, av_attn_kind kind, const av_head_stats *stats, int n_stats);
/* {"format": "attnviz-roles", ...}. */
json_t *av_roles_json(const av_model *m, const av_roles_result *r);

/* ---- comparing two traces (diff.c) --------------------------------------------------------------------- */

/* A trace of the differences A − B of two traces of the same tokens: for every kind both hold (same layers
 * and heads), attn.<kind>.<layer> = A − B (signed), its decoder side cut to the compared tokens; tokens from
 * A; metadata model "name_a − name_b", diff {"a", "b", "tokens", "tokens_a", "tokens_b"} and, when both have
 * log-probabilities, diff_logprobs {"a": [...], "b": [...]} (null where unknown). Tokens are compared by id
 * (by label without ids); traces that differ fail with the first differing position, unless common_prefix:
 * then the longest common prefix is compared. Encoder sides must be equal. */
int av_trace_diff(const av_trace *a, const av_trace *b, const char *name_a, const char *name_b,
                  int common_prefix, av_trace **out, av_err *err);
/* Per head of a difference trace: the mean over queries of the total-variation distance between the two
 * rows, 0.5 sum_k |A_qk - B_qk| in [0, 1]. out (n_layers, n_heads), layer-major. */
int av_diff_head_distance(const av_trace *d, av_attn_kind kind, float *out, av_err *err);

#endif /* AV_ANALYSIS_H */
