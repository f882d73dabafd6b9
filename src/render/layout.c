/* Layout of static figures in CSS px: one heatmap (title, query labels on the left, rotated key labels under
 * the matrix, axis titles, a colorbar with tick values) or the grid of all layers x heads thumbnails.
 * Labels that would overlap are thinned to every k-th one; matrices larger than the output's pixels are
 * max-pooled so a single strong weight stays visible. */
#include "render/plot.h"

#include "core/core.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void auto_range(av_fig_scale *sc, const av_plot_params *p, float max_v, float min_v) {
    sc->cmap = p->cmap;
    sc->log = p->log_scale;
    if (p->vmin != p->vmax) {
        sc->vmin = p->vmin;
        sc->vmax = p->vmax;
        return;
    }
    if (p->cmap == AV_CMAP_DIVERGING) {
        float a = fmaxf(fabsf(max_v), fabsf(min_v));
        if (!(a > 0)) a = 1;
        sc->vmin = -a;
        sc->vmax = a;
        return;
    }
    sc->vmin = min_v < 0 ? min_v : 0;
    sc->vmax = max_v > sc->vmin ? max_v : sc->vmin + 1;
}

static char *make_title(const av_trace *t, const av_plot_params *p, int n_heads) {
    if (p->title) return av_strdup(p->title);
    const char *model = av_trace_meta(t, "model");
    char head[64], buf[512];
    if (p->head == AV_HEAD_MEAN)
        snprintf(head, sizeof head, "mean of %d head%s", n_heads, n_heads == 1 ? "" : "s");
    else if (p->head == AV_HEAD_MAX)
        snprintf(head, sizeof head, "max of %d head%s", n_heads, n_heads == 1 ? "" : "s");
    else
        snprintf(head, sizeof head, "head %d", p->head);
    static const char *const kind_titles[AV_ATTN_KIND_COUNT] = {"", "encoder · ", "decoder · ",
                                                                "cross-attention · "};
    const char *kind = (unsigned)p->kind < AV_ATTN_KIND_COUNT ? kind_titles[p->kind] : "";
    if (p->grid)
        snprintf(buf, sizeof buf, "%s · %sall layers × heads", model ? model : "attention", kind);
    else
        snprintf(buf, sizeof buf, "%s · %slayer %d · %s", model ? model : "attention", kind, p->layer, head);
    size_t n = strlen(buf);
    if (p->exclude_first) n += (size_t)snprintf(buf + n, sizeof buf - n, " · first token excluded");
    if (p->log_scale && n < sizeof buf) snprintf(buf + n, sizeof buf - n, " · log scale");
    return av_strdup(buf);
}

static void min_max(const float *m, size_t n, float *lo, float *hi) {
    for (size_t i = 0; i < n; i++) {
        if (m[i] < *lo) *lo = m[i];
        if (m[i] > *hi) *hi = m[i];
    }
}

/* ---- one heatmap ---- */

/* The heatmap's matrix (malloc'd, the caller's p->matrix copied, or head / reduction of one layer) and its
 * labels (borrowed, or owned in *owned_q / *owned_k): label i of the matrix is ql[i + *off]. */
static int heatmap_matrix(const av_trace *t, const av_plot_params *p, float **m, int *nr, int *nc, char ***ql,
                          char ***kl, int *off, int *n_heads, av_err *err) {
    if (p->matrix) {
        size_t n = (size_t)p->n_rows * (size_t)p->n_cols;
        if (p->n_rows <= 0 || p->n_cols <= 0 || !(*m = malloc(sizeof(float) * n)))
            return av_errf(err, "cannot draw a %d x %d matrix", p->n_rows, p->n_cols);
        memcpy(*m, p->matrix, sizeof(float) * n);
        *nr = p->n_rows, *nc = p->n_cols, *off = 0, *n_heads = av_trace_n_heads(t, p->kind);
        *ql = (char **)p->row_labels, *kl = (char **)p->col_labels;
        return 0;
    }
    if (av_plot_matrix(t, p->kind, p->layer, p->head, p->exclude_first, m, nr, nc, err)) return -1;
    *off = p->exclude_first ? 1 : 0;
    *n_heads = av_trace_n_heads(t, p->kind);
    if (av_plot_labels(t, p->kind, av_trace_n_query(t, p->kind), av_trace_n_key(t, p->kind), ql, kl, err)) {
        free(*m);
        return -1;
    }
    return 0;
}

static int layout_heatmap(const av_trace *t, const av_plot_params *p, av_fig *f, av_plot_geom *g,
                          av_err *err) {
    float *m;
    int nr = 0, nc = 0, off = 0, n_heads = 0;
    char **ql, **kl;
    if (heatmap_matrix(t, p, &m, &nr, &nc, &ql, &kl, &off, &n_heads, err)) return -1;
    int rc = -1;
    double out_scale = p->dpi / 96.0;
    av_fig_scale sc;
    float lo = 0, hi = 0;
    min_max(m, (size_t)nr * nc, &lo, &hi);
    auto_range(&sc, p, hi, lo);
    int big = nr > nc ? nr : nc; /* automatic cells: the matrix spans about 120..560 CSS px */
    double cell = p->cell > 0 ? p->cell : fmax(fmin(26, fmax(0.25, 560.0 / big)), 120.0 / big);
    if (cell * out_scale >= 3) cell = round(cell * out_scale) / out_scale; /* whole output pixels per cell */
    double W = cell * nc, H = cell * nr;
    double lf = fmin(11, fmax(7, cell * 0.75)), pitch = lf * 1.2;
    int rs = (int)ceil(pitch / cell - 1e-9), cs = rs; /* label strides */
    const double margin = 14, tsize = 15, axis = 11.5;
    char *title = make_title(t, p, n_heads);
    f->title = title ? av_strdup(title) : NULL;
    /* label extents */
    double row_w = 0, col_h = 0;
    char **qc = calloc((size_t)nr, sizeof *qc), **kc = calloc((size_t)nc, sizeof *kc);
    if (!title || !qc || !kc) {
        av_errf(err, "out of memory");
        goto done;
    }
    for (int i = 0; i < nr; i += rs) {
        if (!(qc[i] = av_fig_cut_label(ql[i + off], p->max_label_chars))) goto oom;
        row_w = fmax(row_w, av_font_width(f->font, qc[i], lf));
    }
    for (int j = 0; j < nc; j += cs) {
        if (!(kc[j] = av_fig_cut_label(kl[j + off], p->max_label_chars))) goto oom;
        col_h = fmax(col_h, av_font_width(f->font, kc[j], lf));
    }
    double x_m = margin + axis * 1.4 + row_w + 6, y_m = margin + tsize * 1.25 + 10;
    double cb_h = fmax(H, 120), cb_x = x_m + W + 18;
    if (av_fig_text(f, title, margin, margin + tsize, tsize, 0, 0, av_fig_ink, err)) goto done;
    /* query labels (right-aligned, vertically centered on their row) and the axis title */
    for (int i = 0; i < nr; i += rs)
        if (av_fig_text(f, qc[i], x_m - 5, y_m + cell * (i + 0.5) + lf * 0.36, lf, 0, 2, av_fig_ink, err))
            goto done;
    if (av_fig_text(f, "query", margin + axis, y_m + H / 2, axis, 90, 1, av_fig_muted, err)) goto done;
    /* key labels: rotated, reading upward, ending just under the matrix */
    for (int j = 0; j < nc; j += cs)
        if (av_fig_text(f, kc[j], x_m + cell * (j + 0.5) + lf * 0.36, y_m + H + 5, lf, 90, 2, av_fig_ink,
                        err))
            goto done;
    double key_y = y_m + H + 5 + col_h + 6 + axis;
    if (av_fig_text(f, "key", x_m + W / 2, key_y, axis, 0, 1, av_fig_muted, err)) goto done;
    int mi = f->n; /* index of the matrix raster */
    if (av_fig_matrix(f, m, nr, nc, x_m, y_m, W, H, out_scale, &sc, nr * nc <= 4096, err)) {
        m = NULL;
        goto done;
    }
    m = NULL;
    double cb_w = av_fig_colorbar(f, cb_x, y_m, cb_h, &sc, err);
    if (cb_w < 0) goto done;
    const av_fig_item *r = &f->items[mi];
    f->w = fmax(cb_x + cb_w + margin, margin * 2 + av_font_width(f->font, title, tsize));
    f->h = fmax(key_y + axis * 0.4, y_m + cb_h) + margin;
    *g = (av_plot_geom){0, 0, x_m, y_m, W / r->rw, H / r->rh, r->rh, r->rw, 0, 0, sc.vmin, sc.vmax};
    rc = 0;
    goto done;
oom:
    av_errf(err, "out of memory");
done:
    if (qc)
        for (int i = 0; i < nr; i++)
            free(qc[i]);
    if (kc)
        for (int j = 0; j < nc; j++)
            free(kc[j]);
    free(qc);
    free(kc);
    free(title);
    free(m);
    if (!p->matrix) {
        av_plot_labels_free(ql, av_trace_n_query(t, p->kind));
        av_plot_labels_free(kl, av_trace_n_key(t, p->kind));
    }
    return rc;
}

/* ---- the grid of all layers x heads ---- */

/* Every layer x head matrix of a grid, all nr x nc (NULL where a layer has fewer heads), and their range. */
typedef struct grid_mats {
    int L, H, nr, nc;
    float **mats; /* (L * H), each (nr, nc) */
    float lo, hi;
} grid_mats;

/* Where the grid goes: thumbnails tw x th a gap apart, label size lf, grid origin and size. */
typedef struct grid_geom {
    double tw, th, gap, lf, x0, y0, gw, gh;
} grid_geom;

static const double k_grid_margin = 14, k_grid_tsize = 15, k_grid_axis = 11.5;

static void grid_free(grid_mats *gm) {
    for (int i = 0; gm->mats && i < gm->L * gm->H; i++)
        free(gm->mats[i]);
    free(gm->mats);
}

/* Thumbnails of long traces are max-pooled to this many cells a side first (through the tile API, which
 * answers a lazy trace's overview at once); the figure pools them further to its pixels. */
enum { GRID_CELLS = 256 };

static int grid_load(const av_trace *t, const av_plot_params *p, grid_mats *gm, av_err *err) {
    memset(gm, 0, sizeof *gm);
    int L = av_trace_n_layers(t, p->kind), H = av_trace_n_heads(t, p->kind);
    if (L == 0) return av_errf(err, "the trace has no '%s' attention", av_attn_kind_name(p->kind));
    int off = p->exclude_first ? 1 : 0, wr = av_trace_n_query(t, p->kind) - off,
        wc = av_trace_n_key(t, p->kind) - off;
    if (wr <= 0 || wc <= 0) return av_errf(err, "cannot exclude the first token of a 1-token trace");
    int nr = wr < GRID_CELLS ? wr : GRID_CELLS, nc = wc < GRID_CELLS ? wc : GRID_CELLS;
    size_t per = (size_t)nr * (size_t)nc;
    *gm = (grid_mats){L, H, nr, nc, calloc((size_t)L * (size_t)H, sizeof(float *)), 0, 0};
    if (!gm->mats) return av_errf(err, "out of memory");
    for (int l = 0, k = 0; l < L; l++)
        for (int h = 0; h < H; h++, k++) {
            av_tile_params tp = {p->kind, l, h, off, off + wr, off, off + wc, nr, nc, AV_POOL_MAX, off};
            if (!(gm->mats[k] = malloc(sizeof(float) * per))) return av_errf(err, "out of memory");
            if (av_trace_attn_tile_ex(t, &tp, gm->mats[k], err)) return av_err_prefix(err, "grid");
            min_max(gm->mats[k], per, &gm->lo, &gm->hi);
        }
    return 0;
}

/* Thumbnail size from --cell or the grid's larger side; label space left of and above the grid. */
static grid_geom grid_place(const av_fig *f, const av_plot_params *p, const grid_mats *gm) {
    grid_geom g;
    int big = gm->L > gm->H ? gm->L : gm->H, nr = gm->nr, nc = gm->nc;
    double thumb = p->cell > 0 ? p->cell * (nr > nc ? nr : nc) : fmin(110, fmax(30, 760.0 / big));
    g.tw = nc >= nr ? thumb : thumb * nc / nr;
    g.th = nr >= nc ? thumb : thumb * nr / nc;
    g.gap = fmax(4, thumb * 0.08);
    g.lf = fmin(11, fmax(7.5, thumb * 0.22));
    double row_w = 0;
    for (int l = 0; l < gm->L; l++) {
        char s[24];
        snprintf(s, sizeof s, "L%d", l);
        row_w = fmax(row_w, av_font_width(f->font, s, g.lf));
    }
    g.x0 = k_grid_margin + k_grid_axis * 1.4 + row_w + 6;
    g.y0 = k_grid_margin + k_grid_tsize * 1.25 + 10 + k_grid_axis + g.lf * 1.4 + 4;
    g.gw = gm->H * g.tw + (gm->H - 1) * g.gap;
    g.gh = gm->L * g.th + (gm->L - 1) * g.gap;
    return g;
}

/* Title, axis names and the H<h> / L<l> labels. */
static int grid_labels(av_fig *f, const grid_mats *gm, const grid_geom *g, const char *title, av_err *err) {
    const double margin = k_grid_margin, tsize = k_grid_tsize, axis = k_grid_axis;
    int bad = av_fig_text(f, title, margin, margin + tsize, tsize, 0, 0, av_fig_ink, err) ||
              av_fig_text(f, "head", g->x0 + g->gw / 2, margin + tsize * 1.25 + 10 + axis, axis, 0, 1,
                          av_fig_muted, err) ||
              av_fig_text(f, "layer", margin + axis, g->y0 + g->gh / 2, axis, 90, 1, av_fig_muted, err);
    for (int h = 0; !bad && h < gm->H; h++) {
        char s[24];
        snprintf(s, sizeof s, "H%d", h);
        bad = av_fig_text(f, s, g->x0 + h * (g->tw + g->gap) + g->tw / 2, g->y0 - 5, g->lf, 0, 1, av_fig_ink,
                          err);
    }
    for (int l = 0; !bad && l < gm->L; l++) {
        char s[24];
        snprintf(s, sizeof s, "L%d", l);
        bad = av_fig_text(f, s, g->x0 - 5, g->y0 + l * (g->th + g->gap) + g->th / 2 + g->lf * 0.36, g->lf, 0,
                          2, av_fig_ink, err);
    }
    return bad ? -1 : 0;
}

/* The thumbnails (the figure takes each matrix over) and the shared colorbar; sets the figure size and g. */
static int grid_draw(av_fig *f, grid_mats *gm, const grid_geom *gg, const av_fig_scale *sc, double out_scale,
                     const char *title, av_plot_geom *g, av_err *err) {
    for (int l = 0, k = 0; l < gm->L; l++)
        for (int h = 0; h < gm->H; h++, k++) {
            if (!gm->mats[k]) continue;
            float *m = gm->mats[k];
            gm->mats[k] = NULL;
            if (av_fig_matrix(f, m, gm->nr, gm->nc, gg->x0 + h * (gg->tw + gg->gap),
                              gg->y0 + l * (gg->th + gg->gap), gg->tw, gg->th, out_scale, sc, 0, err))
                return -1;
        }
    const av_fig_item *first = NULL;
    for (int i = 0; i < f->n && !first; i++)
        if (f->items[i].kind == AV_FIG_RASTER) first = &f->items[i];
    double cb_h = fmax(gg->gh, 120), cb_x = gg->x0 + gg->gw + 18;
    double cb_w = av_fig_colorbar(f, cb_x, gg->y0, cb_h, sc, err);
    if (cb_w < 0) return -1;
    f->w = fmax(cb_x + cb_w + k_grid_margin, k_grid_margin * 2 + av_font_width(f->font, title, k_grid_tsize));
    f->h = fmax(gg->y0 + gg->gh, gg->y0 + cb_h) + k_grid_margin;
    *g = (av_plot_geom){
        0,         0,         gg->x0,           gg->y0,           gg->tw / first->rw, gg->th / first->rh,
        first->rh, first->rw, gg->tw + gg->gap, gg->th + gg->gap, sc->vmin,           sc->vmax};
    return 0;
}

static int layout_grid(const av_trace *t, const av_plot_params *p, av_fig *f, av_plot_geom *g, av_err *err) {
    grid_mats gm;
    if (grid_load(t, p, &gm, err)) {
        grid_free(&gm);
        return -1;
    }
    av_fig_scale sc;
    auto_range(&sc, p, gm.hi, gm.lo);
    char *title = make_title(t, p, gm.H);
    int rc = -1;
    if (!title || !(f->title = av_strdup(title))) {
        av_errf(err, "out of memory");
    } else {
        grid_geom gg = grid_place(f, p, &gm);
        rc =
            grid_labels(f, &gm, &gg, title, err) || grid_draw(f, &gm, &gg, &sc, p->dpi / 96.0, title, g, err);
    }
    free(title);
    grid_free(&gm);
    return rc ? -1 : 0;
}

int av_plot_layout(const av_trace *t, const av_plot_params *p, av_font *font, av_fig *fig, av_plot_geom *geom,
                   av_err *err) {
    memset(fig, 0, sizeof *fig);
    memcpy(fig->bg, av_fig_white, 3);
    fig->font = font;
    if (p->log_scale && p->cmap == AV_CMAP_DIVERGING)
        return av_errf(err, "--log does not apply to the diverging colormap (it is for signed differences)");
    if (p->vmin != p->vmax && !(p->vmax > p->vmin)) return av_errf(err, "vmax must be greater than vmin");
    if (p->log_scale && p->vmin != p->vmax && !(p->vmax > 0)) return av_errf(err, "--log needs vmax > 0");
    int rc = p->grid ? layout_grid(t, p, fig, geom, err) : layout_heatmap(t, p, fig, geom, err);
    if (rc) av_fig_free(fig);
    return rc;
}
