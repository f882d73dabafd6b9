/* SentencePiece normalization: the precompiled character map (a Darts-clone double-array trie), user-defined
 * symbols kept whole, the dummy-prefix "▁", whitespace escaping and extra-whitespace removal, in the order
 * libsentencepiece applies them. Invalid UTF-8 bytes become U+FFFD one byte at a time, as there. */
#include "sp.h"

#include <stdlib.h>
#include <string.h>

#define SP_SPACE "\xE2\x96\x81" /* ▁ */

/* ---- precompiled charsmap ---- */

int tok_charsmap_parse(tok_charsmap *m, const void *blob, size_t size, const char *name, av_err *err) {
    memset(m, 0, sizeof *m);
    if (size == 0) return 0;
    av_reader r;
    av_reader_init(&r, blob, size, name);
    uint32_t trie_size;
    if (av_read_u32(&r, &trie_size, err)) return -1;
    if (trie_size % 4 != 0 || trie_size == 0 || trie_size > av_reader_left(&r))
        return av_errf(err, "%s: precompiled charsmap: bad trie size %u (blob of %zu bytes)", name, trie_size,
                       size);
    m->n_units = trie_size / 4;
    m->units = malloc(trie_size);
    m->n_norm = av_reader_left(&r) - trie_size;
    m->norm = malloc(m->n_norm + 1);
    if (!m->units || !m->norm) {
        tok_charsmap_free(m);
        return av_errf(err, "out of memory");
    }
    for (size_t i = 0; i < m->n_units; i++)
        if (av_read_u32(&r, &m->units[i], err)) return -1;
    if (av_read_bytes(&r, m->norm, m->n_norm, err)) return -1;
    m->norm[m->n_norm] = 0; /* the last replacement is terminated even if the blob forgot to */
    return 0;
}

void tok_charsmap_free(tok_charsmap *m) {
    free(m->units);
    free(m->norm);
    memset(m, 0, sizeof *m);
}

/* Darts-clone unit fields. */
static inline uint32_t unit_offset(uint32_t u) { return (u >> 10) << ((u & (1u << 9)) >> 6); }
static inline uint32_t unit_label(uint32_t u) { return u & ((1u << 31) | 0xFF); }
static inline int unit_has_leaf(uint32_t u) { return (u >> 8) & 1; }
static inline uint32_t unit_value(uint32_t u) { return u & ((1u << 31) - 1); }

size_t tok_charsmap_prefixes(const tok_charsmap *m, const char *key, size_t len, tok_charsmap_fn fn,
                             void *ctx) {
    if (!m->n_units) return 0;
    size_t count = 0;
    size_t pos = unit_offset(m->units[0]);
    for (size_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)key[i];
        pos ^= c;
        if (pos >= m->n_units) return count;
        uint32_t u = m->units[pos];
        if (unit_label(u) != c) return count;
        pos ^= unit_offset(u);
        if (pos >= m->n_units) return count;
        if (unit_has_leaf(u)) {
            uint32_t v = unit_value(m->units[pos]);
            if (v >= m->n_norm) continue; /* corrupt value: ignore the rule */
            const char *rep = m->norm + v;
            count++;
            if (fn(ctx, i + 1, rep, strlen(rep))) return count;
        }
    }
    return count;
}

/* ---- the normalizer ---- */

size_t tok_sp_user_prefix(const av_tok_sp *sp, const char *s, size_t n) {
    if (!sp->n_user) return 0;
    size_t best = 0;
    int32_t node = 0;
    for (size_t i = 0; i < n; i++) {
        node = tok_trie_step(&sp->user, node, (uint8_t)s[i]);
        if (node < 0) break;
        if (sp->user.nodes[node].id >= 0) best = i + 1;
    }
    return best;
}

typedef struct longest_ctx {
    size_t n_seen, len;
    const char *rep;
    size_t rep_len;
} longest_ctx;

static int keep_longest(void *ctx, size_t match_len, const char *rep, size_t rep_len) {
    longest_ctx *c = ctx;
    if (++c->n_seen > 32) return 1; /* libsentencepiece looks at the first 32 matches only */
    if (c->len == 0 || match_len > c->len) {
        c->len = match_len;
        c->rep = rep;
        c->rep_len = rep_len;
    }
    return 0;
}

/* One normalization step at the start of s: the replacement (*rep, *rep_len) and the bytes consumed. */
static size_t normalize_prefix(const av_tok_sp *sp, const char *s, size_t n, const char **rep,
                               size_t *rep_len) {
    size_t user = tok_sp_user_prefix(sp, s, n);
    if (user) {
        *rep = s;
        *rep_len = user;
        return user;
    }
    longest_ctx c = {0, 0, NULL, 0};
    tok_charsmap_prefixes(&sp->charsmap, s, n, keep_longest, &c);
    if (c.len) {
        *rep = c.rep;
        *rep_len = c.rep_len;
        return c.len;
    }
    uint32_t cp;
    int k = av_utf8_decode(s, n, &cp);
    if (k == 0) { /* malformed: U+FFFD for one byte */
        *rep = "\xEF\xBF\xBD";
        *rep_len = 3;
        return 1;
    }
    *rep = s;
    *rep_len = (size_t)k;
    return (size_t)k;
}

int tok_sp_normalize(const av_tok_sp *sp, const char *text, size_t len, tok_buf *out, av_err *err) {
    const char *space = sp->escape_ws ? SP_SPACE : " ";
    size_t space_len = strlen(space);
    const char *rep;
    size_t rep_len;
    out->n = 0;
    if (tok_buf_reserve(out, len + len / 2 + 8)) goto oom;
    if (sp->remove_extra_ws) { /* heading spaces */
        while (len) {
            size_t used = normalize_prefix(sp, text, len, &rep, &rep_len);
            if (rep_len != 1 || rep[0] != ' ') break;
            text += used;
            len -= used;
        }
    }
    if (len == 0) return 0;
    if (!sp->ws_suffix && sp->add_dummy_prefix && tok_buf_add(out, space, space_len)) goto oom;
    int prev_space = sp->remove_extra_ws;
    while (len) {
        size_t used = normalize_prefix(sp, text, len, &rep, &rep_len);
        while (prev_space && rep_len && rep[0] == ' ') {
            rep++;
            rep_len--;
        }
        if (rep_len) {
            for (size_t i = 0; i < rep_len; i++) {
                int bad = rep[i] == ' ' ? tok_buf_add(out, space, space_len) : tok_buf_addc(out, rep[i]);
                if (bad) goto oom;
            }
            prev_space = rep[rep_len - 1] == ' ';
        }
        text += used;
        len -= used;
        if (!sp->remove_extra_ws) prev_space = 0;
    }
    if (sp->remove_extra_ws)
        while (out->n >= space_len && memcmp(out->p + out->n - space_len, space, space_len) == 0)
            out->n -= space_len;
    if (sp->ws_suffix && sp->add_dummy_prefix && tok_buf_add(out, space, space_len)) goto oom;
    if (out->p) out->p[out->n] = 0;
    return 0;
oom:
    return av_errf(err, "out of memory normalizing %zu bytes", len);
}
