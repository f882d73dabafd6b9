/* attnviz render: a trace -> PNG or SVG heatmap (one head, a reduction over heads or layers, a zoomed window,
 * or the layers x heads grid), the selection's numbers as CSV or .npy, or with --steps the step figure
 * (tokens colored by probability, target-by-source attention). */
#include "cli.h"

#include "io/npy.h"
#include "render/plot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const cli_opt_spec opts[] = {
    CLI_SELECTION_OPTS,
    {"grid", 0, "            all layers x heads as thumbnails (one shared color scale)"},
    {"cmap", 1, "NAME        viridis (default), magma, diverging"},
    {"log", 0, "            log color scale over the 4 decades below the maximum"},
    {"dpi", 1, "N           PNG resolution in dots per inch (default 150; 300 for print)"},
    {"cell", 1, "PX          cell size in CSS px (1/96 inch) (default: automatic)"},
    {"cells", 1,
     "N          at most N cells a side: larger windows are pooled (default 1024 for figures, "
     "4096 for .csv/.npy)"},
    {"vmin", 1, "X           lower end of the color scale (with --vmax)"},
    {"vmax", 1, "X           upper end of the color scale (default: the maximum shown)"},
    {"title", 1, "TEXT        figure title (default: model, layer, head)"},
    {"attr", 1,
     "METHOD      draw the trace's attribution (occlusion, shapley, saliency, ixg, ig, attn-grad)"},
    {"lens", 0, "            draw the trace's logit lens (layers x positions of top tokens)"},
    {"positions", 1, "A-B   --lens: the positions drawn (default: all, at most the last 256)"},
    {"steps", 0,
     "            the step figure: tokens colored by probability, attention of each produced token"},
    {"color-by", 1, "prob|entropy  --steps: color tokens by probability (default) or entropy"},
    CLI_DAAM_OPTS,
    {"output", 1, "PATH        output file: .png, .svg, .csv or .npy (required); also -o"},
    {"o", 1, "PATH        same as --output"},
    {"progress", 0, "        show progress on stderr (default: only on a terminal)"},
    {"help", 0, "            show this help"},
};
enum { N_OPTS = sizeof opts / sizeof opts[0] };

/* Text-to-image traces: the generated image and the DAAM map of --word (or of every prompt token). */
static int render_daam(const cli_args *a, const char *cmd, const av_trace *t, const char *out, long dpi) {
    av_daam_plot_params dp;
    av_err err = {{0}};
    int w, h;
    for (const char *o = "grid\0log\0exclude-first\0cell\0vmin\0vmax\0color-by\0"; *o; o += strlen(o) + 1)
        if (cli_has(a, o)) return cli_failf(cmd, "--%s does not apply to DAAM maps", o);
    if (cli_daam_params(a, cmd, &dp)) return 2;
    dp.dpi = (double)dpi;
    dp.title = cli_get(a, "title");
    if (av_daam_render(t, &dp, out, &w, &h, &err)) return cli_fail(cmd, &err);
    fprintf(stderr, "attnviz render: DAAM map%s, %d x %d image -> %s\n",
            dp.word ? " of the word" : "s of every token", w, h, out);
    return 0;
}

/* A CSV field: the label in double quotes, its quotes doubled. */
static void csv_label(av_buf *b, const char *s) {
    av_buf_put(b, "\"", 1);
    for (; *s; s++) {
        av_buf_put(b, s, 1);
        if (*s == '"') av_buf_put(b, "\"", 1);
    }
    av_buf_put(b, "\"", 1);
}

/* The selection as CSV: a header of key labels, then one line per query: its label, then the weights. */
static int write_csv(const char *path, const cli_matrix *m, av_err *err) {
    av_buf b = {0};
    csv_label(&b, "query\\key");
    for (int c = 0; c < m->cols; c++) {
        av_buf_put(&b, ",", 1);
        csv_label(&b, m->col_labels[c]);
    }
    for (int r = 0; r < m->rows; r++) {
        av_buf_put(&b, "\n", 1);
        csv_label(&b, m->row_labels[r]);
        for (int c = 0; c < m->cols; c++)
            av_buf_printf(&b, ",%.9g", (double)m->data[(size_t)r * (size_t)m->cols + (size_t)c]);
    }
    av_buf_put(&b, "\n", 1);
    av_atomic_file f;
    int rc = b.oom ? av_errf(err, "out of memory") : av_atomic_open(&f, path, err);
    if (!rc && av_atomic_write(&f, b.s, b.n, err)) {
        av_atomic_abort(&f);
        rc = -1;
    } else if (!rc) {
        rc = av_atomic_commit(&f, err);
    }
    free(b.s);
    return rc;
}

/* The figure options; -1 after printing the error. */
static int figure_params(const cli_args *a, const char *cmd, av_plot_params *p) {
    long dpi;
    double cell = 0, vmin = 0, vmax = 0;
    av_err err = {{0}};
    if (cli_get_int(a, "dpi", 150, 10, 2400, &dpi, cmd) ||
        cli_get_num(a, "cell", 0, 0, 200, "in [0, 200] CSS px", &cell, cmd) ||
        cli_get_num(a, "vmin", 0, -HUGE_VAL, HUGE_VAL, NULL, &vmin, cmd) ||
        cli_get_num(a, "vmax", 0, -HUGE_VAL, HUGE_VAL, NULL, &vmax, cmd))
        return -1;
    if (cli_has(a, "vmin") != cli_has(a, "vmax") && cli_has(a, "vmin"))
        return cli_failf(cmd, "--vmin needs --vmax too") ? -1 : -1;
    p->dpi = (double)dpi;
    p->cell = cell;
    p->vmin = (float)vmin;
    p->vmax = (float)vmax;
    p->log_scale = cli_has(a, "log");
    p->title = cli_get(a, "title");
    if (cli_get(a, "cmap") && av_cmap_parse(cli_get(a, "cmap"), &p->cmap, &err))
        return cli_fail(cmd, &err) ? -1 : -1;
    return 0;
}

/* The layers x heads grid of the kind. */
static int render_grid(const cli_args *a, const char *cmd, const av_trace *t, av_attn_kind kind,
                       av_plot_params *p, const char *out) {
    av_err err = {{0}};
    av_plot_geom g;
    if (cli_has(a, "head") || cli_has(a, "layer") || cli_has(a, "rows") || cli_has(a, "cols"))
        return cli_failf(cmd, "--grid draws every layer and head: drop --layer/--head/--rows/--cols");
    p->grid = 1;
    p->kind = kind;
    p->exclude_first = cli_has(a, "exclude-first");
    if (av_plot_render(t, p, out, &g, &err)) return cli_fail(cmd, &err);
    fprintf(stderr, "attnviz render: %d layers x %d heads, %d x %d image -> %s\n", av_trace_n_layers(t, kind),
            av_trace_n_heads(t, kind), g.width, g.height, out);
    return 0;
}

/* --attr METHOD or --lens: the attribution or logit-lens figure of the trace. */
static int render_attr_or_lens(const cli_args *a, const av_trace *t, const char *out, double dpi) {
    const char *cmd = "render", *cmap = cli_get(a, "cmap");
    av_err err = {{0}};
    int w = 0, h = 0, rc;
    if (cli_has(a, "attr")) {
        av_attr_plot_params p = av_attr_plot_default_params();
        if (cli_get_attr_method(a, cmd, &p.method)) return 2;
        p.dpi = dpi;
        p.title = cli_get(a, "title");
        rc = av_attr_render(t, &p, out, &w, &h, &err);
    } else {
        av_lens_plot_params p = av_lens_plot_default_params();
        p.dpi = dpi;
        p.title = cli_get(a, "title");
        if (cli_get_positions(a, cmd, &p.pos0, &p.pos1)) return 2;
        if (cmap && av_cmap_parse(cmap, &p.cmap, &err)) return cli_fail(cmd, &err);
        rc = av_lens_render(t, &p, out, &w, &h, &err);
    }
    if (rc) return cli_fail(cmd, &err);
    fprintf(stderr, "attnviz render: %d x %d image -> %s\n", w, h, out);
    return 0;
}

/* attnviz render --steps (also for a trace without attention, which has no heatmap). */
static int render_steps(const cli_args *a, const char *cmd, const av_trace *t, const char *out, long dpi) {
    av_steps_plot_params sp = av_steps_plot_default_params();
    const char *by = cli_get(a, "color-by");
    long layer;
    if (cli_get_int(a, "layer", -1, -1000000, 1000000, &layer, cmd) || cli_get_steps_head(a, cmd, &sp.head))
        return 2;
    if (by && strcmp(by, "prob") && strcmp(by, "entropy"))
        return cli_failf(cmd, "--color-by must be prob or entropy, got '%s'", by);
    for (const char *o = "grid\0log\0exclude-first\0cell\0vmin\0vmax\0cmap\0rows\0cols\0cells\0pool\0"; *o;
         o += strlen(o) + 1)
        if (cli_has(a, o)) return cli_failf(cmd, "--%s does not apply to the step figure", o);
    sp.by_entropy = by && !strcmp(by, "entropy");
    av_attn_kind kind;
    if (cli_has(a, "kind")) {
        if (cli_get_kind(a, cmd, &kind)) return 2;
        sp.kind = (int)kind;
    }
    sp.layer = (int)layer;
    sp.dpi = (double)dpi;
    sp.title = cli_get(a, "title");
    av_err err = {{0}};
    int w, h;
    if (av_steps_render(t, &sp, out, &w, &h, &err)) return cli_fail(cmd, &err);
    fprintf(stderr, "attnviz render: step figure of %d tokens, %d x %d image -> %s\n", av_trace_n_tokens(t),
            w, h, out);
    return 0;
}

int cmd_render(int argc, char **argv) {
    const char *cmd = "render";
    cli_args a;
    int early;
    if (cli_start(
            argc, argv, opts, N_OPTS,
            "usage: attnviz render TRACE [--layer L|mean|max|min] [--head H|mean|max|min | --grid] "
            "[--rows A:B --cols C:D] -o OUT.png|.svg|.csv|.npy\n"
            "       attnviz render TRACE --attr METHOD | --lens -o OUT.png|OUT.svg\n"
            "       attnviz render T2I_TRACE [--word W] [--step-range A:B] [--layer-range A:B] -o OUT.png\n",
            -1, &a, cmd, &early))
        return early;
    int rc = 1;
    av_trace *t = NULL;
    av_err err = {{0}};
    av_plot_params p = av_plot_default_params();
    const char *out = cli_output(&a, NULL), *ext = out ? av_path_extension(out) : "";
    int data = !strcasecmp(ext, ".csv") || !strcasecmp(ext, ".npy");
    cli_matrix mx = {0};
    cli_progress prog;
    cli_progress_start(&prog, &a, cmd);
    long cells;
    if (a.n_positional != 1) {
        cli_failf(cmd, a.n_positional ? "give one trace file"
                                      : "no trace file given (attnviz render TRACE -o OUT.png)");
        goto done;
    }
    if (!out) {
        cli_failf(cmd, "no output given: -o OUT.png, OUT.svg, OUT.csv or OUT.npy");
        goto done;
    }
    if (!data && strcasecmp(ext, ".png") && strcasecmp(ext, ".svg")) {
        cli_failf(cmd, "%s: the output name must end in .png, .svg, .csv or .npy", out);
        goto done;
    }
    if (cli_get_int(&a, "cells", data ? 4096 : 1024, 1, 65536, &cells, cmd) || figure_params(&a, cmd, &p))
        goto done;
    int attr_lens = cli_has(&a, "attr") || cli_has(&a, "lens");
    if (attr_lens && (data || cli_has(&a, "grid") || cli_has(&a, "head") || cli_has(&a, "layer"))) {
        cli_failf(cmd, "--attr and --lens draw their own figure (.png or .svg): drop --grid/--layer/--head");
        goto done;
    }
    av_attn_kind kind;
    cli_sel sel;
    if (cli_load_trace(&a, cmd, &t, &kind)) goto done;
    if (attr_lens) {
        rc = render_attr_or_lens(&a, t, out, p.dpi);
        goto done;
    }
    if (cli_daam_wanted(&a, t)) {
        rc = render_daam(&a, cmd, t, out, (long)p.dpi);
        goto done;
    }
    if (!cli_has(&a, "steps") && cli_no_attention_hint(t, cmd)) goto done;
    if (cli_has(&a, "steps") || !av_trace_has_attention(t)) {
        if (!cli_has(&a, "steps"))
            fprintf(stderr, "attnviz render: this trace holds no attention weights (%s): drawing its steps\n",
                    av_trace_meta(t, "generation") ? "the provider returns none" : "none stored");
        rc = data ? cli_failf(cmd, "the step figure is a .png or .svg")
                  : render_steps(&a, cmd, t, out, (long)p.dpi);
        goto done;
    }
    if (cli_has(&a, "grid")) {
        rc = data ? cli_failf(cmd, "--grid draws a figure: write it as .png or .svg")
                  : render_grid(&a, cmd, t, kind, &p, out);
        goto done;
    }
    if (cli_get_sel(&a, cmd, t, kind, AV_HEADS_MEAN, &sel) ||
        cli_sel_matrix(t, &sel, (int)cells, (int)cells, &mx, &prog, cmd))
        goto done;
    char title[512];
    cli_sel_title(t, &sel, &mx, title, sizeof title);
    if (data) {
        if (!strcasecmp(ext, ".npy") ? av_npy_write_f32(out, mx.data, mx.rows, mx.cols, &err)
                                     : write_csv(out, &mx, &err)) {
            cli_fail(cmd, &err);
            goto done;
        }
        fprintf(stderr, "attnviz render: %s, %d x %d values%s -> %s\n", title, mx.rows, mx.cols,
                mx.pooled ? " (pooled: raise --cells or narrow --rows/--cols for every token)" : "", out);
        rc = 0;
        goto done;
    }
    p.kind = kind;
    p.title = p.title ? p.title : title;
    p.matrix = mx.data;
    p.n_rows = mx.rows;
    p.n_cols = mx.cols;
    p.row_labels = mx.row_labels;
    p.col_labels = mx.col_labels;
    av_plot_geom g;
    if (av_plot_render(t, &p, out, &g, &err)) {
        cli_fail(cmd, &err);
        goto done;
    }
    fprintf(stderr, "attnviz render: %d x %d cells, %d x %d image -> %s\n", g.n_rows, g.n_cols, g.width,
            g.height, out);
    rc = 0;
done:
    cli_matrix_free(&mx);
    av_trace_free(t);
    cli_args_free(&a);
    return rc;
}
