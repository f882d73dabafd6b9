/* Charts of numbers that are not one attention matrix: a labelled grid of cells (statistics per layer x head,
 * role grids, profiles) and a scatter plot (query/key maps), laid out as display lists and written as PNG. */
#include "render/chart.h"

#include "core/core.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t k_frame[3] = {200, 200, 200};

#define MARGIN 16.0
#define TITLE_PX 14.0
#define LABEL_PX 10.0

static int fig_start(av_fig *fig, av_font **font, double w, double h, const char *title, av_err *err) {
    memset(fig, 0, sizeof *fig);
    *font = NULL;
    if (av_font_open(font, err)) return -1;
    fig->w = w;
    fig->h = h;
    fig->bg[0] = fig->bg[1] = fig->bg[2] = 255;
    fig->font = *font;
    return title ? av_fig_text(fig, title, MARGIN, MARGIN + TITLE_PX, TITLE_PX, 0, 0, av_fig_ink, err) : 0;
}

static int fig_finish(av_fig *fig, av_font *font, double dpi, const char *path, int rc, av_err *err) {
    int w, h;
    if (!rc) rc = av_fig_write(fig, dpi, path, &w, &h, err);
    av_fig_free(fig);
    av_font_free(font);
    return rc;
}

/* Legend entries stacked at (x, y); returns -1 on failure. */
static int fig_legend(av_fig *f, double x, double y, int n, const char *const *labels, const uint8_t *rgb,
                      av_err *err) {
    for (int i = 0; i < n; i++) {
        double ly = y + i * (LABEL_PX + 6);
        if (av_fig_rect(f, x, ly, LABEL_PX, LABEL_PX, rgb + 3 * i, err) ||
            av_fig_text(f, labels[i], x + LABEL_PX + 5, ly + LABEL_PX * 0.85, LABEL_PX, 0, 0, av_fig_ink,
                        err))
            return -1;
    }
    return 0;
}

static double max_label_width(av_font *font, const char *const *labels, int n) {
    double w = 0;
    for (int i = 0; labels && i < n; i++)
        w = fmax(w, av_font_width(font, labels[i], LABEL_PX));
    return w;
}

/* ---- grid ---- */

static void value_range(const av_chart_grid *g, float *lo, float *hi) {
    *lo = g->vmin;
    *hi = g->vmax;
    if (g->vmin != g->vmax || !g->values) return;
    *lo = 0;
    *hi = 0;
    for (int i = 0; i < g->n_rows * g->n_cols; i++)
        if (!isnan(g->values[i])) *hi = fmaxf(*hi, g->values[i]), *lo = fminf(*lo, g->values[i]);
    if (!(*hi > *lo)) *hi = *lo + 1;
}

static int grid_cells(av_fig *f, const av_chart_grid *g, double x0, double y0, double cs, float lo, float hi,
                      av_err *err) {
    av_fig_item *it = av_fig_add(f, AV_FIG_RASTER, err);
    if (!it) return -1;
    it->x = x0, it->y = y0, it->w = cs * g->n_cols, it->h = cs * g->n_rows;
    it->rw = g->n_cols, it->rh = g->n_rows;
    size_t n = (size_t)g->n_rows * (size_t)g->n_cols;
    if (!(it->raster = malloc(n * 3))) return av_errf(err, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if (g->cell_rgb)
            memcpy(it->raster + 3 * i, g->cell_rgb + 3 * i, 3);
        else
            av_cmap_rgb(g->cmap, isnan(g->values[i]) ? NAN : (g->values[i] - lo) / (hi - lo),
                        it->raster + 3 * i);
    }
    double fs = cs * 0.24;
    for (size_t i = 0; g->cell_text && cs >= 24 && i < n; i++) {
        const char *t = g->cell_text[i];
        if (!t || !t[0]) continue;
        double cx = x0 + cs * ((double)(i % (size_t)g->n_cols) + 0.5),
               cy = y0 + cs * ((double)(i / (size_t)g->n_cols) + 0.5);
        const char *nl = strchr(t, '\n'); /* two lines: centered one above the other */
        char first[64];
        snprintf(first, sizeof first, "%.*s", nl ? (int)(nl - t) : (int)strlen(t), t);
        if (av_fig_text(f, first, cx, cy + fs * (nl ? -0.2 : 0.36), fs, 0, 1, av_fig_ink, err) ||
            (nl && av_fig_text(f, nl + 1, cx, cy + fs * 0.95, fs, 0, 1, av_fig_ink, err)))
            return -1;
    }
    return 0;
}

static int grid_labels(av_fig *f, const av_chart_grid *g, double x0, double y0, double cs, av_err *err) {
    int step_c = (int)ceil(LABEL_PX * 1.2 / cs),
        step_r = (int)ceil(LABEL_PX * 1.2 / cs); /* thin crowded axes */
    for (int c = 0; g->col_labels && c < g->n_cols; c += step_c)
        if (av_fig_text(f, g->col_labels[c], x0 + cs * (c + 0.5) + LABEL_PX * 0.36, y0 - 4, LABEL_PX, 90, 0,
                        av_fig_ink, err))
            return -1;
    for (int r = 0; g->row_labels && r < g->n_rows; r += step_r)
        if (av_fig_text(f, g->row_labels[r], x0 - 5, y0 + cs * (r + 0.5) + LABEL_PX * 0.36, LABEL_PX, 0, 2,
                        av_fig_ink, err))
            return -1;
    if (g->col_title && av_fig_text(f, g->col_title, x0 + cs * g->n_cols / 2, y0 + cs * g->n_rows + 16, 11, 0,
                                    1, av_fig_muted, err))
        return -1;
    if (g->row_title &&
        av_fig_text(f, g->row_title, MARGIN + 11, y0 + cs * g->n_rows / 2, 11, 90, 1, av_fig_muted, err))
        return -1;
    return 0;
}

int av_chart_grid_png(const av_chart_grid *g, const char *path, double dpi, av_err *err) {
    if (g->n_rows <= 0 || g->n_cols <= 0) return av_errf(err, "%s: empty grid", path);
    av_fig fig;
    av_font *font;
    if (fig_start(&fig, &font, 10, 10, g->title, err)) return fig_finish(&fig, font, dpi, path, -1, err);
    double cs = fmin(g->cell_text ? 48 : 40, fmax(4, 640.0 / fmax(g->n_rows, g->n_cols)));
    double row_w = max_label_width(font, g->row_labels, g->n_rows),
           col_h = max_label_width(font, g->col_labels, g->n_cols);
    double x0 = MARGIN + 22 + row_w + 6, y0 = MARGIN + TITLE_PX + 10 + col_h + 6;
    float lo, hi;
    value_range(g, &lo, &hi);
    int rc = grid_cells(&fig, g, x0, y0, cs, lo, hi, err) || grid_labels(&fig, g, x0, y0, cs, err);
    double right = x0 + cs * g->n_cols + 14, side_w = 0;
    if (!rc && g->n_legend)
        rc = fig_legend(&fig, right, y0, g->n_legend, g->legend_labels, g->legend_rgb, err);
    if (!rc && g->n_legend) side_w = LABEL_PX + 5 + max_label_width(font, g->legend_labels, g->n_legend);
    if (!rc && !g->cell_rgb) {
        av_fig_scale sc = {g->cmap, 0, lo, hi};
        side_w = av_fig_colorbar(&fig, right, y0, fmin(cs * g->n_rows, 240), &sc, err);
        rc = side_w < 0;
    }
    fig.w = right + side_w + MARGIN;
    fig.h = fmax(y0 + cs * g->n_rows + 30, y0 + g->n_legend * (LABEL_PX + 6)) + MARGIN;
    fig.w = fmax(fig.w, MARGIN * 2 + av_font_width(font, g->title ? g->title : "", TITLE_PX));
    return fig_finish(&fig, font, dpi, path, rc ? -1 : 0, err);
}

/* ---- scatter ---- */

#define PLOT_PX 520.0

static int scatter_frame(av_fig *f, const av_chart_scatter *s, double x0, double y0, av_err *err) {
    const double P = PLOT_PX;
    return av_fig_line(f, x0, y0, P, 0, 1, k_frame, err) ||
                   av_fig_line(f, x0, y0 + P, P, 0, 1, k_frame, err) ||
                   av_fig_line(f, x0, y0, 0, P, 1, k_frame, err) ||
                   av_fig_line(f, x0 + P, y0, 0, P, 1, k_frame, err) ||
                   (s->x_title &&
                    av_fig_text(f, s->x_title, x0 + P / 2, y0 + P + 16, 11, 0, 1, av_fig_muted, err)) ||
                   (s->y_title &&
                    av_fig_text(f, s->y_title, x0 - 8, y0 + P / 2, 11, 90, 1, av_fig_muted, err))
               ? -1
               : 0;
}

int av_chart_scatter_png(const av_chart_scatter *s, const char *path, double dpi, av_err *err) {
    if (s->n <= 0) return av_errf(err, "%s: no points", path);
    av_fig fig;
    av_font *font;
    if (fig_start(&fig, &font, 10, 10, s->title, err)) return fig_finish(&fig, font, dpi, path, -1, err);
    double lo[2] = {INFINITY, INFINITY}, hi[2] = {-INFINITY, -INFINITY};
    for (int i = 0; i < s->n; i++)
        for (int k = 0; k < 2; k++)
            lo[k] = fmin(lo[k], s->xy[2 * i + k]), hi[k] = fmax(hi[k], s->xy[2 * i + k]);
    double span = fmax(fmax(hi[0] - lo[0], hi[1] - lo[1]), 1e-12) * 1.04; /* equal scales on both axes */
    double x0 = MARGIN + 22, y0 = MARGIN + TITLE_PX + 12, P = PLOT_PX, dot = 3;
    int rc = scatter_frame(&fig, s, x0, y0, err);
    for (int i = 0; !rc && i < s->n; i++) {
        double px = x0 + P / 2 + (s->xy[2 * i] - (lo[0] + hi[0]) / 2) / span * P;
        double py = y0 + P / 2 - (s->xy[2 * i + 1] - (lo[1] + hi[1]) / 2) / span * P;
        rc = av_fig_rect(&fig, px - dot / 2, py - dot / 2, dot, dot, s->rgb + 3 * i, err);
    }
    double right = x0 + P + 14, side_w = 0;
    if (!rc && s->n_legend) {
        rc = fig_legend(&fig, right, y0, s->n_legend, s->legend_labels, s->legend_rgb, err);
        side_w = LABEL_PX + 5 + max_label_width(font, s->legend_labels, s->n_legend);
    }
    if (!rc && s->colorbar) {
        av_fig_scale sc = {s->cmap, 0, s->vmin, s->vmax};
        double w = av_fig_colorbar(&fig, right, y0 + s->n_legend * (LABEL_PX + 6) + 10, 200, &sc, err);
        rc = w < 0;
        side_w = fmax(side_w, w);
    }
    fig.w = right + side_w + MARGIN;
    fig.h = y0 + P + 30 + MARGIN;
    return fig_finish(&fig, font, dpi, path, rc ? -1 : 0, err);
}
