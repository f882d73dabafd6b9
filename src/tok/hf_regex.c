/* Regular expressions through oniguruma (the engine Hugging Face tokenizers uses), the literal/regex pattern
 * search shared by the normalizers and pre-tokenizers, Unicode character classes through utf8proc, and
 * GPT-2's byte-to-unicode alphabet. */
#define _GNU_SOURCE /* memmem */
#include "hf.h"

#include <oniguruma.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

struct hf_regex {
    regex_t *re;
};

static pthread_once_t onig_once = PTHREAD_ONCE_INIT;

static void onig_setup(void) {
    OnigEncoding enc[2] = {ONIG_ENCODING_UTF8, ONIG_ENCODING_ASCII};
    onig_initialize(enc, 2);
}

static int compile(const char *pattern, size_t len, OnigEncoding enc, OnigSyntaxType *syntax, hf_regex **out,
                   av_err *err) {
    pthread_once(&onig_once, onig_setup);
    hf_regex *r = calloc(1, sizeof *r);
    if (!r) return av_errf(err, "out of memory");
    OnigErrorInfo einfo;
    int rc = onig_new(&r->re, (const OnigUChar *)pattern, (const OnigUChar *)pattern + len, ONIG_OPTION_NONE,
                      enc, syntax, &einfo);
    if (rc != ONIG_NORMAL) {
        OnigUChar msg[ONIG_MAX_ERROR_MESSAGE_LEN];
        onig_error_code_to_str(msg, rc, &einfo);
        free(r);
        return av_errf(err, "bad regex '%.*s': %s", (int)(len > 200 ? 200 : len), pattern, (const char *)msg);
    }
    *out = r;
    return 0;
}

int hf_regex_compile(const char *pattern, size_t len, hf_regex **out, av_err *err) {
    return compile(pattern, len, ONIG_ENCODING_UTF8, ONIG_SYNTAX_DEFAULT, out, err);
}

int hf_regex_compile_bytes(const char *pattern, size_t len, hf_regex **out, av_err *err) {
    return compile(pattern, len, ONIG_ENCODING_ASCII, ONIG_SYNTAX_PERL, out, err);
}

void hf_regex_free(hf_regex *re) {
    if (!re) return;
    onig_free(re->re);
    free(re);
}

static int matches_push(hf_matches *m, size_t start, size_t end) {
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        hf_match *v = realloc(m->v, sizeof *v * cap);
        if (!v) return -1;
        m->v = v;
        m->cap = cap;
    }
    m->v[m->n++] = (hf_match){start, end};
    return 0;
}

int hf_regex_find_all(const hf_regex *re, const char *s, size_t n, hf_matches *out, av_err *err) {
    out->n = 0;
    OnigRegion *region = onig_region_new();
    if (!region) return av_errf(err, "out of memory");
    const OnigUChar *str = (const OnigUChar *)s, *end = str + n;
    size_t pos = 0;
    size_t last_match_end = (size_t)-1;
    int rc = 0;
    while (pos <= n) {
        int r = onig_search(re->re, str, end, str + pos, end, region, ONIG_OPTION_NONE);
        if (r == ONIG_MISMATCH) break;
        if (r < 0) {
            OnigUChar msg[ONIG_MAX_ERROR_MESSAGE_LEN];
            onig_error_code_to_str(msg, r);
            rc = av_errf(err, "regex search failed: %s", (const char *)msg);
            break;
        }
        size_t ms = (size_t)region->beg[0], me = (size_t)region->end[0];
        if (ms == me && last_match_end == me) { /* no empty match right after a match: step one character */
            if (pos >= n) break;
            uint32_t cp;
            int k = av_utf8_decode(s + pos, n - pos, &cp);
            pos += k ? (size_t)k : 1;
            continue;
        }
        if (matches_push(out, ms, me)) {
            rc = av_errf(err, "out of memory");
            break;
        }
        pos = me;
        last_match_end = me;
        if (ms == me) { /* an empty match: the next search must move on */
            if (pos >= n) break;
        }
    }
    onig_region_free(region, 1);
    return rc;
}

int hf_pattern_find_all(const hf_pattern *p, const char *s, size_t n, hf_matches *out, av_err *err) {
    if (p->re) return hf_regex_find_all(p->re, s, n, out, err);
    out->n = 0;
    if (p->len == 0) return 0;
    for (size_t i = 0; i + p->len <= n;) {
        const char *hit = memmem(s + i, n - i, p->str, p->len);
        if (!hit) break;
        size_t at = (size_t)(hit - s);
        if (matches_push(out, at, at + p->len)) return av_errf(err, "out of memory");
        i = at + p->len;
    }
    return 0;
}

void hf_pattern_free(hf_pattern *p) {
    free(p->str);
    hf_regex_free(p->re);
    memset(p, 0, sizeof *p);
}

/* ---- Unicode classes ---- */

int hf_is_whitespace(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
           c == 0x3000;
}

int hf_is_punctuation(uint32_t c) {
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO;
}

int hf_is_bert_punct(uint32_t c) {
    if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126))
        return 1;
    return hf_is_punctuation(c);
}

int hf_is_control(uint32_t c) {
    if (c == '\t' || c == '\n' || c == '\r') return 0;
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return k == UTF8PROC_CATEGORY_CC || k == UTF8PROC_CATEGORY_CF || k == UTF8PROC_CATEGORY_CN ||
           k == UTF8PROC_CATEGORY_CO || k == UTF8PROC_CATEGORY_CS;
}

int hf_is_numeric(uint32_t c) {
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO;
}

int hf_is_alnum(uint32_t c) {
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO) ||
           (k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO);
}

int hf_is_mark_nonspacing(uint32_t c) {
    return utf8proc_category((utf8proc_int32_t)c) == UTF8PROC_CATEGORY_MN;
}

int hf_is_cjk(uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) ||
           (c >= 0x2B820 && c <= 0x2CEAF) || (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* ---- GPT-2 byte alphabet: printable Latin-1 bytes stand for themselves, the other 68 bytes map in order to
 * U+0100.. (0x00-0x20 -> U+0100-U+0120, 0x7F-0xA0 -> U+0121-U+0142, 0xAD -> U+0143) ---- */

uint32_t hf_byte_to_char(uint8_t b) {
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE) return b;
    if (b <= 0x20) return 0x100u + b;
    if (b >= 0x7F && b <= 0xA0) return 0x121u + (uint32_t)(b - 0x7F);
    return 0x143; /* 0xAD */
}

int hf_char_to_byte(uint32_t cp) {
    if ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF))
        return (int)cp;
    if (cp >= 0x100 && cp <= 0x120) return (int)(cp - 0x100);
    if (cp >= 0x121 && cp <= 0x142) return (int)(cp - 0x121 + 0x7F);
    if (cp == 0x143) return 0xAD;
    return -1;
}

/* GPT-2's pattern. gpt-3-encoder runs it as a JavaScript regex, where \s also matches U+FEFF but not U+0085;
 * js_whitespace spells \s out that way so its ids agree with that package. */
int hf_gpt2_regex(int js_whitespace, hf_regex **out, av_err *err) {
    static const char hf[] =
        "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
#define JS_WS                                                                                                \
    "\\t\\n\\x0B\\f\\r "                                                                                     \
    "\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}\\x{FEFF}"
    static const char js[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" JS_WS "\\p{L}\\p{N}]+|[" JS_WS
                             "]+(?![^" JS_WS "])|[" JS_WS "]+";
#undef JS_WS
    const char *p = js_whitespace ? js : hf;
    return hf_regex_compile(p, strlen(p), out, err);
}
