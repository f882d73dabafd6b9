/* Tensor data written in another type than it is stored in: a chunk of rows at a time (about 64K values)
 * through f32, so neither writer ever holds a converted copy of a whole tensor, let alone a model. */
#include "io.h"
#include "kernels/kernels.h"

#include <stdlib.h>

int av_write_converted(av_atomic_file *f, const char *name, av_dtype src, av_dtype dst, const void *data,
                       int64_t rows, int64_t cols, av_err *err) {
    size_t src_row, dst_row;
    if (!av_dtype_is_weight(src) || !av_dtype_can_quantize(dst) || !av_dtype_row_bytes(src, cols, &src_row) ||
        !av_dtype_row_bytes(dst, cols, &dst_row))
        return av_errf(err, "tensor '%s': cannot write %s data as %s (rows of %lld values)", name,
                       av_dtype_name(src), av_dtype_name(dst), (long long)cols);
    if (rows <= 0 || cols <= 0) return 0;
    int64_t chunk = cols >= 65536 ? 1 : 65536 / cols;
    if (chunk > rows) chunk = rows;
    av_tensor t = {src, 2, {rows, cols, 0, 0}, data, src_row * (size_t)rows};
    float *x = av_malloc_checked(sizeof(float) * (size_t)(chunk * cols), err); /* (chunk, cols) */
    void *out = x ? av_malloc_checked(dst_row * (size_t)chunk, err) : NULL;    /* (chunk, dst_row) bytes */
    int rc = out ? 0 : -1;
    for (int64_t r = 0; !rc && r < rows; r += chunk) {
        int64_t n = rows - r < chunk ? rows - r : chunk;
        av_dequantize_rows(&t, r, n, x);
        av_quantize(dst, x, out, n * cols); /* cannot fail: type and row length checked above */
        rc = av_atomic_write(f, out, dst_row * (size_t)n, err);
    }
    free(x);
    free(out);
    return rc ? -1 : 0;
}
