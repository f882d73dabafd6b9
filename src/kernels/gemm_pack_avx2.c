/* Packing for the AVX2 micro-kernel: rows of a matrix into panels through 8 x 8 register transposes, with F16
 * and BF16 weights converted exactly inside them (the same panels as gemm_pack.c's portable code). Compiled
 * with -mavx2 -mfma -mf16c (see the Makefile); used only after gemm_cpu.c found AVX2, FMA and F16C. */
#include "gemm.h"
#include "gemm_quant.h"

#include <immintrin.h>
#include <string.h>

#define T16_NAME transpose_h16_avx2
#define T16_VEC __m256i
#define T16_UNPACKLO(w, x, y) _mm256_unpacklo_epi##w(x, y)
#define T16_UNPACKHI(w, x, y) _mm256_unpackhi_epi##w(x, y)
#include "gemm_transpose16.h"

/* r[q] = column q of the 8 x 8 block whose row i is r[i] on entry. */
static inline void transpose8(__m256 r[8]) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xee);
    __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xee);
    __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xee);
    __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xee);
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

static inline __m256i first_lanes(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* Transposes the 8 x 8 block v (row i = panel column i) and stores its first np columns as panel steps (P
 * floats apart), lanes (<= 8) values each. */
static inline __attribute__((always_inline)) void transpose_store8(__m256 v[8], float *dst, int P, int np,
                                                                   int lanes) {
    transpose8(v);
    for (int q = 0; q < np; q++)
        av_store_first8(dst + (int64_t)q * P, v[q], lanes);
}

/* 8 values of a source row as f32: f32, or f16 / bf16 converted exactly (vcvtph2ps; bf16 is the top half of
 * an f32). Only the first n (<= 8) are read; the rest are zero. */
typedef enum src_kind { SRC_F32, SRC_F16, SRC_BF16 } src_kind;

static inline __attribute__((always_inline)) __m256 load8(src_kind kind, const void *row, int64_t at, int n) {
    if (kind == SRC_F32)
        return n == 8 ? _mm256_loadu_ps((const float *)row + at)
                      : _mm256_maskload_ps((const float *)row + at, first_lanes(n));
    const uint16_t *h = (const uint16_t *)row + at;
    __m128i v;
    if (n == 8)
        v = _mm_loadu_si128((const __m128i *)h);
    else {
        uint16_t part[8] = {0};
        memcpy(part, h, sizeof(uint16_t) * (size_t)n);
        v = _mm_loadu_si128((const __m128i *)part);
    }
    if (kind == SRC_F16) return _mm256_cvtph_ps(v);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(v), 16));
}

/* Steps [p0, p0 + np) (np <= 8) of panel columns [r0, r0 + lanes) (lanes <= 8) from source rows [r0, r0 + nr)
 * (elements of `kind`, rows ld elements apart). */
static inline __attribute__((always_inline)) void pack_8x8(src_kind kind, const void *src, int64_t ld, int nr,
                                                           int p0, int np, int r0, int lanes, int P,
                                                           float *panel) {
    __m256 v[8];
    size_t esize = kind == SRC_F32 ? 4 : 2;
    const char *rows = (const char *)src + (size_t)r0 * (size_t)ld * esize;
    if (nr == 8 && np == 8) { /* the common, whole block: straight-line loads */
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++)
            v[i] = load8(kind, rows + (size_t)i * (size_t)ld * esize, p0, 8);
    } else {
        for (int i = 0; i < 8; i++)
            v[i] = i < nr ? load8(kind, rows + (size_t)i * (size_t)ld * esize, p0, np) : _mm256_setzero_ps();
    }
    transpose_store8(v, panel + (int64_t)p0 * P + r0, P, np, lanes);
}

/* Steps [p0, p0 + 8) of 16 F16 rows (ld elements apart) into a panel of P = 16 columns, the common whole
 * block of the AVX2 weight panels. Rows i and i + 8 share a register, one in each 128-bit lane (the upper one
 * inserted straight from memory), so one 8 x 8 transpose of 16-bit values within the lanes (24 in-lane
 * unpacks) leaves step q's 16 values in register q, rows 0-7 low and 8-15 high: pack_8x8 needs 48 shuffles
 * for the same 128 values, 16 of them lane-crossing. Each half is then converted exactly (vcvtph2ps).
 * Packing alone, 20-25% less time per value (docs/BENCHMARKS.md, "AVX2 forward (session 27)"). */
static inline __attribute__((always_inline)) void pack_f16_16x8(const uint16_t *src, int64_t ld, int p0,
                                                                float *panel) {
    __m256i r[8], c[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        const uint16_t *lo = src + (int64_t)i * ld + p0, *hi = lo + 8 * ld;
        r[i] = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)lo)),
                                       _mm_loadu_si128((const __m128i *)hi), 1);
    }
    transpose_h16_avx2(r, c);
#pragma GCC unroll 8
    for (int q = 0; q < 8; q++) { /* step q: rows 0-7 in the low lane, 8-15 in the high one */
        float *d = panel + (int64_t)(p0 + q) * 16;
        _mm256_storeu_ps(d, _mm256_cvtph_ps(_mm256_castsi256_si128(c[q])));
        _mm256_storeu_ps(d + 8, _mm256_cvtph_ps(_mm256_extracti128_si256(c[q], 1)));
    }
}

/* Eight steps at a time, all panel columns, so each 8-step slab of the panel is written whole. */
static inline __attribute__((always_inline)) void pack_rows_kind(src_kind kind, const void *src, int64_t ld,
                                                                 int rows, int kc, int P, float *panel) {
    for (int p0 = 0; p0 < kc; p0 += 8) {
        int np = kc - p0 < 8 ? kc - p0 : 8;
        if (kind == SRC_F16 && P == 16 && rows == 16 && np == 8) {
            pack_f16_16x8((const uint16_t *)src, ld, p0, panel);
            continue;
        }
        for (int r0 = 0; r0 < P; r0 += 8) {
            int nr = rows - r0 < 0 ? 0 : (rows - r0 < 8 ? rows - r0 : 8);
            pack_8x8(kind, src, ld, nr, p0, np, r0, P - r0 < 8 ? P - r0 : 8, P, panel);
        }
    }
}

/* Grouped quantized rows (Q8_0, Q4_K, Q6_K; gemm_quant.h): the factors of every row's 16-value groups first
 * (into tmp), then 32 steps of 8 rows at a time expanded in registers and transposed as four 8 x 8 tiles. kc
 * is a multiple of the type's block (of 32). tmp: (2, rows, kc / 16) floats. */
static inline __attribute__((always_inline)) void pack_grouped(av_dtype t, const uint8_t *src,
                                                               size_t row_bytes, int rows, int64_t k0, int kc,
                                                               int P, float *panel, float *tmp) {
    int groups = kc / 16;
    float *s = tmp, *m = tmp + (size_t)rows * (size_t)groups; /* (rows, groups) each */
    for (int r = 0; r < rows; r++)
        av_dequant_groups(t, src + (size_t)r * row_bytes, k0, groups, s + r * groups, m + r * groups);
    for (int p0 = 0; p0 < kc; p0 += 32) {
        int g = p0 / 16;
        for (int r0 = 0; r0 < P; r0 += 8) {
            int nr = rows - r0 < 0 ? 0 : (rows - r0 < 8 ? rows - r0 : 8);
            __m256 w[8][4], v[8]; /* w[i]: steps p0 .. p0 + 31 of row r0 + i */
            for (int i = 0; i < 8; i++) {
                int r = r0 + i;
                if (i < nr)
                    av_qload32(t, src + (size_t)r * row_bytes, k0 + p0, s + r * groups + g,
                               m + r * groups + g, w[i]);
                else
                    w[i][0] = w[i][1] = w[i][2] = w[i][3] = _mm256_setzero_ps();
            }
            for (int q = 0; q < 4; q++) {
                for (int i = 0; i < 8; i++)
                    v[i] = w[i][q];
                transpose_store8(v, panel + (int64_t)(p0 + 8 * q) * P + r0, P, 8, P - r0 < 8 ? P - r0 : 8);
            }
        }
    }
}

void av_pack_rows_avx2(const float *src, int64_t ld, int rows, int kc, int P, float *panel) {
    pack_rows_kind(SRC_F32, src, ld, rows, kc, P, panel);
}

/* F32, F16 and BF16 rows convert inside the transposes, Q8_0, Q4_K and Q6_K in registers before them; other
 * dtypes through av_weight_block_f32. */
void av_pack_weight_avx2(const av_tensor *w, int64_t f0, int rows, int64_t k0, int kc, int P, float *panel,
                         float *tmp) {
    int64_t in = w->shape[1];
    size_t row_bytes = av_tensor_row_bytes(w);
    const uint8_t *q = (const uint8_t *)w->data + (size_t)f0 * row_bytes;
    switch (w->dtype) {
    case AV_DTYPE_Q8_0: pack_grouped(AV_DTYPE_Q8_0, q, row_bytes, rows, k0, kc, P, panel, tmp); return;
    case AV_DTYPE_Q4_K: pack_grouped(AV_DTYPE_Q4_K, q, row_bytes, rows, k0, kc, P, panel, tmp); return;
    case AV_DTYPE_Q6_K: pack_grouped(AV_DTYPE_Q6_K, q, row_bytes, rows, k0, kc, P, panel, tmp); return;
    case AV_DTYPE_F32:
        pack_rows_kind(SRC_F32, (const float *)w->data + f0 * in + k0, in, rows, kc, P, panel);
        return;
    case AV_DTYPE_F16:
        pack_rows_kind(SRC_F16, (const uint16_t *)w->data + f0 * in + k0, in, rows, kc, P, panel);
        return;
    case AV_DTYPE_BF16:
        pack_rows_kind(SRC_BF16, (const uint16_t *)w->data + f0 * in + k0, in, rows, kc, P, panel);
        return;
    default: av_pack_weight_via(w, f0, rows, k0, kc, P, panel, tmp, av_pack_rows_avx2);
    }
}
