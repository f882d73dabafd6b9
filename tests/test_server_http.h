/* Shared by tests/test_server*.c: a small HTTP/1.0 client over a loopback socket, and references for rows and
 * tiles computed here from full attention matrices (independently of the library's row/tile code). */
#ifndef AV_TEST_SERVER_HTTP_H
#define AV_TEST_SERVER_HTTP_H

#include "harness.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "attnviz.h"
#include "trace/trace.h"

/* ---- a small HTTP/1.0 client ---- */

typedef struct resp {
    int status;
    char *head; /* status line and headers */
    char *body; /* NUL-terminated */
    size_t len;
} resp;

__attribute__((unused)) static void resp_free(resp *r) {
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* Sends raw bytes (a whole request) and reads the answer until the server closes. */
__attribute__((unused)) static int http_raw(int port, const char *req, size_t req_len, resp *out) {
    memset(out, 0, sizeof *out);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct timeval tv = {20, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    for (size_t off = 0; off < req_len;) { /* the server may answer (413) and close before reading it all */
        ssize_t k = send(fd, req + off, req_len - off, MSG_NOSIGNAL);
        if (k <= 0) break;
        off += (size_t)k;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (n + 4096 > cap) buf = realloc(buf, cap *= 2);
        ssize_t k = recv(fd, buf + n, cap - n - 1, 0);
        if (k <= 0) break;
        n += (size_t)k;
    }
    close(fd);
    buf[n] = 0;
    char *sep = strstr(buf, "\r\n\r\n");
    if (!sep || sscanf(buf, "HTTP/1.%*d %d", &out->status) != 1) {
        free(buf);
        return -1;
    }
    size_t hl = (size_t)(sep - buf);
    out->head = strndup(buf, hl);
    out->len = n - hl - 4;
    out->body = malloc(out->len + 1);
    memcpy(out->body, sep + 4, out->len);
    out->body[out->len] = 0;
    free(buf);
    return 0;
}

/* method path [content-type body]; returns the status (-1 on a transport failure). */
__attribute__((unused)) static int http(int port, const char *method, const char *path, const char *ctype,
                                        const char *body, resp *out) {
    size_t bl = body ? strlen(body) : 0, cap = strlen(path) + bl + 512;
    char *req = malloc(cap);
    int n = snprintf(req, cap, "%s %s HTTP/1.0\r\nHost: 127.0.0.1:%d\r\n", method, path, port);
    if (ctype) n += snprintf(req + n, cap - (size_t)n, "Content-Type: %s\r\n", ctype);
    if (body) n += snprintf(req + n, cap - (size_t)n, "Content-Length: %zu\r\n", bl);
    n += snprintf(req + n, cap - (size_t)n, "\r\n");
    if (body) memcpy(req + n, body, bl);
    int rc = http_raw(port, req, (size_t)n + bl, out);
    free(req);
    return rc ? -1 : out->status;
}

__attribute__((unused)) static int get(int port, const char *path, resp *out) {
    return http(port, "GET", path, NULL, NULL, out);
}

__attribute__((unused)) static json_t *body_json(const resp *r) {
    return json_loadb(r->body, r->len, 0, NULL);
}

/* 1 when the reply is a JSON object {"error": "<non-empty>"} */
__attribute__((unused)) static int is_json_error(const resp *r) {
    json_t *j = body_json(r);
    const char *e = json_string_value(json_object_get(j, "error"));
    int ok = e && *e && strstr(r->head, "application/json");
    json_decref(j);
    return ok;
}

__attribute__((unused)) static int server_alive(int port) {
    resp r;
    int st = get(port, "/api/info", &r);
    resp_free(&r);
    return st == 200;
}

/* The id of the first trace the server lists (GET /api/traces), into id; 0, or -1. */
__attribute__((unused)) static int first_trace_id(int port, char *id, size_t n) {
    resp r;
    int rc = -1;
    if (get(port, "/api/traces", &r) == 200) {
        json_t *j = body_json(&r);
        const char *v = json_string_value(json_object_get(json_array_get(j, 0), "id"));
        if (v && strlen(v) < n) {
            snprintf(id, n, "%s", v);
            rc = 0;
        }
        json_decref(j);
    }
    resp_free(&r);
    return rc;
}

/* path with every "{id}" replaced by id, into out. */
__attribute__((unused)) static const char *with_id(const char *path, const char *id, char *out, size_t n) {
    size_t o = 0;
    for (const char *p = path; *p && o + 1 < n;) {
        if (strncmp(p, "{id}", 4) == 0) {
            o += (size_t)snprintf(out + o, n - o, "%s", id);
            p += 4;
        } else {
            out[o++] = *p++;
        }
    }
    out[o < n ? o : n - 1] = 0;
    return out;
}

/* A trace of n_layers x n_heads x T tokens ("tok0".."tok<T-1>"), causal softmax rows of random logits. */
__attribute__((unused)) static av_trace *causal_trace(int n_layers, int n_heads, int T, unsigned seed) {
    av_trace *t = av_trace_new();
    char **tok = malloc(sizeof *tok * (size_t)T);
    int32_t *ids = malloc(sizeof *ids * (size_t)T);
    for (int i = 0; i < T; i++) {
        char b[16];
        snprintf(b, sizeof b, "tok%d", i);
        tok[i] = av_strdup(b);
        ids[i] = i;
    }
    av_trace_set_tokens(t, tok, ids, T, NULL);
    for (int l = 0; l < n_layers; l++) {
        float *a = malloc(sizeof(float) * (size_t)n_heads * (size_t)T * (size_t)T);
        for (int h = 0; h < n_heads; h++)
            for (int q = 0; q < T; q++) {
                float *row = a + ((size_t)h * (size_t)T + (size_t)q) * (size_t)T;
                double sum = 0;
                for (int k = 0; k < T; k++) {
                    row[k] = k <= q ? (float)exp(4.0 * rand_r(&seed) / RAND_MAX) : 0.0f;
                    sum += row[k];
                }
                for (int k = 0; k < T; k++)
                    row[k] = (float)(row[k] / sum);
            }
        av_trace_add_attn(t, AV_ATTN_SELF, l, n_heads, T, T, a, NULL);
    }
    return t;
}

/* ---- references computed here ---- */

/* Row of head (or mean/max over heads) from a full view. */
__attribute__((unused)) static void ref_row(const av_attn_view *v, int head, int q, float *out) {
    for (int k = 0; k < v->n_key; k++) {
        double acc = head == AV_HEADS_MAX ? -1 : 0;
        for (int h = 0; h < v->n_heads; h++) {
            if (head >= 0 && h != head) continue;
            float x = v->data[((size_t)h * v->n_query + q) * v->n_key + k];
            if (head == AV_HEADS_MAX)
                acc = x > acc ? x : acc;
            else
                acc += x;
        }
        out[k] = (float)(head == AV_HEADS_MEAN ? acc / v->n_heads : acc);
    }
}

/* Tile as documented: cell (r, c) covers queries [q0 + floor(r*span/rows), q0 + floor((r+1)*span/rows)). */
__attribute__((unused)) static void ref_tile(const av_attn_view *v, int head, int q0, int q1, int k0, int k1,
                                             int rows, int cols, int mean, float *out) {
    float *row = malloc(sizeof(float) * (size_t)v->n_key);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            int qa = q0 + (int)((long)r * (q1 - q0) / rows),
                qb = q0 + (int)((long)(r + 1) * (q1 - q0) / rows);
            int ka = k0 + (int)((long)c * (k1 - k0) / cols),
                kb = k0 + (int)((long)(c + 1) * (k1 - k0) / cols);
            double acc = 0;
            for (int q = qa; q < qb; q++) {
                ref_row(v, head, q, row);
                for (int k = ka; k < kb; k++)
                    acc = mean ? acc + row[k] : (row[k] > acc ? row[k] : acc);
            }
            out[r * cols + c] = (float)(mean ? acc / ((double)(qb - qa) * (kb - ka)) : acc);
        }
    free(row);
}

/* Fetches a row (binary) and compares with the reference; returns the max difference (or 1e9 on failure). */
__attribute__((unused)) static float check_row(int port, const char *id, const av_attn_view *v, int layer,
                                               int head, int q) {
    char path[256];
    const char *hs = head == AV_HEADS_MEAN ? "mean" : head == AV_HEADS_MAX ? "max" : NULL;
    char hb[16];
    snprintf(hb, sizeof hb, "%d", head);
    snprintf(path, sizeof path, "/api/traces/%s/row?layer=%d&head=%s&q=%d&format=f32", id, layer,
             hs ? hs : hb, q);
    resp r;
    float d = 1e9f;
    if (get(port, path, &r) == 200 && r.len == sizeof(float) * (size_t)v->n_key) {
        float *want = malloc(r.len);
        ref_row(v, head, q, want);
        d = h_max_abs_diff((const float *)r.body, want, (size_t)v->n_key);
        free(want);
    }
    resp_free(&r);
    return d;
}

__attribute__((unused)) static float check_tile(int port, const char *id, const av_attn_view *v, int layer,
                                                int head, int q0, int q1, int k0, int k1, int rows, int cols,
                                                int mean) {
    char path[320], hb[16];
    snprintf(hb, sizeof hb, "%d", head);
    snprintf(path, sizeof path,
             "/api/traces/%s/tile?layer=%d&head=%s&q0=%d&q1=%d&k0=%d&k1=%d&rows=%d&cols=%d&pool=%s", id,
             layer,
             head == AV_HEADS_MEAN  ? "mean"
             : head == AV_HEADS_MAX ? "max"
                                    : hb,
             q0, q1, k0, k1, rows, cols, mean ? "mean" : "max");
    resp r;
    float d = 1e9f;
    size_t n = (size_t)rows * (size_t)cols;
    if (get(port, path, &r) == 200 && r.len == sizeof(float) * n) {
        float *want = malloc(sizeof(float) * n);
        ref_tile(v, head, q0, q1, k0, k1, rows, cols, mean, want);
        d = h_max_abs_diff((const float *)r.body, want, n);
        free(want);
    }
    resp_free(&r);
    return d;
}

#endif
