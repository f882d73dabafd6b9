/* SentencePiece-style BPE with scores and byte fallback (llama2.c, GGUF "llama" tokenizers).
 * Encoding follows llama2.c: optional BOS, a dummy-prefix space, one symbol per UTF-8 character (bytes of
 * characters missing from the vocabulary fall back to <0xNN> pieces), then repeatedly merge the adjacent pair
 * whose concatenation is in the vocabulary with the highest score, leftmost on ties. A priority queue makes
 * this O(n log n), so long inputs stay fast. */
#include "tok.h"

#include <stdlib.h>
#include <string.h>

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

int av_tok_find(const av_tokenizer *t, const char *piece, size_t len) {
    if (len == 0 || (int)len > t->max_piece_len || !t->hash_cap) return -1;
    size_t mask = t->hash_cap - 1;
    for (size_t i = hash_bytes(piece, len) & mask;; i = (i + 1) & mask) {
        int id = t->hash_ids[i];
        if (id < 0) return -1;
        if ((size_t)t->lens[id] == len && memcmp(t->pieces[id], piece, len) == 0) return id;
    }
}

int av_tok_index(av_tokenizer *t, int all_pieces, av_err *err) {
    int n = t->n_vocab;
    t->hash_cap = 16;
    while (t->hash_cap < (size_t)n * 2)
        t->hash_cap <<= 1;
    free(t->hash_ids);
    t->hash_ids = malloc(sizeof(int) * t->hash_cap);
    if (!t->hash_ids) return av_errf(err, "out of memory");
    memset(t->hash_ids, 0xff, sizeof(int) * t->hash_cap);
    for (int b = 0; b < 256; b++)
        t->byte_ids[b] = -1;
    t->max_piece_len = 0;
    for (int i = 0; i < n; i++) {
        size_t len = strlen(t->pieces[i]);
        if (len > 4096) return av_errf(err, "tokenizer: piece %d is %zu bytes long", i, len);
        t->lens[i] = (int)len;
        if (t->lens[i] > t->max_piece_len) t->max_piece_len = t->lens[i];
    }
    for (int i = 0; i < n; i++) {
        size_t len = (size_t)t->lens[i];
        int byte = av_tok_byte_piece(t->pieces[i], len);
        if (byte >= 0 && t->types[i] == AV_TOKTYPE_BYTE && t->byte_ids[byte] < 0) t->byte_ids[byte] = i;
        int ty = t->types[i];
        if (len == 0) continue;
        if (!all_pieces && ty != AV_TOKTYPE_NORMAL && ty != AV_TOKTYPE_USER_DEFINED &&
            ty != AV_TOKTYPE_UNUSED)
            continue;                                         /* not matchable as text */
        if (av_tok_find(t, t->pieces[i], len) >= 0) continue; /* duplicate piece: first id wins */
        size_t mask = t->hash_cap - 1, h = hash_bytes(t->pieces[i], len) & mask;
        while (t->hash_ids[h] >= 0)
            h = (h + 1) & mask;
        t->hash_ids[h] = i;
    }
    return 0;
}

int av_tok_spm_create(int n, char **pieces, float *scores, int *types, int bos, int eos, int unk,
                      av_tokenizer **out, av_err *err) {
    av_tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        for (int i = 0; i < n; i++)
            free(pieces[i]);
        free(pieces);
        free(scores);
        free(types);
        return av_errf(err, "out of memory");
    }
    t->kind = AV_TOK_SPM_BPE;
    t->text = AV_TOK_TEXT_SPACE;
    t->family = "llama";
    t->n_vocab = n;
    t->pieces = pieces;
    t->scores = scores;
    t->types = types;
    t->bos = bos;
    t->eos = eos;
    t->unk = unk;
    if (n <= 0) {
        av_errf(err, "tokenizer: empty vocabulary");
        goto fail;
    }
    if (bos >= n || eos >= n || unk >= n) {
        av_errf(err, "tokenizer: special token id out of range (vocabulary of %d)", n);
        goto fail;
    }
    t->lens = malloc(sizeof(int) * (size_t)n);
    if (!t->types) t->types = malloc(sizeof(int) * (size_t)n);
    if (!t->lens || !t->types) {
        av_errf(err, "out of memory");
        goto fail;
    }
    if (!types)
        for (int i = 0; i < n; i++) {
            int byte = av_tok_byte_piece(pieces[i], strlen(pieces[i]));
            t->types[i] = byte >= 0                ? AV_TOKTYPE_BYTE
                          : i == unk               ? AV_TOKTYPE_UNKNOWN
                          : (i == bos || i == eos) ? AV_TOKTYPE_CONTROL
                                                   : AV_TOKTYPE_NORMAL;
        }
    if (av_tok_index(t, 0, err) || av_tok_build_text(t, err)) goto fail;
    *out = t;
    return 0;
fail:
    av_tokenizer_free(t);
    return -1;
}

/* ---- encoding ---- */

typedef struct sym {
    int start, len; /* byte range in the text buffer */
    int prev, next; /* linked list, -1 at the ends */
    int id;         /* token id once known */
    int fallback;   /* a <0xNN> byte piece: never merged (its piece text is not the byte) */
} sym;

typedef struct bigram {
    float score;
    int left, right; /* symbol indices */
    int len;         /* combined length when queued: stale if the symbols changed */
    int id;
} bigram;

static int bigram_before(const void *pa, const void *pb) { /* a has priority over b */
    const bigram *a = pa, *b = pb;
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static int try_bigram(const av_tokenizer *t, const char *text, const sym *s, int left, av_heap *h) {
    if (left < 0 || s[left].next < 0) return 0;
    int right = s[left].next;
    if (s[left].fallback || s[right].fallback) return 0;
    int len = s[left].len + s[right].len;
    int id = av_tok_find(t, text + s[left].start, (size_t)len);
    if (id < 0) return 0;
    bigram b = {t->scores[id], left, right, len, id};
    return av_heap_push(h, &b);
}

int av_tok_spm_encode(const av_tokenizer *t, const char *text, size_t len, int add_bos, int32_t **ids,
                      size_t *n_ids, av_err *err) {
    *ids = NULL;
    *n_ids = 0;
    if (len > (size_t)INT32_MAX / 2) return av_errf(err, "text is too long (%zu bytes)", len);
    /* text with the dummy prefix: " " + text */
    char *buf = malloc(len + 2);
    sym *s = malloc(sizeof *s * (len + 2));
    int32_t *out = malloc(sizeof *out * (len + 2));
    av_heap h;
    av_heap_init(&h, sizeof(bigram), bigram_before);
    if (!buf || !s || !out) goto oom;
    size_t blen = 0;
    if (len) buf[blen++] = ' ';
    memcpy(buf + blen, text, len);
    blen += len;
    int ns = 0;
    /* the dummy-prefix space is a symbol of its own, as in llama2.c (never grouped with what follows) */
    for (size_t i = 0; i < blen;) {
        size_t clen = 1;
        while ((i > 0 || !len) && i + clen < blen && clen < 4 && ((uint8_t)buf[i + clen] & 0xC0) == 0x80)
            clen++;
        int id = av_tok_find(t, buf + i, clen);
        if (id >= 0) {
            s[ns] = (sym){(int)i, (int)clen, ns - 1, ns + 1, id, 0};
            ns++;
        } else {
            for (size_t k = 0; k < clen; k++) {
                int b = t->byte_ids[(uint8_t)buf[i + k]];
                s[ns] = (sym){(int)(i + k), 1, ns - 1, ns + 1, b >= 0 ? b : t->unk, 1};
                ns++;
            }
        }
        i += clen;
    }
    if (ns) s[ns - 1].next = -1;
    for (int i = 0; i + 1 < ns; i++)
        if (try_bigram(t, buf, s, i, &h)) goto oom;
    while (h.n) {
        bigram b;
        av_heap_pop(&h, &b);
        sym *l = &s[b.left], *r = &s[b.right];
        if (l->len == 0 || r->len == 0 || l->len + r->len != b.len || l->next != b.right)
            continue; /* stale */
        l->len += r->len;
        l->id = b.id;
        l->next = r->next;
        if (r->next >= 0) s[r->next].prev = b.left;
        r->len = 0;
        if (try_bigram(t, buf, s, l->prev, &h) || try_bigram(t, buf, s, b.left, &h)) goto oom;
    }
    size_t n = 0;
    if (add_bos) out[n++] = t->bos;
    for (int i = ns ? 0 : -1; i >= 0; i = s[i].next)
        out[n++] = s[i].id;
    free(buf);
    free(s);
    av_heap_free(&h);
    *ids = out;
    *n_ids = n;
    return 0;
oom:
    free(buf);
    free(s);
    free(out);
    av_heap_free(&h);
    return av_errf(err, "out of memory encoding %zu bytes of text", len);
}
