/* The Hugging Face tokenizer pipeline (tokenizer.json and the classic vocabulary files):
 *   added tokens -> normalizer -> pre-tokenizer -> model -> post-processor.
 * hf_regex.c holds the regular expressions (oniguruma) and Unicode helpers (utf8proc), hf_norm.c the
 * normalizers, hf_pretok.c the pre-tokenizers, hf_encode.c the pipeline and added tokens, hf_json.c the
 * tokenizer.json reader, vocab_files.c the other sources. */
#ifndef AV_TOK_HF_H
#define AV_TOK_HF_H

#include "models.h"
#include "sp.h"

/* ---- regular expressions (oniguruma) and Unicode properties (utf8proc) ---- */
typedef struct hf_regex hf_regex;

int hf_regex_compile(const char *pattern, size_t len, hf_regex **out, av_err *err);
/* A Perl-syntax pattern over bytes (every byte one character; \s is ASCII whitespace), for llama.cpp's
 * category-collapsed text (gguf_pretok.c). */
int hf_regex_compile_bytes(const char *pattern, size_t len, hf_regex **out, av_err *err);
void hf_regex_free(hf_regex *re);

/* A match: bytes [start, end). */
typedef struct hf_match {
    size_t start, end;
} hf_match;

typedef struct hf_matches {
    hf_match *v;
    size_t n, cap;
} hf_matches;

/* All non-overlapping matches of re in s, left to right (an empty match right after the previous match is
 * skipped, as the onig crate does). */
int hf_regex_find_all(const hf_regex *re, const char *s, size_t n, hf_matches *out, av_err *err);

/* A pattern: a literal string or a regex. */
typedef struct hf_pattern {
    char *str;
    size_t len;
    hf_regex *re; /* NULL: literal */
} hf_pattern;

int hf_pattern_find_all(const hf_pattern *p, const char *s, size_t n, hf_matches *out, av_err *err);
void hf_pattern_free(hf_pattern *p);

int hf_is_whitespace(uint32_t c);  /* Unicode White_Space (Rust's char::is_whitespace) */
int hf_is_punctuation(uint32_t c); /* Unicode P* categories */
int hf_is_bert_punct(uint32_t c);  /* ASCII punctuation or P* */
int hf_is_control(uint32_t c);     /* C* categories except \t \n \r (HF's BertNormalizer) */
int hf_is_numeric(uint32_t c);     /* N* categories */
int hf_is_alnum(uint32_t c);       /* L* or N* (Rust's char::is_alphanumeric, approximately) */
int hf_is_mark_nonspacing(uint32_t c);
int hf_is_cjk(uint32_t c); /* the CJK ranges of BERT's tokenize_chinese_chars */

/* GPT-2's byte-to-unicode alphabet. */
uint32_t hf_byte_to_char(uint8_t b);
int hf_char_to_byte(uint32_t cp); /* -1 when cp is not in the alphabet */

/* ---- normalizers ---- */
typedef enum hf_norm_type {
    HF_NORM_NFC,
    HF_NORM_NFD,
    HF_NORM_NFKC,
    HF_NORM_NFKD,
    HF_NORM_LOWERCASE,
    HF_NORM_STRIP_ACCENTS,
    HF_NORM_BERT,
    HF_NORM_REPLACE,
    HF_NORM_PREPEND,
    HF_NORM_STRIP,
    HF_NORM_PRECOMPILED,
    HF_NORM_SEQUENCE
} hf_norm_type;

typedef struct hf_norm {
    hf_norm_type type;
    int clean_text, chinese, strip_accents, lowercase; /* BertNormalizer */
    int left, right;                                   /* Strip */
    hf_pattern pattern;                                /* Replace */
    char *content;                                     /* Replace: replacement; Prepend: prefix */
    tok_charsmap charsmap;                             /* Precompiled */
    struct hf_norm *items;                             /* Sequence */
    int n_items;
} hf_norm;

/* Normalizes s into out (out is overwritten). */
int hf_norm_apply(const hf_norm *nm, const char *s, size_t n, tok_buf *out, av_err *err);
void hf_norm_free(hf_norm *nm); /* frees the contents, not nm itself */

/* ---- pre-tokenizers ---- */
typedef enum hf_pre_type {
    HF_PRE_BERT,
    HF_PRE_BYTELEVEL,
    HF_PRE_METASPACE,
    HF_PRE_SPLIT,
    HF_PRE_DIGITS,
    HF_PRE_WHITESPACE,
    HF_PRE_WHITESPACE_SPLIT,
    HF_PRE_PUNCTUATION,
    HF_PRE_CHAR_DELIMITER,
    HF_PRE_SEQUENCE
} hf_pre_type;

typedef enum hf_behavior {
    HF_SPLIT_REMOVED,
    HF_SPLIT_ISOLATED,
    HF_SPLIT_MERGED_WITH_PREVIOUS,
    HF_SPLIT_MERGED_WITH_NEXT,
    HF_SPLIT_CONTIGUOUS
} hf_behavior;

enum { HF_PREPEND_ALWAYS, HF_PREPEND_FIRST, HF_PREPEND_NEVER };

typedef struct hf_pretok {
    hf_pre_type type;
    int add_prefix_space, use_regex; /* ByteLevel */
    hf_regex *regex;                 /* ByteLevel (GPT-2's pattern), Whitespace */
    char *replacement;               /* Metaspace */
    int prepend_scheme, split;       /* Metaspace */
    hf_pattern pattern;              /* Split */
    hf_behavior behavior;            /* Split, Punctuation */
    int invert;                      /* Split */
    int individual_digits;           /* Digits */
    uint32_t delimiter;              /* CharDelimiterSplit */
    struct hf_pretok *items;         /* Sequence */
    int n_items;
} hf_pretok;

/* A piece of text on its way through the pipeline: bytes arena[off .. off + len). */
typedef struct hf_split {
    size_t off, len;
    int32_t id;    /* >= 0: an added token, final */
    uint8_t first; /* starts at offset 0 of the original text (Metaspace "first") */
} hf_split;

typedef struct hf_splits {
    hf_split *v;
    size_t n, cap;
    tok_buf arena;
} hf_splits;

int hf_splits_push(hf_splits *s, hf_split sp);
int hf_pretok_apply(const hf_pretok *pt, hf_splits *splits, av_err *err);
void hf_pretok_free(hf_pretok *pt); /* frees the contents, not pt itself */
/* The regex of GPT-2's ByteLevel pre-tokenizer; js_whitespace: \s as JavaScript spells it (gpt-3-encoder). */
int hf_gpt2_regex(int js_whitespace, hf_regex **out, av_err *err);

/* ---- the pipeline ---- */
typedef enum hf_model_type {
    HF_MODEL_WORDPIECE,
    HF_MODEL_BPE,
    HF_MODEL_UNIGRAM,
    HF_MODEL_WORDLEVEL
} hf_model_type;

typedef struct hf_added {
    char *content;
    size_t len;
    int32_t id;
    uint8_t single_word, lstrip, rstrip, normalized, special;
} hf_added;

typedef struct av_tok_hf {
    hf_norm *norm;     /* NULL: none */
    hf_pretok *pretok; /* NULL: none */
    hf_model_type model;
    tok_wordpiece wp;
    tok_bpe bpe;
    tok_trie uni_trie;
    double *uni_scores; /* (n_vocab) */
    double uni_min;
    int uni_byte_fallback, uni_fuse_unk;
    hf_added *added;
    int n_added;
    tok_trie added_raw;  /* non-normalized added tokens -> index in added */
    tok_trie added_norm; /* normalized added tokens (normalized content) -> index */
    int n_added_raw, n_added_norm;
    int32_t *prefix, *suffix; /* post-processor: ids around a single sequence */
    int n_prefix, n_suffix;
} av_tok_hf;

/* ---- tokenizer.json components (hf_json_parts.c); where names the file in messages ---- */
#include <jansson.h>
int hf_json_normalizer(const json_t *j, hf_norm *out, const char *where, av_err *err);
int hf_json_pretok(const json_t *j, hf_pretok *out, const char *where, av_err *err);
/* Post-processor -> ids added before and after a single sequence (appended to hf->prefix/suffix). */
int hf_json_post(const json_t *j, const av_tokenizer *t, av_tok_hf *hf, const char *where, av_err *err);
/* Decoder -> how token text is spelled (AV_TOK_TEXT_*); -1 when the decoder says nothing about it. */
int hf_json_decoder(const json_t *j, int *text, const char *where, av_err *err);
/* {"String": s} or {"Regex": r} */
int hf_json_pattern(const json_t *j, hf_pattern *out, const char *where, av_err *err);
/* Shared by the loaders (hf_json.c): ids of "bos"/"eos" from tokenizer_config.json in dir, the post-processor
 * or well-known piece names; the family and text spelling from the pipeline. */
void hf_guess_specials(av_tokenizer *t, const char *dir);
/* The tokenizer.ggml.pre name whose pre-tokenizer (and ignore_merges) hf has, or NULL (gguf_vocab.c). */
const char *hf_gguf_pre_name(const struct av_tok_hf *hf);
int hf_finish(av_tokenizer *t, const char *dir, av_err *err);

#endif
