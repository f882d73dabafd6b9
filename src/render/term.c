/* Terminal heatmap: upper-half-block cells (two matrix rows per text line) colored with truecolor or
 * xterm-256 escapes, or an ASCII shading ramp; max-pooling downsampling when the matrix is larger than the
 * terminal. */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE /* fileno, ioctl */
#endif
#include "render/render.h"

#include "core/core.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define LABEL_MAX_CPS 12          /* widest row label field, in code points */
#define COL_LABEL_MAX_LINES 8     /* most lines of vertical column labels */
#define TERM_MAX_DIM 4096         /* larger terminal sizes are clamped */
#define HALF_BLOCK "\xe2\x96\x80" /* U+2580 UPPER HALF BLOCK */
#define ELLIPSIS "\xe2\x80\xa6"   /* U+2026 */

static const char k_ramp[] = " .:-=+*#%@";

av_term_params av_term_default_params(void) {
    av_term_params p;
    memset(&p, 0, sizeof p);
    p.width = 0;
    p.height = 0;
    p.color = AV_COLOR_AUTO;
    p.cmap = AV_CMAP_VIRIDIS;
    p.log_scale = 0;
    p.vmin = 0.0f;
    p.vmax = 0.0f;
    p.title = NULL;
    return p;
}

/* ---- terminal size ---- */

static int env_dim(const char *name) {
    const char *s = getenv(name);
    if (!s || !*s) return 0;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v <= 0 || v > TERM_MAX_DIM) return 0;
    return (int)v;
}

void av_term_detect_size(FILE *out, int *width, int *height) {
    if (*width > 0 && *height > 0) return;
    int w = 0, h = 0;
    int fd = out ? fileno(out) : -1;
    if (fd >= 0 && isatty(fd)) {
        struct winsize ws;
        if (ioctl(fd, TIOCGWINSZ, &ws) == 0) {
            w = ws.ws_col;
            h = ws.ws_row;
        }
    }
    if (w <= 0) w = env_dim("COLUMNS");
    if (h <= 0) h = env_dim("LINES");
    if (w <= 0) w = 100;
    if (h <= 0) h = 40;
    if (*width <= 0) *width = w;
    if (*height <= 0) *height = h;
}

/* ---- UTF-8 labels ---- */

/* Code points that a terminal would act on rather than show: C0/C1 controls, DEL, line/paragraph separators
 * and bidirectional overrides. */
static int cp_is_control(uint32_t cp) {
    return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 ||
           (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

/* A printable, valid UTF-8 copy of s: control characters shown escaped ("\n", "\t", "\r", "\x1b", "\u0085"),
 * invalid bytes as "\xff". Stops once it holds more than max_cps code points (enough to tell it is longer
 * than any field it goes into). NULL when out of memory. */
char *av_term_label(const char *s, int max_cps) {
    if (max_cps < 1) max_cps = 1;
    size_t cap =
        6 * ((size_t)max_cps + 1) + 1; /* one step adds at most 6 bytes and at least one code point */
    char *buf = malloc(cap);
    if (!buf) return NULL;
    size_t n = strlen(s), i = 0, o = 0;
    int cps = 0;
    while (i < n && cps <= max_cps) {
        uint32_t cp;
        int len = av_utf8_decode(s + i, n - i, &cp);
        int w;
        if (len == 0) {
            w = snprintf(buf + o, cap - o, "\\x%02x", (unsigned)(unsigned char)s[i]);
            len = 1;
        } else if (cp == '\n') {
            w = snprintf(buf + o, cap - o, "\\n");
        } else if (cp == '\t') {
            w = snprintf(buf + o, cap - o, "\\t");
        } else if (cp == '\r') {
            w = snprintf(buf + o, cap - o, "\\r");
        } else if (cp < 0x20 || cp == 0x7F) {
            w = snprintf(buf + o, cap - o, "\\x%02x", (unsigned)cp);
        } else if (cp_is_control(cp)) {
            w = snprintf(buf + o, cap - o, "\\u%04x", (unsigned)cp);
        } else {
            memcpy(buf + o, s + i, (size_t)len);
            w = len;
            cps++;
            o += (size_t)w;
            i += (size_t)len;
            continue;
        }
        cps += w; /* escapes are ASCII: one code point a byte */
        o += (size_t)w;
        i += (size_t)len;
    }
    buf[o] = 0;
    return buf;
}

int av_term_width(const char *s) {
    int n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) n++;
    return n;
}

/* Bytes of the first k code points of valid UTF-8 s. */
static size_t cp_prefix_bytes(const char *s, int k) {
    size_t b = 0;
    while (s[b] && k > 0) {
        b++;
        while (((unsigned char)s[b] & 0xC0) == 0x80)
            b++;
        k--;
    }
    return b;
}

static void put_spaces(FILE *out, int n) {
    for (int i = 0; i < n; i++)
        fputc(' ', out);
}

void av_term_put_field(FILE *out, const char *s, int w) {
    if (w <= 0) return;
    int n = av_term_width(s);
    if (n <= w) {
        fputs(s, out);
        put_spaces(out, w - n);
    } else {
        fwrite(s, 1, cp_prefix_bytes(s, w - 1), out);
        fputs(ELLIPSIS, out);
    }
}

/* Writes sanitized s in at most w code points, without padding. */
static void put_trunc(FILE *out, const char *s, int w) {
    int n = av_term_width(s);
    av_term_put_field(out, s, n < w ? n : w);
}

static void free_labels(char **l, int n) {
    if (!l) return;
    for (int i = 0; i < n; i++)
        free(l[i]);
    free(l);
}

/* n labels: sanitized given[i] (an index when given or given[i] is NULL), or "a-b" index ranges of blocks of
 * f indices out of total when f > 1. NULL when out of memory. */
static char **make_labels(const char *const *given, int n, int f, int total, int max_cps) {
    char **l = calloc((size_t)n, sizeof *l);
    if (!l) return NULL;
    for (int i = 0; i < n; i++) {
        char num[32];
        if (f > 1) {
            int a = i * f, b = (int)(((int64_t)i + 1) * f < total ? ((int64_t)i + 1) * f : total) - 1;
            if (a == b)
                snprintf(num, sizeof num, "%d", a);
            else
                snprintf(num, sizeof num, "%d-%d", a, b);
            l[i] = av_strdup(num);
        } else if (given && given[i]) {
            l[i] = av_term_label(given[i], max_cps);
        } else {
            snprintf(num, sizeof num, "%d", i);
            l[i] = av_strdup(num);
        }
        if (!l[i]) {
            free_labels(l, n);
            return NULL;
        }
    }
    return l;
}

static int max_cps_of(char *const *l, int n) {
    int w = 0;
    for (int i = 0; i < n; i++) {
        int c = av_term_width(l[i]);
        if (c > w) w = c;
    }
    return w;
}

/* ---- colors ---- */

typedef struct heat_style {
    FILE *out;
    av_color_mode color; /* resolved: TRUECOLOR, 256 or NONE */
    av_cmap cmap;
    int log_scale;
    float lo, hi;   /* linear range */
    float llo, lhi; /* log10 range */
} heat_style;

static float value_t(const heat_style *st, float v) {
    if (isnan(v)) return v;
    float t;
    if (st->log_scale) {
        if (!(v > 0.0f)) return 0.0f;
        t = (log10f(v) - st->llo) / (st->lhi - st->llo);
    } else {
        t = (v - st->lo) / (st->hi - st->lo);
    }
    if (isnan(t)) return 0.0f; /* inf - inf */
    return t < 0.0f ? 0.0f : (t > 1.0f ? 1.0f : t);
}

static void end_line(const heat_style *st) {
    fputs(st->color == AV_COLOR_NONE ? "\n" : "\x1b[0m\n", st->out);
}

/* One character cell pair of the map: upper row color t_top, lower row t_bot (NaN allowed) or none. */
static void put_block(const heat_style *st, float t_top, int has_bot, float t_bot, int cw) {
    uint8_t a[3], b[3];
    av_cmap_rgb(st->cmap, t_top, a);
    av_cmap_rgb(st->cmap, t_bot, b);
    if (st->color == AV_COLOR_TRUECOLOR) {
        fprintf(st->out, "\x1b[38;2;%d;%d;%d", a[0], a[1], a[2]);
        if (has_bot)
            fprintf(st->out, ";48;2;%d;%d;%dm", b[0], b[1], b[2]);
        else
            fputs(";49m", st->out);
    } else {
        fprintf(st->out, "\x1b[38;5;%d", av_rgb_to_xterm256(a));
        if (has_bot)
            fprintf(st->out, ";48;5;%dm", av_rgb_to_xterm256(b));
        else
            fputs(";49m", st->out);
    }
    for (int k = 0; k < cw; k++)
        fputs(HALF_BLOCK, st->out);
}

static char ramp_char(float t) {
    if (isnan(t)) return '?';
    int i = (int)(t * 10.0f);
    return k_ramp[i > 9 ? 9 : (i < 0 ? 0 : i)];
}

av_color_mode av_term_resolve_color(av_color_mode m) {
    if (m != AV_COLOR_AUTO) return m;
    const char *ct = getenv("COLORTERM");
    return ct && (strcmp(ct, "truecolor") == 0 || strcmp(ct, "24bit") == 0) ? AV_COLOR_TRUECOLOR
                                                                            : AV_COLOR_256;
}

void av_term_put_colors(FILE *out, av_color_mode m, const uint8_t fg[3], const uint8_t bg[3]) {
    if (m == AV_COLOR_NONE) return;
    if (m == AV_COLOR_TRUECOLOR) {
        if (fg) fprintf(out, "\x1b[38;2;%d;%d;%dm", fg[0], fg[1], fg[2]);
        if (bg) fprintf(out, "\x1b[48;2;%d;%d;%dm", bg[0], bg[1], bg[2]);
    } else {
        if (fg) fprintf(out, "\x1b[38;5;%dm", av_rgb_to_xterm256(fg));
        if (bg) fprintf(out, "\x1b[48;5;%dm", av_rgb_to_xterm256(bg));
    }
}

/* One colorbar cell (background color and a space; a ramp character in NONE mode). */
static void put_bar_cell(const heat_style *st, float t) {
    if (st->color == AV_COLOR_NONE) {
        fputc(ramp_char(t), st->out);
        return;
    }
    uint8_t c[3];
    av_cmap_rgb(st->cmap, t, c);
    av_term_put_colors(st->out, st->color, NULL, c);
    fputc(' ', st->out);
}

/* ---- pooling ---- */

static float pool_combine(float cur, float v, int by_abs) {
    if (isnan(v)) return cur;
    if (isnan(cur)) return v;
    if (by_abs) return fabsf(v) > fabsf(cur) ? v : cur;
    return v > cur ? v : cur;
}

static int ceil_div(int a, int b) { return (int)(((int64_t)a + b - 1) / b); }

static int n_digits(int v) {
    int d = 1;
    while (v >= 10) {
        v /= 10;
        d++;
    }
    return d;
}

/* Row label field width w shrunk so that the label area takes at most half of the terminal (half columns). */
static int fit_label_width(int w, int half, int color) {
    if ((color ? 2 * w + 2 : w + 1) > half) w = color ? (half - 2) / 2 : half - 1;
    return w < 1 ? 1 : w;
}

/* ---- the heatmap ---- */

/* One heatmap being drawn: the matrix and options, the layout chosen for the terminal, and the buffers it
 * owns (freed by heat_free whatever happens). Filled in steps: heat_labels, heat_layout, heat_pool, then
 * the put_* steps write title and notes, the map, the column labels and the colorbar. */
typedef struct heat {
    heat_style st;
    const av_term_params *p;
    int W, H;       /* terminal columns and rows */
    const float *m; /* (n_rows, n_cols) */
    int n_rows, n_cols;
    int color, rows_per_line; /* color: two matrix rows per text line (upper half block), else one */
    int fixed;                /* lines besides the map and column labels: title, colorbar, rows note */
    int lw, label_area;       /* row label field (code points); columns left of the map */
    int col_cap;              /* columns left for the map */
    int fr, fc;               /* rows / columns pooled into one cell */
    int gr, gc;               /* the pooled grid: gr x gc cells */
    int cw, map_w;            /* characters per cell; map width in characters */
    int vl;                   /* lines of vertical column labels (fc == 1) */
    const float *cells;       /* (gr, gc): m, or grid when pooled */
    char **rlab, **clab;      /* sanitized row / column labels (n_rlab, n_clab) */
    int n_rlab, n_clab;
    float *grid; /* (gr, gc): the pooled matrix, when downsampled */
    char *title, *ruler;
} heat;

static void heat_free(heat *h) {
    free_labels(h->rlab, h->n_rlab);
    free_labels(h->clab, h->n_clab);
    free(h->grid);
    free(h->title);
    free(h->ruler);
}

static int heat_labels(heat *h, const char *const *row_labels, const char *const *col_labels, av_err *err) {
    h->rlab = make_labels(row_labels, h->n_rows, 1, h->n_rows, LABEL_MAX_CPS);
    h->n_rlab = h->n_rows;
    h->clab = make_labels(col_labels, h->n_cols, 1, h->n_cols, COL_LABEL_MAX_LINES);
    h->n_clab = h->n_cols;
    return h->rlab && h->clab ? 0 : av_errf(err, "heatmap: out of memory");
}

/* Sets the row label width and what follows from it: label area, map columns and column pooling. */
static int heat_set_label_width(heat *h, int lw, av_err *err) {
    h->lw = lw;
    h->label_area = h->color ? 2 * lw + 2 : lw + 1;
    h->col_cap = h->W - h->label_area;
    if (h->col_cap < 1) return av_errf(err, "heatmap: terminal width %d is too small", h->W);
    h->fc = ceil_div(h->n_cols, h->col_cap);
    return 0;
}

/* Row label field: token labels while rows are shown one by one, index ranges once they are pooled. Column
 * labels: vertical (up to vl_want lines) while columns are shown one by one, else a ruler and a key-range
 * note (2 lines). Columns are pooled by fc so that they fit the width, rows by fr so that they fit the
 * height. */
static int heat_layout(heat *h, av_err *err) {
    int half = h->W / 2;
    int lw_tok = max_cps_of(h->rlab, h->n_rlab);
    if (lw_tok > LABEL_MAX_CPS) lw_tok = LABEL_MAX_CPS;
    lw_tok = fit_label_width(lw_tok, half, h->color);
    int lw_rng = fit_label_width(2 * n_digits(h->n_rows - 1) + 1, half, h->color);
    int needed_lines = ceil_div(h->n_rows, h->rows_per_line);
    int vl_want = max_cps_of(h->clab, h->n_clab);
    if (vl_want > COL_LABEL_MAX_LINES) vl_want = COL_LABEL_MAX_LINES;
    if (vl_want < 1) vl_want = 1;

    h->fr = 1;
    h->vl = 0;
    if (heat_set_label_width(h, lw_tok, err)) return -1;
    if (h->fc == 1 && needed_lines <= h->H - h->fixed - 1) {
        h->vl =
            h->H - h->fixed - needed_lines; /* everything fits: as many label lines as there is room for */
        if (h->vl > vl_want) h->vl = vl_want;
    } else if (h->fc > 1 && needed_lines <= h->H - h->fixed - 3) {
        /* only the columns are pooled: downsampling note, ruler, key-range note */
    } else {
        if (heat_set_label_width(h, lw_rng, err)) return -1;
        int col_lines = 2;
        if (h->fc == 1) { /* column labels get at most a quarter of the height */
            h->vl = (h->H - h->fixed - 1) / 4;
            if (h->vl > vl_want) h->vl = vl_want;
            if (h->vl < 1) h->vl = 1;
            col_lines = h->vl;
        }
        int lines_cap = h->H - h->fixed - 1 - col_lines;
        if (lines_cap < 1) lines_cap = 1;
        h->fr = ceil_div(h->n_rows, lines_cap * h->rows_per_line);
    }
    h->gr = ceil_div(h->n_rows, h->fr);
    h->gc = ceil_div(h->n_cols, h->fc);
    h->cw = 2 * h->gc <= h->col_cap ? 2 : 1;
    h->map_w = h->gc * h->cw;
    return 0;
}

/* Downsampling: range labels for pooled rows, and the grid of block maxima (largest |value| for the
 * diverging map). */
static int heat_pool(heat *h, av_err *err) {
    h->cells = h->m;
    if (h->fr > 1) {
        char **rl = make_labels(NULL, h->gr, h->fr, h->n_rows, LABEL_MAX_CPS);
        if (!rl) return av_errf(err, "heatmap: out of memory");
        free_labels(h->rlab, h->n_rlab);
        h->rlab = rl;
        h->n_rlab = h->gr;
    }
    if (h->fr == 1 && h->fc == 1) return 0;
    size_t gn = (size_t)h->gr * (size_t)h->gc;
    h->grid = malloc(gn * sizeof *h->grid);
    if (!h->grid) return av_errf(err, "heatmap: out of memory");
    int by_abs = h->p->cmap == AV_CMAP_DIVERGING;
    for (size_t k = 0; k < gn; k++)
        h->grid[k] = NAN;
    for (int i = 0; i < h->n_rows; i++) {
        float *g = h->grid + (size_t)(i / h->fr) * (size_t)h->gc;
        const float *row = h->m + (size_t)i * (size_t)h->n_cols;
        for (int j = 0; j < h->n_cols; j++)
            g[j / h->fc] = pool_combine(g[j / h->fc], row[j], by_abs);
    }
    h->cells = h->grid;
    return 0;
}

/* Title, downsampling note and the two-rows-per-line note. */
static int put_header(heat *h, av_err *err) {
    FILE *out = h->st.out;
    if (h->p->title) {
        h->title = av_term_label(h->p->title, h->W);
        if (!h->title) return av_errf(err, "heatmap: out of memory");
        put_trunc(out, h->title, h->W);
        end_line(&h->st);
    }
    if (h->fr > 1 || h->fc > 1) {
        char note[160];
        const char *how = h->p->cmap == AV_CMAP_DIVERGING ? "largest |value|" : "max";
        if (h->fr == h->fc)
            snprintf(note, sizeof note, "(downsampled %dx: %s of each %dx%d block)", h->fr, how, h->fr,
                     h->fc);
        else
            snprintf(note, sizeof note, "(downsampled %dx%d: %s of each %dx%d block)", h->fr, h->fc, how,
                     h->fr, h->fc);
        put_trunc(out, note, h->W);
        end_line(&h->st);
    }
    if (h->color) {
        put_trunc(out, "2 query rows per line: " HALF_BLOCK " upper = left label, lower = right label", h->W);
        end_line(&h->st);
    }
    return 0;
}

/* The map: per text line one (ASCII) or two (color) rows of cells, each after its row label. */
static void put_map(const heat *h) {
    FILE *out = h->st.out;
    for (int r0 = 0; r0 < h->gr; r0 += h->rows_per_line) {
        int r1 = r0 + 1;
        int has_bot = h->color && r1 < h->gr;
        av_term_put_field(out, h->rlab[r0], h->lw);
        fputc(' ', out);
        if (h->color) {
            av_term_put_field(out, has_bot ? h->rlab[r1] : "", h->lw);
            fputc(' ', out);
        }
        const float *top_row = h->cells + (size_t)r0 * (size_t)h->gc;
        const float *bot_row = has_bot ? h->cells + (size_t)r1 * (size_t)h->gc : NULL;
        for (int j = 0; j < h->gc; j++) {
            float tt = value_t(&h->st, top_row[j]);
            if (h->color) {
                put_block(&h->st, tt, has_bot, bot_row ? value_t(&h->st, bot_row[j]) : 0.0f, h->cw);
            } else {
                char ch = ramp_char(tt);
                for (int k = 0; k < h->cw; k++)
                    fputc(ch, out);
            }
        }
        end_line(&h->st);
    }
}

/* Column labels written downwards, one code point per line (an ellipsis when cut). */
static void put_vertical_labels(const heat *h) {
    FILE *out = h->st.out;
    for (int line = 0; line < h->vl; line++) {
        put_spaces(out, h->label_area);
        for (int j = 0; j < h->gc; j++) {
            const char *s = h->clab[j];
            int n = av_term_width(s);
            if (line < n && line == h->vl - 1 && n > h->vl) {
                fputs(ELLIPSIS, out);
            } else if (line < n) {
                size_t from = cp_prefix_bytes(s, line);
                size_t to = cp_prefix_bytes(s, line + 1);
                fwrite(s + from, 1, to - from, out);
            } else {
                fputc(' ', out);
            }
            put_spaces(out, h->cw - 1);
        }
        end_line(&h->st);
    }
}

/* Pooled columns: a ruler "^start" every few cells, then a note of the key range of each cell, e.g.
 * "keys per cell: 0-12, 13-25, ..., 299 (13 each)". */
static int put_ruler(heat *h, av_err *err) {
    FILE *out = h->st.out;
    int fc = h->fc, gc = h->gc, cw = h->cw, map_w = h->map_w;
    h->ruler = malloc((size_t)map_w + 1);
    if (!h->ruler) return av_errf(err, "heatmap: out of memory");
    memset(h->ruler, ' ', (size_t)map_w);
    h->ruler[map_w] = 0;
    int need = (n_digits(h->n_cols - 1) + 2 + cw - 1) / cw; /* cells one tick label takes, with a gap */
    static const int steps[] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000};
    int step = steps[sizeof steps / sizeof steps[0] - 1];
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        if (steps[k] >= need) {
            step = steps[k];
            break;
        }
    }
    for (int c = 0; c < gc; c += step) {
        char tick[24];
        int len = snprintf(tick, sizeof tick, "^%d", c * fc);
        int pos = c * cw;
        if (pos + len > map_w) break;
        memcpy(h->ruler + pos, tick, (size_t)len);
    }
    put_spaces(out, h->label_area);
    fputs(h->ruler, out);
    end_line(&h->st);
    char note[200], last[32];
    int last_a = (gc - 1) * fc;
    if (last_a == h->n_cols - 1)
        snprintf(last, sizeof last, "%d", last_a);
    else
        snprintf(last, sizeof last, "%d-%d", last_a, h->n_cols - 1);
    if (gc > 3)
        snprintf(note, sizeof note, "keys per cell: 0-%d, %d-%d, ..., %s (%d each)", fc - 1, fc, 2 * fc - 1,
                 last, fc);
    else if (gc == 3)
        snprintf(note, sizeof note, "keys per cell: 0-%d, %d-%d, %s", fc - 1, fc, 2 * fc - 1, last);
    else
        snprintf(note, sizeof note, "keys per cell: 0-%d%s%s", fc - 1, gc == 2 ? ", " : "",
                 gc == 2 ? last : "");
    put_trunc(out, note, h->W);
    end_line(&h->st);
    return 0;
}

/* The colorbar (20 to 40 cells under the map) and its end values. */
static void put_colorbar(const heat *h) {
    const heat_style *st = &h->st;
    FILE *out = st->out;
    int W = h->W, label_area = h->label_area;
    int bw = h->map_w < 20 ? 20 : (h->map_w > 40 ? 40 : h->map_w);
    if (bw > W - label_area) bw = W - label_area;
    put_spaces(out, label_area);
    for (int i = 0; i < bw; i++)
        put_bar_cell(st, bw > 1 ? (float)i / (float)(bw - 1) : 1.0f);
    end_line(st);
    char lo_s[32], hi_s[32];
    double lo = st->log_scale ? pow(10.0, (double)st->llo) : (double)st->lo;
    double hi = st->log_scale ? pow(10.0, (double)st->lhi) : (double)st->hi;
    snprintf(lo_s, sizeof lo_s, "%.3g", lo);
    snprintf(hi_s, sizeof hi_s, "%.3g", hi);
    const char *suffix = st->log_scale ? " (log scale)" : "";
    int ll = (int)strlen(lo_s), hl = (int)strlen(hi_s), sl = (int)strlen(suffix);
    int gap = ll + 1 + hl <= bw ? bw - ll - hl : 1; /* the max value ends under the bar's end */
    char vals[160];
    snprintf(vals, sizeof vals, "%s%*s%s%s", lo_s, gap, "", hi_s, suffix);
    int len = ll + gap + hl + sl;
    if (label_area + len <= W)
        put_spaces(out, label_area);
    else if (len > W)
        snprintf(vals, sizeof vals, "%s %s%s", lo_s, hi_s, st->log_scale ? " (log)" : "");
    put_trunc(out, vals, W);
    end_line(st);
}

/* The color range: the caller's [vmin, vmax], else [0, max] ([min, max] when that is empty), symmetric
 * around 0 for the diverging map; the log scale spans the 4 decades below the top. */
static void heat_color_range(heat_style *st, const av_term_params *p, const float *m, size_t numel) {
    float vmax_f = -INFINITY, vmin_f = INFINITY, amax_f = 0.0f;
    for (size_t i = 0; i < numel; i++) {
        float v = m[i];
        if (!isfinite(v)) continue;
        if (v > vmax_f) vmax_f = v;
        if (v < vmin_f) vmin_f = v;
        if (fabsf(v) > amax_f) amax_f = fabsf(v);
    }
    int any_finite = vmax_f >= vmin_f;
    int user_range = p->vmin < p->vmax;
    if (user_range) {
        st->lo = p->vmin;
        st->hi = p->vmax;
    } else if (p->cmap == AV_CMAP_DIVERGING) {
        float a = amax_f > 0.0f ? amax_f : 1.0f;
        st->lo = -a;
        st->hi = a;
    } else {
        st->lo = 0.0f;
        st->hi = any_finite ? vmax_f : 1.0f;
        if (!(st->hi > st->lo) && any_finite) {
            st->lo = vmin_f;
            st->hi = vmax_f;
        }
        if (!(st->hi > st->lo)) st->hi = st->lo + 1.0f;
    }
    float top = user_range ? p->vmax : (any_finite ? vmax_f : 0.0f);
    st->lhi = top > 0.0f ? log10f(top) : 0.0f;
    st->llo = st->lhi - 4.0f;
}

/* Checks the arguments; 0 or -1 with a message. */
static int check_args(FILE *out, const float *m, int n_rows, int n_cols, const av_term_params *p,
                      size_t *numel, av_err *err) {
    if (!out) return av_errf(err, "heatmap: no output stream");
    if (!m) return av_errf(err, "heatmap: matrix data is NULL");
    if (n_rows <= 0 || n_cols <= 0)
        return av_errf(err, "heatmap: bad matrix shape %d x %d (both must be > 0)", n_rows, n_cols);
    if (!av_mul_size((size_t)n_rows, (size_t)n_cols, numel))
        return av_errf(err, "heatmap: matrix %d x %d is too large", n_rows, n_cols);
    if (p->width < 0 || p->height < 0)
        return av_errf(err, "heatmap: bad terminal size %d x %d", p->width, p->height);
    if ((int)p->color < (int)AV_COLOR_AUTO || (int)p->color > (int)AV_COLOR_NONE)
        return av_errf(err, "heatmap: bad color mode %d", (int)p->color);
    if ((int)p->cmap < (int)AV_CMAP_VIRIDIS || (int)p->cmap > (int)AV_CMAP_DIVERGING)
        return av_errf(err, "heatmap: bad colormap %d", (int)p->cmap);
    if (!isfinite(p->vmin) || !isfinite(p->vmax) || p->vmin > p->vmax)
        return av_errf(err, "heatmap: bad color range [%g, %g]", (double)p->vmin, (double)p->vmax);
    return 0;
}

int av_term_heatmap(FILE *out, const float *m, int n_rows, int n_cols, const char *const *row_labels,
                    const char *const *col_labels, const av_term_params *p, av_err *err) {
    av_term_params prm = p ? *p : av_term_default_params();
    size_t numel = 0;
    if (check_args(out, m, n_rows, n_cols, &prm, &numel, err)) return -1;
    heat h;
    memset(&h, 0, sizeof h);
    h.p = &prm;
    h.m = m;
    h.n_rows = n_rows;
    h.n_cols = n_cols;
    h.W = prm.width;
    h.H = prm.height;
    av_term_detect_size(out, &h.W, &h.H);
    if (h.W > TERM_MAX_DIM) h.W = TERM_MAX_DIM;
    if (h.H > TERM_MAX_DIM) h.H = TERM_MAX_DIM;

    h.st.out = out;
    h.st.cmap = prm.cmap;
    h.st.log_scale = prm.log_scale != 0;
    h.st.color = av_term_resolve_color(prm.color);
    heat_color_range(&h.st, &prm, m, numel);
    h.color = h.st.color != AV_COLOR_NONE;
    h.rows_per_line = h.color ? 2 : 1;
    h.fixed = (prm.title ? 1 : 0) + 2 /* colorbar */ + (h.color ? 1 : 0) /* rows note */;

    int rc = heat_labels(&h, row_labels, col_labels, err) || heat_layout(&h, err) || heat_pool(&h, err) ||
             put_header(&h, err);
    if (rc == 0) {
        put_map(&h);
        if (h.fc == 1)
            put_vertical_labels(&h);
        else
            rc = put_ruler(&h, err);
    }
    if (rc == 0) put_colorbar(&h);
    if (rc == 0 && ferror(out)) rc = av_errf(err, "heatmap: write failed");
    heat_free(&h);
    return rc ? -1 : 0;
}
