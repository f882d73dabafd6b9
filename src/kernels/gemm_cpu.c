/* Which GEMM path this process runs: what the CPU and the OS support (CPUID, XCR0, the AMX permission),
 * checked once, and the choice: ATTNVIZ_GEMM=avx512|avx2|amx|sgemm|scalar when set and supported, else the
 * fastest (amx, then avx512, then avx2). Tests and benchmarks switch paths with av_gemm_path_set. */
#include "gemm.h"

#include <cpuid.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *const path_names[AV_GEMM_PATH_COUNT] = {"scalar", "avx2", "avx512", "amx", "sgemm"};
_Static_assert(sizeof path_names / sizeof *path_names == AV_GEMM_PATH_COUNT, "one name per path");

static int supported[AV_GEMM_PATH_COUNT];
static int intel; /* the CPUID vendor is GenuineIntel */
static atomic_int current = -1, fast_gathers = -1;
static pthread_once_t detect_once = PTHREAD_ONCE_INIT;

const char *av_gemm_path_name(av_gemm_path p) {
    return p >= 0 && p < AV_GEMM_PATH_COUNT ? path_names[p] : "?";
}

int av_gemm_path_parse(const char *s, av_gemm_path *out) {
    for (int p = 0; s && p < AV_GEMM_PATH_COUNT; p++)
        if (strcmp(s, path_names[p]) == 0) {
            *out = (av_gemm_path)p;
            return 0;
        }
    return -1;
}

static unsigned long long xcr0(void) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (unsigned long long)hi << 32 | lo;
}

/* CPU features and the OS register state they need: XMM|YMM (bits 1, 2) for AVX2, opmask|ZMM (5-7) for
 * AVX-512, tile config|data (17, 18) for AMX, which Linux also hands out only on request (arch_prctl). */
static void detect(void) {
    unsigned a, b, c, d;
    supported[AV_GEMM_SCALAR] = supported[AV_GEMM_SGEMM] = 1;
    if (__get_cpuid(0, &a, &b, &c, &d)) /* the vendor string is in ebx, edx, ecx */
        intel = b == 0x756e6547 && d == 0x49656e69 && c == 0x6c65746e; /* "Genu" "ineI" "ntel" */
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c >> 27 & 1)) return;     /* no OSXSAVE: no xgetbv */
    int fma = c >> 12 & 1, avx = c >> 28 & 1, f16c = c >> 29 & 1;
    unsigned long long os = xcr0();
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return;
    int avx2 = b >> 5 & 1, avx512 = (b >> 16 & 1) && (b >> 30 & 1) && (b >> 31 & 1); /* F, BW, VL */
    int amx = (d >> 22 & 1) && (d >> 24 & 1);                                        /* AMX-BF16, AMX-TILE */
    supported[AV_GEMM_AVX2] = avx && avx2 && fma && f16c && (os & 0x6) == 0x6;
    supported[AV_GEMM_AVX512] = supported[AV_GEMM_AVX2] && avx512 && (os & 0xe6) == 0xe6;
    if (supported[AV_GEMM_AVX512] && amx && (os & 0x60000) == 0x60000) {
        enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
        supported[AV_GEMM_AMX] = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
    }
}

static av_gemm_path fastest(void) {
    static const av_gemm_path order[] = {AV_GEMM_AMX, AV_GEMM_AVX512, AV_GEMM_AVX2};
    for (size_t i = 0; i < sizeof order / sizeof *order; i++)
        if (supported[order[i]]) return order[i];
    return AV_GEMM_SCALAR;
}

/* The environment's choice, or the fastest; one line on stderr when the variable names nothing usable, so a
 * benchmark never measures another path than the one it asked for without saying so. */
static void choose(void) {
    detect();
    av_gemm_path p = fastest();
    const char *env = getenv("ATTNVIZ_GEMM");
    if (env && *env) {
        av_gemm_path want;
        if (av_gemm_path_parse(env, &want) != 0)
            fprintf(stderr,
                    "attnviz: ATTNVIZ_GEMM=%s is not one of scalar, avx2, avx512, amx, sgemm: using %s\n",
                    env, path_names[p]);
        else if (!supported[want])
            fprintf(stderr, "attnviz: ATTNVIZ_GEMM=%s: this CPU or OS does not support it: using %s\n", env,
                    path_names[p]);
        else
            p = want;
    }
    atomic_store(&current, (int)p);
}

int av_gemm_path_supported(av_gemm_path p) {
    pthread_once(&detect_once, choose);
    return p >= 0 && p < AV_GEMM_PATH_COUNT && supported[p];
}

av_gemm_path av_gemm_path_get(void) {
    pthread_once(&detect_once, choose);
    return (av_gemm_path)atomic_load(&current);
}

int av_gemm_path_set(av_gemm_path p) {
    if (!av_gemm_path_supported(p)) return -1;
    atomic_store(&current, (int)p);
    return 0;
}

int av_amx_ready(void) { return av_gemm_path_supported(AV_GEMM_AMX); }

int av_fast_gathers(void) {
    pthread_once(&detect_once, choose);
    int forced = atomic_load(&fast_gathers);
    return forced >= 0 ? forced : intel;
}

void av_fast_gathers_set(int fast) { atomic_store(&fast_gathers, fast < 0 ? -1 : fast != 0); }
