/* attnviz stats: per-head statistics of a trace (text table, --json or --csv), optionally with attention
 * rollout, attention flow, an aggregate over a head set and the value norms for norm-based views. */
#include "analysis/analysis.h"
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const cli_opt_spec opts[] = {
    {"kind", 1, "K          self, enc, dec or cross (default: the first present)"},
    {"layer", 1, "L         only this layer's heads (negative counts from the end)"},
    {"head", 1, "H|mean|max|min  only this head, or the statistics of the mean / max / min over heads"},
    {"exclude-first", 0, "  statistics of rows renormalized without the first (sink) token"},
    {"progress", 0, "        show progress on stderr (default: only on a terminal)"},
    {"json", 0, "            JSON output (schema in docs/ANALYSIS.md)"},
    {"csv", 0, "             CSV output (the per-head table only)"},
    {"rollout", 0, "         add attention rollout (key \"rollout\"); cross kind: encoder-decoder rollout"},
    {"fusion", 1, "mean|max|min  head fusion for rollout and flow (default mean)"},
    {"residual", 1, "R      identity weight of rollout/flow, 0..1 (default 0.5: (A+I)/2)"},
    {"flow", 0, "            add attention flow (max-flow; slow: limited by --flow-limit)"},
    {"flow-limit", 1, "N    flow size guard: layers x tokens^4 (default 1e9; 0 = no limit)"},
    {"aggregate", 1, "mean|max|min  add the reduction over --heads (key \"aggregate\")"},
    {"heads", 1, "SPEC      head set for --aggregate: e.g. '0.1,2.*,*.3' or '*' (default '*')"},
    {"vnorm", 0, "           add value norms ||v_j W_o^h|| (key \"vnorm\", [layer][head][token]) to JSON"},
    {"help", 0, "            show this help"},
};
enum { N_OPTS = sizeof opts / sizeof opts[0] };

static void print_num(FILE *fp, int width, int prec, double x) {
    if (isnan(x))
        fprintf(fp, " %*s", width, "-");
    else
        fprintf(fp, " %*.*f", width, prec, x);
}

static void print_table(FILE *fp, const av_trace *t, av_attn_kind kind, const av_head_stats *s, int n) {
    const char *model = av_trace_meta(t, "model");
    fprintf(fp, "%s  %s attention  %d layers  %d tokens  (means over query rows; '-' = not applicable)\n",
            model ? model : "trace", av_attn_kind_name(kind), av_trace_n_layers(t, kind),
            av_trace_n_tokens(t));
    fprintf(fp, "%5s %4s %8s %7s %8s %6s %6s %6s %7s %6s %6s %7s  %s\n", "layer", "head", "entropy",
            "ent/max", "distance", "first", "self", "prev", "special", "punct", "broad", "first_n",
            "role (score)");
    for (int k = 0; k < n; k++) {
        av_head_roles r;
        av_roles_from_stats(&s[k], &r);
        char h[16];
        fprintf(fp, "%5d %4s", s[k].layer, cli_reduce_name(s[k].head, h));
        print_num(fp, 8, 3, s[k].entropy);
        print_num(fp, 7, 3, s[k].entropy_norm);
        print_num(fp, 8, 2, s[k].distance);
        print_num(fp, 6, 3, s[k].first);
        print_num(fp, 6, 3, s[k].self);
        print_num(fp, 6, 3, s[k].prev);
        print_num(fp, 7, 3, s[k].special);
        print_num(fp, 6, 3, s[k].punct);
        print_num(fp, 6, 3, s[k].uniformity);
        print_num(fp, 7, 3, s[k].first_norm);
        fprintf(fp, "  %s (%.2f)\n", av_role_name(r.best), r.best_score);
    }
}

static void csv_num(FILE *fp, double x) {
    if (isnan(x))
        fputs(",", fp);
    else
        fprintf(fp, ",%.6g", x);
}

static void print_csv(FILE *fp, const av_head_stats *s, int n) {
    fprintf(
        fp,
        "layer,head,entropy,entropy_norm,distance,first,self,prev,special,punct,uniformity,first_norm,role,"
        "role_score\n");
    for (int k = 0; k < n; k++) {
        av_head_roles r;
        av_roles_from_stats(&s[k], &r);
        char h[16];
        fprintf(fp, "%d,%s", s[k].layer, cli_reduce_name(s[k].head, h));
        csv_num(fp, s[k].entropy);
        csv_num(fp, s[k].entropy_norm);
        csv_num(fp, s[k].distance);
        csv_num(fp, s[k].first);
        csv_num(fp, s[k].self);
        csv_num(fp, s[k].prev);
        csv_num(fp, s[k].special);
        csv_num(fp, s[k].punct);
        csv_num(fp, s[k].uniformity);
        csv_num(fp, s[k].first_norm);
        fprintf(fp, ",%s", av_role_name(r.best));
        csv_num(fp, r.best_score);
        fputc('\n', fp);
    }
}

/* Labels of one side of a matrix: the trace's tokens, or an encoder-decoder's source tokens. */
static json_t *side_tokens(const av_trace *t, int source) {
    const char *meta = source ? av_trace_meta(t, "source_tokens") : NULL;
    json_error_t je;
    json_t *arr = meta ? json_loads(meta, 0, &je) : NULL;
    if (json_is_array(arr)) return arr;
    json_decref(arr);
    arr = json_array();
    for (int i = 0; i < av_trace_n_tokens(t); i++)
        json_array_append_new(arr, json_string(av_trace_token(t, i)));
    return arr;
}

static void print_matrix(FILE *fp, const char *title, const float *m, int rows, int cols, json_t *row_tok,
                         json_t *col_tok) {
    fprintf(fp, "\n%s\n%16s", title, "");
    for (int j = 0; j < cols; j++)
        fprintf(fp, " %6d", j);
    fputc('\n', fp);
    for (int i = 0; i < rows; i++) {
        const char *lab = json_string_value(json_array_get(row_tok, (size_t)i));
        fprintf(fp, "%4d %-11.11s", i, lab ? lab : "");
        for (int j = 0; j < cols; j++)
            fprintf(fp, " %6.3f", m[(size_t)i * (size_t)cols + (size_t)j]);
        fputc('\n', fp);
    }
    fprintf(fp, "%16s", "");
    for (int j = 0; j < cols; j++) {
        const char *lab = json_string_value(json_array_get(col_tok, (size_t)j));
        fprintf(fp, " %6.6s", lab ? lab : "");
    }
    fputc('\n', fp);
}

/* Adds key -> matrix and key_info -> info to o (JSON), or prints it (text). Takes ownership of info. */
static void emit_matrix(FILE *fp, json_t *o, const char *key, json_t *info, const char *title, const float *m,
                        int rows, int cols, int source_cols, const av_trace *t) {
    char info_key[64];
    snprintf(info_key, sizeof info_key, "%s_info", key);
    json_object_set_new(info, "rows", json_integer(rows));
    json_object_set_new(info, "cols", json_integer(cols));
    if (o) {
        json_object_set_new(o, key, av_json_matrix(m, rows, cols));
        if (source_cols) json_object_set_new(info, "col_tokens", side_tokens(t, 1));
        json_object_set_new(o, info_key, info);
        return;
    }
    json_t *rt = side_tokens(t, 0), *ct = side_tokens(t, source_cols);
    print_matrix(fp, title, m, rows, cols, rt, ct);
    json_decref(rt);
    json_decref(ct);
    json_decref(info);
}

static json_t *vnorm_json(const av_trace *t, av_err *err) {
    json_t *layers = json_array();
    for (int l = 0; l < av_trace_n_layers(t, AV_ATTN_SELF); l++) {
        av_tensor vn;
        if (av_trace_vnorm(t, l, &vn, err)) {
            json_decref(layers);
            return NULL;
        }
        json_array_append_new(layers, av_json_matrix(vn.data, (int)vn.shape[0], (int)vn.shape[1]));
    }
    return layers;
}

static int usage(const cli_args *a, int rc) {
    FILE *fp = rc ? stderr : stdout;
    fprintf(fp, "usage: attnviz stats TRACE [--json|--csv] [--layer L] [--kind K] [--rollout] [--flow] "
                "[--aggregate OP --heads SPEC]\n\n");
    cli_print_options(fp, opts, N_OPTS);
    (void)a;
    return rc;
}

/* What `attnviz stats` was asked for. */
typedef struct stats_opts {
    int json, csv;
    long layer; /* -1: every layer (set once the trace is loaded) */
    av_reduce fusion, agg;
    double residual, flow_limit;
    const char *heads; /* head set of --aggregate */
    int head;          /* --head: AV_STATS_EVERY_HEAD, an index or AV_HEADS_MEAN / MAX / MIN */
    int exclude_first;
    cli_progress progress;
} stats_opts;

/* One run over a loaded trace: the JSON document being built (NULL for text) and a matrix buffer. */
typedef struct stats_run {
    const stats_opts *o;
    const av_trace *t;
    av_attn_kind kind;
    int n_layers, n_heads, nq, nk, cross;
    json_t *json;
    float *mat; /* (nq, max(nq, nk)) */
} stats_run;

/* The options that do not need the trace; 0, or -1 after printing the error. */
static int parse_opts(const cli_args *a, const char *cmd, stats_opts *o) {
    av_err err = {{0}};
    memset(o, 0, sizeof *o);
    o->json = cli_has(a, "json");
    o->csv = cli_has(a, "csv");
    o->fusion = o->agg = AV_REDUCE_MEAN;
    o->residual = 0.5;
    o->flow_limit = AV_FLOW_DEFAULT_MAX_WORK;
    o->heads = cli_get(a, "heads") ? cli_get(a, "heads") : "*";
    if (cli_get_int(a, "layer", 0, -100000, 100000, &o->layer, cmd)) return -1;
    if (o->json && o->csv) {
        cli_failf(cmd, "choose one of --json and --csv");
        return -1;
    }
    if (o->csv &&
        (cli_has(a, "rollout") || cli_has(a, "flow") || cli_has(a, "aggregate") || cli_has(a, "vnorm"))) {
        cli_failf(cmd, "--csv prints the per-head table only; use --json (or text) with --rollout, --flow, "
                       "--aggregate and --vnorm");
        return -1;
    }
    if ((cli_get(a, "fusion") && av_reduce_parse(cli_get(a, "fusion"), &o->fusion, &err)) ||
        (cli_get(a, "aggregate") && av_reduce_parse(cli_get(a, "aggregate"), &o->agg, &err))) {
        cli_fail(cmd, &err);
        return -1;
    }
    return cli_get_num(a, "residual", o->residual, 0, 1, "in [0, 1]", &o->residual, cmd) ||
                   cli_get_num(a, "flow-limit", o->flow_limit, 0, HUGE_VAL, ">= 0", &o->flow_limit, cmd)
               ? -1
               : 0;
}

/* --layer, --head and --exclude-first against the trace (the selection vocabulary of show and render; a
 * reduction over layers is not a statistic of heads). */
static int resolve_sel(const cli_args *a, const char *cmd, const av_trace *t, av_attn_kind kind,
                       stats_opts *o) {
    cli_sel sel;
    if (cli_get_sel(a, cmd, t, kind, AV_STATS_EVERY_HEAD, &sel)) return -1;
    if (sel.layer_reduce)
        return cli_failf(cmd,
                         "--layer takes a layer index here (use --aggregate OP --heads '*' to reduce layers)")
                   ? -1
                   : -1;
    o->layer = cli_has(a, "layer") ? sel.layer : -1;
    o->head = sel.head;
    o->exclude_first = sel.exclude_first;
    return 0;
}

/* The matrices of --rollout, --flow and --aggregate are n_query x n_key: refused when that is too large. */
static int matrix_guard(const cli_args *a, const char *cmd, const stats_run *r) {
    double bytes = 4.0 * r->nq * (r->nk > r->nq ? r->nk : r->nq) * (r->n_layers + 2);
    if (bytes <= (double)(2u << 30)) return 0;
    return cli_failf(
               cmd,
               "--rollout, --flow and --aggregate need %s matrices of %d x %d for %d layers (%.0f GiB): "
               "too large for this trace; the per-head table streams rows and works at any length",
               cli_has(a, "rollout") ? "rollout" : "whole", r->nq, r->nk, r->n_layers, bytes / (1u << 30))
               ? -1
               : -1;
}

static void stats_progress(void *ctx, int done, int total) {
    char what[48];
    snprintf(what, sizeof what, "layer %d of %d", done, total);
    cli_progress_show(ctx, (double)done / total, what);
}

static int add_rollout(stats_run *r, av_err *err) {
    const stats_opts *o = r->o;
    av_rollout_params rp = av_rollout_default_params();
    rp.fusion = o->fusion;
    rp.residual = (float)o->residual;
    int rows = r->nq, cols = r->nq;
    if (r->cross ? av_rollout_cross_trace(r->t, &rp, r->mat, &rows, &cols, err)
                 : av_rollout_trace(r->t, r->kind, &rp, r->mat, err))
        return -1;
    json_t *info = json_object();
    json_object_set_new(info, "variant", json_string(r->cross ? "encoder-decoder" : "abnar-zuidema"));
    json_object_set_new(info, "kind", json_string(av_attn_kind_name(r->kind)));
    json_object_set_new(info, "fusion", json_string(av_reduce_name(o->fusion)));
    json_object_set_new(info, "residual", json_real(o->residual));
    char title[160];
    snprintf(title, sizeof title,
             "rollout (%s%s over heads, residual %.2f): row = token, column = input token",
             r->cross ? "encoder-decoder, " : "", av_reduce_name(o->fusion), o->residual);
    emit_matrix(stdout, r->json, "rollout", info, title, r->mat, rows, cols, r->cross, r->t);
    return 0;
}

static void flow_progress(void *ctx, int done, int total) {
    cli_progress_show(ctx, (double)done / total, "attention flow");
}

static int add_flow(stats_run *r, av_err *err) {
    const stats_opts *o = r->o;
    av_flow_params fp = av_flow_default_params();
    fp.fusion = o->fusion;
    fp.residual = (float)o->residual;
    fp.max_work = o->flow_limit;
    fp.progress = flow_progress;
    fp.progress_ctx = (void *)&o->progress;
    int rc = av_flow_trace(r->t, r->kind, &fp, r->mat, err);
    cli_progress_end((cli_progress *)&o->progress);
    if (rc) return -1;
    json_t *info = json_object();
    json_object_set_new(info, "kind", json_string(av_attn_kind_name(r->kind)));
    json_object_set_new(info, "fusion", json_string(av_reduce_name(o->fusion)));
    json_object_set_new(info, "residual", json_real(o->residual));
    json_object_set_new(info, "normalized", json_true());
    char title[160];
    snprintf(title, sizeof title, "attention flow (%s over heads, residual %.2f, rows normalized)",
             av_reduce_name(o->fusion), o->residual);
    emit_matrix(stdout, r->json, "flow", info, title, r->mat, r->nq, r->nq, 0, r->t);
    return 0;
}

static int add_aggregate(stats_run *r, av_err *err) {
    const stats_opts *o = r->o;
    av_head_ref *sel = NULL;
    int n_sel = 0, rows, cols;
    if (av_head_set_parse(o->heads, r->n_layers, r->n_heads, &sel, &n_sel, err) ||
        av_trace_reduce(r->t, r->kind, sel, n_sel, o->agg, r->mat, &rows, &cols, err)) {
        free(sel);
        return -1;
    }
    json_t *info = json_object(), *hs = json_array();
    for (int k = 0; k < n_sel; k++) {
        char name[32];
        snprintf(name, sizeof name, "%d.%d", sel[k].layer, sel[k].head);
        json_array_append_new(hs, json_string(name));
    }
    free(sel);
    json_object_set_new(info, "kind", json_string(av_attn_kind_name(r->kind)));
    json_object_set_new(info, "op", json_string(av_reduce_name(o->agg)));
    json_object_set_new(info, "heads", hs);
    char title[160];
    snprintf(title, sizeof title, "%s over %d heads (%s)", av_reduce_name(o->agg), n_sel, o->heads);
    emit_matrix(stdout, r->json, "aggregate", info, title, r->mat, rows, cols, r->cross, r->t);
    return 0;
}

/* The per-head table (text or JSON), then each requested matrix; prints errors itself. */
static int run_stats(const cli_args *a, const char *cmd, stats_run *r) {
    av_err err = {{0}};
    av_head_stats *stats = NULL;
    int n_stats = 0, rc = -1;
    av_stats_params sp = av_stats_default_params();
    sp.layer = (int)r->o->layer;
    sp.head = r->o->head;
    sp.exclude_first = r->o->exclude_first;
    sp.progress = stats_progress;
    sp.progress_ctx = (void *)&r->o->progress;
    int st = av_trace_head_stats_ex(r->t, r->kind, &sp, &stats, &n_stats, &err);
    cli_progress_end((cli_progress *)&r->o->progress);
    if (st) goto fail;
    if (r->o->csv) {
        print_csv(stdout, stats, n_stats);
        free(stats);
        return 0;
    }
    if (r->o->json)
        r->json = av_stats_json(r->t, r->kind, stats, n_stats);
    else
        print_table(stdout, r->t, r->kind, stats, n_stats);
    r->nq = av_trace_n_query(r->t, r->kind);
    r->nk = av_trace_n_key(r->t, r->kind);
    r->n_heads = av_trace_n_heads(r->t, r->kind);
    r->cross = r->kind == AV_ATTN_CROSS;
    int matrices = cli_has(a, "rollout") || cli_has(a, "flow") || cli_has(a, "aggregate");
    if (matrices && matrix_guard(a, cmd, r)) goto done;
    if (matrices &&
        !(r->mat = malloc(sizeof(float) * (size_t)r->nq * (size_t)(r->nk > r->nq ? r->nk : r->nq)))) {
        cli_failf(cmd, "out of memory");
        goto done;
    }
    if ((cli_has(a, "rollout") && add_rollout(r, &err)) || (cli_has(a, "flow") && add_flow(r, &err)) ||
        (cli_has(a, "aggregate") && add_aggregate(r, &err)))
        goto fail;
    if (cli_has(a, "vnorm")) {
        if (!r->json) {
            cli_failf(cmd, "--vnorm adds the value norms to --json output");
            goto done;
        }
        json_t *vn = vnorm_json(r->t, &err);
        if (!vn) goto fail;
        json_object_set_new(r->json, "vnorm", vn);
    }
    rc = 0;
    goto done;
fail:
    cli_fail(cmd, &err);
done:
    free(stats);
    return rc;
}

int cmd_stats(int argc, char **argv) {
    const char *cmd = "stats";
    cli_args a;
    if (cli_parse(argc, argv, opts, N_OPTS, &a, cmd)) return 2;
    if (cli_has(&a, "help") || a.n_positional != 1) {
        int rc = usage(&a, cli_has(&a, "help") ? 0 : 2);
        cli_args_free(&a);
        return rc;
    }
    int rc = 1;
    stats_opts o;
    av_trace *t = NULL;
    stats_run r = {0};
    av_attn_kind kind;
    if (parse_opts(&a, cmd, &o) || cli_load_trace(&a, cmd, &t, &kind)) goto done;
    r = (stats_run){.o = &o, .t = t, .kind = kind, .n_layers = av_trace_n_layers(t, kind)};
    if (r.n_layers == 0) {
        cli_failf(cmd, "%s: the trace has no '%s' attention", a.positional[0], av_attn_kind_name(kind));
        goto done;
    }
    cli_progress_start(&o.progress, &a, cmd);
    if (resolve_sel(&a, cmd, t, kind, &o) || run_stats(&a, cmd, &r)) goto done;
    if (r.json) {
        char *s = json_dumps(r.json, JSON_COMPACT | JSON_REAL_PRECISION(6));
        if (!s) {
            cli_failf(cmd, "out of memory writing JSON");
            goto done;
        }
        puts(s);
        free(s);
    }
    rc = 0;
done:
    json_decref(r.json);
    free(r.mat);
    av_trace_free(t);
    cli_args_free(&a);
    return rc;
}
