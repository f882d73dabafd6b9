/* Attribution and the logit lens (docs/ATTRIBUTION.md): how much each source token matters to the
 * log-probability of each target, by perturbation (perturb.c, evaluated in batches by batch.c) or through
 * the backward pass (gradient.c); the residual stream of every layer decoded by the head (lens.c); the
 * public entry points that put either into a trace (run.c). */
#ifndef AV_ATTRIB_H
#define AV_ATTRIB_H

#include "model/forward.h"
#include "trace/capture.h"

/* The question: a model reads ids (the source, then for decoders the targets); target i is token targets[i]
 * predicted at logits row rows[i]; source positions 0..S-1 are attributed, in groups. */
typedef struct av_attr_task {
    const av_model *m;
    const av_attr_params *p;
    const int32_t *ids; /* (T) */
    int T, S;
    const int32_t *targets; /* (n_target) */
    const int32_t *rows;    /* (n_target) */
    int n_target;
    int decoder;     /* causal: the targets follow the source, rows S - 1 + i */
    int baseline_id; /* AV_BASELINE_TOKEN: the token a perturbed or baseline position reads */
    int32_t *groups; /* (S) group of each source position, 0..n_groups-1 in order */
    int n_groups;
    int n_threads;
    float *logp; /* (n_target) log p(target_i) with the original input */
} av_attr_task;

/* ---- batch.c: log-probabilities of perturbed inputs ---- */

/* vals (n_pert, n_target) = log p(target_i) with, for perturbation k, every group g with off[k][g] != 0
 * taking the baseline (off: (n_pert, n_groups)). Perturbations run in batches of sequences; a decoder's
 * batch starts at its first perturbed position on a copy of the original's KV cache (the prefix before it is
 * the original's). stage names the progress reports. */
int av_attr_values(const av_attr_task *t, const uint8_t *off, int n_pert, float *vals, const char *stage,
                   av_err *err);
/* The log-probabilities of the targets from n stack outputs of the target rows x (n, dim) of one or more
 * sequences: out (n). */
int av_attr_target_logp(const av_attr_task *t, av_state *s, const float *x, int n, float *out, av_err *err);

/* ---- perturb.c ---- */

/* out (n_target, S): occlusion (log p with the input minus log p with the group replaced) and sampled
 * Shapley values (p->samples permutations of the groups from SplitMix64(p->seed), Captum's algorithm). */
int av_attr_occlusion(const av_attr_task *t, float *out, av_err *err);
int av_attr_shapley(const av_attr_task *t, float *out, av_err *err);
/* The groups of p->group over the S source ids (task groups); -1 with a message (word groups need a
 * tokenizer). */
int av_attr_make_groups(av_attr_task *t, av_err *err);

/* ---- gradient.c ---- */

/* The gradient methods asked for in mask (saliency, ixg, ig, attn-grad bits): out[method] (n_target, S) for
 * each; ig_delta, ig_fb (n_target): IG's completeness error sum_j attr - (f(x) - f(baseline)) and
 * f(baseline); axg_heads (n_target, n_layers, n_heads, S) attention x gradient per head. */
typedef struct av_attr_grads {
    float *out[AV_ATTR_METHOD_COUNT];
    float *ig_delta, *ig_fb, *axg_heads;
} av_attr_grads;
int av_attr_gradients(const av_attr_task *t, unsigned mask, av_attr_grads *g, av_err *err);
/* Integration points and weights of rule on [0, 1]: alpha, w (steps). */
void av_ig_points(av_ig_rule rule, int steps, double *alpha, double *w);

/* ---- lens.c ---- */

/* The lens tensors of ids (T) into trace tr: lens.topk_ids, lens.topk_logprobs, lens.target_*. */
int av_lens_compute(const av_model *m, const int32_t *ids, int T, int k, int n_threads, av_trace *tr,
                    av_err *err);

#endif
