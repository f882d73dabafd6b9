/* attnviz show: one head (or the mean/max/min over heads) of a trace as a terminal heatmap, or with --steps
 * the tokens with their probabilities, alternatives and attended tokens. */
#include "cli.h"
#include "render/render.h"
#include "trace/logprobs.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const cli_opt_spec opts[] = {
    {"layer", 1, "L         layer to show (default 0; negative counts from the end)"},
    {"head", 1, "H|mean|max|min  head index or reduction over heads (default mean)"},
    {"kind", 1, "K          self, enc, dec or cross (default: the first present)"},
    {"cmap", 1, "NAME       viridis (default), magma or diverging"},
    {"log", 0, "             color on a log scale"},
    {"colors", 1, "MODE     auto (default), truecolor, 256 or none"},
    {"width", 1, "N        columns to use (default: the terminal's)"},
    {"height", 1, "N       rows to use (default: the terminal's)"},
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

/* Labels of n tokens: encoder-decoder kinds use the metadata lists (enc: source x source, dec: target x
 * target, cross: target rows x source columns), other kinds the trace tokens; NULL entries when they do not
 * fit. *meta receives the parsed JSON list (or NULL), which owns the strings. */
static const char **token_labels(const av_trace *t, av_attn_kind kind, int n, int source_side,
                                 json_t **meta) {
    const char **labels = calloc((size_t)(n > 0 ? n : 1), sizeof *labels);
    *meta = NULL;
    if (!labels) return NULL;
    const char *key = kind == AV_ATTN_ENC || (kind == AV_ATTN_CROSS && source_side) ? "source_tokens"
                      : kind == AV_ATTN_DEC || kind == AV_ATTN_CROSS                ? "target_tokens"
                                                                                    : NULL;
    const char *text = key ? av_trace_meta(t, key) : NULL;
    if (text) {
        *meta = json_loads(text, 0, NULL);
        if (json_is_array(*meta) && json_array_size(*meta) == (size_t)n) {
            for (int i = 0; i < n; i++)
                labels[i] = json_string_value(json_array_get(*meta, (size_t)i));
            return labels;
        }
    }
    int same = av_trace_n_tokens(t) == n && (kind == AV_ATTN_SELF || !source_side);
    for (int i = 0; i < n; i++)
        labels[i] = same ? av_trace_token(t, i) : NULL;
    return labels;
}

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

/* --head for the step view: an index, mean or max. */
static int parse_head(const char *h, int *out) {
    char *end;
    long v = h ? strtol(h, &end, 10) : 0;
    if (!h || !strcmp(h, "mean"))
        *out = AV_HEADS_MEAN;
    else if (!strcmp(h, "max"))
        *out = AV_HEADS_MAX;
    else if (*end || end == h || v < 0 || v > 65535)
        return -1;
    else
        *out = (int)v;
    return 0;
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
    if (parse_head(cli_get(a, "head"), &sp.head))
        return cli_failf(cmd, "--steps: --head must be a head index, mean or max, got '%s'",
                         cli_get(a, "head"));
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

int cmd_show(int argc, char **argv) {
    const char *cmd = "show";
    cli_args a;
    int early;
    if (cli_start(argc, argv, opts, sizeof opts / sizeof opts[0],
                  "usage: attnviz show TRACE [--layer L] [--head H|mean|max|min]\n"
                  "       attnviz show TRACE --attr METHOD | --lens [--positions A-B]\n",
                  1, &a, cmd, &early))
        return early;
    int rc = 1;
    av_trace *t = NULL;
    float *mat = NULL;
    const char **labels = NULL, **col_labels = NULL;
    json_t *row_meta = NULL, *col_meta = NULL;
    av_err err = {{0}};
    long layer, width, height;
    av_term_params tp = av_term_default_params();
    if (cli_get_int(&a, "layer", 0, -100000, 100000, &layer, cmd) ||
        cli_get_int(&a, "width", 0, 0, 100000, &width, cmd) ||
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
    int n_layers = av_trace_n_layers(t, kind);
    if (layer < 0) layer += n_layers;
    av_attn_view v;
    if (av_trace_attn(t, kind, (int)layer, &v, &err)) {
        cli_fail(cmd, &err);
        goto done;
    }
    const char *head = cli_get(&a, "head") ? cli_get(&a, "head") : "mean";
    mat = malloc(sizeof(float) * (size_t)v.n_query * (size_t)v.n_key);
    labels = token_labels(t, kind, v.n_query, 0, &row_meta);
    col_labels = token_labels(t, kind, v.n_key, 1, &col_meta);
    if (!mat || !labels || !col_labels) {
        cli_failf(cmd, "out of memory");
        goto done;
    }
    if (av_attn_select_heads(&v, head, mat, &err)) {
        cli_fail(cmd, &err);
        goto done;
    }
    char title[256];
    const char *model = av_trace_meta(t, "model");
    snprintf(title, sizeof title, "%s  %s layer %ld/%d  head %s  (%d queries x %d keys)",
             model ? model : "trace", av_attn_kind_name(kind), layer, n_layers - 1, head, v.n_query, v.n_key);
    tp.title = title;
    tp.log_scale = cli_has(&a, "log");
    tp.width = (int)width;
    tp.height = (int)height;
    if (av_term_heatmap(stdout, mat, v.n_query, v.n_key, labels, col_labels, &tp, &err)) {
        cli_fail(cmd, &err);
        goto done;
    }
    rc = 0;
done:
    free(labels);
    free(col_labels);
    json_decref(row_meta);
    json_decref(col_meta);
    free(mat);
    av_trace_free(t);
    cli_args_free(&a);
    return rc;
}
