/* Two traces of the same tokens compared (attnviz diff): a trace of the attention differences A − B for every
 * kind, layer and head both hold, per-head distances, and the log-probability differences per token. Two
 * prompts, two models, quantized against full: the questions users ask. See docs/ANALYSIS.md. */
#include "analysis/analysis.h"

#include "core/core.h"
#include "trace/trace.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Token i of t, compared by id when both traces have ids, else by label. */
static int same_token(const av_trace *a, const av_trace *b, int i) {
    int ia = av_trace_token_id(a, i), ib = av_trace_token_id(b, i);
    if (ia >= 0 && ib >= 0) return ia == ib;
    return strcmp(av_trace_token(a, i), av_trace_token(b, i)) == 0;
}

/* The tokens compared: all of them (they must be equal), or with common_prefix the longest equal prefix. */
static int compared_tokens(const av_trace *a, const av_trace *b, int common_prefix, int *n, av_err *err) {
    int na = av_trace_n_tokens(a), nb = av_trace_n_tokens(b), i = 0;
    while (i < na && i < nb && same_token(a, b, i))
        i++;
    *n = i;
    if (i == na && i == nb) return 0;
    if (common_prefix)
        return i > 0 ? 0 : av_errf(err, "the traces differ from their first token: nothing to compare");
    if (i < na && i < nb)
        return av_errf(
            err, "the traces differ at token %d ('%.40s' vs '%.40s'); --common-prefix compares the first %d",
            i, av_trace_token(a, i), av_trace_token(b, i), i);
    return av_errf(
        err, "the traces have %d and %d tokens (the first %d are equal); --common-prefix compares those", na,
        nb, i);
}

/* The encoder side must be equal for kinds that read it (enc, cross). */
static int same_source(const av_trace *a, const av_trace *b, av_err *err) {
    const char *sa = av_trace_meta(a, "source_tokens"), *sb = av_trace_meta(b, "source_tokens");
    if (!sa && !sb) return 0;
    if (sa && sb && strcmp(sa, sb) == 0) return 0;
    return av_errf(
        err,
        "the traces' source (encoder) tokens differ: the encoder and cross-attention cannot be compared");
}

/* Queries or keys (key_side) kept of a kind: the compared tokens on the decoder side, all sources on the
 * encoder side. */
static int kept(av_attn_kind kind, int key_side, int n, const av_attn_view *v) {
    if (kind == AV_ATTN_ENC || (kind == AV_ATTN_CROSS && key_side)) return key_side ? v->n_key : v->n_query;
    return n;
}

/* The exact tile [0, nq) x [0, nk) of one head of a layer into out (nq, nk). */
static int head_block(const av_trace *t, av_attn_kind kind, int layer, int head, int nq, int nk, float *out,
                      av_err *err) {
    av_tile_params p = {kind, layer, head, 0, nq, 0, nk, nq, nk, AV_POOL_MAX, 0};
    return av_trace_attn_tile_ex(t, &p, out, err);
}

/* attn(a) − attn(b) of one layer, its queries and keys cut to the compared tokens: *d malloc'd (heads, nq,
 * nk). Each head of either trace is read as an exact tile (F16 converted, lazy rows recomputed), so neither
 * trace keeps the layer whole in f32. */
static int layer_diff(const av_trace *a, const av_trace *b, av_attn_kind kind, int layer, int n_heads, int nq,
                      int nk, float **d, av_err *err) {
    size_t plane = (size_t)nq * (size_t)nk;
    float *out = malloc(sizeof(float) * (size_t)n_heads * plane), *hb = malloc(sizeof(float) * plane);
    int rc = out && hb ? 0 : av_errf(err, "out of memory");
    for (int h = 0; !rc && h < n_heads; h++) {
        float *da = out + (size_t)h * plane;
        rc = head_block(a, kind, layer, h, nq, nk, da, err) || head_block(b, kind, layer, h, nq, nk, hb, err);
        for (size_t i = 0; !rc && i < plane; i++)
            da[i] -= hb[i];
    }
    free(hb);
    if (rc) {
        free(out);
        return -1;
    }
    *d = out;
    return 0;
}

static int diff_kind(const av_trace *a, const av_trace *b, av_attn_kind kind, int n, av_trace *out,
                     av_err *err) {
    const char *name = av_attn_kind_name(kind);
    int la = av_trace_n_layers(a, kind), lb = av_trace_n_layers(b, kind);
    if (la != lb) return av_errf(err, "'%s' attention: %d layers in A, %d in B", name, la, lb);
    av_attn_view va = {av_trace_n_heads(a, kind), av_trace_n_query(a, kind), av_trace_n_key(a, kind), NULL},
                 vb = {av_trace_n_heads(b, kind), av_trace_n_query(b, kind), av_trace_n_key(b, kind), NULL};
    int nq = kept(kind, 0, n, &va), nk = kept(kind, 1, n, &va); /* every layer of a kind has one shape */
    if (la && va.n_heads != vb.n_heads)
        return av_errf(err, "'%s' attention: %d heads in A, %d in B", name, va.n_heads, vb.n_heads);
    if (la && (nq > va.n_query || nq > vb.n_query || nk > va.n_key || nk > vb.n_key))
        return av_errf(err, "'%s' attention: shapes %dx%d and %dx%d do not cover the compared tokens", name,
                       va.n_query, va.n_key, vb.n_query, vb.n_key);
    for (int l = 0; l < la; l++) {
        float *d = NULL;
        if (layer_diff(a, b, kind, l, va.n_heads, nq, nk, &d, err) ||
            av_trace_add_attn(out, kind, l, va.n_heads, nq, nk, d, err))
            return -1;
    }
    return 0;
}

/* The two traces' log-probabilities of the compared tokens as metadata "diff_logprobs" {"a": [...], "b":
 * [...]} (null where unknown). */
static int diff_logprobs(const av_trace *a, const av_trace *b, int n, av_trace *out, av_err *err) {
    av_logprob_view pa, pb;
    if (!av_trace_has_logprobs(a) || !av_trace_has_logprobs(b) || av_trace_logprobs(a, &pa, NULL) ||
        av_trace_logprobs(b, &pb, NULL))
        return 0;
    json_t *ja = json_array(), *jb = json_array();
    for (int i = 0; i < n; i++) {
        json_array_append_new(ja, isnan(pa.token[i]) ? json_null() : json_real(pa.token[i]));
        json_array_append_new(jb, isnan(pb.token[i]) ? json_null() : json_real(pb.token[i]));
    }
    json_t *o = json_pack("{s:o, s:o}", "a", ja, "b", jb);
    char *text = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(o);
    int rc = text ? av_trace_set_meta(out, "diff_logprobs", text, err) : av_errf(err, "out of memory");
    free(text);
    return rc;
}

/* Tokens (copied from A), model "A − B" and the "diff" description. */
static int diff_header(const av_trace *a, const av_trace *b, const char *name_a, const char *name_b, int n,
                       av_trace *out, av_err *err) {
    char **tok = calloc((size_t)(n ? n : 1), sizeof *tok);
    int32_t *ids = malloc(sizeof *ids * (size_t)(n ? n : 1));
    for (int i = 0; tok && ids && i < n; i++) {
        if (!(tok[i] = av_strdup(av_trace_token(a, i)))) break;
        ids[i] = av_trace_token_id(a, i);
    }
    if (!tok || !ids || (n && !tok[n - 1])) {
        for (int i = 0; tok && i < n; i++)
            free(tok[i]);
        free(tok);
        free(ids);
        return av_errf(err, "out of memory");
    }
    if (av_trace_set_tokens(out, tok, ids, n, err)) return -1;
    static const char *const copied[] = {"source_tokens", "target_tokens", "source_token_ids", "arch",
                                         "family"};
    for (size_t i = 0; i < sizeof copied / sizeof copied[0]; i++)
        if (av_trace_meta(a, copied[i]) &&
            av_trace_set_meta(out, copied[i], av_trace_meta(a, copied[i]), err))
            return -1;
    char model[256];
    snprintf(model, sizeof model, "%s − %s", name_a, name_b);
    json_t *d = json_pack("{s:s, s:s, s:i, s:i, s:i}", "a", name_a, "b", name_b, "tokens", n, "tokens_a",
                          av_trace_n_tokens(a), "tokens_b", av_trace_n_tokens(b));
    char *text = d ? json_dumps(d, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(d);
    int rc = !text ? av_errf(err, "out of memory")
                   : av_trace_set_meta(out, "model", model, err) || av_trace_set_meta(out, "diff", text, err);
    free(text);
    return rc ? -1 : 0;
}

int av_trace_diff(const av_trace *a, const av_trace *b, const char *name_a, const char *name_b,
                  int common_prefix, av_trace **out, av_err *err) {
    *out = NULL;
    int n;
    if (compared_tokens(a, b, common_prefix, &n, err) || same_source(a, b, err)) return -1;
    if (!av_trace_has_attention(a) || !av_trace_has_attention(b))
        if (!av_trace_has_logprobs(a) || !av_trace_has_logprobs(b))
            return av_errf(
                err, "nothing to compare: %s holds no attention (and the two have no log-probabilities)",
                av_trace_has_attention(a) ? name_b : name_a);
    av_trace *d = av_trace_new();
    if (!d) return av_errf(err, "out of memory");
    int rc = diff_header(a, b, name_a, name_b, n, d, err);
    for (int k = 0; !rc && k < AV_ATTN_KIND_COUNT && av_trace_has_attention(a) && av_trace_has_attention(b);
         k++)
        rc = diff_kind(a, b, (av_attn_kind)k, n, d, err);
    if (!rc) rc = diff_logprobs(a, b, n, d, err);
    if (rc) {
        av_trace_free(d);
        return -1;
    }
    *out = d;
    return 0;
}

int av_diff_head_distance(const av_trace *d, av_attn_kind kind, float *out, av_err *err) {
    int L = av_trace_n_layers(d, kind);
    for (int l = 0; l < L; l++) {
        av_attn_view v;
        if (av_trace_attn(d, kind, l, &v, err)) return -1;
        for (int h = 0; h < v.n_heads; h++) {
            double sum = 0;
            for (int q = 0; q < v.n_query; q++) {
                const float *row = v.data + ((size_t)h * (size_t)v.n_query + (size_t)q) * (size_t)v.n_key;
                double tv = 0;
                for (int k = 0; k < v.n_key; k++)
                    tv += fabs((double)row[k]);
                sum += 0.5 * tv;
            }
            out[(size_t)l * (size_t)v.n_heads + (size_t)h] = v.n_query ? (float)(sum / v.n_query) : 0.f;
        }
    }
    return 0;
}
