/* Drawing primitives of the static figures: items of a display list (text, lines, rasters), a matrix raster
 * max-pooled to the output's pixels and a colorbar with ticks. Used by the heatmap and grid layouts
 * (layout.c) and the step figure (fig_steps.c). */
#include "render/plot.h"

#include "core/core.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const uint8_t av_fig_ink[3] = {34, 34, 34}, av_fig_muted[3] = {96, 96, 96}, av_fig_white[3] = {255, 255, 255};

av_fig_item *av_fig_add(av_fig *f, av_fig_kind kind, av_err *err) {
    if (f->n == f->cap) {
        int cap = f->cap ? f->cap * 2 : 64;
        av_fig_item *p = realloc(f->items, sizeof *p * (size_t)cap);
        if (!p) {
            av_errf(err, "out of memory");
            return NULL;
        }
        f->items = p;
        f->cap = cap;
    }
    av_fig_item *it = &f->items[f->n++];
    memset(it, 0, sizeof *it);
    it->kind = kind;
    return it;
}

int av_fig_text(av_fig *f, const char *s, double x, double y, double size, int angle, int anchor,
                const uint8_t rgb[3], av_err *err) {
    av_fig_item *it = av_fig_add(f, AV_FIG_TEXT, err);
    if (!it) return -1;
    it->x = x;
    it->y = y;
    it->size = size;
    it->angle = angle;
    it->anchor = anchor;
    memcpy(it->rgb, rgb, 3);
    it->text = av_strdup(s);
    return it->text ? 0 : av_errf(err, "out of memory");
}

int av_fig_line(av_fig *f, double x, double y, double dx, double dy, double width, const uint8_t rgb[3],
                av_err *err) {
    av_fig_item *it = av_fig_add(f, AV_FIG_LINE, err);
    if (!it) return -1;
    *it = (av_fig_item){.kind = AV_FIG_LINE, .x = x, .y = y, .w = dx, .h = dy, .size = width};
    memcpy(it->rgb, rgb, 3);
    return 0;
}

int av_fig_rect(av_fig *f, double x, double y, double w, double h, const uint8_t rgb[3], av_err *err) {
    av_fig_item *it = av_fig_add(f, AV_FIG_RECT, err);
    if (!it) return -1;
    it->x = x, it->y = y, it->w = w, it->h = h;
    memcpy(it->rgb, rgb, 3);
    return 0;
}

/* Label cut to max code points with an ellipsis. */
char *av_fig_cut_label(const char *s, int max) {
    int count = 0;
    const char *p = s;
    while (*p && count < max) {
        p++;
        while ((*p & 0xC0) == 0x80)
            p++;
        count++;
    }
    if (!*p) return av_strdup(s);
    size_t n = (size_t)(p - s);
    char *o = malloc(n + 4);
    if (!o) return NULL;
    memcpy(o, s, n);
    memcpy(o + n, "\xE2\x80\xA6", 4);
    return o;
}

/* ---- colors ---- */

float av_fig_scale_t(const av_fig_scale *sc, float v) {
    if (isnan(v)) return v;
    if (sc->log) {
        float hi = log10f(sc->vmax), lo = hi - 4;
        return v > 0 ? (log10f(v) - lo) / (hi - lo) : 0.f;
    }
    return sc->vmax > sc->vmin ? (v - sc->vmin) / (sc->vmax - sc->vmin) : 0.f;
}

/* Max-pools (nr, nc) to at most (tr, tc) cells: block max (by |value| for the diverging map). */
static float *pool(const float *m, int nr, int nc, int tr, int tc, int by_abs, int *orr, int *occ) {
    if (tr >= nr) tr = nr;
    if (tc >= nc) tc = nc;
    float *o = malloc(sizeof *o * (size_t)tr * (size_t)tc);
    if (!o) return NULL;
    for (int r = 0; r < tr; r++) {
        int r0 = (int)((long long)r * nr / tr), r1 = (int)((long long)(r + 1) * nr / tr);
        for (int c = 0; c < tc; c++) {
            int c0 = (int)((long long)c * nc / tc), c1 = (int)((long long)(c + 1) * nc / tc);
            float best = m[(size_t)r0 * (size_t)nc + (size_t)c0];
            for (int i = r0; i < r1; i++)
                for (int j = c0; j < c1; j++) {
                    float v = m[(size_t)i * (size_t)nc + (size_t)j];
                    if (by_abs ? fabsf(v) > fabsf(best) : v > best) best = v;
                }
            o[(size_t)r * (size_t)tc + (size_t)c] = best;
        }
    }
    *orr = tr;
    *occ = tc;
    return o;
}

/* Adds the matrix as a raster in box (x, y, w, h), pooled to the output's pixels. Takes m. */
int av_fig_matrix(av_fig *f, float *m, int nr, int nc, double x, double y, double w, double h,
                  double out_scale, const av_fig_scale *sc, int keep_values, av_err *err) {
    int tr = (int)floor(h * out_scale), tc = (int)floor(w * out_scale);
    if (tr < 1) tr = 1;
    if (tc < 1) tc = 1;
    if (tr < nr || tc < nc) {
        int rr, cc;
        float *pm = pool(m, nr, nc, tr, tc, sc->cmap == AV_CMAP_DIVERGING, &rr, &cc);
        free(m);
        if (!pm) return av_errf(err, "out of memory");
        m = pm;
        nr = rr;
        nc = cc;
    }
    av_fig_item *it = av_fig_add(f, AV_FIG_RASTER, err);
    if (!it) {
        free(m);
        return -1;
    }
    *it = (av_fig_item){.kind = AV_FIG_RASTER, .x = x, .y = y, .w = w, .h = h, .rw = nc, .rh = nr};
    it->raster = malloc((size_t)nr * (size_t)nc * 3);
    if (!it->raster) {
        free(m);
        return av_errf(err, "out of memory");
    }
    for (size_t i = 0; i < (size_t)nr * (size_t)nc; i++)
        av_cmap_rgb(sc->cmap, av_fig_scale_t(sc, m[i]), it->raster + i * 3);
    if (keep_values)
        it->values = m;
    else
        free(m);
    return 0;
}

/* A vertical colorbar at (x, y) of height h with tick values on its right; returns its total width. */
double av_fig_colorbar(av_fig *f, double x, double y, double h, const av_fig_scale *sc, av_err *err) {
    const double bw = 14, fs = 9.5;
    av_fig_item *it = av_fig_add(f, AV_FIG_RASTER, err);
    if (!it) return -1;
    *it = (av_fig_item){.kind = AV_FIG_RASTER, .x = x, .y = y, .w = bw, .h = h, .rw = 1, .rh = 256};
    it->raster = malloc(256 * 3);
    if (!it->raster) return av_errf(err, "out of memory");
    for (int i = 0; i < 256; i++)
        av_cmap_rgb(sc->cmap, (255 - i + 0.5f) / 256.f, it->raster + i * 3);
    double ticks[16];
    int nt = 0;
    if (sc->log) {
        double hi = log10(sc->vmax);
        for (double e = ceil(hi - 4 - 1e-9); e <= hi + 1e-9 && nt < 16; e += 1)
            ticks[nt++] = pow(10, e);
    } else {
        double span = sc->vmax - sc->vmin, raw = span / 5, mag = pow(10, floor(log10(raw))), step = mag;
        if (raw / mag > 5)
            step = 10 * mag;
        else if (raw / mag > 2)
            step = 5 * mag;
        else if (raw / mag > 1)
            step = 2 * mag;
        for (double v = ceil(sc->vmin / step - 1e-9) * step; v <= sc->vmax + step * 1e-6 && nt < 16;
             v += step)
            ticks[nt++] = fabs(v) < step * 1e-9 ? 0 : v;
    }
    double maxw = 0;
    for (int i = 0; i < nt; i++) {
        char s[32];
        snprintf(s, sizeof s, "%.3g", ticks[i]);
        double ty = y + h * (1 - av_fig_scale_t(sc, (float)ticks[i]));
        if (ty < y - 0.5 || ty > y + h + 0.5) continue;
        if (av_fig_line(f, x + bw, ty, 4, 0, 1, av_fig_ink, err) ||
            av_fig_text(f, s, x + bw + 6, ty + fs * 0.36, fs, 0, 0, av_fig_ink, err))
            return -1;
        maxw = fmax(maxw, av_font_width(f->font, s, fs));
    }
    return bw + 6 + maxw;
}
