/* Small helpers: strings, checked allocation, large buffers on huge pages, half precision, dtype sizes,
 * clocks, the library version, the SplitMix64 random stream. */
#define _POSIX_C_SOURCE 200809L
#include "core.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#if defined(__F16C__) && defined(__AVX2__)
#include <immintrin.h>
#define AV_HAVE_F16C 1
#endif

char *av_strdup(const char *s) { return s ? av_strndup(s, strlen(s)) : NULL; }

char *av_strndup(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

void av_strings_free(char **s, size_t n) {
    for (size_t i = 0; s && i < n; i++)
        free(s[i]);
    free(s);
}

const char *av_printable(char *dst, size_t cap, const char *s, size_t n) {
    size_t k = 0;
    for (; k < n && k + 1 < cap; k++)
        dst[k] = (unsigned char)s[k] < 0x20 || s[k] == 0x7f ? '?' : s[k];
    dst[k] = 0;
    return dst;
}

void *av_malloc_checked(size_t n, av_err *err) {
    void *p = malloc(n ? n : 1);
    if (!p) av_errf(err, "out of memory allocating %zu bytes", n);
    return p;
}

void *av_alloc_large(size_t n, size_t align) {
    enum { HUGE_PAGE = 2 << 20 };
    void *p = NULL;
    if (n >= HUGE_PAGE) align = HUGE_PAGE;
    if (posix_memalign(&p, align > sizeof(void *) ? align : sizeof(void *), n ? n : 1)) return NULL;
#ifdef MADV_HUGEPAGE
    if (n >= HUGE_PAGE) madvise(p, n / HUGE_PAGE * HUGE_PAGE, MADV_HUGEPAGE); /* without THP: small pages */
#endif
    return p;
}

double av_seconds(void) { return av_now_seconds(); }

const char *av_version(void) { return AV_VERSION; }

void av_free(void *p) { free(p); }

double av_now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

float av_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else { /* subnormal: normalize */
            exp = 127 - 15 + 1;
            while (!(mant & 0x400)) {
                mant <<= 1;
                exp--;
            }
            mant &= 0x3ff;
            bits = sign | (exp << 23) | (mant << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t av_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    int32_t exp = (int32_t)((x >> 23) & 0xff);
    uint32_t mant = x & 0x7fffff;
    if (exp == 0xff) return (uint16_t)(sign | 0x7c00 | (mant ? 0x200 : 0));
    int32_t e = exp - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7c00);
    if (e <= 0) {
        if (e < -10) return (uint16_t)sign;
        mant |= 0x800000;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t half = mant >> shift;
        uint32_t rem = mant & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = sign | ((uint32_t)e << 10) | (mant >> 13);
    uint32_t rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++; /* round to nearest even; may carry into exp */
    return (uint16_t)half;
}

void av_f32_to_f16_n(const float *src, uint16_t *dst, size_t n) {
    size_t i = 0;
#ifdef AV_HAVE_F16C
    const __m128i payload = _mm_set1_epi16(0x01ff);
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_loadu_ps(src + i);
        __m128i h = _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_UNORD_Q));
        __m128i nan16 = _mm_packs_epi32(_mm256_castsi256_si128(nan), _mm256_extracti128_si256(nan, 1));
        h = _mm_andnot_si128(_mm_and_si128(nan16, payload), h); /* a NaN keeps no payload, as av_f32_to_f16 */
        _mm_storeu_si128((__m128i *)(dst + i), h);
    }
#endif
    for (; i < n; i++)
        dst[i] = av_f32_to_f16(src[i]);
}

float av_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t av_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40); /* keep NaN a NaN */
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

int64_t av_tensor_numel(const av_tensor *t) {
    size_t n;
    return av_shape_numel(t->shape, t->ndim, &n) ? (int64_t)n : -1;
}

uint64_t av_splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
