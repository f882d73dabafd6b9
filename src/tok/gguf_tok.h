/* Tokenizers embedded in GGUF files (tokenizer.ggml.*), encoded exactly as llama.cpp's llama_tokenize does
 * with add_special and parse_special set (llama-vocab.cpp and unicode.cpp of the llama.cpp that
 * node-llama-cpp 3.21.1 ships; see docs/TOKENIZERS.md):
 *
 *   1. special, control, user-defined and unknown tokens are cut out of the text whole, longest first
 *      (gguf_encode.c: partition), honouring llama.cpp's lstrip/rstrip attributes;
 *   2. "llama" vocabularies (SentencePiece style): each remaining fragment gets a space in front when it
 * starts the text or follows a special token (add_space_prefix), spaces become U+2581, and pieces are merged
 * by score over every token of the vocabulary; characters no token covers become <0xNN> byte tokens
 * (gguf_encode.c);
 *   3. "gpt2" vocabularies (byte-level BPE): each fragment is split by the pre-tokenizer tokenizer.ggml.pre
 * names (gguf_pretok.c, gguf_split.c), mapped to GPT-2's byte alphabet and merged by rank (bpe.c), whole
 * words first when the variant ignores merges;
 *   4. BOS / EOS around the result as tokenizer.ggml.add_bos_token / add_eos_token say (llama.cpp's defaults
 *      when absent: BOS for "llama" vocabularies and for the llama3 and tekken pre-tokenizers).
 *
 * gguf_vocab.c builds the tokenizer from the metadata (av_tok_gguf_spec, tok.h) and applies llama.cpp's
 * name-based attribute rules; gguf_meta.c reads the metadata out of a GGUF file. */
#ifndef AV_TOK_GGUF_H
#define AV_TOK_GGUF_H

#include "hf.h"

/* llama.cpp's token attributes (llama_token_attr). */
enum {
    GG_ATTR_UNKNOWN = 1 << 0,
    GG_ATTR_UNUSED = 1 << 1,
    GG_ATTR_NORMAL = 1 << 2,
    GG_ATTR_CONTROL = 1 << 3,
    GG_ATTR_USER_DEFINED = 1 << 4,
    GG_ATTR_BYTE = 1 << 5,
    GG_ATTR_LSTRIP = 1 << 7,
    GG_ATTR_RSTRIP = 1 << 8
};

typedef enum gg_vocab { GG_VOCAB_SPM = 0, GG_VOCAB_BPE } gg_vocab;

/* How one step of a pre-tokenizer splits a piece of text (gguf_split.c). The custom splitters are llama.cpp's
 * hand-written equivalents of GPT-2's and Llama 3's patterns (they differ from a regex engine in a few corner
 * cases, which is why they are reproduced rather than replaced by the patterns). */
typedef enum gg_split_kind {
    GG_SPLIT_REGEX = 0, /* a pattern run on the category-collapsed text (gguf_pretok.c) */
    GG_SPLIT_GPT2,      /* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
    GG_SPLIT_LLAMA3,    /* (?i:'s|...)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
                           ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|... */
    GG_SPLIT_QWEN2,     /* as LLAMA3 with single digits */
    GG_SPLIT_QWEN35     /* as QWEN2 with combining marks (\p{M}) counted as letters */
} gg_split_kind;

enum { GG_MAX_STEPS = 4 };

/* A pre-tokenizer variant: the steps llama.cpp runs for a group of tokenizer.ggml.pre names, and the flags
 * those names set. */
typedef struct gg_pre_variant {
    const char *names; /* space-separated tokenizer.ggml.pre values; the first is the canonical one */
    int n_steps;
    gg_split_kind kind[GG_MAX_STEPS];
    const char *regex[GG_MAX_STEPS]; /* GG_SPLIT_REGEX steps: the pattern as llama.cpp writes it */
    uint8_t ignore_merges, add_bos;
} gg_pre_variant;

/* The variant of a tokenizer.ggml.pre value (NULL or "" -> llama.cpp's "default"); NULL when unknown. */
const gg_pre_variant *gg_pre_find(const char *name);
/* "default, gpt-2, llama-bpe, ..." (for messages). */
const char *gg_pre_names(void);

/* ---- code points as llama.cpp decodes them (gguf_split.c) ---- */

/* llama.cpp's category flags of a code point (unicode_cpt_flags: Unicode general category + White_Space). */
enum {
    GG_CPT_UNDEFINED = 0x0001,
    GG_CPT_NUMBER = 0x0002,
    GG_CPT_LETTER = 0x0004,
    GG_CPT_SEPARATOR = 0x0008,
    GG_CPT_MARK = 0x0010,
    GG_CPT_PUNCT = 0x0020,
    GG_CPT_SYMBOL = 0x0040,
    GG_CPT_CONTROL = 0x0080,
    GG_CPT_CATEGORIES = 0x00FF,
    GG_CPT_WHITESPACE = 0x0100
};
uint16_t gg_cpt_flags(uint32_t cp);

/* Text as code points, with their flags: the input of the splitters. Invalid UTF-8 bytes become U+FFFD one
 * byte at a time (llama.cpp accepts overlong forms and surrogates as they decode). */
typedef struct gg_text {
    uint32_t *cpt;   /* (n) */
    uint16_t *flags; /* (n) */
    size_t n;
} gg_text;
int gg_text_decode(gg_text *t, const char *s, size_t len);
void gg_text_free(gg_text *t);

/* A split of the code points: consecutive piece lengths summing to the text length. */
typedef struct gg_pieces {
    size_t *len;
    size_t n, cap;
} gg_pieces;
int gg_pieces_push(gg_pieces *p, size_t len);

/* Splits every piece of in (over t) with a custom splitter and appends the result to out. */
int gg_split_custom(gg_split_kind kind, const gg_text *t, const gg_pieces *in, gg_pieces *out);

/* ---- the tokenizer ---- */
typedef struct av_tok_gguf {
    gg_vocab vocab;
    const gg_pre_variant *pre; /* BPE */
    char *pre_name;            /* BPE: tokenizer.ggml.pre as the file spells it ("default" when absent) */
    int add_bos, add_eos, add_space_prefix, ignore_merges;
    uint16_t *attr;    /* (n_vocab) GG_ATTR_* after llama.cpp's name rules */
    int32_t *specials; /* (n_specials) matched whole in the text: longest text first, then lowest id */
    int n_specials;
    tok_trie special_trie;      /* special texts -> index in specials (which of them a text holds at all) */
    hf_regex *re[GG_MAX_STEPS]; /* compiled collapsed patterns of the variant's regex steps */
    tok_bpe bpe;                /* BPE merges */
} av_tok_gguf;

/* Fills g->attr, g->specials and g->special_trie of t (t->gg set, pieces indexed) and sets t->types from the
 * attributes (gguf_attr.c). fim_given[k]: the file gives fim id k (no name search for that group). */
int gg_build_attrs(av_tokenizer *t, const av_tok_gguf_spec *spec, const int fim_given[6], av_err *err);

/* Pre-tokenizes one fragment (BPE): the words, each already in GPT-2's byte alphabet, appended to words with
 * their byte lengths in lens. */
int gg_pretokenize(const av_tok_gguf *g, const char *s, size_t n, tok_buf *words, gg_pieces *lens,
                   av_err *err);
/* Compiles the variant's regex steps into g->re. */
int gg_pretok_compile(av_tok_gguf *g, av_err *err);

#endif
