/* DAAM figures of text-to-image traces (fig_daam.c): PNG/SVG through the display list, and the terminal. */
#ifndef AV_RENDER_DAAM_H
#define AV_RENDER_DAAM_H

#include "render/plot.h"
#include "render/render.h"

#include <stdio.h>

typedef struct av_daam_plot_params {
    const char *word;    /* a prompt word (every token equal to it, case-insensitive, as one group), or NULL:
                            every prompt token */
    av_daam_range range; /* steps, layers, heads summed ([0, 0): all) */
    av_cmap cmap;
    double dpi;
    const char *title; /* NULL: the prompt */
} av_daam_plot_params;

/* The sentence every DAAM view shows next to the maps. */
extern const char *const av_daam_caveat;

/* rgb (size, size, 3): img (3, size, size) in [0, 1], blended 45/55 with the colormap of heat (size, size) in
 * [0, 1]; heat NULL: the image alone. */
void av_daam_overlay(const float *img, const float *heat, int size, av_cmap cmap, uint8_t *rgb);
/* The figure: the generated image, then one overlay per map, labels, the summed range and the caveat. */
int av_daam_layout(const av_trace *t, const av_daam_plot_params *p, av_font *font, av_fig *fig, av_err *err);
/* Writes the figure to path (.png or .svg); *width, *height: the image size. */
int av_daam_render(const av_trace *t, const av_daam_plot_params *p, const char *path, int *width, int *height,
                   av_err *err);
/* The image and the overlays in the terminal, half-block characters in color (NONE is drawn as 256). */
int av_daam_term(const av_trace *t, const av_daam_plot_params *p, FILE *out, av_color_mode mode, av_err *err);

#endif
