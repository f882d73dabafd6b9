/* Matrix-vector products (matvec.h): the threads claim chunks of the output rows of all the call's weights
 * (at most an eighth of a thread's share, fewer as the call nears its end: av_guided_share; no packing: each
 * weight byte is read by one thread, once), so a thread slowed by other work on its core takes fewer:
 * generation ~5% faster than halves fixed in advance on a 2-vCPU VM (docs/BENCHMARKS.md, "Generation
 * kernels: each super-block unpacked one ahead (session 32)"). Each row goes to the path's row kernel for its
 * dtype, or is expanded a block of columns at a time into an L1 buffer for the path's F32 kernel when the
 * path has no kernel for the dtype. The scalar path's kernels (the reference the vector ones are checked
 * against in tests/test_matvec.c) are here. */
#include "gemm.h"
#include "matvec.h"

#include <stdatomic.h>

enum {
    CHUNK = 4096, /* columns per expanded block: 16 KiB of f32, a multiple of every block size */
    MIN_ROWS = 16 /* rows per claim, at least */
};

/* The scalar kernels: one f32 chain per row of x, in order of k. */
static inline void row_scalar(av_dtype t, const void *w, const float *x, int64_t ldx, int64_t n, int nx,
                              float *out) {
    for (int i = 0; i < nx; i++) {
        float acc = 0;
        for (int64_t k = 0; k < n; k++)
            acc += av_mv_weight(t, w, k) * x[i * ldx + k];
        out[i] = acc;
    }
}

AV_MV_ROWS_FN(rows_scalar_f32, row_scalar, AV_DTYPE_F32)
AV_MV_ROWS_FN(rows_scalar_f16, row_scalar, AV_DTYPE_F16)
AV_MV_ROWS_FN(rows_scalar_bf16, row_scalar, AV_DTYPE_BF16)

static av_mv_rows_fn kernel_of(av_gemm_path p, av_dtype t) {
    switch (p) {
    case AV_GEMM_AVX512:
    case AV_GEMM_AMX: return av_mv_rows_avx512(t);
    case AV_GEMM_AVX2: return av_mv_rows_avx2(t);
    case AV_GEMM_SCALAR:
        return t == AV_DTYPE_F32    ? rows_scalar_f32
               : t == AV_DTYPE_F16  ? rows_scalar_f16
               : t == AV_DTYPE_BF16 ? rows_scalar_bf16
                                    : NULL;
    default: /* sgemm: OpenBLAS has no matrix-vector product on stored weights; the fastest own path */
        return kernel_of(av_gemm_path_supported(AV_GEMM_AVX512) ? AV_GEMM_AVX512
                         : av_gemm_path_supported(AV_GEMM_AVX2) ? AV_GEMM_AVX2
                                                                : AV_GEMM_SCALAR,
                         t);
    }
}

typedef struct mv_job {
    const av_tensor *w[AV_MATMUL_MANY_MAX];   /* (out_i, in) */
    float *y[AV_MATMUL_MANY_MAX];             /* (n, out_i) */
    av_mv_rows_fn kernel[AV_MATMUL_MANY_MAX]; /* NULL: expand blocks for f32 */
    int64_t first[AV_MATMUL_MANY_MAX + 1];    /* weight i's rows are [first[i], first[i + 1]) of the call */
    int64_t chunk;                            /* rows per claim, at most */
    int threads;                              /* the threads of the call (av_guided_share) */
    atomic_llong next;                        /* the first row no thread has claimed */
    int count, n;
    int64_t in;
    const float *x; /* (n, in) */
    av_mv_rows_fn f32;
} mv_job;

/* y[i * ldy] (i < nx) = x rows (nx, in) dotted with weight row r of w, through an f32 buffer (CHUNK) of its
 * values. */
static void row_expanded(const mv_job *j, const av_tensor *w, int64_t r, const float *x, int nx, float *y,
                         int64_t ldy, float *buf) {
    float sum[AV_MV_NX] = {0};
    for (int64_t k0 = 0; k0 < j->in; k0 += CHUNK) {
        int kc = j->in - k0 < CHUNK ? (int)(j->in - k0) : CHUNK;
        float part[AV_MV_NX];
        av_weight_block_f32(w, r, k0, kc, buf);
        j->f32(buf, 0, 1, x + k0, j->in, kc, nx, part, 1);
        for (int i = 0; i < nx; i++)
            sum[i] += part[i];
    }
    for (int i = 0; i < nx; i++)
        y[i * ldy] = sum[i];
}

/* Rows [r0, r1) of weight i against every row of x: AV_MV_NX rows of x per kernel call, so with more rows of
 * x than that each block of MIN_ROWS weight rows is read again while it is still in cache. */
static void mv_rows(const mv_job *j, int i, int64_t r0, int64_t r1, float *buf) {
    const av_tensor *w = j->w[i];
    size_t row_bytes = av_tensor_row_bytes(w);
    int64_t out = w->shape[0], block = j->n > AV_MV_NX ? MIN_ROWS : r1 - r0;
    for (int64_t b0 = r0; b0 < r1; b0 += block) {
        int64_t rows = r1 - b0 < block ? r1 - b0 : block;
        for (int i0 = 0; i0 < j->n; i0 += AV_MV_NX) {
            int nx = j->n - i0 < AV_MV_NX ? j->n - i0 : AV_MV_NX;
            const float *x = j->x + (size_t)i0 * (size_t)j->in;
            float *y = j->y[i] + (size_t)i0 * (size_t)out + (size_t)b0; /* (nx, out) from row b0 */
            if (j->kernel[i])
                j->kernel[i]((const char *)w->data + (size_t)b0 * row_bytes, row_bytes, rows, x, j->in, j->in,
                             nx, y, out);
            else
                for (int64_t r = 0; r < rows; r++)
                    row_expanded(j, w, b0 + r, x, nx, y + r, out, buf);
        }
    }
}

/* Rows [start, end) of the call, which may span several weights. */
static void mv_span(const mv_job *j, int64_t start, int64_t end, float *buf) {
    for (int i = 0; i < j->count; i++) {
        int64_t r0 = start > j->first[i] ? start : j->first[i];
        int64_t r1 = end < j->first[i + 1] ? end : j->first[i + 1];
        if (r0 < r1) mv_rows(j, i, r0 - j->first[i], r1 - j->first[i], buf);
    }
}

/* Claims the next chunk of rows: [*r, *r + the count returned), 0 when none is left. */
static int64_t mv_claim(mv_job *j, int64_t *r) {
    int64_t total = j->first[j->count];
    long long f = atomic_load_explicit(&j->next, memory_order_relaxed);
    for (;;) {
        if (f >= total) return 0;
        int64_t rows = av_guided_share(total - f, j->threads, MIN_ROWS, j->chunk);
        rows = f + rows > total ? total - f : rows;
        if (atomic_compare_exchange_weak_explicit(&j->next, &f, f + rows, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            *r = f;
            return rows;
        }
    }
}

/* One thread: chunks of rows claimed one at a time until none is left, so a thread slowed by other work on
 * its core takes fewer instead of keeping the others waiting at the end of the call. */
static void mv_worker(void *ctx, int tid, int64_t t0, int64_t t1) {
    mv_job *j = ctx;
    float buf[CHUNK]; /* (CHUNK) values of one row, for dtypes without a kernel */
    int64_t r = 0;
    for (int64_t rows; (rows = mv_claim(j, &r)) > 0;)
        mv_span(j, r, r + rows, buf);
}

void av_matvec_many(float *const *y, const float *x, const av_tensor *const *w, int count, int n,
                    int n_threads, av_gemm_path p) {
    mv_job j = {.count = count, .n = n, .in = w[0]->shape[1], .x = x, .f32 = kernel_of(p, AV_DTYPE_F32)};
    for (int i = 0; i < count; i++) {
        j.w[i] = w[i];
        j.y[i] = y[i];
        j.kernel[i] = kernel_of(p, w[i]->dtype);
        j.first[i + 1] = j.first[i] + w[i]->shape[0];
    }
    if (n_threads <= 0) n_threads = av_default_threads();
    int64_t total = j.first[count];
    j.chunk = total / (8 * (int64_t)n_threads) > MIN_ROWS ? total / (8 * (int64_t)n_threads) : MIN_ROWS;
    j.threads = n_threads;
    atomic_init(&j.next, 0);
    av_parallel_for(n_threads, n_threads, mv_worker, &j);
}
