/* The documents of a saved API response: one JSON value, JSON lines (Ollama's streams) or a
 * server-sent-events dump (OpenAI, vLLM and llama.cpp streams: "data: {...}" chunks, ended by "data:
 * [DONE]"). */
#include "trace/api.h"

#include <string.h>

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static size_t skip_space(const char *p, size_t n, size_t i) {
    while (i < n && is_space(p[i]))
        i++;
    return i;
}

static size_t line_end(const char *p, size_t n, size_t i) {
    const char *nl = memchr(p + i, '\n', n - i);
    return nl ? (size_t)(nl - p) : n;
}

/* Line and column (from 1) of byte i, for messages. */
static void line_col(const char *p, size_t i, int *line, int *col) {
    *line = 1;
    size_t start = 0;
    for (size_t k = 0; k < i; k++)
        if (p[k] == '\n') ++*line, start = k + 1;
    *col = (int)(i - start) + 1;
}

static int starts(const char *p, size_t n, size_t i, const char *word) {
    size_t w = strlen(word);
    return n - i >= w && memcmp(p + i, word, w) == 0;
}

/* One JSON value at data[i..), decoded without requiring the input to end after it; *next is the byte after.
 */
static json_t *one_value(const char *data, size_t size, size_t i, const char *name, size_t *next,
                         av_err *err) {
    json_error_t je;
    json_t *v = json_loadb(data + i, size - i, JSON_DISABLE_EOF_CHECK | JSON_REJECT_DUPLICATES, &je);
    int line, col;
    if (v) {
        *next = i + (size_t)je.position;
        return v;
    }
    size_t at = i + (size_t)je.position;
    line_col(data, at > size ? size : at, &line, &col);
    if (json_error_code(&je) == json_error_premature_end_of_input)
        av_errf(err,
                "%s: truncated JSON: the input ends inside a value (line %d column %d); save the whole "
                "response",
                name, line, col);
    else
        av_errf(err, "%s: invalid JSON at line %d column %d: %s", name, line, col, je.text);
    return NULL;
}

int av_api_walk(const char *data, size_t size, const char *name, av_api_doc_fn fn, void *ctx, av_err *err) {
    int count = 0, done = 0;
    for (size_t i = skip_space(data, size, 0); i < size && !done; i = skip_space(data, size, i)) {
        if (starts(data, size, i, ":") || starts(data, size, i, "event:") || starts(data, size, i, "id:") ||
            starts(data, size, i, "retry:")) { /* SSE fields other than data, and comments */
            i = line_end(data, size, i);
            continue;
        }
        if (starts(data, size, i, "data:")) {
            i = skip_space(data, line_end(data, size, i), i + 5);
            if (starts(data, size, i, "[DONE]")) {
                done = 1;
                continue;
            }
        }
        if (count >= AV_API_MAX_DOCS)
            return av_errf(err, "%s: more than %d JSON documents", name, AV_API_MAX_DOCS);
        size_t next;
        json_t *doc = one_value(data, size, i, name, &next, err);
        if (!doc) return -1;
        int rc = fn(ctx, doc, count++, err);
        json_decref(doc);
        if (rc) return -1;
        i = next;
    }
    if (count == 0) return av_errf(err, "%s: no JSON document in the input", name);
    return count;
}
