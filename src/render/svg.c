/* The vector backend of figures: SVG 1.1 with selectable <text> in DejaVu Sans (the font the layout was
 * measured with). Figures with up to 40,000 matrix cells in all draw one <rect> per cell (with a <title>
 * tooltip giving the exact weight up to 4,096 cells); larger ones embed each matrix as a pixel-exact PNG
 * (data: URI, no external file). */
#include "render/plot.h"

#include "core/core.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static void sb_xml(av_buf *b, const char *s) {
    for (const unsigned char *u = (const unsigned char *)s; *u; u++) {
        switch (*u) {
        case '&': av_buf_put(b, "&amp;", 5); break;
        case '<': av_buf_put(b, "&lt;", 4); break;
        case '>': av_buf_put(b, "&gt;", 4); break;
        case '"': av_buf_put(b, "&quot;", 6); break;
        case '\'': av_buf_put(b, "&#39;", 5); break;
        default:
            if (*u < 0x20 && *u != '\t' && *u != '\n' && *u != '\r')
                av_buf_put(b, "\xEF\xBF\xBD", 3);
            else
                av_buf_put(b, (const char *)u, 1);
        }
    }
}

/* Numbers with at most 2 decimals and no trailing zeros. */
static const char *num(char buf[32], double v) {
    snprintf(buf, 32, "%.2f", v);
    char *dot = strchr(buf, '.');
    if (dot) {
        char *e = buf + strlen(buf) - 1;
        while (e > dot && *e == '0')
            *e-- = 0;
        if (e == dot) *e = 0;
    }
    if (strcmp(buf, "-0") == 0) strcpy(buf, "0");
    return buf;
}

static void color(char out[8], const uint8_t rgb[3]) {
    snprintf(out, 8, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
}

static int raster_image(av_buf *b, const av_fig_item *it, av_err *err) {
    av_image im = {it->rw, it->rh, it->raster};
    uint8_t *png;
    size_t n;
    if (av_png_encode(&im, 0, &png, &n, err)) return -1;
    char *b64 = av_base64_encode(png, n);
    free(png);
    if (!b64) return av_errf(err, "out of memory");
    char a[32], c[32], d[32], e[32];
    av_buf_printf(
        b,
        "<image x=\"%s\" y=\"%s\" width=\"%s\" height=\"%s\" preserveAspectRatio=\"none\" "
        "style=\"image-rendering:pixelated;image-rendering:crisp-edges\" xlink:href=\"data:image/png;base64,",
        num(a, it->x), num(c, it->y), num(d, it->w), num(e, it->h));
    av_buf_put(b, b64, strlen(b64));
    av_buf_put(b, "\"/>\n", 4);
    free(b64);
    return 0;
}

static void raster_rects(av_buf *b, const av_fig_item *it) {
    int titles = it->values && (size_t)it->rw * (size_t)it->rh <= 4096;
    double cw = it->w / it->rw, ch = it->h / it->rh;
    char a[32], c[32], d[32], e[32], col[8];
    av_buf_printf(b, "<g shape-rendering=\"crispEdges\">\n");
    for (int r = 0; r < it->rh; r++)
        for (int k = 0; k < it->rw; k++) {
            size_t i = (size_t)r * (size_t)it->rw + (size_t)k;
            color(col, it->raster + i * 3);
            /* cells overlap their right/bottom neighbour by a hair so no background seam shows */
            av_buf_printf(b, "<rect x=\"%s\" y=\"%s\" width=\"%s\" height=\"%s\" fill=\"%s\"",
                          num(a, it->x + k * cw), num(c, it->y + r * ch),
                          num(d, cw + (k + 1 < it->rw ? 0.01 : 0)), num(e, ch + (r + 1 < it->rh ? 0.01 : 0)),
                          col);
            if (titles)
                av_buf_printf(b, "><title>query %d, key %d: %.6g</title></rect>\n", r, k,
                              (double)it->values[i]);
            else
                av_buf_put(b, "/>\n", 3);
        }
    av_buf_printf(b, "</g>\n");
}

int av_fig_to_svg(const av_fig *fig, char **out, size_t *n, av_err *err) {
    *out = NULL;
    av_buf b = {0};
    char a[32], c[32], d[32], e[32], col[8];
    av_buf_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    av_buf_printf(&b,
                  "<svg xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\" "
                  "version=\"1.1\" width=\"%s\" height=\"%s\" viewBox=\"0 0 %s %s\">\n",
                  num(a, fig->w), num(c, fig->h), num(d, fig->w), num(e, fig->h));
    if (fig->title) {
        av_buf_put(&b, "<title>", 7);
        sb_xml(&b, fig->title);
        av_buf_put(&b, "</title>\n", 9);
    }
    color(col, fig->bg);
    av_buf_printf(&b, "<rect width=\"100%%\" height=\"100%%\" fill=\"%s\"/>\n", col);
    av_buf_printf(&b, "<g font-family=\"'DejaVu Sans', Verdana, 'Bitstream Vera Sans', sans-serif\">\n");
    size_t cells =
        0; /* vector cells while the whole figure has at most 40,000 (a grid of 144 heads has more) */
    for (int i = 0; i < fig->n; i++)
        if (fig->items[i].kind == AV_FIG_RASTER) cells += (size_t)fig->items[i].rw * (size_t)fig->items[i].rh;
    for (int i = 0; i < fig->n; i++) {
        const av_fig_item *it = &fig->items[i];
        color(col, it->rgb);
        switch (it->kind) {
        case AV_FIG_RECT:
            av_buf_printf(&b, "<rect x=\"%s\" y=\"%s\" width=\"%s\" height=\"%s\" fill=\"%s\"/>\n",
                          num(a, it->x), num(c, it->y), num(d, it->w), num(e, it->h), col);
            break;
        case AV_FIG_LINE:
            av_buf_printf(
                &b, "<line x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\" stroke=\"%s\" stroke-width=\"%.2g\"/>\n",
                num(a, it->x), num(c, it->y), num(d, it->x + it->w), num(e, it->y + it->h), col, it->size);
            break;
        case AV_FIG_TEXT: {
            static const char *anchors[3] = {"start", "middle", "end"};
            av_buf_printf(&b, "<text x=\"%s\" y=\"%s\" font-size=\"%s\" fill=\"%s\"", num(a, it->x),
                          num(c, it->y), num(d, it->size), col);
            if (it->anchor)
                av_buf_printf(&b, " text-anchor=\"%s\"", anchors[it->anchor > 2 ? 2 : it->anchor]);
            if (it->angle)
                av_buf_printf(&b, " transform=\"rotate(%d %s %s)\"", -it->angle, num(a, it->x),
                              num(c, it->y));
            av_buf_put(&b, " xml:space=\"preserve\">", 22);
            sb_xml(&b, it->text);
            av_buf_put(&b, "</text>\n", 8);
            break;
        }
        case AV_FIG_RASTER:
            if (cells <= 40000 || (size_t)it->rw * (size_t)it->rh <= 256) {
                raster_rects(&b, it);
            } else if (raster_image(&b, it, err)) {
                free(b.s);
                return -1;
            }
            break;
        }
    }
    av_buf_printf(&b, "</g>\n</svg>\n");
    if (b.oom) {
        free(b.s);
        return av_errf(err, "out of memory writing SVG");
    }
    *out = b.s;
    *n = b.n;
    return 0;
}
