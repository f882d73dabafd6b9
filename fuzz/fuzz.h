/* Shared helpers of the libFuzzer harnesses (fuzz/<name>.c; how to build and run them: docs/SECURITY.md).
 *
 * Most parsers of attnviz open paths (they map files), so a harness writes its input into one scratch
 * directory per process (under /dev/shm when it exists: no disk traffic) and calls the public function on
 * that path. Inputs made of several files (a model directory, a checkpoint and its tokenizer) are split into
 * parts at FUZZ_SEP; the seed corpora (fuzz/make_seeds.py) are written in that layout. */
#ifndef AV_FUZZ_H
#define AV_FUZZ_H

#define _GNU_SOURCE /* memmem */
#include "attnviz.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Separates the files of a multi-file input (readable in text seeds; never inside a real JSON file). */
#define FUZZ_SEP "\n--8<--\n"
#define FUZZ_SEP_LEN 8
#define FUZZ_MAX_PARTS 8

typedef struct fuzz_part {
    const uint8_t *p;
    size_t n;
} fuzz_part;

/* Splits data at FUZZ_SEP into at most max parts (the last one takes the rest); returns the count (>= 1). */
static inline int fuzz_split(const uint8_t *data, size_t size, fuzz_part *parts, int max) {
    int k = 0;
    while (k < max - 1) {
        const uint8_t *sep = memmem(data, size, FUZZ_SEP, FUZZ_SEP_LEN);
        if (!sep) break;
        parts[k++] = (fuzz_part){data, (size_t)(sep - data)};
        size -= (size_t)(sep - data) + FUZZ_SEP_LEN;
        data = sep + FUZZ_SEP_LEN;
    }
    parts[k++] = (fuzz_part){data, size};
    return k;
}

static char fuzz_dir_path[512];

/* Removes every file of the scratch directory (one level: harnesses write no subdirectories). */
static inline void fuzz_clear(void) {
    DIR *d = fuzz_dir_path[0] ? opendir(fuzz_dir_path) : NULL;
    struct dirent *e;
    char p[1024];
    while (d && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(p, sizeof p, "%s/%s", fuzz_dir_path, e->d_name);
        unlink(p);
    }
    if (d) closedir(d);
}

static inline void fuzz_remove_dir(void) {
    fuzz_clear();
    rmdir(fuzz_dir_path);
}

/* The scratch directory of this process, made on first use and removed at exit. */
static inline const char *fuzz_dir(void) {
    if (fuzz_dir_path[0]) return fuzz_dir_path;
    const char *env = getenv("FUZZ_TMPDIR"), *tmp = getenv("TMPDIR");
    const char *base = env && *env                     ? env
                       : access("/dev/shm", W_OK) == 0 ? "/dev/shm"
                       : tmp && *tmp                   ? tmp
                                                       : "/tmp";
    snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "%s/attnviz-fuzz-XXXXXX", base);
    if (!mkdtemp(fuzz_dir_path)) {
        perror("fuzz: mkdtemp");
        abort(); /* a harness that cannot write its input tests nothing */
    }
    atexit(fuzz_remove_dir);
    return fuzz_dir_path;
}

/* "<scratch>/<name>" into buf. */
static inline const char *fuzz_path(char *buf, size_t cap, const char *name) {
    snprintf(buf, cap, "%s/%s", fuzz_dir(), name);
    return buf;
}

/* Writes n bytes to "<scratch>/<name>"; returns the path (in buf). */
static inline const char *fuzz_write(char *buf, size_t cap, const char *name, const void *data, size_t n) {
    fuzz_path(buf, cap, name);
    FILE *fp = fopen(buf, "wb");
    if (!fp || (n && fwrite(data, 1, n, fp) != n) || fclose(fp) != 0) {
        perror(buf);
        abort();
    }
    return buf;
}

/* Symlinks "<scratch>/<name>" to an existing file (large fixed inputs, e.g. a family's weights). */
static inline void fuzz_link(const char *target, const char *name) {
    char p[1024];
    fuzz_path(p, sizeof p, name);
    unlink(p);
    if (symlink(target, p) != 0) {
        perror(p);
        abort();
    }
}

/* FUZZ_VERBOSE=1 prints why an input was refused (to check that seeds get past the loaders). */
static inline int fuzz_note(int rc, const char *what, const av_err *err) {
    static int verbose = -1;
    if (verbose < 0) verbose = getenv("FUZZ_VERBOSE") != NULL;
    if (rc && verbose) fprintf(stderr, "fuzz: %s: %s\n", what, err->msg);
    return rc;
}

/* Every entry of a trace's log-probabilities and generation metadata, as the step views read them; an index
 * outside the tables is a bug (abort: the fuzzer reports it). Returns -1 when the trace has none. */
static inline int fuzz_read_logprobs(const av_trace *t) {
    av_logprob_view v;
    av_generation_info g;
    av_err err;
    volatile double sink = 0;
    if (!av_trace_has_logprobs(t) || av_trace_logprobs(t, &v, &err) != 0) return -1;
    if (v.n_tokens != av_trace_n_tokens(t)) abort();
    for (int i = 0; i < v.n_tokens; i++) {
        sink += v.token[i] + v.entropy[i] + (double)av_trace_token_id(t, i);
        if (!av_trace_token(t, i)) abort();
        for (int j = 0; j < v.k; j++) {
            int32_t p = v.alt_pieces[(size_t)i * (size_t)v.k + (size_t)j];
            if (p < -1 || p >= v.n_pieces) abort();
            if (p >= 0) sink += (double)v.pieces[p][0];
            sink += v.alt_logprobs[(size_t)i * (size_t)v.k + (size_t)j] +
                    v.alt_ids[(size_t)i * (size_t)v.k + (size_t)j];
        }
    }
    av_trace_generation_info(t, &g);
    if (g.prompt_len < -1 || g.prompt_len > v.n_tokens) abort();
    (void)sink;
    return 0;
}

/* The repository root (compiled in by the Makefile), for harnesses that pair inputs with committed fixtures.
 */
#ifndef FUZZ_ROOT
#define FUZZ_ROOT "."
#endif

#endif
