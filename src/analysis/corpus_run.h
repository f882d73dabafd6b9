/* Running a model over a corpus: input files split into chunks of lines, the chunks of one rank run by worker
 * threads, resumable state files, and re-running single lines (docs/CORPUS.md).
 *
 * Sharding: chunk c (lines c*chunk+1 .. (c+1)*chunk) belongs to rank c % n_ranks. Each rank's worker threads
 * take its chunks one at a time; a chunk's statistics enter the rank's accumulator only once the whole chunk
 * is done, and the state file (accumulator + set of finished chunks, written atomically) therefore never
 * counts an input twice or half. */
#ifndef AV_CORPUS_RUN_H
#define AV_CORPUS_RUN_H

#include "corpus.h"

#include <stdatomic.h>

/* ---- input (corpus_input.c) ---- */

typedef enum av_corpus_format { AV_CORPUS_TXT = 0, AV_CORPUS_JSONL } av_corpus_format;

/* "auto" (or NULL: .jsonl / .json -> JSON Lines, anything else text), "jsonl", "txt". */
int av_corpus_format_parse(const char *s, const char *path, av_corpus_format *out, av_err *err);

typedef struct av_corpus_input {
    char *path;
    av_corpus_format format;
    int chunk_lines;
    size_t max_line_bytes;
    int64_t n_lines, n_chunks;
    int64_t *chunk_off; /* (n_chunks + 1) byte offset of each chunk's first line; the last is the file size */
    uint64_t size, hash; /* FNV-1a 64 of the content */
} av_corpus_input;

int av_corpus_input_open(av_corpus_input *in, const char *path, av_corpus_format format, int chunk_lines,
                         size_t max_line_bytes, av_err *err);
void av_corpus_input_close(av_corpus_input *in);

/* Lines of one chunk. After av_corpus_lines_next returns 1: buf (len bytes, NUL-terminated) is line `line`
 * (1-based), or too_large is set and buf holds only its first max bytes. */
typedef struct av_corpus_lines {
    FILE *fp;
    int64_t line, last;
    char *buf;
    size_t len, cap, max;
    int too_large;
} av_corpus_lines;

int av_corpus_lines_open(av_corpus_lines *r, const av_corpus_input *in, int64_t chunk, av_err *err);
int av_corpus_lines_next(av_corpus_lines *r, av_err *err); /* 1: a line, 0: end of chunk, -1: error */
void av_corpus_lines_close(av_corpus_lines *r);

/* The input text of the current line (and the target with target_field): malloc'd, or the reason the line is
 * skipped. AV_BAD_COUNT means "good". */
av_bad av_corpus_line_text(const av_corpus_input *in, const av_corpus_lines *r, const char *field,
                           const char *target_field, char **text, char **target);

/* ---- running (corpus_run.c) ---- */

#define AV_CORPUS_FULL_TRACE_MAX                                                                             \
    (256.0 * 1024 * 1024) /* bytes of one input's full trace before going lazy                               \
                           */

typedef struct av_corpus_progress {
    int64_t inputs_done;               /* lines finished by this rank in this session (good or skipped) */
    int64_t inputs_total;              /* lines this session has to do on this rank */
    int64_t chunks_done, chunks_total; /* this rank's chunks, including those resumed */
    double seconds;
} av_corpus_progress;

/* Runs the model under study on one input and returns its trace: text, target (the decoder text an
 * encoder-decoder is forced on, or NULL), lazy: keep queries and keys (av_run_params.lazy). Analysis never
 * runs a model itself; the caller passes this (cmd_corpus.c: av_trace_from_text / av_trace_from_pair). */
typedef int (*av_corpus_run_fn)(void *ctx, const char *text, const char *target, int lazy, av_trace **out,
                                av_err *err);

typedef struct av_corpus_job {
    const av_model
        *model; /* read only: layout, context, tokenizer (to refuse inputs longer than the context) */
    av_corpus_run_fn run;
    void *run_ctx;
    const av_corpus_input *input;
    const char *field, *target_field; /* JSON Lines keys; target: encoder-decoders' forced decoder text */
    int add_bos;                      /* as the runner: counts the tokens of an input */
    int rank, n_ranks, n_threads;
    int top_k;
    av_attn_kind qk_kind;              /* the attention kind of the query/key sample */
    int qk_layer, qk_head, qk_samples; /* qk_layer < 0: no query/key sample */
    uint64_t seed;
    const char *state_path;  /* NULL: not resumable */
    const char *fingerprint; /* the run's settings; a state file of other settings is refused */
    double checkpoint_s;     /* state written at most this often (0: after every chunk) */
    const atomic_int
        *stop; /* set (by a signal handler thread): finish the inputs in progress, save, return */
    void (*progress)(void *ctx, const av_corpus_progress *p);
    void *progress_ctx;
} av_corpus_job;

typedef struct av_corpus_result {
    av_corpus_acc acc;
    av_corpus_qk qk;
    int64_t chunks_done, chunks_total, chunks_resumed;
    int64_t inputs_run; /* lines this session read */
    int interrupted;    /* stopped by job->stop before every chunk was done */
    double seconds;
} av_corpus_result;

/* Runs this rank's chunks (resuming from job->state_path when it exists). res is initialized here and freed
 * with av_corpus_result_free, also after a failure. */
int av_corpus_run(const av_corpus_job *job, av_corpus_result *res, av_err *err);
void av_corpus_result_free(av_corpus_result *res);

/* A rank's result as bytes for rank 0: status (0 done, 1 failed, 2 interrupted), its message, the run's
 * fingerprint (rank 0 refuses ranks that read another model or input), counts, the accumulator and (with_qk)
 * the query/key sample. Read back with av_corpus_result_read (res and *fingerprint are then the caller's,
 * also after a failure: av_corpus_result_free, free). */
void av_corpus_result_write(const av_corpus_result *res, int status, const char *msg, const char *fingerprint,
                            int with_qk, av_buf *b);
int av_corpus_result_read(av_corpus_result *res, int *status, char msg[512], char **fingerprint, av_reader *r,
                          av_err *err);

/* Runs one line again through job->run and returns its trace (full, not lazy: for saving and viewing). */
int av_corpus_rerun_line(const av_corpus_job *job, int64_t line, av_trace **out, av_err *err);
/* The text of one line (the field of a JSON line), malloc'd; NULL when the line is not a good input. */
char *av_corpus_read_text(const av_corpus_input *in, int64_t line, const char *field, av_err *err);

/* ---- state files (corpus_state.c) ---- */

/* Writes rank's state atomically: fingerprint, rank/n_ranks, the done bitmap (n_chunks bits), the accumulator
 * and the query/key sample (may be NULL). */
int av_corpus_state_save(const char *path, const char *fingerprint, int rank, int n_ranks, int64_t n_chunks,
                         const uint8_t *done, const av_corpus_acc *acc, const av_corpus_qk *qk, av_err *err);
/* Loads a state written with the same fingerprint, rank and n_ranks into done / acc / qk (qk may be NULL).
 * Returns 1 when loaded, 0 when there is no state file, -1 (with a message) when it cannot be used. */
int av_corpus_state_load(const char *path, const char *fingerprint, int rank, int n_ranks, int64_t n_chunks,
                         uint8_t *done, av_corpus_acc *acc, av_corpus_qk *qk, av_err *err);

#endif /* AV_CORPUS_RUN_H */
