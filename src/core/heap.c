/* A binary min-heap of fixed-size elements ordered by a caller's "comes before" function: the priority queue
 * behind every BPE-style merge loop (llama2.c BPE, SentencePiece BPE, byte-level BPE). */
#include "core.h"

#include <stdlib.h>
#include <string.h>

void av_heap_init(av_heap *h, size_t elem_size, int (*before)(const void *, const void *)) {
    memset(h, 0, sizeof *h);
    h->size = elem_size <= AV_HEAP_MAX_ELEM ? elem_size : AV_HEAP_MAX_ELEM;
    h->before = before;
}

void av_heap_free(av_heap *h) {
    free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}

static void *at(const av_heap *h, size_t i) { return h->v + i * h->size; }

int av_heap_push(av_heap *h, const void *elem) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 64, bytes;
        if (!av_mul_size(cap, h->size, &bytes)) return -1;
        unsigned char *v = realloc(h->v, bytes);
        if (!v) return -1;
        h->v = v;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) { /* sift up: move parents down until elem fits */
        size_t parent = (i - 1) / 2;
        if (!h->before(elem, at(h, parent))) break;
        memcpy(at(h, i), at(h, parent), h->size);
        i = parent;
    }
    memcpy(at(h, i), elem, h->size);
    return 0;
}

void av_heap_pop(av_heap *h, void *out) {
    unsigned char last[AV_HEAP_MAX_ELEM];
    memcpy(out, at(h, 0), h->size);
    memcpy(last, at(h, --h->n), h->size);
    size_t i = 0;
    for (;;) { /* sift down the last element from the root */
        size_t l = 2 * i + 1, r = l + 1, best = i;
        const void *bp = last;
        if (l < h->n && h->before(at(h, l), bp)) best = l, bp = at(h, l);
        if (r < h->n && h->before(at(h, r), bp)) best = r;
        if (best == i) break;
        memcpy(at(h, i), at(h, best), h->size);
        i = best;
    }
    if (h->n) memcpy(at(h, i), last, h->size);
}
