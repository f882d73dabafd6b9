/* Every backward kernel (the kernels' *_grad.c files) against PyTorch autograd (scripts/ref_attrib.py,
 * tests/fixtures/attrib/kernels.safetensors): random inputs, an upstream gradient dy, and autograd's input
 * gradients in float64. Each check is the relative error max |ours - autograd| / max |autograd| <= 1e-4.
 * Gradient copies (G > 1) are checked by linearity: a second copy of dy scaled by -2 must give -2 dx. */
#include "harness.h"
#include "io/io.h"
#include "kernels/kernels.h"

#define FIX "tests/fixtures/attrib/kernels.safetensors"
#define TOL 1e-4

static av_safetensors fx;
static json_t *cases;

static const float *get(const char *name, const char *part) {
    char key[96];
    snprintf(key, sizeof key, "%s.%s", name, part);
    const av_tensor *t = av_st_find(&fx, key);
    return t ? t->data : NULL;
}

static size_t numel(const char *name, const char *part) {
    char key[96];
    snprintf(key, sizeof key, "%s.%s", name, part);
    const av_tensor *t = av_st_find(&fx, key);
    return t ? (size_t)av_tensor_numel(t) : 0;
}

/* max |a - b| / max |b| */
static double rel_err(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        num = d > num || d != d ? d : num;
        den = fabs(b[i]) > den ? fabs(b[i]) : den;
    }
    return den > 0 ? num / den : num;
}

static double param(const char *name, const char *key) {
    return json_number_value(json_object_get(json_object_get(cases, name), key));
}

/* dy of G = 2 copies: dy, then -2 dy. */
static float *two_copies(const float *dy, size_t n) {
    float *d = malloc(sizeof(float) * 2 * n);
    for (size_t i = 0; d && i < n; i++)
        d[i] = dy[i], d[n + i] = -2.0f * dy[i];
    return d;
}

/* Both copies of a G = 2 result against the reference dx. */
static double err2(const float *got, const float *ref, size_t n) {
    double e = rel_err(got, ref, n);
    for (size_t i = 0; i < n; i++)
        if (fabsf(got[n + i] + 2.0f * got[i]) > 1e-5f * (1.0f + fabsf(got[i]))) return INFINITY;
    return e;
}

static void test_linear(void) {
    const float *x = get("linear", "x"), *w = get("linear", "w"), *dy = get("linear", "dy");
    REQUIRE(x && w && dy);
    size_t nx = numel("linear", "x"), ny = numel("linear", "dy");
    int rows = (int)(param("linear", "G") * param("linear", "n")), in = (int)(nx / (size_t)rows),
        out = (int)(ny / (size_t)rows);
    av_tensor wt = {AV_DTYPE_F32, 2, {out, in}, w, sizeof(float) * (size_t)out * (size_t)in};
    float *dx = calloc(nx, sizeof *dx);
    av_matmul_grad(dx, dy, &wt, rows, NULL, 0, 2);
    double e = rel_err(dx, get("linear", "dx"), nx);
    av_matmul_grad(dx, dy, &wt, rows, NULL, 1, 1); /* accumulate: 2 dx */
    for (size_t i = 0; i < nx; i++)
        dx[i] *= 0.5f;
    double e2 = rel_err(dx, get("linear", "dx"), nx);
    printf("# linear: %.2g (accumulated %.2g)\n", e, e2);
    CHECKF(e <= TOL && e2 <= TOL, "relative error %g / %g", e, e2);
    free(dx);
}

static void check_norm(const char *name, int rms) {
    const float *x = get(name, "x"), *w = get(name, "w"), *dy = get(name, "dy"), *ref = get(name, "dx");
    REQUIRE(x && w && dy && ref);
    size_t n_all = numel(name, "x");
    int dim = (int)numel(name, "w"), n = (int)(n_all / (size_t)dim);
    float *d = two_copies(dy, n_all), *dx = malloc(sizeof(float) * 2 * n_all);
    float eps = (float)param(name, "eps");
    if (rms)
        av_rmsnorm_grad(dx, d, x, w, 2, n, dim, eps, 0);
    else
        av_layernorm_grad(dx, d, x, w, 2, n, dim, eps, 0);
    double e = err2(dx, ref, n_all);
    av_rmsnorm_grad(d, d, x, w, 2, n, dim, eps, 0); /* in place (dx == dy) */
    double ei = rms ? err2(d, ref, n_all) : 0;
    printf("# %s: %.2g\n", name, e);
    CHECKF(e <= TOL && ei <= TOL, "%s: relative error %g (in place %g)", name, e, ei);
    free(d);
    free(dx);
}

static void test_norms(void) {
    check_norm("rmsnorm", 1);
    check_norm("layernorm", 0);
}

static void test_activations(void) {
    static const char *const names[] = {"gelu", "gelu_tanh", "relu", "silu", "quick_gelu"};
    static const av_act acts[] = {AV_ACT_GELU, AV_ACT_GELU_TANH, AV_ACT_RELU, AV_ACT_SILU, AV_ACT_QUICK_GELU};
    for (int i = 0; i < 5; i++) {
        char a[32], g[32];
        snprintf(a, sizeof a, "act.%s", names[i]);
        snprintf(g, sizeof g, "gated.%s", names[i]);
        size_t n = numel(a, "x");
        REQUIREF(n && numel(g, "g") == n, "missing case %s", names[i]);
        float *d = two_copies(get(a, "dy"), n), *dx = malloc(sizeof(float) * 2 * n);
        av_activate_grad(dx, d, get(a, "x"), n, 2, acts[i]);
        double ea = err2(dx, get(a, "dx"), n);
        float *dh = two_copies(get(g, "dy"), n), *dg = malloc(sizeof(float) * 2 * n),
              *du = malloc(sizeof(float) * 2 * n);
        av_gated_grad(dg, du, dh, get(g, "g"), get(g, "u"), n, 2, acts[i]);
        double eg = err2(dg, get(g, "dg"), n), eu = err2(du, get(g, "du"), n);
        av_gated_grad(dh, du, dh, get(g, "g"), get(g, "u"), n, 2, acts[i]); /* dg == dh */
        double ei = err2(dh, get(g, "dg"), n);
        printf("# %-10s act %.2g, gated %.2g / %.2g\n", names[i], ea, eg, eu);
        CHECKF(ea <= TOL && eg <= TOL && eu <= TOL && ei <= TOL, "%s: relative errors %g %g %g %g", names[i],
               ea, eg, eu, ei);
        free(d), free(dx), free(dh), free(dg), free(du);
    }
}

static void test_rope(void) {
    static const char *const names[] = {"rope.interleaved", "rope.half"};
    for (int s = 0; s < 2; s++) {
        int H = (int)param(names[s], "n_heads"), hd = (int)param(names[s], "head_dim");
        size_t n = numel(names[s], "x");
        REQUIRE(n);
        float *d = malloc(sizeof(float) * n);
        memcpy(d, get(names[s], "dy"), sizeof(float) * n);
        for (int r = 0; r < (int)(n / (size_t)(H * hd)); r++)
            av_rope_grad(d + (size_t)r * (size_t)(H * hd), H, hd, r, (float)param(names[s], "theta"), s == 1);
        double e = rel_err(d, get(names[s], "dx"), n);
        printf("# %s: %.2g\n", names[s], e);
        CHECKF(e <= TOL, "%s: relative error %g", names[s], e);
        free(d);
    }
}

static void test_softcap_logsoftmax(void) {
    size_t n = numel("softcap", "x");
    float c = (float)param("softcap", "cap"), *y = malloc(sizeof(float) * n), *d = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++)
        y[i] = c * tanhf(get("softcap", "x")[i] / c), d[i] = get("softcap", "dy")[i];
    av_softcap_grad(d, y, n, c);
    double es = rel_err(d, get("softcap", "dx"), n);
    size_t m = numel("log_softmax", "x");
    float *dx = malloc(sizeof(float) * m), dy = get("log_softmax", "dy")[0];
    double lp = av_log_softmax_grad(dx, get("log_softmax", "x"), (int)m, (int)param("log_softmax", "target"));
    for (size_t i = 0; i < m; i++)
        dx[i] *= dy;
    double el = rel_err(dx, get("log_softmax", "dx"), m), lse = av_logsumexp(get("log_softmax", "x"), (int)m);
    printf("# softcap %.2g, log-softmax %.2g\n", es, el);
    CHECKF(es <= TOL && el <= TOL, "relative errors %g %g", es, el);
    CHECKF(fabs(lp - (get("log_softmax", "x")[3] - lse)) < 1e-6, "log-probability %g", lp);
    free(y), free(d), free(dx);
}

static void check_attention(const char *name) {
    int H = (int)param(name, "n_heads"), KV = (int)param(name, "n_kv_heads"),
        hd = (int)param(name, "head_dim"), T = (int)param(name, "T");
    size_t nq = (size_t)T * (size_t)(H * hd), nk = (size_t)T * (size_t)(KV * hd);
    REQUIREF(numel(name, "q") == nq && numel(name, "k") == nk, "%s: shapes", name);
    float *out = malloc(sizeof(float) * nq),
          *probs = calloc((size_t)H * (size_t)T * (size_t)T, sizeof(float));
    float *scratch = malloc(sizeof(float) * AV_ATTN_QUERY_BLOCK * (size_t)T);
    av_attn_args a = {.n_heads = H,
                      .n_kv_heads = KV,
                      .head_dim = hd,
                      .n_q = T,
                      .n_k = T,
                      .q = get(name, "q"),
                      .q_stride = H * hd,
                      .k = get(name, "k"),
                      .k_stride = KV * hd,
                      .v = get(name, "v"),
                      .v_stride = KV * hd,
                      .out = out,
                      .out_stride = H * hd,
                      .scale = 1.0f / sqrtf((float)hd),
                      .softcap = (float)param(name, "softcap"),
                      .causal = (int)param(name, "causal"),
                      .window = (int)param(name, "window"),
                      .probs = probs,
                      .probs_head_stride = (size_t)T * (size_t)T,
                      .probs_ld = T};
    av_attention(&a, scratch, 1);
    float *dout = two_copies(get(name, "dy"), nq), *dq = malloc(sizeof(float) * 2 * nq),
          *dk = malloc(sizeof(float) * 2 * nk), *dv = malloc(sizeof(float) * 2 * nk);
    av_attn_grad_args g = {&a, 2, dout, dq, dk, dv, NULL};
    REQUIRE(av_attention_grad(&g, 2) == 0);
    double eq = err2(dq, get(name, "dq"), nq), ek = err2(dk, get(name, "dk"), nk),
           ev = err2(dv, get(name, "dv"), nk);
    printf("# %-12s dq %.2g, dk %.2g, dv %.2g\n", name, eq, ek, ev);
    CHECKF(eq <= TOL && ek <= TOL && ev <= TOL, "%s: relative errors %g %g %g", name, eq, ek, ev);
    free(out), free(probs), free(scratch), free(dout), free(dq), free(dk), free(dv);
}

static void test_attention(void) {
    check_attention("attn.causal");
    check_attention("attn.window");
    check_attention("attn.softcap");
    check_attention("attn.bidir");
}

int main(void) {
    av_err err = {{0}};
    if (av_st_open(FIX, &fx, &err)) {
        printf("FAIL grad_kernels_fixture: %s\n", err.msg);
        return 1;
    }
    cases = json_loads(av_st_meta(&fx, "cases"), 0, NULL);
    RUN(test_linear);
    RUN(test_norms);
    RUN(test_activations);
    RUN(test_rope);
    RUN(test_softcap_logsoftmax);
    RUN(test_attention);
    json_decref(cases);
    av_st_close(&fx);
    return h_exit_code();
}
