/* Lazy traces (stored queries/keys, attention recomputed on demand) against full traces: every row of every
 * head, pooled tiles against pooling done here by hand, and a save/load round trip. On the real stories260K
 * model and on a synthetic random model with a long context. */
#include "harness.h"
#include "synth_model.h"
#include "model/model.h"
#include "trace/trace.h"

#include <stdlib.h>

/* A random Llama model in memory: 2 layers, dim 64, 4 heads (2 kv), context ctx. */
static av_model *synthetic_model(int ctx) { return h_synth_llama(64, 96, 2, 4, 2, ctx); }

/* Runs ids fully and lazily and compares every row of every head; returns the max difference. */
static float compare_full_and_lazy(av_model *m, const int32_t *ids, size_t n) {
    av_trace *full = NULL, *lazy = NULL;
    av_err err = {{0}};
    av_run_params rp = av_run_default_params();
    if (av_trace_from_ids(m, ids, n, &rp, &full, &err)) return INFINITY;
    rp.lazy = 1;
    if (av_trace_from_ids(m, ids, n, &rp, &lazy, &err)) return INFINITY;
    float worst = 0;
    float *row = malloc(sizeof(float) * n);
    CHECK(av_trace_is_lazy(lazy) && !av_trace_is_lazy(full));
    CHECK(av_trace_n_layers(lazy, AV_ATTN_SELF) == m->n_layers &&
          av_trace_n_heads(lazy, AV_ATTN_SELF) == m->n_heads);
    for (int l = 0; l < m->n_layers; l++) {
        av_attn_view v;
        if (av_trace_attn(full, AV_ATTN_SELF, l, &v, &err)) return INFINITY;
        for (int h = 0; h < m->n_heads; h++)
            for (size_t q = 0; q < n; q++) {
                if (av_trace_attn_row(lazy, AV_ATTN_SELF, l, h, (int)q, row, &err)) return INFINITY;
                float d = h_max_abs_diff(row, v.data + ((size_t)h * n + q) * n, n);
                worst = d > worst ? d : worst;
            }
    }
    /* value norms are the same computation in both modes */
    av_tensor a, b;
    CHECK(av_trace_vnorm(full, 0, &a, &err) == 0 && av_trace_vnorm(lazy, 0, &b, &err) == 0);
    CHECK(h_max_abs_diff(a.data, b.data, (size_t)m->n_heads * n) == 0.0f);
    free(row);
    av_trace_free(full);
    av_trace_free(lazy);
    return worst;
}

static void test_lazy_equals_full_on_stories260K(void) {
    char path[4096];
    if (!h_shared_file(path, sizeof path, "models/stories260K/stories260K.bin")) SKIP("../shared not found");
    av_model *m = NULL;
    av_err err = {{0}};
    REQUIREF(av_model_load(path, NULL, &m, &err) == 0, "%s", err.msg);
    int32_t ids[400];
    unsigned seed = 7;
    ids[0] = 1;
    for (int i = 1; i < 400; i++)
        ids[i] = 3 + (int)(rand_r(&seed) % 500);
    float d = compare_full_and_lazy(m, ids, 400);
    printf("# stories260K, 400 tokens: max |lazy - full| = %.3g\n", d);
    CHECKF(d <= 1e-5f, "lazy and full differ by %g", d);
    av_model_free(m);
}

static void test_lazy_equals_full_on_long_synthetic_input(void) {
    av_model *m = synthetic_model(4096);
    REQUIRE(m);
    enum { N = 2500 }; /* more than two lazy chunks of 1024 */
    int32_t *ids = malloc(sizeof *ids * N);
    for (int i = 0; i < N; i++)
        ids[i] = (i * 31 + 7) % 97;
    float d = compare_full_and_lazy(m, ids, N);
    printf("# synthetic, %d tokens: max |lazy - full| = %.3g\n", N, d);
    CHECKF(d <= 1e-5f, "lazy and full differ by %g", d);
    free(ids);
    av_model_free(m);
}

static void test_tiles_pool_exactly(void) {
    av_model *m = synthetic_model(512);
    REQUIRE(m);
    enum { N = 300 };
    int32_t ids[N];
    for (int i = 0; i < N; i++)
        ids[i] = (i * 13 + 5) % 97;
    av_trace *full = NULL, *lazy = NULL;
    av_err err = {{0}};
    av_run_params rp = av_run_default_params();
    REQUIRE(av_trace_from_ids(m, ids, N, &rp, &full, &err) == 0);
    rp.lazy = 1;
    REQUIRE(av_trace_from_ids(m, ids, N, &rp, &lazy, &err) == 0);
    av_attn_view v;
    REQUIRE(av_trace_attn(full, AV_ATTN_SELF, 1, &v, &err) == 0);
    /* a 7 x 9 overview of the block [20, 290) x [10, 280), by hand */
    int q0 = 20, q1 = 290, k0 = 10, k1 = 280, R = 7, C = 9;
    float tile[7 * 9], tile_lazy[7 * 9], hand_max[7 * 9], hand_mean[7 * 9];
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) {
            int qa = q0 + r * (q1 - q0) / R, qb = q0 + (r + 1) * (q1 - q0) / R;
            int ka = k0 + c * (k1 - k0) / C, kb = k0 + (c + 1) * (k1 - k0) / C;
            double mx = 0, sum = 0;
            for (int q = qa; q < qb; q++)
                for (int k = ka; k < kb; k++) {
                    float x = v.data[((size_t)2 * N + (size_t)q) * N + (size_t)k]; /* head 2 */
                    mx = x > mx ? x : mx;
                    sum += x;
                }
            hand_max[r * C + c] = (float)mx;
            hand_mean[r * C + c] = (float)(sum / ((qb - qa) * (kb - ka)));
        }
    REQUIRE(av_trace_attn_tile(full, AV_ATTN_SELF, 1, 2, q0, q1, k0, k1, R, C, AV_POOL_MAX, tile, &err) == 0);
    CHECK(h_max_abs_diff(tile, hand_max, R * C) == 0.0f);
    REQUIRE(av_trace_attn_tile(lazy, AV_ATTN_SELF, 1, 2, q0, q1, k0, k1, R, C, AV_POOL_MAX, tile_lazy,
                               &err) == 0);
    CHECK(h_max_abs_diff(tile_lazy, hand_max, R * C) <= 1e-5f);
    REQUIRE(av_trace_attn_tile(lazy, AV_ATTN_SELF, 1, 2, q0, q1, k0, k1, R, C, AV_POOL_MEAN, tile_lazy,
                               &err) == 0);
    CHECK(h_max_abs_diff(tile_lazy, hand_mean, R * C) <= 1e-6f);
    /* exact cells at full resolution, and the mean over heads */
    float cells[4 * 5], mean_row[N];
    REQUIRE(av_trace_attn_tile(lazy, AV_ATTN_SELF, 0, 3, 100, 104, 50, 55, 4, 5, AV_POOL_MEAN, cells, &err) ==
            0);
    REQUIRE(av_trace_attn(full, AV_ATTN_SELF, 0, &v, &err) == 0);
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 5; k++)
            CHECK(fabsf(cells[i * 5 + k] - v.data[((size_t)3 * N + 100 + (size_t)i) * N + 50 + (size_t)k]) <=
                  1e-5f);
    REQUIRE(av_trace_attn_row(lazy, AV_ATTN_SELF, 0, AV_HEADS_MEAN, 200, mean_row, &err) == 0);
    float want = 0;
    for (int h = 0; h < 4; h++)
        want += v.data[((size_t)h * N + 200) * N + 17] / 4.0f;
    CHECK(fabsf(mean_row[17] - want) <= 1e-5f);
    /* bad requests */
    CHECK(av_trace_attn_tile(lazy, AV_ATTN_SELF, 0, 0, 0, N + 1, 0, N, 10, 10, AV_POOL_MAX, tile, &err) ==
          -1);
    CHECK(av_trace_attn_tile(lazy, AV_ATTN_SELF, 0, 0, 0, 5, 0, 5, 6, 5, AV_POOL_MAX, tile, &err) == -1);
    CHECK(av_trace_attn_row(lazy, AV_ATTN_SELF, 2, 0, 0, mean_row, &err) == -1 && strstr(err.msg, "layer"));
    CHECK(av_trace_attn_row(lazy, AV_ATTN_SELF, 0, 4, 0, mean_row, &err) == -1 && strstr(err.msg, "head"));
    CHECK(av_trace_attn_row(lazy, AV_ATTN_CROSS, 0, 0, 0, mean_row, &err) == -1);
    av_trace_free(full);
    av_trace_free(lazy);
    av_model_free(m);
}

/* Tiles of exact cells (one query and one key each, as `attnviz stats` and the viewer's zoom read them) are
 * the rows themselves, bit for bit: one head over every key and over some keys, and the mean of heads (the
 * heads' values added in order, then divided, by hand). */
static void test_exact_tiles_are_the_rows(void) {
    av_model *m = synthetic_model(512);
    REQUIRE(m);
    enum { N = 300, H = 4 };
    int32_t ids[N];
    for (int i = 0; i < N; i++)
        ids[i] = (i * 17 + 3) % 97;
    av_trace *t = NULL;
    av_err err = {{0}};
    av_run_params rp = av_run_default_params();
    REQUIRE(av_trace_from_ids(m, ids, N, &rp, &t, &err) == 0);
    av_attn_view v;
    REQUIRE(av_trace_attn(t, AV_ATTN_SELF, 1, &v, &err) == 0);
    float *got = malloc(sizeof(float) * N * N);
    REQUIRE(got);
    const struct {
        int head, q0, q1, k0, k1;
    } cases[] = {
        {2, 40, 290, 0, N}, {1, 0, N, 7, 250}, {AV_HEADS_MEAN, 0, N, 0, N}, {AV_HEADS_MEAN, 3, 200, 50, 51}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        int q0 = cases[c].q0, q1 = cases[c].q1, k0 = cases[c].k0, k1 = cases[c].k1, head = cases[c].head;
        REQUIREF(av_trace_attn_tile(t, AV_ATTN_SELF, 1, head, q0, q1, k0, k1, q1 - q0, k1 - k0, AV_POOL_MAX,
                                    got, &err) == 0,
                 "%s", err.msg);
        size_t wrong = 0;
        for (int q = q0; q < q1; q++)
            for (int k = k0; k < k1; k++) {
                float want = 0;
                for (int h = head >= 0 ? head : 0; h < (head >= 0 ? head + 1 : H); h++)
                    want = h == (head >= 0 ? head : 0)
                               ? v.data[((size_t)h * N + (size_t)q) * N + (size_t)k]
                               : want + v.data[((size_t)h * N + (size_t)q) * N + (size_t)k];
                if (head < 0) want /= (float)H;
                wrong += got[(size_t)(q - q0) * (size_t)(k1 - k0) + (size_t)(k - k0)] != want;
            }
        CHECKF(wrong == 0, "case %zu: %zu cells differ from the rows", c, wrong);
    }
    free(got);
    av_trace_free(t);
    av_model_free(m);
}

static void test_lazy_save_load_round_trip(void) {
    av_model *m = synthetic_model(512);
    REQUIRE(m);
    enum { N = 200 };
    int32_t ids[N];
    for (int i = 0; i < N; i++)
        ids[i] = (i * 7 + 3) % 97;
    av_trace *lazy = NULL, *back = NULL;
    av_err err = {{0}};
    av_run_params rp = av_run_default_params();
    rp.lazy = 1;
    REQUIRE(av_trace_from_ids(m, ids, N, &rp, &lazy, &err) == 0);
    char path[512];
    snprintf(path, sizeof path, "%s/lazy.safetensors", h_tmpdir());
    REQUIREF(av_trace_save(lazy, path, &err) == 0, "%s", err.msg);
    REQUIREF(av_trace_load(path, &back, &err) == 0, "%s", err.msg);
    CHECK(av_trace_is_lazy(back) && av_trace_n_tokens(back) == N);
    float a[N], b[N];
    for (int q = 0; q < N; q += 37) {
        REQUIRE(av_trace_attn_row(lazy, AV_ATTN_SELF, 1, 1, q, a, &err) == 0);
        REQUIRE(av_trace_attn_row(back, AV_ATTN_SELF, 1, 1, q, b, &err) == 0);
        CHECK(h_max_abs_diff(a, b, N) == 0.0f);
    }
    /* small lazy traces can still be read whole (materialized on demand) */
    av_attn_view v;
    REQUIRE(av_trace_attn(back, AV_ATTN_SELF, 1, &v, &err) == 0);
    CHECK(v.n_heads == 4 && v.n_query == N && v.n_key == N);
    REQUIRE(av_trace_attn_row(back, AV_ATTN_SELF, 1, 1, 74, b, &err) == 0);
    CHECK(h_max_abs_diff(v.data + ((size_t)1 * N + 74) * N, b, N) <= 1e-6f);
    av_trace_free(lazy);
    av_trace_free(back);
    av_model_free(m);
}

int main(void) {
    RUN(test_lazy_equals_full_on_stories260K);
    RUN(test_lazy_equals_full_on_long_synthetic_input);
    RUN(test_tiles_pool_exactly);
    RUN(test_exact_tiles_are_the_rows);
    RUN(test_lazy_save_load_round_trip);
    return h_exit_code();
}
