/* Sampling and next-token distributions (src/kernels/sample.c) against references written here another way:
 * SplitMix64's published outputs, log-softmax and entropy in long double, top-k by a full sort, and the exact
 * distribution of every sampler setting computed per token from its rank (not by the sampler's prefix loop),
 * checked with a chi-square test on a small vocabulary. */
#include "harness.h"
#include "kernels/sample.h"

#include <stdint.h>

static void test_rng_splitmix64(void) {
    av_rng r;
    av_rng_seed(&r, 0); /* Vigna's reference splitmix64.c with x = 0 */
    CHECK(av_rng_next(&r) == 0xE220A8397B1DCDAFull);
    CHECK(av_rng_next(&r) == 0x6E789E6AA1B965F4ull);
    CHECK(av_rng_next(&r) == 0x06C45D188009454Full);
    av_rng_seed(&r, 42);
    for (int i = 0; i < 1000; i++) {
        double u = av_rng_uniform(&r);
        CHECKF(u >= 0 && u < 1, "uniform %g outside [0, 1)", u);
    }
}

static void test_log_softmax_entropy(void) {
    float x[6] = {1.5f, -2.0f, 0.25f, 3.0f, -INFINITY, 3.0f}, lp[6];
    long double mx = 3.0L, s = 0;
    for (int i = 0; i < 6; i++)
        s += expl((long double)x[i] - mx);
    long double lse = mx + logl(s), h = 0;
    double got = av_log_softmax(x, 6, lp);
    CHECKF(fabsl((long double)got - lse) < 1e-12L, "lse %.15g vs %.15Lg", got, lse);
    for (int i = 0; i < 6; i++) {
        long double ref = (long double)x[i] - lse;
        if (isinf(x[i]))
            CHECK(isinf(lp[i]) && lp[i] < 0);
        else
            CHECKF(fabsl((long double)lp[i] - ref) < 1e-6L, "lp[%d] %g vs %Lg", i, (double)lp[i], ref);
        if (!isinf(x[i])) h -= expl(ref) * ref;
    }
    CHECKF(fabsl((long double)av_entropy_of_logprobs(lp, 6) - h) < 1e-6L, "entropy %g vs %Lg",
           av_entropy_of_logprobs(lp, 6), h);
    float uni[4] = {0, 0, 0, 0}; /* uniform over 4: ln 4 */
    av_log_softmax(uni, 4, uni);
    CHECK(fabs(av_entropy_of_logprobs(uni, 4) - log(4.0)) < 1e-6);
}

static int by_value_then_index(const void *a, const void *b, const float *x) {
    int32_t i = *(const int32_t *)a, j = *(const int32_t *)b;
    if (x[i] != x[j]) return x[i] > x[j] ? -1 : 1;
    return i < j ? -1 : i > j;
}
static const float *g_sort_x;
static int cmp_sort(const void *a, const void *b) { return by_value_then_index(a, b, g_sort_x); }

static void test_top_k_against_sort(void) {
    enum { N = 300 };
    float x[N];
    int32_t order[N], ids[N];
    float vals[N];
    av_rng r;
    av_rng_seed(&r, 7);
    for (int i = 0; i < N; i++) {
        x[i] = (float)(av_rng_next(&r) % 40) - 20; /* many ties */
        order[i] = i;
    }
    g_sort_x = x;
    qsort(order, N, sizeof order[0], cmp_sort);
    const int ks[] = {1, 2, 5, 10, 64, 65, 299, 300};
    for (size_t t = 0; t < sizeof ks / sizeof ks[0]; t++) {
        int k = ks[t];
        REQUIRE(av_top_k(x, N, k, ids, vals) == k);
        for (int i = 0; i < k; i++)
            CHECKF(ids[i] == order[i] && vals[i] == x[order[i]], "k=%d rank %d: id %d, expected %d", k, i,
                   ids[i], order[i]);
    }
    CHECK(av_top_k(x, 3, 10, ids, NULL) == 3);
}

static void test_greedy_no_draw(void) {
    float x[5] = {0.5f, 2.0f, -1.0f, 2.0f, 1.0f};
    av_sampling s = av_sampling_default_params();
    int32_t ids[5];
    double p[5];
    av_sample_work w = {ids, p};
    av_rng r;
    av_rng_seed(&r, 3);
    uint64_t before = r.state;
    CHECK(av_sample_next(x, 5, &s, &r, &w) == 1); /* tie between 1 and 3: the lower id */
    CHECK(r.state == before);
    float bad[3] = {0.0f, NAN, 1.0f};
    CHECK(av_sample_next(bad, 3, &s, &r, &w) == -1);
    av_err err = {{0}};
    av_sampling wrong = s;
    wrong.top_p = 0;
    CHECK(av_sampling_check(&wrong, &err) == -1 && strstr(err.msg, "top-p"));
    wrong = s, wrong.temperature = -1;
    CHECK(av_sampling_check(&wrong, &err) == -1 && strstr(err.msg, "temperature"));
    CHECK(av_sampling_check(&s, &err) == 0);
}

enum { V = 8 };
static const float logits[V] = {2.0f, 1.2f, 1.2f, 0.3f, -0.5f, 0.9f, -3.0f, 1.9f};

/* The exact distribution of s over logits, one token at a time: rank of each token, softmax over the top-k,
 * the probability mass ranked strictly before it (kept while below top_p), its ratio to the best. */
static void exact_distribution(const av_sampling *s, long double *q) {
    int rank[V];
    for (int i = 0; i < V; i++) {
        rank[i] = 0;
        for (int j = 0; j < V; j++)
            rank[i] += logits[j] > logits[i] || (logits[j] == logits[i] && j < i);
    }
    long double e[V], z = 0, best = 0;
    for (int i = 0; i < V; i++) {
        int in = s->top_k == 0 || rank[i] < s->top_k;
        e[i] = in ? expl((long double)logits[i] / s->temperature) : 0;
        z += e[i];
        if (e[i] > best) best = e[i];
    }
    long double total = 0;
    for (int i = 0; i < V; i++) {
        long double before = 0;
        for (int j = 0; j < V; j++)
            if (rank[j] < rank[i]) before += e[j] / z;
        int keep = e[i] > 0 && (s->top_p >= 1 || before < (long double)s->top_p) &&
                   e[i] >= (long double)s->min_p * best;
        q[i] = keep ? e[i] : 0;
        total += q[i];
    }
    for (int i = 0; i < V; i++)
        q[i] /= total;
}

/* Chi-square critical values at p = 0.001 for 1..7 degrees of freedom. */
static const double chi2_crit[8] = {0, 10.83, 13.82, 16.27, 18.47, 20.52, 22.46, 24.32};

static void check_distribution(const char *name, av_sampling s) {
    enum { DRAWS = 40000 };
    long double q[V];
    exact_distribution(&s, q);
    int32_t ids[V];
    double p[V];
    av_sample_work w = {ids, p};
    av_rng r;
    av_rng_seed(&r, s.seed);
    long count[V] = {0};
    for (int d = 0; d < DRAWS; d++) {
        int32_t id = av_sample_next(logits, V, &s, &r, &w);
        REQUIREF(id >= 0 && id < V, "%s: sampled %d", name, id);
        count[id]++;
    }
    double chi2 = 0;
    int kept = 0;
    for (int i = 0; i < V; i++) {
        if (q[i] == 0) {
            CHECKF(count[i] == 0, "%s: token %d is filtered out but was drawn %ld times", name, i, count[i]);
            continue;
        }
        kept++;
        double e = (double)q[i] * DRAWS;
        chi2 += (count[i] - e) * (count[i] - e) / e;
    }
    if (kept > 1)
        CHECKF(chi2 < chi2_crit[kept - 1], "%s: chi-square %.2f >= %.2f (%d kept tokens)", name, chi2,
               chi2_crit[kept - 1], kept);
}

static void test_distributions_chi_square(void) {
    check_distribution("temperature 1", (av_sampling){1.0f, 0, 1.0f, 0.0f, 11});
    check_distribution("temperature 0.6", (av_sampling){0.6f, 0, 1.0f, 0.0f, 12});
    check_distribution("temperature 2.5", (av_sampling){2.5f, 0, 1.0f, 0.0f, 13});
    check_distribution("top-k 3 (tie at the edge)", (av_sampling){1.0f, 3, 1.0f, 0.0f, 14});
    check_distribution("top-p 0.7", (av_sampling){1.0f, 0, 0.7f, 0.0f, 15});
    check_distribution("min-p 0.3", (av_sampling){1.0f, 0, 1.0f, 0.3f, 16});
    check_distribution("all filters", (av_sampling){0.8f, 6, 0.9f, 0.05f, 17});
}

static void test_seed_determinism(void) {
    av_sampling s = {0.9f, 0, 0.95f, 0.0f, 1234};
    int32_t ids[V], seq[3][200];
    double p[V];
    av_sample_work w = {ids, p};
    for (int run = 0; run < 3; run++) {
        av_rng r;
        av_rng_seed(&r, run < 2 ? s.seed : s.seed + 1);
        for (int i = 0; i < 200; i++)
            seq[run][i] = av_sample_next(logits, V, &s, &r, &w);
    }
    CHECK(memcmp(seq[0], seq[1], sizeof seq[0]) == 0);
    CHECK(memcmp(seq[0], seq[2], sizeof seq[0]) != 0);
    /* exactly one draw per token: the stream after 200 tokens is the 200th state */
    av_rng r, ref;
    av_rng_seed(&r, 5);
    av_rng_seed(&ref, 5);
    for (int i = 0; i < 200; i++) {
        av_sample_next(logits, V, &s, &r, &w);
        av_rng_next(&ref);
    }
    CHECK(r.state == ref.state);
}

int main(void) {
    RUN(test_rng_splitmix64);
    RUN(test_log_softmax_entropy);
    RUN(test_top_k_against_sort);
    RUN(test_greedy_no_draw);
    RUN(test_distributions_chi_square);
    RUN(test_seed_determinism);
    return h_exit_code();
}
