/* attnviz show --attr and --lens: attribution and the logit lens in a terminal.
 *   --attr: the source tokens colored by their attribution to the whole target (blue-white-red around 0;
 *     viridis for saliency), one line per target token with its log-probability and the source tokens that
 *     matter most to it, then the target-by-source matrix as a heatmap;
 *   --lens: a layers x positions table of the most probable token at each depth (the output on top, the
 *     embeddings at the bottom), colored by its probability, "*" where it is the token that comes next. */
#include "render/render.h"

#include "core/core.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

av_attr_term_params av_attr_term_default_params(void) {
    return (av_attr_term_params){AV_ATTR_OCCLUSION, 5, AV_COLOR_AUTO, 0, 1};
}

av_lens_term_params av_lens_term_default_params(void) {
    return (av_lens_term_params){0, 0, 9, AV_COLOR_AUTO, 0};
}

/* label in a cell colored by t on the map cm (text black or white by the fill's lightness); NONE: [label]. */
static void put_cell(FILE *out, av_color_mode mode, av_cmap cm, float t, const char *label, int w) {
    uint8_t bg[3], fg[3];
    av_cmap_rgb(cm, t, bg);
    int light = isnan(t) || 0.299 * bg[0] + 0.587 * bg[1] + 0.114 * bg[2] > 140;
    fg[0] = fg[1] = fg[2] = light ? 0 : 255;
    if (mode == AV_COLOR_NONE) fputc('[', out);
    av_term_put_colors(out, mode, fg, bg);
    if (w > 0)
        av_term_put_field(out, label, w);
    else
        fputs(label, out);
    if (mode != AV_COLOR_NONE) fputs("\x1b[0m", out);
    if (mode == AV_COLOR_NONE) fputc(']', out);
}

/* ---- attribution ---- */

typedef struct attr_term {
    FILE *out;
    const av_attr_term_params *p;
    av_attr_view v;
    av_color_mode color;
    av_cmap cmap;
    int is_signed;
    char **labels; /* (n_tokens) */
    int n_tokens;
} attr_term;

static float to_t(const attr_term *a, float v, float scale) {
    return a->is_signed ? 0.5f + 0.5f * v / scale : v / scale;
}

/* The source as a strip colored by values v (source_len), wrapped at width. */
static void put_strip(const attr_term *a, const float *v, int width) {
    float scale = 0;
    for (int j = 0; j < a->v.source_len; j++)
        scale = fmaxf(scale, fabsf(v[j]));
    if (!(scale > 0)) scale = 1;
    int col = fprintf(a->out, "source:   ");
    for (int j = 0; j < a->v.source_len; j++) {
        char buf[96];
        const char *l = a->labels[j] ? a->labels[j] : "?";
        if (a->color == AV_COLOR_NONE) snprintf(buf, sizeof buf, "%s %+.2g", l, v[j]), l = buf;
        int w = av_term_width(l) + (a->color == AV_COLOR_NONE ? 3 : 1);
        if (col + w > width && col > 10) {
            fputs("\n          ", a->out);
            col = 10;
        }
        put_cell(a->out, a->color, a->cmap, to_t(a, v[j], scale), l, 0);
        fputc(' ', a->out);
        col += w;
    }
    fprintf(a->out, "\n%10scolor scale: %s%.3g%s\n", "", a->is_signed ? "±" : "0 .. ", scale,
            a->is_signed ? " (red: the token raises log p of the target, blue: lowers it)" : "");
}

/* One line per target: its label, log p and the source tokens with the largest |attribution|. */
static void put_targets(const attr_term *a, const json_t *tl) {
    int S = a->v.source_len, top = a->p->top < S ? a->p->top : S;
    for (int i = 0; i < a->v.n_target; i++) {
        const float *row = a->v.scores + (size_t)i * (size_t)S;
        char *tlabel = av_term_label(json_string_value(json_array_get(tl, (size_t)i))
                                         ? json_string_value(json_array_get(tl, (size_t)i))
                                         : "?",
                                     16);
        fprintf(a->out, "target %-3d", i);
        av_term_put_field(a->out, tlabel ? tlabel : "?", 12);
        fprintf(a->out, " log p %7.3f   top:", a->v.target_logprobs[i]);
        free(tlabel);
        unsigned char *used = calloc((size_t)S, 1);
        for (int k = 0; used && k < top; k++) {
            int best = -1;
            for (int j = 0; j < S; j++)
                if (!used[j] && (best < 0 || fabsf(row[j]) > fabsf(row[best]))) best = j;
            used[best] = 1;
            fprintf(a->out, " \"%s\" %+.3g%s", a->labels[best] ? a->labels[best] : "?", row[best],
                    k + 1 < top ? "," : "");
        }
        free(used);
        fputc('\n', a->out);
    }
}

int av_term_attr(FILE *out, const av_trace *t, const av_attr_term_params *p, av_err *err) {
    attr_term a = {out,
                   p,
                   {0},
                   av_term_resolve_color(p->color),
                   AV_CMAP_DIVERGING,
                   p->method != AV_ATTR_SALIENCY,
                   NULL,
                   av_trace_n_tokens(t)};
    if (av_trace_attribution(t, p->method, &a.v, err)) return -1;
    if (!a.is_signed) a.cmap = AV_CMAP_VIRIDIS;
    int width = p->width, height = 0, S = a.v.source_len, N = a.v.n_target, rc = 0;
    av_term_detect_size(out, &width, &height);
    a.labels = calloc((size_t)a.n_tokens, sizeof *a.labels);
    float *sum = calloc((size_t)S, sizeof *sum);
    json_t *tl = json_loads(
        av_trace_meta(t, "attr.target_labels") ? av_trace_meta(t, "attr.target_labels") : "[]", 0, NULL);
    if (!a.labels || !sum) rc = av_errf(err, "out of memory");
    for (int j = 0; rc == 0 && j < a.n_tokens; j++)
        a.labels[j] = av_term_label(av_trace_token(t, j), 16);
    for (int i = 0; rc == 0 && i < N; i++)
        for (int j = 0; j < S; j++)
            sum[j] += a.v.scores[(size_t)i * (size_t)S + (size_t)j];
    if (rc == 0) {
        const char *model = av_trace_meta(t, "model");
        fprintf(out, "%s · %s attribution · %d source tokens, %d target token%s\n", model ? model : "trace",
                av_attr_method_name(p->method), S, N, N == 1 ? "" : "s");
        fprintf(out, "to the whole target (sum over its tokens):\n");
        put_strip(&a, sum, width);
        put_targets(&a, tl);
        if (p->matrix) {
            av_term_params tp = av_term_default_params();
            tp.cmap = a.cmap;
            tp.color = p->color;
            tp.width = p->width;
            tp.title = "target (rows) by source (columns)";
            char **rows = calloc((size_t)N, sizeof *rows);
            for (int i = 0; rows && i < N; i++)
                rows[i] = av_term_label(json_string_value(json_array_get(tl, (size_t)i))
                                            ? json_string_value(json_array_get(tl, (size_t)i))
                                            : "?",
                                        16);
            rc = rows ? av_term_heatmap(out, a.v.scores, N, S, (const char *const *)rows,
                                        (const char *const *)a.labels, &tp, err)
                      : av_errf(err, "out of memory");
            for (int i = 0; rows && i < N; i++)
                free(rows[i]);
            free(rows);
        }
    }
    for (int j = 0; a.labels && j < a.n_tokens; j++)
        free(a.labels[j]);
    free(a.labels);
    free(sum);
    json_decref(tl);
    return rc;
}

/* ---- logit lens ---- */

/* The cell label of vocabulary id: lens.labels' entry, escaped for the terminal. */
static char *vocab_label(const json_t *labels, int id) {
    char key[16], buf[24];
    snprintf(key, sizeof key, "%d", id);
    const char *l = json_string_value(json_object_get(labels, key));
    if (!l) snprintf(buf, sizeof buf, "#%d", id), l = buf;
    return av_term_label(l, 32);
}

static void put_lens_row(FILE *out, const av_lens_view *v, const json_t *labels, int e, int q0, int q1,
                         int cw, av_color_mode mode) {
    char name[16];
    snprintf(name, sizeof name, e == 0 ? "embeddings" : "layer %d", e);
    fprintf(out, "%-11s", name);
    for (int q = q0; q < q1; q++) {
        size_t at = ((size_t)e * (size_t)v->n_tokens + (size_t)q) * (size_t)v->k;
        char *l = vocab_label(labels, v->topk_ids[at]), cell[160];
        snprintf(cell, sizeof cell, "%s%s", v->topk_ids[at] == v->target_ids[q] ? "*" : "", l ? l : "?");
        put_cell(out, mode, AV_CMAP_VIRIDIS, expf(v->topk_logprobs[at]), cell,
                 cw - 1 - (mode == AV_COLOR_NONE) * 2);
        fputc(' ', out);
        free(l);
    }
    fputc('\n', out);
}

int av_term_lens(FILE *out, const av_trace *t, const av_lens_term_params *p, av_err *err) {
    av_lens_view v;
    if (av_trace_lens(t, &v, err)) return -1;
    int width = p->width, height = 0, cw = p->cell > 3 ? p->cell : 9;
    av_term_detect_size(out, &width, &height);
    av_color_mode mode = av_term_resolve_color(p->color);
    int fit = (width - 11) / cw > 1 ? (width - 11) / cw : 1, q1 = p->pos1 > 0 ? p->pos1 : v.n_tokens;
    int q0 = p->pos1 > 0 ? p->pos0 : q1 - fit > 0 ? q1 - fit : 0;
    if (q0 < 0 || q1 > v.n_tokens || q0 >= q1)
        return av_errf(err, "positions %d..%d are outside the trace's 0..%d", q0, q1 - 1, v.n_tokens - 1);
    if (q1 - q0 > fit) q1 = q0 + fit;
    json_t *labels =
        json_loads(av_trace_meta(t, "lens.labels") ? av_trace_meta(t, "lens.labels") : "{}", 0, NULL);
    const char *model = av_trace_meta(t, "model");
    fprintf(out,
            "%s · logit lens: the most probable next token at each layer (color: its probability, *: the "
            "token that comes next)\n",
            model ? model : "trace");
    if (q0 > 0 || q1 < v.n_tokens)
        fprintf(out, "positions %d..%d of %d (choose others with --positions A-B)\n", q0, q1 - 1, v.n_tokens);
    fprintf(out, "%-11s", "input");
    for (int q = q0; q < q1; q++) {
        char *l = av_term_label(av_trace_token(t, q), 32);
        av_term_put_field(out, l ? l : "?", cw - 1);
        fputc(' ', out);
        free(l);
    }
    fputc('\n', out);
    for (int e = v.n_entries - 1; e >= 0; e--)
        put_lens_row(out, &v, labels, e, q0, q1, cw, mode);
    fprintf(out, "%-11s", "next");
    for (int q = q0; q < q1; q++) {
        char *l = v.target_ids[q] >= 0 ? vocab_label(labels, v.target_ids[q]) : NULL;
        av_term_put_field(out, l ? l : "", cw - 1);
        fputc(' ', out);
        free(l);
    }
    fputc('\n', out);
    json_decref(labels);
    return ferror(out) ? av_errf(err, "write error") : 0;
}
