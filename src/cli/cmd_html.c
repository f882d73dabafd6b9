/* attnviz html: a trace -> one standalone HTML file with the interactive viewer (works offline). */
#include "cli.h"

#include "render/plot.h"

#include <string.h>

static const cli_opt_spec opts[] = {
    {"output", 1, "PATH        HTML file to write (default: view.html); also -o"},
    {"o", 1, "PATH        same as --output"},
    {"precision", 1, "P           auto (default: f16 while the page stays under 4 MiB, else u8), f16, u8"},
    {"view", 1,
     "V           first view: heatmap, model, head, image, summary (roles), rollout, norm, steps, "
     "attribution, lens"},
    {"title", 1, "TEXT        page title (default: the model name)"},
    {"image", 1, "PNG         image traces: embed this picture under the patch attention"},
    {"roles", 1, "JSON        probe roles from `attnviz roles --json` (adds induction, duplicate-token)"},
    {"no-analysis", 0, "      leave out head statistics, rollout and value norms (smaller page)"},
    {"help", 0, "            show this help"},
};
enum { N_OPTS = sizeof opts / sizeof opts[0] };

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
    const char *out = cli_get(&a, "output") ? cli_get(&a, "output") : cli_get(&a, "o");
    const char *prec = cli_get(&a, "precision"), *view = cli_get(&a, "view");
    if (!out) out = "view.html";
    if (a.n_positional != 1) {
        cli_failf(cmd, a.n_positional ? "give one trace file"
                                      : "no trace file given (attnviz html TRACE -o view.html)");
        goto done;
    }
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
    p.precision = !prec || strcmp(prec, "auto") == 0 ? AV_HTML_AUTO
                  : strcmp(prec, "f16") == 0         ? AV_HTML_F16
                                                     : AV_HTML_U8;
    p.view = view;
    p.title = cli_get(&a, "title");
    p.image_path = cli_get(&a, "image");
    p.roles_path = cli_get(&a, "roles");
    p.analysis = !cli_has(&a, "no-analysis");
    size_t bytes = 0;
    if (av_trace_load(a.positional[0], &t, &err) || av_html_write(t, &p, out, &bytes, &err)) {
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
