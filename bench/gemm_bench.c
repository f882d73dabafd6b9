/* GEMM benchmark on the 1B model's shapes (docs/BENCHMARKS.md). Prints JSON lines:
 *  - "matmul": y = x W^T with F16 weights through av_matmul on every GEMM path this CPU supports (avx512,
 * avx2, amx, sgemm; scalar only on the small shape), best of 5 after a warm-up call, with each path's max
 * error against double precision (relative to max |y|, first 64 rows); then Q8_0, Q4_K and Q6_K weights
 * (random blocks) on the own vector paths and amx: conversion from the stored type included;
 *  - "own_f32_peak": the project's f32 GEMM (av_gemm_f32, x W^T with f32 W) on the shapes bench/sgemm_peak.c
 *    times OpenBLAS on, per kernel: run.sh takes the better of this and OpenBLAS as the f32 GEMM limit;
 *  - "ukernel": each own micro-kernel alone (x tiles in L1, a 256-feature block of packed weights in L2, as
 * in av_gemm_weights) on all threads at once, against the FMA ceiling of the same threads (independent fused
 * multiply-add chains in registers, same vector width), interleaved: "vs_fma_peak" says how much of the
 * arithmetic units the kernel uses, whatever the clock of the minute;
 *  - "generation": token-by-token matrix-vector products (av_matmul, 1 row, and 4 rows: "rows4") over
 *    weights of 5632 x 2048, as many as make 768 MiB (beyond the last-level cache), in F16, BF16, Q8_0, Q4_0,
 *    Q4_K, Q5_K and Q6_K, in GB/s of weights read, against a STREAM-like copy (a = b, 2 x 256 MiB, bytes read
 *    + written) and two read-only streams over 512 MiB on the same threads in the same run: glibc's memchr
 *    ("read_gbps", "vs_memchr") and sums of the widest vector loads of the CPU ("read_simd_gbps", AVX-512 or
 *    AVX2: what the cores can read; "vs_read" and "rows4_vs_read" are against it); "l2_gbps": what one thread
 *    expands from its L2 cache (256 KiB of weights, 1 row), the kernel's rate with no memory traffic;
 *  - "parallel_for": microseconds per av_parallel_for call whose ranges only wait for each other (every
 *    thread runs its own range: the cost of handing work to the threads and back), through the thread pool
 *    ("pool_us") and through threads started for the call ("own_threads_us": what every call cost before the
 *    pool, and what a call costs while another owns the pool; timed inside a call, where the pool is taken).
 *  - "copy": the STREAM-like copy alone ({"copy_gbps"}: bench/rounds.sh's generation rounds);
 *  - "gram": seconds of the value norms' Gram matrices of 22 layers of the 1.1 B shape's W_o (F16), from
 *    memory, as a run's first forward pass computes them (run_gram);
 *  - "short_prompts": milliseconds of one 2048 x 2048 F16 product on one thread for 24 to 36 tokens
 *    (run_short_prompts: what each token count's last row tiles cost);
 *  - "gathers": the AVX-512 row kernels with block scales by gather and converted in place, alternated
 *    (run_gathers: which of the two this CPU should use);
 * Usage: gemm_bench [T] [threads] [sections: a comma list of f16, quant, peak, ukernel, gen, pool, copy,
 * gram, short, gathers; default all but copy, which "gen" measures too, gram, short and gathers]
 * With BENCH_CLOCK=cpu every time is the process CPU time divided by the threads (what the wall time would be
 * with a core per thread: on a machine shared with other jobs it moves far less than wall time). */
#include "../tests/quant_blocks.h"
#include "kernels/gemm.h"
#include "kernels/kernels.h"
#include "model/block.h"

#include <immintrin.h>

#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int clock_threads; /* > 0: bench_clock() is process CPU time / clock_threads */

static double bench_clock(void) {
    if (clock_threads <= 0) return av_seconds();
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ((double)ts.tv_sec + (double)ts.tv_nsec * 1e-9) / clock_threads;
}

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

/* A weight (out, in) of type t: F16 / BF16 from small random values, quantized types as random blocks. */
static av_tensor make_weight(av_dtype t, int out, int in, unsigned seed) {
    size_t bytes = 0;
    void *data;
    if (t == AV_DTYPE_F16 || t == AV_DTYPE_BF16) {
        bytes = 2 * (size_t)out * in;
        uint16_t *h = data = malloc(bytes);
        for (size_t i = 0; i < (size_t)out * in; i++)
            h[i] = t == AV_DTYPE_F16 ? av_f32_to_f16(frand(&seed) * 0.05f)
                                     : av_f32_to_bf16(frand(&seed) * 0.05f);
    } else
        data = qb_random(t, (int64_t)out * in, seed, &bytes);
    return (av_tensor){.dtype = t, .ndim = 2, .shape = {out, in}, .data = data, .nbytes = bytes};
}

/* y = x W^T, W of type t (out, in), on each supported path (F16: all; quantized types: the own vector paths
 * and amx). */
static void run_matmul(av_dtype t, int T, int out, int in, int threads) {
    unsigned seed = 7;
    float *x = malloc(sizeof(float) * (size_t)T * in);    /* (T, in) */
    float *wf = malloc(sizeof(float) * (size_t)out * in); /* (out, in): scratch of the sgemm path */
    float *y = malloc(sizeof(float) * (size_t)T * out);   /* (T, out) */
    int rows = T < 64 ? T : 64;
    double *ref = malloc(sizeof(double) * (size_t)rows * out);
    for (size_t i = 0; i < (size_t)T * in; i++)
        x[i] = frand(&seed);
    av_tensor w = make_weight(t, out, in, seed);
    av_dequantize_rows(&w, 0, out, wf);
    for (int t = 0; t < rows; t++)
        for (int o = 0; o < out; o++) {
            double acc = 0;
            for (int k = 0; k < in; k++)
                acc += (double)x[(size_t)t * in + k] * wf[(size_t)o * in + k];
            ref[(size_t)t * out + o] = acc;
        }
    printf("{\"matmul\": {\"T\": %d, \"out\": %d, \"in\": %d, \"dtype\": \"%s\"", T, out, in,
           av_dtype_name(t));
    for (size_t p = 0; p < sizeof bench_paths / sizeof *bench_paths; p++) {
        if (t != AV_DTYPE_F16 && (bench_paths[p] == AV_GEMM_SGEMM || bench_paths[p] == AV_GEMM_SCALAR))
            continue;
        if (av_gemm_path_set(bench_paths[p]) != 0) continue;
        if (bench_paths[p] == AV_GEMM_SCALAR && (double)T * out * in > 1e8)
            continue; /* minutes on big shapes */
        double best = 1e30;
        for (int rep = 0; rep <= 5; rep++) { /* the first call warms up (caches, the GEMM's kept scratch) */
            double t0 = bench_clock();
            av_matmul(y, x, &w, T, wf, threads);
            if (rep) best = fmin(best, bench_clock() - t0);
        }
        printf(", \"%s\": {\"gflops\": %.1f, \"max_rel_err\": %.2e}", av_gemm_path_name(bench_paths[p]),
               2.0 * T * out * in / best / 1e9, max_rel_err(y, ref, (size_t)rows * out));
    }
    printf("}}\n");
    free(x), free((void *)w.data), free(wf), free(y), free(ref);
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
        double t0 = bench_clock();
        av_gemm_f32(0, 1, m, n, k, 1.0f, a, k, b, k, 0.0f, c, n, threads);
        if (r) best = fmin(best, bench_clock() - t0);
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

/* ---- the micro-kernel alone against the FMA ceiling of the same cores ---- */

/* Independent fused multiply-add chains in registers, n steps each: what the FMA units do with nothing to
 * load or store (latency 4, two per cycle: 8 chains keep them busy; 24 / 12 leave no doubt). Returns a value
 * that depends on every chain, so no step can be dropped. */
__attribute__((target("avx512f"))) static float fma_chains_avx512(long n) {
    __m512 a[24], b = _mm512_set1_ps(0.999f), c = _mm512_set1_ps(1e-3f);
    for (int i = 0; i < 24; i++)
        a[i] = _mm512_set1_ps((float)i);
    for (long s = 0; s < n; s++)
#pragma GCC unroll 24 /* the chains in registers */
        for (int i = 0; i < 24; i++)
            a[i] = _mm512_fmadd_ps(a[i], b, c);
    for (int i = 1; i < 24; i++)
        a[0] = _mm512_add_ps(a[0], a[i]);
    return _mm512_reduce_add_ps(a[0]);
}
__attribute__((target("avx2,fma"))) static float fma_chains_avx2(long n) {
    __m256 a[12], b = _mm256_set1_ps(0.999f), c = _mm256_set1_ps(1e-3f);
    for (int i = 0; i < 12; i++)
        a[i] = _mm256_set1_ps((float)i);
    for (long s = 0; s < n; s++)
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++)
            a[i] = _mm256_fmadd_ps(a[i], b, c);
    float v[8];
    for (int i = 1; i < 12; i++)
        a[0] = _mm256_add_ps(a[0], a[i]);
    _mm256_storeu_ps(v, a[0]);
    return v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
}

/* The weights driver's inner loops with nothing else: UK_TOKENS rows of x packed in MR-row tiles (each in L1
 * while it is used), UK_FEATURES packed weight columns (KC x 256 floats = 512 KiB, in L2, as one NC_W block
 * of gemm.c), C = x W^T accumulated over KC; every thread its own buffers. */
enum { UK_TOKENS = 96, UK_FEATURES = 256, UK_REPS = 400, UK_FMA_STEPS = 1 << 24 };

typedef struct uk_job {
    const av_ukernel *uk;
    av_gemm_path path;
    int fma; /* 1: the FMA chains instead of the kernel */
    float *buf[64];
    float sink[64];
} uk_job;

static void uk_range(void *ctx, int tid, int64_t t0, int64_t t1) {
    uk_job *j = ctx;
    if (j->fma) {
        j->sink[tid] =
            j->path == AV_GEMM_AVX512 ? fma_chains_avx512(UK_FMA_STEPS) : fma_chains_avx2(UK_FMA_STEPS);
        return;
    }
    const av_ukernel *uk = j->uk;
    int kc = AV_GEMM_KC, mt = (UK_TOKENS + uk->mr - 1) / uk->mr * uk->mr;
    float *a = j->buf[tid], *b = a + (size_t)mt * kc,
          *c = b + (size_t)UK_FEATURES * kc; /* (mt, kc), (256, kc), (96, 256) */
    for (int r = 0; r < UK_REPS; r++)
        for (int i0 = 0; i0 < UK_TOKENS; i0 += uk->mr)
            for (int f = 0; f < UK_FEATURES; f += uk->nr)
                uk->fn(kc, a + (size_t)i0 * kc, 0, b + (size_t)f * kc, c + i0 * UK_FEATURES + f, UK_FEATURES,
                       UK_TOKENS - i0 < uk->mr ? UK_TOKENS - i0 : uk->mr, uk->nr, 1.0f, 1.0f);
}

/* GFLOP/s of the kernel (fma = 0) or of the FMA chains (fma = 1) on all threads at once. */
static double uk_gflops(uk_job *j, int threads, int fma) {
    j->fma = fma;
    double t0 = bench_clock();
    av_parallel_for(threads, threads, uk_range, j);
    double lanes = j->path == AV_GEMM_AVX512 ? 16 : 8,
           flop = fma ? 2.0 * lanes * (j->path == AV_GEMM_AVX512 ? 24 : 12) * UK_FMA_STEPS
                      : 2.0 * UK_TOKENS * UK_FEATURES * AV_GEMM_KC * UK_REPS;
    return threads * flop / (bench_clock() - t0) / 1e9;
}

static void run_ukernel(int threads) {
    static const av_gemm_path paths[] = {AV_GEMM_AVX512, AV_GEMM_AVX2};
    threads = threads < 64 ? threads : 64;
    printf("{\"ukernel\": {\"threads\": %d, \"tokens\": %d, \"features\": %d, \"kc\": %d", threads, UK_TOKENS,
           UK_FEATURES, AV_GEMM_KC);
    for (size_t p = 0; p < sizeof paths / sizeof *paths; p++) {
        if (av_gemm_path_set(paths[p]) != 0) continue;
        uk_job j = {.uk = av_gemm_ukernel(paths[p]), .path = paths[p]};
        size_t floats = (size_t)AV_GEMM_KC * (UK_TOKENS + 16 + UK_FEATURES) + (size_t)UK_TOKENS * UK_FEATURES;
        for (int t = 0; t < threads; t++) {
            j.buf[t] = aligned_alloc(64, sizeof(float) * floats);
            for (size_t i = 0; i < floats; i++)
                j.buf[t][i] = (float)(i % 7) * 0.01f;
        }
        double kern = 0, fma = 0;
        for (int r = 0; r < 4;
             r++) { /* interleaved: the clock of these VMs drifts; the first pass warms up */
            double g = uk_gflops(&j, threads, 0), f = uk_gflops(&j, threads, 1);
            if (r) kern = fmax(kern, g), fma = fmax(fma, f);
        }
        printf(", \"%s\": {\"gflops\": %.1f, \"fma_peak_gflops\": %.1f, \"vs_fma_peak\": %.3f}",
               av_gemm_path_name(paths[p]), kern, fma, kern / fma);
        for (int t = 0; t < threads; t++)
            free(j.buf[t]);
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

/* Seconds of the best of 5 passes of fn over [0, n) on the threads. */
static double best_pass(int threads, size_t n, av_range_fn fn, copy_job *j) {
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        double t0 = bench_clock();
        av_parallel_for(threads, (int64_t)n, fn, j);
        best = fmin(best, bench_clock() - t0);
    }
    return best;
}

/* STREAM "copy" in GB/s: bytes read + written, best of 5, the threads copying disjoint halves. */
static double copy_gbps(int threads) {
    size_t n = (size_t)64 << 20; /* 256 MiB each */
    float *a = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++)
        a[i] = (float)i, b[i] = 0;
    double best = best_pass(threads, n, copy_range, &(copy_job){b, a});
    free(a), free(b);
    return 2.0 * sizeof(float) * (double)n / best / 1e9;
}

/* Reads floats [i0, i1) as glibc's vectorized memchr does, for a byte that is not there. */
static void read_range(void *ctx, int tid, int64_t i0, int64_t i1) {
    const copy_job *j = ctx;
    j->dst[tid] = memchr(j->src + i0, 0x22, sizeof(float) * (size_t)(i1 - i0)) ? 1.0f : 0.0f;
}

/* The sum of floats [0, n) with 512-bit (or 256-bit) loads into four independent accumulators, the last
 * n % 64 (32) one by one: a read-only stream as fast as the core's loads go, what a matrix-vector product's
 * weight reads would be with no arithmetic at all. */
__attribute__((target("avx512f"))) static float sum_avx512(const float *p, size_t n) {
    __m512 a[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    size_t i = 0;
    for (; i + 64 <= n; i += 64)
#pragma GCC unroll 4 /* the accumulators in registers */
        for (int k = 0; k < 4; k++)
            a[k] = _mm512_add_ps(a[k], _mm512_loadu_ps(p + i + 16 * k));
    float sum = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a[0], a[1]), _mm512_add_ps(a[2], a[3])));
    for (; i < n; i++)
        sum += p[i];
    return sum;
}
__attribute__((target("avx2"))) static float sum_avx2(const float *p, size_t n) {
    __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    size_t i = 0;
    for (; i + 32 <= n; i += 32)
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++)
            a[k] = _mm256_add_ps(a[k], _mm256_loadu_ps(p + i + 8 * k));
    float v[8], sum = 0;
    _mm256_storeu_ps(v, _mm256_add_ps(_mm256_add_ps(a[0], a[1]), _mm256_add_ps(a[2], a[3])));
    for (int k = 0; k < 8; k++)
        sum += v[k];
    for (; i < n; i++)
        sum += p[i];
    return sum;
}

static void read_simd_avx512(void *ctx, int tid, int64_t i0, int64_t i1) {
    const copy_job *j = ctx;
    j->dst[tid] = sum_avx512(j->src + i0, (size_t)(i1 - i0));
}
static void read_simd_avx2(void *ctx, int tid, int64_t i0, int64_t i1) {
    const copy_job *j = ctx;
    j->dst[tid] = sum_avx2(j->src + i0, (size_t)(i1 - i0));
}

/* A read-only stream over 512 MiB (beyond the last-level cache) in GB/s, best of 5: glibc's memchr
 * (simd = 0) or the widest vector loads this CPU has (simd = 1; *isa names them, 0 when it has neither). */
static double read_gbps(int threads, int simd, const char **isa) {
    size_t n = (size_t)128 << 20; /* floats */
    av_range_fn fn = read_range;
    __builtin_cpu_init();
    if (simd && __builtin_cpu_supports("avx512f"))
        fn = read_simd_avx512, *isa = "avx512";
    else if (simd && __builtin_cpu_supports("avx2"))
        fn = read_simd_avx2, *isa = "avx2";
    else if (simd)
        return 0;
    float *a = aligned_alloc(64, sizeof(float) * n), sink[64]; /* whole lines: no load splits two */
    memset(a, 0x11, sizeof(float) * n);
    double best = best_pass(threads, n, fn, &(copy_job){sink, a});
    free(a);
    return sizeof(float) * (double)n / best / 1e9;
}

/* Layers of 5632 x 2048 weights of type t making at least GEN_BYTES (beyond the last-level cache: 300 MiB on
 * the Xeon of docs/BENCHMARKS.md), the first random, the others its copies (the same bytes at other
 * addresses: memory traffic is what is measured). */
enum { GEN_OUT = 5632, GEN_IN = 2048, GEN_MAX_LAYERS = 160 };
#define GEN_BYTES (768.0 * (1 << 20))

/* GB/s of weights read by `rows`-row products (rows <= 8) over the layers, best of 3. */
static double gemv_gbps(const av_tensor *w, int layers, int rows, int threads) {
    static float x[8 * GEN_IN], y[8 * GEN_OUT];
    unsigned seed = 3;
    for (int i = 0; i < 8 * GEN_IN; i++)
        x[i] = frand(&seed);
    double best = 1e30;
    for (int r = 0; r < 3; r++) {
        double t0 = bench_clock();
        for (int l = 0; l < layers; l++)
            av_matmul(y, x, &w[l], rows, NULL, threads);
        best = fmin(best, bench_clock() - t0);
    }
    return (double)w[0].nbytes * layers / best / 1e9;
}

/* GB/s of weights one thread expands from its L2 cache: 1-row products over GEN_L2_BYTES of weights of type t
 * (rows of GEN_IN), 200 in a row, best of 5: the rate of a row kernel's value expansion alone, which a core
 * must run faster than it reads memory (~17 GB/s on the Xeon of docs/BENCHMARKS.md) for the product to be
 * bound by memory. */
#define GEN_L2_BYTES (256.0 * 1024)
static double gemv_l2_gbps(av_dtype t) {
    static float x[GEN_IN], y[GEN_OUT];
    unsigned seed = 5;
    for (int i = 0; i < GEN_IN; i++)
        x[i] = frand(&seed);
    size_t row = 0;
    av_dtype_nbytes(t, GEN_IN, &row);
    av_tensor w = make_weight(t, (int)(GEN_L2_BYTES / (double)row), GEN_IN, 2);
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        double t0 = bench_clock();
        for (int k = 0; k < 200; k++)
            av_matmul(y, x, &w, 1, NULL, 1);
        best = fmin(best, bench_clock() - t0);
    }
    free((void *)w.data);
    return 200.0 * (double)w.nbytes / best / 1e9;
}

/* Copies of one weight of type t (GEN_OUT x GEN_IN) in w, as many as make GEN_BYTES: their count. */
static int make_layers(av_dtype t, av_tensor w[GEN_MAX_LAYERS]) {
    w[0] = make_weight(t, GEN_OUT, GEN_IN, 1);
    int layers = (int)ceil(GEN_BYTES / (double)w[0].nbytes);
    layers = layers < GEN_MAX_LAYERS ? layers : GEN_MAX_LAYERS;
    for (int l = 1; l < layers; l++) {
        w[l] = w[0];
        w[l].data = malloc(w[0].nbytes);
        memcpy((void *)w[l].data, w[0].data, w[0].nbytes);
    }
    return layers;
}

static void run_generation(int threads) {
    static const av_dtype types[] = {AV_DTYPE_F16,  AV_DTYPE_BF16, AV_DTYPE_Q8_0, AV_DTYPE_Q4_0,
                                     AV_DTYPE_Q4_K, AV_DTYPE_Q5_K, AV_DTYPE_Q6_K};
    const char *isa = NULL;
    double copy = copy_gbps(threads), memchr_read = read_gbps(threads, 0, &isa),
           simd_read = read_gbps(threads, 1, &isa), read = simd_read > 0 ? simd_read : memchr_read;
    printf(
        "{\"generation\": {\"threads\": %d, \"gemm_path\": \"%s\", \"copy_gbps\": %.1f, \"read_gbps\": %.1f, "
        "\"read_simd_gbps\": %.1f, \"read_simd_isa\": \"%s\"",
        threads, av_gemm_path_name(av_gemm_path_get()), copy, memchr_read, simd_read, isa ? isa : "none");
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        av_tensor w[GEN_MAX_LAYERS];
        int layers = make_layers(types[i], w);
        double g1 = gemv_gbps(w, layers, 1, threads), g4 = gemv_gbps(w, layers, 4, threads);
        printf(", \"%s\": {\"mb\": %.0f, \"weights_gbps\": %.1f, \"vs_copy\": %.2f, \"vs_read\": %.2f, "
               "\"vs_memchr\": %.2f, \"rows4_gbps\": %.1f, \"rows4_vs_read\": %.2f, \"l2_gbps\": %.1f}",
               av_dtype_name(types[i]), w[0].nbytes * (double)layers / 1e6, g1, g1 / copy, g1 / read,
               g1 / memchr_read, g4, g4 / read, gemv_l2_gbps(types[i]));
        for (int l = 0; l < layers; l++)
            free((void *)w[l].data);
    }
    printf("}}\n");
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The AVX-512 row kernels' two ways to fetch block scales (av_fast_gathers: gathers, or each scale converted
 * where it is used), alternated round by round in one process for the types that have both: one thread from
 * L2 (the kernel's own rate, where the choice shows) and all threads from memory, medians of GATHER_ROUNDS.
 * "cpu_choice" is what av_fast_gathers() picks on this CPU and "choice_is_faster" whether that is the faster
 * way from L2 (within 2%): what issue #20 asks to check on Intel (session 38 measured AMD's Zen 5). */
enum { GATHER_ROUNDS = 7 };
static void run_gathers(int threads) {
    av_gemm_path path = av_gemm_path_get();
    if (path != AV_GEMM_AVX512 && path != AV_GEMM_AMX) {
        printf("{\"gathers\": \"the %s path has no gathered kernels (AVX-512 only)\"}\n",
               av_gemm_path_name(path));
        return;
    }
    static const av_dtype types[] = {AV_DTYPE_Q8_0, AV_DTYPE_Q4_0, AV_DTYPE_Q4_K, AV_DTYPE_Q5_K};
    int choice = av_fast_gathers();
    printf("{\"gathers\": {\"threads\": %d, \"cpu_choice\": \"%s\"", threads, choice ? "gather" : "in place");
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        av_tensor w[GEN_MAX_LAYERS];
        int layers = make_layers(types[i], w);
        double l2[2][GATHER_ROUNDS], mem[2][GATHER_ROUNDS]; /* [gather][round] GB/s */
        for (int r = 0; r < GATHER_ROUNDS; r++)
            for (int g = 0; g < 2; g++) {
                int fast = (r + g) % 2; /* each way first in every other round */
                av_fast_gathers_set(fast);
                l2[fast][r] = gemv_l2_gbps(types[i]);
                mem[fast][r] = gemv_gbps(w, layers, 1, threads);
            }
        av_fast_gathers_set(-1);
        for (int g = 0; g < 2; g++) {
            qsort(l2[g], GATHER_ROUNDS, sizeof(double), cmp_double);
            qsort(mem[g], GATHER_ROUNDS, sizeof(double), cmp_double);
        }
        double ratio = l2[1][GATHER_ROUNDS / 2] / l2[0][GATHER_ROUNDS / 2]; /* gather / in place */
        printf(", \"%s\": {\"l2_gbps_gather\": %.1f, \"l2_gbps_in_place\": %.1f, \"mem_gbps_gather\": %.1f, "
               "\"mem_gbps_in_place\": %.1f, \"l2_gather_vs_in_place\": %.3f, \"choice_is_faster\": %s}",
               av_dtype_name(types[i]), l2[1][GATHER_ROUNDS / 2], l2[0][GATHER_ROUNDS / 2],
               mem[1][GATHER_ROUNDS / 2], mem[0][GATHER_ROUNDS / 2], ratio,
               (choice ? ratio >= 0.98 : ratio <= 1.02) ? "true" : "false");
        for (int l = 0; l < layers; l++)
            free((void *)w[l].data);
    }
    printf("}}\n");
}

/* Each range waits until every range of the call has started: the caller cannot run a worker's range itself,
 * so the time per call is the hand-off to the other threads and back. */
typedef struct meeting {
    atomic_int started;
    int threads;
} meeting;

static void meet_range(void *ctx, int tid, int64_t start, int64_t end) {
    meeting *m = ctx;
    atomic_fetch_add(&m->started, 1);
    for (long i = 0; i < 10000000 && atomic_load(&m->started) < m->threads; i++)
        sched_yield(); /* a thread still to start may need this core */
}

static double us_per_call(int threads, int calls) {
    meeting m = {0, threads};
    av_parallel_for(threads, threads, meet_range, &m); /* the pool's workers start here */
    double t0 = bench_clock();
    for (int i = 0; i < calls; i++) {
        atomic_store(&m.started, 0);
        av_parallel_for(threads, threads, meet_range, &m);
    }
    return (bench_clock() - t0) / calls * 1e6;
}

typedef struct own_threads_bench {
    int threads, calls;
    double us;
} own_threads_bench;

static void time_inside_a_call(void *ctx, int tid, int64_t start, int64_t end) {
    own_threads_bench *b = ctx;
    if (tid == 0) b->us = us_per_call(b->threads, b->calls);
}

static void run_parallel_for(int threads) {
    if (threads < 2) return;
    double pool = us_per_call(threads, 20000);
    own_threads_bench b = {threads, 2000, 0};
    av_parallel_for(2, 2, time_inside_a_call, &b);
    printf("{\"parallel_for\": {\"threads\": %d, \"pool_us\": %.2f, \"own_threads_us\": %.2f}}\n", threads,
           pool, b.us);
}

/* The value norms' Gram matrices of 22 layers of W_o (2048 x 2048 F16, 32 heads of 64: the 1.1 B shape), as a
 * run's first forward pass computes them (av_attn_gram, the heads split between the threads), the weights
 * coming from memory (a 64 MiB pass evicts them from the caches before each repetition): best of 5. */
static void run_gram(int threads) {
    enum { LAYERS = 22, DIM = 2048, HEADS = 32, HS = 64 };
    size_t flush_n = (size_t)16 << 20;
    av_tensor w[LAYERS];
    for (int l = 0; l < LAYERS; l++)
        w[l] = make_weight(AV_DTYPE_F16, DIM, DIM, 100u + (unsigned)l);
    float *g = malloc(sizeof(float) * HEADS * HS * HS), *flush = malloc(sizeof(float) * flush_n);
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        for (size_t i = 0; i < flush_n; i++)
            flush[i] = (float)i;
        __asm__ volatile("" : : "r"(flush) : "memory"); /* the pass is not optimized away */
        double t0 = bench_clock();
        for (int l = 0; l < LAYERS; l++) {
            av_err err = {0};
            if (av_attn_gram(&w[l], HEADS, HS, threads, g, &err)) {
                fprintf(stderr, "gemm_bench gram: %s\n", err.msg);
                exit(1);
            }
        }
        best = fmin(best, bench_clock() - t0);
    }
    printf("{\"gram\": {\"layers\": %d, \"threads\": %d, \"path\": \"%s\", \"seconds\": %.4f}}\n", LAYERS,
           threads, av_gemm_path_name(av_gemm_path_get()), best);
    for (int l = 0; l < LAYERS; l++)
        free((void *)w[l].data);
    free(g), free(flush);
}

/* Milliseconds of one y = x W^T (W 2048 x 2048 F16, in the last-level cache after the first call) on one
 * thread for 24 to 36 tokens, best of 15 (after 3 calls to warm up): how the token count's last row tiles
 * (av_tile_first) weigh, e.g. 26 tokens against 24 and 28. */
static void run_short_prompts(void) {
    enum { DIM = 2048, T_MIN = 24, T_MAX = 36 };
    av_tensor w = make_weight(AV_DTYPE_F16, DIM, DIM, 11);
    float *x = malloc(sizeof(float) * T_MAX * DIM), *y = malloc(sizeof(float) * T_MAX * DIM);
    unsigned seed = 5;
    for (int i = 0; i < T_MAX * DIM; i++)
        x[i] = frand(&seed);
    printf("{\"short_prompts\": {\"path\": \"%s\", \"threads\": 1, \"ms\": {",
           av_gemm_path_name(av_gemm_path_get()));
    for (int T = T_MIN; T <= T_MAX; T++) {
        double best = 1e30;
        for (int r = 0; r < 18; r++) {
            double t0 = bench_clock();
            av_matmul(y, x, &w, T, NULL, 1);
            if (r >= 3) best = fmin(best, bench_clock() - t0);
        }
        printf("%s\"%d\": %.3f", T > T_MIN ? ", " : "", T, best * 1e3);
    }
    printf("}}}\n");
    free((void *)w.data), free(x), free(y);
}

int main(int argc, char **argv) {
    int T = argc > 1 ? atoi(argv[1]) : 512, threads = argc > 2 ? atoi(argv[2]) : 2;
    const char *sections = argc > 3 ? argv[3] : "f16,quant,peak,ukernel,gen,pool";
    const char *clk = getenv("BENCH_CLOCK");
    clock_threads = clk && strcmp(clk, "cpu") == 0 ? threads : 0;
    av_kernels_init();
    av_gemm_path fastest = av_gemm_path_get();
    static const int shapes[][2] = {{2048, 2048}, {256, 2048}, {5632, 2048}, {2048, 5632}};
    static const av_dtype quant[] = {AV_DTYPE_Q8_0, AV_DTYPE_Q4_K, AV_DTYPE_Q6_K};
    for (int s = 0; s < 4 && strstr(sections, "f16"); s++)
        run_matmul(AV_DTYPE_F16, T, shapes[s][0], shapes[s][1], threads);
    if (strstr(sections, "f16")) run_matmul(AV_DTYPE_F16, 37, 45, 70, threads);
    for (int q = 0; q < 3 && strstr(sections, "quant"); q++)
        for (int s = 0; s < 4; s++)
            run_matmul(quant[q], T, shapes[s][0], shapes[s][1], threads);
    if (strstr(sections, "peak")) run_own_peak(T, threads);
    if (strstr(sections, "ukernel")) run_ukernel(threads);
    av_gemm_path_set(fastest);
    if (strstr(sections, "gen")) run_generation(threads);
    if (strstr(sections, "pool")) run_parallel_for(threads);
    if (strstr(sections, "copy")) printf("{\"copy_gbps\": %.1f}\n", copy_gbps(threads));
    if (strstr(sections, "gram")) run_gram(threads);
    if (strstr(sections, "short")) run_short_prompts();
    if (strstr(sections, "gathers")) run_gathers(threads);
    return 0;
}
