/* attnviz show: one head (or the mean/max/min over heads, or over layers) of a trace as a terminal heatmap;
 * long traces are pooled to the terminal (a lazy trace's overview answers at once) or zoomed with --rows /
 * --cols. With --steps, the tokens with their probabilities, alternatives and attended tokens. */
#include "cli.h"
#include "render/render.h"
#include "trace/logprobs.h"

#include <stdlib.h>
#include <string.h>

static const cli_opt_spec opts[] = {
    CLI_SELECTION_OPTS,
    {"cmap", 1, "NAME       viridis (default), magma or diverging"},
    {"log", 0, "             color on a log scale"},
    {"colors", 1, "MODE     auto (default), truecolor, 256 or none"},
    {"width", 1, "N        columns to use (default: the terminal's)"},
    {"height", 1, "N       rows to use (default: the terminal's)"},
    {"progress", 0, "        show progress on stderr (default: only on a terminal)"},
    {"attr", 1, "METHOD     show the trace's attribution (occlusion, shapley, saliency, ixg, ig, attn-grad)"},
    {"lens", 0, "            show the trace's logit lens (layers x positions of top tokens)"},
    {"positions", 1, "A-B  --lens: the positions shown (default: the last ones that fit)"},
    {"steps", 0, "            the step view: tokens colored by probability, alternatives, attended tokens"},
    {"color-by", 1, "prob|entropy  --steps: color tokens by probability (default) or entropy"},
    {"alternatives", 1, "N  --steps: alternatives per line (default 5)"},
    {"all", 0, "            --steps: a line for every token, the prompt's too"},
    {"json", 0, "            --steps: print the step data as JSON (tokens, log-probabilities, alternatives)"},
    CLI_DAAM_OPTS,
    {"help", 0, "            show this help"},
};

static int parse_colors(const char *s, av_color_mode *out) {
    if (!s || !strcmp(s, "auto"))
        *out = AV_COLOR_AUTO;
    else if (!strcmp(s, "truecolor"))
        *out = AV_COLOR_TRUECOLOR;
    else if (!strcmp(s, "256"))
        *out = AV_COLOR_256;
    else if (!strcmp(s, "none"))
        *out = AV_COLOR_NONE;
    else
        return -1;
    return 0;
}

/* --attr METHOD or --lens: the attribution or the logit lens of the trace instead of an attention head. */
static int show_attr_or_lens(const cli_args *a, const av_trace *t, av_color_mode color, int width) {
    const char *cmd = "show";
    av_err err = {{0}};
    if (cli_has(a, "attr")) {
        av_attr_term_params p = av_attr_term_default_params();
        if (cli_get_attr_method(a, cmd, &p.method)) return 2;
        p.color = color;
        p.width = width;
        return av_term_attr(stdout, t, &p, &err) ? cli_fail(cmd, &err) : 0;
    }
    av_lens_term_params p = av_lens_term_default_params();
    p.color = color;
    p.width = width;
    if (cli_get_positions(a, cmd, &p.pos0, &p.pos1)) return 2;
    return av_term_lens(stdout, t, &p, &err) ? cli_fail(cmd, &err) : 0;
}

/* attnviz show --steps (also a trace without attention, which has no heatmap). */
static int show_steps(const cli_args *a, const char *cmd, const av_trace *t) {
    av_err err = {{0}};
    if (cli_has(a, "json")) {
        json_t *j = av_steps_json(t, 1024, &err);
        if (!j) return cli_fail(cmd, &err);
        int rc = json_dumpf(j, stdout, JSON_COMPACT | JSON_ENSURE_ASCII);
        json_decref(j);
        fputc('\n', stdout);
        return rc ? cli_failf(cmd, "write failed") : 0;
    }
    av_steps_term_params sp = av_steps_term_default_params();
    long layer, alts, width;
    const char *by = cli_get(a, "color-by");
    if (cli_get_int(a, "layer", -1, -100000, 100000, &layer, cmd) ||
        cli_get_int(a, "alternatives", 5, 0, 1024, &alts, cmd) ||
        cli_get_int(a, "width", 0, 0, 100000, &width, cmd))
        return 2;
    if (by && strcmp(by, "prob") && strcmp(by, "entropy"))
        return cli_failf(cmd, "--color-by must be prob or entropy, got '%s'", by);
    if (cli_get_steps_head(a, cmd, &sp.head)) return 2;
    if (parse_colors(cli_get(a, "colors"), &sp.color))
        return cli_failf(cmd, "--colors must be auto, truecolor, 256 or none");
    sp.by_entropy = by && !strcmp(by, "entropy");
    sp.n_alts = (int)alts;
    sp.layer = (int)layer;
    av_attn_kind kind;
    if (cli_has(a, "kind")) {
        if (cli_get_kind(a, cmd, &kind)) return 2;
        sp.kind = (int)kind;
    }
    sp.all = cli_has(a, "all");
    sp.width = (int)width;
    if (av_term_steps(stdout, t, &sp, &err)) return cli_fail(cmd, &err);
    return 0;
}

/* The cells the terminal holds: two matrix rows per text line (one in NONE mode), a label column, the
 * title, ruler and colorbar lines. */
static void term_cells(const av_term_params *tp, int *rows, int *cols) {
    int w = tp->width, h = tp->height;
    av_term_detect_size(stdout, &w, &h);
    int lines = h - 8 > 4 ? h - 8 : 4;
    *rows = tp->color == AV_COLOR_NONE ? lines : 2 * lines;
    *cols = w - 18 > 8 ? w - 18 : 8;
}

int cmd_show(int argc, char **argv) {
    const char *cmd = "show";
    cli_args a;
    int early;
    if (cli_start(argc, argv, opts, sizeof opts / sizeof opts[0],
                  "usage: attnviz show TRACE [--layer L|mean|max|min] [--head H|mean|max|min] [--rows A:B] "
                  "[--cols C:D]\n"
                  "       attnviz show TRACE --attr METHOD | --lens [--positions A-B]\n",
                  1, &a, cmd, &early))
        return early;
    int rc = 1, max_r, max_c;
    av_trace *t = NULL;
    cli_matrix mx = {0};
    av_err err = {{0}};
    long width, height;
    av_term_params tp = av_term_default_params();
    cli_progress prog;
    cli_progress_start(&prog, &a, cmd);
    if (cli_get_int(&a, "width", 0, 0, 100000, &width, cmd) ||
        cli_get_int(&a, "height", 0, 0, 100000, &height, cmd))
        goto done;
    if (parse_colors(cli_get(&a, "colors"), &tp.color)) {
        cli_failf(cmd, "--colors must be auto, truecolor, 256 or none");
        goto done;
    }
    if (cli_get(&a, "cmap") && av_cmap_parse(cli_get(&a, "cmap"), &tp.cmap, &err)) {
        cli_fail(cmd, &err);
        goto done;
    }
    av_attn_kind kind;
    cli_sel sel;
    if (cli_load_trace(&a, cmd, &t, &kind)) goto done;
    if (cli_has(&a, "attr") || cli_has(&a, "lens")) {
        rc = show_attr_or_lens(&a, t, tp.color, (int)width);
        goto done;
    }
    if (!cli_has(&a, "steps") && cli_no_attention_hint(t, cmd)) goto done;
    if (cli_daam_wanted(&a, t)) {
        av_daam_plot_params dp;
        if (cli_daam_params(&a, cmd, &dp)) goto done;
        if (av_daam_term(t, &dp, stdout, tp.color, &err)) {
            cli_fail(cmd, &err);
            goto done;
        }
        rc = 0;
        goto done;
    }
    if (cli_has(&a, "steps") || !av_trace_has_attention(t)) {
        if (!cli_has(&a, "steps"))
            fprintf(stderr, "attnviz show: this trace holds no attention weights (%s): showing its steps\n",
                    av_trace_meta(t, "generation") ? "the provider returns none" : "none stored");
        rc = show_steps(&a, cmd, t);
        goto done;
    }
    if (cli_get_sel(&a, cmd, t, kind, AV_HEADS_MEAN, &sel)) goto done;
    tp.width = (int)width;
    tp.height = (int)height;
    term_cells(&tp, &max_r, &max_c);
    if (cli_sel_matrix(t, &sel, max_r, max_c, &mx, &prog, cmd)) goto done;
    char title[512], shape[160];
    cli_sel_title(t, &sel, &mx, title, sizeof title);
    int wc = sel.k1 - sel.k0;
    if (mx.cols < wc) { /* pooled keys: each column is labelled with its first key, read downward */
        for (int c = 0; c < mx.cols; c++)
            snprintf(mx.col_labels[c], strlen(mx.col_labels[c]) + 1, "%d",
                     sel.k0 + (int)((int64_t)c * wc / mx.cols));
        snprintf(shape, sizeof shape,
                 "  (%d queries x %d keys; a column: %d-%d keys, labelled with the first)", sel.q1 - sel.q0,
                 wc, wc / mx.cols, (wc + mx.cols - 1) / mx.cols);
    } else {
        snprintf(shape, sizeof shape, "  (%d queries x %d keys)", sel.q1 - sel.q0, wc);
    }
    strncat(title, shape, sizeof title - strlen(title) - 1);
    tp.title = title;
    tp.log_scale = cli_has(&a, "log");
    if (av_term_heatmap(stdout, mx.data, mx.rows, mx.cols, (const char *const *)mx.row_labels,
                        (const char *const *)mx.col_labels, &tp, &err)) {
        cli_fail(cmd, &err);
        goto done;
    }
    rc = 0;
done:
    cli_matrix_free(&mx);
    av_trace_free(t);
    cli_args_free(&a);
    return rc;
}
