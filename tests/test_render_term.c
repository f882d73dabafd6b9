/* Tests of the render module: colormaps against matplotlib's published values, the xterm-256 fallback, and
 * the terminal heatmap (escapes, downsampling, ASCII mode, UTF-8 labels, argument checks). */
#include "harness.h"

#include "render/render.h"

#include <stdint.h>

#define HALF_BLOCK "\xe2\x96\x80"

/* Renders into a malloc'd NUL-terminated string (*s, caller frees). Returns av_term_heatmap's result. */
static int render(const float *m, int r, int c, const char *const *rl, const char *const *cl,
                  const av_term_params *p, char **s, av_err *err) {
    size_t len = 0;
    *s = NULL;
    FILE *f = open_memstream(s, &len);
    if (!f) return -2;
    int rc = av_term_heatmap(f, m, r, c, rl, cl, p, err);
    fclose(f);
    return rc;
}

/* Strict UTF-8 check: no overlongs, no surrogates, nothing above U+10FFFF, no truncated sequence. */
static int valid_utf8(const char *str) {
    const unsigned char *s = (const unsigned char *)str;
    while (*s) {
        unsigned c = *s;
        int n;
        unsigned lo = 0x80, hi = 0xBF;
        if (c < 0x80)
            n = 0;
        else if (c >= 0xC2 && c <= 0xDF)
            n = 1;
        else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else
            return 0;
        s++;
        for (int i = 0; i < n; i++, s++) {
            unsigned b = *s;
            unsigned l = i == 0 ? lo : 0x80, h = i == 0 ? hi : 0xBF;
            if (b < l || b > h) return 0;
        }
    }
    return 1;
}

static int count_substr(const char *s, const char *sub) {
    int n = 0;
    size_t k = strlen(sub);
    for (const char *p = strstr(s, sub); p; p = strstr(p + k, sub))
        n++;
    return n;
}

/* Display width of one line (code points outside escape sequences). */
static int line_width(const char *s, size_t len) {
    int w = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == 0x1b) {
            while (i < len && s[i] != 'm')
                i++;
            continue;
        }
        if ((c & 0xC0) != 0x80) w++;
    }
    return w;
}

static int max_line_width(const char *s) {
    int w = 0;
    while (*s) {
        const char *nl = strchr(s, '\n');
        size_t len = nl ? (size_t)(nl - s) : strlen(s);
        int lw = line_width(s, len);
        if (lw > w) w = lw;
        s += len + (nl ? 1 : 0);
    }
    return w;
}

static int near(const uint8_t rgb[3], unsigned hex) {
    int want[3] = {(int)(hex >> 16) & 0xff, (int)(hex >> 8) & 0xff, (int)hex & 0xff};
    for (int c = 0; c < 3; c++)
        if (abs((int)rgb[c] - want[c]) > 2) return 0;
    return 1;
}

static void test_cmap_matplotlib_values(void) {
    uint8_t c[3];
    av_cmap_rgb(AV_CMAP_VIRIDIS, 0.0f, c);
    CHECKF(near(c, 0x440154), "viridis(0) = %d,%d,%d", c[0], c[1], c[2]);
    av_cmap_rgb(AV_CMAP_VIRIDIS, 1.0f, c);
    CHECKF(near(c, 0xfde725), "viridis(1) = %d,%d,%d", c[0], c[1], c[2]);
    av_cmap_rgb(AV_CMAP_VIRIDIS, 0.5f, c);
    CHECKF(near(c, 0x21918c), "viridis(0.5) = %d,%d,%d", c[0], c[1], c[2]);
    av_cmap_rgb(AV_CMAP_VIRIDIS, 0.25f, c); /* matplotlib: #3b528b */
    CHECKF(near(c, 0x3b528b), "viridis(0.25) = %d,%d,%d", c[0], c[1], c[2]);
    av_cmap_rgb(AV_CMAP_VIRIDIS, 0.75f, c); /* matplotlib: #5ec962 */
    CHECKF(near(c, 0x5ec962), "viridis(0.75) = %d,%d,%d", c[0], c[1], c[2]);
    av_cmap_rgb(AV_CMAP_MAGMA, 0.0f, c);
    CHECKF(near(c, 0x000004), "magma(0) = %d,%d,%d", c[0], c[1], c[2]);
    av_cmap_rgb(AV_CMAP_MAGMA, 1.0f, c);
    CHECKF(near(c, 0xfcfdbf), "magma(1) = %d,%d,%d", c[0], c[1], c[2]);
    av_cmap_rgb(AV_CMAP_MAGMA, 0.5f, c); /* matplotlib: #b73779 */
    CHECKF(near(c, 0xb73779), "magma(0.5) = %d,%d,%d", c[0], c[1], c[2]);
}

static void test_cmap_clamp_nan_diverging(void) {
    uint8_t a[3], b[3];
    av_cmap_rgb(AV_CMAP_VIRIDIS, -3.0f, a);
    av_cmap_rgb(AV_CMAP_VIRIDIS, 0.0f, b);
    CHECK(memcmp(a, b, 3) == 0);
    av_cmap_rgb(AV_CMAP_MAGMA, 7.0f, a);
    av_cmap_rgb(AV_CMAP_MAGMA, 1.0f, b);
    CHECK(memcmp(a, b, 3) == 0);
    av_cmap_rgb(AV_CMAP_VIRIDIS, NAN, a);
    CHECK(a[0] == a[1] && a[1] == a[2] && a[0] > 64 && a[0] < 192);
    av_cmap_rgb(AV_CMAP_DIVERGING, 0.0f, a); /* blue */
    CHECK(a[2] > a[0] + 50);
    av_cmap_rgb(AV_CMAP_DIVERGING, 1.0f, a); /* red */
    CHECK(a[0] > a[2] + 50);
    av_cmap_rgb(AV_CMAP_DIVERGING, 0.5f, a); /* white */
    CHECK(a[0] > 230 && a[1] > 230 && a[2] > 230);
}

static void test_cmap_parse(void) {
    av_err err = {{0}};
    av_cmap cm = AV_CMAP_DIVERGING;
    CHECK(av_cmap_parse("viridis", &cm, &err) == 0 && cm == AV_CMAP_VIRIDIS);
    CHECK(av_cmap_parse("magma", &cm, &err) == 0 && cm == AV_CMAP_MAGMA);
    CHECK(av_cmap_parse("diverging", &cm, &err) == 0 && cm == AV_CMAP_DIVERGING);
    cm = AV_CMAP_VIRIDIS;
    CHECK(av_cmap_parse("RdBu", &cm, &err) == 0 && cm == AV_CMAP_DIVERGING);
    CHECK(strcmp(av_cmap_name(AV_CMAP_MAGMA), "magma") == 0);
    err.msg[0] = 0;
    CHECK(av_cmap_parse("jet", &cm, &err) == -1);
    CHECK(strstr(err.msg, "jet") != NULL);
    err.msg[0] = 0;
    CHECK(av_cmap_parse(NULL, &cm, &err) == -1 && err.msg[0]);
}

static void test_xterm256(void) {
    uint8_t black[3] = {0, 0, 0}, white[3] = {255, 255, 255}, red[3] = {255, 0, 0}, gray[3] = {128, 128, 128};
    uint8_t teal[3] = {0, 135, 135};
    CHECK(av_rgb_to_xterm256(black) == 16);
    CHECK(av_rgb_to_xterm256(white) == 231);
    CHECK(av_rgb_to_xterm256(red) == 196);
    CHECK(av_rgb_to_xterm256(gray) == 244);
    CHECK(av_rgb_to_xterm256(teal) == 16 + 6 * 2 + 2);
}

static void test_identity_truecolor(void) {
    float m[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    const char *labels[3] = {"a", "b", "c"};
    av_term_params p = av_term_default_params();
    p.width = 80;
    p.height = 24;
    p.color = AV_COLOR_TRUECOLOR;
    p.title = "identity";
    av_err err = {{0}};
    char *s = NULL;
    REQUIREF(render(m, 3, 3, labels, labels, &p, &s, &err) == 0, "%s", err.msg);
    /* line 1 holds rows 0 (fg) and 1 (bg); line 2 holds row 2 over the default background */
    CHECK(strstr(s, "\x1b[38;2;253;231;37;48;2;68;1;84m" HALF_BLOCK HALF_BLOCK) !=
          NULL); /* (0,0) over (1,0) */
    CHECK(strstr(s, "\x1b[38;2;68;1;84;48;2;253;231;37m" HALF_BLOCK HALF_BLOCK) !=
          NULL);                                                     /* (0,1) over (1,1) */
    CHECK(strstr(s, "\x1b[38;2;253;231;37;49m" HALF_BLOCK) != NULL); /* (2,2) */
    CHECK(count_substr(s, "38;2;253;231;37") + count_substr(s, "48;2;253;231;37m" HALF_BLOCK) == 3);
    CHECK(strstr(s, "identity") != NULL);
    CHECK(strstr(s, "downsampled") == NULL);
    /* every line resets colors at its end */
    int lines = count_substr(s, "\n");
    CHECK(lines > 0 && count_substr(s, "\x1b[0m\n") == lines);
    CHECK(valid_utf8(s));
    CHECK(max_line_width(s) <= 80);
    free(s);
}

/* Counts max-colored map cells: occurrences of the color as foreground or background on half-block lines. */
static int count_max_cells(const char *s, const char *fg, const char *bg) {
    int n = 0;
    while (*s) {
        const char *nl = strchr(s, '\n');
        size_t len = nl ? (size_t)(nl - s) : strlen(s);
        char *line = strndup(s, len);
        if (line && strstr(line, HALF_BLOCK)) n += count_substr(line, fg) + count_substr(line, bg);
        free(line);
        s += len + (nl ? 1 : 0);
    }
    return n;
}

static void test_downsample_keeps_single_peak(void) {
    int n = 1000;
    float *m = calloc((size_t)n * (size_t)n, sizeof *m);
    REQUIRE(m);
    m[(size_t)500 * (size_t)n + 500] = 1.0f;
    av_term_params p = av_term_default_params();
    p.width = 40;
    p.height = 40;
    p.color = AV_COLOR_TRUECOLOR;
    av_err err = {{0}};
    char *s = NULL;
    int rc = render(m, n, n, NULL, NULL, &p, &s, &err);
    free(m);
    REQUIREF(rc == 0, "%s", err.msg);
    CHECKF(count_max_cells(s, "38;2;253;231;37", "48;2;253;231;37") == 1, "max cells: %d",
           count_max_cells(s, "38;2;253;231;37", "48;2;253;231;37"));
    CHECK(strstr(s, "(downsampled ") != NULL);
    CHECK(strstr(s, "max of each ") != NULL);
    CHECK(max_line_width(s) <= 40);
    CHECK(count_substr(s, "\n") <= 40);
    CHECK(strstr(s, "0-") != NULL); /* range labels */
    CHECK(valid_utf8(s));
    free(s);

    /* the same through the 256-color fallback and the diverging map (pooled by largest |value|) */
    float *m2 = calloc((size_t)n * (size_t)n, sizeof *m2);
    REQUIRE(m2);
    m2[(size_t)10 * (size_t)n + 900] = -1.0f;
    m2[(size_t)700 * (size_t)n + 20] = 0.5f;
    p.color = AV_COLOR_256;
    p.cmap = AV_CMAP_DIVERGING;
    rc = render(m2, n, n, NULL, NULL, &p, &s, &err);
    free(m2);
    REQUIREF(rc == 0, "%s", err.msg);
    uint8_t blue[3];
    av_cmap_rgb(AV_CMAP_DIVERGING, 0.0f, blue);
    char fg[32], bg[32];
    snprintf(fg, sizeof fg, "38;5;%d;", av_rgb_to_xterm256(blue));
    snprintf(bg, sizeof bg, "48;5;%dm", av_rgb_to_xterm256(blue));
    CHECK(count_max_cells(s, fg, bg) == 1);
    CHECK(strstr(s, "38;2;") == NULL);
    CHECK(strstr(s, "largest |value|") != NULL);
    free(s);
}

static void test_none_mode_ascii(void) {
    float m[6] = {0, 0.5f, 1, 1, 0.25f, NAN};
    av_term_params p = av_term_default_params();
    p.width = 60;
    p.height = 20;
    p.color = AV_COLOR_NONE;
    av_err err = {{0}};
    char *s = NULL;
    REQUIREF(render(m, 2, 3, NULL, NULL, &p, &s, &err) == 0, "%s", err.msg);
    CHECK(strchr(s, 0x1b) == NULL);
    CHECK(strstr(s, HALF_BLOCK) == NULL);
    CHECK(strstr(s, "@@") != NULL); /* max cells, 2 characters wide */
    CHECK(strstr(s, "??") != NULL); /* NaN */
    free(s);

    /* a large matrix in NONE mode downsamples too, still with no escapes */
    int n = 300;
    float *big = calloc((size_t)n * (size_t)n, sizeof *big);
    REQUIRE(big);
    big[(size_t)150 * (size_t)n + 7] = 2.0f;
    int rc = render(big, n, n, NULL, NULL, &p, &s, &err);
    free(big);
    REQUIREF(rc == 0, "%s", err.msg);
    CHECK(strchr(s, 0x1b) == NULL);
    CHECK(strstr(s, "downsampled") != NULL);
    CHECK(max_line_width(s) <= 60);
    /* exactly one map cell at the top of the ramp, drawn with its cell width; the colorbar holds one more '@'
     */
    CHECK(count_substr(s, "@") >= 2);
    free(s);
}

static void test_column_labels_vertical(void) {
    float m[6] = {1, 2, 3, 4, 5, 6};
    const char *rows[2] = {"r0", "r1"};
    const char *cols[3] = {"abc", "de", "f"};
    av_term_params p = av_term_default_params();
    p.width = 80;
    p.height = 30;
    p.color = AV_COLOR_NONE;
    av_err err = {{0}};
    char *s = NULL;
    REQUIREF(render(m, 2, 3, rows, cols, &p, &s, &err) == 0, "%s", err.msg);
    CHECK(strstr(s, "a d f") != NULL);
    CHECK(strstr(s, "b e") != NULL);
    CHECK(strstr(s, "\n   c") != NULL); /* label field "r0" + space = 3 columns, then the label of column 0 */
    CHECK(strstr(s, "r0 ") != NULL && strstr(s, "r1 ") != NULL);
    CHECK(strstr(s, "6") != NULL); /* colorbar max */
    free(s);
}

static void test_utf8_labels_never_cut(void) {
    const char *labels[6] = {"\xe2\x96\x81the",
                             "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
                             "\xc3\xa9",
                             "a\nb\x1b[31m",
                             "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe6\x97\xa5\xe6\x9c\xac"
                             "\xe8\xaa\x9e\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe6\x97\xa5\xe6\x9c\xac"
                             "\xe8\xaa\x9e\xe6\x97\xa5",
                             "bad\xff\xc3"};
    float m[36];
    for (int i = 0; i < 36; i++)
        m[i] = (float)(i % 7) / 6.0f;
    av_color_mode modes[3] = {AV_COLOR_TRUECOLOR, AV_COLOR_256, AV_COLOR_NONE};
    for (int mode = 0; mode < 3; mode++) {
        for (int w = 8; w <= 60; w += 1) {
            av_term_params p = av_term_default_params();
            p.width = w;
            p.height = 30;
            p.color = modes[mode];
            p.title = "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e title\n";
            av_err err = {{0}};
            char *s = NULL;
            int rc = render(m, 6, 6, labels, labels, &p, &s, &err);
            REQUIREF(rc == 0, "mode %d width %d: %s", mode, w, err.msg);
            REQUIREF(valid_utf8(s), "mode %d width %d: invalid UTF-8", mode, w);
            CHECKF(max_line_width(s) <= w, "mode %d width %d: line of %d", mode, w, max_line_width(s));
            if (w == 60) {
                CHECK(strstr(s, "\\n") != NULL);   /* newline shown escaped */
                CHECK(strstr(s, "\\x1b") != NULL); /* ESC shown escaped */
                CHECK(strstr(s, "\\xff") != NULL); /* invalid byte shown escaped */
                CHECK(strstr(s, "\xe2\x96\x81the") != NULL);
                CHECK(strstr(s, "\xc3\xa9") != NULL);
                CHECK(strstr(s, "\xe2\x80\xa6") != NULL); /* the long label is cut with an ellipsis */
                if (modes[mode] == AV_COLOR_NONE) CHECK(strchr(s, 0x1b) == NULL);
            }
            free(s);
        }
    }
}

static void test_log_scale_and_range(void) {
    float m[4] = {1e-6f, 1e-3f, 0.1f, 1.0f};
    av_term_params p = av_term_default_params();
    p.width = 80;
    p.height = 24;
    p.color = AV_COLOR_TRUECOLOR;
    p.log_scale = 1;
    av_err err = {{0}};
    char *s = NULL;
    REQUIREF(render(m, 2, 2, NULL, NULL, &p, &s, &err) == 0, "%s", err.msg);
    CHECK(strstr(s, "(log scale)") != NULL);
    CHECK(strstr(s, "0.0001") != NULL); /* colorbar low end: max * 1e-4 */
    /* (1,1) = 1.0 is the max color; (0,0) = 1e-6 is below the range, so the min color */
    CHECK(strstr(s, "\x1b[38;2;68;1;84;48;2;") != NULL);
    CHECK(strstr(s, ";48;2;253;231;37m") != NULL);
    free(s);

    /* an explicit range clamps */
    float m2[2] = {-5.0f, 5.0f};
    p.log_scale = 0;
    p.vmin = 0.0f;
    p.vmax = 1.0f;
    REQUIREF(render(m2, 2, 1, NULL, NULL, &p, &s, &err) == 0, "%s", err.msg);
    CHECK(strstr(s, "\x1b[38;2;68;1;84;48;2;253;231;37m") != NULL);
    free(s);
}

/* Many shapes, terminal sizes and modes: always valid UTF-8 and never wider than the terminal. */
static void test_shapes_fit_terminal(void) {
    static const int shapes[][2] = {{1, 1}, {1, 7}, {9, 1}, {2, 3}, {33, 33}, {3, 200}, {200, 3}, {257, 129}};
    static const int sizes[][2] = {{12, 3}, {16, 1}, {20, 8}, {40, 12}, {80, 24}, {100, 40}, {240, 70}};
    float *m = malloc(257 * 257 * sizeof *m);
    REQUIRE(m);
    for (int i = 0; i < 257 * 257; i++)
        m[i] = (i % 11 == 0) ? NAN : (float)((i * 37) % 101) / 100.0f;
    for (size_t a = 0; a < sizeof shapes / sizeof shapes[0]; a++) {
        for (size_t b = 0; b < sizeof sizes / sizeof sizes[0]; b++) {
            for (int mode = AV_COLOR_TRUECOLOR; mode <= AV_COLOR_NONE; mode++) {
                av_term_params p = av_term_default_params();
                p.width = sizes[b][0];
                p.height = sizes[b][1];
                p.color = (av_color_mode)mode;
                p.cmap = (av_cmap)(b % 3);
                p.log_scale = (int)(a % 2);
                av_err err = {{0}};
                char *s = NULL;
                int rc = render(m, shapes[a][0], shapes[a][1], NULL, NULL, &p, &s, &err);
                CHECKF(rc == 0, "%dx%d in %dx%d mode %d: %s", shapes[a][0], shapes[a][1], p.width, p.height,
                       mode, err.msg);
                if (rc == 0) {
                    CHECK(valid_utf8(s));
                    CHECKF(max_line_width(s) <= p.width, "%dx%d in %dx%d mode %d: line of %d", shapes[a][0],
                           shapes[a][1], p.width, p.height, mode, max_line_width(s));
                }
                free(s);
            }
        }
    }
    free(m);
}

static void test_bad_arguments(void) {
    float m[4] = {0};
    av_err err;
    char *s = NULL;
    av_term_params p = av_term_default_params();
    p.width = 80;
    p.height = 24;

    err.msg[0] = 0;
    CHECK(render(NULL, 2, 2, NULL, NULL, &p, &s, &err) == -1 && err.msg[0]);
    free(s);
    err.msg[0] = 0;
    CHECK(render(m, 0, 2, NULL, NULL, &p, &s, &err) == -1 && err.msg[0]);
    free(s);
    err.msg[0] = 0;
    CHECK(render(m, 2, -1, NULL, NULL, &p, &s, &err) == -1 && err.msg[0]);
    free(s);
    err.msg[0] = 0;
    CHECK(av_term_heatmap(NULL, m, 2, 2, NULL, NULL, &p, &err) == -1 && err.msg[0]);

    av_term_params bad = p;
    bad.vmin = 2.0f;
    bad.vmax = 1.0f;
    err.msg[0] = 0;
    CHECK(render(m, 2, 2, NULL, NULL, &bad, &s, &err) == -1 && err.msg[0]);
    free(s);
    bad = p;
    bad.vmax = NAN;
    err.msg[0] = 0;
    CHECK(render(m, 2, 2, NULL, NULL, &bad, &s, &err) == -1 && err.msg[0]);
    free(s);
    bad = p;
    bad.width = -3;
    err.msg[0] = 0;
    CHECK(render(m, 2, 2, NULL, NULL, &bad, &s, &err) == -1 && err.msg[0]);
    free(s);
    bad = p;
    bad.width = 2;
    err.msg[0] = 0;
    CHECK(render(m, 2, 2, NULL, NULL, &bad, &s, &err) == -1 && err.msg[0]);
    free(s);
    bad = p;
    bad.cmap = (av_cmap)42;
    err.msg[0] = 0;
    CHECK(render(m, 2, 2, NULL, NULL, &bad, &s, &err) == -1 && err.msg[0]);
    free(s);

    /* NULL params and a NULL err are fine */
    CHECK(render(m, 2, 2, NULL, NULL, NULL, &s, NULL) == 0);
    free(s);
    CHECK(render(NULL, 2, 2, NULL, NULL, NULL, &s, NULL) == -1);
    free(s);
}

static void test_size_detection(void) {
    /* a memory stream has no terminal: $COLUMNS / $LINES, then 100x40 */
    char *s = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&s, &len);
    REQUIRE(f);
    setenv("COLUMNS", "55", 1);
    setenv("LINES", "bogus", 1);
    int w = 0, h = 0;
    av_term_detect_size(f, &w, &h);
    CHECK(w == 55 && h == 40);
    unsetenv("COLUMNS");
    unsetenv("LINES");
    w = 0;
    h = 7;
    av_term_detect_size(f, &w, &h);
    CHECK(w == 100 && h == 7);
    fclose(f);
    free(s);
}

int main(void) {
    /* harness helpers this file does not need (referenced so -Wunused-function stays quiet) */
    (void)h_max_abs_diff;
    (void)h_tmpdir;
    (void)h_shared_file;
    RUN(test_cmap_matplotlib_values);
    RUN(test_cmap_clamp_nan_diverging);
    RUN(test_cmap_parse);
    RUN(test_xterm256);
    RUN(test_identity_truecolor);
    RUN(test_downsample_keeps_single_peak);
    RUN(test_none_mode_ascii);
    RUN(test_column_labels_vertical);
    RUN(test_utf8_labels_never_cut);
    RUN(test_log_scale_and_range);
    RUN(test_shapes_fit_terminal);
    RUN(test_bad_arguments);
    RUN(test_size_detection);
    return h_exit_code();
}
