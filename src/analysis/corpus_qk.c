/* Query/key samples for AttentionViz-style maps: a bottom-k sample by hashed priority, so that the sample of
 * a corpus does not depend on how its inputs were split over threads or ranks, or in which order they came.
 */
#include "corpus.h"

#include <stdlib.h>
#include <string.h>

void av_corpus_qk_init(av_corpus_qk *s, av_attn_kind kind, int layer, int head, int n_max, uint64_t seed) {
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->layer = layer;
    s->head = head;
    s->n_max = n_max;
    s->seed = seed;
}

void av_corpus_qk_free(av_corpus_qk *s) {
    for (int i = 0; i < s->n; i++)
        free(s->pts[i].vec);
    free(s->pts);
    s->pts = NULL;
    s->n = s->cap = 0;
}

/* splitmix64's output function: a bijective mix of 64 bits. */
static uint64_t mix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t priority(uint64_t seed, int64_t line, int pos, int is_key) {
    return mix64(mix64(seed ^ mix64((uint64_t)line)) ^ (((uint64_t)pos << 1) | (uint64_t)is_key));
}

static int point_cmp(const void *a, const void *b) {
    const av_qk_point *x = a, *y = b;
    if (x->is_key != y->is_key) return x->is_key - y->is_key;
    if (x->prio != y->prio) return x->prio < y->prio ? -1 : 1;
    if (x->line != y->line) return x->line < y->line ? -1 : 1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

/* Sorts and keeps the n_max first points of each side. */
static void trim(av_corpus_qk *s) {
    if (s->n) qsort(s->pts, (size_t)s->n, sizeof *s->pts, point_cmp);
    int kept = 0, side_count[2] = {0, 0};
    for (int i = 0; i < s->n; i++) {
        av_qk_point *p = &s->pts[i];
        if (side_count[p->is_key]++ >= s->n_max) {
            free(p->vec);
            continue;
        }
        s->pts[kept++] = *p;
    }
    s->n = kept;
}

/* The largest kept priority of a side once it is full (candidates above it cannot enter), else UINT64_MAX. */
static uint64_t threshold(const av_corpus_qk *s, int is_key) {
    int count = 0;
    uint64_t worst = 0;
    for (int i = 0; i < s->n; i++)
        if (s->pts[i].is_key == is_key) {
            count++;
            if (s->pts[i].prio > worst) worst = s->pts[i].prio;
        }
    return count >= s->n_max ? worst : UINT64_MAX;
}

static int push(av_corpus_qk *s, const av_qk_point *p, const float *vec, av_err *err) {
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 256;
        av_qk_point *grown = realloc(s->pts, sizeof *grown * (size_t)cap);
        if (!grown) return av_errf(err, "out of memory for the query/key sample");
        s->pts = grown;
        s->cap = cap;
    }
    av_qk_point *q = &s->pts[s->n];
    *q = *p;
    if (!(q->vec = malloc(sizeof *q->vec * (size_t)s->dim))) return av_errf(err, "out of memory");
    memcpy(q->vec, vec, sizeof *q->vec * (size_t)s->dim);
    s->n++;
    if (s->n > 4 * s->n_max + 256) trim(s);
    return 0;
}

/* The points of one side (is_key) of one input: vec (n, dim) rows, labels (n) or NULL, mask (n) or NULL. */
static int add_side(av_corpus_qk *s, int64_t line, int is_key, const float *vec, int n, char **labels,
                    const uint8_t *mask, av_err *err) {
    uint64_t limit = threshold(s, is_key);
    for (int p = 0; p < n; p++) {
        av_qk_point pt = {priority(s->seed, line, p, is_key), line, p, n, is_key, {0}, NULL};
        if (pt.prio >= limit || (mask && !mask[p])) continue; /* padding keys are never attended */
        av_corpus_label_copy(pt.label, labels ? labels[p] : "");
        if (push(s, &pt, vec + (size_t)p * (size_t)s->dim, err)) return -1;
    }
    return 0;
}

int av_corpus_qk_add(av_corpus_qk *s, const av_trace *t, int64_t line, av_err *err) {
    av_corpus_qk_view v;
    if (av_corpus_trace_qk(t, s->kind, s->layer, &v, err)) return -1;
    int rc = 0;
    if (s->head < 0 || s->head >= v.n_heads)
        rc = av_errf(err, "head %d is out of range: %s layer %d has heads 0..%d", s->head,
                     av_attn_kind_name(s->kind), s->layer, v.n_heads - 1);
    else if (s->dim && s->dim != v.dim)
        rc = av_errf(err, "inputs disagree on the head size (%d vs %d)", s->dim, v.dim);
    if (!rc) {
        s->dim = v.dim;
        int kv = s->head / (v.n_heads / v.n_kv_heads); /* grouped-query attention: the key head it reads */
        const float *q = v.q + (size_t)s->head * v.n_query * v.dim; /* (n_query, dim) */
        const float *k = v.k + (size_t)kv * v.n_key * v.dim;        /* (n_key, dim) */
        rc = add_side(s, line, 0, q, v.n_query, v.q_labels, NULL, err) ||
             add_side(s, line, 1, k, v.n_key, v.k_labels, v.key_mask, err);
    }
    av_corpus_qk_view_free(&v);
    return rc ? -1 : 0;
}

int av_corpus_qk_merge(av_corpus_qk *dst, const av_corpus_qk *src, av_err *err) {
    if (src->n == 0) return 0;
    if (dst->kind != src->kind || dst->layer != src->layer || dst->head != src->head ||
        dst->n_max != src->n_max || dst->seed != src->seed || (dst->dim && dst->dim != src->dim))
        return av_errf(err, "cannot merge query/key samples of different settings");
    dst->dim = src->dim;
    for (int i = 0; i < src->n; i++)
        if (push(dst, &src->pts[i], src->pts[i].vec, err)) return -1;
    return 0;
}

int av_corpus_qk_finish(av_corpus_qk *s, av_err *err) {
    (void)err;
    trim(s);
    return 0;
}
