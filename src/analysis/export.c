/* JSON export of the analysis results (jansson), the form the viewer embeds. Schema: docs/ANALYSIS.md.
 * Numbers are doubles; NaN (a statistic that does not apply) becomes null. Dump with
 * JSON_REAL_PRECISION(6) to keep files small. */
#include "analysis.h"
#include "core/core.h"

#include <math.h>
#include <stdio.h>

static json_t *num(double x) { return isnan(x) || isinf(x) ? json_null() : json_real(x); }

json_t *av_json_matrix(const float *m, int rows, int cols) {
    json_t *arr = json_array();
    for (int i = 0; arr && i < rows; i++) {
        json_t *row = json_array();
        for (int j = 0; row && j < cols; j++)
            json_array_append_new(row, num(m[(size_t)i * (size_t)cols + (size_t)j]));
        json_array_append_new(arr, row);
    }
    return arr;
}

static json_t *role_scores(const av_head_roles *r, int all) {
    json_t *o = json_object();
    for (int k = 0; k < AV_ROLE_COUNT; k++)
        if (all || !isnan(r->score[k])) json_object_set_new(o, av_role_name((av_role)k), num(r->score[k]));
    return o;
}

static json_t *token_array(const av_trace *t) {
    json_t *arr = json_array();
    for (int i = 0; i < av_trace_n_tokens(t); i++) {
        json_t *s = json_string(av_trace_token(t, i));
        json_array_append_new(arr, s ? s : json_string("\xEF\xBF\xBD"));
    }
    return arr;
}

json_t *av_stats_json(const av_trace *t, av_attn_kind kind, const av_head_stats *stats, int n_stats) {
    json_t *o = json_object();
    if (!o) return NULL;
    const char *model = av_trace_meta(t, "model");
    int n_heads = av_trace_n_heads(t, kind);
    json_object_set_new(o, "format", json_string("attnviz-stats"));
    json_object_set_new(o, "version", json_string(AV_ANALYSIS_FORMAT_VERSION));
    json_object_set_new(o, "model", model ? json_string(model) : json_null());
    json_object_set_new(o, "kind", json_string(av_attn_kind_name(kind)));
    json_object_set_new(o, "n_layers", json_integer(av_trace_n_layers(t, kind)));
    json_object_set_new(o, "n_heads", json_integer(n_heads));
    json_object_set_new(o, "n_tokens", json_integer(av_trace_n_tokens(t)));
    json_object_set_new(o, "tokens", token_array(t));
    json_object_set_new(o, "min_role_score", json_real(AV_ROLE_MIN_SCORE));
    json_t *heads = json_array();
    for (int k = 0; k < n_stats; k++) {
        const av_head_stats *s = &stats[k];
        av_head_roles r;
        av_roles_from_stats(s, &r);
        json_t *h = json_object();
        json_object_set_new(h, "layer", json_integer(s->layer));
        json_object_set_new(h, "head",
                            s->head >= 0               ? json_integer(s->head) /* a reduction: */
                            : s->head == AV_HEADS_MEAN ? json_string("mean")
                            : s->head == AV_HEADS_MAX  ? json_string("max")
                                                       : json_string("min"));
        json_object_set_new(h, "rows", json_integer(s->n_rows));
        json_object_set_new(h, "entropy", num(s->entropy));
        json_object_set_new(h, "entropy_norm", num(s->entropy_norm));
        json_object_set_new(h, "distance", num(s->distance));
        json_object_set_new(h, "first", num(s->first));
        json_object_set_new(h, "self", num(s->self));
        json_object_set_new(h, "prev", num(s->prev));
        json_object_set_new(h, "special", num(s->special));
        json_object_set_new(h, "punct", num(s->punct));
        json_object_set_new(h, "uniformity", num(s->uniformity));
        json_object_set_new(h, "first_norm", num(s->first_norm));
        json_object_set_new(h, "role", json_string(av_role_name(r.best)));
        json_object_set_new(h, "role_score", num(r.best_score));
        json_object_set_new(h, "scores", role_scores(&r, 0));
        json_array_append_new(heads, h);
    }
    json_object_set_new(o, "heads", heads);
    return o;
}

json_t *av_roles_json(const av_model *m, const av_roles_result *r) {
    json_t *o = json_object();
    if (!o) return NULL;
    av_model_info info = av_model_get_info(m);
    json_object_set_new(o, "format", json_string("attnviz-roles"));
    json_object_set_new(o, "version", json_string(AV_ANALYSIS_FORMAT_VERSION));
    json_object_set_new(o, "model", json_string(info.name));
    json_object_set_new(o, "n_layers", json_integer(r->n_layers));
    json_object_set_new(o, "n_heads", json_integer(r->n_heads));
    json_object_set_new(o, "min_role_score", json_real(AV_ROLE_MIN_SCORE));
    json_t *probe = json_object();
    json_object_set_new(probe, "text", json_string(r->text ? r->text : ""));
    json_object_set_new(probe, "text_tokens", json_integer(r->text_tokens));
    json_object_set_new(probe, "seq_len", json_integer(r->seq_len));
    json_object_set_new(probe, "samples", json_integer(r->n_samples));
    json_object_set_new(probe, "seed", json_integer((json_int_t)r->seed));
    json_object_set_new(o, "probe", probe);
    json_t *heads = json_array(), *summary = json_object();
    for (int k = 0; k < AV_ROLE_COUNT; k++)
        json_object_set_new(summary, av_role_name((av_role)k), json_array());
    for (int k = 0; k < r->n_layers * r->n_heads; k++) {
        const av_head_roles *hr = &r->heads[k];
        json_t *h = json_object();
        json_object_set_new(h, "layer", json_integer(hr->layer));
        json_object_set_new(h, "head", json_integer(hr->head));
        json_object_set_new(h, "role", json_string(av_role_name(hr->best)));
        json_object_set_new(h, "score", num(hr->best_score));
        json_object_set_new(h, "scores", role_scores(hr, 1));
        json_array_append_new(heads, h);
        if (hr->best != AV_ROLE_NONE) {
            char name[32];
            snprintf(name, sizeof name, "%d.%d", hr->layer, hr->head);
            json_array_append_new(json_object_get(summary, av_role_name(hr->best)), json_string(name));
        }
    }
    json_object_set_new(o, "heads", heads);
    json_object_set_new(o, "summary", summary);
    return o;
}
