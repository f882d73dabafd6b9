/* Subword models shared by the SentencePiece and Hugging Face paths: unigram Viterbi, BPE merges and
 * WordPiece longest-match. Each works on one pre-tokenized word (or a whole normalized sentence). */
#ifndef AV_TOK_MODELS_H
#define AV_TOK_MODELS_H

#include "tok_util.h"

/* A piece of the input: bytes [start, end) and its id (-1: not in the vocabulary). */
typedef struct tok_seg {
    uint32_t start, end;
    int32_t id;
} tok_seg;

typedef struct tok_segs {
    tok_seg *v;
    size_t n, cap;
} tok_segs;
int tok_segs_push(tok_segs *s, uint32_t start, uint32_t end, int32_t id);

/* ---- unigram (unigram.c): the best-scoring segmentation, computed as libsentencepiece's and HF's
 * "optimized" Viterbi do (ties keep the first candidate seen). ---- */
typedef struct tok_unigram {
    const tok_trie *trie; /* pieces -> ids */
    const float *fscores; /* SentencePiece: float scores and float sums, user-defined bonus, unused skipped */
    const double *dscores; /* Hugging Face: double scores and sums */
    const int *types;      /* (with fscores) AV_TOKTYPE_* of every id */
    int unk_id;
    double min_score, max_score;
} tok_unigram;

/* Appends the segments of s[0..n) to out; characters no piece covers become single-character segments with
 * id unk_id. */
int tok_unigram_encode(const tok_unigram *u, const char *s, size_t n, tok_segs *out, av_err *err);

/* ---- BPE with merge ranks (bpe.c): Hugging Face's algorithm (a heap ordered by rank, then position) ---- */
typedef struct tok_bpe {
    const av_tokenizer *t; /* vocabulary (av_tok_find must know every piece) */
    tok_pairmap merges;    /* (left id, right id) -> (rank, merged id) */
    char *cont_prefix;     /* continuing_subword_prefix or NULL */
    char *eow_suffix;      /* end_of_word_suffix or NULL */
    int byte_fallback, fuse_unk, ignore_merges;
    int gpt3_compat; /* look merges up the way gpt-3-encoder keys them ("a,b" strings) */
    uint8_t *comma;  /* (gpt3_compat: n_vocab) 1 when the piece holds a ',' */
    int unk_id;      /* -1: none */
} tok_bpe;

/* Tokenizes one word (already mapped to the model's alphabet) and appends ids. */
int tok_bpe_word(const tok_bpe *b, const char *s, size_t n, av_tok_ids *out, av_err *err);
void tok_bpe_free(tok_bpe *b);

/* ---- WordPiece (wordpiece.c): greedy longest match first, "##" continuations ---- */
typedef struct tok_wordpiece {
    tok_trie words; /* pieces without the prefix -> id */
    tok_trie conts; /* pieces that start with the prefix, stored without it -> id */
    int unk_id;
    int max_chars; /* longer words become unk */
} tok_wordpiece;

int tok_wordpiece_init(tok_wordpiece *w, const av_tokenizer *t, const char *prefix, int unk_id, int max_chars,
                       av_err *err);
int tok_wordpiece_word(const tok_wordpiece *w, const char *s, size_t n, av_tok_ids *out, av_err *err);
void tok_wordpiece_free(tok_wordpiece *w);

#endif
