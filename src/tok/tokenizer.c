/* Tokenizer front door: format detection, encoding dispatch, accessors and shared construction helpers. */
#define _GNU_SOURCE /* memmem */
#include "gguf_tok.h"
#include "hf.h"
#include "io/gguf.h"
#include "io/io.h"
#include "sp.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- construction helpers ---- */

av_tokenizer *av_tok_alloc(av_tok_kind kind, int n, av_err *err) {
    if (n <= 0) {
        av_errf(err, "tokenizer: empty vocabulary");
        return NULL;
    }
    av_tokenizer *t = calloc(1, sizeof *t);
    if (t) {
        t->kind = kind;
        t->n_vocab = n;
        t->bos = t->eos = t->unk = -1;
        t->pieces = calloc((size_t)n, sizeof *t->pieces);
        t->lens = calloc((size_t)n, sizeof *t->lens);
        t->scores = calloc((size_t)n, sizeof *t->scores);
        t->types = calloc((size_t)n, sizeof *t->types);
        for (int b = 0; b < 256; b++)
            t->byte_ids[b] = -1;
    }
    if (!t || !t->pieces || !t->lens || !t->scores || !t->types) {
        av_tokenizer_free(t);
        av_errf(err, "out of memory (vocabulary of %d)", n);
        return NULL;
    }
    return t;
}

int av_tok_byte_piece(const char *p, size_t len) {
    uint32_t v;
    if (len != 6 || p[0] != '<' || p[1] != '0' || p[2] != 'x' || p[5] != '>' || av_hex_parse(p + 3, 2, &v))
        return -1;
    return (int)v;
}

/* Appends the text of token id to b (see av_tok_text). */
static int token_text(const av_tokenizer *t, int id, tok_buf *b) {
    const char *p = t->pieces[id];
    size_t n = (size_t)t->lens[id];
    int ty = t->types[id];
    if (ty == AV_TOKTYPE_CONTROL || ty == AV_TOKTYPE_UNKNOWN) return 0;
    if (ty == AV_TOKTYPE_BYTE) {
        int v = av_tok_byte_piece(p, n);
        return v >= 0 ? tok_buf_addc(b, (char)v) : 0;
    }
    if (ty == AV_TOKTYPE_USER_DEFINED && (t->kind == AV_TOK_HF || t->kind == AV_TOK_GGUF))
        return tok_buf_add(b, p, n); /* added tokens: their text as it is */
    switch (t->text) {
    case AV_TOK_TEXT_METASPACE:
        for (size_t i = 0; i < n;) {
            if (i + 3 <= n && memcmp(p + i, "\xE2\x96\x81", 3) == 0) {
                if (tok_buf_addc(b, ' ')) return -1;
                i += 3;
            } else if (tok_buf_addc(b, p[i++])) {
                return -1;
            }
        }
        return 0;
    case AV_TOK_TEXT_BYTELEVEL:
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            int k = av_utf8_decode(p + i, n - i, &cp);
            int v = k ? hf_char_to_byte(cp) : -1;
            if (v >= 0 ? tok_buf_addc(b, (char)v) : tok_buf_add(b, p + i, k ? (size_t)k : 1)) return -1;
            i += k ? (size_t)k : 1;
        }
        return 0;
    case AV_TOK_TEXT_WORDPIECE:
        if (n >= 2 && p[0] == '#' && p[1] == '#') return tok_buf_add(b, p + 2, n - 2);
        return tok_buf_addc(b, ' ') || tok_buf_add(b, p, n);
    default: return tok_buf_add(b, p, n);
    }
}

int av_tok_build_text(av_tokenizer *t, av_err *err) {
    tok_buf b = {0};
    free(t->dec_off);
    free(t->dec_buf);
    t->dec_buf = NULL;
    t->dec_off = malloc(sizeof *t->dec_off * ((size_t)t->n_vocab + 1));
    if (!t->dec_off) return av_errf(err, "out of memory");
    for (int i = 0; i < t->n_vocab; i++) {
        t->dec_off[i] = (uint32_t)b.n;
        if (token_text(t, i, &b) || b.n > UINT32_MAX / 2) {
            tok_buf_free(&b);
            return av_errf(err, "out of memory");
        }
    }
    t->dec_off[t->n_vocab] = (uint32_t)b.n;
    if (tok_buf_reserve(&b, 0)) return av_errf(err, "out of memory");
    t->dec_buf = b.p;
    return 0;
}

int av_tok_ids_push(av_tok_ids *ids, int32_t id) {
    if (ids->n == ids->cap) {
        size_t cap = ids->cap ? ids->cap * 2 : 64;
        int32_t *v = realloc(ids->v, sizeof *v * cap);
        if (!v) return -1;
        ids->v = v;
        ids->cap = cap;
    }
    ids->v[ids->n++] = id;
    return 0;
}

void av_tokenizer_free(av_tokenizer *t) {
    if (!t) return;
    if (t->pieces)
        for (int i = 0; i < t->n_vocab; i++)
            free(t->pieces[i]);
    free(t->pieces);
    free(t->lens);
    free(t->scores);
    free(t->types);
    free(t->hash_ids);
    free(t->dec_buf);
    free(t->dec_off);
    for (int i = 0; i < t->n_merges; i++)
        free(t->merges[i]);
    free(t->merges);
    av_tok_sp_free(t->sp, t->n_vocab);
    av_tok_hf_free(t->hf);
    av_tok_gguf_free(t->gg);
    free(t->chat_template);
    free(t);
}

/* ---- loading: format detection ---- */

static int exists(const char *dir, const char *name, char *buf, size_t n) {
    return av_path_join(buf, n, dir, name) == 0 && access(buf, R_OK) == 0 && !av_path_is_dir(buf);
}

static int load_dir(const char *dir, av_tokenizer **out, av_err *err) {
    char a[4200], b[4200];
    if (exists(dir, "tokenizer.json", a, sizeof a)) return av_tok_load_hf_json(a, out, err);
    if (exists(dir, "vocab.txt", a, sizeof a)) return av_tok_load_vocab_txt(a, dir, out, err);
    if (exists(dir, "vocab.json", a, sizeof a) && exists(dir, "merges.txt", b, sizeof b))
        return av_tok_load_bpe_files(a, b, 0, dir, out, err);
    if (exists(dir, "encoder.json", a, sizeof a) && exists(dir, "vocab.bpe", b, sizeof b))
        return av_tok_load_bpe_files(a, b, 1, dir, out, err);
    if (exists(dir, "tokenizer.model", a, sizeof a)) return av_tok_load_sp_model(a, out, err);
    if (exists(dir, "tokenizer.bin", a, sizeof a)) return av_tok_load_llama2c(a, out, err);
    return av_errf(err,
                   "%s: no tokenizer found (looked for tokenizer.json, vocab.txt, vocab.json + merges.txt, "
                   "encoder.json + vocab.bpe, tokenizer.model, tokenizer.bin)",
                   dir);
}

/* A GGUF file: the tokenizer its metadata describes (the tensors are not needed). */
static int load_gguf(const char *path, av_tokenizer **out, av_err *err) {
    av_gguf g;
    if (av_gguf_open(path, &g, err)) return -1;
    int rc = av_tok_load_gguf(&g, out, err);
    if (rc == 0 && !*out)
        rc = av_errf(
            err,
            "%s: the GGUF file has no tokenizer attnviz reads (tokenizer.ggml.model llama, gpt2 or bert)",
            path);
    av_gguf_close(&g);
    return rc;
}

/* A JSON file: tokenizer.json, or a {token: id} vocabulary that needs its merges file beside it. */
static int load_json_file(const char *path, const char *head, size_t n, av_tokenizer **out, av_err *err) {
    if (memmem(head, n, "\"model\"", 7) || memmem(head, n, "\"added_tokens\"", 14) ||
        memmem(head, n, "\"normalizer\"", 12) || memmem(head, n, "\"version\"", 9))
        return av_tok_load_hf_json(path, out, err);
    char dir[4096], a[4200];
    if (av_path_dirname(path, dir, sizeof dir)) return av_errf(err, "%s: path too long", path);
    int encoder = strcmp(av_path_basename(path), "encoder.json") == 0;
    if ((encoder && exists(dir, "vocab.bpe", a, sizeof a)) || exists(dir, "merges.txt", a, sizeof a))
        return av_tok_load_bpe_files(path, a, encoder && strstr(a, "vocab.bpe") != NULL, dir, out, err);
    if (exists(dir, "vocab.bpe", a, sizeof a)) return av_tok_load_bpe_files(path, a, 1, dir, out, err);
    return av_errf(err,
                   "%s: a JSON vocabulary without merges.txt (or vocab.bpe) beside it; for a tokenizer.json, "
                   "the file needs a \"model\" object",
                   path);
}

/* add_bos_token / add_eos_token of the tokenizer_config.json next to the tokenizer (in dir), when present. */
static int apply_config(const char *dir, av_tokenizer *t, av_err *err) {
    char path[4200];
    if (t->kind == AV_TOK_GGUF) return 0; /* tokenizer.ggml.add_bos_token / add_eos_token (gguf_meta.c) */
    if (!exists(dir, "tokenizer_config.json", path, sizeof path)) return 0;
    json_t *cfg;
    if (av_json_load_file(path, &cfg, err)) return -1;
    json_t *b = json_object_get(cfg, "add_bos_token"), *e = json_object_get(cfg, "add_eos_token");
    int rc = 0;
    if ((b && !json_is_boolean(b) && !json_is_null(b)) || (e && !json_is_boolean(e) && !json_is_null(e)))
        rc = av_errf(err, "%s: add_bos_token / add_eos_token must be true or false", path);
    else
        av_tok_set_specials(t, json_is_boolean(b) ? json_is_true(b) : -1,
                            json_is_boolean(e) ? json_is_true(e) : -1);
    json_decref(cfg);
    return rc;
}

static int load_path(const char *path, av_tokenizer **out, av_err *err);

int av_tokenizer_load(const char *path, av_tokenizer **out, av_err *err) {
    *out = NULL;
    if (!path || !*path) return av_errf(err, "tokenizer: no path given");
    if (load_path(path, out, err)) return -1;
    char dir[4096];
    if (av_path_is_dir(path))
        snprintf(dir, sizeof dir, "%s", path);
    else if (av_path_dirname(path, dir, sizeof dir))
        dir[0] = 0; /* too long for a directory name: no config */
    if (!dir[0] || apply_config(dir, *out, err) == 0) return 0;
    av_tokenizer_free(*out);
    *out = NULL;
    return -1;
}

static int load_path(const char *path, av_tokenizer **out, av_err *err) {
    if (av_path_is_dir(path)) return load_dir(path, out, err);
    av_mapped_file f;
    if (av_file_map(path, &f, err)) return -1;
    const uint8_t *p = f.data;
    size_t n = f.size;
    char head[4096];
    size_t hn = n < sizeof head ? n : sizeof head;
    memcpy(head, p, hn);
    size_t k = 0;
    while (k < hn && (head[k] == ' ' || head[k] == '\n' || head[k] == '\r' || head[k] == '\t'))
        k++;
    int rc;
    if (n >= 4 && memcmp(p, "GGUF", 4) == 0) {
        rc = load_gguf(path, out, err);
    } else if (k < hn && head[k] == '{') {
        rc = load_json_file(path, head, hn, out, err);
    } else if (n >= 2 && p[0] == 0x0A && p[1] != 0) { /* protobuf field 1 (pieces), length-delimited */
        rc = av_tok_load_sp_buffer(f.data, f.size, path, out, err);
    } else if (n >= 4 && p[1] == 0 && p[2] == 0 && p[3] == 0 && p[0] > 0) { /* int32 max_token_length */
        rc = av_tok_load_llama2c(path, out, err);
    } else if (n >= 8 && memcmp(p, "#version", 8) == 0) {
        rc = av_errf(err, "%s: a merges file: load the directory, or its vocab.json / encoder.json", path);
    } else if (!memchr(p, 0, n) &&
               av_utf8_valid_prefix((const char *)p, n < 65536 ? n : 65536) >= (n < 65536 ? n : 65536) - 3) {
        char dir[4096];
        rc = av_path_dirname(path, dir, sizeof dir) ? av_errf(err, "%s: path too long", path)
                                                    : av_tok_load_vocab_txt(path, dir, out, err);
    } else {
        rc = av_errf(err,
                     "%s: unrecognized tokenizer format (supported: tokenizer.json, vocab.txt, vocab.json + "
                     "merges.txt, encoder.json + vocab.bpe, SentencePiece .model, llama2.c tokenizer .bin)",
                     path);
    }
    av_file_unmap(&f);
    return rc;
}

/* ---- encoding ---- */

static int encode_own(const av_tokenizer *t, const char *text, size_t len, int add_bos, int32_t **ids,
                      size_t *n_ids, av_err *err);

/* BOS / EOS around ids as the file's flags say (specials_set). */
static int add_file_specials(const av_tokenizer *t, int32_t **ids, size_t *n, av_err *err) {
    int bos = t->add_bos && t->bos >= 0, eos = t->add_eos && t->eos >= 0;
    int32_t *v = realloc(*ids, sizeof *v * (*n + 2));
    if (!v) return av_errf(err, "out of memory");
    if (bos) memmove(v + 1, v, sizeof *v * *n), v[0] = t->bos;
    *n += (size_t)bos;
    if (eos) v[(*n)++] = t->eos;
    *ids = v;
    return 0;
}

int av_tokenizer_encode(const av_tokenizer *t, const char *text, size_t len, int add_bos, int32_t **ids,
                        size_t *n_ids, av_err *err) {
    if (encode_own(t, text, len, add_bos && !t->specials_set, ids, n_ids, err)) return -1;
    if (!add_bos || !t->specials_set || add_file_specials(t, ids, n_ids, err) == 0) return 0;
    free(*ids);
    *ids = NULL;
    *n_ids = 0;
    return -1;
}

void av_tok_set_specials(av_tokenizer *t, int add_bos, int add_eos) {
    if (add_bos < 0 && add_eos < 0) return;
    int bos, eos; /* the tokenizer's own behaviour for an end the file leaves out */
    av_tok_adds(t, &bos, &eos);
    t->add_bos = add_bos >= 0 ? add_bos : bos;
    t->add_eos = add_eos >= 0 ? add_eos : eos;
    t->specials_set = 1;
}

/* The tokenizer's own encoding: add_bos adds the special tokens its format defines. */
static int encode_own(const av_tokenizer *t, const char *text, size_t len, int add_bos, int32_t **ids,
                      size_t *n_ids, av_err *err) {
    *ids = NULL;
    *n_ids = 0;
    if (!text && len) return av_errf(err, "tokenizer: NULL text");
    if (len > (size_t)INT32_MAX / 4) return av_errf(err, "text is too long (%zu bytes)", len);
    if (t->kind == AV_TOK_SPM_BPE)
        return av_tok_spm_encode(t, text ? text : "", len, add_bos, ids, n_ids, err);
    av_tok_ids out = {0};
    int rc = 0;
    if (t->kind == AV_TOK_SP) {
        if (add_bos && t->bos >= 0) rc = av_tok_ids_push(&out, t->bos) ? av_errf(err, "out of memory") : 0;
        if (rc == 0) rc = av_tok_sp_encode(t, text ? text : "", len, &out, err);
    } else if (t->kind == AV_TOK_GGUF) {
        rc = av_tok_gguf_encode(t, text ? text : "", len, add_bos, &out, err);
    } else {
        rc = av_tok_hf_encode(t, text ? text : "", len, add_bos, &out, err);
    }
    if (rc == 0 && !out.v && !(out.v = malloc(sizeof *out.v))) rc = av_errf(err, "out of memory");
    if (rc) {
        free(out.v);
        return -1;
    }
    *ids = out.v;
    *n_ids = out.n;
    return 0;
}

/* ---- accessors ---- */

void av_tok_adds(const av_tokenizer *t, int *bos, int *eos) {
    *bos = *eos = 0;
    if (t->specials_set) {
        *bos = t->add_bos && t->bos >= 0;
        *eos = t->add_eos && t->eos >= 0;
    } else if (t->kind == AV_TOK_GGUF) {
        *bos = t->gg->add_bos;
        *eos = t->gg->add_eos;
    } else if (t->kind == AV_TOK_HF) {
        const av_tok_hf *hf = t->hf;
        *bos = hf->n_prefix == 1 && hf->prefix[0] == t->bos;
        *eos = hf->n_suffix == 1 && hf->suffix[0] == t->eos;
    } else {
        *bos = t->bos >= 0; /* SentencePiece and llama2.c: BOS only */
    }
}

int av_tokenizer_vocab_size(const av_tokenizer *t) { return t->n_vocab; }
int av_tokenizer_bos(const av_tokenizer *t) { return t->bos; }
int av_tokenizer_eos(const av_tokenizer *t) { return t->eos; }

const char *av_tokenizer_piece(const av_tokenizer *t, int id) {
    return id >= 0 && id < t->n_vocab ? t->pieces[id] : NULL;
}

int av_tokenizer_is_special(const av_tokenizer *t, int id) {
    return id >= 0 && id < t->n_vocab &&
           (t->types[id] == AV_TOKTYPE_CONTROL || t->types[id] == AV_TOKTYPE_UNKNOWN);
}

int av_tokenizer_find(const av_tokenizer *t, const char *piece) {
    if (!piece) return -1;
    size_t n = strlen(piece);
    if (t->kind == AV_TOK_SP) {
        int id = tok_strmap_get(&t->sp->reserved, piece, n);
        return id >= 0 ? id : tok_strmap_get(&t->sp->normal, piece, n);
    }
    int id = av_tok_find(t, piece, n);
    if (id >= 0 || t->kind == AV_TOK_HF) return id;
    for (int i = 0; i < t->n_vocab; i++) /* SPM: control and byte pieces are not in the hash */
        if ((size_t)t->lens[i] == n && memcmp(t->pieces[i], piece, n) == 0) return i;
    return -1;
}

const char *av_tokenizer_model_name(const av_tokenizer *t) {
    if (t->kind == AV_TOK_SPM_BPE) return "llama2.c bpe";
    if (t->kind == AV_TOK_SP)
        return t->sp->model_type == AV_SP_BPE ? "sentencepiece bpe" : "sentencepiece unigram";
    if (t->kind == AV_TOK_GGUF)
        return t->gg->vocab == GG_VOCAB_SPM ? "gguf llama (llama.cpp)" : "gguf byte-level bpe (llama.cpp)";
    switch (t->hf->model) {
    case HF_MODEL_WORDPIECE: return "wordpiece";
    case HF_MODEL_BPE:
        return t->hf->bpe.gpt3_compat             ? "byte-level bpe (gpt-3-encoder)"
               : t->text == AV_TOK_TEXT_BYTELEVEL ? "byte-level bpe"
                                                  : "bpe";
    case HF_MODEL_UNIGRAM: return "unigram";
    case HF_MODEL_WORDLEVEL: return "wordlevel";
    }
    return "?";
}
