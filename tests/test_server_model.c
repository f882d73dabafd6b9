/* attnviz serve in-process on the real stories260K model: POST /api/run (lazy), progress, then rows and tiles
 * compared with a full (non-lazy) trace of the same text saved to a file and loaded back; the run queue,
 * eviction of old runs within the limits, the viewer page, the trace download, and the errors of
 * POST /api/run (bad JSON, wrong fields, too many tokens, unsupported inputs), with the server still up. */
#include "harness.h"
#include "server/server.h"
#include "test_server_http.h"

#include <signal.h>

static const char *TEXT = "Once upon a time, there was a little girl named Lily. She loved to play outside.";

static av_model *load_model(void) {
    char mp[1024], tp[1024];
    if (!h_shared_file(mp, sizeof mp, "models/stories260K/stories260K.bin") ||
        !h_shared_file(tp, sizeof tp, "models/stories260K/tok512.bin"))
        return NULL;
    av_model_params p = av_model_default_params();
    p.tokenizer_path = tp;
    p.n_threads = 2;
    av_model *m = NULL;
    av_err err = {{0}};
    if (av_model_load(mp, &p, &m, &err)) fprintf(stderr, "%s\n", err.msg);
    return m;
}

/* Submits a run; waits until done. Fills id; returns the final status string ("done", "failed"...) in st. */
static int run_and_wait(int port, const char *body, char id[SRV_ID_LEN], char st[16]) {
    resp r;
    int code = http(port, "POST", "/api/run", "application/json", body, &r);
    json_t *j = body_json(&r);
    snprintf(id, SRV_ID_LEN, "%s",
             code == 202 && json_string_value(json_object_get(j, "id"))
                 ? json_string_value(json_object_get(j, "id"))
                 : "");
    json_decref(j);
    resp_free(&r);
    if (code != 202) return code;
    char path[64];
    snprintf(path, sizeof path, "/api/runs/%s", id);
    for (int i = 0; i < 600; i++) {
        if (get(port, path, &r) != 200) {
            resp_free(&r);
            return -1;
        }
        j = body_json(&r);
        snprintf(st, 16, "%s", json_string_value(json_object_get(j, "status")));
        json_decref(j);
        resp_free(&r);
        if (strcmp(st, "done") == 0 || strcmp(st, "failed") == 0) return 202;
        usleep(20000);
    }
    return -1;
}

static void test_model_server(void) {
    av_model *m = load_model();
    if (!m) SKIP("../shared/models/stories260K not found");
    /* the reference: a full trace of the same text, saved and loaded back from the file */
    av_run_params rp = av_run_default_params();
    av_trace *full = NULL, *ref = NULL;
    av_err err = {{0}};
    char path[512];
    snprintf(path, sizeof path, "%s/serve_ref.safetensors", h_tmpdir());
    REQUIREF(av_trace_from_text(m, TEXT, &rp, &full, &err) == 0, "%s", err.msg);
    REQUIREF(av_trace_save(full, path, &err) == 0 && av_trace_load(path, &ref, &err) == 0, "%s", err.msg);
    av_trace_free(full);

    av_server_params p = av_server_default_params();
    p.port = 0;
    p.max_runs = 2;
    av_server *s;
    REQUIREF(av_server_start(m, NULL, &p, &s, &err) == 0, "start: %s", err.msg);
    int port = av_server_port(s);
    char id[SRV_ID_LEN], st[16], body[512];
    snprintf(body, sizeof body, "{\"text\": \"%s\"}", TEXT);
    CHECK(run_and_wait(port, body, id, st) == 202 && strcmp(st, "done") == 0);
    resp r;
    char url[128];
    snprintf(url, sizeof url, "/api/traces/%s", id);
    CHECK(get(port, url, &r) == 200 && strstr(r.body, "\"lazy\":true") && strstr(r.body, "\" Lily\""));
    json_t *meta = body_json(&r);
    CHECK(json_integer_value(json_object_get(meta, "n_tokens")) == av_trace_n_tokens(ref));
    json_decref(meta);
    resp_free(&r);
    /* lazy rows and tiles from the server == the full trace file, within 1e-5 */
    int T = av_trace_n_tokens(ref);
    float worst = 0;
    for (int l = 0; l < 5; l++) {
        av_attn_view v;
        REQUIREF(av_trace_attn(ref, AV_ATTN_SELF, l, &v, &err) == 0, "%s", err.msg);
        for (int h = -2; h < 8; h += 3)
            for (int q = 0; q < T; q += 7)
                worst = fmaxf(worst, check_row(port, id, &v, l, h, q));
        worst = fmaxf(worst, check_tile(port, id, &v, l, l % 8, 0, T, 0, T, T, T, 0));
        worst = fmaxf(worst, check_tile(port, id, &v, l, 3, 0, T, 0, T, 4, 5, 0));
        worst = fmaxf(worst, check_tile(port, id, &v, l, AV_HEADS_MEAN, 2, T - 1, 1, T, 6, 3, 1));
    }
    CHECKF(worst < 1e-5f, "lazy rows/tiles differ from the saved full trace by %g", worst);
    /* the viewer page and the trace file */
    snprintf(url, sizeof url, "/api/traces/%s/viewer", id);
    CHECK(get(port, url, &r) == 200 && strstr(r.head, "text/html") && strstr(r.body, "av-meta"));
    resp_free(&r);
    snprintf(url, sizeof url, "/api/traces/%s/file", id);
    CHECK(get(port, url, &r) == 200 && r.len > 8 && strstr(r.head, "attachment"));
    if (r.len > 8) {
        snprintf(path, sizeof path, "%s/serve_dl.safetensors", h_tmpdir());
        FILE *fp = fopen(path, "wb");
        fwrite(r.body, 1, r.len, fp);
        fclose(fp);
        av_trace *dl = NULL;
        CHECKF(av_trace_load(path, &dl, &err) == 0 && av_trace_is_lazy(dl) && av_trace_n_tokens(dl) == T,
               "downloaded trace: %s", err.msg);
        av_trace_free(dl);
    }
    resp_free(&r);
    /* max_runs = 2: after two more runs the first is evicted (404), the newest still served */
    char id2[SRV_ID_LEN], id3[SRV_ID_LEN];
    CHECK(run_and_wait(port, "{\"text\": \"The cat sat.\"}", id2, st) == 202 && strcmp(st, "done") == 0);
    CHECK(run_and_wait(port, "{\"ids\": [1, 403, 407, 261], \"add_bos\": false}", id3, st) == 202 &&
          strcmp(st, "done") == 0);
    snprintf(url, sizeof url, "/api/traces/%s", id);
    CHECK(get(port, url, &r) == 404 && is_json_error(&r));
    resp_free(&r);
    snprintf(url, sizeof url, "/api/traces/%s", id3);
    CHECK(get(port, url, &r) == 200 && strstr(r.body, "\"n_tokens\":4"));
    resp_free(&r);
    /* a burst of runs: some may be refused with 503 (queue of 8), none lost, the server stays up */
    int accepted = 0, refused = 0;
    for (int i = 0; i < 20; i++) {
        int code =
            http(port, "POST", "/api/run", "application/json", "{\"text\": \"Lily saw a big dog.\"}", &r);
        accepted += code == 202;
        refused += code == 503 && is_json_error(&r);
        resp_free(&r);
    }
    CHECKF(accepted + refused == 20 && accepted >= 8, "burst: %d accepted, %d refused", accepted, refused);
    CHECK(server_alive(port));
    av_server_stop(s); /* with runs possibly still queued */
    av_trace_free(ref);
    av_model_free(m);
}

static void test_model_errors(void) {
    av_model *m = load_model();
    if (!m) SKIP("../shared/models/stories260K not found");
    av_server_params p = av_server_default_params();
    p.port = 0;
    p.max_tokens = 32;
    p.max_body = 2048;
    av_server *s;
    av_err err = {{0}};
    REQUIREF(av_server_start(m, NULL, &p, &s, &err) == 0, "start: %s", err.msg);
    int port = av_server_port(s);
    static const struct {
        const char *ctype, *body;
        int status;
        const char *says;
    } cases[] = {
        {"application/json", "{\"text\": ", 400, "malformed JSON"},
        {"application/json", "not json at all", 400, "malformed JSON"},
        {"application/json", "", 400, "malformed JSON"},
        {"application/json", "[1, 2]", 400, "JSON object"},
        {"application/json", "{}", 400, "exactly one"},
        {"application/json", "{\"text\": 5}", 400, "must be a string"},
        {"application/json", "{\"text\": \"a\", \"ids\": [1]}", 400, "exactly one"},
        {"application/json", "{\"ids\": [1, -3]}", 400, "token id"},
        {"application/json", "{\"ids\": [1, 512]}", 400, "token id"},
        {"application/json", "{\"ids\": \"1,2\"}", 400, "array"},
        {"application/json", "{\"ids\": []}", 400, "empty"},
        {"application/json", "{\"text\": \"\", \"add_bos\": false}", 400, "empty"},
        {"application/json", "{\"text\": \"a\", \"add_bos\": 1}", 400, "add_bos"},
        {"application/json", "{\"text\": \"a\", \"temperature\": 1}", 400, "unknown field"},
        {"application/json", "{\"text\": \"a\", \"text\": \"b\"}", 400, "duplicate"},
        {"application/json", "{\"image\": \"data:image/png;base64,AAAA\"}", 422, "vision"},
        {"application/json", "{\"text\": \"a\", \"target\": \"b\"}", 422, "encoder-decoder"},
        {"text/plain", "{\"text\": \"a\"}", 415, "application/json"},
        {NULL, "{\"text\": \"a\"}", 415, "application/json"},
        {"application/json",
         "{\"text\": \"Once upon a time there was a little girl named Lily and she loved to play in the park "
         "with her big red ball every day after school with all her friends\"}",
         413, "at most 32 tokens"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        resp r;
        int code = http(port, "POST", "/api/run", cases[i].ctype, cases[i].body, &r);
        CHECKF(code == cases[i].status && is_json_error(&r) && strstr(r.body, cases[i].says),
               "case %zu (%s): %d %.200s", i, cases[i].body, code, r.body ? r.body : "");
        resp_free(&r);
        REQUIREF(server_alive(port), "server down after case %zu", i);
    }
    /* run ids that do not exist, and a trace that is not finished */
    resp r;
    CHECK(get(port, "/api/runs/r999", &r) == 404 && is_json_error(&r));
    resp_free(&r);
    CHECK(get(port, "/api/runs/..%2f..%2fetc%2fpasswd", &r) == 404 && is_json_error(&r));
    resp_free(&r);
    CHECK(get(port, "/api/info", &r) == 200 && strstr(r.body, "\"max_tokens\":32") &&
          strstr(r.body, "stories260K"));
    resp_free(&r);
    av_server_stop(s);
    av_model_free(m);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    RUN(test_model_server);
    RUN(test_model_errors);
    return h_exit_code();
}
