/* Tensor data written in another type than it is stored in: a chunk of rows at a time (about 64K values)
 * through f32 (F32 rows read in place), so neither writer ever holds a converted copy of a whole tensor, let
 * alone a model. F32, F16 and BF16 are converted here; the quantized types through the caller's codec
 * (kernels/ sits above io/). */
#include "io.h"

#include <stdlib.h>
#include <string.h>

static int plain(av_dtype t) { return t == AV_DTYPE_F32 || t == AV_DTYPE_F16 || t == AV_DTYPE_BF16; }

int av_dtype_convertible(const av_dtype_codec *codec, av_dtype src, av_dtype dst) {
    if (src == dst) return 1;
    if (!av_dtype_is_weight(src) || !av_dtype_is_weight(dst)) return 0;
    return (plain(src) || (codec && codec->to_f32)) && (plain(dst) || (codec && codec->writes(dst)));
}

/* Any type but F32 (read in place) into f32. */
static void to_f32(const av_dtype_codec *codec, av_dtype t, const void *src, float *dst, int64_t n) {
    const uint16_t *h = src;
    if (t == AV_DTYPE_F16)
        for (int64_t i = 0; i < n; i++)
            dst[i] = av_f16_to_f32(h[i]);
    else if (t == AV_DTYPE_BF16)
        for (int64_t i = 0; i < n; i++)
            dst[i] = av_bf16_to_f32(h[i]);
    else
        codec->to_f32(t, src, dst, n);
}

static int from_f32(const av_dtype_codec *codec, av_dtype t, const float *src, void *dst, int64_t n) {
    uint16_t *h = dst;
    if (t == AV_DTYPE_F32)
        memcpy(dst, src, sizeof(float) * (size_t)n);
    else if (t == AV_DTYPE_F16)
        av_f32_to_f16_n(src, h, (size_t)n);
    else if (t == AV_DTYPE_BF16)
        for (int64_t i = 0; i < n; i++)
            h[i] = av_f32_to_bf16(src[i]);
    else
        return codec->from_f32(t, src, dst, n);
    return 0;
}

int av_write_converted(av_atomic_file *f, const av_dtype_codec *codec, const char *name, av_dtype src,
                       av_dtype dst, const void *data, int64_t rows, int64_t cols, av_err *err) {
    size_t src_row, dst_row;
    if (!av_dtype_convertible(codec, src, dst) || !av_dtype_row_bytes(src, cols, &src_row) ||
        !av_dtype_row_bytes(dst, cols, &dst_row))
        return av_errf(err, "tensor '%s': cannot write %s data as %s (rows of %lld values)", name,
                       av_dtype_name(src), av_dtype_name(dst), (long long)cols);
    if (rows <= 0 || cols <= 0) return 0;
    int64_t chunk = cols >= 65536 ? 1 : 65536 / cols;
    if (chunk > rows) chunk = rows;
    float *x = NULL; /* (chunk, cols) the rows in f32, unless they are F32 */
    if (src != AV_DTYPE_F32 && !(x = av_malloc_checked(sizeof(float) * (size_t)(chunk * cols), err)))
        return -1;
    void *out = av_malloc_checked(dst_row * (size_t)chunk, err); /* (chunk, dst_row) bytes */
    int rc = out ? 0 : -1;
    for (int64_t r = 0; !rc && r < rows; r += chunk) {
        int64_t n = rows - r < chunk ? rows - r : chunk;
        const void *rows_at = (const uint8_t *)data + (size_t)r * src_row;
        if (x) to_f32(codec, src, rows_at, x, n * cols);
        if (from_f32(codec, dst, x ? x : rows_at, out, n * cols))
            rc = av_errf(err, "tensor '%s': the codec cannot write %s", name, av_dtype_name(dst));
        else
            rc = av_atomic_write(f, out, dst_row * (size_t)n, err);
    }
    free(x);
    free(out);
    return rc ? -1 : 0;
}
