/* Tokenizer internals. The SentencePiece-style BPE (scores, byte fallback) used by llama2.c and GGUF
 * "llama" tokenizers. Pieces are stored with ' ' for spaces (the GGUF/SentencePiece "▁" is translated). */
#ifndef AV_TOK_H
#define AV_TOK_H

#include "core/core.h"

typedef enum av_tok_kind { AV_TOK_SPM_BPE = 0 } av_tok_kind;

enum { AV_TOKTYPE_NORMAL = 1, AV_TOKTYPE_UNKNOWN = 2, AV_TOKTYPE_CONTROL = 3, AV_TOKTYPE_BYTE = 6 };

struct av_tokenizer {
    av_tok_kind kind;
    int n_vocab;
    char **pieces;  /* (n_vocab) NUL-terminated, ' ' for spaces */
    int *lens;      /* (n_vocab) byte lengths (pieces may hold NUL bytes? no: lengths kept for speed) */
    float *scores;  /* (n_vocab) */
    int *types;     /* (n_vocab) AV_TOKTYPE_* */
    int bos, eos, unk;
    int byte_ids[256]; /* id of piece <0xNN>, -1 when absent */
    /* open-addressing hash: piece -> id */
    int *hash_ids;  /* (hash_cap) -1 empty */
    size_t hash_cap;
    int max_piece_len;
};

/* Builds an SPM-BPE tokenizer taking ownership of pieces (each malloc'd) and scores/types (malloc'd, types may
 * be NULL: derived from the piece text). Frees everything on failure. */
int av_tok_spm_create(int n, char **pieces, float *scores, int *types, int bos, int eos, int unk,
                      av_tokenizer **out, av_err *err);
int av_tok_load_llama2c(const char *path, av_tokenizer **out, av_err *err);
/* Id of an exact piece, -1 when absent. */
int av_tok_find(const av_tokenizer *t, const char *piece, size_t len);

#endif
