/* PNG figures: decoded with libpng, the image size follows the layout and dpi, and the pixel colors of known
 * cells of a synthetic trace equal av_cmap_rgb of the expected (independently computed) values: one head,
 * the mean over heads, --exclude-first renormalization, --log, the grid. Also the embedded font. */
#include "harness.h"

#include "core/core.h"
#include "render/plot.h"
#include "trace/trace.h"

#include <png.h>

/* head 0: a lower-triangular pattern of exact binary fractions; head 1: something else */
static const float k_h0[4][4] = {
    {1, 0, 0, 0}, {0.5f, 0.5f, 0, 0}, {0.25f, 0.25f, 0.5f, 0}, {0.125f, 0.125f, 0.25f, 0.5f}};
static const float k_h1[4][4] = {
    {0.25f, 0.25f, 0.25f, 0.25f}, {0, 1, 0, 0}, {0, 0.5f, 0.5f, 0}, {0.5f, 0, 0, 0.5f}};

static av_trace *synthetic(void) {
    av_trace *t = av_trace_new();
    const char *toks[4] = {"<s>", "h\xC3\xA9llo", "w\xC3\xB6rld", "\xE6\x9D\xB1"};
    char **tk = malloc(4 * sizeof *tk);
    int32_t *ids = malloc(4 * sizeof *ids);
    for (int i = 0; i < 4; i++) {
        tk[i] = av_strdup(toks[i]);
        ids[i] = i;
    }
    av_err err;
    av_trace_set_tokens(t, tk, ids, 4, &err);
    av_trace_set_meta(t, "model", "synthetic", &err);
    float *d = malloc(2 * 16 * sizeof *d);
    memcpy(d, k_h0, sizeof k_h0);
    memcpy(d + 16, k_h1, sizeof k_h1);
    av_trace_add_attn(t, AV_ATTN_SELF, 0, 2, 4, 4, d, &err);
    return t;
}

typedef struct decoded {
    int w, h;
    uint8_t *px;
    double dpi;
} decoded;

static int decode(const char *path, decoded *out) {
    memset(out, 0, sizeof *out);
    FILE *fp = fopen(path, "rb");
    if (!fp) return -1;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        fclose(fp);
        return -1;
    }
    png_init_io(png, fp);
    png_read_png(png, info, PNG_TRANSFORM_STRIP_16 | PNG_TRANSFORM_PACKING | PNG_TRANSFORM_STRIP_ALPHA, NULL);
    if (png_get_color_type(png, info) != PNG_COLOR_TYPE_RGB) longjmp(png_jmpbuf(png), 1);
    out->w = (int)png_get_image_width(png, info);
    out->h = (int)png_get_image_height(png, info);
    png_uint_32 rx, ry;
    int unit;
    if (png_get_pHYs(png, info, &rx, &ry, &unit) && unit == PNG_RESOLUTION_METER) out->dpi = rx * 0.0254;
    png_bytepp rows = png_get_rows(png, info);
    out->px = malloc((size_t)out->w * out->h * 3);
    for (int r = 0; r < out->h; r++)
        memcpy(out->px + (size_t)r * out->w * 3, rows[r], (size_t)out->w * 3);
    png_destroy_read_struct(&png, &info, NULL);
    fclose(fp);
    return 0;
}

static const uint8_t *pixel(const decoded *d, double x, double y) {
    int xi = (int)x, yi = (int)y;
    if (xi < 0) xi = 0;
    if (yi < 0) yi = 0;
    if (xi >= d->w) xi = d->w - 1;
    if (yi >= d->h) yi = d->h - 1;
    return d->px + ((size_t)yi * d->w + xi) * 3;
}

/* Renders p to a PNG and checks each cell (r, c) of the expected matrix m (n x n, row-major) against
 * av_cmap_rgb(cm, t(m)) with t the linear (0..vmax) or log mapping. */
static void check_cells(const av_plot_params *p, const float *m, int n, float vmax, const char *name) {
    av_trace *t = synthetic();
    char path[512];
    snprintf(path, sizeof path, "%s/%s.png", h_tmpdir(), name);
    av_err err = {{0}};
    av_plot_geom g;
    int rc = av_plot_render(t, p, path, &g, &err);
    av_trace_free(t);
    REQUIREF(rc == 0, "render: %s", err.msg);
    decoded d;
    REQUIRE(decode(path, &d) == 0);
    CHECKF(d.w == g.width && d.h == g.height, "PNG is %dx%d, layout says %dx%d", d.w, d.h, g.width, g.height);
    CHECKF(g.n_rows == n && g.n_cols == n, "%d x %d cells shown, want %d x %d", g.n_rows, g.n_cols, n, n);
    CHECKF(fabs(d.dpi - p->dpi) < 0.5, "pHYs says %.2f dpi, want %.0f", d.dpi, p->dpi);
    CHECKF(fabsf(g.vmax - vmax) < 1e-6f, "vmax %g, want %g", g.vmax, vmax);
    for (int r = 0; r < n; r++)
        for (int c = 0; c < n; c++) {
            float v = m[r * n + c], tt = v / vmax;
            if (p->log_scale) tt = v > 0 ? (log10f(v) - (log10f(vmax) - 4)) / 4 : 0;
            uint8_t want[3];
            av_cmap_rgb(p->cmap, tt, want);
            const uint8_t *got = pixel(&d, g.x0 + (c + 0.5) * g.cell_w, g.y0 + (r + 0.5) * g.cell_h);
            CHECKF(memcmp(got, want, 3) == 0,
                   "%s cell (%d,%d) = %g: pixel #%02x%02x%02x, colormap #%02x%02x%02x", name, r, c, (double)v,
                   got[0], got[1], got[2], want[0], want[1], want[2]);
        }
    /* text was drawn: the title band and the query-label column hold dark pixels */
    int dark_title = 0, dark_labels = 0;
    for (int y = 0; y < (int)g.y0 - 2; y++)
        for (int x = 0; x < d.w; x++)
            dark_title += pixel(&d, x, y)[0] < 100;
    for (int y = (int)g.y0; y < (int)(g.y0 + n * g.cell_h); y++)
        for (int x = 0; x < (int)g.x0 - 2; x++)
            dark_labels += pixel(&d, x, y)[0] < 100;
    CHECKF(dark_title > 50 && dark_labels > 50, "no text drawn? (%d title, %d label dark pixels)", dark_title,
           dark_labels);
    free(d.px);
}

static void test_png_one_head_viridis(void) {
    av_plot_params p = av_plot_default_params();
    p.head = 0;
    check_cells(&p, &k_h0[0][0], 4, 1.f, "head0");
}

static void test_png_mean_magma(void) {
    av_plot_params p = av_plot_default_params();
    p.head = AV_HEAD_MEAN;
    p.cmap = AV_CMAP_MAGMA;
    float m[16], mx = 0;
    for (int i = 0; i < 16; i++) {
        m[i] = ((&k_h0[0][0])[i] + (&k_h1[0][0])[i]) / 2;
        if (m[i] > mx) mx = m[i];
    }
    check_cells(&p, m, 4, mx, "mean");
}

static void test_png_max_diverging(void) {
    av_plot_params p = av_plot_default_params();
    p.head = AV_HEAD_MAX;
    p.cmap = AV_CMAP_DIVERGING;
    av_trace *t = synthetic();
    char path[512];
    snprintf(path, sizeof path, "%s/max.png", h_tmpdir());
    av_err err = {{0}};
    av_plot_geom g;
    int rc = av_plot_render(t, &p, path, &g, &err);
    av_trace_free(t);
    REQUIREF(rc == 0, "render: %s", err.msg);
    CHECKF(g.vmin == -1 && g.vmax == 1, "diverging range [%g, %g], want symmetric [-1, 1]", g.vmin, g.vmax);
    decoded d;
    REQUIRE(decode(path, &d) == 0);
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++) {
            float v = fmaxf(k_h0[r][c], k_h1[r][c]);
            uint8_t want[3];
            av_cmap_rgb(AV_CMAP_DIVERGING, (v + 1) / 2, want);
            CHECKF(memcmp(pixel(&d, g.x0 + (c + 0.5) * g.cell_w, g.y0 + (r + 0.5) * g.cell_h), want, 3) == 0,
                   "max cell (%d,%d)", r, c);
        }
    free(d.px);
}

static void test_png_exclude_first_renormalizes(void) {
    av_plot_params p = av_plot_default_params();
    p.head = 0;
    p.exclude_first = 1;
    /* rows 1..3, keys 1..3 of head 0, each divided by its sum without key 0 */
    const float m[9] = {
        1, 0, 0, 0.25f / 0.75f, 0.5f / 0.75f, 0, 0.125f / 0.875f, 0.25f / 0.875f, 0.5f / 0.875f};
    check_cells(&p, m, 3, 1.f, "exclude");
}

static void test_png_log_scale(void) {
    av_plot_params p = av_plot_default_params();
    p.head = 0;
    p.log_scale = 1;
    check_cells(&p, &k_h0[0][0], 4, 1.f, "log");
}

static void test_png_dpi_scales_image(void) {
    av_trace *t = synthetic();
    av_plot_params p = av_plot_default_params();
    p.head = 1;
    av_err err = {{0}};
    av_plot_geom g96, g288;
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/d96.png", h_tmpdir());
    snprintf(b, sizeof b, "%s/d288.png", h_tmpdir());
    p.dpi = 96;
    int rc = av_plot_render(t, &p, a, &g96, &err);
    p.dpi = 288;
    rc |= av_plot_render(t, &p, b, &g288, &err);
    av_trace_free(t);
    REQUIREF(rc == 0, "render: %s", err.msg);
    CHECKF(abs(g288.width - 3 * g96.width) <= 3 && abs(g288.height - 3 * g96.height) <= 3,
           "288 dpi is %dx%d, 96 dpi %dx%d: want 3x", g288.width, g288.height, g96.width, g96.height);
    CHECKF(fabs(g288.cell_w - 3 * g96.cell_w) < 1e-6, "cells %g vs %g", g288.cell_w, g96.cell_w);
    decoded d;
    REQUIRE(decode(b, &d) == 0);
    CHECKF(fabs(d.dpi - 288) < 0.5, "pHYs %.2f dpi", d.dpi);
    free(d.px);
}

static void test_png_grid_shared_scale(void) {
    av_trace *t = synthetic();
    av_plot_params p = av_plot_default_params();
    p.grid = 1;
    char path[512];
    snprintf(path, sizeof path, "%s/grid.png", h_tmpdir());
    av_err err = {{0}};
    av_plot_geom g;
    int rc = av_plot_render(t, &p, path, &g, &err);
    av_trace_free(t);
    REQUIREF(rc == 0, "render: %s", err.msg);
    decoded d;
    REQUIRE(decode(path, &d) == 0);
    CHECKF(g.pitch_x > 4 * g.cell_w, "grid pitch %g", g.pitch_x);
    for (int h = 0; h < 2; h++)
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < 4; c++) {
                float v = h ? k_h1[r][c] : k_h0[r][c];
                uint8_t want[3];
                av_cmap_rgb(AV_CMAP_VIRIDIS, v, want);
                const uint8_t *got =
                    pixel(&d, g.x0 + h * g.pitch_x + (c + 0.5) * g.cell_w, g.y0 + (r + 0.5) * g.cell_h);
                CHECKF(memcmp(got, want, 3) == 0, "grid head %d cell (%d,%d)", h, r, c);
            }
    free(d.px);
}

static void test_render_errors_are_clear(void) {
    av_trace *t = synthetic();
    av_plot_params p = av_plot_default_params();
    av_err err = {{0}};
    char path[512];
    snprintf(path, sizeof path, "%s/x.jpg", h_tmpdir());
    CHECK(av_plot_render(t, &p, path, NULL, &err) != 0 && strstr(err.msg, ".png or .svg"));
    snprintf(path, sizeof path, "%s/x.png", h_tmpdir());
    p.head = 7;
    CHECK(av_plot_render(t, &p, path, NULL, &err) != 0 && strstr(err.msg, "head 7 is out of range"));
    p.head = 0;
    p.layer = 3;
    CHECK(av_plot_render(t, &p, path, NULL, &err) != 0 && strstr(err.msg, "layer 3"));
    p.layer = 0;
    p.log_scale = 1;
    p.cmap = AV_CMAP_DIVERGING;
    CHECK(av_plot_render(t, &p, path, NULL, &err) != 0 && strstr(err.msg, "diverging"));
    CHECK(access(path, F_OK) != 0); /* nothing written on failure */
    snprintf(path, sizeof path, "%s/no-such-dir/x.png", h_tmpdir());
    p = av_plot_default_params();
    CHECK(av_plot_render(t, &p, path, NULL, &err) != 0 && strstr(err.msg, "no-such-dir"));
    av_trace_free(t);
}

static void test_font_embedded_and_draws(void) {
    CHECKF(av_font_dejavu_sans_len > 100000, "embedded font is %zu bytes", av_font_dejavu_sans_len);
    CHECK(memcmp(av_font_dejavu_sans, "\x00\x01\x00\x00", 4) == 0); /* TrueType */
    av_font *f;
    av_err err = {{0}};
    REQUIREF(av_font_open(&f, &err) == 0, "%s", err.msg);
    double wa = av_font_width(f, "a", 20), wab = av_font_width(f, "ab", 20), w40 = av_font_width(f, "ab", 40);
    CHECKF(wa > 5 && wab > wa && fabs(w40 - 2 * wab) < 1e-9, "widths %g %g %g", wa, wab, w40);
    CHECK(av_font_width(f, "\xE2\x96\x81x", 12) >
          av_font_width(f, "x", 12));            /* U+2581 (SentencePiece) has a glyph */
    CHECK(av_font_width(f, "\xFF\xFE", 12) > 0); /* invalid UTF-8: replacement glyphs */
    av_image im;
    uint8_t white[3] = {255, 255, 255}, ink[3] = {0, 0, 0};
    REQUIRE(av_image_init(&im, 200, 200, white, &err) == 0);
    REQUIRE(av_font_draw(f, &im, "Hello", 10, 40, 20, 0, 0, ink, &err) == 0);
    REQUIRE(av_font_draw(f, &im, "Up", 150, 190, 20, 90, 0, ink, &err) == 0);
    int horiz = 0, vert = 0, outside = 0;
    for (int y = 0; y < 200; y++)
        for (int x = 0; x < 200; x++) {
            int dark = im.px[(y * 200 + x) * 3] < 128;
            if (x >= 10 && x < 10 + wab * 3 && y >= 20 && y <= 45)
                horiz += dark;
            else if (x >= 128 && x <= 158 && y >= 150 && y <= 194)
                vert += dark;
            else
                outside += dark;
        }
    CHECKF(horiz > 40 && vert > 20 && outside == 0, "dark pixels: %d text, %d rotated text, %d stray", horiz,
           vert, outside);
    av_image_free(&im);
    av_font_free(f);
}

int main(void) {
    RUN(test_png_one_head_viridis);
    RUN(test_png_mean_magma);
    RUN(test_png_max_diverging);
    RUN(test_png_exclude_first_renormalizes);
    RUN(test_png_log_scale);
    RUN(test_png_dpi_scales_image);
    RUN(test_png_grid_shared_scale);
    RUN(test_render_errors_are_clear);
    RUN(test_font_embedded_and_draws);
    return h_exit_code();
}
