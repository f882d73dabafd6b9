/* GGUF files with quantized tensors (every type of src/core/dtype.c's table): the parser on the bytes in
 * memory, then every tensor's rows expanded through av_dequantize_rows (first, middle and last rows; rows of
 * at most 2^16 values), the way the forward pass reads weights. The row arithmetic is checked against each
 * view (an internal invariant: a mismatch aborts, so the fuzzer reports it). Seeds: fuzz/make_quant_seeds.py.
 */
#include "io/gguf.h"
#include "kernels/kernels.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { MAX_COLS = 1 << 16 };

/* Expands rows of one tensor view; aborts when its size disagrees with its rows. */
static void expand(const av_tensor *t, float *buf) {
    int64_t cols = t->shape[t->ndim - 1], rows = 1;
    for (int d = 0; d < t->ndim - 1; d++)
        rows *= t->shape[d];
    size_t row_bytes = av_tensor_row_bytes(t);
    if (cols <= 0 || rows <= 0) return;
    if ((size_t)rows * row_bytes != t->nbytes) abort(); /* the reader accepted a view its rows do not fill */
    if (cols > MAX_COLS) return;
    av_tensor m = *t;
    m.ndim = 2, m.shape[0] = rows, m.shape[1] = cols;
    const int64_t picks[3] = {0, rows / 2, rows - 1};
    for (int i = 0; i < 3; i++)
        av_dequantize_rows(&m, picks[i], 1, buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static float buf[MAX_COLS]; /* one row */
    av_gguf g;
    av_err err;
    if (av_gguf_parse(data, size, "fuzz.gguf", &g, &err) != 0) return 0;
    for (int64_t i = 0; i < g.n_tensors; i++)
        expand(&g.tensors[i].t, buf);
    av_gguf_close(&g);
    return 0;
}
