/* The streamed attention (src/kernels/attention_stream.c: key tiles, running maximum, pooled overview kept
 * per row and cell, outputs bit for bit those of a run without it) against attention computed here in
 * double precision from the definition, on every GEMM path: grouped-query heads, chunks that start
 * mid-sequence, several query blocks and key tiles with ragged ends, a head size that is not a multiple of
 * the kernels' panels, soft-capping, relative-position bias, key masks, sliding windows and rows that see no
 * key; and the capturing path of the same kernel, its probabilities against the reference and bit for bit
 * against av_attention_probs (the lazy recompute), in place and through a sink; and single queries
 * (token-by-token generation, whose blocks are heads of a kv group), bit for bit against the same rows of the
 * whole sequence's run, with panels kept between them or not, and kept panels when the cache under them
 * changes. */
#include "harness.h"
#include "kernels/gemm.h"
#include "kernels/kernels.h"

#include <stdint.h>

enum { H = 4, G = 2, HS = 40, T = 750 }; /* heads, kv heads, head size (32 + 8), sequence */

typedef struct problem {
    float q[T * H * HS], k[T * G * HS], v[T * G * HS];
    float rel[H * (2 * T - 1)];
    uint8_t mask[T];
} problem;

static void fill(problem *p, unsigned seed) {
    for (int i = 0; i < T * H * HS; i++)
        p->q[i] = ((float)rand_r(&seed) / RAND_MAX - 0.5f) * 2.0f;
    for (int i = 0; i < T * G * HS; i++) {
        p->k[i] = ((float)rand_r(&seed) / RAND_MAX - 0.5f) * 2.0f;
        p->v[i] = (float)rand_r(&seed) / RAND_MAX - 0.5f;
    }
    for (int i = 0; i < H * (2 * T - 1); i++)
        p->rel[i] = (float)rand_r(&seed) / RAND_MAX - 0.5f;
    for (int i = 0; i < T; i++)
        p->mask[i] = i % 7 != 3;
}

/* The arguments of a chunk of n_q queries from q_pos against n_k keys (outputs into out, (n_q, H * HS)). */
static av_attn_args args(const problem *p, int q_pos, int n_q, int n_k, float *out) {
    return (av_attn_args){.n_heads = H,
                          .n_kv_heads = G,
                          .head_dim = HS,
                          .n_q = n_q,
                          .n_k = n_k,
                          .q = p->q + (size_t)q_pos * H * HS,
                          .q_stride = H * HS,
                          .k = p->k,
                          .k_stride = G * HS,
                          .v = p->v,
                          .v_stride = G * HS,
                          .out = out,
                          .out_stride = H * HS,
                          .scale = 0.4f,
                          .q_pos = q_pos};
}

/* Row (head h, query at position pos) of the attention of a, in double: probabilities prob (n_k) and the
 * output out (HS). */
static void reference_row(const av_attn_args *a, const problem *p, int h, int pos, double *prob,
                          double *out) {
    int g = h / (H / G), vis = a->causal && pos + 1 < a->n_k ? pos + 1 : a->n_k;
    double mx = -INFINITY, sum = 0;
    for (int k = 0; k < a->n_k; k++) {
        double s = -INFINITY;
        if (k < vis && (!a->key_mask || a->key_mask[k]) && !(a->window > 0 && k < vis - a->window)) {
            s = 0;
            for (int d = 0; d < HS; d++)
                s += (double)p->q[((size_t)pos * H + (size_t)h) * HS + (size_t)d] *
                     p->k[((size_t)k * G + (size_t)g) * HS + (size_t)d];
            s *= a->scale;
            if (a->softcap > 0) s = a->softcap * tanh(s / a->softcap);
            if (a->rel_bias)
                s += a->rel_bias[(size_t)h * (size_t)a->rel_stride + (size_t)(a->rel_zero + k - pos)];
        }
        prob[k] = s;
        mx = s > mx ? s : mx;
    }
    for (int k = 0; k < a->n_k; k++) {
        prob[k] = mx == -INFINITY ? 0 : exp(prob[k] - mx);
        sum += prob[k];
    }
    for (int d = 0; d < HS; d++)
        out[d] = 0;
    for (int k = 0; k < a->n_k; k++) {
        prob[k] = sum > 0 ? prob[k] / sum : 0;
        for (int d = 0; d < HS; d++)
            out[d] += prob[k] * p->v[((size_t)k * G + (size_t)g) * HS + (size_t)d];
    }
}

/* Largest difference of the outputs of a (queries q_pos.. of the chunk) from the reference; with pool_max /
 * pool_sum (H, R, C) the reference's pooled cells are accumulated there (keys of the whole sequence T); with
 * a capture, *probs_worst: the largest difference of its probabilities from the reference's (same rows). */
static double check_outputs(const av_attn_args *a, const problem *p, double *pool_max, double *pool_sum,
                            int R, int C, double *probs_worst) {
    double *prob = malloc(sizeof(double) * T), out[HS], worst = 0;
    *probs_worst = 0;
    for (int h = 0; h < H; h++)
        for (int i = 0; i < a->n_q; i++) {
            reference_row(a, p, h, a->q_pos + i, prob, out);
            for (int d = 0; d < HS; d++) {
                double e = fabs(out[d] - a->out[(size_t)i * H * HS + (size_t)h * HS + (size_t)d]);
                worst = e > worst || e != e ? e : worst;
            }
            const float *got =
                a->probs ? a->probs + (size_t)h * a->probs_head_stride + (size_t)i * a->probs_ld : NULL;
            for (int k = 0; got && k < a->n_k; k++) {
                double e = fabs(got[k] - prob[k]);
                *probs_worst = e > *probs_worst || e != e ? e : *probs_worst;
            }
            int r = (int)(((int64_t)(a->q_pos + i + 1) * R - 1) / T);
            for (int k = 0; pool_max && k < a->n_k; k++) {
                int c = (int)(((int64_t)(k + 1) * C - 1) / T);
                double *mx = pool_max + ((size_t)h * R + (size_t)r) * C + c;
                *mx = prob[k] > *mx ? prob[k] : *mx;
                pool_sum[((size_t)h * R + (size_t)r) * C + c] += prob[k];
            }
        }
    free(prob);
    return worst;
}

/* The entries of a's captured probabilities (rows of probs_ld) that differ from av_attention_probs's (what a
 * lazy trace recomputes) in any bit, and those past a row's visible keys that are not exactly 0. */
static int capture_bits_differ(const av_attn_args *a) {
    int bad = 0;
    float *rows = malloc(sizeof(float) * AV_ATTN_QUERY_BLOCK * T);
    for (int h = 0; h < H; h++)
        for (int r0 = 0; r0 < a->n_q; r0 += AV_ATTN_QUERY_BLOCK) {
            int nr = a->n_q - r0 < AV_ATTN_QUERY_BLOCK ? a->n_q - r0 : AV_ATTN_QUERY_BLOCK;
            int n_keys = av_attention_probs(a, h, r0, nr, rows, a->n_k);
            for (int i = 0; i < nr; i++) {
                const float *got =
                    a->probs + (size_t)h * a->probs_head_stride + (size_t)(r0 + i) * a->probs_ld;
                for (int k = 0; k < a->n_k; k++) {
                    float want = k < n_keys ? rows[(size_t)i * a->n_k + (size_t)k] : 0.0f;
                    bad += memcmp(&got[k], &want, sizeof want) != 0;
                }
            }
        }
    free(rows);
    return bad;
}

/* The outputs of a's chunk that differ in any bit from those of the same run with neither its pooled
 * overview nor its capture (the overview takes each tile's exps from the row's own: it cannot move them). */
static int outputs_differ_without_pool(const av_attn_args *a) {
    av_attn_args b = *a;
    size_t n = (size_t)a->n_q * H * HS;
    float *out = malloc(sizeof(float) * n), *scratch = malloc(sizeof(float) * 2 * AV_ATTN_QUERY_BLOCK * T);
    if (!out || !scratch) { /* out of memory: every output counts */
        free(out), free(scratch);
        return (int)n;
    }
    b.out = out, b.pool = NULL, b.probs = NULL, b.probs_sink = NULL;
    av_attention(&b, scratch, 2);
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += memcmp(&out[i], &a->out[i], sizeof(float)) != 0;
    free(out), free(scratch);
    return bad;
}

/* What run_case captures: nothing (0), or the probabilities (CAP) into a zeroed buffer or one full of NaN
 * (CAP_NAN), with the pooled overview or without it (CAP_NO_POOL: a forward pass's full capture, whose last
 * key tile's exps go straight into the captured rows), or through a sink (CAP_SINK: the zeroed buffer is
 * marked zeroed, but the rows are computed in fresh buffers full of NaN that the sink copies to their place,
 * as a trace written past the page cache does; a block per buffer, or CAP_SPAN: two). */
enum { CAP = 1, CAP_NAN = 2, CAP_NO_POOL = 4, CAP_SINK = 8, CAP_SPAN = 16 };

static void copy_rows(void *ctx, float *rows, const float *dst, size_t n) {
    memcpy((float *)dst, rows, sizeof(float) * n); /* dst: this test's own capture buffer */
    free(rows);
}

enum { SINK_BLOCKS = 2 }; /* blocks a buffer of the test's sinks holds */

static float *nan_rows(void *ctx) {
    size_t n = SINK_BLOCKS * AV_ATTN_QUERY_BLOCK * (size_t)T;
    float *b = malloc(sizeof(float) * n);
    for (size_t i = 0; b && i < n; i++)
        b[i] = NAN;
    return b;
}

/* a buffer of one block of rows, and one of SINK_BLOCKS (a head's rows handed over two blocks at a time: two
 * hand-overs per head in both chunks) */
static const av_probs_sink block_sink = {nan_rows, copy_rows, NULL, AV_ATTN_QUERY_BLOCK *(size_t)T};
static const av_probs_sink span_sink = {nan_rows, copy_rows, NULL,
                                        SINK_BLOCKS *AV_ATTN_QUERY_BLOCK *(size_t)T};

/* One masking setup, streamed (and, when capture, through the capturing path too) in two chunks against the
 * reference; the pooled overview of the streamed run against the reference's. */
static void run_case(const char *name, const problem *p, int causal, int window, float softcap, int use_rel,
                     int use_mask, int capture) {
    enum { R = 7, C = 11 };
    float *out = calloc((size_t)T * H * HS, sizeof(float)), *probs = NULL;
    float *scratch = malloc(sizeof(float) * 2 * AV_ATTN_QUERY_BLOCK * T) /* 2 threads */;
    float pmax[H * R * C] = {0}, psum[H * R * C] = {0};
    double rmax[H * R * C] = {0}, rsum[H * R * C] = {0};
    av_attn_pool pool = {pmax, psum, R, C, T, T};
    int split = causal ? 450 : 0; /* an encoder runs all its queries at once */
    for (int part = 0; part < 2; part++) {
        int q_pos = part ? split : 0, n_q = part ? T - split : split, n_k = causal ? q_pos + n_q : T;
        if (n_q == 0) continue;
        av_attn_args a = args(p, q_pos, n_q, n_k, out);
        a.causal = causal;
        a.window = window;
        a.softcap = softcap;
        if (use_rel) a.rel_bias = p->rel, a.rel_stride = 2 * T - 1, a.rel_zero = T - 1;
        if (use_mask) a.key_mask = p->mask;
        if (capture) {
            probs = calloc((size_t)H * n_q * n_k, sizeof(float));
            for (size_t i = 0; (capture & CAP_NAN) && i < (size_t)H * n_q * n_k; i++)
                probs[i] = NAN;
            a.probs = probs, a.probs_head_stride = (size_t)n_q * n_k, a.probs_ld = n_k;
            a.probs_zeroed = !(capture & CAP_NAN);
            if (capture & (CAP_SINK | CAP_SPAN)) a.probs_sink = capture & CAP_SPAN ? &span_sink : &block_sink;
        }
        a.pool = capture & CAP_NO_POOL ? NULL : &pool;
        av_attention(&a, scratch, 2);
        double dp, d = check_outputs(&a, p, a.pool ? rmax : NULL, rsum, R, C, &dp);
        CHECKF(d <= 2e-5, "%s (%s, queries from %d): outputs differ from the reference by %g", name,
               av_gemm_path_name(av_gemm_path_get()), q_pos, d);
        int moved = a.pool ? outputs_differ_without_pool(&a) : 0;
        CHECKF(moved == 0, "%s (%s, queries from %d): %d outputs differ from the run without the overview",
               name, av_gemm_path_name(av_gemm_path_get()), q_pos, moved);
        int bad = capture ? capture_bits_differ(&a) : 0;
        CHECKF(dp <= 1e-6 && bad == 0,
               "%s (%s, queries from %d): captured probabilities differ from the reference by %g, %d entries "
               "from av_attention_probs's bits or not 0 past the visible keys",
               name, av_gemm_path_name(av_gemm_path_get()), q_pos, dp, bad);
        free(probs);
        probs = NULL;
    }
    double dmax = 0, dsum = 0;
    for (int i = 0; i < H * R * C; i++) {
        dmax = fabs(pmax[i] - rmax[i]) > dmax ? fabs(pmax[i] - rmax[i]) : dmax;
        dsum = fabs(psum[i] - rsum[i]) > dsum ? fabs(psum[i] - rsum[i]) : dsum;
    }
    CHECKF(dmax <= 1e-5 && dsum <= 1e-4 && (capture & CAP_NO_POOL ? pmax[0] == 0.0f : pmax[0] > 0.0f),
           "%s (%s): pooled max differs by %g, sum by %g", name, av_gemm_path_name(av_gemm_path_get()), dmax,
           dsum);
    free(out);
    free(scratch);
}

static void cases(const problem *p, int capture) {
    run_case("causal", p, 1, 0, 0, 0, 0, capture);
    run_case("causal window", p, 1, 100, 0, 0, 0, capture);
    run_case("softcap + relative bias", p, 1, 0, 1.5f, 1, 0, capture);
    run_case("encoder, key mask, bias", p, 0, 0, 0, 1, 1, capture);
}

/* run(p) on every GEMM path this CPU runs (with a micro-kernel only, when kernel_only) for a problem filled
 * from seed. */
static void on_every_path(unsigned seed, int kernel_only, void (*run)(const problem *p)) {
    problem *p = malloc(sizeof *p);
    REQUIRE(p);
    fill(p, seed);
    av_gemm_path prev = av_gemm_path_get();
    for (int path = 0; path < AV_GEMM_PATH_COUNT; path++)
        if (av_gemm_path_supported((av_gemm_path)path) &&
            (!kernel_only || av_gemm_ukernel((av_gemm_path)path))) {
            av_gemm_path_set((av_gemm_path)path);
            run(p);
        }
    av_gemm_path_set(prev);
    free(p);
}

static void streamed_cases(const problem *p) { cases(p, 0); }

/* Every GEMM path (sgemm has no micro-kernel: the capturing kernel's scratch path runs instead). */
static void test_streamed_attention_equals_reference(void) { on_every_path(5, 0, streamed_cases); }

static void capturing_cases(const problem *p) {
    cases(p, CAP);
    cases(p, CAP | CAP_NO_POOL);
    run_case("causal window, capture not zeroed", p, 1, 100, 0, 0, 0, CAP | CAP_NAN);
    run_case("encoder, key mask, bias, capture not zeroed", p, 0, 0, 0, 1, 1, CAP | CAP_NAN);
    run_case("causal, no overview, capture not zeroed", p, 1, 0, 0, 0, 0, CAP | CAP_NAN | CAP_NO_POOL);
    run_case("causal window, no overview, through a sink", p, 1, 100, 0, 0, 0, CAP | CAP_NO_POOL | CAP_SINK);
    run_case("encoder, key mask, bias, through a sink", p, 0, 0, 0, 1, 1, CAP | CAP_SINK);
    run_case("causal, through a sink two blocks at a time", p, 1, 0, 0, 0, 0, CAP | CAP_SPAN);
}

/* The capture on every path, into zeroed buffers and into ones that are not, with and without the pooled
 * overview, and through a sink: outputs against the reference, probabilities against the reference and bit
 * for bit against av_attention_probs. */
static void test_capturing_attention_equals_reference(void) { on_every_path(6, 0, capturing_cases); }

/* Queries one at a time, as generation runs them (a block's rows are heads of one kv group), on 1-3 threads
 * (3: a group's heads split over blocks), masked and not: outputs and captured rows bit for bit those of the
 * whole sequence run at once (which run_case checks against the reference), pooled cells against the
 * reference's for those rows. On the paths with a micro-kernel (the sgemm path's products, OpenBLAS's, run
 * over the keys of a block's last row, and their bits depend on the blocking). */
static void single_queries(const problem *p, int window, int use_rel, int threads, int use_pool, int keep) {
    enum { R = 5, C = 9 };
    static const int positions[] = {0, 1, 255, 256, 257, 600, T - 1};
    float *out = malloc(sizeof(float) * T * H * HS), *probs = malloc(sizeof(float) * H * T * T);
    float *scratch = malloc(sizeof(float) * 3 * AV_ATTN_QUERY_BLOCK * T),
          *probs1 = malloc(sizeof(float) * H * T);
    float out1[H * HS], pmax[H * R * C] = {0}, psum[H * R * C] = {0}, wmax[H * R * C], wsum[H * R * C];
    double rmax[H * R * C] = {0}, rsum[H * R * C] = {0}, dp;
    av_attn_pool pool = {pmax, psum, R, C, T, T}, whole_pool = {wmax, wsum, R, C, T, T};
    av_attn_panels kept = {0}; /* keep: one set of panels for the positions in turn, as a generation's */
    REQUIRE(out && probs && scratch && probs1);
    av_attn_args a = args(p, 0, T, T, out);
    a.causal = 1, a.window = window;
    if (use_rel) a.rel_bias = p->rel, a.rel_stride = 2 * T - 1, a.rel_zero = T - 1;
    a.probs = probs, a.probs_head_stride = (size_t)T * T, a.probs_ld = T;
    a.pool = use_pool ? &whole_pool : NULL; /* with a pooled overview the exps are computed cell by cell */
    av_attention(&a, scratch, threads);
    int bad_out = 0, bad_probs = 0;
    for (size_t n = 0; n < sizeof positions / sizeof *positions; n++) {
        int pos = positions[n];
        av_attn_args b = a;
        b.q = p->q + (size_t)pos * H * HS, b.q_pos = pos, b.n_q = 1, b.n_k = pos + 1, b.out = out1;
        b.probs = probs1, b.probs_head_stride = T, b.probs_ld = pos + 1; /* heads' rows T apart */
        b.pool = use_pool ? &pool : NULL;
        b.panels = keep ? &kept : NULL;
        for (int i = 0; i < H * T; i++)
            probs1[i] = NAN;
        av_attention(&b, scratch, threads);
        check_outputs(&b, p, b.pool ? rmax : NULL, rsum, R, C, &dp); /* the reference's cells of this row */
        bad_out += memcmp(out1, out + (size_t)pos * H * HS, sizeof out1) != 0;
        for (int h = 0; h < H; h++)
            bad_probs += memcmp(probs1 + (size_t)h * T, probs + ((size_t)h * T + (size_t)pos) * T,
                                sizeof(float) * (size_t)(pos + 1)) != 0;
    }
    double dmax = 0, dsum = 0;
    for (int i = 0; i < H * R * C; i++) {
        dmax = fabs(pmax[i] - rmax[i]) > dmax ? fabs(pmax[i] - rmax[i]) : dmax;
        dsum = fabs(psum[i] - rsum[i]) > dsum ? fabs(psum[i] - rsum[i]) : dsum;
    }
    CHECKF(
        bad_out == 0 && bad_probs == 0 && dmax <= 1e-5 && dsum <= 1e-4,
        "window %d, bias %d, %d threads, overview %d, kept panels %d (%s): %d single-query outputs and %d "
        "captured rows differ from the whole run's; pooled max differs from the reference by %g, sum by %g",
        window, use_rel, threads, use_pool, keep, av_gemm_path_name(av_gemm_path_get()), bad_out, bad_probs,
        dmax, dsum);
    free(out), free(probs), free(scratch), free(probs1), free(kept.panels);
}

static void single_query_cases(const problem *p) {
    for (int threads = 1; threads <= 3; threads++)
        single_queries(p, 0, 0, threads, 1, threads == 2);
    single_queries(p, 100, 1, 2, 0, 1);
}

/* Causal attention of p's queries: all of them (n_q T) into out (T, H * HS), or the one at pos (n_q 1, with
 * the kept panels) into out (H * HS). */
static void causal_run(const problem *p, int pos, av_attn_panels *kept, float *out, float *scratch) {
    av_attn_args a = args(p, pos < 0 ? 0 : pos, pos < 0 ? T : 1, pos < 0 ? T : pos + 1, out);
    a.causal = 1, a.panels = kept;
    av_attention(&a, scratch, 2);
}

/* Kept panels against a cache and kernels that change: packed first by the scalar path's kernel (panels 16
 * keys wide, room for a multiple of 16), then read by the path's (on AVX-512 32 wide), then keys from 300 on
 * rewritten after the panels held them all (the owner lowers n to 300), then the scalar kernel again: each
 * time the last query's outputs bit for bit the whole run's of that cache on that path. */
static void kept_panels_follow_the_cache(const problem *p) {
    problem *p2 = malloc(sizeof *p2);
    float *out = malloc(sizeof(float) * T * H * HS),
          *scratch = malloc(sizeof(float) * 2 * AV_ATTN_QUERY_BLOCK * T);
    float out1[H * HS];
    REQUIRE(p2 && out && scratch);
    *p2 = *p;
    for (int i = 300 * G * HS; i < T * G * HS; i++)
        p2->k[i] = -0.5f * p->k[i], p2->v[i] = p->v[i] + 0.25f;
    av_gemm_path path = av_gemm_path_get();
    const char *name = av_gemm_path_name(path);
    av_attn_panels kept = {0};
    const struct {
        av_gemm_path path;
        const problem *p;
        int lower_to; /* the owner's count after it rewrote the cache from there on, or -1 */
        const char *what;
    } steps[] = {{AV_GEMM_SCALAR, p, -1, "packed by the scalar kernel"},
                 {path, p, -1, "then read by this path's"},
                 {path, p2, 300, "then under keys rewritten from 300 on"},
                 {AV_GEMM_SCALAR, p2, -1, "then by the scalar kernel again"}};
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
        av_gemm_path_set(steps[i].path);
        if (steps[i].lower_to >= 0) kept.n = kept.n < steps[i].lower_to ? kept.n : steps[i].lower_to;
        causal_run(steps[i].p, T - 1, &kept, out1, scratch);
        causal_run(steps[i].p, -1, NULL, out, scratch);
        CHECKF(memcmp(out1, out + (size_t)(T - 1) * H * HS, sizeof out1) == 0,
               "%s: kept panels %s: the last query differs from the whole run's", name, steps[i].what);
    }
    av_gemm_path_set(path);
    free(p2), free(out), free(scratch), free(kept.panels);
}

static void test_single_queries_match_the_whole_run(void) { on_every_path(8, 1, single_query_cases); }

static void test_kept_panels_follow_the_cache(void) { on_every_path(9, 1, kept_panels_follow_the_cache); }

/* Keys all masked: rows that see nothing give 0 (not NaN), add nothing to the overview, and are captured as
 * rows of 0. */
static void test_rows_that_see_nothing(void) {
    problem *p = malloc(sizeof *p);
    REQUIRE(p);
    fill(p, 7);
    memset(p->mask, 0, sizeof p->mask);
    float *out = malloc(sizeof(float) * T * H * HS),
          *scratch = malloc(sizeof(float) * 2 * AV_ATTN_QUERY_BLOCK * T) /* 2 threads */;
    float pmax[H * 4 * 4] = {0}, psum[H * 4 * 4] = {0};
    av_attn_pool pool = {pmax, psum, 4, 4, T, T};
    av_attn_args a = args(p, 0, T, T, out);
    a.key_mask = p->mask;
    a.pool = &pool;
    for (int i = 0; i < T * H * HS; i++)
        out[i] = NAN;
    av_attention(&a, scratch, 2);
    int bad = 0;
    for (int i = 0; i < T * H * HS; i++)
        bad += out[i] != 0.0f;
    for (int i = 0; i < H * 16; i++)
        bad += pmax[i] != 0.0f || psum[i] != 0.0f;
    CHECKF(bad == 0, "%d outputs or cells are not 0", bad);
    float *probs = malloc(sizeof(float) * H * T * T);
    REQUIRE(probs);
    for (size_t i = 0; i < (size_t)H * T * T; i++)
        probs[i] = NAN;
    a.pool = NULL, a.probs = probs, a.probs_head_stride = (size_t)T * T, a.probs_ld = T;
    av_attention(&a, scratch, 2);
    bad = 0;
    for (size_t i = 0; i < (size_t)H * T * T; i++)
        bad += probs[i] != 0.0f;
    CHECKF(bad == 0, "%d captured probabilities are not 0", bad);
    free(probs);
    free(out);
    free(scratch);
    free(p);
}

int main(void) {
    av_kernels_init();
    RUN(test_streamed_attention_equals_reference);
    RUN(test_capturing_attention_equals_reference);
    RUN(test_rows_that_see_nothing);
    RUN(test_single_queries_match_the_whole_run);
    RUN(test_kept_panels_follow_the_cache);
    return h_exit_code();
}
