/* attnviz serve: a local web app and JSON/binary HTTP API over libmicrohttpd (docs/API.md).
 *
 *   http.c    the libmicrohttpd daemon: connections, bodies, limits, Host check, replies
 *   guard.c   request deadlines against slow clients (slowloris), cross-site request rejection
 *   api.c     the /api/ routes, as a table (run, run status, trace metadata, rows, tiles, trace file)
 *   runs.c    the run store: a queue served by one worker thread, finished traces kept within a memory budget
 *   viewer.c  the viewer page of a trace: built one at a time inside the memory budget, cached per trace
 *   cache.c   an LRU cache of computed tiles bounded in bytes
 *   static.c  the page and viewer files embedded at build time (tools/embed.c), nothing read from disk
 *
 * Everything lives in one av_server context; there is no global mutable state. */
#ifndef AV_SERVER_H
#define AV_SERVER_H

#include "attnviz.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

typedef struct av_server_params {
    const char *host;       /* address to bind (default "127.0.0.1") */
    int port;               /* 0: any free port (read it back with av_server_port) */
    size_t max_body;        /* largest request body accepted, bytes (default 1 MiB) */
    int max_tokens;         /* tokens per run (default 8192; never above the model's context) */
    int max_queue;          /* runs waiting at once (default 8); more are refused with 503 */
    int max_runs;           /* finished runs kept (default 16); the least recently used go first */
    size_t max_trace_bytes; /* memory for kept traces (default 2 GiB) */
    size_t cache_bytes;     /* tile cache (default 128 MiB) */
    int timeout_s;          /* idle connection timeout, seconds (default 30) */
    int max_connections;    /* simultaneous connections (default 64) */
    int max_per_ip;         /* simultaneous connections from one client address (default 16) */
    int request_timeout_s;  /* a request's headers and body must arrive within this, however slowly they
                               trickle, counted from the accept or the previous request's end (default 10) */
    int n_threads;          /* threads of a run (0: all cores); runs themselves go one at a time */
    int lazy;               /* run lazily: store q/k and recompute on demand (default 1), any model family */
    size_t viewer_bytes;    /* largest trace (all full matrices, float32) the viewer page is built for
                               (default 256 MiB); larger traces are explored with the zoomable map */
} av_server_params;

typedef struct av_server av_server;

av_server_params av_server_default_params(void);
/* Starts serving. model (may be NULL) enables POST /api/run; trace (may be NULL) is served as the first
 * (pinned) run, under a random id like every run (GET /api/traces lists it).
 * The server borrows model and takes ownership of trace (freed by av_server_stop, also on failure). */
int av_server_start(av_model *model, av_trace *trace, const av_server_params *params, av_server **out,
                    av_err *err);
int av_server_port(const av_server *s);
/* 1 when runs of this server build lazy traces (params.lazy and the model supports them). */
int av_server_lazy(const av_server *s);
/* Stops accepting, finishes the requests in flight, stops the run worker and frees everything. */
void av_server_stop(av_server *s);
/* 1 when host names or is a loopback address (127.0.0.0/8, ::1, localhost). */
int av_server_host_is_loopback(const char *host);

/* ---- internal: shared by the files of src/server/ ---- */

/* Tile cache (cache.c). Keys are whole requests; values are (rows, cols) floats. */
typedef struct srv_tile_key {
    unsigned run_seq; /* unique per run, never reused */
    int kind;         /* av_attn_kind */
    int layer, head, q0, q1, k0, k1, rows, cols, pool;
} srv_tile_key;

typedef struct srv_cache_entry srv_cache_entry;
typedef struct srv_cache {
    pthread_mutex_t mu;
    srv_cache_entry **buckets; /* (n_buckets) chains */
    size_t n_buckets;
    srv_cache_entry *lru_head, *lru_tail; /* head = most recently used */
    size_t bytes, max_bytes;
    unsigned long hits, misses;
} srv_cache;

int srv_cache_init(srv_cache *c, size_t max_bytes, av_err *err);
void srv_cache_free(srv_cache *c);
/* Copies a cached tile into out (n floats) and returns 1, or returns 0. */
int srv_cache_get(srv_cache *c, const srv_tile_key *key, float *out, size_t n);
void srv_cache_put(srv_cache *c, const srv_tile_key *key, const float *data, size_t n);
void srv_cache_drop_run(srv_cache *c, unsigned run_seq);

/* A built viewer page shared by the run that caches it and the replies that send it (reference counted). */
typedef struct srv_page {
    atomic_int refs;
    size_t len;
    char *data; /* (len) */
} srv_page;

/* Runs (runs.c). A run is queued, running, done (holds a trace) or failed. Ids are 128 random bits in hex,
 * so no other client (or web page) can guess one. */
enum { SRV_ID_LEN = 33 };
typedef enum srv_run_state {
    SRV_RUN_QUEUED = 0,
    SRV_RUN_RUNNING,
    SRV_RUN_DONE,
    SRV_RUN_FAILED
} srv_run_state;

typedef struct srv_run {
    char id[SRV_ID_LEN];
    unsigned seq;
    srv_run_state state;
    int32_t *ids; /* (n_ids) input while queued */
    int n_ids;
    int add_bos;
    av_trace *trace; /* when done */
    char error[512]; /* when failed */
    double t_submit, t_start, t_end, t_used;
    size_t bytes;         /* estimated memory of the trace */
    int refs;             /* readers holding it (guarded by the store's lock) */
    int dropped;          /* evicted from the store: freed when refs reaches 0 */
    int pinned;           /* the trace given at start: never evicted */
    int charged;          /* srv_store_charge done */
    srv_page *page;       /* the viewer page, built once (viewer.c), or NULL */
    struct srv_run *next; /* queue link */
} srv_run;

typedef struct srv_store {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    srv_run **runs; /* (n_runs) known runs, oldest first */
    int n_runs, cap_runs;
    srv_run *q_head, *q_tail;
    int q_len;
    unsigned next_seq;
    size_t bytes;         /* charged to kept runs */
    size_t reserved;      /* held by work in progress (a viewer page being built) */
    double sec_per_token; /* from the last run, for progress estimates (0: unknown) */
    int stop, worker_started;
    pthread_t worker;
    av_model *model;
    srv_cache *cache;
    const av_server_params *params;
} srv_store;

int srv_store_init(srv_store *st, av_model *model, srv_cache *cache, const av_server_params *p, av_err *err);
void srv_store_free(srv_store *st);
/* Adds a finished trace (pinned) as run "t<seq>"; takes ownership of trace. */
int srv_store_add_trace(srv_store *st, av_trace *trace, av_err *err);
/* Queues a run over ids (copied). Returns 0 and the new id, or an HTTP status (503 queue full, 413 too large)
 * with a message in err. */
int srv_store_submit(srv_store *st, const int32_t *ids, int n, int add_bos, char id[SRV_ID_LEN], av_err *err);
/* Looks a run up and holds it (refs++); NULL when unknown. Release with srv_store_release. */
srv_run *srv_store_acquire(srv_store *st, const char *id);
void srv_store_release(srv_store *st, srv_run *r);
/* Adds extra bytes to a done run's memory (once: a lazy trace expanded for the viewer), evicting others. */
void srv_store_charge(srv_store *st, srv_run *r, size_t extra);
/* Reserves bytes of the memory budget for work in progress, evicting least recently used runs other than
 * keep; 0, or -1 when they cannot fit even then. Give them back with srv_store_unreserve. */
int srv_store_reserve(srv_store *st, size_t bytes, const srv_run *keep);
void srv_store_unreserve(srv_store *st, size_t bytes);
/* Bytes charged to kept runs and reserved by work in progress (GET /api/info "memory"). */
void srv_store_memory(srv_store *st, size_t *used, size_t *reserved);
/* The run's cached viewer page with a reference taken, or NULL; srv_store_set_page caches one (charged to
 * the run's memory; the store takes the caller's reference). srv_page_release drops a reference. */
srv_page *srv_store_get_page(srv_store *st, srv_run *r);
void srv_store_set_page(srv_store *st, srv_run *r, srv_page *page);
void srv_page_release(srv_page *page);
/* Status of a run as JSON (NULL when unknown). */
json_t *srv_store_status(srv_store *st, const char *id);
/* Lists kept runs (id, state, n_tokens). */
json_t *srv_store_list(srv_store *st);
/* Bytes a trace of n tokens takes on this model (estimate used for the memory budget). */
size_t srv_trace_bytes(const av_model *m, int n_tokens, int lazy);

/* A reply built by a route and sent by http.c. */
typedef struct srv_reply {
    int status;
    void *body; /* malloc'd, freed after sending (may be NULL when len is 0) */
    size_t len;
    const void *static_body; /* or a constant body (embedded asset) */
    const char *ctype;
    const char *allow; /* Allow header for 405 */
    int fd;            /* or the body comes from this file descriptor (>= 0), closed after sending */
    srv_page *page;    /* or a cached viewer page (a reference, released once sent) */
    int cacheable;     /* embedded assets: may be cached by the browser */
    char hdr_name[2][32], hdr_value[2][64]; /* up to two extra headers */
} srv_reply;

typedef struct srv_request {
    const char *method; /* "GET", "POST", ... */
    const char *path;   /* decoded path, without the query string */
    const char *body;   /* NUL-terminated */
    size_t body_len;
    const char *content_type;
    void *conn; /* struct MHD_Connection *, for srv_arg */
} srv_request;

/* Connection deadlines (guard.c): see the head comment there. */
typedef struct srv_conn srv_conn;
typedef struct srv_guard {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t reaper;
    srv_conn *head; /* open connections */
    double deadline_s;
    unsigned long n_cut; /* connections shut down at their deadline */
    int stop;
} srv_guard;

struct MHD_Connection;
int srv_guard_init(srv_guard *g, double deadline_s, av_err *err);
void srv_guard_free(srv_guard *g);
/* libmicrohttpd's MHD_OPTION_NOTIFY_CONNECTION callback (code: enum MHD_ConnectionNotificationCode). */
void srv_guard_notify(void *cls, struct MHD_Connection *conn, void **socket_context, int code);
/* The whole request has arrived (no deadline while it is handled) / its reply is done (the next starts). */
void srv_guard_received(srv_guard *g, struct MHD_Connection *conn);
void srv_guard_completed(srv_guard *g, struct MHD_Connection *conn);
unsigned long srv_guard_cut_count(srv_guard *g);
/* Why a request to the /api/ routes is refused as cross-site, or NULL: host, origin and fetch_site are the
 * Host, Origin and Sec-Fetch-Site headers (each may be NULL). */
const char *srv_cross_site_reason(const char *host, const char *origin, const char *fetch_site);

struct av_server {
    av_server_params params;
    char host[256];
    int port;
    void *daemon; /* struct MHD_Daemon * */
    srv_cache cache;
    srv_store store;
    srv_guard guard;
    int cache_ok, store_ok, guard_ok;
    int loopback;
    pthread_mutex_t viewer_mu; /* one viewer page is built at a time (viewer.c) */
    pthread_cond_t viewer_cv;
    int viewer_building;
};

/* Query-string argument (NULL when absent). */
const char *srv_arg(const srv_request *req, const char *name);
/* Reply helpers: JSON (takes the reference), error {"error": msg}, raw bytes (takes ownership). */
void srv_reply_json(srv_reply *r, int status, json_t *j);
void srv_reply_error(srv_reply *r, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void srv_reply_bytes(srv_reply *r, int status, void *data, size_t len, const char *ctype);
void srv_reply_header(srv_reply *r, const char *name, const char *value);

/* Routes: /api/... (api.c) and everything else (static.c). */
void srv_api_handle(av_server *s, const srv_request *req, srv_reply *r);
void srv_static_handle(av_server *s, const srv_request *req, srv_reply *r);
/* GET /api/traces/{id}/viewer: the standalone viewer page of a trace; GET /api/colormaps (viewer.c). */
void srv_viewer_data(av_server *s, srv_run *run, const srv_request *req, srv_reply *r);
int srv_viewer_init(av_server *s);
void srv_viewer_free(av_server *s);
void srv_colormaps(srv_reply *r);
/* Bytes of every full attention matrix of a trace as float32 (what the viewer's views need). */
size_t srv_trace_full_bytes(const av_trace *t);

#endif
