/* attnviz render: a trace -> PNG or SVG heatmap (one head, the mean/max over heads, or the layers x heads
 * grid), or with --steps the step figure (tokens colored by probability, target-by-source attention). */
#include "cli.h"

#include "render/plot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const cli_opt_spec opts[] = {
    {"layer", 1, "L           layer to draw (default 0)"},
    {"head", 1, "H|mean|max  head index, or the mean / max over heads (default mean)"},
    {"grid", 0, "            all layers x heads as thumbnails (one shared color scale)"},
    {"kind", 1, "K           attention kind: self (default), enc, dec, cross"},
    {"cmap", 1, "NAME        viridis (default), magma, diverging"},
    {"log", 0, "            log color scale over the 4 decades below the maximum"},
    {"exclude-first", 0, "            hide the first (sink) token and renormalize each row to sum 1"},
    {"dpi", 1, "N           PNG resolution in dots per inch (default 150; 300 for print)"},
    {"cell", 1, "PX          cell size in CSS px (1/96 inch) (default: automatic)"},
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
    {"output", 1, "PATH        output file, .png or .svg (required); also -o"},
    {"o", 1, "PATH        same as --output"},
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
static int render_steps(const cli_args *a, const char *cmd, const av_trace *t, const char *out, int head,
                        long dpi) {
    av_steps_plot_params sp = av_steps_plot_default_params();
    const char *by = cli_get(a, "color-by");
    long layer;
    if (cli_get_int(a, "layer", -1, -1000000, 1000000, &layer, cmd)) return 2;
    if (by && strcmp(by, "prob") && strcmp(by, "entropy"))
        return cli_failf(cmd, "--color-by must be prob or entropy, got '%s'", by);
    for (const char *o = "grid\0log\0exclude-first\0cell\0vmin\0vmax\0cmap\0"; *o; o += strlen(o) + 1)
        if (cli_has(a, o)) return cli_failf(cmd, "--%s does not apply to the step figure", o);
    sp.by_entropy = by && !strcmp(by, "entropy");
    av_attn_kind kind;
    if (cli_has(a, "kind")) {
        if (cli_get_kind(a, cmd, &kind)) return 2;
        sp.kind = (int)kind;
    }
    sp.layer = (int)layer;
    sp.head = head;
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
            "usage: attnviz render TRACE [--layer L] [--head H|mean|max | --grid] -o OUT.png|OUT.svg\n"
            "       attnviz render TRACE --attr METHOD | --lens -o OUT.png|OUT.svg\n"
            "       attnviz render T2I_TRACE [--word W] [--step-range A:B] [--layer-range A:B] -o OUT.png\n",
            -1, &a, cmd, &early))
        return early;
    int rc = 1;
    av_trace *t = NULL;
    av_err err = {{0}};
    av_plot_params p = av_plot_default_params();
    const char *out = cli_output(&a, NULL);
    const char *head = cli_get(&a, "head"), *cmap = cli_get(&a, "cmap");
    long layer, dpi;
    double cell = 0, vmin = 0, vmax = 0;
    if (a.n_positional != 1) {
        cli_failf(cmd, a.n_positional ? "give one trace file"
                                      : "no trace file given (attnviz render TRACE -o OUT.png)");
        goto done;
    }
    if (!out) {
        cli_failf(cmd, "no output given: -o OUT.png or -o OUT.svg");
        goto done;
    }
    if (cli_get_int(&a, "layer", 0, cli_has(&a, "steps") ? -1000000 : 0, 1000000, &layer, cmd) ||
        cli_get_int(&a, "dpi", 150, 10, 2400, &dpi, cmd) ||
        cli_get_num(&a, "cell", 0, 0, 200, "in [0, 200] CSS px", &cell, cmd) ||
        cli_get_num(&a, "vmin", 0, -HUGE_VAL, HUGE_VAL, NULL, &vmin, cmd) ||
        cli_get_num(&a, "vmax", 0, -HUGE_VAL, HUGE_VAL, NULL, &vmax, cmd))
        goto done;
    if (cli_has(&a, "vmin") != cli_has(&a, "vmax") && cli_has(&a, "vmin")) {
        cli_failf(cmd, "--vmin needs --vmax too");
        goto done;
    }
    p.layer = (int)layer;
    p.dpi = (double)dpi;
    p.cell = cell;
    p.vmin = (float)vmin;
    p.vmax = (float)vmax;
    p.grid = cli_has(&a, "grid");
    p.log_scale = cli_has(&a, "log");
    p.exclude_first = cli_has(&a, "exclude-first");
    p.title = cli_get(&a, "title");
    if (cli_get_kind(&a, cmd, &p.kind)) goto done;
    p.head = AV_HEAD_MEAN;
    if (head && strcmp(head, "mean") == 0) {
        p.head = AV_HEAD_MEAN;
    } else if (head && strcmp(head, "max") == 0) {
        p.head = AV_HEAD_MAX;
    } else if (head) {
        char *end;
        long h = strtol(head, &end, 10);
        if (end == head || *end || h < 0 || h > 65535) {
            cli_failf(cmd, "--head must be a head index, 'mean' or 'max', got '%s'", head);
            goto done;
        }
        p.head = (int)h;
    }
    if (p.grid && (head || cli_has(&a, "layer"))) {
        cli_failf(cmd, "--grid draws every layer and head: drop --layer/--head");
        goto done;
    }
    if (cmap && av_cmap_parse(cmap, &p.cmap, &err)) {
        cli_fail(cmd, &err);
        goto done;
    }
    if ((cli_has(&a, "attr") || cli_has(&a, "lens")) && (p.grid || head || cli_has(&a, "layer"))) {
        cli_failf(cmd, "--attr and --lens draw their own figure: drop --grid/--layer/--head");
        goto done;
    }
    if (cli_has(&a, "attr") || cli_has(&a, "lens")) {
        rc = av_trace_load(a.positional[0], &t, &err) ? cli_fail(cmd, &err)
                                                      : render_attr_or_lens(&a, t, out, p.dpi);
        goto done;
    }
    av_plot_geom g;
    if (av_trace_load(a.positional[0], &t, &err)) {
        cli_fail(cmd, &err);
        goto done;
    }
    if (cli_daam_wanted(&a, t)) {
        rc = render_daam(&a, cmd, t, out, dpi);
        goto done;
    }
    if (!cli_has(&a, "steps") && cli_no_attention_hint(t, cmd)) goto done;
    if (cli_has(&a, "steps") || !av_trace_has_attention(t)) {
        if (!cli_has(&a, "steps"))
            fprintf(stderr, "attnviz render: this trace holds no attention weights (%s): drawing its steps\n",
                    av_trace_meta(t, "generation") ? "the provider returns none" : "none stored");
        rc = render_steps(&a, cmd, t, out, p.head, dpi);
        goto done;
    }
    if (av_plot_render(t, &p, out, &g, &err)) {
        cli_fail(cmd, &err);
        goto done;
    }
    fprintf(stderr, "attnviz render: %d x %d cells, %d x %d image -> %s\n", g.n_rows, g.n_cols, g.width,
            g.height, out);
    rc = 0;
done:
    av_trace_free(t);
    cli_args_free(&a);
    return rc;
}
