/* The run store: POST /api/run queues a run; one worker thread runs them in order (each run uses the cores
 * through the model's own threads, so runs never compete for them). Finished traces are kept within a
 * count and a memory budget; the least recently used unpinned ones are evicted. Readers hold a reference,
 * so an evicted trace is freed only after the last request using it ends. */
#include "core/core.h"
#include "server.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static const char *state_name(srv_run_state s) {
    switch (s) {
    case SRV_RUN_QUEUED: return "queued";
    case SRV_RUN_RUNNING: return "running";
    case SRV_RUN_DONE: return "done";
    case SRV_RUN_FAILED: return "failed";
    }
    return "?";
}

size_t srv_trace_bytes(const av_model *m, int n_tokens, int lazy) {
    if (!m) return 0;
    av_model_info mi = av_model_get_info(m);
    size_t T = (size_t)n_tokens, L = (size_t)mi.n_layers, H = (size_t)mi.n_heads;
    size_t hd = mi.n_heads > 0 ? (size_t)(mi.dim / mi.n_heads) : 0, kv = (size_t)mi.n_kv_heads;
    size_t per_layer, total, tmp;
    if (lazy) {
        /* q (H * hd) and k (kv * hd) per token, plus value norms (H) per token */
        per_layer = T * ((H + kv) * hd + H) * sizeof(float);
    } else {
        if (!av_mul_size(H * T, T + 1, &tmp) || !av_mul_size(tmp, sizeof(float), &per_layer)) return SIZE_MAX;
    }
    if (!av_mul_size(per_layer, L, &total) || !av_add_size(total, T * 64, &total)) return SIZE_MAX;
    return total;
}

/* 128 random bits from the kernel, in hex: an id no other client can guess. */
static int random_id(char id[SRV_ID_LEN], av_err *err) {
    unsigned char b[16];
    for (size_t got = 0; got < sizeof b;) {
        ssize_t k = getrandom(b + got, sizeof b - got, 0);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return av_errf(err, "cannot make a run id: getrandom: %s", strerror(errno));
        got += (size_t)k;
    }
    for (int i = 0; i < 16; i++)
        snprintf(id + 2 * i, 3, "%02x", b[i]);
    return 0;
}

void srv_page_release(srv_page *page) {
    if (page && atomic_fetch_sub(&page->refs, 1) == 1) {
        free(page->data);
        free(page);
    }
}

static void run_free(srv_run *r) {
    if (!r) return;
    srv_page_release(r->page);
    free(r->ids);
    av_trace_free(r->trace);
    free(r);
}

/* Removes runs[i] from the store (lock held); frees it now or when its last reader releases it. */
static void drop_at(srv_store *st, int i) {
    srv_run *r = st->runs[i];
    memmove(&st->runs[i], &st->runs[i + 1], sizeof *st->runs * (size_t)(st->n_runs - i - 1));
    st->n_runs--;
    st->bytes -= r->bytes;
    if (st->cache) srv_cache_drop_run(st->cache, r->seq);
    r->dropped = 1;
    if (r->refs == 0) run_free(r);
}

/* Evicts least recently used finished runs until `reserve` more bytes fit and at most max_runs are kept. */
static void evict(srv_store *st, size_t reserve, const srv_run *keep) {
    for (;;) {
        int finished = 0, victim = -1;
        for (int i = 0; i < st->n_runs; i++) {
            srv_run *r = st->runs[i];
            if ((r->state != SRV_RUN_DONE && r->state != SRV_RUN_FAILED) || r->pinned) continue;
            finished++;
            if (r != keep && (victim < 0 || r->t_used < st->runs[victim]->t_used)) victim = i;
        }
        int over_bytes = st->bytes + st->reserved + reserve > st->params->max_trace_bytes;
        int over_count = finished > st->params->max_runs;
        if (victim < 0 || (!over_bytes && !over_count)) return;
        drop_at(st, victim);
    }
}

static int store_append(srv_store *st, srv_run *r, av_err *err) {
    if (st->n_runs == st->cap_runs) {
        int cap = st->cap_runs ? 2 * st->cap_runs : 16;
        srv_run **p = realloc(st->runs, sizeof *p * (size_t)cap);
        if (!p) return av_errf(err, "out of memory");
        st->runs = p;
        st->cap_runs = cap;
    }
    st->runs[st->n_runs++] = r;
    return 0;
}

static void *worker_main(void *arg) {
    srv_store *st = arg;
    pthread_mutex_lock(&st->mu);
    for (;;) {
        while (!st->stop && !st->q_head)
            pthread_cond_wait(&st->cv, &st->mu);
        if (st->stop) break;
        srv_run *r = st->q_head;
        st->q_head = r->next;
        if (!st->q_head) st->q_tail = NULL;
        st->q_len--;
        r->next = NULL;
        r->state = SRV_RUN_RUNNING;
        r->t_start = av_seconds();
        r->refs++;
        size_t reserve = srv_trace_bytes(st->model, r->n_ids, st->params->lazy);
        evict(st, reserve, r);
        pthread_mutex_unlock(&st->mu);

        av_run_params rp = av_run_default_params();
        rp.lazy = st->params->lazy;
        rp.add_bos = 0; /* ids were encoded with BOS already when asked */
        rp.n_threads = st->params->n_threads;
        av_trace *t = NULL;
        av_err err = {{0}};
        int rc = av_trace_from_ids(st->model, r->ids, (size_t)r->n_ids, &rp, &t, &err);

        pthread_mutex_lock(&st->mu);
        r->t_end = r->t_used = av_seconds();
        free(r->ids);
        r->ids = NULL;
        if (rc) {
            r->state = SRV_RUN_FAILED;
            snprintf(r->error, sizeof r->error, "%s", err.msg[0] ? err.msg : "the run failed");
        } else {
            r->trace = t;
            r->state = SRV_RUN_DONE;
            r->bytes = reserve;
            st->bytes += reserve;
            if (r->n_ids > 0) st->sec_per_token = (r->t_end - r->t_start) / r->n_ids;
        }
        r->refs--;
        if (r->dropped && r->refs == 0)
            run_free(r);
        else
            evict(st, 0, r);
    }
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

int srv_store_init(srv_store *st, av_model *model, srv_cache *cache, const av_server_params *p, av_err *err) {
    memset(st, 0, sizeof *st);
    st->model = model;
    st->cache = cache;
    st->params = p;
    st->next_seq = 0;
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cv, NULL);
    if (model) {
        if (pthread_create(&st->worker, NULL, worker_main, st) != 0) {
            pthread_cond_destroy(&st->cv);
            pthread_mutex_destroy(&st->mu);
            return av_errf(err, "cannot start the run worker thread");
        }
        st->worker_started = 1;
    }
    return 0;
}

void srv_store_free(srv_store *st) {
    pthread_mutex_lock(&st->mu);
    st->stop = 1;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
    if (st->worker_started) pthread_join(st->worker, NULL);
    /* queued runs are also in runs[]; every request has ended, so nothing holds a reference */
    for (int i = 0; i < st->n_runs; i++)
        run_free(st->runs[i]);
    free(st->runs);
    pthread_cond_destroy(&st->cv);
    pthread_mutex_destroy(&st->mu);
    memset(st, 0, sizeof *st);
}

int srv_store_add_trace(srv_store *st, av_trace *trace, av_err *err) {
    srv_run *r = calloc(1, sizeof *r);
    if (!r) {
        av_trace_free(trace);
        return av_errf(err, "out of memory");
    }
    if (random_id(r->id, err)) {
        free(r);
        av_trace_free(trace);
        return -1;
    }
    pthread_mutex_lock(&st->mu);
    r->seq = st->next_seq++;
    r->state = SRV_RUN_DONE;
    r->trace = trace;
    r->pinned = 1;
    r->t_submit = r->t_start = r->t_end = r->t_used = av_seconds();
    int rc = store_append(st, r, err);
    pthread_mutex_unlock(&st->mu);
    if (rc) run_free(r);
    return rc;
}

int srv_store_submit(srv_store *st, const int32_t *ids, int n, int add_bos, char id[SRV_ID_LEN],
                     av_err *err) {
    if (!st->model) return av_errf(err, "this server shows a saved trace and has no model to run"), 409;
    size_t need = srv_trace_bytes(st->model, n, st->params->lazy);
    if (need > st->params->max_trace_bytes)
        return av_errf(err, "a trace of %d tokens needs about %zu MiB, more than this server keeps (%zu MiB)",
                       n, need >> 20, st->params->max_trace_bytes >> 20),
               413;
    srv_run *r = calloc(1, sizeof *r);
    int32_t *copy = malloc(sizeof *copy * (size_t)(n > 0 ? n : 1));
    if (!r || !copy) {
        free(r);
        free(copy);
        return av_errf(err, "out of memory"), 503;
    }
    memcpy(copy, ids, sizeof *copy * (size_t)n);
    r->ids = copy;
    r->n_ids = n;
    r->add_bos = add_bos;
    r->state = SRV_RUN_QUEUED;
    r->t_submit = r->t_used = av_seconds();
    if (random_id(r->id, err)) {
        run_free(r);
        return 503;
    }
    pthread_mutex_lock(&st->mu);
    if (st->stop || st->q_len >= st->params->max_queue) {
        pthread_mutex_unlock(&st->mu);
        run_free(r);
        return av_errf(err, "too many runs waiting (%d): try again when one has finished",
                       st->params->max_queue),
               503;
    }
    r->seq = st->next_seq++;
    if (store_append(st, r, err)) {
        pthread_mutex_unlock(&st->mu);
        run_free(r);
        return 503;
    }
    if (st->q_tail)
        st->q_tail->next = r;
    else
        st->q_head = r;
    st->q_tail = r;
    st->q_len++;
    snprintf(id, SRV_ID_LEN, "%s", r->id);
    pthread_cond_signal(&st->cv);
    pthread_mutex_unlock(&st->mu);
    return 0;
}

static srv_run *find_locked(srv_store *st, const char *id) {
    for (int i = 0; i < st->n_runs; i++)
        if (strcmp(st->runs[i]->id, id) == 0) return st->runs[i];
    return NULL;
}

srv_run *srv_store_acquire(srv_store *st, const char *id) {
    pthread_mutex_lock(&st->mu);
    srv_run *r = find_locked(st, id);
    if (r) {
        r->refs++;
        r->t_used = av_seconds();
    }
    pthread_mutex_unlock(&st->mu);
    return r;
}

void srv_store_release(srv_store *st, srv_run *r) {
    if (!r) return;
    pthread_mutex_lock(&st->mu);
    if (--r->refs == 0 && r->dropped) run_free(r);
    pthread_mutex_unlock(&st->mu);
}

void srv_store_charge(srv_store *st, srv_run *r, size_t extra) {
    pthread_mutex_lock(&st->mu);
    if (!r->charged && !r->dropped) {
        r->charged = 1;
        r->bytes += extra;
        st->bytes += extra;
        evict(st, 0, r);
    }
    pthread_mutex_unlock(&st->mu);
}

int srv_store_reserve(srv_store *st, size_t bytes, const srv_run *keep) {
    pthread_mutex_lock(&st->mu);
    evict(st, bytes, keep);
    int fits = st->bytes + st->reserved + bytes <= st->params->max_trace_bytes;
    if (fits) st->reserved += bytes;
    pthread_mutex_unlock(&st->mu);
    return fits ? 0 : -1;
}

void srv_store_unreserve(srv_store *st, size_t bytes) {
    pthread_mutex_lock(&st->mu);
    st->reserved -= bytes;
    pthread_mutex_unlock(&st->mu);
}

void srv_store_memory(srv_store *st, size_t *used, size_t *reserved) {
    pthread_mutex_lock(&st->mu);
    *used = st->bytes;
    *reserved = st->reserved;
    pthread_mutex_unlock(&st->mu);
}

srv_page *srv_store_get_page(srv_store *st, srv_run *r) {
    pthread_mutex_lock(&st->mu);
    srv_page *p = r->page;
    if (p) atomic_fetch_add(&p->refs, 1);
    pthread_mutex_unlock(&st->mu);
    return p;
}

void srv_store_set_page(srv_store *st, srv_run *r, srv_page *page) {
    pthread_mutex_lock(&st->mu);
    if (r->page || r->dropped) { /* already cached, or evicted meanwhile: nothing to keep */
        pthread_mutex_unlock(&st->mu);
        srv_page_release(page);
        return;
    }
    r->page = page;
    r->bytes += page->len;
    st->bytes += page->len;
    evict(st, 0, r);
    pthread_mutex_unlock(&st->mu);
}

json_t *srv_store_status(srv_store *st, const char *id) {
    pthread_mutex_lock(&st->mu);
    srv_run *r = find_locked(st, id);
    json_t *j = NULL;
    if (r) {
        double now = av_seconds();
        int n_tokens = r->trace ? av_trace_n_tokens(r->trace) : r->n_ids;
        j = json_pack("{s:s, s:s, s:i}", "id", r->id, "status", state_name(r->state), "n_tokens", n_tokens);
        if (r->state == SRV_RUN_QUEUED) {
            int pos = 0;
            for (srv_run *q = st->q_head; q && q != r; q = q->next)
                pos++;
            json_object_set_new(j, "queue_position", json_integer(pos));
            json_object_set_new(j, "progress", json_real(0));
            json_object_set_new(j, "elapsed_s", json_real(now - r->t_submit));
        } else if (r->state == SRV_RUN_RUNNING) {
            double el = now - r->t_start;
            json_object_set_new(j, "elapsed_s", json_real(el));
            if (st->sec_per_token > 0) {
                double est = st->sec_per_token * r->n_ids, p = est > 0 ? el / est : 0;
                json_object_set_new(j, "progress", json_real(p > 0.95 ? 0.95 : p));
            } else {
                json_object_set_new(j, "progress", json_null());
            }
        } else {
            json_object_set_new(j, "progress", json_real(1));
            json_object_set_new(j, "elapsed_s", json_real(r->t_end - r->t_start));
        }
        if (r->state == SRV_RUN_FAILED) json_object_set_new(j, "error", json_string(r->error));
        if (r->state == SRV_RUN_DONE) {
            char url[64];
            snprintf(url, sizeof url, "/api/traces/%s", r->id);
            json_object_set_new(j, "trace", json_string(url));
        }
    }
    pthread_mutex_unlock(&st->mu);
    return j;
}

json_t *srv_store_list(srv_store *st) {
    json_t *a = json_array();
    pthread_mutex_lock(&st->mu);
    for (int i = 0; a && i < st->n_runs; i++) {
        srv_run *r = st->runs[i];
        int n_tokens = r->trace ? av_trace_n_tokens(r->trace) : r->n_ids;
        json_array_append_new(a, json_pack("{s:s, s:s, s:i, s:b}", "id", r->id, "status",
                                           state_name(r->state), "n_tokens", n_tokens, "pinned", r->pinned));
    }
    pthread_mutex_unlock(&st->mu);
    return a;
}
