/* attnviz show --steps: the tokens of a trace colored by their probability (or the entropy of the
 * distribution that produced them), then one line per produced token: its probability, the entropy, the
 * alternatives and the earlier tokens its step attended to most (row t - 1 is the attention computed while
 * producing t). */
#include "render/render.h"

#include "kernels/sample.h"
#include "render/plot.h"
#include "trace/logprobs.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define STEP_LABEL_CPS 14 /* widest token field in the table */

av_steps_term_params av_steps_term_default_params(void) {
    return (av_steps_term_params){0, 5, 3, -1, -1, AV_HEADS_MEAN, 0, AV_COLOR_AUTO, 0};
}

typedef struct steps {
    FILE *out;
    const av_trace *t;
    const av_steps_term_params *p;
    av_logprob_view v;
    av_generation_info g;
    av_color_mode color;
    float hmax;   /* largest entropy (the entropy scale) */
    int has_kind; /* attention is shown (kind, layer) */
    av_attn_kind kind;
    int layer;
    char **src_labels; /* (n_key) labels of the attended side */
    int n_key;
    float *row; /* (n_key) */
} steps;

/* The color value of token i in [0, 1] (NaN: unknown): its probability, or its entropy over the largest. */
static float token_value(const steps *s, int i) {
    if (s->p->by_entropy) return s->hmax > 0 ? s->v.entropy[i] / s->hmax : s->v.entropy[i];
    return expf(s->v.token[i]);
}

static void put_token(const steps *s, int i) {
    char *label = av_term_label(av_trace_token(s->t, i), 64);
    float x = token_value(s, i);
    uint8_t bg[3], fg[3];
    av_cmap_rgb(s->p->by_entropy ? AV_CMAP_MAGMA : AV_CMAP_VIRIDIS, x, bg);
    int light = isnan(x) || 0.299 * bg[0] + 0.587 * bg[1] + 0.114 * bg[2] > 140;
    fg[0] = fg[1] = fg[2] = light ? 0 : 255;
    if (s->color == AV_COLOR_NONE)
        fprintf(s->out, "[%s]", label ? label : "?");
    else {
        av_term_put_colors(s->out, s->color, fg, bg);
        fprintf(s->out, "%s\x1b[0m", label ? label : "?");
    }
    free(label);
}

/* The tokens in a strip wrapped at the width; prompt and produced tokens on their own lines. */
static void put_strip(const steps *s, int width) {
    int n = s->v.n_tokens, p = s->g.prompt_len, col = 0;
    for (int i = 0; i < n; i++) {
        if (i == 0 || i == p) {
            if (i) fputc('\n', s->out);
            col = fprintf(s->out, "%-10s",
                          p < 0             ? "tokens:"
                          : i < p || p == 0 ? (p ? "prompt:" : "output:")
                                            : "output:");
        }
        char *label = av_term_label(av_trace_token(s->t, i), 64);
        int w = (label ? av_term_width(label) : 1) + (s->color == AV_COLOR_NONE ? 2 : 0);
        free(label);
        if (col + w > width && col > 10) {
            fputs("\n          ", s->out);
            col = 10;
        }
        put_token(s, i);
        col += w;
    }
    fputc('\n', s->out);
}

static void put_legend(const steps *s) {
    fprintf(s->out, "colored by %s: ", s->p->by_entropy ? "entropy (nats)" : "probability");
    if (s->color != AV_COLOR_NONE)
        for (int k = 0; k <= 20; k++) {
            uint8_t c[3];
            av_cmap_rgb(s->p->by_entropy ? AV_CMAP_MAGMA : AV_CMAP_VIRIDIS, k / 20.0f, c);
            av_term_put_colors(s->out, s->color, NULL, c);
            fputc(' ', s->out);
        }
    if (s->color != AV_COLOR_NONE) fputs("\x1b[0m", s->out);
    fprintf(s->out, " 0 .. %g%s\n", s->p->by_entropy ? (double)s->hmax : 1.0,
            s->color == AV_COLOR_NONE ? " (no colors)" : "");
}

static void put_header(const steps *s) {
    const char *model = av_trace_meta(s->t, "model");
    fprintf(s->out, "%s", model ? model : "trace");
    if (s->g.prompt_len >= 0)
        fprintf(s->out, " · %d prompt tokens · %d produced", s->g.prompt_len,
                s->v.n_tokens - s->g.prompt_len);
    if (s->g.provider) fprintf(s->out, " · %s response", s->g.provider);
    json_t *sampling = s->g.sampling ? json_loads(s->g.sampling, 0, NULL) : NULL;
    if (sampling)
        json_number_value(json_object_get(sampling, "temperature")) > 0
            ? fprintf(s->out, " · sampling %s", s->g.sampling)
            : fprintf(s->out, " · greedy");
    json_decref(sampling);
    if (s->g.stop_reason) fprintf(s->out, " · stop: %s", s->g.stop_reason);
    fputc('\n', s->out);
    const char *info = av_trace_meta(s->t, "generation");
    json_t *o = info ? json_loads(info, 0, NULL) : NULL;
    size_t i;
    json_t *note;
    json_array_foreach(json_object_get(o, "notes"), i, note)
        fprintf(s->out, "note: %s\n", json_string_value(note));
    json_decref(o);
    if (!av_trace_has_attention(s->t)) fputs("note: this provider returns no attention weights\n", s->out);
    if (s->g.source && strcmp(s->g.source, "logits") == 0)
        fputs("note: log-probabilities derived from the trace's logits\n", s->out);
}

/* " piece" .81 for the alternatives of position i. */
static void put_alternatives(const steps *s, int i) {
    for (int j = 0; j < s->v.k && j < s->p->n_alts; j++) {
        size_t at = (size_t)i * (size_t)s->v.k + (size_t)j;
        if (s->v.alt_pieces[at] < 0) break;
        char *label = av_term_label(s->v.pieces[s->v.alt_pieces[at]], 16);
        fprintf(s->out, " \"%s\" %.3f", label ? label : "?", exp((double)s->v.alt_logprobs[at]));
        free(label);
    }
}

/* The n_sources keys row i - 1 of the chosen attention weighs most. */
static void put_sources(steps *s, int i, av_err *err) {
    if (!s->has_kind || i == 0) return;
    if (av_trace_attn_row(s->t, s->kind, s->layer, s->p->head, i - 1, s->row, err)) return;
    int32_t top[16];
    float w[16];
    int k = av_top_k(s->row, s->n_key, s->p->n_sources < 16 ? s->p->n_sources : 16, top, w);
    fputs("  |", s->out);
    for (int j = 0; j < k; j++) {
        char *label = av_term_label(s->src_labels[top[j]], 12);
        fprintf(s->out, " \"%s\" %.2f", label ? label : "?", (double)w[j]);
        free(label);
    }
}

static void put_num(FILE *out, float x, int width, int prec) {
    if (isnan(x))
        fprintf(out, " %*s", width, "-");
    else
        fprintf(out, " %*.*f", width, prec, (double)x);
}

static void put_table(steps *s, av_err *err) {
    int first = s->p->all || s->g.prompt_len < 0 ? 0 : s->g.prompt_len;
    fprintf(s->out, "\n%5s  %-*s %7s %6s  alternatives (p)", "t", STEP_LABEL_CPS, "token", "p", "H");
    if (s->has_kind)
        fprintf(s->out, "  | attended (%s, layer %d, head %s)", av_attn_kind_name(s->kind), s->layer,
                s->p->head == AV_HEADS_MEAN  ? "mean"
                : s->p->head == AV_HEADS_MAX ? "max"
                                             : "#");
    fputc('\n', s->out);
    for (int i = first; i < s->v.n_tokens; i++) {
        char *label = av_term_label(av_trace_token(s->t, i), STEP_LABEL_CPS + 1);
        fprintf(s->out, "%5d%c ", i, s->g.prompt_len >= 0 && i < s->g.prompt_len ? '.' : ' ');
        av_term_put_field(s->out, label ? label : "?", STEP_LABEL_CPS);
        free(label);
        put_num(s->out, expf(s->v.token[i]), 7, 4);
        put_num(s->out, s->v.entropy[i], 6, 3);
        fputc(' ', s->out);
        put_alternatives(s, i);
        put_sources(s, i, err);
        fputc('\n', s->out);
    }
}

/* The attention the table shows: p->kind or the trace's default, its layer (negative: from the end), the
 * labels of the attended side. 0 without attention; -1 on a bad choice. */
static int choose_attention(steps *s, av_err *err) {
    if (!av_trace_has_attention(s->t)) return 0;
    if (s->p->kind >= 0)
        s->kind = (av_attn_kind)s->p->kind;
    else if (av_steps_default_kind(s->t, &s->kind))
        return 0;
    const char *name = av_attn_kind_name(s->kind);
    int n_layers = av_trace_n_layers(s->t, s->kind);
    s->layer = s->p->layer < 0 ? n_layers + s->p->layer : s->p->layer;
    if (n_layers == 0) return av_errf(err, "the trace has no '%s' attention", name);
    if (s->layer < 0 || s->layer >= n_layers)
        return av_errf(err, "layer %d is out of range: the trace has %s layers 0..%d", s->p->layer, name,
                       n_layers - 1);
    if (s->p->head >= av_trace_n_heads(s->t, s->kind))
        return av_errf(err, "head %d is out of range: the trace has %d heads", s->p->head,
                       av_trace_n_heads(s->t, s->kind));
    int nq = av_trace_n_query(s->t, s->kind);
    s->n_key = av_trace_n_key(s->t, s->kind);
    if (nq != s->v.n_tokens)
        return av_errf(err, "'%s' attention has %d queries for %d tokens", name, nq, s->v.n_tokens);
    char **ql = NULL;
    s->row = malloc(sizeof(float) * (size_t)s->n_key);
    if (!s->row || av_plot_labels(s->t, s->kind, nq, s->n_key, &ql, &s->src_labels, err))
        return s->row ? -1 : av_errf(err, "out of memory");
    av_plot_labels_free(ql, nq);
    s->has_kind = 1;
    return 0;
}

int av_term_steps(FILE *out, const av_trace *t, const av_steps_term_params *p, av_err *err) {
    av_steps_term_params dp = av_steps_term_default_params();
    steps s;
    memset(&s, 0, sizeof s);
    s.out = out, s.t = t, s.p = p ? p : &dp;
    if (av_trace_logprobs(t, &s.v, err)) return -1;
    av_trace_generation_info(t, &s.g);
    s.color = av_term_resolve_color(s.p->color);
    for (int i = 0; i < s.v.n_tokens; i++)
        if (s.v.entropy[i] > s.hmax) s.hmax = s.v.entropy[i];
    int width = s.p->width, height = 0;
    av_term_detect_size(out, &width, &height);
    int rc = choose_attention(&s, err);
    if (rc == 0) {
        put_header(&s);
        put_strip(&s, width);
        put_legend(&s);
        put_table(&s, err);
        if (ferror(out)) rc = av_errf(err, "write failed");
    }
    av_plot_labels_free(s.src_labels, s.n_key);
    free(s.row);
    return rc;
}
