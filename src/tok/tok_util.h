/* Small building blocks of the tokenizers: a growable byte buffer, UTF-8 helpers, a byte trie for prefix
 * searches and a hash map of id pairs (BPE merges). */
#ifndef AV_TOK_UTIL_H
#define AV_TOK_UTIL_H

#include "tok.h"

#include <string.h>

/* Makes room for need elements of elem bytes in the growable array *v of *cap elements (doubling); -1 when
 * out of memory (*v unchanged). */
int tok_grow(void **v, size_t *cap, size_t need, size_t elem);

/* ---- growable byte buffer ---- */
typedef struct tok_buf {
    char *p;
    size_t n, cap;
} tok_buf;

int tok_buf_reserve(tok_buf *b, size_t extra); /* room for extra bytes + NUL; p stays a C string */
int tok_buf_add(tok_buf *b, const void *s, size_t n);
int tok_buf_addc(tok_buf *b, char c);
int tok_buf_add_cp(tok_buf *b, uint32_t cp); /* UTF-8 encoding of a code point */
void tok_buf_free(tok_buf *b);

/* ---- UTF-8 ---- */
/* Length of the character starting with byte c, from the lead byte alone (SentencePiece's OneCharLen:
 * 1 for ASCII and stray continuation bytes, 2/3/4 for lead bytes). */
static inline int tok_utf8_len_lead(uint8_t c) { return "\1\1\1\1\1\1\1\1\1\1\1\1\2\2\3\4"[c >> 4]; }
/* Decoding and encoding: av_utf8_decode / av_utf8_encode / av_utf8_valid_prefix (core). */
/* Copies s replacing every byte that does not start a valid character by U+FFFD (EF BF BD). */
int tok_utf8_sanitize(const char *s, size_t n, tok_buf *out);

/* ---- byte trie: exact and prefix lookups of vocabulary strings ---- */
typedef struct tok_trie_node {
    int32_t id;          /* value stored at this node, -1 when none */
    int32_t first_child; /* -1 when none */
    int32_t next;        /* next sibling, -1 at the end */
    uint8_t byte;
} tok_trie_node;

typedef struct tok_trie {
    tok_trie_node *nodes;
    int32_t n, cap;
    int32_t root_child[256]; /* children of the root, by byte */
} tok_trie;

int tok_trie_init(tok_trie *t);
void tok_trie_free(tok_trie *t);
/* Inserts s -> id; an existing key keeps its first id unless replace is set. */
int tok_trie_insert(tok_trie *t, const char *s, size_t n, int32_t id, int replace);
/* Child of node (0 is the root) along byte c, -1 when none. */
static inline int32_t tok_trie_step(const tok_trie *t, int32_t node, uint8_t c) {
    if (node == 0) return t->root_child[c];
    for (int32_t k = t->nodes[node].first_child; k >= 0; k = t->nodes[k].next)
        if (t->nodes[k].byte == c) return k;
    return -1;
}
int32_t tok_trie_get(const tok_trie *t, const char *s, size_t n); /* id or -1 */

/* ---- string -> id hash over strings owned elsewhere (keys[id], lens[id]) ---- */
typedef struct tok_strmap {
    int32_t *slots; /* (cap) id or -1 */
    size_t cap;
    char *const *keys;
    const int *lens;
} tok_strmap;

static inline uint64_t tok_hash(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}
int tok_strmap_init(tok_strmap *m, char *const *keys, const int *lens, size_t n_max);
/* Adds key id; returns 1 when an equal key was already there (the first stays), 0 when added. */
int tok_strmap_add(tok_strmap *m, int32_t id);
static inline int32_t tok_strmap_get(const tok_strmap *m, const char *s, size_t n) {
    if (!m->cap) return -1;
    size_t mask = m->cap - 1;
    for (size_t i = tok_hash(s, n) & mask;; i = (i + 1) & mask) {
        int32_t id = m->slots[i];
        if (id < 0) return -1;
        if ((size_t)m->lens[id] == n && memcmp(m->keys[id], s, n) == 0) return id;
    }
}
void tok_strmap_free(tok_strmap *m);

/* ---- id pair -> (rank, merged id) map for BPE merges ---- */
typedef struct tok_pair_entry {
    uint64_t key; /* (left << 32 | right) + 1; 0 marks an empty slot */
    int32_t rank, id;
} tok_pair_entry;

typedef struct tok_pairmap {
    tok_pair_entry *v;
    size_t cap, n;
} tok_pairmap;

int tok_pairmap_put(tok_pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t id); /* keeps the first */
static inline const tok_pair_entry *tok_pairmap_get(const tok_pairmap *m, int32_t a, int32_t b) {
    if (!m->cap) return NULL;
    uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    for (size_t i = (size_t)(h >> 20) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (m->v[i].key == key) return &m->v[i];
        if (m->v[i].key == 0) return NULL;
    }
}
void tok_pairmap_free(tok_pairmap *m);

#endif
