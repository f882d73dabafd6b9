/* The project's GEMM paths (src/kernels/gemm*.c) against double precision, against each other and against the
 * dispatcher's contract. Every test runs once per path; a path this CPU or OS cannot run is SKIPped.
 *
 * Bound (docs/ARCHITECTURE.md, "GEMM"): each output is one f32 chain of fused multiply-adds over k, then
 * alpha * acc + beta * c; whatever the order, |c - exact| <= gamma(k + 2) (|alpha| sum_p |a_ip b_pj| + |beta
 * c0|) with gamma(n) = n u / (1 - n u), u = 2^-24. */
#include "gemm_paths.h"
#include "harness.h"
#include "kernels/gemm.h"
#include "quant_blocks.h"

#include <stdint.h>

static float frand(unsigned *seed, float scale) {
    return ((float)rand_r(seed) / (float)RAND_MAX * 2 - 1) * scale;
}

/* op(X)[i][p] for a row-major X with leading dimension ld. */
static double at(const float *x, int64_t ld, int trans, int i, int p) {
    return trans ? x[p * ld + i] : x[i * ld + p];
}

/* Worst |c - exact| / bound over C (m, n); c0: C before the product. */
static double worst_vs_bound(int ta, int tb, int m, int n, int k, float alpha, const float *a, int64_t lda,
                             const float *b, int64_t ldb, float beta, const float *c0, const float *c,
                             int64_t ldc) {
    double u = ldexp(1.0, -24), gamma = (k + 2) * u / (1 - (k + 2) * u), worst = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double exact = 0, mag = 0;
            for (int p = 0; p < k; p++) {
                double t = at(a, lda, ta, i, p) * at(b, ldb, !tb, j, p);
                exact += t, mag += fabs(t);
            }
            double cin = beta != 0.0f ? c0[i * ldc + j] : 0;
            exact = alpha * exact + beta * cin;
            double bound = gamma * (fabs(alpha) * mag + fabs(beta * cin)) + 1e-300;
            double r = fabs(c[i * ldc + j] - exact) / bound;
            if (!(r <= worst)) worst = r; /* NaN is the worst */
        }
    return worst;
}

/* One product on the current path: shapes off every tile size, k past one packed block (256), padded leading
 * dimensions, every transpose, alpha and beta. Returns the worst error / bound. */
static double gemm_case(int ta, int tb, int m, int n, int k, float alpha, float beta, unsigned seed,
                        int threads, float *out /* (m, n + 3) or NULL */) {
    int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 1, ldc = n + 3;
    size_t na = (size_t)lda * (size_t)(ta ? k : m), nb = (size_t)ldb * (size_t)(tb ? n : k),
           nc = (size_t)ldc * m;
    float *a = malloc(sizeof(float) * na + 4), *b = malloc(sizeof(float) * nb + 4);
    float *c0 = malloc(sizeof(float) * nc), *c = malloc(sizeof(float) * nc);
    for (size_t i = 0; i < na; i++)
        a[i] = frand(&seed, 2.0f);
    for (size_t i = 0; i < nb; i++)
        b[i] = frand(&seed, 0.5f);
    for (size_t i = 0; i < nc; i++)
        c0[i] = beta != 0.0f ? frand(&seed, 1.0f) : NAN; /* beta 0: never read */
    memcpy(c, c0, sizeof(float) * nc);
    av_gemm_f32(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, threads);
    double w = worst_vs_bound(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c0, c, ldc);
    for (int i = 0; i < m; i++) /* the padding between rows is untouched */
        for (int j = n; j < ldc; j++)
            if (memcmp(&c[i * ldc + j], &c0[i * ldc + j], 4) != 0) w = INFINITY;
    if (out) memcpy(out, c, sizeof(float) * nc);
    free(a), free(b), free(c0), free(c);
    return w;
}

/* ... past one block of B columns (NC_F = 512) and of A rows (MC_F = 192) in av_gemm_f32: 200 x 600 */
static const int shapes[][3] = {{1, 1, 1},     {13, 33, 7},    {37, 45, 70},  {12, 32, 256},
                                {25, 70, 600}, {128, 200, 64}, {200, 600, 40}};

static void gemm_f32_within_bound(av_gemm_path path) {
    double worst = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int t = 0; t < 4; t++) {
            int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
            double w1 = gemm_case(t & 1, t >> 1, m, n, k, 1.0f, 0.0f, (unsigned)(s * 4 + t + 1), 1, NULL);
            double w2 = gemm_case(t & 1, t >> 1, m, n, k, 0.125f, 0.5f, (unsigned)(s * 4 + t + 50), 1, NULL);
            CHECKF(w1 <= 1 && w2 <= 1, "%d x %d x %d trans %d/%d: error %.3g / %.3g of the bound", m, n, k,
                   t & 1, t >> 1, w1, w2);
            worst = fmax(worst, fmax(w1, w2));
        }
    /* k == 0: C = beta C */
    double w0 = gemm_case(0, 1, 5, 9, 0, 1.0f, 0.5f, 99, 1, NULL);
    CHECKF(w0 <= 1, "k = 0: %.3g", w0);
    printf("# %s: worst error %.3g of the bound gamma(k+2) sum |a b|\n", av_gemm_path_name(path), worst);
}

/* The vector kernels compute the scalar kernel's chains: identical bits, for any split over threads. */
static void gemm_f32_matches_scalar(av_gemm_path path) {
    static const int big[3] = {70, 300, 520};
    for (size_t s = 0; s <= sizeof shapes / sizeof *shapes; s++) {
        const int *sh = s < sizeof shapes / sizeof *shapes ? shapes[s] : big;
        int m = sh[0], n = sh[1], k = sh[2], threads = s < sizeof shapes / sizeof *shapes ? 1 : 2;
        size_t nc = (size_t)m * (size_t)(n + 3);
        float *mine = malloc(sizeof(float) * nc), *ref = malloc(sizeof(float) * nc);
        gemm_case(0, 1, m, n, k, 1.0f, 1.0f, 7, threads, mine);
        REQUIRE(av_gemm_path_set(AV_GEMM_SCALAR) == 0);
        gemm_case(0, 1, m, n, k, 1.0f, 1.0f, 7, 1, ref);
        REQUIRE(av_gemm_path_set(path) == 0);
        CHECKF(memcmp(mine, ref, sizeof(float) * nc) == 0, "%d x %d x %d differs from the scalar kernel", m,
               n, k);
        free(mine), free(ref);
    }
}

/* One kernel call checked against the f32 fused multiply-add chain computed here: C's rows [0, m), columns
 * [0, n) hold alpha * sum_p fmaf(...) (+ beta c0 fused), every other value of C (rows to MR + 1, a padded
 * ldc) keeps its bits. A (m, k) is packed into a (k, MR) panel whose rows past m are NaN (never to reach an
 * output), or read in place from the end of an allocation of exactly m rows (a read past row m - 1 is out of
 * bounds under ASan), or (steps) A and B are the columns [0, MR) and [MR, MR + NR) of one block of k rows
 * (A's past m NaN), allocated to its last value. Returns 1 when every bit is right. */
static int ukernel_case(const av_ukernel *uk, av_uk_mode mode, int m, int n, int k, float beta,
                        unsigned seed) {
    int MR = uk->mr, NR = uk->nr, lda = k + 3, ldc = NR + 5, lds = MR + NR + 3;
    size_t nc = (size_t)ldc * (size_t)(MR + 1);
    float *a = malloc(sizeof(float) * (size_t)(m * lda)), *ap = malloc(sizeof(float) * (size_t)(k * MR) + 4);
    float *b = malloc(sizeof(float) * (size_t)(k * NR) + 4), *c = malloc(sizeof(float) * nc),
          *want = malloc(sizeof(float) * nc), *steps = malloc(sizeof(float) * (size_t)(k * lds));
    for (int i = 0; i < m * lda; i++)
        a[i] = frand(&seed, 2.0f);
    for (int p = 0; p < k; p++)
        for (int i = 0; i < MR; i++)
            ap[p * MR + i] = steps[p * lds + i] = i < m ? a[i * lda + p] : NAN;
    for (int i = 0; i < k * NR; i++)
        b[i] = steps[i / NR * lds + MR + i % NR] = frand(&seed, 1.0f);
    for (int p = 0; p < k; p++)
        for (int i = MR + NR; i < lds; i++)
            steps[p * lds + i] = NAN;
    for (size_t i = 0; i < nc; i++)
        c[i] = want[i] = frand(&seed, 4.0f);
    const float alpha = 0.75f;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            float acc = 0.0f;
            for (int p = 0; p < k; p++)
                acc = fmaf(a[i * lda + p], b[p * NR + j], acc);
            float r = alpha * acc, *w = &want[i * ldc + j];
            *w = beta != 0.0f ? fmaf(beta, *w, r) : r;
        }
    if (mode == AV_UK_ROWS)
        uk->fn_rows(k, a, lda, b, c, ldc, m, n, alpha, beta);
    else if (mode == AV_UK_STEPS)
        uk->fn_steps(k, steps, lds, steps + MR, c, ldc, m, n, alpha, beta);
    else
        uk->fn(k, ap, 0, b, c, ldc, m, n, alpha, beta);
    int ok = memcmp(c, want, sizeof(float) * nc) == 0;
    free(a), free(ap), free(b), free(c), free(want), free(steps);
    return ok;
}

/* The path's micro-kernel called directly with every row count m <= MR (the vector kernels compute the rows
 * of a short tile in smaller instantiations: 4 / 8 / 12 rows on AVX-512, 4 / 5 / 6 on AVX2), A packed, read
 * in place, and both operands read from one block (steps), whole and partial column counts, k below and past
 * the point where the kernel prefetches C, beta 0 and not: bit for bit the f32 chains computed here, nothing
 * else of C written. */
static void ukernel_rows_match_fma_chain(av_gemm_path path) {
    const av_ukernel *uk = av_gemm_ukernel(path);
    static const int ks[] = {1, 5, 24, 25, 70};
    int ns[] = {uk->nr, uk->nr - 1, uk->nr / 2 + 3, 1};
    unsigned seed = 1;
    for (int m = 1; m <= uk->mr; m++)
        for (size_t ki = 0; ki < sizeof ks / sizeof *ks; ki++)
            for (size_t ni = 0; ni < sizeof ns / sizeof *ns; ni++)
                for (int t = 0; t < 6; t++)
                    CHECKF(
                        ukernel_case(uk, (av_uk_mode)(t % 3), m, ns[ni], ks[ki], t / 3 ? 0.5f : 0.0f, seed++),
                        "%s: m %d of %d rows, n %d, k %d, A %s, beta %s: differs from the f32 chain",
                        av_gemm_path_name(path), m, uk->mr, ns[ni], ks[ki],
                        (const char *[]){"packed", "in place", "in steps"}[t % 3], t / 3 ? "0.5" : "0");
}

/* av_gram_f32 (C = A^T A + beta C, tiles below the diagonal mirrored) gives av_gemm_f32's bits: sizes off the
 * tiles and past one packed block of k, padded rows, beta 0 and 1, and C's padding left alone. */
static void gram_equals_gemm(av_gemm_path path) {
    static const int sizes[][2] = {{64, 128}, {40, 300}, {13, 7}, {100, 600}, {1, 5}};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
        for (int b = 0; b < 2; b++) {
            int n = sizes[s][0], k = sizes[s][1];
            int64_t lda = n + 5, ldc = n + 2;
            unsigned seed = (unsigned)(s * 2 + (size_t)b + 1);
            float *a = malloc(sizeof(float) * (size_t)(lda * k)),
                  *c = malloc(sizeof(float) * (size_t)(ldc * n)),
                  *ref = malloc(sizeof(float) * (size_t)(ldc * n));
            for (int64_t i = 0; i < lda * k; i++)
                a[i] = frand(&seed, 1.0f);
            for (int64_t i = 0; i < ldc * n; i++)
                c[i] = ref[i] = b ? frand(&seed, 1.0f) : NAN; /* beta 0: never read */
            for (int i = 0; b && i < n; i++) /* beta 1 adds to a symmetric C, as the value norms' sums do */
                for (int j = 0; j < i; j++)
                    c[i * ldc + j] = ref[i * ldc + j] = c[j * ldc + i];
            av_gram_f32(n, k, a, lda, (float)b, c, ldc);
            av_gemm_f32(1, 0, n, n, k, 1.0f, a, lda, a, lda, (float)b, ref, ldc, 1);
            CHECKF(memcmp(c, ref, sizeof(float) * (size_t)(ldc * n)) == 0,
                   "%s: Gram matrix of %d columns, k = %d, beta %d differs from av_gemm_f32",
                   av_gemm_path_name(path), n, k, b);
            free(a), free(c), free(ref);
        }
}

/* ---- weights: y = x W^T for every stored dtype ---- */

/* Fills w (out, in) of dtype t from values near `scale`; returns the exact f32 weights the kernels must see.
 */
static float *make_weight(av_tensor *w, av_dtype t, int out, int in, unsigned seed) {
    float *wf = malloc(sizeof(float) * (size_t)out * in);
    void *data = malloc(sizeof(float) * (size_t)out * in);
    for (int i = 0; i < out * in; i++)
        wf[i] = frand(&seed, 0.1f);
    for (int i = 0; i < out * in && t != AV_DTYPE_Q8_0; i++) {
        if (t == AV_DTYPE_F32) ((float *)data)[i] = wf[i];
        if (t == AV_DTYPE_F16) ((uint16_t *)data)[i] = av_f32_to_f16(wf[i]);
        if (t == AV_DTYPE_BF16) ((uint16_t *)data)[i] = av_f32_to_bf16(wf[i]);
    }
    if (t == AV_DTYPE_Q8_0) av_quantize_q8_0(wf, data, (size_t)out * in);
    *w = (av_tensor){t, 2, {out, in, 0, 0}, data, 0};
    av_dequantize_rows(w, 0, out, wf);
    return wf;
}

/* Worst error / bound of y (n, out) = x (n, in) wf^T (error bound as for av_gemm_f32, alpha 1, beta 0). */
static double matmul_worst(const float *y, const float *x, const float *wf, int n, int out, int in) {
    return worst_vs_bound(0, 1, n, out, in, 1.0f, x, in, wf, in, 0.0f, NULL, y, out);
}

static void matmul_dtypes_within_bound(av_gemm_path path) {
    /* n, out, in: k blocks and a partial one (544), x packed (rows 4 KiB apart and > 16 feature panels:
     * 1024 x 600), matrix-vector products (n <= AV_GEMV_MAX_ROWS) over two 4096-column blocks (4160) */
    static const int mshapes[][3] = {{8, 45, 64}, {37, 300, 96},   {100, 40, 544},
                                     {3, 33, 64}, {20, 600, 1024}, {2, 20, 4160}};
    static const av_dtype types[] = {AV_DTYPE_F32, AV_DTYPE_F16, AV_DTYPE_BF16, AV_DTYPE_Q8_0};
    for (size_t s = 0; s < sizeof mshapes / sizeof *mshapes; s++)
        for (size_t t = 0; t < sizeof types / sizeof *types; t++) {
            int n = mshapes[s][0], out = mshapes[s][1], in = mshapes[s][2];
            unsigned seed = (unsigned)(s * 10 + t + 3);
            av_tensor w;
            float *wf = make_weight(&w, types[t], out, in, seed);
            float *x = malloc(sizeof(float) * (size_t)n * in), *y = malloc(sizeof(float) * (size_t)n * out);
            float *scratch = malloc(sizeof(float) * (size_t)out * in);
            for (int i = 0; i < n * in; i++)
                x[i] = frand(&seed, 2.0f);
            av_matmul(y, x, &w, n, scratch, 2);
            double worst = matmul_worst(y, x, wf, n, out, in);
            /* AMX runs 16/8-bit weights as split-bf16 products: its own bound, 2^-16 of sum |x w|
             * (gemm_amx.c) */
            double gamma = (in + 2) * ldexp(1.0, -24) / (1 - (in + 2) * ldexp(1.0, -24));
            int amx = path == AV_GEMM_AMX && types[t] != AV_DTYPE_F32 && n >= AV_AMX_MIN_ROWS &&
                      out * in >= AV_AMX_MIN_WEIGHTS;
            double limit = amx ? fmax(1.0, ldexp(1.0, -16) / gamma) : 1;
            CHECKF(worst <= limit, "%s %d x %d x %d: error %.3g of the bound", av_dtype_name(types[t]), n,
                   out, in, worst);
            free(wf), free(x), free(y), free(scratch), free((void *)w.data);
        }
}

/* q/k/v-like weights of different widths and dtypes in one call give the bits of one call each. */
static void matmul_many_equals_single(av_gemm_path path) {
    enum { N = 40, IN = 288 };
    const int outs[3] = {240, 300, 232}; /* each large enough for the AMX path on its own */
    /* (on the AMX path an F32 weight sends the whole call to the AVX-512 kernel: keep them 16/8-bit there) */
    const av_dtype types[3] = {AV_DTYPE_F16, AV_DTYPE_Q8_0,
                               path == AV_GEMM_AMX ? AV_DTYPE_BF16 : AV_DTYPE_F32};
    float x[N * IN];
    unsigned seed = 5;
    for (int i = 0; i < N * IN; i++)
        x[i] = frand(&seed, 1.0f);
    av_tensor w[3];
    const av_tensor *wp[3];
    float *many[3], *single[3], *wf[3];
    for (int k = 0; k < 3; k++) {
        wf[k] = make_weight(&w[k], types[k], outs[k], IN, (unsigned)(k + 20));
        wp[k] = &w[k];
        many[k] = malloc(sizeof(float) * N * (size_t)outs[k]);
        single[k] = malloc(sizeof(float) * N * (size_t)outs[k]);
    }
    /* the threads claim blocks across the three weights (blocks shrink towards the end and are cut at a
     * weight's last feature) */
    static const int threads[] = {2, 3, 5};
    for (size_t t = 0; t < sizeof threads / sizeof *threads; t++) {
        for (int k = 0; k < 3; k++) {
            av_matmul(single[k], x, &w[k], N, NULL, threads[t]);
            memset(many[k], 0xff, sizeof(float) * N * (size_t)outs[k]);
        }
        av_matmul_many(many, x, wp, 3, N, NULL, threads[t]);
        for (int k = 0; k < 3; k++)
            CHECKF(memcmp(many[k], single[k], sizeof(float) * N * (size_t)outs[k]) == 0,
                   "weight %d differs on %d threads", k, threads[t]);
    }
    for (int k = 0; k < 3; k++)
        free(many[k]), free(single[k]), free(wf[k]), free((void *)w[k].data);
}

/* y = x W^T on any number of threads gives, bit for bit, the chains computed here: per k block of AV_GEMM_KC
 * an f32 fused multiply-add chain, added to the previous blocks' sum (a third k block partial); more threads
 * than cores, repeated, so that the blocks fall to the threads differently from call to call; x packed (rows
 * 4 KiB apart) and read in place; token counts whose last tiles are split (av_tile_first: 26 and 13 rows on
 * both vector kernels) and one whose are not (29). */
static void matmul_threads_match_chain(av_gemm_path path) {
    static const int sizes[][3] = {{29, 600, 1024}, {29, 300, 1100}, {26, 300, 1024}, {13, 200, 1100}};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        int n = sizes[s][0], out = sizes[s][1], in = sizes[s][2];
        av_tensor w;
        float *wf = make_weight(&w, AV_DTYPE_F16, out, in, (unsigned)s + 3);
        float *x = malloc(sizeof(float) * (size_t)n * in), *y = malloc(sizeof(float) * (size_t)n * out),
              *ref = malloc(sizeof(float) * (size_t)n * out);
        unsigned seed = 31;
        for (int i = 0; i < n * in; i++)
            x[i] = frand(&seed, 1.0f);
        for (int i = 0; i < n; i++)
            for (int f = 0; f < out; f++) {
                float c = 0.0f;
                for (int k0 = 0; k0 < in; k0 += AV_GEMM_KC) {
                    float acc = 0.0f;
                    for (int p = k0; p < in && p < k0 + AV_GEMM_KC; p++)
                        acc = fmaf(x[i * in + p], wf[f * in + p], acc);
                    c = k0 ? fmaf(1.0f, c, acc) : acc;
                }
                ref[i * out + f] = c;
            }
        static const int threads[] = {1, 2, 3, 4, 7};
        for (size_t t = 0; t < sizeof threads / sizeof *threads; t++)
            for (int r = 0; r < 3; r++) {
                memset(y, 0xff, sizeof(float) * (size_t)n * out);
                av_matmul(y, x, &w, n, NULL, threads[t]);
                CHECKF(memcmp(y, ref, sizeof(float) * (size_t)n * out) == 0,
                       "%s: %d x %d x %d on %d threads (call %d) differs from the chains",
                       av_gemm_path_name(path), n, out, in, threads[t], r);
            }
        free(wf), free((void *)w.data), free(x), free(y), free(ref);
    }
}

/* The scratch of av_gemm_weights is kept between calls: calls that alternate between a large need (x packed)
 * and a smaller one (x read in place) allocate at most once (the kept block once took the smaller call's
 * size and every large call allocated afresh). */
static void matmul_scratch_kept(av_gemm_path path) {
    enum { N = 40, OUT = 300 };
    static const int ins[2] = {1024, 1100}; /* rows 4 KiB apart: x packed; 1100: x read in place */
    av_tensor w[2];
    float *wf[2], *x = malloc(sizeof(float) * N * 1100), *y = malloc(sizeof(float) * N * OUT);
    for (int i = 0; i < N * 1100; i++)
        x[i] = (float)(i % 7) - 3.0f;
    for (int k = 0; k < 2; k++)
        wf[k] = make_weight(&w[k], AV_DTYPE_F16, OUT, ins[k], (unsigned)k + 40);
    long before = av_gemm_scratch_allocations();
    for (int call = 0; call < 6; call++)
        av_matmul(y, x, &w[call % 2], N, NULL, 2);
    long made = av_gemm_scratch_allocations() - before;
    CHECKF(made <= 1, "%s: 6 calls allocated %ld scratch blocks", av_gemm_path_name(path), made);
    for (int k = 0; k < 2; k++)
        free(wf[k]), free((void *)w[k].data);
    free(x), free(y);
}

/* ---- quantized weights: the vector packing and matrix-vector products expand them exactly ---- */

static const av_dtype quant_types[] = {AV_DTYPE_Q8_0, AV_DTYPE_Q4_K, AV_DTYPE_Q6_K,   AV_DTYPE_Q4_0,
                                       AV_DTYPE_Q4_1, AV_DTYPE_Q5_0, AV_DTYPE_Q5_1,   AV_DTYPE_Q2_K,
                                       AV_DTYPE_Q3_K, AV_DTYPE_Q5_K, AV_DTYPE_IQ4_NL, AV_DTYPE_IQ4_XS};

/* The path's weight packing gives the portable packing's panels bit for bit (which expands rows through
 * av_dequantize_rows): every type (Q8_0, Q4_K, Q6_K are expanded in registers, the others through the
 * dequantizers; AVX-512 transposes whole 16-row tiles as bytes first), whole and partial panels
 * (17 rows: one tile of each kind), first and later k blocks, random block bytes. */
static void pack_quant_equals_dequantize(av_gemm_path path) {
    enum { OUT = 45, IN = 1024 };
    const av_ukernel *uk = av_gemm_ukernel(path);
    int P = uk->nr;
    float *tmp = malloc(sizeof(float) * (size_t)P * AV_GEMM_KC),
          *mine = malloc(sizeof(float) * (size_t)P * IN), *ref = malloc(sizeof(float) * (size_t)P * IN);
    for (size_t ti = 0; ti < sizeof quant_types / sizeof *quant_types; ti++) {
        size_t bytes;
        uint8_t *q = qb_random(quant_types[ti], (int64_t)OUT * IN, (unsigned)ti + 1, &bytes);
        av_tensor w = {quant_types[ti], 2, {OUT, IN, 0, 0}, q, bytes};
        static const int cases[][4] = {
            {0, 32, 0, 512}, {13, 32, 512, 512}, {40, 5, 256, 256}, {7, 17, 768, 256}};
        for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
            int f0 = cases[c][0], rows = cases[c][1] < P ? cases[c][1] : P, k0 = cases[c][2],
                kc = cases[c][3];
            memset(mine, 0xff, sizeof(float) * (size_t)P * kc); /* NaN: every panel value must be written */
            uk->pack_weight(&w, f0, rows, k0, kc, P, mine, tmp);
            av_pack_weight(&w, f0, rows, k0, kc, P, ref, tmp);
            CHECKF(memcmp(mine, ref, sizeof(float) * (size_t)P * kc) == 0,
                   "%s: rows %d + %d, columns %d + %d differ from av_dequantize_rows",
                   av_dtype_name(quant_types[ti]), f0, rows, k0, kc);
        }
        if (path == AV_GEMM_AVX512) { /* the AMX kernel's row expansion */
            float *rows_mine = malloc(sizeof(float) * 3 * IN), *rows_ref = malloc(sizeof(float) * 3 * IN);
            av_dequantize_rows_avx512(&w, 11, 3, rows_mine);
            av_dequantize_rows(&w, 11, 3, rows_ref);
            CHECKF(memcmp(rows_mine, rows_ref, sizeof(float) * 3 * IN) == 0, "%s: av_dequantize_rows_avx512",
                   av_dtype_name(quant_types[ti]));
            free(rows_mine), free(rows_ref);
        }
        free(q);
    }
    free(tmp), free(mine), free(ref);
}

/* The same for the float dtypes converted inside the transposes (F32, F16, BF16), from random bit patterns
 * (every F16 class but NaN: subnormals, infinities, signed zeros): whole 16-row F16 panels (AVX2's 16 x 8
 * transposes, AVX-512's 32 x 8 ones) at several k offsets, partial panels, k blocks that end between 8-step
 * slabs. */
static void pack_floats_equal_portable(av_gemm_path path) {
    enum { OUT = 45, IN = 1100 };
    const av_ukernel *uk = av_gemm_ukernel(path);
    int P = uk->nr;
    static const av_dtype types[] = {AV_DTYPE_F32, AV_DTYPE_F16, AV_DTYPE_BF16};
    float *tmp = malloc(sizeof(float) * (size_t)P * AV_GEMM_KC),
          *mine = malloc(sizeof(float) * (size_t)P * AV_GEMM_KC),
          *ref = malloc(sizeof(float) * (size_t)P * AV_GEMM_KC);
    uint32_t *bits = malloc(sizeof(uint32_t) * OUT * IN);
    unsigned seed = 77;
    for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++) {
        for (int i = 0; i < OUT * IN; i++) {
            uint32_t u = (uint32_t)rand_r(&seed) ^ ((uint32_t)rand_r(&seed) << 16);
            if (types[ti] == AV_DTYPE_F16 && (u & 0x7c00u) == 0x7c00u) u &= ~0x3ffu; /* NaN -> infinity */
            if (types[ti] == AV_DTYPE_BF16 && (u & 0x7f80u) == 0x7f80u) u &= ~0x7fu;
            if (types[ti] == AV_DTYPE_F32 && (u & 0x7f800000u) == 0x7f800000u) u &= ~0x7fffffu;
            if (types[ti] == AV_DTYPE_F32)
                bits[i] = u;
            else
                ((uint16_t *)bits)[i] = (uint16_t)u;
        }
        av_tensor w = {types[ti], 2, {OUT, IN, 0, 0}, bits, sizeof(uint32_t) * OUT * IN};
        static const int cases[][4] = {{0, 32, 0, 512},   {13, 32, 512, 512}, {29, 16, 1088, 12},
                                       {3, 32, 5, 257},   {40, 5, 256, 256},  {7, 17, 768, 256},
                                       {16, 12, 1, 1099}, {10, 32, 1024, 76}};
        for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
            int f0 = cases[c][0], rows = cases[c][1] < P ? cases[c][1] : P, k0 = cases[c][2],
                kc = cases[c][3] < AV_GEMM_KC ? cases[c][3] : AV_GEMM_KC;
            memset(mine, 0xff, sizeof(float) * (size_t)P * kc); /* NaN: every panel value must be written */
            uk->pack_weight(&w, f0, rows, k0, kc, P, mine, tmp);
            av_pack_weight(&w, f0, rows, k0, kc, P, ref, tmp);
            CHECKF(memcmp(mine, ref, sizeof(float) * (size_t)P * kc) == 0,
                   "%s %s: rows %d + %d, columns %d + %d differ from the portable packing",
                   av_gemm_path_name(path), av_dtype_name(types[ti]), f0, rows, k0, kc);
        }
    }
    free(tmp), free(mine), free(ref), free(bits);
}

/* y = x W^T on quantized W gives the bits of the same product on W expanded to F32 (av_dequantize_rows), on
 * the matrix-vector path (1-7 rows: Q8_0, Q4_K, Q6_K read in place) and the packed GEMM (8 rows and more). */
static void matmul_quant_equals_f32(av_gemm_path path) {
    enum { OUT = 40, IN = 768, NMAX = 20 };
    float *x = malloc(sizeof(float) * NMAX * IN), *wf = malloc(sizeof(float) * OUT * IN);
    float *yq = malloc(sizeof(float) * NMAX * OUT), *yf = malloc(sizeof(float) * NMAX * OUT);
    unsigned seed = 9;
    for (int i = 0; i < NMAX * IN; i++)
        x[i] = frand(&seed, 2.0f);
    for (size_t ti = 0; ti < sizeof quant_types / sizeof *quant_types; ti++) {
        size_t bytes;
        uint8_t *q = qb_random(quant_types[ti], (int64_t)OUT * IN, (unsigned)ti + 40, &bytes);
        av_tensor w = {quant_types[ti], 2, {OUT, IN, 0, 0}, q, bytes};
        av_dequantize_rows(&w, 0, OUT, wf);
        av_tensor f = {AV_DTYPE_F32, 2, {OUT, IN, 0, 0}, wf, sizeof(float) * OUT * IN};
        static const int ns[] = {1, 3, 7, 8, 20};
        for (size_t k = 0; k < sizeof ns / sizeof *ns; k++) {
            av_matmul(yq, x, &w, ns[k], NULL, 2);
            av_matmul(yf, x, &f, ns[k], NULL, 2);
            CHECKF(memcmp(yq, yf, sizeof(float) * (size_t)ns[k] * OUT) == 0, "%s, %d rows: differs from F32",
                   av_dtype_name(quant_types[ti]), ns[k]);
        }
        free(q);
    }
    free(x), free(wf), free(yq), free(yf);
}

/* av_gram_heads (per-head Gram matrices of F32 or F16 rows, read in place) gives av_gemm_f32's bits on the
 * rows converted to f32, head by head: sizes off the tiles, past one packed block of k, beta 0 and 1, heads
 * from an offset; other dtypes and the sgemm path refuse (-1) and write nothing. */
static void gram_heads_equals_gemm(av_gemm_path path) {
    static const int sizes[][3] = {{64, 128, 3}, {13, 7, 2}, {40, 600, 2}, {1, 5, 4}}; /* n, k, heads */
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
        for (int f16 = 0; f16 < 2; f16++)
            for (int b = 0; b < 2; b++) {
                int n = sizes[s][0], k = sizes[s][1], H = sizes[s][2], lda = H * n + 3, r0 = 2;
                size_t len = (size_t)lda * (size_t)(k + r0), clen = (size_t)H * (size_t)n * (size_t)n;
                unsigned seed = (unsigned)(s * 4 + (size_t)f16 * 2 + (size_t)b + 1);
                float *a = malloc(sizeof(float) * len), *c = malloc(sizeof(float) * clen),
                      *ref = malloc(sizeof(float) * clen);
                uint16_t *h = malloc(sizeof(uint16_t) * len);
                for (size_t i = 0; i < len; i++) { /* F16 rows: a holds their exact f32 values */
                    a[i] = frand(&seed, 1.0f);
                    if (f16) h[i] = av_f32_to_f16(a[i]), a[i] = av_f16_to_f32(h[i]);
                }
                for (int hd = 0; hd < H; hd++) /* beta 1 adds to symmetric matrices, as the value norms do */
                    for (int i = 0; i < n; i++)
                        for (int j = 0; j <= i; j++) {
                            float v = b ? frand(&seed, 1.0f) : NAN; /* beta 0: never read */
                            size_t o = (size_t)hd * (size_t)n * (size_t)n;
                            c[o + (size_t)(i * n + j)] = c[o + (size_t)(j * n + i)] = v;
                            ref[o + (size_t)(i * n + j)] = ref[o + (size_t)(j * n + i)] = v;
                        }
                av_tensor w = {f16 ? AV_DTYPE_F16 : AV_DTYPE_F32,
                               2,
                               {k + r0, lda, 0, 0},
                               f16 ? (void *)h : a,
                               len * (f16 ? 2 : 4)};
                size_t nn = (size_t)n * (size_t)n; /* head 0 alone, then heads 1.. from their offset */
                int rc = av_gram_heads(&w, r0, k, 0, 1, n, (float)b, c) |
                         av_gram_heads(&w, r0, k, 1, H - 1, n, (float)b, c + nn);
                if (path == AV_GEMM_SGEMM) {
                    CHECKF(rc == -1 && memcmp(c, ref, sizeof(float) * clen) == 0,
                           "sgemm path: %d (want -1, nothing written)", rc);
                } else {
                    for (int hd = 0; hd < H; hd++)
                        av_gemm_f32(1, 0, n, n, k, 1.0f, a + (size_t)r0 * (size_t)lda + (size_t)(hd * n), lda,
                                    a + (size_t)r0 * (size_t)lda + (size_t)(hd * n), lda, (float)b,
                                    ref + (size_t)hd * (size_t)n * (size_t)n, n, 1);
                    CHECKF(
                        rc == 0 && memcmp(c, ref, sizeof(float) * clen) == 0,
                        "%s: %s rows, %d heads of %d columns, k = %d, beta %d: %d, differs from av_gemm_f32",
                        av_gemm_path_name(path), f16 ? "F16" : "F32", H, n, k, b, rc);
                }
                w.dtype = AV_DTYPE_BF16; /* (same byte count as F16: only the dtype matters here) */
                CHECK(!f16 || av_gram_heads(&w, r0, k, 0, H, n, (float)b, c) == -1);
                free(a), free(c), free(ref), free(h);
            }
}

ON_OWN_PATHS(ukernel_rows_match_fma_chain)
ON_ALL_PATHS(gemm_f32_within_bound)
ON_PATH(gemm_f32_matches_scalar, AVX2)
ON_PATH(gemm_f32_matches_scalar, AVX512)
ON_ALL_PATHS(matmul_dtypes_within_bound)
ON_ALL_PATHS(matmul_many_equals_single)
ON_PATH(matmul_threads_match_chain, AVX2)
ON_PATH(matmul_threads_match_chain, AVX512)
ON_OWN_PATHS(matmul_scratch_kept)
ON_PATH(pack_quant_equals_dequantize, AVX2)
ON_PATH(pack_quant_equals_dequantize, AVX512)
ON_PATH(pack_floats_equal_portable, AVX2)
ON_PATH(pack_floats_equal_portable, AVX512)
ON_OWN_PATHS(matmul_quant_equals_f32)
ON_ALL_PATHS(gram_equals_gemm)
ON_ALL_PATHS(gram_heads_equals_gemm)

/* The row tiles cover [0, m) in order with ceil(m / mr) tiles (the panels' count) of at most mr rows; after a
 * whole tile none has fewer than 3 rows (a tile of 1-4 rows takes a 4-row tile's time), and the scalar
 * kernel's (mr 4) are plain. */
static void tile_rows_cover_the_block(void) {
    static const int mrs[] = {AV_UK_SCALAR_MR, AV_UK_AVX2_MR, AV_UK_AVX512_MR};
    for (size_t i = 0; i < sizeof mrs / sizeof *mrs; i++)
        for (int mr = mrs[i], m = 1; m <= 100; m++) {
            int count = (m + mr - 1) / mr, smallest = mr, ok = av_tile_first(m, mr, 0) == 0;
            for (int t = 0; t < count && ok; t++) {
                int rows = av_tile_first(m, mr, t + 1) - av_tile_first(m, mr, t),
                    plain = m - t * mr < mr ? m - t * mr : mr;
                ok = rows >= 1 && rows <= mr && (mr > AV_UK_MIN_ROWS || rows == plain);
                smallest = rows < smallest ? rows : smallest;
            }
            ok = ok && av_tile_first(m, mr, count) == m;
            if (mr > AV_UK_MIN_ROWS && m > mr) ok = ok && smallest >= 3;
            CHECKF(ok, "mr %d, %d rows: tiles do not cover the block as specified (smallest %d)", mr, m,
                   smallest);
        }
    static const int expect[][8] = {{32, 6, 6, 6, 6, 6, 4, 4}, /* m, mr, then the tiles' rows */
                                    {25, 6, 6, 6, 6, 4, 3, 0},
                                    {7, 6, 4, 3, 0, 0, 0, 0},
                                    {13, 12, 7, 6, 0, 0, 0, 0}};
    for (size_t e = 0; e < sizeof expect / sizeof *expect; e++) {
        int m = expect[e][0], mr = expect[e][1], ok = 1;
        for (int t = 0; t < 6 && expect[e][2 + t]; t++)
            ok = ok && av_tile_first(m, mr, t + 1) - av_tile_first(m, mr, t) == expect[e][2 + t];
        CHECKF(ok, "%d rows of a %d-row kernel: not the tiles expected", m, mr);
    }
}

static void test_gemm_path_names_round_trip(void) {
    for (int p = 0; p < AV_GEMM_PATH_COUNT; p++) {
        av_gemm_path q;
        CHECK(av_gemm_path_parse(av_gemm_path_name((av_gemm_path)p), &q) == 0 && q == (av_gemm_path)p);
    }
    av_gemm_path q;
    CHECK(av_gemm_path_parse("avx1024", &q) == -1);
    CHECK(av_gemm_path_supported(AV_GEMM_SCALAR) && av_gemm_path_supported(AV_GEMM_SGEMM));
    printf("# paths here:");
    for (int p = 0; p < AV_GEMM_PATH_COUNT; p++)
        if (av_gemm_path_supported((av_gemm_path)p)) printf(" %s", av_gemm_path_name((av_gemm_path)p));
    printf(" (default %s)\n", av_gemm_path_name(av_gemm_path_get()));
}

int main(void) {
    RUN(test_gemm_path_names_round_trip);
    RUN(tile_rows_cover_the_block);
    RUN(ukernel_rows_match_fma_chain_SCALAR);
    RUN(ukernel_rows_match_fma_chain_AVX2);
    RUN(ukernel_rows_match_fma_chain_AVX512);
    RUN(gemm_f32_within_bound_SCALAR);
    RUN(gemm_f32_within_bound_AVX2);
    RUN(gemm_f32_within_bound_AVX512);
    RUN(gemm_f32_within_bound_AMX);
    RUN(gemm_f32_within_bound_SGEMM);
    RUN(gemm_f32_matches_scalar_AVX2);
    RUN(gemm_f32_matches_scalar_AVX512);
    RUN(matmul_dtypes_within_bound_SCALAR);
    RUN(matmul_dtypes_within_bound_AVX2);
    RUN(matmul_dtypes_within_bound_AVX512);
    RUN(matmul_dtypes_within_bound_AMX);
    RUN(matmul_dtypes_within_bound_SGEMM);
    RUN(matmul_many_equals_single_SCALAR);
    RUN(matmul_many_equals_single_AVX2);
    RUN(matmul_many_equals_single_AVX512);
    RUN(matmul_many_equals_single_AMX);
    RUN(matmul_many_equals_single_SGEMM);
    RUN(matmul_threads_match_chain_AVX2);
    RUN(matmul_threads_match_chain_AVX512);
    RUN(matmul_scratch_kept_SCALAR);
    RUN(matmul_scratch_kept_AVX2);
    RUN(matmul_scratch_kept_AVX512);
    RUN(pack_quant_equals_dequantize_AVX2);
    RUN(pack_quant_equals_dequantize_AVX512);
    RUN(pack_floats_equal_portable_AVX2);
    RUN(pack_floats_equal_portable_AVX512);
    RUN(matmul_quant_equals_f32_SCALAR);
    RUN(matmul_quant_equals_f32_AVX2);
    RUN(matmul_quant_equals_f32_AVX512);
    RUN(gram_equals_gemm_SCALAR);
    RUN(gram_equals_gemm_AVX2);
    RUN(gram_equals_gemm_AVX512);
    RUN(gram_equals_gemm_AMX);
    RUN(gram_equals_gemm_SGEMM);
    RUN(gram_heads_equals_gemm_SCALAR);
    RUN(gram_heads_equals_gemm_AVX2);
    RUN(gram_heads_equals_gemm_AVX512);
    RUN(gram_heads_equals_gemm_AMX);
    RUN(gram_heads_equals_gemm_SGEMM);
    return h_exit_code();
}
