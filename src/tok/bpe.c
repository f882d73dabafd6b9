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

int tok_bpe_word(const tok_bpe *b, const char *s, size_t n, av_tok_ids *out, av_err *err) {
    const av_tokenizer *t = b->t;
    if (n == 0) return 0;
    if (n > (size_t)INT32_MAX / 4) return av_errf(err, "word is too long (%zu bytes)", n);
    if (b->ignore_merges) {
        int id = av_tok_find(t, s, n);
        if (id >= 0) return av_tok_ids_push(out, id);
    }
    bsym *v = NULL;
    size_t ns = 0, cap = 0;
    av_heap h;
    av_heap_init(&h, sizeof(merge), merge_before);
    tok_buf tmp = {0};
    int32_t unk = -1;
    uint32_t unk_len = 0;
    size_t plen = b->cont_prefix ? strlen(b->cont_prefix) : 0,
           slen = b->eow_suffix ? strlen(b->eow_suffix) : 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int k = av_utf8_decode(s + i, n - i, &cp);
        if (!k) k = 1;
        const char *piece = s + i;
        size_t plen_all = (size_t)k;
        if ((i > 0 && plen) || (i + (size_t)k == n && slen)) {
            tmp.n = 0;
            if ((i > 0 && plen && tok_buf_add(&tmp, b->cont_prefix, plen)) ||
                tok_buf_add(&tmp, s + i, (size_t)k) ||
                (i + (size_t)k == n && slen && tok_buf_add(&tmp, b->eow_suffix, slen)))
                goto oom;
            piece = tmp.p;
            plen_all = tmp.n;
        }
        int32_t id = av_tok_find(t, piece, plen_all);
        if (id >= 0) {
            if (unk >= 0 && add_sym(&v, &ns, &cap, unk, unk_len)) goto oom;
            unk = -1;
            if (add_sym(&v, &ns, &cap, id, (uint32_t)k)) goto oom;
        } else {
            int done = 0;
            if (b->byte_fallback) {
                int ok = 1;
                for (size_t j = 0; j < plen_all; j++)
                    ok &= t->byte_ids[(uint8_t)piece[j]] >= 0;
                if (ok) {
                    if (unk >= 0 && add_sym(&v, &ns, &cap, unk, unk_len)) goto oom;
                    unk = -1;
                    for (size_t j = 0; j < plen_all; j++)
                        if (add_sym(&v, &ns, &cap, t->byte_ids[(uint8_t)piece[j]], 1)) goto oom;
                    done = 1;
                }
            }
            if (!done && b->unk_id >= 0) {
                if (unk >= 0 && b->fuse_unk) {
                    unk_len += (uint32_t)k;
                } else {
                    if (unk >= 0 && add_sym(&v, &ns, &cap, unk, unk_len)) goto oom;
                    unk = b->unk_id;
                    unk_len = (uint32_t)k;
                }
            }
        }
        i += (size_t)k;
    }
    if (unk >= 0 && add_sym(&v, &ns, &cap, unk, unk_len)) goto oom;
    if (ns) v[ns - 1].next = -1;
    for (size_t i = 0; i + 1 < ns; i++) {
        int32_t rank, id;
        if (pair_rank(b, v[i].id, v[i + 1].id, &rank, &id) && mheap_push(&h, (merge){rank, (int32_t)i, id}))
            goto oom;
    }
    while (h.n) {
        merge top = mheap_pop(&h);
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
            mheap_push(&h, (merge){rank, l->prev, id}))
            goto oom;
        if (l->next >= 0 && pair_rank(b, l->id, v[l->next].id, &rank, &id) &&
            mheap_push(&h, (merge){rank, top.pos, id}))
            goto oom;
    }
    for (int32_t i = ns ? 0 : -1; i >= 0; i = v[i].next)
        if (av_tok_ids_push(out, v[i].id)) goto oom;
    free(v);
    av_heap_free(&h);
    tok_buf_free(&tmp);
    return 0;
oom:
    free(v);
    av_heap_free(&h);
    tok_buf_free(&tmp);
    return av_errf(err, "out of memory in BPE");
}

void tok_bpe_free(tok_bpe *b) {
    tok_pairmap_free(&b->merges);
    free(b->cont_prefix);
    free(b->eow_suffix);
    free(b->comma);
    memset(b, 0, sizeof *b);
}
