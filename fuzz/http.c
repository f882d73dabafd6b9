/* The HTTP API in process: one server (av_server_start on 127.0.0.1, any free port) serves a short generation
 * of the project's induction model as "t0" (attention, log-probabilities with alternatives and generation
 * metadata, so /steps and the viewer's step data answer 200; a small hand-made trace when the model is
 * missing) and the same model for POST /api/run; each input is up to four requests (FUZZ_SEP
 * between them), sent over loopback one connection each, with bounded waits. A request is "METHOD TARGET\n"
 * then the body (sent with Host, Content-Type and Content-Length headers; bytes of TARGET outside printable
 * ASCII are percent-encoded; the path segments t0 and r1 become the server's random ids of the trace and of
 * the last run a POST started), or "RAW\n" then bytes sent as they are. Seeds: fuzz/make_seeds.py (every
 * endpoint of docs/API.md with good and bad arguments). */
#include "fuzz.h"
#include "server/server.h"
#include "trace/trace.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

static av_server *server;
static av_model *model;

/* Ids the server made up (128 random bits): the trace given at start, the last run an input started. */
static char trace_id[64] = "t0", run_id[64] = "r1";

/* Sends a whole request over a fresh loopback connection; the answer's body (at most cap - 1 bytes) into
 * body. */
static void send_request(const uint8_t *req, size_t n, char *body, size_t cap) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return;
    struct timeval tv = {3, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)av_server_port(server));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    size_t got = 0;
    char buf[65536];
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
        for (size_t off = 0; off < n;) {
            ssize_t k = send(fd, req + off, n - off, MSG_NOSIGNAL);
            if (k <= 0) break;
            off += (size_t)k;
        }
        shutdown(fd, SHUT_WR);
        for (ssize_t k; (k = recv(fd, buf + got, sizeof buf - 1 - got, 0)) > 0;)
            got =
                got + (size_t)k < sizeof buf - 1 ? got + (size_t)k : 0; /* keeps the start of long answers */
    }
    close(fd);
    buf[got] = 0;
    const char *b = strstr(buf, "\r\n\r\n");
    if (body && cap) snprintf(body, cap, "%s", b ? b + 4 : "");
}

/* The "id" of a JSON answer (the run POST /api/run started; the first trace of GET /api/traces) into out. */
static void take_id(const char *body, char *out, size_t cap) {
    json_t *j = json_loads(body, 0, NULL), *v = json_is_array(j) ? json_array_get(j, 0) : j;
    const char *id = json_string_value(json_object_get(v, "id"));
    if (id && strlen(id) < cap) snprintf(out, cap, "%s", id);
    json_decref(j);
}

/* A 2-layer, 2-head causal trace over 4 tokens. */
static av_trace *small_trace(void) {
    av_trace *t = av_trace_new();
    av_err err;
    char **tok = malloc(4 * sizeof *tok);
    int32_t *ids = malloc(4 * sizeof *ids);
    static const char *const words[4] = {"<s>", " a", " b", "."};
    for (int i = 0; i < 4; i++)
        tok[i] = av_strdup(words[i]), ids[i] = i + 1;
    av_trace_set_tokens(t, tok, ids, 4, &err);
    for (int l = 0; l < 2; l++) {
        float *a = calloc(2 * 16, sizeof *a); /* (2, 4, 4) */
        for (int h = 0; h < 2; h++)
            for (int q = 0; q < 4; q++)
                for (int k = 0; k <= q; k++)
                    a[(h * 4 + q) * 4 + k] = 1.0f / (float)(q + 1);
        av_trace_add_attn(t, AV_ATTN_SELF, l, 2, 4, 4, a, &err);
    }
    return t;
}

/* "t0": a greedy continuation of a repeated prompt (its 7 tokens and 4 more, 5 alternatives a position; the
 * stop string makes the generation metadata carry stop settings), or small_trace() without the model. */
static av_trace *served_trace(void) {
    av_trace *t = NULL;
    av_err err;
    static const char *const stop[1] = {"zz"};
    av_generate_params g = av_generate_default_params();
    g.steps = 4;
    g.top_logprobs = 5;
    g.stop = stop;
    g.n_stop = 1;
    g.run.n_threads = 1;
    if (model && av_generate(model, "xyzxy", &g, &t, &err) != 0) {
        fprintf(stderr, "fuzz_http: generation failed (%s): serving a trace without steps\n", err.msg);
        t = NULL;
    }
    return t ? t : small_trace();
}

static void stop(void) {
    av_server_stop(server);
    av_model_free(model);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    av_err err;
    av_model_params mp = av_model_default_params();
    mp.n_threads = 1;
    mp.tokenizer_path = FUZZ_ROOT "/models/induction/tokenizer.bin";
    if (av_model_load(FUZZ_ROOT "/models/induction/induction.bin", &mp, &model, &err))
        model = NULL; /* runs 4xx */
    av_server_params p = av_server_default_params();
    p.port = 0;
    p.max_queue = 2;
    p.max_runs = 4;
    p.max_tokens = 64;
    p.timeout_s = 5;
    p.n_threads = 1;
    p.max_body = 64 << 10;
    p.max_trace_bytes = 64u << 20;
    p.cache_bytes = 1u << 20;
    p.viewer_bytes = 16u << 20;
    if (av_server_start(model, served_trace(), &p, &server, &err)) {
        fprintf(stderr, "fuzz_http: %s\n", err.msg);
        abort();
    }
    atexit(stop);
    static const char list[] = "GET /api/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    char answer[4096];
    send_request((const uint8_t *)list, sizeof list - 1, answer, sizeof answer);
    take_id(answer, trace_id, sizeof trace_id);
    if (getenv("FUZZ_VERBOSE"))
        fprintf(stderr, "fuzz: serving trace %s on port %d\n", trace_id, av_server_port(server));
    return 0;
}

/* Appends the target with the path segments "t0" and "r1" replaced by the server's ids, and bytes outside
 * printable ASCII percent-encoded. */
static char *put_target(char *o, const uint8_t *t, size_t n) {
    for (size_t i = 0; i < n;) {
        int seg = i == 0 || t[i - 1] == '/',
            end = i + 2 == n || (i + 2 < n && (t[i + 2] == '/' || t[i + 2] == '?'));
        if (seg && end && i + 2 <= n && (memcmp(t + i, "t0", 2) == 0 || memcmp(t + i, "r1", 2) == 0)) {
            o += sprintf(o, "%s", t[i] == 't' ? trace_id : run_id);
            i += 2;
        } else if (t[i] > 0x20 && t[i] < 0x7f) {
            *o++ = (char)t[i++];
        } else {
            o += sprintf(o, "%%%02X", t[i++]);
        }
    }
    return o;
}

/* "METHOD TARGET\nbody" -> an HTTP/1.1 request (or "RAW\n" + bytes as they are). */
static void one(const fuzz_part *p) {
    if (p->n >= 4 && memcmp(p->p, "RAW\n", 4) == 0) {
        send_request(p->p + 4, p->n - 4, NULL, 0);
        return;
    }
    const uint8_t *nl = memchr(p->p, '\n', p->n);
    size_t line = nl ? (size_t)(nl - p->p) : p->n, body = nl ? p->n - line - 1 : 0;
    if (line > 2048) return;
    char *req = malloc(32 * line + body + 256), *o = req, answer[4096];
    const uint8_t *sp = memchr(p->p, ' ', line);
    size_t mlen = sp ? (size_t)(sp - p->p) : line;
    for (size_t i = 0; i < mlen && i < 16; i++)
        *o++ = p->p[i] > 0x20 && p->p[i] < 0x7f ? (char)p->p[i] : 'X';
    *o++ = ' ';
    if (sp) o = put_target(o, sp + 1, line - mlen - 1);
    o += sprintf(o,
                 " HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\nContent-Type: application/json\r\n"
                 "Content-Length: %zu\r\n\r\n",
                 av_server_port(server), body);
    memcpy(o, nl ? nl + 1 : p->p, body);
    send_request((const uint8_t *)req, (size_t)(o - req) + body, answer, sizeof answer);
    if (mlen == 4 && memcmp(p->p, "POST", 4) == 0) take_id(answer, run_id, sizeof run_id);
    if (getenv("FUZZ_VERBOSE"))
        fprintf(stderr, "fuzz: %.*s -> %.100s\n", (int)line, (const char *)p->p, answer);
    free(req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_part part[4];
    int n = fuzz_split(data, size, part, 4);
    for (int i = 0; i < n; i++)
        one(&part[i]);
    return 0;
}
