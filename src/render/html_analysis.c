/* The analysis section of the standalone page (meta "analysis" + matrices in the data blob), computed with
 * src/analysis/ for the viewer's head-summary grid, rollout view and norm-based view:
 *   stats.<kind>    attnviz-stats JSON of docs/ANALYSIS.md (per-head statistics, role, role_score, scores),
 *                   without "tokens" (the page's labels hold them);
 *   rollout.<kind>  {variant, kind, fusion "mean", residual 0.5, layers, rows, cols, off[, soff]} encoded
 * like the attention sets; or {error} / {skipped} with the reason; vnorm           {layers, heads, tokens,
 * dtype "f32", offs: [offset or null per self layer]} or null, with vnorm_note saying why not; probe_roles
 * `attnviz roles --json` output given with --roles (duplicate-token and induction scores). See
 * docs/VIEWER.md. */
#include "analysis/analysis.h"
#include "core/core.h"
#include "render/html_internal.h"

#include <stdlib.h>
#include <string.h>

void av_html_analysis_free(av_html_analysis *a) {
    for (int i = 0; i < a->n_rollout; i++)
        free(a->rollout[i].m);
    free(a->vnorm);
    json_decref(a->json);
    memset(a, 0, sizeof *a);
}

static int oom(av_html_analysis *a, av_err *err) {
    av_html_analysis_free(a);
    return av_errf(err, "out of memory computing the page's analysis");
}

static void set_msg(json_t *o, const char *key, av_attn_kind kind, const char *msg) {
    json_t *m = json_object();
    json_object_set_new(m, key, json_string(msg));
    json_object_set_new(o, av_attn_kind_name(kind), m);
}

/* Per-head statistics and roles of one kind, as attnviz stats --json writes them. */
static void add_stats(const av_trace *t, av_attn_kind kind, json_t *stats) {
    av_head_stats *hs;
    int n;
    av_err e = {{0}};
    if (av_trace_head_stats(t, kind, -1, &hs, &n, &e)) {
        set_msg(stats, "error", kind, e.msg);
        return;
    }
    json_t *o = av_stats_json(t, kind, hs, n);
    free(hs);
    if (!o) return;
    json_object_del(o, "tokens");
    json_object_set_new(stats, av_attn_kind_name(kind), o);
}

/* Rollout of one kind: Abnar & Zuidema for self/enc/dec, the encoder-decoder variant for cross. */
static int add_rollout(const av_trace *t, av_attn_kind kind, av_html_analysis *a, json_t *rollout,
                       av_err *err) {
    const char *name = av_attn_kind_name(kind);
    int cross = kind == AV_ATTN_CROSS;
    int nq = av_trace_n_query(t, kind), nk = av_trace_n_key(t, kind), rows = nq, cols = cross ? nk : nq;
    char msg[256];
    if (!cross && nq != nk) {
        snprintf(msg, sizeof msg, "rollout needs square attention; '%s' is %d x %d", name, nq, nk);
        set_msg(rollout, "error", kind, msg);
        return 0;
    }
    if ((size_t)rows * (size_t)cols > AV_HTML_ROLLOUT_MAX) {
        snprintf(msg, sizeof msg,
                 "the rollout matrix (%d x %d) is too large to embed in the page: attnviz stats --kind %s "
                 "--rollout --json computes it",
                 rows, cols, name);
        set_msg(rollout, "skipped", kind, msg);
        return 0;
    }
    float *m = malloc(sizeof(float) * (size_t)rows * (size_t)cols);
    if (!m) return av_errf(err, "out of memory");
    av_rollout_params rp = av_rollout_default_params(); /* mean fusion, residual 0.5, raw source shares */
    av_err e = {{0}};
    if (cross ? av_rollout_cross_trace(t, &rp, m, &rows, &cols, &e) : av_rollout_trace(t, kind, &rp, m, &e)) {
        free(m);
        set_msg(rollout, "error", kind, e.msg);
        return 0;
    }
    json_t *d = json_object();
    json_object_set_new(d, "variant", json_string(cross ? "encoder-decoder" : "abnar-zuidema"));
    json_object_set_new(d, "kind", json_string(name));
    json_object_set_new(d, "fusion", json_string(av_reduce_name(rp.fusion)));
    json_object_set_new(d, "residual", json_real(rp.residual));
    json_object_set_new(d, "layers", json_integer(av_trace_n_layers(t, kind)));
    json_object_set_new(d, "rows", json_integer(rows));
    json_object_set_new(d, "cols", json_integer(cols));
    if (cross) json_object_set_new(d, "enc_layers", json_integer(av_trace_n_layers(t, AV_ATTN_ENC)));
    json_object_set_new(rollout, name, d);
    a->rollout[a->n_rollout++] = (av_html_rollout){m, rows, cols, d};
    return 0;
}

/* The value norms of every self-attention layer that has them (F32 [n_heads, n_tokens]). */
static int add_vnorm(const av_trace *t, av_html_analysis *a, av_err *err) {
    int L = av_trace_n_layers(t, AV_ATTN_SELF), H = av_trace_n_heads(t, AV_ATTN_SELF),
        T = av_trace_n_key(t, AV_ATTN_SELF);
    const char *why = NULL;
    int found = 0;
    if (L == 0) {
        why = "they belong to self-attention layers, and this trace has none";
    } else {
        if (!(a->vnorm = calloc((size_t)L, sizeof *a->vnorm))) return av_errf(err, "out of memory");
        for (int l = 0; l < L; l++) {
            av_tensor vn;
            if (av_trace_vnorm(t, l, &vn, NULL) == 0 && vn.dtype == AV_DTYPE_F32 && vn.ndim == 2 &&
                vn.shape[0] == H && vn.shape[1] == T) {
                a->vnorm[l] = vn.data;
                found++;
            }
        }
        if (!found)
            why = "this trace has none (vnorm.<layer>): attnviz run stores them for self-attention models "
                  "(Llama family, GPT-2, BERT, ViT), attention brought in with attnviz import has none";
    }
    if (!found) {
        free(a->vnorm);
        a->vnorm = NULL;
        json_object_set_new(a->json, "vnorm", json_null());
        json_object_set_new(a->json, "vnorm_note", json_string(why));
        return 0;
    }
    a->vn_layers = L;
    a->vn_heads = H;
    a->vn_tokens = T;
    json_t *d = json_object();
    json_object_set_new(d, "layers", json_integer(L));
    json_object_set_new(d, "heads", json_integer(H));
    json_object_set_new(d, "tokens", json_integer(T));
    json_object_set_new(d, "dtype", json_string("f32"));
    json_object_set_new(a->json, "vnorm", d);
    a->vn_desc = d;
    return 0;
}

/* --roles FILE: the output of attnviz roles --json for the model of this trace. */
static int add_probe_roles(const av_trace *t, const char *path, av_html_analysis *a, av_err *err) {
    char *buf;
    size_t n;
    if (av_file_read_all(path, 16u << 20, &buf, &n, err)) return -1;
    json_error_t je;
    json_t *r = json_loadb(buf, n, 0, &je);
    free(buf);
    const char *fmt = json_string_value(json_object_get(r, "format"));
    if (!r || !fmt || strcmp(fmt, "attnviz-roles") != 0) {
        json_decref(r);
        return av_errf(err, "%s: not the JSON of attnviz roles --json (format \"attnviz-roles\")", path);
    }
    int L = av_trace_n_layers(t, AV_ATTN_SELF), H = av_trace_n_heads(t, AV_ATTN_SELF);
    json_int_t rl = json_integer_value(json_object_get(r, "n_layers")),
               rh = json_integer_value(json_object_get(r, "n_heads"));
    json_t *heads = json_object_get(r, "heads");
    if (L == 0 || rl != L || rh != H) {
        json_decref(r);
        return av_errf(err,
                       "%s: roles of %lld layers x %lld heads, but the trace's self-attention has %d x %d",
                       path, (long long)rl, (long long)rh, L, H);
    }
    if (!json_is_array(heads) || json_array_size(heads) == 0) {
        json_decref(r);
        return av_errf(err, "%s: no heads", path);
    }
    size_t i;
    json_t *h;
    json_array_foreach(heads, i, h) {
        json_int_t hl = json_integer_value(json_object_get(h, "layer")),
                   hh = json_integer_value(json_object_get(h, "head"));
        if (!json_is_integer(json_object_get(h, "layer")) || hl < 0 || hl >= L || hh < 0 || hh >= H ||
            !json_is_string(json_object_get(h, "role")) || !json_is_object(json_object_get(h, "scores"))) {
            json_decref(r);
            return av_errf(err, "%s: head entry %zu is malformed (layer, head, role, score, scores)", path,
                           i);
        }
    }
    json_object_del(r, "summary");
    json_object_set_new(r, "file", json_string(av_path_basename(path)));
    json_object_set_new(a->json, "probe_roles", r);
    return 0;
}

int av_html_analysis_compute(const av_trace *t, const av_html_params *p, av_html_analysis *a, av_err *err) {
    memset(a, 0, sizeof *a);
    json_t *stats = json_object(), *rollout = json_object();
    if (!(a->json = json_object()) || !stats || !rollout) {
        json_decref(stats);
        json_decref(rollout);
        return oom(a, err);
    }
    json_object_set_new(a->json, "version", json_integer(1));
    json_object_set_new(a->json, "stats", stats);
    json_object_set_new(a->json, "rollout", rollout);
    for (int k = 0; k < AV_ATTN_KIND_COUNT; k++) {
        if (!av_trace_n_layers(t, (av_attn_kind)k)) continue;
        add_stats(t, (av_attn_kind)k, stats);
        if (add_rollout(t, (av_attn_kind)k, a, rollout, err)) return oom(a, err);
    }
    if (add_vnorm(t, a, err)) return oom(a, err);
    if (p->roles_path && add_probe_roles(t, p->roles_path, a, err)) {
        av_html_analysis_free(a);
        return -1;
    }
    return 0;
}

size_t av_html_analysis_bytes(const av_html_analysis *a, int u8) {
    size_t bytes = 0;
    for (int i = 0; i < a->n_rollout; i++) {
        size_t n = (size_t)a->rollout[i].rows * (size_t)a->rollout[i].cols;
        bytes += u8 ? n + 4 * (size_t)a->rollout[i].rows + 4 : 2 * n + 2;
    }
    if (a->vnorm) bytes += 4 * (size_t)a->vn_layers * (size_t)a->vn_heads * (size_t)a->vn_tokens + 4;
    bytes = av_base64_len(bytes);
    char *js = a->json ? json_dumps(a->json, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
    bytes += js ? strlen(js) + 256 : 0;
    free(js);
    return bytes;
}

int av_html_analysis_encode(av_html_analysis *a, int u8, av_buf *blob, json_t *meta, av_err *err) {
    for (int i = 0; i < a->n_rollout; i++) {
        av_html_rollout *r = &a->rollout[i];
        if (av_html_encode(blob, r->m, (size_t)r->rows, r->cols, u8, r->desc, err)) return -1;
    }
    if (a->vnorm) {
        static const uint8_t zeros[4] = {0};
        json_t *offs = json_array();
        for (int l = 0; l < a->vn_layers; l++) {
            if (!a->vnorm[l]) {
                json_array_append_new(offs, json_null());
                continue;
            }
            av_buf_put(blob, zeros, (4 - blob->n % 4) % 4);
            json_array_append_new(offs, json_integer((json_int_t)blob->n));
            /* little-endian hosts only, as the rest of the blob */
            av_buf_put(blob, a->vnorm[l], sizeof(float) * (size_t)a->vn_heads * (size_t)a->vn_tokens);
        }
        json_object_set_new(a->vn_desc, "offs", offs);
    }
    if (blob->oom) return av_errf(err, "out of memory building the page");
    json_object_set(meta, "analysis", a->json);
    return 0;
}
