/* Decoding and display labels.
 *
 * Every token has a text (dec_buf): the bytes it contributes to decoded text ("Ġthe" -> " the", "▁the" ->
 * " the", "##ing" -> "ing", "the" after another WordPiece word -> " the", <0xE2> -> one byte).
 * Display labels, for axes and tooltips:
 *   - special tokens show their piece ("[CLS]", "<|endoftext|>"; llama2.c's BOS/EOS "<s>"/"</s>");
 *   - WordPiece tokens show the piece as it is: "##ing" keeps its continuation mark;
 *   - other tokens show their text with control characters escaped (\n, \t, \x01) and, with
 *     AV_DISPLAY_VISIBLE_SPACE, spaces as "␣";
 *   - characters split over several tokens (byte fallback, byte-level BPE) are shown whole on the token where
 *     they start; a token holding only the rest of such a character shows "·" and its bytes as <0xNN>;
 *   - bytes that never form a valid character show as <0xNN>. */
#include "hf.h"

#include <stdlib.h>
#include <string.h>

static const char *tok_text(const av_tokenizer *t, int id, size_t *len) {
    *len = t->dec_off[id + 1] - t->dec_off[id];
    return t->dec_buf + t->dec_off[id];
}

static int is_control_id(const av_tokenizer *t, int id) {
    return id >= 0 && id < t->n_vocab && t->types[id] == AV_TOKTYPE_CONTROL;
}

const char *av_tokenizer_decode_piece(const av_tokenizer *t, int prev, int id, char buf[8], size_t *len) {
    *len = 0;
    (void)buf;
    if (id < 0 || id >= t->n_vocab) return "";
    size_t n;
    const char *p = tok_text(t, id, &n);
    int strip;
    if (t->kind == AV_TOK_SPM_BPE)
        strip = prev == t->bos;
    else if (t->text == AV_TOK_TEXT_BYTELEVEL || t->text == AV_TOK_TEXT_RAW)
        strip = 0;
    else
        strip = prev < 0 || is_control_id(t, prev);
    if (strip && n &&
        p[0] == ' ') { /* the dummy prefix / word separator at the start is not part of the text */
        p++;
        n--;
    }
    *len = n;
    return p;
}

static int add_escaped(tok_buf *o, const char *s, size_t n, unsigned flags) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char tmp[8];
        int rc;
        if (c == '\n')
            rc = tok_buf_add(o, "\\n", 2);
        else if (c == '\t')
            rc = tok_buf_add(o, "\\t", 2);
        else if (c == '\r')
            rc = tok_buf_add(o, "\\r", 2);
        else if (c < 0x20 || c == 0x7f) {
            snprintf(tmp, sizeof tmp, "\\x%02X", c);
            rc = tok_buf_add(o, tmp, 4);
        } else if (c == 0xC2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 &&
                   (unsigned char)s[i + 1] < 0xA0) {
            snprintf(tmp, sizeof tmp, "\\u%04X", (unsigned)(unsigned char)s[i + 1]); /* C1 controls */
            rc = tok_buf_add(o, tmp, 6);
            i++;
        } else if (c == ' ' && (flags & AV_DISPLAY_VISIBLE_SPACE))
            rc = tok_buf_add(o, "\xE2\x90\xA3", 3);
        else
            rc = tok_buf_addc(o, (char)c);
        if (rc) return -1;
    }
    return 0;
}

static int add_hex(tok_buf *o, uint8_t c) {
    char tmp[8];
    snprintf(tmp, sizeof tmp, "<0x%02X>", c);
    return tok_buf_add(o, tmp, 6);
}

static int valid_id(const av_tokenizer *t, int32_t id) { return id >= 0 && id < t->n_vocab; }

/* Label of text i of n byte strings read as one text, whose bytes may hold parts of characters shared with
 * its neighbours: characters are shown on the text where they start; a text holding only the rest of one
 * shows "·" and its bytes. */
static int bytes_label(const char *const *texts, const size_t *lens, size_t n, size_t i, unsigned flags,
                       tok_buf *o) {
    /* the window: back over texts that start with continuation bytes (at most 3), forward at most 3 */
    size_t first = i;
    while (first > 0 && i - first < 3 && lens[first] && ((uint8_t)texts[first][0] & 0xC0) == 0x80)
        first--;
    size_t last = i + 3 < n ? i + 3 : n - 1;
    tok_buf w = {0};
    size_t *owner = NULL, cap = 0, start_i = 0, end_i = 0;
    for (size_t k = first; k <= last; k++) {
        if (k == i) start_i = w.n;
        if (tok_buf_add(&w, texts[k], lens[k])) goto oom;
        if (w.n > cap) {
            size_t c = w.n * 2;
            size_t *no = realloc(owner, sizeof *no * c);
            if (!no) goto oom;
            owner = no;
            cap = c;
        }
        for (size_t q = w.n - lens[k]; q < w.n; q++)
            owner[q] = k;
        if (k == i) end_i = w.n;
    }
    int shown = 0;
    for (size_t q = 0; q < w.n;) {
        uint32_t cp;
        int k = av_utf8_decode(w.p + q, w.n - q, &cp);
        size_t len = k ? (size_t)k : 1;
        if (owner[q] == i) {
            if (k) {
                if (add_escaped(o, w.p + q, len, flags)) goto oom;
            } else if (add_hex(o, (uint8_t)w.p[q])) {
                goto oom;
            }
            shown = 1;
        }
        q += len;
    }
    if (!shown && end_i > start_i) { /* only the tail of a character that started earlier */
        if (tok_buf_add(o, "\xC2\xB7", 2)) goto oom;
        for (size_t q = start_i; q < end_i; q++)
            if (add_hex(o, (uint8_t)w.p[q])) goto oom;
    }
    tok_buf_free(&w);
    free(owner);
    return 0;
oom:
    tok_buf_free(&w);
    free(owner);
    return -1;
}

/* Label of a token whose text may hold parts of characters shared with its neighbours: the texts of the
 * valid ids around it (at most 3 on each side) through bytes_label. */
static int text_label(const av_tokenizer *t, const int32_t *ids, size_t n, size_t i, unsigned flags,
                      tok_buf *o) {
    const char *texts[7];
    size_t lens[7], lo = i, hi = i;
    while (lo > 0 && i - lo < 3 && valid_id(t, ids[lo - 1]))
        lo--;
    while (hi + 1 < n && hi - i < 3 && valid_id(t, ids[hi + 1]))
        hi++;
    for (size_t k = lo; k <= hi; k++)
        texts[k - lo] = tok_text(t, ids[k], &lens[k - lo]);
    return bytes_label(texts, lens, hi - lo + 1, i - lo, flags, o);
}

char *av_display_bytes(const char *const *texts, const size_t *lens, size_t n, size_t i, unsigned flags) {
    if (i >= n) return av_strdup("");
    tok_buf o = {0};
    if (bytes_label(texts, lens, n, i, flags, &o) ||
        tok_buf_add(&o, "", 0) /* NUL-terminated even when empty */) {
        tok_buf_free(&o);
        return NULL;
    }
    return o.p;
}

char *av_tokenizer_display_ex(const av_tokenizer *t, const int32_t *ids, size_t n, size_t i, unsigned flags) {
    if (i >= n) return av_strdup("");
    int id = ids[i];
    char small[32];
    if (!valid_id(t, id)) {
        snprintf(small, sizeof small, "<%d?>", id);
        return av_strdup(small);
    }
    if (t->kind == AV_TOK_SPM_BPE && id == t->bos) return av_strdup("<s>");
    if (t->kind == AV_TOK_SPM_BPE && id == t->eos) return av_strdup("</s>");
    tok_buf o = {0};
    int rc;
    if (t->types[id] == AV_TOKTYPE_CONTROL || t->types[id] == AV_TOKTYPE_UNKNOWN ||
        t->text == AV_TOK_TEXT_WORDPIECE)
        rc = add_escaped(&o, t->pieces[id], (size_t)t->lens[id], 0);
    else
        rc = text_label(t, ids, n, i, flags, &o);
    if (rc == 0) rc = tok_buf_add(&o, "", 0) /* NUL-terminated even when empty */;
    if (rc) {
        tok_buf_free(&o);
        return NULL;
    }
    return o.p;
}

char *av_tokenizer_display(const av_tokenizer *t, const int32_t *ids, size_t n, size_t i) {
    return av_tokenizer_display_ex(t, ids, n, i, 0);
}
