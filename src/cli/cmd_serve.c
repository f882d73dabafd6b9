/* attnviz serve: the local web app (docs/API.md). `serve --model PATH` runs text typed in the page;
 * `serve trace.safetensors` shows a saved trace. Stops cleanly on SIGINT/SIGTERM (a second signal while a
 * run is still finishing quits at once). */
#include "cli.h"

#include "server/server.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const cli_opt_spec opts[] = {
    {"model", 1, "PATH    model to run: llama2.c .bin, .gguf, or Hugging Face directory"},
    {"tokenizer", 1, "PATH    tokenizer file (default: from the model or next to it)"},
    {"host", 1, "ADDR    address to listen on (default 127.0.0.1; others are reachable from the network)"},
    {"port", 1, "N       port (default 8080; 0 picks a free one)"},
    {"max-tokens", 1, "N       tokens per run (default 8192, at most the model's context)"},
    {"max-body", 1, "BYTES   largest request body (default 1048576)"},
    {"max-queue", 1, "N       runs waiting at once (default 8)"},
    {"max-runs", 1, "N       finished runs kept (default 16)"},
    {"memory-mb", 1, "MB      memory for kept traces (default 2048)"},
    {"cache-mb", 1, "MB      tile cache (default 128)"},
    {"viewer-mb", 1, "MB      largest trace (all full matrices) shown with the viewer's views (default 256)"},
    {"timeout", 1, "S       idle connection timeout in seconds (default 30)"},
    {"request-timeout", 1, "S       a request's headers and body must arrive within S seconds (default 10)"},
    {"max-connections", 1, "N       simultaneous connections (default 64)"},
    {"max-per-ip", 1, "N       simultaneous connections from one client address (default 16)"},
    {"full", 0, "        keep full matrices, not q/k to recompute from (models without lazy traces: always)"},
    {"threads", 1, "N       threads of a run (default: all cores)"},
    {"help", 0, "        show this help"},
};
enum { N_OPTS = sizeof opts / sizeof opts[0] };

typedef struct stopper {
    av_server *srv;
    int done;
    pthread_mutex_t mu;
} stopper;

static void *stop_thread(void *arg) {
    stopper *st = arg;
    av_server_stop(st->srv);
    pthread_mutex_lock(&st->mu);
    st->done = 1;
    pthread_mutex_unlock(&st->mu);
    kill(getpid(), SIGUSR1); /* wakes the sigwait in cmd_serve */
    return NULL;
}

/* Waits for SIGINT/SIGTERM (blocked in every thread), then stops the server. */
static int wait_and_stop(av_server *srv, const sigset_t *set) {
    int sig = 0;
    do
        sigwait(set, &sig);
    while (sig == SIGUSR1);
    fprintf(stderr, "attnviz serve: %s received, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    stopper st = {srv, 0, PTHREAD_MUTEX_INITIALIZER};
    pthread_t th;
    if (pthread_create(&th, NULL, stop_thread, &st) != 0) {
        av_server_stop(srv);
        return 0;
    }
    for (;;) {
        sigwait(set, &sig);
        pthread_mutex_lock(&st.mu);
        int done = st.done;
        pthread_mutex_unlock(&st.mu);
        if (done) break;
        if (sig != SIGUSR1) {
            fprintf(stderr,
                    "attnviz serve: second signal: quitting without waiting for the run in progress\n");
            _exit(130);
        }
    }
    pthread_join(th, NULL);
    return 0;
}

/* The server parameters from the options; 0, or -1 after printing the error. */
static int serve_params(const cli_args *a, const char *cmd, av_server_params *p) {
    *p = av_server_default_params();
    long port, max_tokens, max_body, max_queue, max_runs, mem_mb, cache_mb, viewer_mb, timeout, threads;
    long req_timeout, max_conn, per_ip;
    if (cli_get_int(a, "port", 8080, 0, 65535, &port, cmd) ||
        cli_get_int(a, "max-tokens", p->max_tokens, 1, 1 << 24, &max_tokens, cmd) ||
        cli_get_int(a, "max-body", (long)p->max_body, 1024, 1L << 30, &max_body, cmd) ||
        cli_get_int(a, "max-queue", p->max_queue, 1, 1000, &max_queue, cmd) ||
        cli_get_int(a, "max-runs", p->max_runs, 1, 10000, &max_runs, cmd) ||
        cli_get_int(a, "memory-mb", 2048, 16, 1L << 22, &mem_mb, cmd) ||
        cli_get_int(a, "cache-mb", 128, 1, 1L << 20, &cache_mb, cmd) ||
        cli_get_int(a, "viewer-mb", 256, 1, 1L << 20, &viewer_mb, cmd) ||
        cli_get_int(a, "timeout", p->timeout_s, 1, 3600, &timeout, cmd) ||
        cli_get_int(a, "request-timeout", p->request_timeout_s, 1, 3600, &req_timeout, cmd) ||
        cli_get_int(a, "max-connections", p->max_connections, 1, 4096, &max_conn, cmd) ||
        cli_get_int(a, "max-per-ip", p->max_per_ip, 1, 4096, &per_ip, cmd) ||
        cli_get_int(a, "threads", 0, 0, 64, &threads, cmd))
        return -1;
    p->port = (int)port;
    p->max_tokens = (int)max_tokens;
    p->max_body = (size_t)max_body;
    p->max_queue = (int)max_queue;
    p->max_runs = (int)max_runs;
    p->max_trace_bytes = (size_t)mem_mb << 20;
    p->cache_bytes = (size_t)cache_mb << 20;
    p->viewer_bytes = (size_t)viewer_mb << 20;
    p->timeout_s = (int)timeout;
    p->request_timeout_s = (int)req_timeout;
    p->max_connections = (int)max_conn;
    p->max_per_ip = (int)per_ip;
    p->n_threads = (int)threads;
    p->lazy = !cli_has(a, "full");
    if (cli_get(a, "host")) p->host = cli_get(a, "host");
    return 0;
}

/* What is served, where, and how runs are kept. */
static void print_banner(const av_model *m, const av_server *srv, const av_server_params *p) {
    if (m) {
        av_model_info mi = av_model_get_info(m);
        fprintf(stderr, "attnviz serve: model %s (%s, %d layers x %d heads), up to %d tokens per run%s\n",
                mi.name, mi.arch, mi.n_layers, mi.n_heads,
                p->max_tokens < mi.max_seq_len ? p->max_tokens : mi.max_seq_len,
                av_server_lazy(srv) ? " (lazy traces)" : " (full traces)");
    }
    int v6 = strchr(p->host, ':') != NULL;
    fprintf(stderr, "attnviz serve: listening on http://%s%s%s:%d/  (Ctrl-C to stop)\n", v6 ? "[" : "",
            p->host, v6 ? "]" : "", av_server_port(srv));
}

int cmd_serve(int argc, char **argv) {
    const char *cmd = "serve";
    /* SIGINT/SIGTERM are taken by sigwait: block them (and SIGUSR1, the stopper's wake-up) before any thread
     * starts, and undo an inherited SIG_IGN (background jobs of scripts) so that `kill -INT` stops the server
     */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGPIPE, SIG_IGN);
    cli_args a;
    int early;
    if (cli_start(
            argc, argv, opts, N_OPTS,
            "usage: attnviz serve --model PATH [--tokenizer PATH] [--port N] [--host ADDR]\n"
            "       attnviz serve trace.safetensors [--port N] [--host ADDR]\n\n"
            "Starts the local web app: type text, run, and explore every layer and head, with a zoomable\n"
            "map from the whole sequence down to single cells. The HTTP API is described in "
            "docs/API.md.\n",
            -1, &a, cmd, &early))
        return early;
    int rc = 1;
    av_model *m = NULL;
    av_trace *t = NULL;
    av_server *srv = NULL;
    av_err err = {{0}};
    av_server_params p;
    if (serve_params(&a, cmd, &p)) goto done;
    const char *model_path = cli_get(&a, "model");
    if (a.n_positional > 1 || (a.n_positional == 1 && model_path)) {
        cli_failf(cmd, "give either --model PATH or one trace file, not both (see 'attnviz serve --help')");
        goto done;
    }
    if (!model_path && a.n_positional == 0) {
        cli_failf(cmd, "nothing to serve: give --model PATH (a model to run) or a trace file");
        goto done;
    }
    if (!av_server_host_is_loopback(p.host))
        fprintf(stderr,
                "attnviz serve: warning: listening on %s makes the server (and any model run it offers) "
                "reachable from other machines; it has no authentication\n",
                p.host);
    if (model_path) {
        if (cli_load_model(&a, cmd, &m)) goto done;
    } else if (av_trace_load(a.positional[0], &t, &err)) {
        cli_fail(cmd, &err);
        goto done;
    }
    av_trace *given = t;
    t = NULL;
    if (av_server_start(m, given, &p, &srv, &err)) {
        cli_fail(cmd, &err);
        goto done;
    }
    print_banner(m, srv, &p);
    rc = wait_and_stop(srv, &set);
    srv = NULL;
    fprintf(stderr, "attnviz serve: stopped\n");
done:
    av_server_stop(srv);
    av_trace_free(t);
    av_model_free(m);
    cli_args_free(&a);
    return rc;
}
