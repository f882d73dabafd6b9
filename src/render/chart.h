/* Charts beyond attention matrices (chart.c): a labelled grid of cells and a scatter plot, written as PNG.
 * Used by the corpus report (docs/CORPUS.md). */
#ifndef AV_CHART_H
#define AV_CHART_H

#include "render/plot.h"

typedef struct av_chart_grid {
    const char *title;
    int n_rows, n_cols;
    const float *values;           /* (n_rows, n_cols) colored with cmap over [vmin, vmax]; NaN: gray */
    const uint8_t *cell_rgb;       /* (n_rows, n_cols, 3) or NULL: explicit colors instead (no colorbar) */
    const char *const *cell_text;  /* (n_rows * n_cols) or NULL: short text drawn in cells large enough */
    const char *const *row_labels; /* (n_rows) or NULL */
    const char *const *col_labels; /* (n_cols) or NULL */
    const char *row_title, *col_title;
    av_cmap cmap;
    float vmin, vmax; /* equal: 0 (or the minimum when negative) .. the maximum */
    int n_legend;
    const char *const *legend_labels; /* (n_legend) */
    const uint8_t *legend_rgb;        /* (n_legend, 3) */
} av_chart_grid;

int av_chart_grid_png(const av_chart_grid *g, const char *path, double dpi, av_err *err);

typedef struct av_chart_scatter {
    const char *title, *x_title, *y_title;
    int n;
    const double *xy;   /* (n, 2); both axes share one scale */
    const uint8_t *rgb; /* (n, 3) */
    int n_legend;
    const char *const *legend_labels;
    const uint8_t *legend_rgb;
    int colorbar; /* draw a colorbar of cmap over [vmin, vmax] (points colored by a value) */
    av_cmap cmap;
    float vmin, vmax;
} av_chart_scatter;

int av_chart_scatter_png(const av_chart_scatter *s, const char *path, double dpi, av_err *err);

#endif /* AV_CHART_H */
