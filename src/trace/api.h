/* Model API responses with log-probabilities -> a trace holding tokens and log-probabilities but no attention
 * (docs/GENERATION.md, "Importing API responses"). Three steps, one file each:
 *   api_stream.c  the input as JSON documents: one JSON value, JSON lines, or a server-sent-events dump;
 *   api_parse.c   each provider's documented response shape (OpenAI, vLLM, Ollama, llama.cpp) -> tokens;
 *   api_build.c   the tokens -> display labels, the log-probability table and the generation metadata. */
#ifndef AV_TRACE_API_H
#define AV_TRACE_API_H

#include "trace/trace.h"

#define AV_API_MAX_FILE (256u << 20) /* bytes of a response file */
#define AV_API_MAX_DOCS (1 << 22)    /* JSON documents (stream chunks) in one input */
#define AV_API_MAX_TOKENS (1 << 22)  /* tokens in one response */
#define AV_API_MAX_TEXT 4096         /* bytes of one token's text */

/* ---- api_stream.c ---- */

/* Called for each JSON document of the input, in order; a nonzero return stops the walk with that value. */
typedef int (*av_api_doc_fn)(void *ctx, json_t *doc, int index, av_err *err);

/* Walks data[0..size) as JSON values separated by white space (one document or JSON lines) or as an SSE dump
 * (lines "data: {...}", "data: [DONE]", "event:"/"id:"/"retry:" lines and ":" comments); name is for
 * messages. Bad or truncated JSON fails with the line and column. Returns the documents walked, or -1. */
int av_api_walk(const char *data, size_t size, const char *name, av_api_doc_fn fn, void *ctx, av_err *err);

/* ---- api_build.c ---- */

typedef struct api_alt {
    char *text; /* the token's bytes (not NUL-terminated text: may be part of a character) */
    size_t len;
    int32_t id; /* -1 when the provider gives no id */
    float lp;   /* log-probability; NaN when unknown */
} api_alt;

typedef struct api_tok {
    api_alt tok;
    api_alt *alts; /* (n_alts) */
    int n_alts, cap_alts;
} api_tok;

typedef struct api_build {
    const char *name; /* the input, for messages */
    api_tok *toks;    /* (n) prompt tokens first, then the generated ones */
    int n, cap;
    int n_prompt;  /* prompt tokens at the start (0: the response holds none) */
    int max_alts;  /* alternatives kept per token */
    int truncated; /* alternatives dropped by max_alts */
    json_t *info;  /* the "generation" metadata being filled */
    char *model;   /* from the response, or NULL */
} api_build;

/* Appends a token (its bytes, id or -1, log-probability or NaN); alternatives follow with api_add_alt. */
int api_add_token(api_build *b, const char *text, size_t len, int32_t id, double lp, av_err *err);
int api_add_alt(api_build *b, const char *text, size_t len, int32_t id, double lp, av_err *err);
/* Notes of the "generation" object: a string member, an item of the "missing" or "notes" arrays. */
int api_set(api_build *b, const char *key, json_t *value, av_err *err); /* takes value */
int api_missing(api_build *b, const char *what, av_err *err);
int api_note(api_build *b, const char *text, av_err *err);

/* ---- api_parse.c ---- */

/* Reads every document of the input into b: provider NULL or "auto" detects it from the first document. */
int api_parse(const char *data, size_t size, const char *name, const char *provider, int choice, api_build *b,
              av_err *err);

#endif
