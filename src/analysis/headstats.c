/* Per-head statistics: entropy, mean attention distance, attention to the first token (sink), to itself, to
 * the previous token, to special tokens and punctuation, uniformity (1 - total variation distance to the
 * uniform distribution, rescaled so a one-hot row scores 0 and a uniform row 1), and the norm-based share of
 * the first token. Every statistic is a mean over query rows; row 0 of a causal layer (which can only attend
 * to itself) is left out so that it does not inflate the self and first-token scores. */
#include "analysis.h"
#include "core/core.h"
#include "internal.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

uint8_t av_token_class(const char *label) {
    if (!label) return 0;
    size_t n = strlen(label);
    if (n >= 3 && label[0] == '<' && label[n - 1] == '>') {
        int byte_piece =
            n == 6 && label[1] == '0' && label[2] == 'x'; /* <0x0A>: a byte, not a special token */
        if (!byte_piece) return AV_TOKCLASS_SPECIAL;
    }
    if (n >= 3 && label[0] == '[' && label[n - 1] == ']') {
        int upper = 1;
        for (size_t i = 1; i + 1 < n; i++)
            if (!(isupper((unsigned char)label[i]) || isdigit((unsigned char)label[i]) || label[i] == '_'))
                upper = 0;
        if (upper) return AV_TOKCLASS_SPECIAL; /* [CLS], [SEP], [PAD], [MASK], [UNK] */
    }
    const unsigned char *p = (const unsigned char *)label;
    for (;;) { /* leading spaces and word-start marks: ' ', SentencePiece U+2581, GPT-2 U+0120 */
        if (*p == ' ')
            p++;
        else if (p[0] == 0xE2 && p[1] == 0x96 && p[2] == 0x81)
            p += 3;
        else if (p[0] == 0xC4 && p[1] == 0xA0)
            p += 2;
        else
            break;
    }
    if (!*p) return 0;
    for (; *p; p++)
        if (*p >= 0x80 || !ispunct(*p)) return 0;
    return AV_TOKCLASS_PUNCT;
}

int av_attn_is_causal(const av_attn_view *v) {
    if (v->n_query != v->n_key) return 0;
    size_t plane = (size_t)v->n_query * (size_t)v->n_key;
    for (int h = 0; h < v->n_heads; h++)
        for (int i = 0; i < v->n_query; i++)
            for (int j = i + 1; j < v->n_key; j++)
                if (v->data[(size_t)h * plane + (size_t)i * (size_t)v->n_key + (size_t)j] != 0) return 0;
    return 1;
}

int av_head_stats_layer(const av_attn_view *v, int layer, int positional, const uint8_t *key_class,
                        const float *vnorm, av_head_stats *out, av_err *err) {
    if (v->n_heads <= 0 || v->n_query <= 0 || v->n_key <= 0) return av_errf(err, "empty attention layer");
    int causal = positional && av_attn_is_causal(v);
    int row0 = causal && v->n_query > 1 ? 1 : 0; /* a 1-token causal layer keeps its only row */
    size_t plane = (size_t)v->n_query * (size_t)v->n_key;
    for (int h = 0; h < v->n_heads; h++) {
        const float *A = v->data + (size_t)h * plane;                          /* (n_query, n_key) */
        const float *vn = vnorm ? vnorm + (size_t)h * (size_t)v->n_key : NULL; /* (n_key) */
        double ent = 0, entn = 0, dist = 0, first = 0, self = 0, prev = 0, spec = 0, punct = 0, unif = 0,
               fnorm = 0;
        int rows = 0, rows_entn = 0, rows_prev = 0, rows_fnorm = 0;
        for (int i = row0; i < v->n_query; i++) {
            const float *a = A + (size_t)i * (size_t)v->n_key;
            int visible = causal ? i + 1 : v->n_key;
            double H = 0, d = 0, s_spec = 0, s_punct = 0, u = 0, weighted = 0;
            for (int j = 0; j < visible; j++) {
                double x = a[j];
                if (x > 0) H -= x * log(x);
                d += x * fabs((double)(i - j));
                u += x < 1.0 / visible ? x : 1.0 / visible;
                if (key_class && (key_class[j] & AV_TOKCLASS_SPECIAL)) s_spec += x;
                if (key_class && (key_class[j] & AV_TOKCLASS_PUNCT)) s_punct += x;
                if (vn) weighted += x * vn[j];
            }
            rows++;
            ent += H;
            if (visible > 1) { /* normalized: 0 for a one-hot row, 1 for a uniform one */
                entn += H / log((double)visible);
                unif += (u - 1.0 / visible) / (1.0 - 1.0 / visible);
                rows_entn++;
            }
            dist += d;
            first += a[0];
            if (positional && i < v->n_key) self += a[i];
            if (positional && i >= 1 && i - 1 < v->n_key) {
                prev += a[i - 1];
                rows_prev++;
            }
            spec += s_spec;
            punct += s_punct;
            if (vn && weighted > 0) {
                fnorm += (double)a[0] * vn[0] / weighted;
                rows_fnorm++;
            }
        }
        av_head_stats *s = &out[h];
        s->layer = layer;
        s->head = h;
        s->n_rows = rows;
        s->entropy = ent / rows;
        s->entropy_norm = rows_entn ? entn / rows_entn : NAN;
        s->distance = positional ? dist / rows : NAN;
        s->first = first / rows;
        s->self = positional ? self / rows : NAN;
        s->prev = positional && rows_prev ? prev / rows_prev : NAN;
        s->special = key_class ? spec / rows : NAN;
        s->punct = key_class ? punct / rows : NAN;
        s->uniformity = rows_entn ? unif / rows_entn : NAN;
        s->first_norm = rows_fnorm ? fnorm / rows_fnorm : NAN;
    }
    return 0;
}

char **av_trace_side_labels(const av_trace *t, av_attn_kind kind, int key_side, int n) {
    char **labels = NULL;
    if (n <= 0 || !(labels = calloc((size_t)n, sizeof *labels))) return NULL;
    const char *key = av_attn_kind_labels_key(kind, key_side);
    if (!key) {
        if (av_trace_n_tokens(t) != n) goto fail;
        for (int j = 0; j < n; j++)
            if (!(labels[j] = av_strdup(av_trace_token(t, j)))) goto fail;
        return labels;
    }
    const char *meta = av_trace_meta(t, key);
    json_error_t je;
    json_t *arr = meta ? json_loads(meta, 0, &je) : NULL;
    int ok = json_is_array(arr) && json_array_size(arr) == (size_t)n;
    for (int j = 0; ok && j < n; j++) {
        const char *s = json_string_value(json_array_get(arr, (size_t)j));
        ok = (labels[j] = av_strdup(s ? s : "")) != NULL;
    }
    json_decref(arr);
    if (ok) return labels;
fail:
    av_labels_free(labels, n);
    return NULL;
}

void av_labels_free(char **labels, int n) {
    for (int j = 0; labels && j < n; j++)
        free(labels[j]);
    free(labels);
}

/* Token classes of the key side of kind (malloc'd, n_key), or NULL when the labels are unknown. */
static uint8_t *key_classes(const av_trace *t, av_attn_kind kind, int n_key) {
    char **labels = av_trace_side_labels(t, kind, 1, n_key);
    uint8_t *cls = labels ? malloc((size_t)n_key) : NULL;
    for (int j = 0; cls && j < n_key; j++)
        cls[j] = av_token_class(labels[j]);
    av_labels_free(labels, n_key);
    return cls;
}

int av_trace_head_stats(const av_trace *t, av_attn_kind kind, int layer, av_head_stats **out, int *n_out,
                        av_err *err) {
    *out = NULL;
    *n_out = 0;
    int L = av_trace_n_layers(t, kind);
    if (L == 0) return av_errf(err, "the trace has no '%s' attention", av_attn_kind_name(kind));
    if (layer >= L)
        return av_errf(err, "layer %d is out of range: the trace has %s layers 0..%d", layer,
                       av_attn_kind_name(kind), L - 1);
    int l0 = layer >= 0 ? layer : 0, l1 = layer >= 0 ? layer + 1 : L;
    av_head_stats *all = NULL;
    int n = 0;
    for (int l = l0; l < l1; l++) {
        av_attn_view v;
        if (av_trace_attn(t, kind, l, &v, err)) goto fail;
        av_head_stats *grown = realloc(all, sizeof *grown * (size_t)(n + v.n_heads));
        if (!grown) {
            av_errf(err, "out of memory");
            goto fail;
        }
        all = grown;
        uint8_t *cls = key_classes(t, kind, v.n_key);
        av_tensor vn;
        const float *vnorm = NULL;
        if (kind == AV_ATTN_SELF && av_trace_vnorm(t, l, &vn, NULL) == 0 && vn.dtype == AV_DTYPE_F32 &&
            vn.ndim == 2 && vn.shape[0] == v.n_heads && vn.shape[1] == v.n_key)
            vnorm = vn.data;
        int rc = av_head_stats_layer(&v, l, kind != AV_ATTN_CROSS, cls, vnorm, all + n, err);
        free(cls);
        if (rc) goto fail;
        n += v.n_heads;
    }
    *out = all;
    *n_out = n;
    return 0;
fail:
    free(all);
    return -1;
}
