/* The tokenizer metadata of a GGUF file (tokenizer.ggml.*, tokenizer.chat_template, general.name) read into
 * an av_tok_gguf_spec, checked as it is read: arrays one entry per token, ids inside the vocabulary, strings
 * free of NUL bytes. */
#include "io/gguf.h"
#include "tok.h"

#include <stdlib.h>
#include <string.h>

#define GGUF_TOK_MAX_VOCAB (1 << 22)
#define GGUF_TOK_MAX_TEMPLATE (1 << 24) /* 16 MiB of chat template */

/* A token id key: its value (AV_TOK_ID_ABSENT when absent); outside the vocabulary is an error (llama.cpp
 * warns and falls back to its default, which would silently change the ids). */
static int token_id(const av_gguf *g, const char *key, int n, int *out, av_err *err) {
    int64_t v;
    int rc = av_gguf_get_int(g, key, &v, err);
    if (rc < 0) return -1;
    if (rc == 1) return *out = AV_TOK_ID_ABSENT, 0;
    if (v < 0 || v >= n)
        return av_errf(err, "%s: %s = %lld is outside the vocabulary of %d", g->name, key, (long long)v, n);
    *out = (int)v;
    return 0;
}

static int flag(const av_gguf *g, const char *key, int *out, av_err *err) {
    int64_t v;
    int rc = av_gguf_get_int(g, key, &v, err);
    *out = rc == 0 ? v != 0 : -1;
    return rc < 0 ? -1 : 0;
}

/* A string key as a NUL-terminated copy (NULL when absent); max bytes at most. */
static int copy_str(const av_gguf *g, const char *key, size_t max, char **out, av_err *err) {
    const char *s;
    size_t len;
    *out = NULL;
    int rc = av_gguf_get_str(g, key, &s, &len, err);
    if (rc) return rc < 0 ? -1 : 0;
    if (len > max || memchr(s, 0, len))
        return av_errf(err, "%s: %s is too long or holds a NUL byte", g->name, key);
    if (!(*out = malloc(len + 1))) return av_errf(err, "out of memory");
    memcpy(*out, s, len);
    (*out)[len] = 0;
    return 0;
}

/* The strings of a GGUF string array as malloc'd NUL-terminated copies (NUL bytes inside are an error). */
static char **copy_strings(const av_gguf *g, const av_gguf_value *a, const char *what, av_err *err) {
    char **out = calloc(a->arr_n ? (size_t)a->arr_n : 1, sizeof *out);
    size_t pos = 0;
    if (!out) return av_errf(err, "out of memory"), NULL;
    for (uint64_t i = 0; i < a->arr_n; i++) {
        const char *s;
        size_t len;
        const char *bad = av_gguf_array_next_str(a, &pos, &s, &len) ? "is malformed"
                          : memchr(s, 0, len)                       ? "has an entry with a NUL byte"
                                                                    : NULL;
        if (!bad && !(out[i] = malloc(len + 1))) bad = "does not fit in memory";
        if (bad) {
            av_errf(err, "%s: %s %s", g->name, what, bad);
            for (uint64_t k = 0; k < i; k++)
                free(out[k]);
            free(out);
            return NULL;
        }
        memcpy(out[i], s, len);
        out[i][len] = 0;
    }
    return out;
}

/* tokens, scores (f32 or i32 as llama.cpp accepts), token types and merges. */
static int read_arrays(const av_gguf *g, av_tok_gguf_spec *s, av_err *err) {
    const av_gguf_value *tokens, *scores = NULL, *types = NULL, *merges = NULL;
    int rc = av_gguf_get_array(g, "tokenizer.ggml.tokens", AV_GGUF_STRING, &tokens, err);
    if (rc) return rc < 0 ? -1 : av_errf(err, "%s: tokenizer.ggml.tokens is missing", g->name);
    if (av_gguf_get_array(g, "tokenizer.ggml.scores", AV_GGUF_TYPE_COUNT, &scores, err) < 0 ||
        av_gguf_get_array(g, "tokenizer.ggml.token_type", AV_GGUF_I32, &types, err) < 0 ||
        av_gguf_get_array(g, "tokenizer.ggml.merges", AV_GGUF_STRING, &merges, err) < 0)
        return -1;
    uint64_t n = tokens->arr_n;
    if (n < 1 || n > GGUF_TOK_MAX_VOCAB)
        return av_errf(err, "%s: tokenizer.ggml.tokens has %llu entries (1 to %d)", g->name,
                       (unsigned long long)n, GGUF_TOK_MAX_VOCAB);
    if (scores && scores->arr_type != AV_GGUF_F32 && scores->arr_type != AV_GGUF_I32)
        return av_errf(err, "%s: tokenizer.ggml.scores holds %s (f32 or i32 expected)", g->name,
                       av_gguf_type_name(scores->arr_type));
    if ((scores && scores->arr_n != n) || (types && types->arr_n != n))
        return av_errf(err, "%s: tokenizer.ggml.scores/token_type do not have one entry per token (%llu)",
                       g->name, (unsigned long long)n);
    if (merges && merges->arr_n > GGUF_TOK_MAX_VOCAB)
        return av_errf(err, "%s: tokenizer.ggml.merges has %llu entries", g->name,
                       (unsigned long long)merges->arr_n);
    s->n = (int)n;
    s->scores = scores ? malloc(sizeof *s->scores * (size_t)n) : NULL; /* (n) */
    s->types = types ? malloc(sizeof *s->types * (size_t)n) : NULL;    /* (n) */
    if ((scores && !s->scores) || (types && !s->types)) return av_errf(err, "out of memory");
    for (uint64_t i = 0; i < n; i++) {
        if (s->scores) s->scores[i] = (float)av_gguf_array_f64(scores, i);
        if (s->types) s->types[i] = (int)av_gguf_array_int(types, i);
    }
    if (!(s->pieces = copy_strings(g, tokens, "tokenizer.ggml.tokens", err))) return -1;
    if (merges && !(s->merges = copy_strings(g, merges, "tokenizer.ggml.merges", err))) return -1;
    s->n_merges = merges ? (int)merges->arr_n : 0;
    return 0;
}

static int read_ids(const av_gguf *g, av_tok_gguf_spec *s, av_err *err) {
    static const char *const fim_keys[6][2] = {
        {"tokenizer.ggml.fim_pre_token_id", "tokenizer.ggml.prefix_token_id"},
        {"tokenizer.ggml.fim_suf_token_id", "tokenizer.ggml.suffix_token_id"},
        {"tokenizer.ggml.fim_mid_token_id", "tokenizer.ggml.middle_token_id"},
        {"tokenizer.ggml.fim_pad_token_id", NULL},
        {"tokenizer.ggml.fim_rep_token_id", NULL},
        {"tokenizer.ggml.fim_sep_token_id", NULL},
    };
    if (token_id(g, "tokenizer.ggml.bos_token_id", s->n, &s->bos, err) ||
        token_id(g, "tokenizer.ggml.eos_token_id", s->n, &s->eos, err) ||
        token_id(g, "tokenizer.ggml.unknown_token_id", s->n, &s->unk, err))
        return -1;
    for (int k = 0; k < 6; k++) {
        int old = AV_TOK_ID_ABSENT; /* the deprecated key is read last and wins, as in llama.cpp */
        if (token_id(g, fim_keys[k][0], s->n, &s->fim[k], err) ||
            (fim_keys[k][1] && token_id(g, fim_keys[k][1], s->n, &old, err)))
            return -1;
        if (old != AV_TOK_ID_ABSENT) s->fim[k] = old;
    }
    return flag(g, "tokenizer.ggml.add_bos_token", &s->add_bos, err) ||
                   flag(g, "tokenizer.ggml.add_eos_token", &s->add_eos, err) ||
                   flag(g, "tokenizer.ggml.add_space_prefix", &s->add_space_prefix, err)
               ? -1
               : 0;
}

int av_tok_load_gguf(const av_gguf *g, av_tokenizer **out, av_err *err) {
    *out = NULL;
    char *model = NULL, *pre = NULL, *name = NULL, *tmpl = NULL;
    av_tok_gguf_spec s = av_tok_gguf_spec_init();
    int rc = copy_str(g, "tokenizer.ggml.model", 64, &model, err);
    if (rc == 0 && model && strcmp(model, "llama") != 0 && strcmp(model, "gpt2") != 0 &&
        strcmp(model, "bert") != 0) {
        free(model); /* another tokenizer (t5, rwkv, none...): --tokenizer can supply one */
        return 0;
    }
    if (rc == 0 && model)
        rc = copy_str(g, "tokenizer.ggml.pre", 256, &pre, err) ||
                     copy_str(g, "general.name", 4096, &name, err) ||
                     copy_str(g, "tokenizer.chat_template", GGUF_TOK_MAX_TEMPLATE, &tmpl, err) ||
                     read_arrays(g, &s, err) || read_ids(g, &s, err)
                 ? -1
                 : 0;
    if (rc == 0 && model) {
        s.model = model;
        s.pre = pre;
        s.name = name;
        s.chat_template = tmpl;
        rc = av_tok_from_gguf(&s, out, err); /* takes the arrays */
        if (rc) av_err_prefix(err, "%s", g->name);
    }
    for (int i = 0; s.pieces && i < s.n; i++)
        free(s.pieces[i]);
    for (int i = 0; s.merges && i < s.n_merges; i++)
        free(s.merges[i]);
    free(s.pieces), free(s.merges), free(s.scores), free(s.types);
    free(model), free(pre), free(name), free(tmpl);
    return rc;
}
