/* attnviz serve under hostile clients, in process on loopback (bounded in time and connections):
 *   - slowloris: more slow-header connections than the server's connection limit, one byte every 200 ms;
 *     another client (another loopback address) is served meanwhile, and the slow connections are cut at the
 *     request deadline although each byte resets the idle timer;
 *   - cross-site requests: a foreign Origin or Sec-Fetch-Site is refused on every /api/ route;
 *   - the viewer page: parallel requests build it once, inside the memory budget, and share it; a budget too
 *     small for the build is a clear 413;
 *   - every model family served in its right mode: an encoder-decoder model served with the default (lazy)
 *     parameters runs full traces instead of failing every run. */
#include "harness.h"
#include "server/server.h"
#include "test_server_http.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>

static av_trace *small_trace(void) { return causal_trace(2, 2, 96, 11); }

/* Starts a server on a free port over small_trace(); fills its port and trace id. 0, or -1. */
static int start_small(const av_server_params *p, av_server **s, int *port, char id[64]) {
    av_err err = {{0}};
    if (av_server_start(NULL, small_trace(), p, s, &err)) {
        fprintf(stderr, "start: %s\n", err.msg);
        return -1;
    }
    *port = av_server_port(*s);
    return first_trace_id(*port, id, 64);
}

/* A connection to the server from the loopback address `from` (e.g. "127.0.0.2"); -1 on failure. */
static int connect_from(int port, const char *from) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in src = {0}, dst = {0};
    src.sin_family = dst.sin_family = AF_INET;
    inet_pton(AF_INET, from, &src.sin_addr);
    dst.sin_port = htons((uint16_t)port);
    dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&src, sizeof src) != 0 ||
        connect(fd, (struct sockaddr *)&dst, sizeof dst)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* GET /api/info from address `from` within timeout_ms; the status, or -1 (refused, closed, timed out). */
static int info_from(int port, const char *from, int timeout_ms) {
    int fd = connect_from(port, from);
    if (fd < 0) return -1;
    const char *req = "GET /api/info HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    int status = -1;
    if (send(fd, req, strlen(req), MSG_NOSIGNAL) == (ssize_t)strlen(req)) {
        struct pollfd pf = {fd, POLLIN, 0};
        char buf[64] = {0};
        if (poll(&pf, 1, timeout_ms) == 1 && recv(fd, buf, sizeof buf - 1, 0) > 12)
            sscanf(buf, "HTTP/1.%*d %d", &status);
    }
    close(fd);
    return status;
}

/* 1 when the server has closed fd (reads end of file or an error). */
static int closed_by_server(int fd) {
    struct pollfd pf = {fd, POLLIN, 0};
    char c;
    return poll(&pf, 1, 0) == 1 && recv(fd, &c, 1, MSG_DONTWAIT) <= 0;
}

static void test_slowloris_is_cut_and_others_served(void) {
    av_server_params p = av_server_default_params();
    p.port = 0;
    p.max_connections = 8;
    p.max_per_ip = 4;
    p.request_timeout_s = 2;
    p.timeout_s = 30;
    av_server *s;
    int port;
    char id[64];
    REQUIRE(start_small(&p, &s, &port, id) == 0);
    enum { N_SLOW = 12 }; /* more than the connection limit */
    int fds[N_SLOW], n_open = 0;
    for (int i = 0; i < N_SLOW; i++) {
        fds[i] = connect_from(port, "127.0.0.1");
        n_open += fds[i] >= 0;
    }
    const char *head = "GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
    int other_ok = 0, cut_in_time = 1;
    double t0 = av_seconds();
    /* trickle one byte every 200 ms for 3.6 s: past the 2 s deadline, far below the 30 s idle timeout */
    for (int step = 0; step < 18; step++) {
        for (int i = 0; i < N_SLOW; i++)
            if (fds[i] >= 0) send(fds[i], head + (step % (int)strlen(head)), 1, MSG_NOSIGNAL);
        if (step == 2) other_ok = info_from(port, "127.0.0.2", 3000) == 200; /* during the attack */
        usleep(200 * 1000);
    }
    int n_cut = 0;
    for (int i = 0; i < N_SLOW; i++)
        if (fds[i] >= 0) n_cut += closed_by_server(fds[i]);
    double dt = av_seconds() - t0;
    printf("# slowloris: %d connections opened, %d cut by the server within %.1f s, %lu cut in all\n", n_open,
           n_cut, dt, srv_guard_cut_count(&s->guard));
    CHECKF(other_ok, "a client from another address was not served during the slow-header attack");
    /* the ones the server accepted (at most max_per_ip from one address) are cut at the deadline; the
     * others were refused outright */
    cut_in_time = n_cut == n_open;
    CHECKF(cut_in_time, "%d of %d slow connections still open after %.1f s (deadline 2 s)", n_open - n_cut,
           n_open, dt);
    CHECKF(srv_guard_cut_count(&s->guard) >= 1 &&
               srv_guard_cut_count(&s->guard) <= (unsigned long)p.max_per_ip,
           "%lu connections cut by the deadline", srv_guard_cut_count(&s->guard));
    for (int i = 0; i < N_SLOW; i++)
        if (fds[i] >= 0) close(fds[i]);
    CHECKF(info_from(port, "127.0.0.1", 3000) == 200,
           "the attacker's address is not served again afterwards");
    av_server_stop(s);
}

static int raw_status(int port, const char *req) {
    resp r;
    int st = http_raw(port, req, strlen(req), &r) == 0 ? r.status : -1;
    if (st == 403 && !is_json_error(&r)) st = -2;
    if (st > 0 && (!r.head || !strstr(r.head, "Cross-Origin-Resource-Policy: same-origin"))) st = -3;
    resp_free(&r);
    return st;
}

static void test_cross_site_requests_refused(void) {
    av_server_params p = av_server_default_params();
    p.port = 0;
    av_server *s;
    int port;
    char id[64], path[256], req[1024];
    REQUIRE(start_small(&p, &s, &port, id) == 0);
    static const struct {
        const char *method, *path, *headers;
        int status;
    } cases[] = {
        {"GET", "/api/info", "Origin: http://evil.example\r\n", 403},
        {"GET", "/api/traces/{id}/row?layer=0&head=0&q=3", "Origin: http://evil.example\r\n", 403},
        {"GET", "/api/traces/{id}/file", "Origin: null\r\n", 403},
        {"POST", "/api/run", "Origin: http://localhost:3000\r\nContent-Type: application/json\r\n", 403},
        {"GET", "/api/traces", "Sec-Fetch-Site: cross-site\r\n", 403},
        {"GET", "/api/traces/{id}", "Sec-Fetch-Site: same-site\r\n", 403},
        {"GET", "/api/traces/{id}/viewer", "Sec-Fetch-Site: cross-site\r\n", 403},
        {"GET", "/api/info", "Origin: http://127.0.0.1:{port}\r\nSec-Fetch-Site: same-origin\r\n", 200},
        {"GET", "/api/traces/{id}", "Sec-Fetch-Site: none\r\n", 200},
        {"GET", "/api/traces/{id}/row?layer=0&head=0&q=3", "", 200},
        {"GET", "/", "Sec-Fetch-Site: cross-site\r\n", 200}, /* a link to the page itself is harmless */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char hdr[256], portstr[16];
        snprintf(portstr, sizeof portstr, "%d", port);
        const char *h = cases[i].headers, *mark = strstr(h, "{port}");
        if (mark)
            snprintf(hdr, sizeof hdr, "%.*s%s%s", (int)(mark - h), h, portstr, mark + 6);
        else
            snprintf(hdr, sizeof hdr, "%s", h);
        snprintf(req, sizeof req, "%s %s HTTP/1.0\r\nHost: 127.0.0.1:%d\r\n%sContent-Length: 2\r\n\r\n{}",
                 cases[i].method, with_id(cases[i].path, id, path, sizeof path), port, hdr);
        int st = raw_status(port, req);
        CHECKF(st == cases[i].status, "%s %s with %s: %d, expected %d", cases[i].method, cases[i].path, hdr,
               st, cases[i].status);
    }
    CHECK(server_alive(port));
    av_server_stop(s);
}

typedef struct page_ctx {
    int port;
    const char *path;
    resp r;
    int status;
} page_ctx;

static void *fetch_page(void *arg) {
    page_ctx *c = arg;
    c->status = get(c->port, c->path, &c->r);
    return NULL;
}

static size_t memory_used(int port) {
    resp r;
    size_t used = 0;
    if (get(port, "/api/info", &r) == 200) {
        json_t *j = body_json(&r);
        used = (size_t)json_integer_value(json_object_get(json_object_get(j, "memory"), "used"));
        json_decref(j);
    }
    resp_free(&r);
    return used;
}

static void test_viewer_page_built_once_in_budget(void) {
    av_server_params p = av_server_default_params();
    p.port = 0;
    av_server *s;
    int port;
    char id[64], path[256];
    REQUIRE(start_small(&p, &s, &port, id) == 0);
    size_t before = memory_used(port);
    enum { N = 8 };
    page_ctx c[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        c[i] = (page_ctx){port,
                          with_id(i % 2 ? "/api/traces/{id}/viewer?view=model" : "/api/traces/{id}/viewer",
                                  id, malloc(256), 256),
                          {0},
                          0};
        pthread_create(&th[i], NULL, fetch_page, &c[i]);
    }
    int same = 1, ok = 1;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        ok &= c[i].status == 200 && strstr(c[i].r.body, "av-data") != NULL;
        same &= c[i].r.len == c[0].r.len && memcmp(c[i].r.body, c[0].r.body, c[0].r.len) == 0;
    }
    size_t after = memory_used(port);
    printf("# viewer page: %zu bytes, memory charged %zu -> %zu\n", c[0].r.len, before, after);
    CHECKF(ok, "parallel viewer requests failed");
    CHECKF(same, "parallel viewer requests got different pages");
    CHECKF(after - before == c[0].r.len,
           "memory charged for the page: %zu, page %zu bytes (built more than once, "
           "or outside the budget)",
           after - before, c[0].r.len);
    for (int i = 0; i < N; i++) {
        resp_free(&c[i].r);
        free((void *)c[i].path);
    }
    resp r;
    CHECK(get(port, with_id("/api/traces/{id}/viewer?view=nope", id, path, sizeof path), &r) == 400);
    resp_free(&r);
    CHECK(memory_used(port) == after);
    av_server_stop(s);

    /* a budget too small for the build: a clear 413 naming --memory-mb, and the server stays up */
    p.max_trace_bytes = 1 << 20;
    REQUIRE(start_small(&p, &s, &port, id) == 0);
    CHECK(get(port, with_id("/api/traces/{id}/viewer", id, path, sizeof path), &r) == 413 &&
          is_json_error(&r) && strstr(r.body, "--memory-mb"));
    resp_free(&r);
    CHECK(server_alive(port));
    av_server_stop(s);
}

/* Every family runs lazily: an encoder-decoder served with the default parameters gets lazy traces of its
 * encoder, decoder and cross-attention. */
static void test_encoder_decoder_runs_lazily(void) {
    av_model *m = NULL;
    av_err err = {{0}};
    if (av_model_load("models/demo-fr-en", NULL, &m, &err)) SKIP("models/demo-fr-en: %.200s", err.msg);
    av_server_params p = av_server_default_params();
    p.port = 0;
    av_server *s;
    REQUIREF(av_server_start(m, NULL, &p, &s, &err) == 0, "start: %s", err.msg);
    CHECK(av_server_lazy(s));
    int port = av_server_port(s);
    resp r;
    REQUIRE(http(port, "POST", "/api/run", "application/json", "{\"text\": \"the black cat\"}", &r) == 202);
    json_t *j = body_json(&r);
    char path[600], st[16] = "";
    snprintf(path, sizeof path, "/api/runs/%.64s", json_string_value(json_object_get(j, "id")));
    json_decref(j);
    resp_free(&r);
    for (int i = 0; i < 500 && strcmp(st, "done") != 0 && strcmp(st, "failed") != 0; i++) {
        usleep(10000);
        if (get(port, path, &r) == 200) {
            j = body_json(&r);
            snprintf(st, sizeof st, "%s", json_string_value(json_object_get(j, "status")));
            json_decref(j);
        }
        resp_free(&r);
    }
    CHECKF(strcmp(st, "done") == 0, "the run ended '%s'", st);
    char trace_path[640]; /* the run's trace: /api/runs/<id> -> /api/traces/<id> */
    snprintf(trace_path, sizeof trace_path, "/api/traces/%s", strrchr(path, '/') + 1);
    REQUIRE(get(port, trace_path, &r) == 200);
    CHECKF(strstr(r.body, "\"lazy\":true") && strstr(r.body, "\"cross\""), "%.200s", r.body);
    resp_free(&r);
    av_server_stop(s);
    av_model_free(m);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    RUN(test_slowloris_is_cut_and_others_served);
    RUN(test_cross_site_requests_refused);
    RUN(test_viewer_page_built_once_in_budget);
    RUN(test_encoder_decoder_runs_lazily);
    return h_exit_code();
}
