/* llama.cpp (node-llama-cpp 3.21.1's libllama) next to attnviz, for tests/cli/test_llamacpp_quants.sh and
 * bench/quant_mem.sh:
 *   llama_ref quantize IN.gguf OUT.gguf FTYPE      llama_model_quantize to llama_ftype FTYPE (a number, e.g.
 *                                                  15 = Q4_K_M), no importance matrix
 *   llama_ref logits MODEL.gguf LLAMA.f32 AV.f32 AV_SHORT.f32
 *                                                  logits of every position of the fixed ids (tiny_llama.py's
 *                                                  IDS) from llama.cpp and from attnviz, raw f32 [T, vocab];
 *                                                  AV_SHORT: attnviz on the first 6 ids alone (its
 *                                                  matrix-vector path)
 *   llama_ref time MODEL.gguf IDS.json N_THREADS   llama.cpp's prompt processing of the ids (a JSON array of
 *                                                  integers; one llama_decode call, logits of the last
 *                                                  position): prints its wall seconds and the process's
 *                                                  CPU seconds during it
 *   llama_ref gen MODEL.gguf N_THREADS STEPS       llama.cpp's token-by-token decoding: STEPS one-token
 *                                                  llama_decode calls (logits each time) after an untimed
 *                                                  first one; prints wall and process CPU seconds per token
 *   llama_ref batch LABEL REF.gguf DIR SPEC...     the logits files of `logits` for many models in one
 * process, as DIR/NAME.llama.f32, .av.f32, .av_short.f32; a SPEC is NAME=FTYPE (REF quantized to
 * DIR/NAME.gguf unless that file exists; FTYPE 0: REF itself) or NAME@PATH (a file or a Hugging Face
 * directory; llama.cpp runs .gguf files only). Prints "FAIL llamacpp_LABEL_NAME: ..." when llama.cpp cannot
 *                                                  quantize or load a file
 * Exit status 0 on success; errors go to stderr. */
#include "attnviz.h"

#include <llama.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { N_IDS = 40, N_SHORT = 6 };

static int fixed_id(int i, int vocab) { return (i * 37 + 11) % (vocab - 3) + 3; }

static void quiet_log(enum ggml_log_level level, const char *text, void *user) {
    if (level == GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
}

static int write_f32(const char *path, const float *v, size_t n) {
    FILE *fp = fopen(path, "wb");
    int ok = fp && fwrite(v, sizeof(float), n, fp) == n;
    if (fp && fclose(fp)) ok = 0;
    if (!ok) fprintf(stderr, "llama_ref: cannot write %s\n", path);
    return ok ? 0 : -1;
}

static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* llama.cpp's logits of ids (n of them) at every position (all = 1) or the last; out: (n or 1, vocab).
 * seconds: the decode's wall and process CPU time. */
static float *llama_logits(const char *path, const int32_t *ids, int n, int all, int threads, int *vocab,
                           double seconds[2]) {
    struct llama_model_params mp = llama_model_default_params();
    struct llama_model *model = llama_model_load_from_file(path, mp);
    if (!model) return fprintf(stderr, "llama_ref: llama.cpp cannot load %s\n", path), NULL;
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = cp.n_batch = cp.n_ubatch = (uint32_t)n;
    cp.n_threads = cp.n_threads_batch = threads;
    cp.no_perf = true;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    float *out = NULL;
    *vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    struct llama_batch b = llama_batch_init(n, 0, 1);
    for (int i = 0; ctx && i < n; i++) {
        b.token[i] = ids[i];
        b.pos[i] = i;
        b.n_seq_id[i] = 1;
        b.seq_id[i][0] = 0;
        b.logits[i] = all || i == n - 1;
    }
    b.n_tokens = n;
    double t0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    if (ctx && llama_decode(ctx, b) == 0) {
        seconds[0] = clock_s(CLOCK_MONOTONIC) - t0;
        seconds[1] = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
        int rows = all ? n : 1;
        out = malloc(sizeof(float) * (size_t)rows * (size_t)*vocab);
        for (int i = 0; out && i < rows; i++)
            memcpy(out + (size_t)i * (size_t)*vocab, llama_get_logits_ith(ctx, all ? i : n - 1),
                   sizeof(float) * (size_t)*vocab);
    } else {
        fprintf(stderr, "llama_ref: llama_decode failed on %s\n", path);
    }
    llama_batch_free(b);
    if (ctx) llama_free(ctx);
    llama_model_free(model);
    return out;
}

/* attnviz's logits of the first n ids at every position. */
static int attnviz_logits(const char *path, const int32_t *ids, int n, const char *out_path) {
    av_model_params mp = av_model_default_params();
    mp.n_threads = 2;
    av_model *m = NULL;
    av_trace *t = NULL;
    av_err err = {{0}};
    av_run_params rp = av_run_default_params();
    rp.n_threads = 2;
    rp.want_logits = 1;
    av_tensor lg;
    int rc =
        av_model_load(path, &mp, &m, &err) || av_trace_from_ids(m, ids, (size_t)n, &rp, &t, &err) ? -1 : 0;
    if (rc)
        fprintf(stderr, "llama_ref: attnviz: %s\n", err.msg);
    else if (av_trace_logits(t, &lg) || lg.dtype != AV_DTYPE_F32)
        rc = -1, fprintf(stderr, "llama_ref: no logits\n");
    else
        rc = write_f32(out_path, lg.data, (size_t)av_tensor_numel(&lg));
    av_trace_free(t);
    av_model_free(m);
    return rc;
}

/* llama.cpp's logits of the fixed ids into llama_out (when not NULL), attnviz's into av_out and av_short. */
static int run_logits(const char *model, const char *llama_out, const char *av_out, const char *av_short) {
    int vocab = 512;
    double s[2];
    int32_t ids[N_IDS];
    for (int i = 0; i < N_IDS; i++)
        ids[i] = fixed_id(i, 512);
    float *lg = llama_out ? llama_logits(model, ids, N_IDS, 1, 2, &vocab, s) : NULL;
    if (llama_out && (!lg || vocab != 512)) return free(lg), 1;
    int rc = (llama_out && write_f32(llama_out, lg, (size_t)N_IDS * 512)) ||
             attnviz_logits(model, ids, N_IDS, av_out) || attnviz_logits(model, ids, N_SHORT, av_short);
    free(lg);
    return rc ? 1 : 0;
}

static int cmd_logits(char **argv) { return run_logits(argv[0], argv[1], argv[2], argv[3]); }

static int quantize(const char *in, const char *out, int ftype) {
    struct llama_model_quantize_params qp = llama_model_quantize_default_params();
    qp.ftype = (enum llama_ftype)ftype;
    qp.nthread = 2;
    return llama_model_quantize(in, out, &qp) ? -1 : 0;
}

static int cmd_batch(int argc, char **argv) {
    const char *label = argv[0], *ref = argv[1], *dir = argv[2];
    int failed = 0;
    for (int i = 3; i < argc; i++) {
        char name[128], path[4096], outs[3][4200];
        const char *eq = strchr(argv[i], '='), *at = strchr(argv[i], '@'), *sep = eq ? eq : at;
        if (!sep || (size_t)(sep - argv[i]) >= sizeof name)
            return fprintf(stderr, "bad spec %s\n", argv[i]), 2;
        snprintf(name, sizeof name, "%.*s", (int)(sep - argv[i]), argv[i]);
        snprintf(path, sizeof path, "%s", eq ? ref : at + 1);
        if (eq && atoi(eq + 1) != 0) {
            snprintf(path, sizeof path, "%s/%s.gguf", dir, name);
            FILE *fp = fopen(path, "rb");
            if (fp) fclose(fp);
            if (!fp && quantize(ref, path, atoi(eq + 1))) {
                printf("FAIL llamacpp_%s_%s: llama_model_quantize to ftype %s failed\n", label, name, eq + 1);
                failed = 1;
                continue;
            }
        }
        size_t len = strlen(path);
        int gguf = len > 5 && strcmp(path + len - 5, ".gguf") == 0;
        for (int k = 0; k < 3; k++)
            snprintf(outs[k], sizeof outs[k], "%s/%s.%s.f32", dir, name,
                     (const char *[]){"llama", "av", "av_short"}[k]);
        remove(outs[0]), remove(outs[1]), remove(outs[2]);
        /* each file in a child process: ggml's AMX kernels keep their tile configuration per thread and
         * break once attnviz's AMX kernel has released the tiles in the same thread */
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) _exit(run_logits(path, gguf ? outs[0] : NULL, outs[1], outs[2]));
        int status = 0;
        if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status)) {
            printf("FAIL llamacpp_%s_%s: %s did not run (messages above)\n", label, name, path);
            failed = 1;
        }
    }
    return failed;
}

/* The integers of a JSON array file (at most max); -1 when unreadable. */
static int read_ids(const char *path, int32_t *ids, int max) {
    FILE *fp = fopen(path, "r");
    int n = 0, c;
    if (!fp) return -1;
    while (n < max && (c = fgetc(fp)) != EOF)
        if (c >= '0' && c <= '9') {
            long v = c - '0';
            while ((c = fgetc(fp)) >= '0' && c <= '9')
                v = v * 10 + (c - '0');
            ids[n++] = (int32_t)v;
        }
    fclose(fp);
    return n;
}

static int cmd_time(char **argv) {
    enum { MAX_IDS = 8192 };
    static int32_t ids[MAX_IDS];
    int n = read_ids(argv[1], ids, MAX_IDS), threads = atoi(argv[2]), vocab;
    double s[2] = {0, 0};
    if (n < 1 || threads < 1)
        return fprintf(stderr, "llama_ref: no ids in %s or bad N_THREADS\n", argv[1]), 1;
    float *lg = llama_logits(argv[0], ids, n, 0, threads, &vocab, s);
    if (lg) printf("%.3f %.3f\n", s[0], s[1]);
    free(lg);
    return lg ? 0 : 1;
}

static int cmd_gen(char **argv) {
    int threads = atoi(argv[1]), steps = atoi(argv[2]), ok = 0;
    if (threads < 1 || steps < 1 || steps > 4096)
        return fprintf(stderr, "llama_ref: bad N_THREADS or STEPS\n"), 1;
    struct llama_model *model = llama_model_load_from_file(argv[0], llama_model_default_params());
    if (!model) return fprintf(stderr, "llama_ref: llama.cpp cannot load %s\n", argv[0]), 1;
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)steps + 1;
    cp.n_batch = cp.n_ubatch = 1;
    cp.n_threads = cp.n_threads_batch = threads;
    cp.no_perf = true;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    int vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    struct llama_batch b = llama_batch_init(1, 0, 1);
    double t0 = 0, c0 = 0;
    for (int i = 0; ctx && i <= steps; i++) {
        if (i == 1) t0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
        b.token[0] = (int32_t)((i * 7919 + 1) % vocab); /* any ids: the work per token is the same */
        b.pos[0] = i;
        b.n_seq_id[0] = 1;
        b.seq_id[0][0] = 0;
        b.logits[0] = 1;
        b.n_tokens = 1;
        if (!(ok = llama_decode(ctx, b) == 0)) break;
    }
    if (ok)
        printf("%.4f %.4f\n", (clock_s(CLOCK_MONOTONIC) - t0) / steps,
               (clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0) / steps);
    else
        fprintf(stderr, "llama_ref: decoding %s failed\n", argv[0]);
    llama_batch_free(b);
    if (ctx) llama_free(ctx);
    llama_model_free(model);
    return ok ? 0 : 1;
}

int main(int argc, char **argv) {
    const char *lib = getenv("LIB");
    if (argc < 2 || !lib)
        return fprintf(stderr, "usage: LIB=<libllama dir> llama_ref quantize|logits|time|gen ...\n"), 2;
    llama_log_set(quiet_log, NULL);
    ggml_backend_load_all_from_path(lib);
    llama_backend_init();
    int rc = 2;
    if (strcmp(argv[1], "quantize") == 0 && argc == 5) {
        rc = quantize(argv[2], argv[3], atoi(argv[4])) ? 1 : 0;
        if (rc) fprintf(stderr, "llama_ref: llama_model_quantize to ftype %s failed\n", argv[4]);
    } else if (strcmp(argv[1], "logits") == 0 && argc == 6) {
        rc = cmd_logits(argv + 2);
    } else if (strcmp(argv[1], "batch") == 0 && argc >= 5) {
        rc = cmd_batch(argc - 2, argv + 2);
    } else if (strcmp(argv[1], "time") == 0 && argc == 5) {
        rc = cmd_time(argv + 2);
    } else if (strcmp(argv[1], "gen") == 0 && argc == 5) {
        rc = cmd_gen(argv + 2);
    } else {
        fprintf(stderr, "llama_ref: bad arguments\n");
    }
    llama_backend_free();
    return rc;
}
