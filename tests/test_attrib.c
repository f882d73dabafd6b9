/* Attribution and the logit lens against independent float64 PyTorch references (scripts/ref_attrib.py,
 * tests/fixtures/attrib/<model>.safetensors): the backward pass of the whole model (d log p / d token rows,
 * every target at once), occlusion with token / zero / removal baselines and span groups, Shapley value
 * sampling with a fixed seed, saliency, input x gradient, integrated gradients with their completeness error,
 * attention x gradient per head, and the logit lens, on stories260K (../shared) and the tiny families: GPT-2,
 * Qwen2 (biases, a windowed layer), Mistral (windows), BERT (post-norm encoder, masked-LM head) and a Gemma-
 * shaped decoder with every block extra (soft-caps, q/k norms, sandwich norms, 1 + w norms, scaled
 * embeddings), and the families of tests/fixtures/decoders (#13): Llama 3.1 RoPE scaling with biases, Qwen3
 * q/k norms, Gemma (GeGLU, BF16), Gemma 2 (soft-caps, sandwich norms), Gemma 3 (local and global RoPE), Phi-3
 * (fused matrices, partial rotary, longrope), Mixtral (renormalized expert weights, a window) and Qwen3-MoE
 * (raw router probabilities as weights, q/k norms). Perturbations and the lens: |ours - reference| <= 1e-4;
 * gradients: max |diff| / max |ref| <= 1e-4. Integrated gradients' points in batches of 1, 2, 5 and as many
 * as fit agree. */
#include "attrib/attrib.h"
#include "extras_model.h"
#include "harness.h"

#define FIX "tests/fixtures/attrib/"
#define ABS_TOL 1e-4
#define REL_TOL 1e-4

/* One reference case: its fixture and the model it was made with. */
typedef struct ref_case {
    av_safetensors f;
    json_t *params;
    av_model *m;
    const int32_t *ids, *targets, *rows;
    int T, S, N;
} ref_case;

static void case_free(ref_case *c) {
    json_decref(c->params);
    av_model_free(c->m);
    av_st_close(&c->f);
}

static av_model *extras_model(const char *name, av_err *err) {
    static av_safetensors f;
    static json_t *cfg;
    char path[128];
    snprintf(path, sizeof path, "tests/fixtures/extras/%s.safetensors", name);
    if (!cfg && (av_st_open(path, &f, err) || !(cfg = json_loads(av_st_meta(&f, "config"), 0, NULL))))
        return NULL;
    return extras_build(&f, cfg, err); /* the mapping stays open for the test binary's life */
}

/* Loads the fixture of name and its model; 1 = skipped (no ../shared), -1 = failure, 0 = ready. */
static int case_open(ref_case *c, const char *name, char *why, size_t n_why) {
    char path[256], buf[512];
    av_err err = {{0}};
    memset(c, 0, sizeof *c);
    snprintf(path, sizeof path, FIX "%s.safetensors", name);
    if (av_st_open(path, &c->f, &err)) return snprintf(why, n_why, "%s", err.msg), -1;
    c->params = json_loads(av_st_meta(&c->f, "params"), 0, NULL);
    if (strcmp(name, "stories260K") == 0) {
        const char *mp = h_shared_file(buf, sizeof buf, "models/stories260K/stories260K.bin");
        if (!mp) return case_free(c), snprintf(why, n_why, "../shared/models/stories260K not found"), 1;
        if (av_model_load(mp, NULL, &c->m, &err)) c->m = NULL;
    } else if (strcmp(name, "gemma") == 0) {
        c->m = extras_model(name, &err);
    } else if (strncmp(name, "dec_", 4) == 0) {
        snprintf(path, sizeof path, "tests/fixtures/decoders/%s", name + 4);
        if (av_model_load(path, NULL, &c->m, &err)) c->m = NULL;
    } else {
        snprintf(path, sizeof path, "tests/fixtures/tiny/%s", name);
        if (av_model_load(path, NULL, &c->m, &err)) c->m = NULL;
    }
    if (!c->m) return snprintf(why, n_why, "%.32s: %.400s", name, err.msg), -1;
    const av_tensor *ids = av_st_find(&c->f, "ids"), *t = av_st_find(&c->f, "targets");
    c->ids = ids->data;
    c->targets = t->data;
    c->rows = av_st_find(&c->f, "rows")->data;
    c->T = (int)ids->shape[0];
    c->N = (int)t->shape[0];
    c->S = (int)json_integer_value(json_object_get(c->params, "source_len"));
    return 0;
}

static const float *ref(const ref_case *c, const char *name) {
    const av_tensor *t = av_st_find(&c->f, name);
    return t ? t->data : NULL;
}

static int iparam(const ref_case *c, const char *key) {
    return (int)json_integer_value(json_object_get(c->params, key));
}

static double max_abs(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        m = d > m || d != d ? d : m;
    }
    return m;
}

static double rel(const float *a, const float *b, size_t n) {
    double den = 0;
    for (size_t i = 0; i < n; i++)
        den = fabs(b[i]) > den ? fabs(b[i]) : den;
    return max_abs(a, b, n) / (den > 0 ? den : 1);
}

/* av_attribute_ids of the case with p; NULL (and a recorded failure) on error. */
static av_trace *attribute(const ref_case *c, const av_attr_params *p) {
    av_err err = {{0}};
    av_trace *t = NULL;
    av_attr_params q = *p;
    q.target_rows = c->rows;
    q.run.n_threads = 2;
    if (av_attribute_ids(c->m, c->ids, (size_t)c->S, c->targets, (size_t)c->N, &q, &t, &err)) {
        CHECKF(0, "av_attribute_ids: %s", err.msg);
        return NULL;
    }
    return t;
}

/* The attribution of method in t against reference tensor name: max |diff| (absolute) or relative. */
static double attr_err(const ref_case *c, av_trace *t, av_attr_method m, const char *name, int relative) {
    av_attr_view v;
    av_err err = {{0}};
    const float *r = ref(c, name);
    if (!r || av_trace_attribution(t, m, &v, &err) || v.n_target != c->N || v.source_len != c->S)
        return INFINITY;
    size_t n = (size_t)c->N * (size_t)c->S;
    return relative ? rel(v.scores, r, n) : max_abs(v.scores, r, n);
}

static av_attr_params params_for(const ref_case *c, unsigned methods, av_attr_baseline b) {
    av_attr_params p = av_attr_default_params();
    p.methods = methods;
    p.baseline = b;
    p.baseline_id = iparam(c, "baseline_id");
    p.samples = iparam(c, "samples");
    p.seed = (uint64_t)iparam(c, "seed");
    p.steps = iparam(c, "steps");
    p.with_attention = 0;
    return p;
}

/* ---- the backward pass of the whole model ---- */

/* d log p(target_i) / d token rows through the model's pieces: (N, T, dim), against the fixture's "grad". */
static double backward_err(const ref_case *c) {
    const av_model *m = c->m;
    const av_stack *st = &m->stacks[0];
    int T = c->T, dim = st->cfg.dim, L = st->n_layers;
    av_err err = {{0}};
    av_state *s = NULL;
    float *rows = malloc(sizeof(float) * (size_t)T * dim),
          *dx = calloc((size_t)c->N * T * dim, sizeof(float));
    float *pre = malloc(sizeof(float) * (size_t)T * dim), **resid = calloc((size_t)L + 1, sizeof *resid);
    for (int l = 0; l <= L; l++)
        resid[l] = malloc(sizeof(float) * (size_t)T * dim);
    av_pass p = {.resid = resid};
    int rc = av_state_new(m, 0, T, 2, &s, &err) || av_embed_tokens(m, st, c->ids, T, rows, &err) ||
             av_forward_embeds(m, s, c->ids, rows, T, 0, &p, &err);
    for (int i = 0; !rc && i < c->N; i++) {
        double lp;
        float *d = dx + ((size_t)i * T + (size_t)c->rows[i]) * dim;
        rc = av_head_grad(m, s, s->x + (size_t)c->rows[i] * dim, c->targets[i], d, &lp, &err);
        CHECKF(fabs(lp - ref(c, "logp")[i]) < ABS_TOL, "log p of target %d: %g vs %g", i, lp,
               ref(c, "logp")[i]);
    }
    memcpy(pre, rows, sizeof(float) * (size_t)T * dim);
    rc = rc || av_stack_backward(s, (const float *const *)resid, dx, c->N, T, NULL, &err) ||
         av_embed_positions(m, st, c->ids, T, 0, pre, &err) || av_embed_grad(m, st, pre, dx, c->N, T, &err);
    CHECKF(!rc, "backward: %s", err.msg);
    double e = INFINITY;
    if (!rc) { /* the reference holds the source rows of each target's gradient */
        e = 0;
        for (int i = 0; i < c->N; i++) {
            double ei =
                rel(dx + (size_t)i * T * dim, ref(c, "grad") + (size_t)i * c->S * dim, (size_t)c->S * dim);
            e = ei > e ? ei : e;
        }
    }
    for (int l = 0; l <= L; l++)
        free(resid[l]);
    free(resid), free(rows), free(dx), free(pre);
    av_state_free(s);
    return e;
}

/* ---- every method on one model ---- */

/* The logit lens of the case's sequence against the reference: max |log p diff| over top-k and targets; ids
 * and ranks must agree (a top-k id may differ only where the reference's log-probabilities tie). */
static double lens_err(const ref_case *c) {
    av_lens_params p = av_lens_default_params();
    p.k = iparam(c, "k");
    p.run.n_threads = 2;
    av_trace *t = NULL;
    av_lens_view v;
    av_err err = {{0}};
    if (av_lens_ids(c->m, c->ids, (size_t)c->T, &p, &t, &err) || av_trace_lens(t, &v, &err)) {
        CHECKF(0, "lens: %s", err.msg);
        av_trace_free(t);
        return INFINITY;
    }
    const int32_t *rid = (const int32_t *)ref(c, "lens.topk_ids"),
                  *rrank = (const int32_t *)ref(c, "lens.target_ranks");
    const float *rlp = ref(c, "lens.topk_logprobs"), *rtl = ref(c, "lens.target_logprobs");
    size_t cells = (size_t)v.n_entries * (size_t)v.n_tokens, nk = cells * (size_t)v.k;
    CHECKF(v.n_entries == c->m->stacks[0].n_layers + 1 && v.n_tokens == c->T && v.k == p.k, "lens shape");
    double e = max_abs(v.topk_logprobs, rlp, nk);
    for (size_t i = 0; i < nk; i++)
        CHECKF(v.topk_ids[i] == rid[i] || fabs(v.topk_logprobs[i] - rlp[i]) < ABS_TOL,
               "top-k id %zu: %d vs %d", i, v.topk_ids[i], rid[i]);
    for (size_t i = 0; i < cells; i++) {
        int last = (int)(i % (size_t)v.n_tokens) == v.n_tokens - 1;
        CHECKF(last ? v.target_ranks[i] == -1 && isnan(v.target_logprobs[i]) : v.target_ranks[i] == rrank[i],
               "target rank of cell %zu: %d vs %d", i, v.target_ranks[i], rrank[i]);
        if (!last) e = fmax(e, fabs(v.target_logprobs[i] - rtl[i]));
    }
    /* the last entry is the model's own output: its top-1 is the argmax of the logits */
    av_trace_free(t);
    return e;
}

static double occlusion_err(const ref_case *c, av_attr_baseline b, int span, const char *name) {
    av_attr_params p = params_for(c, 1u << AV_ATTR_OCCLUSION, b);
    if (span) p.group = AV_GROUP_SPAN, p.group_span = span;
    av_trace *t = attribute(c, &p);
    double e = t ? attr_err(c, t, AV_ATTR_OCCLUSION, name, 0) : INFINITY;
    av_trace_free(t);
    return e;
}

static void check_case(const char *name) {
    ref_case c;
    char why[512];
    int r = case_open(&c, name, why, sizeof why);
    if (r == 1) SKIP("%s", why);
    REQUIREF(r == 0, "%s", why);
    int decoder = c.T > c.S;
    double eb = backward_err(&c);
    av_attr_params p = params_for(&c, (1u << AV_ATTR_METHOD_COUNT) - 1, AV_BASELINE_TOKEN);
    av_trace *t = attribute(&c, &p);
    REQUIRE(t);
    double eo = attr_err(&c, t, AV_ATTR_OCCLUSION, "occlusion.unk", 0),
           es = attr_err(&c, t, AV_ATTR_SHAPLEY, "shapley", 0),
           esal = attr_err(&c, t, AV_ATTR_SALIENCY, "saliency", 1),
           ex = attr_err(&c, t, AV_ATTR_IXG, "ixg", 1), ei = attr_err(&c, t, AV_ATTR_IG, "ig", 1),
           ea = attr_err(&c, t, AV_ATTR_ATTN_GRAD, "attn_grad.sum", 1);
    av_tensor heads, delta, fb;
    const av_stack *st = &c.m->stacks[0];
    size_t nh = (size_t)c.N * (size_t)st->n_layers * (size_t)st->cfg.n_heads * (size_t)c.S;
    REQUIRE(av_trace_tensor(t, "attr.attn-grad.heads", &heads) == 0 &&
            av_tensor_numel(&heads) == (int64_t)nh);
    REQUIRE(av_trace_tensor(t, "attr.ig.delta", &delta) == 0 &&
            av_trace_tensor(t, "attr.ig.baseline_logprobs", &fb) == 0);
    double eh = rel(heads.data, ref(&c, "attn_grad"), nh),
           ed = max_abs(delta.data, ref(&c, "ig.delta"), (size_t)c.N),
           ef = max_abs(fb.data, ref(&c, "ig.fb"), (size_t)c.N);
    av_attr_view v;
    REQUIRE(av_trace_attribution(t, AV_ATTR_OCCLUSION, &v, NULL) == 0);
    double elp = max_abs(v.target_logprobs, ref(&c, "logp"), (size_t)c.N);
    double ez = occlusion_err(&c, AV_BASELINE_ZERO, 0, "occlusion.zero"),
           er = decoder ? occlusion_err(&c, AV_BASELINE_REMOVE, 0, "occlusion.remove") : 0,
           e2 = occlusion_err(&c, AV_BASELINE_TOKEN, 2, "occlusion.span2"), el = lens_err(&c);
    printf("# %-11s backward %.1e; occlusion %.1e (zero %.1e, remove %.1e, span:2 %.1e), shapley %.1e, log p "
           "%.1e; "
           "saliency %.1e, ixg %.1e, ig %.1e (completeness error %.3g, off by %.1e), attn-grad %.1e (heads "
           "%.1e); "
           "lens %.1e\n",
           name, eb, eo, ez, er, e2, es, elp, esal, ex, ei, ((const float *)delta.data)[0], ed, ea, eh, el);
    CHECKF(eb <= REL_TOL, "%s: backward pass %g from autograd", name, eb);
    CHECKF(eo <= ABS_TOL && ez <= ABS_TOL && er <= ABS_TOL && e2 <= ABS_TOL, "%s: occlusion %g %g %g %g",
           name, eo, ez, er, e2);
    CHECKF(es <= ABS_TOL && elp <= ABS_TOL, "%s: shapley %g, log p %g", name, es, elp);
    CHECKF(esal <= REL_TOL && ex <= REL_TOL && ei <= REL_TOL && ea <= REL_TOL && eh <= REL_TOL,
           "%s: saliency %g, ixg %g, ig %g, attn-grad %g / %g", name, esal, ex, ei, ea, eh);
    CHECKF(ed <= ABS_TOL && ef <= ABS_TOL, "%s: IG completeness %g, f(baseline) %g", name, ed, ef);
    CHECKF(el <= ABS_TOL, "%s: lens %g", name, el);
    av_trace_free(t);
    case_free(&c);
}

static void test_stories260K(void) { check_case("stories260K"); }
static void test_gpt2(void) { check_case("gpt2"); }
static void test_qwen2(void) { check_case("qwen2"); }
static void test_mistral(void) { check_case("mistral"); }
static void test_bert_encoder(void) { check_case("bert"); }
static void test_gemma_block_extras(void) { check_case("gemma"); }
static void test_llama3_rope_scaling(void) { check_case("dec_llama3"); }
static void test_qwen3(void) { check_case("dec_qwen3"); }
static void test_gemma_geglu_bf16(void) { check_case("dec_gemma"); }
static void test_gemma2(void) { check_case("dec_gemma2"); }
static void test_gemma3(void) { check_case("dec_gemma3"); }
static void test_phi3_longrope(void) { check_case("dec_phi3"); }
static void test_mixtral_experts(void) { check_case("dec_mixtral"); }
static void test_qwen3moe_experts(void) { check_case("dec_qwen3_moe"); }

/* ---- properties that need no reference ---- */

/* Shapley values with one seed twice are the same bits; another seed gives other values; every permutation
 * telescopes, so each target's values sum to f(input) - f(every token at the baseline), which is occlusion
 * of one group spanning the whole source. */
static void test_shapley_seed_and_efficiency(void) {
    ref_case c;
    char why[512];
    REQUIREF(case_open(&c, "gpt2", why, sizeof why) == 0, "%s", why);
    av_attr_params p = params_for(&c, 1u << AV_ATTR_SHAPLEY, AV_BASELINE_TOKEN);
    p.samples = 5;
    av_trace *a = attribute(&c, &p), *b = attribute(&c, &p), *d = NULL, *all = NULL;
    p.seed += 1;
    d = attribute(&c, &p);
    p = params_for(&c, 1u << AV_ATTR_OCCLUSION, AV_BASELINE_TOKEN);
    p.group = AV_GROUP_SPAN;
    p.group_span = c.S;
    all = attribute(&c, &p);
    av_attr_view va, vb, vd, vall;
    REQUIRE(a && b && d && all);
    REQUIRE(av_trace_attribution(a, AV_ATTR_SHAPLEY, &va, NULL) == 0 &&
            av_trace_attribution(b, AV_ATTR_SHAPLEY, &vb, NULL) == 0 &&
            av_trace_attribution(d, AV_ATTR_SHAPLEY, &vd, NULL) == 0 &&
            av_trace_attribution(all, AV_ATTR_OCCLUSION, &vall, NULL) == 0);
    size_t n = (size_t)c.N * (size_t)c.S;
    CHECK(memcmp(va.scores, vb.scores, sizeof(float) * n) == 0);
    CHECK(memcmp(va.scores, vd.scores, sizeof(float) * n) != 0);
    double worst = 0;
    for (int i = 0; i < c.N; i++) {
        double sum = 0;
        for (int j = 0; j < c.S; j++)
            sum += va.scores[(size_t)i * c.S + j];
        worst = fmax(worst, fabs(sum - vall.scores[(size_t)i * c.S]));
    }
    printf("# shapley: |sum - (f(x) - f(baseline))| = %.2g\n", worst);
    CHECKF(worst < 1e-4, "efficiency off by %g", worst);
    av_trace_free(a), av_trace_free(b), av_trace_free(d), av_trace_free(all);
    case_free(&c);
}

/* Batches of 1, 2 and as many as fit give the same occlusion: sequences side by side, and decoder batches
 * that start on a copy of the original's KV cache, compute what separate runs compute. */
static void test_batches_agree(void) {
    ref_case c;
    char why[512];
    REQUIREF(case_open(&c, "qwen2", why, sizeof why) == 0, "%s", why);
    float *first = NULL;
    size_t n = (size_t)c.N * (size_t)c.S;
    static const int sizes[] = {1, 2, 3, 0};
    for (int k = 0; k < 4; k++) {
        for (int b = 0; b < 2; b++) {
            av_attr_params p =
                params_for(&c, 1u << AV_ATTR_OCCLUSION, b ? AV_BASELINE_REMOVE : AV_BASELINE_TOKEN);
            p.max_batch = sizes[k];
            av_trace *t = attribute(&c, &p);
            av_attr_view v;
            REQUIRE(t && av_trace_attribution(t, AV_ATTR_OCCLUSION, &v, NULL) == 0);
            if (!first) first = malloc(sizeof(float) * 2 * n);
            if (k == 0) memcpy(first + (size_t)b * n, v.scores, sizeof(float) * n);
            double e = max_abs(v.scores, first + (size_t)b * n, n);
            CHECKF(e < 2e-5, "batch %d, baseline %d: %g from batches of 1", sizes[k], b, e);
            av_trace_free(t);
        }
    }
    free(first);
    case_free(&c);
}

/* Integrated gradients with its points in batches of 1, 2, 5 and as many as fit (one forward and one backward
 * pass of several sequences) give what one point per pass gives, on a model with windows and biases and on
 * one with every block extra. */
static void test_ig_batches_agree(void) {
    static const char *const names[] = {"qwen2", "gemma"};
    static const int sizes[] = {1, 2, 5, 0};
    for (size_t m = 0; m < sizeof names / sizeof names[0]; m++) {
        ref_case c;
        char why[512];
        REQUIREF(case_open(&c, names[m], why, sizeof why) == 0, "%s", why);
        size_t n = (size_t)c.N * (size_t)c.S;
        float *first = malloc(sizeof(float) * (n + (size_t)c.N));
        for (int k = 0; k < 4; k++) {
            av_attr_params p = params_for(&c, 1u << AV_ATTR_IG, AV_BASELINE_TOKEN);
            p.max_batch = sizes[k];
            av_trace *t = attribute(&c, &p);
            av_attr_view v;
            av_tensor d;
            REQUIRE(t && av_trace_attribution(t, AV_ATTR_IG, &v, NULL) == 0 &&
                    av_trace_tensor(t, "attr.ig.delta", &d) == 0);
            if (k == 0)
                memcpy(first, v.scores, sizeof(float) * n), memcpy(first + n, d.data, sizeof(float) * c.N);
            double e = rel(v.scores, first, n), ed = max_abs(d.data, first + n, (size_t)c.N);
            CHECKF(e < 1e-5 && ed < 1e-5, "%s: IG in batches of %d: %g (delta %g) from batches of 1",
                   names[m], sizes[k], e, ed);
            av_trace_free(t);
        }
        free(first);
        case_free(&c);
    }
}

/* Word groups on stories260K's pieces: BOS alone, a word runs from a piece with a leading space to the next.
 */
static void test_word_groups(void) {
    ref_case c;
    char why[512];
    int r = case_open(&c, "stories260K", why, sizeof why);
    if (r == 1) SKIP("%s", why);
    REQUIREF(r == 0, "%s", why);
    av_attr_task t = {.m = c.m, .ids = c.ids, .T = c.T, .S = c.S};
    av_attr_params p = av_attr_default_params();
    p.group = AV_GROUP_WORD;
    t.p = &p;
    av_err err = {{0}};
    REQUIREF(av_attr_make_groups(&t, &err) == 0, "%s", err.msg);
    char got[128] = "", want[128] = "";
    int g = -1;
    for (int j = 0; j < c.S; j++) {
        const char *piece = av_tokenizer_piece(c.m->tok, c.ids[j]);
        g += j == 0 || j == 1 || piece[0] == ' ';
        snprintf(want + strlen(want), sizeof want - strlen(want), "%d ", g);
        snprintf(got + strlen(got), sizeof got - strlen(got), "%d ", t.groups[j]);
    }
    printf("# word groups of the source: %s\n", got);
    CHECKF(strcmp(got, want) == 0 && t.n_groups == g + 1 && t.n_groups < c.S, "groups %s, expected %s", got,
           want);
    free(t.groups);
    case_free(&c);
}

/* IG's completeness error on a real model shrinks with the number of integration points and stays small. */
static void test_ig_completeness_bounded(void) {
    ref_case c;
    char why[512];
    int r = case_open(&c, "stories260K", why, sizeof why);
    if (r == 1) SKIP("%s", why);
    REQUIREF(r == 0, "%s", why);
    static const int steps[] = {4, 16, 64};
    double worst[3] = {0};
    for (int k = 0; k < 3; k++) {
        av_attr_params p = params_for(&c, 1u << AV_ATTR_IG, AV_BASELINE_TOKEN);
        p.steps = steps[k];
        av_trace *t = attribute(&c, &p);
        av_tensor d;
        REQUIRE(t && av_trace_tensor(t, "attr.ig.delta", &d) == 0);
        for (int i = 0; i < c.N; i++)
            worst[k] = fmax(worst[k], fabs(((const float *)d.data)[i]));
        av_trace_free(t);
    }
    printf("# IG completeness error (max over targets) with 4 / 16 / 64 points: %.3g / %.3g / %.3g\n",
           worst[0], worst[1], worst[2]);
    CHECKF(worst[2] < worst[0] && worst[2] < 0.01, "completeness errors %g %g %g", worst[0], worst[1],
           worst[2]);
    case_free(&c);
}

static void test_refusals(void) {
    ref_case c, e;
    char why[512];
    REQUIREF(case_open(&c, "gpt2", why, sizeof why) == 0, "%s", why);
    REQUIREF(case_open(&e, "bert", why, sizeof why) == 0, "%s", why);
    av_err err = {{0}};
    av_trace *t = NULL;
    av_attr_params p = params_for(&c, 1u << AV_ATTR_IG, AV_BASELINE_REMOVE);
    CHECK(av_attribute_ids(c.m, c.ids, (size_t)c.S, c.targets, (size_t)c.N, &p, &t, &err) == -1 && !t &&
          strstr(err.msg, "removal"));
    p = params_for(&e, 1u << AV_ATTR_OCCLUSION, AV_BASELINE_REMOVE);
    p.target_rows = e.rows;
    CHECK(av_attribute_ids(e.m, e.ids, (size_t)e.S, e.targets, (size_t)e.N, &p, &t, &err) == -1 &&
          strstr(err.msg, "encoder"));
    p = params_for(&e, 1u << AV_ATTR_OCCLUSION, AV_BASELINE_TOKEN); /* no rows for an encoder's targets */
    CHECK(av_attribute_ids(e.m, e.ids, (size_t)e.S, e.targets, (size_t)e.N, &p, &t, &err) == -1);
    p = params_for(&c, 1u << AV_ATTR_OCCLUSION, AV_BASELINE_TOKEN);
    int32_t bad = 9999;
    CHECK(av_attribute_ids(c.m, c.ids, (size_t)c.S, &bad, 1, &p, &t, &err) == -1 &&
          strstr(err.msg, "vocabulary"));
    CHECK(av_attribute_ids(c.m, c.ids, (size_t)c.S, c.targets, 0, &p, &t, &err) == -1);
    p.group = AV_GROUP_WORD; /* the tiny models have no tokenizer */
    CHECK(av_attribute_ids(c.m, c.ids, (size_t)c.S, c.targets, (size_t)c.N, &p, &t, &err) == -1 &&
          strstr(err.msg, "tokenizer"));
    p = params_for(&c, 1u << AV_ATTR_SHAPLEY, AV_BASELINE_TOKEN);
    p.samples = 0;
    CHECK(av_attribute_ids(c.m, c.ids, (size_t)c.S, c.targets, (size_t)c.N, &p, &t, &err) == -1);
    p = params_for(&c, 1u << AV_ATTR_OCCLUSION, AV_BASELINE_TOKEN);
    p.baseline_id = -1; /* tiny gpt2 has no pad token and no tokenizer */
    CHECK(av_attribute_ids(c.m, c.ids, (size_t)c.S, c.targets, (size_t)c.N, &p, &t, &err) == -1 &&
          strstr(err.msg, "baseline"));
    av_model *encdec = NULL;
    REQUIRE(av_model_load("tests/fixtures/tiny/t5", NULL, &encdec, &err) == 0);
    CHECK(av_attribute_ids(encdec, c.ids, 2, c.targets, 1, NULL, &t, &err) == -1 &&
          strstr(err.msg, "decoder-only"));
    av_lens_params lp = av_lens_default_params();
    CHECK(av_lens_ids(encdec, c.ids, 2, &lp, &t, &err) == -1);
    lp.k = 0;
    CHECK(av_lens_ids(c.m, c.ids, 3, &lp, &t, &err) == -1 && !t);
    av_model_free(encdec);
    case_free(&c);
    case_free(&e);
}

/* Attribution and lens tensors survive save and load (with and without attention); a trace whose attribution
 * does not fit its tokens is refused by the typed view. */
static void test_trace_roundtrip(void) {
    ref_case c;
    char why[512], path[512];
    REQUIREF(case_open(&c, "gpt2", why, sizeof why) == 0, "%s", why);
    av_attr_params p = params_for(&c, 1u << AV_ATTR_OCCLUSION | 1u << AV_ATTR_ATTN_GRAD, AV_BASELINE_TOKEN);
    av_err err = {{0}};
    for (int with = 0; with < 2; with++) {
        p.with_attention = with;
        av_trace *t = attribute(&c, &p), *back = NULL;
        REQUIRE(t);
        REQUIREF(av_lens_compute(c.m, c.ids, c.T, 3, 1, t, &err) == 0, "%s", err.msg);
        snprintf(path, sizeof path, "%s/attr%d.safetensors", h_tmpdir(), with);
        REQUIREF(av_trace_save(t, path, &err) == 0 && av_trace_load(path, &back, &err) == 0, "%s", err.msg);
        av_attr_view a, b;
        av_lens_view la, lb;
        REQUIRE(av_trace_attribution(t, AV_ATTR_ATTN_GRAD, &a, &err) == 0 &&
                av_trace_attribution(back, AV_ATTR_ATTN_GRAD, &b, &err) == 0);
        REQUIRE(av_trace_lens(t, &la, &err) == 0 && av_trace_lens(back, &lb, &err) == 0);
        CHECK(memcmp(a.scores, b.scores, sizeof(float) * (size_t)c.N * c.S) == 0 &&
              memcmp(a.target_ids, b.target_ids, sizeof(int32_t) * (size_t)c.N) == 0);
        CHECK(memcmp(la.topk_ids, lb.topk_ids, sizeof(int32_t) * (size_t)la.n_entries * la.n_tokens * la.k) ==
              0);
        CHECK(strcmp(av_trace_meta(back, "source_len"), "7") == 0 && av_trace_meta(back, "attribution"));
        CHECK(strcmp(av_trace_meta(back, "version"), "3") == 0); /* attr.* and lens.* are version 3 */
        CHECK(av_trace_n_layers(back, AV_ATTN_SELF) == (with ? 2 : 0));
        CHECK(av_trace_attribution(back, AV_ATTR_SHAPLEY, &a, &err) == -1 && strstr(err.msg, "no shapley"));
        av_trace_set_meta(back, "source_len", "99", &err); /* longer than the trace */
        CHECK(av_trace_attribution(back, AV_ATTR_OCCLUSION, &a, &err) == -1 && strstr(err.msg, "source_len"));
        av_trace_free(back);
        av_trace_free(t);
    }
    case_free(&c);
}

int main(void) {
    RUN(test_stories260K);
    RUN(test_gpt2);
    RUN(test_qwen2);
    RUN(test_mistral);
    RUN(test_bert_encoder);
    RUN(test_gemma_block_extras);
    RUN(test_llama3_rope_scaling);
    RUN(test_qwen3);
    RUN(test_gemma_geglu_bf16);
    RUN(test_gemma2);
    RUN(test_gemma3);
    RUN(test_phi3_longrope);
    RUN(test_mixtral_experts);
    RUN(test_qwen3moe_experts);
    RUN(test_shapley_seed_and_efficiency);
    RUN(test_batches_agree);
    RUN(test_ig_batches_agree);
    RUN(test_word_groups);
    RUN(test_ig_completeness_bounded);
    RUN(test_refusals);
    RUN(test_trace_roundtrip);
    return h_exit_code();
}
