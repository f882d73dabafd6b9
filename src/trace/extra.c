/* Tensors of a trace beyond attention (docs/TRACE_FORMAT.md): attribution (attr.*) and the logit lens
 * (lens.*), kept by name, saved with the trace and loaded back as views into the file; the typed views of
 * both (av_trace_attribution, av_trace_lens) check every shape against the trace before handing them out. */
#include "trace.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

static void extra_clear(av_trace_extra *e) {
    free(e->name);
    free(e->owned);
    memset(e, 0, sizeof *e);
}

void av_extra_free(av_trace *t) {
    for (int i = 0; i < t->n_extras; i++)
        extra_clear(&t->extras[i]);
    free(t->extras);
    t->extras = NULL;
    t->n_extras = 0;
}

static av_trace_extra *find(const av_trace *t, const char *name) {
    for (int i = 0; i < t->n_extras; i++)
        if (strcmp(t->extras[i].name, name) == 0) return &t->extras[i];
    return NULL;
}

/* A new (or the existing) entry named name. */
static av_trace_extra *slot(av_trace *t, const char *name, av_err *err) {
    av_trace_extra *e = find(t, name);
    if (e) {
        extra_clear(e);
    } else {
        av_trace_extra *p = realloc(t->extras, sizeof *p * (size_t)(t->n_extras + 1));
        if (!p) return av_errf(err, "out of memory"), NULL;
        t->extras = p;
        e = &p[t->n_extras++];
        memset(e, 0, sizeof *e);
    }
    if (!(e->name = av_strdup(name))) return av_errf(err, "out of memory"), NULL;
    return e;
}

int av_trace_put_tensor(av_trace *t, const char *name, av_dtype dtype, int ndim, const int64_t *shape,
                        void *data, av_err *err) {
    av_trace_extra *e = slot(t, name, err);
    if (!e || ndim < 1 || ndim > AV_MAX_DIMS || (dtype != AV_DTYPE_F32 && dtype != AV_DTYPE_I32)) {
        free(data);
        return e ? av_errf(err, "internal error: tensor '%s' must be F32 or I32 of 1-4 dimensions", name)
                 : -1;
    }
    e->owned = data;
    e->t = (av_tensor){dtype, ndim, {0}, data, 4};
    for (int i = 0; i < ndim; i++) {
        e->t.shape[i] = shape[i];
        e->t.nbytes *= (size_t)shape[i];
    }
    return av_trace_need_version(t, 3, err); /* version 3: attr.* and lens.* (docs/TRACE_FORMAT.md) */
}

int av_extra_load(av_trace *t, const char *path, av_err *err) {
    for (int i = 0; i < t->file.n; i++) {
        const av_st_entry *s = &t->file.entries[i];
        if (strncmp(s->name, "attr.", 5) != 0 && strncmp(s->name, "lens.", 5) != 0) continue;
        if ((s->t.dtype != AV_DTYPE_F32 && s->t.dtype != AV_DTYPE_I32) || s->t.ndim < 1)
            return av_errf(err, "%s: '%s' must be an F32 or I32 tensor", path, s->name);
        av_trace_extra *e = slot(t, s->name, err);
        if (!e) return -1;
        e->t = s->t;
    }
    return 0;
}

int av_extra_save(const av_trace *t, av_st_writer *w, av_err *err) {
    for (int i = 0; i < t->n_extras; i++) {
        const av_tensor *x = &t->extras[i].t;
        if (av_st_writer_add(w, t->extras[i].name, x->dtype, x->dtype, x->ndim, x->shape, x->data, err))
            return -1;
    }
    return 0;
}

int av_trace_tensor(const av_trace *t, const char *name, av_tensor *out) {
    const av_trace_extra *e = find(t, name);
    if (e) {
        *out = e->t;
        return 0;
    }
    if (strcmp(name, "logits") == 0) return av_trace_logits(t, out);
    if (strncmp(name, "vnorm.", 6) == 0 && name[6] >= '0' && name[6] <= '9') { /* also a run's, in memory */
        char *end;
        long layer = strtol(name + 6, &end, 10);
        return !*end && layer <= INT_MAX && av_trace_vnorm(t, (int)layer, out, NULL) == 0 ? 0 : -1;
    }
    const av_tensor *f = t->loaded ? av_st_find(&t->file, name) : NULL;
    if (!f) return -1;
    *out = *f;
    return 0;
}

/* ---- typed views ---- */

/* The tensor name of dtype with exactly the dims given (d1..: -1 for any); its data, or NULL with a message.
 */
static const void *shaped(const av_trace *t, const char *name, av_dtype dtype, int ndim, const int64_t *dims,
                          av_err *err) {
    av_tensor x;
    if (av_trace_tensor(t, name, &x)) return av_errf(err, "the trace has no '%s'", name), NULL;
    int ok = x.dtype == dtype && x.ndim == ndim;
    for (int i = 0; ok && i < ndim; i++)
        ok = dims[i] < 0 ? x.shape[i] > 0 : x.shape[i] == dims[i];
    if (!ok) return av_errf(err, "'%s' has the wrong dtype or shape for this trace", name), NULL;
    return x.data;
}

int av_trace_attribution(const av_trace *t, av_attr_method method, av_attr_view *out, av_err *err) {
    char name[64];
    av_tensor x;
    memset(out, 0, sizeof *out);
    if ((unsigned)method >= AV_ATTR_METHOD_COUNT)
        return av_errf(err, "unknown attribution method %d", method);
    snprintf(name, sizeof name, "attr.%s", av_attr_method_name(method));
    if (av_trace_tensor(t, name, &x))
        return av_errf(err,
                       "the trace has no %s attribution (%s); make one with attnviz attribute --method %s",
                       av_attr_method_name(method), name, av_attr_method_name(method));
    const char *sl = av_trace_meta(t, "source_len");
    int64_t n = x.ndim == 2 ? x.shape[0] : -1, S = x.ndim == 2 ? x.shape[1] : -1;
    if (!sl || atoll(sl) != S || S > t->n_tokens || n <= 0 || n > INT32_MAX / 2)
        return av_errf(err, "%s: shape [%lld, %lld] does not fit metadata source_len %s and %d tokens", name,
                       (long long)n, (long long)S, sl ? sl : "(missing)", t->n_tokens);
    const int64_t dn[2] = {n, S};
    out->scores = shaped(t, name, AV_DTYPE_F32, 2, dn, err);
    out->target_ids = shaped(t, "attr.target_ids", AV_DTYPE_I32, 1, dn, err);
    out->target_rows = out->target_ids ? shaped(t, "attr.target_rows", AV_DTYPE_I32, 1, dn, err) : NULL;
    out->target_logprobs =
        out->target_rows ? shaped(t, "attr.target_logprobs", AV_DTYPE_F32, 1, dn, err) : NULL;
    if (!out->scores || !out->target_logprobs) return -1;
    for (int64_t i = 0; i < n; i++)
        if (out->target_rows[i] < 0 || out->target_rows[i] >= t->n_tokens)
            return av_errf(err, "attr.target_rows: row %d of target %lld is outside the %d tokens",
                           out->target_rows[i], (long long)i, t->n_tokens);
    out->n_target = (int)n;
    out->source_len = (int)S;
    return 0;
}

int av_trace_lens(const av_trace *t, av_lens_view *out, av_err *err) {
    av_tensor x;
    memset(out, 0, sizeof *out);
    if (av_trace_tensor(t, "lens.topk_ids", &x))
        return av_errf(err, "the trace has no logit lens (lens.topk_ids); make one with attnviz lens");
    if (x.ndim != 3 || x.shape[1] != t->n_tokens || x.shape[0] > 100000 || x.shape[2] > 100000)
        return av_errf(err, "lens.topk_ids must be [n_layers + 1, %d tokens, k]", t->n_tokens);
    const int64_t d3[3] = {x.shape[0], x.shape[1], x.shape[2]}, d2[2] = {x.shape[0], x.shape[1]},
                  d1[1] = {x.shape[1]};
    out->topk_ids = shaped(t, "lens.topk_ids", AV_DTYPE_I32, 3, d3, err);
    out->topk_logprobs = out->topk_ids ? shaped(t, "lens.topk_logprobs", AV_DTYPE_F32, 3, d3, err) : NULL;
    out->target_ids = out->topk_logprobs ? shaped(t, "lens.target_ids", AV_DTYPE_I32, 1, d1, err) : NULL;
    out->target_logprobs =
        out->target_ids ? shaped(t, "lens.target_logprobs", AV_DTYPE_F32, 2, d2, err) : NULL;
    out->target_ranks =
        out->target_logprobs ? shaped(t, "lens.target_ranks", AV_DTYPE_I32, 2, d2, err) : NULL;
    if (!out->target_ranks) return -1;
    out->n_entries = (int)x.shape[0];
    out->n_tokens = (int)x.shape[1];
    out->k = (int)x.shape[2];
    return 0;
}
