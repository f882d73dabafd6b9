/* attnviz's weight types against ggml itself (libggml-base as node-llama-cpp 3.21.1 ships it), bit for bit:
 *   - dequantization of every type: rows quantized by ggml (ggml_quantize_chunk, what llama_model_quantize
 *     runs) and rows of random block bytes (every bit pattern, finite f16 scales), expanded by ggml's
 *     dequantize_row_* (its type traits' to_float) and by av_dequantize / av_dequantize_rows;
 *   - attnviz's quantizers (Q8_0, Q4_0, Q4_K, and F16/BF16) against ggml's reference quantizers.
 * Rows have 512 values (K-quants need multiples of 256), drawn from several distributions with outliers,
 * zero and constant blocks. Built and run by tests/cli/test_llamacpp_quants.sh. */
#include "kernels/kernels.h"

#include <ggml.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ggml-base's reference quantizers (declared in its internal ggml-quants.h) */
void quantize_row_q4_0_ref(const float *x, void *y, int64_t k);
void quantize_row_q8_0_ref(const float *x, void *y, int64_t k);
void quantize_row_q4_K_ref(const float *x, void *y, int64_t k);

enum { COLS = 512, ROWS = 24, N = COLS * ROWS };

static int n_failed;

/* Prints "PASS name" or "FAIL name: why" (name and why from one format: "name: why ..."). */
static void result(int ok, const char *fmt, ...) {
    char line[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (ok) *strchr(line, ':') = 0;
    printf("%s llamacpp_%s\n", ok ? "PASS" : "FAIL", line);
    n_failed += !ok;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng_next(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static float rng_uniform(void) { return (float)((rng_next() >> 40) + 0.5) / 16777216.0f; }
static float rng_normal(void) {
    return sqrtf(-2.0f * logf(rng_uniform())) * cosf(6.2831853f * rng_uniform());
}

/* ROWS x COLS test values: row r uses distribution r % 6 (normal, small, skewed, heavy outliers, one zero
 * block and constants, all positive), scaled over several magnitudes. x: (N) */
static void make_rows(float *x) {
    for (int r = 0; r < ROWS; r++) {
        float *row = x + r * COLS, scale = powf(10.0f, (float)(r % 5) - 3.0f);
        for (int c = 0; c < COLS; c++) {
            float v = rng_normal();
            switch (r % 6) {
            case 1: v *= 1e-3f; break;
            case 2: v = v + 0.7f; break;
            case 3: v = rng_uniform() < 0.02f ? v * 40.0f : v; break;
            case 4: v = c < 64 ? 0.0f : c < 128 ? 0.25f : v; break;
            case 5: v = fabsf(v) + 0.1f; break;
            default: break;
            }
            row[c] = v * scale;
        }
    }
}

typedef struct qtype {
    av_dtype av;
    enum ggml_type ggml;
    size_t f16_fields[2]; /* byte offsets of the block's f16 scales (0: none beyond the first listed) */
    int n_f16;
} qtype;

static const qtype types[] = {
    {AV_DTYPE_F16, GGML_TYPE_F16, {0}, 0},
    {AV_DTYPE_BF16, GGML_TYPE_BF16, {0}, 0},
    {AV_DTYPE_Q4_0, GGML_TYPE_Q4_0, {offsetof(av_block_q4_0, d)}, 1},
    {AV_DTYPE_Q4_1, GGML_TYPE_Q4_1, {offsetof(av_block_q4_1, d), offsetof(av_block_q4_1, m)}, 2},
    {AV_DTYPE_Q5_0, GGML_TYPE_Q5_0, {offsetof(av_block_q5_0, d)}, 1},
    {AV_DTYPE_Q5_1, GGML_TYPE_Q5_1, {offsetof(av_block_q5_1, d), offsetof(av_block_q5_1, m)}, 2},
    {AV_DTYPE_Q8_0, GGML_TYPE_Q8_0, {offsetof(av_block_q8_0, d)}, 1},
    {AV_DTYPE_Q2_K, GGML_TYPE_Q2_K, {offsetof(av_block_q2_k, d), offsetof(av_block_q2_k, dmin)}, 2},
    {AV_DTYPE_Q3_K, GGML_TYPE_Q3_K, {offsetof(av_block_q3_k, d)}, 1},
    {AV_DTYPE_Q4_K, GGML_TYPE_Q4_K, {offsetof(av_block_q4_k, d), offsetof(av_block_q4_k, dmin)}, 2},
    {AV_DTYPE_Q5_K, GGML_TYPE_Q5_K, {offsetof(av_block_q5_k, d), offsetof(av_block_q5_k, dmin)}, 2},
    {AV_DTYPE_Q6_K, GGML_TYPE_Q6_K, {offsetof(av_block_q6_k, d)}, 1},
    {AV_DTYPE_IQ4_NL, GGML_TYPE_IQ4_NL, {offsetof(av_block_iq4_nl, d)}, 1},
    {AV_DTYPE_IQ4_XS, GGML_TYPE_IQ4_XS, {offsetof(av_block_iq4_xs, d)}, 1},
};

/* Index of the first differing float (bitwise), or -1. */
static long first_diff(const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0) return (long)i;
    return -1;
}

/* Expands blocks with ggml and with attnviz (whole buffer, and row by row through a tensor view at an offset)
 * and compares the floats bit for bit. */
static void compare_dequant(const qtype *q, const void *blocks, const char *what, float *want, float *got) {
    const struct ggml_type_traits *tr = ggml_get_type_traits(q->ggml);
    size_t row_bytes = ggml_row_size(q->ggml, COLS);
    tr->to_float(blocks, want, N);
    av_dequantize(q->av, blocks, got, N);
    long d = first_diff(want, got, N);
    av_tensor t = {q->av, 2, {ROWS, COLS, 0, 0}, blocks, row_bytes * ROWS};
    long d_rows = -1;
    for (int r = 3; r < ROWS && d_rows < 0; r += 5) { /* rows 3.., 8.., ... by av_dequantize_rows */
        int n = ROWS - r < 2 ? ROWS - r : 2;
        av_dequantize_rows(&t, r, n, got);
        d_rows = first_diff(want + (size_t)r * COLS, got, (size_t)n * COLS);
        if (d_rows >= 0) d_rows += (long)r * COLS;
    }
    result(av_tensor_row_bytes(&t) == row_bytes && d < 0 && d_rows < 0,
           "dequant_%s_%s: row bytes %zu vs ggml %zu; first difference at value %ld (ggml %.9g, attnviz "
           "%.9g), by rows at %ld",
           av_dtype_name(q->av), what, av_tensor_row_bytes(&t), row_bytes, d, d >= 0 ? (double)want[d] : 0.0,
           d >= 0 ? (double)got[d] : 0.0, d_rows);
}

/* Random block bytes whose f16 fields are finite values of moderate size. */
static void random_blocks(const qtype *q, uint8_t *blocks, size_t nbytes) {
    for (size_t i = 0; i < nbytes; i++)
        blocks[i] = (uint8_t)rng_next();
    size_t bb = ggml_type_size(q->ggml);
    if (q->n_f16 == 0) { /* F16/BF16: every 16-bit value is a scale */
        for (size_t i = 0; i + 1 < nbytes; i += 2) {
            uint16_t h = q->av == AV_DTYPE_F16 ? av_f32_to_f16(rng_normal()) : av_f32_to_bf16(rng_normal());
            memcpy(blocks + i, &h, 2);
        }
        return;
    }
    for (size_t b = 0; b + bb <= nbytes; b += bb)
        for (int k = 0; k < q->n_f16; k++) {
            uint16_t h = av_f32_to_f16(rng_normal() * 1e-2f);
            memcpy(blocks + b + q->f16_fields[k], &h, 2);
        }
}

static void test_dequant(const qtype *q, const float *x, uint8_t *blocks, float *want, float *got) {
    size_t nbytes = ggml_row_size(q->ggml, COLS) * ROWS;
    if (ggml_quantize_chunk(q->ggml, x, blocks, 0, ROWS, COLS, NULL) != nbytes) {
        result(0, "dequant_%s: ggml_quantize_chunk wrote an unexpected size", av_dtype_name(q->av));
        return;
    }
    compare_dequant(q, blocks, "ggml_quantized", want, got);
    random_blocks(q, blocks, nbytes);
    compare_dequant(q, blocks, "random_bytes", want, got);
}

/* attnviz's quantizer against ggml's reference quantizer (and, for the types llama_model_quantize writes
 * through ggml_quantize_chunk, against that too). */
static void test_quantizer(av_dtype t, void (*ref)(const float *, void *, int64_t), enum ggml_type gt,
                           const float *x, uint8_t *want, uint8_t *got) {
    size_t nbytes = ggml_row_size(gt, COLS) * ROWS;
    ref(x, want, N);
    memset(got, 0xa5, nbytes);
    int rc = av_quantize(t, x, got, N);
    size_t d = 0;
    while (d < nbytes && want[d] == got[d])
        d++;
    uint8_t *chunk = malloc(nbytes);
    int chunk_same = chunk && ggml_quantize_chunk(gt, x, chunk, 0, ROWS, COLS, NULL) == nbytes &&
                     memcmp(chunk, want, nbytes) == 0;
    free(chunk);
    result(rc == 0 && d == nbytes && chunk_same,
           "quantize_%s_vs_ggml_ref: rc %d, first differing byte %zu of %zu "
           "(block %zu); ggml_quantize_chunk equals the reference: %d",
           av_dtype_name(t), rc, d, nbytes, d / ggml_type_size(gt), chunk_same);
}

static void test_half_quantizers(const float *x) {
    uint16_t *want = malloc(sizeof(uint16_t) * N), *got = malloc(sizeof(uint16_t) * N);
    ggml_fp32_to_fp16_row(x, (ggml_fp16_t *)want, N);
    av_quantize(AV_DTYPE_F16, x, got, N);
    result(memcmp(want, got, sizeof(uint16_t) * N) == 0, "quantize_F16_vs_ggml: differs");
    ggml_fp32_to_bf16_row_ref(x, (ggml_bf16_t *)want, N);
    av_quantize(AV_DTYPE_BF16, x, got, N);
    result(memcmp(want, got, sizeof(uint16_t) * N) == 0, "quantize_BF16_vs_ggml_ref: differs");
    free(want);
    free(got);
}

int main(void) {
    float *x = malloc(sizeof(float) * N), *want = malloc(sizeof(float) * N), *got = malloc(sizeof(float) * N);
    uint8_t *blocks = malloc(sizeof(float) * N), *blocks2 = malloc(sizeof(float) * N);
    make_rows(x);
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        test_dequant(&types[i], x, blocks, want, got);
    test_quantizer(AV_DTYPE_Q8_0, quantize_row_q8_0_ref, GGML_TYPE_Q8_0, x, blocks, blocks2);
    test_quantizer(AV_DTYPE_Q4_0, quantize_row_q4_0_ref, GGML_TYPE_Q4_0, x, blocks, blocks2);
    test_quantizer(AV_DTYPE_Q4_K, quantize_row_q4_K_ref, GGML_TYPE_Q4_K, x, blocks, blocks2);
    test_half_quantizers(x);
    free(x), free(want), free(got), free(blocks), free(blocks2);
    ggml_quantize_free();
    return n_failed ? 1 : 0;
}
