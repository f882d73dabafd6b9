/* attnviz import: attention saved by other tools -> a trace.
 *
 * Arrays come from .npy files (one per layer, in command-line order), .npz archives and safetensors files
 * (members in natural name order). An array's kind comes from its name: "cross..." -> cross,
 * "encoder..."/"enc..." -> enc, "decoder..."/"dec..." -> dec, anything else -> self (Hugging Face's
 * encoder_attentions / decoder_attentions / cross_attentions map as expected). Shapes accepted:
 *   [T, T] (one head), [H, T, T] (one layer), [L, H, T, T], [L, 1, H, T, T] (stacked with batch 1),
 *   and [1, H, T, T] when a kind has several arrays (one layer of a batch-1 output_attentions tuple).
 * Each row must be a probability distribution (values in [0, 1], sum 1 within the tolerance) unless
 * check_rows is off; errors name the array, layer, head and query row. */
#include "trace/import.h"

#include "io/npy.h"
#include "core/core.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

av_import_params av_import_default_params(void) {
    av_import_params p;
    memset(&p, 0, sizeof p);
    p.check_rows = 1;
    p.dtype = AV_DTYPE_F32;
    p.prefix_tokens = -1;
    p.kind = -1;
    return p;
}

typedef struct labels {
    char **s;
    int32_t *ids;
    int n; /* -1: not given */
} labels;

static void labels_free(labels *l) {
    av_strings_free(l->s, l->n > 0 ? (size_t)l->n : 0);
    free(l->ids);
    l->s = NULL;
    l->ids = NULL;
}

/* A JSON array of strings (or integer ids, shown as numbers). */
static int parse_labels(const json_t *arr, const json_t *ids, const char *what, const char *path, labels *out,
                        av_err *err) {
    out->n = -1;
    if (!arr) return 0;
    if (!json_is_array(arr)) return av_errf(err, "%s: '%s' must be a JSON array of strings", path, what);
    size_t n = json_array_size(arr);
    if (n == 0 || n > 1000000) return av_errf(err, "%s: '%s' has %zu entries", path, what, n);
    if (ids && (!json_is_array(ids) || json_array_size(ids) != n))
        return av_errf(err, "%s: 'token_ids' must be an array as long as '%s' (%zu)", path, what, n);
    out->s = calloc(n, sizeof *out->s);
    out->ids = malloc(n * sizeof *out->ids);
    if (!out->s || !out->ids) return av_errf(err, "out of memory");
    out->n = (int)n;
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(arr, i), *id = ids ? json_array_get(ids, i) : NULL;
        char buf[32];
        out->ids[i] = json_is_integer(id) ? (int32_t)json_integer_value(id) : -1;
        if (json_is_string(v)) {
            out->s[i] = av_strdup(json_string_value(v));
        } else if (json_is_integer(v)) {
            snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
            out->s[i] = av_strdup(buf);
            if (!ids) out->ids[i] = (int32_t)json_integer_value(v);
        } else {
            return av_errf(err, "%s: '%s' entry %zu is not a string", path, what, i);
        }
        if (!out->s[i]) return av_errf(err, "out of memory");
    }
    return 0;
}

static av_attn_kind kind_of(const char *member) {
    char low[128];
    size_t n = 0;
    for (; member[n] && n + 1 < sizeof low; n++)
        low[n] = (char)tolower((unsigned char)member[n]);
    low[n] = 0;
    if (strstr(low, "cross")) return AV_ATTN_CROSS;
    if (strstr(low, "encoder") || strncmp(low, "enc", 3) == 0) return AV_ATTN_ENC;
    if (strstr(low, "decoder") || strncmp(low, "dec", 3) == 0) return AV_ATTN_DEC;
    return AV_ATTN_SELF;
}

static void shape_str(const av_array *a, char *buf, size_t cap) {
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < a->ndim && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? ", " : "", (long long)a->shape[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

typedef struct shape_info {
    int L, H, nq, nk;
} shape_info;

static int interpret(const av_array *a, int several, shape_info *s, av_err *err) {
    const int64_t *d = a->shape;
    int nd = a->ndim;
    int64_t L, H;
    char sh[160];
    shape_str(a, sh, sizeof sh);
    if (nd == 2)
        L = 1, H = 1;
    else if (nd == 3)
        L = 1, H = d[0];
    else if (nd == 4 && several && d[0] == 1)
        L = 1, H = d[1];
    else if (nd == 4)
        L = d[0], H = d[1];
    else if (nd == 5 && d[1] == 1)
        L = d[0], H = d[2];
    else if (nd == 5)
        return av_errf(err, "%s: shape %s has a batch of %lld sequences: import one (a[:, i:i+1])", a->name,
                       sh, (long long)d[1]);
    else
        return av_errf(err, "%s: shape %s: expected [layers, heads, T, T], [heads, T, T] or [T, T]", a->name,
                       sh);
    int64_t nq = d[nd - 2], nk = d[nd - 1];
    if (L <= 0 || H <= 0 || nq <= 0 || nk <= 0)
        return av_errf(err, "%s: shape %s has an empty dimension", a->name, sh);
    if (L > 100000 || H > 65536 || nq > (1 << 20) || nk > (1 << 20))
        return av_errf(err, "%s: shape %s is too large", a->name, sh);
    *s = (shape_info){(int)L, (int)H, (int)nq, (int)nk};
    return 0;
}

static int check_rows(const float *m, const shape_info *s, const char *where, double tol, av_err *err) {
    for (int h = 0; h < s->H; h++)
        for (int q = 0; q < s->nq; q++) {
            const float *row = m + ((size_t)h * (size_t)s->nq + (size_t)q) * (size_t)s->nk;
            double sum = 0;
            for (int k = 0; k < s->nk; k++) {
                float v = row[k];
                if (!isfinite(v) || v < -tol || v > 1 + tol)
                    return av_errf(
                        err,
                        "%s head %d query %d key %d: weight %g is not a probability (use --no-check "
                        "to import other weights)",
                        where, h, q, k, (double)v);
                sum += v;
            }
            if (fabs(sum - 1) > tol)
                return av_errf(
                    err,
                    "%s head %d query %d: row sums to %.6g, expected 1 (tolerance %g; use --no-check "
                    "to import unnormalized weights)",
                    where, h, q, sum, tol);
        }
    return 0;
}

static int embed_image(av_trace *t, const char *path, av_err *err) {
    char *buf;
    size_t n;
    if (av_file_read_all(path, 16u << 20, &buf, &n, err)) return -1;
    int rc = 0;
    if (n < 8 || memcmp(buf, "\x89PNG\r\n\x1a\n", 8) != 0) {
        rc = av_errf(err, "%s: not a PNG image (the viewer embeds PNG only)", path);
    } else {
        char *b64 = av_base64_encode(buf, n);
        rc = b64 ? av_trace_set_meta(t, "image_png_base64", b64, err) : av_errf(err, "out of memory");
        free(b64);
    }
    free(buf);
    return rc;
}

/* Where the tokens JSON came from, for messages. */
static const char *tokens_src(const av_import_params *p) {
    return p->tokens_path ? p->tokens_path : "tokens JSON";
}

typedef struct import_ctx {
    const av_import_params *p;
    av_arrays arrays;
    json_t *tj; /* tokens file */
    labels tokens, source, target;
    av_trace *t;
    int n_layers[AV_ATTN_KIND_COUNT];
    shape_info first[AV_ATTN_KIND_COUNT]; /* per kind: shape of its first layer */
} import_ctx;

/* The kind of an array: forced by the parameters, else from its name. */
static av_attn_kind kind_for(const import_ctx *c, const av_array *a) {
    return c->p->kind >= 0 ? (av_attn_kind)c->p->kind : kind_of(a->member);
}
/* Expected (n_query, n_key) of a kind from the token sets; -1 where unknown. */
static void expected(const import_ctx *c, av_attn_kind kind, int *nq, int *nk) {
    /* a kind's own token list, else the plain "tokens" list (self falls back to the source tokens) */
    int src = c->source.n >= 0 ? c->source.n : c->tokens.n,
        tgt = c->target.n >= 0 ? c->target.n : c->tokens.n;
    switch (kind) {
    case AV_ATTN_SELF: *nq = *nk = c->tokens.n >= 0 ? c->tokens.n : c->source.n; break;
    case 1: *nq = *nk = src; break;
    case 2: *nq = *nk = tgt; break;
    default: *nq = tgt, *nk = src;
    }
}

static int import_array(import_ctx *c, const av_array *a, int several, av_err *err) {
    av_attn_kind kind = kind_for(c, a);
    int ki = (int)kind;
    shape_info s;
    if (interpret(a, several, &s, err)) return -1;
    int eq, ek;
    expected(c, kind, &eq, &ek);
    if ((eq >= 0 && s.nq != eq) || (ek >= 0 && s.nk != ek))
        return av_errf(err, "%s: %s attention is %d queries x %d keys but the tokens give %d x %d", a->name,
                       av_attn_kind_name(kind), s.nq, s.nk, eq >= 0 ? eq : s.nq, ek >= 0 ? ek : s.nk);
    if (ki == 0 && s.nq != s.nk)
        return av_errf(err, "%s: self-attention must be square, got %d queries x %d keys", a->name, s.nq,
                       s.nk);
    if (c->n_layers[ki] == 0) c->first[ki] = s;
    if (s.H != c->first[ki].H || s.nq != c->first[ki].nq || s.nk != c->first[ki].nk)
        return av_errf(
            err,
            "%s: %d heads of %d x %d attention, but the first %s layer had %d heads of %d x %d (every "
            "layer of a kind must have the same shape)",
            a->name, s.H, s.nq, s.nk, av_attn_kind_name(kind), c->first[ki].H, c->first[ki].nq,
            c->first[ki].nk);
    double tol = c->p->tolerance > 0                                     ? c->p->tolerance
                 : a->dtype == AV_ARRAY_F16 || a->dtype == AV_ARRAY_BF16 ? 2e-2
                                                                         : 1e-3;
    size_t per = (size_t)s.H * (size_t)s.nq * (size_t)s.nk;
    for (int l = 0; l < s.L; l++) {
        float *m = malloc(per * sizeof *m);
        if (!m) return av_errf(err, "%s: out of memory", a->name);
        for (size_t i = 0; i < per; i++)
            m[i] = av_array_get(a, (size_t)l * per + i);
        char where[400];
        if (s.L > 1)
            snprintf(where, sizeof where, "%s (layer %d of its %d)", a->name, l, s.L);
        else
            snprintf(where, sizeof where, "%s", a->name);
        if (c->p->check_rows && check_rows(m, &s, where, tol, err)) {
            free(m);
            return -1;
        }
        if (av_trace_add_attn(c->t, kind, c->n_layers[ki]++, s.H, s.nq, s.nk, m, err)) return -1;
    }
    return 0;
}

static int set_meta_from_json(import_ctx *c, av_err *err) {
    const av_import_params *p = c->p;
    json_t *md = c->tj ? json_object_get(c->tj, "metadata") : NULL;
    const char *key;
    json_t *v;
    if (md && !json_is_object(md)) return av_errf(err, "%s: 'metadata' must be an object", tokens_src(p));
    json_object_foreach(md, key, v) {
        static const char *reserved[] = {"format",    "version",       "tokens",
                                         "token_ids", "source_tokens", "target_tokens"};
        int skip = !json_is_string(v);
        for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++)
            skip |= strcmp(key, reserved[i]) == 0;
        if (!skip && av_trace_set_meta(c->t, key, json_string_value(v), err)) return -1;
    }
    const char *model = p->model ? p->model : c->tj ? av_json_str(c->tj, "model") : NULL;
    const char *grid = p->patch_grid ? p->patch_grid : c->tj ? av_json_str(c->tj, "patch_grid") : NULL;
    int64_t prefix = p->prefix_tokens;
    if (prefix < 0 && c->tj && av_json_int(c->tj, "prefix_tokens", -1, &prefix, err)) return -1;
    if (av_trace_set_meta(c->t, "model", model ? model : "imported", err) ||
        av_trace_set_meta(c->t, "arch", "imported", err) ||
        av_trace_set_meta(c->t, "created_by", "attnviz " AV_VERSION " import", err))
        return -1;
    if (grid) {
        int gh, gw, used = 0;
        if (sscanf(grid, "%dx%d%n", &gh, &gw, &used) != 2 || grid[used] || gh <= 0 || gw <= 0 || gh > 4096 ||
            gw > 4096)
            return av_errf(err, "patch grid '%s' must look like 14x14 (rows x columns)", grid);
        if (prefix < 0) prefix = 0;
        int n = c->first[0].nk;
        if (c->n_layers[0] && (int64_t)gh * gw + prefix != n)
            return av_errf(err,
                           "patch grid %s plus %lld prefix tokens is %lld tokens, but the attention has %d",
                           grid, (long long)prefix, (long long)gh * gw + prefix, n);
        char pb[32];
        snprintf(pb, sizeof pb, "%lld", (long long)prefix);
        if (av_trace_set_meta(c->t, "patch_grid", grid, err) ||
            av_trace_set_meta(c->t, "prefix_tokens", pb, err))
            return -1;
    }
    if (p->image_path && embed_image(c->t, p->image_path, err)) return -1;
    return 0;
}

static int load_tokens(import_ctx *c, av_err *err) {
    const char *path = tokens_src(c->p);
    c->tokens.n = c->source.n = c->target.n = -1;
    if (c->p->tokens_path && c->p->tokens_json)
        return av_errf(err, "give the tokens as a file or as a JSON string, not both");
    if (c->p->tokens_json) {
        json_error_t je;
        c->tj = json_loads(c->p->tokens_json, JSON_REJECT_DUPLICATES, &je);
        if (!c->tj)
            return av_errf(err, "%s: invalid JSON at line %d column %d: %s", path, je.line, je.column,
                           je.text);
    } else if (!c->p->tokens_path) {
        return 0;
    } else if (av_json_load_file(path, &c->tj, err)) {
        return -1;
    }
    if (json_is_array(c->tj)) return parse_labels(c->tj, NULL, "tokens", path, &c->tokens, err);
    if (!json_is_object(c->tj))
        return av_errf(err, "%s: expected a JSON array of token strings or an object with \"tokens\"", path);
    json_t *ids = json_object_get(c->tj, "token_ids");
    if (parse_labels(json_object_get(c->tj, "tokens"), ids, "tokens", path, &c->tokens, err) ||
        parse_labels(json_object_get(c->tj, "source_tokens"), NULL, "source_tokens", path, &c->source, err) ||
        parse_labels(json_object_get(c->tj, "target_tokens"), NULL, "target_tokens", path, &c->target, err))
        return -1;
    if (c->tokens.n < 0 && c->source.n < 0 && c->target.n < 0)
        return av_errf(err, "%s: no \"tokens\" (or \"source_tokens\"/\"target_tokens\") array", path);
    return 0;
}

int av_trace_import(const av_import_params *p, av_trace **out, av_err *err) {
    *out = NULL;
    import_ctx c;
    memset(&c, 0, sizeof c);
    c.p = p;
    int rc = -1;
    if (p->n_inputs < 0 || p->n_arrays < 0 || p->n_inputs + p->n_arrays <= 0)
        return av_errf(err, "no input arrays given");
    if (p->kind >= AV_ATTN_KIND_COUNT) return av_errf(err, "unknown attention kind %d", p->kind);
    if (load_tokens(&c, err)) goto done;
    for (int i = 0; i < p->n_inputs; i++)
        if (av_arrays_add_file(&c.arrays, p->inputs[i], err)) goto done;
    for (int i = 0; i < p->n_arrays; i++)
        if (av_arrays_add_memory(&c.arrays, p->arrays[i].name, &p->arrays[i].tensor, err)) goto done;
    c.t = av_trace_new();
    if (!c.t) {
        av_errf(err, "out of memory");
        goto done;
    }
    c.t->store_dtype = p->dtype == AV_DTYPE_F16 ? AV_DTYPE_F16 : AV_DTYPE_F32;
    int per_kind[AV_ATTN_KIND_COUNT] = {0};
    for (int i = 0; i < c.arrays.n; i++)
        per_kind[kind_for(&c, &c.arrays.items[i])]++;
    for (int i = 0; i < c.arrays.n; i++) {
        const av_array *a = &c.arrays.items[i];
        if (import_array(&c, a, per_kind[kind_for(&c, a)] > 1, err)) goto done;
    }
    /* tokens: the self-attention's (indices when no file gave them); for encoder-decoder traces the source */
    labels *lab = c.tokens.n >= 0 ? &c.tokens : c.source.n >= 0 ? &c.source : NULL;
    int n_tok = c.n_layers[0]   ? c.first[0].nq
                : c.n_layers[1] ? c.first[1].nq
                : c.n_layers[3] ? c.first[3].nk
                                : c.first[2].nq;
    if (!lab) {
        size_t cnt = (size_t)(n_tok ? n_tok : 1);
        labels idx = {calloc(cnt, sizeof(char *)), malloc(sizeof(int32_t) * cnt), n_tok};
        if (!idx.s || !idx.ids) {
            labels_free(&idx);
            av_errf(err, "out of memory");
            goto done;
        }
        for (int i = 0; i < n_tok; i++) {
            char b[16];
            snprintf(b, sizeof b, "%d", i);
            idx.s[i] = av_strdup(b);
            idx.ids[i] = -1;
        }
        c.tokens = idx;
        lab = &c.tokens;
    }
    if ((c.source.n >= 0 && av_trace_set_meta_strings(c.t, "source_tokens", c.source.s, c.source.n, err)) ||
        (c.target.n >= 0 && av_trace_set_meta_strings(c.t, "target_tokens", c.target.s, c.target.n, err)))
        goto done;
    int bad = av_trace_set_tokens(c.t, lab->s, lab->ids, lab->n, err); /* takes ownership either way */
    lab->s = NULL;
    lab->ids = NULL;
    if (bad) goto done;
    if (set_meta_from_json(&c, err)) goto done;
    int ki = c.n_layers[0] ? 0 : c.n_layers[1] ? 1 : c.n_layers[2] ? 2 : 3;
    if (av_trace_set_meta_int(c.t, "n_layers", c.n_layers[ki], err) ||
        av_trace_set_meta_int(c.t, "n_heads", c.first[ki].H, err))
        goto done;
    *out = c.t;
    c.t = NULL;
    rc = 0;
done:
    av_trace_free(c.t);
    labels_free(&c.tokens);
    labels_free(&c.source);
    labels_free(&c.target);
    json_decref(c.tj);
    av_arrays_free(&c.arrays);
    return rc;
}
