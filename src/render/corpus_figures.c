/* The corpus report's PNG figures: per attention kind, the role grid (color = role, strength = confidence),
 * grids of mean statistics per layer x head and the relative-position profile of every head; the query/key
 * maps (PCA and t-SNE) colored by side and by relative position. */
#include "render/corpus_render.h"
#include "render/chart.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FIG_DPI 120

static const uint8_t k_role_rgb[AV_ROLE_COUNT + 1][3] = {{31, 119, 180},  {255, 127, 14}, {44, 160, 44},
                                                         {148, 103, 189}, {140, 86, 75},  {214, 39, 40},
                                                         {199, 199, 199}};
static const char *const k_role_short[AV_ROLE_COUNT + 1] = {"prev", "sink", "self", "broad",
                                                            "dup",  "ind",  "-"};
static const char *const k_role_legend[AV_ROLE_COUNT + 1] = {
    "previous token", "first token (sink)", "self", "broad", "duplicate token", "induction", "none"};
static const av_cm k_grid_metrics[] = {AV_CM_ENTROPY_NORM, AV_CM_DISTANCE,  AV_CM_FIRST,
                                       AV_CM_PREV,         AV_CM_INDUCTION, AV_CM_SPECIAL};

/* Labels "0", "1", ... (n), malloc'd; free with free_labels. */
static char **index_labels(int n, const char *prefix) {
    char **l = calloc((size_t)n, sizeof *l);
    for (int i = 0; l && i < n; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "%s%d", prefix, i);
        if (!(l[i] = av_strdup(buf))) return l;
    }
    return l;
}

static void free_labels(char **l, int n) {
    for (int i = 0; l && i < n; i++)
        free(l[i]);
    free(l);
}

static int group_offset(const av_corpus_layout *lay, int g) {
    int off = 0;
    for (int k = 0; k < g; k++)
        off += lay->groups[k].n_layers * lay->groups[k].n_heads;
    return off;
}

static int role_grid(const av_corpus_acc *a, int g, const char *dir, av_err *err) {
    const av_corpus_group *gr = &a->layout.groups[g];
    int n = gr->n_layers * gr->n_heads, off = group_offset(&a->layout, g), rc = -1;
    uint8_t *rgb = malloc((size_t)n * 3);
    char **text = calloc((size_t)n, sizeof *text), **rows = index_labels(gr->n_layers, ""),
         **cols = index_labels(gr->n_heads, "");
    if (!rgb || !text || !rows || !cols) goto done;
    for (int i = 0; i < n; i++) {
        av_corpus_role cr;
        av_corpus_acc_role(a, off + i, &cr);
        int r = cr.roles.best == AV_ROLE_NONE ? AV_ROLE_COUNT : (int)cr.roles.best;
        double s =
            isnan(cr.confidence) ? 0.25 : 0.25 + 0.75 * cr.confidence; /* faint when examples disagree */
        for (int c = 0; c < 3; c++)
            rgb[3 * i + c] = (uint8_t)lround(255 + (k_role_rgb[r][c] - 255) * s);
        char buf[32];
        snprintf(buf, sizeof buf, isnan(cr.confidence) ? "%s" : "%s\n%.2f", k_role_short[r], cr.confidence);
        if (!(text[i] = av_strdup(buf))) goto done;
    }
    char title[96], path[4096];
    snprintf(title, sizeof title,
             "head roles (%s attention): color = role, strength = share of inputs agreeing",
             av_attn_kind_name(gr->kind));
    snprintf(path, sizeof path, "%s/figures/roles-%s.png", dir, av_attn_kind_name(gr->kind));
    av_chart_grid cg = {.title = title,
                        .n_rows = gr->n_layers,
                        .n_cols = gr->n_heads,
                        .cell_rgb = rgb,
                        .cell_text = (const char *const *)text,
                        .row_labels = (const char *const *)rows,
                        .col_labels = (const char *const *)cols,
                        .row_title = "layer",
                        .col_title = "head",
                        .n_legend = AV_ROLE_COUNT + 1,
                        .legend_labels = k_role_legend,
                        .legend_rgb = &k_role_rgb[0][0]};
    rc = av_chart_grid_png(&cg, path, FIG_DPI, err);
done:
    if (rc && !err->msg[0]) av_errf(err, "out of memory drawing the role grid");
    free(rgb);
    free_labels(text, n);
    free_labels(rows, gr->n_layers);
    free_labels(cols, gr->n_heads);
    return rc;
}

static int metric_grid(const av_corpus_acc *a, int g, av_cm m, const char *dir, av_err *err) {
    const av_corpus_group *gr = &a->layout.groups[g];
    int n = gr->n_layers * gr->n_heads, off = group_offset(&a->layout, g), rc = -1;
    float *v = malloc(sizeof *v * (size_t)n);
    char **rows = index_labels(gr->n_layers, ""), **cols = index_labels(gr->n_heads, "");
    if (!v || !rows || !cols) {
        rc = av_errf(err, "out of memory");
        goto done;
    }
    int any = 0;
    for (int i = 0; i < n; i++) {
        v[i] = (float)av_moments_mean(&a->metric[(size_t)(off + i) * AV_CM_COUNT + m]);
        any |= !isnan(v[i]);
    }
    rc = 0;
    if (!any) goto done; /* e.g. distance of cross-attention */
    char title[96], path[4096];
    snprintf(title, sizeof title, "mean %s per head (%s attention)", av_cm_name(m),
             av_attn_kind_name(gr->kind));
    snprintf(path, sizeof path, "%s/figures/%s-%s.png", dir, av_cm_name(m), av_attn_kind_name(gr->kind));
    av_chart_grid cg = {.title = title,
                        .n_rows = gr->n_layers,
                        .n_cols = gr->n_heads,
                        .values = v,
                        .row_labels = (const char *const *)rows,
                        .col_labels = (const char *const *)cols,
                        .row_title = "layer",
                        .col_title = "head",
                        .cmap = AV_CMAP_VIRIDIS};
    rc = av_chart_grid_png(&cg, path, FIG_DPI, err);
done:
    free(v);
    free_labels(rows, gr->n_layers);
    free_labels(cols, gr->n_heads);
    return rc;
}

/* Rows = heads "L.H", columns = the offset bins reachable in the corpus. */
static int positions_grid(const av_corpus_acc *a, int g, const char *dir, av_err *err) {
    const av_corpus_group *gr = &a->layout.groups[g];
    int n = gr->n_layers * gr->n_heads, off = group_offset(&a->layout, g), nb = 0, bins[AV_POS_BINS], rc = -1;
    int64_t reach = a->max_tokens > 0 ? a->max_tokens - 1 : 0;
    char **cols = calloc(AV_POS_BINS, sizeof *cols), **rows = calloc((size_t)n, sizeof *rows);
    float *v = malloc(sizeof *v * (size_t)n * AV_POS_BINS);
    if (!cols || !rows || !v) goto done;
    for (int b = 0; b < AV_POS_BINS; b++) {
        int64_t lo, hi;
        av_pos_bin_range(b, &lo, &hi);
        if ((lo >= 0 ? lo : -hi) > reach) continue;
        int unused = lo < 0; /* negative offsets only when some head of the group attends forward */
        for (int i = 0; unused && i < n; i++)
            unused = a->pos[(size_t)(off + i) * AV_POS_BINS + b] == 0;
        if (unused) continue;
        char buf[48];
        if (lo == hi)
            snprintf(buf, sizeof buf, "%lld", (long long)lo);
        else if (hi == INT64_MAX)
            snprintf(buf, sizeof buf, "%lld+", (long long)lo);
        else
            snprintf(buf, sizeof buf, "%lld..%lld", (long long)lo, (long long)hi);
        if (!(cols[nb] = av_strdup(buf))) goto done;
        bins[nb++] = b;
    }
    for (int i = 0; i < n; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "%d.%d", i / gr->n_heads, i % gr->n_heads);
        if (!(rows[i] = av_strdup(buf))) goto done;
        for (int k = 0; k < nb; k++)
            v[(size_t)i * nb + k] =
                a->pos_n[off + i]
                    ? (float)(av_fx_to_double(a->pos[(size_t)(off + i) * AV_POS_BINS + bins[k]]) /
                              (double)a->pos_n[off + i])
                    : NAN;
    }
    char title[96], path[4096];
    snprintf(title, sizeof title, "attention mass by offset query - key (%s attention)",
             av_attn_kind_name(gr->kind));
    snprintf(path, sizeof path, "%s/figures/positions-%s.png", dir, av_attn_kind_name(gr->kind));
    av_chart_grid cg = {.title = title,
                        .n_rows = n,
                        .n_cols = nb,
                        .values = v,
                        .row_labels = (const char *const *)rows,
                        .col_labels = (const char *const *)cols,
                        .row_title = "layer.head",
                        .col_title = "offset",
                        .cmap = AV_CMAP_MAGMA};
    rc = nb ? av_chart_grid_png(&cg, path, FIG_DPI, err) : 0;
done:
    if (rc && !err->msg[0]) av_errf(err, "out of memory drawing the position profile");
    free_labels(cols, nb);
    free_labels(rows, n);
    free(v);
    return rc;
}

/* One query/key map: by side (queries blue, keys orange) or by relative position (viridis). */
static int qk_scatter(const av_corpus_report *r, const double *xy, const char *name, int by_pos,
                      const char *dir, av_err *err) {
    static const uint8_t side_rgb[2][3] = {{31, 119, 180}, {255, 127, 14}};
    static const char *const side_names[2] = {"query", "key"};
    const av_corpus_qk *qk = r->qk;
    uint8_t *rgb = malloc((size_t)qk->n * 3);
    if (!rgb) return av_errf(err, "out of memory");
    for (int i = 0; i < qk->n; i++) {
        const av_qk_point *p = &qk->pts[i];
        if (by_pos)
            av_cmap_rgb(AV_CMAP_VIRIDIS, p->n_tokens > 1 ? (float)p->pos / (float)(p->n_tokens - 1) : 0,
                        rgb + 3 * i);
        else
            memcpy(rgb + 3 * i, side_rgb[p->is_key], 3);
    }
    char title[128], path[4096];
    snprintf(title, sizeof title, "queries and keys of %s layer %d head %d: %s%s",
             av_attn_kind_name(qk->kind), qk->layer, qk->head, name,
             by_pos ? " (color: position / length)" : "");
    snprintf(path, sizeof path, "%s/figures/qk-%s%s.png", dir, name, by_pos ? "-position" : "");
    av_chart_scatter s = {.title = title,
                          .n = qk->n,
                          .xy = xy,
                          .rgb = rgb,
                          .n_legend = by_pos ? 0 : 2,
                          .legend_labels = side_names,
                          .legend_rgb = &side_rgb[0][0],
                          .colorbar = by_pos,
                          .cmap = AV_CMAP_VIRIDIS,
                          .vmin = 0,
                          .vmax = 1};
    int rc = av_chart_scatter_png(&s, path, FIG_DPI, err);
    free(rgb);
    return rc;
}

int av_corpus_report_figures(const av_corpus_report *r, const char *dir, av_err *err) {
    const av_corpus_acc *a = r->acc;
    for (int g = 0; a->ready && a->n_examples && g < a->layout.n_groups; g++) {
        if (role_grid(a, g, dir, err)) return -1;
        for (size_t k = 0; k < sizeof k_grid_metrics / sizeof k_grid_metrics[0]; k++)
            if (metric_grid(a, g, k_grid_metrics[k], dir, err)) return -1;
        if (a->layout.groups[g].positional && positions_grid(a, g, dir, err)) return -1;
    }
    if (!r->qk || !r->map || r->qk->n == 0) return 0;
    for (int by_pos = 0; by_pos < 2; by_pos++)
        if (qk_scatter(r, r->map->pca, "pca", by_pos, dir, err) ||
            (r->map->tsne && qk_scatter(r, r->map->tsne, "tsne", by_pos, dir, err)))
            return -1;
    return 0;
}
