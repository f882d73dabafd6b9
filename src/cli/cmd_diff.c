/* attnviz diff: two traces of the same tokens compared. The terminal gets the distance of every head (mean
 * total variation between the two traces' rows), the difference A − B of one head on a diverging map and the
 * log-probability differences per token; -o writes the diverging map as PNG/SVG or the viewer as HTML. */
#include "cli.h"

#include "analysis/analysis.h"
#include "core/core.h"
#include "render/plot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const cli_opt_spec opts[] = {
    {"layer", 1, "L           layer of the map (default: the layer of the most different head)"},
    {"head", 1, "H|mean|max  head of the map (default: the most different head)"},
    {"kind", 1, "K           attention kind: self, enc, dec, cross (default: the first both hold)"},
    {"common-prefix", 0, "            compare the longest common prefix of traces whose tokens differ"},
    {"grid", 0, "            -o PNG/SVG: every layer x head of the difference"},
    {"colors", 1, "MODE        auto (default), truecolor, 256 or none"},
    {"dpi", 1, "N           PNG resolution (default 150)"},
    {"output", 1,
     "PATH        write the difference: .png or .svg (diverging map) or .html (the viewer); also -o"},
    {"o", 1, "PATH        same as --output"},
    {"help", 0, "            show this help"},
};
enum { N_OPTS = sizeof opts / sizeof opts[0] };

typedef struct diff_choice {
    av_attn_kind kind;
    int layer, head; /* head index, AV_HEADS_MEAN or AV_HEADS_MAX */
} diff_choice;

/* The kind, layer and head shown: the options, else the head whose rows differ most. */
static int choose(const cli_args *a, const char *cmd, const av_trace *d, float **dist, diff_choice *c) {
    int found = cli_has(a, "kind");
    if (cli_get_kind(a, cmd, &c->kind)) return 2;
    for (int k = 0; k < AV_ATTN_KIND_COUNT && !found; k++)
        if (av_trace_n_layers(d, (av_attn_kind)k)) c->kind = (av_attn_kind)k, found = 1;
    int L = av_trace_n_layers(d, c->kind), H = av_trace_n_heads(d, c->kind);
    if (L == 0) return cli_failf(cmd, "the traces share no '%s' attention", av_attn_kind_name(c->kind));
    av_err err = {{0}};
    *dist = malloc(sizeof(float) * (size_t)L * (size_t)H);
    if (!*dist || av_diff_head_distance(d, c->kind, *dist, &err))
        return *dist ? cli_fail(cmd, &err) : cli_failf(cmd, "out of memory");
    int best = 0;
    for (int i = 1; i < L * H; i++)
        if ((*dist)[i] > (*dist)[best]) best = i;
    long layer;
    const char *head = cli_get(a, "head");
    if (cli_get_int(a, "layer", best / H, 0, L - 1, &layer, cmd)) return 2;
    c->layer = (int)layer;
    c->head = cli_has(a, "layer") && !head ? AV_HEADS_MEAN : best % H;
    if (head && !strcmp(head, "mean"))
        c->head = AV_HEADS_MEAN;
    else if (head && !strcmp(head, "max"))
        c->head = AV_HEADS_MAX;
    else if (head) {
        char *end;
        long h = strtol(head, &end, 10);
        if (*end || end == head || h < 0 || h >= H)
            return cli_failf(cmd, "--head must be mean, max or 0..%d, got '%s'", H - 1, head);
        c->head = (int)h;
    }
    return 0;
}

/* The distances of every head as a small layers x heads map. */
static int put_distances(const av_trace *d, const diff_choice *c, const float *dist, av_color_mode color) {
    int L = av_trace_n_layers(d, c->kind), H = av_trace_n_heads(d, c->kind);
    char(*names)[12] = calloc((size_t)(L + H), sizeof *names);
    const char **rl = calloc((size_t)(L + H), sizeof *rl);
    if (!names || !rl) {
        free(names);
        free(rl);
        return cli_failf("diff", "out of memory");
    }
    for (int i = 0; i < L + H; i++) {
        snprintf(names[i], sizeof names[i], i < L ? "L%d" : "%d", i < L ? i : i - L);
        rl[i] = names[i];
    }
    av_term_params tp = av_term_default_params();
    tp.cmap = AV_CMAP_MAGMA;
    tp.color = color;
    tp.vmin = 0, tp.vmax = 1;
    tp.title = "distance of each head: mean over rows of 0.5 sum |A - B| (0 = same rows, 1 = disjoint); "
               "columns = heads";
    av_err err = {{0}};
    int rc = av_term_heatmap(stdout, dist, L, H, rl, rl + L, &tp, &err) ? cli_fail("diff", &err) : 0;
    free(names);
    free(rl);
    return rc;
}

/* One head (or the mean/max over heads) of A − B on the diverging map. */
static int put_map(const av_trace *d, const diff_choice *c, av_color_mode color) {
    float *m;
    int nr, nc;
    av_err err = {{0}};
    if (av_plot_matrix(d, c->kind, c->layer, c->head, 0, &m, &nr, &nc, &err)) return cli_fail("diff", &err);
    char **ql, **kl;
    if (av_plot_labels(d, c->kind, nr, nc, &ql, &kl, &err)) {
        free(m);
        return cli_fail("diff", &err);
    }
    char title[256], head[32];
    snprintf(head, sizeof head,
             c->head == AV_HEADS_MEAN  ? "mean"
             : c->head == AV_HEADS_MAX ? "max"
                                       : "%d",
             c->head);
    snprintf(title, sizeof title, "%s  %s layer %d head %s (blue: B larger, red: A larger)",
             av_trace_meta(d, "model"), av_attn_kind_name(c->kind), c->layer, head);
    av_term_params tp = av_term_default_params();
    tp.cmap = AV_CMAP_DIVERGING;
    tp.color = color;
    tp.title = title;
    int rc = av_term_heatmap(stdout, m, nr, nc, (const char *const *)ql, (const char *const *)kl, &tp, &err)
                 ? cli_fail("diff", &err)
                 : 0;
    av_plot_labels_free(ql, nr);
    av_plot_labels_free(kl, nc);
    free(m);
    return rc;
}

/* Per token: the two log-probabilities and their difference. */
static void put_logprobs(const av_trace *d) {
    const char *text = av_trace_meta(d, "diff_logprobs");
    json_t *o = text ? json_loads(text, 0, NULL) : NULL, *ja = json_object_get(o, "a"),
           *jb = json_object_get(o, "b");
    if (!json_is_array(ja)) {
        printf("log-probabilities: not in both traces\n");
        json_decref(o);
        return;
    }
    double sum = 0, worst = 0;
    int n = 0, at = -1;
    printf("\n%5s  %-16s %10s %10s %10s\n", "t", "token", "log p(A)", "log p(B)", "A - B");
    for (size_t i = 0; i < json_array_size(ja); i++) {
        json_t *x = json_array_get(ja, i), *y = json_array_get(jb, i);
        printf("%5zu  %-16.16s", i, av_trace_token(d, (int)i));
        if (!json_is_number(x) || !json_is_number(y)) {
            printf(" %10s %10s %10s\n", json_is_number(x) ? "" : "-", json_is_number(y) ? "" : "-", "-");
            continue;
        }
        double dx = json_number_value(x) - json_number_value(y);
        printf(" %10.4f %10.4f %+10.4f\n", json_number_value(x), json_number_value(y), dx);
        sum += fabs(dx), n++;
        if (fabs(dx) > worst) worst = fabs(dx), at = (int)i;
    }
    if (n) printf("mean |A - B| %.4g over %d tokens; largest %.4g at token %d\n", sum / n, n, worst, at);
    json_decref(o);
}

static int write_output(const cli_args *a, const char *cmd, const av_trace *d, const diff_choice *c,
                        const char *out) {
    av_err err = {{0}};
    const char *ext = strrchr(out, '.');
    if (ext && !strcasecmp(ext, ".html")) {
        av_html_params hp = av_html_default_params();
        size_t bytes;
        if (av_html_write(d, &hp, out, &bytes, &err)) return cli_fail(cmd, &err);
        fprintf(stderr, "attnviz diff: viewer of A - B (%.1f KiB) -> %s\n", bytes / 1024.0, out);
        return 0;
    }
    long dpi;
    if (cli_get_int(a, "dpi", 150, 10, 2400, &dpi, cmd)) return 2;
    av_plot_params p = av_plot_default_params();
    p.kind = c->kind;
    p.layer = c->layer;
    p.head = c->head;
    p.grid = cli_has(a, "grid");
    p.cmap = AV_CMAP_DIVERGING;
    p.dpi = (double)dpi;
    av_plot_geom g;
    if (av_plot_render(d, &p, out, &g, &err)) return cli_fail(cmd, &err);
    fprintf(stderr, "attnviz diff: %d x %d image -> %s\n", g.width, g.height, out);
    return 0;
}

int cmd_diff(int argc, char **argv) {
    const char *cmd = "diff";
    cli_args a;
    int early;
    if (cli_start(argc, argv, opts, N_OPTS,
                  "usage: attnviz diff A.safetensors B.safetensors [--layer L] [--head H|mean|max] "
                  "[--common-prefix] [-o OUT.png|.svg|.html]\n",
                  2, &a, cmd, &early))
        return early;
    int rc = 1;
    av_trace *ta = NULL, *tb = NULL, *d = NULL;
    float *dist = NULL;
    av_err err = {{0}};
    av_color_mode color = AV_COLOR_AUTO;
    const char *colors = cli_get(&a, "colors"), *out = cli_output(&a, NULL);
    if (colors && strcmp(colors, "auto"))
        color = !strcmp(colors, "truecolor") ? AV_COLOR_TRUECOLOR
                : !strcmp(colors, "256")     ? AV_COLOR_256
                                             : AV_COLOR_NONE;
    if (colors && color == AV_COLOR_NONE && strcmp(colors, "none")) {
        cli_failf(cmd, "--colors must be auto, truecolor, 256 or none");
        goto done;
    }
    if (av_trace_load(a.positional[0], &ta, &err) || av_trace_load(a.positional[1], &tb, &err) ||
        av_trace_diff(ta, tb, av_path_basename(a.positional[0]), av_path_basename(a.positional[1]),
                      cli_has(&a, "common-prefix"), &d, &err)) {
        cli_fail(cmd, &err);
        goto done;
    }
    diff_choice c = {AV_ATTN_SELF, 0, AV_HEADS_MEAN};
    int attention = av_trace_has_attention(d);
    if (attention && choose(&a, cmd, d, &dist, &c)) goto done;
    const char *dj = av_trace_meta(d, "diff");
    printf("%s: %d tokens compared%s\n", av_trace_meta(d, "model"), av_trace_n_tokens(d),
           cli_has(&a, "common-prefix") && strstr(dj, "\"tokens_a\"") ? " (common prefix)" : "");
    if (out) {
        rc = attention ? write_output(&a, cmd, d, &c, out)
                       : cli_failf(cmd, "-o needs attention in both traces");
        goto done;
    }
    if (attention && (put_distances(d, &c, dist, color) || put_map(d, &c, color))) goto done;
    if (!attention) printf("attention: not in both traces\n");
    put_logprobs(d);
    rc = 0;
done:
    free(dist);
    av_trace_free(d);
    av_trace_free(ta);
    av_trace_free(tb);
    cli_args_free(&a);
    return rc;
}
