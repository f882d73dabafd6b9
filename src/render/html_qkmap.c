/* The viewer's query/key map (AttentionViz, Yeh et al. 2023): for every head of every layer whose queries and
 * keys the trace keeps (lazy traces, full traces run with --keep-qk), the head's query and key vectors in one
 * 2-D map: the corpus report's projection (analysis/corpus_proj.c: keys translated onto the queries' mean,
 * both sides scaled to the same mean norm, then the joint points' first two principal components), computed
 * here once so the page only draws (web/qkmap.js).
 *
 * Blob: per embedded layer of a kind, float32 (n_heads, n_q + n_k, 2), 4-byte aligned: each head's sampled
 * queries, then its sampled keys, as (pc1, pc2). Meta "qkmap" (docs/VIEWER.md) says which positions were
 * sampled (evenly spaced when a side has more than the page allows), their labels and the explained variance,
 * or "qkmap_note" why there is no map. */
#include "render/html_internal.h"

#include "analysis/corpus.h"

#include <stdlib.h>
#include <string.h>

#define AV_QKMAP_SIDE_MAX 1000  /* points per side of a head before sampling */
#define AV_QKMAP_SIDE_MIN 64    /* the fewest per side the page budget may shrink a sample to */
#define AV_QKMAP_MAX_WORK 4e9   /* floating-point operations the PCAs of one page may take (~2-4 s) */
#define AV_QKMAP_JACOBI_WORK 60 /* x d^3: the Jacobi eigen-solver's work (about 10 sweeps of 6 d^3) */

/* One kind with stored queries and keys: its shape and the positions the map samples. */
typedef struct qk_kind {
    av_attn_kind kind;
    int n_layers, n_heads, dim, n_query, n_key;
    int *qpos, *kpos; /* (nq_s), (nk_s) sampled query and key positions (padding keys left out) */
    int nq_s, nk_s;
    int rel_bias; /* scores add a relative-position bias the map does not show */
} qk_kind;

/* Evenly spaced picks of up to cap items of idx (n), in order (the first always kept). out (min(n, cap)). */
static int sample_even(const int *idx, int n, int cap, int *out) {
    int m = n < cap ? n : cap;
    for (int i = 0; i < m; i++)
        out[i] = idx[(int)((long long)i * n / m)];
    return m;
}

/* The kind's shape and its valid key positions (all keys but padding); -1 when it keeps no queries/keys. */
static int kind_probe(const av_trace *t, av_attn_kind kind, qk_kind *k, int **valid, int *n_valid) {
    av_corpus_qk_view v;
    av_qk_view qv;
    if (av_trace_n_layers(t, kind) == 0 || av_corpus_trace_qk(t, kind, 0, &v, NULL)) return -1;
    av_trace_qk(t, kind, 0, &qv, NULL);
    *k = (qk_kind){.kind = kind,
                   .n_layers = av_trace_n_layers(t, kind),
                   .n_heads = v.n_heads,
                   .dim = v.dim,
                   .n_query = v.n_query,
                   .n_key = v.n_key,
                   .rel_bias = qv.has_rel_bias};
    int n = 0, *ok = malloc(sizeof *ok * (size_t)(v.n_key ? v.n_key : 1));
    for (int j = 0; ok && j < v.n_key; j++)
        if (!v.key_mask || v.key_mask[j]) ok[n++] = j;
    av_corpus_qk_view_free(&v);
    *valid = ok;
    *n_valid = n;
    return ok ? 0 : -2;
}

/* Page bytes (base64 of float32 pairs) and PCA work of one layer of k with side samples nq_s, nk_s. */
static double layer_bytes(const qk_kind *k, int nq_s, int nk_s) {
    return (double)k->n_heads * (nq_s + nk_s) * 2 * 4 * 4 / 3;
}
static double layer_work(const qk_kind *k, int nq_s, int nk_s) {
    double d = k->dim;
    return k->n_heads * ((double)(nq_s + nk_s) * d * d + AV_QKMAP_JACOBI_WORK * d * d * d);
}

/* The largest side cap (AV_QKMAP_SIDE_MAX shrunk by quarters) at which every layer of every kind fits
 * max_bytes, or AV_QKMAP_SIDE_MIN. */
static int side_cap(const qk_kind *ks, const int *n_valid, int n_kinds, double max_bytes) {
    int cap = AV_QKMAP_SIDE_MAX;
    for (; cap > AV_QKMAP_SIDE_MIN; cap = cap * 3 / 4 > AV_QKMAP_SIDE_MIN ? cap * 3 / 4 : AV_QKMAP_SIDE_MIN) {
        double bytes = 0;
        for (int i = 0; i < n_kinds; i++) {
            int nq = ks[i].n_query < cap ? ks[i].n_query : cap, nk = n_valid[i] < cap ? n_valid[i] : cap;
            bytes += layer_bytes(&ks[i], nq, nk) * ks[i].n_layers;
        }
        if (bytes <= max_bytes) break;
    }
    return cap;
}

/* Labels of the sampled positions pos (n) of one side. */
static json_t *json_sampled_labels(char **labels, const int *pos, int n) {
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++) {
        json_t *s = json_string(labels[pos[i]]);
        json_array_append_new(a, s ? s : json_string("?"));
    }
    return a;
}

/* One head's map: x (n, dim) and xy (n, 2) scratch, is_key (n); out (n, 2) float32; var (2). */
static int head_map(const av_corpus_qk_view *v, const qk_kind *k, int h, double *x, int *is_key, double *xy,
                    float *out, double var[2]) {
    int d = k->dim, n = k->nq_s + k->nk_s, kv = h / (v->n_heads / v->n_kv_heads); /* GQA: its key head */
    const float *q = v->q + (size_t)h * v->n_query * d, *kk = v->k + (size_t)kv * v->n_key * d;
    for (int i = 0; i < n; i++) {
        int side = i >= k->nq_s, pos = side ? k->kpos[i - k->nq_s] : k->qpos[i];
        const float *src = (side ? kk : q) + (size_t)pos * d; /* (d) */
        is_key[i] = side;
        for (int c = 0; c < d; c++)
            x[(size_t)i * d + c] = src[c];
    }
    av_qk_normalize(x, is_key, n, d);
    if (av_pca2(x, n, d, xy, var, NULL)) return -1;
    for (int i = 0; i < 2 * n; i++)
        out[i] = (float)xy[i];
    return 0;
}

/* The heads of one layer, spread over threads (each head on its own: the same maps on any thread count). */
typedef struct layer_job {
    const av_corpus_qk_view *v;
    const qk_kind *k;
    float *out;  /* (n_heads, n, 2) */
    double *var; /* (n_heads, 2) */
    int *failed; /* (n_heads) */
} layer_job;

static void layer_range(void *ctx, int tid, int64_t h0, int64_t h1) {
    const layer_job *j = ctx;
    size_t n = (size_t)(j->k->nq_s + j->k->nk_s);
    double *x = malloc(sizeof *x * n * (size_t)j->k->dim),
           *xy = malloc(sizeof *xy * n * 2);  /* (n, d), (n, 2) */
    int *is_key = malloc(sizeof *is_key * n); /* (n) */
    for (int64_t h = h0; h < h1; h++)
        j->failed[h] =
            !x || !xy || !is_key ||
            head_map(j->v, j->k, (int)h, x, is_key, xy, j->out + (size_t)h * n * 2, j->var + 2 * h);
    free(x);
    free(xy);
    free(is_key);
}

/* Every head of one layer of k: float32 (n_heads, n, 2) into the blob, {layer, off, var} into maps. */
static int encode_layer(const av_trace *t, const qk_kind *k, int layer, av_buf *blob, json_t *maps,
                        av_err *err) {
    static const uint8_t zeros[4] = {0};
    av_corpus_qk_view v;
    if (av_corpus_trace_qk(t, k->kind, layer, &v, err)) return -1;
    size_t n = (size_t)(k->nq_s + k->nk_s), H = (size_t)k->n_heads;
    layer_job job = {&v, k, malloc(sizeof *job.out * H * n * 2), malloc(sizeof *job.var * H * 2),
                     calloc(H, sizeof *job.failed)};
    int rc = !job.out || !job.var || !job.failed;
    if (!rc) av_parallel_for(0, (int64_t)H, layer_range, &job);
    for (size_t h = 0; !rc && h < H; h++)
        rc = job.failed[h];
    if (rc) {
        av_errf(err, "out of memory for the query/key map of %s layer %d", av_attn_kind_name(k->kind), layer);
    } else {
        json_t *var = json_array();
        for (size_t h = 0; h < H; h++)
            json_array_append_new(var, json_pack("[f, f]", job.var[2 * h], job.var[2 * h + 1]));
        av_buf_put(blob, zeros, (4 - blob->n % 4) % 4);
        json_array_append_new(
            maps, json_pack("{s:i, s:I, s:o}", "layer", layer, "off", (json_int_t)blob->n, "var", var));
        av_buf_put(blob, job.out, sizeof *job.out * H * n * 2); /* little-endian hosts */
    }
    free(job.out);
    free(job.var);
    free(job.failed);
    av_corpus_qk_view_free(&v);
    if (rc) return -1;
    return blob->oom ? av_errf(err, "out of memory") : 0;
}

/* meta "qkmap".kinds[kind]: shape, sampled positions and labels, then the layers that fit the budgets (the
 * page's first layer first). *bytes, *work: what is left of the budgets. */
static int encode_kind(const av_trace *t, qk_kind *k, int first_layer, double *bytes, double *work,
                       av_buf *blob, json_t *kinds, av_err *err) {
    char **ql, **kl;
    if (av_plot_labels(t, k->kind, k->n_query, k->n_key, &ql, &kl, err)) return -1;
    json_t *o = json_pack("{s:i, s:i, s:i, s:i, s:i, s:b}", "layers", k->n_layers, "heads", k->n_heads, "dim",
                          k->dim, "n_query", k->n_query, "n_key", k->n_key, "rel_bias", k->rel_bias);
    json_object_set_new(o, "qpos", av_html_json_ints(k->qpos, (size_t)k->nq_s));
    json_object_set_new(o, "kpos", av_html_json_ints(k->kpos, (size_t)k->nk_s));
    json_object_set_new(o, "qtok", json_sampled_labels(ql, k->qpos, k->nq_s));
    json_object_set_new(o, "ktok", json_sampled_labels(kl, k->kpos, k->nk_s));
    av_plot_labels_free(ql, k->n_query);
    av_plot_labels_free(kl, k->n_key);
    json_t *maps = json_array();
    json_object_set_new(o, "maps", maps);
    json_object_set_new(kinds, av_attn_kind_name(k->kind), o);
    int s = first_layer >= 0 && first_layer < k->n_layers ? first_layer : 0;
    double lb = layer_bytes(k, k->nq_s, k->nk_s), lw = layer_work(k, k->nq_s, k->nk_s);
    for (int i = 0; i < k->n_layers; i++) { /* the first layer, then 0, 1, ... */
        int l = i == 0 ? s : i - 1 < s ? i - 1 : i;
        if (i > 0 && (lb > *bytes || lw > *work)) break; /* the first layer always: the page shows it */
        if (encode_layer(t, k, l, blob, maps, err)) return -1;
        *bytes -= lb;
        *work -= lw;
    }
    return 0;
}

int av_html_has_qk(const av_trace *t) {
    av_qk_view v;
    for (int i = 0; i < AV_ATTN_KIND_COUNT; i++)
        if (av_trace_n_layers(t, (av_attn_kind)i) && av_trace_qk(t, (av_attn_kind)i, 0, &v, NULL) == 0)
            return 1;
    return 0;
}

int av_html_encode_qkmap(const av_trace *t, const av_html_params *p, double max_bytes, av_buf *blob,
                         json_t *meta, av_err *err) {
    qk_kind ks[AV_ATTN_KIND_COUNT];
    int *valid[AV_ATTN_KIND_COUNT] = {0}, n_valid[AV_ATTN_KIND_COUNT], n = 0, rc = 0;
    for (int i = 0; i < AV_ATTN_KIND_COUNT; i++) {
        int r = kind_probe(t, (av_attn_kind)i, &ks[n], &valid[n], &n_valid[n]);
        if (r == -2) rc = av_errf(err, "out of memory");
        if (r == 0) n++;
    }
    if (n == 0 && !rc) {
        json_object_set_new(
            meta, "qkmap_note",
            json_string("this trace keeps no queries and keys: run with --keep-qk (or --lazy)"));
        return 0;
    }
    int cap = side_cap(ks, n_valid, n, max_bytes);
    for (int i = 0; !rc && i < n; i++) {
        ks[i].qpos = malloc(sizeof *ks[i].qpos * (size_t)(ks[i].n_query ? ks[i].n_query : 1));
        ks[i].kpos = malloc(sizeof *ks[i].kpos * (size_t)(n_valid[i] ? n_valid[i] : 1));
        int *all = malloc(sizeof *all * (size_t)(ks[i].n_query ? ks[i].n_query : 1));
        if (!ks[i].qpos || !ks[i].kpos || !all) rc = av_errf(err, "out of memory");
        for (int j = 0; !rc && j < ks[i].n_query; j++)
            all[j] = j;
        if (!rc) {
            ks[i].nq_s = sample_even(all, ks[i].n_query, cap, ks[i].qpos);
            ks[i].nk_s = sample_even(valid[i], n_valid[i], cap, ks[i].kpos);
        }
        free(all);
    }
    json_t *o = json_object(), *kinds = json_object();
    json_object_set_new(o, "side_max", json_integer(cap));
    json_object_set_new(o, "kinds", kinds);
    double bytes = max_bytes, work = AV_QKMAP_MAX_WORK;
    for (int i = 0; !rc && i < n; i++) {
        int first = p->kind < 0 || p->kind == (int)ks[i].kind ? p->layer : 0;
        if (ks[i].nq_s + ks[i].nk_s >= 2) rc = encode_kind(t, &ks[i], first, &bytes, &work, blob, kinds, err);
    }
    if (!rc)
        json_object_set_new(meta, "qkmap", o);
    else
        json_decref(o);
    for (int i = 0; i < n; i++) {
        free(ks[i].qpos);
        free(ks[i].kpos);
        free(valid[i]);
    }
    return rc ? -1 : 0;
}
