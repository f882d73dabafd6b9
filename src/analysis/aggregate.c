/* Aggregation: mean / max / min over heads, over layers, or over any hand-picked set of (layer, head). */
#include "analysis.h"
#include "core/core.h"
#include "internal.h"
#include "trace/trace.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int av_reduce_parse(const char *s, av_reduce *out, av_err *err) {
    if (s && strcmp(s, "mean") == 0)
        *out = AV_REDUCE_MEAN;
    else if (s && strcmp(s, "max") == 0)
        *out = AV_REDUCE_MAX;
    else if (s && strcmp(s, "min") == 0)
        *out = AV_REDUCE_MIN;
    else
        return av_errf(err, "reduction must be mean, max or min, not '%s'", s ? s : "(null)");
    return 0;
}

const char *av_reduce_name(av_reduce r) {
    return r == AV_REDUCE_MEAN ? "mean" : r == AV_REDUCE_MAX ? "max" : r == AV_REDUCE_MIN ? "min" : "?";
}

/* out = out op p over numel values (the mean's sum; av_reduce_mean_finish divides). */
static void reduce_into(float *out, const float *p, size_t numel, av_reduce op) {
    if (op == AV_REDUCE_MEAN)
        for (size_t k = 0; k < numel; k++)
            out[k] += p[k];
    else if (op == AV_REDUCE_MAX)
        for (size_t k = 0; k < numel; k++)
            out[k] = p[k] > out[k] ? p[k] : out[k];
    else
        for (size_t k = 0; k < numel; k++)
            out[k] = p[k] < out[k] ? p[k] : out[k];
}

/* The mean of n matrices from their sum. */
static void reduce_finish(float *out, int n, size_t numel, av_reduce op) {
    if (op == AV_REDUCE_MEAN && n > 1)
        for (size_t k = 0; k < numel; k++)
            out[k] /= (float)n;
}

void av_reduce_mats(const float *const *mats, int n, size_t numel, av_reduce op, float *out) {
    memcpy(out, mats[0], numel * sizeof(float));
    for (int i = 1; i < n; i++)
        reduce_into(out, mats[i], numel, op);
    reduce_finish(out, n, numel, op);
}

int av_attn_reduce_heads(const av_attn_view *v, const int *heads, int n_sel, av_reduce op, float *out,
                         av_err *err) {
    if (!heads) n_sel = v->n_heads;
    if (n_sel <= 0) return av_errf(err, "no heads selected");
    const float **mats = malloc(sizeof *mats * (size_t)n_sel); /* (n_sel) pointers to (n_query, n_key) */
    if (!mats) return av_errf(err, "out of memory");
    size_t plane = (size_t)v->n_query * (size_t)v->n_key;
    for (int i = 0; i < n_sel; i++) {
        int h = heads ? heads[i] : i;
        if (h < 0 || h >= v->n_heads) {
            free(mats);
            return av_errf(err, "head %d is out of range: the layer has heads 0..%d", h, v->n_heads - 1);
        }
        mats[i] = v->data + (size_t)h * plane;
    }
    av_reduce_mats(mats, n_sel, plane, op, out);
    free(mats);
    return 0;
}

/* Each selected head is read as an exact tile (F16 converted, lazy rows recomputed, no layer kept whole in
 * f32) and folded into out in the order given: av_reduce_mats' operations. */
int av_trace_reduce(const av_trace *t, av_attn_kind kind, const av_head_ref *sel, int n_sel, av_reduce op,
                    float *out, int *n_query, int *n_key, av_err *err) {
    if (n_sel <= 0) return av_errf(err, "no heads selected");
    int L = av_trace_n_layers(t, kind), H = av_trace_n_heads(t, kind), nq = av_trace_n_query(t, kind),
        nk = av_trace_n_key(t, kind);
    if (L == 0) return av_errf(err, "the trace has no '%s' attention", av_attn_kind_name(kind));
    for (int i = 0; i < n_sel; i++) {
        if (sel[i].layer < 0 || sel[i].layer >= L)
            return av_errf(err, "layer %d is out of range: the trace has layers 0..%d", sel[i].layer, L - 1);
        if (sel[i].head < 0 || sel[i].head >= H)
            return av_errf(err, "head %d.%d is out of range: layer %d has heads 0..%d", sel[i].layer,
                           sel[i].head, sel[i].layer, H - 1);
    }
    size_t plane = (size_t)nq * (size_t)nk;
    float *head = n_sel > 1 ? av_an_alloc((size_t)nq, (size_t)nk, err) : NULL; /* (nq, nk) */
    if (n_sel > 1 && !head) return -1;
    int rc = 0;
    for (int i = 0; !rc && i < n_sel; i++) {
        rc = av_trace_rows(t, kind, sel[i].layer, sel[i].head, 0, nq, 0, 0, i ? head : out, err);
        if (!rc && i) reduce_into(out, head, plane, op);
    }
    free(head);
    if (rc) return -1;
    reduce_finish(out, n_sel, plane, op);
    if (n_query) *n_query = nq;
    if (n_key) *n_key = nk;
    return 0;
}

/* ---- head sets ---- */

/* Parses "*" (-> -1) or an integer in [-n, n) (negative counts from the end). */
static int parse_index(const char *s, size_t len, int n, int *out, const char *what, av_err *err) {
    if (len == 1 && s[0] == '*') {
        *out = -1;
        return 0;
    }
    char buf[32];
    if (len == 0 || len >= sizeof buf) return av_errf(err, "head set: empty or overlong %s index", what);
    memcpy(buf, s, len);
    buf[len] = 0;
    char *end;
    errno = 0;
    long v = strtol(buf, &end, 10);
    if (errno || *end) return av_errf(err, "head set: '%s' is not a %s index or '*'", buf, what);
    if (v < 0) v += n;
    if (v < 0 || v >= n) return av_errf(err, "head set: %s %s is out of range 0..%d", what, buf, n - 1);
    *out = (int)v;
    return 0;
}

int av_head_set_parse(const char *spec, int n_layers, int n_heads, av_head_ref **out, int *n_out,
                      av_err *err) {
    *out = NULL;
    *n_out = 0;
    if (n_layers <= 0 || n_heads <= 0) return av_errf(err, "head set: no layers or heads to choose from");
    if (!spec || !*spec) return av_errf(err, "head set is empty (use e.g. '0.1,2.*' or '*')");
    size_t total = (size_t)n_layers * (size_t)n_heads;
    uint8_t *chosen = calloc(total, 1); /* (n_layers, n_heads) */
    if (!chosen) return av_errf(err, "out of memory");
    const char *p = spec;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len && *p == ' ')
            p++, len--;
        while (len && p[len - 1] == ' ')
            len--;
        const char *dot = memchr(p, '.', len);
        int l, h = -1;
        if (len == 1 && p[0] == '*') {
            l = -1;
        } else if (parse_index(p, dot ? (size_t)(dot - p) : len, n_layers, &l, "layer", err) ||
                   (dot && parse_index(dot + 1, len - (size_t)(dot - p) - 1, n_heads, &h, "head", err))) {
            free(chosen);
            return -1;
        }
        for (int li = 0; li < n_layers; li++)
            for (int hi = 0; hi < n_heads; hi++)
                if ((l < 0 || l == li) && (h < 0 || h == hi))
                    chosen[(size_t)li * (size_t)n_heads + (size_t)hi] = 1;
        p = comma ? comma + 1 : p + len;
        if (comma && !*p) break;
    }
    int n = 0;
    for (size_t i = 0; i < total; i++)
        n += chosen[i];
    av_head_ref *refs = malloc(sizeof *refs * (size_t)(n ? n : 1));
    if (!refs) {
        free(chosen);
        return av_errf(err, "out of memory");
    }
    int k = 0;
    for (size_t i = 0; i < total; i++)
        if (chosen[i]) refs[k++] = (av_head_ref){(int)(i / (size_t)n_heads), (int)(i % (size_t)n_heads)};
    free(chosen);
    if (n == 0) {
        free(refs);
        return av_errf(err, "head set '%s' selects no heads", spec);
    }
    *out = refs;
    *n_out = n;
    return 0;
}
