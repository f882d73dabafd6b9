/* Analysis on small hand-made attention: aggregation, rollout and flow computed by hand (in the comments),
 * the encoder-decoder rollout, norm-based attention, per-head statistics and roles of synthetic heads with
 * known behaviour (identity -> self, shifted identity -> previous-token, first column -> sink, uniform ->
 * broad), repeated-sequence scores, head-set parsing and the JSON export. */
#include "analysis/analysis.h"
#include "harness.h"
#include "trace/trace.h"

#define NEAR(a, b) (fabs((double)(a) - (double)(b)) <= 1e-5)

static float *copy_floats(const float *src, size_t n) {
    float *p = malloc(sizeof(float) * n);
    if (p) memcpy(p, src, sizeof(float) * n);
    return p;
}

/* A trace in memory with T tokens labelled labels[] and one attention set per layer. */
static av_trace *make_trace(const char *const *labels, int T) {
    av_trace *t = av_trace_new();
    char **tok = calloc((size_t)T, sizeof *tok);
    int32_t *ids = calloc((size_t)T, sizeof *ids);
    for (int i = 0; i < T; i++) {
        tok[i] = av_strdup(labels[i]);
        ids[i] = i;
    }
    av_err err = {{0}};
    if (av_trace_set_tokens(t, tok, ids, T, &err)) {
        av_trace_free(t);
        return NULL;
    }
    return t;
}

static int add_layer(av_trace *t, av_attn_kind kind, int layer, int H, int nq, int nk, const float *data) {
    av_err err = {{0}};
    return av_trace_add_attn(t, kind, layer, H, nq, nk, copy_floats(data, (size_t)H * nq * nk), &err);
}

/* ---- aggregation ---- */

static void test_aggregate_heads_layers_and_sets(void) {
    /* 2 layers x 2 heads of 2 x 2 (rows need not be distributions for aggregation) */
    const float l0[] = {1, 0, 0.4f, 0.6f, /* head 0 */ 0, 1, 0.8f, 0.2f /* head 1 */};
    const float l1[] = {0.5f, 0.5f, 0, 1, /* head 0 */ 1, 0, 0.2f, 0.8f /* head 1 */};
    const char *labels[] = {"a", "b"};
    av_trace *t = make_trace(labels, 2);
    REQUIRE(t && add_layer(t, AV_ATTN_SELF, 0, 2, 2, 2, l0) == 0 &&
            add_layer(t, AV_ATTN_SELF, 1, 2, 2, 2, l1) == 0);
    av_attn_view v;
    av_err err = {{0}};
    REQUIRE(av_trace_attn(t, AV_ATTN_SELF, 0, &v, &err) == 0);
    float out[4];
    REQUIRE(av_attn_reduce_heads(&v, NULL, 0, AV_REDUCE_MEAN, out, &err) == 0);
    CHECK(NEAR(out[0], 0.5) && NEAR(out[1], 0.5) && NEAR(out[2], 0.6) && NEAR(out[3], 0.4));
    REQUIRE(av_attn_reduce_heads(&v, NULL, 0, AV_REDUCE_MAX, out, &err) == 0);
    CHECK(NEAR(out[0], 1) && NEAR(out[1], 1) && NEAR(out[2], 0.8) && NEAR(out[3], 0.6));
    REQUIRE(av_attn_reduce_heads(&v, NULL, 0, AV_REDUCE_MIN, out, &err) == 0);
    CHECK(NEAR(out[0], 0) && NEAR(out[1], 0) && NEAR(out[2], 0.4) && NEAR(out[3], 0.2));
    int one[] = {1};
    REQUIRE(av_attn_reduce_heads(&v, one, 1, AV_REDUCE_MEAN, out, &err) == 0);
    CHECK(NEAR(out[1], 1) && NEAR(out[2], 0.8));
    int bad[] = {2};
    CHECK(av_attn_reduce_heads(&v, bad, 1, AV_REDUCE_MEAN, out, &err) == -1 &&
          strstr(err.msg, "out of range"));

    /* over layers: head 1 of both layers ("*.1"): mean of {0,1,.8,.2} and {1,0,.2,.8} = .5 everywhere */
    av_head_ref *sel = NULL;
    int n_sel = 0, nq = 0, nk = 0;
    REQUIRE(av_head_set_parse("*.1", 2, 2, &sel, &n_sel, &err) == 0);
    REQUIRE(n_sel == 2 && sel[0].layer == 0 && sel[0].head == 1 && sel[1].layer == 1 && sel[1].head == 1);
    REQUIRE(av_trace_reduce(t, AV_ATTN_SELF, sel, n_sel, AV_REDUCE_MEAN, out, &nq, &nk, &err) == 0);
    CHECK(nq == 2 && nk == 2 && NEAR(out[0], 0.5) && NEAR(out[1], 0.5) && NEAR(out[2], 0.5) &&
          NEAR(out[3], 0.5));
    free(sel);
    /* a chosen set: 0.0 and 1.1, max: max({1,0,.4,.6},{1,0,.2,.8}) = {1,0,.4,.8} */
    REQUIRE(av_head_set_parse(" 1.1, 0.0 ,0.0", 2, 2, &sel, &n_sel, &err) == 0);
    REQUIRE(n_sel == 2);
    REQUIRE(av_trace_reduce(t, AV_ATTN_SELF, sel, n_sel, AV_REDUCE_MAX, out, NULL, NULL, &err) == 0);
    CHECK(NEAR(out[0], 1) && NEAR(out[1], 0) && NEAR(out[2], 0.4) && NEAR(out[3], 0.8));
    free(sel);
    /* all heads of all layers, min */
    REQUIRE(av_head_set_parse("*", 2, 2, &sel, &n_sel, &err) == 0 && n_sel == 4);
    REQUIRE(av_trace_reduce(t, AV_ATTN_SELF, sel, n_sel, AV_REDUCE_MIN, out, NULL, NULL, &err) == 0);
    CHECK(NEAR(out[0], 0) && NEAR(out[1], 0) && NEAR(out[2], 0) && NEAR(out[3], 0.2));
    free(sel);
    /* "-1" = every head of the last layer; "1" the same */
    REQUIRE(av_head_set_parse("-1", 2, 2, &sel, &n_sel, &err) == 0);
    CHECK(n_sel == 2 && sel[0].layer == 1 && sel[1].layer == 1);
    free(sel);
    CHECK(av_head_set_parse("2.0", 2, 2, &sel, &n_sel, &err) == -1 && strstr(err.msg, "out of range"));
    CHECK(av_head_set_parse("0.x", 2, 2, &sel, &n_sel, &err) == -1 && strstr(err.msg, "not a head index"));
    CHECK(av_head_set_parse("0.1,,1.1", 2, 2, &sel, &n_sel, &err) == -1);
    CHECK(av_head_set_parse("", 2, 2, &sel, &n_sel, &err) == -1);
    av_reduce r;
    CHECK(av_reduce_parse("max", &r, &err) == 0 && r == AV_REDUCE_MAX);
    CHECK(av_reduce_parse("median", &r, &err) == -1);
    av_trace_free(t);
}

/* ---- rollout ---- */

static void test_rollout_hand_two_tokens(void) {
    /* A0 = [[1,0],[.6,.4]] -> A'0 = (A0+I)/2 = [[1,0],[.3,.7]]
     * A1 = [[1,0],[.2,.8]] -> A'1 = [[1,0],[.1,.9]]
     * R = A'1 A'0 = [[1,0],[.1*1 + .9*.3, .9*.7]] = [[1,0],[.37,.63]] */
    const float a0[] = {1, 0, 0.6f, 0.4f}, a1[] = {1, 0, 0.2f, 0.8f};
    const float *layers[] = {a0, a1};
    float r[4];
    av_err err = {{0}};
    REQUIRE(av_rollout_mats(layers, 2, 2, 0.5f, r, &err) == 0);
    CHECKF(NEAR(r[0], 1) && NEAR(r[1], 0) && NEAR(r[2], 0.37) && NEAR(r[3], 0.63), "got [[%g,%g],[%g,%g]]",
           r[0], r[1], r[2], r[3]);
    /* residual 0: plain product A1 A0 = [[1,0],[.2+.8*.6, .8*.4]] = [[1,0],[.68,.32]] */
    REQUIRE(av_rollout_mats(layers, 2, 2, 0.0f, r, &err) == 0);
    CHECK(NEAR(r[2], 0.68) && NEAR(r[3], 0.32));
    CHECK(av_rollout_mats(layers, 2, 2, 1.5f, r, &err) == -1);
}

static void test_rollout_hand_three_tokens_and_fusion(void) {
    /* layer 0, heads: h0 = [[1,0,0],[1,0,0],[0,.8,.2]], h1 = [[1,0,0],[0,1,0],[.4,0,.6]]
     *   mean A0 = [[1,0,0],[.5,.5,0],[.2,.4,.4]] -> A'0 = [[1,0,0],[.25,.75,0],[.1,.2,.7]]
     * layer 1, both heads [[1,0,0],[1,0,0],[0,1,0]] -> A'1 = [[1,0,0],[.5,.5,0],[0,.5,.5]]
     * R = A'1 A'0: row1 = .5[1,0,0] + .5[.25,.75,0] = [.625,.375,0]
     *              row2 = .5[.25,.75,0] + .5[.1,.2,.7] = [.175,.475,.35] */
    const float l0[] = {1, 0, 0, 1, 0, 0, 0, 0.8f, 0.2f, /* h1 */ 1, 0, 0, 0, 1, 0, 0.4f, 0, 0.6f};
    const float l1[] = {1, 0, 0, 1, 0, 0, 0, 1, 0, /* h1 */ 1, 0, 0, 1, 0, 0, 0, 1, 0};
    const char *labels[] = {"<s>", "a", "b"};
    av_trace *t = make_trace(labels, 3);
    REQUIRE(t && add_layer(t, AV_ATTN_SELF, 0, 2, 3, 3, l0) == 0 &&
            add_layer(t, AV_ATTN_SELF, 1, 2, 3, 3, l1) == 0);
    float r[9];
    av_err err = {{0}};
    av_rollout_params p = av_rollout_default_params();
    REQUIRE(av_rollout_trace(t, AV_ATTN_SELF, &p, r, &err) == 0);
    const float want[9] = {1, 0, 0, 0.625f, 0.375f, 0, 0.175f, 0.475f, 0.35f};
    CHECKF(h_max_abs_diff(r, want, 9) < 1e-6f, "mean rollout off by %g", h_max_abs_diff(r, want, 9));
    /* max fusion, layer 0: [[1,0,0],[1,1,0],[.4,.8,.6]] (rows no longer sum to 1); A + I renormalized:
     * [[1,0,0],[1,2,0]/3,[.4,.8,1.6]/2.8] = [[1,0,0],[1/3,2/3,0],[1/7,2/7,4/7]]; layer 1 max = A1 -> same
     * A'1. row1 = .5[1,0,0] + .5[1/3,2/3,0] = [2/3,1/3,0]; row2 = .5[1/3,2/3,0] + .5[1/7,2/7,4/7] */
    p.fusion = AV_REDUCE_MAX;
    REQUIRE(av_rollout_trace(t, AV_ATTN_SELF, &p, r, &err) == 0);
    const float want_max[9] = {
        1, 0, 0, 2.0f / 3, 1.0f / 3, 0, 1.0f / 6 + 1.0f / 14, 1.0f / 3 + 1.0f / 7, 2.0f / 7};
    CHECKF(h_max_abs_diff(r, want_max, 9) < 1e-6f, "max rollout off by %g", h_max_abs_diff(r, want_max, 9));
    for (int i = 0; i < 3; i++)
        CHECK(NEAR(r[3 * i] + r[3 * i + 1] + r[3 * i + 2], 1)); /* rows stay distributions */
    /* min fusion, layer 0: [[1,0,0],[0,0,0],[0,0,.2]] -> A'0 = I; layer 1 min = A1: R = A'1 */
    p.fusion = AV_REDUCE_MIN;
    REQUIRE(av_rollout_trace(t, AV_ATTN_SELF, &p, r, &err) == 0);
    const float want_min[9] = {1, 0, 0, 0.5f, 0.5f, 0, 0, 0.5f, 0.5f};
    CHECKF(h_max_abs_diff(r, want_min, 9) < 1e-6f, "min rollout off by %g", h_max_abs_diff(r, want_min, 9));
    CHECK(av_rollout_trace(t, AV_ATTN_CROSS, &p, r, &err) == -1);
    av_trace_free(t);
}

static void test_rollout_encoder_decoder_hand(void) {
    /* enc E = [[.5,.5],[.5,.5]] -> R_enc = E' = [[.75,.25],[.25,.75]]
     * dec layer 0: D0 = [[1,0],[1,0]], C0 = I;  layer 1: D1 = D0, C1 = [[0,1],[0,1]]
     * layer 0: self on R_ts = 0 gives 0; cross: R_ts = .5*0 + .5*I*R_enc = [[.375,.125],[.125,.375]]
     * layer 1: self D'1 = [[1,0],[.5,.5]]: R_ts = [[.375,.125],[.25,.25]]
     *          cross: C1 R_enc = [[.25,.75],[.25,.75]]: R_ts = .5 R_ts + .5 C1 R_enc
     *          = [[.3125,.4375],[.25,.5]]  (rows sum to .75 = 1 - .5^2: the source share) */
    const float enc[] = {0.5f, 0.5f, 0.5f, 0.5f}, dec[] = {1, 0, 1, 0}, c0[] = {1, 0, 0, 1},
                c1[] = {0, 1, 0, 1};
    const char *labels[] = {"the", "cat"};
    av_trace *t = make_trace(labels, 2);
    REQUIRE(
        t && add_layer(t, AV_ATTN_ENC, 0, 1, 2, 2, enc) == 0 &&
        add_layer(t, AV_ATTN_DEC, 0, 1, 2, 2, dec) == 0 && add_layer(t, AV_ATTN_DEC, 1, 1, 2, 2, dec) == 0 &&
        add_layer(t, AV_ATTN_CROSS, 0, 1, 2, 2, c0) == 0 && add_layer(t, AV_ATTN_CROSS, 1, 1, 2, 2, c1) == 0);
    float r[4];
    int nt = 0, ns = 0;
    av_err err = {{0}};
    av_rollout_params p = av_rollout_default_params();
    REQUIRE(av_rollout_cross_trace(t, &p, r, &nt, &ns, &err) == 0);
    const float want[4] = {0.3125f, 0.4375f, 0.25f, 0.5f};
    CHECKF(nt == 2 && ns == 2 && h_max_abs_diff(r, want, 4) < 1e-6f, "got [[%g,%g],[%g,%g]]", r[0], r[1],
           r[2], r[3]);
    p.normalize = 1;
    REQUIRE(av_rollout_cross_trace(t, &p, r, &nt, &ns, &err) == 0);
    CHECK(NEAR(r[0], 0.3125 / 0.75) && NEAR(r[3], 0.5 / 0.75));
    av_trace_free(t);
    const char *one[] = {"x"};
    t = make_trace(one, 1);
    const float a[] = {1};
    REQUIRE(t && add_layer(t, AV_ATTN_SELF, 0, 1, 1, 1, a) == 0);
    CHECK(av_rollout_cross_trace(t, &p, r, &nt, &ns, &err) == -1 && strstr(err.msg, "no cross-attention"));
    av_trace_free(t);
}

/* ---- flow ---- */

static void test_flow_hand(void) {
    /* Same layers as test_rollout_hand_two_tokens: A'0 = [[1,0],[.3,.7]], A'1 = [[1,0],[.1,.9]].
     * Output token 1 -> input 0: paths 1->0->0 (min(.1, 1) = .1) and 1->1->0 (min(.9, .3) = .3): .4
     *   (min cut {(2,1)->(1,0) = .1, (1,1)->(0,0) = .3}); -> input 1: 1->1->1, min(.9, .7) = .7.
     * Output token 0 -> input 0: 1. Raw flow [[1,0],[.4,.7]] (rollout said [.37,.63]). */
    const float a0[] = {1, 0, 0.6f, 0.4f}, a1[] = {1, 0, 0.2f, 0.8f};
    const float *layers[] = {a0, a1};
    float f[4];
    av_err err = {{0}};
    REQUIRE(av_flow_mats(layers, 2, 2, 0.5f, 0, f, &err) == 0);
    CHECKF(NEAR(f[0], 1) && NEAR(f[1], 0) && NEAR(f[2], 0.4) && NEAR(f[3], 0.7), "got [[%g,%g],[%g,%g]]",
           f[0], f[1], f[2], f[3]);

    /* Three tokens: A'0 = [[1,0,0],[.25,.75,0],[.1,.2,.7]], A'1 = [[1,0,0],[.5,.5,0],[0,.5,.5]]
     * (the mean-fused layers of test_rollout_hand_three_tokens_and_fusion).
     * out 2 -> in 0: via 1: min(.5,.25) = .25, via 2: min(.5,.1) = .1 -> .35
     * out 2 -> in 1: via 1: min(.5,.75) = .5,  via 2: min(.5,.2) = .2 -> .7
     * out 2 -> in 2: via 2: min(.5,.7) = .5
     * out 1 -> in 0: via 0: min(.5,1) = .5, via 1: min(.5,.25) = .25 -> .75;  in 1: via 1: min(.5,.75) = .5
     */
    const float m0[] = {1, 0, 0, 0.5f, 0.5f, 0, 0.2f, 0.4f, 0.4f}, m1[] = {1, 0, 0, 1, 0, 0, 0, 1, 0};
    const float *l3[] = {m0, m1};
    float g[9];
    REQUIRE(av_flow_mats(l3, 2, 3, 0.5f, 0, g, &err) == 0);
    const float want[9] = {1, 0, 0, 0.75f, 0.5f, 0, 0.35f, 0.7f, 0.5f};
    CHECKF(h_max_abs_diff(g, want, 9) < 1e-6f, "3-token flow off by %g", h_max_abs_diff(g, want, 9));

    /* through a trace: rows normalized: row 2 = [.35,.7,.5]/1.55 */
    const float l0[] = {1, 0, 0, 1, 0, 0, 0, 0.8f, 0.2f, /* h1 */ 1, 0, 0, 0, 1, 0, 0.4f, 0, 0.6f};
    const float l1[] = {1, 0, 0, 1, 0, 0, 0, 1, 0, /* h1 */ 1, 0, 0, 1, 0, 0, 0, 1, 0};
    const char *labels[] = {"<s>", "a", "b"};
    av_trace *t = make_trace(labels, 3);
    REQUIRE(t && add_layer(t, AV_ATTN_SELF, 0, 2, 3, 3, l0) == 0 &&
            add_layer(t, AV_ATTN_SELF, 1, 2, 3, 3, l1) == 0);
    av_flow_params fp = av_flow_default_params();
    fp.n_threads = 2;
    REQUIRE(av_flow_trace(t, AV_ATTN_SELF, &fp, g, &err) == 0);
    CHECK(NEAR(g[6], 0.35 / 1.55) && NEAR(g[7], 0.7 / 1.55) && NEAR(g[8], 0.5 / 1.55) && NEAR(g[3], 0.6));
    av_trace_free(t);
}

static void test_flow_size_guard(void) {
    enum { T = 12 };
    float a[T * T];
    for (int i = 0; i < T * T; i++)
        a[i] = 1.0f / T;
    const float *layers[] = {a, a, a};
    float out[T * T];
    av_err err = {{0}};
    /* 3 layers x 12^4 = 62208 edge visits */
    CHECK(NEAR(av_flow_work(3, T), 62208));
    CHECK(av_flow_mats(layers, 3, T, 0.5f, 60000, out, &err) == -1);
    CHECKF(strstr(err.msg, "too expensive") && strstr(err.msg, "at most 11 tokens") &&
               strstr(err.msg, "rollout"),
           "message: %s", err.msg);
    REQUIRE(av_flow_mats(layers, 3, T, 0.5f, 70000, out, &err) == 0);
    /* uniform non-causal attention: by symmetry every output gets the same flow from every other input, and
     * more from itself (the residual adds to the diagonal) */
    for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++) {
            if (i != j)
                CHECK(NEAR(out[i * T + j], out[1]));
            else
                CHECK(out[i * T + j] > out[1] + 0.01f && NEAR(out[i * T + j], out[0]));
        }
}

/* ---- norm-based attention ---- */

static void test_norm_attention(void) {
    /* A = [[1,0],[.25,.75]], ||v W_o|| = [2, 4]: norm-based = [[2,0],[.5,3]]; rows normalized
     * [[1,0],[1/7,6/7]] */
    const float a[] = {1, 0, 0.25f, 0.75f, /* head 1 */ 1, 0, 0.5f, 0.5f};
    float vn_data[] = {2, 4, /* head 1 */ 1, 1};
    const char *labels[] = {"<s>", "a"};
    av_trace *t = make_trace(labels, 2);
    REQUIRE(t && add_layer(t, AV_ATTN_SELF, 0, 2, 2, 2, a) == 0);
    float **vn = malloc(sizeof *vn);
    vn[0] = copy_floats(vn_data, 4);
    av_err err = {{0}};
    REQUIRE(av_trace_set_vnorm(t, vn, 1, 2, &err) == 0);
    float out[4];
    av_attn_view v;
    av_tensor vt;
    REQUIRE(av_trace_attn(t, AV_ATTN_SELF, 0, &v, &err) == 0 && av_trace_vnorm(t, 0, &vt, &err) == 0);
    REQUIRE(av_norm_attn_head(&v, &vt, 0, out, &err) == 0);
    CHECK(NEAR(out[0], 2) && NEAR(out[1], 0) && NEAR(out[2], 0.5) && NEAR(out[3], 3));
    REQUIRE(av_norm_attn_trace(t, 0, "0", 1, out, &err) == 0);
    CHECK(NEAR(out[0], 1) && NEAR(out[2], 1.0 / 7) && NEAR(out[3], 6.0 / 7));
    /* mean over heads: ([[2,0],[.5,3]] + [[1,0],[.5,.5]]) / 2 */
    REQUIRE(av_norm_attn_trace(t, 0, "mean", 0, out, &err) == 0);
    CHECK(NEAR(out[0], 1.5) && NEAR(out[2], 0.5) && NEAR(out[3], 1.75));
    REQUIRE(av_norm_attn_trace(t, 0, "min", 0, out, &err) == 0);
    CHECK(NEAR(out[0], 1) && NEAR(out[3], 0.5));
    CHECK(av_norm_attn_trace(t, 0, "7", 0, out, &err) == -1 && strstr(err.msg, "out of range"));
    CHECK(av_norm_attn_trace(t, 1, "0", 0, out, &err) == -1);
    av_trace_free(t);
}

/* ---- statistics and roles of synthetic heads ---- */

enum { ST = 8 };

/* Fills 4 causal heads over ST tokens: identity, shifted identity (i -> i-1), first column, uniform. */
static void synthetic_heads(float *a /* (4, ST, ST) */) {
    memset(a, 0, sizeof(float) * 4 * ST * ST);
    for (int i = 0; i < ST; i++) {
        a[0 * ST * ST + i * ST + i] = 1;
        a[1 * ST * ST + i * ST + (i ? i - 1 : 0)] = 1;
        a[2 * ST * ST + i * ST + 0] = 1;
        for (int j = 0; j <= i; j++)
            a[3 * ST * ST + i * ST + j] = 1.0f / (float)(i + 1);
    }
}

static void test_stats_and_roles_of_synthetic_heads(void) {
    float a[4 * ST * ST];
    synthetic_heads(a);
    const char *labels[ST] = {"<s>", "a", ".", "b", " ,", "c", "d", "!"};
    av_trace *t = make_trace(labels, ST);
    REQUIRE(t && add_layer(t, AV_ATTN_SELF, 0, 4, ST, ST, a) == 0);
    float **vn = malloc(sizeof *vn);
    vn[0] = malloc(sizeof(float) * 4 * ST);
    for (int k = 0; k < 4 * ST; k++)
        vn[0][k] = k % ST == 0 ? 0.1f : 1.0f; /* a small first-token value */
    av_err err = {{0}};
    REQUIRE(av_trace_set_vnorm(t, vn, 1, 4, &err) == 0);
    av_head_stats *s = NULL;
    int n = 0;
    REQUIRE(av_trace_head_stats(t, AV_ATTN_SELF, -1, &s, &n, &err) == 0);
    REQUIRE(n == 4);
    /* rows 1..7 (row 0 of a causal layer is left out) */
    CHECK(s[0].n_rows == 7 && NEAR(s[0].self, 1) && NEAR(s[0].prev, 0) && NEAR(s[0].first, 0));
    CHECK(NEAR(s[0].entropy, 0) && NEAR(s[0].distance, 0) && NEAR(s[0].uniformity, 0));
    CHECK(NEAR(s[0].punct, 3.0 / 7) && NEAR(s[0].special, 0)); /* rows 2, 4, 7 attend to ".", " ,", "!" */
    CHECK(NEAR(s[1].prev, 1) && NEAR(s[1].self, 0) && NEAR(s[1].first, 1.0 / 7) && NEAR(s[1].distance, 1));
    CHECK(NEAR(s[2].first, 1) && NEAR(s[2].prev, 1.0 / 7) && NEAR(s[2].distance, 4) && NEAR(s[2].special, 1));
    double ent = 0, first = 0, fnorm = 0;
    for (int i = 1; i < ST; i++) {
        ent += log(i + 1.0);
        first += 1.0 / (i + 1);
        fnorm += 0.1 / (0.1 + i); /* (a_i0 v_0) / sum_j a_ij v_j with a_ij = 1/(i+1), v = [.1, 1, 1, ...] */
    }
    CHECK(NEAR(s[3].entropy, ent / 7) && NEAR(s[3].entropy_norm, 1) && NEAR(s[3].uniformity, 1));
    CHECK(NEAR(s[3].first, first / 7) && NEAR(s[3].self, first / 7) && NEAR(s[3].distance, 2));
    CHECKF(NEAR(s[3].first_norm, fnorm / 7), "first_norm %g, want %g", s[3].first_norm, fnorm / 7);
    av_role want[4] = {AV_ROLE_SELF, AV_ROLE_PREV, AV_ROLE_FIRST, AV_ROLE_BROAD};
    for (int h = 0; h < 4; h++) {
        av_head_roles r;
        av_roles_from_stats(&s[h], &r);
        CHECKF(r.best == want[h] && NEAR(r.best_score, 1), "head %d: role %s (%g), want %s", h,
               av_role_name(r.best), r.best_score, av_role_name(want[h]));
        CHECK(isnan(r.score[AV_ROLE_INDUCTION]));
    }
    /* JSON export of the same statistics */
    json_t *o = av_stats_json(t, AV_ATTN_SELF, s, n);
    REQUIRE(o);
    CHECK(strcmp(json_string_value(json_object_get(o, "format")), "attnviz-stats") == 0);
    json_t *heads = json_object_get(o, "heads");
    REQUIRE(json_array_size(heads) == 4);
    CHECK(strcmp(json_string_value(json_object_get(json_array_get(heads, 1), "role")), "previous_token") ==
          0);
    CHECK(strcmp(json_string_value(json_object_get(json_array_get(heads, 3), "role")), "broad") == 0);
    CHECK(json_array_size(json_object_get(o, "tokens")) == ST);
    json_decref(o);
    free(s);
    av_trace_free(t);

    /* a weak head: no role reaches AV_ROLE_MIN_SCORE */
    av_head_stats weak = {0, 0, 7, 1, 0.5, 1, 0.1, 0.1, 0.1, NAN, NAN, 0.2, NAN};
    av_head_roles r;
    av_roles_from_stats(&weak, &r);
    CHECK(r.best == AV_ROLE_NONE && NEAR(r.best_score, 0.2) && strcmp(av_role_name(r.best), "none") == 0);
}

/* Whether a layer is causal is decided over all its heads, whichever thread reads them: one head looking
 * ahead (the last, so that a split of the heads between threads puts it apart from the first) makes every
 * head count row 0, and no head's statistics differ from the same head's alone (av_head_stats_layer). */
static void test_stats_causality_over_all_heads(void) {
    float a[4 * ST * ST];
    synthetic_heads(a);
    a[3 * ST * ST + 0 * ST + 1] = 0.5f, a[3 * ST * ST + 0 * ST + 0] = 0.5f; /* head 3, row 0 sees key 1 */
    const char *labels[ST] = {"<s>", "a", ".", "b", " ,", "c", "d", "!"};
    av_trace *t = make_trace(labels, ST);
    REQUIRE(t && add_layer(t, AV_ATTN_SELF, 0, 4, ST, ST, a) == 0);
    av_head_stats *s = NULL;
    int n = 0;
    av_err err = {{0}};
    REQUIRE(av_trace_head_stats(t, AV_ATTN_SELF, -1, &s, &n, &err) == 0 && n == 4);
    for (int h = 0; h < 4; h++)
        CHECKF(s[h].n_rows == ST, "head %d: %d rows, want all %d (the layer is not causal)", h, s[h].n_rows,
               ST);
    free(s);
    av_trace_free(t);
}

static void test_stats_cross_attention_has_no_positional_scores(void) {
    const float c[] = {0.5f, 0.5f, 0, 1, 1, 0}; /* 3 targets x 2 sources, one head */
    const char *labels[] = {"le", "chat", "noir"};
    av_trace *t = make_trace(labels, 3);
    av_err err = {{0}};
    REQUIRE(t && add_layer(t, AV_ATTN_CROSS, 0, 1, 3, 2, c) == 0);
    REQUIRE(av_trace_set_meta(t, "source_tokens", "[\"<s>\",\"cat\"]", &err) == 0);
    av_head_stats *s = NULL;
    int n = 0;
    REQUIRE(av_trace_head_stats(t, AV_ATTN_CROSS, -1, &s, &n, &err) == 0 && n == 1);
    CHECK(isnan(s[0].self) && isnan(s[0].prev) && isnan(s[0].distance));
    CHECK(s[0].n_rows == 3 && NEAR(s[0].first, 0.5) && NEAR(s[0].special, 0.5)); /* key 0 is "<s>" */
    json_t *o = av_stats_json(t, AV_ATTN_CROSS, s, n);
    CHECK(json_is_null(json_object_get(json_array_get(json_object_get(o, "heads"), 0), "self")));
    json_decref(o);
    free(s);
    av_trace_free(t);
}

static void test_repeat_scores(void) {
    /* [BOS] R R with L = 4: T = 9. head 0 = induction (i -> i-L+1 in the second copy), head 1 = duplicate
     * (i -> i-L), head 2 = previous token. Other rows attend to BOS. */
    enum { L = 4, T = 1 + 2 * L };
    float a[3 * T * T] = {0};
    for (int h = 0; h < 3; h++)
        for (int i = 0; i < T; i++) {
            int j = 0;
            if (i >= 1 + L) j = h == 0 ? i - L + 1 : h == 1 ? i - L : i - 1;
            a[h * T * T + i * T + j] = 1;
        }
    av_attn_view v = {3, T, T, a};
    double ind[3], dup[3];
    av_err err = {{0}};
    REQUIRE(av_roles_repeat_scores(&v, 1, L, ind, dup, &err) == 0);
    CHECK(NEAR(ind[0], 1) && NEAR(dup[0], 0) && NEAR(ind[1], 0) && NEAR(dup[1], 1) && NEAR(ind[2], 0));
    CHECK(NEAR(dup[2], 0)); /* previous token i-1 is neither i-L nor i-L+1 when L > 2 */
    CHECK(av_roles_repeat_scores(&v, 2, L, ind, dup, &err) == -1);

    /* the probe sequence: BOS then R R, deterministic per seed */
    int32_t cands[] = {10, 11, 12, 13, 14};
    int32_t s1[T], s2[T];
    uint64_t st = 7;
    av_roles_repeat_sequence(cands, 5, 1, L, &st, s1);
    st = 7;
    av_roles_repeat_sequence(cands, 5, 1, L, &st, s2);
    CHECK(memcmp(s1, s2, sizeof s1) == 0 && s1[0] == 1);
    for (int k = 0; k < L; k++)
        CHECK(s1[1 + k] == s1[1 + L + k] && s1[1 + k] >= 10 && s1[1 + k] <= 14);
    /* splitmix64 from state 7: the first output mod 5 (reference: scripts/train_induction.py SplitMix64) */
    uint64_t z = 7 + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    CHECK(s1[1] == cands[z % 5]);
}

static void test_token_classes(void) {
    CHECK(av_token_class("<s>") == AV_TOKCLASS_SPECIAL && av_token_class("</s>") == AV_TOKCLASS_SPECIAL);
    CHECK(av_token_class("[CLS]") == AV_TOKCLASS_SPECIAL &&
          av_token_class("<|endoftext|>") == AV_TOKCLASS_SPECIAL);
    CHECK(av_token_class("<0x0A>") == 0 && av_token_class("[cat]") == 0 &&
          av_token_class("<") == AV_TOKCLASS_PUNCT);
    CHECK(av_token_class(".") == AV_TOKCLASS_PUNCT && av_token_class(" ,") == AV_TOKCLASS_PUNCT);
    CHECK(av_token_class("\xE2\x96\x81!") == AV_TOKCLASS_PUNCT &&
          av_token_class("\xC4\xA0?") == AV_TOKCLASS_PUNCT);
    CHECK(av_token_class("a.") == 0 && av_token_class(" ") == 0 && av_token_class("") == 0);
}

static void test_json_matrix(void) {
    const float m[] = {1, NAN, 0.5f, 2};
    json_t *j = av_json_matrix(m, 2, 2);
    char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6));
    CHECKF(s && strcmp(s, "[[1.0,null],[0.5,2.0]]") == 0, "got %s", s ? s : "(null)");
    free(s);
    json_decref(j);
}

int main(void) {
    RUN(test_aggregate_heads_layers_and_sets);
    RUN(test_rollout_hand_two_tokens);
    RUN(test_rollout_hand_three_tokens_and_fusion);
    RUN(test_rollout_encoder_decoder_hand);
    RUN(test_flow_hand);
    RUN(test_flow_size_guard);
    RUN(test_norm_attention);
    RUN(test_stats_and_roles_of_synthetic_heads);
    RUN(test_stats_causality_over_all_heads);
    RUN(test_stats_cross_attention_has_no_positional_scores);
    RUN(test_repeat_scores);
    RUN(test_token_classes);
    RUN(test_json_matrix);
    return h_exit_code();
}
