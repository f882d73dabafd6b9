/* The /api/ routes of attnviz serve (documented in docs/API.md). Every error is a JSON object
 * {"error": "..."} with a 4xx status for a bad request; nothing a client sends can stop the server. */
#include "core/core.h"
#include "server.h"
#include "trace/logprobs.h"

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
    if (!av_trace_has_attention(t))
        srv_reply_error(r, 409,
                        "the trace holds no attention weights (a model API's response has none): see "
                        "/api/traces/{id}/steps");
    else
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

static void get_info(av_server *s, const srv_request *req, const char *unused, srv_reply *r) {
    (void)req, (void)unused;
    const av_server_params *p = &s->params;
    json_t *limits = json_pack("{s:I, s:i, s:i, s:i, s:I, s:I, s:i, s:I}", "max_body",
                               (json_int_t)p->max_body, "max_tokens", p->max_tokens, "max_queue",
                               p->max_queue, "max_runs", p->max_runs, "max_trace_bytes",
                               (json_int_t)p->max_trace_bytes, "cache_bytes", (json_int_t)p->cache_bytes,
                               "max_tile_cells", MAX_TILE_CELLS, "viewer_bytes", (json_int_t)p->viewer_bytes);
    json_t *j =
        json_pack("{s:s, s:s, s:o, s:o}", "attnviz", AV_VERSION, "mode", s->store.model ? "model" : "trace",
                  "limits", limits, "traces", srv_store_list(&s->store));
    size_t used, reserved;
    srv_store_memory(&s->store, &used, &reserved);
    json_object_set_new(j, "memory",
                        json_pack("{s:I, s:I}", "used", (json_int_t)used, "reserved", (json_int_t)reserved));
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

/* ---- POST /api/run, in steps ---- */

/* The body as a JSON object with only known fields; NULL with a reply otherwise. */
static json_t *run_body(const av_model *m, const srv_request *req, srv_reply *r) {
    if (!req->content_type || strncmp(req->content_type, "application/json", 16) != 0) {
        srv_reply_error(r, 415, "POST /api/run takes a JSON body with 'Content-Type: application/json'");
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        srv_reply_error(r, 400, "malformed JSON at line %d, column %d: %s", je.line, je.column, je.text);
        return NULL;
    }
    av_model_info mi = av_model_get_info(m);
    const char *key;
    json_t *v;
    if (!json_is_object(j)) {
        srv_reply_error(r, 400, "the body must be a JSON object such as {\"text\": \"...\"}");
        goto bad;
    }
    json_object_foreach(j, key, v) {
        if (strcmp(key, "image") == 0) {
            srv_reply_error(r, 422,
                            "this model (%s, %s) takes text only: an image input needs a vision model",
                            mi.name, mi.arch);
            goto bad;
        }
        if (strcmp(key, "target") == 0) {
            if (mi.n_dec_layers > 0)
                srv_reply_error(r, 422,
                                "a forced target text is not taken by the server yet: send the source as "
                                "'text' and the model (%s) decodes greedily",
                                mi.name);
            else
                srv_reply_error(r, 422,
                                "this model (%s, %s) has no decoder input: a target text needs an "
                                "encoder-decoder (translation) model",
                                mi.name, mi.arch);
            goto bad;
        }
        if (strcmp(key, "text") != 0 && strcmp(key, "ids") != 0 && strcmp(key, "add_bos") != 0) {
            srv_reply_error(r, 400, "unknown field '%.40s' (expected text, ids, add_bos)", key);
            goto bad;
        }
    }
    return j;
bad:
    json_decref(j);
    return NULL;
}

/* "text": tokenized with the model's tokenizer. Returns 0, or -1 with a reply. */
static int text_ids(const av_model *m, const json_t *text, const json_t *bos, int32_t **ids, size_t *n,
                    srv_reply *r) {
    if (!json_is_string(text)) return srv_reply_error(r, 400, "'text' must be a string"), -1;
    if (json_string_length(text) == 0) return srv_reply_error(r, 400, "empty input: 'text' is empty"), -1;
    const av_tokenizer *tok = av_model_tokenizer(m);
    if (!tok)
        return srv_reply_error(r, 422,
                               "the model has no tokenizer: send 'ids', or restart serve with --tokenizer"),
               -1;
    av_err err = {{0}};
    if (av_tokenizer_encode(tok, json_string_value(text), json_string_length(text),
                            bos ? json_is_true(bos) : 1, ids, n, &err))
        return srv_reply_error(r, 400, "cannot tokenize the text: %s", err.msg), -1;
    return 0;
}

/* "ids": token ids in [0, vocab), at most max_tokens of them (checked before any allocation). */
static int array_ids(const av_model *m, const json_t *jids, int max_tokens, int32_t **ids, size_t *n,
                     srv_reply *r) {
    if (!json_is_array(jids)) return srv_reply_error(r, 400, "'ids' must be an array of token ids"), -1;
    int vocab = av_model_get_info(m).vocab_size;
    *n = json_array_size(jids);
    if (*n > (size_t)max_tokens) return 0; /* the caller answers 413 with the count */
    *ids = malloc(sizeof **ids * (*n ? *n : 1));
    if (!*ids) return srv_reply_error(r, 503, "out of memory"), -1;
    for (size_t i = 0; i < *n; i++) {
        json_t *e = json_array_get(jids, i);
        if (!json_is_integer(e) || json_integer_value(e) < 0 || json_integer_value(e) >= vocab)
            return srv_reply_error(r, 400, "'ids'[%zu] is not a token id in [0, %d)", i, vocab), -1;
        (*ids)[i] = (int32_t)json_integer_value(e);
    }
    return 0;
}

/* The run's token ids from exactly one of "text" and "ids". */
static int run_ids(const av_server *s, const json_t *j, int32_t **ids, size_t *n, srv_reply *r) {
    json_t *text = json_object_get(j, "text"), *jids = json_object_get(j, "ids"),
           *bos = json_object_get(j, "add_bos");
    if (bos && !json_is_boolean(bos)) return srv_reply_error(r, 400, "'add_bos' must be true or false"), -1;
    if (!text == !jids)
        return srv_reply_error(r, 400,
                               "give exactly one of 'text' (a string) or 'ids' (an array of token ids)"),
               -1;
    return text ? text_ids(s->store.model, text, bos, ids, n, r)
                : array_ids(s->store.model, jids, s->params.max_tokens, ids, n, r);
}

static void reply_queued(srv_reply *r, const char *id, size_t n) {
    char su[64], tu[64];
    snprintf(su, sizeof su, "/api/runs/%s", id);
    snprintf(tu, sizeof tu, "/api/traces/%s", id);
    srv_reply_json(r, 202,
                   json_pack("{s:s, s:s, s:i, s:s, s:s}", "id", id, "status", "queued", "n_tokens", (int)n,
                             "status_url", su, "trace_url", tu));
}

static void post_run(av_server *s, const srv_request *req, const char *unused, srv_reply *r) {
    (void)unused;
    av_model *m = s->store.model;
    if (!m) {
        srv_reply_error(r, 409,
                        "this server shows a saved trace and has no model: start it with --model to run");
        return;
    }
    json_t *j = run_body(m, req, r);
    int32_t *ids = NULL;
    size_t n = 0;
    if (!j || run_ids(s, j, &ids, &n, r)) goto done;
    av_model_info mi = av_model_get_info(m);
    if (n == 0) {
        srv_reply_error(r, 400, "empty input: no tokens to run");
    } else if (n > (size_t)s->params.max_tokens) {
        srv_reply_error(
            r, 413, "input is %zu tokens: this server accepts at most %d tokens per run (--max-tokens%s)", n,
            s->params.max_tokens, s->params.max_tokens == mi.max_seq_len ? ", the model's context" : "");
    } else {
        char id[SRV_ID_LEN];
        av_err err = {{0}};
        int st = srv_store_submit(&s->store, ids, (int)n, 1, id, &err);
        if (st)
            srv_reply_error(r, st, "%s", err.msg);
        else
            reply_queued(r, id, n);
    }
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

static void get_trace_meta(av_server *s, srv_run *run, const srv_request *req, srv_reply *r) {
    (void)req;
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
    json_object_set_new(j, "has_attention", json_boolean(av_trace_has_attention(t)));
    json_object_set_new(j, "logprobs", json_boolean(av_trace_has_logprobs(t)));
    av_generation_info g;
    if (av_trace_generation_info(t, &g) == 0 && g.prompt_len >= 0)
        json_object_set_new(j, "prompt_len", json_integer(g.prompt_len));
    json_object_set_new(j, "meta", meta);
    srv_reply_json(r, 200, j);
}

static void get_row(av_server *s, srv_run *run, const srv_request *req, srv_reply *r) {
    (void)s;
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

/* The parameters of a tile request as a cache key (run_seq left to the caller). */
static int tile_args(const av_trace *t, const srv_request *req, srv_reply *r, srv_tile_key *key,
                     int *binary) {
    memset(key, 0, sizeof *key);
    av_attn_kind kind;
    if (pick_kind(t, req, r, &kind)) return -1;
    key->kind = (int)kind;
    int nq = av_trace_n_query(t, kind), nk = av_trace_n_key(t, kind);
    srv_tile_key *k = key;
    if (arg_layer_head(t, kind, req, r, &k->layer, &k->head) ||
        arg_int(req, r, "q0", 0, 1, 0, nq - 1, &k->q0) ||
        arg_int(req, r, "q1", nq, 1, k->q0 + 1, nq, &k->q1) ||
        arg_int(req, r, "k0", 0, 1, 0, nk - 1, &k->k0) ||
        arg_int(req, r, "k1", nk, 1, k->k0 + 1, nk, &k->k1) ||
        arg_int(req, r, "rows", k->q1 - k->q0 < 256 ? k->q1 - k->q0 : 256, 1, 1, k->q1 - k->q0, &k->rows) ||
        arg_int(req, r, "cols", k->k1 - k->k0 < 256 ? k->k1 - k->k0 : 256, 1, 1, k->k1 - k->k0, &k->cols) ||
        want_binary(req, r, 1, binary))
        return -1;
    const char *ps = srv_arg(req, "pool");
    if (ps && strcmp(ps, "mean") != 0 && strcmp(ps, "max") != 0)
        return srv_reply_error(r, 400, "parameter 'pool' must be 'max' or 'mean', got '%.20s'", ps), -1;
    k->pool = ps && strcmp(ps, "mean") == 0 ? AV_POOL_MEAN : AV_POOL_MAX;
    if ((long)k->rows * k->cols > MAX_TILE_CELLS)
        return srv_reply_error(r, 400, "tile of %d x %d cells is too large (at most %d cells)", k->rows,
                               k->cols, MAX_TILE_CELLS),
               -1;
    return 0;
}

static void reply_tile(srv_reply *r, const srv_tile_key *k, float *out, int hit, int binary) {
    size_t n = (size_t)k->rows * (size_t)k->cols;
    if (binary) {
        char shape[32];
        snprintf(shape, sizeof shape, "%d,%d", k->rows, k->cols);
        srv_reply_bytes(r, 200, out, sizeof *out * n, "application/octet-stream");
        srv_reply_header(r, "X-Attnviz-Shape", shape);
        srv_reply_header(r, "X-Attnviz-Cache", hit ? "hit" : "miss");
        return;
    }
    json_t *j = json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:s, s:o}", "kind",
                          av_attn_kind_name((av_attn_kind)k->kind), "layer", k->layer, "q0", k->q0, "q1",
                          k->q1, "k0", k->k0, "k1", k->k1, "rows", k->rows, "cols", k->cols, "pool",
                          k->pool == AV_POOL_MAX ? "max" : "mean", "values", floats_json(out, n));
    json_object_set_new(j, "head",
                        k->head >= 0 ? json_integer(k->head)
                                     : json_string(k->head == AV_HEADS_MEAN ? "mean" : "max"));
    free(out);
    srv_reply_json(r, 200, j);
}

static void get_tile(av_server *s, srv_run *run, const srv_request *req, srv_reply *r) {
    const av_trace *t = run->trace;
    srv_tile_key k;
    int binary;
    if (tile_args(t, req, r, &k, &binary)) return;
    k.run_seq = run->seq;
    size_t n = (size_t)k.rows * (size_t)k.cols;
    float *out = malloc(sizeof *out * n);
    if (!out) {
        srv_reply_error(r, 503, "out of memory");
        return;
    }
    int hit = srv_cache_get(&s->cache, &k, out, n);
    if (!hit) {
        av_err err = {{0}};
        if (av_trace_attn_tile(t, (av_attn_kind)k.kind, k.layer, k.head, k.q0, k.q1, k.k0, k.k1, k.rows,
                               k.cols, (av_pool)k.pool, out, &err)) {
            free(out);
            srv_reply_error(r, 500, "%s", err.msg);
            return;
        }
        srv_cache_put(&s->cache, &k, out, n);
    }
    reply_tile(r, &k, out, hit, binary);
}

/* The trace as a safetensors file (saved to a temporary file that is unlinked at once, then streamed). */
static void get_file(av_server *s, srv_run *run, const srv_request *req, srv_reply *r) {
    (void)s, (void)req;
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
    char disp[96];
    snprintf(disp, sizeof disp, "attachment; filename=\"attnviz-%s.safetensors\"", run->id);
    r->status = 200;
    r->fd = fd;
    r->ctype = "application/octet-stream";
    srv_reply_header(r, "Content-Disposition", disp);
}

/* ---- routing ---- */

static void get_colormaps(av_server *s, const srv_request *req, const char *unused, srv_reply *r) {
    (void)s, (void)req, (void)unused;
    srv_colormaps(r);
}

static void get_run_status(av_server *s, const srv_request *req, const char *id, srv_reply *r) {
    (void)req;
    json_t *j = srv_store_status(&s->store, id);
    if (j)
        srv_reply_json(r, 200, j);
    else
        srv_reply_error(r, 404, "no run '%.40s' (unknown id, or evicted to keep memory bounded)", id);
}

static void get_traces(av_server *s, const srv_request *req, const char *unused, srv_reply *r) {
    (void)req, (void)unused;
    srv_reply_json(r, 200, srv_store_list(&s->store));
}

/* One route: a path pattern under /api/ whose "*" segment is a run or trace id, its method (GET also answers
 * HEAD), and a handler; `traced` handlers get the finished trace of the id, held for the request. */
typedef struct srv_route {
    const char *pattern;
    const char *method;
    void (*plain)(av_server *s, const srv_request *req, const char *id, srv_reply *r);
    void (*traced)(av_server *s, srv_run *run, const srv_request *req, srv_reply *r);
} srv_route;

/* The step data (log-probabilities, alternatives, generation metadata) of a trace that has them. */
static void get_steps(av_server *s, srv_run *run, const srv_request *req, srv_reply *r) {
    (void)s, (void)req;
    av_err err = {{0}};
    if (!av_trace_has_logprobs(run->trace)) {
        srv_reply_error(r, 404,
                        "trace %s holds no log-probabilities (run with logits, generate, or import an API "
                        "response)",
                        run->id);
        return;
    }
    json_t *j = av_steps_json(run->trace, 1024, &err);
    if (j)
        srv_reply_json(r, 200, j);
    else
        srv_reply_error(r, 500, "%s", err.msg);
}

static const srv_route k_routes[] = {
    {"info", "GET", get_info, NULL},
    {"colormaps", "GET", get_colormaps, NULL},
    {"run", "POST", post_run, NULL},
    {"runs/*", "GET", get_run_status, NULL},
    {"traces", "GET", get_traces, NULL},
    {"traces/*", "GET", NULL, get_trace_meta},
    {"traces/*/row", "GET", NULL, get_row},
    {"traces/*/tile", "GET", NULL, get_tile},
    {"traces/*/file", "GET", NULL, get_file},
    {"traces/*/viewer", "GET", NULL, srv_viewer_data},
    {"traces/*/steps", "GET", NULL, get_steps},
};

enum { MAX_SEGS = 3, SEG_LEN = 64 };

/* Splits the path after "/api/" into at most MAX_SEGS non-empty segments; the count, or -1. */
static int split_path(const char *path, char seg[MAX_SEGS][SEG_LEN]) {
    if (strncmp(path, "/api/", 5) != 0) return -1;
    const char *p = path + 5;
    int n = 0;
    while (*p) {
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (n == MAX_SEGS || len == 0 || len >= SEG_LEN) return -1;
        memcpy(seg[n], p, len);
        seg[n][len] = 0;
        n++;
        p += len + (e ? 1 : 0);
        if (e && !*p) return -1; /* trailing slash */
    }
    return n;
}

/* 1 when the segments match the pattern; *id is the segment matched by "*". */
static int route_matches(const char *pattern, char seg[MAX_SEGS][SEG_LEN], int n, const char **id) {
    int i = 0;
    for (const char *p = pattern; *p; i++) {
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (i >= n) return 0;
        if (len == 1 && *p == '*')
            *id = seg[i];
        else if (strlen(seg[i]) != len || strncmp(seg[i], p, len) != 0)
            return 0;
        p += len + (e ? 1 : 0);
    }
    return i == n;
}

static int method_ok(const srv_request *req, const char *want) {
    return strcmp(req->method, want) == 0 || (strcmp(want, "GET") == 0 && strcmp(req->method, "HEAD") == 0);
}

void srv_api_handle(av_server *s, const srv_request *req, srv_reply *r) {
    char seg[MAX_SEGS][SEG_LEN];
    int n = split_path(req->path, seg);
    for (size_t i = 0; n >= 1 && i < sizeof k_routes / sizeof k_routes[0]; i++) {
        const srv_route *rt = &k_routes[i];
        const char *id = NULL;
        if (!route_matches(rt->pattern, seg, n, &id)) continue;
        if (!method_ok(req, rt->method)) {
            r->allow = strcmp(rt->method, "GET") == 0 ? "GET, HEAD" : rt->method;
            srv_reply_error(r, 405, "%s is not allowed on %.200s (use %s)", req->method, req->path,
                            rt->method);
            return;
        }
        if (rt->plain) {
            rt->plain(s, req, id, r);
            return;
        }
        srv_run *run = get_trace(s, id, r);
        if (!run) return;
        rt->traced(s, run, req, r);
        srv_store_release(&s->store, run);
        return;
    }
    srv_reply_error(r, 404, "unknown endpoint %.200s", req->path);
}
