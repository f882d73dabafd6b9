/* Times the lazy-trace readers at long context without running a model: random post-RoPE queries and keys
 * (32 heads of 64, 4 kv heads, like the 1B shape) for T tokens, then the overview of one head, one row,
 * and a zoomed tile. Usage: tile_bench [T] [threads]. Prints one JSON object. */
#include "trace/trace.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    int T = argc > 1 ? atoi(argv[1]) : 8192, H = 32, G = 4, D = 64;
    av_err err = {{0}};
    av_trace *t = av_trace_new();
    char **tokens = malloc(sizeof *tokens * (size_t)T);
    int32_t *ids = malloc(sizeof *ids * (size_t)T);
    for (int i = 0; i < T; i++)
        tokens[i] = av_strdup("tok"), ids[i] = i;
    av_trace_set_tokens(t, tokens, ids, T, &err);
    float **q = malloc(sizeof *q), **k = malloc(sizeof *k);
    q[0] = malloc(sizeof(float) * (size_t)H * (size_t)T * D); /* (H, T, D) */
    k[0] = malloc(sizeof(float) * (size_t)G * (size_t)T * D); /* (G, T, D) */
    unsigned seed = 1;
    for (size_t i = 0; i < (size_t)H * T * D; i++)
        q[0][i] = ((float)rand_r(&seed) / RAND_MAX - 0.5f) * 2.0f;
    for (size_t i = 0; i < (size_t)G * T * D; i++)
        k[0][i] = ((float)rand_r(&seed) / RAND_MAX - 0.5f) * 2.0f;
    if (av_trace_set_qk(t, q, k, 1, H, G, D, 0.125f, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    float *out = malloc(sizeof(float) * 512 * 512);
    double best_overview = 1e9, best_row = 1e9, best_zoom = 1e9;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = av_seconds();
        if (av_trace_attn_tile(t, "self", 0, rep % H, 0, T, 0, T, 512, 512, AV_POOL_MAX, out, &err)) return 1;
        double t1 = av_seconds();
        if (av_trace_attn_row(t, "self", 0, rep, T - 1, out, &err)) return 1;
        double t2 = av_seconds();
        if (av_trace_attn_tile(t, "self", 0, rep, T / 2, T / 2 + 256, T / 4, T / 4 + 256, 256, 256,
                               AV_POOL_MEAN, out, &err))
            return 1;
        double t3 = av_seconds();
        best_overview = t1 - t0 < best_overview ? t1 - t0 : best_overview;
        best_row = t2 - t1 < best_row ? t2 - t1 : best_row;
        best_zoom = t3 - t2 < best_zoom ? t3 - t2 : best_zoom;
    }
    printf("{\"tokens\": %d, \"overview_512x512_ms\": %.1f, \"row_ms\": %.2f, \"zoom_256x256_exact_ms\": "
           "%.1f}\n",
           T, best_overview * 1e3, best_row * 1e3, best_zoom * 1e3);
    av_trace_free(t);
    free(out);
    return 0;
}
