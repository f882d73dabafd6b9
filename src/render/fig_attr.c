/* Static figures of attribution and the logit lens (docs/ATTRIBUTION.md), laid out as display lists:
 *   attribution: the source as a strip of tokens colored by their attribution to the whole target (the sum
 *     over target tokens), then the target-by-source matrix (a row per target token, with its log p), each
 *     with its own color scale (blue-white-red around 0; viridis from 0 for saliency, a norm);
 *   logit lens: a grid of layers (the output at the top, the embeddings at the bottom) by positions, each
 *     cell the most probable token at that depth colored by its probability, the input tokens under the
 *     grid and the tokens that actually come next above it; a cell whose top token is the next one is
 *     framed. */
#include "render/plot.h"

#include "core/core.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const double k_margin = 14, k_title = 15, k_font = 10;

av_attr_plot_params av_attr_plot_default_params(void) {
    av_attr_plot_params p = {AV_ATTR_OCCLUSION, 150, NULL, 16};
    return p;
}

av_lens_plot_params av_lens_plot_default_params(void) {
    av_lens_plot_params p = {0, 0, 150, NULL, 10, AV_CMAP_VIRIDIS};
    return p;
}

/* A box filled with the scale's color of v and the label centered in it, in black or white (whichever reads
 * better on the fill); frame: a 1.5 px ink outline. */
static int fig_cell(av_fig *f, const char *label, double x, double y, double w, double h,
                    const av_fig_scale *sc, float v, int frame, av_err *err) {
    uint8_t fill[3];
    av_cmap_rgb(sc->cmap, av_fig_scale_t(sc, v), fill);
    double lum = 0.299 * fill[0] + 0.587 * fill[1] + 0.114 * fill[2];
    if (av_fig_rect(f, x, y, w, h, fill, err) ||
        av_fig_text(f, label, x + w / 2, y + h / 2 + k_font * 0.36, k_font, 0, 1,
                    lum > 140 ? av_fig_ink : av_fig_white, err))
        return -1;
    if (!frame) return 0;
    return av_fig_line(f, x, y, w, 0, 1.5, av_fig_ink, err) ||
                   av_fig_line(f, x, y + h, w, 0, 1.5, av_fig_ink, err) ||
                   av_fig_line(f, x, y, 0, h, 1.5, av_fig_ink, err) ||
                   av_fig_line(f, x + w, y, 0, h, 1.5, av_fig_ink, err)
               ? -1
               : 0;
}

/* The display labels of the trace's n tokens, cut to max code points (free with av_plot_labels_free). */
static char **cut_labels(const av_trace *t, int n, int max, av_err *err) {
    char **ql, **kl;
    if (av_plot_labels(t, AV_ATTN_SELF, n, n, &ql, &kl, err)) return NULL;
    for (int i = 0; i < n; i++) {
        char *c = av_fig_cut_label(ql[i], max);
        free(ql[i]);
        ql[i] = c ? c : av_strdup("?");
    }
    av_plot_labels_free(kl, n);
    return ql;
}

/* A symmetric diverging scale around 0 over m (n), or viridis from 0 for unsigned values. */
static av_fig_scale value_scale(const float *m, size_t n, int is_signed) {
    float a = 0;
    for (size_t i = 0; i < n; i++)
        a = fmaxf(a, fabsf(m[i]));
    if (!(a > 0)) a = 1;
    return is_signed ? (av_fig_scale){AV_CMAP_DIVERGING, 0, -a, a} : (av_fig_scale){AV_CMAP_VIRIDIS, 0, 0, a};
}

/* ---- attribution ---- */

/* Source tokens as cells flowing left to right from (x0, *y), wrapped at width w; *y moves below them and
 * *right to the farthest cell edge. */
static int strip(av_fig *f, char **labels, const float *v, int n, double x0, double *y, double w,
                 const av_fig_scale *sc, double *right, av_err *err) {
    const double h = 20, gap = 3;
    double x = x0;
    for (int j = 0; j < n; j++) {
        double cw = av_font_width(f->font, labels[j], k_font) + 10;
        if (x > x0 && x + cw > x0 + w) x = x0, *y += h + gap;
        if (fig_cell(f, labels[j], x, *y, cw, h, sc, v[j], 0, err)) return -1;
        *right = fmax(*right, x + cw);
        x += cw + gap;
    }
    *y += h;
    return 0;
}

typedef struct attr_fig {
    av_attr_view v;
    char **labels; /* (n_tokens) */
    char **rows;   /* (n_target) "token  log p" */
    float *sum;    /* (source_len) sum over targets */
    int n_tokens;
} attr_fig;

static void attr_fig_free(attr_fig *a) {
    av_plot_labels_free(a->labels, a->n_tokens);
    av_plot_labels_free(a->rows, a->v.n_target);
    free(a->sum);
}

static int attr_fig_load(const av_trace *t, const av_attr_plot_params *p, attr_fig *a, av_err *err) {
    memset(a, 0, sizeof *a);
    if (av_trace_attribution(t, p->method, &a->v, err)) return -1;
    a->n_tokens = av_trace_n_tokens(t);
    a->labels = cut_labels(t, a->n_tokens, p->max_label_chars, err);
    a->rows = calloc((size_t)a->v.n_target, sizeof *a->rows);
    a->sum = calloc((size_t)a->v.source_len, sizeof *a->sum);
    if (!a->labels || !a->rows || !a->sum) return av_errf(err, "out of memory");
    json_t *tl = av_trace_meta(t, "attr.target_labels")
                     ? json_loads(av_trace_meta(t, "attr.target_labels"), 0, NULL)
                     : NULL;
    for (int i = 0; i < a->v.n_target; i++) {
        char buf[160], *cut = av_fig_cut_label(json_string_value(json_array_get(tl, (size_t)i))
                                                   ? json_string_value(json_array_get(tl, (size_t)i))
                                                   : "?",
                                               p->max_label_chars);
        snprintf(buf, sizeof buf, "%s  %.2f", cut ? cut : "?", a->v.target_logprobs[i]);
        free(cut);
        if (!(a->rows[i] = av_strdup(buf))) return json_decref(tl), av_errf(err, "out of memory");
        for (int j = 0; j < a->v.source_len; j++)
            a->sum[j] += a->v.scores[(size_t)i * (size_t)a->v.source_len + (size_t)j];
    }
    json_decref(tl);
    return 0;
}

static char *attr_title(const av_trace *t, const av_attr_plot_params *p) {
    char buf[320];
    const char *model = av_trace_meta(t, "model");
    if (p->title) return av_strdup(p->title);
    snprintf(buf, sizeof buf, "%s · %s attribution · baseline token %s", model ? model : "trace",
             av_attr_method_name(p->method),
             av_trace_meta(t, "attr.baseline_id") ? av_trace_meta(t, "attr.baseline_id") : "?");
    return av_strdup(buf);
}

/* The target-by-source matrix at (x, y): row labels on the left, rotated source labels under it, colorbar. */
static int attr_matrix(av_fig *f, const attr_fig *a, int is_signed, double x, double y, double out_scale,
                       double *right, double *bottom, av_err *err) {
    int N = a->v.n_target, S = a->v.source_len;
    double cell = fmax(8, fmin(24, 640.0 / S)), row_w = 0, col_h = 0;
    for (int i = 0; i < N; i++)
        row_w = fmax(row_w, av_font_width(f->font, a->rows[i], k_font));
    for (int j = 0; j < S; j++)
        col_h = fmax(col_h, av_font_width(f->font, a->labels[j], k_font));
    double x0 = x + row_w + 6;
    int stride = (int)ceil(k_font * 1.2 / cell - 1e-9);
    for (int i = 0; i < N; i += stride)
        if (av_fig_text(f, a->rows[i], x0 - 5, y + cell * (i + 0.5) + k_font * 0.36, k_font, 0, 2, av_fig_ink,
                        err))
            return -1;
    for (int j = 0; j < S; j += stride)
        if (av_fig_text(f, a->labels[j], x0 + cell * (j + 0.5) + k_font * 0.36, y + cell * N + 5, k_font, 90,
                        2, av_fig_ink, err))
            return -1;
    float *m = malloc(sizeof(float) * (size_t)N * (size_t)S);
    if (!m) return av_errf(err, "out of memory");
    memcpy(m, a->v.scores, sizeof(float) * (size_t)N * (size_t)S);
    av_fig_scale sc = value_scale(m, (size_t)N * (size_t)S, is_signed);
    if (av_fig_matrix(f, m, N, S, x0, y, cell * S, cell * N, out_scale, &sc, N * S <= 4096, err)) return -1;
    double cb = av_fig_colorbar(f, x0 + cell * S + 18, y, fmax(cell * N, 80), &sc, err);
    if (cb < 0) return -1;
    *right = x0 + cell * S + 18 + cb;
    *bottom = fmax(y + cell * N + 5 + col_h, y + fmax(cell * N, 80));
    return 0;
}

int av_attr_layout(const av_trace *t, const av_attr_plot_params *p, av_font *font, av_fig *fig, av_err *err) {
    attr_fig a;
    fig->font = font;
    int rc = attr_fig_load(t, p, &a, err), S = a.v.source_len, is_signed = p->method != AV_ATTR_SALIENCY;
    char *title = rc ? NULL : attr_title(t, p);
    if (!rc && !title) rc = av_errf(err, "out of memory");
    double y = k_margin + k_title, right = 0, bottom = 0, strip_right = 0, w = 900;
    if (!rc) {
        fig->title = av_strdup(title);
        av_fig_scale sc = value_scale(a.sum, (size_t)S, is_signed);
        char note[160];
        snprintf(note, sizeof note, "to the whole target (sum over %d token%s); color scale %s%.3g",
                 a.v.n_target, a.v.n_target == 1 ? "" : "s", is_signed ? "±" : "0 to ", sc.vmax);
        rc = av_fig_text(fig, title, k_margin, y, k_title, 0, 0, av_fig_ink, err) ||
             av_fig_text(fig, note, k_margin, y += 20, k_font, 0, 0, av_fig_muted, err);
        y += 8;
        if (!rc) rc = strip(fig, a.labels, a.sum, S, k_margin, &y, w, &sc, &strip_right, err);
        if (!rc)
            rc = av_fig_text(fig, "per target token (rows) and source token (columns)", k_margin, y += 26,
                             k_font, 0, 0, av_fig_muted, err);
        if (!rc) rc = attr_matrix(fig, &a, is_signed, k_margin, y + 10, p->dpi / 96.0, &right, &bottom, err);
    }
    fig->w =
        fmax(fmax(right, w) + k_margin, k_margin * 2 + (title ? av_font_width(font, title, k_title) : 0));
    fig->h = bottom + k_margin;
    free(title);
    attr_fig_free(&a);
    return rc ? -1 : 0;
}

/* ---- logit lens ---- */

static char *lens_title(const av_trace *t, const av_lens_plot_params *p) {
    char buf[320];
    const char *model = av_trace_meta(t, "model");
    if (p->title) return av_strdup(p->title);
    snprintf(buf, sizeof buf, "%s · logit lens · most probable token per layer and position",
             model ? model : "trace");
    return av_strdup(buf);
}

/* Label of vocabulary id from the trace's lens.labels object ({"id": label}), cut to max code points. */
static char *vocab_label(const json_t *labels, int id, int max) {
    char key[16], buf[24];
    snprintf(key, sizeof key, "%d", id);
    const char *l = json_string_value(json_object_get(labels, key));
    if (!l) snprintf(buf, sizeof buf, "#%d", id), l = buf;
    return av_fig_cut_label(l, max);
}

/* The cells of the grid: rows top (output) to bottom (embeddings), positions q0..q1 left to right. */
static int lens_cells(av_fig *f, const av_lens_view *v, const json_t *labels, const av_lens_plot_params *p,
                      int q0, int q1, double x0, double y0, double cw, double ch, av_err *err) {
    av_fig_scale sc = {p->cmap, 0, 0, 1};
    for (int e = 0; e < v->n_entries; e++)
        for (int q = q0; q < q1; q++) {
            size_t at = ((size_t)e * (size_t)v->n_tokens + (size_t)q) * (size_t)v->k;
            char *cut = vocab_label(labels, v->topk_ids[at], p->max_label_chars);
            int rc =
                cut ? fig_cell(f, cut, x0 + cw * (q - q0), y0 + ch * (v->n_entries - 1 - e), cw - 1, ch - 1,
                               &sc, expf(v->topk_logprobs[at]), v->topk_ids[at] == v->target_ids[q], err)
                    : av_errf(err, "out of memory");
            free(cut);
            if (rc) return -1;
        }
    return 0;
}

/* Row labels (layers), the input tokens under the grid and the next tokens above it. */
static int lens_axes(av_fig *f, const av_lens_view *v, const json_t *labels, char **inputs,
                     const av_lens_plot_params *p, int q0, int q1, double x0, double y0, double cw, double ch,
                     av_err *err) {
    for (int e = 0; e < v->n_entries; e++) {
        char name[32];
        snprintf(name, sizeof name, e == 0 ? "embeddings" : "layer %d", e);
        if (av_fig_text(f, name, x0 - 6, y0 + ch * (v->n_entries - 1 - e) + ch / 2 + k_font * 0.36, k_font, 0,
                        2, av_fig_ink, err))
            return -1;
    }
    double below = y0 + ch * v->n_entries + 5;
    for (int q = q0; q < q1; q++) {
        double cx = x0 + cw * (q - q0 + 0.5);
        char *next =
            v->target_ids[q] >= 0 ? vocab_label(labels, v->target_ids[q], p->max_label_chars) : av_strdup("");
        int rc = !next ||
                 av_fig_text(f, inputs[q], cx + k_font * 0.36, below, k_font, 90, 2, av_fig_ink, err) ||
                 av_fig_text(f, next, cx, y0 - 6, k_font, 0, 1, av_fig_muted, err);
        free(next);
        if (rc) return -1;
    }
    return 0;
}

int av_lens_layout(const av_trace *t, const av_lens_plot_params *p, av_font *font, av_fig *fig, av_err *err) {
    av_lens_view v;
    fig->font = font;
    if (av_trace_lens(t, &v, err)) return -1;
    int q0 = p->pos0, q1 = p->pos1 > 0 ? p->pos1 : v.n_tokens;
    if (p->pos1 <= 0 && q1 - q0 > 256) q0 = q1 - 256; /* long inputs: the last 256 positions */
    if (q0 < 0 || q1 > v.n_tokens || q0 >= q1)
        return av_errf(err, "positions %d..%d are outside the trace's 0..%d", q0, q1 - 1, v.n_tokens - 1);
    json_t *labels =
        av_trace_meta(t, "lens.labels") ? json_loads(av_trace_meta(t, "lens.labels"), 0, NULL) : NULL;
    char **inputs = cut_labels(t, v.n_tokens, p->max_label_chars, err), *title = lens_title(t, p);
    double cw = 8 + k_font * 0.62 * p->max_label_chars, ch = 18,
           row_w = av_font_width(font, "embeddings", k_font);
    double x0 = k_margin + row_w + 8, y0 = k_margin + k_title + 12 + 26, in_h = 0;
    int rc = inputs && title ? 0 : av_errf(err, "out of memory");
    for (int q = q0; rc == 0 && q < q1; q++)
        in_h = fmax(in_h, av_font_width(font, inputs[q], k_font));
    char note[200];
    snprintf(note, sizeof note,
             "cell: the most probable next token after decoding that layer's residual stream with "
             "the final norm and the head; color: its probability; framed: it is the actual next "
             "token (shown above)");
    if (rc == 0)
        rc = av_fig_text(fig, title, k_margin, k_margin + k_title, k_title, 0, 0, av_fig_ink, err) ||
             av_fig_text(fig, note, k_margin, k_margin + k_title + 18, k_font * 0.9, 0, 0, av_fig_muted,
                         err) ||
             lens_cells(fig, &v, labels, p, q0, q1, x0, y0, cw, ch, err) ||
             lens_axes(fig, &v, labels, inputs, p, q0, q1, x0, y0, cw, ch, err);
    av_fig_scale sc = {p->cmap, 0, 0, 1};
    double cb =
        rc ? -1 : av_fig_colorbar(fig, x0 + cw * (q1 - q0) + 16, y0, fmax(ch * v.n_entries, 80), &sc, err);
    if (rc == 0 && cb < 0) rc = -1;
    if (rc == 0) fig->title = av_strdup(title);
    fig->w = fmax(x0 + cw * (q1 - q0) + 16 + cb, av_font_width(font, note, k_font * 0.9)) + k_margin;
    fig->h = fmax(y0 + ch * v.n_entries + 5 + in_h, y0 + 80) + k_margin;
    json_decref(labels);
    av_plot_labels_free(inputs, v.n_tokens);
    free(title);
    return rc;
}

/* ---- files ---- */

typedef int (*layout_fn)(const av_trace *t, const void *p, av_font *font, av_fig *fig, av_err *err);

static int render(const av_trace *t, const void *p, layout_fn layout, double dpi, const char *path, int *w,
                  int *h, av_err *err) {
    av_font *font;
    av_fig fig;
    int png;
    memset(&fig, 0, sizeof fig);
    memset(fig.bg, 255, 3);
    if (av_fig_check_output(path, dpi, &png, err) || av_font_open(&font, err)) return -1;
    int rc = layout(t, p, font, &fig, err) || av_fig_write(&fig, dpi, path, w, h, err) ? -1 : 0;
    av_fig_free(&fig);
    av_font_free(font);
    return rc;
}

static int attr_layout_fn(const av_trace *t, const void *p, av_font *font, av_fig *fig, av_err *err) {
    return av_attr_layout(t, p, font, fig, err);
}
static int lens_layout_fn(const av_trace *t, const void *p, av_font *font, av_fig *fig, av_err *err) {
    return av_lens_layout(t, p, font, fig, err);
}

int av_attr_render(const av_trace *t, const av_attr_plot_params *p, const char *path, int *w, int *h,
                   av_err *err) {
    return render(t, p, attr_layout_fn, p->dpi, path, w, h, err);
}

int av_lens_render(const av_trace *t, const av_lens_plot_params *p, const char *path, int *w, int *h,
                   av_err *err) {
    return render(t, p, lens_layout_fn, p->dpi, path, w, h, err);
}
