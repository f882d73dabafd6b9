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
static char *label_sanitize(const char *s, int max_cps) {
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

static int cp_count(const char *s) {
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

/* Writes sanitized s in exactly w code points: padded with spaces, or cut with an ellipsis. */
static void put_field(FILE *out, const char *s, int w) {
    if (w <= 0) return;
    int n = cp_count(s);
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
    int n = cp_count(s);
    put_field(out, s, n < w ? n : w);
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
            l[i] = label_sanitize(given[i], max_cps);
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
        int c = cp_count(l[i]);
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

/* One colorbar cell (background color and a space; a ramp character in NONE mode). */
static void put_bar_cell(const heat_style *st, float t) {
    if (st->color == AV_COLOR_NONE) {
        fputc(ramp_char(t), st->out);
        return;
    }
    uint8_t c[3];
    av_cmap_rgb(st->cmap, t, c);
    if (st->color == AV_COLOR_TRUECOLOR)
        fprintf(st->out, "\x1b[48;2;%d;%d;%dm ", c[0], c[1], c[2]);
    else
        fprintf(st->out, "\x1b[48;5;%dm ", av_rgb_to_xterm256(c));
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

/* Resources of one heatmap, freed by the caller whatever happens. */
typedef struct heat_bufs {
    char **rlab, **clab; /* sanitized row / column labels */
    int n_rlab, n_clab;
    float *grid; /* (gr, gc): the pooled matrix, when downsampled */
    char *title, *ruler;
} heat_bufs;

/* Lays out and draws the heatmap once the color range is known. */
static int heat_draw(const heat_style *stp, const av_term_params *p, int W, int H, const float *m, int n_rows,
                     int n_cols, const char *const *row_labels, const char *const *col_labels, heat_bufs *b,
                     av_err *err) {
    const heat_style st = *stp;
    const av_term_params prm = *p;
    FILE *out = st.out;

    /* ---- layout ---- */
    int color = st.color != AV_COLOR_NONE;
    int rows_per_line = color ? 2 : 1;
    int fixed = (prm.title ? 1 : 0) + 2 /* colorbar */ + (color ? 1 : 0) /* rows note */;

    b->rlab = make_labels(row_labels, n_rows, 1, n_rows, LABEL_MAX_CPS);
    b->n_rlab = n_rows;
    b->clab = make_labels(col_labels, n_cols, 1, n_cols, COL_LABEL_MAX_LINES);
    b->n_clab = n_cols;
    if (!b->rlab || !b->clab) return av_errf(err, "heatmap: out of memory");

    /* Row label field: token labels (lw_tok) while rows are shown one by one, index ranges (lw_rng) once they
     * are pooled. Column labels: vertical (up to vl_want lines) while columns are shown one by one, else a
     * ruler and a key-range note (2 lines). Columns are pooled by fc so that they fit the width, rows by fr
     * so that they fit the height. */
    int half = W / 2;
    int lw_tok = max_cps_of(b->rlab, b->n_rlab);
    if (lw_tok > LABEL_MAX_CPS) lw_tok = LABEL_MAX_CPS;
    lw_tok = fit_label_width(lw_tok, half, color);
    int lw_rng = fit_label_width(2 * n_digits(n_rows - 1) + 1, half, color);
    int needed_lines = ceil_div(n_rows, rows_per_line);
    int vl_want = max_cps_of(b->clab, b->n_clab);
    if (vl_want > COL_LABEL_MAX_LINES) vl_want = COL_LABEL_MAX_LINES;
    if (vl_want < 1) vl_want = 1;

    int lw = lw_tok, fr = 1, fc, vl = 0;
    int label_area = color ? 2 * lw + 2 : lw + 1;
    int col_cap = W - label_area;
    if (col_cap < 1) return av_errf(err, "heatmap: terminal width %d is too small", W);
    fc = ceil_div(n_cols, col_cap);
    if (fc == 1 && needed_lines <= H - fixed - 1) {
        vl = H - fixed - needed_lines; /* everything fits: as many label lines as there is room for */
        if (vl > vl_want) vl = vl_want;
    } else if (fc > 1 && needed_lines <= H - fixed - 3) {
        /* only the columns are pooled: downsampling note, ruler, key-range note */
    } else {
        lw = lw_rng;
        label_area = color ? 2 * lw + 2 : lw + 1;
        col_cap = W - label_area;
        if (col_cap < 1) return av_errf(err, "heatmap: terminal width %d is too small", W);
        fc = ceil_div(n_cols, col_cap);
        int col_lines = 2;
        if (fc == 1) { /* column labels get at most a quarter of the height */
            vl = (H - fixed - 1) / 4;
            if (vl > vl_want) vl = vl_want;
            if (vl < 1) vl = 1;
            col_lines = vl;
        }
        int lines_cap = H - fixed - 1 - col_lines;
        if (lines_cap < 1) lines_cap = 1;
        fr = ceil_div(n_rows, lines_cap * rows_per_line);
    }

    int gr = ceil_div(n_rows, fr), gc = ceil_div(n_cols, fc);
    int cw = 2 * gc <= col_cap ? 2 : 1;
    int map_w = gc * cw;
    if (fr > 1) {
        char **rl = make_labels(NULL, gr, fr, n_rows, LABEL_MAX_CPS);
        if (!rl) return av_errf(err, "heatmap: out of memory");
        free_labels(b->rlab, b->n_rlab);
        b->rlab = rl;
        b->n_rlab = gr;
    }
    if (fr > 1 || fc > 1) {
        size_t gn = (size_t)gr * (size_t)gc;
        b->grid = malloc(gn * sizeof *b->grid);
        if (!b->grid) return av_errf(err, "heatmap: out of memory");
        int by_abs = prm.cmap == AV_CMAP_DIVERGING;
        for (size_t k = 0; k < gn; k++)
            b->grid[k] = NAN;
        for (int i = 0; i < n_rows; i++) {
            float *g = b->grid + (size_t)(i / fr) * (size_t)gc;
            const float *row = m + (size_t)i * (size_t)n_cols;
            for (int j = 0; j < n_cols; j++)
                g[j / fc] = pool_combine(g[j / fc], row[j], by_abs);
        }
    }
    const float *cells = b->grid ? b->grid : m; /* (gr, gc) */

    /* ---- title and notes ---- */
    if (prm.title) {
        b->title = label_sanitize(prm.title, W);
        if (!b->title) return av_errf(err, "heatmap: out of memory");
        put_trunc(out, b->title, W);
        end_line(&st);
    }
    if (fr > 1 || fc > 1) {
        char note[160];
        const char *how = prm.cmap == AV_CMAP_DIVERGING ? "largest |value|" : "max";
        if (fr == fc)
            snprintf(note, sizeof note, "(downsampled %dx: %s of each %dx%d block)", fr, how, fr, fc);
        else
            snprintf(note, sizeof note, "(downsampled %dx%d: %s of each %dx%d block)", fr, fc, how, fr, fc);
        put_trunc(out, note, W);
        end_line(&st);
    }
    if (color) {
        put_trunc(out, "2 query rows per line: " HALF_BLOCK " upper = left label, lower = right label", W);
        end_line(&st);
    }

    /* ---- the map ---- */
    for (int r0 = 0; r0 < gr; r0 += rows_per_line) {
        int r1 = r0 + 1;
        int has_bot = color && r1 < gr;
        put_field(out, b->rlab[r0], lw);
        fputc(' ', out);
        if (color) {
            put_field(out, has_bot ? b->rlab[r1] : "", lw);
            fputc(' ', out);
        }
        const float *top_row = cells + (size_t)r0 * (size_t)gc;
        const float *bot_row = has_bot ? cells + (size_t)r1 * (size_t)gc : NULL;
        for (int j = 0; j < gc; j++) {
            float tt = value_t(&st, top_row[j]);
            if (color) {
                put_block(&st, tt, has_bot, bot_row ? value_t(&st, bot_row[j]) : 0.0f, cw);
            } else {
                char ch = ramp_char(tt);
                for (int k = 0; k < cw; k++)
                    fputc(ch, out);
            }
        }
        end_line(&st);
    }

    /* ---- column labels ---- */
    if (fc == 1) {
        for (int line = 0; line < vl; line++) {
            put_spaces(out, label_area);
            for (int j = 0; j < gc; j++) {
                const char *s = b->clab[j];
                int n = cp_count(s);
                if (line < n && line == vl - 1 && n > vl) {
                    fputs(ELLIPSIS, out);
                } else if (line < n) {
                    size_t from = cp_prefix_bytes(s, line);
                    size_t to = cp_prefix_bytes(s, line + 1);
                    fwrite(s + from, 1, to - from, out);
                } else {
                    fputc(' ', out);
                }
                put_spaces(out, cw - 1);
            }
            end_line(&st);
        }
    } else {
        /* ruler: "^start" every few cells, then a note of the key range of each cell */
        b->ruler = malloc((size_t)map_w + 1);
        if (!b->ruler) return av_errf(err, "heatmap: out of memory");
        memset(b->ruler, ' ', (size_t)map_w);
        b->ruler[map_w] = 0;
        int need = (n_digits(n_cols - 1) + 2 + cw - 1) / cw; /* cells one tick label takes, with a gap */
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
            memcpy(b->ruler + pos, tick, (size_t)len);
        }
        put_spaces(out, label_area);
        fputs(b->ruler, out);
        end_line(&st);
        /* e.g. "keys per cell: 0-12, 13-25, ..., 299 (13 each)" */
        char note[200], last[32];
        int last_a = (gc - 1) * fc;
        if (last_a == n_cols - 1)
            snprintf(last, sizeof last, "%d", last_a);
        else
            snprintf(last, sizeof last, "%d-%d", last_a, n_cols - 1);
        if (gc > 3) {
            snprintf(note, sizeof note, "keys per cell: 0-%d, %d-%d, ..., %s (%d each)", fc - 1, fc,
                     2 * fc - 1, last, fc);
        } else if (gc == 3) {
            snprintf(note, sizeof note, "keys per cell: 0-%d, %d-%d, %s", fc - 1, fc, 2 * fc - 1, last);
        } else {
            snprintf(note, sizeof note, "keys per cell: 0-%d%s%s", fc - 1, gc == 2 ? ", " : "",
                     gc == 2 ? last : "");
        }
        put_trunc(out, note, W);
        end_line(&st);
    }

    /* ---- colorbar ---- */
    {
        int bw = map_w < 20 ? 20 : (map_w > 40 ? 40 : map_w);
        if (bw > W - label_area) bw = W - label_area;
        put_spaces(out, label_area);
        for (int i = 0; i < bw; i++)
            put_bar_cell(&st, bw > 1 ? (float)i / (float)(bw - 1) : 1.0f);
        end_line(&st);
        char lo_s[32], hi_s[32];
        double lo = st.log_scale ? pow(10.0, (double)st.llo) : (double)st.lo;
        double hi = st.log_scale ? pow(10.0, (double)st.lhi) : (double)st.hi;
        snprintf(lo_s, sizeof lo_s, "%.3g", lo);
        snprintf(hi_s, sizeof hi_s, "%.3g", hi);
        const char *suffix = st.log_scale ? " (log scale)" : "";
        int ll = (int)strlen(lo_s), hl = (int)strlen(hi_s), sl = (int)strlen(suffix);
        int gap = ll + 1 + hl <= bw ? bw - ll - hl : 1; /* the max value ends under the bar's end */
        char vals[160];
        snprintf(vals, sizeof vals, "%s%*s%s%s", lo_s, gap, "", hi_s, suffix);
        int len = ll + gap + hl + sl;
        if (label_area + len <= W)
            put_spaces(out, label_area);
        else if (len > W)
            snprintf(vals, sizeof vals, "%s %s%s", lo_s, hi_s, st.log_scale ? " (log)" : "");
        put_trunc(out, vals, W);
        end_line(&st);
    }

    return 0;
}

int av_term_heatmap(FILE *out, const float *m, int n_rows, int n_cols, const char *const *row_labels,
                    const char *const *col_labels, const av_term_params *p, av_err *err) {
    if (!out) return av_errf(err, "heatmap: no output stream");
    if (!m) return av_errf(err, "heatmap: matrix data is NULL");
    if (n_rows <= 0 || n_cols <= 0)
        return av_errf(err, "heatmap: bad matrix shape %d x %d (both must be > 0)", n_rows, n_cols);
    size_t numel;
    if (!av_mul_size((size_t)n_rows, (size_t)n_cols, &numel))
        return av_errf(err, "heatmap: matrix %d x %d is too large", n_rows, n_cols);

    av_term_params prm = p ? *p : av_term_default_params();
    if (prm.width < 0 || prm.height < 0)
        return av_errf(err, "heatmap: bad terminal size %d x %d", prm.width, prm.height);
    if ((int)prm.color < (int)AV_COLOR_AUTO || (int)prm.color > (int)AV_COLOR_NONE)
        return av_errf(err, "heatmap: bad color mode %d", (int)prm.color);
    if ((int)prm.cmap < (int)AV_CMAP_VIRIDIS || (int)prm.cmap > (int)AV_CMAP_DIVERGING)
        return av_errf(err, "heatmap: bad colormap %d", (int)prm.cmap);
    if (!isfinite(prm.vmin) || !isfinite(prm.vmax) || prm.vmin > prm.vmax)
        return av_errf(err, "heatmap: bad color range [%g, %g]", (double)prm.vmin, (double)prm.vmax);

    int W = prm.width, H = prm.height;
    av_term_detect_size(out, &W, &H);
    if (W > TERM_MAX_DIM) W = TERM_MAX_DIM;
    if (H > TERM_MAX_DIM) H = TERM_MAX_DIM;

    heat_style st;
    memset(&st, 0, sizeof st);
    st.out = out;
    st.cmap = prm.cmap;
    st.log_scale = prm.log_scale != 0;
    st.color = prm.color;
    if (st.color == AV_COLOR_AUTO) {
        const char *ct = getenv("COLORTERM");
        st.color = ct && (strcmp(ct, "truecolor") == 0 || strcmp(ct, "24bit") == 0) ? AV_COLOR_TRUECOLOR
                                                                                    : AV_COLOR_256;
    }

    /* ---- color range ---- */
    float vmax_f = -INFINITY, vmin_f = INFINITY, amax_f = 0.0f;
    for (size_t i = 0; i < numel; i++) {
        float v = m[i];
        if (!isfinite(v)) continue;
        if (v > vmax_f) vmax_f = v;
        if (v < vmin_f) vmin_f = v;
        if (fabsf(v) > amax_f) amax_f = fabsf(v);
    }
    int any_finite = vmax_f >= vmin_f;
    int user_range = prm.vmin < prm.vmax;
    if (user_range) {
        st.lo = prm.vmin;
        st.hi = prm.vmax;
    } else if (prm.cmap == AV_CMAP_DIVERGING) {
        float a = amax_f > 0.0f ? amax_f : 1.0f;
        st.lo = -a;
        st.hi = a;
    } else {
        st.lo = 0.0f;
        st.hi = any_finite ? vmax_f : 1.0f;
        if (!(st.hi > st.lo) && any_finite) {
            st.lo = vmin_f;
            st.hi = vmax_f;
        }
        if (!(st.hi > st.lo)) st.hi = st.lo + 1.0f;
    }
    float top = user_range ? prm.vmax : (any_finite ? vmax_f : 0.0f);
    st.lhi = top > 0.0f ? log10f(top) : 0.0f;
    st.llo = st.lhi - 4.0f;

    heat_bufs b;
    memset(&b, 0, sizeof b);
    int rc = heat_draw(&st, &prm, W, H, m, n_rows, n_cols, row_labels, col_labels, &b, err);
    if (rc == 0 && ferror(out)) rc = av_errf(err, "heatmap: write failed");
    free_labels(b.rlab, b.n_rlab);
    free_labels(b.clab, b.n_clab);
    free(b.grid);
    free(b.title);
    free(b.ruler);
    return rc;
}
