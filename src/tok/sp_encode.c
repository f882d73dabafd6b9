/* Encoding with a SentencePiece model, as libsentencepiece's SentencePieceProcessor::Encode does it:
 * normalize, run the model over the whole normalized sentence, then spell unknown pieces as <0xNN> byte
 * pieces when the model has byte_fallback.
 *
 * BPE (bpe_model.cc): one symbol per character (user-defined symbols whole and frozen), then repeatedly merge
 * the adjacent pair whose concatenation is a piece with the highest score, leftmost first; merged pieces of
 * type UNUSED are split back into the pair they were made from. */
#include "models.h"
#include "sp.h"

#include <stdlib.h>
#include <string.h>

typedef struct sym {
    uint32_t start, len;
    int32_t prev, next;
    int frozen;
} sym;

typedef struct pair {
    float score;
    int32_t left, right;
    uint32_t size;
} pair;

static int pair_before(const void *pa, const void *pb) {
    const pair *a = pa, *b = pb;
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static int heap_push(av_heap *h, pair p) { return av_heap_push(h, &p); }

static pair heap_pop(av_heap *h) {
    pair p;
    av_heap_pop(h, &p);
    return p;
}

/* rev_merge of libsentencepiece: for merged pieces of type UNUSED, the length of the left part. */
typedef struct rev_map {
    int32_t *ids, *left_len;
    size_t cap, n;
} rev_map;

static int rev_put(rev_map *m, int32_t id, int32_t left_len) {
    if ((m->n + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        int32_t *ids = malloc(sizeof *ids * cap), *ll = malloc(sizeof *ll * cap);
        if (!ids || !ll) {
            free(ids);
            free(ll);
            return -1;
        }
        memset(ids, 0xff, sizeof *ids * cap);
        for (size_t i = 0; i < m->cap; i++) {
            if (m->ids[i] < 0) continue;
            size_t j = ((size_t)m->ids[i] * 2654435761u) & (cap - 1);
            while (ids[j] >= 0)
                j = (j + 1) & (cap - 1);
            ids[j] = m->ids[i];
            ll[j] = m->left_len[i];
        }
        free(m->ids);
        free(m->left_len);
        m->ids = ids;
        m->left_len = ll;
        m->cap = cap;
    }
    size_t j = ((size_t)id * 2654435761u) & (m->cap - 1);
    while (m->ids[j] >= 0 && m->ids[j] != id)
        j = (j + 1) & (m->cap - 1);
    if (m->ids[j] < 0) m->n++;
    m->ids[j] = id;
    m->left_len[j] = left_len; /* the last candidate wins, as in the std::map of the reference */
    return 0;
}

static int32_t rev_get(const rev_map *m, int32_t id) {
    if (!m->cap) return -1;
    for (size_t j = ((size_t)id * 2654435761u) & (m->cap - 1); m->ids[j] >= 0; j = (j + 1) & (m->cap - 1))
        if (m->ids[j] == id) return m->left_len[j];
    return -1;
}

typedef struct bpe_ctx {
    const av_tok_sp *sp;
    const av_tokenizer *t;
    const char *text;
    sym *s;
    av_heap heap;
    rev_map rev;
    int prev_unk;
} bpe_ctx;

static int maybe_add_pair(bpe_ctx *c, int32_t left, int32_t right) {
    if (left < 0 || right < 0 || c->s[left].frozen || c->s[right].frozen) return 0;
    uint32_t size = c->s[left].len + c->s[right].len;
    int32_t id = tok_strmap_get(&c->sp->normal, c->text + c->s[left].start, size);
    if (id < 0) return 0;
    if (heap_push(&c->heap, (pair){c->t->scores[id], left, right, size})) return -1;
    if (c->t->types[id] == AV_TOKTYPE_UNUSED && rev_put(&c->rev, id, (int32_t)c->s[left].len)) return -1;
    return 0;
}

static int32_t piece_to_id(const av_tok_sp *sp, int unk, const char *p, size_t n) {
    int32_t id = tok_strmap_get(&sp->reserved, p, n);
    if (id < 0) id = tok_strmap_get(&sp->normal, p, n);
    return id < 0 ? unk : id;
}

/* Appends the id of one piece; unknown pieces become byte pieces with byte_fallback, else a run of unknown
 * pieces becomes one unknown token (as SentencePieceProcessor::Encode merges them). */
static int emit(const av_tokenizer *t, const char *p, size_t n, int32_t id, int *prev_unk, av_tok_ids *out) {
    int unk = t->types[id] == AV_TOKTYPE_UNKNOWN, was_unk = *prev_unk;
    *prev_unk = unk;
    if (unk && t->sp->byte_fallback) {
        for (size_t i = 0; i < n; i++) {
            int32_t b = t->byte_ids[(uint8_t)p[i]];
            if (av_tok_ids_push(out, b >= 0 ? b : t->unk)) return -1;
        }
        return 0;
    }
    if (unk && was_unk) return 0;
    return av_tok_ids_push(out, id);
}

/* Splits an UNUSED piece back into the pieces it was merged from (recursively). */
static int resegment(bpe_ctx *c, const char *p, size_t n, av_tok_ids *out, int depth) {
    int32_t id = piece_to_id(c->sp, c->t->unk, p, n);
    int32_t left = c->t->types[id] == AV_TOKTYPE_UNUSED && depth < 64 ? rev_get(&c->rev, id) : -1;
    if (left <= 0 || (size_t)left >= n) return emit(c->t, p, n, id, &c->prev_unk, out);
    if (resegment(c, p, (size_t)left, out, depth + 1)) return -1;
    return resegment(c, p + left, n - (size_t)left, out, depth + 1);
}

static int sp_bpe(const av_tokenizer *t, const char *text, size_t n, int *prev_unk, av_tok_ids *out,
                  av_err *err) {
    const av_tok_sp *sp = t->sp;
    bpe_ctx c = {sp, t, text, NULL, {0}, {0}, *prev_unk};
    av_heap_init(&c.heap, sizeof(pair), pair_before);
    if (n > (size_t)INT32_MAX / 2) return av_errf(err, "text is too long (%zu bytes)", n);
    c.s = malloc(sizeof *c.s * (n + 1));
    if (!c.s) return av_errf(err, "out of memory");
    int32_t ns = 0;
    for (size_t i = 0; i < n;) {
        size_t user = tok_sp_user_prefix(sp, text + i, n - i);
        size_t len = user ? user : (size_t)tok_utf8_len_lead((uint8_t)text[i]);
        if (len > n - i) len = n - i;
        c.s[ns] = (sym){(uint32_t)i, (uint32_t)len, ns - 1, ns + 1, user > 0};
        ns++;
        i += len;
    }
    if (ns) c.s[ns - 1].next = -1;
    int rc = 0;
    for (int32_t i = 1; i < ns && !rc; i++)
        rc = maybe_add_pair(&c, i - 1, i);
    while (!rc && c.heap.n) {
        pair top = heap_pop(&c.heap);
        sym *l = &c.s[top.left], *r = &c.s[top.right];
        if (l->len == 0 || r->len == 0 || l->len + r->len != top.size) continue; /* stale */
        l->len += r->len;
        l->next = r->next;
        if (r->next >= 0) c.s[r->next].prev = top.left;
        r->len = 0;
        rc = maybe_add_pair(&c, l->prev, top.left);
        if (!rc) rc = maybe_add_pair(&c, top.left, l->next);
    }
    for (int32_t i = ns ? 0 : -1; !rc && i >= 0; i = c.s[i].next) {
        const char *p = text + c.s[i].start;
        size_t len = c.s[i].len;
        if (sp->has_unused) {
            rc = resegment(&c, p, len, out, 0);
        } else {
            rc = emit(t, p, len, piece_to_id(sp, t->unk, p, len), &c.prev_unk, out);
        }
    }
    *prev_unk = c.prev_unk;
    free(c.s);
    av_heap_free(&c.heap);
    free(c.rev.ids);
    free(c.rev.left_len);
    return rc ? av_errf(err, "out of memory encoding %zu bytes", n) : 0;
}

/* When no piece holds a space symbol after another character (sp->split_at_spaces, true for Llama 2), no
 * merge can cross the point before a space symbol that follows a non-space: the text is encoded in such
 * chunks, which gives the same pieces with small heaps (long inputs get much faster). */
static int sp_bpe_chunks(const av_tokenizer *t, const char *text, size_t n, av_tok_ids *out, av_err *err) {
    const av_tok_sp *sp = t->sp;
    int prev_unk = 0;
    if (!sp->split_at_spaces) return sp_bpe(t, text, n, &prev_unk, out, err);
    const char *space = sp->escape_ws ? "\xE2\x96\x81" : " ";
    size_t sl = strlen(space), start = 0;
    for (size_t i = sl; i + sl <= n; i++) {
        if (memcmp(text + i, space, sl) != 0 || memcmp(text + i - sl, space, sl) == 0) continue;
        if (i - start >= 256 || i + sl == n) { /* chunks of some size: the per-call cost stays negligible */
            if (sp_bpe(t, text + start, i - start, &prev_unk, out, err)) return -1;
            start = i;
        }
    }
    return sp_bpe(t, text + start, n - start, &prev_unk, out, err);
}

static int sp_unigram(const av_tokenizer *t, const char *text, size_t n, av_tok_ids *out, av_err *err) {
    const av_tok_sp *sp = t->sp;
    tok_unigram u = {&sp->trie, t->scores, NULL, t->types, t->unk, sp->min_score, sp->max_score};
    tok_segs segs = {0};
    int rc = tok_unigram_encode(&u, text, n, &segs, err), prev_unk = 0;
    for (size_t i = 0; rc == 0 && i < segs.n; i++) {
        const tok_seg *g = &segs.v[i];
        if (emit(t, text + g->start, g->end - g->start, g->id, &prev_unk, out))
            rc = av_errf(err, "out of memory");
    }
    free(segs.v);
    return rc;
}

int av_tok_sp_encode(const av_tokenizer *t, const char *text, size_t len, av_tok_ids *out, av_err *err) {
    tok_buf norm = {0};
    int rc = tok_sp_normalize(t->sp, text, len, &norm, err);
    if (rc == 0 && norm.n)
        rc = t->sp->model_type == AV_SP_BPE ? sp_bpe_chunks(t, norm.p, norm.n, out, err)
                                            : sp_unigram(t, norm.p, norm.n, out, err);
    tok_buf_free(&norm);
    return rc;
}
