/* The bulk of av_softmax and av_swiglu (ops.c) 16 lanes at a time, used on the avx512 and amx paths. Every
 * value is the one ops.c's 8-wide code computes (the same operations in the same order, lane by lane) and the
 * softmax sum is accumulated into the same 8 partial sums in the same order, so the paths agree bit for bit.
 * Each function does whole 16-value chunks and returns where it stopped; ops.c does the rest. Compiled with
 * -mavx512f (see the Makefile); called only after gemm_cpu.c found AVX-512. */
#include "kernels.h"

#include <immintrin.h>

/* exp(x) for x <= 0: ops.c's exp_nonpos8, 16 lanes, the same bits. */
static inline __attribute__((always_inline)) __m512 exp_nonpos16(__m512 x) {
    __mmask16 small = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.3f), _CMP_LT_OQ);
    x = _mm512_max_ps(_mm512_set1_ps(-87.3f), x); /* this operand order keeps NaN (as ops.c) */
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    /* p * 2^n in one instruction: n is a whole number, so the product is ops.c's p * 2^n (one rounding) */
    return _mm512_maskz_scalef_ps((__mmask16)~small, p, n);
}

int av_max_avx512(const float *x, int n, float *mx) {
    int i = 0;
    __m512 m = _mm512_set1_ps(*mx);
    for (; i + 16 <= n; i += 16)
        m = _mm512_max_ps(m, _mm512_loadu_ps(x + i));
    *mx = _mm512_reduce_max_ps(m);
    return i;
}

int av_exp_sum_avx512(float *x, int n, float mx, float sum8[8]) {
    int i = 0;
    __m512 vmx = _mm512_set1_ps(mx);
    __m256 vsum = _mm256_loadu_ps(sum8);
    for (; i + 16 <= n; i += 16) {
        __m512 e = exp_nonpos16(_mm512_sub_ps(_mm512_loadu_ps(x + i), vmx));
        _mm512_storeu_ps(x + i, e);
        vsum = _mm256_add_ps(vsum, _mm512_castps512_ps256(e)); /* values i .. i+7, then i+8 .. i+15 */
        vsum = _mm256_add_ps(vsum, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1)));
    }
    _mm256_storeu_ps(sum8, vsum);
    return i;
}

int av_scale_avx512(float *x, int n, float s) {
    int i = 0;
    __m512 vs = _mm512_set1_ps(s);
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(x + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), vs));
    return i;
}

int64_t av_swiglu_avx512(float *g, const float *u, int64_t i0, int64_t i1) {
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
    int64_t i = i0;
    for (; i + 16 <= i1; i += 16) {
        __m512 gv = _mm512_loadu_ps(g + i);
        __m512 t =
            exp_nonpos16(_mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(gv), sign))); /* exp(-|g|) */
        __m512 num = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(gv, _mm512_setzero_ps(), _CMP_LT_OQ), one, t);
        __m512 sig = _mm512_div_ps(num, _mm512_add_ps(one, t));
        _mm512_storeu_ps(g + i, _mm512_mul_ps(_mm512_mul_ps(gv, sig), _mm512_loadu_ps(u + i)));
    }
    return i;
}
