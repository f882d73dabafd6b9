/* Encoding with a GGUF file's tokenizer, as llama.cpp's llama_tokenize(add_special, parse_special = true):
 * special tokens cut out whole (partition), then each text fragment by the SentencePiece-style merges
 * ("llama" vocabularies) or by pre-tokenizer + byte-level BPE ("gpt2"), then BOS / EOS as the file's flags
 * say. */
#define _GNU_SOURCE /* memmem */
#include "gguf_tok.h"

#include <stdlib.h>
#include <string.h>

/* A piece of the input: text bytes [off, off + len) or, when id >= 0, a special token. */
typedef struct frag {
    size_t off, len;
    int32_t id;
} frag;

typedef struct frags {
    frag *v;
    size_t n, cap;
} frags;

static int frags_push(frags *f, size_t off, size_t len, int32_t id) {
    if (tok_grow((void **)&f->v, &f->cap, f->n + 1, sizeof *f->v)) return -1;
    f->v[f->n++] = (frag){off, len, id};
    return 0;
}

static int is_c_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); } /* isspace in the C locale */

/* Which special tokens occur anywhere in the text (one pass over it with the trie of their texts). */
static uint8_t *specials_present(const av_tok_gguf *g, const char *s, size_t n) {
    uint8_t *seen = calloc((size_t)g->n_specials + 1, 1);
    for (size_t i = 0; seen && i < n; i++)
        for (int32_t node = 0, k = 0; i + (size_t)k < n; k++) {
            if ((node = tok_trie_step(&g->special_trie, node, (uint8_t)s[i + (size_t)k])) < 0) break;
            if (g->special_trie.nodes[node].id >= 0) seen[g->special_trie.nodes[node].id] = 1;
        }
    return seen;
}

/* Cuts every occurrence of special token id out of the text fragments of in (tokenizer_st_partition for one
 * token): lstrip drops the whitespace before it, rstrip the whitespace after it. */
static int cut_special(const av_tokenizer *t, const char *s, const frags *in, int32_t id, frags *out) {
    const char *word = t->pieces[id];
    size_t wlen = (size_t)t->lens[id];
    uint16_t attr = t->gg->attr[id];
    out->n = 0;
    for (size_t i = 0; i < in->n; i++) {
        size_t off = in->v[i].off, len = in->v[i].len;
        const char *hit = in->v[i].id < 0 ? memmem(s + off, len, word, wlen) : NULL;
        if (!hit) {
            if (frags_push(out, off, len, in->v[i].id)) return -1;
            continue;
        }
        for (; hit; hit = len ? memmem(s + off, len, word, wlen) : NULL) {
            size_t at = (size_t)(hit - s), left = at - off;
            if (attr & GG_ATTR_LSTRIP)
                while (left > 0 && is_c_space(s[off + left - 1]))
                    left--;
            if ((left > 0 && frags_push(out, off, left, -1)) || frags_push(out, 0, 0, id)) return -1;
            len -= at + wlen - off;
            off = at + wlen;
            if (attr & GG_ATTR_RSTRIP)
                for (; len > 0 && is_c_space(s[off]); len--)
                    off++;
        }
        if (len > 0 && frags_push(out, off, len, -1)) return -1;
    }
    return 0;
}

static int partition(const av_tokenizer *t, const char *s, size_t n, frags *out) {
    const av_tok_gguf *g = t->gg;
    frags other = {0};
    out->n = 0;
    uint8_t *seen = specials_present(g, s, n);
    int rc = !seen || (n > 0 && frags_push(out, 0, n, -1)) ? -1 : 0;
    for (int k = 0; rc == 0 && k < g->n_specials; k++) {
        if (!seen[k]) continue;
        rc = cut_special(t, s, out, g->specials[k], &other);
        frags swap = *out;
        *out = other;
        other = swap;
    }
    free(other.v);
    free(seen);
    return rc;
}

/* ---- "llama" vocabularies: llm_tokenizer_spm_session ---- */

typedef struct sym {
    size_t start, len;
    int prev, next;
} sym;

typedef struct bigram {
    float score;
    int left, right;
    size_t size;
} bigram;

static int bigram_before(const void *pa, const void *pb) { /* highest score, then leftmost */
    const bigram *a = pa, *b = pb;
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static int try_bigram(const av_tokenizer *t, const char *buf, const sym *s, int left, int right, av_heap *h) {
    if (left < 0 || right < 0) return 0;
    size_t size = s[left].len + s[right].len;
    int id = av_tok_find(t, buf + s[left].start, size); /* any token, control and byte ones included */
    if (id < 0) return 0;
    bigram b = {t->scores[id], left, right, size};
    return av_heap_push(h, &b);
}

/* The token of one byte: "<0xNN>", else the byte as a one-byte token, else <unk> (llama.cpp aborts there). */
static int32_t byte_token(const av_tokenizer *t, uint8_t c) {
    char hex[7];
    snprintf(hex, sizeof hex, "<0x%02X>", c);
    int id = av_tok_find(t, hex, 6);
    if (id < 0) id = av_tok_find(t, (const char *)&c, 1);
    return id >= 0 ? id : t->unk;
}

/* One text fragment: optional leading space, spaces as U+2581, then merges by score. */
static int spm_fragment(const av_tokenizer *t, const char *text, size_t n, int space_prefix,
                        av_tok_ids *out) {
    tok_buf buf = {0};
    int rc = space_prefix ? tok_buf_add(&buf, "\xE2\x96\x81", 3) : tok_buf_reserve(&buf, 0);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = text[i] == ' ' ? tok_buf_add(&buf, "\xE2\x96\x81", 3) : tok_buf_addc(&buf, text[i]);
    sym *s = rc ? NULL : malloc(sizeof *s * (buf.n + 1));
    av_heap h;
    av_heap_init(&h, sizeof(bigram), bigram_before);
    int ns = 0;
    for (size_t i = 0; s && i < buf.n; ns++) {
        size_t len = (size_t)tok_utf8_len_lead((uint8_t)buf.p[i]);
        if (len > buf.n - i) len = buf.n - i;
        s[ns] = (sym){i, len, ns - 1, i + len < buf.n ? ns + 1 : -1};
        i += len;
    }
    rc = s ? 0 : -1;
    for (int i = 1; rc == 0 && i < ns; i++)
        rc = try_bigram(t, buf.p, s, i - 1, i, &h);
    while (rc == 0 && h.n) {
        bigram b;
        av_heap_pop(&h, &b);
        sym *l = &s[b.left], *r = &s[b.right];
        if (l->len == 0 || r->len == 0 || l->len + r->len != b.size) continue; /* stale */
        l->len += r->len;
        r->len = 0;
        l->next = r->next;
        if (r->next >= 0) s[r->next].prev = b.left;
        rc = try_bigram(t, buf.p, s, l->prev, b.left, &h) || try_bigram(t, buf.p, s, b.left, l->next, &h) ? -1
                                                                                                          : 0;
    }
    for (int i = ns ? 0 : -1; rc == 0 && i >= 0; i = s[i].next) {
        int id = av_tok_find(t, buf.p + s[i].start, s[i].len);
        if (id >= 0) rc = av_tok_ids_push(out, id);
        for (size_t k = 0; id < 0 && rc == 0 && k < s[i].len; k++) {
            int32_t b = byte_token(t, (uint8_t)buf.p[s[i].start + k]);
            rc = b >= 0 ? av_tok_ids_push(out, b) : 0; /* no byte token and no <unk>: dropped */
        }
    }
    av_heap_free(&h);
    free(s);
    tok_buf_free(&buf);
    return rc;
}

/* ---- "gpt2" vocabularies: pre-tokenizer, then byte-level BPE word by word ---- */

static int bpe_fragment(const av_tokenizer *t, const char *text, size_t n, av_tok_ids *out, av_err *err) {
    tok_buf words = {0};
    gg_pieces lens = {0};
    int rc = gg_pretokenize(t->gg, text, n, &words, &lens, err);
    for (size_t i = 0, at = 0; rc == 0 && i < lens.n; at += lens.len[i++])
        rc = tok_bpe_word(&t->gg->bpe, words.p + at, lens.len[i], out, err);
    tok_buf_free(&words);
    free(lens.len);
    return rc;
}

int av_tok_gguf_encode(const av_tokenizer *t, const char *text, size_t len, int add_special, av_tok_ids *out,
                       av_err *err) {
    const av_tok_gguf *g = t->gg;
    frags f = {0};
    int rc = partition(t, text, len, &f) ? av_errf(err, "out of memory") : 0;
    if (rc == 0 && add_special && g->add_bos && av_tok_ids_push(out, t->bos))
        rc = av_errf(err, "out of memory");
    /* SentencePiece style: llama.cpp gives a leading space to a text fragment at the start or after a special
     * token, which is every fragment (two text fragments are never adjacent) */
    for (size_t i = 0; rc == 0 && i < f.n; i++) {
        const frag *x = &f.v[i];
        if (x->id >= 0)
            rc = av_tok_ids_push(out, x->id) ? av_errf(err, "out of memory") : 0;
        else if (g->vocab == GG_VOCAB_SPM)
            rc = spm_fragment(t, text + x->off, x->len, g->add_space_prefix, out)
                     ? av_errf(err, "out of memory encoding %zu bytes", x->len)
                     : 0;
        else
            rc = bpe_fragment(t, text + x->off, x->len, out, err);
    }
    if (rc == 0 && add_special && g->add_eos && av_tok_ids_push(out, t->eos))
        rc = av_errf(err, "out of memory");
    free(f.v);
    return rc;
}
