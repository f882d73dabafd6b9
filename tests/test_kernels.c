/* Kernels against plain scalar references and known values. */
#include "harness.h"
#include "kernels/kernels.h"

static void test_half_conversions_known_values(void) {
    /* IEEE half: 1.0 = 0x3C00, -2.0 = 0xC000, 65504 = 0x7BFF, smallest subnormal = 0x0001 = 2^-24 */
    CHECK(av_f16_to_f32(0x3C00) == 1.0f);
    CHECK(av_f16_to_f32(0xC000) == -2.0f);
    CHECK(av_f16_to_f32(0x7BFF) == 65504.0f);
    CHECK(av_f16_to_f32(0x0001) == ldexpf(1.0f, -24));
    CHECK(isinf(av_f16_to_f32(0x7C00)));
    CHECK(av_f32_to_f16(1.0f) == 0x3C00);
    CHECK(av_f32_to_f16(65504.0f) == 0x7BFF);
    CHECK(av_f32_to_f16(1e6f) == 0x7C00);                     /* overflow -> inf */
    CHECK(av_f32_to_f16(1.0f + ldexpf(1.0f, -11)) == 0x3C00); /* tie rounds to even */
    CHECK(av_f32_to_f16(ldexpf(1.0f, -24)) == 0x0001);
    CHECK(av_f32_to_bf16(1.0f) == 0x3F80);
    CHECK(av_bf16_to_f32(0x4049) == 3.140625f);
    /* every finite half survives f16 -> f32 -> f16 */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7C00) == 0x7C00) continue;
        if (av_f32_to_f16(av_f16_to_f32((uint16_t)h)) != h) bad++;
    }
    CHECKF(bad == 0, "%d halves do not round-trip", bad);
}

/* av_f32_to_f16_n (8 at a time with F16C) gives av_f32_to_f16's bits for every 61st float pattern, NaNs with
 * payloads, infinities, the halves' subnormal and overflow boundaries, at lengths with and without a tail. */
static void test_half_rows_match_scalar(void) {
    enum { N = 1021 }; /* 127 chunks of 8 and a tail of 5 */
    static float x[N];
    static uint16_t got[N];
    const uint32_t special[] = {0x7fc00000u, 0x7fc01234u, 0xffbfffffu, 0x7f800001u, 0x7f800000u, 0xff800000u,
                                0x33000000u, 0x33000001u, 0x477fefffu, 0x477ff000u, 0x387fc000u, 0x80000000u};
    long bad = 0, n_vals = 0;
    uint64_t bits = 0;
    for (int round = 0; bits < 0x100000000ull; round++) {
        int len = round % 2 ? N : N - 5;
        for (int i = 0; i < len; i++, n_vals++) {
            uint32_t b = (uint32_t)bits;
            if (i < (int)(sizeof special / sizeof *special))
                b = special[i];
            else
                bits += 61;
            memcpy(&x[i], &b, 4);
        }
        av_f32_to_f16_n(x, got, (size_t)len);
        for (int i = 0; i < len; i++)
            bad += got[i] != av_f32_to_f16(x[i]);
    }
    CHECKF(bad == 0, "%ld of %ld conversions differ from av_f32_to_f16", bad, n_vals);
}

static void test_vector_dequantization_matches_scalar(void) {
    uint16_t *h = malloc(65536 * 2);
    float *out = malloc(65536 * 4);
    for (uint32_t i = 0; i < 65536; i++)
        h[i] = (uint16_t)i;
    av_tensor t = {AV_DTYPE_F16, 2, {256, 256, 0, 0}, h, 65536 * 2};
    av_dequantize_rows(&t, 0, 256, out);
    int bad = 0;
    for (uint32_t i = 0; i < 65536; i++) {
        float ref = av_f16_to_f32((uint16_t)i);
        if (!(isnan(ref) && isnan(out[i])) && memcmp(&ref, &out[i], 4) != 0) bad++;
    }
    CHECKF(bad == 0, "F16: %d values differ from the scalar conversion", bad);
    t.dtype = AV_DTYPE_BF16;
    av_dequantize_rows(&t, 3, 2, out); /* rows 3..4 */
    bad = 0;
    for (uint32_t i = 0; i < 512; i++) {
        float ref = av_bf16_to_f32(h[3 * 256 + i]);
        if (!(isnan(ref) && isnan(out[i])) && memcmp(&ref, &out[i], 4) != 0) bad++;
    }
    CHECKF(bad == 0, "BF16: %d values differ", bad);
    /* Q8_0: every value is d * q, one rounding, whatever the block's scale and values */
    av_block_q8_0 q[64];
    for (int b = 0; b < 64; b++) {
        q[b].d = h[b * 997 % 65536] & 0x7bff; /* finite scales of many exponents */
        for (int j = 0; j < 32; j++)
            q[b].qs[j] = (int8_t)(b * 37 + j * 11);
    }
    av_tensor tq = {AV_DTYPE_Q8_0, 2, {2, 1024, 0, 0}, q, sizeof q};
    av_dequantize_rows(&tq, 0, 2, out);
    bad = 0;
    for (int i = 0; i < 2048; i++) {
        float ref = av_f16_to_f32(q[i / 32].d) * (float)q[i / 32].qs[i % 32];
        if (memcmp(&ref, &out[i], 4) != 0) bad++;
    }
    CHECKF(bad == 0, "Q8_0: %d values differ from d * q", bad);
    free(h);
    free(out);
}

static void test_q8_0_round_trip(void) {
    float x[64], y[64];
    for (int i = 0; i < 64; i++)
        x[i] = sinf((float)i * 0.37f) * (i < 32 ? 1.0f : 100.0f);
    av_block_q8_0 q[2];
    av_quantize_q8_0(x, q, 64);
    av_tensor t = {AV_DTYPE_Q8_0, 2, {1, 64, 0, 0}, q, sizeof q};
    av_dequantize_rows(&t, 0, 1, y);
    for (int b = 0; b < 2; b++) {
        float amax = 0;
        for (int i = 0; i < 32; i++)
            amax = fmaxf(amax, fabsf(x[b * 32 + i]));
        for (int i = 0; i < 32; i++) /* error at most half a step, plus the f16 rounding of the scale */
            CHECKF(fabsf(y[b * 32 + i] - x[b * 32 + i]) <= amax / 127.0f * 0.51f + amax * 1e-3f,
                   "block %d value %d", b, i);
    }
    CHECK(q[0].qs[0] == 0);
}

static void test_softmax_and_rmsnorm(void) {
    float x[3] = {1.0f, 2.0f, 3.0f};
    av_softmax(x, 3);
    /* e^-2, e^-1, 1 over their sum */
    double s = exp(-2.0) + exp(-1.0) + 1.0;
    CHECK(fabs(x[0] - exp(-2.0) / s) < 1e-7 && fabs(x[2] - 1.0 / s) < 1e-7);
    float big[2] = {1000.0f, 1000.0f}; /* no overflow */
    av_softmax(big, 2);
    CHECK(big[0] == 0.5f && big[1] == 0.5f);
    float v[4] = {1, 2, 3, 4}, w[4] = {1, 1, 2, 0.5f}, o[4];
    av_tensor wt = {AV_DTYPE_F32, 1, {4, 0, 0, 0}, w, 16};
    av_rmsnorm(o, v, &wt, 1, 4, 0.0f, 2);
    double rms = sqrt((1 + 4 + 9 + 16) / 4.0);
    CHECK(fabs(o[2] - 3 / rms * 2) < 1e-6 && fabs(o[3] - 4 / rms * 0.5) < 1e-6);
}

static void test_softmax_matches_double_precision(void) {
    /* long rows exercise the 8-wide path and the scalar tail; compare with a double-precision softmax */
    enum { N = 1003 };
    float x[N];
    double ref[N], mx = -1e30, sum = 0;
    for (int i = 0; i < N; i++)
        x[i] = 30.0f * sinf((float)i * 0.731f) - (i % 17 == 0 ? 200.0f : 0.0f);
    for (int i = 0; i < N; i++)
        mx = x[i] > mx ? x[i] : mx;
    for (int i = 0; i < N; i++)
        sum += ref[i] = exp((double)x[i] - mx);
    av_softmax(x, N);
    double worst = 0, total = 0;
    for (int i = 0; i < N; i++) {
        double rel = fabs(x[i] - ref[i] / sum) / (ref[i] / sum + 1e-30);
        if (ref[i] / sum > 1e-30 && rel > worst) worst = rel;
        total += x[i];
    }
    CHECKF(worst < 5e-6, "relative error %g", worst); /* float sum over 1003 terms included */
    CHECK(fabs(total - 1.0) < 1e-5);
    float tiny[3] = {0.0f, -100.0f, -1e30f}; /* underflow to exactly 0, never NaN */
    av_softmax(tiny, 3);
    CHECK(tiny[0] == 1.0f && tiny[2] == 0.0f && tiny[1] >= 0.0f);
}

/* NaN / infinite inputs (from NaN or Inf weights) make the whole row NaN in the 16-wide, 8-wide and scalar
 * code alike, and never reach exp's float-to-int conversion (issue #19: (int)NaN is undefined behaviour,
 * which clang's -fsanitize=float-cast-overflow reports; fuzz/regress keeps the model file that found it). */
static void softmax_nan_and_inf_rows(av_gemm_path path) {
    enum { N = 37 }; /* two 16-lane chunks (or four 8-lane ones), then a 5-value scalar tail */
    for (int at = 0; at < N; at += 6) { /* a bad value in every kind of lane and the scalar tail */
        for (int kind = 0; kind < 3; kind++) {
            float x[N];
            for (int i = 0; i < N; i++)
                x[i] = (float)i * 0.1f;
            x[at] = kind == 0 ? NAN : kind == 1 ? INFINITY : -INFINITY;
            av_softmax(x, N);
            int n_nan = 0;
            for (int i = 0; i < N; i++)
                n_nan += isnan(x[i]);
            if (kind == 2) /* -inf is an ordinary masked entry: exactly 0 */
                CHECKF(n_nan == 0 && x[at] == 0.0f, "%s: -inf at %d: %d NaN, weight %g",
                       av_gemm_path_name(path), at, n_nan, (double)x[at]);
            else if (kind == 0)
                CHECKF(n_nan == N, "%s: NaN at %d: %d of %d outputs are NaN", av_gemm_path_name(path), at,
                       n_nan, N);
        }
    }
}

static void test_softmax_nan_and_inf_rows(void) {
    av_gemm_path prev = av_gemm_path_get();
    for (int p = 0; p < AV_GEMM_PATH_COUNT; p++)
        if (av_gemm_path_supported((av_gemm_path)p)) {
            av_gemm_path_set((av_gemm_path)p);
            softmax_nan_and_inf_rows((av_gemm_path)p);
        }
    av_gemm_path_set(prev);
}

/* exp of x <= 0 as ops.c's exp_nonpos documents it (Cephes: 2^n p(r), every step rounded on its own; ISO C
 * compiles this without fused multiply-adds): the reference for the masked 8-lane tail of av_exp_shift_sum.
 */
static float ref_exp_nonpos(float x) {
    if (x != x) return x;
    if (x < -87.3f) return 0.0f;
    float n = rintf(x * 1.44269504088896341f);
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    static const float c[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                               4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};
    float p = c[0];
    for (int k = 1; k < 6; k++)
        p = p * r + c[k];
    p = p * r * r + r + 1.0f;
    return ldexpf(p, (int)n);
}

/* Rows of 1..7 values (all tail) and 8..15 (one 8-lane chunk, then the tail) give ref_exp_nonpos's bits in
 * the tail for
 * every 997th float in [-87.3, 0] (the tail's subnormal results near -87.3 included), the ends of that range,
 * -inf and NaN, and the row sum in the scalar order; the reference itself within 2 ulp of exp (from -87.3 on:
 * below it, exactly 0). */
static void test_exp_tail_matches_scalar_formula(void) {
    enum { STRIDE = 997 };
    float x[16], ref[16];
    const float special[] = {-0.0f,     0.0f, -87.3f, nextafterf(-87.3f, 0.0f), nextafterf(-87.3f, -100.0f),
                             -INFINITY, NAN,  -1e-40f};
    long bad = 0, bad_sum = 0, far = 0, n_vals = 0;
    uint32_t bits = 0x80000000u, end = 0xC2AE999Au; /* -0.0 .. -87.3 */
    for (int len = 1; bits <= end; len = len % 15 + 1) {
        for (int i = 0; i < len; i++, n_vals++) {
            size_t sp = (size_t)(n_vals % 97);
            if (sp < sizeof special / sizeof *special) {
                x[i] = special[sp];
            } else {
                memcpy(&x[i], &bits, 4);
                bits += STRIDE;
            }
            ref[i] = ref_exp_nonpos(x[i]);
            double e = exp((double)x[i]);
            if (x[i] >= -87.3f && e > 1.2e-38 &&
                fabs(ref[i] - e) > 2 * (nextafterf((float)e, 2.0f) - (float)e))
                far++;
        }
        float sum_ref = 0;
        for (int i = 0; len < 8 && i < len; i++) /* rows under 8: the sum is the plain sequence */
            sum_ref += ref[i];
        float sum = av_exp_shift_sum(x, len, 0.0f);
        int t0 = len < 8 ? 0 : 8; /* (an 8-lane chunk's values are exp_nonpos8's, with fused steps) */
        bad += memcmp(x + t0, ref + t0, sizeof(float) * (size_t)(len - t0)) != 0;
        bad_sum += len < 8 && memcmp(&sum, &sum_ref, 4) != 0;
    }
    CHECKF(bad == 0 && bad_sum == 0, "%ld rows differ from the scalar formula, %ld sums (of %ld values)", bad,
           bad_sum, n_vals);
    CHECKF(far == 0, "%ld reference values further than 2 ulp from exp", far);
}

/* The 16-lane softmax and SwiGLU of the AVX-512 paths give the 8-lane code's bits, at every length (whole
 * chunks, an 8-lane chunk, a scalar tail) and on masked (-inf) and very negative inputs. */
static void test_softmax_swiglu_same_bits_on_avx512(void) {
    if (!av_gemm_path_supported(AV_GEMM_AVX512)) SKIP("this CPU or OS cannot run the avx512 path");
    av_gemm_path prev = av_gemm_path_get();
    static const int lengths[] = {1, 7, 8, 15, 16, 17, 24, 31, 33, 100, 513};
    float a[513], b[513], u[513];
    unsigned seed = 11;
    for (size_t l = 0; l < sizeof lengths / sizeof *lengths; l++) {
        int n = lengths[l];
        for (int i = 0; i < n; i++) {
            a[i] = ((float)rand_r(&seed) / RAND_MAX - 0.5f) * 3.0f; /* sums of many comparable terms */
            u[i] = (float)rand_r(&seed) / RAND_MAX - 0.5f;
        }
        if (n > 3) a[1] = -INFINITY, a[2] = -120.0f;
        memcpy(b, a, sizeof(float) * (size_t)n);
        av_gemm_path_set(AV_GEMM_AVX2);
        av_softmax(a, n);
        av_gemm_path_set(AV_GEMM_AVX512);
        av_softmax(b, n);
        CHECKF(memcmp(a, b, sizeof(float) * (size_t)n) == 0, "softmax of %d values differs", n);
        for (int i = 0; i < n; i++)
            a[i] = b[i] = ((float)rand_r(&seed) / RAND_MAX - 0.5f) * 40.0f;
        av_gemm_path_set(AV_GEMM_AVX2);
        av_swiglu(a, u, (size_t)n, 1);
        av_gemm_path_set(AV_GEMM_AVX512);
        av_swiglu(b, u, (size_t)n, 1);
        CHECKF(memcmp(a, b, sizeof(float) * (size_t)n) == 0, "swiglu of %d values differs", n);
    }
    av_gemm_path_set(prev);
}

/* The 16-lane exponentials of the AVX-512 paths (2^n p(r) as one scaling) give the 8-lane code's bits for
 * every 997th float in [-87.3, 0] (down to 2^-126 p(r): the smallest results are normal), and the same row
 * sums. */
static void test_exp_same_bits_on_avx512(void) {
    if (!av_gemm_path_supported(AV_GEMM_AVX512)) SKIP("this CPU or OS cannot run the avx512 path");
    enum { N = 512, STRIDE = 997 };
    static float a[N], b[N];
    av_gemm_path prev = av_gemm_path_get();
    long bad = 0, rows = 0;
    for (uint32_t bits = 0x80000000u, end = 0xC2AE999Au; bits <= end; rows++) { /* -0.0 .. -87.3 */
        for (int i = 0; i < N; i++, bits = bits <= end - STRIDE ? bits + STRIDE : end + 1)
            memcpy(&a[i], &bits, 4);
        memcpy(b, a, sizeof a);
        av_gemm_path_set(AV_GEMM_AVX2);
        float sa = av_exp_shift_sum(a, N, 0.0f);
        av_gemm_path_set(AV_GEMM_AVX512);
        float sb = av_exp_shift_sum(b, N, 0.0f);
        bad += memcmp(a, b, sizeof a) != 0 || memcmp(&sa, &sb, 4) != 0;
    }
    av_gemm_path_set(prev);
    CHECKF(bad == 0, "%ld of %ld rows differ", bad, rows);
}

/* av_exp_shift_sum_from (the capture's softmax when a row's last key tile left its exps in place) against
 * av_exp_shift_sum over the whole row, whose bits it must give: values and sum identical at lengths around
 * the 8- and 16-value chunks, exps already present from every multiple of 16, on each path with its own
 * exp code (scalar and sgemm run the 8-lane code as avx2 does), rows with masked (-inf) keys; and the sum
 * against exp in double. */
static void test_exp_shift_sum_from_equals_whole_row(void) {
    static const int lengths[] = {16, 17, 23, 24, 31, 32, 33, 100, 255, 256, 257, 263, 264, 384, 513, 750};
    static float x[750], want[750], got[750];
    static const av_gemm_path paths[] = {AV_GEMM_AVX2, AV_GEMM_AVX512};
    av_gemm_path prev = av_gemm_path_get();
    unsigned seed = 17;
    int rows = 0, bad = 0, far = 0;
    for (size_t pi = 0; pi < sizeof paths / sizeof *paths; pi++) {
        if (!av_gemm_path_supported(paths[pi])) continue;
        av_gemm_path_set(paths[pi]);
        for (size_t l = 0; l < sizeof lengths / sizeof *lengths; l++) {
            int n = lengths[l];
            float mx = -INFINITY;
            for (int i = 0; i < n; i++) {
                x[i] = i % 29 == 5 ? -INFINITY : ((float)rand_r(&seed) / RAND_MAX - 0.5f) * 12.0f;
                mx = x[i] > mx ? x[i] : mx;
            }
            double ref = 0;
            for (int i = 0; i < n; i++)
                ref += exp((double)x[i] - mx);
            memcpy(want, x, sizeof(float) * (size_t)n);
            float sum_want = av_exp_shift_sum(want, n, mx);
            for (int n0 = 0; n0 <= n; n0 += 16, rows++) {
                memcpy(got, x, sizeof(float) * (size_t)n);
                av_exp_shift_sum(got + n0, n - n0, mx); /* the last tile's exps, as tile_row leaves them */
                float sum = av_exp_shift_sum_from(got, n0, n, mx);
                bad += memcmp(got, want, sizeof(float) * (size_t)n) != 0 || memcmp(&sum, &sum_want, 4) != 0;
                far += fabs(sum - ref) > 1e-5 * ref;
            }
        }
    }
    av_gemm_path_set(prev);
    CHECKF(rows > 0 && bad == 0, "%d of %d rows differ from av_exp_shift_sum's values or sum", bad, rows);
    CHECKF(far == 0, "%d sums further than 1e-5 from exp in double", far);
}

/* The residual add fused into the next RMSNorm (av_rmsnorm_add, out aliasing the addend as the forward pass
 * calls it) against the add and av_rmsnorm apart, bit for bit, and the norm against double precision;
 * rows of 300 values (not a multiple of the 8 lanes), enough rows for two threads. */
static void test_rmsnorm_add_equals_two_steps(void) {
    enum { N = 64, D = 300 };
    static float x[N * D], y[N * D], a[N * D], o[N * D], w[D];
    unsigned seed = 3;
    for (int i = 0; i < N * D; i++) {
        x[i] = y[i] = (float)rand_r(&seed) / RAND_MAX * 4 - 2;
        a[i] = o[i] = (float)rand_r(&seed) / RAND_MAX - 0.5f;
    }
    for (int i = 0; i < D; i++)
        w[i] = (float)rand_r(&seed) / RAND_MAX + 0.5f;
    av_tensor wt = {AV_DTYPE_F32, 1, {D, 0, 0, 0}, w, sizeof w};
    av_rmsnorm_add(a, x, a, &wt, N, D, 1e-5f, 2); /* x += a, a = norm(x) */
    for (int i = 0; i < N * D; i++)
        y[i] += o[i];
    av_rmsnorm(o, y, &wt, N, D, 1e-5f, 2);
    CHECK(memcmp(x, y, sizeof x) == 0);
    CHECK(memcmp(a, o, sizeof a) == 0);
    double worst = 0;
    for (int r = 0; r < N; r++) {
        double ss = 0;
        for (int i = 0; i < D; i++)
            ss += (double)y[r * D + i] * y[r * D + i];
        for (int i = 0; i < D; i++) {
            double want = y[r * D + i] / sqrt(ss / D + 1e-5) * w[i];
            worst = fmax(worst, fabs(a[r * D + i] - want) / (fabs(want) + 1e-3));
        }
    }
    CHECKF(worst < 1e-6, "relative error %g against double precision", worst);
}

static void test_rope_styles_agree_under_permutation(void) {
    /* interleaved pairs (2i, 2i+1) and rotate-half pairs (i, i+d/2) give the same rotation on permuted dims
     * (20 pairs: rotate-half's 8-lane loop and its scalar tail against the interleaved loop) */
    enum { D = 40 };
    float a[D], b[D];
    for (int i = 0; i < D; i++)
        a[i] = (float)(i + 1) * 0.25f;
    for (int i = 0; i < D / 2; i++) {
        b[i] = a[2 * i];
        b[i + D / 2] = a[2 * i + 1];
    }
    av_rope(a, 1, D, 7, 10000.0f, 0);
    av_rope(b, 1, D, 7, 10000.0f, 1);
    for (int i = 0; i < D / 2; i++)
        CHECK(a[2 * i] == b[i] && a[2 * i + 1] == b[i + D / 2]);
    /* position 0 is the identity; position 1 rotates pair 0 by exactly 1 radian */
    float c[2] = {1.0f, 0.0f};
    av_rope(c, 1, 2, 1, 10000.0f, 0);
    CHECK(fabsf(c[0] - cosf(1.0f)) < 1e-7f && fabsf(c[1] - sinf(1.0f)) < 1e-7f);
}

static void test_matmul_all_paths(void) {
    enum { N = 9, IN = 64, OUT = 40 };
    float x[N * IN], w[OUT * IN], ref[N * OUT], y[N * OUT], scratch[OUT * IN];
    uint16_t wh[OUT * IN];
    for (int i = 0; i < N * IN; i++)
        x[i] = cosf((float)i * 0.1f);
    for (int i = 0; i < OUT * IN; i++) {
        wh[i] = av_f32_to_f16(sinf((float)i * 0.07f));
        w[i] = av_f16_to_f32(wh[i]);
    }
    for (int r = 0; r < N; r++)
        for (int o = 0; o < OUT; o++) {
            double acc = 0;
            for (int k = 0; k < IN; k++)
                acc += (double)x[r * IN + k] * w[o * IN + k];
            ref[r * OUT + o] = (float)acc;
        }
    av_tensor wf = {AV_DTYPE_F32, 2, {OUT, IN, 0, 0}, w, sizeof w};
    av_tensor w16 = {AV_DTYPE_F16, 2, {OUT, IN, 0, 0}, wh, sizeof wh};
    av_matmul(y, x, &wf, N, NULL, 2);
    CHECK(h_max_abs_diff(y, ref, N * OUT) < 1e-4f);
    av_matmul(y, x, &w16, N, scratch, 2); /* dequantize + sgemm */
    CHECK(h_max_abs_diff(y, ref, N * OUT) < 1e-4f);
    av_matmul(y, x, &w16, 3, NULL, 2); /* row-by-row path */
    CHECK(h_max_abs_diff(y, ref, 3 * OUT) < 1e-4f);
    av_matmul(y, x, &wf, 1, NULL, 1); /* gemv */
    CHECK(h_max_abs_diff(y, ref, OUT) < 1e-4f);
}

/* The AMX split-bf16 kernel against double precision: every output within 2^-16 of sum_k |x_k w_k| (the
 * scheme's bound is ~2^-17 per product plus f32 accumulation); taking only the bf16 "hi" parts would miss it
 * by 100x. Shapes are off every tile multiple (tokens, features and K all padded), weights f16, bf16, q8_0.
 */
static void test_matmul_bf16x3_within_bound(void) {
    if (!av_amx_ready()) {
        SKIP("this CPU has no AMX-BF16 (or ATTNVIZ_GEMM=sgemm): the split-bf16 kernel is not used here");
    }
    const int shapes[][3] = {{37, 45, 70}, {100, 300, 96}, {16, 16, 32}, {65, 33, 1000}}; /* n, out, in */
    double worst_all = 0;
    const av_dtype types[] = {AV_DTYPE_F16, AV_DTYPE_BF16, AV_DTYPE_Q8_0};
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++)
        for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++) {
            int n = shapes[si][0], out = shapes[si][1], in = shapes[si][2];
            if (types[ti] == AV_DTYPE_Q8_0 && in % 32) continue;
            float *x = malloc(sizeof(float) * (size_t)n * in), *wf = malloc(sizeof(float) * (size_t)out * in);
            float *y = malloc(sizeof(float) * (size_t)n * out);
            void *wq = malloc(sizeof(float) * (size_t)out * in);
            unsigned seed = (unsigned)(si * 10 + ti + 1);
            for (int i = 0; i < n * in; i++)
                x[i] = ((float)rand_r(&seed) / RAND_MAX - 0.5f) * 4.0f;
            for (int i = 0; i < out * in; i++)
                wf[i] = ((float)rand_r(&seed) / RAND_MAX - 0.5f) * 0.2f;
            av_tensor w = {types[ti], 2, {out, in, 0, 0}, wq, 0};
            for (int i = 0; i < out * in; i++) {
                if (types[ti] == AV_DTYPE_F16) ((uint16_t *)wq)[i] = av_f32_to_f16(wf[i]);
                if (types[ti] == AV_DTYPE_BF16) {
                    uint32_t bits;
                    memcpy(&bits, &wf[i], 4);
                    ((uint16_t *)wq)[i] = (uint16_t)(bits >> 16);
                }
            }
            if (types[ti] == AV_DTYPE_Q8_0) av_quantize_q8_0(wf, wq, (size_t)out * in);
            av_dequantize_rows(&w, 0, out, wf); /* the exact weights the kernel sees */
            CHECK(av_matmul_bf16x3(y, x, &w, n, 2) == 0);
            double worst = 0;
            for (int r = 0; r < n; r++)
                for (int o = 0; o < out; o++) {
                    double acc = 0, mag = 0;
                    for (int k = 0; k < in; k++) {
                        double p = (double)x[r * in + k] * wf[(size_t)o * in + k];
                        acc += p, mag += fabs(p);
                    }
                    double ratio = fabs(y[(size_t)r * out + o] - acc) / (mag + 1e-30);
                    if (ratio > worst) worst = ratio;
                }
            CHECKF(worst <= 1.0 / 65536, "%d x %d x %d %s: error %.3g of sum |x w|", n, out, in,
                   av_dtype_name(types[ti]), worst);
            if (worst > worst_all) worst_all = worst;
            free(x), free(wf), free(y), free(wq);
        }
    printf("# bf16x3: worst error %.3g of sum |x w| (bound 2^-16 = %.3g)\n", worst_all, 1.0 / 65536);
}

/* Several weights against one packed x (q/k/v, gate/up): every output bit-identical to one call per weight,
 * including weights of different dtypes and widths whose feature pairs share one thread split. */
static void test_matmul_bf16x3_many_equals_single(void) {
    if (!av_amx_ready())
        SKIP("this CPU has no AMX-BF16 (or ATTNVIZ_GEMM=sgemm): the split-bf16 kernel is not used here");
    enum { N = 40, IN = 96 };
    const int outs[3] = {45, 300, 16};
    const av_dtype types[3] = {AV_DTYPE_F16, AV_DTYPE_Q8_0, AV_DTYPE_BF16};
    float x[N * IN];
    for (int i = 0; i < N * IN; i++)
        x[i] = sinf((float)i * 0.37f);
    av_tensor w[3];
    const av_tensor *wp[3];
    float *many[3], *single[3];
    void *data[3];
    for (int k = 0; k < 3; k++) {
        float *wf = malloc(sizeof(float) * (size_t)outs[k] * IN);
        for (int i = 0; i < outs[k] * IN; i++)
            wf[i] = cosf((float)(i + 100 * k) * 0.11f) * 0.1f;
        data[k] = malloc(sizeof(float) * (size_t)outs[k] * IN);
        for (int i = 0; i < outs[k] * IN && types[k] != AV_DTYPE_Q8_0; i++) {
            uint32_t bits;
            memcpy(&bits, &wf[i], 4);
            ((uint16_t *)data[k])[i] =
                types[k] == AV_DTYPE_F16 ? av_f32_to_f16(wf[i]) : (uint16_t)(bits >> 16);
        }
        if (types[k] == AV_DTYPE_Q8_0) av_quantize_q8_0(wf, data[k], (size_t)outs[k] * IN);
        free(wf);
        w[k] = (av_tensor){types[k], 2, {outs[k], IN, 0, 0}, data[k], 0};
        wp[k] = &w[k];
        many[k] = malloc(sizeof(float) * (size_t)N * outs[k]);
        single[k] = malloc(sizeof(float) * (size_t)N * outs[k]);
        REQUIRE(av_matmul_bf16x3(single[k], x, &w[k], N, 2) == 0);
    }
    REQUIRE(av_matmul_bf16x3_many(many, x, wp, 3, N, 2) == 0);
    for (int k = 0; k < 3; k++) {
        CHECKF(memcmp(many[k], single[k], sizeof(float) * (size_t)N * outs[k]) == 0, "weight %d differs", k);
        free(many[k]), free(single[k]), free(data[k]);
    }
}

int main(void) {
    RUN(test_half_conversions_known_values);
    RUN(test_half_rows_match_scalar);
    RUN(test_vector_dequantization_matches_scalar);
    RUN(test_q8_0_round_trip);
    RUN(test_softmax_and_rmsnorm);
    RUN(test_softmax_matches_double_precision);
    RUN(test_softmax_nan_and_inf_rows);
    RUN(test_softmax_swiglu_same_bits_on_avx512);
    RUN(test_exp_same_bits_on_avx512);
    RUN(test_exp_tail_matches_scalar_formula);
    RUN(test_exp_shift_sum_from_equals_whole_row);
    RUN(test_rmsnorm_add_equals_two_steps);
    RUN(test_rope_styles_agree_under_permutation);
    RUN(test_matmul_all_paths);
    RUN(test_matmul_bf16x3_within_bound);
    RUN(test_matmul_bf16x3_many_equals_single);
    return h_exit_code();
}
