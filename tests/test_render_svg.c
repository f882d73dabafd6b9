/* SVG figures (vector cells with the colormap's colors, selectable escaped UTF-8 labels) and the standalone
 * HTML page (no external references, markers filled, data decodes back to the trace within its precision,
 * a BERT-base-shaped trace stays under 4 MiB). The SVG is also parsed as XML by tests/cli/test_render.sh. */
#include "harness.h"

#include "core/core.h"
#include "render/plot.h"
#include "trace/trace.h"

#include <jansson.h>

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
        av_trace_add_attn(t, "self", l, heads, n, n, d, &err);
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
    REQUIRE(av_trace_attn(t, "self", 0, &v, &err) == 0);
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
        REQUIRE(av_trace_attn(t, "self", layer, &v, &err) == 0);
        size_t rows = (size_t)v.n_heads * v.n_query, cnt = rows * v.n_key;
        REQUIRE(off + cnt * (strcmp(want_enc, "f16") == 0 ? 2 : 1) <= nb);
        for (size_t r = 0; r < rows; r++) {
            float scale = 0, mx = 0;
            if (strcmp(want_enc, "u8") == 0)
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
                    got = blob[off + idx] * scale / 255.f;
                    CHECKF(fabsf(scale - mx) < 1e-7f && fabsf(got - want) <= mx / 510.f + 1e-7f,
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

static void test_html_f16_round_trip(void) {
    check_html(AV_HTML_F16, "f16");
}
static void test_html_u8_round_trip(void) {
    check_html(AV_HTML_U8, "u8");
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
    CHECK(strlen(s) == bytes && strstr(s, "\"encoding\":\"u8\"")); /* auto picked 8-bit to meet the budget */
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

int main(void) {
    RUN(test_svg_cells_and_labels);
    RUN(test_svg_large_matrix_embeds_png);
    RUN(test_html_f16_round_trip);
    RUN(test_html_u8_round_trip);
    RUN(test_html_bert_base_under_4mib);
    return h_exit_code();
}
