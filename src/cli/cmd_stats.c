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
        fprintf(fp, "%5d %4d", s[k].layer, s[k].head);
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
        fprintf(fp, "%d,%d", s[k].layer, s[k].head);
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

int cmd_stats(int argc, char **argv) {
    const char *cmd = "stats";
    cli_args a;
    if (cli_parse(argc, argv, opts, N_OPTS, &a, cmd)) return 2;
    if (cli_has(&a, "help") || a.n_positional != 1) {
        int rc = usage(&a, cli_has(&a, "help") ? 0 : 2);
        cli_args_free(&a);
        return rc;
    }
    int rc = 1, as_json = cli_has(&a, "json"), as_csv = cli_has(&a, "csv");
    av_trace *t = NULL;
    av_head_stats *stats = NULL;
    float *mat = NULL;
    av_head_ref *sel = NULL;
    json_t *o = NULL;
    av_err err = {{0}};
    long layer;
    av_reduce fusion = AV_REDUCE_MEAN, agg = AV_REDUCE_MEAN;
    double residual = 0.5, flow_limit = AV_FLOW_DEFAULT_MAX_WORK;
    int n_stats = 0, n_sel = 0;
    if (cli_get_int(&a, "layer", 0, -100000, 100000, &layer, cmd)) goto done;
    if (as_json && as_csv) {
        cli_failf(cmd, "choose one of --json and --csv");
        goto done;
    }
    if (as_csv &&
        (cli_has(&a, "rollout") || cli_has(&a, "flow") || cli_has(&a, "aggregate") || cli_has(&a, "vnorm"))) {
        cli_failf(cmd, "--csv prints the per-head table only; use --json (or text) with --rollout, --flow, "
                       "--aggregate and --vnorm");
        goto done;
    }
    if ((cli_get(&a, "fusion") && av_reduce_parse(cli_get(&a, "fusion"), &fusion, &err)) ||
        (cli_get(&a, "aggregate") && av_reduce_parse(cli_get(&a, "aggregate"), &agg, &err))) {
        cli_fail(cmd, &err);
        goto done;
    }
    if (cli_get_num(&a, "residual", residual, 0, 1, "in [0, 1]", &residual, cmd) ||
        cli_get_num(&a, "flow-limit", flow_limit, 0, HUGE_VAL, ">= 0", &flow_limit, cmd))
        goto done;
    av_attn_kind kind;
    if (cli_load_trace(&a, cmd, &t, &kind)) goto done;
    const char *kind_name = av_attn_kind_name(kind);
    int n_layers = av_trace_n_layers(t, kind);
    if (n_layers == 0) {
        cli_failf(cmd, "%s: the trace has no '%s' attention", a.positional[0], kind_name);
        goto done;
    }
    if (!cli_has(&a, "layer")) {
        layer = -1; /* every layer */
    } else {
        if (layer < 0) layer += n_layers;
        if (layer < 0 || layer >= n_layers) {
            cli_failf(cmd, "--layer %s is out of range: the trace has %s layers 0..%d", cli_get(&a, "layer"),
                      kind_name, n_layers - 1);
            goto done;
        }
    }
    if (av_trace_head_stats(t, kind, (int)layer, &stats, &n_stats, &err)) {
        cli_fail(cmd, &err);
        goto done;
    }
    if (as_csv) {
        print_csv(stdout, stats, n_stats);
        rc = 0;
        goto done;
    }
    if (as_json)
        o = av_stats_json(t, kind, stats, n_stats);
    else
        print_table(stdout, t, kind, stats, n_stats);

    av_attn_view v0;
    if (av_trace_attn(t, kind, 0, &v0, &err)) {
        cli_fail(cmd, &err);
        goto done;
    }
    int nq = v0.n_query, nk = v0.n_key, cross = kind == AV_ATTN_CROSS;
    if (!(mat = malloc(sizeof(float) * (size_t)nq * (size_t)(nk > nq ? nk : nq)))) {
        cli_failf(cmd, "out of memory");
        goto done;
    }
    if (cli_has(&a, "rollout")) {
        av_rollout_params rp = av_rollout_default_params();
        rp.fusion = fusion;
        rp.residual = (float)residual;
        int rows = nq, cols = nq;
        if ((cross ? av_rollout_cross_trace(t, &rp, mat, &rows, &cols, &err)
                   : av_rollout_trace(t, kind, &rp, mat, &err))) {
            cli_fail(cmd, &err);
            goto done;
        }
        json_t *info = json_object();
        json_object_set_new(info, "variant", json_string(cross ? "encoder-decoder" : "abnar-zuidema"));
        json_object_set_new(info, "kind", json_string(kind_name));
        json_object_set_new(info, "fusion", json_string(av_reduce_name(fusion)));
        json_object_set_new(info, "residual", json_real(residual));
        char title[160];
        snprintf(title, sizeof title,
                 "rollout (%s%s over heads, residual %.2f): row = token, column = input token",
                 cross ? "encoder-decoder, " : "", av_reduce_name(fusion), residual);
        emit_matrix(stdout, o, "rollout", info, title, mat, rows, cols, cross, t);
    }
    if (cli_has(&a, "flow")) {
        av_flow_params fp = av_flow_default_params();
        fp.fusion = fusion;
        fp.residual = (float)residual;
        fp.max_work = flow_limit;
        if (av_flow_trace(t, kind, &fp, mat, &err)) {
            cli_fail(cmd, &err);
            goto done;
        }
        json_t *info = json_object();
        json_object_set_new(info, "kind", json_string(kind_name));
        json_object_set_new(info, "fusion", json_string(av_reduce_name(fusion)));
        json_object_set_new(info, "residual", json_real(residual));
        json_object_set_new(info, "normalized", json_true());
        char title[160];
        snprintf(title, sizeof title, "attention flow (%s over heads, residual %.2f, rows normalized)",
                 av_reduce_name(fusion), residual);
        emit_matrix(stdout, o, "flow", info, title, mat, nq, nq, 0, t);
    }
    if (cli_has(&a, "aggregate")) {
        int rows, cols;
        if (av_head_set_parse(cli_get(&a, "heads") ? cli_get(&a, "heads") : "*", n_layers, v0.n_heads, &sel,
                              &n_sel, &err) ||
            av_trace_reduce(t, kind, sel, n_sel, agg, mat, &rows, &cols, &err)) {
            cli_fail(cmd, &err);
            goto done;
        }
        json_t *info = json_object(), *hs = json_array();
        for (int k = 0; k < n_sel; k++) {
            char name[32];
            snprintf(name, sizeof name, "%d.%d", sel[k].layer, sel[k].head);
            json_array_append_new(hs, json_string(name));
        }
        json_object_set_new(info, "kind", json_string(kind_name));
        json_object_set_new(info, "op", json_string(av_reduce_name(agg)));
        json_object_set_new(info, "heads", hs);
        char title[160];
        snprintf(title, sizeof title, "%s over %d heads (%s)", av_reduce_name(agg), n_sel,
                 cli_get(&a, "heads") ? cli_get(&a, "heads") : "*");
        emit_matrix(stdout, o, "aggregate", info, title, mat, rows, cols, cross, t);
    }
    if (cli_has(&a, "vnorm")) {
        if (!o) {
            cli_failf(cmd, "--vnorm adds the value norms to --json output");
            goto done;
        }
        json_t *vn = vnorm_json(t, &err);
        if (!vn) {
            cli_fail(cmd, &err);
            goto done;
        }
        json_object_set_new(o, "vnorm", vn);
    }
    if (o) {
        char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
        if (!s) {
            cli_failf(cmd, "out of memory writing JSON");
            goto done;
        }
        puts(s);
        free(s);
    }
    rc = 0;
done:
    json_decref(o);
    free(sel);
    free(mat);
    free(stats);
    av_trace_free(t);
    cli_args_free(&a);
    return rc;
}
