/* Code points as llama.cpp sees them, and its hand-written pre-tokenizer splitters (unicode.cpp's
 * unicode_regex_split_custom_*), rewritten here from their behaviour.
 *
 * The splitters are not exactly the regular expressions they stand for: they classify characters with the
 * flags below (a character past the end of the piece has none), treat every character that has a category
 * (unassigned ones included) as "something else" in [^\s\p{L}\p{N}], and the Llama 3 family lowercases the
 * letter after an apostrophe for (?i:'s|'t|...). Reproducing them is what makes the ids equal llama.cpp's. */
#include "gguf_tok.h"

#include <stdlib.h>
#include <utf8proc.h>

uint16_t gg_cpt_flags(uint32_t cp) {
    static const uint16_t by_category[30] = {
        [UTF8PROC_CATEGORY_CN] = GG_CPT_UNDEFINED, [UTF8PROC_CATEGORY_LU] = GG_CPT_LETTER,
        [UTF8PROC_CATEGORY_LL] = GG_CPT_LETTER,    [UTF8PROC_CATEGORY_LT] = GG_CPT_LETTER,
        [UTF8PROC_CATEGORY_LM] = GG_CPT_LETTER,    [UTF8PROC_CATEGORY_LO] = GG_CPT_LETTER,
        [UTF8PROC_CATEGORY_MN] = GG_CPT_MARK,      [UTF8PROC_CATEGORY_MC] = GG_CPT_MARK,
        [UTF8PROC_CATEGORY_ME] = GG_CPT_MARK,      [UTF8PROC_CATEGORY_ND] = GG_CPT_NUMBER,
        [UTF8PROC_CATEGORY_NL] = GG_CPT_NUMBER,    [UTF8PROC_CATEGORY_NO] = GG_CPT_NUMBER,
        [UTF8PROC_CATEGORY_PC] = GG_CPT_PUNCT,     [UTF8PROC_CATEGORY_PD] = GG_CPT_PUNCT,
        [UTF8PROC_CATEGORY_PS] = GG_CPT_PUNCT,     [UTF8PROC_CATEGORY_PE] = GG_CPT_PUNCT,
        [UTF8PROC_CATEGORY_PI] = GG_CPT_PUNCT,     [UTF8PROC_CATEGORY_PF] = GG_CPT_PUNCT,
        [UTF8PROC_CATEGORY_PO] = GG_CPT_PUNCT,     [UTF8PROC_CATEGORY_SM] = GG_CPT_SYMBOL,
        [UTF8PROC_CATEGORY_SC] = GG_CPT_SYMBOL,    [UTF8PROC_CATEGORY_SK] = GG_CPT_SYMBOL,
        [UTF8PROC_CATEGORY_SO] = GG_CPT_SYMBOL,    [UTF8PROC_CATEGORY_ZS] = GG_CPT_SEPARATOR,
        [UTF8PROC_CATEGORY_ZL] = GG_CPT_SEPARATOR, [UTF8PROC_CATEGORY_ZP] = GG_CPT_SEPARATOR,
        [UTF8PROC_CATEGORY_CC] = GG_CPT_CONTROL,   [UTF8PROC_CATEGORY_CF] = GG_CPT_CONTROL,
        [UTF8PROC_CATEGORY_CS] = GG_CPT_CONTROL,   [UTF8PROC_CATEGORY_CO] = GG_CPT_CONTROL,
    };
    if (cp > 0x10FFFF) return GG_CPT_UNDEFINED;
    int k = utf8proc_category((utf8proc_int32_t)cp);
    uint16_t f = k >= 0 && k < 30 ? by_category[k] : GG_CPT_UNDEFINED;
    if (hf_is_whitespace(cp)) f |= GG_CPT_WHITESPACE; /* Unicode White_Space, the set llama.cpp lists */
    return f;
}

/* One character: its code point and length. Only the bit patterns of the lead byte and the presence of
 * continuation bytes are checked, as unicode_cpt_from_utf8 does; anything else is U+FFFD for one byte. Not
 * core's av_utf8_decode on purpose: llama.cpp accepts overlong forms, surrogates and values past U+10FFFF. */
static size_t decode_one(const uint8_t *s, size_t n, uint32_t *cp) {
    uint8_t c = s[0];
    size_t len = c < 0x80 ? 1 : !(c & 0x40) ? 0 : !(c & 0x20) ? 2 : !(c & 0x10) ? 3 : !(c & 0x08) ? 4 : 0;
    if (len == 0 || len > n) len = 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80) len = 0;
    static const uint8_t lead_mask[5] = {0, 0x7F, 0x1F, 0x0F, 0x07};
    if (len == 0) {
        *cp = 0xFFFD;
        return 1;
    }
    uint32_t v = c & lead_mask[len];
    for (size_t i = 1; i < len; i++)
        v = (v << 6) | (s[i] & 0x3F);
    *cp = v;
    return len;
}

int gg_text_decode(gg_text *t, const char *s, size_t len) {
    t->n = 0;
    t->cpt = malloc(sizeof *t->cpt * (len ? len : 1));
    t->flags = malloc(sizeof *t->flags * (len ? len : 1));
    if (!t->cpt || !t->flags) return -1;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        i += decode_one((const uint8_t *)s + i, len - i, &cp);
        t->cpt[t->n] = cp;
        t->flags[t->n++] = gg_cpt_flags(cp);
    }
    return 0;
}

void gg_text_free(gg_text *t) {
    free(t->cpt);
    free(t->flags);
    t->cpt = NULL;
    t->flags = NULL;
}

int gg_pieces_push(gg_pieces *p, size_t len) {
    if (tok_grow((void **)&p->len, &p->cap, p->n + 1, sizeof *p->len)) return -1;
    p->len[p->n++] = len;
    return 0;
}

/* ---- the splitters: one piece [a, b) of t at a time ---- */

enum { OUT_OF_RANGE = 0xFFFFFFFFu };

typedef struct cursor {
    const gg_text *t;
    size_t a, b; /* the piece */
    size_t prev; /* end of the last word emitted */
    gg_pieces *out;
    int oom;
} cursor;

static uint32_t cp_at(const cursor *c, size_t i) {
    return i >= c->a && i < c->b ? c->t->cpt[i] : OUT_OF_RANGE;
}
static uint16_t fl_at(const cursor *c, size_t i) { return i >= c->a && i < c->b ? c->t->flags[i] : 0; }

/* Ends a word at end; returns its length. */
static size_t emit(cursor *c, size_t end) {
    size_t len = end - c->prev;
    if (len > 0 && gg_pieces_push(c->out, len)) c->oom = 1;
    c->prev = end;
    return len;
}

/* 's 't 'm 'd 're 've 'll at pos (lowercased first when fold): the length matched, 0 when none. */
static size_t contraction(const cursor *c, size_t pos, int fold) {
    if (cp_at(c, pos) != '\'' || pos + 1 >= c->b) return 0;
    uint32_t x = cp_at(c, pos + 1), y = pos + 2 < c->b ? cp_at(c, pos + 2) : OUT_OF_RANGE;
    if (fold) {
        x = (uint32_t)utf8proc_tolower((utf8proc_int32_t)x);
        if (y != OUT_OF_RANGE) y = (uint32_t)utf8proc_tolower((utf8proc_int32_t)y);
    }
    if (x == 's' || x == 't' || x == 'm' || x == 'd') return 2;
    if (y != OUT_OF_RANGE && ((x == 'r' && y == 'e') || (x == 'v' && y == 'e') || (x == 'l' && y == 'l')))
        return 3;
    return 0;
}

/* The end of both patterns at pos: whitespace (\s+(?!\S) leaves the last space of a run for the word after
 * it; a run that ends the piece is one word), else one character alone. Returns the position after the
 * word. */
static size_t whitespace_or_one(cursor *c, size_t pos) {
    size_t n = 0;
    while (fl_at(c, pos + n) & GG_CPT_WHITESPACE)
        n++;
    size_t end = n == 0 ? pos + 1 : n > 1 && pos + n < c->b ? pos + n - 1 : pos + n;
    emit(c, end);
    return end;
}

/* GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static void split_gpt2(cursor *c) {
    const uint16_t other = GG_CPT_WHITESPACE | GG_CPT_LETTER | GG_CPT_NUMBER;
    for (size_t pos = c->a; pos < c->b && !c->oom;) {
        uint32_t cp = cp_at(c, pos);
        size_t k = contraction(c, pos, 0);
        if (k) {
            pos += emit(c, pos + k);
            continue;
        }
        uint16_t f = cp == ' ' ? fl_at(c, pos + 1) : fl_at(c, pos);
        uint16_t cls = f & GG_CPT_LETTER ? GG_CPT_LETTER : f & GG_CPT_NUMBER ? GG_CPT_NUMBER : 0;
        if (cls || (!(f & other) && f)) { /* a run of letters, of digits, or of anything else */
            pos += cp == ' ';
            while (cls ? (f & cls) : (!(f & other) && f))
                f = fl_at(c, ++pos);
            emit(c, pos);
            continue;
        }
        pos = whitespace_or_one(c, pos);
    }
}

/* The Llama 3 family: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
 * ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ ; digits: 3 or 1 per word; marks: \p{M} counts as a
 * letter. */
static void split_llama3(cursor *c, int digits, int marks) {
    const uint16_t letter = GG_CPT_LETTER | (marks ? GG_CPT_MARK : 0);
    const uint16_t other = GG_CPT_WHITESPACE | GG_CPT_NUMBER | letter;
    for (size_t pos = c->a; pos < c->b && !c->oom;) {
        uint32_t cp = cp_at(c, pos);
        uint16_t f = fl_at(c, pos);
        size_t k = contraction(c, pos, 1);
        if (k) {
            pos += emit(c, pos + k);
            continue;
        }
        if (cp != '\r' && cp != '\n' && !(f & GG_CPT_NUMBER) && ((f | fl_at(c, pos + 1)) & letter)) {
            for (pos++; fl_at(c, pos) & letter;)
                pos++; /* one optional lead character, then letters */
            emit(c, pos);
            continue;
        }
        if (f & GG_CPT_NUMBER) {
            for (size_t start = pos; fl_at(c, pos) & GG_CPT_NUMBER;)
                if (++pos - start >= (size_t)digits) {
                    emit(c, pos);
                    start = pos;
                }
            emit(c, pos);
            continue;
        }
        uint16_t f2 = cp == ' ' ? fl_at(c, pos + 1) : f;
        if (!(f2 & other) && f) { /* punctuation and symbols, with the newlines after them */
            pos += cp == ' ';
            while (!(f2 & other) && f2)
                f2 = fl_at(c, ++pos);
            for (uint32_t x = cp_at(c, pos); x == '\r' || x == '\n'; x = cp_at(c, ++pos)) {
            }
            emit(c, pos);
            continue;
        }
        size_t n = 0, after_newline = 0;
        for (; fl_at(c, pos + n) & GG_CPT_WHITESPACE; n++)
            if (cp_at(c, pos + n) == '\r' || cp_at(c, pos + n) == '\n') after_newline = pos + n + 1;
        if (after_newline) { /* \s*[\r\n]+ : up to the last newline of the run */
            pos = after_newline;
            emit(c, pos);
            continue;
        }
        pos = whitespace_or_one(c, pos);
    }
}

int gg_split_custom(gg_split_kind kind, const gg_text *t, const gg_pieces *in, gg_pieces *out) {
    size_t start = 0;
    for (size_t i = 0; i < in->n; i++) {
        cursor c = {t, start, start + in->len[i], start, out, 0};
        switch (kind) {
        case GG_SPLIT_GPT2: split_gpt2(&c); break;
        case GG_SPLIT_LLAMA3: split_llama3(&c, 3, 0); break;
        case GG_SPLIT_QWEN2: split_llama3(&c, 1, 0); break;
        case GG_SPLIT_QWEN35: split_llama3(&c, 1, 1); break;
        default: return -1;
        }
        if (c.oom) return -1;
        start = c.b;
    }
    return 0;
}
