/* attnviz serve in-process on a synthetic trace: the HTTP API over a real socket on a free loopback port
 * (client in test_server_http.h), rows and tiles against pooling computed here, concurrent readers, the
 * embedded page, and every error case (bad parameters, unknown ids and endpoints, wrong methods, path
 * traversal, huge bodies, foreign Host headers), checking after each that the server still answers.
 * The real model is exercised in test_server_model.c. */
#include "harness.h"
#include "server/server.h"
#include "test_server_http.h"
#include "trace/trace.h"

#include <pthread.h>
#include <signal.h>

/* ---- a synthetic trace: 2 layers x 3 heads x 40 tokens, causal softmax rows ---- */

enum { SYN_L = 2, SYN_H = 3, SYN_T = 40 };

static av_trace *synthetic_trace(void) { return causal_trace(SYN_L, SYN_H, SYN_T, 7); }

typedef struct hammer_ctx {
    int port, failures;
    const char *id;
    const av_trace *t;
    unsigned seed;
} hammer_ctx;

static void *hammer(void *arg) {
    hammer_ctx *c = arg;
    for (int i = 0; i < 40; i++) {
        int layer = (int)(rand_r(&c->seed) % SYN_L), head = (int)(rand_r(&c->seed) % (SYN_H + 2)) - 2;
        av_attn_view v;
        av_trace_attn(c->t, AV_ATTN_SELF, layer, &v, NULL);
        float d = i % 2 ? check_row(c->port, c->id, &v, layer, head, (int)(rand_r(&c->seed) % SYN_T))
                        : check_tile(c->port, c->id, &v, layer, head, 0, SYN_T, 0, SYN_T, 7, 9, i % 4 == 0);
        if (!(d < 1e-6f)) c->failures++;
    }
    return NULL;
}

static void test_trace_server(void) {
    av_trace *t = synthetic_trace();
    av_server_params p = av_server_default_params();
    p.port = 0;
    p.max_body = 4096;
    av_server *s;
    av_err err = {{0}};
    REQUIREF(av_server_start(NULL, t, &p, &s, &err) == 0, "start: %s", err.msg);
    int port = av_server_port(s);
    const av_trace *tr = s->store.runs[0]->trace; /* owned by the server now */
    char id[64], path[256];
    REQUIRE(first_trace_id(port, id, sizeof id) == 0);
    CHECKF(strlen(id) == 32 && strspn(id, "0123456789abcdef") == 32, "trace id '%s' is not 128 random bits",
           id);
    resp r;
    CHECK(get(port, "/api/info", &r) == 200 && strstr(r.body, "\"mode\":\"trace\""));
    resp_free(&r);
    CHECK(get(port, with_id("/api/traces/{id}", id, path, sizeof path), &r) == 200 &&
          strstr(r.body, "\"n_tokens\":40") && strstr(r.body, "tok39"));
    resp_free(&r);
    /* rows: every head, mean and max, several queries */
    float worst = 0;
    for (int l = 0; l < SYN_L; l++) {
        av_attn_view v;
        av_trace_attn(tr, AV_ATTN_SELF, l, &v, NULL);
        for (int h = -2; h < SYN_H; h++)
            for (int q = 0; q < SYN_T; q += 13) {
                float d = check_row(port, id, &v, l, h, q);
                worst = d > worst ? d : worst;
            }
        float d1 = check_tile(port, id, &v, l, 1, 0, SYN_T, 0, SYN_T, SYN_T, SYN_T, 0); /* exact cells */
        float d2 = check_tile(port, id, &v, l, 2, 3, 37, 1, 40, 5, 6, 0);
        float d3 = check_tile(port, id, &v, l, AV_HEADS_MEAN, 3, 37, 1, 40, 5, 6, 1);
        float d4 = check_tile(port, id, &v, l, AV_HEADS_MAX, 0, 40, 0, 40, 16, 16, 1);
        float d5 = check_tile(port, id, &v, l, 2, 3, 37, 1, 40, 5, 6, 0); /* again: from the cache */
        worst = fmaxf(worst, fmaxf(fmaxf(d1, d2), fmaxf(fmaxf(d3, d4), d5)));
    }
    CHECKF(worst < 1e-6f, "rows/tiles differ from the reference by %g", worst);
    /* JSON formats */
    CHECK(get(port, with_id("/api/traces/{id}/row?layer=1&head=0&q=5", id, path, sizeof path), &r) == 200 &&
          strstr(r.body, "\"values\":["));
    resp_free(&r);
    CHECK(get(port,
              with_id("/api/traces/{id}/tile?layer=0&head=mean&rows=2&cols=2&format=json", id, path,
                      sizeof path),
              &r) == 200 &&
          strstr(r.body, "\"rows\":2"));
    resp_free(&r);
    /* concurrent readers */
    pthread_t th[4];
    hammer_ctx hc[4];
    for (int i = 0; i < 4; i++) {
        hc[i] = (hammer_ctx){port, 0, id, tr, (unsigned)i + 1};
        pthread_create(&th[i], NULL, hammer, &hc[i]);
    }
    int fails = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        fails += hc[i].failures;
    }
    CHECKF(fails == 0, "%d concurrent requests failed or differed", fails);
    /* static files */
    CHECK(get(port, "/", &r) == 200 && strstr(r.head, "text/html") && strstr(r.body, "av-serve"));
    resp_free(&r);
    CHECK(get(port, "/zoom.js", &r) == 200 && strstr(r.head, "javascript") && strstr(r.body, "AvZoomMap"));
    resp_free(&r);
    CHECK(server_alive(port));
    av_server_stop(s);
}

/* every request must get the expected status and a JSON error, with the server still up afterwards */
static void test_errors(void) {
    av_server_params p = av_server_default_params();
    p.port = 0;
    p.max_body = 4096;
    av_server *s;
    av_err err = {{0}};
    REQUIREF(av_server_start(NULL, synthetic_trace(), &p, &s, &err) == 0, "start: %s", err.msg);
    int port = av_server_port(s);
    static const struct {
        const char *method, *path;
        int status;
    } cases[] = {
        {"GET", "/api/traces/nope", 404},
        {"GET", "/api/traces/nope/row?layer=0&head=0&q=0", 404},
        {"GET", "/api/runs/r42", 404},
        {"GET", "/api/traces/{id}/row?layer=9&head=0&q=0", 400},
        {"GET", "/api/traces/{id}/row?layer=0&head=3&q=0", 400},
        {"GET", "/api/traces/{id}/row?layer=0&head=x&q=0", 400},
        {"GET", "/api/traces/{id}/row?layer=0&head=0&q=40", 400},
        {"GET", "/api/traces/{id}/row?layer=0&head=0", 400},
        {"GET", "/api/traces/{id}/row?layer=-1&head=0&q=0", 400},
        {"GET", "/api/traces/{id}/row?layer=0x1&head=0&q=0", 400},
        {"GET", "/api/traces/{id}/row?layer=99999999999999999999&head=0&q=0", 400},
        {"GET", "/api/traces/{id}/row?layer=0&head=0&q=0&format=xml", 400},
        {"GET", "/api/traces/{id}/row?layer=0&head=0&q=0&kind=cross", 400},
        {"GET", "/api/traces/{id}/tile?layer=0&head=0&pool=median", 400},
        {"GET", "/api/traces/{id}/tile?layer=0&head=0&q0=10&q1=5", 400},
        {"GET", "/api/traces/{id}/tile?layer=0&head=0&rows=41", 400},
        {"GET", "/api/traces/{id}/tile?layer=0&head=0&k1=41", 400},
        {"GET", "/api/traces/{id}/tile?layer=0&head=0&rows=0", 400},
        {"GET", "/api/traces/{id}/nothing", 404},
        {"GET", "/api/traces/{id}/row/extra", 404},
        {"GET", "/api/nothing", 404},
        {"GET", "/api/", 404},
        {"GET", "/api/traces/", 404},
        {"POST", "/api/traces/{id}", 405},
        {"DELETE", "/api/info", 405},
        {"PUT", "/api/run", 405},
        {"GET", "/api/run", 405},
        {"POST", "/", 405},
        {"GET", "/../../etc/passwd", 404},
        {"GET", "/%2e%2e/%2e%2e/etc/passwd", 404},
        {"GET", "/..%2f..%2fetc%2fpasswd", 404},
        {"GET", "/%2e%2e%2f%2e%2e%2fetc%2fpasswd", 404},
        {"GET", "/web/serve.html", 404},
        {"GET", "/./serve.html", 404},
        {"GET", "/serve.html/..", 404},
        {"GET", "//etc/passwd", 404},
        {"GET", "/.hidden", 404},
        {"GET", "/src/server/http.c", 404},
        {"GET", "/Makefile", 404},
    };
    char id[64], path[256];
    REQUIRE(first_trace_id(port, id, sizeof id) == 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        resp r;
        int st = http(port, cases[i].method, with_id(cases[i].path, id, path, sizeof path), NULL, NULL, &r);
        CHECKF(st == cases[i].status, "%s %s: status %d, expected %d", cases[i].method, cases[i].path, st,
               cases[i].status);
        CHECKF(st < 0 || is_json_error(&r), "%s %s: not a JSON error: %.100s", cases[i].method, cases[i].path,
               r.body);
        CHECKF(!strstr(r.body ? r.body : "", "root:"), "%s leaked a file", cases[i].path);
        if (cases[i].status == 405)
            CHECKF(r.head && strstr(r.head, "Allow:"), "%s: no Allow header", cases[i].path);
        resp_free(&r);
        REQUIREF(server_alive(port), "server down after %s %s", cases[i].method, cases[i].path);
    }
    resp r;
    /* POST /api/run on a server without a model: clear 409, bad JSON still 4xx */
    CHECK(http(port, "POST", "/api/run", "application/json", "{\"text\": \"hi\"}", &r) == 409 &&
          is_json_error(&r));
    resp_free(&r);
    /* huge bodies: announced by Content-Length, and streamed without one (chunked) */
    size_t big = 100000;
    char *body = malloc(big + 1);
    memset(body, 'a', big);
    body[big] = 0;
    CHECK(http(port, "POST", "/api/run", "application/json", body, &r) == 413 && is_json_error(&r));
    resp_free(&r);
    char *req = malloc(big + 512);
    int n = snprintf(req, 512,
                     "POST /api/run HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                     "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
    for (int c = 0; c < 10; c++)
        n += snprintf(req + n, big + 512 - (size_t)n, "1000\r\n%.*s\r\n", 4096, body);
    n += snprintf(req + n, big + 512 - (size_t)n, "0\r\n\r\n");
    CHECK(http_raw(port, req, (size_t)n, &r) == 0 && r.status == 413 && is_json_error(&r));
    resp_free(&r);
    free(req);
    free(body);
    /* DNS rebinding guard: a foreign Host header is refused on a loopback server */
    const char *evil = "GET /api/info HTTP/1.0\r\nHost: attacker.example:80\r\n\r\n";
    CHECK(http_raw(port, evil, strlen(evil), &r) == 0 && r.status == 403 && is_json_error(&r));
    resp_free(&r);
    const char *ok6 = "GET /api/info HTTP/1.0\r\nHost: [::1]:80\r\n\r\n";
    CHECK(http_raw(port, ok6, strlen(ok6), &r) == 0 && r.status == 200);
    resp_free(&r);
    /* garbage on the wire */
    const char *junk = "\x01\x02 NOT HTTP\r\n\r\n";
    http_raw(port, junk, strlen(junk), &r);
    resp_free(&r);
    CHECK(server_alive(port));
    CHECK(av_server_host_is_loopback("127.0.0.1") && av_server_host_is_loopback("127.1.2.3") &&
          av_server_host_is_loopback("::1") && av_server_host_is_loopback("localhost") &&
          !av_server_host_is_loopback("0.0.0.0") && !av_server_host_is_loopback("192.168.1.1") &&
          !av_server_host_is_loopback("::"));
    av_server_stop(s);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    RUN(test_trace_server);
    RUN(test_errors);
    return h_exit_code();
}
