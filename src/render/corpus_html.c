/* index.html of a corpus report: web/corpus.html with web/corpus.css and web/corpus.js inlined (embedded in
 * the binary at build time, av_asset_find) and the report data as JSON, so the page opens offline and
 * requests nothing (a Content-Security-Policy in the template forbids it). */
#include "render/corpus_render.h"
#include "render/html_internal.h"

#include <stdlib.h>
#include <string.h>

/* The data as JSON that cannot end its <script> element: every '<' (only ever inside strings) as \u003c. */
static void put_data(av_buf *b, const json_t *data) {
    json_t *page = json_copy((json_t *)data); /* shallow: the colormaps are added to the page's copy only */
    json_t *maps = json_pack("{so so}", "viridis", av_html_cmap_table(AV_CMAP_VIRIDIS), "magma",
                             av_html_cmap_table(AV_CMAP_MAGMA));
    if (!page || !maps) {
        b->oom = 1;
        json_decref(page);
        json_decref(maps);
        return;
    }
    json_object_set_new(page, "colormaps", maps);
    char *s = json_dumps(page, JSON_COMPACT | JSON_REAL_PRECISION(9));
    json_decref(page);
    if (!s) {
        b->oom = 1;
        return;
    }
    av_buf_printf(b, "<script type=\"application/json\" id=\"corpus-data\">");
    for (const char *p = s; *p; p++) {
        if (*p == '<')
            av_buf_put(b, "\\u003c", 6);
        else
            av_buf_put(b, p, 1);
    }
    av_buf_printf(b, "</script>");
    free(s);
}

int av_corpus_report_html(const json_t *data, const char *path, av_err *err) {
    const av_asset *ta = av_asset_find("corpus.html"), *ca = av_asset_find("corpus.css"),
                   *ja = av_asset_find("corpus.js");
    if (!ta || !ca || !ja) return av_errf(err, "internal: the corpus page assets are not embedded");
    const char *tpl = (const char *)ta->data, *css = (const char *)ca->data, *js = (const char *)ja->data;
    av_buf b = {0};
    for (const char *p = tpl; *p;) {
        const char *mark = strstr(p, "<!--AV:");
        if (!mark) {
            av_buf_put(&b, p, strlen(p));
            break;
        }
        av_buf_put(&b, p, (size_t)(mark - p));
        const char *end = strstr(mark, "-->");
        if (!end) return free(b.s), av_errf(err, "internal: unterminated marker in corpus.html");
        size_t n = (size_t)(end - mark);
        if (strncmp(mark, "<!--AV:STYLE", n) == 0)
            av_buf_printf(&b, "<style>\n%s</style>", css);
        else if (strncmp(mark, "<!--AV:SCRIPT", n) == 0)
            av_buf_printf(&b, "<script>\n%s</script>", js);
        else if (strncmp(mark, "<!--AV:DATA", n) == 0)
            put_data(&b, data);
        p = end + 3;
    }
    int rc =
        b.oom ? av_errf(err, "out of memory building %s", path) : av_file_write_atomic(path, b.s, b.n, err);
    free(b.s);
    return rc;
}
