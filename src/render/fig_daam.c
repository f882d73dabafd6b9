/* DAAM figures of a text-to-image trace: the generated image beside each prompt word's heat map laid over it
 * (one word, a word group, or every prompt token as a grid), as PNG/SVG through the display list, and the
 * same overlays in the terminal with half-block characters. The caveat line says what the maps are. */
#include "render/daam.h"

#include "trace/trace.h"
#include "core/core.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *const av_daam_caveat =
    "DAAM maps show where the denoiser's cross-attention went; they are descriptive, not explanatory.";

/* The trace's DAAM data for a figure: the image, the selected maps and their labels. */
typedef struct daam_data {
    int S, size, n_maps;
    const float *img; /* (3, size, size) */
    float *maps;      /* (S, size, size) every token's map over the range */
    float *shown;     /* (n_maps, size, size): the word's map, or every token's */
    char **labels;    /* (n_maps) */
} daam_data;

static void daam_data_free(daam_data *d) {
    free(d->maps);
    if (d->shown != d->maps) free(d->shown);
    for (int i = 0; d->labels && i < d->n_maps; i++)
        free(d->labels[i]);
    free(d->labels);
}

/* The prompt tokens of the trace (its prompt_tokens metadata): a parsed JSON array of S strings. */
static json_t *prompt_tokens(const av_trace *t, int S, av_err *err) {
    const char *s = av_trace_meta(t, "prompt_tokens");
    json_t *j = s ? json_loads(s, 0, NULL) : NULL;
    if (!json_is_array(j) || json_array_size(j) != (size_t)S) {
        json_decref(j);
        av_errf(err, "the trace's prompt_tokens metadata is missing or does not match daam.raw (%d tokens)",
                S);
        return NULL;
    }
    return j;
}

/* A word group: the maps of the tokens equal to word (case-insensitive) summed and renormalized into
 * d->shown. */
static int pick_word(daam_data *d, json_t *toks, const char *word, av_err *err) {
    size_t px = (size_t)d->size * (size_t)d->size;
    float *sum = calloc(px, sizeof *sum), lo = INFINITY, hi = -INFINITY;
    int found = 0;
    if (!sum) return av_errf(err, "out of memory");
    for (int j = 0; j < d->S; j++) {
        const char *tok = json_string_value(json_array_get(toks, (size_t)j));
        if (!tok || strcasecmp(tok, word) != 0) continue;
        found++;
        for (size_t k = 0; k < px; k++)
            sum[k] += d->maps[(size_t)j * px + k];
    }
    if (!found) {
        char *list = json_dumps(toks, JSON_COMPACT);
        av_errf(err, "'%s' is not a prompt token; the prompt's tokens are %s", word, list ? list : "?");
        free(list);
        free(sum);
        return -1;
    }
    for (size_t k = 0; k < px; k++)
        lo = sum[k] < lo ? sum[k] : lo, hi = sum[k] > hi ? sum[k] : hi;
    for (size_t k = 0; k < px; k++)
        sum[k] = (sum[k] - lo) / (hi - lo + 1e-8f);
    d->shown = sum;
    d->n_maps = 1;
    d->labels = calloc(1, sizeof *d->labels);
    if (d->labels) d->labels[0] = av_strdup(word);
    return d->labels && d->labels[0] ? 0 : av_errf(err, "out of memory");
}

static int daam_data_load(const av_trace *t, const av_daam_plot_params *p, daam_data *d, av_err *err) {
    int dims[5];
    av_tensor img;
    memset(d, 0, sizeof *d);
    if (av_trace_daam_dims(t, dims, &d->size, err)) return -1;
    av_trace_tensor(t, "image", &img);
    d->S = dims[3];
    d->img = img.data;
    json_t *toks = prompt_tokens(t, d->S, err);
    if (!toks) return -1;
    int rc = -1;
    d->maps = malloc(sizeof(float) * (size_t)d->S * (size_t)d->size * (size_t)d->size);
    if (!d->maps) {
        av_errf(err, "out of memory");
    } else if (av_trace_daam(t, &p->range, d->maps, err) == 0) {
        if (p->word) {
            rc = pick_word(d, toks, p->word, err);
        } else {
            d->shown = d->maps;
            d->n_maps = d->S;
            d->labels = calloc((size_t)d->S, sizeof *d->labels);
            rc = d->labels ? 0 : av_errf(err, "out of memory");
            for (int j = 0; rc == 0 && j < d->S; j++)
                if (!(d->labels[j] = av_strdup(json_string_value(json_array_get(toks, (size_t)j)))))
                    rc = av_errf(err, "out of memory");
        }
    }
    json_decref(toks);
    return rc;
}

void av_daam_overlay(const float *img, const float *heat, int size, av_cmap cmap, uint8_t *rgb) {
    for (int y = 0; y < size; y++)
        for (int x = 0; x < size; x++) {
            size_t i = (size_t)y * (size_t)size + (size_t)x, plane = (size_t)size * (size_t)size;
            uint8_t c[3] = {0, 0, 0};
            if (heat) av_cmap_rgb(cmap, heat[i], c);
            for (int ch = 0; ch < 3; ch++) {
                float v = img[(size_t)ch * plane + i];
                v = v < 0 ? 0 : v > 1 ? 1 : v;
                double out = heat ? 0.45 * v * 255.0 + 0.55 * c[ch] : v * 255.0;
                rgb[i * 3 + (size_t)ch] = (uint8_t)lrint(out);
            }
        }
}

/* One tile: the image (heat NULL) or an overlay, as a raster item in box (x, y, side, side). */
static int add_tile(av_fig *f, const daam_data *d, const float *heat, av_cmap cmap, double x, double y,
                    double side, av_err *err) {
    av_fig_item *it = av_fig_add(f, AV_FIG_RASTER, err);
    if (!it) return -1;
    *it = (av_fig_item){
        .kind = AV_FIG_RASTER, .x = x, .y = y, .w = side, .h = side, .rw = d->size, .rh = d->size};
    it->raster = malloc((size_t)d->size * (size_t)d->size * 3);
    if (!it->raster) return av_errf(err, "out of memory");
    av_daam_overlay(d->img, heat, d->size, cmap, it->raster);
    return 0;
}

enum { TILE = 128, GAP = 12, LABEL = 18, TOP = 30, COLS = 5 };

int av_daam_layout(const av_trace *t, const av_daam_plot_params *p, av_font *font, av_fig *fig, av_err *err) {
    daam_data d;
    memset(fig, 0, sizeof *fig);
    memcpy(fig->bg, av_fig_white, 3);
    fig->font = font;
    if (daam_data_load(t, p, &d, err)) {
        daam_data_free(&d);
        return -1;
    }
    int n_tiles = 1 + d.n_maps, cols = n_tiles < COLS ? n_tiles : COLS, rows = (n_tiles + cols - 1) / cols;
    fig->w = GAP + cols * (TILE + GAP);
    if (fig->w < 560) fig->w = 560;
    fig->h = TOP + rows * (TILE + LABEL + GAP) + 2 * LABEL;
    const char *prompt = av_trace_meta(t, "prompt");
    char title[512];
    snprintf(title, sizeof title, "%s%s%s", p->title ? "" : "\"",
             p->title ? p->title
             : prompt ? prompt
                      : "",
             p->title ? "" : "\"");
    int rc = av_fig_text(fig, title, GAP, 20, 14, 0, 0, av_fig_ink, err);
    fig->title = rc ? NULL : av_strdup(title);
    for (int i = 0; rc == 0 && i < n_tiles; i++) {
        double x = GAP + (i % cols) * (TILE + GAP), y = TOP + (i / cols) * (TILE + LABEL + GAP);
        const float *heat = i ? d.shown + (size_t)(i - 1) * (size_t)d.size * (size_t)d.size : NULL;
        rc = add_tile(fig, &d, heat, p->cmap, x, y, TILE, err) ||
             av_fig_text(fig, i ? d.labels[i - 1] : "generated image", x + TILE / 2.0, y + TILE + 14, 12, 0,
                         1, i ? av_fig_ink : av_fig_muted, err);
    }
    char range[200], part[3][48];
    const int lims[3][2] = {{p->range.step0, p->range.step1},
                            {p->range.layer0, p->range.layer1},
                            {p->range.head0, p->range.head1}};
    const char *names[3] = {"steps", "layers", "heads"};
    for (int k = 0; k < 3; k++)
        if (lims[k][0] == 0 && lims[k][1] == 0)
            snprintf(part[k], sizeof part[k], "all %s", names[k]);
        else
            snprintf(part[k], sizeof part[k], "%s [%d, %d)", names[k], lims[k][0], lims[k][1]);
    snprintf(range, sizeof range, "cross-attention summed over %s, %s, %s", part[0], part[1], part[2]);
    rc = rc || av_fig_text(fig, range, GAP, fig->h - LABEL - 4, 11, 0, 0, av_fig_muted, err) ||
         av_fig_text(fig, av_daam_caveat, GAP, fig->h - 6, 11, 0, 0, av_fig_muted, err);
    daam_data_free(&d);
    return rc ? -1 : 0;
}

int av_daam_render(const av_trace *t, const av_daam_plot_params *p, const char *path, int *width, int *height,
                   av_err *err) {
    av_font *font;
    av_fig fig;
    if (av_font_open(&font, err)) return -1;
    int rc = av_daam_layout(t, p, font, &fig, err) || av_fig_write(&fig, p->dpi, path, width, height, err)
                 ? -1
                 : 0;
    av_fig_free(&fig);
    av_font_free(font);
    return rc;
}

/* One overlay in the terminal: two image rows per text row (upper half block, foreground = top pixel). */
static void term_tile(FILE *out, const uint8_t *rgb, int size, av_color_mode mode) {
    for (int y = 0; y < size; y += 2) {
        for (int x = 0; x < size; x++) {
            const uint8_t *top = rgb + ((size_t)y * (size_t)size + (size_t)x) * 3;
            const uint8_t *bot = y + 1 < size ? top + (size_t)size * 3 : top;
            av_term_put_colors(out, mode, top, bot);
            fputs("\u2580", out);
        }
        fputs("\x1b[0m\n", out);
    }
}

int av_daam_term(const av_trace *t, const av_daam_plot_params *p, FILE *out, av_color_mode mode,
                 av_err *err) {
    daam_data d;
    mode = av_term_resolve_color(mode);
    if (mode == AV_COLOR_NONE) mode = AV_COLOR_256; /* the overlay is nothing but color */
    if (daam_data_load(t, p, &d, err)) {
        daam_data_free(&d);
        return -1;
    }
    uint8_t *rgb = malloc((size_t)d.size * (size_t)d.size * 3);
    if (!rgb) {
        daam_data_free(&d);
        return av_errf(err, "out of memory");
    }
    const char *prompt = av_trace_meta(t, "prompt");
    fprintf(out, "\"%s\": generated image\n", prompt ? prompt : "");
    av_daam_overlay(d.img, NULL, d.size, p->cmap, rgb);
    term_tile(out, rgb, d.size, mode);
    for (int i = 0; i < d.n_maps; i++) {
        fprintf(out, "%s\n", d.labels[i]);
        av_daam_overlay(d.img, d.shown + (size_t)i * (size_t)d.size * (size_t)d.size, d.size, p->cmap, rgb);
        term_tile(out, rgb, d.size, mode);
    }
    fprintf(out, "%s\n", av_daam_caveat);
    free(rgb);
    daam_data_free(&d);
    return 0;
}
