/* Dequantization throughput of every weight type: av_dequantize on 16 rows of 2048 values (a tile the
 * matmul paths expand at a time; stays in L2), best of several repetitions. Prints one JSON line per type
 * with nanoseconds per value and GB/s of f32 written. bench/quant_mem.sh builds and runs it:
 *   cc -O2 -std=c11 -D_DEFAULT_SOURCE -Isrc -Iinclude bench/quant_bench.c build/libattnviz.a <the Makefile's
 * LIBS> */
#include "kernels/kernels.h"

#include <stdio.h>
#include <stdlib.h>

enum { COLS = 2048, ROWS = 16, N = COLS * ROWS, REPS = 200 };

int main(void) {
    float *x = malloc(sizeof(float) * N), *y = malloc(sizeof(float) * N);
    uint8_t *q = malloc(sizeof(float) * N);
    unsigned seed = 1;
    for (int i = 0; i < N; i++)
        x[i] = (float)rand_r(&seed) / RAND_MAX - 0.5f;
    for (int t = 0; t < AV_DTYPE_COUNT; t++) {
        if (!av_dtype_is_weight((av_dtype)t)) continue;
        /* types without a quantizer get random block bytes with a small f16 first field (every type's d but
         * Q2_K/Q3_K/Q6_K, whose values are then just larger: the speed does not depend on them) */
        if (av_quantize((av_dtype)t, x, q, N))
            for (int i = 0; i < N; i++)
                q[i] = (uint8_t)rand_r(&seed);
        double best = 1e30;
        for (int r = 0; r < REPS; r++) {
            double t0 = av_seconds();
            av_dequantize((av_dtype)t, q, y, N);
            double dt = av_seconds() - t0;
            if (dt < best) best = dt;
        }
        printf("{\"type\": \"%s\", \"ns_per_value\": %.3f, \"gb_per_s_f32\": %.2f}\n",
               av_dtype_name((av_dtype)t), best * 1e9 / N, 4.0 * N / best / 1e9);
    }
    free(x), free(y), free(q);
    return 0;
}
