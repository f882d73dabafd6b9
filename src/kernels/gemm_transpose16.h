/* The 8 x 8 transpose of 16-bit values within each 128-bit lane, written once for the AVX2 and AVX-512 weight
 * packing (gemm_pack_avx2.c, gemm_pack_avx512.c), which define before including this file:
 *
 *   T16_NAME            the function's name
 *   T16_VEC             the integer vector type (__m256i: 2 lanes, __m512i: 4 lanes)
 *   T16_UNPACKLO(w, x, y), T16_UNPACKHI(w, x, y)   the in-lane unpacks of w-bit elements (w = 16, 32, 64)
 *
 * r[i]: 8 consecutive 16-bit values (steps 0-7) of row i in every lane (each lane its own row group);
 * c[q]: step q of rows 0-7 in every lane. 24 in-lane unpacks, none crossing lanes. */
static inline __attribute__((always_inline)) void T16_NAME(const T16_VEC r[8], T16_VEC c[8]) {
    T16_VEC a[8], b[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i += 2) { /* a[i]: steps 0-3 of rows i, i + 1 interleaved; a[i + 1]: steps 4-7 */
        a[i] = T16_UNPACKLO(16, r[i], r[i + 1]);
        a[i + 1] = T16_UNPACKHI(16, r[i], r[i + 1]);
    }
#pragma GCC unroll 8
    for (int i = 0; i < 8; i += 4) /* b[i + 2s], b[i + 2s + 1]: steps 4s .. 4s + 3 of rows i .. i + 3 */
#pragma GCC unroll 8
        for (int s = 0; s < 2; s++) {
            b[i + 2 * s] = T16_UNPACKLO(32, a[i + s], a[i + s + 2]);
            b[i + 2 * s + 1] = T16_UNPACKHI(32, a[i + s], a[i + s + 2]);
        }
#pragma GCC unroll 8
    for (int q = 0; q < 8; q++)
        c[q] = q % 2 ? T16_UNPACKHI(64, b[q / 2], b[q / 2 + 4]) : T16_UNPACKLO(64, b[q / 2], b[q / 2 + 4]);
}

#undef T16_NAME
#undef T16_VEC
#undef T16_UNPACKLO
#undef T16_UNPACKHI
