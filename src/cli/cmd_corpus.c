/* attnviz corpus: per-head statistics, roles and query/key maps over a whole data set (docs/CORPUS.md), in
 * one process or across the ranks of an MPI job (`mpirun -np N attnviz corpus ...`). Every rank runs its
 * chunks of lines with its own threads and keeps a resumable state file; rank 0 merges the exact statistics
 * and writes the report. SIGINT/SIGTERM stop after the inputs in progress with the state saved: the same
 * command resumes. */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "render/corpus_render.h"
#include "cli.h"
#include "corpus_comm.h"

#include <dirent.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const cli_opt_spec opts[] = {
    {"model", 1, "PATH       model: llama2.c .bin, .gguf, or Hugging Face directory"},
    {"tokenizer", 1, "PATH   tokenizer file (default: from the model or next to it)"},
    {"input", 1, "PATH       one input per line: JSON Lines (.jsonl) or plain text"},
    {"format", 1, "F         auto (by extension), jsonl or txt (default auto)"},
    {"field", 1, "NAME       JSON Lines: the key holding the text (default text)"},
    {"target-field", 1,
     "NAME encoder-decoders: the key holding a target to force (default: greedy decoding)"},
    {"steps", 1, "N          encoder-decoders without a target: greedy decoding limit (default 32)"},
    {"output", 1, "DIR       report directory (default corpus-report); also -o"},
    {"o", 1, "DIR            same as --output"},
    {"threads", 1, "N        inputs run at once by this process (default: the cores it may use)"},
    {"forward-threads", 1, "N threads inside each forward pass (default 1)"},
    {"chunk", 1, "N          lines per chunk, the unit of sharding and resuming (default 16)"},
    {"top", 1, "K            top examples kept per head and role (default 5)"},
    {"save-traces", 1, "N    save traces and viewer pages of each head's N best examples (default 0)"},
    {"qk-layer", 1, "L       query/key map of this layer"},
    {"qk-head", 1, "H        ... and this head (default 0)"},
    {"qk-kind", 1,
     "K        ... of this attention: self, or enc, dec, cross (encoder-decoders; default enc)"},
    {"qk-samples", 1, "N     sampled queries and sampled keys (default 1000 each)"},
    {"seed", 1, "S           seed of the query/key sample and of t-SNE (default 1)"},
    {"perplexity", 1, "P     t-SNE perplexity (default 30)"},
    {"tsne-iters", 1, "N     t-SNE iterations (default 1000; 0: PCA only)"},
    {"tsne-theta", 1, "T     Barnes-Hut accuracy (default 0.5; 0: exact gradients)"},
    {"no-bos", 0, "           do not add the BOS/[CLS] tokens"},
    {"max-line-bytes", 1, "N longer lines are skipped (default 1048576)"},
    {"checkpoint", 1, "SEC   write the state at most every SEC seconds (default 30; 0: after each chunk)"},
    {"fresh", 0, "            ignore (and replace) a saved state in the report directory"},
    {"progress", 0, "         progress on stderr even when it is not a terminal"},
    {"quiet", 0, "            no progress and no summary"},
    {"help", 0, "             show this help"},
};
enum { N_OPTS = sizeof opts / sizeof opts[0] };

static const char *const usage_text =
    "usage: attnviz corpus --model PATH --input data.jsonl|data.txt [--field text] [-o DIR] [options]\n"
    "       mpirun -np N attnviz corpus ...   (the same command across processes and machines)\n";

/* ---- signals: the first SIGINT/SIGTERM/SIGHUP asks the run to stop, a second one quits at once ----
 * A handler, not sigwait: OpenBLAS starts its threads before main, with these signals unblocked, so a
 * process-directed signal may land on any thread. The flag the handler sets is the one static of this file.
 */

static atomic_int stop_requested;

static void on_signal(int sig) {
    if (atomic_exchange(&stop_requested, 1)) _exit(128 + sig); /* the last state file stays */
    static const char msg[] =
        "\nattnviz corpus: stopping after the inputs in progress (the state is saved; the "
        "same command resumes)\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
}

static void catch_signals(void) {
    atomic_store(&stop_requested, 0);
    const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(sigs[i], &sa, NULL);
    }
}

/* ---- progress ---- */

typedef struct progress_ctx {
    int on, tty;
    double last;
} progress_ctx;

static void progress(void *ctx, const av_corpus_progress *p) {
    progress_ctx *pc = ctx;
    double now = av_seconds();
    int final = p->inputs_done == p->inputs_total;
    if (!pc->on || (!final && now - pc->last < (pc->tty ? 0.25 : 2.0))) return;
    pc->last = now;
    double rate = p->seconds > 0 ? p->inputs_done / p->seconds : 0;
    double eta = rate > 0 ? (p->inputs_total - p->inputs_done) / rate : NAN;
    fprintf(stderr, "%sattnviz corpus: %lld/%lld inputs  %.1f inputs/s  ETA %s%.0f s  chunks %lld/%lld%s",
            pc->tty ? "\r" : "", (long long)p->inputs_done, (long long)p->inputs_total, rate,
            isnan(eta) ? "? " : "", isnan(eta) ? 0 : eta, (long long)p->chunks_done,
            (long long)p->chunks_total, pc->tty ? "  " : "\n");
    if (pc->tty && final) fputc('\n', stderr);
}

/* ---- settings ---- */

typedef struct settings {
    const char *out, *format;
    int quiet;
    long threads, fwd_threads, chunk, top, save, qk_layer, qk_head, qk_samples, steps, tsne_iters, max_line;
    double perplexity, theta, checkpoint;
    uint64_t seed;
} settings;

/* The cores this process may run on (an MPI launcher may bind it to fewer than the machine has). */
static int usable_cores(void) {
#ifdef CPU_COUNT
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
#endif
    return av_default_threads();
}

static int read_settings(const cli_args *a, settings *s, const char *cmd) {
    memset(s, 0, sizeof *s);
    s->out = cli_output(a, "corpus-report");
    s->quiet = cli_has(a, "quiet");
    s->format = cli_get(a, "format");
    long seed;
    int cores = usable_cores();
    if (cli_get_int(a, "threads", cores, 1, 256, &s->threads, cmd) ||
        cli_get_int(a, "forward-threads", 1, 1, 256, &s->fwd_threads, cmd) ||
        cli_get_int(a, "chunk", 16, 1, 1 << 20, &s->chunk, cmd) ||
        cli_get_int(a, "top", 5, 1, 100, &s->top, cmd) ||
        cli_get_int(a, "save-traces", 0, 0, 100, &s->save, cmd) ||
        cli_get_int(a, "qk-layer", -1, 0, 1 << 16, &s->qk_layer, cmd) ||
        cli_get_int(a, "qk-head", 0, 0, 1 << 16, &s->qk_head, cmd) ||
        cli_get_int(a, "qk-samples", 1000, 1, 1 << 20, &s->qk_samples, cmd) ||
        cli_get_int(a, "seed", 1, 0, INT32_MAX, &seed, cmd) ||
        cli_get_int(a, "steps", 32, 1, 4096, &s->steps, cmd) ||
        cli_get_int(a, "tsne-iters", 1000, 0, 100000, &s->tsne_iters, cmd) ||
        cli_get_int(a, "max-line-bytes", 1 << 20, 16, 1L << 30, &s->max_line, cmd) ||
        cli_get_num(a, "perplexity", 30, 2, 1000, "in [2, 1000]", &s->perplexity, cmd) ||
        cli_get_num(a, "tsne-theta", 0.5, 0, 1.5, "in [0, 1.5]", &s->theta, cmd) ||
        cli_get_num(a, "checkpoint", 30, 0, 1e9, ">= 0", &s->checkpoint, cmd))
        return -1;
    s->seed = (uint64_t)seed;
    if (cli_has(a, "qk-layer") == 0 &&
        (cli_has(a, "qk-head") || cli_has(a, "qk-samples") || cli_has(a, "qk-kind")))
        return cli_failf(cmd, "--qk-head, --qk-kind and --qk-samples go with --qk-layer L") ? -1 : -1;
    if (!cli_get(a, "input"))
        return cli_failf(cmd, "--input PATH is required (one input per line)") ? -1 : -1;
    return 0;
}

/* What a state file must match: the model, the input's content and every setting that changes the numbers. */
static char *fingerprint(const av_model *m, const av_corpus_input *in, const cli_args *a, const settings *s,
                         av_attn_kind qk_kind) {
    av_model_info mi = av_model_get_info(m);
    av_buf b = {0};
    av_buf_printf(
        &b, "attnviz-corpus 1|model %s %s %lld %d %d|input %llu %016llx %lld|format %d|field %s|target %s",
        mi.name, mi.arch, (long long)mi.n_params, mi.n_layers, mi.n_heads, (unsigned long long)in->size,
        (unsigned long long)in->hash, (long long)in->n_lines, (int)in->format,
        cli_get(a, "field") ? cli_get(a, "field") : "text",
        cli_get(a, "target-field") ? cli_get(a, "target-field") : "-");
    av_buf_printf(&b, "|chunk %ld|top %ld|bos %d|steps %ld|maxline %ld|qk %s %ld %ld %ld %llu", s->chunk,
                  s->top, !cli_has(a, "no-bos"), s->steps, s->max_line, av_attn_kind_name(qk_kind),
                  s->qk_layer, s->qk_head, s->qk_samples, (unsigned long long)s->seed);
    if (b.oom) free(b.s);
    return b.oom ? NULL : b.s;
}

/* ---- after the run: rank 0 merges and writes ---- */

typedef struct merged {
    av_corpus_result all; /* merged over ranks */
    int failed, interrupted;
    double max_seconds;
} merged;

/* Merges every rank's result (rank order); fp: rank 0's fingerprint, which every rank's must equal. Failing
 * ranks are reported on stderr (a message repeated by the next ranks once). */
static int merge_parts(char **parts, size_t *lens, int n, int with_qk, const av_corpus_job *job,
                       const char *fp, merged *m, av_err *err) {
    memset(m, 0, sizeof *m);
    av_corpus_acc_init(&m->all.acc, job->top_k);
    av_corpus_qk_init(&m->all.qk, job->qk_kind, job->qk_layer, job->qk_head, job->qk_samples, job->seed);
    char last[512] = "";
    for (int r = 0; r < n; r++) {
        av_reader rd;
        char name[32], msg[512] = "", *rfp = NULL;
        snprintf(name, sizeof name, "rank %d", r);
        av_reader_init(&rd, parts[r], lens[r], name);
        av_corpus_result res;
        int status = 1;
        int rc = av_corpus_result_read(&res, &status, msg, &rfp, &rd, err);
        if (!rc && status == 0 && fp && strcmp(rfp, fp) != 0) {
            status = 1;
            snprintf(msg, sizeof msg,
                     "it read another model or input than rank 0, or with other settings (every "
                     "rank must see the same files)");
        }
        if (!rc && status == 1 && strcmp(msg, last) != 0)
            fprintf(stderr, "attnviz corpus: rank %d failed: %s\n", r, msg);
        snprintf(last, sizeof last, "%s", msg);
        free(rfp);
        m->failed |= rc || status == 1;
        m->interrupted |= status == 2;
        if (!rc && status == 0 && fp) /* rank 0 failed (no fp): report only */
            rc = av_corpus_acc_merge(&m->all.acc, &res.acc, err) ||
                 (with_qk && av_corpus_qk_merge(&m->all.qk, &res.qk, err));
        m->all.chunks_done += res.chunks_done;
        m->all.chunks_total += res.chunks_total;
        m->all.chunks_resumed += res.chunks_resumed;
        m->all.inputs_run += res.inputs_run;
        m->max_seconds = fmax(m->max_seconds, res.seconds);
        av_corpus_result_free(&res);
        if (rc) return -1;
    }
    return with_qk ? av_corpus_qk_finish(&m->all.qk, err) : 0;
}

static int write_run_json(const settings *s, const cli_comm *c, const merged *m, double total_s,
                          av_err *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/run.json", s->out);
    double inputs = (double)m->all.inputs_run;
    json_t *o =
        json_pack("{ss si sb si si sI sI sI sI sf sf so}", "format", "attnviz-corpus-run", "ranks", c->size,
                  "mpi", c->mpi, "threads_per_rank", (int)s->threads, "forward_threads", (int)s->fwd_threads,
                  "chunks", (json_int_t)m->all.chunks_total, "chunks_resumed",
                  (json_int_t)m->all.chunks_resumed, "inputs_run", (json_int_t)m->all.inputs_run, "examples",
                  (json_int_t)m->all.acc.n_examples, "seconds_run", m->max_seconds, "seconds_total", total_s,
                  "inputs_per_second", m->max_seconds > 0 ? json_real(inputs / m->max_seconds) : json_null());
    char *txt = o ? json_dumps(o, JSON_INDENT(1) | JSON_REAL_PRECISION(6)) : NULL;
    json_decref(o);
    int rc = txt ? av_file_write_atomic(path, txt, strlen(txt), err) : av_errf(err, "out of memory");
    free(txt);
    return rc;
}

static void summary(const merged *m, const settings *s) {
    const av_corpus_acc *a = &m->all.acc;
    uint64_t skipped = 0;
    for (int r = 0; r < AV_BAD_COUNT; r++)
        skipped += a->bad[r];
    fprintf(stderr, "attnviz corpus: %llu inputs (%llu tokens), %llu lines skipped",
            (unsigned long long)a->n_examples, (unsigned long long)a->n_tokens, (unsigned long long)skipped);
    for (int r = 0, first = 1; r < AV_BAD_COUNT; r++)
        if (a->bad[r]) {
            fprintf(stderr, "%s%s %llu", first ? " (" : ", ", av_bad_name((av_bad)r),
                    (unsigned long long)a->bad[r]);
            first = 0;
        }
    fprintf(stderr, "%s; %.1f inputs/s -> %s/index.html\n", skipped ? ")" : "",
            m->max_seconds > 0 ? (double)m->all.inputs_run / m->max_seconds : 0.0, s->out);
}

/* Rank 0: merge every rank's bytes and write the report; returns the exit code. */
static int finish(char **parts, size_t *lens, const cli_comm *c, const av_corpus_job *job, const settings *s,
                  const char *model_path, double t0) {
    const char *cmd = "corpus";
    merged m;
    av_err err = {{0}};
    int with_qk = job->qk_layer >= 0, code = 0;
    if (merge_parts(parts, lens, c->size, with_qk, job, job->fingerprint, &m, &err)) {
        code = cli_fail(cmd, &err);
    } else if (m.failed) {
        code = 1;
    } else if (m.interrupted) {
        fprintf(stderr,
                "attnviz corpus: interrupted with %lld of %lld chunks done; run the same command again to "
                "resume\n",
                (long long)m.all.chunks_done, (long long)m.all.chunks_total);
        code = 130;
    } else {
        av_corpus_output o = {s->out,        model_path,   job->add_bos,
                              (int)s->steps, (int)s->save, av_tsne_default_params()};
        o.tsne.perplexity = s->perplexity;
        o.tsne.n_iter = (int)s->tsne_iters;
        o.tsne.theta = s->theta;
        o.tsne.seed = s->seed;
        o.tsne.n_threads = (int)(s->threads * s->fwd_threads);
        if (av_corpus_write(job, &m.all.acc, with_qk ? &m.all.qk : NULL, &o, &err) ||
            write_run_json(s, c, &m, av_seconds() - t0, &err))
            code = cli_fail(cmd, &err);
        else if (!s->quiet)
            summary(&m, s);
    }
    av_corpus_result_free(&m.all);
    return code;
}

/* ---- running one input: the model is the command's, the statistics are analysis/'s ---- */

typedef struct runner {
    const av_model *model;
    int add_bos, steps, encdec;
} runner;

static int run_input(void *ctx, const char *text, const char *target, int lazy, av_trace **out, av_err *err) {
    const runner *r = ctx;
    av_run_params rp = av_run_default_params();
    rp.add_bos = r->add_bos;
    rp.lazy = lazy;
    if (r->encdec) return av_trace_from_pair(r->model, text, target, r->steps, &rp, out, err);
    return av_trace_from_text(r->model, text, &rp, out, err);
}

/* ---- one rank ---- */

typedef struct rank_run {
    av_model *model;
    runner run;
    av_corpus_input input;
    char *fp, state[4096];
    av_corpus_job job;
    av_corpus_result res;
    int status; /* 0 done, 1 failed, 2 interrupted */
    av_err err;
} rank_run;

static int load_model(const cli_args *a, const settings *s, av_model **m, av_err *err) {
    const char *path = cli_get(a, "model");
    if (!path || !*path)
        return av_errf(
            err, "--model PATH is required (a llama2.c .bin, a .gguf file or a Hugging Face directory)");
    av_model_params mp = av_model_default_params();
    mp.tokenizer_path = cli_get(a, "tokenizer");
    mp.n_threads = (int)s->fwd_threads;
    return av_model_load(path, &mp, m, err);
}

/* State files of a run with another number of processes in dir: refused (their chunks are split otherwise),
 * or removed with --fresh. */
static int other_states(const char *dir, int size, int fresh, av_err *err) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(d)) != NULL) {
        int r, n, len = 0;
        if (sscanf(e->d_name, "rank-%d-of-%d.bin%n", &r, &n, &len) != 2 || e->d_name[len] || n == size)
            continue;
        char path[4096];
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path) continue;
        if (fresh)
            unlink(path);
        else
            rc = av_errf(
                err,
                "%s holds the state of a run with %d processes: resume with -np %d, or start over with "
                "--fresh",
                dir, n, n);
    }
    closedir(d);
    return rc;
}

/* The attention kind of the query/key map (--qk-kind; default: self, enc for encoder-decoders), checked with
 * the layer and head against the model. */
static int qk_settings(const cli_args *a, const settings *s, const av_model_info *mi, av_attn_kind *kind,
                       av_err *err) {
    int encdec = mi->family == AV_FAMILY_ENCDEC;
    const char *name = cli_get(a, "qk-kind");
    *kind = encdec ? AV_ATTN_ENC : AV_ATTN_SELF;
    if (name && av_attn_kind_parse(name, kind))
        return av_errf(err, "--qk-kind must be self, enc, dec or cross, got '%s'", name);
    if (encdec != (*kind != AV_ATTN_SELF))
        return av_errf(err, "--qk-kind %s: %s has %s attention", av_attn_kind_name(*kind), mi->name,
                       encdec ? "enc, dec and cross" : "self");
    int n_layers = *kind == AV_ATTN_DEC || *kind == AV_ATTN_CROSS ? mi->n_dec_layers : mi->n_layers;
    if (s->qk_layer >= n_layers || s->qk_head >= mi->n_heads)
        return av_errf(
            err, "--qk-layer %ld --qk-head %ld: the model's %s attention has layers 0..%d and heads 0..%d",
            s->qk_layer, s->qk_head, av_attn_kind_name(*kind), n_layers - 1, mi->n_heads - 1);
    return 0;
}

/* Model, input, state file, job: everything before the run; -1 with rr->err. */
static int prepare(rank_run *rr, const cli_args *a, const settings *s, const cli_comm *c, atomic_int *stop) {
    av_err *err = &rr->err;
    av_corpus_format fmt;
    const char *in = cli_get(a, "input");
    if (av_corpus_format_parse(s->format, in, &fmt, err) || load_model(a, s, &rr->model, err) ||
        av_corpus_input_open(&rr->input, in, fmt, (int)s->chunk, (size_t)s->max_line, err))
        return -1;
    av_model_info mi = av_model_get_info(rr->model);
    av_attn_kind qk_kind;
    if (mi.family == AV_FAMILY_VIT)
        return av_errf(err, "%s is an image model: corpus runs text models", mi.name);
    if (!av_model_tokenizer(rr->model)) /* else every line would be skipped as a model error */
        return av_errf(err, "%s has no tokenizer: pass --tokenizer PATH", cli_get(a, "model"));
    if (qk_settings(a, s, &mi, &qk_kind, err)) return -1;
    if (!(rr->fp = fingerprint(rr->model, &rr->input, a, s, qk_kind))) return av_errf(err, "out of memory");
    snprintf(rr->state, sizeof rr->state, "%s/.state", s->out);
    if (av_corpus_mkdir(s->out, err) || av_corpus_mkdir(rr->state, err)) return -1;
    if (other_states(rr->state, c->size, cli_has(a, "fresh"), err)) return -1;
    snprintf(rr->state, sizeof rr->state, "%s/.state/rank-%d-of-%d.bin", s->out, c->rank, c->size);
    if (cli_has(a, "fresh")) unlink(rr->state);
    rr->run = (runner){rr->model, !cli_has(a, "no-bos"), (int)s->steps, mi.family == AV_FAMILY_ENCDEC};
    rr->job = (av_corpus_job){.model = rr->model,
                              .run = run_input,
                              .run_ctx = &rr->run,
                              .input = &rr->input,
                              .field = cli_get(a, "field") ? cli_get(a, "field") : "text",
                              .target_field = cli_get(a, "target-field"),
                              .add_bos = rr->run.add_bos,
                              .rank = c->rank,
                              .n_ranks = c->size,
                              .n_threads = (int)s->threads,
                              .top_k = (int)s->top,
                              .qk_kind = qk_kind,
                              .qk_layer = (int)s->qk_layer,
                              .qk_head = (int)s->qk_head,
                              .qk_samples = (int)s->qk_samples,
                              .seed = s->seed,
                              .state_path = rr->state,
                              .fingerprint = rr->fp,
                              .checkpoint_s = s->checkpoint,
                              .stop = stop};
    return 0;
}

/* Runs this rank and sends its result to rank 0; rank 0 also writes the report. Returns the exit code. */
static int run_rank(const cli_args *a, const settings *s, const cli_comm *c, atomic_int *stop, double t0) {
    rank_run rr;
    memset(&rr, 0, sizeof rr);
    progress_ctx pc = {!s->quiet && c->rank == 0 && (isatty(2) || cli_has(a, "progress")), isatty(2), 0};
    if (prepare(&rr, a, s, c, stop)) {
        rr.status = 1;
    } else {
        rr.job.progress = progress;
        rr.job.progress_ctx = &pc;
        if (av_corpus_run(&rr.job, &rr.res, &rr.err))
            rr.status = 1;
        else
            rr.status = rr.res.interrupted ? 2 : 0;
    }
    av_buf b = {0};
    av_corpus_result_write(&rr.res, rr.status, rr.err.msg, rr.fp, s->qk_layer >= 0, &b);
    char **parts = NULL;
    size_t *lens = NULL;
    av_err gerr = {{0}};
    int code = 1;
    if (b.oom || cli_comm_gather(c, b.s, b.n, &parts, &lens, &gerr)) {
        fprintf(stderr, "attnviz corpus: rank %d: %s\n", c->rank, b.oom ? "out of memory" : gerr.msg);
    } else if (c->rank == 0) {
        if (c->size == 1 && rr.status == 1) /* one process: its own message, without a rank */
            code = cli_fail("corpus", &rr.err);
        else
            code = finish(parts, lens, c, &rr.job, s, cli_get(a, "model"), t0);
    } else {
        code = 0;
    }
    for (int r = 0; parts && r < c->size; r++)
        free(parts[r]);
    free(parts);
    free(lens);
    free(b.s);
    av_corpus_result_free(&rr.res);
    av_corpus_input_close(&rr.input);
    av_model_free(rr.model);
    free(rr.fp);
    return code;
}

int cmd_corpus(int argc, char **argv) {
    const char *cmd = "corpus";
    double t0 = av_seconds();
    cli_args a;
    int early;
    if (cli_start(argc, argv, opts, N_OPTS, usage_text, 0, &a, cmd, &early)) return early;
    settings s;
    if (read_settings(&a, &s, cmd)) {
        cli_args_free(&a);
        return 2;
    }
    cli_comm c;
    int idle, code = 0;
    av_err err = {{0}};
    if (cli_comm_init(&c, &argc, &argv, &idle, &err)) {
        cli_fail(cmd, &err);
        cli_args_free(&a);
        return 1;
    }
    catch_signals(); /* after MPI_Init, which may install its own handlers */
    if (!idle) code = run_rank(&a, &s, &c, &stop_requested, t0);
    cli_comm_bcast_int(&c, &code);
    cli_comm_finalize(&c);
    cli_args_free(&a);
    return code;
}
