/* Packing for the GEMM micro-kernels, portable C: blocks of a matrix into panels (kc steps of P values, zero
 * past the source), and weights of any dtype converted exactly to f32 on the way. The scalar path uses these;
 * the vector paths have their own transposing versions (gemm_pack_avx2.c, gemm_pack_avx512.c) of the same
 * panels. */
#include "gemm.h"

#include <string.h>

void av_pack_rows(const float *src, int64_t ld, int rows, int kc, int P, float *panel) {
    for (int p = 0; p < kc; p++) {
        for (int r = 0; r < rows; r++)
            panel[(int64_t)p * P + r] = src[(int64_t)r * ld + p];
        for (int r = rows; r < P; r++)
            panel[(int64_t)p * P + r] = 0.0f;
    }
}

/* Eight-float moves the compiler inlines: panels are a few dozen floats wide and rebuilt per head and block
 * (attention's values, Gram matrices), where a call to memcpy / memset per row costs more than the copy. */
void av_pack_cols(const float *src, int64_t ld, int cols, int kc, int P, float *panel) {
    for (int p = 0; p < kc; p++) {
        const float *s = src + (int64_t)p * ld;
        float *d = panel + (int64_t)p * P;
        int i = 0;
        for (; i + 8 <= cols; i += 8)
            memcpy(d + i, s + i, 8 * sizeof(float));
        for (; i < cols; i++)
            d[i] = s[i];
        for (; i < P; i++)
            d[i] = 0.0f;
    }
}

/* A one-row view that starts at column k0: one conversion routine per dtype (av_dequantize_rows) serves whole
 * rows and column blocks alike, since k0 sits on a block boundary and its byte offset is the size of k0
 * elements. */
void av_weight_block_f32(const av_tensor *w, int64_t row, int64_t k0, int kc, float *dst) {
    size_t row_bytes = 0, offset = 0;
    av_dtype_nbytes(w->dtype, (size_t)w->shape[1], &row_bytes); /* the loader checked these sizes */
    av_dtype_nbytes(w->dtype, (size_t)k0, &offset);
    av_tensor v = {
        w->dtype, 2, {1, kc, 0, 0}, (const uint8_t *)w->data + (size_t)row * row_bytes + offset, 0};
    av_dequantize_rows(&v, 0, 1, dst);
}

void av_pack_weight_via(const av_tensor *w, int64_t f0, int rows, int64_t k0, int kc, int P, float *panel,
                        float *tmp, av_pack_rows_fn pack_rows) {
    for (int r = 0; r < rows; r++)
        av_weight_block_f32(w, f0 + r, k0, kc, tmp + (int64_t)r * kc);
    pack_rows(tmp, kc, rows, kc, P, panel);
}

void av_pack_weight(const av_tensor *w, int64_t f0, int rows, int64_t k0, int kc, int P, float *panel,
                    float *tmp) {
    if (w->dtype == AV_DTYPE_F32)
        av_pack_rows((const float *)w->data + f0 * w->shape[1] + k0, w->shape[1], rows, kc, P, panel);
    else
        av_pack_weight_via(w, f0, rows, k0, kc, P, panel, tmp, av_pack_rows);
}
