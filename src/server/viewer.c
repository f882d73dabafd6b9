/* GET /api/traces/{id}/viewer: the standalone viewer of the trace (web/index.html and the scripts of web/,
 * built by av_html_build in src/render/html.c), so the live page shows every view of the viewer on a run's
 * result (it opens in a frame of the live page). The viewer's views need whole matrices: a lazy trace is
 * expanded layer by layer, which is allowed only while all layers fit in params.viewer_bytes, and the
 * expansion is charged to the run's memory so the store's budget stays true. GET /api/colormaps: the colormap
 * tables. */
#include "render/plot.h"
#include "render/render.h"
#include "server.h"

#include <stdlib.h>
#include <string.h>

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

void srv_viewer_data(av_server *s, srv_run *run, const srv_request *req, srv_reply *r) {
    const av_trace *t = run->trace;
    size_t need = srv_trace_full_bytes(t);
    if (need > s->params.viewer_bytes) {
        srv_reply_error(
            r, 413,
            "the viewer's views need every full attention matrix (%zu MiB for this trace), more "
            "than this server builds (%zu MiB, --viewer-mb): use the zoomable map, /row and /tile",
            need >> 20, s->params.viewer_bytes >> 20);
        return;
    }
    av_html_params hp = av_html_default_params();
    const char *view = srv_arg(req, "view");
    if (view && !av_html_view_valid(view)) {
        srv_reply_error(r, 400, "parameter 'view' must be one of %s, got '%.20s'", AV_HTML_VIEWS, view);
        return;
    }
    if (av_trace_is_lazy(t)) srv_store_charge(&s->store, run, need);
    hp.view = view;
    char *page;
    size_t n;
    av_err err = {{0}};
    if (av_html_build(t, &hp, &page, &n, &err)) {
        srv_reply_error(r, 500, "%s", err.msg);
        return;
    }
    srv_reply_bytes(r, 200, page, n, "text/html; charset=utf-8");
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
