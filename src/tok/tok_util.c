/* Byte buffer, UTF-8 helpers, byte trie and pair map used by the tokenizers. */
#include "tok_util.h"

#include <stdlib.h>
#include <string.h>

int tok_grow(void **v, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap : 16, bytes;
    while (n < need)
        if (!av_mul_size(n, 2, &n)) return -1;
    if (!av_mul_size(n, elem, &bytes)) return -1;
    void *p = realloc(*v, bytes);
    if (!p) return -1;
    *v = p;
    *cap = n;
    return 0;
}

/* ---- byte buffer ---- */

int tok_buf_reserve(tok_buf *b, size_t extra) {
    size_t need;
    if (!av_add_size(b->n, extra, &need) || !av_add_size(need, 1, &need)) return -1;
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) return -1;
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p) return -1;
    p[b->n] = 0; /* always a C string, also when nothing was added yet */
    b->p = p;
    b->cap = cap;
    return 0;
}

int tok_buf_add(tok_buf *b, const void *s, size_t n) {
    if (tok_buf_reserve(b, n)) return -1;
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return 0;
}

int tok_buf_addc(tok_buf *b, char c) { return tok_buf_add(b, &c, 1); }

int tok_buf_add_cp(tok_buf *b, uint32_t cp) {
    char s[4];
    return tok_buf_add(b, s, (size_t)av_utf8_encode(cp, s));
}

void tok_buf_free(tok_buf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ---- UTF-8 ---- */

int tok_utf8_sanitize(const char *s, size_t n, tok_buf *out) {
    size_t i = 0;
    while (i < n) {
        size_t ok = av_utf8_valid_prefix(s + i, n - i);
        if (tok_buf_add(out, s + i, ok)) return -1;
        i += ok;
        if (i < n) {
            if (tok_buf_add(out, AV_UTF8_REPLACEMENT, 3)) return -1;
            i++;
        }
    }
    return 0;
}

/* ---- trie ---- */

int tok_trie_init(tok_trie *t) {
    memset(t, 0, sizeof *t);
    for (int i = 0; i < 256; i++)
        t->root_child[i] = -1;
    t->cap = 1024;
    t->nodes = malloc(sizeof *t->nodes * (size_t)t->cap);
    if (!t->nodes) return -1;
    t->nodes[0] = (tok_trie_node){-1, -1, -1, 0};
    t->n = 1;
    return 0;
}

void tok_trie_free(tok_trie *t) {
    free(t->nodes);
    memset(t, 0, sizeof *t);
}

static int32_t trie_add_child(tok_trie *t, int32_t parent, uint8_t c) {
    if (t->n == t->cap) {
        if (t->cap > INT32_MAX / 2) return -1;
        tok_trie_node *p = realloc(t->nodes, sizeof *p * (size_t)t->cap * 2);
        if (!p) return -1;
        t->nodes = p;
        t->cap *= 2;
    }
    int32_t k = t->n++;
    t->nodes[k] = (tok_trie_node){-1, -1, -1, c};
    if (parent == 0) {
        t->root_child[c] = k;
    } else {
        t->nodes[k].next = t->nodes[parent].first_child;
        t->nodes[parent].first_child = k;
    }
    return k;
}

int tok_trie_insert(tok_trie *t, const char *s, size_t n, int32_t id, int replace) {
    int32_t node = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t next = tok_trie_step(t, node, (uint8_t)s[i]);
        if (next < 0) next = trie_add_child(t, node, (uint8_t)s[i]);
        if (next < 0) return -1;
        node = next;
    }
    if (node != 0 && (t->nodes[node].id < 0 || replace)) t->nodes[node].id = id;
    return 0;
}

int32_t tok_trie_get(const tok_trie *t, const char *s, size_t n) {
    int32_t node = 0;
    for (size_t i = 0; i < n && node >= 0; i++)
        node = tok_trie_step(t, node, (uint8_t)s[i]);
    return node > 0 ? t->nodes[node].id : -1;
}

/* ---- string map ---- */

int tok_strmap_init(tok_strmap *m, char *const *keys, const int *lens, size_t n_max) {
    memset(m, 0, sizeof *m);
    m->keys = keys;
    m->lens = lens;
    m->cap = 16;
    while (m->cap < n_max * 2)
        m->cap <<= 1;
    m->slots = malloc(sizeof *m->slots * m->cap);
    if (!m->slots) return -1;
    memset(m->slots, 0xff, sizeof *m->slots * m->cap);
    return 0;
}

int tok_strmap_add(tok_strmap *m, int32_t id) {
    const char *s = m->keys[id];
    size_t n = (size_t)m->lens[id], mask = m->cap - 1;
    size_t i = tok_hash(s, n) & mask;
    for (; m->slots[i] >= 0; i = (i + 1) & mask) {
        int32_t o = m->slots[i];
        if ((size_t)m->lens[o] == n && memcmp(m->keys[o], s, n) == 0) return 1;
    }
    m->slots[i] = id;
    return 0;
}

void tok_strmap_free(tok_strmap *m) {
    free(m->slots);
    memset(m, 0, sizeof *m);
}

/* ---- pair map ---- */

static int pairmap_grow(tok_pairmap *m) {
    size_t cap = m->cap ? m->cap * 2 : 1024;
    tok_pair_entry *v = calloc(cap, sizeof *v);
    if (!v) return -1;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->v[i].key) continue;
        uint64_t h = m->v[i].key * 0x9E3779B97F4A7C15ull;
        size_t j = (size_t)(h >> 20) & (cap - 1);
        while (v[j].key)
            j = (j + 1) & (cap - 1);
        v[j] = m->v[i];
    }
    free(m->v);
    m->v = v;
    m->cap = cap;
    return 0;
}

int tok_pairmap_put(tok_pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t id) {
    if ((m->n + 1) * 2 > m->cap && pairmap_grow(m)) return -1;
    uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    size_t i = (size_t)(h >> 20) & (m->cap - 1);
    while (m->v[i].key && m->v[i].key != key)
        i = (i + 1) & (m->cap - 1);
    if (m->v[i].key) return 0; /* first rank wins */
    m->v[i] = (tok_pair_entry){key, rank, id};
    m->n++;
    return 0;
}

void tok_pairmap_free(tok_pairmap *m) {
    free(m->v);
    memset(m, 0, sizeof *m);
}
