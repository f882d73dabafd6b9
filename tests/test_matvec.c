/* The matrix-vector products of token-by-token generation (src/kernels/matvec*.c, through av_matmul with 1-7
 * rows of x) against double precision over the dequantized rows, on every GEMM path this CPU runs, for every
 * weight dtype: those with row kernels of their own (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K) and those
 * expanded a block at a time (the others).
 *
 * Bound (docs/ARCHITECTURE.md, "Matrix-vector products"): every weight is its exact f32 value w_k (what
 * av_dequantize_rows gives), every product w_k x_k and every sum is one f32 operation, so with any order of
 * summation |y - exact| <= gamma(in + 2) sum_k |w_k x_k|, gamma(n) = n u / (1 - n u), u = 2^-24. */
#include "gemm_paths.h"
#include "harness.h"
#include "kernels/kernels.h"
#include "quant_blocks.h"

#include <stdint.h>

static float frand(unsigned *seed, float scale) {
    return ((float)rand_r(seed) / (float)RAND_MAX * 2 - 1) * scale;
}

static const av_dtype types[] = {AV_DTYPE_F32,  AV_DTYPE_F16,    AV_DTYPE_BF16,  AV_DTYPE_Q8_0,
                                 AV_DTYPE_Q4_0, AV_DTYPE_Q4_K,   AV_DTYPE_Q5_K,  AV_DTYPE_Q6_K,
                                 AV_DTYPE_Q4_1, AV_DTYPE_Q5_0,   AV_DTYPE_Q5_1,  AV_DTYPE_Q2_K,
                                 AV_DTYPE_Q3_K, AV_DTYPE_IQ4_NL, AV_DTYPE_IQ4_XS};

/* A weight (out, in) of dtype t: random blocks (quantized types) or random values; *wf: its f32 values. */
static av_tensor make_weight(av_dtype t, int out, int in, unsigned seed, float **wf) {
    size_t bytes = 0;
    uint8_t *data;
    if (av_dtype_block_size(t) > 1) {
        data = qb_random(t, (int64_t)out * in, seed, &bytes);
    } else {
        av_dtype_nbytes(t, (size_t)out * (size_t)in, &bytes);
        data = malloc(bytes);
        for (size_t i = 0; i < (size_t)out * in; i++) {
            float v = frand(&seed, 0.3f);
            if (t == AV_DTYPE_F32) ((float *)data)[i] = v;
            if (t == AV_DTYPE_F16) ((uint16_t *)data)[i] = av_f32_to_f16(v);
            if (t == AV_DTYPE_BF16) ((uint16_t *)data)[i] = av_f32_to_bf16(v);
        }
    }
    av_tensor w = {t, 2, {out, in, 0, 0}, data, bytes};
    *wf = malloc(sizeof(float) * (size_t)out * in);
    av_dequantize_rows(&w, 0, out, *wf);
    return w;
}

/* Worst |y - exact| / (gamma(in + 2) sum |w x|) over y (n, out) = x (n, in) wf^T; NaN counts as worst. */
static double worst_vs_bound(const float *y, const float *x, const float *wf, int n, int out, int in) {
    double u = ldexp(1.0, -24), gamma = (in + 2) * u / (1 - (in + 2) * u), worst = 0;
    for (int i = 0; i < n; i++)
        for (int o = 0; o < out; o++) {
            double exact = 0, mag = 0;
            for (int k = 0; k < in; k++) {
                double t = (double)x[(size_t)i * in + k] * wf[(size_t)o * in + k];
                exact += t, mag += fabs(t);
            }
            double r = fabs(y[(size_t)i * out + o] - exact) / (gamma * mag + 1e-300);
            if (!(r <= worst)) worst = r;
        }
    return worst;
}

/* Widths: one and several 256-value super-blocks, past the 4096-column blocks; for 32-value blocks an odd
 * count of them; for float types also widths off every vector length. */
static const int widths_k[] = {256, 2304, 4352}, widths_legacy[] = {96, 2080},
                 widths_float[] = {1, 13, 70, 4107};

static void matvec_within_bound(av_gemm_path path) {
    enum { OUT = 37, NMAX = AV_GEMV_MAX_ROWS };
    double worst = 0;
    for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++) {
        av_dtype t = types[ti];
        int bs = av_dtype_block_size(t);
        const int *widths = bs == AV_QK_K ? widths_k : bs == AV_QK ? widths_legacy : widths_float;
        int n_widths = bs == AV_QK_K ? 3 : bs == AV_QK ? 2 : 4;
        for (int wi = 0; wi < n_widths; wi++) {
            int in = widths[wi];
            unsigned seed = (unsigned)(ti * 16 + wi + 1);
            float *wf, *x = malloc(sizeof(float) * NMAX * (size_t)in),
                       *y = malloc(sizeof(float) * NMAX * OUT);
            av_tensor w = make_weight(t, OUT, in, seed, &wf);
            for (int i = 0; i < NMAX * in; i++)
                x[i] = frand(&seed, 2.0f);
            static const int ns[] = {1, 2, 3, 4, 5, 7};
            for (size_t k = 0; k < sizeof ns / sizeof *ns; k++) {
                memset(y, 0xff, sizeof(float) * NMAX * OUT); /* NaN: every output must be written */
                av_matmul(y, x, &w, ns[k], NULL, 2);
                double r = worst_vs_bound(y, x, wf, ns[k], OUT, in);
                CHECKF(r <= 1, "%s, %d x %d x %d: error %.3g of the bound", av_dtype_name(t), ns[k], OUT, in,
                       r);
                worst = r > worst ? r : worst;
            }
            free(wf), free(x), free(y), free((void *)w.data);
        }
    }
    printf("# %s: worst error %.3g of the bound gamma(in+2) sum |w x|\n", av_gemm_path_name(path), worst);
}

/* A row's result does not depend on how the rows are split between threads, nor on the other weights of an
 * av_matmul_many call (q/k/v, gate/up: one split over all their rows). */
static void matvec_split_invariant(av_gemm_path path) {
    enum { N = 3, IN = 512 };
    const av_dtype dts[3] = {AV_DTYPE_Q4_K, AV_DTYPE_Q6_K, AV_DTYPE_F16};
    const int outs[3] = {101, 64, 33};
    float x[N * IN];
    unsigned seed = 11;
    for (int i = 0; i < N * IN; i++)
        x[i] = frand(&seed, 1.0f);
    av_tensor w[3];
    const av_tensor *wp[3];
    float *many[3], *one[3], *two[3], *wf[3];
    for (int k = 0; k < 3; k++) {
        w[k] = make_weight(dts[k], outs[k], IN, (unsigned)k + 30, &wf[k]);
        wp[k] = &w[k];
        many[k] = malloc(sizeof(float) * N * (size_t)outs[k]);
        one[k] = malloc(sizeof(float) * N * (size_t)outs[k]);
        two[k] = malloc(sizeof(float) * N * (size_t)outs[k]);
        av_matmul(one[k], x, &w[k], N, NULL, 1);
        av_matmul(two[k], x, &w[k], N, NULL, 2);
    }
    av_matmul_many(many, x, wp, 3, N, NULL, 2);
    for (int k = 0; k < 3; k++) {
        size_t bytes = sizeof(float) * N * (size_t)outs[k];
        CHECKF(memcmp(one[k], two[k], bytes) == 0, "%s: 1 and 2 threads differ", av_dtype_name(dts[k]));
        CHECKF(memcmp(one[k], many[k], bytes) == 0, "%s: av_matmul_many differs from av_matmul",
               av_dtype_name(dts[k]));
        free(many[k]), free(one[k]), free(two[k]), free(wf[k]), free((void *)w[k].data);
    }
    (void)path;
}

/* The contract of the row kernels (matvec.h): on a path, a row of any dtype with a kernel of its own gives
 * the bits its F32 expansion gives (each value expanded exactly, into the F32 kernel's lane and slot, in
 * order), whatever the conversion sequence and prefetch schedule. Widths up to 4096 (the expanded path's
 * block) on the scalar path, so that its expanded rows are one block too; on the vector paths also 4352
 * (17 super-blocks: past the AVX-512 K-quant kernels' group of 16 whose factors are computed at once), with
 * the block scales gathered and converted in place (av_fast_gathers: the AVX-512 kernels have both). */
static void matvec_bits_of_f32_with(av_gemm_path path, int fast_gathers);
static void matvec_bits_of_f32(av_gemm_path path) {
    for (int g = 0; g < 2; g++)
        matvec_bits_of_f32_with(path, g);
    av_fast_gathers_set(-1);
}

static void matvec_bits_of_f32_with(av_gemm_path path, int fast_gathers) {
    av_fast_gathers_set(fast_gathers);
    enum { OUT = 19 };
    static const int widths[] = {256, 2304, 4096, 4352};
    static const av_dtype own[] = {AV_DTYPE_F16,  AV_DTYPE_BF16, AV_DTYPE_Q8_0, AV_DTYPE_Q4_0,
                                   AV_DTYPE_Q4_K, AV_DTYPE_Q5_K, AV_DTYPE_Q6_K};
    for (size_t ti = 0; ti < sizeof own / sizeof *own; ti++)
        for (int wi = 0; wi < 4; wi++) {
            int in = widths[wi];
            if (path == AV_GEMM_SCALAR && in > 4096) continue;
            unsigned seed = (unsigned)(100 + ti * 8 + wi);
            float *wf, *x = malloc(sizeof(float) * AV_GEMV_MAX_ROWS * (size_t)in),
                       *yq = malloc(sizeof(float) * AV_GEMV_MAX_ROWS * OUT),
                       *yf = malloc(sizeof(float) * AV_GEMV_MAX_ROWS * OUT);
            av_tensor w = make_weight(own[ti], OUT, in, seed, &wf);
            av_tensor w32 = {AV_DTYPE_F32, 2, {OUT, in, 0, 0}, wf, sizeof(float) * OUT * (size_t)in};
            for (int i = 0; i < AV_GEMV_MAX_ROWS * in; i++)
                x[i] = frand(&seed, 2.0f);
            for (int n = 1; n <= AV_GEMV_MAX_ROWS; n += 3) { /* 1, 4 and 7 rows of x */
                av_matmul(yq, x, &w, n, NULL, 2);
                av_matmul(yf, x, &w32, n, NULL, 2);
                int same = memcmp(yq, yf, sizeof(float) * (size_t)n * OUT) == 0;
                CHECKF(same, "%s, %d x %d x %d: not the bits of the F32 expansion on %s (gathers %d)",
                       av_dtype_name(own[ti]), n, OUT, in, av_gemm_path_name(path), fast_gathers);
            }
            free(wf), free(x), free(yq), free(yf), free((void *)w.data);
        }
}

/* av_fast_gathers follows the CPU's vendor (/proc/cpuinfo's vendor_id: 1 for GenuineIntel) unless forced, and
 * av_fast_gathers_set(-1) gives the CPU's answer back. */
static void fast_gathers_follow_vendor(void) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) SKIP("no /proc/cpuinfo");
    char line[256], vendor[64] = "";
    while (!vendor[0] && fgets(line, sizeof line, f))
        if (sscanf(line, "vendor_id : %63s", vendor) != 1) vendor[0] = 0;
    fclose(f);
    if (!vendor[0]) SKIP("no vendor_id in /proc/cpuinfo");
    CHECKF(av_fast_gathers() == (strcmp(vendor, "GenuineIntel") == 0), "vendor %s: av_fast_gathers() = %d",
           vendor, av_fast_gathers());
    av_fast_gathers_set(1);
    CHECK(av_fast_gathers() == 1);
    av_fast_gathers_set(0);
    CHECK(av_fast_gathers() == 0);
    av_fast_gathers_set(-1);
    CHECK(av_fast_gathers() == (strcmp(vendor, "GenuineIntel") == 0));
}

ON_ALL_PATHS(matvec_within_bound)
ON_OWN_PATHS(matvec_bits_of_f32)
ON_PATH(matvec_bits_of_f32, AMX) /* the sgemm path keeps OpenBLAS's sgemv for F32 weights */
ON_ALL_PATHS(matvec_split_invariant)

int main(void) {
    RUN(fast_gathers_follow_vendor);
    RUN(matvec_within_bound_SCALAR);
    RUN(matvec_within_bound_AVX2);
    RUN(matvec_within_bound_AVX512);
    RUN(matvec_within_bound_AMX);
    RUN(matvec_within_bound_SGEMM);
    RUN(matvec_bits_of_f32_SCALAR);
    RUN(matvec_bits_of_f32_AVX2);
    RUN(matvec_bits_of_f32_AVX512);
    RUN(matvec_bits_of_f32_AMX);
    RUN(matvec_split_invariant_SCALAR);
    RUN(matvec_split_invariant_AVX2);
    RUN(matvec_split_invariant_AVX512);
    RUN(matvec_split_invariant_AMX);
    RUN(matvec_split_invariant_SGEMM);
    return h_exit_code();
}
