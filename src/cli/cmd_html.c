/* attnviz html: a trace -> one standalone HTML file with the interactive viewer (works offline). Long traces
 * get a pooled overview of every head plus the query rows asked for, within a size budget. */
#include "cli.h"

#include "render/plot.h"

#include <string.h>

static const cli_opt_spec opts[] = {
    CLI_SELECTION_OPTS,
    {"output", 1, "PATH        HTML file to write (default: view.html); also -o"},
    {"o", 1, "PATH        same as --output"},
    {"precision", 1,
     "P           auto (default: f16 while the page stays under 4 MiB, 16 for images; else "
     "8-bit), f16, u8"},
    {"view", 1,
     "V           first view: heatmap, model, head, image, summary (roles), rollout, norm, steps, "
     "attribution, lens, neuron, rows, qkmap (the query/key map: --keep-qk or --lazy traces)"},
    {"title", 1, "TEXT        page title (default: the model name)"},
    {"image", 1, "PNG         image traces: embed this picture under the patch attention"},
    {"roles", 1, "JSON        probe roles from `attnviz roles --json` (adds induction, duplicate-token)"},
    {"no-analysis", 0, "      leave out head statistics, rollout and value norms (smaller page)"},
    {"max-mb", 1, "N         page size budget: longer traces are embedded as a pooled overview (default 32)"},
    {"progress", 0, "        (accepted for symmetry; the page is built in one pass)"},
    {"help", 0, "            show this help"},
};
enum { N_OPTS = sizeof opts / sizeof opts[0] };

/* The selection options as where the page starts: kind, layer, head, first token excluded; --rows asks for
 * exact rows (the Rows view). */
static int start_from_selection(const cli_args *a, const char *cmd, const av_trace *t, av_attn_kind kind,
                                av_html_params *p) {
    cli_sel sel;
    if (!av_trace_has_attention(t)) return 0; /* a model API's response: the page opens on its steps */
    if (cli_get_sel(a, cmd, t, kind, AV_HEADS_MEAN, &sel)) return -1;
    if (sel.layer_reduce || sel.head == AV_HEADS_MIN || cli_has(a, "cols") || cli_has(a, "pool"))
        return cli_failf(cmd,
                         "the page starts on one layer and a head, mean or max; --cols and --pool are for "
                         "show and render")
                   ? -1
                   : -1;
    p->kind = cli_has(a, "kind") ? (int)kind : -1;
    p->layer = sel.layer;
    p->head = sel.head;
    p->exclude_first = sel.exclude_first;
    if (cli_has(a, "rows")) p->rows_q0 = sel.q0, p->rows_q1 = sel.q1;
    return 0;
}

int cmd_html(int argc, char **argv) {
    const char *cmd = "html";
    cli_args a;
    int early;
    if (cli_start(argc, argv, opts, N_OPTS, "usage: attnviz html TRACE [-o view.html]\n", 1, &a, cmd, &early))
        return early;
    int rc = 1;
    av_trace *t = NULL;
    av_err err = {{0}};
    av_html_params p = av_html_default_params();
    const char *out = cli_output(&a, "view.html");
    const char *prec = cli_get(&a, "precision"), *view = cli_get(&a, "view");
    if (prec && strcmp(prec, "auto") != 0 && strcmp(prec, "f16") != 0 && strcmp(prec, "u8") != 0) {
        cli_failf(cmd, "--precision must be auto, f16 or u8, got '%s'", prec);
        goto done;
    }
    if (view && !av_html_view_valid(view)) {
        cli_failf(cmd, "--view must be one of %s, got '%s'", AV_HTML_VIEWS, view);
        goto done;
    }
    if (cli_has(&a, "no-analysis") && cli_get(&a, "roles")) {
        cli_failf(cmd, "--roles adds to the analysis that --no-analysis leaves out: choose one");
        goto done;
    }
    if (cli_get_num(&a, "max-mb", p.max_mb, 0.5, 4096, "in [0.5, 4096]", &p.max_mb, cmd)) goto done;
    p.precision = !prec || strcmp(prec, "auto") == 0 ? AV_HTML_AUTO
                  : strcmp(prec, "f16") == 0         ? AV_HTML_F16
                                                     : AV_HTML_U8;
    p.view = view;
    p.title = cli_get(&a, "title");
    p.image_path = cli_get(&a, "image");
    p.roles_path = cli_get(&a, "roles");
    p.analysis = !cli_has(&a, "no-analysis");
    av_attn_kind kind;
    size_t bytes = 0;
    if (cli_load_trace(&a, cmd, &t, &kind) || start_from_selection(&a, cmd, t, kind, &p)) goto done;
    if (av_html_write(t, &p, out, &bytes, &err)) {
        cli_fail(cmd, &err);
        goto done;
    }
    fprintf(stderr, "attnviz html: %.1f KiB -> %s\n", (double)bytes / 1024.0, out);
    rc = 0;
done:
    av_trace_free(t);
    cli_args_free(&a);
    return rc;
}
