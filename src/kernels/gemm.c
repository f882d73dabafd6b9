/* The project's own f32 GEMM, BLIS-style (docs/ARCHITECTURE.md, "GEMM"): operands are packed into panels
 * sized for the caches, and a register-tiled micro-kernel (AVX-512, AVX2 + FMA or the scalar reference below,
 * gemm_cpu.c picks one) multiplies one pair of panels at a time.
 *
 * Weights (av_gemm_weights, y = x W^T): x is packed once per call and shared by the threads; the threads
 * claim blocks of output features one at a time (a thread slowed by other work takes fewer; NC_W features,
 * fewer as the call nears its end, so that the threads finish together), each converts its block's weight
 * rows from their stored dtype straight into panels, one block of AV_GEMM_KC columns at a time, so every
 * weight byte is read and converted exactly once. Loop order per thread: feature block (up to NC_W features)
 * > k block (KC) > token panel (MR, in L1) > feature panel (NR, streamed from the L2-sized block).
 *
 * av_gemm_f32 is the cblas_sgemm-like product for f32 operands (attention, ...) on the same kernels. */
#include "gemm.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#if defined(__F16C__) && defined(__AVX__) /* the Gram panels' vector moves (builds without: plain loops) */
#include <immintrin.h>
#define GRAM_VECTOR_MOVES 1
#endif

enum {
    NC_W = 256, /* features per packed weight block, the most a thread claims at once: KC x 256 floats =
                   512 KiB, a quarter of the L2 of a core here; 2048 features make 8 of them */
    MC_F = 192, /* rows of A per packed block in av_gemm_f32 (rounded down to the kernel's MR) */
    NC_F = 512, /* columns of B per packed block in av_gemm_f32: KC x 512 floats = 1 MiB, half the L2 of a
                   core here, so the A block (MC_F x KC, 384 KiB) and C's lines fit beside it (1024 filled
                   the L2 alone: the B panels streamed from L3 under every A tile) */
    A_IN_PLACE_PANELS =
        4, /* av_gemm_f32 reads a row-major A in place when C has at most this many B panels */
    X_IN_PLACE_PANELS =
        16, /* av_gemm_weights reads x in place when it meets at most this many feature panels */
};
#define WS_KEEP_MAX ((size_t)64 << 20) /* bytes of scratch kept between calls, at most */

/* ---- the scalar reference kernel: the same fused multiply-add chain per output as the vector kernels ----
 */

static inline void scalar_tile(av_uk_mode mode, int k, const float *restrict a, int64_t lda,
                               const float *restrict b, float *restrict c, int64_t ldc, int m, int n,
                               float alpha, float beta) {
    enum { MR = AV_UK_SCALAR_MR, NR = AV_UK_SCALAR_NR };
    float acc[MR][NR] = {{0}};
    for (int p = 0; p < k; p++)
        for (int i = 0; i < m; i++)
            for (int j = 0; j < NR; j++)
                acc[i][j] = fmaf(mode == AV_UK_ROWS    ? a[i * lda + p]
                                 : mode == AV_UK_STEPS ? a[p * lda + i]
                                                       : a[p * MR + i],
                                 b[p * (mode == AV_UK_STEPS ? lda : NR) + j], acc[i][j]);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            float r = alpha * acc[i][j];
            c[i * ldc + j] = beta != 0.0f ? fmaf(beta, c[i * ldc + j], r) : r;
        }
}

static AV_UKERNEL_DECL(ukernel_scalar) { scalar_tile(AV_UK_PACKED, k, a, lda, b, c, ldc, m, n, alpha, beta); }
static AV_UKERNEL_DECL(ukernel_scalar_rows) {
    scalar_tile(AV_UK_ROWS, k, a, lda, b, c, ldc, m, n, alpha, beta);
}
static AV_UKERNEL_DECL(ukernel_scalar_steps) {
    scalar_tile(AV_UK_STEPS, k, a, lda, b, c, ldc, m, n, alpha, beta);
}

static const av_ukernel uk_scalar = {.fn = ukernel_scalar,
                                     .fn_rows = ukernel_scalar_rows,
                                     .fn_steps = ukernel_scalar_steps,
                                     .pack_weight = av_pack_weight,
                                     .pack_rows = av_pack_rows,
                                     .mr = AV_UK_SCALAR_MR,
                                     .nr = AV_UK_SCALAR_NR};
static const av_ukernel uk_avx2 = {.fn = av_ukernel_avx2,
                                   .fn_rows = av_ukernel_avx2_rows,
                                   .fn_steps = av_ukernel_avx2_steps,
                                   .pack_weight = av_pack_weight_avx2,
                                   .pack_rows = av_pack_rows_avx2,
                                   .mr = AV_UK_AVX2_MR,
                                   .nr = AV_UK_AVX2_NV * 8};
static const av_ukernel uk_avx512 = {.fn = av_ukernel_avx512,
                                     .fn_rows = av_ukernel_avx512_rows,
                                     .fn_steps = av_ukernel_avx512_steps,
                                     .pack_weight = av_pack_weight_avx512,
                                     .pack_rows = av_pack_rows_avx512,
                                     .mr = AV_UK_AVX512_MR,
                                     .nr = AV_UK_AVX512_NV * 16};

const av_ukernel *av_gemm_ukernel(av_gemm_path p) {
    switch (p) {
    case AV_GEMM_SCALAR: return &uk_scalar;
    case AV_GEMM_AVX2: return &uk_avx2;
    case AV_GEMM_AVX512:
    case AV_GEMM_AMX: return &uk_avx512;
    default: return NULL;
    }
}

/* One side of a block product: A's row tiles (av_tile_first), tile t packed (kc, MR) at a + t * tile_stride
 * or, with lda > 0, rows read in place lda apart. */
typedef struct a_tiles {
    const float *a;
    int64_t tile_stride, lda;
} a_tiles;

/* Weight bytes wanted soon (the next block to pack): rows [0, rows) from row0, bytes [0, len) of each,
 * row_bytes apart. Their prefetches are spread over the token tiles of the current block, so the packing that
 * follows finds them in cache instead of waiting on memory row by row. */
typedef struct w_ahead {
    uintptr_t next, row_end; /* the next line to request; the end of its row's bytes (addresses: the
                                last line may pass the end of the weight, prefetches never fault) */
    size_t row_bytes, len;
    int rows_left, per_call; /* rows not yet finished; per_call: lines per kernel call */
} w_ahead;

static void w_ahead_init(w_ahead *a, const av_tensor *w, int64_t r0, int rows, int64_t k0, int kc,
                         int calls) {
    size_t off = 0, end = 0;
    av_dtype_nbytes(w->dtype, (size_t)w->shape[1], &a->row_bytes); /* the loader checked these sizes */
    av_dtype_nbytes(w->dtype, (size_t)k0, &off);
    av_dtype_nbytes(w->dtype, (size_t)(k0 + kc), &end);
    a->len = end - off;
    a->next = (uintptr_t)w->data + (size_t)r0 * a->row_bytes + off;
    a->row_end = a->next + a->len;
    a->rows_left = rows;
    a->per_call = (int)(((size_t)rows * ((a->len + 63) / 64) + (size_t)calls - 1) / (size_t)calls);
}

/* A few lines per kernel call: a burst would stall on the memory system's queue of outstanding misses. The
 * position lives in locals during the loop (through a->, every line was a store and a reload). */
static void w_ahead_step(w_ahead *a) {
    uintptr_t p = a->next, end = a->row_end;
    int rows_left = a->rows_left;
    for (int i = 0; i < a->per_call && rows_left > 0; i++) {
        __builtin_prefetch((const void *)p, 0, 2);
        p += 64;
        if (p >= end) /* the next row's first line */
            p = end - a->len + a->row_bytes, end += a->row_bytes, rows_left--;
    }
    a->next = p, a->row_end = end, a->rows_left = rows_left;
}

/* C (m, ncols) = alpha * A B + beta * C over kc steps, B panels (kc, NR) one after another at bp. Each A tile
 * stays in L1 while the B panels stream past it. ahead (or NULL): weight lines to request meanwhile. */
static void macro_kernel(const av_ukernel *uk, int kc, a_tiles at, int m, const float *bp, int ncols,
                         float *c, int64_t ldc, float alpha, float beta, w_ahead *ahead) {
    av_ukernel_fn fn = at.lda > 0 ? uk->fn_rows : uk->fn;
    for (int t = 0, i0 = 0, mr; i0 < m; t++, i0 += mr) {
        const float *a = at.lda > 0 ? at.a + (int64_t)i0 * at.lda : at.a + (int64_t)t * at.tile_stride;
        mr = av_tile_first(m, uk->mr, t + 1) - i0;
        for (int j0 = 0; j0 < ncols; j0 += uk->nr) {
            if (ahead) w_ahead_step(ahead);
            fn(kc, a, at.lda, bp + (int64_t)j0 * kc, c + i0 * ldc + j0, ldc, mr,
               ncols - j0 < uk->nr ? ncols - j0 : uk->nr, alpha, beta);
        }
    }
}

/* ---- y = x W^T for up to AV_MATMUL_MANY_MAX weights sharing x ---- */

/* The scratch of a call (packed x, each thread's weight panels), kept for the next call: fresh pages would be
 * faulted in and zeroed by the kernel on every call, and unmapped with TLB shootdowns when freed. One block
 * is kept per process, grown when a call needs more, taken by one call at a time (a concurrent call allocates
 * its own); blocks over WS_KEEP_MAX bytes are freed at once. */
static pthread_mutex_t ws_lock = PTHREAD_MUTEX_INITIALIZER;
static float *ws_kept;
static size_t ws_kept_bytes;
static atomic_long ws_allocations; /* blocks allocated so far (av_gemm_scratch_allocations) */

/* A block of at least `bytes` bytes; *size: its size, which ws_give takes back with it (a kept block larger
 * than the call's need stays known at its size: given back at the need, a 5 MiB block was taken for a
 * 1 MiB call and recorded as 1 MiB, and the next 5 MiB call allocated afresh, 22 times a forward). */
static float *ws_take(size_t bytes, size_t *size) {
    float *p = NULL;
    pthread_mutex_lock(&ws_lock);
    if (ws_kept && ws_kept_bytes >= bytes) p = ws_kept, *size = ws_kept_bytes, ws_kept = NULL;
    pthread_mutex_unlock(&ws_lock);
    if (p) return p;
    *size = (bytes + 63) / 64 * 64;
    atomic_fetch_add(&ws_allocations, 1);
    return av_alloc_large(*size, 64);
}

long av_gemm_scratch_allocations(void) { return atomic_load(&ws_allocations); }

static void ws_give(float *p, size_t size) {
    pthread_mutex_lock(&ws_lock);
    if (size <= WS_KEEP_MAX && (!ws_kept || ws_kept_bytes < size)) {
        float *old = ws_kept;
        ws_kept = p, ws_kept_bytes = size, p = old;
    }
    pthread_mutex_unlock(&ws_lock);
    free(p);
}

typedef struct wg_out {
    const av_tensor *w; /* (out, in) */
    float *y;           /* (n, out) */
    int out;
    int first; /* its first feature among the call's features (the weights' outputs one after another) */
} wg_out;

typedef struct wg_job {
    wg_out outs[AV_MATMUL_MANY_MAX];
    int n_outs, features; /* features: the call's, all weights together */
    int n_threads;        /* the threads of the call (av_guided_share) */
    atomic_int next;      /* the call's first feature no thread has claimed */
    const av_ukernel *uk;
    const float *x; /* (n, in) */
    float *xp;      /* (ceil(n / MR), in, MR): token panels over all of k, or NULL: x read in place */
    float *ws;      /* per thread: (KC, NC_W) weight panels, then (NR, KC) for the packing's tmp */
    size_t ws_per_thread;
    int n, in;
} wg_job;

/* A thread's block: features [f0, f0 + nf) of one weight (o NULL: no block, the call is done). */
typedef struct wg_block {
    const wg_out *o;
    int f0, nf;
} wg_block;

static void wg_pack_x(void *ctx, int tid, int64_t p0, int64_t p1) {
    const wg_job *j = ctx;
    int mr = j->uk->mr;
    for (int64_t p = p0; p < p1; p++) {
        int first = av_tile_first(j->n, mr, (int)p), rows = av_tile_first(j->n, mr, (int)p + 1) - first;
        j->uk->pack_rows(j->x + (int64_t)first * j->in, j->in, rows, j->in, mr, j->xp + p * mr * j->in);
    }
}

/* Claims the next block: NC_W features or a guided share of those left (av_guided_share), cut at the end of
 * its weight. With blocks of a fixed NC_W the threads finished a call up to a block apart (the down
 * projection's 8 blocks are ~15 ms each): 3% of the forward's thread time went waiting. */
static wg_block wg_claim(wg_job *j) {
    int f = atomic_load_explicit(&j->next, memory_order_relaxed);
    for (;;) {
        if (f >= j->features) return (wg_block){NULL, 0, 0};
        const wg_out *o = &j->outs[0];
        while (o + 1 < j->outs + j->n_outs && f >= o[1].first)
            o++;
        int nf = (int)av_guided_share(j->features - f, j->n_threads, j->uk->nr, NC_W),
            end = o->first + o->out;
        nf = f + nf > end ? end - f : nf;
        if (atomic_compare_exchange_weak_explicit(&j->next, &f, f + nf, memory_order_relaxed,
                                                  memory_order_relaxed))
            return (wg_block){o, f - o->first, nf};
    }
}

/* Block blk against all tokens; wp: (KC, NC_W) panels, tmp: (NR, KC). Entering its last k block it claims
 * the thread's next block, whose first columns are prefetched meanwhile; returns that block. */
static wg_block wg_run_block(wg_job *j, wg_block blk, float *wp, float *tmp) {
    const av_ukernel *uk = j->uk;
    const wg_out *o = blk.o;
    wg_block next = {NULL, 0, 0};
    int tiles = (j->n + uk->mr - 1) / uk->mr, calls = tiles * ((blk.nf + uk->nr - 1) / uk->nr);
    for (int k0 = 0; k0 < j->in; k0 += AV_GEMM_KC) {
        int kc = j->in - k0 < AV_GEMM_KC ? j->in - k0 : AV_GEMM_KC;
        w_ahead ahead; /* the next block: these features' next columns, or the next block's first ones */
        if (k0 + kc < j->in)
            w_ahead_init(&ahead, o->w, blk.f0, blk.nf, k0 + kc,
                         j->in - k0 - kc < AV_GEMM_KC ? j->in - k0 - kc : AV_GEMM_KC, calls);
        else if ((next = wg_claim(j)).o)
            w_ahead_init(&ahead, next.o->w, next.f0, next.nf, 0, j->in < AV_GEMM_KC ? j->in : AV_GEMM_KC,
                         calls);
        for (int f = 0; f < blk.nf; f += uk->nr)
            uk->pack_weight(o->w, blk.f0 + f, blk.nf - f < uk->nr ? blk.nf - f : uk->nr, k0, kc, uk->nr,
                            wp + (int64_t)f * kc, tmp);
        a_tiles x = j->xp ? (a_tiles){j->xp + (int64_t)k0 * uk->mr, (int64_t)j->in * uk->mr, 0}
                          : (a_tiles){j->x + k0, 0, j->in}; /* no offset on NULL */
        macro_kernel(uk, kc, x, j->n, wp, blk.nf, o->y + blk.f0, o->out, 1.0f, k0 ? 1.0f : 0.0f,
                     k0 + kc < j->in || next.o ? &ahead : NULL);
    }
    return next;
}

/* One thread: blocks claimed one at a time until none is left, so a thread slowed by other work on its core
 * takes fewer of them instead of keeping the other waiting at the end. */
static void wg_compute(void *ctx, int tid, int64_t t0, int64_t t1) {
    wg_job *j = ctx;
    float *wp = j->ws + (size_t)tid * j->ws_per_thread, *tmp = wp + (size_t)AV_GEMM_KC * NC_W;
    for (wg_block b = wg_claim(j); b.o;)
        b = wg_run_block(j, b, wp, tmp);
}

int av_gemm_weights(float *const *y, const float *x, const av_tensor *const *w, int count, int n,
                    int n_threads, const av_ukernel *uk) {
    if (count < 1 || count > AV_MATMUL_MANY_MAX || !uk) return -1;
    wg_job j = {.n_outs = count, .uk = uk, .x = x, .n = n, .in = (int)w[0]->shape[1]};
    if (n_threads <= 0) n_threads = av_default_threads();
    for (int i = 0; i < count; i++)
        if (w[i]->ndim != 2 || w[i]->shape[1] != j.in) return -1;
    int64_t n_panels = 0;
    for (int i = 0; i < count; i++) {
        j.outs[i] = (wg_out){w[i], y[i], (int)w[i]->shape[0], j.features};
        j.features += j.outs[i].out;
        n_panels += (j.outs[i].out + uk->nr - 1) / uk->nr;
    }
    atomic_init(&j.next, 0);
    n_threads = n_threads < n_panels ? n_threads : (int)n_panels;
    j.n_threads = n_threads;
    /* x is packed (once, shared by the threads) when it is reused by many feature panels and its rows lie a
     * multiple of 4 KiB apart: read in place, such rows would all compete for the same L1 sets */
    int64_t x_panels = (n + uk->mr - 1) / uk->mr;
    int pack_x = (size_t)j.in * sizeof(float) % 4096 == 0 && n_panels > X_IN_PLACE_PANELS;
    size_t xp_floats = pack_x ? (size_t)(x_panels * uk->mr) * (size_t)j.in : 0;
    j.ws_per_thread = (size_t)AV_GEMM_KC * (NC_W + (size_t)uk->nr);
    size_t bytes = sizeof(float) * (xp_floats + (size_t)n_threads * j.ws_per_thread);
    size_t ws_size;
    float *ws = ws_take(bytes, &ws_size);
    if (!ws) return -1;
    j.ws = ws + xp_floats;
    if (pack_x) {
        j.xp = ws;
        av_parallel_for(n_threads, x_panels, wg_pack_x, &j);
    }
    av_parallel_for(n_threads, n_threads, wg_compute, &j);
    ws_give(ws, ws_size);
    return 0;
}

/* ---- C = alpha op(A) op(B) + beta C, all f32 ---- */

typedef struct f32_job {
    const av_ukernel *uk;
    int trans_a, trans_b, m, n, k;
    int a_in_place; /* A row-major and used by few B panels: the kernel reads its rows, nothing is packed */
    float alpha, beta;
    const float *a, *b;
    int64_t lda, ldb, ldc;
    float *c;
} f32_job;

/* Rows [first, first + count) of an operand X (count, k), columns [k0, k0 + kc), into panels of width P: P
 * rows each (B), or A's row tiles (row_tiles: av_tile_first). X is stored row-major either as (count, k),
 * rows ld apart, or k-major as (k, count) (a transposed operand). */
static void pack_operand(const av_ukernel *uk, const float *x, int64_t ld, int k_major, int first, int count,
                         int k0, int kc, int P, int row_tiles, float *panels) {
    for (int t = 0, r = 0, rows; r < count; t++, r += rows) {
        rows = (row_tiles ? av_tile_first(count, P, t + 1) : (r + P < count ? r + P : count)) - r;
        float *dst = panels + (int64_t)t * P * kc;
        if (k_major)
            av_pack_cols(x + (int64_t)k0 * ld + first + r, ld, rows, kc, P, dst);
        else
            uk->pack_rows(x + (int64_t)(first + r) * ld + k0, ld, rows, kc, P, dst);
    }
}

/* Columns [c0, c1) of C (NR-aligned split between threads). */
static void f32_columns(void *ctx, int tid, int64_t p0, int64_t p1) {
    f32_job *j = ctx;
    const av_ukernel *uk = j->uk;
    int mc_max = MC_F / uk->mr * uk->mr, nc_max = NC_F / uk->nr * uk->nr;
    int c0 = (int)p0 * uk->nr, c1 = (int)p1 * uk->nr < j->n ? (int)p1 * uk->nr : j->n;
    float *ap = aligned_alloc(64, sizeof(float) * (size_t)mc_max * AV_GEMM_KC);
    float *bp = aligned_alloc(64, sizeof(float) * (size_t)nc_max * AV_GEMM_KC);
    if (!ap || !bp) /* out of memory for the panels: OpenBLAS does these columns */
        cblas_sgemm(CblasRowMajor, j->trans_a ? CblasTrans : CblasNoTrans,
                    j->trans_b ? CblasTrans : CblasNoTrans, j->m, c1 - c0, j->k, j->alpha, j->a, (int)j->lda,
                    j->trans_b ? j->b + (int64_t)c0 * j->ldb : j->b + c0, (int)j->ldb, j->beta, j->c + c0,
                    (int)j->ldc);
    for (int j0 = c0; j0 < c1 && ap && bp; j0 += nc_max) {
        int nc = c1 - j0 < nc_max ? c1 - j0 : nc_max;
        for (int k0 = 0; k0 < j->k || k0 == 0; k0 += AV_GEMM_KC) {
            int kc = j->k - k0 < AV_GEMM_KC ? j->k - k0 : AV_GEMM_KC;
            pack_operand(uk, j->b, j->ldb, !j->trans_b, j0, nc, k0, kc, uk->nr, 0, bp); /* op(B)^T: (n, k) */
            for (int i0 = 0; i0 < j->m; i0 += mc_max) {
                int mc = j->m - i0 < mc_max ? j->m - i0 : mc_max;
                a_tiles at = {ap, (int64_t)uk->mr * kc, 0};
                if (j->a_in_place)
                    at = (a_tiles){j->a + (int64_t)i0 * j->lda + k0, 0, j->lda};
                else
                    pack_operand(uk, j->a, j->lda, j->trans_a, i0, mc, k0, kc, uk->mr, 1, ap);
                macro_kernel(uk, kc, at, mc, bp, nc, j->c + i0 * j->ldc + j0, j->ldc, j->alpha,
                             k0 ? 1.0f : j->beta, NULL);
            }
        }
    }
    free(ap);
    free(bp);
}

void av_gemm_f32(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int64_t lda,
                 const float *b, int64_t ldb, float beta, float *c, int64_t ldc, int n_threads) {
    if (m <= 0 || n <= 0) return;
    const av_ukernel *uk = av_gemm_ukernel(av_gemm_path_get());
    if (uk) {
        f32_job j = {uk,    trans_a, trans_b, m, n,   k,   !trans_a && n <= A_IN_PLACE_PANELS * uk->nr,
                     alpha, beta,    a,       b, lda, ldb, ldc,
                     c};
        int64_t panels = (n + uk->nr - 1) / uk->nr, work = (int64_t)m * n * (k > 0 ? k : 1);
        av_parallel_for(work > (1 << 20) ? n_threads : 1, panels, f32_columns, &j);
        return;
    }
    /* the sgemm path: OpenBLAS (single-threaded, see av_kernels_init) */
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n,
                k, alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

/* ---- Gram matrices: C = A^T A + beta C ---- */

/* Rows of A requested this many rows before their conversion: each row's columns of a head are a few lines
 * of their own page, which no hardware prefetcher follows (without the requests the 22 layers' Gram matrices
 * of the 1.1 B shape took ~1.3x as long, docs/BENCHMARKS.md "The Gram matrices read from one block
 * (session 34)"). */
enum { GRAM_AHEAD = 16 };

/* n values of row src (f32, or F16 converted exactly as av_dequantize_rows does) into d, in vector moves.
 * The empty asm hides each vector's origin: -O2 otherwise turned these short loops into rep movsq calls. */
static inline __attribute__((always_inline)) void gram_row(float *restrict d, const void *restrict src,
                                                           int f16, int n) {
    int i = 0;
#ifdef GRAM_VECTOR_MOVES
    for (; i + 8 <= n; i += 8) {
        __m256 v = f16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)src + i)))
                       : _mm256_loadu_ps((const float *)src + i);
        __asm__("" : "+x"(v));
        _mm256_storeu_ps(d + i, v);
    }
#endif
    for (; i < n; i++)
        d[i] = f16 ? av_f16_to_f32(((const uint16_t *)src)[i]) : ((const float *)src)[i];
}

/* Columns [0, n) of rows [0, kc) of A (lda values apart; f32, or F16 when f16) into blk (kc, ld) as f32. */
static void gram_block(const void *a, int f16, int64_t lda, int n, int kc, float *blk, int64_t ld) {
    size_t esize = f16 ? 2 : 4, bytes = (size_t)n * esize;
    for (int p = 0; p < kc; p++) {
        if (p + GRAM_AHEAD < kc) {
            const char *r = (const char *)a + (size_t)(p + GRAM_AHEAD) * (size_t)lda * esize;
            for (size_t o = 0; o < bytes; o += 64)
                __builtin_prefetch(r + o, 0, 3);
            __builtin_prefetch(r + bytes - 1, 0, 3);
        }
        gram_row(blk + (int64_t)p * ld, (const char *)a + (size_t)p * (size_t)lda * esize, f16, n);
    }
}

/* C (n, n) += the products of blk's kc rows (beta 0: C =): tiles on and above the diagonal, both operands
 * read from blk by the kernel (fn_steps), nothing packed. */
static void gram_tiles(const av_ukernel *uk, int n, int kc, const float *blk, int64_t ld, float beta,
                       float *c, int64_t ldc) {
    int mr = uk->mr, nr = uk->nr;
    for (int i0 = 0; i0 < n; i0 += mr)
        for (int j0 = 0; j0 < n; j0 += nr)
            if (j0 + nr > i0) /* tiles wholly below the diagonal come from their mirror image below */
                uk->fn_steps(kc, blk + i0, ld, blk + j0, c + i0 * ldc + j0, ldc, n - i0 < mr ? n - i0 : mr,
                             n - j0 < nr ? n - j0 : nr, 1.0f, beta);
}

/* c[i][j] = c[j][i] where tile (i, j) was skipped: (j, i) lies in a computed tile, and a f32 fused
 * multiply-add chain of a_pi * a_pj is the same for (i, j) and (j, i) */
static void gram_mirror(int n, int mr, int nr, float *c, int64_t ldc) {
    for (int i0 = 0; i0 < n; i0 += mr)
        for (int j0 = 0; j0 + nr <= i0; j0 += nr)
            for (int i = i0; i < i0 + mr && i < n; i++)
                for (int j = j0; j < j0 + nr; j++)
                    c[i * ldc + j] = c[j * ldc + i];
}

/* The Gram matrices of n_heads column blocks of n columns of A (k rows, lda values apart, f32 or F16): each
 * head's rows, AV_GEMM_KC at a time, converted into a block whose rows have room for whole tiles of either
 * operand (columns past n stay zero), then its tiles multiplied; the same chains as av_gemm_f32's. */
static int gram_heads(const void *a, int f16, int64_t lda, int n_heads, int n, int k, float beta, float *c,
                      int64_t ldc, int64_t c_stride) {
    const av_ukernel *uk = av_gemm_ukernel(av_gemm_path_get());
    int mr = uk ? uk->mr : 1, nr = uk ? uk->nr : 1, n_a = (n + mr - 1) / mr * mr,
        n_b = (n + nr - 1) / nr * nr, esize = f16 ? 2 : 4;
    int64_t ld = n_a > n_b ? n_a : n_b;
    int kc_max = k < AV_GEMM_KC ? (k > 0 ? k : 1) : AV_GEMM_KC;
    float *blk = uk ? calloc((size_t)ld * (size_t)kc_max, sizeof(float)) : NULL; /* (kc_max, ld) */
    if (!blk) return -1;
    for (int h = 0; h < n_heads; h++) {
        float *ch = c + h * c_stride;
        for (int k0 = 0; k0 < k || k0 == 0; k0 += AV_GEMM_KC) {
            int kc = k - k0 < AV_GEMM_KC ? k - k0 : AV_GEMM_KC;
            gram_block((const char *)a + ((int64_t)k0 * lda + (int64_t)h * n) * esize, f16, lda, n, kc, blk,
                       ld);
            gram_tiles(uk, n, kc, blk, ld, k0 ? 1.0f : beta, ch, ldc);
        }
        gram_mirror(n, mr, nr, ch, ldc);
    }
    free(blk);
    return 0;
}

int av_gram_heads(const av_tensor *w, int64_t r0, int k, int h0, int n_heads, int n, float beta, float *c) {
    if (w->dtype != AV_DTYPE_F32 && w->dtype != AV_DTYPE_F16) return -1;
    int64_t lda = w->shape[1];
    const char *a = (const char *)w->data + (r0 * lda + (int64_t)h0 * n) * (w->dtype == AV_DTYPE_F16 ? 2 : 4);
    return gram_heads(a, w->dtype == AV_DTYPE_F16, lda, n_heads, n, k, beta, c, n, (int64_t)n * n);
}

void av_gram_f32(int n, int k, const float *a, int64_t lda, float beta, float *c, int64_t ldc) {
    if (gram_heads(a, 0, lda, 1, n, k, beta, c, ldc, 0)) /* the sgemm path, or no memory for the panels */
        av_gemm_f32(1, 0, n, n, k, 1.0f, a, lda, a, lda, beta, c, ldc, 1);
}
