/* y = x W^T on Intel AMX tiles with split-bf16 ("bf16x3") arithmetic.
 *
 * Every f32 value v is split into two bf16 numbers (8-bit significands), hi = bf16(v) and lo = bf16(v - hi),
 * both rounded to nearest even: |v - hi| <= 2^-8 |v|, so v = hi + lo + r with |r| <= 2^-16 |v| (f16 weights,
 * 11-bit significands, split exactly: r = 0). The product sum  Wh xh + Wh xl + Wl xh  drops Wl xl and W r_x,
 * each <= 2^-16 |W x|: at most ~2^-15 per product, and the tiles accumulate in f32: the scheme of XLA's
 * "bf16_3x" precision. Measured (tests/test_kernels.c): worst 2.9e-6 of sum |x w| per output. On a core with
 * AMX one bf16 tile product is 16x the throughput of an AVX-512 f32 FMA stream, so three of them still beat
 * sgemm.
 *
 * Work split: threads take disjoint ranges of 32 output features; each converts its weight rows into a
 * cache-sized block of tiles right before using them, so weights are read from memory once, in their stored
 * dtype. The activations are split and packed once per call, shared by all threads.
 *
 * Compiled with -mamx-tile -mamx-bf16 -mavx512f -mavx512bw -mavx512vl (see the Makefile); nothing here runs
 * unless av_amx_ready() (gemm_cpu.c) found the CPU features, the OS state and the process permission. */
#include "gemm.h"

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

enum { TILE_K = 32, BLOCK = 32 };

/* ---- bf16 splitting ---- */

/* 16 floats to bf16 rounded to nearest even, one per 32-bit lane (low half). */
static inline __m512i bf16_rne(__m512 v) {
    __m512i u = _mm512_castps_si512(v);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    return _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
}

static inline __m512 bf16_to_f32(__m512i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(h, 16)); }

/* 32 floats (v0: the first 16, v1: the next) -> 32 bf16 hi parts (*hi) and 32 bf16 lo parts (*lo). */
static inline void split32(__m512 v0, __m512 v1, __m512i *hi, __m512i *lo) {
    __m512i h0 = bf16_rne(v0), h1 = bf16_rne(v1);
    __m512i l0 = bf16_rne(_mm512_sub_ps(v0, bf16_to_f32(h0))),
            l1 = bf16_rne(_mm512_sub_ps(v1, bf16_to_f32(h1)));
    *hi = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi32_epi16(h0)), _mm512_cvtepi32_epi16(h1), 1);
    *lo = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi32_epi16(l0)), _mm512_cvtepi32_epi16(l1), 1);
}

/* Lanes [0, valid) of 16 set (valid may be <= 0 or > 16). */
static inline __mmask16 first_lanes(int valid) {
    return valid >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (valid > 0 ? valid : 0)) - 1);
}

/* Loads 32 floats at src, zero past `valid` (which may be <= 0), and splits them. */
static inline void split32_f32(const float *src, int valid, __m512i *hi, __m512i *lo) {
    split32(_mm512_maskz_loadu_ps(first_lanes(valid), src),
            _mm512_maskz_loadu_ps(first_lanes(valid - 16), src + 16), hi, lo);
}

/* The same from 32 f16 values (the common weight type: no f32 row in between). */
static inline void split32_f16(const uint16_t *src, int valid, __m512i *hi, __m512i *lo) {
    split32(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(first_lanes(valid), src)),
            _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(first_lanes(valid - 16), src + 16)), hi, lo);
}

/* ---- packing ----
 * A tile is 16 rows x 64 bytes, contiguous (1 KiB), so every tile load has a 64-byte stride.
 * Weights (tile operand A): for 16 features and 32 k: [feature][k] bf16.
 * Activations (operand B, "VNNI" pairs): for 16 tokens and 32 k: [k/2][token][k%2] bf16.
 * Both are stored as [group of 16][k step][hi|lo][512 bf16]. */

/* One weight of a call: its output features are feature pairs [first_pair, first_pair + ceil(out / 32)) of
 * the call's pair range, which the threads split. */
typedef struct amx_out {
    const av_tensor *w; /* (out, in) */
    float *y;           /* (n, out) */
    int out, first_pair;
} amx_out;

typedef struct amx_job {
    amx_out outs[AV_MATMUL_MANY_MAX];
    int n_outs, n_pairs;
    const float *x; /* (n, in) */
    uint16_t *xp;   /* (n_pad/16, ksteps, 2, 512) packed activations */
    int n, n_pad, in, ksteps;
    int failed;
} amx_job;

static inline size_t tile_offset(int group, int ksteps, int kstep) {
    return ((size_t)group * (size_t)ksteps + (size_t)kstep) * 2 * 512;
}

/* Packs token groups [g0, g1): token t's 16 k pairs go to rows 0..15 of its column (a 32-bit scatter). */
static void pack_x(void *ctx, int tid, int64_t g0, int64_t g1) {
    const amx_job *j = ctx;
    const __m512i rows = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32(16));
    for (int64_t g = g0; g < g1; g++)
        for (int t = 0; t < 16; t++) {
            int64_t tok = g * 16 + t;
            const float *row = j->x + (tok < j->n ? tok : 0) * j->in;
            for (int ks = 0; ks < j->ksteps; ks++) {
                uint16_t *dst = j->xp + tile_offset((int)g, j->ksteps, ks);
                __m512i hi, lo;
                split32_f32(row + ks * TILE_K, tok < j->n ? j->in - ks * TILE_K : 0, &hi, &lo);
                _mm512_i32scatter_epi32(dst + 2 * t, rows, hi, 4);
                _mm512_i32scatter_epi32(dst + 512 + 2 * t, rows, lo, 4);
            }
        }
}

/* Converts weight rows [f0, f0 + nf) (nf a multiple of 16) into tiles at wp; rows past `out` are zero.
 * rowbuf: (16, in) floats. */
static void pack_w(const amx_job *j, const amx_out *o, int f0, int nf, uint16_t *wp, float *rowbuf) {
    const int f16 = o->w->dtype == AV_DTYPE_F16;
    for (int g = 0; g < nf / 16; g++) {
        int first = f0 + g * 16, rows = o->out - first < 16 ? o->out - first : 16;
        if (rows > 0 && !f16) av_dequantize_rows_avx512(o->w, first, rows, rowbuf);
        for (int r = 0; r < 16; r++) {
            const uint16_t *h =
                (const uint16_t *)o->w->data + (size_t)(r < rows ? first + r : 0) * (size_t)j->in;
            const float *f = rowbuf + (size_t)r * (size_t)j->in;
            for (int ks = 0; ks < j->ksteps; ks++) {
                uint16_t *dst = wp + tile_offset(g, j->ksteps, ks) + r * 32;
                int valid = r < rows ? j->in - ks * TILE_K : 0;
                __m512i hi, lo;
                if (f16)
                    split32_f16(h + ks * TILE_K, valid, &hi, &lo);
                else
                    split32_f32(f + ks * TILE_K, valid, &hi, &lo);
                _mm512_storeu_si512(dst, hi);
                _mm512_storeu_si512(dst + 512, lo);
            }
        }
    }
}

/* ---- the tile kernel ---- */

typedef struct tile_config {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

/* C tiles of features f..f+31 x tokens t..t+31 over k steps [ks0, ks1): tiles 0-3 hold C[f][t] for
 * (f half, t half) = (0,0), (0,1), (1,0), (1,1), zeroed at ks0 == 0 or loaded from c, stored back to c
 * (4 x 16 x 16 floats). wg, xg: k step 0 of the two 16-row weight / activation groups, gstride apart. */
static void tiles_32x32(const uint16_t *wg, const uint16_t *xg, size_t gstride, int ks0, int ks1, float *c) {
    if (ks0 == 0) {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
    } else {
        _tile_loadd(0, c, 64);
        _tile_loadd(1, c + 256, 64);
        _tile_loadd(2, c + 512, 64);
        _tile_loadd(3, c + 768, 64);
    }
    for (int ks = ks0; ks < ks1; ks++) {
        const uint16_t *w0 = wg + (size_t)ks * 1024, *w1 = w0 + gstride;
        const uint16_t *x0 = xg + (size_t)ks * 1024, *x1 = x0 + gstride;
        /* ordered so each reload targets a tile whose last reader was issued a few products earlier */
        _tile_loadd(4, w0, 64); /* W hi */
        _tile_loadd(5, w1, 64);
        _tile_loadd(6, x0, 64); /* x hi */
        _tile_loadd(7, x1, 64);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(2, 5, 6);
        _tile_loadd(6, x0 + 512, 64); /* x lo */
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(3, 5, 7);
        _tile_loadd(7, x1 + 512, 64);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_loadd(4, w0 + 512, 64); /* W lo */
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
        _tile_loadd(5, w1 + 512, 64);
        _tile_loadd(6, x0, 64); /* x hi again */
        _tile_loadd(7, x1, 64);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, c, 64);
    _tile_stored(1, c + 256, 64);
    _tile_stored(2, c + 512, 64);
    _tile_stored(3, c + 768, 64);
}

/* C tiles (n_pad/32, 4, 16, 16) of one feature pair -> y[t][f0 .. f0+31] for the real tokens and features. */
static void store_pair(const amx_job *j, const amx_out *o, const float *c, int f0) {
    for (int t0 = 0; t0 < j->n; t0 += BLOCK)
        for (int q = 0; q < 4; q++) {
            const float *cq = c + (size_t)t0 * 32 + (size_t)q * 256;
            int fb = f0 + (q >> 1) * 16, tb = t0 + (q & 1) * 16;
            int nf = o->out - fb < 16 ? o->out - fb : 16, nt = j->n - tb < 16 ? j->n - tb : 16;
            for (int t = 0; t < nt; t++) {
                float *yr = o->y + (size_t)(tb + t) * (size_t)o->out + fb;
                for (int f = 0; f < nf; f++)
                    yr[f] = cq[f * 16 + t];
            }
        }
}

/* Feature pairs [b0, b1) of the call, up to WBLOCK features of one weight at a time: pack them, then for each
 * chunk of KCHUNK k steps, every token block against every feature pair. A chunk of the packed weights (128
 * features x 2048 k, hi + lo: 1 MiB) and of one token block (256 KiB) stay in L2 while they are reused. */
static void compute(void *ctx, int tid, int64_t b0, int64_t b1) {
    enum { WBLOCK = 128, KCHUNK = 64 };
    amx_job *j = ctx;
    const size_t gstride = (size_t)j->ksteps * 2 * 512; /* one 16-row group */
    uint16_t *wp = aligned_alloc(64, WBLOCK / 16 * gstride * sizeof(uint16_t));
    float *rowbuf = malloc(sizeof(float) * 16 * (size_t)j->in + 64 * sizeof(float));
    float *cbuf =
        aligned_alloc(64, sizeof(float) * WBLOCK * (size_t)j->n_pad); /* (pairs, n_pad/32, 4, 256) */
    if (!wp || !rowbuf || !cbuf) {
        free(wp);
        free(rowbuf);
        free(cbuf);
        j->failed = 1;
        return;
    }
    tile_config cfg = {.palette = 1};
    for (int i = 0; i < 8; i++)
        cfg.colsb[i] = 64, cfg.rows[i] = 16;
    _tile_loadconfig(&cfg);
    const int per = WBLOCK / BLOCK;
    const size_t pair_c = (size_t)j->n_pad * BLOCK; /* floats of C per feature pair */
    for (int64_t b = b0; b < b1;) {
        const amx_out *o = &j->outs[0];
        while (o + 1 < j->outs + j->n_outs && b >= o[1].first_pair)
            o++;
        int64_t end =
            o + 1 < j->outs + j->n_outs ? o[1].first_pair : j->n_pairs; /* this weight's last pair + 1 */
        if (end > b1) end = b1;
        int nb = end - b < per ? (int)(end - b) : per, f0 = (int)(b - o->first_pair) * BLOCK;
        b += nb;
        pack_w(j, o, f0, nb * BLOCK, wp, rowbuf);
        for (int kc = 0; kc < j->ksteps; kc += KCHUNK) {
            int kend = kc + KCHUNK < j->ksteps ? kc + KCHUNK : j->ksteps;
            for (int t0 = 0; t0 < j->n; t0 += BLOCK) {
                const uint16_t *xg = j->xp + tile_offset(t0 / 16, j->ksteps, 0);
                for (int i = 0; i < nb; i++)
                    tiles_32x32(wp + tile_offset(2 * i, j->ksteps, 0), xg, gstride, kc, kend,
                                cbuf + (size_t)i * pair_c + (size_t)t0 * 32);
            }
        }
        for (int i = 0; i < nb; i++)
            store_pair(j, o, cbuf + (size_t)i * pair_c, f0 + i * BLOCK);
    }
    _tile_release();
    free(wp);
    free(rowbuf);
    free(cbuf);
}

int av_matmul_bf16x3_many(float *const *y, const float *x, const av_tensor *const *w, int count, int n,
                          int n_threads) {
    if (!av_amx_ready() || count < 1 || count > AV_MATMUL_MANY_MAX) return -1;
    amx_job j = {.x = x, .n = n, .n_outs = count, .in = (int)w[0]->shape[1]};
    for (int i = 0; i < count; i++) {
        if (w[i]->ndim != 2 || w[i]->shape[1] != j.in) return -1;
        j.outs[i] = (amx_out){w[i], y[i], (int)w[i]->shape[0], j.n_pairs};
        j.n_pairs += (j.outs[i].out + BLOCK - 1) / BLOCK;
    }
    j.n_pad = (n + BLOCK - 1) / BLOCK * BLOCK;
    j.ksteps = (j.in + TILE_K - 1) / TILE_K;
    j.xp = aligned_alloc(64, (size_t)j.n_pad / 16 * (size_t)j.ksteps * 2 * 512 * sizeof(uint16_t));
    if (!j.xp) return -1;
    av_parallel_for(n_threads, j.n_pad / 16, pack_x, &j);
    av_parallel_for(n_threads, j.n_pairs, compute, &j);
    free(j.xp);
    return j.failed ? -1 : 0;
}

int av_matmul_bf16x3(float *y, const float *x, const av_tensor *w, int n, int n_threads) {
    return av_matmul_bf16x3_many(&y, x, &w, 1, n, n_threads);
}
