/* Log-probabilities in traces (docs/TRACE_FORMAT.md, version 3): round trips, validation of stored tables,
 * derivation from stored logits against a long-double log-softmax written here, the step data (JSON,
 * terminal, figure) and attnviz diff's difference traces against sums computed here. */
#include "harness.h"

#include "analysis/analysis.h"
#include "render/plot.h"
#include "trace/logprobs.h"

#include <math.h>

static char g_dir[] = "/tmp/av_lp_test_XXXXXX";

static const char *tmp_path(const char *name) {
    static char path[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(path[k], sizeof path[k], "%s/%s", g_dir, name);
    return path[k];
}

/* T tokens "t0".."t{T-1}" with ids 100 + i; one layer of H heads where head h, query q puts (1 - h/4) on key
 * q and the rest evenly on keys < q (row 0: all on key 0). */
static av_trace *make_trace(int T, int H, int with_attention) {
    av_trace *t = av_trace_new();
    av_err err = {{0}};
    char **tok = malloc(sizeof *tok * (size_t)T);
    int32_t *ids = malloc(sizeof *ids * (size_t)T);
    for (int i = 0; i < T; i++) {
        char b[16];
        snprintf(b, sizeof b, "t%d", i);
        tok[i] = strdup(b);
        ids[i] = 100 + i;
    }
    av_trace_set_tokens(t, tok, ids, T, &err);
    av_trace_set_meta(t, "model", "synthetic", &err);
    if (!with_attention) return t;
    float *a = calloc((size_t)H * (size_t)T * (size_t)T, sizeof *a);
    for (int h = 0; h < H; h++)
        for (int q = 0; q < T; q++) {
            float *row = a + ((size_t)h * (size_t)T + (size_t)q) * (size_t)T;
            float self = q == 0 ? 1.f : 1.f - h / 4.f;
            row[q] = self;
            for (int k = 0; k < q; k++)
                row[k] = (1.f - self) / (float)q;
        }
    av_trace_add_attn(t, AV_ATTN_SELF, 0, H, T, T, a, &err);
    return t;
}

/* Log-probabilities: token t = -0.1 (t + 1), entropy 0.5 t, alternatives "a<t>" (id 7, -0.05) and "b" (id 9,
 * -2); position 0 unknown; prompt_len 2. */
static int add_logprobs(av_trace *t, av_err *err) {
    int T = av_trace_n_tokens(t);
    av_lp_data *d;
    if (av_lp_new(T, 2, &d, err)) return -1;
    for (int i = 1; i < T; i++) {
        char a[16];
        snprintf(a, sizeof a, "a%d", i);
        d->token[i] = -0.1f * (float)(i + 1);
        d->entropy[i] = 0.5f * (float)i;
        d->alt_ids[2 * i] = 7, d->alt_lp[2 * i] = -0.05f, d->alt_piece[2 * i] = av_lp_piece(d, a, err);
        d->alt_ids[2 * i + 1] = 9, d->alt_lp[2 * i + 1] = -2.f,
                           d->alt_piece[2 * i + 1] = av_lp_piece(d, "b", err);
    }
    json_t *g = json_pack("{s:s, s:s, s:{s:f}, s:[s]}", "source", "attnviz", "stop_reason", "eos", "sampling",
                          "temperature", 0.5, "notes", "a note");
    int rc = av_trace_set_logprobs(t, d, 2, g, err);
    json_decref(g);
    return rc;
}

static void test_round_trip(void) {
    av_err err = {{0}};
    av_trace *t = make_trace(5, 2, 1), *u = NULL;
    REQUIREF(add_logprobs(t, &err) == 0, "%s", err.msg);
    const char *path = tmp_path("rt.safetensors");
    REQUIREF(av_trace_save(t, path, &err) == 0 && av_trace_load(path, &u, &err) == 0, "%s", err.msg);
    av_logprob_view v;
    av_generation_info g;
    REQUIRE(av_trace_logprobs(u, &v, &err) == 0 && av_trace_generation_info(u, &g) == 0);
    CHECK(v.n_tokens == 5 && v.k == 2 && isnan(v.token[0]) && isnan(v.entropy[0]));
    CHECK(v.token[3] == -0.4f && v.entropy[4] == 2.0f && v.alt_ids[2 * 3 + 1] == 9 &&
          v.alt_logprobs[2 * 3] == -0.05f);
    CHECK(strcmp(v.pieces[v.alt_pieces[2 * 3]], "a3") == 0 &&
          strcmp(v.pieces[v.alt_pieces[2 * 3 + 1]], "b") == 0);
    CHECK(v.n_pieces == 5); /* a1..a4 and b, each once */
    CHECK(g.prompt_len == 2 && strcmp(g.source, "attnviz") == 0 && strcmp(g.stop_reason, "eos") == 0);
    CHECK(g.sampling && strstr(g.sampling, "\"temperature\":0.5"));
    CHECK(strcmp(av_trace_meta(u, "version"), "3") == 0 && av_trace_has_attention(u) &&
          av_trace_has_logprobs(u));
    av_trace_free(t);
    av_trace_free(u);
}

static void test_trace_without_logprobs(void) {
    av_err err = {{0}};
    av_trace *t = make_trace(3, 1, 1), *u = NULL;
    const char *path = tmp_path("plain.safetensors");
    REQUIREF(av_trace_save(t, path, &err) == 0 && av_trace_load(path, &u, &err) == 0, "%s", err.msg);
    av_logprob_view v;
    av_generation_info g;
    CHECK(!av_trace_has_logprobs(u) && av_trace_logprobs(u, &v, &err) == -1 &&
          strstr(err.msg, "no log-prob"));
    CHECK(av_trace_generation_info(u, &g) == -1 && g.prompt_len == -1);
    CHECK(strcmp(av_trace_meta(u, "version"), "1") == 0); /* the oldest version that describes it */
    av_trace_free(t);
    av_trace_free(u);
}

/* Logits stored by `attnviz run --logits`: position t gets log-softmax(logits[t - 1]) at token t, checked
 * against a long-double log-softmax; the alternatives against a full sort. */
static void test_derived_from_logits(void) {
    enum { T = 6, V = 40 };
    av_err err = {{0}};
    av_trace *t = make_trace(T, 1, 1), *u = NULL;
    float *lg = malloc(sizeof(float) * T * V);
    for (int i = 0; i < T * V; i++)
        lg[i] = (float)sin(i * 1.7) * 4.f;
    char ids[128] = "[";
    for (int i = 0; i < T; i++) /* ids inside the vocabulary */
        snprintf(ids + strlen(ids), sizeof ids - strlen(ids), "%s%d", i ? "," : "", (i * 7) % V);
    strcat(ids, "]");
    av_trace_set_meta(t, "token_ids", ids, &err);
    av_trace_set_logits(t, lg, T, V);
    const char *path = tmp_path("logits.safetensors");
    REQUIREF(av_trace_save(t, path, &err) == 0 && av_trace_load(path, &u, &err) == 0, "%s", err.msg);
    CHECK(av_st_find(&u->file, "logprobs.token") == NULL); /* derived, never stored */
    av_logprob_view v;
    REQUIREF(av_trace_logprobs(u, &v, &err) == 0, "%s", err.msg);
    CHECK(v.k == 10 && isnan(v.token[0]));
    for (int i = 1; i < T; i++) {
        const float *row = lg + (size_t)(i - 1) * V;
        long double mx = -INFINITY, s = 0, h = 0;
        for (int k = 0; k < V; k++)
            mx = row[k] > mx ? row[k] : mx;
        for (int k = 0; k < V; k++)
            s += expl((long double)row[k] - mx);
        long double lse = mx + logl(s);
        for (int k = 0; k < V; k++)
            h -= expl(row[k] - lse) * (row[k] - lse);
        int id = u->token_ids[i];
        CHECKF(fabsl(v.token[i] - (row[id] - lse)) < 1e-6L, "position %d: %g vs %Lg", i, v.token[i],
               row[id] - lse);
        CHECKF(fabsl(v.entropy[i] - h) < 1e-5L, "entropy %d: %g vs %Lg", i, v.entropy[i], h);
        for (int j = 0; j < v.k; j++) { /* rank of the j-th alternative by counting */
            int a = v.alt_ids[i * v.k + j], rank = 0;
            for (int k = 0; k < V; k++)
                rank += row[k] > row[a] || (row[k] == row[a] && k < a);
            CHECKF(rank == j, "position %d alternative %d (id %d) has rank %d", i, j, a, rank);
            const char *label = v.pieces[v.alt_pieces[i * v.k + j]];
            int pos = -1;
            for (int k = 0; k < T && pos < 0; k++)
                if (u->token_ids[k] == a) pos = k;
            char want[16];
            snprintf(want, sizeof want, pos >= 0 ? "t%d" : "#%d", pos >= 0 ? pos : a);
            CHECKF(strcmp(label, want) == 0, "label of id %d: '%s', expected '%s'", a, label, want);
        }
    }
    av_generation_info g;
    CHECK(av_trace_generation_info(u, &g) == 0 && strcmp(g.source, "logits") == 0 && g.prompt_len == -1);
    av_trace_free(t);
    av_trace_free(u);
}

/* A trace file written tensor by tensor, to store broken tables. */
static int write_raw(const char *path, const char *const *meta, int n_meta, const float *tok, int n,
                     const int32_t *ids, int k, int64_t ids_rows) {
    av_st_writer w;
    av_st_writer_init(&w);
    av_err err = {{0}};
    int rc = av_st_writer_meta(&w, "format", AV_TRACE_FORMAT, &err) ||
             av_st_writer_meta(&w, "tokens", "[\"a\",\"b\"]", &err);
    for (int i = 0; !rc && i < n_meta; i += 2)
        rc = av_st_writer_meta(&w, meta[i], meta[i + 1], &err);
    int64_t s1[1] = {n}, s2[2] = {ids_rows, k};
    static float lp[64];
    rc = rc || av_st_writer_add(&w, "logprobs.token", AV_DTYPE_F32, AV_DTYPE_F32, 1, s1, tok, &err) ||
         av_st_writer_add(&w, "logprobs.entropy", AV_DTYPE_F32, AV_DTYPE_F32, 1, s1, lp, &err);
    if (ids)
        rc = rc || av_st_writer_add(&w, "logprobs.ids", AV_DTYPE_I32, AV_DTYPE_I32, 2, s2, ids, &err) ||
             av_st_writer_add(&w, "logprobs.topk", AV_DTYPE_F32, AV_DTYPE_F32, 2, s2, lp, &err) ||
             av_st_writer_add(&w, "logprobs.pieces", AV_DTYPE_I32, AV_DTYPE_I32, 2, s2, ids, &err);
    rc = rc || av_st_writer_save(&w, path, &err);
    av_st_writer_free(&w);
    return rc;
}

static void test_bad_tables(void) {
    static const float ok[2] = {NAN, -1.f}, positive[2] = {NAN, 0.5f};
    static const int32_t idx[4] = {0, -1, 0, -1}, big[4] = {0, 5, 0, -1};
    static const char *pieces[] = {"logprob_pieces", "[\"x\"]"};
    static const struct {
        const char *meta[4];
        int n_meta;
        const float *tok;
        const int32_t *ids;
        int64_t rows;
        const char *expect;
    } cases[] = {
        {{"logprob_pieces", "[\"x\"]"}, 2, positive, NULL, 2, "out of range"},
        {{"logprob_pieces", "[\"x\"]"}, 2, ok, big, 2, "outside the 1 labels"},
        {{"logprob_pieces", "[\"x\"]"}, 2, ok, idx, 1, "must be I32 [2, k]"},
        {{"logprob_pieces", "{\"x\":1}"}, 2, ok, idx, 2, "'logprob_pieces' must be a JSON array"},
        {{"logprob_pieces", "[\"x\"]", "prompt_len", "3"},
         4,
         ok,
         idx,
         2,
         "'prompt_len' must be an integer in [0, 2]"},
        {{"logprob_pieces", "[\"x\"]", "prompt_len", "1x"}, 4, ok, idx, 2, "'prompt_len' must be"},
        {{"logprob_pieces", "[\"x\"]", "generation", "[1]"},
         4,
         ok,
         idx,
         2,
         "'generation' must be a JSON object"},
    };
    (void)pieces;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *path = tmp_path("bad.safetensors");
        REQUIRE(write_raw(path, cases[i].meta, cases[i].n_meta, cases[i].tok, 2, cases[i].ids, 2,
                          cases[i].rows) == 0);
        av_trace *t = NULL;
        av_err err = {{0}};
        int rc = av_trace_load(path, &t, &err);
        CHECKF(rc == -1 && !t && strstr(err.msg, cases[i].expect), "case %zu: rc %d '%s' (expected '%s')", i,
               rc, err.msg, cases[i].expect);
        av_trace_free(t);
    }
    /* a table without attention loads: a model API's response */
    const char *path = tmp_path("lp_only.safetensors");
    REQUIRE(write_raw(path, cases[0].meta, 2, ok, 2, idx, 2, 2) == 0);
    av_trace *t = NULL;
    av_err err = {{0}};
    REQUIREF(av_trace_load(path, &t, &err) == 0, "%s", err.msg);
    CHECK(!av_trace_has_attention(t) && av_trace_has_logprobs(t));
    av_trace_free(t);
}

static void test_steps_json(void) {
    av_err err = {{0}};
    av_trace *t = make_trace(4, 1, 1);
    REQUIRE(add_logprobs(t, &err) == 0);
    json_t *j = av_steps_json(t, 1, &err);
    REQUIREF(j, "%s", err.msg);
    json_t *steps = json_object_get(j, "steps"), *s2 = json_array_get(steps, 2);
    CHECK(json_integer_value(json_object_get(j, "prompt_len")) == 2 &&
          json_integer_value(json_object_get(j, "k")) == 1);
    CHECK(json_array_size(steps) == 4 && json_is_null(json_object_get(json_array_get(steps, 0), "logprob")));
    CHECK(fabs(json_real_value(json_object_get(s2, "logprob")) + 0.3) < 1e-6);
    CHECK(json_integer_value(json_object_get(s2, "id")) == 102 &&
          !strcmp(json_string_value(json_object_get(s2, "token")), "t2"));
    json_t *alts = json_object_get(s2, "alts");
    CHECK(json_array_size(alts) == 1 && json_integer_value(json_array_get(json_array_get(alts, 0), 0)) == 7);
    CHECK(!strcmp(json_string_value(json_array_get(json_array_get(alts, 0), 1)), "a2"));
    CHECK(json_is_true(json_object_get(j, "has_attention")));
    json_decref(j);
    av_trace_free(t);
}

/* The terminal step view: header, strip and one line per produced token with what its step attended to. */
static void test_term_steps(void) {
    av_err err = {{0}};
    av_trace *t = make_trace(4, 2, 1);
    REQUIRE(add_logprobs(t, &err) == 0);
    char *buf = NULL;
    size_t n = 0;
    FILE *fp = open_memstream(&buf, &n);
    av_steps_term_params p = av_steps_term_default_params();
    p.color = AV_COLOR_NONE;
    p.width = 80;
    p.head = 0; /* head 0: query q attends to itself only, so row t - 1 puts 1.00 on token t - 1 */
    REQUIREF(av_term_steps(fp, t, &p, &err) == 0, "%s", err.msg);
    fclose(fp);
    CHECKF(strstr(buf, "2 prompt tokens · 2 produced") && strstr(buf, "prompt:") && strstr(buf, "[t0][t1]"),
           "%s", buf);
    CHECKF(strstr(buf, "\"t2\" 1.00") && strstr(buf, "\"t1\" 1.00"), "attended tokens missing:\n%s", buf);
    CHECKF(strstr(buf, "\"a3\" 0.951") && strstr(buf, "0.6703"), "alternatives / probability missing:\n%s",
           buf);                          /* exp(-0.4) */
    CHECK(strstr(buf, "    1.") == NULL); /* prompt rows are left out without --all */
    free(buf);
    av_trace_free(t);
    t = make_trace(3, 1, 0); /* no attention */
    REQUIRE(add_logprobs(t, &err) == 0);
    fp = open_memstream(&buf, &n);
    REQUIREF(av_term_steps(fp, t, &p, &err) == 0, "%s", err.msg);
    fclose(fp);
    CHECK(strstr(buf, "this provider returns no attention weights") && strstr(buf, "note: a note"));
    free(buf);
    av_trace_free(t);
}

/* The step figure: a box per token colored by its probability, the matrix of the produced tokens. */
static void test_steps_figure(void) {
    av_err err = {{0}};
    av_trace *t = make_trace(4, 1, 1);
    REQUIRE(add_logprobs(t, &err) == 0);
    av_font *font;
    REQUIREF(av_font_open(&font, &err) == 0, "%s", err.msg);
    av_fig fig;
    av_steps_plot_params p = av_steps_plot_default_params();
    REQUIREF(av_steps_layout(t, &p, font, &fig, &err) == 0, "%s", err.msg);
    int boxes = 0, rasters = 0;
    for (int i = 0; i < fig.n; i++) {
        const av_fig_item *it = &fig.items[i];
        if (it->kind == AV_FIG_RECT) {
            uint8_t want[3];
            av_cmap_rgb(AV_CMAP_VIRIDIS, boxes == 0 ? NAN : expf(-0.1f * (float)(boxes + 1)), want);
            CHECKF(!memcmp(it->rgb, want, 3), "box %d color", boxes);
            boxes++;
        }
        if (it->kind == AV_FIG_RASTER) rasters++;
    }
    CHECK(boxes == 4 && rasters == 3); /* key, matrix, colorbar */
    av_fig_free(&fig);
    av_trace_free(t);
    t = make_trace(3, 1, 0);
    REQUIRE(add_logprobs(t, &err) == 0);
    REQUIREF(av_steps_layout(t, &p, font, &fig, &err) == 0, "%s", err.msg);
    int note = 0;
    for (int i = 0; i < fig.n; i++)
        note |= fig.items[i].kind == AV_FIG_TEXT && strstr(fig.items[i].text, "returns no attention weights");
    CHECK(note);
    av_fig_free(&fig);
    av_trace_free(t);
    av_font_free(font);
}

static void test_diff(void) {
    av_err err = {{0}};
    av_trace *a = make_trace(4, 2, 1), *b = make_trace(4, 2, 1), *d = NULL;
    av_attn_view vb;
    REQUIRE(av_trace_attn(b, AV_ATTN_SELF, 0, &vb, &err) == 0);
    float *bw = (float *)vb.data; /* B: head 1, query 3 moves 0.25 from key 3 to key 0 */
    bw[(1 * 4 + 3) * 4 + 3] -= 0.25f, bw[(1 * 4 + 3) * 4 + 0] += 0.25f;
    REQUIRE(add_logprobs(a, &err) == 0 && add_logprobs(b, &err) == 0);
    REQUIREF(av_trace_diff(a, b, "A", "B", 0, &d, &err) == 0, "%s", err.msg);
    av_attn_view v;
    REQUIRE(av_trace_attn(d, AV_ATTN_SELF, 0, &v, &err) == 0 && v.n_heads == 2 && v.n_query == 4);
    CHECK(fabsf(v.data[(1 * 4 + 3) * 4 + 3] - 0.25f) < 1e-7f &&
          fabsf(v.data[(1 * 4 + 3) * 4 + 0] + 0.25f) < 1e-7f);
    CHECK(v.data[(1 * 4 + 3) * 4 + 1] == 0 && v.data[0] == 0);
    float dist[2];
    REQUIRE(av_diff_head_distance(d, AV_ATTN_SELF, dist, &err) == 0);
    CHECKF(dist[0] == 0 && fabsf(dist[1] - 0.25f / 4) < 1e-7f, "distances %g %g", dist[0],
           dist[1]); /* one row of 4 */
    CHECK(strstr(av_trace_meta(d, "diff_logprobs"), "\"a\":[null,") &&
          !strcmp(av_trace_meta(d, "model"), "A − B"));
    av_trace_free(d);
    b->token_ids[2] = 55; /* tokens differ from position 2 */
    CHECK(av_trace_diff(a, b, "A", "B", 0, &d, &err) == -1 && strstr(err.msg, "differ at token 2") &&
          strstr(err.msg, "--common-prefix compares the first 2"));
    REQUIREF(av_trace_diff(a, b, "A", "B", 1, &d, &err) == 0, "%s", err.msg);
    CHECK(av_trace_n_tokens(d) == 2 && av_trace_attn(d, AV_ATTN_SELF, 0, &v, &err) == 0 && v.n_query == 2 &&
          v.n_key == 2);
    av_trace_free(d);
    av_trace *c = make_trace(4, 3, 1);
    CHECK(av_trace_diff(a, c, "A", "C", 0, &d, &err) == -1 && strstr(err.msg, "2 heads in A, 3 in B"));
    av_trace_set_meta(c, "source_tokens", "[\"x\"]", &err);
    CHECK(av_trace_diff(a, c, "A", "C", 0, &d, &err) == -1 &&
          strstr(err.msg, "source (encoder) tokens differ"));
    av_trace_free(c);
    av_trace_free(a);
    av_trace_free(b);
}

int main(void) {
    if (!mkdtemp(g_dir)) return 1;
    RUN(test_round_trip);
    RUN(test_trace_without_logprobs);
    RUN(test_derived_from_logits);
    RUN(test_bad_tables);
    RUN(test_steps_json);
    RUN(test_term_steps);
    RUN(test_steps_figure);
    RUN(test_diff);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    return system(cmd) ? 1 : h_exit_code();
}
