/* Figures of a trace: the display list, the matrix a figure shows (head / mean / max, first token excluded),
 * axis labels from the trace metadata, and av_plot_render (PNG or SVG by file extension). */
#include "render/plot.h"

#include "core/core.h"
#include "trace/trace.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

av_plot_params av_plot_default_params(void) {
    av_plot_params p;
    memset(&p, 0, sizeof p);
    p.kind = AV_ATTN_SELF;
    p.cmap = AV_CMAP_VIRIDIS;
    p.dpi = 150;
    p.max_label_chars = 16;
    return p;
}

void av_fig_free(av_fig *f) {
    for (int i = 0; i < f->n; i++) {
        free(f->items[i].text);
        free(f->items[i].raster);
        free(f->items[i].values);
    }
    free(f->items);
    free(f->title);
    memset(f, 0, sizeof *f);
}

/* ---- the matrix ---- */

int av_plot_matrix(const av_trace *t, av_attn_kind kind, int layer, int head, int exclude_first, float **out,
                   int *n_rows, int *n_cols, av_err *err) {
    *out = NULL;
    av_attn_view v;
    if (layer < 0) return av_errf(err, "layer %d is out of range", layer);
    if (av_trace_attn(t, kind, layer, &v, err)) return -1;
    if (head >= v.n_heads || head < AV_HEAD_MAX)
        return av_errf(err, "head %d is out of range: layer %d has heads 0..%d", head, layer, v.n_heads - 1);
    int off = exclude_first ? 1 : 0;
    int nr = v.n_query - off, nc = v.n_key - off;
    if (nr <= 0 || nc <= 0)
        return av_errf(err, "cannot exclude the first token: layer %d has only %d x %d tokens", layer,
                       v.n_query, v.n_key);
    size_t n = (size_t)nr * (size_t)nc;
    float *m = calloc(n, sizeof *m);
    if (!m) return av_errf(err, "out of memory for a %d x %d matrix", nr, nc);
    int h0 = head >= 0 ? head : 0, h1 = head >= 0 ? head + 1 : v.n_heads;
    for (int h = h0; h < h1; h++) {
        for (int q = 0; q < nr; q++) {
            const float *row =
                v.data + ((size_t)h * (size_t)v.n_query + (size_t)(q + off)) * (size_t)v.n_key + off;
            double s = 1;
            if (exclude_first) {
                s = 0;
                for (int k = 0; k < nc; k++)
                    s += row[k];
                if (!(s > 0)) s = 1; /* a row that only attended to the first token stays all zero */
            }
            float *dst = m + (size_t)q * (size_t)nc;
            for (int k = 0; k < nc; k++) {
                float x = (float)(row[k] / s);
                if (head == AV_HEAD_MAX)
                    dst[k] = h == h0 ? x : fmaxf(dst[k], x);
                else
                    dst[k] += x;
            }
        }
    }
    if (head == AV_HEAD_MEAN)
        for (size_t i = 0; i < n; i++)
            m[i] /= (float)v.n_heads;
    *out = m;
    *n_rows = nr;
    *n_cols = nc;
    return 0;
}

/* ---- labels ---- */

/* Display form of a token: control characters escaped ("\n", "\t", "\x01"), invalid UTF-8 -> U+FFFD. */
static char *sanitize_label(const char *s) {
    size_t n = strlen(s);
    char *o = malloc(n * 4 + 1), *p = o;
    if (!o) return NULL;
    const unsigned char *u = (const unsigned char *)s;
    while (*u) {
        unsigned c = *u;
        if (c < 0x20 || c == 0x7f) {
            const char *esc = c == '\n' ? "\\n" : c == '\t' ? "\\t" : c == '\r' ? "\\r" : NULL;
            if (esc) {
                memcpy(p, esc, 2);
                p += 2;
            } else {
                p += sprintf(p, "\\x%02x", c);
            }
            u++;
            continue;
        }
        uint32_t cp;
        int len = av_utf8_decode((const char *)u, (size_t)((const unsigned char *)s + n - u), &cp);
        if (!len) {
            memcpy(p, AV_UTF8_REPLACEMENT, 3);
            p += 3;
            u++;
            continue;
        }
        memcpy(p, u, (size_t)len);
        p += len;
        u += len;
    }
    *p = 0;
    return o;
}

void av_plot_labels_free(char **labels, int n) {
    if (!labels) return;
    for (int i = 0; i < n; i++)
        free(labels[i]);
    free(labels);
}

/* Labels from a metadata JSON array of n strings, or from the trace tokens, or indices. */
static char **make_labels(const av_trace *t, const char *meta_key, int n) {
    char **out = calloc((size_t)n, sizeof *out);
    if (!out) return NULL;
    json_t *arr = NULL;
    const char *js = meta_key ? av_trace_meta(t, meta_key) : NULL;
    if (js) {
        arr = json_loads(js, 0, NULL);
        if (!json_is_array(arr) || json_array_size(arr) != (size_t)n) {
            json_decref(arr);
            arr = NULL;
        }
    }
    int use_tokens = av_trace_n_tokens(t) == n; /* without (a fitting) meta_key list: the trace tokens */
    for (int i = 0; i < n; i++) {
        json_t *s = arr ? json_array_get(arr, (size_t)i) : NULL;
        const char *src = s && json_is_string(s) ? json_string_value(s)
                          : use_tokens           ? av_trace_token(t, i)
                                                 : NULL;
        char idx[24];
        if (!src) {
            snprintf(idx, sizeof idx, "%d", i);
            src = idx;
        }
        out[i] = sanitize_label(src);
        if (!out[i]) {
            json_decref(arr);
            av_plot_labels_free(out, n);
            return NULL;
        }
    }
    json_decref(arr);
    return out;
}

int av_plot_labels(const av_trace *t, av_attn_kind kind, int n_query, int n_key, char ***q_labels,
                   char ***k_labels, av_err *err) {
    *q_labels = make_labels(t, av_attn_kind_labels_key(kind, 0), n_query);
    *k_labels = make_labels(t, av_attn_kind_labels_key(kind, 1), n_key);
    if (!*q_labels || !*k_labels) {
        av_plot_labels_free(*q_labels, n_query);
        av_plot_labels_free(*k_labels, n_key);
        *q_labels = *k_labels = NULL;
        return av_errf(err, "out of memory");
    }
    return 0;
}

/* ---- output ---- */

int av_fig_encode(const av_fig *fig, av_plot_format fmt, double dpi, uint8_t **out, size_t *n, int *width,
                  int *height, av_err *err) {
    *out = NULL;
    *n = 0;
    if (fmt == AV_PLOT_SVG) {
        *width = (int)ceil(fig->w);
        *height = (int)ceil(fig->h);
        return av_fig_to_svg(fig, (char **)out, n, err);
    }
    av_image im;
    if (av_fig_to_image(fig, dpi / 96.0, &im, err)) return -1;
    int rc = av_png_encode(&im, dpi, out, n, err);
    *width = im.w;
    *height = im.h;
    av_image_free(&im);
    return rc;
}

int av_fig_check_output(const char *path, double dpi, int *png, av_err *err) {
    const char *ext = av_path_extension(path);
    *png = strcasecmp(ext, ".png") == 0;
    if (!*png && strcasecmp(ext, ".svg") != 0)
        return av_errf(err, "%s: the output name must end in .png or .svg", path);
    if (*png && !(dpi >= 10 && dpi <= 2400)) return av_errf(err, "dpi %g is out of range (10..2400)", dpi);
    return 0;
}

int av_fig_write(const av_fig *fig, double dpi, const char *path, int *width, int *height, av_err *err) {
    int png;
    uint8_t *data;
    size_t n;
    if (av_fig_check_output(path, dpi, &png, err) ||
        av_fig_encode(fig, png ? AV_PLOT_PNG : AV_PLOT_SVG, dpi, &data, &n, width, height, err))
        return -1;
    int rc = av_file_write_atomic(path, data, n, err);
    free(data);
    return rc;
}

/* Geometry of the PNG raster at s output px per CSS px. */
static void scale_geom(av_plot_geom *g, double s) {
    g->x0 *= s;
    g->y0 *= s;
    g->cell_w *= s;
    g->cell_h *= s;
    g->pitch_x *= s;
    g->pitch_y *= s;
}

int av_plot_build(const av_trace *t, const av_plot_params *p, av_plot_format fmt, uint8_t **out, size_t *n,
                  av_plot_geom *geom, av_err *err) {
    *out = NULL;
    *n = 0;
    if (fmt != AV_PLOT_PNG && fmt != AV_PLOT_SVG) return av_errf(err, "unknown figure format %d", (int)fmt);
    if (fmt == AV_PLOT_PNG && !(p->dpi >= 10 && p->dpi <= 2400))
        return av_errf(err, "dpi %g is out of range (10..2400)", p->dpi);
    av_font *font;
    if (av_font_open(&font, err)) return -1;
    av_fig fig;
    av_plot_params q = *p;
    if (fmt == AV_PLOT_SVG)
        q.dpi = 96; /* vector output: big matrices pooled to one sample per CSS px (exact at 100% zoom) */
    av_plot_geom g;
    int rc = av_plot_layout(t, &q, font, &fig, &g, err);
    if (!rc) rc = av_fig_encode(&fig, fmt, p->dpi, out, n, &g.width, &g.height, err);
    if (!rc && fmt == AV_PLOT_PNG) scale_geom(&g, p->dpi / 96.0);
    if (!rc && geom) *geom = g;
    av_fig_free(&fig);
    av_font_free(font);
    return rc;
}

int av_plot_render(const av_trace *t, const av_plot_params *p, const char *path, av_plot_geom *geom,
                   av_err *err) {
    const char *ext = av_path_extension(path);
    int png = strcasecmp(ext, ".png") == 0, svg = strcasecmp(ext, ".svg") == 0;
    if (!png && !svg) return av_errf(err, "%s: the output name must end in .png or .svg", path);
    uint8_t *data;
    size_t n;
    if (av_plot_build(t, p, png ? AV_PLOT_PNG : AV_PLOT_SVG, &data, &n, geom, err)) return -1;
    int rc = av_file_write_atomic(path, data, n, err);
    free(data);
    return rc;
}
