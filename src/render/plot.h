/* Static figures (PNG and SVG heatmaps, the layers x heads grid), the embedded font, PNG encoding and the
 * standalone HTML viewer. Colormaps come from render.h.
 *
 * A figure is first laid out as a display list (av_fig: rectangles, lines, text, rasters) in CSS pixels
 * (96 per inch); the PNG backend rasterizes it at dpi/96 pixels per unit with FreeType, the SVG backend
 * writes it as vector shapes and selectable <text>. Both use the same font metrics (DejaVu Sans). */
#ifndef AV_PLOT_H
#define AV_PLOT_H

#include "render/render.h"

#include <stddef.h>
#include <stdint.h>

/* ---- RGB images and PNG (png.c) ---- */

typedef struct av_image {
    int w, h;
    uint8_t *px; /* (h, w, 3) */
} av_image;

int av_image_init(av_image *im, int w, int h, const uint8_t bg[3], av_err *err);
void av_image_free(av_image *im);
/* Fills the pixels whose centers lie in [x, x+w) x [y, y+h). */
void av_image_fill(av_image *im, double x, double y, double w, double h, const uint8_t rgb[3]);
/* Encodes an 8-bit RGB PNG into a malloc'd buffer; dpi > 0 adds a pHYs chunk (pixels per meter). */
int av_png_encode(const av_image *im, double dpi, uint8_t **out, size_t *n, av_err *err);

/* ---- the embedded font (font.c): DejaVu Sans, compiled in from fonts-dejavu-core at build time ---- */

extern const unsigned char av_font_dejavu_sans[];
extern const size_t av_font_dejavu_sans_len;

typedef struct av_font av_font;

int av_font_open(av_font **out, av_err *err);
void av_font_free(av_font *f);
/* Advance width of UTF-8 text at size px (pixels per em), unhinted, with kerning. */
double av_font_width(av_font *f, const char *utf8, double px);
/* Draws UTF-8 text with its baseline starting at (x, y) (pixels, y down). angle is counterclockwise in
 * degrees (90: text reads bottom to top). anchor: 0 start, 1 middle, 2 end of the text at (x, y).
 * Invalid UTF-8 bytes are drawn as U+FFFD. Returns -1 with a message when FreeType fails. */
int av_font_draw(av_font *f, av_image *im, const char *utf8, double x, double y, double px, int angle,
                 int anchor, const uint8_t rgb[3], av_err *err);

/* ---- display lists (figure.c) ---- */

typedef enum av_fig_kind { AV_FIG_RECT, AV_FIG_LINE, AV_FIG_TEXT, AV_FIG_RASTER } av_fig_kind;

typedef struct av_fig_item {
    av_fig_kind kind;
    double x, y, w, h; /* RECT/RASTER: box; LINE: from (x, y) to (x + w, y + h) */
    uint8_t rgb[3];
    double size;     /* TEXT: font size px; LINE: stroke width */
    int angle;       /* TEXT: 0 or 90 */
    int anchor;      /* TEXT: 0 start, 1 middle, 2 end */
    char *text;      /* TEXT: UTF-8, owned */
    uint8_t *raster; /* RASTER: (rh, rw, 3) cell colors, owned */
    float *values;   /* RASTER: (rh, rw) the values, owned, may be NULL (SVG adds <title> per cell) */
    int rw, rh;
} av_fig_item;

typedef struct av_fig {
    double w, h; /* CSS px */
    uint8_t bg[3];
    av_fig_item *items;
    int n, cap;
    av_font *font; /* borrowed: measures text during layout */
    char *title;   /* document title (SVG <title>) */
} av_fig;

void av_fig_free(av_fig *f);

/* ---- drawing primitives (fig_draw.c): coordinates in CSS px ---- */

extern const uint8_t av_fig_ink[3], av_fig_muted[3], av_fig_white[3];

/* A color scale: linear over [vmin, vmax], or log10 over [log10(vmax) - 4, log10(vmax)]. */
typedef struct av_fig_scale {
    av_cmap cmap;
    int log;
    float vmin, vmax;
} av_fig_scale;

/* Position of v on the scale (not clamped; NaN stays NaN). */
float av_fig_scale_t(const av_fig_scale *sc, float v);
/* A new zeroed item of kind at the end of the list; NULL with a message when out of memory. */
av_fig_item *av_fig_add(av_fig *f, av_fig_kind kind, av_err *err);
/* Text with its baseline at (x, y); angle 0 or 90; anchor 0 start, 1 middle, 2 end. */
int av_fig_text(av_fig *f, const char *s, double x, double y, double size, int angle, int anchor,
                const uint8_t rgb[3], av_err *err);
/* A filled rectangle with its top-left corner at (x, y). */
int av_fig_rect(av_fig *f, double x, double y, double w, double h, const uint8_t rgb[3], av_err *err);
int av_fig_line(av_fig *f, double x, double y, double dx, double dy, double width, const uint8_t rgb[3],
                av_err *err);
/* Label cut to max code points with an ellipsis; malloc'd. */
char *av_fig_cut_label(const char *s, int max);
/* The matrix m (nr, nc) as a raster in box (x, y, w, h), max-pooled to the output's pixels (out_scale output
 * px per CSS px); takes m (kept for SVG tooltips with keep_values). */
int av_fig_matrix(av_fig *f, float *m, int nr, int nc, double x, double y, double w, double h,
                  double out_scale, const av_fig_scale *sc, int keep_values, av_err *err);
/* A vertical colorbar at (x, y) of height h with ticks on its right; returns its width, or -1. */
double av_fig_colorbar(av_fig *f, double x, double y, double h, const av_fig_scale *sc, av_err *err);

/* ---- heatmaps of a trace (figure.c, layout.c); av_plot_params, av_plot_build and av_plot_render are public
 * (attnviz.h) ---- */

enum { AV_HEAD_MEAN = -1, AV_HEAD_MAX = -2 };

/* The matrix one figure shows: head / mean / max of one layer, after --exclude-first.
 * *out (n_rows, n_cols) malloc'd; row_first / col_first: index of the first shown query / key token. */
int av_plot_matrix(const av_trace *t, av_attn_kind kind, int layer, int head, int exclude_first, float **out,
                   int *n_rows, int *n_cols, av_err *err);
/* Query and key labels of kind (the metadata list av_attn_kind_labels_key names, else the trace tokens);
 * falls back to indices when metadata lacks them or counts differ. Returns malloc'd arrays of malloc'd
 * strings (free with av_plot_labels_free). */
int av_plot_labels(const av_trace *t, av_attn_kind kind, int n_query, int n_key, char ***q_labels,
                   char ***k_labels, av_err *err);
void av_plot_labels_free(char **labels, int n);

/* Lays out the figure (heatmap or grid) of trace t into fig. */
int av_plot_layout(const av_trace *t, const av_plot_params *p, av_font *font, av_fig *fig, av_plot_geom *geom,
                   av_err *err);
/* Rasterizes fig at scale (output px per CSS px) into a fresh image. */
int av_fig_to_image(const av_fig *fig, double scale, av_image *im, av_err *err);
/* Writes fig as SVG (UTF-8 text) into a malloc'd buffer. */
int av_fig_to_svg(const av_fig *fig, char **out, size_t *n, av_err *err);

/* Checks an output name (.png or .svg; *png says which) and the PNG resolution. */
int av_fig_check_output(const char *path, double dpi, int *png, av_err *err);
/* Writes fig to path atomically: PNG at dpi (fig's CSS px scaled by dpi / 96) or SVG, by the extension;
 * *width, *height receive the image size. */
int av_fig_write(const av_fig *fig, double dpi, const char *path, int *width, int *height, av_err *err);

/* Encodes fig as PNG at dpi (its CSS px scaled by dpi / 96) or SVG into a malloc'd buffer (*out, *n);
 * *width, *height receive the image size. */
int av_fig_encode(const av_fig *fig, av_plot_format fmt, double dpi, uint8_t **out, size_t *n, int *width,
                  int *height, av_err *err);
/* ---- attribution and logit-lens figures (fig_attr.c; docs/ATTRIBUTION.md) ---- */

typedef struct av_attr_plot_params {
    av_attr_method method;
    double dpi;          /* PNG resolution (default 150) */
    const char *title;   /* NULL: model, method and baseline */
    int max_label_chars; /* default 16 */
} av_attr_plot_params;

av_attr_plot_params av_attr_plot_default_params(void);
/* The token strip (attribution to the whole target) and the target-by-source matrix of one method. */
int av_attr_layout(const av_trace *t, const av_attr_plot_params *p, av_font *font, av_fig *fig, av_err *err);
/* .png or .svg by the extension, written atomically; *w, *h: the image size. */
int av_attr_render(const av_trace *t, const av_attr_plot_params *p, const char *path, int *w, int *h,
                   av_err *err);

typedef struct av_lens_plot_params {
    int pos0, pos1;      /* positions shown [pos0, pos1); pos1 0: to the end (the last 256 when longer) */
    double dpi;          /* default 150 */
    const char *title;   /* NULL: the model */
    int max_label_chars; /* token text per cell (default 10) */
    av_cmap cmap;        /* probability colors (default viridis) */
} av_lens_plot_params;

av_lens_plot_params av_lens_plot_default_params(void);
/* The layers x positions grid of the most probable tokens, colored by probability. */
int av_lens_layout(const av_trace *t, const av_lens_plot_params *p, av_font *font, av_fig *fig, av_err *err);
int av_lens_render(const av_trace *t, const av_lens_plot_params *p, const char *path, int *w, int *h,
                   av_err *err);
/* ---- the step figure (fig_steps.c) ---- */

typedef struct av_steps_plot_params {
    int by_entropy; /* color tokens by entropy (magma) instead of probability (viridis) */
    int kind;   /* attention of the matrix: an av_attn_kind, or -1 for the trace's choice (cross, else self,
                   else dec) */
    int layer;  /* negative counts from the end (default -1) */
    int head;   /* head index, AV_HEAD_MEAN (default) or AV_HEAD_MAX */
    double dpi; /* PNG resolution (default 150) */
    const char *title; /* NULL: the model and the produced token count */
} av_steps_plot_params;

av_steps_plot_params av_steps_plot_default_params(void);
/* Lays out the step figure of a trace with log-probabilities into fig: header and notes, the token strip
 * colored by probability or entropy with its key, and the target-by-source matrix (row "t token" = attention
 * while producing token t), or "this provider returns no attention weights". */
int av_steps_layout(const av_trace *t, const av_steps_plot_params *p, av_font *font, av_fig *fig,
                    av_err *err);
/* The step figure as .png or .svg (by extension), written atomically; *width, *height: the image size. */
int av_steps_render(const av_trace *t, const av_steps_plot_params *p, const char *path, int *width,
                    int *height, av_err *err);

/* The standalone HTML viewer (html.c) is public: av_html_params, av_html_build, av_html_write in attnviz.h.
 */

#endif /* AV_PLOT_H */
