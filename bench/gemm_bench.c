/* Times y = x W^T the two ways attnviz can run it, on the 1B model's prompt shapes: OpenBLAS sgemm (f32,
 * weights converted from f16 first, as av_matmul does without AMX) and the AMX split-bf16 kernel (when the
 * CPU has it), and reports each one's max relative error against a double-precision reference.
 * Usage: gemm_bench [T] [threads]. Prints one JSON object per shape. */
#include "kernels/kernels.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static double max_rel_err(const float *y, const double *ref, size_t n) {
    double worst = 0, scale = 0;
    for (size_t i = 0; i < n; i++)
        scale = fmax(scale, fabs(ref[i]));
    for (size_t i = 0; i < n; i++)
        worst = fmax(worst, fabs(y[i] - ref[i]));
    return worst / scale;
}

static void run_shape(int T, int out, int in, int threads) {
    unsigned seed = 7;
    float *x = malloc(sizeof(float) * (size_t)T * in);    /* (T, in) */
    uint16_t *w16 = malloc(2 * (size_t)out * in);         /* (out, in) f16 */
    float *wf = malloc(sizeof(float) * (size_t)out * in); /* (out, in) */
    float *y = malloc(sizeof(float) * (size_t)T * out);   /* (T, out) */
    double *ref = malloc(sizeof(double) * (size_t)T * out);
    for (size_t i = 0; i < (size_t)T * in; i++)
        x[i] = (float)rand_r(&seed) / RAND_MAX * 2 - 1;
    for (size_t i = 0; i < (size_t)out * in; i++)
        w16[i] = av_f32_to_f16(((float)rand_r(&seed) / RAND_MAX * 2 - 1) * 0.05f);
    av_tensor w = {
        .dtype = AV_DTYPE_F16, .ndim = 2, .shape = {out, in}, .data = w16, .nbytes = 2 * (size_t)out * in};
    av_dequantize_rows(&w, 0, out, wf);
    int rows_checked = T < 64 ? T : 64; /* reference on the first rows: O(64 out in) in double */
    for (int t = 0; t < rows_checked; t++)
        for (int o = 0; o < out; o++) {
            double acc = 0;
            for (int k = 0; k < in; k++)
                acc += (double)x[(size_t)t * in + k] * wf[(size_t)o * in + k];
            ref[(size_t)t * out + o] = acc;
        }
    double flop = 2.0 * T * out * in, best_s = 1e9, best_a = 1e9;
    double err_s, err_a = -1;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = av_seconds();
        av_matmul(y, x, &w, T, wf, threads); /* the default path (AMX when ready) */
        double t1 = av_seconds();
        if (t1 - t0 < best_a) best_a = t1 - t0;
    }
    err_a = max_rel_err(y, ref, (size_t)rows_checked * out);
    for (int rep = 0; rep < 3; rep++) {
        double t0 = av_seconds();
        av_dequantize_rows(&w, 0, out, wf);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, out, in, 1.0f, x, in, wf, in, 0.0f, y, out);
        double t1 = av_seconds();
        if (t1 - t0 < best_s) best_s = t1 - t0;
    }
    err_s = max_rel_err(y, ref, (size_t)rows_checked * out);
    printf("{\"T\": %d, \"out\": %d, \"in\": %d, \"amx\": %d, \"default_gflops\": %.1f, "
           "\"default_max_rel_err\": %.2e, "
           "\"sgemm_gflops\": %.1f, \"sgemm_max_rel_err\": %.2e}\n",
           T, out, in, av_amx_ready(), flop / best_a / 1e9, err_a, flop / best_s / 1e9, err_s);
    free(x), free(w16), free(wf), free(y), free(ref);
}

int main(int argc, char **argv) {
    int T = argc > 1 ? atoi(argv[1]) : 512, threads = argc > 2 ? atoi(argv[2]) : 2;
    openblas_set_num_threads(threads);
    run_shape(T, 2048, 2048, threads);
    run_shape(T, 256, 2048, threads);
    run_shape(T, 5632, 2048, threads);
    run_shape(T, 2048, 5632, threads);
    run_shape(37, 45, 70, threads);
    return 0;
}
