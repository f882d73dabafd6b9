/* Value norms (model/vnorm.c): the per-head Gram matrices of W_o against double precision on every GEMM path,
 * for dtypes read in place (F32, F16) and converted first (BF16), with the same bits for any thread count;
 * the stack keeps them (one copy, freed with the model); a trace's value norms are the same bits for 1, 2 and
 * 3 threads (the stories260K numbers against PyTorch: test_analysis_model.c). */
#include "core/dtype.h"
#include "gemm_paths.h"
#include "harness.h"
#include "synth_model.h"

#include <math.h>

/* W_o (dim, n_heads * hs) random in +-1, stored as dtype (F32, F16 or BF16), and its exact f32 values. */
static av_tensor random_wo(av_dtype dtype, int dim, int q_dim, float *exact, void **owned) {
    size_t n = (size_t)dim * (size_t)q_dim, esize = dtype == AV_DTYPE_F32 ? 4 : 2;
    unsigned seed = 99;
    uint16_t *half = malloc(n * 2);
    for (size_t i = 0; i < n; i++) {
        float x = (float)rand_r(&seed) / (float)RAND_MAX * 2.0f - 1.0f;
        if (dtype == AV_DTYPE_F16) half[i] = av_f32_to_f16(x), x = av_f16_to_f32(half[i]);
        if (dtype == AV_DTYPE_BF16) {
            uint32_t bits;
            memcpy(&bits, &x, 4);
            half[i] = (uint16_t)(bits >> 16), bits &= 0xffff0000u; /* truncated: exact in bf16 */
            memcpy(&x, &bits, 4);
        }
        exact[i] = x;
    }
    *owned = dtype == AV_DTYPE_F32 ? (free(half), NULL) : half;
    return (av_tensor){dtype, 2, {dim, q_dim, 0, 0}, dtype == AV_DTYPE_F32 ? (void *)exact : half, n * esize};
}

/* Every entry of gram (n_heads, hs, hs) within gamma(2 dim) sum_r |w_ri w_rj| of the double-precision Gram
 * matrix of the exact values (dim rows, head h at columns h*hs); the largest error in units of the bound. */
static double worst_against_double(const float *gram, const float *w, int dim, int n_heads, int hs) {
    double u = ldexp(1.0, -24), gamma = 2 * dim * u / (1 - 2 * dim * u), worst = 0;
    int q_dim = n_heads * hs;
    for (int h = 0; h < n_heads; h++)
        for (int i = 0; i < hs; i++)
            for (int j = 0; j < hs; j++) {
                double exact = 0, mag = 0;
                for (int r = 0; r < dim; r++) {
                    double p = (double)w[(size_t)r * q_dim + h * hs + i] * w[(size_t)r * q_dim + h * hs + j];
                    exact += p, mag += fabs(p);
                }
                double e = fabs(gram[((size_t)h * hs + i) * hs + j] - exact) / (gamma * mag + 1e-300);
                worst = e > worst ? e : worst;
            }
    return worst;
}

static void gram_within_bound_any_threads(av_gemm_path path) {
    enum { DIM = 600, HEADS = 5, HS = 24 }; /* 600 rows: two full blocks of 256 and a partial one */
    static const av_dtype dtypes[] = {AV_DTYPE_F32, AV_DTYPE_F16, AV_DTYPE_BF16};
    size_t len = (size_t)HEADS * HS * HS;
    float *exact = malloc(sizeof(float) * DIM * HEADS * HS), *g1 = malloc(sizeof(float) * len),
          *gt = malloc(sizeof(float) * len);
    for (size_t d = 0; d < sizeof dtypes / sizeof *dtypes; d++) {
        void *owned;
        av_tensor wo = random_wo(dtypes[d], DIM, HEADS * HS, exact, &owned);
        av_err err = {{0}};
        REQUIREF(av_attn_gram(&wo, HEADS, HS, 1, g1, &err) == 0, "%s", err.msg);
        double worst = worst_against_double(g1, exact, DIM, HEADS, HS);
        CHECKF(worst <= 1.0, "%s, %s: %.3g of the bound", av_gemm_path_name(path), av_dtype_name(dtypes[d]),
               worst);
        for (int threads = 2; threads <= 3; threads++) {
            REQUIRE(av_attn_gram(&wo, HEADS, HS, threads, gt, &err) == 0);
            CHECKF(memcmp(g1, gt, sizeof(float) * len) == 0, "%s, %s: %d threads differ from 1",
                   av_gemm_path_name(path), av_dtype_name(dtypes[d]), threads);
        }
        free(owned);
    }
    free(exact), free(g1), free(gt);
}
ON_ALL_PATHS(gram_within_bound_any_threads)

/* The stack computes a layer's Gram matrices once: the same pointer on the next call, av_attn_gram's bits. */
static void test_stack_keeps_gram(void) {
    av_model *m = h_synth_llama(256, 64, 2, 4, 2, 64);
    REQUIRE(m);
    const av_stack *st = &m->stacks[0];
    av_err err = {{0}};
    const float *g = av_stack_vnorm_gram(st, 1, 2, &err);
    REQUIREF(g, "%s", err.msg);
    CHECK(av_stack_vnorm_gram(st, 1, 1, &err) == g && st->vnorm_grams[0] == NULL);
    float *ref = malloc(sizeof(float) * 4 * 64 * 64);
    REQUIRE(av_attn_gram(&st->blocks[1].attn.o.w, 4, 64, 1, ref, &err) == 0);
    CHECK(memcmp(ref, g, sizeof(float) * 4 * 64 * 64) == 0);
    free(ref);
    av_model_free(m); /* frees the kept matrices (the sanitizer build checks for leaks) */
}

/* A fresh model per thread count: the first run computes the Gram matrices with its own threads. */
static av_trace *synth_trace(int n_threads) {
    av_model *m = h_synth_llama(512, 64, 2, 8, 8, 64); /* 512 x 64^2 x 8 per layer: threaded */
    if (!m) return NULL;
    int32_t ids[40];
    for (int i = 0; i < 40; i++)
        ids[i] = (i * 37 + 5) % H_SYNTH_VOCAB;
    av_run_params rp = av_run_default_params();
    rp.add_bos = 0, rp.n_threads = n_threads, rp.want_logits = 1;
    av_trace *t = NULL;
    av_err err = {{0}};
    if (av_trace_from_ids(m, ids, 40, &rp, &t, &err)) fprintf(stderr, "%s\n", err.msg);
    av_model_free(m);
    return t;
}

/* Tensor `name` of a and b: both there, and the same bytes. */
static int same_tensor(const av_trace *a, const av_trace *b, const char *name) {
    av_tensor x, y;
    return av_trace_tensor(a, name, &x) == 0 && av_trace_tensor(b, name, &y) == 0 && x.nbytes == y.nbytes &&
           memcmp(x.data, y.data, x.nbytes) == 0;
}

/* On the project's own GEMM paths every product splits its outputs between threads, never a sum, and so do
 * the value norms: a trace (attention, value norms, logits) has the same bits for 1, 2 and 3 threads. */
static void trace_same_bits_any_threads(av_gemm_path path) {
    av_trace *one = synth_trace(1);
    REQUIRE(one);
    for (int threads = 2; threads <= 3; threads++) {
        av_trace *t = synth_trace(threads);
        REQUIRE(t);
        for (int l = 0; l < 2; l++) {
            av_attn_view a, b;
            av_err err = {{0}};
            REQUIREF(av_trace_attn(one, AV_ATTN_SELF, l, &a, &err) == 0 &&
                         av_trace_attn(t, AV_ATTN_SELF, l, &b, &err) == 0,
                     "%s", err.msg);
            CHECKF(memcmp(a.data, b.data, sizeof(float) * 8 * 40 * 40) == 0,
                   "%s, layer %d: attention of %d threads", av_gemm_path_name(path), l, threads);
            char name[32];
            snprintf(name, sizeof name, "vnorm.%d", l);
            CHECKF(same_tensor(one, t, name), "%s, layer %d: value norms of %d threads differ from 1",
                   av_gemm_path_name(path), l, threads);
        }
        CHECKF(same_tensor(one, t, "logits"), "%s: logits of %d threads differ from 1",
               av_gemm_path_name(path), threads);
        av_trace_free(t);
    }
    av_trace_free(one);
}
ON_OWN_PATHS(trace_same_bits_any_threads)
ON_PATH(trace_same_bits_any_threads, AMX)

int main(void) {
    RUN(gram_within_bound_any_threads_SCALAR);
    RUN(gram_within_bound_any_threads_AVX2);
    RUN(gram_within_bound_any_threads_AVX512);
    RUN(gram_within_bound_any_threads_AMX);
    RUN(gram_within_bound_any_threads_SGEMM);
    RUN(test_stack_keeps_gram);
    RUN(trace_same_bits_any_threads_SCALAR);
    RUN(trace_same_bits_any_threads_AVX2);
    RUN(trace_same_bits_any_threads_AVX512);
    RUN(trace_same_bits_any_threads_AMX);
    return h_exit_code();
}
