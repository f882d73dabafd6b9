/* Corpus statistics without a model: fixed-point sums that do not depend on order or sharding, quantile
 * sketches against exact quantiles, offset bins, per-example measurements of hand-made heads (previous-token,
 * sink, duplicate, induction), accumulators merged in pieces equal to one accumulator (their bytes compared),
 * state bytes read back and refused when truncated or corrupted, query/key samples merged across splits, PCA
 * against a known eigenvector, AttentionViz's normalization keeping every softmax row, t-SNE separating
 * clusters the same way on 1 and 2 threads, and input files with bad lines. */
#include "analysis/corpus_run.h"
#include "harness.h"
#include "io/io.h"
#include "trace/trace.h"

#include <math.h>

static uint64_t rng = 88172645463325252ull;
static double urand(void) { /* xorshift64 in [0, 1) */
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

/* ---- fixed point and sketches ---- */

static void test_fx_sums_do_not_depend_on_order_or_shards(void) {
    enum { N = 20000 };
    static double v[N];
    double exact = 0;
    for (int i = 0; i < N; i++) {
        v[i] = urand() * 100 * pow(10, -6 * urand()); /* 6 decades of magnitudes */
        exact += v[i];
    }
    av_fx fwd = 0, rev = 0, shard[3] = {0, 0, 0};
    for (int i = 0; i < N; i++)
        fwd += av_fx_from(v[i]);
    for (int i = N - 1; i >= 0; i--)
        rev += av_fx_from(v[i]);
    for (int i = 0; i < N; i++)
        shard[(int)(urand() * 3)] += av_fx_from(v[i]);
    av_fx merged = shard[2] + shard[0] + shard[1];
    CHECK(fwd == rev);
    CHECK(fwd == merged);
    double back = av_fx_to_double(fwd);
    CHECKF(fabs(back - exact) <= 1e-12 * exact + N * 4e-15, "fixed point %.17g vs double %.17g", back, exact);
}

static void test_moments_mean_and_sd(void) {
    av_moments m = {0};
    double xs[] = {0.5, 0.25, NAN, 1.0, 0.125};
    for (int i = 0; i < 5; i++)
        av_moments_add(&m, xs[i]);
    CHECK(m.n == 4);
    double mean = (0.5 + 0.25 + 1.0 + 0.125) / 4, ss = 0;
    for (int i = 0; i < 5; i++)
        if (!isnan(xs[i])) ss += (xs[i] - mean) * (xs[i] - mean);
    CHECK(fabs(av_moments_mean(&m) - mean) < 1e-14);
    CHECK(fabs(av_moments_sd(&m) - sqrt(ss / 3)) < 1e-12);
    av_moments empty = {0};
    CHECK(isnan(av_moments_mean(&empty)) && isnan(av_moments_sd(&empty)));
}

static int dcmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void test_sketch_quantiles_and_merge(void) {
    enum { N = 5000 };
    static double v[N];
    av_sketch_range r = av_cm_range(AV_CM_DISTANCE);
    int nb = av_sketch_buckets(r);
    uint64_t *all = calloc((size_t)nb, 8), *a = calloc((size_t)nb, 8), *b = calloc((size_t)nb, 8);
    REQUIRE(all && a && b);
    for (int i = 0; i < N; i++) {
        v[i] = exp(4 * urand() - 1); /* log-uniform over ~1.7 decades */
        int k = av_sketch_index(r, nb, v[i]);
        all[k]++;
        (i % 3 ? a : b)[k]++;
    }
    for (int k = 0; k < nb; k++)
        CHECK(all[k] == a[k] + b[k]);
    qsort(v, N, sizeof *v, dcmp);
    for (int q = 0; q <= 20; q++) {
        double level = q / 20.0, want = v[(int)(level * (N - 1))];
        double got = av_sketch_quantile(r, all, nb, level);
        CHECKF(fabs(got - want) <= AV_SKETCH_ALPHA * want * 1.0001, "q %.2f: %g vs exact %g", level, got,
               want);
    }
    CHECK(av_sketch_index(r, nb, 0.0) == 0 && av_sketch_index(r, nb, 1e300) == nb - 1);
    free(all);
    free(a);
    free(b);
}

static void test_position_bins(void) {
    CHECK(av_pos_bin(0) == AV_POS_SIDE - 1);
    CHECK(av_pos_bin(1) == AV_POS_SIDE && av_pos_bin(-1) == AV_POS_SIDE - 2);
    int last = -1;
    for (int64_t d = -5000; d <= 5000; d++) {
        int b = av_pos_bin(d);
        int64_t lo, hi;
        av_pos_bin_range(b, &lo, &hi);
        CHECKF(b >= 0 && b < AV_POS_BINS && lo <= d && d <= hi, "offset %lld -> bin %d [%lld, %lld]",
               (long long)d, b, (long long)lo, (long long)hi);
        CHECKF(b >= last, "bins not monotone at %lld", (long long)d);
        last = b;
    }
    int64_t lo, hi;
    av_pos_bin_range(AV_POS_BINS - 1, &lo, &hi);
    CHECK(hi == INT64_MAX && av_pos_bin(INT64_C(1) << 40) == AV_POS_BINS - 1);
}

/* ---- measuring one trace ---- */

/* "<s> a b c a b c": head 0 previous token, head 1 sink, head 2 duplicate (earlier occurrence), head 3
 * induction (the token after the earlier occurrence); rows without a target put everything on the sink. */
static av_trace *repeat_trace(void) {
    const char *labels[] = {"<s>", "a", "b", "c", "a", "b", "c"};
    enum { T = 7, H = 4 };
    av_trace *t = av_trace_new();
    char **tok = calloc(T, sizeof *tok);
    int32_t *ids = calloc(T, sizeof *ids);
    for (int i = 0; i < T; i++) {
        tok[i] = av_strdup(labels[i]);
        ids[i] = i == 0 ? 1 : 10 + (i - 1) % 3;
    }
    av_err err = {{0}};
    float *a = calloc((size_t)H * T * T, sizeof *a); /* (H, T, T) */
    for (int i = 0; i < T; i++) {
        float *r0 = a + (size_t)(0 * T + i) * T, *r1 = a + (size_t)(1 * T + i) * T;
        float *r2 = a + (size_t)(2 * T + i) * T, *r3 = a + (size_t)(3 * T + i) * T;
        r0[i > 0 ? i - 1 : 0] = 1;
        r1[0] = 1;
        r2[i >= 4 ? i - 3 : 0] = 1;
        r3[i >= 4 && i - 2 < i ? i - 2 : 0] = 1;
    }
    if (av_trace_set_tokens(t, tok, ids, T, &err) ||
        av_trace_add_attn(t, AV_ATTN_SELF, 0, H, T, T, a, &err)) {
        av_trace_free(t);
        return NULL;
    }
    return t;
}

static void test_measure_hand_made_heads(void) {
    av_trace *t = repeat_trace();
    REQUIRE(t);
    av_corpus_example ex;
    av_err err = {{0}};
    REQUIREF(av_corpus_measure(t, 7, &ex, &err) == 0, "%s", err.msg);
    CHECK(ex.layout.n_groups == 1 && ex.layout.n_heads == 4 && ex.n_tokens == 7 && ex.line == 7);
    const double *m0 = ex.metric, *m1 = ex.metric + AV_CM_COUNT, *m2 = ex.metric + 2 * AV_CM_COUNT,
                 *m3 = ex.metric + 3 * AV_CM_COUNT;
    CHECK(fabs(m0[AV_CM_PREV] - 1) < 1e-12 && fabs(m0[AV_CM_DISTANCE] - 1) < 1e-12);
    CHECK(fabs(m1[AV_CM_FIRST] - 1) < 1e-12 && fabs(m1[AV_CM_SPECIAL] - 1) < 1e-12);
    CHECKF(fabs(m2[AV_CM_DUPLICATE] - 1) < 1e-12, "duplicate %g", m2[AV_CM_DUPLICATE]);
    CHECKF(fabs(m3[AV_CM_INDUCTION] - 1) < 1e-12, "induction %g", m3[AV_CM_INDUCTION]);
    CHECKF(fabs(m0[AV_CM_INDUCTION]) < 1e-12, "previous-token head scores induction %g", m0[AV_CM_INDUCTION]);
    CHECK(fabs(ex.pos[0 * AV_POS_BINS + av_pos_bin(1)] - 1) < 1e-12); /* previous token: offset 1 */
    CHECK(fabs(ex.pos[2 * AV_POS_BINS + av_pos_bin(3)] - 4.0 / 6) <
          1e-12); /* rows 3..6 of 1..6 at offset 3 */
    REQUIRE(ex.n_labels == 1 && strcmp(ex.labels[0], "<s>") == 0);
    CHECK(fabs(ex.label_pos[1] - 1) < 1e-12); /* the sink head's mass on <s> */
    av_corpus_example_free(&ex);
    av_trace_free(t);
}

/* ---- accumulators ---- */

/* A synthetic example of 2 groups (self 2x3, cross 1x2) with random values and labels from a pool. */
static void random_example(av_corpus_example *ex, int64_t line) {
    static const char *pool[] = {"<s>", "</s>", "[SEP]"};
    memset(ex, 0, sizeof *ex);
    ex->layout.n_groups = 2;
    ex->layout.groups[0] = (av_corpus_group){AV_ATTN_SELF, 2, 3, 1};
    ex->layout.groups[1] = (av_corpus_group){AV_ATTN_CROSS, 1, 2, 0};
    ex->layout.n_heads = 8;
    ex->line = line;
    ex->n_tokens = 3 + (int)(urand() * 40);
    ex->metric = malloc(sizeof *ex->metric * 8 * AV_CM_COUNT);
    ex->pos = malloc(sizeof *ex->pos * 8 * AV_POS_BINS);
    for (int i = 0; i < 8 * AV_CM_COUNT; i++)
        ex->metric[i] = urand() < 0.1 ? NAN : urand() * (i % AV_CM_COUNT == AV_CM_DISTANCE ? 20 : 1);
    for (int h = 0; h < 8; h++)
        for (int b = 0; b < AV_POS_BINS; b++)
            ex->pos[h * AV_POS_BINS + b] = h < 6 ? urand() / AV_POS_BINS : NAN;
    ex->n_labels = 1 + (int)(urand() * 2);
    ex->labels = calloc(3, sizeof *ex->labels);
    ex->label_pos = malloc(sizeof *ex->label_pos * 3 * 8);
    int first = (int)(urand() * 2);
    for (int l = 0; l < ex->n_labels; l++) {
        ex->labels[l] = av_strdup(pool[first + l]);
        for (int h = 0; h < 8; h++)
            ex->label_pos[l * 8 + h] = urand();
    }
    if (ex->n_labels == 2 && strcmp(ex->labels[0], ex->labels[1]) > 0) {
        char *x = ex->labels[0];
        ex->labels[0] = ex->labels[1];
        ex->labels[1] = x;
    }
}

static int acc_bytes_equal(const av_corpus_acc *a, const av_corpus_acc *b) {
    av_buf x = {0}, y = {0};
    av_corpus_acc_write(a, &x);
    av_corpus_acc_write(b, &y);
    int same = !x.oom && !y.oom && x.n == y.n && memcmp(x.s, y.s, x.n) == 0;
    free(x.s);
    free(y.s);
    return same;
}

static void test_acc_merge_equals_single_pass(void) {
    enum { N = 300 };
    av_corpus_acc all, part[3], merged;
    av_corpus_acc_init(&all, 3);
    av_corpus_acc_init(&merged, 3);
    for (int k = 0; k < 3; k++)
        av_corpus_acc_init(&part[k], 3);
    av_err err = {{0}};
    for (int i = 0; i < N; i++) {
        av_corpus_example ex;
        random_example(&ex, i + 1);
        int k = (int)(urand() * 3);
        CHECK(av_corpus_acc_add(&all, &ex, &err) == 0 && av_corpus_acc_add(&part[k], &ex, &err) == 0);
        av_corpus_example_free(&ex);
        if (i % 7 == 0) {
            av_corpus_acc_bad(&all, AV_BAD_JSON, 1000 + i, NULL);
            av_corpus_acc_bad(&part[(k + 1) % 3], AV_BAD_JSON, 1000 + i, NULL);
        }
    }
    for (int k = 2; k >= 0; k--) /* another order than the inputs' */
        CHECKF(av_corpus_acc_merge(&merged, &part[k], &err) == 0, "%s", err.msg);
    CHECK(merged.n_examples == N && merged.bad[AV_BAD_JSON] == all.bad[AV_BAD_JSON]);
    CHECK(acc_bytes_equal(&all, &merged));
    av_corpus_role r1, r2;
    av_corpus_acc_role(&all, 4, &r1);
    av_corpus_acc_role(&merged, 4, &r2);
    CHECK(r1.roles.best == r2.roles.best && r1.confidence == r2.confidence);
    av_corpus_acc_free(&all);
    av_corpus_acc_free(&merged);
    for (int k = 0; k < 3; k++)
        av_corpus_acc_free(&part[k]);
}

static void test_acc_bytes_round_trip_and_corruption(void) {
    av_corpus_acc a, b;
    av_corpus_acc_init(&a, 2);
    av_err err = {{0}};
    for (int i = 0; i < 40; i++) {
        av_corpus_example ex;
        random_example(&ex, i + 1);
        av_corpus_acc_add(&a, &ex, &err);
        av_corpus_example_free(&ex);
    }
    av_corpus_acc_bad(&a, AV_BAD_ERROR, 77, "model said no");
    av_buf buf = {0};
    av_corpus_acc_write(&a, &buf);
    REQUIRE(!buf.oom);
    av_reader r;
    av_reader_init(&r, buf.s, buf.n, "acc");
    REQUIREF(av_corpus_acc_read(&b, &r, &err) == 0, "%s", err.msg);
    CHECK(av_reader_left(&r) == 0 && acc_bytes_equal(&a, &b) && strcmp(b.error_msg, "model said no") == 0);
    av_corpus_acc_free(&b);
    int refused = 0, tries = 0;
    for (size_t cut = 0; cut < buf.n; cut += 1 + buf.n / 300, tries++) { /* every truncation is refused */
        av_reader_init(&r, buf.s, cut, "acc");
        if (av_corpus_acc_read(&b, &r, &err) != 0) refused++;
        av_corpus_acc_free(&b);
    }
    CHECKF(refused == tries, "%d of %d truncations read back", tries - refused, tries);
    for (size_t pos = 0; pos < 64; pos++) { /* flipped header bytes never crash (ASan run) */
        buf.s[pos] ^= 0x5a;
        av_reader_init(&r, buf.s, buf.n, "acc");
        av_corpus_acc_read(&b, &r, &err);
        av_corpus_acc_free(&b);
        buf.s[pos] ^= 0x5a;
    }
    free(buf.s);
    av_corpus_acc_free(&a);
}

/* ---- query/key samples ---- */

/* "<prefix>0", "<prefix>1", ... as a JSON list (metadata source_tokens / target_tokens). */
static char *labels_json(const char *prefix, int n) {
    av_buf b = {0};
    for (int i = 0; i < n; i++)
        av_buf_printf(&b, "%s\"%s%d\"", i ? "," : "[", prefix, i);
    av_buf_printf(&b, "]");
    return b.s;
}

/* A lazy trace of one layer of kind: q[h][i][c] = line * 100 + (h * nq + i) * dim + c over 2 heads,
 * k[0][j][c] = -(line * 100 + j * dim + c) over 1 kv head. Self: tokens t0.. (nq == nk); other kinds:
 * target_tokens t0.., source_tokens s0.., and with mask_last the last key is padding. */
static av_trace *lazy_trace(av_attn_kind kind, int nq, int nk, int dim, int line, int mask_last) {
    av_trace *t = av_trace_new();
    av_lazy_kind lz = {.n_layers = 1,
                       .lazy = 1,
                       .n_heads = 2,
                       .n_kv_heads = 1,
                       .head_dim = dim,
                       .n_query = nq,
                       .n_key = nk,
                       .owns_qk = 1,
                       .owns_extras = 1}; /* the trace takes every buffer */
    lz.q = calloc(1, sizeof *lz.q);
    lz.k = calloc(1, sizeof *lz.k);
    lz.scale = calloc(1, sizeof *lz.scale);
    lz.softcap = calloc(1, sizeof *lz.softcap);
    lz.window = calloc(1, sizeof *lz.window);
    float *q = malloc(sizeof(float) * 2 * nq * dim); /* (2 heads, nq, dim) */
    float *k = malloc(sizeof(float) * nk * dim);     /* (1 kv head, nk, dim) */
    uint8_t *mask = mask_last ? malloc((size_t)nk) : NULL;
    for (int i = 0; i < 2 * nq * dim; i++)
        q[i] = (float)(line * 100 + i);
    for (int i = 0; i < nk * dim; i++)
        k[i] = (float)(-line * 100 - i);
    for (int j = 0; mask && j < nk; j++)
        mask[j] = j < nk - 1;
    lz.q[0] = q;
    lz.k[0] = k;
    lz.key_mask = mask;
    lz.scale[0] = 0.5f;
    lz.causal = kind == AV_ATTN_SELF;
    char **tok = calloc((size_t)nq, sizeof *tok);
    int32_t *ids = calloc((size_t)nq, sizeof *ids);
    for (int i = 0; tok && i < nq; i++) {
        char buf[16];
        snprintf(buf, sizeof buf, "t%d", i);
        tok[i] = av_strdup(buf);
    }
    char *src = labels_json("s", nk), *tgt = labels_json("t", nq);
    av_err err = {{0}};
    int rc = av_trace_set_tokens(t, tok, ids, nq, &err) || av_trace_set_lazy(t, kind, &lz, &err) ||
             (kind != AV_ATTN_SELF && (av_trace_set_meta(t, "source_tokens", src, &err) ||
                                       av_trace_set_meta(t, "target_tokens", tgt, &err)));
    free(src);
    free(tgt);
    if (rc) {
        av_trace_free(t);
        return NULL;
    }
    return t;
}

static void test_qk_sample_same_however_split(void) {
    av_corpus_qk one, a, b;
    av_corpus_qk_init(&one, AV_ATTN_SELF, 0, 1, 25, 7);
    av_corpus_qk_init(&a, AV_ATTN_SELF, 0, 1, 25, 7);
    av_corpus_qk_init(&b, AV_ATTN_SELF, 0, 1, 25, 7);
    av_err err = {{0}};
    for (int line = 1; line <= 12; line++) {
        av_trace *t = lazy_trace(AV_ATTN_SELF, 10, 10, 3, line, 0);
        REQUIRE(t);
        CHECK(av_corpus_qk_add(&one, t, line, &err) == 0);
        CHECK(av_corpus_qk_add(line % 2 ? &a : &b, t, line, &err) == 0);
        av_trace_free(t);
    }
    CHECK(av_corpus_qk_merge(&b, &a, &err) == 0);
    av_corpus_qk_finish(&one, &err);
    av_corpus_qk_finish(&b, &err);
    REQUIRE(one.n == 50 && b.n == 50);
    int same = 1;
    for (int i = 0; i < one.n; i++) {
        const av_qk_point *x = &one.pts[i], *y = &b.pts[i];
        same &= x->line == y->line && x->pos == y->pos && x->is_key == y->is_key && x->vec[2] == y->vec[2];
    }
    CHECK(same);
    const av_qk_point *p = &one.pts[0]; /* a query of head 1: q[1][pos] of that line */
    CHECK(!p->is_key && p->vec[0] == (float)(p->line * 100 + (10 + p->pos) * 3));
    const av_qk_point *kp = &one.pts[30]; /* keys: the one kv head */
    CHECK(kp->is_key && kp->vec[0] == (float)(-kp->line * 100 - kp->pos * 3));
    char want[16];
    snprintf(want, sizeof want, "t%d", kp->pos);
    CHECK(strcmp(kp->label, want) == 0);
    av_corpus_qk_free(&one);
    av_corpus_qk_free(&a);
    av_corpus_qk_free(&b);
}

/* Cross-attention: queries are the target's positions (labels target_tokens), keys the source's (labels
 * source_tokens, the padding key left out); a kind the trace lacks is refused. */
static void test_qk_sample_of_cross_attention(void) {
    enum { NQ = 4, NK = 6, DIM = 2 };
    av_corpus_qk s, wrong;
    av_corpus_qk_init(&s, AV_ATTN_CROSS, 0, 1, 100, 3);
    av_corpus_qk_init(&wrong, AV_ATTN_ENC, 0, 1, 100, 3);
    av_err err = {{0}};
    av_trace *t = lazy_trace(AV_ATTN_CROSS, NQ, NK, DIM, 5, 1);
    REQUIRE(t);
    CHECK(av_corpus_qk_add(&s, t, 5, &err) == 0);
    CHECK(av_corpus_qk_add(&wrong, t, 5, &err) == -1 && strstr(err.msg, "no enc queries and keys"));
    av_trace_free(t);
    av_corpus_qk_finish(&s, &err);
    REQUIRE(s.n == NQ + NK - 1);
    int ok = 1, n_keys = 0;
    for (int i = 0; i < s.n; i++) {
        const av_qk_point *p = &s.pts[i];
        char want[16];
        snprintf(want, sizeof want, "%c%d", p->is_key ? 's' : 't', p->pos);
        float v0 = p->is_key ? (float)(-500 - p->pos * DIM) : (float)(500 + (NQ + p->pos) * DIM);
        ok &= strcmp(p->label, want) == 0 && p->vec[0] == v0 && p->n_tokens == (p->is_key ? NK : NQ);
        ok &= !p->is_key || p->pos < NK - 1; /* never the padding key */
        n_keys += p->is_key;
    }
    CHECK(ok);
    CHECK(n_keys == NK - 1);
    av_corpus_qk_free(&s);
    av_corpus_qk_free(&wrong);
}

/* GPT-2 (causal) and BERT (bidirectional) as Hugging Face checkpoints: the queries and keys a lazy trace
 * keeps for the query/key map give back, through softmax(q k^T / sqrt(dim)), the attention of the independent
 * PyTorch reference (scripts/make_tiny_models.py), so the map of these families shows what their scores saw.
 */
static void check_family_qk(const char *name, int causal) {
    char path[256];
    snprintf(path, sizeof path, "tests/fixtures/tiny/%s", name);
    av_model *m = NULL;
    av_model_params mp = av_model_default_params();
    av_err err = {{0}};
    REQUIREF(av_model_load(path, &mp, &m, &err) == 0, "%s: %s", name, err.msg);
    av_safetensors ref;
    snprintf(path, sizeof path, "tests/fixtures/tiny/%s/reference.safetensors", name);
    REQUIREF(av_st_open(path, &ref, &err) == 0, "%s", err.msg);
    const av_tensor *ids = av_st_find(&ref, "ids");
    REQUIRE(ids && ids->dtype == AV_DTYPE_I32);
    av_run_params rp = av_run_default_params();
    rp.add_bos = 0;
    rp.lazy = 1;
    av_trace *t = NULL;
    REQUIREF(av_trace_from_ids(m, ids->data, (size_t)ids->shape[0], &rp, &t, &err) == 0, "%s", err.msg);
    double worst = 0;
    int n_layers = av_trace_n_layers(t, AV_ATTN_SELF);
    CHECKF(n_layers > 0, "%s: no self-attention layers", name);
    for (int l = 0; l < n_layers; l++) {
        char key[32];
        snprintf(key, sizeof key, "attn.self.%d", l);
        const av_tensor *want = av_st_find(&ref, key); /* (H, T, T) */
        av_corpus_qk_view v;
        REQUIREF(want && av_corpus_trace_qk(t, AV_ATTN_SELF, l, &v, &err) == 0, "%s layer %d: %s", name, l,
                 err.msg);
        REQUIRE(v.n_query == ids->shape[0] && v.n_key == v.n_query && v.n_heads == want->shape[0]);
        const float *a = want->data;
        int T = v.n_query, g = v.n_heads / v.n_kv_heads;
        for (int h = 0; h < v.n_heads; h++)
            for (int i = 0; i < T; i++) {
                double s[64], mx = -INFINITY, sum = 0;
                REQUIRE(T <= 64);
                int n = causal ? i + 1 : T;
                for (int j = 0; j < n; j++) {
                    const float *q = v.q + ((size_t)h * T + i) * v.dim,
                                *k = v.k + ((size_t)(h / g) * T + j) * v.dim;
                    double d = 0;
                    for (int c = 0; c < v.dim; c++)
                        d += (double)q[c] * k[c];
                    s[j] = d / sqrt(v.dim);
                    mx = fmax(mx, s[j]);
                }
                for (int j = 0; j < n; j++)
                    sum += exp(s[j] - mx);
                for (int j = 0; j < T; j++) {
                    double p = j < n ? exp(s[j] - mx) / sum : 0;
                    worst = fmax(worst, fabs(p - a[((size_t)h * T + i) * T + j]));
                }
            }
        CHECKF(v.q_labels && v.k_labels, "%s: no token labels", name);
        av_corpus_qk_view_free(&v);
    }
    CHECKF(worst < 1e-4, "%s: softmax(q k^T) differs from the reference attention by %g", name, worst);
    av_trace_free(t);
    av_st_close(&ref);
    av_model_free(m);
}

static void test_qk_of_gpt2_and_bert(void) {
    check_family_qk("gpt2", 1);
    check_family_qk("bert", 0);
}

/* ---- projections ---- */

static void test_pca_finds_the_long_axis(void) {
    enum { N = 200, D = 3 };
    static double x[N * D], out[N * 2];
    const double u[3] = {1 / sqrt(5), 2 / sqrt(5), 0}; /* the long axis */
    for (int i = 0; i < N; i++) {
        double t = urand() * 10 - 5, e = urand() - 0.5, z = (urand() - 0.5) * 0.1;
        x[i * D + 0] = t * u[0] - e * u[1] * 0.3 + 7;
        x[i * D + 1] = t * u[1] + e * u[0] * 0.3 - 2;
        x[i * D + 2] = z;
    }
    double var[2];
    av_err err = {{0}};
    REQUIREF(av_pca2(x, N, D, out, var, &err) == 0, "%s", err.msg);
    CHECKF(var[0] > 0.98 && var[1] > 0 && var[0] + var[1] <= 1 + 1e-12, "variance ratios %g %g", var[0],
           var[1]);
    double mx = 0, my = 0;
    for (int i = 0; i < N; i++)
        mx += x[i * D] / N, my += x[i * D + 1] / N;
    double worst = 0; /* component 1 = projection on u (u's largest entry is positive: the sign convention) */
    for (int i = 0; i < N; i++)
        worst = fmax(worst, fabs(out[2 * i] - ((x[i * D] - mx) * u[0] + (x[i * D + 1] - my) * u[1])));
    CHECKF(worst < 0.05, "first component off the long axis by %g", worst);
}

static void test_qk_normalize_keeps_softmax(void) {
    enum { NQ = 5, NK = 6, D = 4, N = NQ + NK };
    double x[N * D], y[N * D];
    int is_key[N];
    for (int i = 0; i < N; i++) {
        is_key[i] = i >= NQ;
        for (int c = 0; c < D; c++)
            x[i * D + c] = y[i * D + c] = (urand() - 0.5) * (is_key[i] ? 3 : 1) + (is_key[i] ? 2 : -1);
    }
    av_qk_normalize(y, is_key, N, D);
    double mean[2][D] = {{0}}, norm[2] = {0, 0};
    for (int i = 0; i < N; i++) {
        double s = 0;
        for (int c = 0; c < D; c++) {
            mean[is_key[i]][c] += y[i * D + c] / (is_key[i] ? NK : NQ);
            s += y[i * D + c] * y[i * D + c];
        }
        norm[is_key[i]] += sqrt(s) / (is_key[i] ? NK : NQ);
    }
    CHECKF(fabs(norm[0] - norm[1]) < 1e-9, "mean norms %g %g", norm[0], norm[1]);
    for (int c = 1; c < D; c++) /* translated onto the queries' mean, then scaled: the means are parallel */
        CHECKF(fabs(mean[0][c] / mean[1][c] - mean[0][0] / mean[1][0]) < 1e-9, "means not parallel at %d", c);
    for (int q = 0; q < NQ; q++) { /* each query's scores shift by a constant: softmax rows unchanged */
        double d0 = 0, d1 = 0, shift = NAN;
        for (int k = NQ; k < N; k++) {
            d0 = d1 = 0;
            for (int c = 0; c < D; c++) {
                d0 += x[q * D + c] * x[k * D + c];
                d1 += y[q * D + c] * y[k * D + c];
            }
            if (isnan(shift)) shift = d1 - d0;
            CHECKF(fabs(d1 - d0 - shift) < 1e-9, "query %d key %d: shift %g vs %g", q, k, d1 - d0, shift);
        }
    }
}

/* Fraction of points whose nearest 2-D neighbour is in their own cluster. */
static double neighbour_purity(const double *y, int n, int per) {
    int good = 0;
    for (int i = 0; i < n; i++) {
        int best = -1;
        double bd = INFINITY;
        for (int j = 0; j < n; j++) {
            double d = (y[2 * i] - y[2 * j]) * (y[2 * i] - y[2 * j]) +
                       (y[2 * i + 1] - y[2 * j + 1]) * (y[2 * i + 1] - y[2 * j + 1]);
            if (j != i && d < bd) bd = d, best = j;
        }
        good += best / per == i / per;
    }
    return (double)good / n;
}

static void test_tsne_separates_clusters_independent_of_threads(void) {
    enum { C = 3, PER = 40, N = C * PER, D = 10 };
    static double x[N * D], y1[N * 2], y2[N * 2], ye[N * 2];
    for (int i = 0; i < N; i++)
        for (int c = 0; c < D; c++)
            x[i * D + c] = (c == i / PER ? 8.0 : 0.0) + urand() - 0.5;
    av_tsne_params p = av_tsne_default_params();
    p.perplexity = 10;
    p.n_iter = 400;
    av_err err = {{0}};
    p.n_threads = 1;
    REQUIREF(av_tsne2(x, N, D, &p, y1, &err) == 0, "%s", err.msg);
    p.n_threads = 2;
    REQUIREF(av_tsne2(x, N, D, &p, y2, &err) == 0, "%s", err.msg);
    CHECK(memcmp(y1, y2, sizeof y1) == 0);
    CHECKF(neighbour_purity(y1, N, PER) > 0.97, "Barnes-Hut purity %g", neighbour_purity(y1, N, PER));
    p.theta = 0;
    REQUIREF(av_tsne2(x, N, D, &p, ye, &err) == 0, "%s", err.msg);
    CHECKF(neighbour_purity(ye, N, PER) > 0.97, "exact purity %g", neighbour_purity(ye, N, PER));
    p.perplexity = 50;
    CHECK(av_tsne2(x, N, D, &p, ye, &err) == -1 && strstr(err.msg, "perplexity"));
}

/* ---- input files ---- */

static void test_input_lines_and_reasons(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/in.jsonl", h_tmpdir());
    FILE *fp = fopen(path, "wb");
    REQUIRE(fp);
    fputs("{\"text\": \"one\"}\r\n{bad\n\n{\"text\": 3}\n{\"other\": \"x\"}\n{\"text\": \"  \"}\n", fp);
    for (int i = 0; i < 300; i++)
        fputc('x', fp); /* a line over the byte limit, no final newline */
    fclose(fp);
    av_corpus_input in;
    av_err err = {{0}};
    REQUIREF(av_corpus_input_open(&in, path, AV_CORPUS_JSONL, 3, 100, &err) == 0, "%s", err.msg);
    CHECK(in.n_lines == 7 && in.n_chunks == 3);
    const av_bad want[7] = {AV_BAD_COUNT, AV_BAD_JSON,  AV_BAD_EMPTY,     AV_BAD_FIELD,
                            AV_BAD_FIELD, AV_BAD_EMPTY, AV_BAD_LINE_BYTES};
    int line = 0;
    for (int64_t c = 0; c < in.n_chunks; c++) {
        av_corpus_lines r;
        REQUIRE(av_corpus_lines_open(&r, &in, c, &err) == 0);
        while (av_corpus_lines_next(&r, &err) == 1) {
            char *text, *target;
            av_bad why = av_corpus_line_text(&in, &r, "text", NULL, &text, &target);
            CHECKF(r.line == line + 1 && why == want[line], "line %lld: reason %d, want %d",
                   (long long)r.line, (int)why, (int)want[line]);
            if (line == 0) CHECK(text && strcmp(text, "one") == 0);
            free(text);
            free(target);
            line++;
        }
        av_corpus_lines_close(&r);
    }
    CHECK(line == 7);
    av_corpus_input_close(&in);
    snprintf(path, sizeof path, "%s/in.txt", h_tmpdir()); /* plain text with CRLF line ends */
    REQUIRE((fp = fopen(path, "wb")) != NULL);
    fputs("hello\r\nworld\n", fp);
    fclose(fp);
    REQUIRE(av_corpus_input_open(&in, path, AV_CORPUS_TXT, 3, 100, &err) == 0);
    char *t = av_corpus_read_text(&in, 1, "text", &err);
    CHECK(t && strcmp(t, "hello") == 0 && in.n_lines == 2);
    free(t);
    av_corpus_input_close(&in);
    CHECK(av_corpus_input_open(&in, "/nonexistent/x.txt", AV_CORPUS_TXT, 4, 100, &err) == -1 &&
          strstr(err.msg, "/nonexistent/x.txt"));
}

int main(void) {
    RUN(test_fx_sums_do_not_depend_on_order_or_shards);
    RUN(test_moments_mean_and_sd);
    RUN(test_sketch_quantiles_and_merge);
    RUN(test_position_bins);
    RUN(test_measure_hand_made_heads);
    RUN(test_acc_merge_equals_single_pass);
    RUN(test_acc_bytes_round_trip_and_corruption);
    RUN(test_qk_sample_same_however_split);
    RUN(test_qk_sample_of_cross_attention);
    RUN(test_qk_of_gpt2_and_bert);
    RUN(test_pca_finds_the_long_axis);
    RUN(test_qk_normalize_keeps_softmax);
    RUN(test_tsne_separates_clusters_independent_of_threads);
    RUN(test_input_lines_and_reasons);
    return h_exit_code();
}
