/* WordPiece (BERT family), as tokenizers' WordPiece::tokenize: words longer than max_input_chars_per_word
 * characters become unk; otherwise take the longest vocabulary piece at the start of the word, then the
 * longest "##"-prefixed piece at each following position; if some position has none, the whole word is unk.
 */
#include "models.h"

#include <string.h>

int tok_wordpiece_init(tok_wordpiece *w, const av_tokenizer *t, const char *prefix, int unk_id, int max_chars,
                       av_err *err) {
    memset(w, 0, sizeof *w);
    w->unk_id = unk_id;
    w->max_chars = max_chars;
    if (tok_trie_init(&w->words) || tok_trie_init(&w->conts)) return av_errf(err, "out of memory");
    size_t plen = prefix ? strlen(prefix) : 0;
    for (int i = 0; i < t->n_vocab; i++) {
        const char *p = t->pieces[i];
        size_t n = (size_t)t->lens[i];
        if (n == 0) continue;
        /* a vocabulary entry is looked up whole: "##ing" serves continuations, and also a word "##ing" */
        if (tok_trie_insert(&w->words, p, n, i, 0)) return av_errf(err, "out of memory");
        if (plen && n > plen && memcmp(p, prefix, plen) == 0 &&
            tok_trie_insert(&w->conts, p + plen, n - plen, i, 0))
            return av_errf(err, "out of memory");
    }
    return 0;
}

void tok_wordpiece_free(tok_wordpiece *w) {
    tok_trie_free(&w->words);
    tok_trie_free(&w->conts);
}

int tok_wordpiece_word(const tok_wordpiece *w, const char *s, size_t n, av_tok_ids *out, av_err *err) {
    size_t chars = 0;
    for (size_t i = 0; i < n; i++)
        chars += ((uint8_t)s[i] & 0xC0) != 0x80;
    if ((int64_t)chars > w->max_chars) goto unk;
    size_t mark = out->n;
    for (size_t start = 0; start < n;) {
        const tok_trie *trie = start == 0 ? &w->words : &w->conts;
        int32_t node = 0, best = -1;
        size_t best_end = 0;
        for (size_t i = start; i < n; i++) {
            node = tok_trie_step(trie, node, (uint8_t)s[i]);
            if (node < 0) break;
            /* only ends on character boundaries count (the reference shortens by whole characters) */
            if (trie->nodes[node].id >= 0 && (i + 1 == n || ((uint8_t)s[i + 1] & 0xC0) != 0x80)) {
                best = trie->nodes[node].id;
                best_end = i + 1;
            }
        }
        if (best < 0) {
            out->n = mark;
            goto unk;
        }
        if (av_tok_ids_push(out, best)) return av_errf(err, "out of memory");
        start = best_end;
    }
    return 0;
unk:
    if (w->unk_id < 0)
        return av_errf(err, "word '%.*s' cannot be tokenized and there is no unk token",
                       (int)(n > 60 ? 60 : n), s);
    return av_tok_ids_push(out, w->unk_id) ? av_errf(err, "out of memory") : 0;
}
