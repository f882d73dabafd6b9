/* The matrix a selection (cli_sel: kind, layer or a reduction over layers, head or a reduction over heads,
 * token window, first token excluded) shows, fitted to the cells an output can hold: exact values when the
 * window fits, else cells pooled over several tokens, through the tile API (av_trace_attn_tile_ex), which
 * answers a whole lazy matrix from its stored overview at once. Shared by show, render and html. */
#include "cli.h"
#include "core/core.h"
#include "render/plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Above this many cells in a window, a stored overview answers instead of a recompute at a finer size. */
#define RECOMPUTE_MAX_CELLS (4096.0 * 4096.0)

/* The largest divisor of n that is at most cap. */
static int divisor_at_most(int n, int cap) {
    for (int d = cap < n ? cap : n; d > 1; d--)
        if (n % d == 0) return d;
    return 1;
}

/* Whether the stored overview of the kind can answer the selection's whole-matrix cells. */
static int overview_usable(const av_trace *t, const cli_sel *s, av_pool pool, int *orr, int *oc) {
    av_trace_overview_cells(t, s->kind, orr, oc);
    return *orr && !s->exclude_first && s->q0 == 0 && s->q1 == s->n_query && s->k0 == 0 &&
           s->k1 == s->n_key &&
           (s->head >= 0 || (s->head == AV_HEADS_MEAN && pool == AV_POOL_MEAN) ||
            (s->head == AV_HEADS_MAX && pool == AV_POOL_MAX));
}

/* Cells and pooling for the window in at most max_r x max_c cells. */
static void fit(const av_trace *t, const cli_sel *s, int max_r, int max_c, cli_matrix *m) {
    int wr = s->q1 - s->q0, wc = s->k1 - s->k0, orr, oc;
    m->pool = s->pool;
    if (!s->pool_given && s->head == AV_HEADS_MEAN && overview_usable(t, s, AV_POOL_MEAN, &orr, &oc))
        m->pool = AV_POOL_MEAN; /* the mean of the heads, answered at once from the overview */
    m->rows = wr < max_r ? wr : max_r;
    m->cols = wc < max_c ? wc : max_c;
    if ((m->rows < wr || m->cols < wc) && (double)wr * wc >= RECOMPUTE_MAX_CELLS &&
        overview_usable(t, s, m->pool, &orr, &oc)) {
        m->rows = divisor_at_most(orr, max_r);
        m->cols = divisor_at_most(oc, max_c);
    }
    m->pooled = m->rows < wr || m->cols < wc;
}

/* Labels of n cells over tokens [lo, hi): the token's label, or "a-b" for a cell over several tokens. */
static char **cell_labels(char **tok, int lo, int hi, int n) {
    char **out = calloc((size_t)n, sizeof *out), buf[48];
    for (int i = 0; out && i < n; i++) {
        int a = lo + (int)((int64_t)i * (hi - lo) / n), b = lo + (int)((int64_t)(i + 1) * (hi - lo) / n);
        if (b - a == 1) {
            out[i] = av_strdup(tok[a]);
        } else {
            snprintf(buf, sizeof buf, "%d-%d", a, b - 1);
            out[i] = av_strdup(buf);
        }
        if (!out[i]) {
            av_plot_labels_free(out, n);
            return NULL;
        }
    }
    return out;
}

/* The cells of one layer into out (rows, cols). */
static int layer_cells(const av_trace *t, const cli_sel *s, int layer, const cli_matrix *m, float *out,
                       av_err *err) {
    av_tile_params p = {s->kind, layer,   s->head, s->q0,   s->q1,           s->k0,
                        s->k1,   m->rows, m->cols, m->pool, s->exclude_first};
    return av_trace_attn_tile_ex(t, &p, out, err);
}

/* The layers' cells reduced into m->data (one layer, or mean / max / min over every layer). */
static int reduce_layers(const av_trace *t, const cli_sel *s, cli_matrix *m, cli_progress *prog,
                         av_err *err) {
    size_t n = (size_t)m->rows * (size_t)m->cols;
    if (s->layer >= 0) return layer_cells(t, s, s->layer, m, m->data, err);
    float *tmp = malloc(sizeof(float) * n);
    if (!tmp) return av_errf(err, "out of memory");
    int rc = 0;
    for (int l = 0; !rc && l < s->n_layers; l++) {
        char what[48];
        snprintf(what, sizeof what, "layer %d of %d", l + 1, s->n_layers);
        if (prog) cli_progress_show(prog, (double)l / s->n_layers, what);
        if ((rc = layer_cells(t, s, l, m, l ? tmp : m->data, err))) break;
        for (size_t i = 0; l && i < n; i++)
            m->data[i] = s->layer_reduce == AV_HEADS_MEAN  ? m->data[i] + tmp[i]
                         : s->layer_reduce == AV_HEADS_MAX ? fmaxf(m->data[i], tmp[i])
                                                           : fminf(m->data[i], tmp[i]);
    }
    for (size_t i = 0; !rc && s->layer_reduce == AV_HEADS_MEAN && i < n; i++)
        m->data[i] /= (float)s->n_layers;
    free(tmp);
    return rc;
}

int cli_sel_matrix(const av_trace *t, const cli_sel *s, int max_rows, int max_cols, cli_matrix *m,
                   cli_progress *prog, const char *cmd) {
    memset(m, 0, sizeof *m);
    fit(t, s, max_rows < 1 ? 1 : max_rows, max_cols < 1 ? 1 : max_cols, m);
    av_err err = {{0}};
    char **ql = NULL, **kl = NULL;
    int rc = -1;
    if (!(m->data = malloc(sizeof(float) * (size_t)m->rows * (size_t)m->cols))) {
        av_errf(&err, "out of memory for %d x %d cells", m->rows, m->cols);
        goto done;
    }
    if (reduce_layers(t, s, m, prog, &err) ||
        av_plot_labels(t, s->kind, s->n_query, s->n_key, &ql, &kl, &err))
        goto done;
    m->row_labels = cell_labels(ql, s->q0, s->q1, m->rows);
    m->col_labels = cell_labels(kl, s->k0, s->k1, m->cols);
    if (!m->row_labels || !m->col_labels) {
        av_errf(&err, "out of memory");
        goto done;
    }
    rc = 0;
done:
    if (prog) cli_progress_end(prog);
    av_plot_labels_free(ql, s->n_query);
    av_plot_labels_free(kl, s->n_key);
    if (rc) {
        cli_fail(cmd, &err);
        cli_matrix_free(m);
    }
    return rc;
}

void cli_matrix_free(cli_matrix *m) {
    free(m->data);
    if (m->row_labels) av_plot_labels_free(m->row_labels, m->rows);
    if (m->col_labels) av_plot_labels_free(m->col_labels, m->cols);
    memset(m, 0, sizeof *m);
}

void cli_sel_title(const av_trace *t, const cli_sel *s, const cli_matrix *m, char *buf, size_t n) {
    static const char *const kinds[AV_ATTN_KIND_COUNT] = {"", "encoder · ", "decoder · ",
                                                          "cross-attention · "};
    const char *model = av_trace_meta(t, "model");
    char h[16], l[16], layer[48], head[48], window[96] = "";
    if (s->layer >= 0)
        snprintf(layer, sizeof layer, "layer %d", s->layer);
    else
        snprintf(layer, sizeof layer, "%s of %d layers", cli_reduce_name(s->layer_reduce, l), s->n_layers);
    if (s->head >= 0)
        snprintf(head, sizeof head, "head %d", s->head);
    else
        snprintf(head, sizeof head, "%s of %d heads", cli_reduce_name(s->head, h), s->n_heads);
    if (s->window_given)
        snprintf(window, sizeof window, " · queries %d:%d × keys %d:%d", s->q0, s->q1, s->k0, s->k1);
    snprintf(buf, n, "%s · %s%s · %s%s%s%s", model ? model : "attention", kinds[s->kind], layer, head, window,
             s->exclude_first ? " · first token excluded" : "",
             m && m->pooled ? (m->pool == AV_POOL_MEAN ? " · mean-pooled" : " · max-pooled") : "");
}
