/* Hugging Face pre-tokenizers: BertPreTokenizer, ByteLevel, Metaspace, Split, Digits, Whitespace,
 * WhitespaceSplit, Punctuation, CharDelimiterSplit and Sequence. Each turns every unfinished split into
 * smaller ones using the same match lists and split behaviours (removed, isolated, merged with previous/next,
 * contiguous) as tokenizers' NormalizedString::split; empty splits are dropped. */
#include "hf.h"

#include <stdlib.h>
#include <string.h>

int hf_splits_push(hf_splits *s, hf_split sp) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        hf_split *v = realloc(s->v, sizeof *v * cap);
        if (!v) return -1;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = sp;
    return 0;
}

/* (range, is_match) pieces covering a string. */
typedef struct piece {
    size_t start, end;
    int match;
} piece;

typedef struct pieces {
    piece *v;
    size_t n, cap;
} pieces;

static int pieces_push(pieces *p, size_t start, size_t end, int match) {
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        piece *v = realloc(p->v, sizeof *v * cap);
        if (!v) return -1;
        p->v = v;
        p->cap = cap;
    }
    p->v[p->n++] = (piece){start, end, match};
    return 0;
}

/* Matches -> covering pieces (as tokenizers' Pattern::find_matches for regexes and strings). */
static int pieces_from_matches(const hf_matches *m, size_t n, pieces *out) {
    size_t prev = 0;
    if (n == 0) return pieces_push(out, 0, 0, 0);
    for (size_t i = 0; i < m->n; i++) {
        if (prev != m->v[i].start && pieces_push(out, prev, m->v[i].start, 0)) return -1;
        if (pieces_push(out, m->v[i].start, m->v[i].end, 1)) return -1;
        prev = m->v[i].end;
    }
    if (prev != n && pieces_push(out, prev, n, 0)) return -1;
    return 0;
}

/* Character predicates: every matching character is its own match. */
typedef int (*char_pred)(const hf_pretok *pt, uint32_t cp);

static int pieces_from_pred(const hf_pretok *pt, char_pred pred, const char *s, size_t n, pieces *out) {
    size_t last = 0, i = 0;
    while (i < n) {
        uint32_t cp;
        int k = av_utf8_decode(s + i, n - i, &cp);
        if (!k) k = 1, cp = 0xFFFD;
        if (pred(pt, cp)) {
            if (last < i && pieces_push(out, last, i, 0)) return -1;
            if (pieces_push(out, i, i + (size_t)k, 1)) return -1;
            last = i + (size_t)k;
        }
        i += (size_t)k;
    }
    if (n > last && pieces_push(out, last, n, 0)) return -1;
    return 0;
}

/* Applies a behaviour to covering pieces and appends the resulting non-empty splits. */
static int emit_behavior(const pieces *p, hf_behavior b, int invert, const hf_split *src, hf_splits *dst) {
    piece *v = p->v;
    size_t n = p->n;
    if (invert)
        for (size_t i = 0; i < n; i++)
            v[i].match = !v[i].match;
    pieces out = {0};
    int rc = 0, prev_match = 0;
    switch (b) {
    case HF_SPLIT_REMOVED:
        for (size_t i = 0; i < n && !rc; i++)
            if (!v[i].match) rc = pieces_push(&out, v[i].start, v[i].end, 0);
        break;
    case HF_SPLIT_ISOLATED:
        for (size_t i = 0; i < n && !rc; i++)
            rc = pieces_push(&out, v[i].start, v[i].end, 0);
        break;
    case HF_SPLIT_MERGED_WITH_PREVIOUS:
        for (size_t i = 0; i < n && !rc; i++) {
            if (v[i].match && !prev_match && out.n)
                out.v[out.n - 1].end = v[i].end;
            else
                rc = pieces_push(&out, v[i].start, v[i].end, 0);
            prev_match = v[i].match;
        }
        break;
    case HF_SPLIT_MERGED_WITH_NEXT:
        for (size_t k = n; k-- > 0 && !rc;) { /* right to left, then reversed */
            if (v[k].match && !prev_match && out.n)
                out.v[out.n - 1].start = v[k].start;
            else
                rc = pieces_push(&out, v[k].start, v[k].end, 0);
            prev_match = v[k].match;
        }
        for (size_t i = 0, j = out.n ? out.n - 1 : 0; !rc && i < j; i++, j--) {
            piece t = out.v[i];
            out.v[i] = out.v[j];
            out.v[j] = t;
        }
        break;
    case HF_SPLIT_CONTIGUOUS:
        for (size_t i = 0; i < n && !rc; i++) {
            if (v[i].match == prev_match && out.n)
                out.v[out.n - 1].end = v[i].end;
            else
                rc = pieces_push(&out, v[i].start, v[i].end, 0);
            prev_match = v[i].match;
        }
        break;
    }
    for (size_t i = 0; i < out.n && !rc; i++) {
        if (out.v[i].end == out.v[i].start) continue;
        hf_split sp = {src->off + out.v[i].start, out.v[i].end - out.v[i].start, -1,
                       (uint8_t)(src->first && out.v[i].start == 0)};
        rc = hf_splits_push(dst, sp);
    }
    free(out.v);
    return rc;
}

static int pred_ws(const hf_pretok *pt, uint32_t c) { return (void)pt, hf_is_whitespace(c); }
static int pred_bert_punct(const hf_pretok *pt, uint32_t c) { return (void)pt, hf_is_bert_punct(c); }
static int pred_numeric(const hf_pretok *pt, uint32_t c) { return (void)pt, hf_is_numeric(c); }
static int pred_delim(const hf_pretok *pt, uint32_t c) { return c == pt->delimiter; }

/* Splits one split by a predicate or pattern with a behaviour. */
static int split_one(const hf_pretok *pt, const hf_split *src, hf_splits *dst, char_pred pred,
                     const hf_pattern *pat, const hf_regex *re, hf_behavior b, int invert, av_err *err) {
    const char *s = dst->arena.p + src->off;
    pieces p = {0};
    int rc = 0;
    if (pred) {
        rc = pieces_from_pred(pt, pred, s, src->len, &p);
    } else {
        hf_matches m = {0};
        rc =
            re ? hf_regex_find_all(re, s, src->len, &m, err) : hf_pattern_find_all(pat, s, src->len, &m, err);
        if (rc) {
            free(m.v);
            return -1;
        }
        rc = pieces_from_matches(&m, src->len, &p);
        free(m.v);
    }
    if (!rc) rc = emit_behavior(&p, b, invert, src, dst);
    free(p.v);
    return rc ? av_errf(err, "out of memory pre-tokenizing") : 0;
}

/* Replaces the bytes of a split by new text appended to the arena. */
static int rewrite(hf_splits *s, hf_split *sp, const tok_buf *text) {
    size_t off = s->arena.n;
    if (tok_buf_add(&s->arena, text->p, text->n)) return -1;
    sp->off = off;
    sp->len = text->n;
    return 0;
}

static int bytelevel_map(hf_splits *s, hf_split *sp) {
    tok_buf t = {0};
    for (size_t i = 0; i < sp->len; i++)
        if (tok_buf_add_cp(&t, hf_byte_to_char((uint8_t)s->arena.p[sp->off + i]))) {
            tok_buf_free(&t);
            return -1;
        }
    int rc = rewrite(s, sp, &t);
    tok_buf_free(&t);
    return rc;
}

static int apply_one(const hf_pretok *pt, const hf_split *src, hf_splits *dst, av_err *err) {
    hf_split cur = *src;
    switch (pt->type) {
    case HF_PRE_BERT: {
        hf_splits tmp = {0};
        tmp.arena = dst->arena; /* share the arena while splitting on whitespace */
        int rc = split_one(pt, &cur, &tmp, pred_ws, NULL, NULL, HF_SPLIT_REMOVED, 0, err);
        dst->arena = tmp.arena;
        for (size_t i = 0; rc == 0 && i < tmp.n; i++)
            rc = split_one(pt, &tmp.v[i], dst, pred_bert_punct, NULL, NULL, HF_SPLIT_ISOLATED, 0, err);
        free(tmp.v);
        return rc;
    }
    case HF_PRE_WHITESPACE_SPLIT:
        return split_one(pt, &cur, dst, pred_ws, NULL, NULL, HF_SPLIT_REMOVED, 0, err);
    case HF_PRE_PUNCTUATION:
        return split_one(pt, &cur, dst, pred_bert_punct, NULL, NULL, pt->behavior, 0, err);
    case HF_PRE_DIGITS:
        return split_one(pt, &cur, dst, pred_numeric, NULL, NULL,
                         pt->individual_digits ? HF_SPLIT_ISOLATED : HF_SPLIT_CONTIGUOUS, 0, err);
    case HF_PRE_CHAR_DELIMITER:
        return split_one(pt, &cur, dst, pred_delim, NULL, NULL, HF_SPLIT_REMOVED, 0, err);
    case HF_PRE_WHITESPACE: return split_one(pt, &cur, dst, NULL, NULL, pt->regex, HF_SPLIT_REMOVED, 1, err);
    case HF_PRE_SPLIT:
        return split_one(pt, &cur, dst, NULL, &pt->pattern, NULL, pt->behavior, pt->invert, err);
    case HF_PRE_BYTELEVEL: {
        size_t first = dst->n;
        if (pt->add_prefix_space && (cur.len == 0 || dst->arena.p[cur.off] != ' ')) {
            tok_buf t = {0};
            int bad = tok_buf_addc(&t, ' ') || tok_buf_add(&t, dst->arena.p + cur.off, cur.len) ||
                      rewrite(dst, &cur, &t);
            tok_buf_free(&t);
            if (bad) return av_errf(err, "out of memory");
        }
        if (pt->use_regex) {
            if (split_one(pt, &cur, dst, NULL, NULL, pt->regex, HF_SPLIT_ISOLATED, 0, err)) return -1;
        } else if (cur.len && hf_splits_push(dst, cur)) {
            return av_errf(err, "out of memory");
        }
        for (size_t i = first; i < dst->n; i++)
            if (bytelevel_map(dst, &dst->v[i])) return av_errf(err, "out of memory");
        return 0;
    }
    case HF_PRE_METASPACE: {
        tok_buf t = {0};
        size_t rlen = strlen(pt->replacement);
        const char *s = dst->arena.p + cur.off;
        int starts = cur.len >= rlen && rlen && memcmp(s, pt->replacement, rlen) == 0;
        int bad = 0;
        /* (the replacement of ' ' happens first, so a leading space counts as starting with it) */
        if (cur.len && s[0] == ' ') starts = 1;
        if (!starts && (pt->prepend_scheme == HF_PREPEND_ALWAYS ||
                        (pt->prepend_scheme == HF_PREPEND_FIRST && cur.first)))
            bad = tok_buf_add(&t, pt->replacement, rlen);
        for (size_t i = 0; i < cur.len && !bad; i++)
            bad = s[i] == ' ' ? tok_buf_add(&t, pt->replacement, rlen) : tok_buf_addc(&t, s[i]);
        if (!bad) bad = rewrite(dst, &cur, &t);
        tok_buf_free(&t);
        if (bad) return av_errf(err, "out of memory");
        if (!pt->split) return cur.len ? (hf_splits_push(dst, cur) ? av_errf(err, "out of memory") : 0) : 0;
        hf_pattern pat = {pt->replacement, rlen, NULL};
        return split_one(pt, &cur, dst, NULL, &pat, NULL, HF_SPLIT_MERGED_WITH_NEXT, 0, err);
    }
    case HF_PRE_SEQUENCE: break; /* handled by hf_pretok_apply */
    }
    return av_errf(err, "internal: unknown pre-tokenizer %d", (int)pt->type);
}

int hf_pretok_apply(const hf_pretok *pt, hf_splits *splits, av_err *err) {
    if (pt->type == HF_PRE_SEQUENCE) {
        for (int i = 0; i < pt->n_items; i++)
            if (hf_pretok_apply(&pt->items[i], splits, err)) return -1;
        return 0;
    }
    hf_splits out = {0};
    out.arena = splits->arena;
    int rc = 0;
    for (size_t i = 0; i < splits->n && rc == 0; i++) {
        if (splits->v[i].id >= 0) {
            if (hf_splits_push(&out, splits->v[i])) rc = av_errf(err, "out of memory");
            continue;
        }
        rc = apply_one(pt, &splits->v[i], &out, err);
    }
    free(splits->v);
    splits->v = out.v;
    splits->n = out.n;
    splits->cap = out.cap;
    splits->arena = out.arena;
    return rc;
}

void hf_pretok_free(hf_pretok *pt) {
    if (!pt) return;
    hf_regex_free(pt->regex);
    free(pt->replacement);
    hf_pattern_free(&pt->pattern);
    for (int i = 0; i < pt->n_items; i++)
        hf_pretok_free(&pt->items[i]);
    free(pt->items);
    memset(pt, 0, sizeof *pt);
}
