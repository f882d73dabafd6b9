/* An LRU cache of computed attention tiles, bounded in bytes. One lock; lookups copy the tile out, so a
 * reader never holds a pointer into the cache. */
#include "core/core.h"
#include "server.h"

#include <stdlib.h>
#include <string.h>

struct srv_cache_entry {
    srv_tile_key key;
    uint64_t hash;
    float *data; /* (n) */
    size_t n;
    srv_cache_entry *chain;       /* next in the bucket */
    srv_cache_entry *prev, *next; /* LRU list */
};

static uint64_t key_hash(const srv_tile_key *k) {
    const unsigned char *p = (const unsigned char *)k;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < sizeof *k; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static size_t entry_bytes(const srv_cache_entry *e) { return sizeof *e + e->n * sizeof(float); }

int srv_cache_init(srv_cache *c, size_t max_bytes, av_err *err) {
    memset(c, 0, sizeof *c);
    c->n_buckets = 4096;
    c->buckets = calloc(c->n_buckets, sizeof *c->buckets);
    if (!c->buckets) return av_errf(err, "out of memory for the tile cache");
    c->max_bytes = max_bytes;
    pthread_mutex_init(&c->mu, NULL);
    return 0;
}

void srv_cache_free(srv_cache *c) {
    srv_cache_entry *e = c->lru_head;
    while (e) {
        srv_cache_entry *n = e->next;
        free(e->data);
        free(e);
        e = n;
    }
    free(c->buckets);
    pthread_mutex_destroy(&c->mu);
    memset(c, 0, sizeof *c);
}

static void lru_unlink(srv_cache *c, srv_cache_entry *e) {
    if (e->prev)
        e->prev->next = e->next;
    else
        c->lru_head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->lru_tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push_front(srv_cache *c, srv_cache_entry *e) {
    e->prev = NULL;
    e->next = c->lru_head;
    if (c->lru_head) c->lru_head->prev = e;
    c->lru_head = e;
    if (!c->lru_tail) c->lru_tail = e;
}

static void remove_entry(srv_cache *c, srv_cache_entry *e) {
    srv_cache_entry **pp = &c->buckets[e->hash % c->n_buckets];
    while (*pp && *pp != e)
        pp = &(*pp)->chain;
    if (*pp) *pp = e->chain;
    lru_unlink(c, e);
    c->bytes -= entry_bytes(e);
    free(e->data);
    free(e);
}

static srv_cache_entry *find(srv_cache *c, const srv_tile_key *key, uint64_t h) {
    for (srv_cache_entry *e = c->buckets[h % c->n_buckets]; e; e = e->chain)
        if (e->hash == h && memcmp(&e->key, key, sizeof *key) == 0) return e;
    return NULL;
}

int srv_cache_get(srv_cache *c, const srv_tile_key *key, float *out, size_t n) {
    uint64_t h = key_hash(key);
    pthread_mutex_lock(&c->mu);
    srv_cache_entry *e = find(c, key, h);
    int hit = e && e->n == n;
    if (hit) {
        memcpy(out, e->data, n * sizeof(float));
        lru_unlink(c, e);
        lru_push_front(c, e);
        c->hits++;
    } else {
        c->misses++;
    }
    pthread_mutex_unlock(&c->mu);
    return hit;
}

void srv_cache_put(srv_cache *c, const srv_tile_key *key, const float *data, size_t n) {
    if (sizeof(srv_cache_entry) + n * sizeof(float) > c->max_bytes / 4) return; /* too big to be worth it */
    srv_cache_entry *e = calloc(1, sizeof *e);
    float *copy = malloc(n * sizeof(float));
    if (!e || !copy) {
        free(e);
        free(copy);
        return; /* a cache may always decline */
    }
    memcpy(copy, data, n * sizeof(float));
    e->key = *key;
    e->hash = key_hash(key);
    e->data = copy;
    e->n = n;
    pthread_mutex_lock(&c->mu);
    srv_cache_entry *old = find(c, key, e->hash);
    if (old) remove_entry(c, old); /* computed twice by concurrent requests: keep the newer */
    size_t b = e->hash % c->n_buckets;
    e->chain = c->buckets[b];
    c->buckets[b] = e;
    lru_push_front(c, e);
    c->bytes += entry_bytes(e);
    while (c->bytes > c->max_bytes && c->lru_tail && c->lru_tail != e)
        remove_entry(c, c->lru_tail);
    pthread_mutex_unlock(&c->mu);
}

void srv_cache_drop_run(srv_cache *c, unsigned run_seq) {
    pthread_mutex_lock(&c->mu);
    srv_cache_entry *e = c->lru_head;
    while (e) {
        srv_cache_entry *n = e->next;
        if (e->key.run_seq == run_seq) remove_entry(c, e);
        e = n;
    }
    pthread_mutex_unlock(&c->mu);
}
