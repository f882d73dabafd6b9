/* Next-token distributions and sampling over one logits row (sample.h; the procedure in docs/GENERATION.md).
 */
#include "kernels/sample.h"

#include "core/core.h"

#include <math.h>
#include <stdlib.h>

void av_rng_seed(av_rng *r, uint64_t seed) { r->state = seed; }

uint64_t av_rng_next(av_rng *r) {
    uint64_t z = (r->state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double av_rng_uniform(av_rng *r) { return (double)(av_rng_next(r) >> 11) * 0x1.0p-53; }

double av_log_softmax(const float *x, int n, float *out) {
    double mx = -INFINITY;
    for (int i = 0; i < n; i++)
        if (x[i] > mx) mx = x[i];
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += exp((double)x[i] - mx);
    double lse = mx + log(sum);
    for (int i = 0; i < n; i++)
        out[i] = (float)((double)x[i] - lse);
    return lse;
}

double av_entropy_of_logprobs(const float *lp, int n) {
    double h = 0;
    for (int i = 0; i < n; i++) {
        double p = exp((double)lp[i]);
        if (p > 0) h -= p * (double)lp[i];
    }
    return h;
}

/* a ranks before b: larger value, then lower index. */
static int ranks_before(float va, int32_t ia, float vb, int32_t ib) {
    return va > vb || (va == vb && ia < ib);
}

/* Restores the min-heap (worst candidate at the root) below position i. */
static void heap_down(int32_t *ids, float *vals, int n, int i) {
    for (;;) {
        int worst = i, l = 2 * i + 1, r = l + 1;
        if (l < n && ranks_before(vals[worst], ids[worst], vals[l], ids[l])) worst = l;
        if (r < n && ranks_before(vals[worst], ids[worst], vals[r], ids[r])) worst = r;
        if (worst == i) return;
        float tv = vals[i];
        int32_t ti = ids[i];
        vals[i] = vals[worst], ids[i] = ids[worst];
        vals[worst] = tv, ids[worst] = ti;
        i = worst;
    }
}

int av_top_k(const float *x, int n, int k, int32_t *ids, float *vals) {
    if (k > n) k = n;
    if (k <= 0) return 0;
    float stack_vals[64], *v = vals;
    if (!v && k <= 64) v = stack_vals;
    float *heap_vals = v ? v : malloc(sizeof(float) * (size_t)k); /* (k) */
    if (!heap_vals) return 0;
    for (int i = 0; i < k; i++)
        ids[i] = i, heap_vals[i] = x[i];
    for (int i = k / 2 - 1; i >= 0; i--)
        heap_down(ids, heap_vals, k, i);
    for (int i = k; i < n; i++)
        if (ranks_before(x[i], i, heap_vals[0], ids[0])) {
            heap_vals[0] = x[i], ids[0] = i;
            heap_down(ids, heap_vals, k, 0);
        }
    for (int end = k - 1; end > 0; end--) { /* heap sort: the worst goes to the end, best first remains */
        float tv = heap_vals[0];
        int32_t ti = ids[0];
        heap_vals[0] = heap_vals[end], ids[0] = ids[end];
        heap_vals[end] = tv, ids[end] = ti;
        heap_down(ids, heap_vals, end, 0);
    }
    if (heap_vals != vals && heap_vals != stack_vals) free(heap_vals);
    return k;
}

av_sampling av_sampling_default_params(void) { return (av_sampling){0.0, 0, 1.0, 0.0, 0}; }

int av_sampling_check(const av_sampling *s, av_err *err) {
    if (!(s->temperature >= 0) || isinf(s->temperature))
        return av_errf(err, "temperature must be a finite number >= 0, got %g", s->temperature);
    if (s->top_k < 0) return av_errf(err, "top-k must be >= 0 (0: off), got %d", s->top_k);
    if (!(s->top_p > 0 && s->top_p <= 1))
        return av_errf(err, "top-p must be in (0, 1] (1: off), got %g", s->top_p);
    if (!(s->min_p >= 0 && s->min_p <= 1))
        return av_errf(err, "min-p must be in [0, 1] (0: off), got %g", s->min_p);
    return 0;
}

/* qsort over candidate order: a context-free comparison needs the values next to the ids. */
typedef struct cand {
    double z;
    int32_t id;
} cand;

static int cand_cmp(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->z != y->z) return x->z > y->z ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Candidates most probable first into w->ids (top_k of them when top_k > 0); returns their count, -1 when
 * out of memory. z = logit / temperature. */
static int rank_candidates(const float *logits, int n, const av_sampling *s, av_sample_work *w) {
    if (s->top_k > 0 && s->top_k < n) return av_top_k(logits, n, s->top_k, w->ids, NULL);
    cand *c = malloc(sizeof *c * (size_t)n); /* (n) */
    if (!c) return -1;
    for (int i = 0; i < n; i++)
        c[i] = (cand){logits[i], i};
    qsort(c, (size_t)n, sizeof *c, cand_cmp);
    for (int i = 0; i < n; i++)
        w->ids[i] = c[i].id;
    free(c);
    return n;
}

int32_t av_sample_next(const float *logits, int n, const av_sampling *s, av_rng *rng, av_sample_work *w) {
    for (int i = 0; i < n; i++)
        if (isnan(logits[i])) return -1;
    if (s->temperature <= 0) {
        int32_t best;
        av_top_k(logits, n, 1, &best, NULL);
        return best;
    }
    int m = rank_candidates(logits, n, s, w); /* dividing by a positive temperature keeps the order */
    if (m <= 0) return -1;
    double zmax = (double)logits[w->ids[0]] / s->temperature, total = 0;
    if (!isfinite(zmax)) return -1; /* every logit -inf, or an overflow */
    for (int i = 0; i < m; i++)
        total += w->p[i] = exp((double)logits[w->ids[i]] / s->temperature - zmax);
    int keep = m;
    if (s->top_p < 1) { /* the smallest prefix whose share reaches top_p */
        double cum = 0;
        for (keep = 0; keep < m && cum < s->top_p * total;)
            cum += w->p[keep++];
    }
    if (s->min_p > 0) /* p_i >= min_p * p_max: the same ratio before or after renormalizing */
        for (int i = 1; i < keep; i++)
            if (w->p[i] < s->min_p * w->p[0]) {
                keep = i;
                break;
            }
    double kept = 0;
    for (int i = 0; i < keep; i++)
        kept += w->p[i];
    double u = av_rng_uniform(rng) * kept, cum = 0;
    for (int i = 0; i < keep; i++) {
        cum += w->p[i];
        if (cum > u) return w->ids[i];
    }
    return w->ids[keep - 1]; /* u * kept rounded up to the sum */
}
