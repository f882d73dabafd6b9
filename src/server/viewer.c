/* GET /api/traces/{id}/viewer: the standalone viewer of the trace (web/index.html and the scripts of web/,
 * built by av_html_build in src/render/html.c), so the live page shows every view of the viewer on a run's
 * result (it opens in a frame of the live page). GET /api/colormaps: the colormap tables.
 *
 * A page holds every full attention matrix of the trace (tens of MB for a long trace), so building one is
 * the most memory a request can ask for. Pages are therefore
 *   - built one at a time: other requests wait for the build (up to VIEWER_WAIT_S), then get 503 with
 *     Retry-After;
 *   - built inside the store's memory budget: the build's peak is reserved first (evicting least recently
 *     used runs), and a lazy trace's expansion is charged to its run;
 *   - cached per trace: the page is built once, charged to its run's memory, shared (reference counted) by
 *     every reply that sends it, and freed with the run. The first view comes from the page's URL (?view=),
 *     read by web/viewer.js, so one page serves every view. */
#include "core/core.h"
#include "render/plot.h"
#include "render/render.h"
#include "server.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { VIEWER_WAIT_S = 20, VIEWER_RETRY_S = 5 };

/* Bytes of every layer's full (n_heads, n_query, n_key) matrices as float32. */
size_t srv_trace_full_bytes(const av_trace *t) {
    size_t total = 0;
    for (int i = 0; i < AV_ATTN_KIND_COUNT; i++) {
        av_attn_kind k = (av_attn_kind)i;
        size_t per = (size_t)av_trace_n_heads(t, k) * (size_t)av_trace_n_query(t, k) *
                     (size_t)av_trace_n_key(t, k) * sizeof(float);
        total += per * (size_t)av_trace_n_layers(t, k);
    }
    return total;
}

/* Peak memory of av_html_build beyond the trace itself, for full matrices of `full` bytes (float32): the
 * F16 blob (full / 2), its base64 (2/3 full), the page around it (2/3 full) and the analysis views, with
 * room to spare. */
static size_t build_peak_bytes(size_t full) { return 2 * full + ((size_t)16 << 20); }

int srv_viewer_init(av_server *s) {
    pthread_mutex_init(&s->viewer_mu, NULL);
    pthread_cond_init(&s->viewer_cv, NULL);
    return 0;
}

void srv_viewer_free(av_server *s) {
    pthread_cond_destroy(&s->viewer_cv);
    pthread_mutex_destroy(&s->viewer_mu);
}

static void reply_busy(srv_reply *r, int status, const char *what) {
    char retry[16];
    snprintf(retry, sizeof retry, "%d", VIEWER_RETRY_S);
    srv_reply_error(r, status, "%s: try again in a few seconds", what);
    srv_reply_header(r, "Retry-After", retry);
}

/* Takes the build slot, waiting up to VIEWER_WAIT_S; 0, or -1 with a 503 reply. */
static int gate_enter(av_server *s, srv_reply *r) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += VIEWER_WAIT_S;
    pthread_mutex_lock(&s->viewer_mu);
    int rc = 0;
    while (s->viewer_building && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&s->viewer_cv, &s->viewer_mu, &until);
    int got = !s->viewer_building;
    if (got) s->viewer_building = 1;
    pthread_mutex_unlock(&s->viewer_mu);
    if (!got) reply_busy(r, 503, "another viewer page is being built");
    return got ? 0 : -1;
}

static void gate_leave(av_server *s) {
    pthread_mutex_lock(&s->viewer_mu);
    s->viewer_building = 0;
    pthread_cond_signal(&s->viewer_cv);
    pthread_mutex_unlock(&s->viewer_mu);
}

/* Builds the page of run inside the memory budget (the build slot is held); NULL with a reply on failure. */
static srv_page *build_page(av_server *s, srv_run *run, srv_reply *r) {
    const av_trace *t = run->trace;
    size_t full = srv_trace_full_bytes(t);
    size_t expand = av_trace_is_lazy(t) && !run->charged ? full : 0; /* the expansion stays with the trace */
    size_t peak = build_peak_bytes(full) + expand;
    if (peak > s->params.max_trace_bytes) {
        srv_reply_error(r, 413,
                        "building this trace's viewer page needs about %zu MiB, more than the server's "
                        "memory budget (%zu MiB, --memory-mb)",
                        peak >> 20, s->params.max_trace_bytes >> 20);
        return NULL;
    }
    if (srv_store_reserve(&s->store, peak, run)) {
        reply_busy(r, 503, "the memory budget is held by runs in use");
        return NULL;
    }
    av_html_params hp = av_html_default_params();
    srv_page *pg = calloc(1, sizeof *pg);
    av_err err = {{0}};
    int rc = pg ? av_html_build(t, &hp, &pg->data, &pg->len, &err) : av_errf(&err, "out of memory");
    srv_store_unreserve(&s->store, peak);
    if (expand) srv_store_charge(&s->store, run, expand);
    if (rc) {
        free(pg);
        srv_reply_error(r, 500, "%s", err.msg);
        return NULL;
    }
    atomic_init(&pg->refs, 2); /* the cache's and the caller's */
    srv_store_set_page(&s->store, run, pg);
    return pg;
}

void srv_viewer_data(av_server *s, srv_run *run, const srv_request *req, srv_reply *r) {
    size_t need = srv_trace_full_bytes(run->trace);
    if (need > s->params.viewer_bytes) {
        srv_reply_error(
            r, 413,
            "the viewer's views need every full attention matrix (%zu MiB for this trace), more "
            "than this server builds (%zu MiB, --viewer-mb): use the zoomable map, /row and /tile",
            need >> 20, s->params.viewer_bytes >> 20);
        return;
    }
    const char *view = srv_arg(req, "view"); /* applied by the page itself (web/viewer.js) */
    if (view && !av_html_view_valid(view)) {
        srv_reply_error(r, 400, "parameter 'view' must be one of %s, got '%.20s'", AV_HTML_VIEWS, view);
        return;
    }
    srv_page *pg = srv_store_get_page(&s->store, run);
    if (!pg) {
        if (gate_enter(s, r)) return;
        pg = srv_store_get_page(&s->store, run); /* built while this request waited */
        if (!pg) pg = build_page(s, run, r);
        gate_leave(s);
        if (!pg) return;
    }
    r->status = 200;
    r->page = pg;
    r->ctype = "text/html; charset=utf-8";
}

void srv_colormaps(srv_reply *r) {
    json_t *j = json_object();
    static const av_cmap maps[] = {AV_CMAP_VIRIDIS, AV_CMAP_MAGMA};
    for (int m = 0; m < 2; m++) {
        json_t *a = json_array();
        for (int i = 0; i < 256; i++) {
            uint8_t rgb[3];
            av_cmap_rgb(maps[m], (i + 0.5f) / 256.f, rgb);
            for (int c = 0; c < 3; c++)
                json_array_append_new(a, json_integer(rgb[c]));
        }
        json_object_set_new(j, av_cmap_name(maps[m]), a);
    }
    srv_reply_json(r, 200, j);
}
