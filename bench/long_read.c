/* Times the readers of a long trace through the API: the overview of heads (the whole matrix in the stored
 * overview's cells: one head max- and mean-pooled, the mean of all heads), single rows (one head, the mean of
 * heads) at random layers and queries, and a zoomed exact 256 x 256 tile. The first read of each kind pays
 * for page faults; the medians and maxima over the repeats are printed. Usage: long_read TRACE [repeats].
 * Prints one JSON object. */
#include "attnviz.h"

#include <stdio.h>
#include <stdlib.h>

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* median and max of n times, in ms */
static void stats(double *t, int n, double *median, double *max) {
    qsort(t, (size_t)n, sizeof *t, cmp);
    *median = t[n / 2] * 1e3;
    *max = t[n - 1] * 1e3;
}

int main(int argc, char **argv) {
    if (argc < 2) return fprintf(stderr, "usage: long_read TRACE [repeats]\n"), 2;
    int reps = argc > 2 ? atoi(argv[2]) : 10;
    av_err err = {{0}};
    av_trace *t;
    double t0 = av_seconds();
    if (av_trace_load(argv[1], &t, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    double load = av_seconds() - t0;
    int L = av_trace_n_layers(t, AV_ATTN_SELF), H = av_trace_n_heads(t, AV_ATTN_SELF),
        T = av_trace_n_query(t, AV_ATTN_SELF), R, C;
    av_trace_overview_cells(t, AV_ATTN_SELF, &R, &C);
    if (!R) R = C = T < 1024 ? T : 1024; /* no overview: recomputed */
    float *out = malloc(sizeof(float) * (size_t)(R * C > T ? R * C : T) + 256 * 256 * sizeof(float));
    double *ov_max = calloc((size_t)reps, sizeof(double)), *ov_mean = calloc((size_t)reps, sizeof(double)),
           *ov_heads = calloc((size_t)reps, sizeof(double)), *row = calloc((size_t)reps, sizeof(double)),
           *row_mean = calloc((size_t)reps, sizeof(double)), *zoom = calloc((size_t)reps, sizeof(double));
    unsigned seed = 1;
    for (int i = 0; i < reps; i++) {
        int l = (int)(rand_r(&seed) % (unsigned)L), h = (int)(rand_r(&seed) % (unsigned)H);
        int q = T - 1 - (int)(rand_r(&seed) % (unsigned)(T / 2)), z = q + 1 - 256; /* zoom: the diagonal */
        double a = av_seconds();
        int rc = av_trace_attn_tile(t, AV_ATTN_SELF, l, h, 0, T, 0, T, R, C, AV_POOL_MAX, out, &err);
        double b = av_seconds();
        rc = rc || av_trace_attn_tile(t, AV_ATTN_SELF, l, h, 0, T, 0, T, R, C, AV_POOL_MEAN, out, &err);
        double c = av_seconds();
        rc = rc ||
             av_trace_attn_tile(t, AV_ATTN_SELF, l, AV_HEADS_MEAN, 0, T, 0, T, R, C, AV_POOL_MEAN, out, &err);
        double d = av_seconds();
        rc = rc || av_trace_attn_row(t, AV_ATTN_SELF, l, h, q, out, &err);
        double e = av_seconds();
        rc = rc || av_trace_attn_row(t, AV_ATTN_SELF, l, AV_HEADS_MEAN, q, out, &err);
        double f = av_seconds();
        rc = rc || av_trace_attn_tile(t, AV_ATTN_SELF, l, h, z, z + 256, z, z + 256, 256, 256, AV_POOL_MAX,
                                      out, &err);
        double g = av_seconds();
        if (rc) return fprintf(stderr, "%s\n", err.msg), 1;
        ov_max[i] = b - a, ov_mean[i] = c - b, ov_heads[i] = d - c, row[i] = e - d, row_mean[i] = f - e;
        zoom[i] = g - f;
    }
    double m[6][2];
    double *all[6] = {ov_max, ov_mean, ov_heads, row, row_mean, zoom};
    for (int k = 0; k < 6; k++)
        stats(all[k], reps, &m[k][0], &m[k][1]);
    printf("{\"tokens\": %d, \"layers\": %d, \"heads\": %d, \"overview_cells\": %d, \"load_ms\": %.1f, "
           "\"overview_head_max_ms\": [%.2f, %.2f], \"overview_head_mean_ms\": [%.2f, %.2f], "
           "\"overview_mean_of_heads_ms\": [%.2f, %.2f], \"row_ms\": [%.2f, %.2f], \"row_mean_of_heads_ms\": "
           "[%.2f, %.2f], \"zoom_256_exact_ms\": [%.2f, %.2f]}\n",
           T, L, H, R, load * 1e3, m[0][0], m[0][1], m[1][0], m[1][1], m[2][0], m[2][1], m[3][0], m[3][1],
           m[4][0], m[4][1], m[5][0], m[5][1]);
    av_trace_free(t);
    return 0;
}
