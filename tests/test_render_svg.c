/* SVG figures (vector cells with the colormap's colors, selectable escaped UTF-8 labels) and the standalone
 * HTML page (no external references, markers filled, data decodes back to the trace within its precision,
 * a BERT-base-shaped trace stays under 4 MiB). The SVG is also parsed as XML by tests/cli/test_render.sh. */
#include "harness.h"

#include "analysis/analysis.h"
#include "core/core.h"
#include "render/plot.h"
#include "trace/trace.h"

#include <jansson.h>

/* The page's 8-bit code c of a row with scale s (cube-root companded, docs/VIEWER.md) and the most it can be
 * off: code c is the rounding of 255 cbrt(w / s), so w lies within half a code of it. */
static float u8cbrt(uint8_t c, float s) { return powf(c / 255.f, 3) * s; }
static float u8cbrt_error(uint8_t c, float s) {
    return s * (powf((c + 0.5f) / 255.f, 3) - powf(c / 255.f, 3)) + 1e-7f;
}

static av_trace *make_trace(int layers, int heads, int n, unsigned seed, const char *tok0) {
    av_trace *t = av_trace_new();
    char **tk = malloc(sizeof *tk * (size_t)n);
    int32_t *ids = malloc(sizeof *ids * (size_t)n);
    for (int i = 0; i < n; i++) {
        char b[32];
        snprintf(b, sizeof b, "tok%d", i);
        tk[i] = av_strdup(i == 0 && tok0 ? tok0 : b);
        ids[i] = i;
    }
    av_err err;
    av_trace_set_tokens(t, tk, ids, n, &err);
    av_trace_set_meta(t, "model", "synthetic", &err);
    for (int l = 0; l < layers; l++) {
        float *d = malloc(sizeof *d * (size_t)heads * n * n);
        for (int r = 0; r < heads * n; r++) { /* softmax of pseudo-random logits */
            double s = 0;
            for (int k = 0; k < n; k++) {
                seed = seed * 1103515245u + 12345u;
                d[r * n + k] = expf((float)((seed >> 8) % 1000) / 250.f);
                s += d[r * n + k];
            }
            for (int k = 0; k < n; k++)
                d[r * n + k] = (float)(d[r * n + k] / s);
        }
        av_trace_add_attn(t, AV_ATTN_SELF, l, heads, n, n, d, &err);
    }
    return t;
}

static char *slurp(const char *path) {
    char *s = NULL;
    size_t n;
    av_err err;
    return av_file_read_all(path, 64u << 20, &s, &n, &err) ? NULL : s;
}

static void test_svg_cells_and_labels(void) {
    av_trace *t = make_trace(1, 2, 5, 7, "<&\"tok\xC3\xA9\">");
    av_plot_params p = av_plot_default_params();
    p.head = 1;
    char path[512];
    snprintf(path, sizeof path, "%s/fig.svg", h_tmpdir());
    av_err err = {{0}};
    av_plot_geom g;
    REQUIREF(av_plot_render(t, &p, path, &g, &err) == 0, "%s", err.msg);
    char *s = slurp(path);
    REQUIRE(s);
    CHECK(strncmp(s, "<?xml", 5) == 0 && strstr(s, "<svg xmlns=\"http://www.w3.org/2000/svg\""));
    CHECK(strstr(s, ">synthetic · layer 0 · head 1</text>") != NULL);
    CHECK(strstr(s, ">&lt;&amp;&quot;tok\xC3\xA9&quot;&gt;</text>") != NULL); /* escaped, UTF-8 kept */
    CHECK(strstr(s, ">tok4</text>") != NULL);
    CHECK(strstr(s, "transform=\"rotate(-90") != NULL); /* rotated key labels */
    CHECK(strstr(s, "<image") == NULL);                 /* small matrices are vector cells */
    av_attn_view v;
    REQUIRE(av_trace_attn(t, AV_ATTN_SELF, 0, &v, &err) == 0);
    const float *h1 = v.data + 25;
    for (int i = 0; i < 25; i++) {
        uint8_t rgb[3];
        av_cmap_rgb(AV_CMAP_VIRIDIS, h1[i] / g.vmax, rgb);
        char want[160];
        snprintf(want, sizeof want, "fill=\"#%02x%02x%02x\"><title>query %d, key %d: %.6g</title>", rgb[0],
                 rgb[1], rgb[2], i / 5, i % 5, (double)h1[i]);
        CHECKF(strstr(s, want) != NULL, "no cell %s", want);
    }
    free(s);
    av_trace_free(t);
}

/* av_plot_build gives the bytes av_plot_render writes, PNG and SVG, with the same geometry. */
static void test_plot_build_equals_render(void) {
    av_trace *t = make_trace(2, 2, 6, 3, "tok");
    av_plot_params p = av_plot_default_params();
    p.layer = 1;
    av_err err = {{0}};
    for (int f = 0; f < AV_PLOT_FORMAT_COUNT; f++) {
        char path[512];
        snprintf(path, sizeof path, "%s/build.%s", h_tmpdir(), f == AV_PLOT_PNG ? "png" : "svg");
        av_plot_geom g1, g2;
        uint8_t *buf;
        size_t n, m;
        REQUIREF(av_plot_build(t, &p, (av_plot_format)f, &buf, &n, &g1, &err) == 0, "%s", err.msg);
        REQUIREF(av_plot_render(t, &p, path, &g2, &err) == 0, "%s", err.msg);
        char *file = NULL;
        REQUIRE(av_file_read_all(path, 64u << 20, &file, &m, &err) == 0);
        CHECK(m == n && memcmp(file, buf, n) == 0 && memcmp(&g1, &g2, sizeof g1) == 0);
        free(file);
        av_free(buf);
    }
    uint8_t *buf = NULL;
    size_t n;
    CHECK(av_plot_build(t, &p, AV_PLOT_FORMAT_COUNT, &buf, &n, NULL, &err) == -1 &&
          strstr(err.msg, "format"));
    p.dpi = 5;
    CHECK(av_plot_build(t, &p, AV_PLOT_PNG, &buf, &n, NULL, &err) == -1 && strstr(err.msg, "dpi 5"));
    av_trace_free(t);
}

static void test_svg_large_matrix_embeds_png(void) {
    av_trace *t = make_trace(1, 1, 300, 3, NULL);
    av_plot_params p = av_plot_default_params();
    p.head = 0;
    p.cell = 2;
    char path[512];
    snprintf(path, sizeof path, "%s/big.svg", h_tmpdir());
    av_err err = {{0}};
    REQUIREF(av_plot_render(t, &p, path, NULL, &err) == 0, "%s", err.msg);
    char *s = slurp(path);
    REQUIRE(s);
    CHECK(strstr(s, "xlink:href=\"data:image/png;base64,iVBORw0KGgo") != NULL);
    CHECK(strstr(s, "http://") == strstr(s, "http://www.w3.org/2000/svg")); /* only the namespaces */
    free(s);
    av_trace_free(t);
}

/* Finds the text between <script ... id="ID"> and </script>. */
static char *script_body(const char *page, const char *id) {
    char open[64];
    snprintf(open, sizeof open, "id=\"%s\">", id);
    const char *a = strstr(page, open);
    if (!a) return NULL;
    a += strlen(open);
    const char *b = strstr(a, "</script>");
    return b ? av_strndup(a, (size_t)(b - a)) : NULL;
}

static int b64val(int c) {
    return c >= 'A' && c <= 'Z'   ? c - 'A'
           : c >= 'a' && c <= 'z' ? c - 'a' + 26
           : c >= '0' && c <= '9' ? c - '0' + 52
           : c == '+'             ? 62
           : c == '/'             ? 63
                                  : -1;
}

static uint8_t *unbase64(const char *s, size_t *n) {
    size_t len = strlen(s);
    uint8_t *o = malloc(len / 4 * 3 + 3);
    size_t k = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64val((unsigned char)s[i]);
        if (v < 0) continue;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[k++] = (uint8_t)(acc >> bits);
        }
    }
    *n = k;
    return o;
}

/* Builds the page with the given precision and checks every weight decodes back within its precision. */
static void check_html(av_html_precision prec, const char *want_enc) {
    av_trace *t = make_trace(2, 3, 9, 11, "</script><b>x</b>");
    av_html_params hp = av_html_default_params();
    hp.precision = prec;
    char *page;
    size_t n;
    av_err err = {{0}};
    REQUIREF(av_html_build(t, &hp, &page, &n, &err) == 0, "%s", err.msg);
    CHECK(strlen(page) == n);
    CHECK(strstr(page, "<!--AV:") == NULL);
    CHECK(strstr(page, "http:") == NULL && strstr(page, "https:") == NULL && strstr(page, "src=") == NULL);
    CHECK(strstr(page, "Content-Security-Policy") != NULL);
    int closes = 0;
    for (const char *p = page; (p = strstr(p, "</script")); p++)
        closes++;
    CHECKF(closes == 3, "%d </script tags: a token leaked out of the JSON", closes);
    char *mj = script_body(page, "av-meta"), *dj = script_body(page, "av-data");
    REQUIRE(mj && dj);
    json_error_t je;
    json_t *meta = json_loads(mj, 0, &je);
    REQUIREF(json_is_object(meta), "meta JSON: %s", je.text);
    CHECK(strcmp(json_string_value(json_object_get(meta, "encoding")), want_enc) == 0);
    json_t *q = json_object_get(json_object_get(json_object_get(meta, "labels"), "self"), "q");
    CHECK(json_array_size(q) == 9 &&
          strcmp(json_string_value(json_array_get(q, 0)), "</script><b>x</b>") == 0);
    CHECK(json_array_size(json_object_get(json_object_get(meta, "cmaps"), "viridis")) == 768);
    size_t nb;
    uint8_t *blob = unbase64(dj, &nb);
    json_t *sets = json_object_get(meta, "sets");
    CHECK(json_array_size(sets) == 2);
    double worst = 0;
    for (size_t i = 0; i < json_array_size(sets); i++) {
        json_t *s = json_array_get(sets, i);
        int layer = (int)json_integer_value(json_object_get(s, "layer"));
        size_t off = (size_t)json_integer_value(json_object_get(s, "off"));
        av_attn_view v;
        REQUIRE(av_trace_attn(t, AV_ATTN_SELF, layer, &v, &err) == 0);
        size_t rows = (size_t)v.n_heads * v.n_query, cnt = rows * v.n_key;
        REQUIRE(off + cnt * (strcmp(want_enc, "f16") == 0 ? 2 : 1) <= nb);
        for (size_t r = 0; r < rows; r++) {
            float scale = 0, mx = 0;
            if (strcmp(want_enc, "u8cbrt") == 0)
                memcpy(&scale, blob + (size_t)json_integer_value(json_object_get(s, "soff")) + 4 * r, 4);
            for (int k = 0; k < v.n_key; k++)
                mx = fmaxf(mx, v.data[r * v.n_key + k]);
            for (int k = 0; k < v.n_key; k++) {
                size_t idx = r * v.n_key + k;
                float want = v.data[idx], got;
                if (strcmp(want_enc, "f16") == 0) {
                    uint16_t h;
                    memcpy(&h, blob + off + 2 * idx, 2);
                    got = av_f16_to_f32(h);
                    CHECKF(fabsf(got - want) <= want * 1e-3f + 1e-7f, "f16 weight %g decodes to %g", want,
                           got);
                } else {
                    got = u8cbrt(blob[off + idx], scale);
                    CHECKF(fabsf(scale - mx) < 1e-7f &&
                               fabsf(got - want) <= u8cbrt_error(blob[off + idx], scale),
                           "u8 weight %g decodes to %g (row max %g, scale %g)", want, got, mx, scale);
                }
                worst = fmax(worst, fabs(got - want));
            }
        }
        (void)cnt;
    }
    free(blob);
    json_decref(meta);
    free(mj);
    free(dj);
    free(page);
    av_trace_free(t);
}

static void test_html_f16_round_trip(void) { check_html(AV_HTML_F16, "f16"); }
static void test_html_u8_round_trip(void) { check_html(AV_HTML_U8, "u8cbrt"); }

/* The first view a page shows (meta "state"), checked against the trace. */
static void test_html_initial_state(void) {
    av_trace *t = make_trace(3, 4, 5, 11, "tok");
    av_html_params hp = av_html_default_params();
    hp.analysis = 0;
    int heads[2] = {1, 3};
    hp.kind = AV_ATTN_SELF;
    hp.layer = 2;
    hp.head = AV_HEADS_MAX;
    hp.heads = heads;
    hp.n_heads = 2;
    hp.theme = "dark";
    char *page;
    size_t n;
    av_err err = {{0}};
    REQUIREF(av_html_build(t, &hp, &page, &n, &err) == 0, "%s", err.msg);
    char *meta = script_body(page, "av-meta");
    CHECK(meta && strstr(meta, "\"state\":{\"kind\":\"self\",\"layer\":2,\"head\":\"max\",\"theme\":\"dark\","
                               "\"heads\":[1,3]}"));
    free(meta);
    av_free(page);
    hp = av_html_default_params();
    hp.analysis = 0;
    REQUIREF(av_html_build(t, &hp, &page, &n, &err) == 0, "%s", err.msg);
    CHECK(!strstr(page, "\"state\"")); /* defaults leave the viewer's own choice */
    av_free(page);
    struct {
        int kind;
        const char *theme;
        int layer, head, heads0;
        const char *msg;
    } bad[] = {{AV_ATTN_CROSS, NULL, 0, AV_HEADS_MEAN, 0, "no 'cross' attention"},
               {AV_ATTN_KIND_COUNT, NULL, 0, AV_HEADS_MEAN, 0, "unknown attention kind 4"},
               {-2, NULL, 0, AV_HEADS_MEAN, 0, "unknown attention kind -2"},
               {-1, NULL, 3, AV_HEADS_MEAN, 0, "layer 3 is out of range: self has layers 0..2"},
               {-1, NULL, 0, 4, 0, "head 4 is out of range"},
               {-1, NULL, 0, -3, 0, "head -3 is out of range"},
               {-1, NULL, 0, AV_HEADS_MEAN, 9, "checked head 9 is out of range"},
               {-1, "blue", 0, AV_HEADS_MEAN, 0, "theme must be light or dark"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hp.kind = bad[i].kind;
        hp.theme = bad[i].theme;
        hp.layer = bad[i].layer;
        hp.head = bad[i].head;
        heads[0] = bad[i].heads0;
        hp.heads = heads;
        hp.n_heads = 1;
        page = NULL;
        CHECKF(av_html_build(t, &hp, &page, &n, &err) == -1 && strstr(err.msg, bad[i].msg) && !page,
               "case %zu: %s", i, err.msg);
    }
    av_trace_free(t);
}

static void test_html_bert_base_under_4mib(void) {
    av_trace *t = make_trace(12, 12, 128, 5, NULL);
    char path[512];
    snprintf(path, sizeof path, "%s/bert.html", h_tmpdir());
    av_html_params hp = av_html_default_params();
    size_t bytes = 0;
    av_err err = {{0}};
    REQUIREF(av_html_write(t, &hp, path, &bytes, &err) == 0, "%s", err.msg);
    CHECKF(bytes <= (4u << 20), "BERT-base-shaped page is %zu bytes (> 4 MiB)", bytes);
    char *s = slurp(path);
    REQUIRE(s);
    CHECK(strlen(s) == bytes &&
          strstr(s, "\"encoding\":\"u8cbrt\"")); /* auto picked 8-bit to meet the budget */
    free(s);
    av_trace_free(t);
    /* a small trace stays in float16 */
    t = make_trace(2, 2, 16, 5, NULL);
    char *page;
    size_t n;
    REQUIRE(av_html_build(t, &hp, &page, &n, &err) == 0);
    CHECK(strstr(page, "\"encoding\":\"f16\"") != NULL);
    free(page);
    av_trace_free(t);
}

/* The analysis section: per-head statistics of every head, the rollout decoding back to av_rollout_trace
 * within the page's precision, value norms copied exactly, --no-analysis leaving it out, --roles checked. */
static void check_analysis(av_html_precision prec) {
    av_trace *t = make_trace(3, 2, 7, 11, NULL);
    float **vn = malloc(sizeof *vn * 3);
    for (int l = 0; l < 3; l++) {
        vn[l] = malloc(sizeof(float) * 2 * 7);
        for (int i = 0; i < 14; i++)
            vn[l][i] = 0.25f * (float)(l + 1) + 0.125f * (float)i;
    }
    av_err err = {{0}};
    REQUIRE(av_trace_set_vnorm(t, vn, 3, 2, &err) == 0);
    av_html_params hp = av_html_default_params();
    hp.precision = prec;
    char *page;
    size_t n;
    REQUIREF(av_html_build(t, &hp, &page, &n, &err) == 0, "%s", err.msg);
    char *mj = script_body(page, "av-meta"), *dj = script_body(page, "av-data");
    REQUIRE(mj && dj);
    json_error_t je;
    json_t *meta = json_loads(mj, 0, &je), *an = json_object_get(meta, "analysis");
    REQUIREF(json_is_object(an), "no analysis in the page: %s", je.text);
    json_t *stats = json_object_get(json_object_get(an, "stats"), "self");
    CHECK(strcmp(json_string_value(json_object_get(stats, "format")), "attnviz-stats") == 0);
    CHECK(json_array_size(json_object_get(stats, "heads")) == 6 && !json_object_get(stats, "tokens"));
    json_t *h0 = json_array_get(json_object_get(stats, "heads"), 0);
    CHECK(json_is_string(json_object_get(h0, "role")) && json_is_number(json_object_get(h0, "role_score")) &&
          json_is_number(json_object_get(h0, "first_norm"))); /* first_norm uses the value norms */
    size_t nb;
    uint8_t *blob = unbase64(dj, &nb);
    json_t *ro = json_object_get(json_object_get(an, "rollout"), "self");
    REQUIRE(json_integer_value(json_object_get(ro, "rows")) == 7 &&
            json_integer_value(json_object_get(ro, "cols")) == 7);
    CHECK(strcmp(json_string_value(json_object_get(ro, "variant")), "abnar-zuidema") == 0);
    float want[49];
    REQUIRE(av_rollout_trace(t, AV_ATTN_SELF, NULL, want, &err) == 0);
    size_t off = (size_t)json_integer_value(json_object_get(ro, "off"));
    for (int r = 0; r < 7; r++) {
        float scale = 0, mx = 0;
        if (prec == AV_HTML_U8)
            memcpy(&scale, blob + (size_t)json_integer_value(json_object_get(ro, "soff")) + 4 * r, 4);
        for (int k = 0; k < 7; k++)
            mx = fmaxf(mx, want[r * 7 + k]);
        for (int k = 0; k < 7; k++) {
            float w = want[r * 7 + k], got;
            if (prec == AV_HTML_U8) {
                uint8_t c = blob[off + (size_t)(r * 7 + k)];
                got = u8cbrt(c, scale);
                CHECKF(fabsf(scale - mx) < 1e-7f && fabsf(got - w) <= u8cbrt_error(c, scale),
                       "u8 rollout %g decodes to %g", w, got);
            } else {
                uint16_t hv;
                memcpy(&hv, blob + off + 2 * (size_t)(r * 7 + k), 2);
                got = av_f16_to_f32(hv);
                CHECKF(fabsf(got - w) <= w * 1e-3f + 1e-7f, "f16 rollout %g decodes to %g", w, got);
            }
        }
    }
    json_t *v = json_object_get(an, "vnorm");
    REQUIRE(json_is_object(v) && json_array_size(json_object_get(v, "offs")) == 3);
    for (int l = 0; l < 3; l++) {
        size_t vo = (size_t)json_integer_value(json_array_get(json_object_get(v, "offs"), (size_t)l));
        CHECK(vo % 4 == 0 && vo + 56 <= nb && memcmp(blob + vo, vn[l], 56) == 0); /* exact float32 */
    }
    free(blob);
    json_decref(meta);
    free(mj);
    free(dj);
    free(page);
    hp.analysis = 0; /* --no-analysis */
    REQUIRE(av_html_build(t, &hp, &page, &n, &err) == 0);
    mj = script_body(page, "av-meta");
    CHECK(mj && strstr(mj, "\"analysis\"") == NULL);
    free(mj);
    free(page);
    av_trace_free(t);
}

static void test_html_analysis_f16(void) { check_analysis(AV_HTML_F16); }
static void test_html_analysis_u8(void) { check_analysis(AV_HTML_U8); }

static void test_html_analysis_without_vnorm_and_roles(void) {
    av_trace *t = make_trace(2, 4, 6, 5, NULL);
    av_html_params hp = av_html_default_params();
    char *page, path[512];
    size_t n;
    av_err err = {{0}};
    REQUIRE(av_html_build(t, &hp, &page, &n, &err) == 0);
    CHECK(strstr(page, "\"vnorm\":null") &&
          strstr(page, "\"vnorm_note\":\"this trace has none (vnorm.<layer>)"));
    free(page);
    /* probe roles: accepted for the same shape, refused for another one or for other JSON */
    snprintf(path, sizeof path, "%s/roles.json", h_tmpdir());
    FILE *fp = fopen(path, "w");
    REQUIRE(fp);
    fputs("{\"format\": \"attnviz-roles\", \"n_layers\": 2, \"n_heads\": 4, \"model\": \"m\", \"heads\": [",
          fp);
    for (int k = 0; k < 8; k++)
        fprintf(fp,
                "%s{\"layer\": %d, \"head\": %d, \"role\": \"induction\", \"score\": 0.9, \"scores\": {}}",
                k ? "," : "", k / 4, k % 4);
    fputs("], \"summary\": {}}", fp);
    fclose(fp);
    hp.roles_path = path;
    REQUIREF(av_html_build(t, &hp, &page, &n, &err) == 0, "%s", err.msg);
    char *mj = script_body(page, "av-meta");
    CHECK(mj && strstr(mj, "\"probe_roles\":{") && strstr(mj, "\"file\":\"roles.json\"") &&
          !strstr(mj, "\"summary\""));
    free(mj);
    free(page);
    av_trace_free(t);
    t = make_trace(3, 4, 6, 5, NULL);
    CHECK(av_html_build(t, &hp, &page, &n, &err) == -1 &&
          strstr(err.msg, "roles of 2 layers x 4 heads, but the trace's self-attention has 3 x 4"));
    fp = fopen(path, "w");
    REQUIRE(fp);
    fputs("{\"format\": \"attnviz-stats\"}", fp);
    fclose(fp);
    CHECK(av_html_build(t, &hp, &page, &n, &err) == -1 && strstr(err.msg, "not the JSON of attnviz roles"));
    av_trace_free(t);
    CHECK(av_html_view_valid("summary") && av_html_view_valid("norm") && !av_html_view_valid("roles"));
}

int main(void) {
    RUN(test_svg_cells_and_labels);
    RUN(test_plot_build_equals_render);
    RUN(test_svg_large_matrix_embeds_png);
    RUN(test_html_f16_round_trip);
    RUN(test_html_u8_round_trip);
    RUN(test_html_initial_state);
    RUN(test_html_bert_base_under_4mib);
    RUN(test_html_analysis_f16);
    RUN(test_html_analysis_u8);
    RUN(test_html_analysis_without_vnorm_and_roles);
    return h_exit_code();
}
