/* The standalone page for long traces and the data of the newer views: a pooled overview of every head
 * when the matrices would pass the page's size budget (max over cells of tokens, from a lazy trace's stored
 * overview when it has one), the query rows the user asks for at full resolution (the Rows view), the queries
 * and keys of the neuron view, and the input image an image model saw. See docs/VIEWER.md. */
#include "render/html_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- pooled overviews ---- */

static double kind_values(const av_trace *t, av_attn_kind k, int cells) {
    int nq = av_trace_n_query(t, k), nk = av_trace_n_key(t, k);
    if (cells > 0) nq = nq < cells ? nq : cells, nk = nk < cells ? nk : cells;
    return (double)av_trace_n_layers(t, k) * av_trace_n_heads(t, k) * nq * nk;
}

static double all_values(const av_trace *t, int cells) {
    double v = 0;
    for (int k = 0; k < AV_ATTN_KIND_COUNT; k++)
        v += kind_values(t, (av_attn_kind)k, cells);
    return v;
}

int av_html_pool_cells(const av_trace *t, double max_bytes, double bytes_per_value) {
    if (all_values(t, 0) * bytes_per_value <= max_bytes) return 0;
    int R = 0, C = 0, first = 512;
    for (int k = 0; k < AV_ATTN_KIND_COUNT && !R; k++)
        av_trace_overview_cells(t, (av_attn_kind)k, &R, &C);
    if (R) first = R < C ? R : C; /* the stored overview's cells, and halvings of them, come at once */
    int cells = first;
    while (cells > 8 && all_values(t, cells) * bytes_per_value > 0.6 * max_bytes)
        cells /= 2;
    return cells;
}

/* Labels of n cells over tokens: the token itself, or "a-b". */
static int range_labels(const av_trace *t, av_attn_kind kind, int key_side, int n, json_t *out) {
    int nq = av_trace_n_query(t, kind), nk = av_trace_n_key(t, kind), m = key_side ? nk : nq;
    char **ql, **kl, buf[48];
    av_err err = {{0}};
    if (av_plot_labels(t, kind, nq, nk, &ql, &kl, &err)) return -1;
    char **tok = key_side ? kl : ql;
    for (int i = 0; i < n; i++) {
        int a = (int)((int64_t)i * m / n), b = (int)((int64_t)(i + 1) * m / n);
        snprintf(buf, sizeof buf, "%d-%d", a, b - 1);
        json_t *s = json_string(b - a == 1 ? tok[a] : buf);
        json_array_append_new(out, s ? s : json_string("?"));
    }
    av_plot_labels_free(ql, nq);
    av_plot_labels_free(kl, nk);
    return 0;
}

/* One layer of kind, every head pooled to R x C: (H, R, C) into blob. */
static int pooled_layer(const av_trace *t, av_attn_kind kind, int layer, int R, int C, int u8, av_buf *blob,
                        json_t *sets, av_err *err) {
    int H = av_trace_n_heads(t, kind), nq = av_trace_n_query(t, kind), nk = av_trace_n_key(t, kind);
    float *m = malloc(sizeof(float) * (size_t)H * (size_t)R * (size_t)C); /* (H, R, C) */
    if (!m) return av_errf(err, "out of memory");
    int rc = 0;
    for (int h = 0; !rc && h < H; h++) {
        av_tile_params p = {kind, layer, h, 0, nq, 0, nk, R, C, AV_POOL_MAX, 0};
        rc = av_trace_attn_tile_ex(t, &p, m + (size_t)h * (size_t)R * (size_t)C, err);
    }
    json_t *s = json_pack("{s:s, s:i, s:i, s:i, s:i}", "kind", av_attn_kind_name(kind), "layer", layer,
                          "heads", H, "nq", R, "nk", C);
    if (!rc) rc = av_html_encode(blob, m, (size_t)H * (size_t)R, C, u8, s, err);
    free(m);
    if (rc) json_decref(s);
    return rc ? -1 : json_array_append_new(sets, s);
}

/* Every token label of kind (queries, keys) into full[kind]: the Rows view's labels on a pooled page. */
static int full_labels(const av_trace *t, av_attn_kind kind, json_t *full) {
    int nq = av_trace_n_query(t, kind), nk = av_trace_n_key(t, kind);
    char **ql, **kl;
    av_err err = {{0}};
    if (av_plot_labels(t, kind, nq, nk, &ql, &kl, &err)) return -1;
    json_t *q = json_array(), *k = json_array();
    for (int side = 0; side < 2; side++)
        for (int i = 0; i < (side ? nk : nq); i++) {
            json_t *s = json_string(side ? kl[i] : ql[i]);
            json_array_append_new(side ? k : q, s ? s : json_string("?"));
        }
    av_plot_labels_free(ql, nq);
    av_plot_labels_free(kl, nk);
    return json_object_set_new(full, av_attn_kind_name(kind), json_pack("{s:o, s:o}", "q", q, "k", k));
}

int av_html_encode_pooled(const av_trace *t, int cells, int u8, av_buf *blob, json_t *sets, json_t *labels,
                          json_t *pooled, json_t *full, av_err *err) {
    for (int k = 0; k < AV_ATTN_KIND_COUNT; k++) {
        av_attn_kind kind = (av_attn_kind)k;
        int L = av_trace_n_layers(t, kind), nq = av_trace_n_query(t, kind), nk = av_trace_n_key(t, kind);
        if (!L) continue;
        int R = nq < cells ? nq : cells, C = nk < cells ? nk : cells;
        for (int l = 0; l < L; l++)
            if (pooled_layer(t, kind, l, R, C, u8, blob, sets, err)) return -1;
        json_t *q = json_array(), *kl = json_array();
        if (range_labels(t, kind, 0, R, q) || range_labels(t, kind, 1, C, kl)) {
            json_decref(q);
            json_decref(kl);
            return av_errf(err, "out of memory");
        }
        json_object_set_new(labels, av_attn_kind_name(kind), json_pack("{s:o, s:o}", "q", q, "k", kl));
        if (full && full_labels(t, kind, full)) return av_errf(err, "out of memory");
        json_object_set_new(pooled, av_attn_kind_name(kind),
                            json_pack("{s:i, s:i, s:i, s:i, s:s}", "rows", R, "cols", C, "n_query", nq,
                                      "n_key", nk, "pool", "max"));
    }
    return blob->oom ? av_errf(err, "out of memory") : 0;
}

/* ---- exact rows ---- */

/* Rows [q0, q1) of one layer into blob: the mean over heads, then (with heads) every head. */
static int rows_layer(const av_trace *t, av_attn_kind kind, int layer, int q0, int q1, int heads, int u8,
                      av_buf *blob, json_t *rows, av_err *err) {
    int H = av_trace_n_heads(t, kind), nk = av_trace_n_key(t, kind), n = q1 - q0;
    size_t per = (size_t)n * (size_t)nk;
    float *m = malloc(sizeof(float) * per * (size_t)(1 + (heads ? H : 0))); /* (1 [+ H], n, nk) */
    if (!m) return av_errf(err, "out of memory");
    int rc = 0;
    for (int h = -1; !rc && h < (heads ? H : 0); h++) {
        av_tile_params p = {kind, layer, h < 0 ? AV_HEADS_MEAN : h, q0, q1, 0, nk, n, nk, AV_POOL_MAX, 0};
        rc = av_trace_attn_tile_ex(t, &p, m + (size_t)(h + 1) * per, err);
    }
    json_t *mean = json_object(), *hd = heads ? json_object() : json_null();
    if (!rc) rc = av_html_encode(blob, m, (size_t)n, nk, u8, mean, err);
    if (!rc && heads) rc = av_html_encode(blob, m + per, (size_t)H * (size_t)n, nk, u8, hd, err);
    free(m);
    json_array_append_new(rows, json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:o, s:o}", "kind",
                                          av_attn_kind_name(kind), "layer", layer, "q0", q0, "nq", n, "nk",
                                          nk, "heads", heads ? H : 0, "mean", mean, "head_rows", hd));
    return rc;
}

int av_html_encode_rows(const av_trace *t, const av_html_params *p, int u8, double max_bytes, av_buf *blob,
                        json_t *meta, av_err *err) {
    if (p->rows_q1 <= p->rows_q0) return 0;
    double bpv = u8 ? 4.0 / 3 : 8.0 / 3; /* base64 of a byte / a half */
    json_t *rows = json_array();
    json_object_set_new(meta, "rows", rows);
    for (int k = 0; k < AV_ATTN_KIND_COUNT; k++) {
        av_attn_kind kind = (av_attn_kind)k;
        int L = av_trace_n_layers(t, kind), H = av_trace_n_heads(t, kind), nq = av_trace_n_query(t, kind),
            nk = av_trace_n_key(t, kind);
        if (!L) continue;
        if (p->rows_q0 >= nq) return av_errf(err, "--rows: query %d is past the %d queries", p->rows_q0, nq);
        int q1 = p->rows_q1 < nq ? p->rows_q1 : nq, n = q1 - p->rows_q0;
        double mean_bytes = (double)L * n * nk * bpv, head_bytes = (double)H * n * nk * bpv;
        if (mean_bytes > max_bytes)
            return av_errf(err,
                           "%d rows of %d keys for %d layers need %.0f MiB, more than the page's budget: ask "
                           "for fewer rows, or raise --max-mb",
                           n, nk, L, mean_bytes / (1 << 20));
        double left = max_bytes - mean_bytes;
        int s = p->layer >= 0 && p->layer < L ? p->layer : 0;
        for (int i = 0; i < L; i++) { /* every head of the start layer first, then of layers 0, 1, ... */
            int l = i == 0 ? s : i - 1 < s ? i - 1 : i;
            int heads = left >= head_bytes;
            left -= heads ? head_bytes : 0;
            if (rows_layer(t, kind, l, p->rows_q0, q1, heads, u8, blob, rows, err)) return -1;
        }
    }
    return blob->oom ? av_errf(err, "out of memory") : 0;
}

/* ---- queries and keys (neuron view) ---- */

static void put_f32(av_buf *blob, const av_tensor *x, json_t *layer, const char *key) {
    static const uint8_t zeros[4] = {0};
    av_buf_put(blob, zeros, (4 - blob->n % 4) % 4);
    json_object_set_new(layer, key, json_integer((json_int_t)blob->n));
    av_buf_put(blob, x->data, x->nbytes); /* little-endian hosts */
}

int av_html_encode_qk(const av_trace *t, double max_bytes, av_buf *blob, json_t *meta, av_err *err) {
    av_qk_view v;
    int L = av_trace_n_layers(t, AV_ATTN_SELF);
    if (!L || av_trace_qk(t, AV_ATTN_SELF, 0, &v, NULL)) {
        json_object_set_new(
            meta, "qk_note",
            json_string("this trace keeps no queries and keys: run with --keep-qk (or --lazy)"));
        return 0;
    }
    double bytes = (double)L * (double)(v.q.nbytes + v.k.nbytes) * 4 / 3;
    if (bytes > max_bytes || v.has_rel_bias || v.has_key_mask) {
        json_object_set_new(
            meta, "qk_note",
            json_string(v.has_rel_bias || v.has_key_mask
                            ? "the neuron view does not show relative-position biases or masks"
                            : "the queries and keys pass the page's budget (--max-mb)"));
        return 0;
    }
    json_t *layers = json_array();
    for (int l = 0; l < L; l++) {
        if (av_trace_qk(t, AV_ATTN_SELF, l, &v, err)) {
            json_decref(layers);
            return -1;
        }
        json_t *o = json_pack("{s:i, s:f, s:f, s:i}", "layer", l, "scale", (double)v.scale, "softcap",
                              (double)v.softcap, "window", v.window);
        put_f32(blob, &v.q, o, "qoff");
        put_f32(blob, &v.k, o, "koff");
        json_array_append_new(layers, o);
    }
    json_object_set_new(meta, "qk",
                        json_pack("{s:i, s:i, s:i, s:i, s:b, s:o}", "n", (int)v.q.shape[1], "d",
                                  (int)v.q.shape[2], "heads", (int)v.q.shape[0], "kv_heads",
                                  (int)v.k.shape[0], "causal", v.causal, "layers", layers));
    return blob->oom ? av_errf(err, "out of memory") : 0;
}

/* ---- the image an image model saw ---- */

char *av_html_image_png(const av_trace *t) {
    av_tensor x;
    if (av_trace_image(t, &x)) return NULL;
    int h = (int)x.shape[1], w = (int)x.shape[2];
    size_t plane = (size_t)h * (size_t)w;
    av_image im = {w, h, malloc(3 * plane)}; /* (h, w, 3) from (3, h, w) */
    if (!im.px) return NULL;
    for (size_t i = 0; i < plane; i++)
        for (int c = 0; c < 3; c++)
            im.px[3 * i + (size_t)c] = ((const uint8_t *)x.data)[(size_t)c * plane + i];
    uint8_t *png = NULL;
    size_t n = 0;
    char *b64 = av_png_encode(&im, 0, &png, &n, NULL) ? NULL : av_base64_encode(png, n);
    free(png);
    av_image_free(&im);
    return b64;
}
