/* The vector backend of figures: SVG 1.1 with selectable <text> in DejaVu Sans (the font the layout was
 * measured with). Figures with up to 40,000 matrix cells in all draw one <rect> per cell (with a <title>
 * tooltip giving the exact weight up to 4,096 cells); larger ones embed each matrix as a pixel-exact PNG
 * (data: URI, no external file). */
#include "render/plot.h"

#include "core/core.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct sbuf {
    char *s;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_grow(sbuf *b, size_t extra) {
    if (b->oom || b->n + extra + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 1 << 16;
    while (cap < b->n + extra + 1)
        cap *= 2;
    char *p = realloc(b->s, cap);
    if (!p) {
        b->oom = 1;
        return;
    }
    b->s = p;
    b->cap = cap;
}

static void sb_put(sbuf *b, const char *s, size_t n) {
    sb_grow(b, n);
    if (b->oom) return;
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

static void sb_printf(sbuf *b, const char *fmt, ...) AV_PRINTF(2, 3);
static void sb_printf(sbuf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    if ((size_t)k < sizeof tmp) {
        sb_put(b, tmp, (size_t)k);
        return;
    }
    sb_grow(b, (size_t)k);
    if (b->oom) return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->n, (size_t)k + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)k;
}

/* Text content / attribute value: &<>"' escaped; characters XML 1.0 forbids are replaced by U+FFFD. */
static void sb_xml(sbuf *b, const char *s) {
    for (const unsigned char *u = (const unsigned char *)s; *u; u++) {
        switch (*u) {
        case '&':
            sb_put(b, "&amp;", 5);
            break;
        case '<':
            sb_put(b, "&lt;", 4);
            break;
        case '>':
            sb_put(b, "&gt;", 4);
            break;
        case '"':
            sb_put(b, "&quot;", 6);
            break;
        case '\'':
            sb_put(b, "&#39;", 5);
            break;
        default:
            if (*u < 0x20 && *u != '\t' && *u != '\n' && *u != '\r')
                sb_put(b, "\xEF\xBF\xBD", 3);
            else
                sb_put(b, (const char *)u, 1);
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

static int raster_image(sbuf *b, const av_fig_item *it, av_err *err) {
    av_image im = {it->rw, it->rh, it->raster};
    uint8_t *png;
    size_t n;
    if (av_png_encode(&im, 0, &png, &n, err)) return -1;
    char *b64 = av_base64(png, n);
    free(png);
    if (!b64) return av_errf(err, "out of memory");
    char a[32], c[32], d[32], e[32];
    sb_printf(
        b,
        "<image x=\"%s\" y=\"%s\" width=\"%s\" height=\"%s\" preserveAspectRatio=\"none\" "
        "style=\"image-rendering:pixelated;image-rendering:crisp-edges\" xlink:href=\"data:image/png;base64,",
        num(a, it->x), num(c, it->y), num(d, it->w), num(e, it->h));
    sb_put(b, b64, strlen(b64));
    sb_put(b, "\"/>\n", 4);
    free(b64);
    return 0;
}

static void raster_rects(sbuf *b, const av_fig_item *it) {
    int titles = it->values && (size_t)it->rw * (size_t)it->rh <= 4096;
    double cw = it->w / it->rw, ch = it->h / it->rh;
    char a[32], c[32], d[32], e[32], col[8];
    sb_printf(b, "<g shape-rendering=\"crispEdges\">\n");
    for (int r = 0; r < it->rh; r++)
        for (int k = 0; k < it->rw; k++) {
            size_t i = (size_t)r * (size_t)it->rw + (size_t)k;
            color(col, it->raster + i * 3);
            /* cells overlap their right/bottom neighbour by a hair so no background seam shows */
            sb_printf(b, "<rect x=\"%s\" y=\"%s\" width=\"%s\" height=\"%s\" fill=\"%s\"",
                      num(a, it->x + k * cw), num(c, it->y + r * ch),
                      num(d, cw + (k + 1 < it->rw ? 0.01 : 0)), num(e, ch + (r + 1 < it->rh ? 0.01 : 0)),
                      col);
            if (titles)
                sb_printf(b, "><title>query %d, key %d: %.6g</title></rect>\n", r, k, (double)it->values[i]);
            else
                sb_put(b, "/>\n", 3);
        }
    sb_printf(b, "</g>\n");
}

int av_fig_to_svg(const av_fig *fig, char **out, size_t *n, av_err *err) {
    *out = NULL;
    sbuf b = {0};
    char a[32], c[32], d[32], e[32], col[8];
    sb_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    sb_printf(&b,
              "<svg xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\" "
              "version=\"1.1\" width=\"%s\" height=\"%s\" viewBox=\"0 0 %s %s\">\n",
              num(a, fig->w), num(c, fig->h), num(d, fig->w), num(e, fig->h));
    if (fig->title) {
        sb_put(&b, "<title>", 7);
        sb_xml(&b, fig->title);
        sb_put(&b, "</title>\n", 9);
    }
    color(col, fig->bg);
    sb_printf(&b, "<rect width=\"100%%\" height=\"100%%\" fill=\"%s\"/>\n", col);
    sb_printf(&b, "<g font-family=\"'DejaVu Sans', Verdana, 'Bitstream Vera Sans', sans-serif\">\n");
    size_t cells =
        0; /* vector cells while the whole figure has at most 40,000 (a grid of 144 heads has more) */
    for (int i = 0; i < fig->n; i++)
        if (fig->items[i].kind == AV_FIG_RASTER) cells += (size_t)fig->items[i].rw * (size_t)fig->items[i].rh;
    for (int i = 0; i < fig->n; i++) {
        const av_fig_item *it = &fig->items[i];
        color(col, it->rgb);
        switch (it->kind) {
        case AV_FIG_RECT:
            sb_printf(&b, "<rect x=\"%s\" y=\"%s\" width=\"%s\" height=\"%s\" fill=\"%s\"/>\n", num(a, it->x),
                      num(c, it->y), num(d, it->w), num(e, it->h), col);
            break;
        case AV_FIG_LINE:
            sb_printf(
                &b, "<line x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\" stroke=\"%s\" stroke-width=\"%.2g\"/>\n",
                num(a, it->x), num(c, it->y), num(d, it->x + it->w), num(e, it->y + it->h), col, it->size);
            break;
        case AV_FIG_TEXT: {
            static const char *anchors[3] = {"start", "middle", "end"};
            sb_printf(&b, "<text x=\"%s\" y=\"%s\" font-size=\"%s\" fill=\"%s\"", num(a, it->x),
                      num(c, it->y), num(d, it->size), col);
            if (it->anchor) sb_printf(&b, " text-anchor=\"%s\"", anchors[it->anchor > 2 ? 2 : it->anchor]);
            if (it->angle)
                sb_printf(&b, " transform=\"rotate(%d %s %s)\"", -it->angle, num(a, it->x), num(c, it->y));
            sb_put(&b, " xml:space=\"preserve\">", 22);
            sb_xml(&b, it->text);
            sb_put(&b, "</text>\n", 8);
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
    sb_printf(&b, "</g>\n</svg>\n");
    if (b.oom) {
        free(b.s);
        return av_errf(err, "out of memory writing SVG");
    }
    *out = b.s;
    *n = b.n;
    return 0;
}
