/* Unigram language-model segmentation (T5, Marian, ALBERT...): the Viterbi best path over all vocabulary
 * pieces that match at each character, as libsentencepiece's EncodeOptimized and Hugging Face's
 * encode_optimized compute it. best[i] is the best path ending at byte i; candidates are visited by start
 * position, then by length, and a candidate replaces the current best only when strictly better. */
#include "models.h"

#include <stdlib.h>

int tok_segs_push(tok_segs *s, uint32_t start, uint32_t end, int32_t id) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        tok_seg *v = realloc(s->v, sizeof *v * cap);
        if (!v) return -1;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = (tok_seg){start, end, id};
    return 0;
}

typedef struct best_node {
    int32_t id;
    int32_t start; /* -1: not reached yet */
    float fscore;
    double dscore;
} best_node;

int tok_unigram_encode(const tok_unigram *u, const char *s, size_t n, tok_segs *out, av_err *err) {
    if (n == 0) return 0;
    if (n > (size_t)INT32_MAX - 1) return av_errf(err, "text is too long (%zu bytes)", n);
    best_node *best = malloc(sizeof *best * (n + 1));
    if (!best) return av_errf(err, "out of memory (unigram lattice of %zu bytes)", n);
    for (size_t i = 0; i <= n; i++)
        best[i] = (best_node){-1, -1, 0.0f, 0.0};
    const int sp = u->fscores != NULL;
    const float unk_f = (float)u->min_score - 10.0f;
    const double unk_d = u->min_score - 10.0;
    const float max_f = (float)u->max_score;
    for (size_t start = 0; start < n;) {
        const float till_f = best[start].fscore;
        const double till_d = best[start].dscore;
        size_t mblen;
        if (sp) {
            mblen = (size_t)tok_utf8_len_lead((uint8_t)s[start]);
        } else {
            uint32_t cp;
            int k = av_utf8_decode(s + start, n - start, &cp);
            mblen = k ? (size_t)k : 1;
        }
        if (mblen > n - start) mblen = n - start;
        int has_single = 0;
        int32_t node = 0;
        for (size_t end = start; end < n;) {
            node = tok_trie_step(u->trie, node, (uint8_t)s[end]);
            if (node < 0) break;
            end++;
            int32_t id = u->trie->nodes[node].id;
            if (id < 0) continue;
            size_t length = end - start;
            best_node *tgt = &best[end];
            if (sp) {
                if (u->types[id] == AV_TOKTYPE_UNUSED) continue;
                /* as libsentencepiece: a double score (the user-defined bonus is a double expression), summed
                 * in double with the float path score, stored back as float */
                double score = u->types[id] == AV_TOKTYPE_USER_DEFINED ? (double)((float)length * max_f) - 0.1
                                                                       : (double)u->fscores[id];
                double cand = score + (double)till_f;
                if (tgt->start < 0 || cand > (double)tgt->fscore) {
                    tgt->fscore = (float)cand;
                    tgt->start = (int32_t)start;
                    tgt->id = id;
                }
            } else {
                double cand = u->dscores[id] + till_d;
                if (tgt->start < 0 || cand > tgt->dscore) {
                    tgt->dscore = cand;
                    tgt->start = (int32_t)start;
                    tgt->id = id;
                }
            }
            if (length == mblen) has_single = 1;
        }
        if (!has_single) {
            best_node *tgt = &best[start + mblen];
            if (sp) {
                float cand = unk_f + till_f;
                if (tgt->start < 0 || cand > tgt->fscore)
                    *tgt = (best_node){u->unk_id, (int32_t)start, cand, 0.0};
            } else {
                double cand = unk_d + till_d;
                if (tgt->start < 0 || cand > tgt->dscore)
                    *tgt = (best_node){u->unk_id, (int32_t)start, 0.0f, cand};
            }
        }
        start += mblen;
    }
    /* backtrack, then reverse the appended segments */
    size_t first = out->n;
    for (size_t end = n; end > 0;) {
        best_node *b = &best[end];
        if (b->start < 0 || (size_t)b->start >= end) { /* cannot happen: every position is reached */
            free(best);
            return av_errf(err, "unigram: broken lattice at byte %zu", end);
        }
        if (tok_segs_push(out, (uint32_t)b->start, (uint32_t)end, b->id)) {
            free(best);
            return av_errf(err, "out of memory");
        }
        end = (size_t)b->start;
    }
    for (size_t i = first, j = out->n - 1; i < j; i++, j--) {
        tok_seg tmp = out->v[i];
        out->v[i] = out->v[j];
        out->v[j] = tmp;
    }
    free(best);
    return 0;
}
