/* Measuring one input: every head of every attention kind of its trace, one head at a time.
 *
 * This file is the corpus module's only reader of trace internals: av_corpus_trace_qk reads a lazy kind's
 * stored queries and keys (trace/trace.h). */
#include "corpus.h"
#include "trace/trace.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- layout ---- */

static void layout_of(const av_trace *t, av_corpus_layout *lay) {
    memset(lay, 0, sizeof *lay);
    for (av_attn_kind k = 0; k < AV_ATTN_KIND_COUNT; k++) {
        int L = av_trace_n_layers(t, k), H = av_trace_n_heads(t, k);
        if (L <= 0 || H <= 0) continue;
        av_corpus_group *g = &lay->groups[lay->n_groups++];
        g->kind = k;
        g->n_layers = L;
        g->n_heads = H;
        g->positional = k != AV_ATTN_CROSS;
        lay->n_heads += L * H;
    }
}

int av_corpus_layout_equal(const av_corpus_layout *a, const av_corpus_layout *b) {
    if (a->n_groups != b->n_groups || a->n_heads != b->n_heads) return 0;
    for (int g = 0; g < a->n_groups; g++) {
        const av_corpus_group *x = &a->groups[g], *y = &b->groups[g];
        if (x->kind != y->kind || x->n_layers != y->n_layers || x->n_heads != y->n_heads ||
            x->positional != y->positional)
            return 0;
    }
    return 1;
}

void av_corpus_head_at(const av_corpus_layout *lay, int index, int *group, int *layer, int *head) {
    int g = 0;
    while (g + 1 < lay->n_groups && index >= lay->groups[g].n_layers * lay->groups[g].n_heads) {
        index -= lay->groups[g].n_layers * lay->groups[g].n_heads;
        g++;
    }
    *group = g;
    *layer = index / lay->groups[g].n_heads;
    *head = index % lay->groups[g].n_heads;
}

/* ---- the key side of a group: labels, special-label slots, earlier occurrences ---- */

typedef struct key_side {
    int nq, nk;
    uint8_t *cls; /* (nk) token classes, or NULL */
    int *label;   /* (nk) index into the example's sorted labels, -1 for ordinary tokens */
    int *earlier; /* (nq) last earlier position of query i's token, -1 when none (positional groups) */
    int *bin;     /* (nq + nk - 1) av_pos_bin(d) at [d + nk - 1] */
    uint8_t *has; /* (n_labels of the example) 1 when some key carries that label */
} key_side;

typedef struct occ {
    uint64_t key;
    int pos;
} occ;

static int occ_cmp(const void *a, const void *b) {
    const occ *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return x->pos - y->pos;
}

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* earlier[i] for a positional group: token ids when the trace's tokens are this side (self, and dec whose
 * tokens are the decoder's), else labels (enc: the source has no ids in the trace). */
static int find_earlier(const av_trace *t, av_attn_kind kind, char **labels, int n, int *earlier) {
    occ *o = malloc(sizeof *o * (size_t)n);
    if (!o) return -1;
    int by_id = kind != AV_ATTN_ENC && av_trace_n_tokens(t) == n;
    for (int i = 0; i < n; i++) {
        o[i].key = by_id    ? (uint64_t)(uint32_t)av_trace_token_id(t, i)
                   : labels ? fnv1a(labels[i])
                            : (uint64_t)i;
        o[i].pos = i;
        earlier[i] = -1;
    }
    qsort(o, (size_t)n, sizeof *o, occ_cmp);
    for (int i = 1; i < n; i++)
        if (o[i].key == o[i - 1].key) earlier[o[i].pos] = o[i - 1].pos;
    free(o);
    return 0;
}

static void key_side_free(key_side *ks) {
    free(ks->cls);
    free(ks->label);
    free(ks->earlier);
    free(ks->bin);
    free(ks->has);
    memset(ks, 0, sizeof *ks);
}

static int label_index(char **labels, int n, const char *s) {
    for (int i = 0; i < n; i++)
        if (strcmp(labels[i], s) == 0) return i;
    return -1;
}

void av_corpus_label_copy(char dst[AV_CORPUS_LABEL_MAX], const char *src) {
    size_t n =
        av_utf8_valid_prefix(src, strnlen(src, AV_CORPUS_LABEL_MAX - 1)); /* never inside a character */
    memcpy(dst, src, n);
    dst[n] = 0;
}

static char *cut_label(const char *s) {
    char buf[AV_CORPUS_LABEL_MAX];
    av_corpus_label_copy(buf, s);
    return av_strdup(buf);
}

/* Adds the group's special labels to ex->labels (kept sorted later). */
static int collect_labels(av_corpus_example *ex, char **labels, int nk) {
    for (int j = 0; labels && j < nk; j++) {
        if (!(av_token_class(labels[j]) & AV_TOKCLASS_SPECIAL)) continue;
        char *c = cut_label(labels[j]);
        if (!c) return -1;
        if (label_index(ex->labels, ex->n_labels, c) >= 0) {
            free(c);
            continue;
        }
        char **grown = realloc(ex->labels, sizeof *grown * (size_t)(ex->n_labels + 1));
        if (!grown) {
            free(c);
            return -1;
        }
        ex->labels = grown;
        ex->labels[ex->n_labels++] = c;
    }
    return 0;
}

static int key_side_init(const av_trace *t, const av_corpus_example *ex, const av_corpus_group *g,
                         key_side *ks) {
    memset(ks, 0, sizeof *ks);
    ks->nq = av_trace_n_query(t, g->kind);
    ks->nk = av_trace_n_key(t, g->kind);
    char **labels = av_trace_side_labels(t, g->kind, 1, ks->nk);
    ks->label = malloc(sizeof *ks->label * (size_t)ks->nk);
    ks->bin = malloc(sizeof *ks->bin * (size_t)(ks->nq + ks->nk));
    ks->earlier = g->positional ? malloc(sizeof *ks->earlier * (size_t)ks->nq) : NULL;
    ks->cls = labels ? malloc((size_t)ks->nk) : NULL;
    ks->has = calloc((size_t)(ex->n_labels ? ex->n_labels : 1), 1);
    int rc = !ks->label || !ks->bin || !ks->has || (g->positional && !ks->earlier) || (labels && !ks->cls);
    for (int j = 0; !rc && j < ks->nk; j++) {
        ks->label[j] = -1;
        if (!labels) continue;
        ks->cls[j] = av_token_class(labels[j]);
        if (!(ks->cls[j] & AV_TOKCLASS_SPECIAL)) continue;
        char *c = cut_label(labels[j]);
        ks->label[j] = c ? label_index(ex->labels, ex->n_labels, c) : -1;
        if (ks->label[j] >= 0) ks->has[ks->label[j]] = 1;
        rc = c == NULL;
        free(c);
    }
    for (int d = -(ks->nk - 1); !rc && d < ks->nq; d++)
        ks->bin[d + ks->nk - 1] = av_pos_bin(d);
    if (!rc && g->positional)
        rc = find_earlier(t, g->kind, labels, ks->nq < ks->nk ? ks->nq : ks->nk, ks->earlier);
    for (int i = ks->nk; !rc && g->positional && i < ks->nq; i++)
        ks->earlier[i] = -1;
    av_labels_free(labels, ks->nk);
    if (rc) key_side_free(ks);
    return rc ? -1 : 0;
}

/* ---- one head ---- */

/* Offset bins, label masses, duplicate and induction scores of one head: a (nq, nk), rows from row0. */
static void head_extras(const float *a, const key_side *ks, const av_corpus_group *g, int causal, int row0,
                        double *pos, double *lab, int n_labels, double *metric) {
    int rows = 0, rows_rep = 0, rows_ind = 0;
    double dup = 0, ind = 0;
    for (int i = row0; i < ks->nq; i++, rows++) {
        const float *r = a + (size_t)i * (size_t)ks->nk;
        int visible = causal ? i + 1 : ks->nk;
        for (int j = 0; j < visible; j++) {
            if (g->positional) pos[ks->bin[i - j + ks->nk - 1]] += r[j];
            if (ks->label[j] >= 0) lab[ks->label[j]] += r[j];
        }
        int e = ks->earlier ? ks->earlier[i] : -1;
        if (e < 0) continue;
        double d = 0, in = 0;
        for (int j = e; j >= 0; j = ks->earlier[j]) { /* every earlier occurrence of this token */
            d += r[j];
            if (j + 1 < i) in += r[j + 1];
        }
        dup += d;
        rows_rep++;
        if (e + 1 < i || ks->earlier[e] >= 0) { /* some occurrence is followed by a token before i */
            ind += in;
            rows_ind++;
        }
    }
    for (int b = 0; b < AV_POS_BINS; b++)
        pos[b] = g->positional && rows ? pos[b] / rows : NAN;
    for (int l = 0; l < n_labels; l++)
        lab[l] = rows ? lab[l] / rows : NAN;
    metric[AV_CM_DUPLICATE] = rows_rep ? dup / rows_rep : NAN;
    metric[AV_CM_INDUCTION] = rows_ind ? ind / rows_ind : NAN;
}

static void stats_to_metrics(const av_head_stats *s, double *m) {
    const double v[] = {s->entropy, s->entropy_norm, s->distance, s->first,      s->self,
                        s->prev,    s->special,      s->punct,    s->uniformity, s->first_norm};
    for (int k = 0; k < AV_CM_DUPLICATE; k++)
        m[k] = v[k];
}

/* Every head of one layer of group g; idx: the flat index of its head 0. a: scratch (nq, nk). */
static int measure_layer(const av_trace *t, const av_corpus_group *g, const key_side *ks, int layer, int idx,
                         float *a, double *lab, av_corpus_example *ex, av_err *err) {
    av_tensor vn;
    const float *vnorm = NULL; /* (n_heads, nk) */
    if (g->kind == AV_ATTN_SELF && av_trace_vnorm(t, layer, &vn, NULL) == 0 && vn.dtype == AV_DTYPE_F32 &&
        vn.ndim == 2 && vn.shape[0] == g->n_heads && vn.shape[1] == ks->nk)
        vnorm = vn.data;
    for (int h = 0; h < g->n_heads; h++, idx++) {
        if (av_trace_attn_tile(t, g->kind, layer, h, 0, ks->nq, 0, ks->nk, ks->nq, ks->nk, AV_POOL_MAX, a,
                               err))
            return -1;
        av_attn_view v = {1, ks->nq, ks->nk, a};
        av_head_stats st;
        if (av_head_stats_layer(&v, layer, g->positional, ks->cls, vnorm ? vnorm + (size_t)h * ks->nk : NULL,
                                &st, err))
            return -1;
        double *m = ex->metric + (size_t)idx * AV_CM_COUNT, *pos = ex->pos + (size_t)idx * AV_POS_BINS;
        stats_to_metrics(&st, m);
        int causal = g->positional && av_attn_is_causal(&v);
        memset(lab, 0, sizeof *lab * (size_t)(ex->n_labels ? ex->n_labels : 1));
        head_extras(a, ks, g, causal, causal && ks->nq > 1 ? 1 : 0, pos, lab, ex->n_labels, m);
        for (int l = 0; l < ex->n_labels; l++) /* NaN unless this group's keys hold the label */
            if (ks->has[l]) ex->label_pos[(size_t)l * ex->layout.n_heads + idx] = lab[l];
    }
    return 0;
}

static int str_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorted special labels over every group's keys; label_pos all NaN. */
static int example_labels(const av_trace *t, av_corpus_example *ex) {
    for (int g = 0; g < ex->layout.n_groups; g++) {
        int nk = av_trace_n_key(t, ex->layout.groups[g].kind);
        char **labels = av_trace_side_labels(t, ex->layout.groups[g].kind, 1, nk);
        int rc = collect_labels(ex, labels, nk);
        av_labels_free(labels, nk);
        if (rc) return -1;
    }
    if (ex->n_labels) qsort(ex->labels, (size_t)ex->n_labels, sizeof *ex->labels, str_cmp);
    size_t n = (size_t)ex->n_labels * (size_t)ex->layout.n_heads;
    if (!(ex->label_pos = malloc(sizeof *ex->label_pos * (n ? n : 1)))) return -1;
    for (size_t i = 0; i < n; i++)
        ex->label_pos[i] = NAN;
    return 0;
}

int av_corpus_measure(const av_trace *t, int64_t line, av_corpus_example *ex, av_err *err) {
    memset(ex, 0, sizeof *ex);
    ex->line = line;
    layout_of(t, &ex->layout);
    if (ex->layout.n_heads == 0) return av_errf(err, "the trace holds no attention");
    size_t nh = (size_t)ex->layout.n_heads, max_plane = 1;
    for (int g = 0; g < ex->layout.n_groups; g++) {
        size_t nq = (size_t)av_trace_n_query(t, ex->layout.groups[g].kind);
        size_t nk = (size_t)av_trace_n_key(t, ex->layout.groups[g].kind);
        max_plane = nq * nk > max_plane ? nq * nk : max_plane;
        ex->n_tokens = (int)(nq > nk ? nq : nk) > ex->n_tokens ? (int)(nq > nk ? nq : nk) : ex->n_tokens;
    }
    ex->metric = malloc(sizeof *ex->metric * nh * AV_CM_COUNT);
    ex->pos = calloc(nh * AV_POS_BINS, sizeof *ex->pos);
    float *a = malloc(sizeof *a * max_plane); /* (nq, nk) one head */
    double *lab = NULL;
    int rc = -1, idx = 0;
    if (!ex->metric || !ex->pos || !a || example_labels(t, ex) ||
        !(lab = malloc(sizeof *lab * (size_t)(ex->n_labels ? ex->n_labels : 1)))) {
        av_errf(err, "out of memory measuring an input of %d tokens", ex->n_tokens);
        goto done;
    }
    for (int gi = 0; gi < ex->layout.n_groups; gi++) {
        const av_corpus_group *g = &ex->layout.groups[gi];
        key_side ks;
        if (key_side_init(t, ex, g, &ks)) {
            av_errf(err, "out of memory");
            goto done;
        }
        for (int l = 0; l < g->n_layers; l++, idx += g->n_heads)
            if (measure_layer(t, g, &ks, l, idx, a, lab, ex, err)) {
                key_side_free(&ks);
                goto done;
            }
        key_side_free(&ks);
    }
    rc = 0;
done:
    free(a);
    free(lab);
    if (rc) av_corpus_example_free(ex);
    return rc;
}

void av_corpus_example_free(av_corpus_example *ex) {
    free(ex->metric);
    free(ex->pos);
    for (int i = 0; i < ex->n_labels; i++)
        free(ex->labels[i]);
    free(ex->labels);
    free(ex->label_pos);
    memset(ex, 0, sizeof *ex);
}

/* ---- stored queries and keys ---- */

int av_corpus_trace_qk(const av_trace *t, av_attn_kind kind, int layer, av_corpus_qk_view *out, av_err *err) {
    memset(out, 0, sizeof *out);
    const av_lazy_kind *lz = (unsigned)kind < AV_ATTN_KIND_COUNT ? &t->lazy_kinds[kind] : NULL;
    if (!lz || lz->n_layers == 0)
        return av_errf(err, "the trace keeps no %s queries and keys (lazy traces and --keep-qk traces do)",
                       av_attn_kind_name(kind));
    if (layer < 0 || layer >= lz->n_layers)
        return av_errf(err, "layer %d is out of range: the %s attention has layers 0..%d", layer,
                       av_attn_kind_name(kind), lz->n_layers - 1);
    *out = (av_corpus_qk_view){.n_heads = lz->n_heads,
                               .n_kv_heads = lz->n_kv_heads,
                               .n_query = lz->n_query,
                               .n_key = lz->n_key,
                               .dim = lz->head_dim,
                               .q = lz->q[layer],
                               .k = lz->k[layer],
                               .key_mask = lz->key_mask,
                               .q_labels = av_trace_side_labels(t, kind, 0, lz->n_query),
                               .k_labels = av_trace_side_labels(t, kind, 1, lz->n_key)};
    return 0;
}

void av_corpus_qk_view_free(av_corpus_qk_view *v) {
    av_labels_free(v->q_labels, v->n_query);
    av_labels_free(v->k_labels, v->n_key);
    memset(v, 0, sizeof *v);
}
