/* Runs a test once per GEMM path (tests/test_gemm.c, tests/test_matvec.c): ON_PATH(test, P) defines
 * test_P(), which SKIPs when this CPU or OS cannot run path P and otherwise calls test(AV_GEMM_P) with that
 * path selected (then restores the previous one). */
#ifndef AV_TEST_GEMM_PATHS_H
#define AV_TEST_GEMM_PATHS_H

#include "harness.h"
#include "kernels/kernels.h"

#define ON_PATH(test, P)                                                                                     \
    static void test##_##P(void) {                                                                           \
        if (!av_gemm_path_supported(AV_GEMM_##P))                                                            \
            SKIP("this CPU or OS cannot run the %s path", av_gemm_path_name(AV_GEMM_##P));                   \
        av_gemm_path prev = av_gemm_path_get();                                                              \
        av_gemm_path_set(AV_GEMM_##P);                                                                       \
        test(AV_GEMM_##P);                                                                                   \
        av_gemm_path_set(prev);                                                                              \
    }
#define ON_OWN_PATHS(test) ON_PATH(test, SCALAR) ON_PATH(test, AVX2) ON_PATH(test, AVX512)
#define ON_ALL_PATHS(test) ON_OWN_PATHS(test) ON_PATH(test, AMX) ON_PATH(test, SGEMM)

#endif
