/* Tokenizer internals.
 *
 * One struct serves every algorithm. The SentencePiece-style fields (pieces, lens, scores, types, bos, eos,
 * unk) are valid for every kind, so writers (GGUF) can read any tokenizer the same way; `kind` picks the
 * encoder:
 *
 *   AV_TOK_SPM_BPE  llama2.c / GGUF "llama" files: score-ordered merges exactly as llama2.c does them
 *                   (spm.c). Pieces are stored with ' ' for spaces (the SentencePiece "▁" is translated).
 *   AV_TOK_SP       a SentencePiece .model file (BPE or unigram), encoded exactly as libsentencepiece does
 *                   (sp_model.c parses it, sp_norm.c normalizes, sp_encode.c encodes). Pieces use ' ' too.
 *   AV_TOK_HF       a Hugging Face style pipeline: added tokens, normalizers, pre-tokenizers, a model
 *                   (WordPiece, BPE, Unigram, WordLevel), a post-processor (hf_*.c, wordpiece.c, bpe.c,
 *                   unigram.c). Pieces are the vocabulary strings as they are ("Ġthe", "##ing", "▁the").
 *   AV_TOK_GGUF     a GGUF file's own tokenizer ("llama" and "gpt2" vocabularies), encoded exactly as
 *                   llama.cpp's llama_tokenize (gguf_*.c). Pieces are spelled as in the file ("▁the",
 * "Ġthe").
 */
#ifndef AV_TOK_H
#define AV_TOK_H

#include "core/core.h"

typedef enum av_tok_kind { AV_TOK_SPM_BPE = 0, AV_TOK_SP = 1, AV_TOK_HF = 2, AV_TOK_GGUF = 3 } av_tok_kind;

/* Token types, numbered as SentencePiece and GGUF number them. */
enum {
    AV_TOKTYPE_NORMAL = 1,
    AV_TOKTYPE_UNKNOWN = 2,
    AV_TOKTYPE_CONTROL = 3,
    AV_TOKTYPE_USER_DEFINED = 4,
    AV_TOKTYPE_UNUSED = 5,
    AV_TOKTYPE_BYTE = 6
};

/* How the bytes of a token's text are derived from its piece (decoding and display labels). */
typedef enum av_tok_text {
    AV_TOK_TEXT_UNSET = -1, /* while loading: decided from the pipeline */
    AV_TOK_TEXT_SPACE = 0,  /* pieces hold ' ' for spaces; <0xNN> pieces are bytes */
    AV_TOK_TEXT_METASPACE,  /* "▁" stands for a space; <0xNN> pieces are bytes */
    AV_TOK_TEXT_BYTELEVEL,  /* GPT-2's byte-to-unicode alphabet ("Ġ" is a space) */
    AV_TOK_TEXT_WORDPIECE,  /* "##" marks a continuation; other pieces start a new word (a space before) */
    AV_TOK_TEXT_RAW         /* pieces are the text */
} av_tok_text;

struct av_tok_sp;
struct av_tok_hf;
struct av_tok_gguf;
struct av_gguf;
struct av_gguf_writer;

struct av_tokenizer {
    av_tok_kind kind;
    int n_vocab;
    char **pieces;     /* (n_vocab) NUL-terminated; see the kinds above for the spelling of spaces */
    int *lens;         /* (n_vocab) byte lengths */
    float *scores;     /* (n_vocab) merge priorities / log probabilities (0 when the format has none) */
    int *types;        /* (n_vocab) AV_TOKTYPE_* */
    int bos, eos, unk; /* -1 when the tokenizer has none */
    int byte_ids[256]; /* id of piece <0xNN>, -1 when absent */
    /* open-addressing hash: piece -> id (SPM kinds: matchable pieces only; HF: every piece) */
    int *hash_ids; /* (hash_cap) -1 empty */
    size_t hash_cap;
    int max_piece_len;

    /* decoded text of every token: bytes dec_buf[dec_off[id] .. dec_off[id + 1]) */
    av_tok_text text;
    char *dec_buf;
    uint32_t *dec_off;  /* (n_vocab + 1) */
    const char *family; /* GGUF tokenizer.ggml.model spelling: "llama", "gpt2", "bert", "t5" */
    const char
        *gguf_pre; /* byte-level BPE: tokenizer.ggml.pre ("gpt-2", "llama-bpe", "qwen2"), NULL if none fits */
    char **merges; /* (n_merges) "left right" BPE merges in rank order (writers); NULL when none */
    int n_merges;
    struct av_tok_sp *sp;   /* AV_TOK_SP */
    struct av_tok_hf *hf;   /* AV_TOK_HF */
    struct av_tok_gguf *gg; /* AV_TOK_GGUF */
    char *chat_template;    /* the model's Jinja chat template (GGUF tokenizer.chat_template,
                               tokenizer_config.json's chat_template), NULL when it has none */
    /* special tokens a tokenizer_config.json beside the tokenizer asks for (add_bos_token / add_eos_token;
     * GGUF tokenizers carry their own flags in gg): when specials_set, encoding with special tokens adds BOS
     * when add_bos and EOS when add_eos (Llama's rule), not the tokenizer's own special tokens
     * (av_tok_set_specials) */
    int specials_set, add_bos, add_eos;
};

/* Builds an SPM-BPE tokenizer taking ownership of pieces (each malloc'd) and scores/types (malloc'd, types
 * may be NULL: derived from the piece text). Frees everything on failure. */
int av_tok_spm_create(int n, char **pieces, float *scores, int *types, int bos, int eos, int unk,
                      av_tokenizer **out, av_err *err);
int av_tok_load_llama2c(const char *path, av_tokenizer **out, av_err *err);
/* Id of an exact piece, -1 when absent. */
int av_tok_find(const av_tokenizer *t, const char *piece, size_t len);

/* What a GGUF file says about its tokenizer: gguf_meta.c reads it, av_tok_from_gguf builds the tokenizer. */
typedef struct av_tok_gguf_spec {
    const char *model; /* tokenizer.ggml.model: "llama" (SentencePiece style), "gpt2" (byte-level BPE),
                          "bert" (WordPiece); NULL: "llama" */
    const char *pre;   /* tokenizer.ggml.pre, NULL when absent (llama.cpp's "default") */
    int n;             /* vocabulary size */
    char **pieces;     /* (n) tokenizer.ggml.tokens, malloc'd, spelled as in the file ("▁the", "Ġthe") */
    float *scores;     /* (n) tokenizer.ggml.scores or NULL */
    int *types;        /* (n) tokenizer.ggml.token_type (AV_TOKTYPE_*) or NULL */
    char **merges;     /* (n_merges) tokenizer.ggml.merges ("left right") or NULL */
    int n_merges;
    /* token ids from tokenizer.ggml.*_token_id; AV_TOK_ID_ABSENT when the key is absent: llama.cpp's defaults
     * apply (BOS 1, EOS 2, UNK 0 for "llama"; BOS = EOS = 11 for "gpt2"; none when past the vocabulary) */
    int bos, eos, unk;
    int fim[6]; /* fim_pre, fim_suf, fim_mid, fim_pad, fim_rep, fim_sep ids (name rules need them) */
    int add_bos, add_eos, add_space_prefix; /* tokenizer.ggml.add_*: 0/1, -1 when absent */
    const char *name; /* general.name (llama.cpp gives Phi-3 models' special tokens rstrip by name) */
    const char *chat_template; /* tokenizer.chat_template or NULL (copied) */
} av_tok_gguf_spec;

#define AV_TOK_ID_ABSENT (-2)

/* A spec with no tokens, every id absent and every flag -1. */
av_tok_gguf_spec av_tok_gguf_spec_init(void);
/* Builds the tokenizer (gguf_vocab.c). Ownership of pieces, scores, types and merges passes to the function,
 * which frees them on failure too (and clears them in spec). An unknown tokenizer.ggml.pre or model is an
 * error naming the supported ones; "bert" becomes a Hugging Face style WordPiece (not llama.cpp's). */
int av_tok_from_gguf(av_tok_gguf_spec *spec, av_tokenizer **out, av_err *err);
/* Reads tokenizer.ggml.* of an opened GGUF file and builds its tokenizer (gguf_meta.c). Returns 0 with *out
 * NULL when the file has no tokenizer or one of another kind (t5, rwkv...: --tokenizer can supply it). */
int av_tok_load_gguf(const struct av_gguf *g, av_tokenizer **out, av_err *err);
/* Writes the tokenizer as GGUF metadata (gguf_write.c): tokens, scores, types, merges, pre, special ids, the
 * add_bos/add_eos/add_space_prefix flags and the chat template; an error when llama.cpp would tokenize
 * differently (a byte-level pre-tokenizer without a tokenizer.ggml.pre name). */
int av_tok_write_gguf(struct av_gguf_writer *w, const av_tokenizer *t, av_err *err);
/* SentencePiece BPE from pieces/scores/types (sp_model.c); takes ownership of the arrays. */
int av_tok_sp_from_pieces(int n, char **pieces, float *scores, int *types, int add_dummy_prefix, int bos,
                          int eos, av_tokenizer **out, av_err *err);

/* Applies tokenizer_config.json's add_bos / add_eos flags (1 or 0; -1: not given, the tokenizer's own
 * behaviour for that end, av_tok_adds). Nothing changes when neither is given. */
void av_tok_set_specials(av_tokenizer *t, int add_bos, int add_eos);
/* What encoding with add_bos set adds: BOS in front, EOS at the end (tokenizer.c). */
void av_tok_adds(const av_tokenizer *t, int *bos, int *eos);

/* ---- shared construction helpers (tokenizer.c) ---- */

/* An empty tokenizer of a kind with n slots (pieces/lens/scores/types zeroed, bos/eos/unk -1). */
av_tokenizer *av_tok_alloc(av_tok_kind kind, int n, av_err *err);
/* Fills lens, max_piece_len, byte_ids and the hash; all_pieces: hash every piece (else only NORMAL,
 * USER_DEFINED and UNUSED ones, as SentencePiece matches them). Duplicate pieces: the first id wins. */
int av_tok_index(av_tokenizer *t, int all_pieces, av_err *err);
/* Builds dec_buf/dec_off from pieces and t->text. */
int av_tok_build_text(av_tokenizer *t, av_err *err);
/* Value of a "<0xNN>" piece, -1 when it is not one. */
int av_tok_byte_piece(const char *p, size_t len);

/* ---- loaders ---- */
int av_tok_load_sp_model(const char *path, av_tokenizer **out, av_err *err); /* sp_model.c */
int av_tok_load_sp_buffer(const void *data, size_t size, const char *name, av_tokenizer **out, av_err *err);
int av_tok_load_hf_json(const char *path, av_tokenizer **out, av_err *err); /* hf_json.c */
int av_tok_load_vocab_txt(const char *path, const char *dir, av_tokenizer **out,
                          av_err *err); /* vocab_files.c */
int av_tok_load_bpe_files(const char *vocab_json, const char *merges, int gpt3_compat, const char *dir,
                          av_tokenizer **out, av_err *err);

/* ---- encoders ---- */
/* llama2.c's encoder (spm.c): *ids malloc'd. */
int av_tok_spm_encode(const av_tokenizer *t, const char *text, size_t len, int add_bos, int32_t **ids,
                      size_t *n_ids, av_err *err);
typedef struct av_tok_ids {
    int32_t *v;
    size_t n, cap;
} av_tok_ids;
int av_tok_ids_push(av_tok_ids *ids, int32_t id);

int av_tok_sp_encode(const av_tokenizer *t, const char *text, size_t len, av_tok_ids *out, av_err *err);
int av_tok_hf_encode(const av_tokenizer *t, const char *text, size_t len, int add_special, av_tok_ids *out,
                     av_err *err);
int av_tok_gguf_encode(const av_tokenizer *t, const char *text, size_t len, int add_special, av_tok_ids *out,
                       av_err *err);
void av_tok_sp_free(struct av_tok_sp *sp, int n_vocab);
void av_tok_hf_free(struct av_tok_hf *hf);
void av_tok_gguf_free(struct av_tok_gguf *gg);

#endif
