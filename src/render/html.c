/* The standalone HTML viewer: web/index.html with web/viewer.css and the web/ scripts inlined (embedded into
 * the binary at build time as av_web_assets) plus the trace, so the page is one file that opens offline and
 * makes no network request (a Content-Security-Policy in the template forbids any).
 *
 * Data: <script type="application/json" id="av-meta"> (labels, shapes, colormap tables, metadata) and
 * <script type="text/plain" id="av-data"> holding base64 of one binary blob with every attention set:
 *   "f16": IEEE half floats (n_heads, n_query, n_key), little-endian, 2-byte aligned;
 *   "u8cbrt": per set a float32 scale per row (n_heads, n_query) = the row's max, 4-byte aligned, then
 *          uint8 codes (n_heads, n_query, n_key), cube-root companded: weight = (code / 255)^3 * scale.
 * The analysis views' data (head statistics and roles, rollout matrices in the same encoding, value norms as
 * float32) follow in the blob, described by meta "analysis" (html_analysis.c). See docs/VIEWER.md. */
#include "render/html_internal.h"

#include "render/daam.h"

#include "core/core.h"
#include "trace/logprobs.h"
#include "trace/trace.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define AV_HTML_BUDGET (4u << 20)        /* auto precision: F16 while the page stays under 4 MiB */
#define AV_HTML_BUDGET_IMAGE (16u << 20) /* image traces: F16 up to 16 MiB (small weights over patches) */
#define AV_HTML_MAX_MB 32.0              /* default page size above which long traces are pooled */
#define AV_HTML_STEP_ALTS 20             /* alternatives per token the step view lists */

av_html_params av_html_default_params(void) {
    av_html_params p;
    memset(&p, 0, sizeof p);
    p.precision = AV_HTML_AUTO;
    p.analysis = 1;
    p.kind = -1;
    p.head = AV_HEADS_MEAN;
    p.max_mb = AV_HTML_MAX_MB;
    return p;
}

int av_html_view_valid(const char *name) {
    static const char *const views[] = {"heatmap", "model", "head",  "image",       "summary",
                                        "rollout", "norm",  "steps", "attribution", "lens",
                                        "neuron",  "rows",  "daam",  "qkmap"};
    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++)
        if (strcmp(name, views[i]) == 0) return 1;
    return 0;
}

/* The PNG at path as base64, for metadata image_png_base64. */
static char *png_base64_file(const char *path, av_err *err) {
    char *buf;
    size_t n;
    if (av_file_read_all(path, 16u << 20, &buf, &n, err)) return NULL;
    char *b64 = NULL;
    if (n < 8 || memcmp(buf, "\x89PNG\r\n\x1a\n", 8) != 0)
        av_errf(err, "%s: not a PNG image (the viewer embeds PNG only)", path);
    else if (!(b64 = av_base64_encode(buf, n)))
        av_errf(err, "out of memory");
    free(buf);
    return b64;
}

static void hb_str(av_buf *b, const char *s) { av_buf_put(b, s, strlen(s)); }

static void hb_html_escaped(av_buf *b, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&': hb_str(b, "&amp;"); break;
        case '<': hb_str(b, "&lt;"); break;
        case '>': hb_str(b, "&gt;"); break;
        case '"': hb_str(b, "&quot;"); break;
        default: av_buf_put(b, s, 1);
        }
    }
}

/* How the viewer names each kind in its menus (meta "kinds": the kinds this trace holds, in this order). */
static const char *const k_kind_labels[AV_ATTN_KIND_COUNT] = {"self", "encoder", "decoder", "cross"};
/* the standalone viewer's scripts, in load order (other embedded assets belong to `attnviz serve`) */
static const char *k_scripts[] = {
    "data.js",     "heatmap.js",    "analysis.js", "modelview.js", "headview.js",    "imageview.js",
    "summary.js",  "rollout.js",    "normview.js", "steps.js",     "attribution.js", "lens.js",
    "daamview.js", "neuronview.js", "rowview.js",  "qkmap.js",     "viewer.js"};
enum { N_SCRIPTS = sizeof k_scripts / sizeof k_scripts[0] };

static int json_labels(json_t *obj, const char *key, char **labels, int n) {
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++) {
        json_t *s = json_string(labels[i]);
        json_array_append_new(a, s ? s : json_string("?"));
    }
    return a ? json_object_set_new(obj, key, a) : -1;
}

int av_html_encode(av_buf *blob, const float *data, size_t rows, int n_key, int u8, json_t *desc,
                   av_err *err) {
    static const uint8_t zeros[4] = {0};
    size_t n = rows * (size_t)n_key;
    if (u8) {
        av_buf_put(blob, zeros, (4 - blob->n % 4) % 4);
        json_object_set_new(desc, "soff", json_integer((json_int_t)blob->n));
        float *scales = malloc(sizeof(float) * (rows ? rows : 1));
        uint8_t *codes = malloc(n ? n : 1);
        if (!scales || !codes) {
            free(scales);
            free(codes);
            return av_errf(err, "out of memory");
        }
        for (size_t r = 0; r < rows; r++) {
            const float *row = data + r * (size_t)n_key;
            float mx = 0;
            for (int k = 0; k < n_key; k++)
                if (row[k] > mx) mx = row[k];
            scales[r] = mx;
            for (int k = 0; k < n_key; k++) { /* cube-root companding: small weights keep their contrast */
                float q = mx > 0 && row[k] > 0 ? cbrtf(row[k] / mx) * 255.f : 0.f;
                codes[r * (size_t)n_key + (size_t)k] = (uint8_t)lrintf(q > 255 ? 255 : q);
            }
        }
        av_buf_put(blob, scales, sizeof(float) * rows); /* little-endian hosts only (x86-64, arm64) */
        json_object_set_new(desc, "off", json_integer((json_int_t)blob->n));
        av_buf_put(blob, codes, n);
        free(scales);
        free(codes);
    } else {
        av_buf_put(blob, zeros, blob->n % 2);
        json_object_set_new(desc, "off", json_integer((json_int_t)blob->n));
        uint16_t buf[4096];
        for (size_t i = 0; i < n; i += 4096) {
            size_t m = n - i < 4096 ? n - i : 4096;
            av_f32_to_f16_n(data + i, buf, m);
            av_buf_put(blob, buf, m * 2);
        }
    }
    return blob->oom ? av_errf(err, "out of memory") : 0;
}

/* Encodes one attention set into blob at *off; records it in sets. */
static int encode_set(const av_trace *t, av_attn_kind kind, int layer, int u8, av_buf *blob, json_t *sets,
                      json_t *labels, av_err *err) {
    av_attn_view v;
    if (av_trace_attn(t, kind, layer, &v, err)) return -1;
    size_t rows = (size_t)v.n_heads * (size_t)v.n_query;
    json_t *s = json_object();
    const char *name = av_attn_kind_name(kind);
    json_object_set_new(s, "kind", json_string(name));
    json_object_set_new(s, "layer", json_integer(layer));
    json_object_set_new(s, "heads", json_integer(v.n_heads));
    json_object_set_new(s, "nq", json_integer(v.n_query));
    json_object_set_new(s, "nk", json_integer(v.n_key));
    if (av_html_encode(blob, v.data, rows, v.n_key, u8, s, err)) {
        json_decref(s);
        return -1;
    }
    json_array_append_new(sets, s);
    if (!json_object_get(labels, name)) { /* axis labels of this kind, once */
        char **ql, **kl;
        if (av_plot_labels(t, kind, v.n_query, v.n_key, &ql, &kl, err)) return -1;
        json_t *o = json_object();
        json_labels(o, "q", ql, v.n_query);
        json_labels(o, "k", kl, v.n_key);
        json_object_set_new(labels, name, o);
        av_plot_labels_free(ql, v.n_query);
        av_plot_labels_free(kl, v.n_key);
    }
    return blob->oom ? av_errf(err, "out of memory") : 0;
}

json_t *av_html_cmap_table(av_cmap cm) {
    json_t *a = json_array();
    for (int i = 0; i < 256; i++) {
        uint8_t rgb[3];
        av_cmap_rgb(cm, (i + 0.5f) / 256.f, rgb);
        for (int k = 0; k < 3; k++)
            json_array_append_new(a, json_integer(rgb[k]));
    }
    return a;
}

/* Values the page embeds: every matrix, or every head pooled to cells a side. */
static size_t total_values(const av_trace *t, int cells) {
    size_t n = 0;
    for (int k = 0; k < AV_ATTN_KIND_COUNT; k++) {
        size_t nq = (size_t)av_trace_n_query(t, (av_attn_kind)k),
               nk = (size_t)av_trace_n_key(t, (av_attn_kind)k);
        if (cells) nq = nq < (size_t)cells ? nq : (size_t)cells, nk = nk < (size_t)cells ? nk : (size_t)cells;
        n += (size_t)av_trace_n_layers(t, (av_attn_kind)k) * (size_t)av_trace_n_heads(t, (av_attn_kind)k) *
             nq * nk;
    }
    return n;
}

/* The kind the viewer opens with: self, else cross, else the first present (as web/viewer.js chooses). */
static av_attn_kind default_kind(const av_trace *t) {
    if (av_trace_n_layers(t, AV_ATTN_SELF) > 0) return AV_ATTN_SELF;
    if (av_trace_n_layers(t, AV_ATTN_CROSS) > 0) return AV_ATTN_CROSS;
    for (int k = 0; k < AV_ATTN_KIND_COUNT; k++)
        if (av_trace_n_layers(t, (av_attn_kind)k) > 0) return (av_attn_kind)k;
    return AV_ATTN_SELF;
}

/* Checks the caller's first view against the trace: kind present, layer and heads in range. */
static int check_state(const av_trace *t, const av_html_params *p, av_err *err) {
    if (p->kind < -1 || p->kind >= AV_ATTN_KIND_COUNT)
        return av_errf(err, "initial view: unknown attention kind %d", p->kind);
    if (!av_trace_has_attention(t) && p->kind < 0 && p->layer == 0 && p->head == AV_HEADS_MEAN && !p->n_heads)
        return 0; /* a model API's response: the page opens on its steps */
    av_attn_kind k = p->kind >= 0 ? (av_attn_kind)p->kind : default_kind(t);
    const char *kind = av_attn_kind_name(k);
    int L = av_trace_n_layers(t, k), H = av_trace_n_heads(t, k);
    if (L == 0) return av_errf(err, "initial view: the trace has no '%s' attention", kind);
    if (p->layer < 0 || p->layer >= L)
        return av_errf(err, "initial view: layer %d is out of range: %s has layers 0..%d", p->layer, kind,
                       L - 1);
    if (p->head < AV_HEADS_MAX || p->head >= H)
        return av_errf(err, "initial view: head %d is out of range: %s has heads 0..%d", p->head, kind,
                       H - 1);
    if (p->n_heads < 0 || (p->n_heads > 0 && !p->heads))
        return av_errf(err, "initial view: %d checked heads without a list", p->n_heads);
    for (int i = 0; i < p->n_heads; i++)
        if (p->heads[i] < 0 || p->heads[i] >= H)
            return av_errf(err, "initial view: checked head %d is out of range: %s has heads 0..%d",
                           p->heads[i], kind, H - 1);
    if (p->theme && strcmp(p->theme, "light") != 0 && strcmp(p->theme, "dark") != 0)
        return av_errf(err, "initial view: theme must be light or dark, got '%s'", p->theme);
    return 0;
}

/* meta "state": what the page shows first when the caller chose it (the viewer's defaults otherwise). */
static int initial_state(const av_trace *t, const av_html_params *p, json_t *m, av_err *err) {
    if (check_state(t, p, err)) return -1;
    json_t *st = json_object();
    if (p->kind >= 0) json_object_set_new(st, "kind", json_string(av_attn_kind_name((av_attn_kind)p->kind)));
    if (p->layer) json_object_set_new(st, "layer", json_integer(p->layer));
    if (p->head != AV_HEADS_MEAN)
        json_object_set_new(st, "head", p->head >= 0 ? json_integer(p->head) : json_string("max"));
    if (p->theme) json_object_set_new(st, "theme", json_string(p->theme));
    if (p->exclude_first) json_object_set_new(st, "exclude", json_true());
    if (p->heads) {
        json_t *hs = json_array();
        for (int i = 0; i < p->n_heads; i++)
            json_array_append_new(hs, json_integer(p->heads[i]));
        json_object_set_new(st, "heads", hs);
    }
    if (json_object_size(st))
        json_object_set_new(m, "state", st);
    else
        json_decref(st);
    return 0;
}

/* Text-to-image traces: meta "daam" and, 4-byte aligned in the blob, daam.raw as it is (steps, layers, heads,
 * S, g*g) as float32 (the page sums any steps, layers and heads) and the image (3, size, size) as float32
 * (web/daamview.js). */
static int daam_encode(const av_trace *t, av_buf *blob, json_t *m, av_err *err) {
    static const uint8_t zeros[4] = {0};
    int dims[5], size;
    av_tensor raw, img;
    if (av_trace_tensor(t, "daam.raw", &raw) != 0) return 0;
    if (av_trace_daam_dims(t, dims, &size, err)) return -1;
    av_trace_tensor(t, "image", &img);
    av_buf_put(blob, zeros, (4 - blob->n % 4) % 4);
    json_t *d = json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:I, s:s}", "steps", dims[0], "layers", dims[1],
                          "heads", dims[2], "tokens", dims[3], "grid", dims[4], "size", size, "raw",
                          (json_int_t)blob->n, "caveat", av_daam_caveat);
    av_buf_put(blob, raw.data, raw.nbytes);
    json_object_set_new(d, "image", json_integer((json_int_t)blob->n));
    av_buf_put(blob, img.data, sizeof(float) * 3 * (size_t)size * (size_t)size);
    json_object_set_new(m, "daam", d);
    return blob->oom ? av_errf(err, "out of memory") : 0;
}

static int build_meta(const av_trace *t, const av_html_params *p, int u8, int cells, av_html_analysis *an,
                      av_buf *blob, json_t **out, av_err *err) {
    json_t *m = json_object(), *sets = json_array(), *labels = json_object(), *md = json_object(),
           *cm = json_object(), *kinds = json_array();
    json_object_set_new(m, "format", json_string("attnviz-viewer"));
    json_object_set_new(m, "version", json_integer(1));
    json_object_set_new(m, "encoding", json_string(u8 ? "u8cbrt" : "f16"));
    json_object_set_new(m, "kinds", kinds);
    json_object_set_new(m, "sets", sets);
    json_object_set_new(m, "labels", labels);
    json_object_set_new(m, "meta", md);
    json_object_set_new(m, "cmaps", cm);
    if (p->view) json_object_set_new(m, "view", json_string(p->view));
    if (initial_state(t, p, m, err)) {
        json_decref(m);
        return -1;
    }
    const char *model = av_trace_meta(t, "model");
    json_object_set_new(m, "title", json_string(p->title ? p->title : model ? model : "attention"));
    json_object_set_new(cm, "viridis", av_html_cmap_table(AV_CMAP_VIRIDIS));
    json_object_set_new(cm, "magma", av_html_cmap_table(AV_CMAP_MAGMA));
    json_object_set_new(cm, "diverging",
                        av_html_cmap_table(AV_CMAP_DIVERGING)); /* differences (attnviz diff) */
    const char *key;
    json_t *val;
    json_object_foreach(t->meta, key, val) {
        if (strcmp(key, "tokens") == 0 || strcmp(key, "token_ids") == 0 ||
            strcmp(key, "source_tokens") == 0 || strcmp(key, "target_tokens") == 0)
            continue;
        json_object_set(md, key, val); /* image_png_base64 included: the viewer decodes it from here */
    }
    if (p->image_path) {
        char *b64 = av_trace_meta(t, "patch_grid") ? png_base64_file(p->image_path, err) : NULL;
        if (!b64) {
            if (!av_trace_meta(t, "patch_grid"))
                av_errf(err, "--image applies to image traces: this trace has no patch_grid metadata");
            json_decref(m);
            return -1;
        }
        json_object_set_new(md, "image_png_base64", json_string(b64));
        free(b64);
    } else if (!json_object_get(md,
                                "image_png_base64")) { /* the input an image model saw, stored in the trace */
        char *b64 = av_html_image_png(t);
        if (b64) json_object_set_new(md, "image_png_base64", json_string(b64));
        free(b64);
    }
    for (int k = 0; k < AV_ATTN_KIND_COUNT; k++)
        if (av_trace_n_layers(t, (av_attn_kind)k))
            json_array_append_new(kinds, json_pack("{s:s, s:s}", "kind", av_attn_kind_name((av_attn_kind)k),
                                                   "label", k_kind_labels[k]));
    int rc = 0;
    if (cells) {
        json_t *pooled = json_object(), *full = p->rows_q1 > p->rows_q0 ? json_object() : NULL;
        json_object_set_new(m, "pooled", pooled);
        if (full) json_object_set_new(m, "tokens_full", full);
        rc = av_html_encode_pooled(t, cells, u8, blob, sets, labels, pooled, full, err);
    }
    for (int k = 0; !cells && !rc && k < AV_ATTN_KIND_COUNT; k++)
        for (int l = 0; !rc && l < av_trace_n_layers(t, (av_attn_kind)k); l++)
            rc = encode_set(t, (av_attn_kind)k, l, u8, blob, sets, labels, err);
    double budget = p->max_mb * (1 << 20);
    if (!rc) rc = av_html_encode_rows(t, p, u8, budget * 0.4, blob, m, err);
    if (!rc && !cells) rc = av_html_encode_qk(t, budget * 0.25, blob, m, err);
    if (!rc) rc = av_html_encode_qkmap(t, p, budget * 0.15, blob, m, err);
    if (!rc) rc = av_html_attr_encode(t, m, err);
    if (!rc && an) rc = av_html_analysis_encode(an, u8, blob, m, err);
    if (rc) {
        json_decref(m);
        return -1;
    }
    if (daam_encode(t, blob, m, err)) {
        json_decref(m);
        return -1;
    }
    json_t *steps = av_trace_has_logprobs(t) ? av_steps_json(t, AV_HTML_STEP_ALTS, err) : NULL;
    if (av_trace_has_logprobs(t) && !steps) {
        json_decref(m);
        return -1;
    }
    if (steps) json_object_set_new(m, "steps", steps);
    *out = m;
    return 0;
}

/* The embedded viewer files the page inlines. */
typedef struct page_assets {
    const av_asset *tpl, *css, *js[N_SCRIPTS];
    size_t bytes; /* all of them together */
} page_assets;

static int find_assets(page_assets *a, av_err *err) {
    a->tpl = av_asset_find("index.html");
    a->css = av_asset_find("viewer.css");
    a->bytes = a->tpl && a->css ? a->tpl->len + a->css->len : 0;
    for (int i = 0; i < N_SCRIPTS; i++) {
        a->js[i] = av_asset_find(k_scripts[i]);
        if (!a->js[i])
            a->tpl = NULL;
        else
            a->bytes += a->js[i]->len;
    }
    if (!a->tpl || !a->css)
        return av_errf(err, "the viewer (web/index.html, viewer.css, scripts) is not embedded in this build");
    return 0;
}

/* Auto precision: u8 when the page with F16 data (base64) would pass AV_HTML_BUDGET; an embedded image, the
 * analysis data and 64 KiB of labels and metadata count too. */
static int want_u8(const av_trace *t, const av_html_params *p, const page_assets *a, size_t values,
                   const av_html_analysis *an) {
    if (p->precision != AV_HTML_AUTO) return p->precision == AV_HTML_U8;
    size_t budget = av_trace_meta(t, "patch_grid") ? AV_HTML_BUDGET_IMAGE : AV_HTML_BUDGET;
    size_t bytes = a->bytes;
    const char *img = av_trace_meta(t, "image_png_base64");
    bytes += img ? strlen(img) : 0;
    av_mapped_file imf;
    if (p->image_path && av_file_map(p->image_path, &imf, NULL) == 0) {
        bytes += imf.size / 3 * 4 + 4;
        av_file_unmap(&imf);
    }
    return bytes + av_base64_len(values * 2) + (an && an->json ? av_html_analysis_bytes(an, 0) : 0) +
               64 * 1024 >
           budget;
}

/* web/index.html with its <!--AV:STYLE-->, <!--AV:SCRIPT-->, <!--AV:DATA--> and <!--AV:TITLE--> marks
 * replaced. */
static void fill_template(av_buf *page, const page_assets *a, const char *mjs, const char *b64,
                          const char *title) {
    const char *s = (const char *)a->tpl->data, *end = s + a->tpl->len;
    while (s < end) {
        const char *mark = strstr(s, "<!--AV:");
        if (!mark || mark >= end) {
            av_buf_put(page, s, (size_t)(end - s));
            break;
        }
        av_buf_put(page, s, (size_t)(mark - s));
        const char *close = strstr(mark, "-->");
        if (!close) break;
        size_t len = (size_t)(close - mark - 7);
        if (len == 5 && strncmp(mark + 7, "STYLE", 5) == 0) {
            hb_str(page, "<style>\n");
            av_buf_put(page, a->css->data, a->css->len);
            hb_str(page, "</style>");
        } else if (len == 6 && strncmp(mark + 7, "SCRIPT", 6) == 0) {
            hb_str(page, "<script>\n");
            for (int i = 0; i < N_SCRIPTS; i++)
                av_buf_put(page, a->js[i]->data, a->js[i]->len);
            hb_str(page, "</script>");
        } else if (len == 4 && strncmp(mark + 7, "DATA", 4) == 0) {
            hb_str(page, "<script type=\"application/json\" id=\"av-meta\">");
            hb_str(page, mjs);
            hb_str(page, "</script>\n<script type=\"text/plain\" id=\"av-data\">");
            hb_str(page, b64);
            hb_str(page, "</script>");
        } else if (len == 5 && strncmp(mark + 7, "TITLE", 5) == 0) {
            hb_html_escaped(page, title);
            hb_str(page, " · attnviz");
        }
        s = close + 3;
    }
}

int av_html_build(const av_trace *t, const av_html_params *p, char **out, size_t *n, av_err *err) {
    *out = NULL;
    *n = 0;
    page_assets assets;
    if (find_assets(&assets, err)) return -1;
    size_t values = total_values(t, 0);
    if (values == 0 && !av_trace_has_logprobs(t))
        return av_errf(err, "the trace holds no attention to show (attnviz attribute stores it unless "
                            "--no-attention)");
    if (!(p->max_mb > 0)) return av_errf(err, "the page's size budget must be positive");
    if (p->view && strcmp(p->view, "qkmap") == 0 && !av_html_has_qk(t))
        return av_errf(err, "the Q/K map needs the trace's queries and keys: run with --keep-qk (or --lazy)");
    av_html_analysis an = {0};
    /* a model API's response has no attention to analyse; a difference (attnviz diff) is signed: float16 only
     */
    int diff = av_trace_meta(t, "diff") != NULL;
    if (diff && p->precision == AV_HTML_U8)
        return av_errf(err, "a difference of two traces is signed: the page needs float16 data, not u8");
    /* long traces: a pooled overview when even 8-bit matrices would pass the budget */
    int cells = values && !diff ? av_html_pool_cells(t, p->max_mb * (1 << 20),
                                                     p->precision == AV_HTML_F16 ? 8.0 / 3 : 4.0 / 3)
                                : 0;
    int analysis = p->analysis && values > 0 && !diff && !cells;
    if (analysis && av_html_analysis_compute(t, p, &an, err)) return -1;
    int u8 = !diff && want_u8(t, p, &assets, total_values(t, cells), &an);
    av_buf blob = {0}, page = {0};
    json_t *meta;
    int rc = build_meta(t, p, u8, cells, analysis ? &an : NULL, &blob, &meta, err);
    av_html_analysis_free(&an);
    if (rc) {
        free(blob.s);
        return -1;
    }
    char *mjs =
        json_dumps(meta, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ESCAPE_SLASH | JSON_REAL_PRECISION(6));
    json_decref(meta);
    char *b64 = mjs && !blob.oom ? av_base64_encode(blob.s, blob.n) : NULL;
    free(blob.s);
    if (!b64) {
        free(mjs);
        return av_errf(err, "out of memory building the page");
    }
    const char *model = av_trace_meta(t, "model");
    fill_template(&page, &assets, mjs, b64, p->title ? p->title : model ? model : "attention");
    free(mjs);
    free(b64);
    if (page.oom) {
        free(page.s);
        return av_errf(err, "out of memory building the page");
    }
    *out = page.s;
    *n = page.n;
    return 0;
}

int av_html_write(const av_trace *t, const av_html_params *p, const char *path, size_t *bytes, av_err *err) {
    char *page;
    size_t n;
    if (av_html_build(t, p, &page, &n, err)) return -1;
    av_atomic_file f;
    int rc = av_atomic_open(&f, path, err);
    if (!rc && av_atomic_write(&f, page, n, err)) {
        av_atomic_abort(&f);
        rc = -1;
    } else if (!rc) {
        rc = av_atomic_commit(&f, err);
    }
    free(page);
    if (!rc && bytes) *bytes = n;
    return rc;
}
