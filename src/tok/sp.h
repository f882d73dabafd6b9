/* SentencePiece (.model files): the parsed model and its normalizer, shared by sp_model.c, sp_norm.c and
 * sp_encode.c. Everything here mirrors libsentencepiece so ids agree exactly. */
#ifndef AV_TOK_SP_H
#define AV_TOK_SP_H

#include "tok_util.h"

enum { AV_SP_UNIGRAM = 1, AV_SP_BPE = 2 };

/* A precompiled normalization map: a Darts-clone double-array trie of source strings whose values index
 * NUL-terminated replacements (SentencePiece's precompiled_charsmap, also HF's "Precompiled" normalizer). */
typedef struct tok_charsmap {
    uint32_t *units; /* (n_units) double-array units */
    size_t n_units;
    char *norm; /* (n_norm) replacement strings, NUL-separated */
    size_t n_norm;
} tok_charsmap;

/* Parses the blob: u32 trie byte size, the trie units, then the replacement strings. */
int tok_charsmap_parse(tok_charsmap *m, const void *blob, size_t size, const char *name, av_err *err);
void tok_charsmap_free(tok_charsmap *m);
/* Prefix matches of key in the trie, shortest first: calls back with (match length, replacement, its length);
 * stops when the callback returns nonzero. Returns the number of matches visited. */
typedef int (*tok_charsmap_fn)(void *ctx, size_t match_len, const char *rep, size_t rep_len);
size_t tok_charsmap_prefixes(const tok_charsmap *m, const char *key, size_t len, tok_charsmap_fn fn,
                             void *ctx);

typedef struct av_tok_sp {
    int model_type; /* AV_SP_UNIGRAM or AV_SP_BPE */
    int byte_fallback;
    int add_dummy_prefix, remove_extra_ws, escape_ws, ws_suffix;
    tok_charsmap charsmap; /* n_units == 0: identity */
    char **orig;           /* (n_vocab) pieces as the model spells them ("▁the") */
    int *orig_lens;        /* (n_vocab) */
    tok_strmap normal;     /* NORMAL, USER_DEFINED and UNUSED pieces: what the model matches */
    tok_strmap reserved;   /* CONTROL, UNKNOWN and BYTE pieces (looked up first, as PieceToId does) */
    tok_trie user;         /* USER_DEFINED pieces (matched whole, never split or normalized) */
    int n_user;
    tok_trie trie;              /* unigram: normal pieces -> id */
    float min_score, max_score; /* over NORMAL pieces, FLT_MAX / FLT_MIN when none (as libsentencepiece) */
    int has_unused;
    int split_at_spaces; /* no matchable piece has a space symbol right after another character (sp_encode.c)
                          */
} av_tok_sp;

/* SentencePiece normalization of valid or invalid UTF-8 text into out (spaces escaped as "▁"). */
int tok_sp_normalize(const av_tok_sp *sp, const char *text, size_t len, tok_buf *out, av_err *err);
/* Longest user-defined symbol at the start of s, 0 when none. */
size_t tok_sp_user_prefix(const av_tok_sp *sp, const char *s, size_t n);

#endif
