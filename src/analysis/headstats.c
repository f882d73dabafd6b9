/* Per-head statistics: entropy, mean attention distance, attention to the first token (sink), to itself, to
 * the previous token, to special tokens and punctuation, uniformity (1 - total variation distance to the
 * uniform distribution, rescaled so a one-hot row scores 0 and a uniform row 1), and the norm-based share of
 * the first token. Every statistic is a mean over query rows; row 0 of a causal layer (which can only attend
 * to itself) is left out so that it does not inflate the self and first-token scores. */
#include "analysis.h"
#include "core/core.h"
#include "internal.h"
#include "trace/trace.h"

#include <ctype.h>
#include <math.h>
#include <stdatomic.h>
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

/* The sums of one head's statistics over its rows. Whether the layer is causal (nothing above the diagonal)
 * is known only after every row of every head, so row 0 is kept apart and the normalized statistics (which
 * depend on the keys a row sees) are summed both ways: [0] all keys visible, [1] keys 0..i. */
typedef struct stats_acc {
    double ent, dist, first, self, prev, spec, punct, fnorm, row0_first, row0_self;
    double entn[2], unif[2], row0[8]; /* row0: ent, dist, spec, punct, fnorm, entn, unif (full keys) */
    int rows, rows_prev, rows_fnorm, rows_entn[2], row0_fnorm;
} stats_acc;

/* entn and unif of a row of entropy H over `visible` keys (u = sum_j min(a_j, 1/visible)). */
static void normalized(double H, double u, int visible, double *entn, double *unif, int *rows) {
    if (visible <= 1) return;
    *entn += H / log((double)visible);
    *unif += (u - 1.0 / visible) / (1.0 - 1.0 / visible);
    (*rows)++;
}

/* Adds query row i (a: n_key weights) to s; *above: set when a weight lies above the diagonal. */
static void acc_row(stats_acc *s, const float *a, int i, int n_key, int positional, const uint8_t *key_class,
                    const float *vn, int *above) {
    double H = 0, d = 0, sp = 0, pu = 0, u_full = 0, u_causal = 0, weighted = 0;
    int vis_causal = i + 1 < n_key ? i + 1 : n_key, end = n_key;
    /* the zeros after the row's last nonzero weight add exactly 0 to every sum (a causal row's keys past
     * i: half of a causal layer): left out */
    while (end > 0 && a[end - 1] == 0)
        end--;
    if (end > i + 1) *above = 1;
    for (int j = 0; j < end; j++) {
        double x = a[j];
        if (x > 0) H -= x * log(x);
        d += x * fabs((double)(i - j));
        u_full += x < 1.0 / n_key ? x : 1.0 / n_key;
        if (j < vis_causal) u_causal += x < 1.0 / vis_causal ? x : 1.0 / vis_causal;
        if (key_class && (key_class[j] & AV_TOKCLASS_SPECIAL)) sp += x;
        if (key_class && (key_class[j] & AV_TOKCLASS_PUNCT)) pu += x;
        if (vn) weighted += x * vn[j];
    }
    double fn = vn && weighted > 0 ? (double)a[0] * vn[0] / weighted : 0;
    if (i == 0) { /* kept apart: left out when the layer turns out causal */
        int r = 0;
        double e[2] = {0, 0}, un[2] = {0, 0};
        normalized(H, u_full, n_key, &e[0], &un[0], &r);
        double v[8] = {H, d, sp, pu, fn, e[0], un[0], r};
        memcpy(s->row0, v, sizeof v);
        s->row0_first = a[0];
        s->row0_self = positional && n_key > 0 ? a[0] : 0;
        s->row0_fnorm = vn && weighted > 0;
        return;
    }
    s->rows++;
    s->ent += H;
    s->dist += d;
    s->first += a[0];
    if (positional && i < n_key) s->self += a[i];
    if (positional && i - 1 < n_key) s->prev += a[i - 1], s->rows_prev++;
    s->spec += sp;
    s->punct += pu;
    normalized(H, u_full, n_key, &s->entn[0], &s->unif[0], &s->rows_entn[0]);
    normalized(H, u_causal, vis_causal, &s->entn[1], &s->unif[1], &s->rows_entn[1]);
    if (vn && weighted > 0) s->fnorm += fn, s->rows_fnorm++;
}

/* The means of s: causal layers leave row 0 out (unless it is the only row). */
static void acc_finish(stats_acc *s, int layer, int head, int positional, int causal, int has_class,
                       int has_vnorm, av_head_stats *out) {
    int c = causal ? 1 : 0;
    if (!causal || s->rows == 0) { /* row 0 counts */
        s->rows++;
        s->ent += s->row0[0], s->dist += s->row0[1], s->spec += s->row0[2], s->punct += s->row0[3];
        s->first += s->row0_first, s->self += s->row0_self;
        s->entn[c] += s->row0[5], s->unif[c] += s->row0[6], s->rows_entn[c] += (int)s->row0[7];
        if (s->row0_fnorm) s->fnorm += s->row0[4], s->rows_fnorm++;
    }
    int rows = s->rows, re = s->rows_entn[c];
    *out = (av_head_stats){.layer = layer,
                           .head = head,
                           .n_rows = rows,
                           .entropy = s->ent / rows,
                           .entropy_norm = re ? s->entn[c] / re : NAN,
                           .distance = positional ? s->dist / rows : NAN,
                           .first = s->first / rows,
                           .self = positional ? s->self / rows : NAN,
                           .prev = positional && s->rows_prev ? s->prev / s->rows_prev : NAN,
                           .special = has_class ? s->spec / rows : NAN,
                           .punct = has_class ? s->punct / rows : NAN,
                           .uniformity = re ? s->unif[c] / re : NAN,
                           .first_norm = has_vnorm && s->rows_fnorm ? s->fnorm / s->rows_fnorm : NAN};
}

/* Rows of one head come from read(ctx, head, q0, n, out (n, n_key), n_threads, err); all heads of the layer
 * share the causality decision. */
typedef int (*rows_fn)(void *ctx, int head, int q0, int n, float *out, int n_threads, av_err *err);

enum { STATS_BLOCK = 64 }; /* query rows read at a time */

typedef struct stats_job {
    rows_fn read;
    void *ctx;
    int n_query, n_key, positional, read_threads;
    const uint8_t *key_class;
    const float *vnorm; /* (n_heads, n_key) or NULL */
    stats_acc *acc;     /* (n_heads) */
    _Atomic int above, failed;
    av_err *err; /* the first failure's message */
} stats_job;

/* Heads [h0, h1) of the layer, each over its rows in order (the same sums for any split of the heads). */
static void stats_heads(void *ctx, int tid, int64_t h0, int64_t h1) {
    stats_job *j = ctx;
    int n_key = j->n_key, above = 0;
    float *rows = malloc(sizeof(float) * STATS_BLOCK * (size_t)n_key); /* (STATS_BLOCK, n_key) */
    av_err err = {{0}};
    int rc = rows ? 0 : av_errf(&err, "out of memory");
    for (int64_t h = h0; !rc && h < h1; h++) {
        const float *vn = j->vnorm ? j->vnorm + (size_t)h * (size_t)n_key : NULL; /* (n_key) */
        for (int q0 = 0; !rc && q0 < j->n_query; q0 += STATS_BLOCK) {
            int n = j->n_query - q0 < STATS_BLOCK ? j->n_query - q0 : STATS_BLOCK;
            if ((rc = j->read(j->ctx, (int)h, q0, n, rows, j->read_threads, &err))) break;
            for (int i = 0; i < n; i++)
                acc_row(&j->acc[h], rows + (size_t)i * (size_t)n_key, q0 + i, n_key, j->positional,
                        j->key_class, vn, &above);
        }
    }
    free(rows);
    if (above) j->above = 1;
    if (rc && !atomic_exchange(&j->failed, 1) && j->err) *j->err = err;
}

/* The heads go to the threads, each head's rows read on its own thread; a single head (or reduction over
 * heads) is read by all of them instead. */
static int stats_layer(rows_fn read, void *ctx, int n_heads, int n_query, int n_key, int layer,
                       int positional, const uint8_t *key_class, const float *vnorm, av_head_stats *out,
                       av_err *err) {
    if (n_heads <= 0 || n_query <= 0 || n_key <= 0) return av_errf(err, "empty attention layer");
    stats_acc *acc = calloc((size_t)n_heads, sizeof *acc);
    if (!acc) return av_errf(err, "out of memory");
    int spread = n_heads > 1; /* heads to the threads, each read on one; else one head read by all */
    stats_job j = {.read = read,
                   .ctx = ctx,
                   .n_query = n_query,
                   .n_key = n_key,
                   .positional = positional,
                   .read_threads = spread ? 1 : 0,
                   .key_class = key_class,
                   .vnorm = vnorm,
                   .acc = acc,
                   .err = err};
    j.above = !positional || n_query != n_key;
    av_parallel_for(spread ? 0 : 1, n_heads, stats_heads, &j);
    for (int h = 0; !j.failed && h < n_heads; h++)
        acc_finish(&acc[h], layer, h, positional, !j.above, key_class != NULL, vnorm != NULL, &out[h]);
    free(acc);
    return j.failed ? -1 : 0;
}

static int view_rows(void *ctx, int head, int q0, int n, float *out, int n_threads, av_err *err) {
    const av_attn_view *v = ctx;
    memcpy(out, v->data + ((size_t)head * (size_t)v->n_query + (size_t)q0) * (size_t)v->n_key,
           sizeof(float) * (size_t)n * (size_t)v->n_key);
    return 0;
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
    return stats_layer(view_rows, (void *)v, v->n_heads, v->n_query, v->n_key, layer, positional, key_class,
                       vnorm, out, err);
}

/* Rows of a trace's layer through the tile API (exact cells): recomputed for lazy traces, never a whole
 * layer in memory. */
typedef struct trace_rows {
    const av_trace *t;
    av_attn_kind kind;
    int layer, n_key, head, exclude_first;
} trace_rows;

static int tile_rows(void *ctx, int head, int q0, int n, float *out, int n_threads, av_err *err) {
    const trace_rows *r = ctx;
    if (av_trace_rows(r->t, r->kind, r->layer, r->head == AV_STATS_EVERY_HEAD ? head : r->head, q0, n,
                      r->exclude_first, n_threads, out, err))
        return -1;
    for (int i = 0; r->exclude_first && i < n; i++) /* renormalized over keys 1..: the first weighs 0 */
        out[(size_t)i * (size_t)r->n_key] = 0;
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

av_stats_params av_stats_default_params(void) {
    av_stats_params p = {-1, AV_STATS_EVERY_HEAD, 0, NULL, NULL};
    return p;
}

int av_trace_head_stats(const av_trace *t, av_attn_kind kind, int layer, av_head_stats **out, int *n_out,
                        av_err *err) {
    av_stats_params p = av_stats_default_params();
    p.layer = layer;
    return av_trace_head_stats_ex(t, kind, &p, out, n_out, err);
}

/* The value norms of layer l for the entries of one layer: every head's (n_heads, n_key), one head's (n_key),
 * or NULL (cross-attention, reductions over heads, traces without them). */
static const float *layer_vnorm(const av_trace *t, av_attn_kind kind, int l, int head, int H, int nk) {
    av_tensor vn;
    if (kind != AV_ATTN_SELF || av_trace_vnorm(t, l, &vn, NULL) || vn.dtype != AV_DTYPE_F32 || vn.ndim != 2 ||
        vn.shape[0] != H || vn.shape[1] != nk)
        return NULL;
    if (head == AV_STATS_EVERY_HEAD) return vn.data;
    return head >= 0 ? (const float *)vn.data + (size_t)head * (size_t)nk : NULL;
}

int av_trace_head_stats_ex(const av_trace *t, av_attn_kind kind, const av_stats_params *p,
                           av_head_stats **out, int *n_out, av_err *err) {
    *out = NULL;
    *n_out = 0;
    int L = av_trace_n_layers(t, kind), H = av_trace_n_heads(t, kind), nq = av_trace_n_query(t, kind),
        nk = av_trace_n_key(t, kind);
    if (L == 0) return av_errf(err, "the trace has no '%s' attention", av_attn_kind_name(kind));
    if (p->layer >= L)
        return av_errf(err, "layer %d is out of range: the trace has %s layers 0..%d", p->layer,
                       av_attn_kind_name(kind), L - 1);
    if (p->head >= H) return av_errf(err, "head %d is out of range: heads 0..%d", p->head, H - 1);
    int l0 = p->layer >= 0 ? p->layer : 0, l1 = p->layer >= 0 ? p->layer + 1 : L;
    int per = p->head == AV_STATS_EVERY_HEAD ? H : 1; /* entries per layer */
    av_head_stats *all = calloc((size_t)(l1 - l0) * (size_t)per, sizeof *all);
    uint8_t *cls = key_classes(t, kind, nk); /* (nk) or NULL */
    int n = 0, rc = all ? 0 : av_errf(err, "out of memory");
    for (int l = l0; !rc && l < l1; l++, n += per) {
        trace_rows tr = {t, kind, l, nk, p->head, p->exclude_first};
        rc = stats_layer(tile_rows, &tr, per, nq, nk, l, kind != AV_ATTN_CROSS, cls,
                         layer_vnorm(t, kind, l, p->head, H, nk), all + n, err);
        if (per == 1) all[n].head = p->head; /* the one entry stands for that head or reduction */
        if (!rc && p->progress) p->progress(p->progress_ctx, l - l0 + 1, l1 - l0);
    }
    free(cls);
    if (rc) {
        free(all);
        return -1;
    }
    *out = all;
    *n_out = n;
    return 0;
}
