/* Packing for the AVX-512 micro-kernel with 16 x 16 register transposes: half the shuffles per value of the
 * 8 x 8 AVX2 transposes in gemm_pack.c, which matters because the weights of a prompt pass are all converted
 * and packed once per call. Whole panels of 16-bit weights are transposed as 16-bit values and whole tiles of
 * Q8_0 / Q4_K / Q6_K as bytes, before they are converted: a register then holds 2 or 4 times as many values
 * per shuffle. Same panels, same values (the conversions are exact). Compiled with -mavx512f
 * -mavx512bw -mavx512vl (see the Makefile); used only after gemm_cpu.c found AVX-512 (F, BW, VL). */
#include "gemm.h"
#include "gemm_quant.h"

#include <immintrin.h>
#include <stddef.h>

#define T16_NAME transpose_h16_avx512
#define T16_VEC __m512i
#define T16_UNPACKLO(w, x, y) _mm512_unpacklo_epi##w(x, y)
#define T16_UNPACKHI(w, x, y) _mm512_unpackhi_epi##w(x, y)
#include "gemm_transpose16.h"

/* r[c] = column c of the 16 x 16 block whose row i is r[i] on entry: pairs, quads, then 128-bit lanes. */
static inline __attribute__((always_inline)) void transpose16(__m512 r[16]) {
    __m512 t[16];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) { /* r[4j + q], 128-bit lane L: column 4L + q of rows 4j .. 4j+3 */
        r[4 * j] = _mm512_shuffle_ps(t[4 * j], t[4 * j + 2], 0x44);
        r[4 * j + 1] = _mm512_shuffle_ps(t[4 * j], t[4 * j + 2], 0xee);
        r[4 * j + 2] = _mm512_shuffle_ps(t[4 * j + 1], t[4 * j + 3], 0x44);
        r[4 * j + 3] = _mm512_shuffle_ps(t[4 * j + 1], t[4 * j + 3], 0xee);
    }
#pragma GCC unroll 4
    for (int q = 0; q < 4;
         q++) { /* gather 128-bit lane L of r[q], r[4+q], r[8+q], r[12+q] into column 4L + q */
        __m512 v0 = _mm512_shuffle_f32x4(r[q], r[4 + q], 0x44),
               v1 = _mm512_shuffle_f32x4(r[q], r[4 + q], 0xee);
        __m512 v2 = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0x44);
        __m512 v3 = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0xee);
        t[q] = _mm512_shuffle_f32x4(v0, v2, 0x88);
        t[4 + q] = _mm512_shuffle_f32x4(v0, v2, 0xdd);
        t[8 + q] = _mm512_shuffle_f32x4(v1, v3, 0x88);
        t[12 + q] = _mm512_shuffle_f32x4(v1, v3, 0xdd);
    }
#pragma GCC unroll 16
    for (int c = 0; c < 16; c++)
        r[c] = t[c];
}

static inline __mmask16 lanes16(int n) { return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1); }

/* Transposes the 16 x 16 block v (row i = panel column i) and stores its first np columns as panel steps
 * (P floats apart), lanes (<= 16) values each. */
static inline __attribute__((always_inline)) void transpose_store16(__m512 v[16], float *dst, int P, int np,
                                                                    int lanes) {
    transpose16(v);
    if (lanes == 16) {
#pragma GCC unroll 16
        for (int c = 0; c < 16; c++)
            if (c < np) _mm512_storeu_ps(dst + (int64_t)c * P, v[c]);
    } else {
        for (int c = 0; c < np; c++)
            _mm512_mask_storeu_ps(dst + (int64_t)c * P, lanes16(lanes), v[c]);
    }
}

/* The first n (<= 16) values of a row from column `at` as f32: f32, or f16 / bf16 converted exactly. */
static inline __attribute__((always_inline)) __m512 load16(av_dtype t, const void *row, int64_t at, int n) {
    if (t == AV_DTYPE_F32) {
        const float *f = (const float *)row + at;
        return n == 16 ? _mm512_loadu_ps(f) : _mm512_maskz_loadu_ps(lanes16(n), f);
    }
    const uint16_t *h = (const uint16_t *)row + at;
    __m256i v = n == 16 ? _mm256_loadu_si256((const __m256i *)h) : _mm256_maskz_loadu_epi16(lanes16(n), h);
    if (t == AV_DTYPE_F16) return _mm512_cvtph_ps(v);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(v), 16));
}

/* panel[p * P + r] = row r, column k0 + p of the source, for r < rows (zero for rows <= r < P), p < kc.
 * rows are row_bytes apart; t says how to read them. */
static inline __attribute__((always_inline)) void pack16(av_dtype t, const char *src, size_t row_bytes,
                                                         int rows, int64_t k0, int kc, int P, float *panel) {
    for (int r0 = 0; r0 < P; r0 += 16) {
        int nr = rows - r0 < 0 ? 0 : (rows - r0 < 16 ? rows - r0 : 16), lanes = P - r0 < 16 ? P - r0 : 16;
        const char *base = src + (size_t)r0 * row_bytes;
        for (int p0 = 0; p0 < kc; p0 += 16) {
            int np = kc - p0 < 16 ? kc - p0 : 16;
            __m512 v[16];
            if (nr == 16 && np == 16) {
#pragma GCC unroll 16
                for (int i = 0; i < 16; i++)
                    v[i] = load16(t, base + (size_t)i * row_bytes, k0 + p0, 16);
            } else {
                for (int i = 0; i < 16; i++)
                    v[i] =
                        i < nr ? load16(t, base + (size_t)i * row_bytes, k0 + p0, np) : _mm512_setzero_ps();
            }
            transpose_store16(v, panel + (int64_t)p0 * P + r0, P, np, lanes);
        }
    }
}

/* Steps [p0, p0 + 8) of 32 F16 or BF16 rows (row_bytes apart) into a panel of P = 32 columns, the common
 * whole block of the AVX-512 weight panels. Register i holds rows i, i + 8, i + 16 and i + 24, one in each
 * 128-bit lane, so one 8 x 8 transpose of 16-bit values within the lanes (24 unpacks) leaves step q's 32
 * values in register q, rows 0-7, 8-15, 16-23, 24-31 in lanes 0-3; each half is then converted exactly. The
 * f32 path (convert, then transpose16) spends 64 shuffles on 256 values, this one 24 and 8 half extractions.
 */
static inline __attribute__((always_inline)) void pack_h16_32x8(av_dtype t, const char *src, size_t row_bytes,
                                                                int64_t at, float *panel) {
    __m512i r[8], c[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        const char *row = src + (size_t)i * row_bytes + (size_t)at * 2;
        __m256i lo = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)row)),
                                             _mm_loadu_si128((const __m128i *)(row + 8 * row_bytes)), 1);
        __m256i hi = _mm256_inserti128_si256(
            _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(row + 16 * row_bytes))),
            _mm_loadu_si128((const __m128i *)(row + 24 * row_bytes)), 1);
        r[i] = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    }
    transpose_h16_avx512(r, c);
#pragma GCC unroll 8
    for (int q = 0; q < 8; q++) { /* step q: rows 0-15 in the low half, 16-31 in the high one */
        __m256i h[2] = {_mm512_castsi512_si256(c[q]), _mm512_extracti64x4_epi64(c[q], 1)};
        float *d = panel + (int64_t)q * 32;
#pragma GCC unroll 2
        for (int k = 0; k < 2; k++)
            _mm512_storeu_ps(d + 16 * k,
                             t == AV_DTYPE_F16
                                 ? _mm512_cvtph_ps(h[k])
                                 : _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h[k]), 16)));
    }
}

/* pack16 for F16 and BF16: whole 32-row panels 8 steps at a time through pack_h16_32x8, the rest as f32. */
static inline __attribute__((always_inline)) void
pack_h16(av_dtype t, const char *src, size_t row_bytes, int rows, int64_t k0, int kc, int P, float *panel) {
    int p0 = 0;
    if (rows == 32 && P == 32)
        for (; p0 + 8 <= kc; p0 += 8)
            pack_h16_32x8(t, src, row_bytes, k0 + p0, panel + (int64_t)p0 * P);
    if (p0 < kc) pack16(t, src, row_bytes, rows, k0 + p0, kc - p0, P, panel + (int64_t)p0 * P);
}

/* Bytes [0, 16) of rows 0, 4, 8, 12 (row_bytes apart) from p, in the four 128-bit lanes. */
static inline __attribute__((always_inline)) __m512i rows4(const uint8_t *p, size_t row_bytes) {
    __m256i lo = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)p)),
                                         _mm_loadu_si128((const __m128i *)(p + 4 * row_bytes)), 1);
    __m256i hi =
        _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(p + 8 * row_bytes))),
                                _mm_loadu_si128((const __m128i *)(p + 12 * row_bytes)), 1);
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

/* The integers of values [v, v + 16) of rows j, 4 + j, 8 + j, 12 + j (j < 4) as signed bytes, one row per
 * 128-bit lane of x[j], computed in the byte lanes as av_qints16 computes them in 32-bit lanes (shifts within
 * 16-bit lanes leave only the byte's own bits once masked): Q8_0 as stored, Q4_K a low or high nibble (0-15),
 * Q6_K 4 low bits and 2 high bits, minus 32. */
static inline __attribute__((always_inline)) void qrows16(av_dtype t, const uint8_t *src, size_t row_bytes,
                                                          int64_t v, __m512i x[4]) {
    int r = (int)(v % AV_QK_K);
    const __m128i zero = _mm_setzero_si128();
    if (t == AV_DTYPE_Q8_0) {
        const uint8_t *q =
            src + v / AV_QK * (int64_t)sizeof(av_block_q8_0) + offsetof(av_block_q8_0, qs) + v % AV_QK;
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++)
            x[j] = rows4(q + (size_t)j * row_bytes, row_bytes);
    } else if (t == AV_DTYPE_Q4_K) {
        const uint8_t *q = src + v / AV_QK_K * (int64_t)sizeof(av_block_q4_k) + offsetof(av_block_q4_k, qs) +
                           32 * (r / 64) + r % 32;
        __m128i shift = _mm_insert_epi32(zero, 4 * ((r / 32) & 1), 0);
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++)
            x[j] = _mm512_and_si512(_mm512_srl_epi16(rows4(q + (size_t)j * row_bytes, row_bytes), shift),
                                    _mm512_set1_epi8(0x0f));
    } else {
        int h = r / 128, k = r % 128 / 32, l = r % 32;
        const uint8_t *b = src + v / AV_QK_K * (int64_t)sizeof(av_block_q6_k);
        const uint8_t *ql = b + offsetof(av_block_q6_k, ql) + 64 * h + 32 * (k & 1) + l,
                      *qh = b + offsetof(av_block_q6_k, qh) + 32 * h + l;
        __m128i s_lo = _mm_insert_epi32(zero, 4 * (k >> 1), 0), s_hi = _mm_insert_epi32(zero, 2 * k, 0);
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            __m512i lo = _mm512_and_si512(
                _mm512_srl_epi16(rows4(ql + (size_t)j * row_bytes, row_bytes), s_lo), _mm512_set1_epi8(0x0f));
            __m512i hi = _mm512_and_si512(
                _mm512_srl_epi16(rows4(qh + (size_t)j * row_bytes, row_bytes), s_hi), _mm512_set1_epi8(3));
            x[j] = _mm512_sub_epi8(_mm512_or_si512(lo, _mm512_slli_epi16(hi, 4)), _mm512_set1_epi8(32));
        }
    }
}

/* One 16-value group of 16 whole Q8_0, Q4_K or Q6_K rows (row_bytes apart; s, m: their factors, `groups`
 * floats apart) into panel steps P floats apart, transposed as bytes before they are expanded: x[j] holds
 * rows j, 4 + j, 8 + j, 12 + j in its 128-bit lanes, two levels of unpacks leave dword d of each lane L of
 * b[k] = the bytes of rows 4L .. 4L + 3 at step 4k + d, and one byte shuffle per step moves each into the top
 * byte of its row's dword, an arithmetic shift extends its sign. 8 unpacks and 16 shuffles per 256 values
 * instead of 16 widenings and 64 f32 shuffles; the factors are then applied in av_qload16's operations, lane
 * by lane: the same bits (q * s and s * q are the same product). */
static inline __attribute__((always_inline)) void qtile16(av_dtype t, const uint8_t *src, size_t row_bytes,
                                                          int64_t v, const float *s, const float *m,
                                                          int groups, float *dst, int P) {
    __m512i x[4], a[4], b[4];
    qrows16(t, src, row_bytes, v, x);
    a[0] = _mm512_unpacklo_epi8(x[0], x[1]), a[1] = _mm512_unpackhi_epi8(x[0], x[1]); /* steps 0-7, 8-15 */
    a[2] = _mm512_unpacklo_epi8(x[2], x[3]), a[3] = _mm512_unpackhi_epi8(x[2], x[3]);
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        b[2 * h] = _mm512_unpacklo_epi16(a[h], a[h + 2]);
        b[2 * h + 1] = _mm512_unpackhi_epi16(a[h], a[h + 2]);
    }
    __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                     _mm512_set1_epi32(groups));
    __m512 vs = _mm512_i32gather_ps(idx, s, 4), vm = _mm512_setzero_ps();
    if (t == AV_DTYPE_Q4_K) vm = _mm512_i32gather_ps(idx, m, 4);
#pragma GCC unroll 16
    for (int p = 0; p < 16; p++) {
        int d = p % 4; /* byte 4d + i of each lane (row 4L + i) into byte 3 of dword i */
        __m512i f = _mm512_shuffle_epi8(
            b[p / 4], _mm512_set4_epi32((4 * d + 3) << 24 | 0x808080, (4 * d + 2) << 24 | 0x808080,
                                        (4 * d + 1) << 24 | 0x808080, (4 * d) << 24 | 0x808080));
        __m512 y = _mm512_mul_ps(vs, _mm512_cvtepi32_ps(_mm512_srai_epi32(f, 24)));
        _mm512_storeu_ps(dst + (int64_t)p * P, t == AV_DTYPE_Q4_K ? _mm512_sub_ps(y, vm) : y);
    }
}

/* Grouped quantized rows (Q8_0, Q4_K, Q6_K; gemm_quant.h): the factors of every row's 16-value groups first
 * (into tmp), then each 16 x 16 tile transposed as bytes and expanded (qtile16), or, with fewer than 16 rows,
 * expanded in registers and transposed as pack16 does. kc is a multiple of the type's block, so tiles are
 * always 16 steps deep. tmp: (2, rows, kc / 16) floats. */
static inline __attribute__((always_inline)) void pack16_grouped(av_dtype t, const uint8_t *src,
                                                                 size_t row_bytes, int rows, int64_t k0,
                                                                 int kc, int P, float *panel, float *tmp) {
    int groups = kc / 16;
    float *s = tmp, *m = tmp + (size_t)rows * (size_t)groups; /* (rows, groups) each */
    for (int r = 0; r < rows; r++)
        av_dequant_groups(t, src + (size_t)r * row_bytes, k0, groups, s + r * groups, m + r * groups);
    for (int r0 = 0; r0 < P; r0 += 16) {
        int nr = rows - r0 < 0 ? 0 : (rows - r0 < 16 ? rows - r0 : 16), lanes = P - r0 < 16 ? P - r0 : 16;
        for (int g = 0; g < groups; g++) {
            if (nr == 16 && lanes == 16) {
                qtile16(t, src + (size_t)r0 * row_bytes, row_bytes, k0 + 16 * g, s + r0 * groups + g,
                        m + r0 * groups + g, groups, panel + (int64_t)g * 16 * P + r0, P);
                continue;
            }
            __m512 v[16];
            for (int i = 0; i < 16; i++) {
                int r = r0 + i;
                v[i] = i < nr ? av_qload16(t, src + (size_t)r * row_bytes, k0 + 16 * g, s[r * groups + g],
                                           m[r * groups + g])
                              : _mm512_setzero_ps();
            }
            transpose_store16(v, panel + (int64_t)g * 16 * P + r0, P, 16, lanes);
        }
    }
}

void av_pack_rows_avx512(const float *src, int64_t ld, int rows, int kc, int P, float *panel) {
    pack16(AV_DTYPE_F32, (const char *)src, (size_t)ld * sizeof(float), rows, 0, kc, P, panel);
}

void av_dequantize_rows_avx512(const av_tensor *w, int64_t row0, int64_t n_rows, float *dst) {
    av_dtype t = w->dtype;
    if (!av_dtype_grouped(t)) {
        av_dequantize_rows(w, row0, n_rows, dst);
        return;
    }
    enum { CHUNK = 4096 }; /* columns whose group factors are computed at once: whole blocks of any type */
    float s[CHUNK / 16], m[CHUNK / 16];
    int64_t in = w->shape[w->ndim - 1];
    size_t row_bytes = av_tensor_row_bytes(w);
    for (int64_t r = 0; r < n_rows; r++) {
        const uint8_t *row = (const uint8_t *)w->data + (size_t)(row0 + r) * row_bytes;
        for (int64_t k0 = 0; k0 < in; k0 += CHUNK) {
            int groups = (int)((in - k0 < CHUNK ? in - k0 : CHUNK) / 16);
            av_dequant_groups(t, row, k0, groups, s, m);
            float *out = dst + r * in + k0;
            for (int g = 0; g < groups; g++) {
                __m512 v = t == AV_DTYPE_Q8_0   ? av_qload16(AV_DTYPE_Q8_0, row, k0 + 16 * g, s[g], m[g])
                           : t == AV_DTYPE_Q4_K ? av_qload16(AV_DTYPE_Q4_K, row, k0 + 16 * g, s[g], m[g])
                                                : av_qload16(AV_DTYPE_Q6_K, row, k0 + 16 * g, s[g], m[g]);
                _mm512_storeu_ps(out + 16 * g, v);
            }
        }
    }
}

/* av_pack_weight: F32, F16 and BF16 convert inside the transposes, Q8_0, Q4_K and Q6_K in registers before
 * them; other dtypes through av_weight_block_f32 into tmp, then the transposes. */
void av_pack_weight_avx512(const av_tensor *w, int64_t f0, int rows, int64_t k0, int kc, int P, float *panel,
                           float *tmp) {
    size_t row_bytes = av_tensor_row_bytes(w);
    const char *src = (const char *)w->data + (size_t)f0 * row_bytes;
    const uint8_t *q = (const uint8_t *)src;
    switch (w->dtype) {
    case AV_DTYPE_F32: pack16(AV_DTYPE_F32, src, row_bytes, rows, k0, kc, P, panel); return;
    case AV_DTYPE_F16: pack_h16(AV_DTYPE_F16, src, row_bytes, rows, k0, kc, P, panel); return;
    case AV_DTYPE_BF16: pack_h16(AV_DTYPE_BF16, src, row_bytes, rows, k0, kc, P, panel); return;
    case AV_DTYPE_Q8_0: pack16_grouped(AV_DTYPE_Q8_0, q, row_bytes, rows, k0, kc, P, panel, tmp); return;
    case AV_DTYPE_Q4_K: pack16_grouped(AV_DTYPE_Q4_K, q, row_bytes, rows, k0, kc, P, panel, tmp); return;
    case AV_DTYPE_Q6_K: pack16_grouped(AV_DTYPE_Q6_K, q, row_bytes, rows, k0, kc, P, panel, tmp); return;
    default: av_pack_weight_via(w, f0, rows, k0, kc, P, panel, tmp, av_pack_rows_avx512);
    }
}
