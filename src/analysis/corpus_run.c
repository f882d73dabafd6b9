/* Running one rank's share of a corpus: worker threads take whole chunks, measure every line into a chunk
 * accumulator, and merge it into the rank's accumulator when the chunk is complete; the state file is written
 * (atomically) after merges, at most every checkpoint_s seconds, and once more when the run stops. */
#include "corpus_run.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct run_ctx {
    const av_corpus_job *job;
    av_corpus_result *res;
    pthread_mutex_t lock;
    int64_t *todo; /* (n_todo) this rank's unfinished chunks, in order */
    int64_t n_todo, next;
    uint8_t *done; /* (n_chunks bits) */
    int64_t inputs_total, inputs_done;
    double t0, last_save;
    int failed;
    av_err err;
} run_ctx;

/* Tokens the input will have (0 when unknown), to refuse inputs longer than the context before running them.
 */
static size_t count_tokens(const av_corpus_job *job, const char *text) {
    const av_tokenizer *tok = av_model_tokenizer(job->model);
    int32_t *ids = NULL;
    size_t n = 0;
    if (!tok || av_tokenizer_encode(tok, text, strlen(text), job->add_bos, &ids, &n, NULL)) return 0;
    free(ids);
    return n;
}

/* Lazy traces (queries and keys, attention recomputed head by head) when the map needs them or a full trace
 * of n tokens would pass AV_CORPUS_FULL_TRACE_MAX; full ones otherwise. The choice depends on the input
 * alone, so every split of the corpus makes the same one. */
static int want_lazy(const av_corpus_job *job, size_t n) {
    av_model_info mi = av_model_get_info(job->model);
    double bytes = 4.0 * (mi.n_layers + 2 * mi.n_dec_layers) * mi.n_heads * (double)n * (double)n;
    return job->qk_layer >= 0 || bytes > AV_CORPUS_FULL_TRACE_MAX;
}

/* One line into acc / qk: skipped lines are counted with their reason; only internal failures return -1. */
static int do_line(const av_corpus_job *job, const av_corpus_lines *lines, av_corpus_acc *acc,
                   av_corpus_qk *qk, av_err *err) {
    char *text, *target;
    av_bad why = av_corpus_line_text(job->input, lines, job->field, job->target_field, &text, &target);
    av_trace *t = NULL;
    av_err run_err = {{0}};
    int rc = 0;
    size_t n = why == AV_BAD_COUNT ? count_tokens(job, text) : 0;
    if (n > (size_t)av_model_get_info(job->model).max_seq_len) why = AV_BAD_TOO_LONG;
    if (why == AV_BAD_COUNT && job->run(job->run_ctx, text, target, want_lazy(job, n), &t, &run_err))
        why = AV_BAD_ERROR;
    if (why != AV_BAD_COUNT) {
        av_corpus_acc_bad(acc, why, lines->line, run_err.msg);
    } else {
        av_corpus_example ex;
        if (av_corpus_measure(t, lines->line, &ex, &run_err)) { /* e.g. out of memory on a huge input */
            av_corpus_acc_bad(acc, AV_BAD_ERROR, lines->line, run_err.msg);
        } else {
            rc = av_corpus_acc_add(acc, &ex, err) ||
                 (job->qk_layer >= 0 && av_corpus_qk_add(qk, t, lines->line, err));
            if (rc) av_err_prefix(err, "line %lld", (long long)lines->line);
        }
        av_corpus_example_free(&ex);
    }
    av_trace_free(t);
    free(text);
    free(target);
    return rc ? -1 : 0;
}

static int save_state(run_ctx *c) {
    const av_corpus_job *job = c->job;
    if (!job->state_path) return 0;
    c->last_save = av_seconds();
    if (job->qk_layer >= 0) av_corpus_qk_finish(&c->res->qk, NULL); /* smaller file; the sample is the same */
    return av_corpus_state_save(job->state_path, job->fingerprint, job->rank, job->n_ranks,
                                job->input->n_chunks, c->done, &c->res->acc,
                                job->qk_layer >= 0 ? &c->res->qk : NULL, &c->err);
}

static void report(run_ctx *c) {
    if (!c->job->progress) return;
    av_corpus_progress p = {c->inputs_done, c->inputs_total, c->res->chunks_done, c->res->chunks_total,
                            av_seconds() - c->t0};
    c->job->progress(c->job->progress_ctx, &p);
}

/* Merges a finished chunk (under the lock) and saves the state when due. */
static int chunk_finished(run_ctx *c, int64_t chunk, const av_corpus_acc *acc, const av_corpus_qk *qk,
                          int64_t n_lines) {
    pthread_mutex_lock(&c->lock);
    int rc = av_corpus_acc_merge(&c->res->acc, acc, &c->err) ||
             (c->job->qk_layer >= 0 && av_corpus_qk_merge(&c->res->qk, qk, &c->err));
    if (!rc) {
        c->done[chunk / 8] |= (uint8_t)(1u << (chunk % 8));
        c->res->chunks_done++;
        c->res->inputs_run += n_lines;
        if (av_seconds() - c->last_save >= c->job->checkpoint_s) rc = save_state(c);
    }
    if (rc) c->failed = 1;
    report(c);
    pthread_mutex_unlock(&c->lock);
    return rc ? -1 : 0;
}

static int stopping(run_ctx *c) { return (c->job->stop && atomic_load(c->job->stop)) || c->failed; }

/* One chunk: 1 when complete, 0 when abandoned because the run is stopping, -1 on failure. */
static int do_chunk(run_ctx *c, int64_t chunk, av_err *err) {
    const av_corpus_job *job = c->job;
    av_corpus_acc acc;
    av_corpus_qk qk;
    av_corpus_acc_init(&acc, job->top_k);
    av_corpus_qk_init(&qk, job->qk_kind, job->qk_layer, job->qk_head, job->qk_samples, job->seed);
    av_corpus_lines lines;
    int rc = av_corpus_lines_open(&lines, job->input, chunk, err) ? -1 : 1;
    int64_t n = 0;
    while (rc == 1) {
        if (stopping(c)) {
            rc = 0;
            break;
        }
        int got = av_corpus_lines_next(&lines, err);
        if (got <= 0) {
            rc = got < 0 ? -1 : 1;
            break;
        }
        if (do_line(job, &lines, &acc, &qk, err)) rc = -1;
        n++;
        pthread_mutex_lock(&c->lock);
        c->inputs_done++;
        report(c);
        pthread_mutex_unlock(&c->lock);
    }
    if (rc == 1 && chunk_finished(c, chunk, &acc, &qk, n)) {
        *err = c->err;
        rc = -1;
    }
    av_corpus_lines_close(&lines);
    av_corpus_acc_free(&acc);
    av_corpus_qk_free(&qk);
    return rc;
}

static void *worker(void *arg) {
    run_ctx *c = arg;
    for (;;) {
        pthread_mutex_lock(&c->lock);
        int64_t chunk = !stopping(c) && c->next < c->n_todo ? c->todo[c->next++] : -1;
        pthread_mutex_unlock(&c->lock);
        if (chunk < 0) return NULL;
        av_err err = {{0}};
        if (do_chunk(c, chunk, &err) < 0) {
            pthread_mutex_lock(&c->lock);
            if (!c->failed || !c->err.msg[0]) c->err = err;
            c->failed = 1;
            pthread_mutex_unlock(&c->lock);
        }
    }
}

/* This rank's chunks that the state does not hold yet, and the number of lines they cover. */
static int plan(run_ctx *c) {
    const av_corpus_input *in = c->job->input;
    c->todo = malloc(sizeof *c->todo * (size_t)(in->n_chunks ? in->n_chunks : 1));
    if (!c->todo) return av_errf(&c->err, "out of memory");
    for (int64_t k = c->job->rank; k < in->n_chunks; k += c->job->n_ranks) {
        c->res->chunks_total++;
        if (c->done[k / 8] & (1u << (k % 8))) {
            c->res->chunks_resumed++;
            c->res->chunks_done++;
            continue;
        }
        c->todo[c->n_todo++] = k;
        int64_t first = k * in->chunk_lines, last = first + in->chunk_lines;
        c->inputs_total += (last < in->n_lines ? last : in->n_lines) - first;
    }
    return 0;
}

static int run_threads(run_ctx *c) {
    int nt = c->job->n_threads > 0 ? c->job->n_threads : 1;
    if (nt > c->n_todo) nt = c->n_todo > 0 ? (int)c->n_todo : 1;
    pthread_t *tid = calloc((size_t)nt, sizeof *tid);
    int *started = calloc((size_t)nt, sizeof *started);
    if (!tid || !started) {
        free(tid);
        free(started);
        return av_errf(&c->err, "out of memory");
    }
    for (int i = 1; i < nt; i++)
        started[i] = pthread_create(&tid[i], NULL, worker, c) == 0;
    worker(c);
    for (int i = 1; i < nt; i++)
        if (started[i]) pthread_join(tid[i], NULL);
    free(tid);
    free(started);
    return 0;
}

int av_corpus_run(const av_corpus_job *job, av_corpus_result *res, av_err *err) {
    memset(res, 0, sizeof *res);
    av_corpus_acc_init(&res->acc, job->top_k);
    av_corpus_qk_init(&res->qk, job->qk_kind, job->qk_layer, job->qk_head, job->qk_samples, job->seed);
    run_ctx c = {.job = job, .res = res, .t0 = av_seconds()};
    c.last_save = c.t0;
    pthread_mutex_init(&c.lock, NULL);
    int rc = -1;
    if (!(c.done = calloc((size_t)(job->input->n_chunks + 8) / 8, 1))) {
        av_errf(err, "out of memory");
        goto done;
    }
    if (job->state_path &&
        av_corpus_state_load(job->state_path, job->fingerprint, job->rank, job->n_ranks, job->input->n_chunks,
                             c.done, &res->acc, job->qk_layer >= 0 ? &res->qk : NULL, err) < 0)
        goto done;
    if (plan(&c) || run_threads(&c)) {
        *err = c.err;
        goto done;
    }
    if (c.failed) {
        *err = c.err;
        save_state(&c); /* keep what is complete */
        goto done;
    }
    res->interrupted = res->chunks_done < res->chunks_total;
    if (save_state(&c)) {
        *err = c.err;
        goto done;
    }
    if (job->qk_layer >= 0 && av_corpus_qk_finish(&res->qk, err)) goto done;
    rc = 0;
done:
    res->seconds = av_seconds() - c.t0;
    pthread_mutex_destroy(&c.lock);
    free(c.todo);
    free(c.done);
    return rc;
}

void av_corpus_result_free(av_corpus_result *res) {
    av_corpus_acc_free(&res->acc);
    av_corpus_qk_free(&res->qk);
}

/* ---- single lines ---- */

/* Positions r on `line` (1-based). */
static int seek_line(const av_corpus_input *in, int64_t line, av_corpus_lines *r, av_err *err) {
    if (line < 1 || line > in->n_lines)
        return av_errf(err, "line %lld is outside the input", (long long)line);
    if (av_corpus_lines_open(r, in, (line - 1) / in->chunk_lines, err)) return -1;
    int got;
    while ((got = av_corpus_lines_next(r, err)) == 1 && r->line < line) {
    }
    if (got != 1) {
        av_corpus_lines_close(r);
        return got < 0 ? -1 : av_errf(err, "%s: line %lld not found", in->path, (long long)line);
    }
    return 0;
}

char *av_corpus_read_text(const av_corpus_input *in, int64_t line, const char *field, av_err *err) {
    av_corpus_lines r;
    if (seek_line(in, line, &r, err)) return NULL;
    char *text, *target;
    if (av_corpus_line_text(in, &r, field, NULL, &text, &target) != AV_BAD_COUNT)
        av_errf(err, "line %lld is not a usable input", (long long)line);
    av_corpus_lines_close(&r);
    free(target);
    return text;
}

int av_corpus_rerun_line(const av_corpus_job *job, int64_t line, av_trace **out, av_err *err) {
    *out = NULL;
    av_corpus_lines r;
    if (seek_line(job->input, line, &r, err)) return -1;
    char *text, *target;
    int rc = -1;
    if (av_corpus_line_text(job->input, &r, job->field, job->target_field, &text, &target) != AV_BAD_COUNT)
        av_errf(err, "line %lld is not a usable input", (long long)line);
    else
        rc = job->run(job->run_ctx, text, target, 0, out, err);
    av_corpus_lines_close(&r);
    free(text);
    free(target);
    return rc;
}
