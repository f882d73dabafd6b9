/* The attribution and logit-lens data of the standalone page (web/attribution.js, web/lens.js): meta
 * "attribution" and "lens", plain JSON numbers (a few values per source token and target; the lens's k
 * tokens per layer and position), described in docs/VIEWER.md. */
#include "render/html_internal.h"

#include <math.h>
#include <stdlib.h>

static json_t *floats(const float *v, size_t n) {
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, isfinite(v[i]) ? json_real(v[i]) : json_null());
    return a;
}

json_t *av_html_json_ints(const int32_t *v, size_t n) {
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_integer(v[i]));
    return a;
}

/* A metadata value holding JSON, parsed (or null). */
static json_t *meta_json(const av_trace *t, const char *key) {
    const char *s = av_trace_meta(t, key);
    json_t *j = s ? json_loads(s, 0, NULL) : NULL;
    return j ? j : json_null();
}

/* {"source_len", "targets": {ids, rows, logprobs, labels}, "methods": {name: {"scores", "ig_delta"?}},
 * "settings"}; NULL when the trace has no attribution. */
static json_t *attribution(const av_trace *t) {
    json_t *methods = json_object(), *o = NULL;
    for (int k = 0; k < AV_ATTR_METHOD_COUNT; k++) {
        av_attr_view v;
        if (av_trace_attribution(t, (av_attr_method)k, &v, NULL)) continue;
        json_t *m = json_object();
        json_object_set_new(m, "scores", floats(v.scores, (size_t)v.n_target * (size_t)v.source_len));
        av_tensor d;
        if (k == AV_ATTR_IG && av_trace_tensor(t, "attr.ig.delta", &d) == 0 && d.dtype == AV_DTYPE_F32 &&
            av_tensor_numel(&d) == v.n_target)
            json_object_set_new(m, "ig_delta", floats(d.data, (size_t)v.n_target));
        json_object_set_new(methods, av_attr_method_name((av_attr_method)k), m);
        if (o) continue;
        o = json_object();
        json_object_set_new(o, "source_len", json_integer(v.source_len));
        json_object_set_new(o, "targets",
                            json_pack("{s:o, s:o, s:o, s:o}", "ids",
                                      av_html_json_ints(v.target_ids, (size_t)v.n_target), "rows",
                                      av_html_json_ints(v.target_rows, (size_t)v.n_target), "logprobs",
                                      floats(v.target_logprobs, (size_t)v.n_target), "labels",
                                      meta_json(t, "attr.target_labels")));
        json_object_set_new(o, "settings", meta_json(t, "attribution"));
    }
    if (o)
        json_object_set_new(o, "methods", methods);
    else
        json_decref(methods);
    return o;
}

/* {"entries", "tokens", "k", "topk_ids", "topk_logprobs", "target_ids", "target_logprobs", "target_ranks",
 * "labels"}; NULL without a lens. */
static json_t *lens(const av_trace *t) {
    av_lens_view v;
    if (av_trace_lens(t, &v, NULL)) return NULL;
    size_t cells = (size_t)v.n_entries * (size_t)v.n_tokens, nk = cells * (size_t)v.k;
    return json_pack("{s:i, s:i, s:i, s:o, s:o, s:o, s:o, s:o, s:o}", "entries", v.n_entries, "tokens",
                     v.n_tokens, "k", v.k, "topk_ids", av_html_json_ints(v.topk_ids, nk), "topk_logprobs",
                     floats(v.topk_logprobs, nk), "target_ids",
                     av_html_json_ints(v.target_ids, (size_t)v.n_tokens), "target_logprobs",
                     floats(v.target_logprobs, cells), "target_ranks",
                     av_html_json_ints(v.target_ranks, cells), "labels", meta_json(t, "lens.labels"));
}

int av_html_attr_encode(const av_trace *t, json_t *meta, av_err *err) {
    json_t *a = attribution(t), *l = lens(t);
    if ((a && json_object_set_new(meta, "attribution", a)) || (l && json_object_set_new(meta, "lens", l)))
        return av_errf(err, "out of memory for the attribution data");
    return 0;
}
