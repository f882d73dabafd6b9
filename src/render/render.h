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

#endif /* AV_RENDER_H */
