/* Measures this machine's OpenBLAS sgemm throughput (GFLOP/s) on the shapes a Llama prompt pass uses:
 * x (T, in) times W^T (in, out). Prints one JSON object. Usage: sgemm_peak [T] [threads] */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

void openblas_set_num_threads(int);

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double measure(int m, int n, int k, int reps) {
    float *a = malloc(sizeof(float) * (size_t)m * (size_t)k); /* (m, k) */
    float *b = malloc(sizeof(float) * (size_t)n * (size_t)k); /* (n, k) */
    float *c = malloc(sizeof(float) * (size_t)m * (size_t)n); /* (m, n) */
    if (!a || !b || !c) return 0;
    for (size_t i = 0; i < (size_t)m * (size_t)k; i++)
        a[i] = (float)(i % 7) * 0.01f;
    for (size_t i = 0; i < (size_t)n * (size_t)k; i++)
        b[i] = (float)(i % 5) * 0.01f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a, k, b, k, 0.0f, c, n); /* warm up */
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a, k, b, k, 0.0f, c, n);
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    free(a);
    free(b);
    free(c);
    return 2.0 * m * n * k / best / 1e9;
}

int main(int argc, char **argv) {
    int T = argc > 1 ? atoi(argv[1]) : 512;
    int threads = argc > 2 ? atoi(argv[2]) : 2;
    openblas_set_num_threads(threads);
    double sq = measure(2048, 2048, 2048, 8); /* best of many: a noisy low "peak" would flatter the limit */
    double qkv = measure(T, 2048, 2048, 12);
    double ffn = measure(T, 5632, 2048, 12);
    double down = measure(T, 2048, 5632, 12);
    double peak = sq > qkv ? sq : qkv;
    peak = ffn > peak ? ffn : peak;
    peak = down > peak ? down : peak;
    printf("{\"threads\": %d, \"gflops_2048_cube\": %.1f, \"gflops_T_2048_2048\": %.1f, "
           "\"gflops_T_5632_2048\": %.1f, "
           "\"gflops_T_2048_5632\": %.1f, \"peak_gflops\": %.1f}\n",
           threads, sq, qkv, ffn, down, peak);
    return 0;
}
