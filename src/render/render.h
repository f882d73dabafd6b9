/* Internal header of the render module: colormaps and the terminal heatmap. */
#ifndef AV_RENDER_H
#define AV_RENDER_H

#include "attnviz.h"

#include <stdint.h>
#include <stdio.h>

/* ---- colormaps ---- */

/* Color of t in [0,1] (clamped; NaN -> gray). Viridis and magma are matplotlib's 256-entry tables looked up
 * exactly as matplotlib does (index floor(t * 256), t == 1 -> 255), channels rounded to 8 bits. */
void av_cmap_rgb(av_cmap cm, float t, uint8_t rgb[3]);
/* Nearest xterm-256 palette entry among the 6x6x6 cube (16..231) and the gray ramp (232..255). */
int av_rgb_to_xterm256(const uint8_t rgb[3]);

/* ---- terminal heatmap ---- */

typedef enum av_color_mode {
    AV_COLOR_AUTO = 0,
    AV_COLOR_TRUECOLOR,
    AV_COLOR_256,
    AV_COLOR_NONE
} av_color_mode;

typedef struct av_term_params {
    int width, height;   /* terminal columns/rows available; 0 = detect (ioctl TIOCGWINSZ on the FILE's fd,
                            then $COLUMNS/$LINES, then 100x40) */
    av_color_mode color; /* AUTO: $COLORTERM truecolor|24bit -> truecolor, else 256;
                            NONE: ASCII shading ramp " .:-=+*#%@" */
    av_cmap cmap;
    int log_scale; /* color by log10(value) over [log10(max)-4, log10(max)] */
    float vmin,
        vmax; /* color range; vmin==vmax -> auto: 0..max of the matrix (diverging: -a..a, a = max |v|) */
    const char *title; /* printed above, may be NULL */
} av_term_params;

av_term_params av_term_default_params(void);

/* Fills *width / *height when they are 0: ioctl TIOCGWINSZ on out's fd, then $COLUMNS / $LINES, then 100x40.
 */
void av_term_detect_size(FILE *out, int *width, int *height);

/* Pieces of terminal output shared by the heatmap and the step view (term.c). */
/* AUTO -> TRUECOLOR when $COLORTERM is truecolor or 24bit, else 256; other modes unchanged. */
av_color_mode av_term_resolve_color(av_color_mode m);
/* Foreground / background escapes (either may be NULL) in a resolved mode; nothing in NONE mode. */
void av_term_put_colors(FILE *out, av_color_mode m, const uint8_t fg[3], const uint8_t bg[3]);
/* A printable, valid UTF-8 copy of s: control characters shown escaped ("\n", "\t", "\r", "\x1b",
 * "\u0085"), invalid bytes as "\xff"; stops once it holds more than max_cps code points. malloc'd, NULL when
 * out of memory. */
char *av_term_label(const char *s, int max_cps);
/* Code points of valid UTF-8 s (its width in a terminal, for the scripts drawn here). */
int av_term_width(const char *s);
/* Writes an av_term_label string in exactly w code points: padded with spaces, or cut with an ellipsis. */
void av_term_put_field(FILE *out, const char *s, int w);

/* Draws matrix m (n_rows x n_cols, row-major; row = query, column = key) as a heatmap on out:
 * row labels on the left (truncated/padded to a fixed width, control chars and newlines shown escaped e.g.
 * "\n"), column labels written vertically (one char per line, top to bottom) under the map when each column
 * has its own character cell, otherwise a note of which key range each cell covers; a colorbar with min/max
 * values at the bottom. Uses the upper-half-block character U+2580 with foreground = upper cell row and
 * background = lower row, so one text line shows two matrix rows (the line's label then holds both rows'
 * labels, upper one first); each matrix column is 2 characters wide when it fits, else 1. When the matrix is
 * larger than the available area it is downsampled by max-pooling blocks of cells (so a single strong weight
 * stays visible; the diverging map pools by largest |value|): rows by the factor that fits the height,
 * columns by the one that fits the width. Pooled row labels show the index ranges (e.g. "12-15"), pooled
 * columns get a ruler and a key-range note, and a note line says "(downsampled 4x: max of each 4x4 block)"
 * ("(downsampled 15x42: ...)" when the factors differ). In NONE mode one text line shows one matrix row.
 * Resets colors at each line end ("\x1b[0m"). NaN cells are gray ('?' in NONE mode).
 * row_labels / col_labels may be NULL (indices are shown). p may be NULL (defaults).
 * Returns 0 or -1 with a message (n_rows/n_cols <= 0, NULL data, bad params, write error). */
int av_term_heatmap(FILE *out, const float *m, int n_rows, int n_cols, const char *const *row_labels,
                    const char *const *col_labels, const av_term_params *p, av_err *err);

/* ---- attribution and the logit lens in a terminal (term_attr.c) ---- */

typedef struct av_attr_term_params {
    av_attr_method method;
    int top; /* source tokens listed per target (default 5) */
    av_color_mode color;
    int width;  /* 0: the terminal's */
    int matrix; /* also draw the target-by-source matrix as a heatmap */
} av_attr_term_params;

av_attr_term_params av_attr_term_default_params(void);
/* The source strip colored by the attribution to the whole target, a line per target (log p, top sources),
 * and with matrix the target-by-source heatmap. */
int av_term_attr(FILE *out, const av_trace *t, const av_attr_term_params *p, av_err *err);

typedef struct av_lens_term_params {
    int pos0, pos1; /* positions [pos0, pos1); pos1 0: the last ones that fit */
    int cell;       /* characters per cell (default 9) */
    av_color_mode color;
    int width; /* 0: the terminal's */
} av_lens_term_params;

av_lens_term_params av_lens_term_default_params(void);
/* The layers x positions table of the lens's top tokens. */
int av_term_lens(FILE *out, const av_trace *t, const av_lens_term_params *p, av_err *err);
/* ---- the step view in a terminal (term_steps.c) ---- */

typedef struct av_steps_term_params {
    int by_entropy; /* color tokens by the entropy of their distribution (magma) instead of their
                       probability (viridis) */
    int n_alts;     /* alternatives per line (default 5) */
    int n_sources;  /* attended tokens per line (default 3, at most 16) */
    int kind;       /* attention shown: an av_attn_kind, or -1 (default) for the trace's own choice (cross
                       for encoder-decoders, else self) */
    int layer;      /* negative counts from the end (default -1: the last layer) */
    int head;       /* head index, AV_HEADS_MEAN (default) or AV_HEADS_MAX */
    int all;        /* a line for every token, not only the produced ones */
    av_color_mode color;
    int width; /* columns for the token strip; 0: the terminal's */
} av_steps_term_params;

av_steps_term_params av_steps_term_default_params(void);
/* Writes the step view of a trace with log-probabilities: header and notes (a trace without attention says
 * "this provider returns no attention weights"), the token strip, the legend, one line per token. */
int av_term_steps(FILE *out, const av_trace *t, const av_steps_term_params *p, av_err *err);

#endif /* AV_RENDER_H */
