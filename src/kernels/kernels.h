/* Numerical kernels. Plain scalar code unless noted; the GEMMs go to OpenBLAS. */
#ifndef AV_KERNELS_H
#define AV_KERNELS_H

#include "core/core.h"

/* Converts rows [row0, row0+n_rows) of a 2-D weight (any supported dtype) to f32.
 * dst: (n_rows, cols). A 1-D tensor is one row. */
void av_dequantize_rows(const av_tensor *w, int64_t row0, int64_t n_rows, float *dst);

/* y = x W^T.  x: (n, in), W: (out, in) of any supported dtype, y: (n, out).
 * scratch: (out, in) floats used to dequantize non-F32 weights when n is large; may be NULL for F32. */
void av_matmul(float *y, const float *x, const av_tensor *w, int n, float *scratch, int n_threads);

/* out[i] = x[i] / rms(x) * weight  for each of n rows of size dim. weight: (dim) any float dtype. */
void av_rmsnorm(float *out, const float *x, const av_tensor *weight, int n, int dim, float eps);

/* In-place softmax over x[0..n). */
void av_softmax(float *x, int n);

/* Rotary embedding for one position on a vector of n_heads heads of head_dim. */
void av_rope(float *v, int n_heads, int head_dim, int pos, float theta, int half_style);

/* SwiGLU gate: g[i] = silu(g[i]) * u[i] for n values. */
void av_swiglu(float *g, const float *u, size_t n);

/* Q8_0 block: 32 int8 values with one f16 scale. */
typedef struct av_block_q8_0 {
    uint16_t d;
    int8_t qs[32];
} av_block_q8_0;

void av_quantize_q8_0(const float *x, av_block_q8_0 *out, size_t n); /* n % 32 == 0 */

#endif
