/* Template text -> tokens, with the whitespace rules chat templates are written for (those of transformers
 * and
 * @huggingface/jinja):
 *
 *   - one trailing newline of the template is dropped;
 *   - lstrip_blocks: spaces and tabs from the start of a line up to "{%" or "{#" are dropped;
 *   - trim_blocks: the newline right after "%}", "#}" (and "-}") is dropped;
 *   - "{%-", "{{-", "{#-" drop the whitespace before the tag, "-%}", "-}}", "-#}" the whitespace after it;
 *   - transformers' {% generation %} / {% endgeneration %} markers are removed.
 *
 * "Whitespace" is JavaScript's (the reference's): ASCII space and \t-\r, U+00A0, U+1680, U+2000-U+200A,
 * U+2028, U+2029, U+202F, U+205F, U+3000 and U+FEFF. */
#include "jinja.h"

#include <stdlib.h>
#include <string.h>

/* Byte length of the whitespace character at s, 0 when there is none. */
static size_t ws_len(const char *s, size_t n) {
    uint8_t c = (uint8_t)s[0];
    if (c == ' ' || (c >= 9 && c <= 13)) return 1;
    if (n >= 2 && c == 0xC2 && (uint8_t)s[1] == 0xA0) return 2;
    if (n < 3) return 0;
    uint32_t cp = ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (uint32_t)(s[2] & 0x3F);
    if ((c & 0xF0) != 0xE0 || ((uint8_t)s[1] & 0xC0) != 0x80 || ((uint8_t)s[2] & 0xC0) != 0x80) return 0;
    int ws = cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
             cp == 0x205F || cp == 0x3000 || cp == 0xFEFF;
    return ws ? 3 : 0;
}

/* Byte length of the whitespace character ending at s[n - 1], 0 when there is none. */
static size_t ws_len_before(const char *s, size_t n) {
    for (size_t k = 1; k <= 3 && k <= n; k++)
        if (ws_len(s + n - k, k) == k) return k;
    return 0;
}

/* A line terminator for "^" in a multiline JavaScript regex: \n, \r, U+2028, U+2029. */
static size_t line_end_len(const char *s, size_t n) {
    if (s[0] == '\n' || s[0] == '\r') return 1;
    return n >= 3 && memcmp(s, "\xE2\x80", 2) == 0 && ((uint8_t)s[2] == 0xA8 || (uint8_t)s[2] == 0xA9) ? 3
                                                                                                       : 0;
}

/* Text with the original line of every byte. */
typedef struct lined {
    char *s;
    int *line; /* (n + 1) */
    size_t n;
} lined;

static int lined_init(jj_ctx *c, lined *l, size_t cap) {
    l->s = jj_alloc(c, cap + 1);
    l->line = jj_alloc(c, sizeof *l->line * (cap + 1));
    l->n = 0;
    return l->s && l->line ? 0 : -1;
}

static void lined_put(lined *l, const lined *from, size_t i) {
    l->s[l->n] = from->s[i];
    l->line[l->n++] = from->line[i];
}

static void lined_end(lined *l, const lined *from) { l->line[l->n] = from->line[from->n]; }

/* lstrip_blocks: drop [ \t]* at the start of a line when "{%", "{#" or "{-" follows. */
static int lstrip_blocks(jj_ctx *c, const lined *in, lined *out) {
    if (lined_init(c, out, in->n)) return -1;
    int line_start = 1;
    for (size_t i = 0; i < in->n;) {
        if (line_start) {
            size_t k = i;
            while (k < in->n && (in->s[k] == ' ' || in->s[k] == '\t'))
                k++;
            if (k + 1 < in->n && in->s[k] == '{' &&
                (in->s[k + 1] == '%' || in->s[k + 1] == '#' || in->s[k + 1] == '-'))
                i = k;
        }
        size_t t = line_end_len(in->s + i, in->n - i), len = t ? t : 1;
        for (size_t k = 0; k < len; k++)
            lined_put(out, in, i + k);
        i += len;
        line_start = t > 0;
    }
    lined_end(out, in);
    return 0;
}

/* trim_blocks: drop the newline right after "%}", "#}" or "-}". */
static int trim_blocks(jj_ctx *c, const lined *in, lined *out) {
    if (lined_init(c, out, in->n)) return -1;
    for (size_t i = 0; i < in->n; i++) {
        lined_put(out, in, i);
        if (in->s[i] == '}' && i > 0 && (in->s[i - 1] == '%' || in->s[i - 1] == '#' || in->s[i - 1] == '-') &&
            i + 1 < in->n && in->s[i + 1] == '\n')
            i++;
    }
    lined_end(out, in);
    return 0;
}

/* A {%-? (end)?generation -?%} marker at s: its length (the whitespace after it included), 0 when none. */
static size_t generation_tag(const char *s, size_t n, int *lstrip, int *rstrip, size_t *after) {
    if (n < 2 || s[0] != '{' || s[1] != '%') return 0;
    size_t k = 2, w;
    *lstrip = k < n && s[k] == '-';
    k += (size_t)*lstrip;
    while (k < n && (w = ws_len(s + k, n - k)))
        k += w;
    if (k + 3 <= n && memcmp(s + k, "end", 3) == 0 && k + 13 <= n && memcmp(s + k + 3, "generation", 10) == 0)
        k += 13;
    else if (k + 10 <= n && memcmp(s + k, "generation", 10) == 0)
        k += 10;
    else
        return 0;
    while (k < n && (w = ws_len(s + k, n - k)))
        k += w;
    *rstrip = k < n && s[k] == '-';
    k += (size_t)*rstrip;
    if (k + 2 > n || s[k] != '%' || s[k + 1] != '}') return 0;
    k += 2;
    *after = k;
    while (k < n && (w = ws_len(s + k, n - k)))
        k += w;
    return k;
}

static int strip_generation(jj_ctx *c, const lined *in, lined *out) {
    if (lined_init(c, out, in->n)) return -1;
    size_t last = 0;
    for (size_t i = 0; i < in->n; i++) {
        int lstrip, rstrip;
        size_t after, len = generation_tag(in->s + i, in->n - i, &lstrip, &rstrip, &after);
        if (!len) continue;
        size_t end = i, w;
        while (lstrip && end > last && (w = ws_len_before(in->s + last, end - last)))
            end -= w;
        for (size_t k = last; k < end; k++)
            lined_put(out, in, k);
        for (size_t k = i + after; !rstrip && k < i + len; k++)
            lined_put(out, in, k);
        last = i + len;
        i = last - 1;
    }
    for (size_t k = last; k < in->n; k++)
        lined_put(out, in, k);
    lined_end(out, in);
    return 0;
}

static int preprocess(jj_ctx *c, const char *tmpl, size_t len, lined *out) {
    lined a, b;
    if (len && tmpl[len - 1] == '\n') len--;
    if (lined_init(c, &a, len)) return -1;
    int line = 1;
    for (size_t i = 0; i < len; i++) {
        a.s[i] = tmpl[i];
        a.line[i] = line;
        line += tmpl[i] == '\n';
    }
    a.n = len;
    a.line[len] = line;
    if (lstrip_blocks(c, &a, &b) || trim_blocks(c, &b, &a) || strip_generation(c, &a, out)) return -1;
    out->s[out->n] = 0;
    return 0;
}

/* ---- tokens ---- */

typedef struct lexer {
    jj_ctx *c;
    const lined *src;
    size_t pos;
    jtoken *v;
    size_t n, cap;
    int curly; /* depth of { } inside {{ }} (a "}}" there closes two braces) */
} lexer;

static int push(lexer *L, jt_kind kind, const char *s, size_t n, size_t at) {
    if (L->n + 1 >= L->cap) {
        size_t cap = L->cap ? L->cap * 2 : 256;
        jtoken *v = jj_alloc(L->c, sizeof *v * cap);
        if (!v) return -1;
        if (L->n) memcpy(v, L->v, sizeof *v * L->n);
        L->v = v;
        L->cap = cap;
    }
    L->v[L->n++] = (jtoken){kind, s, n, L->src->line[at]};
    return 0;
}

static jt_kind last_kind(const lexer *L) { return L->n ? L->v[L->n - 1].kind : JT_EOF; }

/* "{%-" and friends: the text token before loses its trailing whitespace (and goes when empty). */
static void strip_before(lexer *L) {
    if (!L->n || L->v[L->n - 1].kind != JT_TEXT) return;
    jtoken *t = &L->v[L->n - 1];
    size_t w;
    while (t->n && (w = ws_len_before(t->s, t->n)))
        t->n -= w;
    if (!t->n) L->n--;
}

static void skip_ws(lexer *L) {
    size_t w;
    while (L->pos < L->src->n && (w = ws_len(L->src->s + L->pos, L->src->n - L->pos)))
        L->pos += w;
}

static int put_cp(jj_ctx *c, jj_buf *b, uint32_t cp) {
    char u[4];
    int n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    static const uint8_t lead[5] = {0, 0, 0xC0, 0xE0, 0xF0};
    for (int i = n - 1; i > 0; i--, cp >>= 6)
        u[i] = (char)(0x80 | (cp & 0x3F));
    u[0] = (char)(n == 1 ? cp : (lead[n] | cp));
    return jj_buf_add(c, b, u, (size_t)n);
}

/* One escape after a backslash at s (n bytes left): appends it, returns the bytes used or 0 when invalid. */
static size_t escape(jj_ctx *c, const char *s, size_t n, jj_buf *b) {
    static const char from[] = "ntrbfv'\"\\", to[] = "\n\t\r\b\f\v'\"\\";
    const char *k = memchr(from, s[0], sizeof from - 1);
    if (k) return jj_buf_add(c, b, &to[k - from], 1) ? 0 : 1;
    int len = s[0] == 'x' ? 2 : s[0] == 'u' ? 4 : 0;
    uint32_t cp, lo;
    if (!len || (size_t)len + 1 > n || av_hex_parse(s + 1, len, &cp)) return 0;
    size_t used = (size_t)len + 1;
    if (cp >= 0xD800 && cp < 0xDC00 && n >= used + 6 && s[used] == '\\' && s[used + 1] == 'u' &&
        !av_hex_parse(s + used + 2, 4, &lo) && lo >= 0xDC00 && lo < 0xE000) { /* a UTF-16 surrogate pair */
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        used += 6;
    } else if (cp >= 0xD800 && cp < 0xE000) {
        cp = 0xFFFD;
    }
    return put_cp(c, b, cp) ? 0 : used;
}

static int lex_string(lexer *L) {
    const char *s = L->src->s;
    char quote = s[L->pos];
    size_t start = L->pos++;
    jj_buf b = {0};
    while (L->pos < L->src->n && s[L->pos] != quote) {
        if (s[L->pos] != '\\') {
            if (jj_buf_add(L->c, &b, s + L->pos++, 1)) goto fail;
            continue;
        }
        size_t used = L->pos + 1 < L->src->n ? escape(L->c, s + L->pos + 1, L->src->n - L->pos - 1, &b) : 0;
        if (!used) {
            jj_fail(L->c, L->src->line[L->pos], "bad escape sequence in a string");
            goto fail;
        }
        L->pos += used + 1;
    }
    if (L->pos >= L->src->n) {
        jj_fail(L->c, L->src->line[start], "unterminated string");
        goto fail;
    }
    L->pos++;
    char *copy = jj_strndup(L->c, b.p ? b.p : "", b.n);
    size_t len = b.n;
    jj_buf_free(&b);
    return copy ? push(L, JT_STRING, copy, len, start) : -1;
fail:
    jj_buf_free(&b);
    return -1;
}

static int is_digit(char ch) { return ch >= '0' && ch <= '9'; }
static int is_word(char ch) {
    return is_digit(ch) || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
}

/* Digits, and a fraction when allowed: an INT or FLOAT token starting at start (which may hold a sign). */
static int lex_number(lexer *L, size_t start, int allow_fraction) {
    const char *s = L->src->s;
    while (L->pos < L->src->n && is_digit(s[L->pos]))
        L->pos++;
    jt_kind kind = JT_INT;
    if (allow_fraction && L->pos + 1 < L->src->n && s[L->pos] == '.' && is_digit(s[L->pos + 1])) {
        kind = JT_FLOAT;
        for (L->pos++; L->pos < L->src->n && is_digit(s[L->pos]);)
            L->pos++;
    }
    return push(L, kind, s + start, L->pos - start, start);
}

/* Operators and punctuation, longest first. */
static int lex_operator(lexer *L) {
    static const char *const ops[] = {"{%", "%}", "{{", "}}", "<=", ">=", "==", "!=", "**", "//",
                                      "(",  ")",  "{",  "}",  "[",  "]",  ",",  ".",  ":",  "|",
                                      "<",  ">",  "+",  "-",  "~",  "*",  "/",  "%",  "="};
    const char *s = L->src->s + L->pos;
    size_t left = L->src->n - L->pos;
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
        size_t len = strlen(ops[i]);
        if (len > left || memcmp(s, ops[i], len) != 0 || (!strcmp(ops[i], "}}") && L->curly > 0)) continue;
        jt_kind kind = !strcmp(ops[i], "{%")   ? JT_OPEN_STMT
                       : !strcmp(ops[i], "%}") ? JT_CLOSE_STMT
                       : !strcmp(ops[i], "{{") ? JT_OPEN_EXPR
                       : !strcmp(ops[i], "}}") ? JT_CLOSE_EXPR
                                               : JT_OP;
        if (kind == JT_OPEN_EXPR) L->curly = 0;
        if (kind == JT_OP && len == 1 && s[0] == '{') L->curly++;
        if (kind == JT_OP && len == 1 && s[0] == '}') L->curly--;
        L->pos += len;
        return push(L, kind, ops[i], len, L->pos - len);
    }
    return 1;
}

/* Text up to the next "{%", "{{" or "{#". */
static int lex_text(lexer *L) {
    const char *s = L->src->s;
    size_t end = L->pos;
    while (end < L->src->n && !(s[end] == '{' && end + 1 < L->src->n &&
                                (s[end + 1] == '%' || s[end + 1] == '{' || s[end + 1] == '#')))
        end++;
    if (end == L->pos) return 1;
    size_t start = L->pos;
    L->pos = end;
    return push(L, JT_TEXT, s + start, end - start, start);
}

static int lex_comment(lexer *L) {
    const char *s = L->src->s;
    size_t start = L->pos, p = L->pos + 2;
    int strip_b = p < L->src->n && s[p] == '-';
    p += (size_t)strip_b;
    size_t end = p;
    while (end + 1 < L->src->n && !(s[end] == '#' && s[end + 1] == '}'))
        end++;
    if (end + 1 >= L->src->n) return jj_fail(L->c, L->src->line[start], "comment without #}"), -1;
    int strip_a = end > p && s[end - 1] == '-';
    if (strip_b) strip_before(L);
    if (push(L, JT_COMMENT, s + p, end - p - (size_t)strip_a, start)) return -1;
    L->pos = end + 2;
    if (strip_a) skip_ws(L);
    return 0;
}

/* Inside a tag: "-%}" / "-}}", a sign, an operator, a string, a number or a name. */
static int lex_tag_token(lexer *L) {
    const char *s = L->src->s;
    size_t n = L->src->n, p = L->pos;
    char ch = s[p];
    if (ch == '-' && p + 2 < n && s[p + 2] == '}' && (s[p + 1] == '%' || s[p + 1] == '}')) {
        L->pos += 3;
        if (push(L, s[p + 1] == '%' ? JT_CLOSE_STMT : JT_CLOSE_EXPR, s[p + 1] == '%' ? "%}" : "}}", 2, p))
            return -1;
        skip_ws(L);
        return 0;
    }
    if (ch == '-' || ch == '+') {
        jt_kind last = last_kind(L);
        if (last == JT_TEXT || last == JT_EOF)
            return jj_fail(L->c, L->src->line[p], "unexpected '%c'", ch), -1;
        int binary = last == JT_NAME || last == JT_INT || last == JT_FLOAT || last == JT_STRING ||
                     (last == JT_OP && (L->v[L->n - 1].s[0] == ')' || L->v[L->n - 1].s[0] == ']'));
        if (!binary) { /* a sign: part of a number, or a unary operator */
            L->pos++;
            if (L->pos < n && is_digit(s[L->pos])) return lex_number(L, p, 1);
            return push(L, JT_UNARY, s + p, 1, p);
        }
    }
    int rc = lex_operator(L);
    if (rc <= 0) return rc;
    if (ch == '\'' || ch == '"') return lex_string(L);
    if (is_digit(ch)) return lex_number(L, p, !(last_kind(L) == JT_OP && L->v[L->n - 1].s[0] == '.'));
    if (is_word(ch)) {
        while (L->pos < n && is_word(s[L->pos]))
            L->pos++;
        return push(L, JT_NAME, s + p, L->pos - p, p);
    }
    return jj_fail(L->c, L->src->line[p], "unexpected character '%c'", ch), -1;
}

static int lex_all(lexer *L) {
    const char *s = L->src->s;
    size_t n = L->src->n;
    while (L->pos < n && !L->c->failed) {
        jt_kind last = last_kind(L);
        if (last == JT_EOF || last == JT_CLOSE_STMT || last == JT_CLOSE_EXPR || last == JT_COMMENT) {
            int rc = lex_text(L);
            if (rc <= 0) {
                if (rc < 0) return -1;
                continue;
            }
        }
        size_t p = L->pos;
        if (s[p] == '{' && p + 1 < n && s[p + 1] == '#') {
            if (lex_comment(L)) return -1;
            continue;
        }
        if (s[p] == '{' && p + 2 < n && s[p + 2] == '-' && (s[p + 1] == '%' || s[p + 1] == '{')) {
            strip_before(L);
            L->curly = 0;
            L->pos += 3;
            if (push(L, s[p + 1] == '%' ? JT_OPEN_STMT : JT_OPEN_EXPR, s[p + 1] == '%' ? "{%" : "{{", 2, p))
                return -1;
            continue;
        }
        skip_ws(L);
        if (L->pos >= n) return jj_fail(L->c, L->src->line[n], "the template ends inside a tag"), -1;
        if (lex_tag_token(L)) return -1;
    }
    return L->c->failed ? -1 : push(L, JT_EOF, "", 0, n);
}

int jj_lex(jj_ctx *c, const char *tmpl, size_t len, jtoken **toks, size_t *n) {
    lined src;
    if (preprocess(c, tmpl, len, &src)) return -1;
    c->src = src.s;
    c->src_line = src.line;
    lexer L = {c, &src, 0, NULL, 0, 0, 0};
    if (lex_all(&L)) return -1;
    *toks = L.v;
    *n = L.n;
    return 0;
}
