/* Long inputs: lazy runs streamed into their output file (the file equals a trace saved from memory), the
 * pooled overviews computed during the run against pooling done here by hand from recomputed rows, tiles
 * with the first token excluded and the minimum over heads, progress reports, and full traces that keep their
 * queries and keys (--keep-qk) against scores computed here from them. */
#include "harness.h"
#include "synth_model.h"
#include "trace/trace.h"

#include <stdlib.h>

/* The stored overview sums each row's softmax denominator tile by tile (attention_stream.c), rows read back
 * sum it in one pass: the f32 orders differ, bound ~N eps (observed 1.1e-6 with the vector exp, 3.6e-6 with
 * the scalar one of the ASan build). */
#define OVERVIEW_TOL 1e-5f

static int32_t *some_ids(int n, int mul) {
    int32_t *ids = malloc(sizeof *ids * (size_t)n);
    for (int i = 0; ids && i < n; i++)
        ids[i] = (i * mul + 5) % H_SYNTH_VOCAB;
    return ids;
}

/* Whole-matrix cells (R x C) of one head (or the mean / max over heads) pooled here from exact rows. */
static void hand_pool(const av_trace *t, int layer, int head, int R, int C, av_pool pool, float *out) {
    int n = av_trace_n_query(t, AV_ATTN_SELF);
    float *row = malloc(sizeof(float) * (size_t)n);
    double *acc = calloc((size_t)R * (size_t)C, sizeof(double));
    av_err err = {{0}};
    for (int q = 0; q < n; q++) {
        int r = 0;
        while ((int64_t)(r + 1) * n / R <= q)
            r++;
        av_trace_attn_row(t, AV_ATTN_SELF, layer, head, q, row, &err);
        for (int c = 0; c < C; c++)
            for (int k = (int)((int64_t)c * n / C); k < (int)((int64_t)(c + 1) * n / C); k++) {
                double *a = &acc[r * C + c];
                *a = pool == AV_POOL_MAX ? (row[k] > *a ? row[k] : *a) : *a + row[k];
            }
    }
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) {
            double area = (double)((int64_t)(r + 1) * n / R - (int64_t)r * n / R) *
                          (double)((int64_t)(c + 1) * n / C - (int64_t)c * n / C);
            out[r * C + c] = (float)(pool == AV_POOL_MAX ? acc[r * C + c] : acc[r * C + c] / area);
        }
    free(row);
    free(acc);
}

static void test_overview_equals_pooled_rows(void) {
    av_model *m = h_synth_llama(64, 96, 2, 4, 2, 4096);
    REQUIRE(m);
    enum { N = 1500, CELLS = 24 };
    int32_t *ids = some_ids(N, 31);
    av_trace *t = NULL;
    av_err err = {{0}};
    av_run_params rp = av_run_default_params();
    rp.lazy = 1;
    rp.pool_cells = CELLS;
    REQUIREF(av_trace_from_ids(m, ids, N, &rp, &t, &err) == 0, "%s", err.msg);
    int R, C;
    av_trace_overview_cells(t, AV_ATTN_SELF, &R, &C);
    REQUIRE(R == CELLS && C == CELLS);
    static float got[CELLS * CELLS], want[CELLS * CELLS];
    struct {
        int head, cells;
        av_pool pool;
    } cases[] = {{1, CELLS, AV_POOL_MAX},
                 {1, CELLS, AV_POOL_MEAN},
                 {3, 8, AV_POOL_MAX},
                 {0, 6, AV_POOL_MEAN},
                 {AV_HEADS_MEAN, 12, AV_POOL_MEAN},
                 {AV_HEADS_MAX, CELLS, AV_POOL_MAX},
                 {AV_HEADS_MEAN, 4, AV_POOL_MAX}, /* not derivable from the overview: recomputed */
                 {2, 7, AV_POOL_MAX}};            /* 7 does not divide 24: recomputed */
    float worst = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int k = cases[i].cells;
        REQUIREF(av_trace_attn_tile(t, AV_ATTN_SELF, 1, cases[i].head, 0, N, 0, N, k, k, cases[i].pool, got,
                                    &err) == 0,
                 "%s", err.msg);
        hand_pool(t, 1, cases[i].head, k, k, cases[i].pool, want);
        float d = h_max_abs_diff(got, want, (size_t)k * k);
        CHECKF(d <= OVERVIEW_TOL, "case %zu (head %d, %d cells, pool %d): differs by %g", i, cases[i].head, k,
               cases[i].pool, d);
        worst = d > worst ? d : worst;
    }
    printf("# overview of %d tokens in %d x %d cells: max |overview - pooled rows| = %.3g\n", N, CELLS, CELLS,
           worst);
    /* the overview survives a save and load */
    char path[512];
    av_trace *back = NULL;
    snprintf(path, sizeof path, "%s/pools.safetensors", h_tmpdir());
    REQUIREF(av_trace_save(t, path, &err) == 0 && av_trace_load(path, &back, &err) == 0, "%s", err.msg);
    av_trace_overview_cells(back, AV_ATTN_SELF, &R, &C);
    CHECK(R == CELLS && C == CELLS && strcmp(av_trace_meta(back, "version"), "3") == 0);
    REQUIRE(av_trace_attn_tile(back, AV_ATTN_SELF, 0, 2, 0, N, 0, N, 12, 12, AV_POOL_MAX, got, &err) == 0);
    hand_pool(t, 0, 2, 12, 12, AV_POOL_MAX, want);
    CHECK(h_max_abs_diff(got, want, 144) <= OVERVIEW_TOL);
    av_trace_free(back);
    unlink(path);
    av_trace_free(t);
    free(ids);
    av_model_free(m);
}

/* Tensors of a and b (safetensors files) equal byte for byte, names and shapes alike. */
static int same_tensors(const char *a, const char *b, char *why, size_t n) {
    av_safetensors fa, fb;
    av_err err = {{0}};
    if (av_st_open(a, &fa, &err)) return snprintf(why, n, "%.200s", err.msg), 0;
    if (av_st_open(b, &fb, &err)) return av_st_close(&fa), snprintf(why, n, "%.200s", err.msg), 0;
    int ok = fa.n == fb.n;
    for (int i = 0; ok && i < fa.n; i++) {
        const av_tensor *x = &fa.entries[i].t, *y = av_st_find(&fb, fa.entries[i].name);
        ok = y && x->nbytes == y->nbytes && memcmp(x->data, y->data, x->nbytes) == 0;
        if (!ok) snprintf(why, n, "tensor %s differs", fa.entries[i].name);
    }
    if (fa.n != fb.n) snprintf(why, n, "%d vs %d tensors", fa.n, fb.n);
    av_st_close(&fa);
    av_st_close(&fb);
    return ok;
}

static void count_progress(void *ctx, const av_progress *p) {
    double *last = ctx;
    if (p->done < last[0] || p->done > p->total * (1 + 1e-9) || p->layer >= p->n_layers) last[2] = 1;
    last[0] = p->done;
    last[1] = p->total;
    last[3] += 1;
}

static void test_lazy_run_streams_into_its_file(void) {
    /* wide heads, so the queries and keys outweigh the header room and the run writes them into the file */
    av_model *m = h_synth_llama(256, 64, 2, 8, 4, 4096);
    REQUIRE(m);
    enum { N = 2100 };
    int32_t *ids = some_ids(N, 17);
    char in_file[200], from_memory[200];
    snprintf(in_file, sizeof in_file, "%s/streamed.safetensors", h_tmpdir());
    snprintf(from_memory, sizeof from_memory, "%s/memory.safetensors", h_tmpdir());
    av_trace *a = NULL, *b = NULL;
    av_err err = {{0}};
    double prog[4] = {0};
    av_run_params rp = av_run_default_params();
    rp.lazy = 1;
    rp.pool_cells = 32;
    rp.want_logits = 1;
    rp.output_path = in_file;
    rp.on_progress = count_progress;
    rp.on_progress_ctx = prog;
    REQUIREF(av_trace_from_ids(m, ids, N, &rp, &a, &err) == 0, "%s", err.msg);
    CHECKF(a->prealloc != NULL, "the lazy run did not write into its output file");
    REQUIREF(av_trace_save(a, in_file, &err) == 0, "%s", err.msg);
    rp.output_path = NULL;
    rp.on_progress = NULL;
    REQUIREF(av_trace_from_ids(m, ids, N, &rp, &b, &err) == 0, "%s", err.msg);
    CHECK(b->prealloc == NULL);
    REQUIREF(av_trace_save(b, from_memory, &err) == 0, "%s", err.msg);
    char why[256] = "";
    CHECKF(same_tensors(in_file, from_memory, why, sizeof why), "%s", why);
    /* 3 chunks of 1024 rows x 2 layers: 6 reports, work growing to the total */
    CHECKF(prog[3] == 6 && !prog[2] && fabs(prog[0] - prog[1]) <= 1e-9 * prog[1],
           "%g reports, bad %g, done %g of %g", prog[3], prog[2], prog[0], prog[1]);
    av_trace *back = NULL;
    REQUIREF(av_trace_load(in_file, &back, &err) == 0, "%s", err.msg);
    float ra[N], rb[N];
    REQUIRE(av_trace_attn_row(back, AV_ATTN_SELF, 1, 5, N - 1, ra, &err) == 0);
    REQUIRE(av_trace_attn_row(b, AV_ATTN_SELF, 1, 5, N - 1, rb, &err) == 0);
    CHECK(h_max_abs_diff(ra, rb, N) == 0.0f);
    av_trace_free(back);
    av_trace_free(a);
    av_trace_free(b);
    unlink(in_file);
    unlink(from_memory);
    free(ids);
    av_model_free(m);
}

static void test_tiles_exclude_first_and_min(void) {
    av_model *m = h_synth_llama(64, 96, 2, 4, 2, 512);
    REQUIRE(m);
    enum { N = 90 };
    int32_t *ids = some_ids(N, 13);
    av_trace *t = NULL;
    av_err err = {{0}};
    REQUIRE(av_trace_from_ids(m, ids, N, NULL, &t, &err) == 0);
    av_attn_view v;
    REQUIRE(av_trace_attn(t, AV_ATTN_SELF, 1, &v, &err) == 0);
    static float got[N * N], want[N * N];
    /* minimum over heads, exact cells of [1, N) x [1, N), first token excluded and rows renormalized */
    av_tile_params p = {AV_ATTN_SELF, 1, AV_HEADS_MIN, 1, N, 1, N, N - 1, N - 1, AV_POOL_MAX, 1};
    REQUIREF(av_trace_attn_tile_ex(t, &p, got, &err) == 0, "%s", err.msg);
    for (int q = 1; q < N; q++)
        for (int k = 1; k < N; k++) {
            float mn = INFINITY;
            for (int h = 0; h < v.n_heads; h++) {
                const float *row = v.data + ((size_t)h * N + (size_t)q) * N;
                double sum = 0;
                for (int j = 1; j < N; j++)
                    sum += row[j];
                float x = (float)(row[k] / sum);
                mn = x < mn ? x : mn;
            }
            want[(q - 1) * (N - 1) + (k - 1)] = mn;
        }
    CHECK(h_max_abs_diff(got, want, (size_t)(N - 1) * (N - 1)) <= 1e-6f);
    av_trace_free(t);
    free(ids);
    av_model_free(m);
}

static void test_full_trace_keeps_queries_and_keys(void) {
    av_model *m = h_synth_llama(64, 96, 2, 4, 2, 512);
    REQUIRE(m);
    enum { N = 40 };
    int32_t *ids = some_ids(N, 11);
    av_trace *t = NULL, *back = NULL;
    av_err err = {{0}};
    av_run_params rp = av_run_default_params();
    rp.keep_qk = 1;
    REQUIRE(av_trace_from_ids(m, ids, N, &rp, &t, &err) == 0);
    char path[512];
    snprintf(path, sizeof path, "%s/keepqk.safetensors", h_tmpdir());
    REQUIREF(av_trace_save(t, path, &err) == 0 && av_trace_load(path, &back, &err) == 0, "%s", err.msg);
    CHECK(!av_trace_is_lazy(back) && strcmp(av_trace_meta(back, "qk"), "1") == 0);
    av_qk_view qk;
    av_attn_view v;
    REQUIREF(av_trace_qk(back, AV_ATTN_SELF, 1, &qk, &err) == 0, "%s", err.msg);
    REQUIRE(av_trace_attn(back, AV_ATTN_SELF, 1, &v, &err) == 0);
    CHECK(qk.q.shape[0] == 4 && qk.k.shape[0] == 2 && qk.q.shape[1] == N && qk.causal);
    int d = (int)qk.q.shape[2];
    float worst = 0;
    for (int h = 0; h < 4; h++) /* softmax of scale q.k over keys 0..i, here in double */
        for (int i = 0; i < N; i++) {
            const float *q = (const float *)qk.q.data + ((size_t)h * N + (size_t)i) * (size_t)d;
            double s[N], mx = -INFINITY, sum = 0;
            for (int j = 0; j <= i; j++) {
                const float *k = (const float *)qk.k.data + ((size_t)(h / 2) * N + (size_t)j) * (size_t)d;
                s[j] = 0;
                for (int e = 0; e < d; e++)
                    s[j] += (double)q[e] * k[e];
                s[j] *= qk.scale;
                mx = s[j] > mx ? s[j] : mx;
            }
            for (int j = 0; j <= i; j++)
                sum += exp(s[j] - mx);
            for (int j = 0; j < N; j++) {
                double p = j <= i ? exp(s[j] - mx) / sum : 0;
                float diff = (float)fabs(p - v.data[((size_t)h * N + (size_t)i) * N + (size_t)j]);
                worst = diff > worst ? diff : worst;
            }
        }
    printf("# keep_qk: max |stored attention - softmax(scale q.k)| = %.3g\n", worst);
    CHECKF(worst <= 1e-5f, "differs by %g", worst);
    CHECK(av_trace_qk(back, AV_ATTN_CROSS, 0, &qk, &err) == -1 && strstr(err.msg, "keep-qk"));
    av_trace_free(back);
    unlink(path);
    av_trace_free(t);
    free(ids);
    av_model_free(m);
}

int main(void) {
    RUN(test_overview_equals_pooled_rows);
    RUN(test_lazy_run_streams_into_its_file);
    RUN(test_tiles_exclude_first_and_min);
    RUN(test_full_trace_keeps_queries_and_keys);
    return h_exit_code();
}
