/* corpus.json: the whole report as one JSON document. It holds no timings and no host names, so two runs that
 * split the same input differently (threads, MPI ranks, interruptions) write byte-identical files; run facts
 * go to run.json (written by the command). */
#include "corpus_report.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- directories ---- */

int av_corpus_mkdir(const char *path, av_err *err) {
    if (mkdir(path, 0777) == 0 || (errno == EEXIST && av_path_is_dir(path))) return 0;
    return av_errf(err, "%s: cannot create the directory: %s", path,
                   errno == EEXIST ? "a file is in the way" : strerror(errno));
}

/* ---- query/key maps ---- */

int av_corpus_qk_project(const av_corpus_qk *qk, const av_tsne_params *tsne, av_corpus_qk_map *out,
                         av_err *err) {
    memset(out, 0, sizeof *out);
    int n = qk->n, d = qk->dim;
    if (n < 2 || d < 1) return av_errf(err, "the query/key sample has %d points: nothing to project", n);
    double *x = malloc(sizeof *x * (size_t)n * (size_t)d); /* (n, d) */
    int *is_key = malloc(sizeof *is_key * (size_t)n);
    out->n = n;
    out->dim = d;
    out->pca = malloc(sizeof *out->pca * 2 * (size_t)n);
    if (tsne) out->tsne = malloc(sizeof *out->tsne * 2 * (size_t)n);
    int rc = -1;
    if (!x || !is_key || !out->pca || (tsne && !out->tsne)) {
        av_errf(err, "out of memory projecting %d query/key vectors", n);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        is_key[i] = qk->pts[i].is_key;
        for (int c = 0; c < d; c++)
            x[(size_t)i * d + c] = qk->pts[i].vec[c];
    }
    av_qk_normalize(x, is_key, n, d);
    if (av_pca2(x, n, d, out->pca, out->pca_var, err)) goto done;
    if (tsne) {
        out->tsne_params = *tsne;
        if (av_tsne2(x, n, d, tsne, out->tsne, err)) goto done;
    }
    rc = 0;
done:
    free(x);
    free(is_key);
    if (rc) av_corpus_qk_map_free(out);
    return rc;
}

void av_corpus_qk_map_free(av_corpus_qk_map *m) {
    free(m->pca);
    free(m->tsne);
    memset(m, 0, sizeof *m);
}

/* ---- referenced lines ---- */

static int line_cmp(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int sort_unique(int64_t *v, int n) {
    if (n) qsort(v, (size_t)n, sizeof *v, line_cmp);
    int k = 0;
    for (int i = 0; i < n; i++)
        if (k == 0 || v[i] != v[k - 1]) v[k++] = v[i];
    return k;
}

/* role_only: the head's corpus role (or its best-scoring role when "none"), first n_per_head entries. */
static int collect_lines(const av_corpus_acc *acc, int role_only, int n_per_head, int64_t **lines, int *n,
                         av_err *err) {
    *lines = NULL;
    *n = 0;
    if (!acc->ready) return 0;
    size_t cap = (size_t)acc->layout.n_heads * AV_ROLE_COUNT * (size_t)acc->top_k;
    int64_t *v = malloc(sizeof *v * (cap ? cap : 1));
    if (!v) return av_errf(err, "out of memory");
    int k = 0;
    for (int h = 0; h < acc->layout.n_heads; h++) {
        av_corpus_role cr;
        av_corpus_acc_role(acc, h, &cr);
        for (int r = 0; r < AV_ROLE_COUNT; r++) {
            if (role_only) {
                int want = cr.roles.best != AV_ROLE_NONE ? (int)cr.roles.best : -1;
                for (int q = 0; want < 0 && q < AV_ROLE_COUNT; q++) /* "none": its best-scoring role */
                    if (!isnan(cr.roles.score[q]) && (want < 0 || cr.roles.score[q] > cr.roles.score[want]))
                        want = q;
                if (r != want) continue;
            }
            const av_corpus_top *t = acc->top + ((size_t)h * AV_ROLE_COUNT + r) * (size_t)acc->top_k;
            for (int i = 0; i < acc->top_k && i < n_per_head; i++)
                if (t[i].line >= 0) v[k++] = t[i].line;
        }
    }
    *n = sort_unique(v, k);
    *lines = v;
    return 0;
}

int av_corpus_top_lines(const av_corpus_acc *acc, int64_t **lines, int *n, av_err *err) {
    return collect_lines(acc, 0, acc->top_k, lines, n, err);
}

int av_corpus_trace_lines(const av_corpus_acc *acc, int n_per_head, int64_t **lines, int *n, av_err *err) {
    return collect_lines(acc, 1, n_per_head, lines, n, err);
}

/* ---- JSON ---- */

static json_t *jnum(double x) { return isnan(x) || isinf(x) ? json_null() : json_real(x); }

static json_t *jfx(av_fx v) {
    char buf[48];
    av_fx_str(v, buf);
    return json_string(buf);
}

static json_t *metric_json(const av_corpus_acc *a, int h, int m) {
    const av_moments *mo = &a->metric[(size_t)h * AV_CM_COUNT + m];
    const uint64_t *sk = a->sketch + (size_t)h * (size_t)a->sketch_len + a->sketch_off[m];
    int nb = a->sketch_off[m + 1] - a->sketch_off[m];
    json_t *q = json_array();
    for (int k = 0; k < AV_SKETCH_QUANTILES; k++)
        json_array_append_new(q, jnum(av_sketch_quantile(av_cm_range((av_cm)m), sk, nb,
                                                         (double)k / (AV_SKETCH_QUANTILES - 1))));
    json_t *o = json_object();
    json_object_set_new(o, "n", json_integer((json_int_t)mo->n));
    json_object_set_new(o, "mean", jnum(av_moments_mean(mo)));
    json_object_set_new(o, "sd", jnum(av_moments_sd(mo)));
    json_object_set_new(o, "sum_fx", jfx(mo->sum));
    json_object_set_new(o, "sum_sq_fx", jfx(mo->sum_sq));
    json_object_set_new(o, "quantiles", q);
    return o;
}

/* Position bins shown: those whose offsets can occur in inputs of max_tokens tokens. */
static int bin_visible(const av_corpus_acc *a, int b) {
    int64_t lo, hi;
    av_pos_bin_range(b, &lo, &hi);
    int64_t reach = a->max_tokens > 0 ? a->max_tokens - 1 : 0;
    return (lo >= 0 ? lo : -hi) <= reach;
}

static json_t *roles_json(const av_corpus_acc *a, int h, const av_corpus_role *cr) {
    json_t *o = json_object(), *scores = json_object(), *votes = json_object(), *top = json_object();
    json_object_set_new(o, "role", json_string(av_role_name(cr->roles.best)));
    json_object_set_new(o, "role_score", jnum(cr->roles.best_score));
    json_object_set_new(o, "confidence", jnum(cr->confidence));
    json_object_set_new(o, "ci95", jnum(cr->ci95));
    const uint64_t *v = a->votes + (size_t)h * (AV_ROLE_COUNT + 1);
    for (int r = 0; r <= AV_ROLE_COUNT; r++)
        json_object_set_new(votes, r < AV_ROLE_COUNT ? av_role_name((av_role)r) : "none",
                            json_integer((json_int_t)v[r]));
    for (int r = 0; r < AV_ROLE_COUNT; r++) {
        json_object_set_new(scores, av_role_name((av_role)r), jnum(cr->roles.score[r]));
        json_t *list = json_array();
        const av_corpus_top *t = a->top + ((size_t)h * AV_ROLE_COUNT + r) * (size_t)a->top_k;
        for (int i = 0; i < a->top_k && t[i].line >= 0; i++)
            json_array_append_new(
                list, json_pack("{sI so}", "line", (json_int_t)t[i].line, "score", jnum(t[i].score)));
        json_object_set_new(top, av_role_name((av_role)r), list);
    }
    json_object_set_new(o, "scores", scores);
    json_object_set_new(o, "votes", votes);
    json_object_set_new(o, "top", top);
    return o;
}

static json_t *head_json(const av_corpus_acc *a, int h) {
    int g, layer, head;
    av_corpus_head_at(&a->layout, h, &g, &layer, &head);
    av_corpus_role cr;
    av_corpus_acc_role(a, h, &cr);
    json_t *o = roles_json(a, h, &cr), *metrics = json_object();
    json_object_set_new(o, "kind", json_string(av_attn_kind_name(a->layout.groups[g].kind)));
    json_object_set_new(o, "layer", json_integer(layer));
    json_object_set_new(o, "head", json_integer(head));
    for (int m = 0; m < AV_CM_COUNT; m++)
        json_object_set_new(metrics, av_cm_name((av_cm)m), metric_json(a, h, m));
    json_object_set_new(o, "metrics", metrics);
    json_t *pos = json_null();
    if (a->pos_n[h]) {
        pos = json_array();
        for (int b = 0; b < AV_POS_BINS; b++)
            if (bin_visible(a, b))
                json_array_append_new(
                    pos, jnum(av_fx_to_double(a->pos[(size_t)h * AV_POS_BINS + b]) / a->pos_n[h]));
    }
    json_object_set_new(o, "positions", pos);
    return o;
}

static json_t *bins_json(const av_corpus_acc *a) {
    json_t *arr = json_array();
    for (int b = 0; b < AV_POS_BINS; b++) {
        if (!bin_visible(a, b)) continue;
        int64_t lo, hi;
        av_pos_bin_range(b, &lo, &hi);
        json_t *e = json_object();
        json_object_set_new(e, "lo", lo == INT64_MIN ? json_null() : json_integer((json_int_t)lo));
        json_object_set_new(e, "hi", hi == INT64_MAX ? json_null() : json_integer((json_int_t)hi));
        json_array_append_new(arr, e);
    }
    return arr;
}

static json_t *special_json(const av_corpus_acc *a) {
    json_t *arr = json_array();
    for (int l = 0; l < a->n_labels; l++) {
        json_t *mean = json_array(), *n = json_array();
        for (int h = 0; h < a->layout.n_heads; h++) {
            json_array_append_new(mean, jnum(av_moments_mean(&a->labels[l].m[h])));
            json_array_append_new(n, json_integer((json_int_t)a->labels[l].m[h].n));
        }
        json_array_append_new(arr,
                              json_pack("{ss so so}", "label", a->labels[l].label, "mean", mean, "n", n));
    }
    return arr;
}

static json_t *skipped_json(const av_corpus_acc *a) {
    json_t *o = json_object();
    uint64_t total = 0;
    for (int r = 0; r < AV_BAD_COUNT; r++) {
        json_t *lines = json_array();
        for (int i = 0; i < a->n_bad_lines[r]; i++)
            json_array_append_new(lines, json_integer((json_int_t)a->bad_lines[r][i]));
        json_object_set_new(o, av_bad_name((av_bad)r),
                            json_pack("{sI so sb}", "count", (json_int_t)a->bad[r], "lines", lines,
                                      "lines_truncated", a->bad[r] > (uint64_t)a->n_bad_lines[r]));
        total += a->bad[r];
    }
    json_object_set_new(o, "total", json_integer((json_int_t)total));
    json_object_set_new(
        o, "first_error",
        a->error_line < 0 ? json_null()
                          : json_pack("{sI ss}", "line", (json_int_t)a->error_line, "message", a->error_msg));
    return o;
}

static json_t *qk_json(const av_corpus_qk *qk, const av_corpus_qk_map *map) {
    json_t *pts = json_array();
    for (int i = 0; i < qk->n; i++) {
        const av_qk_point *p = &qk->pts[i];
        json_t *e = json_pack("{ss sI si si ss}", "type", p->is_key ? "key" : "query", "line",
                              (json_int_t)p->line, "pos", p->pos, "n_tokens", p->n_tokens, "token", p->label);
        if (!e)
            e = json_pack("{ss sI si si ss}", "type", p->is_key ? "key" : "query", "line",
                          (json_int_t)p->line, "pos", p->pos, "n_tokens", p->n_tokens, "token",
                          "\xEF\xBF\xBD");
        json_object_set_new(e, "pca", json_pack("[oo]", jnum(map->pca[2 * i]), jnum(map->pca[2 * i + 1])));
        if (map->tsne)
            json_object_set_new(e, "tsne",
                                json_pack("[oo]", jnum(map->tsne[2 * i]), jnum(map->tsne[2 * i + 1])));
        json_array_append_new(pts, e);
    }
    json_t *o = json_pack("{ss si si si sI si ss}", "kind", av_attn_kind_name(qk->kind), "layer", qk->layer,
                          "head", qk->head, "samples_per_side", qk->n_max, "seed", (json_int_t)qk->seed,
                          "dim", qk->dim, "normalization", "attentionviz");
    json_object_set_new(o, "pca_variance_ratio",
                        json_pack("[oo]", jnum(map->pca_var[0]), jnum(map->pca_var[1])));
    json_object_set_new(o, "tsne",
                        map->tsne
                            ? json_pack("{sf si sf sI}", "perplexity", map->tsne_params.perplexity,
                                        "iterations", map->tsne_params.n_iter, "theta",
                                        map->tsne_params.theta, "seed", (json_int_t)map->tsne_params.seed)
                            : json_null());
    json_object_set_new(o, "points", pts);
    return o;
}

static json_t *refs_json(const av_corpus_report *r) {
    json_t *arr = json_array();
    for (int i = 0; i < r->n_refs; i++) {
        json_t *text = json_string(r->refs[i].text ? r->refs[i].text : "");
        json_array_append_new(arr, json_pack("{sI so so}", "line", (json_int_t)r->refs[i].line, "text",
                                             text ? text : json_string("\xEF\xBF\xBD"), "trace",
                                             r->refs[i].trace ? json_string(r->refs[i].trace) : json_null()));
    }
    return arr;
}

static json_t *header_json(const av_corpus_report *r) {
    av_model_info info = av_model_get_info(r->model);
    const av_corpus_input *in = r->input;
    char hash[24];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)in->hash);
    json_t *o = json_object();
    json_object_set_new(o, "format", json_string(AV_CORPUS_FORMAT));
    json_object_set_new(o, "version", json_string(AV_CORPUS_FORMAT_VERSION));
    json_object_set_new(o, "model",
                        json_pack("{ss ss ss ss}", "name", info.name, "arch", info.arch, "family",
                                  av_family_name(info.family), "path", r->model_path));
    json_object_set_new(o, "input",
                        json_pack("{ss ss ss so sI sI ss}", "path", in->path, "format",
                                  in->format == AV_CORPUS_JSONL ? "jsonl" : "txt", "field", r->field,
                                  "target_field",
                                  r->target_field ? json_string(r->target_field) : json_null(), "lines",
                                  (json_int_t)in->n_lines, "bytes", (json_int_t)in->size, "fnv1a64", hash));
    json_object_set_new(o, "settings",
                        json_pack("{si si sb si sf si}", "chunk_lines", in->chunk_lines, "top_k",
                                  r->acc->top_k, "add_bos", r->add_bos, "steps", r->steps, "sketch_alpha",
                                  AV_SKETCH_ALPHA, "fixed_point_bits", AV_FX_FRAC_BITS));
    json_object_set_new(o, "examples", json_integer((json_int_t)r->acc->n_examples));
    json_object_set_new(o, "tokens", json_integer((json_int_t)r->acc->n_tokens));
    json_object_set_new(o, "max_tokens", json_integer(r->acc->max_tokens));
    json_object_set_new(o, "skipped", skipped_json(r->acc));
    return o;
}

json_t *av_corpus_report_json(const av_corpus_report *r) {
    const av_corpus_acc *a = r->acc;
    json_t *o = header_json(r), *metrics = json_array(), *levels = json_array(), *groups = json_array(),
           *heads = json_array(), *roles = json_array();
    for (int m = 0; m < AV_CM_COUNT; m++)
        json_array_append_new(metrics, json_string(av_cm_name((av_cm)m)));
    for (int k = 0; k < AV_SKETCH_QUANTILES; k++)
        json_array_append_new(levels, json_real((double)k / (AV_SKETCH_QUANTILES - 1)));
    for (int r2 = 0; r2 < AV_ROLE_COUNT; r2++)
        json_array_append_new(roles, json_string(av_role_name((av_role)r2)));
    for (int g = 0; a->ready && g < a->layout.n_groups; g++)
        json_array_append_new(
            groups, json_pack("{ss si si sb}", "kind", av_attn_kind_name(a->layout.groups[g].kind),
                              "n_layers", a->layout.groups[g].n_layers, "n_heads",
                              a->layout.groups[g].n_heads, "positional", a->layout.groups[g].positional));
    for (int h = 0; a->ready && h < a->layout.n_heads; h++)
        json_array_append_new(heads, head_json(a, h));
    json_object_set_new(o, "metrics", metrics);
    json_object_set_new(o, "roles", roles);
    json_object_set_new(o, "role_min_score", json_real(AV_ROLE_MIN_SCORE));
    json_object_set_new(o, "quantile_levels", levels);
    json_object_set_new(o, "position_bins", a->ready ? bins_json(a) : json_array());
    json_object_set_new(o, "groups", groups);
    json_object_set_new(o, "heads", heads);
    json_object_set_new(o, "special_tokens", special_json(a));
    json_object_set_new(o, "examples_text", refs_json(r));
    json_object_set_new(o, "qk", r->qk && r->map ? qk_json(r->qk, r->map) : json_null());
    return o;
}
