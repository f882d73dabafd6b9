/* attnviz show: one head (or the mean/max/min over heads) of a trace as a terminal heatmap. */
#include "cli.h"
#include "render/render.h"

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

int cmd_show(int argc, char **argv) {
    const char *cmd = "show";
    cli_args a;
    int early;
    if (cli_start(argc, argv, opts, sizeof opts / sizeof opts[0],
                  "usage: attnviz show TRACE [--layer L] [--head H|mean|max|min]\n", 1, &a, cmd, &early))
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
