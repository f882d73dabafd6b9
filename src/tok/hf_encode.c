/* The Hugging Face encoding pipeline, as tokenizers' Tokenizer::encode runs it for one sequence:
 *   1. split the raw text on added tokens that match unnormalized (leftmost-longest, with single_word,
 *      lstrip and rstrip), 2. normalize each remaining piece and split it on the normalized added tokens,
 *   3. pre-tokenize, 4. run the model on every word, 5. add the post-processor's special tokens.
 * Invalid UTF-8 input: every byte that does not start a valid character is replaced by U+FFFD first. */
#include "hf.h"

#include <stdlib.h>
#include <string.h>

/* ---- added tokens ---- */

static int word_char_before(const char *s, size_t at) { /* char before s[at] is alphanumeric or '_' */
    if (at == 0) return 0;
    size_t j = at - 1;
    while (j > 0 && ((uint8_t)s[j] & 0xC0) == 0x80)
        j--;
    uint32_t cp;
    if (!av_utf8_decode(s + j, at - j, &cp)) return 0;
    return cp == '_' || hf_is_alnum(cp);
}

static int word_char_at(const char *s, size_t n, size_t at) {
    uint32_t cp;
    if (at >= n || !av_utf8_decode(s + at, n - at, &cp)) return 0;
    return cp == '_' || hf_is_alnum(cp);
}

/* Longest added token starting at s[at]: its index in hf->added, and *len; -1 when none. */
static int added_at(const tok_trie *trie, const char *s, size_t n, size_t at, size_t *len) {
    int32_t node = 0, best = -1;
    for (size_t i = at; i < n; i++) {
        node = tok_trie_step(trie, node, (uint8_t)s[i]);
        if (node < 0) break;
        if (trie->nodes[node].id >= 0) {
            best = trie->nodes[node].id;
            *len = i + 1 - at;
        }
    }
    return best;
}

/* Splits src (an unfinished split) on the added tokens of trie, appending to dst. */
static int split_added(const av_tok_hf *hf, const tok_trie *trie, const hf_split *src, hf_splits *dst) {
    const char *s = dst->arena.p + src->off;
    size_t n = src->len, start_offset = 0;
    for (size_t pos = 0; pos < n;) {
        size_t mlen = 0;
        int k = added_at(trie, s, n, pos, &mlen);
        if (k < 0) {
            pos++;
            continue;
        }
        const hf_added *a = &hf->added[k];
        size_t start = pos, stop = pos + mlen;
        pos = stop; /* the automaton resumes after the match, whatever happens to it */
        if (a->single_word && (word_char_before(s, start) || word_char_at(s, n, stop))) continue;
        if (a->lstrip) {
            size_t ns = start;
            while (ns > 0) {
                size_t j = ns - 1;
                while (j > 0 && ((uint8_t)s[j] & 0xC0) == 0x80)
                    j--;
                uint32_t cp;
                if (!av_utf8_decode(s + j, ns - j, &cp) || !hf_is_whitespace(cp)) break;
                ns = j;
            }
            start = ns > start_offset ? ns : start_offset;
        }
        if (a->rstrip) {
            uint32_t cp;
            int cl;
            while (stop < n && (cl = av_utf8_decode(s + stop, n - stop, &cp)) && hf_is_whitespace(cp))
                stop += (size_t)cl;
        }
        if (start_offset < start &&
            hf_splits_push(dst, (hf_split){src->off + start_offset, start - start_offset, -1,
                                           (uint8_t)(src->first && start_offset == 0)}))
            return -1;
        if (hf_splits_push(dst, (hf_split){src->off + start, stop - start, a->id, 0})) return -1;
        start_offset = stop;
        if (pos < stop) pos = stop;
    }
    if (start_offset < n && hf_splits_push(dst, (hf_split){src->off + start_offset, n - start_offset, -1,
                                                           (uint8_t)(src->first && start_offset == 0)}))
        return -1;
    return 0;
}

/* ---- models ---- */

static int unigram_word(const av_tokenizer *t, const char *s, size_t n, av_tok_ids *out, av_err *err) {
    const av_tok_hf *hf = t->hf;
    tok_unigram u = {&hf->uni_trie, NULL, hf->uni_scores, NULL, t->unk, hf->uni_min, 0};
    tok_segs segs = {0};
    if (tok_unigram_encode(&u, s, n, &segs, err)) {
        free(segs.v);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < segs.n && !rc; i++) {
        size_t a = segs.v[i].start, b = segs.v[i].end;
        if (hf->uni_fuse_unk && segs.v[i].id == t->unk && t->unk >= 0)
            while (i + 1 < segs.n && segs.v[i + 1].id == t->unk)
                b = segs.v[++i].end;
        int32_t id =
            (segs.v[i].id == t->unk || segs.v[i].id < 0) ? av_tok_find(t, s + a, b - a) : segs.v[i].id;
        if (id < 0 && hf->uni_byte_fallback) {
            int ok = 1;
            for (size_t k = a; k < b; k++)
                ok &= t->byte_ids[(uint8_t)s[k]] >= 0;
            if (ok) {
                for (size_t k = a; k < b && !rc; k++)
                    rc = av_tok_ids_push(out, t->byte_ids[(uint8_t)s[k]]);
                continue;
            }
        }
        if (id < 0) id = t->unk;
        if (id < 0)
            rc = av_errf(err, "unigram: no piece for '%.*s' and no unk token", (int)(b - a), s + a);
        else
            rc = av_tok_ids_push(out, id);
    }
    free(segs.v);
    return rc;
}

static int model_word(const av_tokenizer *t, const char *s, size_t n, av_tok_ids *out, av_err *err) {
    const av_tok_hf *hf = t->hf;
    switch (hf->model) {
    case HF_MODEL_WORDPIECE: return tok_wordpiece_word(&hf->wp, s, n, out, err);
    case HF_MODEL_BPE: return tok_bpe_word(&hf->bpe, s, n, out, err);
    case HF_MODEL_UNIGRAM: return unigram_word(t, s, n, out, err);
    case HF_MODEL_WORDLEVEL: {
        int id = av_tok_find(t, s, n);
        if (id < 0) id = t->unk;
        if (id < 0)
            return av_errf(err, "word '%.*s' is not in the vocabulary and there is no unk token", (int)n, s);
        return av_tok_ids_push(out, id);
    }
    }
    return av_errf(err, "internal: unknown model %d", (int)hf->model);
}

/* ---- the pipeline ---- */

int av_tok_hf_encode(const av_tokenizer *t, const char *text, size_t len, int add_special, av_tok_ids *out,
                     av_err *err) {
    const av_tok_hf *hf = t->hf;
    hf_splits a = {0}, b = {0};
    tok_buf norm = {0};
    int rc = -1;
    if (tok_utf8_sanitize(text, len, &a.arena) || tok_buf_reserve(&a.arena, 0)) goto oom;
    if (add_special)
        for (int i = 0; i < hf->n_prefix; i++)
            if (av_tok_ids_push(out, hf->prefix[i])) goto oom;
    if (a.arena.n && hf_splits_push(&a, (hf_split){0, a.arena.n, -1, 1})) goto oom;
    /* 1. unnormalized added tokens */
    b.arena = a.arena;
    a.arena = (tok_buf){0};
    for (size_t i = 0; i < a.n; i++)
        if (hf->n_added_raw ? split_added(hf, &hf->added_raw, &a.v[i], &b) : hf_splits_push(&b, a.v[i]))
            goto oom;
    /* 2. normalize, then normalized added tokens */
    a.n = 0;
    a.arena = b.arena;
    b.arena = (tok_buf){0};
    for (size_t i = 0; i < b.n; i++) {
        hf_split sp = b.v[i];
        if (sp.id < 0 && hf->norm) {
            if (hf_norm_apply(hf->norm, a.arena.p + sp.off, sp.len, &norm, err)) goto fail;
            sp.off = a.arena.n;
            sp.len = norm.n;
            if (tok_buf_add(&a.arena, norm.p, norm.n)) goto oom;
        }
        if (sp.id < 0 && sp.len == 0) continue;
        if (sp.id < 0 && hf->n_added_norm) {
            if (split_added(hf, &hf->added_norm, &sp, &a)) goto oom;
        } else if (hf_splits_push(&a, sp)) {
            goto oom;
        }
    }
    /* 3. pre-tokenize */
    if (hf->pretok && hf_pretok_apply(hf->pretok, &a, err)) goto fail;
    /* 4. the model, word by word */
    for (size_t i = 0; i < a.n; i++) {
        if (a.v[i].id >= 0) {
            if (av_tok_ids_push(out, a.v[i].id)) goto oom;
        } else if (a.v[i].len && model_word(t, a.arena.p + a.v[i].off, a.v[i].len, out, err)) {
            goto fail;
        }
    }
    /* 5. post-processor */
    if (add_special)
        for (int i = 0; i < hf->n_suffix; i++)
            if (av_tok_ids_push(out, hf->suffix[i])) goto oom;
    rc = 0;
    goto done;
oom:
    av_errf(err, "out of memory encoding %zu bytes", len);
fail:
done:
    free(a.v);
    free(b.v);
    tok_buf_free(&a.arena);
    tok_buf_free(&b.arena);
    tok_buf_free(&norm);
    return rc;
}

void av_tok_hf_free(av_tok_hf *hf) {
    if (!hf) return;
    if (hf->norm) hf_norm_free(hf->norm);
    free(hf->norm);
    if (hf->pretok) hf_pretok_free(hf->pretok);
    free(hf->pretok);
    tok_wordpiece_free(&hf->wp);
    tok_bpe_free(&hf->bpe);
    tok_trie_free(&hf->uni_trie);
    free(hf->uni_scores);
    for (int i = 0; i < hf->n_added; i++)
        free(hf->added[i].content);
    free(hf->added);
    tok_trie_free(&hf->added_raw);
    tok_trie_free(&hf->added_norm);
    free(hf->prefix);
    free(hf->suffix);
    free(hf);
}
