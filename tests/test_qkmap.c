/* The viewer's query/key map (src/render/html_qkmap.c) built into a page from a synthetic Llama's --keep-qk
 * trace (grouped-query heads), checked for what any 2-D PCA of AttentionViz-normalized vectors must be,
 * computed here from the trace's own queries and keys: centered coordinates, uncorrelated axes, the first
 * of larger variance, explained variance = the axes' variance over the normalized vectors' total, and
 * distances never longer than in the full space. (Equality with numpy's eigh: tests/cli/test_qkmap.sh.)
 * Also: --view qkmap is refused without queries and keys, and pages without them carry a note. */
#include "harness.h"
#include "synth_model.h"

#include "core/core.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { N = 48, HEADS = 4, KV = 2 };

static int32_t *some_ids(int n) {
    int32_t *ids = malloc(sizeof *ids * (size_t)n);
    for (int i = 0; ids && i < n; i++)
        ids[i] = (i * 7 + 5) % H_SYNTH_VOCAB;
    return ids;
}

/* The page's meta JSON and data blob (decoded). */
static json_t *page_parts(const char *page, uint8_t **blob, size_t *n_blob) {
    const char *m0 = strstr(page, "id=\"av-meta\">"), *d0 = strstr(page, "id=\"av-data\">");
    if (!m0 || !d0) return NULL;
    m0 += strlen("id=\"av-meta\">");
    d0 += strlen("id=\"av-data\">");
    const char *m1 = strstr(m0, "</script>"), *d1 = strstr(d0, "</script>");
    if (!m1 || !d1 || av_base64_decode(d0, (size_t)(d1 - d0), blob, n_blob)) return NULL;
    return json_loadb(m0, (size_t)(m1 - m0), 0, NULL);
}

/* Queries of head h then keys of its key head, normalized as AttentionViz does: x (2N, d). */
static void normalized(const av_qk_view *v, int h, double *x) {
    int d = (int)v->q.shape[2];
    const float *q = (const float *)v->q.data + (size_t)h * N * d,
                *k = (const float *)v->k.data + (size_t)(h / (HEADS / KV)) * N * d;
    double mq[64] = {0}, mk[64] = {0}, nq = 0, nk = 0;
    for (int i = 0; i < N; i++)
        for (int c = 0; c < d; c++)
            mq[c] += q[i * d + c] / (double)N, mk[c] += k[i * d + c] / (double)N;
    for (int i = 0; i < N; i++) {
        double sq = 0, sk = 0;
        for (int c = 0; c < d; c++) {
            x[i * d + c] = q[i * d + c];
            x[(N + i) * d + c] = k[i * d + c] - mk[c] + mq[c];
            sq += x[i * d + c] * x[i * d + c];
            sk += x[(N + i) * d + c] * x[(N + i) * d + c];
        }
        nq += sqrt(sq) / N, nk += sqrt(sk) / N;
    }
    double c2 = sqrt(nk / nq);
    for (int i = 0; i < 2 * N * d; i++)
        x[i] *= i < N * d ? c2 : 1 / c2;
}

/* The properties of one head's map xy (2N, 2) against its normalized vectors x (2N, d). */
static void check_head(const float *xy, const double *x, int d, const double var[2], int h) {
    double mean[2] = {0, 0}, sxx = 0, syy = 0, sxy = 0, total = 0, m[64] = {0}, span = 0;
    for (int i = 0; i < 2 * N; i++)
        for (int a = 0; a < 2; a++)
            mean[a] += xy[2 * i + a] / (2 * N);
    for (int i = 0; i < 2 * N; i++) {
        double a = xy[2 * i] - mean[0], b = xy[2 * i + 1] - mean[1];
        sxx += a * a, syy += b * b, sxy += a * b;
        span = fmax(span, fmax(fabs(xy[2 * i]), fabs(xy[2 * i + 1])));
        for (int c = 0; c < d; c++)
            m[c] += x[i * d + c] / (2 * N);
    }
    for (int i = 0; i < 2 * N; i++)
        for (int c = 0; c < d; c++)
            total += (x[i * d + c] - m[c]) * (x[i * d + c] - m[c]);
    CHECKF(fabs(mean[0]) < 1e-5 * span && fabs(mean[1]) < 1e-5 * span, "head %d: mean (%g, %g)", h, mean[0],
           mean[1]);
    CHECKF(fabs(sxy) < 1e-5 * sxx && sxx >= syy, "head %d: axes correlated (%g) or out of order", h, sxy);
    CHECKF(fabs(sxx / total - var[0]) < 1e-5 && fabs(syy / total - var[1]) < 1e-5,
           "head %d: variance ratios %g %g, page %g %g", h, sxx / total, syy / total, var[0], var[1]);
    for (int i = 0; i < 2 * N; i += 7) /* a projection never stretches a distance */
        for (int j = i + 1; j < 2 * N; j += 5) {
            double d2 = 0, p2 = 0;
            for (int c = 0; c < d; c++)
                d2 += (x[i * d + c] - x[j * d + c]) * (x[i * d + c] - x[j * d + c]);
            for (int a = 0; a < 2; a++)
                p2 += (xy[2 * i + a] - xy[2 * j + a]) * (xy[2 * i + a] - xy[2 * j + a]);
            CHECKF(p2 <= d2 * (1 + 1e-5) + 1e-9, "head %d: points %d, %d are further apart in the map", h, i,
                   j);
        }
}

static void test_qkmap_page_is_a_pca_of_normalized_vectors(void) {
    av_model *m = h_synth_llama(64, 96, 2, HEADS, KV, 512);
    REQUIRE(m);
    int32_t *ids = some_ids(N);
    av_trace *t = NULL;
    av_err err = {{0}};
    av_run_params rp = av_run_default_params();
    rp.keep_qk = 1;
    REQUIREF(ids && av_trace_from_ids(m, ids, N, &rp, &t, &err) == 0, "%s", err.msg);
    av_html_params hp = av_html_default_params();
    hp.view = "qkmap";
    char *page = NULL;
    size_t n = 0, n_blob = 0;
    uint8_t *blob = NULL;
    REQUIREF(av_html_build(t, &hp, &page, &n, &err) == 0, "%s", err.msg);
    json_t *meta = page_parts(page, &blob, &n_blob),
           *K = json_object_get(json_object_get(meta, "qkmap"), "kinds");
    K = json_object_get(K, "self");
    REQUIRE(meta && K);
    json_t *maps = json_object_get(K, "maps");
    CHECK(json_array_size(maps) == 2 && json_array_size(json_object_get(K, "qpos")) == N &&
          json_array_size(json_object_get(K, "kpos")) == N);
    double *x = malloc(sizeof *x * 2 * N * 64); /* (2N, d) */
    for (size_t e = 0; x && e < json_array_size(maps); e++) {
        json_t *me = json_array_get(maps, e);
        int layer = (int)json_integer_value(json_object_get(me, "layer"));
        size_t off = (size_t)json_integer_value(json_object_get(me, "off"));
        av_qk_view v;
        REQUIRE(av_trace_qk(t, AV_ATTN_SELF, layer, &v, &err) == 0 && v.q.shape[2] <= 64);
        REQUIRE(off % 4 == 0 && off + sizeof(float) * HEADS * 2 * N * 2 <= n_blob);
        for (int h = 0; h < HEADS; h++) {
            json_t *vr = json_array_get(json_object_get(me, "var"), (size_t)h);
            double var[2] = {json_real_value(json_array_get(vr, 0)), json_real_value(json_array_get(vr, 1))};
            normalized(&v, h, x);
            check_head((const float *)(blob + off) + (size_t)h * 2 * N * 2, x, (int)v.q.shape[2], var, h);
        }
    }
    free(x);
    json_decref(meta);
    free(blob);
    av_free(page);
    av_trace_free(t);
    /* the same model without keep_qk: no map, a note, and --view qkmap refused */
    av_run_params plain = av_run_default_params();
    REQUIRE(av_trace_from_ids(m, ids, N, &plain, &t, &err) == 0);
    CHECK(av_html_build(t, &hp, &page, &n, &err) == -1 && strstr(err.msg, "--keep-qk"));
    hp.view = NULL;
    REQUIRE(av_html_build(t, &hp, &page, &n, &err) == 0);
    CHECK(!strstr(page, "\"qkmap\":{") && strstr(page, "\"qkmap_note\""));
    av_free(page);
    av_trace_free(t);
    free(ids);
    av_model_free(m);
}

int main(void) {
    RUN(test_qkmap_page_is_a_pca_of_normalized_vectors);
    return h_exit_code();
}
