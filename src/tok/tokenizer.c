/* Tokenizer front door: format detection, accessors, decoding and display labels. */
#include "tok.h"

#include <stdlib.h>
#include <string.h>

int av_tokenizer_load(const char *path, av_tokenizer **out, av_err *err) {
    *out = NULL;
    /* llama2.c tokenizer: int32 max_token_length then (score, len, bytes) records. It is the only binary
     * tokenizer format read here; anything else gets a clear message naming what is supported. */
    return av_tok_load_llama2c(path, out, err);
}

int av_tokenizer_vocab_size(const av_tokenizer *t) { return t->n_vocab; }
int av_tokenizer_bos(const av_tokenizer *t) { return t->bos; }
int av_tokenizer_eos(const av_tokenizer *t) { return t->eos; }

const char *av_tokenizer_piece(const av_tokenizer *t, int id) {
    return id >= 0 && id < t->n_vocab ? t->pieces[id] : NULL;
}

static int byte_value(const av_tokenizer *t, int id) {
    if (t->types[id] != AV_TOKTYPE_BYTE) return -1;
    for (int b = 0; b < 256; b++) /* byte_ids is tiny; ids are rarely looked up this way */
        if (t->byte_ids[b] == id) return b;
    return -1;
}

const char *av_tokenizer_decode_piece(const av_tokenizer *t, int prev, int id, char buf[8], size_t *len) {
    *len = 0;
    if (id < 0 || id >= t->n_vocab) return "";
    if (t->types[id] == AV_TOKTYPE_CONTROL || t->types[id] == AV_TOKTYPE_UNKNOWN) return "";
    int b = byte_value(t, id);
    if (b >= 0) {
        buf[0] = (char)b;
        *len = 1;
        return buf;
    }
    const char *p = t->pieces[id];
    size_t n = (size_t)t->lens[id];
    if (prev == t->bos && n && p[0] == ' ') { /* the dummy prefix after BOS is not part of the text */
        p++;
        n--;
    }
    *len = n;
    return p;
}

/* Appends s[0..n) to dst (capacity cap) with control characters escaped; returns the new length. */
static size_t append_escaped(char *dst, size_t pos, size_t cap, const char *s, size_t n) {
    for (size_t i = 0; i < n && pos + 5 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') pos += (size_t)snprintf(dst + pos, cap - pos, "\\n");
        else if (c == '\t') pos += (size_t)snprintf(dst + pos, cap - pos, "\\t");
        else if (c == '\r') pos += (size_t)snprintf(dst + pos, cap - pos, "\\r");
        else if (c < 0x20 || c == 0x7f) pos += (size_t)snprintf(dst + pos, cap - pos, "\\x%02X", c);
        else dst[pos++] = (char)c;
    }
    dst[pos] = 0;
    return pos;
}

char *av_tokenizer_display(const av_tokenizer *t, const int32_t *ids, size_t n, size_t i) {
    if (i >= n) return av_strdup("");
    int id = ids[i];
    char out[256];
    if (id < 0 || id >= t->n_vocab) {
        snprintf(out, sizeof out, "<%d?>", id);
        return av_strdup(out);
    }
    if (id == t->bos) return av_strdup("<s>");
    if (id == t->eos) return av_strdup("</s>");
    if (t->types[id] == AV_TOKTYPE_CONTROL || t->types[id] == AV_TOKTYPE_UNKNOWN) {
        size_t len = strlen(t->pieces[id]);
        append_escaped(out, 0, sizeof out, t->pieces[id], len);
        return av_strdup(out);
    }
    int b = byte_value(t, id);
    if (b >= 0) {
        if (b >= 0x20 && b < 0x7f) {
            snprintf(out, sizeof out, "%c", b);
        } else if (b < 0x80) {
            char c = (char)b;
            append_escaped(out, 0, sizeof out, &c, 1);
        } else {
            /* a UTF-8 lead byte whose continuation bytes follow as byte tokens: show the whole character on
             * the lead token and a joiner mark on the continuations */
            int need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 0;
            char ch[4] = {(char)b};
            int k = 1;
            while (need && k < need && i + (size_t)k < n) {
                int c = ids[i + (size_t)k] >= 0 && ids[i + (size_t)k] < t->n_vocab ? byte_value(t, ids[i + (size_t)k]) : -1;
                if (c < 0x80 || c >= 0xC0) break;
                ch[k++] = (char)c;
            }
            if (need && k == need) snprintf(out, sizeof out, "%.*s", k, ch);
            else if (!need && i > 0) snprintf(out, sizeof out, "\xC2\xB7<0x%02X>", b); /* continuation */
            else snprintf(out, sizeof out, "<0x%02X>", b);
        }
        return av_strdup(out);
    }
    append_escaped(out, 0, sizeof out, t->pieces[id], (size_t)t->lens[id]);
    return av_strdup(out);
}
