/* Hugging Face normalizers: NFC/NFD/NFKC/NFKD (utf8proc), Lowercase, StripAccents, BertNormalizer, Replace,
 * Prepend, Strip, Precompiled (SentencePiece charsmaps, applied per grapheme as tokenizers' spm_precompiled
 * does) and Sequence. Input is valid UTF-8 (the pipeline sanitizes it first). */
#include "hf.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

static int oom(av_err *err) { return av_errf(err, "out of memory normalizing text"); }

static int unicode_form(const char *s, size_t n, utf8proc_option_t opt, tok_buf *out, av_err *err) {
    out->n = 0;
    if (n == 0) return tok_buf_reserve(out, 0) ? oom(err) : 0;
    utf8proc_uint8_t *dst = NULL;
    utf8proc_ssize_t k =
        utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &dst, opt | UTF8PROC_STABLE);
    if (k < 0) {
        free(dst);
        return av_errf(err, "unicode normalization failed: %s", utf8proc_errmsg(k));
    }
    int rc = tok_buf_add(out, dst, (size_t)k);
    free(dst);
    return rc ? oom(err) : 0;
}

/* Applies a per-character function: fn writes the replacement of cp (possibly nothing) into out. */
typedef int (*char_fn)(const hf_norm *nm, uint32_t cp, const char *raw, int len, tok_buf *out);

static int map_chars(const hf_norm *nm, const char *s, size_t n, char_fn fn, tok_buf *out, av_err *err) {
    out->n = 0;
    if (tok_buf_reserve(out, n + 8)) return oom(err);
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int k = av_utf8_decode(s + i, n - i, &cp);
        if (!k) return av_errf(err, "internal: invalid UTF-8 reached a normalizer");
        if (fn(nm, cp, s + i, k, out)) return oom(err);
        i += (size_t)k;
    }
    return 0;
}

static int add_lower(tok_buf *out, uint32_t cp) {
    if (cp == 0x130)
        return tok_buf_add(out, "i\xCC\x87", 3); /* the one unconditional multi-character lowercase */
    return tok_buf_add_cp(out, (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp));
}

static int fn_lower(const hf_norm *nm, uint32_t cp, const char *raw, int len, tok_buf *out) {
    (void)nm, (void)raw, (void)len;
    return add_lower(out, cp);
}

static int fn_strip_marks(const hf_norm *nm, uint32_t cp, const char *raw, int len, tok_buf *out) {
    (void)nm, (void)cp;
    return hf_is_mark_nonspacing(cp) ? 0 : tok_buf_add(out, raw, (size_t)len);
}

static int fn_bert_clean(const hf_norm *nm, uint32_t cp, const char *raw, int len, tok_buf *out) {
    if (nm->clean_text) {
        if (cp == 0 || cp == 0xFFFD || hf_is_control(cp)) return 0;
        if (hf_is_whitespace(cp)) return tok_buf_addc(out, ' ');
    }
    if (nm->chinese && hf_is_cjk(cp)) {
        if (tok_buf_addc(out, ' ') || tok_buf_add(out, raw, (size_t)len)) return -1;
        return tok_buf_addc(out, ' ');
    }
    return tok_buf_add(out, raw, (size_t)len);
}

static int strip_ws(const char *s, size_t n, int left, int right, tok_buf *out, av_err *err) {
    size_t a = 0, b = n;
    uint32_t cp;
    while (left && a < b) {
        int k = av_utf8_decode(s + a, b - a, &cp);
        if (!k || !hf_is_whitespace(cp)) break;
        a += (size_t)k;
    }
    while (right && b > a) {
        size_t j = b - 1;
        while (j > a && ((uint8_t)s[j] & 0xC0) == 0x80)
            j--;
        int k = av_utf8_decode(s + j, b - j, &cp);
        if (!k || !hf_is_whitespace(cp)) break;
        b = j;
    }
    out->n = 0;
    return tok_buf_add(out, s + a, b - a) ? oom(err) : 0;
}

static int replace_all(const hf_norm *nm, const char *s, size_t n, tok_buf *out, av_err *err) {
    hf_matches m = {0};
    out->n = 0;
    int rc = hf_pattern_find_all(&nm->pattern, s, n, &m, err);
    size_t clen = strlen(nm->content), prev = 0;
    for (size_t i = 0; rc == 0 && i < m.n; i++) {
        if (tok_buf_add(out, s + prev, m.v[i].start - prev) || tok_buf_add(out, nm->content, clen))
            rc = oom(err);
        prev = m.v[i].end;
    }
    if (rc == 0 && tok_buf_add(out, s + prev, n - prev)) rc = oom(err);
    free(m.v);
    return rc;
}

/* spm_precompiled's transform: the replacement of the shortest trie prefix of chunk, if any. */
typedef struct first_ctx {
    const char *rep;
    size_t rep_len;
    int found;
} first_ctx;

static int take_first(void *ctx, size_t match_len, const char *rep, size_t rep_len) {
    (void)match_len;
    first_ctx *c = ctx;
    c->rep = rep;
    c->rep_len = rep_len;
    c->found = 1;
    return 1;
}

static int precompiled(const hf_norm *nm, const char *s, size_t n, tok_buf *out, av_err *err) {
    out->n = 0;
    if (tok_buf_reserve(out, n + 8)) return oom(err);
    utf8proc_int32_t state = 0, prev_cp = -1;
    size_t g_start = 0;
    for (size_t i = 0; i <= n;) {
        uint32_t cp = 0;
        int k = 0;
        int brk = 1;
        if (i < n) {
            k = av_utf8_decode(s + i, n - i, &cp);
            if (!k) return av_errf(err, "internal: invalid UTF-8 reached a normalizer");
            brk = prev_cp < 0 ? 0 : utf8proc_grapheme_break_stateful(prev_cp, (utf8proc_int32_t)cp, &state);
        }
        if (brk && i > g_start) { /* the grapheme s[g_start, i) */
            const char *g = s + g_start;
            size_t glen = i - g_start;
            first_ctx c = {NULL, 0, 0};
            if (glen < 6) tok_charsmap_prefixes(&nm->charsmap, g, glen, take_first, &c);
            if (c.found) {
                if (tok_buf_add(out, c.rep, c.rep_len)) return oom(err);
            } else {
                for (size_t j = 0; j < glen;) {
                    uint32_t ch;
                    int cl = av_utf8_decode(g + j, glen - j, &ch);
                    first_ctx cc = {NULL, 0, 0};
                    tok_charsmap_prefixes(&nm->charsmap, g + j, (size_t)cl, take_first, &cc);
                    if (cc.found ? tok_buf_add(out, cc.rep, cc.rep_len) : tok_buf_add(out, g + j, (size_t)cl))
                        return oom(err);
                    j += (size_t)cl;
                }
            }
            g_start = i;
        }
        if (i == n) break;
        prev_cp = (utf8proc_int32_t)cp;
        i += (size_t)k;
    }
    return 0;
}

int hf_norm_apply(const hf_norm *nm, const char *s, size_t n, tok_buf *out, av_err *err) {
    switch (nm->type) {
    case HF_NORM_NFC: return unicode_form(s, n, UTF8PROC_COMPOSE, out, err);
    case HF_NORM_NFD: return unicode_form(s, n, UTF8PROC_DECOMPOSE, out, err);
    case HF_NORM_NFKC: return unicode_form(s, n, UTF8PROC_COMPOSE | UTF8PROC_COMPAT, out, err);
    case HF_NORM_NFKD: return unicode_form(s, n, UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT, out, err);
    case HF_NORM_LOWERCASE: return map_chars(nm, s, n, fn_lower, out, err);
    case HF_NORM_STRIP_ACCENTS: return map_chars(nm, s, n, fn_strip_marks, out, err);
    case HF_NORM_STRIP: return strip_ws(s, n, nm->left, nm->right, out, err);
    case HF_NORM_REPLACE: return replace_all(nm, s, n, out, err);
    case HF_NORM_PRECOMPILED: return precompiled(nm, s, n, out, err);
    case HF_NORM_PREPEND:
        out->n = 0;
        if (n && tok_buf_add(out, nm->content, strlen(nm->content))) return oom(err);
        return tok_buf_add(out, s, n) ? oom(err) : 0;
    case HF_NORM_BERT: {
        /* clean text and CJK spacing, then (strip accents: NFD and drop Mn), then lowercase */
        tok_buf a = {0}, b = {0};
        int rc = map_chars(nm, s, n, fn_bert_clean, &a, err);
        if (rc == 0 && nm->strip_accents) {
            rc = unicode_form(a.p, a.n, UTF8PROC_DECOMPOSE, &b, err);
            if (rc == 0) rc = map_chars(nm, b.p, b.n, fn_strip_marks, &a, err);
        }
        if (rc == 0 && nm->lowercase)
            rc = map_chars(nm, a.p, a.n, fn_lower, out, err);
        else if (rc == 0) {
            out->n = 0;
            if (tok_buf_add(out, a.p, a.n)) rc = oom(err);
        }
        tok_buf_free(&a);
        tok_buf_free(&b);
        return rc;
    }
    case HF_NORM_SEQUENCE: {
        tok_buf cur = {0}, next = {0};
        int rc = tok_buf_add(&cur, s, n) ? oom(err) : 0;
        for (int i = 0; rc == 0 && i < nm->n_items; i++) {
            rc = hf_norm_apply(&nm->items[i], cur.p, cur.n, &next, err);
            tok_buf tmp = cur;
            cur = next;
            next = tmp;
        }
        if (rc == 0) {
            out->n = 0;
            if (tok_buf_add(out, cur.p, cur.n)) rc = oom(err);
        }
        tok_buf_free(&cur);
        tok_buf_free(&next);
        return rc;
    }
    }
    return av_errf(err, "internal: unknown normalizer %d", (int)nm->type);
}

void hf_norm_free(hf_norm *nm) {
    if (!nm) return;
    hf_pattern_free(&nm->pattern);
    free(nm->content);
    tok_charsmap_free(&nm->charsmap);
    for (int i = 0; i < nm->n_items; i++)
        hf_norm_free(&nm->items[i]);
    free(nm->items);
    memset(nm, 0, sizeof *nm);
}
