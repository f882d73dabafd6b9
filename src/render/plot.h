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
/* Writes the PNG atomically (temp file + rename). */
int av_png_write(const av_image *im, double dpi, const char *path, av_err *err);

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

/* ---- heatmaps of a trace (figure.c, layout.c) ---- */

enum { AV_HEAD_MEAN = -1, AV_HEAD_MAX = -2 };

typedef struct av_plot_params {
    av_attn_kind kind;   /* default AV_ATTN_SELF */
    int layer;           /* layer index */
    int head;            /* head index, AV_HEAD_MEAN or AV_HEAD_MAX */
    int grid;            /* all layers x heads as thumbnails */
    av_cmap cmap;        /* default viridis */
    int log_scale;       /* color by log10(value) over [log10(vmax) - 4, log10(vmax)] */
    int exclude_first;   /* drop the first token (query row and key column) and renormalize rows to sum 1 */
    double dpi;          /* PNG pixels per inch (default 150); the layout is in CSS px at 96 per inch */
    double cell;         /* cell size in CSS px; 0 = automatic */
    float vmin, vmax;    /* color range; vmin == vmax: automatic (0..max; diverging -a..a) */
    const char *title;   /* NULL: "<model> · layer L · head H" */
    int max_label_chars; /* longer token labels are cut with an ellipsis (default 16) */
    /* a heatmap of a matrix the caller computed (a window, pooled cells, a reduction over layers) instead
     * of (layer, head): matrix (n_rows, n_cols) with a label per row and column; the title is p->title */
    const float *matrix;
    int n_rows, n_cols;
    char *const *row_labels, *const *col_labels;
} av_plot_params;

av_plot_params av_plot_default_params(void);

/* Where the matrix cells landed, in output pixels (PNG) or user units (SVG), for callers and tests.
 * For a grid: the first thumbnail (layer 0, head 0), its cell size and the pitch between thumbnails. */
typedef struct av_plot_geom {
    int width, height;       /* image size */
    double x0, y0;           /* top-left of cell (0, 0) */
    double cell_w, cell_h;   /* size of one matrix cell (after any pooling: one raster cell) */
    int n_rows, n_cols;      /* raster cells shown (queries x keys after exclusion and pooling) */
    double pitch_x, pitch_y; /* grid: distance between thumbnails */
    float vmin, vmax;        /* color range used */
} av_plot_geom;

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

/* Renders the figure to path: .png (libpng, at p->dpi) or .svg, chosen by extension; atomic write.
 * geom (may be NULL) receives the cell placement in the output's pixels. */
int av_plot_render(const av_trace *t, const av_plot_params *p, const char *path, av_plot_geom *geom,
                   av_err *err);

/* ---- standalone HTML viewer (html.c) ---- */

typedef enum av_html_precision {
    AV_HTML_AUTO = 0, /* F16 when the page stays under 4 MiB, else U8 */
    AV_HTML_F16,      /* IEEE half floats: ~3 significant digits */
    AV_HTML_U8        /* 8 bits per weight with a float32 scale per row: error <= row max / 510 */
} av_html_precision;

typedef struct av_html_params {
    av_html_precision precision;
    const char *title; /* page title; NULL: the model name */
    const char *view;  /* first view: heatmap, model, head, image, summary, rollout, norm (NULL: heatmap;
                          image with patches) */
    const char
        *image_path; /* image traces: a PNG to embed as metadata image_png_base64 (NULL: the trace's) */
    int analysis;    /* embed head statistics and roles, rollout and value norms (default 1) */
    const char *roles_path; /* `attnviz roles --json` output: probe roles (incl. induction) for the grid */
    /* what the page shows first (the viewer's defaults when unset) */
    int start_kind;    /* an av_attn_kind, or -1 */
    int start_layer;   /* >= 0, or -1 */
    int start_head;    /* >= 0, AV_HEADS_MEAN / MAX / MIN, or AV_HTML_UNSET */
    int start_exclude; /* first token excluded */
    /* long traces: above max_mb (default 32) of attention the page embeds a pooled overview of every head
     * (max over cells of tokens; a lazy trace's stored overview when it has one) instead of the matrices, and
     * the query rows [rows_q0, rows_q1) of every layer exactly (the Rows view) within the same budget */
    double max_mb;
    int rows_q0, rows_q1; /* rows_q1 <= rows_q0: none */
} av_html_params;

#define AV_HTML_UNSET (-1000)

av_html_params av_html_default_params(void);
/* The viewer's views (for --view and the server's ?view=): 1 when name is one of AV_HTML_VIEWS. */
#define AV_HTML_VIEWS "heatmap, model, head, image, summary, rollout, norm, neuron, rows"
int av_html_view_valid(const char *name);
/* Builds the page into a malloc'd buffer (no network references: CSS, JS and data are inline). */
int av_html_build(const av_trace *t, const av_html_params *p, char **out, size_t *n, av_err *err);
/* Builds and writes atomically. bytes (may be NULL) receives the file size. */
int av_html_write(const av_trace *t, const av_html_params *p, const char *path, size_t *bytes, av_err *err);

#endif /* AV_PLOT_H */
