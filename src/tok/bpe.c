/* BPE with ranked merges (GPT-2, RoBERTa, Llama 3, Qwen and any tokenizer.json "BPE" model), as tokenizers'
 * Word::merge_all does it: start from one symbol per character (continuing-subword prefix and end-of-word
 * suffix applied, byte fallback or unk for characters outside the vocabulary), then repeatedly apply the
 * lowest-ranked merge, leftmost first, skipping queue entries that went stale.
 *
 * gpt3_compat reproduces a quirk of the npm package gpt-3-encoder: it keys merges by the string "left,right",
 * so a pair whose pieces contain commas may take the rank of a different merge with the same key. */
#include "models.h"

#include <stdlib.h>
#include <string.h>

typedef struct bsym {
    int32_t id, prev, next;
    uint32_t len; /* 0: merged away */
} bsym;

typedef struct merge {
    int32_t rank, pos, id;
} merge;

static int merge_before(const void *pa, const void *pb) {
    const merge *a = pa, *b = pb;
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static int mheap_push(av_heap *h, merge m) { return av_heap_push(h, &m); }

static merge mheap_pop(av_heap *h) {
    merge m;
    av_heap_pop(h, &m);
    return m;
}

/* gpt-3-encoder's lookup of the pair (a, b) through its "a,b" key. */
static int gpt3_lookup(const tok_bpe *b, int32_t a, int32_t c, int32_t *rank, int32_t *id) {
    const av_tokenizer *t = b->t;
    if (!b->comma[a] && !b->comma[c]) return 0;
    const char *pa = t->pieces[a], *pc = t->pieces[c];
    size_t la = (size_t)t->lens[a], lc = (size_t)t->lens[c];
    char key[512], joined[512];
    if (la + lc + 1 > sizeof key) return 0;
    memcpy(key, pa, la);
    key[la] = ',';
    memcpy(key + la + 1, pc, lc);
    size_t n = la + lc + 1;
    memcpy(joined, pa, la);
    memcpy(joined + la, pc, lc);
    int32_t merged = av_tok_find(t, joined, la + lc); /* gpt-3-encoder merges into first + second */
    if (merged < 0) return 0;
    for (size_t k = 0; k < n; k++) {
        if (key[k] != ',' || k == la) continue;
        int32_t x = av_tok_find(t, key, k), y = av_tok_find(t, key + k + 1, n - k - 1);
        if (x < 0 || y < 0) continue;
        const tok_pair_entry *e = tok_pairmap_get(&b->merges, x, y);
        if (e) {
            *rank = e->rank;
            *id = merged;
            return 1;
        }
    }
    return 0;
}

static int pair_rank(const tok_bpe *b, int32_t a, int32_t c, int32_t *rank, int32_t *id) {
    const tok_pair_entry *e = tok_pairmap_get(&b->merges, a, c);
    if (e) {
        *rank = e->rank;
        *id = e->id;
        return 1;
    }
    return b->comma ? gpt3_lookup(b, a, c, rank, id) : 0;
}

static int add_sym(bsym **v, size_t *n, size_t *cap, int32_t id, uint32_t len) {
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 64;
        bsym *p = realloc(*v, sizeof *p * c);
        if (!p) return -1;
        *v = p;
        *cap = c;
    }
    (*v)[*n] = (bsym){id, (int32_t)*n - 1, (int32_t)*n + 1, len};
    (*n)++;
    return 0;
}

/* One word being tokenized: its symbols (a linked list over v), the unknown-character run not yet added
 * (one unk for the run when fuse_unk) and room for a character with its prefix/suffix. */
typedef struct bword {
    bsym *v; /* (n) */
    size_t n, cap;
    int32_t unk; /* pending unk id, -1: none */
    uint32_t unk_len;
    size_t plen, slen; /* lengths of the continuing-subword prefix and the end-of-word suffix */
    tok_buf tmp;
} bword;

/* Adds the pending unk, if any. Inline: it runs once per character. */
static inline int flush_unk(bword *w) {
    if (w->unk < 0) return 0;
    int32_t unk = w->unk;
    w->unk = -1;
    return add_sym(&w->v, &w->n, &w->cap, unk, w->unk_len);
}

/* The symbol(s) of the k-byte character at s + i of an n-byte word: its vocabulary piece (with prefix and
 * suffix), else its bytes (byte fallback), else unk. */
static int add_char(const tok_bpe *b, bword *w, const char *s, size_t n, size_t i, int k) {
    const av_tokenizer *t = b->t;
    const char *piece = s + i;
    size_t plen_all = (size_t)k;
    if ((i > 0 && w->plen) || (i + (size_t)k == n && w->slen)) {
        w->tmp.n = 0;
        if ((i > 0 && w->plen && tok_buf_add(&w->tmp, b->cont_prefix, w->plen)) ||
            tok_buf_add(&w->tmp, s + i, (size_t)k) ||
            (i + (size_t)k == n && w->slen && tok_buf_add(&w->tmp, b->eow_suffix, w->slen)))
            return -1;
        piece = w->tmp.p;
        plen_all = w->tmp.n;
    }
    int32_t id = av_tok_find(t, piece, plen_all);
    if (id >= 0) return flush_unk(w) || add_sym(&w->v, &w->n, &w->cap, id, (uint32_t)k) ? -1 : 0;
    if (b->byte_fallback) {
        int ok = 1;
        for (size_t j = 0; j < plen_all; j++)
            ok &= t->byte_ids[(uint8_t)piece[j]] >= 0;
        if (ok) {
            if (flush_unk(w)) return -1;
            for (size_t j = 0; j < plen_all; j++)
                if (add_sym(&w->v, &w->n, &w->cap, t->byte_ids[(uint8_t)piece[j]], 1)) return -1;
            return 0;
        }
    }
    if (b->unk_id < 0) return 0; /* dropped */
    if (w->unk >= 0 && b->fuse_unk) {
        w->unk_len += (uint32_t)k;
        return 0;
    }
    if (flush_unk(w)) return -1;
    w->unk = b->unk_id;
    w->unk_len = (uint32_t)k;
    return 0;
}

/* Applies the lowest-ranked merge, leftmost first, until none applies; stale heap entries are skipped. */
static int merge_all(const tok_bpe *b, bword *w, av_heap *h) {
    bsym *v = w->v;
    for (size_t i = 0; i + 1 < w->n; i++) {
        int32_t rank, id;
        if (pair_rank(b, v[i].id, v[i + 1].id, &rank, &id) && mheap_push(h, (merge){rank, (int32_t)i, id}))
            return -1;
    }
    while (h->n) {
        merge top = mheap_pop(h);
        bsym *l = &v[top.pos];
        if (l->len == 0 || l->next < 0) continue;
        bsym *r = &v[l->next];
        int32_t rank, id;
        if (!pair_rank(b, l->id, r->id, &rank, &id) || id != top.id) continue; /* stale */
        l->id = top.id;
        l->len += r->len;
        r->len = 0;
        l->next = r->next;
        if (l->next >= 0) v[l->next].prev = top.pos;
        if (l->prev >= 0 && pair_rank(b, v[l->prev].id, l->id, &rank, &id) &&
            mheap_push(h, (merge){rank, l->prev, id}))
            return -1;
        if (l->next >= 0 && pair_rank(b, l->id, v[l->next].id, &rank, &id) &&
            mheap_push(h, (merge){rank, top.pos, id}))
            return -1;
    }
    return 0;
}

int tok_bpe_word(const tok_bpe *b, const char *s, size_t n, av_tok_ids *out, av_err *err) {
    const av_tokenizer *t = b->t;
    if (n == 0) return 0;
    if (n > (size_t)INT32_MAX / 4) return av_errf(err, "word is too long (%zu bytes)", n);
    if (b->ignore_merges) {
        int id = av_tok_find(t, s, n);
        if (id >= 0) return av_tok_ids_push(out, id);
    }
    bword w = {.unk = -1};
    w.plen = b->cont_prefix ? strlen(b->cont_prefix) : 0;
    w.slen = b->eow_suffix ? strlen(b->eow_suffix) : 0;
    av_heap h;
    av_heap_init(&h, sizeof(merge), merge_before);
    int rc = 0;
    for (size_t i = 0; !rc && i < n;) {
        uint32_t cp;
        int k = av_utf8_decode(s + i, n - i, &cp);
        if (!k) k = 1;
        rc = add_char(b, &w, s, n, i, k);
        i += (size_t)k;
    }
    rc = rc || flush_unk(&w);
    if (!rc && w.n) w.v[w.n - 1].next = -1;
    rc = rc || merge_all(b, &w, &h);
    for (int32_t i = w.n ? 0 : -1; !rc && i >= 0; i = w.v[i].next)
        rc = av_tok_ids_push(out, w.v[i].id);
    free(w.v);
    av_heap_free(&h);
    tok_buf_free(&w.tmp);
    return rc ? av_errf(err, "out of memory in BPE") : 0;
}

void tok_bpe_free(tok_bpe *b) {
    tok_pairmap_free(&b->merges);
    free(b->cont_prefix);
    free(b->eow_suffix);
    free(b->comma);
    memset(b, 0, sizeof *b);
}
