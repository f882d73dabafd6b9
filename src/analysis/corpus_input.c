/* Corpus input files: one input per line, plain text or JSON Lines. A first pass counts the lines, remembers
 * where each chunk of lines starts (so every rank and thread can seek to its own chunks) and hashes the
 * bytes (so a resumed run can tell whether the file changed). Lines are then read chunk by chunk, each at
 * most max_line_bytes long: longer ones are skipped and reported, never held in memory. */
#include "corpus_run.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int av_corpus_format_parse(const char *s, const char *path, av_corpus_format *out, av_err *err) {
    if (!s || strcmp(s, "auto") == 0) {
        size_t n = strlen(path);
        *out = n >= 6 && (strcmp(path + n - 6, ".jsonl") == 0 || strcmp(path + n - 5, ".json") == 0)
                   ? AV_CORPUS_JSONL
                   : AV_CORPUS_TXT;
        return 0;
    }
    if (strcmp(s, "jsonl") == 0)
        *out = AV_CORPUS_JSONL;
    else if (strcmp(s, "txt") == 0)
        *out = AV_CORPUS_TXT;
    else
        return av_errf(err, "--format must be auto, jsonl or txt, got '%s'", s);
    return 0;
}

void av_corpus_input_close(av_corpus_input *in) {
    free(in->chunk_off);
    free(in->path);
    memset(in, 0, sizeof *in);
}

static int push_offset(av_corpus_input *in, int64_t off, int64_t *cap) {
    if (in->n_chunks + 1 >= *cap) {
        int64_t c = *cap ? 2 * *cap : 1024;
        int64_t *g = realloc(in->chunk_off, sizeof *g * (size_t)c);
        if (!g) return -1;
        in->chunk_off = g;
        *cap = c;
    }
    in->chunk_off[in->n_chunks++] = off;
    return 0;
}

int av_corpus_input_open(av_corpus_input *in, const char *path, av_corpus_format format, int chunk_lines,
                         size_t max_line_bytes, av_err *err) {
    memset(in, 0, sizeof *in);
    FILE *fp = fopen(path, "rb");
    if (!fp) return av_errf(err, "%s: cannot open: %s", path, strerror(errno));
    in->format = format;
    in->chunk_lines = chunk_lines;
    in->max_line_bytes = max_line_bytes;
    in->hash = 1469598103934665603ull; /* FNV-1a over every byte */
    int64_t cap = 0, off = 0;
    int at_line_start = 1, rc = 0;
    unsigned char buf[1 << 16];
    size_t got;
    while (!rc && (got = fread(buf, 1, sizeof buf, fp)) > 0) {
        for (size_t i = 0; i < got; i++, off++) {
            if (at_line_start && in->n_lines % chunk_lines == 0 && push_offset(in, off, &cap)) rc = -1;
            if (at_line_start) in->n_lines++;
            at_line_start = buf[i] == '\n';
            in->hash = (in->hash ^ buf[i]) * 1099511628211ull;
        }
    }
    if (!rc && ferror(fp))
        rc = av_errf(err, "%s: read error: %s", path, strerror(errno));
    else if (rc)
        av_errf(err, "out of memory indexing %s", path);
    fclose(fp);
    in->size = (uint64_t)off;
    if (!rc && push_offset(in, off, &cap)) rc = av_errf(err, "out of memory");
    if (!rc) in->n_chunks--; /* the last offset is the end of the file */
    if (!rc && !(in->path = av_strdup(path))) rc = av_errf(err, "out of memory");
    if (rc) av_corpus_input_close(in);
    return rc;
}

/* ---- reading one chunk ---- */

int av_corpus_lines_open(av_corpus_lines *r, const av_corpus_input *in, int64_t chunk, av_err *err) {
    memset(r, 0, sizeof *r);
    if (chunk < 0 || chunk >= in->n_chunks) return av_errf(err, "chunk %lld out of range", (long long)chunk);
    if (!(r->fp = fopen(in->path, "rb")))
        return av_errf(err, "%s: cannot open: %s", in->path, strerror(errno));
    if (fseeko(r->fp, (off_t)in->chunk_off[chunk], SEEK_SET)) {
        fclose(r->fp);
        return av_errf(err, "%s: cannot seek: %s", in->path, strerror(errno));
    }
    r->line = chunk * in->chunk_lines; /* the line before the chunk's first (1-based lines) */
    r->last = r->line + in->chunk_lines < in->n_lines ? r->line + in->chunk_lines : in->n_lines;
    r->max = in->max_line_bytes;
    return 0;
}

void av_corpus_lines_close(av_corpus_lines *r) {
    if (r->fp) fclose(r->fp);
    free(r->buf);
    memset(r, 0, sizeof *r);
}

int av_corpus_lines_next(av_corpus_lines *r, av_err *err) {
    if (r->line >= r->last) return 0;
    r->line++;
    r->len = 0;
    r->too_large = 0;
    int c;
    while ((c = getc(r->fp)) != EOF && c != '\n') {
        if (r->len >= r->max) {
            r->too_large = 1;
            continue; /* skip the rest of the line */
        }
        if (r->len + 1 >= r->cap) {
            size_t cap = r->cap ? 2 * r->cap : 4096;
            char *g = realloc(r->buf, cap);
            if (!g) return av_errf(err, "out of memory reading line %lld", (long long)r->line);
            r->buf = g;
            r->cap = cap;
        }
        r->buf[r->len++] = (char)c;
    }
    if (c == EOF && ferror(r->fp)) return av_errf(err, "read error at line %lld", (long long)r->line);
    if (r->len && r->buf[r->len - 1] == '\r') r->len--; /* CRLF files */
    if (!r->buf && !(r->buf = malloc(1))) return av_errf(err, "out of memory");
    r->buf[r->len] = 0;
    return 1;
}

/* ---- the text of a line ---- */

static int blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)s[i])) return 0;
    return 1;
}

/* A string member of a JSON object; NULL when missing, not a string, or holding a NUL byte. */
static char *member(json_t *o, const char *field) {
    json_t *v = json_object_get(o, field);
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) return NULL;
    return av_strdup(json_string_value(v));
}

av_bad av_corpus_line_text(const av_corpus_input *in, const av_corpus_lines *r, const char *field,
                           const char *target_field, char **text, char **target) {
    *text = *target = NULL;
    if (r->too_large) return AV_BAD_LINE_BYTES;
    if (blank(r->buf, r->len)) return AV_BAD_EMPTY;
    if (in->format == AV_CORPUS_TXT) {
        if (strlen(r->buf) != r->len) return AV_BAD_FIELD; /* a NUL byte inside the line */
        *text = av_strdup(r->buf);
        return *text ? AV_BAD_COUNT : AV_BAD_ERROR;
    }
    json_error_t je;
    json_t *o = json_loadb(r->buf, r->len, JSON_REJECT_DUPLICATES, &je);
    if (!o) return AV_BAD_JSON;
    av_bad why = AV_BAD_COUNT;
    if (!json_is_object(o) || !(*text = member(o, field)) ||
        (target_field && !(*target = member(o, target_field))))
        why = AV_BAD_FIELD;
    else if (blank(*text, strlen(*text)))
        why = AV_BAD_EMPTY;
    json_decref(o);
    if (why != AV_BAD_COUNT) {
        free(*text);
        free(*target);
        *text = *target = NULL;
    }
    return why;
}
