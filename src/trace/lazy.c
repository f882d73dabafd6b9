/* Lazy attention (docs/TRACE_FORMAT.md, version 2): each lazy kind stores its queries and keys and the
 * parameters of its scores (per-layer scale, soft-cap, sliding window; causal; relative-position bias; key
 * mask); rows are recomputed with av_attention_probs, the same code the forward pass runs. Version 1 lazy
 * traces (self-attention only: q.<l>, k.<l>, attn_scale, causal) still load. */
#include "kernels/kernels.h"
#include "trace.h"

#include <stdlib.h>
#include <string.h>

enum { ROWS_BLOCK = 128 }; /* query rows computed together */

/* "q.<l>" for self (version 1 names), "q.<kind>.<l>" for the others. */
static void qk_name(char *buf, size_t n, char which, av_attn_kind kind, int l) {
    if (kind == AV_ATTN_SELF)
        snprintf(buf, n, "%c.%d", which, l);
    else
        snprintf(buf, n, "%c.%s.%d", which, av_attn_kind_name(kind), l);
}

void av_lazy_rows(const av_lazy_kind *lz, int layer, int head, int q0, int nq, float *out) {
    int hs = lz->head_dim, g = head / (lz->n_heads / lz->n_kv_heads), len = lz->n_query + lz->n_key - 1;
    /* a one-head view of the stored (head-major) queries and keys; positions are row indices */
    av_attn_args a = {.n_heads = 1,
                      .n_kv_heads = 1,
                      .head_dim = hs,
                      .n_q = lz->n_query,
                      .n_k = lz->n_key,
                      .q = lz->q[layer] + (size_t)head * (size_t)lz->n_query * (size_t)hs,
                      .q_stride = hs,
                      .k = lz->k[layer] + (size_t)g * (size_t)lz->n_key * (size_t)hs,
                      .k_stride = hs,
                      .scale = lz->scale[layer],
                      .softcap = lz->softcap[layer],
                      .causal = lz->causal,
                      .window = lz->window[layer],
                      .key_mask = lz->key_mask};
    if (lz->rel_bias) {
        a.rel_bias = lz->rel_bias + (size_t)head * (size_t)len;
        a.rel_stride = len;
        a.rel_zero = lz->n_query - 1;
    }
    int written = av_attention_probs(&a, 0, q0, nq, out, lz->n_key);
    for (int i = 0; i < nq && written < lz->n_key; i++)
        memset(out + (size_t)i * (size_t)lz->n_key + written, 0,
               sizeof(float) * (size_t)(lz->n_key - written));
}

int av_trace_lazy_materialize(const av_trace *t, av_attn_kind kind, int layer, size_t max_bytes, float **out,
                              av_err *err) {
    const av_lazy_kind *lz = &t->lazy_kinds[kind];
    size_t Q = (size_t)lz->n_query, K = (size_t)lz->n_key, n;
    if (!av_mul_size(Q * K, (size_t)lz->n_heads, &n) || !av_mul_size(n, sizeof(float), &n) || n > max_bytes)
        return av_errf(
            err,
            "layer %d would need %zu MiB as a full matrix (%d heads x %zu x %zu): read rows or tiles "
            "of this lazy trace instead",
            layer, n >> 20, lz->n_heads, Q, K);
    float *a = malloc(n ? n : 4);
    if (!a) return av_errf(err, "out of memory");
    for (int h = 0; h < lz->n_heads; h++)
        for (size_t q0 = 0; q0 < Q; q0 += ROWS_BLOCK)
            av_lazy_rows(lz, layer, h, (int)q0, Q - q0 < ROWS_BLOCK ? (int)(Q - q0) : ROWS_BLOCK,
                         a + ((size_t)h * Q + q0) * K);
    *out = a;
    return 0;
}

/* A view of F32 data (a, b, c). */
static av_tensor f32_3d(const float *data, int64_t a, int64_t b, int64_t c) {
    return (av_tensor){AV_DTYPE_F32, 3, {a, b, c, 0}, data, sizeof(float) * (size_t)(a * b * c)};
}

int av_trace_qk(const av_trace *t, av_attn_kind kind, int layer, av_qk_view *out, av_err *err) {
    const av_lazy_kind *lz = (unsigned)kind < AV_ATTN_KIND_COUNT ? &t->lazy_kinds[kind] : NULL;
    if (!lz || !lz->n_layers)
        return av_errf(err,
                       "the trace keeps no queries/keys of its '%s' attention (run with --lazy or --keep-qk)",
                       av_attn_kind_name(kind));
    if (layer < 0 || layer >= lz->n_layers)
        return av_errf(err, "layer %d is out of range: layers 0..%d", layer, lz->n_layers - 1);
    memset(out, 0, sizeof *out);
    out->q = f32_3d(lz->q[layer], lz->n_heads, lz->n_query, lz->head_dim);
    out->k = f32_3d(lz->k[layer], lz->n_kv_heads, lz->n_key, lz->head_dim);
    out->scale = lz->scale[layer];
    out->softcap = lz->softcap[layer];
    out->causal = lz->causal;
    out->window = lz->window[layer];
    out->has_rel_bias = lz->rel_bias != NULL;
    out->has_key_mask = lz->key_mask != NULL;
    return 0;
}

/* ---- building ---- */

void av_lazy_free(av_lazy_kind *lz) {
    for (int l = 0; lz->owns_qk && l < lz->n_layers; l++) {
        const void *bufs[] = {lz->q ? lz->q[l] : NULL, lz->k ? lz->k[l] : NULL,
                              lz->pool_max ? lz->pool_max[l] : NULL, lz->pool_mean ? lz->pool_mean[l] : NULL};
        for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
            free((void *)bufs[i]);
    }
    if (lz->owns_extras) {
        free((void *)lz->rel_bias);
        free((void *)lz->key_mask);
    }
    void *arrays[] = {lz->q, lz->k, lz->scale, lz->softcap, lz->window, lz->pool_max, lz->pool_mean};
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++)
        free(arrays[i]);
    memset(lz, 0, sizeof *lz);
}

/* Whether version 1 readers (self only: one scale, causal, nothing else) compute the same rows. */
static int v1_compatible(const av_trace *t) {
    const av_lazy_kind *lz = &t->lazy_kinds[AV_ATTN_SELF];
    for (int k = 1; k < AV_ATTN_KIND_COUNT; k++)
        if (t->lazy_kinds[k].n_layers) return 0;
    int ok = lz->n_layers && lz->lazy && lz->causal && !lz->rel_bias && !lz->key_mask;
    for (int l = 0; ok && l < lz->n_layers; l++)
        ok = lz->scale[l] == lz->scale[0] && !lz->window[l] && lz->softcap[l] == 0;
    return ok;
}

/* A JSON array of n floats (f) or integers (i). */
static json_t *json_list(const float *f, const int *i, int n) {
    json_t *a = json_array();
    for (int l = 0; a && l < n; l++)
        json_array_append_new(a, f ? json_real(f[l]) : json_integer(i[l]));
    return a;
}

/* Whether the trace uses what version 3 added here: pooled overviews, or queries/keys kept beside full
 * matrices. */
static int needs_v3(const av_trace *t) {
    for (int k = 0; k < AV_ATTN_KIND_COUNT; k++)
        if (t->lazy_kinds[k].n_layers && (t->lazy_kinds[k].pool_max || !t->lazy_kinds[k].lazy)) return 1;
    return 0;
}

/* Metadata "lazy_attn" {kind: {causal, scale, softcap, window}} of every kind with queries/keys, "lazy" or
 * "qk", and version 1's keys when its readers can use them. */
static int set_lazy_meta(av_trace *t, av_err *err) {
    json_t *all = json_object();
    for (int k = 0; all && k < AV_ATTN_KIND_COUNT; k++) {
        const av_lazy_kind *lz = &t->lazy_kinds[k];
        if (lz->n_layers)
            json_object_set_new(all, av_attn_kind_name((av_attn_kind)k),
                                json_pack("{s:b, s:o, s:o, s:o}", "causal", lz->causal, "scale",
                                          json_list(lz->scale, NULL, lz->n_layers), "softcap",
                                          json_list(lz->softcap, NULL, lz->n_layers), "window",
                                          json_list(NULL, lz->window, lz->n_layers)));
    }
    char scale[32];
    int rc = av_trace_set_meta_json(t, "lazy_attn", all, 0, err) ||
             av_trace_set_meta(t, t->lazy ? "lazy" : "qk", "1", err) ||
             av_trace_need_version(t, needs_v3(t) ? 3 : 2, err);
    if (!rc && v1_compatible(t)) {
        snprintf(scale, sizeof scale, "%.9g", (double)t->lazy_kinds[AV_ATTN_SELF].scale[0]);
        rc = av_trace_set_meta(t, "attn_scale", scale, err) || av_trace_set_meta(t, "causal", "1", err);
    }
    return rc ? -1 : 0;
}

int av_trace_set_lazy(av_trace *t, av_attn_kind kind, const av_lazy_kind *lz, av_err *err) {
    av_lazy_free(&t->lazy_kinds[kind]);
    t->lazy_kinds[kind] = *lz;
    if (lz->lazy) t->lazy = 1;
    return set_lazy_meta(t, err);
}

/* ---- saving and loading ---- */

/* "pool.max.<kind>.<l>" / "pool.mean.<kind>.<l>". */
static void pool_name(char *buf, size_t n, int mean, av_attn_kind kind, int l) {
    snprintf(buf, n, "pool.%s.%s.%d", mean ? "mean" : "max", av_attn_kind_name(kind), l);
}

/* The tensors of every kind in file order: with masks 0 the F32 ones (queries and keys, pooled overviews,
 * relative biases: capture.c lays a lazy run's output file out the same way), with masks 1 the U8 key masks
 * (saved last, so they leave the F32 tensors aligned). */
int av_lazy_save(const av_trace *t, av_st_writer *w, int masks, av_err *err) {
    char name[48];
    for (int part = masks ? 3 : 0; part < (masks ? 4 : 3); part++)
        for (int k = 0; k < AV_ATTN_KIND_COUNT; k++) {
            const av_lazy_kind *lz = &t->lazy_kinds[k];
            const char *kn = av_attn_kind_name((av_attn_kind)k);
            int64_t qs[3] = {lz->n_heads, lz->n_query, lz->head_dim},
                    ks[3] = {lz->n_kv_heads, lz->n_key, lz->head_dim},
                    ps[3] = {lz->n_heads, lz->pool_rows, lz->pool_cols},
                    rs[2] = {lz->n_heads, (int64_t)lz->n_query + lz->n_key - 1}, ms[1] = {lz->n_key};
            for (int l = 0; part == 0 && l < lz->n_layers; l++) {
                qk_name(name, sizeof name, 'q', (av_attn_kind)k, l);
                if (av_st_writer_add(w, name, AV_DTYPE_F32, AV_DTYPE_F32, 3, qs, lz->q[l], err)) return -1;
                qk_name(name, sizeof name, 'k', (av_attn_kind)k, l);
                if (av_st_writer_add(w, name, AV_DTYPE_F32, AV_DTYPE_F32, 3, ks, lz->k[l], err)) return -1;
            }
            for (int l = 0; part == 1 && lz->pool_max && l < lz->n_layers; l++)
                for (int mean = 0; mean < 2; mean++) {
                    pool_name(name, sizeof name, mean, (av_attn_kind)k, l);
                    if (av_st_writer_add(w, name, AV_DTYPE_F32, AV_DTYPE_F32, 3, ps,
                                         mean ? lz->pool_mean[l] : lz->pool_max[l], err))
                        return -1;
                }
            snprintf(name, sizeof name, "%s.%s", part == 2 ? "relbias" : "keymask", kn);
            if (part == 2 && lz->rel_bias &&
                av_st_writer_add(w, name, AV_DTYPE_F32, AV_DTYPE_F32, 2, rs, lz->rel_bias, err))
                return -1;
            if (part == 3 && lz->key_mask &&
                av_st_writer_add(w, name, AV_DTYPE_U8, AV_DTYPE_U8, 1, ms, lz->key_mask, err))
                return -1;
        }
    return 0;
}

/* n floats of JSON array a into out, each in [lo, hi) (integers when ints); -1 when malformed. */
static int read_params(const json_t *a, int n, double lo, double hi, int ints, float *f, int *i) {
    if (!json_is_array(a) || (int)json_array_size(a) != n) return -1;
    for (int l = 0; l < n; l++) {
        const json_t *v = json_array_get(a, (size_t)l);
        double x = json_number_value(v);
        if (!json_is_number(v) || !(x >= lo && x < hi) || (ints && !json_is_integer(v))) return -1;
        if (f) f[l] = (float)x;
        if (i) i[l] = (int)x;
    }
    return 0;
}

/* The score parameters of kind: version 2's {causal, scale, softcap, window}, or version 1's attn_scale. */
static int load_params(av_trace *t, av_lazy_kind *lz, const json_t *o, const char *path, const char *kname,
                       av_err *err) {
    int L = lz->n_layers;
    if (!o) { /* version 1: self-attention, causal, one scale */
        const char *sc = av_trace_meta(t, "attn_scale");
        char *end = NULL;
        double scale = sc ? strtod(sc, &end) : 0;
        if (!sc || *end || !(scale > 0))
            return av_errf(err, "%s: lazy trace needs a positive 'attn_scale'", path);
        for (int l = 0; l < L; l++)
            lz->scale[l] = (float)scale;
        lz->causal = 1;
        return 0;
    }
    const json_t *causal = json_object_get(o, "causal");
    if (!json_is_boolean(causal) ||
        read_params(json_object_get(o, "scale"), L, 1e-30, 1e30, 0, lz->scale, NULL) ||
        read_params(json_object_get(o, "softcap"), L, 0, 1e30, 0, lz->softcap, NULL) ||
        read_params(json_object_get(o, "window"), L, 0, 1 << 30, 1, NULL, lz->window))
        return av_errf(err,
                       "%s: lazy_attn.%s needs causal (a boolean) and %d positive scales, soft-caps and "
                       "windows (>= 0)",
                       path, kname, L);
    lz->causal = json_is_true(causal);
    return 0;
}

/* q/k of layer l of kind from the file into lz. */
static int load_layer(av_trace *t, av_lazy_kind *lz, av_attn_kind kind, int l, const char *path,
                      av_err *err) {
    char qn[48], kn[48];
    qk_name(qn, sizeof qn, 'q', kind, l);
    qk_name(kn, sizeof kn, 'k', kind, l);
    const av_tensor *q = av_st_find(&t->file, qn), *k = av_st_find(&t->file, kn);
    if (!k || q->dtype != AV_DTYPE_F32 || k->dtype != AV_DTYPE_F32 || q->ndim != 3 || k->ndim != 3 ||
        q->shape[2] != k->shape[2] || q->shape[0] <= 0 || k->shape[0] <= 0 || q->shape[0] % k->shape[0] ||
        q->shape[2] <= 0 || q->shape[0] > 65536 || q->shape[2] > 65536 || q->shape[1] <= 0 ||
        k->shape[1] <= 0 || q->shape[1] > INT32_MAX / 2 || k->shape[1] > INT32_MAX / 2)
        return av_errf(err, "%s: layer %d: %s/%s must be F32 [heads, queries, d] and [kv_heads, keys, d]",
                       path, l, qn, kn);
    if (l == 0) { /* layer 0 gives the shape */
        lz->n_heads = (int)q->shape[0], lz->n_kv_heads = (int)k->shape[0], lz->head_dim = (int)q->shape[2];
        lz->n_query = (int)q->shape[1], lz->n_key = (int)k->shape[1];
    } else if (q->shape[0] != lz->n_heads || k->shape[0] != lz->n_kv_heads || q->shape[2] != lz->head_dim ||
               q->shape[1] != lz->n_query || k->shape[1] != lz->n_key) {
        return av_errf(err, "%s: layer %d: %s/%s shapes differ from layer 0", path, l, qn, kn);
    }
    lz->q[l] = q->data;
    lz->k[l] = k->data;
    return 0;
}

/* The optional relbias.<kind> and keymask.<kind> tensors. */
static int load_extras(av_trace *t, av_lazy_kind *lz, const char *kname, const char *path, av_err *err) {
    char name[48];
    snprintf(name, sizeof name, "relbias.%s", kname);
    const av_tensor *r = av_st_find(&t->file, name);
    if (r && (r->dtype != AV_DTYPE_F32 || r->ndim != 2 || r->shape[0] != lz->n_heads ||
              r->shape[1] != (int64_t)lz->n_query + lz->n_key - 1))
        return av_errf(err, "%s: '%s' must be F32 [%d, %d]", path, name, lz->n_heads,
                       lz->n_query + lz->n_key - 1);
    lz->rel_bias = r ? r->data : NULL;
    snprintf(name, sizeof name, "keymask.%s", kname);
    const av_tensor *m = av_st_find(&t->file, name);
    if (m && (m->dtype != AV_DTYPE_U8 || m->ndim != 1 || m->shape[0] != lz->n_key))
        return av_errf(err, "%s: '%s' must be U8 [%d]", path, name, lz->n_key);
    lz->key_mask = m ? m->data : NULL;
    return 0;
}

/* The optional pooled overviews pool.max.<kind>.<l> / pool.mean.<kind>.<l> (all layers or none). */
static int load_pools(av_trace *t, av_lazy_kind *lz, av_attn_kind kind, const char *path, av_err *err) {
    char name[48];
    pool_name(name, sizeof name, 0, kind, 0);
    const av_tensor *first = av_st_find(&t->file, name);
    if (!first) return 0;
    int L = lz->n_layers;
    lz->pool_max = calloc((size_t)L, sizeof *lz->pool_max);
    lz->pool_mean = calloc((size_t)L, sizeof *lz->pool_mean);
    if (!lz->pool_max || !lz->pool_mean) return av_errf(err, "out of memory");
    lz->pool_rows = first->ndim == 3 ? (int)first->shape[1] : 0;
    lz->pool_cols = first->ndim == 3 ? (int)first->shape[2] : 0;
    if (lz->pool_rows < 1 || lz->pool_rows > lz->n_query || lz->pool_cols < 1 || lz->pool_cols > lz->n_key)
        return av_errf(err, "%s: '%s' must be [heads, rows, cols] with at most %d x %d cells", path, name,
                       lz->n_query, lz->n_key);
    for (int l = 0; l < L; l++)
        for (int mean = 0; mean < 2; mean++) {
            pool_name(name, sizeof name, mean, kind, l);
            const av_tensor *p = av_st_find(&t->file, name);
            if (!p || p->dtype != AV_DTYPE_F32 || p->ndim != 3 || p->shape[0] != lz->n_heads ||
                p->shape[1] != lz->pool_rows || p->shape[2] != lz->pool_cols)
                return av_errf(err, "%s: '%s' is missing or not F32 [%d, %d, %d] like layer 0's", path, name,
                               lz->n_heads, lz->pool_rows, lz->pool_cols);
            (mean ? lz->pool_mean : lz->pool_max)[l] = p->data;
        }
    return 0;
}

static int load_kind(av_trace *t, av_attn_kind kind, const json_t *params, const char *path, av_err *err) {
    av_lazy_kind *lz = &t->lazy_kinds[kind];
    const char *kname = av_attn_kind_name(kind);
    char name[48];
    int L = 0;
    for (; L < 100000; L++) {
        qk_name(name, sizeof name, 'q', kind, L);
        if (!av_st_find(&t->file, name)) break;
    }
    if (L == 0)
        return av_errf(err, "%s: lazy trace without %s tensors", path,
                       kind ? "q.<kind>.<layer>" : "q.<layer>");
    lz->n_layers = L;
    lz->q = calloc((size_t)L, sizeof *lz->q);
    lz->k = calloc((size_t)L, sizeof *lz->k);
    lz->scale = calloc((size_t)L, sizeof *lz->scale);
    lz->softcap = calloc((size_t)L, sizeof *lz->softcap);
    lz->window = calloc((size_t)L, sizeof *lz->window);
    if (!lz->q || !lz->k || !lz->scale || !lz->softcap || !lz->window) return av_errf(err, "out of memory");
    for (int l = 0; l < L; l++)
        if (load_layer(t, lz, kind, l, path, err)) return -1;
    if (load_params(t, lz, params, path, kname, err) || load_extras(t, lz, kname, path, err) ||
        load_pools(t, lz, kind, path, err))
        return -1;
    if ((kind == AV_ATTN_SELF && (lz->n_query != t->n_tokens || lz->n_key != t->n_tokens)) ||
        (lz->causal && lz->n_query != lz->n_key))
        return av_errf(err, "%s: lazy %s attention is %d x %d but the trace has %d tokens%s", path, kname,
                       lz->n_query, lz->n_key, t->n_tokens,
                       lz->causal ? " (causal attention is square)" : "");
    return 0;
}

int av_lazy_load(av_trace *t, const char *path, av_err *err) {
    const char *text = av_trace_meta(t, "lazy_attn"), *lazy = av_trace_meta(t, "lazy");
    t->lazy = lazy && strcmp(lazy, "1") == 0; /* else queries/keys kept beside full matrices ("qk") */
    for (int k = 0; k < AV_ATTN_KIND_COUNT; k++)
        t->lazy_kinds[k].lazy = t->lazy;
    if (!text) return load_kind(t, AV_ATTN_SELF, NULL, path, err); /* version 1 */
    json_error_t je;
    json_t *all = json_loads(text, 0, &je);
    const char *key;
    json_t *o;
    int rc = json_is_object(all) && json_object_size(all)
                 ? 0
                 : av_errf(err, "%s: 'lazy_attn' is not a JSON object of kinds", path);
    json_object_foreach(all, key, o) {
        av_attn_kind kind;
        if (rc) break;
        if (av_attn_kind_parse(key, &kind))
            rc = av_errf(err, "%s: lazy_attn names an unknown attention kind '%.16s'", path, key);
        else if (!json_is_object(o))
            rc = av_errf(err, "%s: lazy_attn.%s is not an object", path, key);
        else
            rc = load_kind(t, kind, o, path, err);
    }
    json_decref(all);
    return rc;
}
