/* The step figure (attnviz render TRACE --steps): the title and notes, the tokens as boxes colored by their
 * probability (or entropy) with a color key, and the target-by-source matrix of the produced tokens (row
 * "t token" = the attention computed while producing token t, query t - 1). PNG or SVG. */
#include "render/plot.h"

#include "core/core.h"
#include "trace/logprobs.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MARGIN 14.0
#define TITLE_PX 15.0
#define TOKEN_PX 11.0
#define NOTE_PX 10.5
#define STRIP_W 880.0 /* the token strip wraps at this width */
#define BOX_H 18.0

av_steps_plot_params av_steps_plot_default_params(void) {
    return (av_steps_plot_params){0, -1, -1, AV_HEAD_MEAN, 150, NULL};
}

typedef struct fig_steps {
    av_fig *f;
    const av_trace *t;
    const av_steps_plot_params *p;
    av_logprob_view v;
    av_generation_info g;
    float hmax;
    double y; /* where the next block starts */
    double w; /* widest extent so far */
} fig_steps;

static float token_t(const fig_steps *s, int i) {
    if (s->p->by_entropy) return s->hmax > 0 ? s->v.entropy[i] / s->hmax : s->v.entropy[i];
    return expf(s->v.token[i]);
}

static int put_text(fig_steps *s, const char *text, double size, const uint8_t rgb[3], av_err *err) {
    s->y += size * 1.35;
    if (av_fig_text(s->f, text, MARGIN, s->y, size, 0, 0, rgb, err)) return -1;
    s->w = fmax(s->w, MARGIN * 2 + av_font_width(s->f->font, text, size));
    return 0;
}

static int put_header(fig_steps *s, av_err *err) {
    char title[512];
    const char *model = av_trace_meta(s->t, "model");
    int n = snprintf(title, sizeof title, "%s", s->p->title ? s->p->title : model ? model : "trace");
    if (!s->p->title && s->g.prompt_len >= 0)
        snprintf(title + n, sizeof title - (size_t)n, " · %d produced tokens",
                 s->v.n_tokens - s->g.prompt_len);
    if (put_text(s, title, TITLE_PX, av_fig_ink, err)) return -1;
    const char *info = av_trace_meta(s->t, "generation");
    json_t *o = info ? json_loads(info, 0, NULL) : NULL;
    size_t i;
    json_t *note;
    int rc = 0;
    if (s->g.provider) {
        char line[256];
        snprintf(line, sizeof line, "%s response%s%s", s->g.provider, s->g.stop_reason ? " · stop: " : "",
                 s->g.stop_reason ? s->g.stop_reason : "");
        rc = put_text(s, line, NOTE_PX, av_fig_muted, err);
    }
    json_array_foreach(json_object_get(o, "notes"), i, note) if (!rc && json_is_string(note)) rc =
        put_text(s, json_string_value(note), NOTE_PX, av_fig_muted, err);
    json_decref(o);
    return rc;
}

/* One token box at (x, y), its label cut to 24 code points. */
static int put_box(fig_steps *s, int i, double *x, double *y, av_err *err) {
    char *label = av_fig_cut_label(av_trace_token(s->t, i), 24);
    if (!label) return av_errf(err, "out of memory");
    double tw = av_font_width(s->f->font, label, TOKEN_PX) + 6;
    if (*x + tw > MARGIN + 70 + STRIP_W && *x > MARGIN + 70) *x = MARGIN + 70, *y += BOX_H + 4;
    float v = token_t(s, i);
    uint8_t bg[3], fg[3];
    av_cmap_rgb(s->p->by_entropy ? AV_CMAP_MAGMA : AV_CMAP_VIRIDIS, v, bg);
    int dark = !isnan(v) && 0.299 * bg[0] + 0.587 * bg[1] + 0.114 * bg[2] <= 140;
    memcpy(fg, dark ? av_fig_white : av_fig_ink, 3);
    int rc = av_fig_rect(s->f, *x, *y, tw - 2, BOX_H, bg, err) ||
             av_fig_text(s->f, label, *x + 2, *y + BOX_H * 0.72, TOKEN_PX, 0, 0, fg, err);
    free(label);
    *x += tw;
    s->w = fmax(s->w, *x + MARGIN);
    return rc ? -1 : 0;
}

/* The tokens, prompt and produced ones on their own rows, then the color key. */
static int put_strip(fig_steps *s, av_err *err) {
    double x = MARGIN + 70, y = s->y + 8;
    int p = s->g.prompt_len;
    for (int i = 0; i < s->v.n_tokens; i++) {
        if (i == 0 || i == p) {
            if (i) y += BOX_H + 10;
            x = MARGIN + 70;
            const char *side = p < 0 ? "tokens" : i < p ? "prompt" : "output";
            if (av_fig_text(s->f, side, MARGIN, y + BOX_H * 0.72, TOKEN_PX, 0, 0, av_fig_muted, err))
                return -1;
        }
        if (put_box(s, i, &x, &y, err)) return -1;
    }
    s->y = y + BOX_H + 14;
    av_fig_item *it = av_fig_add(s->f, AV_FIG_RASTER, err); /* the key: 0 .. 1 (or 0 .. max entropy) */
    if (!it) return -1;
    *it = (av_fig_item){
        .kind = AV_FIG_RASTER, .x = MARGIN + 70, .y = s->y, .w = 200, .h = 10, .rw = 256, .rh = 1};
    if (!(it->raster = malloc(256 * 3))) return av_errf(err, "out of memory");
    for (int k = 0; k < 256; k++)
        av_cmap_rgb(s->p->by_entropy ? AV_CMAP_MAGMA : AV_CMAP_VIRIDIS, (k + 0.5f) / 256.f,
                    it->raster + 3 * k);
    char hi[48];
    snprintf(hi, sizeof hi, "%.3g%s", s->p->by_entropy ? (double)s->hmax : 1.0,
             s->p->by_entropy ? " nats" : "");
    if (av_fig_text(s->f, s->p->by_entropy ? "entropy" : "probability", MARGIN, s->y + 9, NOTE_PX, 0, 0,
                    av_fig_muted, err) ||
        av_fig_text(s->f, "0", MARGIN + 66, s->y + 9, NOTE_PX, 0, 2, av_fig_ink, err) ||
        av_fig_text(s->f, hi, MARGIN + 274, s->y + 9, NOTE_PX, 0, 0, av_fig_ink, err))
        return -1;
    s->y += 24;
    return 0;
}

/* The matrix of the produced tokens: m (n_rows, n_key), row r = attention row first + r - 1. */
static int step_rows(const fig_steps *s, av_attn_kind kind, int layer, int first, float **m, int *n_key,
                     av_err *err) {
    int nr = s->v.n_tokens - first;
    *n_key = av_trace_n_key(s->t, kind);
    *m = malloc(sizeof(float) * (size_t)(nr > 0 ? nr : 1) * (size_t)(*n_key > 0 ? *n_key : 1));
    if (!*m) return av_errf(err, "out of memory");
    for (int r = 0; r < nr; r++)
        if (av_trace_attn_row(s->t, kind, layer, s->p->head, first + r - 1, *m + (size_t)r * (size_t)*n_key,
                              err)) {
            free(*m);
            *m = NULL;
            return -1;
        }
    return 0;
}

/* Row labels "t token" and the key labels (the attended side of kind). */
static int matrix_labels(const fig_steps *s, av_attn_kind kind, int first, int nr, int nk, char ***rows,
                         char ***keys, av_err *err) {
    char **q = NULL;
    if (av_plot_labels(s->t, kind, s->v.n_tokens, nk, &q, keys, err)) return -1;
    av_plot_labels_free(q, s->v.n_tokens);
    *rows = calloc((size_t)(nr > 0 ? nr : 1), sizeof **rows);
    for (int r = 0; *rows && r < nr; r++) {
        char *cut = av_fig_cut_label(av_trace_token(s->t, first + r), 14);
        char buf[96];
        snprintf(buf, sizeof buf, "%d %s", first + r, cut ? cut : "?");
        free(cut);
        (*rows)[r] = av_strdup(buf);
    }
    return *rows ? 0 : av_errf(err, "out of memory");
}

static int put_matrix(fig_steps *s, av_attn_kind kind, int layer, double out_scale, av_err *err) {
    int first = s->g.prompt_len > 1 ? s->g.prompt_len : 1, nr = s->v.n_tokens - first, nk;
    if (nr <= 0) return put_text(s, "no produced tokens to show attention for", NOTE_PX, av_fig_muted, err);
    float *m;
    char **rl = NULL, **kl = NULL;
    if (step_rows(s, kind, layer, first, &m, &nk, err)) return -1;
    if (matrix_labels(s, kind, first, nr, nk, &rl, &kl, err)) {
        free(m);
        return -1;
    }
    char cap[256];
    snprintf(cap, sizeof cap,
             "attention while producing each token (row t = query t - 1) · %s%slayer %d · %s",
             kind != AV_ATTN_SELF ? av_attn_kind_name(kind) : "", kind != AV_ATTN_SELF ? " · " : "", layer,
             s->p->head == AV_HEAD_MEAN  ? "mean of heads"
             : s->p->head == AV_HEAD_MAX ? "max of heads"
                                         : "one head");
    int rc = put_text(s, cap, NOTE_PX, av_fig_muted, err);
    double cell = fmax(1, fmin(16, 560.0 / (nr > nk ? nr : nk))), lf = fmin(10, fmax(7, cell * 0.75));
    int stride = (int)ceil(lf * 1.2 / cell - 1e-9);
    double row_w = 0, col_h = 0;
    for (int r = 0; r < nr; r += stride)
        row_w = fmax(row_w, av_font_width(s->f->font, rl[r], lf));
    for (int k = 0; k < nk; k += stride)
        col_h = fmax(col_h, av_font_width(s->f->font, kl[k], lf));
    double x0 = MARGIN + row_w + 8, y0 = s->y + 10, W = cell * nk, H = cell * nr;
    for (int r = 0; !rc && r < nr; r += stride)
        rc = av_fig_text(s->f, rl[r], x0 - 5, y0 + cell * (r + 0.5) + lf * 0.36, lf, 0, 2, av_fig_ink, err);
    for (int k = 0; !rc && k < nk; k += stride)
        rc = av_fig_text(s->f, kl[k], x0 + cell * (k + 0.5) + lf * 0.36, y0 + H + 5, lf, 90, 2, av_fig_ink,
                         err);
    float hi = 0;
    for (size_t i = 0; i < (size_t)nr * (size_t)nk; i++)
        hi = fmaxf(hi, m[i]);
    av_fig_scale sc = {AV_CMAP_VIRIDIS, 0, 0, hi > 0 ? hi : 1};
    if (!rc)
        rc = av_fig_matrix(s->f, m, nr, nk, x0, y0, W, H, out_scale, &sc, 0, err);
    else
        free(m);
    double cb_w = rc ? -1 : av_fig_colorbar(s->f, x0 + W + 18, y0, fmax(H, 120), &sc, err);
    av_plot_labels_free(rl, nr);
    av_plot_labels_free(kl, nk);
    if (rc || cb_w < 0) return -1;
    s->w = fmax(s->w, x0 + W + 18 + cb_w + MARGIN);
    s->y = fmax(y0 + H + 5 + col_h, y0 + fmax(H, 120)) + 6;
    return 0;
}

int av_steps_layout(const av_trace *t, const av_steps_plot_params *p, av_font *font, av_fig *fig,
                    av_err *err) {
    memset(fig, 0, sizeof *fig);
    fig->font = font;
    memcpy(fig->bg, av_fig_white, 3);
    fig_steps s;
    memset(&s, 0, sizeof s);
    s.f = fig, s.t = t, s.p = p;
    s.y = MARGIN - TITLE_PX * 0.35;
    if (av_trace_logprobs(t, &s.v, err)) return -1;
    av_trace_generation_info(t, &s.g);
    for (int i = 0; i < s.v.n_tokens; i++)
        if (s.v.entropy[i] > s.hmax) s.hmax = s.v.entropy[i];
    av_attn_kind kind = AV_ATTN_SELF;
    int has_kind = p->kind >= 0 ? (kind = (av_attn_kind)p->kind, 1) : av_steps_default_kind(t, &kind) == 0;
    int rc = put_header(&s, err) || put_strip(&s, err);
    if (!rc && (!has_kind || !av_trace_has_attention(t))) {
        rc = put_text(&s, "this provider returns no attention weights", NOTE_PX, av_fig_muted, err);
    } else if (!rc) {
        int n_layers = av_trace_n_layers(t, kind), layer = p->layer < 0 ? n_layers + p->layer : p->layer;
        if (n_layers == 0)
            rc = av_errf(err, "the trace has no '%s' attention", av_attn_kind_name(kind));
        else if (layer < 0 || layer >= n_layers)
            rc = av_errf(err, "layer %d is out of range: the trace has %s layers 0..%d", p->layer,
                         av_attn_kind_name(kind), n_layers - 1);
        else
            rc = put_matrix(&s, kind, layer, p->dpi / 96.0, err);
    }
    fig->w = s.w;
    fig->h = s.y + MARGIN;
    fig->title = av_strdup(av_trace_meta(t, "model") ? av_trace_meta(t, "model") : "steps");
    if (rc) av_fig_free(fig);
    return rc ? -1 : 0;
}

int av_steps_render(const av_trace *t, const av_steps_plot_params *p, const char *path, int *width,
                    int *height, av_err *err) {
    int png;
    if (av_fig_check_output(path, p->dpi, &png, err)) return -1;
    av_font *font;
    if (av_font_open(&font, err)) return -1;
    av_steps_plot_params q = *p;
    if (!png) q.dpi = 96;
    av_fig fig;
    int rc = av_steps_layout(t, &q, font, &fig, err);
    if (!rc) rc = av_fig_write(&fig, q.dpi, path, width, height, err);
    if (!rc) av_fig_free(&fig);
    av_font_free(font);
    return rc;
}
