/* Next-token distributions of one logits row: log-softmax, entropy, the k most probable tokens, and sampling
 * (temperature, top-k, top-p, min-p) from a seeded random number generator. Pure functions over one row; the
 * caller owns every buffer. The procedure is written out in docs/GENERATION.md so that another program can
 * reproduce a sampled sequence exactly. */
#ifndef AV_SAMPLE_H
#define AV_SAMPLE_H

#include "attnviz.h"

#include <stdint.h>

/* SplitMix64 (Steele, Lea & Flood 2014): state += 0x9E3779B97F4A7C15, then the output mix of that state.
 * A seed is the initial state; the same seed gives the same stream on every machine. */
typedef struct av_rng {
    uint64_t state;
} av_rng;

void av_rng_seed(av_rng *r, uint64_t seed);
uint64_t av_rng_next(av_rng *r);
/* A double in [0, 1): the top 53 bits of av_rng_next / 2^53. */
double av_rng_uniform(av_rng *r);

/* out[i] = x[i] - log(sum_j exp(x[j])), sums in double; returns the log-sum-exp. -inf logits give -inf.
 * out may equal x. x, out: (n). */
double av_log_softmax(const float *x, int n, float *out);
/* Entropy in nats, -sum_i p_i log p_i with p_i = exp(lp[i]); terms with p_i = 0 add 0. lp: (n). */
double av_entropy_of_logprobs(const float *lp, int n);
/* Indices of the k largest values of x (k <= n), largest first, ties broken by the lower index; vals (may be
 * NULL) receives them. O(n log k). ids, vals: (k). Returns k, or min(k, n). */
int av_top_k(const float *x, int n, int k, int32_t *ids, float *vals);

/* Scratch of av_sample_next for a vocabulary of n: n candidates. */
typedef struct av_sample_work {
    int32_t *ids; /* (n) candidate ids, most probable first */
    double *p;    /* (n) their probabilities */
} av_sample_work;

/* The next token from logits (n) as av_sampling says (include/attnviz.h): greedy when s->temperature <= 0 (no
 * draw); otherwise temperature, top-k, top-p, min-p in that order, then one uniform draw u from rng and the
 * first candidate (most probable first) whose cumulative probability exceeds u times the kept total. -1 when
 * the logits hold NaN or nothing finite. */
int32_t av_sample_next(const float *logits, int n, const av_sampling *s, av_rng *rng, av_sample_work *w);

#endif
