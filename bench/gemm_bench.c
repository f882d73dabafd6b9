/* GEMM benchmark on the 1B model's shapes (docs/BENCHMARKS.md). Prints JSON lines:
 *  - "matmul": y = x W^T with F16 weights through av_matmul on every GEMM path this CPU supports (avx512,
 * avx2, amx, sgemm; scalar only on the small shape), best of 3, with each path's max error against double
 * precision (relative to max |y|, first 64 rows);
 *  - "own_f32_peak": the project's f32 GEMM (av_gemm_f32, x W^T with f32 W) on the shapes bench/sgemm_peak.c
 *    times OpenBLAS on, per kernel: run.sh takes the better of this and OpenBLAS as the f32 GEMM limit;
 *  - "generation": token-by-token matrix-vector products (av_matmul, 1 row) streaming ~0.5 GB of F16 and
 *    Q8_0 weights, in GB/s of weights read, against a STREAM-like copy (a = b, 2 x 256 MiB, bytes read +
 *    written) on the same threads in the same run.
 * Usage: gemm_bench [T] [threads] */
#include "kernels/kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static float frand(unsigned *seed) { return (float)rand_r(seed) / (float)RAND_MAX * 2 - 1; }

static double max_rel_err(const float *y, const double *ref, size_t n) {
    double worst = 0, scale = 0;
    for (size_t i = 0; i < n; i++)
        scale = fmax(scale, fabs(ref[i]));
    for (size_t i = 0; i < n; i++)
        worst = fmax(worst, fabs(y[i] - ref[i]));
    return worst / scale;
}

static const av_gemm_path bench_paths[] = {AV_GEMM_AVX512, AV_GEMM_AVX2, AV_GEMM_AMX, AV_GEMM_SGEMM,
                                           AV_GEMM_SCALAR};

/* y = x W^T, W F16 (out, in), on each supported path. */
static void run_matmul(int T, int out, int in, int threads) {
    unsigned seed = 7;
    float *x = malloc(sizeof(float) * (size_t)T * in);    /* (T, in) */
    uint16_t *w16 = malloc(2 * (size_t)out * in);         /* (out, in) f16 */
    float *wf = malloc(sizeof(float) * (size_t)out * in); /* (out, in): scratch of the sgemm path */
    float *y = malloc(sizeof(float) * (size_t)T * out);   /* (T, out) */
    int rows = T < 64 ? T : 64;
    double *ref = malloc(sizeof(double) * (size_t)rows * out);
    for (size_t i = 0; i < (size_t)T * in; i++)
        x[i] = frand(&seed);
    for (size_t i = 0; i < (size_t)out * in; i++)
        w16[i] = av_f32_to_f16(frand(&seed) * 0.05f);
    av_tensor w = {
        .dtype = AV_DTYPE_F16, .ndim = 2, .shape = {out, in}, .data = w16, .nbytes = 2 * (size_t)out * in};
    av_dequantize_rows(&w, 0, out, wf);
    for (int t = 0; t < rows; t++)
        for (int o = 0; o < out; o++) {
            double acc = 0;
            for (int k = 0; k < in; k++)
                acc += (double)x[(size_t)t * in + k] * wf[(size_t)o * in + k];
            ref[(size_t)t * out + o] = acc;
        }
    printf("{\"matmul\": {\"T\": %d, \"out\": %d, \"in\": %d, \"dtype\": \"f16\"", T, out, in);
    for (size_t p = 0; p < sizeof bench_paths / sizeof *bench_paths; p++) {
        if (av_gemm_path_set(bench_paths[p]) != 0) continue;
        if (bench_paths[p] == AV_GEMM_SCALAR && (double)T * out * in > 1e8)
            continue; /* minutes on big shapes */
        double best = 1e30;
        for (int rep = 0; rep < 3; rep++) {
            double t0 = av_seconds();
            av_matmul(y, x, &w, T, wf, threads);
            best = fmin(best, av_seconds() - t0);
        }
        printf(", \"%s\": {\"gflops\": %.1f, \"max_rel_err\": %.2e}", av_gemm_path_name(bench_paths[p]),
               2.0 * T * out * in / best / 1e9, max_rel_err(y, ref, (size_t)rows * out));
    }
    printf("}}\n");
    free(x), free(w16), free(wf), free(y), free(ref);
}

/* GFLOP/s of C (m, n) = A (m, k) B^T with B (n, k), all f32, best of reps. */
static double f32_gflops(int m, int n, int k, int threads, int reps) {
    float *a = malloc(sizeof(float) * (size_t)m * k), *b = malloc(sizeof(float) * (size_t)n * k);
    float *c = malloc(sizeof(float) * (size_t)m * n);
    for (size_t i = 0; i < (size_t)m * k; i++)
        a[i] = (float)(i % 7) * 0.01f;
    for (size_t i = 0; i < (size_t)n * k; i++)
        b[i] = (float)(i % 5) * 0.01f;
    double best = 1e30;
    for (int r = 0; r <= reps; r++) { /* the first run warms up */
        double t0 = av_seconds();
        av_gemm_f32(0, 1, m, n, k, 1.0f, a, k, b, k, 0.0f, c, n, threads);
        if (r) best = fmin(best, av_seconds() - t0);
    }
    free(a), free(b), free(c);
    return 2.0 * m * n * k / best / 1e9;
}

static void run_own_peak(int T, int threads) {
    static const av_gemm_path paths[] = {AV_GEMM_AVX512, AV_GEMM_AVX2};
    printf("{\"own_f32_peak\": {\"threads\": %d", threads);
    for (size_t p = 0; p < sizeof paths / sizeof *paths; p++) {
        if (av_gemm_path_set(paths[p]) != 0) continue;
        double g[4] = {f32_gflops(2048, 2048, 2048, threads, 8), f32_gflops(T, 2048, 2048, threads, 12),
                       f32_gflops(T, 5632, 2048, threads, 12), f32_gflops(T, 2048, 5632, threads, 12)};
        double peak = fmax(fmax(g[0], g[1]), fmax(g[2], g[3]));
        printf(", \"%s\": {\"gflops_2048_cube\": %.1f, \"gflops_T_2048_2048\": %.1f, \"gflops_T_5632_2048\": "
               "%.1f, "
               "\"gflops_T_2048_5632\": %.1f, \"peak_gflops\": %.1f}",
               av_gemm_path_name(paths[p]), g[0], g[1], g[2], g[3], peak);
    }
    printf("}}\n");
}

/* ---- token-by-token generation against a STREAM-like copy ---- */

typedef struct copy_job {
    float *dst;
    const float *src;
} copy_job;

static void copy_range(void *ctx, int tid, int64_t i0, int64_t i1) {
    const copy_job *j = ctx;
    memcpy(j->dst + i0, j->src + i0, sizeof(float) * (size_t)(i1 - i0));
}

/* STREAM "copy" in GB/s: bytes read + written, best of 5, the threads copying disjoint halves. */
static double copy_gbps(int threads) {
    size_t n = (size_t)64 << 20; /* 256 MiB each */
    float *a = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++)
        a[i] = (float)i, b[i] = 0;
    copy_job j = {b, a};
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        double t0 = av_seconds();
        av_parallel_for(threads, (int64_t)n, copy_range, &j);
        best = fmin(best, av_seconds() - t0);
    }
    free(a), free(b);
    return 2.0 * sizeof(float) * (double)n / best / 1e9;
}

/* GB/s of weights read by 1-row products over `layers` weights (out, in) of dtype t (F16 or Q8_0). */
static double gemv_gbps(av_dtype t, int layers, int out, int in, int threads) {
    size_t numel = (size_t)out * in, bytes = 0;
    av_dtype_nbytes(t, numel, &bytes);
    unsigned char *data = malloc(bytes * (size_t)layers);
    float *row = malloc(sizeof(float) * numel), x[8192], y[8192];
    unsigned seed = 3;
    for (size_t i = 0; i < numel; i++)
        row[i] = frand(&seed) * 0.05f;
    for (int l = 0; l < layers; l++) {
        unsigned char *d = data + (size_t)l * bytes;
        if (t == AV_DTYPE_Q8_0)
            av_quantize_q8_0(row, (av_block_q8_0 *)d, numel);
        else
            for (size_t i = 0; i < numel; i++)
                ((uint16_t *)d)[i] = av_f32_to_f16(row[i]);
    }
    for (int i = 0; i < in; i++)
        x[i] = frand(&seed);
    double best = 1e30;
    for (int r = 0; r < 3; r++) {
        double t0 = av_seconds();
        for (int l = 0; l < layers; l++) {
            av_tensor w = {t, 2, {out, in}, data + (size_t)l * bytes, bytes};
            av_matmul(y, x, &w, 1, NULL, threads);
        }
        best = fmin(best, av_seconds() - t0);
    }
    free(data), free(row);
    return (double)bytes * layers / best / 1e9;
}

static void run_generation(int threads) {
    double copy = copy_gbps(threads);
    double f16 = gemv_gbps(AV_DTYPE_F16, 24, 5632, 2048, threads),
           q8 = gemv_gbps(AV_DTYPE_Q8_0, 24, 5632, 2048, threads);
    printf("{\"generation\": {\"threads\": %d, \"gemm_path\": \"%s\", \"copy_gbps\": %.1f, "
           "\"f16_weights_gbps\": %.1f, "
           "\"q8_0_weights_gbps\": %.1f, \"f16_vs_copy\": %.2f, \"q8_0_vs_copy\": %.2f}}\n",
           threads, av_gemm_path_name(av_gemm_path_get()), copy, f16, q8, f16 / copy, q8 / copy);
}

int main(int argc, char **argv) {
    int T = argc > 1 ? atoi(argv[1]) : 512, threads = argc > 2 ? atoi(argv[2]) : 2;
    av_kernels_init();
    av_gemm_path fastest = av_gemm_path_get();
    run_matmul(T, 2048, 2048, threads);
    run_matmul(T, 256, 2048, threads);
    run_matmul(T, 5632, 2048, threads);
    run_matmul(T, 2048, 5632, threads);
    run_matmul(37, 45, 70, threads);
    run_own_peak(T, threads);
    av_gemm_path_set(fastest);
    run_generation(threads);
    return 0;
}
