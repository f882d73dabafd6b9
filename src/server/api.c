/* The /api/ routes of attnviz serve (documented in docs/API.md). Every error is a JSON object
 * {"error": "..."} with a 4xx status for a bad request; nothing a client sends can stop the server. */
#include "core/core.h"
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { MAX_TILE_CELLS = 1 << 20 };

/* ---- parameters ---- */

/* Integer query argument in [lo, hi] (def when absent and def_ok). Sets a 400 reply and returns -1. */
static int arg_int(const srv_request *req, srv_reply *r, const char *name, int def, int def_ok, long lo,
                   long hi, int *out) {
    const char *v = srv_arg(req, name);
    if (!v) {
        if (!def_ok) {
            srv_reply_error(r, 400, "missing parameter '%s'", name);
            return -1;
        }
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        srv_reply_error(r, 400, "parameter '%s' must be an integer in [%ld, %ld], got '%.40s'", name, lo, hi,
                        v);
        return -1;
    }
    *out = (int)x;
    return 0;
}

/* Picks the kind: ?kind=..., else the first the trace has. Sets a 400 reply and returns -1 when absent. */
static int pick_kind(const av_trace *t, const srv_request *req, srv_reply *r, av_attn_kind *kind) {
    const char *k = srv_arg(req, "kind");
    int found = k ? av_attn_kind_parse(k, kind) == 0 : 0;
    for (int i = 0; !k && !found && i < AV_ATTN_KIND_COUNT; i++)
        if (av_trace_n_layers(t, (av_attn_kind)i) > 0) *kind = (av_attn_kind)i, found = 1;
    if (found && av_trace_n_layers(t, *kind) > 0) return 0;
    srv_reply_error(r, 400, "the trace has no attention of kind '%.20s'", k ? k : "self");
    return -1;
}

/* Layer and head (an index, "mean" or "max") of a kind. */
static int arg_layer_head(const av_trace *t, av_attn_kind kind, const srv_request *req, srv_reply *r,
                          int *layer, int *head) {
    int nl = av_trace_n_layers(t, kind), nh = av_trace_n_heads(t, kind);
    if (arg_int(req, r, "layer", 0, 0, 0, nl - 1, layer)) return -1;
    const char *h = srv_arg(req, "head");
    if (h && strcmp(h, "mean") == 0)
        *head = AV_HEADS_MEAN;
    else if (h && strcmp(h, "max") == 0)
        *head = AV_HEADS_MAX;
    else if (!h)
        return srv_reply_error(r, 400, "missing parameter 'head' (an index, 'mean' or 'max')"), -1;
    else if (arg_int(req, r, "head", 0, 0, 0, nh - 1, head))
        return -1;
    return 0;
}

/* The finished trace of {id}, held; or a reply (404 unknown, 409 not finished) and NULL. */
static srv_run *get_trace(av_server *s, const char *id, srv_reply *r) {
    srv_run *run = srv_store_acquire(&s->store, id);
    if (!run) {
        srv_reply_error(r, 404, "no trace '%.40s' (unknown id, or evicted to keep memory bounded)", id);
        return NULL;
    }
    if (run->state != SRV_RUN_DONE || !run->trace) {
        if (run->state == SRV_RUN_FAILED)
            srv_reply_error(r, 409, "run %s failed: %s", run->id, run->error);
        else
            srv_reply_error(r, 409, "run %s is not finished yet: poll /api/runs/%s", run->id, run->id);
        srv_store_release(&s->store, run);
        return NULL;
    }
    return run;
}

static int want_binary(const srv_request *req, srv_reply *r, int def_binary, int *binary) {
    const char *f = srv_arg(req, "format");
    if (!f)
        *binary = def_binary;
    else if (strcmp(f, "f32") == 0)
        *binary = 1;
    else if (strcmp(f, "json") == 0)
        *binary = 0;
    else
        return srv_reply_error(r, 400, "parameter 'format' must be 'json' or 'f32', got '%.20s'", f), -1;
    return 0;
}

static json_t *floats_json(const float *v, size_t n) {
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_real(v[i]));
    return a;
}

/* ---- routes ---- */

static void get_info(av_server *s, srv_reply *r) {
    const av_server_params *p = &s->params;
    json_t *limits = json_pack("{s:I, s:i, s:i, s:i, s:I, s:I, s:i, s:I}", "max_body",
                               (json_int_t)p->max_body, "max_tokens", p->max_tokens, "max_queue",
                               p->max_queue, "max_runs", p->max_runs, "max_trace_bytes",
                               (json_int_t)p->max_trace_bytes, "cache_bytes", (json_int_t)p->cache_bytes,
                               "max_tile_cells", MAX_TILE_CELLS, "viewer_bytes", (json_int_t)p->viewer_bytes);
    json_t *j =
        json_pack("{s:s, s:s, s:o, s:o}", "attnviz", AV_VERSION, "mode", s->store.model ? "model" : "trace",
                  "limits", limits, "traces", srv_store_list(&s->store));
    if (s->store.model) {
        av_model_info mi = av_model_get_info(s->store.model);
        json_object_set_new(j, "model",
                            json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:I}", "name", mi.name,
                                      "arch", mi.arch, "format", av_model_format_name(mi.format), "n_layers",
                                      mi.n_layers, "n_heads", mi.n_heads, "n_kv_heads", mi.n_kv_heads, "dim",
                                      mi.dim, "vocab_size", mi.vocab_size, "max_seq_len", mi.max_seq_len,
                                      "n_params", (json_int_t)mi.n_params));
        /* what the input form offers: text for every model family run here so far */
        json_object_set_new(j, "inputs",
                            json_pack("{s:b, s:b, s:b, s:b}", "text", 1, "ids", 1, "image", 0, "target", 0));
        json_object_set_new(j, "lazy", json_boolean(p->lazy));
    }
    srv_reply_json(r, 200, j);
}

static void post_run(av_server *s, const srv_request *req, srv_reply *r) {
    av_model *m = s->store.model;
    if (!m) {
        srv_reply_error(r, 409,
                        "this server shows a saved trace and has no model: start it with --model to run");
        return;
    }
    if (!req->content_type || strncmp(req->content_type, "application/json", 16) != 0) {
        srv_reply_error(r, 415, "POST /api/run takes a JSON body with 'Content-Type: application/json'");
        return;
    }
    json_error_t je;
    json_t *j = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        srv_reply_error(r, 400, "malformed JSON at line %d, column %d: %s", je.line, je.column, je.text);
        return;
    }
    int32_t *ids = NULL;
    size_t n = 0;
    av_model_info mi = av_model_get_info(m);
    const char *key;
    json_t *v;
    if (!json_is_object(j)) {
        srv_reply_error(r, 400, "the body must be a JSON object such as {\"text\": \"...\"}");
        goto done;
    }
    json_object_foreach(j, key, v) {
        if (strcmp(key, "image") == 0) {
            srv_reply_error(r, 422,
                            "this model (%s, %s) takes text only: an image input needs a vision model",
                            mi.name, mi.arch);
            goto done;
        }
        if (strcmp(key, "target") == 0) {
            srv_reply_error(r, 422,
                            "this model (%s, %s) has no decoder input: a target text needs an "
                            "encoder-decoder (translation) model",
                            mi.name, mi.arch);
            goto done;
        }
        if (strcmp(key, "text") != 0 && strcmp(key, "ids") != 0 && strcmp(key, "add_bos") != 0) {
            srv_reply_error(r, 400, "unknown field '%.40s' (expected text, ids, add_bos)", key);
            goto done;
        }
    }
    json_t *text = json_object_get(j, "text"), *jids = json_object_get(j, "ids"),
           *bos = json_object_get(j, "add_bos");
    if (bos && !json_is_boolean(bos)) {
        srv_reply_error(r, 400, "'add_bos' must be true or false");
        goto done;
    }
    if (!text == !jids) {
        srv_reply_error(r, 400, "give exactly one of 'text' (a string) or 'ids' (an array of token ids)");
        goto done;
    }
    if (text) {
        if (!json_is_string(text)) {
            srv_reply_error(r, 400, "'text' must be a string");
            goto done;
        }
        const av_tokenizer *tok = av_model_tokenizer(m);
        if (!tok) {
            srv_reply_error(r, 422,
                            "the model has no tokenizer: send 'ids', or restart serve with --tokenizer");
            goto done;
        }
        av_err err = {{0}};
        if (av_tokenizer_encode(tok, json_string_value(text), json_string_length(text),
                                bos ? json_is_true(bos) : 1, &ids, &n, &err)) {
            srv_reply_error(r, 400, "cannot tokenize the text: %s", err.msg);
            goto done;
        }
    } else {
        if (!json_is_array(jids)) {
            srv_reply_error(r, 400, "'ids' must be an array of token ids");
            goto done;
        }
        n = json_array_size(jids);
        if (n > (size_t)s->params.max_tokens) goto too_many;
        ids = malloc(sizeof *ids * (n ? n : 1));
        if (!ids) {
            srv_reply_error(r, 503, "out of memory");
            goto done;
        }
        for (size_t i = 0; i < n; i++) {
            json_t *e = json_array_get(jids, i);
            if (!json_is_integer(e) || json_integer_value(e) < 0 || json_integer_value(e) >= mi.vocab_size) {
                srv_reply_error(r, 400, "'ids'[%zu] is not a token id in [0, %d)", i, mi.vocab_size);
                goto done;
            }
            ids[i] = (int32_t)json_integer_value(e);
        }
    }
    if (n == 0) {
        srv_reply_error(r, 400, "empty input: no tokens to run");
        goto done;
    }
    if (n > (size_t)s->params.max_tokens) goto too_many;
    char id[16];
    av_err err = {{0}};
    int st = srv_store_submit(&s->store, ids, (int)n, 1, id, &err);
    if (st) {
        srv_reply_error(r, st, "%s", err.msg);
        goto done;
    }
    char su[48], tu[48];
    snprintf(su, sizeof su, "/api/runs/%s", id);
    snprintf(tu, sizeof tu, "/api/traces/%s", id);
    srv_reply_json(r, 202,
                   json_pack("{s:s, s:s, s:i, s:s, s:s}", "id", id, "status", "queued", "n_tokens", (int)n,
                             "status_url", su, "trace_url", tu));
    goto done;
too_many:
    srv_reply_error(
        r, 413, "input is %zu tokens: this server accepts at most %d tokens per run (--max-tokens%s)", n,
        s->params.max_tokens, s->params.max_tokens == mi.max_seq_len ? ", the model's context" : "");
done:
    free(ids);
    json_decref(j);
}

static json_t *labels_json(const av_trace *t, const char *meta_key) {
    if (strcmp(meta_key, "tokens") == 0) {
        json_t *a = json_array();
        for (int i = 0; a && i < av_trace_n_tokens(t); i++) {
            json_t *s = json_string(av_trace_token(t, i));
            json_array_append_new(a, s ? s : json_string("\xEF\xBF\xBD"));
        }
        return a;
    }
    const char *v = av_trace_meta(t, meta_key);
    json_t *a = v ? json_loads(v, 0, NULL) : NULL;
    if (a && !json_is_array(a)) {
        json_decref(a);
        a = NULL;
    }
    return a;
}

static void get_trace_meta(const av_server *s, const srv_run *run, srv_reply *r) {
    const av_trace *t = run->trace;
    json_t *j = json_pack("{s:s, s:b, s:i}", "id", run->id, "lazy", av_trace_is_lazy(t), "n_tokens",
                          av_trace_n_tokens(t));
    json_t *ids = json_array(), *kinds = json_array(), *meta = json_object();
    for (int i = 0; i < av_trace_n_tokens(t); i++)
        json_array_append_new(ids, json_integer(av_trace_token_id(t, i)));
    json_object_set_new(j, "tokens", labels_json(t, "tokens"));
    json_object_set_new(j, "token_ids", ids);
    int has_src = av_trace_meta(t, "source_tokens") != NULL,
        has_tgt = av_trace_meta(t, "target_tokens") != NULL;
    if (has_src) json_object_set_new(j, "source_tokens", labels_json(t, "source_tokens"));
    if (has_tgt) json_object_set_new(j, "target_tokens", labels_json(t, "target_tokens"));
    for (int i = 0; i < AV_ATTN_KIND_COUNT; i++) {
        av_attn_kind k = (av_attn_kind)i;
        if (av_trace_n_layers(t, k) == 0) continue;
        const char *ql = av_attn_kind_labels_key(k, 0), *kl = av_attn_kind_labels_key(k, 1);
        if (!ql || !kl || !av_trace_meta(t, ql) || !av_trace_meta(t, kl))
            ql = kl = "tokens"; /* the trace's own tokens unless every list the kind names is there */
        json_array_append_new(kinds,
                              json_pack("{s:s, s:i, s:i, s:i, s:i, s:s, s:s}", "kind", av_attn_kind_name(k),
                                        "n_layers", av_trace_n_layers(t, k), "n_heads",
                                        av_trace_n_heads(t, k), "n_query", av_trace_n_query(t, k), "n_key",
                                        av_trace_n_key(t, k), "query_labels", ql, "key_labels", kl));
    }
    const char *const keys[] = {"format",       "version",    "model",        "arch",
                                "model_format", "created_by", "n_layers",     "n_heads",
                                "n_kv_heads",   "patch_grid", "prefix_tokens"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *v = av_trace_meta(t, keys[i]);
        if (v) json_object_set_new(meta, keys[i], json_string(v));
    }
    json_object_set_new(j, "kinds", kinds);
    json_object_set_new(j, "viewer", json_boolean(srv_trace_full_bytes(t) <= s->params.viewer_bytes));
    json_object_set_new(j, "meta", meta);
    srv_reply_json(r, 200, j);
}

static void get_row(const srv_run *run, const srv_request *req, srv_reply *r) {
    const av_trace *t = run->trace;
    av_attn_kind kind;
    int layer, head, q, binary;
    if (pick_kind(t, req, r, &kind) || arg_layer_head(t, kind, req, r, &layer, &head) ||
        arg_int(req, r, "q", 0, 0, 0, av_trace_n_query(t, kind) - 1, &q) || want_binary(req, r, 0, &binary))
        return;
    int nk = av_trace_n_key(t, kind);
    float *row = malloc(sizeof *row * (size_t)nk);
    if (!row) {
        srv_reply_error(r, 503, "out of memory");
        return;
    }
    av_err err = {{0}};
    if (av_trace_attn_row(t, kind, layer, head, q, row, &err)) {
        free(row);
        srv_reply_error(r, 500, "%s", err.msg);
        return;
    }
    if (binary) {
        srv_reply_bytes(r, 200, row, sizeof *row * (size_t)nk, "application/octet-stream");
        return;
    }
    json_t *j = json_pack("{s:s, s:i, s:i, s:i, s:o}", "kind", av_attn_kind_name(kind), "layer", layer, "q",
                          q, "n_key", nk, "values", floats_json(row, (size_t)nk));
    json_object_set_new(j, "head",
                        head >= 0 ? json_integer(head) : json_string(head == AV_HEADS_MEAN ? "mean" : "max"));
    free(row);
    srv_reply_json(r, 200, j);
}

static void get_tile(av_server *s, const srv_run *run, const srv_request *req, srv_reply *r) {
    const av_trace *t = run->trace;
    av_attn_kind kind;
    if (pick_kind(t, req, r, &kind)) return;
    int nq = av_trace_n_query(t, kind), nk = av_trace_n_key(t, kind);
    int layer, head, q0, q1, k0, k1, rows, cols, binary;
    if (arg_layer_head(t, kind, req, r, &layer, &head) || arg_int(req, r, "q0", 0, 1, 0, nq - 1, &q0) ||
        arg_int(req, r, "q1", nq, 1, q0 + 1, nq, &q1) || arg_int(req, r, "k0", 0, 1, 0, nk - 1, &k0) ||
        arg_int(req, r, "k1", nk, 1, k0 + 1, nk, &k1) ||
        arg_int(req, r, "rows", q1 - q0 < 256 ? q1 - q0 : 256, 1, 1, q1 - q0, &rows) ||
        arg_int(req, r, "cols", k1 - k0 < 256 ? k1 - k0 : 256, 1, 1, k1 - k0, &cols) ||
        want_binary(req, r, 1, &binary))
        return;
    const char *ps = srv_arg(req, "pool");
    av_pool pool = AV_POOL_MAX;
    if (ps && strcmp(ps, "mean") == 0)
        pool = AV_POOL_MEAN;
    else if (ps && strcmp(ps, "max") != 0) {
        srv_reply_error(r, 400, "parameter 'pool' must be 'max' or 'mean', got '%.20s'", ps);
        return;
    }
    if ((long)rows * cols > MAX_TILE_CELLS) {
        srv_reply_error(r, 400, "tile of %d x %d cells is too large (at most %d cells)", rows, cols,
                        MAX_TILE_CELLS);
        return;
    }
    size_t n = (size_t)rows * (size_t)cols;
    float *out = malloc(sizeof *out * n);
    if (!out) {
        srv_reply_error(r, 503, "out of memory");
        return;
    }
    srv_tile_key key;
    memset(&key, 0, sizeof key);
    key = (srv_tile_key){run->seq, (int)kind, layer, head, q0, q1, k0, k1, rows, cols, (int)pool};
    int hit = srv_cache_get(&s->cache, &key, out, n);
    if (!hit) {
        av_err err = {{0}};
        if (av_trace_attn_tile(t, kind, layer, head, q0, q1, k0, k1, rows, cols, pool, out, &err)) {
            free(out);
            srv_reply_error(r, 500, "%s", err.msg);
            return;
        }
        srv_cache_put(&s->cache, &key, out, n);
    }
    if (binary) {
        char shape[32];
        snprintf(shape, sizeof shape, "%d,%d", rows, cols);
        srv_reply_bytes(r, 200, out, sizeof *out * n, "application/octet-stream");
        srv_reply_header(r, "X-Attnviz-Shape", shape);
        srv_reply_header(r, "X-Attnviz-Cache", hit ? "hit" : "miss");
        return;
    }
    json_t *j =
        json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:s, s:o}", "kind", av_attn_kind_name(kind),
                  "layer", layer, "q0", q0, "q1", q1, "k0", k0, "k1", k1, "rows", rows, "cols", cols, "pool",
                  pool == AV_POOL_MAX ? "max" : "mean", "values", floats_json(out, n));
    json_object_set_new(j, "head",
                        head >= 0 ? json_integer(head) : json_string(head == AV_HEADS_MEAN ? "mean" : "max"));
    free(out);
    srv_reply_json(r, 200, j);
}

/* The trace as a safetensors file (saved to a temporary file that is unlinked at once, then streamed). */
static void get_file(const srv_run *run, srv_reply *r) {
    const char *dir = getenv("TMPDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/attnviz-serve-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0) {
        srv_reply_error(r, 500, "cannot create a temporary file: %s", strerror(errno));
        return;
    }
    close(fd);
    av_err err = {{0}};
    if (av_trace_save(run->trace, path, &err)) {
        unlink(path);
        srv_reply_error(r, 500, "%s", err.msg);
        return;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    unlink(path);
    if (fd < 0) {
        srv_reply_error(r, 500, "cannot reopen the saved trace: %s", strerror(errno));
        return;
    }
    char disp[64];
    snprintf(disp, sizeof disp, "attachment; filename=\"attnviz-%s.safetensors\"", run->id);
    r->status = 200;
    r->fd = fd;
    r->ctype = "application/octet-stream";
    srv_reply_header(r, "Content-Disposition", disp);
}

/* Splits "/api/<a>/<b>/<c>" into at most 3 segments; returns the count, or -1 when there are more. */
static int split_path(const char *path, char seg[3][64]) {
    const char *p = path + 5; /* after "/api/" */
    int n = 0;
    while (*p) {
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (n == 3 || len == 0 || len >= 64) return -1;
        memcpy(seg[n], p, len);
        seg[n][len] = 0;
        n++;
        p += len + (e ? 1 : 0);
        if (e && !*p) return -1; /* trailing slash */
    }
    return n;
}

static int method_is(const srv_request *req, srv_reply *r, const char *want) {
    if (strcmp(req->method, want) == 0 || (strcmp(want, "GET") == 0 && strcmp(req->method, "HEAD") == 0))
        return 1;
    r->allow = strcmp(want, "GET") == 0 ? "GET, HEAD" : want;
    srv_reply_error(r, 405, "%s is not allowed on %.200s (use %s)", req->method, req->path, want);
    return 0;
}

void srv_api_handle(av_server *s, const srv_request *req, srv_reply *r) {
    char seg[3][64];
    int n = strncmp(req->path, "/api/", 5) == 0 ? split_path(req->path, seg) : -1;
    if (n == 1 && strcmp(seg[0], "info") == 0) {
        if (method_is(req, r, "GET")) get_info(s, r);
    } else if (n == 1 && strcmp(seg[0], "colormaps") == 0) {
        if (method_is(req, r, "GET")) srv_colormaps(r);
    } else if (n == 1 && strcmp(seg[0], "run") == 0) {
        if (method_is(req, r, "POST")) post_run(s, req, r);
    } else if (n == 2 && strcmp(seg[0], "runs") == 0) {
        if (!method_is(req, r, "GET")) return;
        json_t *j = srv_store_status(&s->store, seg[1]);
        if (j)
            srv_reply_json(r, 200, j);
        else
            srv_reply_error(r, 404, "no run '%s' (unknown id, or evicted to keep memory bounded)", seg[1]);
    } else if (n == 1 && strcmp(seg[0], "traces") == 0) {
        if (method_is(req, r, "GET")) srv_reply_json(r, 200, srv_store_list(&s->store));
    } else if ((n == 2 || n == 3) && strcmp(seg[0], "traces") == 0) {
        const char *what = n == 3 ? seg[2] : "";
        if (n == 3 && strcmp(what, "row") != 0 && strcmp(what, "tile") != 0 && strcmp(what, "file") != 0 &&
            strcmp(what, "viewer") != 0) {
            srv_reply_error(r, 404, "unknown endpoint %.200s", req->path);
            return;
        }
        if (!method_is(req, r, "GET")) return;
        srv_run *run = get_trace(s, seg[1], r);
        if (!run) return;
        if (n == 2)
            get_trace_meta(s, run, r);
        else if (strcmp(what, "row") == 0)
            get_row(run, req, r);
        else if (strcmp(what, "tile") == 0)
            get_tile(s, run, req, r);
        else if (strcmp(what, "file") == 0)
            get_file(run, r);
        else
            srv_viewer_data(s, run, req, r);
        srv_store_release(&s->store, run);
    } else {
        srv_reply_error(r, 404, "unknown endpoint %.200s", req->path);
    }
}
