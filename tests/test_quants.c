/* GGUF weight types without llama.cpp: the type table, values of hand-packed blocks (worked out from the
 * formats in src/core/dtype.h), quantizer error bounds, every matmul path on quantized weights against double
 * precision, row views, and the writers converting between types. Bit-exactness against ggml itself is
 * tests/cli/test_llamacpp_quants.sh. */
#include "harness.h"
#include "io/gguf.h"
#include "io/io.h"
#include "kernels/kernels.h"
#include "model/block.h"

static void test_type_table(void) {
    const struct {
        av_dtype t;
        const char *name;
        int ggml, block;
        size_t bytes;
    } want[] = {{AV_DTYPE_F32, "F32", 0, 1, 4},           {AV_DTYPE_F16, "F16", 1, 1, 2},
                {AV_DTYPE_BF16, "BF16", 30, 1, 2},        {AV_DTYPE_Q4_0, "Q4_0", 2, 32, 18},
                {AV_DTYPE_Q4_1, "Q4_1", 3, 32, 20},       {AV_DTYPE_Q5_0, "Q5_0", 6, 32, 22},
                {AV_DTYPE_Q5_1, "Q5_1", 7, 32, 24},       {AV_DTYPE_Q8_0, "Q8_0", 8, 32, 34},
                {AV_DTYPE_Q2_K, "Q2_K", 10, 256, 84},     {AV_DTYPE_Q3_K, "Q3_K", 11, 256, 110},
                {AV_DTYPE_Q4_K, "Q4_K", 12, 256, 144},    {AV_DTYPE_Q5_K, "Q5_K", 13, 256, 176},
                {AV_DTYPE_Q6_K, "Q6_K", 14, 256, 210},    {AV_DTYPE_IQ4_NL, "IQ4_NL", 20, 32, 18},
                {AV_DTYPE_IQ4_XS, "IQ4_XS", 23, 256, 136}}; /* ggml's type_traits for these types */
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const av_dtype_traits *tr = av_dtype_get_traits(want[i].t);
        av_dtype back, parsed;
        size_t row;
        CHECKF(tr && strcmp(tr->name, want[i].name) == 0 && tr->ggml_type == want[i].ggml &&
                   tr->block == want[i].block && tr->block_bytes == want[i].bytes,
               "%s: table row differs from ggml's", want[i].name);
        CHECKF(av_dtype_from_ggml((uint32_t)want[i].ggml, &back) == 0 && back == want[i].t, "%s: GGUF id",
               want[i].name);
        CHECKF(av_dtype_parse(want[i].name, &parsed) == 0 && parsed == want[i].t, "%s: parse", want[i].name);
        CHECKF(av_dtype_row_bytes(want[i].t, 2 * 256, &row) && row == 512 / want[i].block * want[i].bytes,
               "%s: row bytes", want[i].name);
        CHECKF(av_dtype_is_weight(want[i].t) && av_dtype_is_quantized(want[i].t) == (want[i].block > 1),
               "%s: kind", want[i].name);
    }
    for (int t = 0; t < AV_DTYPE_COUNT; t++)
        CHECKF(av_dtype_get_traits((av_dtype)t)->name, "type %d has no name", t);
    size_t row;
    av_dtype t;
    CHECK(!av_dtype_row_bytes(AV_DTYPE_Q4_K, 100, &row));             /* not whole super-blocks */
    CHECK(!av_dtype_row_bytes(AV_DTYPE_Q4_0, -32, &row));             /* negative */
    CHECK(!av_dtype_row_bytes(AV_DTYPE_F32, (int64_t)1 << 62, &row)); /* 2^64 bytes: overflows */
    CHECK(av_dtype_parse("q4_k", &t) == 0 && t == AV_DTYPE_Q4_K && av_dtype_parse("Q9_K", &t) == -1);
    CHECK(av_dtype_from_ggml(16, &t) == -1 && av_dtype_from_ggml(1u << 31, &t) == -1); /* IQ2_XXS, junk */
    CHECK(strcmp(av_dtype_name(AV_DTYPE_COUNT), "?") == 0);
    av_tensor v = {AV_DTYPE_Q5_K, 2, {3, 768, 0, 0}, NULL, 0};
    CHECK(av_tensor_row_bytes(&v) == 3 * 176);
    v.shape[1] = 700;
    CHECK(av_tensor_row_bytes(&v) == 0);
}

/* Dequantizes one block (n values) of type t and checks value i. */
static void check_value(av_dtype t, const void *block, int n, int i, float want) {
    float y[256];
    av_dequantize(t, block, y, n);
    CHECKF(y[i] == want, "%s value %d: %.9g, expected %.9g", av_dtype_name(t), i, (double)y[i], (double)want);
}

/* One value per type from hand-packed bytes: scale fields, nibble/bit positions and packed sub-block scales.
 */
static void test_known_values(void) {
    av_block_q4_0 q40 = {av_f32_to_f16(0.5f),
                         {0x3a}}; /* byte 0: low nibble 10 (value 0), high 3 (value 16) */
    check_value(AV_DTYPE_Q4_0, &q40, 32, 0, 0.5f * (10 - 8));
    check_value(AV_DTYPE_Q4_0, &q40, 32, 16, 0.5f * (3 - 8));
    av_block_q5_1 q51 = {av_f32_to_f16(0.5f), av_f32_to_f16(-1.0f), {0, 0, 0x10, 0}, {0}}; /* qh bit 20 */
    q51.qs[4] = 0x30; /* value 20 = high nibble of byte 4, plus 16 from its fifth bit */
    check_value(AV_DTYPE_Q5_1, &q51, 32, 20, 0.5f * 19 - 1.0f);
    check_value(AV_DTYPE_Q5_1, &q51, 32, 4, -1.0f);
    av_block_q8_0 q80 = {av_f32_to_f16(0.25f), {0}};
    q80.qs[5] = -7;
    check_value(AV_DTYPE_Q8_0, &q80, 32, 5, -1.75f);
    av_block_q2_k q2 = {{0}, {0}, av_f32_to_f16(0.5f), av_f32_to_f16(0.25f)};
    q2.scales[2] = 0x53; /* values 32..47: scale 3, min 5; value 35 is bits 2-3 of qs[3] */
    q2.qs[3] = 0x0c;
    check_value(AV_DTYPE_Q2_K, &q2, 256, 35, 0.5f * 3 * 3 - 0.25f * 5);
    av_block_q3_k q3 = {{0}, {0}, {0}, av_f32_to_f16(0.25f)};
    q3.scales[2] = 0x07; /* scale 2: low bits 7, high bits (scales[10] & 3) = 2 -> 39 - 32 = 7 */
    q3.scales[10] = 0x02;
    q3.qs[3] = 0x08; /* value 35: bits 2-3 of qs[3] = 2; hmask bit 1 of byte 3 clear: minus 4 */
    check_value(AV_DTYPE_Q3_K, &q3, 256, 35, 0.25f * 7 * (2 - 4));
    av_block_q4_k q4 = {av_f32_to_f16(1.0f), av_f32_to_f16(0.5f), {0}, {0}};
    q4.scales[0] = 2, q4.scales[4] = 1;                            /* sub-block 0: scale 2, min 1 */
    q4.scales[9] = 0x25, q4.scales[1] = 0x80, q4.scales[5] = 0xc0; /* sub-block 5: scale 37, min 50 */
    q4.qs[0] = 0x03;                                               /* value 0 */
    q4.qs[64 + 7] = 0xb0; /* value 167: high nibble, second half of bytes 64..95 */
    check_value(AV_DTYPE_Q4_K, &q4, 256, 0, 1.0f * 2 * 3 - 0.5f * 1);
    check_value(AV_DTYPE_Q4_K, &q4, 256, 167, 1.0f * 37 * 11 - 0.5f * 50);
    av_block_q5_k q5 = {av_f32_to_f16(1.0f), av_f32_to_f16(0.5f), {0}, {0}, {0}};
    q5.scales[1] = 4, q5.scales[5] = 3; /* sub-block 1 (values 32..63): scale 4, min 3 */
    q5.qs[2] = 0x90, q5.qh[2] = 0x02;   /* value 34: high nibble 9, fifth bit from bit 1 of qh[2] */
    check_value(AV_DTYPE_Q5_K, &q5, 256, 34, 1.0f * 4 * 25 - 0.5f * 3);
    av_block_q6_k q6 = {{0}, {0}, {0}, av_f32_to_f16(0.125f)};
    q6.scales[2] = -3;
    q6.ql[32] = 0x05, q6.qh[0] = 0x08; /* value 32: low nibble of ql[32], high bits 2-3 of qh[0] -> 37 - 32 */
    check_value(AV_DTYPE_Q6_K, &q6, 256, 32, 0.125f * -3 * 5);
    av_block_iq4_nl nl = {av_f32_to_f16(0.5f), {0}};
    nl.qs[1] = 0xf0; /* value 17: grid[15] = 113 */
    check_value(AV_DTYPE_IQ4_NL, &nl, 32, 17, 0.5f * 113);
    check_value(AV_DTYPE_IQ4_NL, &nl, 32, 0, 0.5f * -127);
    av_block_iq4_xs xs = {
        av_f32_to_f16(0.5f), 2 << 6, {0, 0x80, 0, 0}, {0}}; /* sub-block 3: scale 8 | 2 << 4 */
    xs.qs[48 + 1] = 0xf0;                                   /* value 96 + 17 */
    check_value(AV_DTYPE_IQ4_XS, &xs, 256, 113, 0.5f * (40 - 32) * 113);
}

/* x: (n) values of several magnitudes with outliers. */
static void fill(float *x, int n, unsigned seed) {
    for (int i = 0; i < n; i++) {
        float u = (float)rand_r(&seed) / RAND_MAX - 0.5f;
        x[i] = u * (i % 97 == 5 ? 20.0f : 1.0f) * powf(10.0f, (float)((i / 256) % 3) - 1.0f);
    }
}

/* Quantize -> dequantize stays within each format's rounding: Q8_0 half a step (d = amax/127), Q4_0 one step
 * (d = max/-8; the opposite extreme clamps to 7), Q4_K within 1/10 of the block's RMS for these values. */
static void test_quantizer_error_bounds(void) {
    enum { N = 4096 };
    float *x = malloc(sizeof(float) * N), *y = malloc(sizeof(float) * N);
    uint8_t *q = malloc(sizeof(float) * N);
    fill(x, N, 7);
    const av_dtype types[] = {AV_DTYPE_Q8_0, AV_DTYPE_Q4_0, AV_DTYPE_Q4_K};
    for (int k = 0; k < 3; k++) {
        REQUIRE(av_quantize(types[k], x, q, N) == 0);
        av_dequantize(types[k], q, y, N);
        int block = av_dtype_block_size(types[k]), bad = 0;
        for (int b = 0; b < N / block; b++) {
            double amax = 0, ss = 0, err2 = 0, worst = 0;
            for (int i = b * block; i < (b + 1) * block; i++) {
                amax = fmax(amax, fabs(x[i]));
                ss += (double)x[i] * x[i];
                err2 += ((double)y[i] - x[i]) * ((double)y[i] - x[i]);
                worst = fmax(worst, fabs((double)y[i] - x[i]));
            }
            double bound = types[k] == AV_DTYPE_Q8_0   ? amax / 127 * 0.51 + amax * 1e-3
                           : types[k] == AV_DTYPE_Q4_0 ? amax / 8 * 1.01
                                                       : 0.1 * sqrt(ss / block);
            bad += (types[k] == AV_DTYPE_Q4_K ? sqrt(err2 / block) : worst) > bound;
        }
        CHECKF(bad == 0, "%s: %d blocks beyond the bound", av_dtype_name(types[k]), bad);
    }
    CHECK(av_quantize(AV_DTYPE_Q6_K, x, q, N) == -1 && av_quantize(AV_DTYPE_Q4_K, x, q, 100) == -1);
    free(x), free(y), free(q);
}

/* av_matmul on Q4_K and Q4_0 weights, every path (matrix-vector for few tokens, dequantize + sgemm with a
 * scratch, the AMX kernel where present), against double precision on the dequantized weights: within 2^-16
 * of sum |x w| per output. Also row views (av_tensor_rows) of the quantized matrix. */
static void test_matmul_quantized(void) {
    enum { IN = 512, OUT = 48, NMAX = 40 };
    const av_dtype types[] = {AV_DTYPE_Q4_K, AV_DTYPE_Q4_0};
    float *wf = malloc(sizeof(float) * OUT * IN), *x = malloc(sizeof(float) * NMAX * IN);
    float *y = malloc(sizeof(float) * NMAX * OUT), *scratch = malloc(sizeof(float) * OUT * IN);
    uint8_t *wq = malloc(sizeof(float) * OUT * IN);
    fill(x, NMAX * IN, 3);
    for (int ti = 0; ti < 2; ti++) {
        fill(wf, OUT * IN, 11 + (unsigned)ti);
        REQUIRE(av_quantize(types[ti], wf, wq, OUT * IN) == 0);
        size_t row;
        REQUIRE(av_dtype_row_bytes(types[ti], IN, &row));
        av_tensor w = {types[ti], 2, {OUT, IN, 0, 0}, wq, row * OUT};
        av_dequantize_rows(&w, 0, OUT, wf); /* the exact weights */
        const int ns[] = {1, 5, 12, 40};
        for (int k = 0; k < 4; k++) {
            int n = ns[k];
            av_matmul(y, x, &w, n, k == 2 ? scratch : (k == 3 ? scratch : NULL), 2);
            double worst = 0;
            for (int r = 0; r < n; r++)
                for (int o = 0; o < OUT; o++) {
                    double acc = 0, mag = 0;
                    for (int i = 0; i < IN; i++) {
                        double p = (double)x[r * IN + i] * wf[o * IN + i];
                        acc += p, mag += fabs(p);
                    }
                    worst = fmax(worst, fabs(y[r * OUT + o] - acc) / (mag + 1e-30));
                }
            CHECKF(worst <= 1.0 / 65536, "%s, %d tokens: error %.3g of sum |x w|", av_dtype_name(types[ti]),
                   n, worst);
        }
        av_tensor mid = av_tensor_rows(&w, 16, 16); /* rows 16..31, as a fused q/k/v split makes them */
        float part[16 * IN];
        av_dequantize_rows(&mid, 0, 16, part);
        CHECKF(mid.nbytes == 16 * row && memcmp(part, wf + 16 * IN, sizeof part) == 0, "%s: row view",
               av_dtype_name(types[ti]));
    }
    free(wf), free(x), free(y), free(scratch), free(wq);
}

/* GGUF writer: F32 -> Q4_K/Q4_0/Q8_0 as av_quantize writes them; Q4_K -> Q8_0 and F16 through f32 by rows;
 * the reader gives back the type, size and bytes. Safetensors writer: Q4_K -> F32. */
static void test_writers_convert(void) {
    enum { ROWS = 300, COLS = 512 }; /* several conversion chunks */
    float *x = malloc(sizeof(float) * ROWS * COLS), *y = malloc(sizeof(float) * ROWS * COLS);
    uint8_t *q4k = malloc(sizeof(float) * ROWS * COLS), *other = malloc(sizeof(float) * ROWS * COLS);
    fill(x, ROWS * COLS, 5);
    REQUIRE(av_quantize(AV_DTYPE_Q4_K, x, q4k, ROWS * COLS) == 0);
    av_dequantize(AV_DTYPE_Q4_K, q4k, y, ROWS * COLS); /* what a Q4_K source holds */
    char path[512];
    snprintf(path, sizeof path, "%s/convert.gguf", h_tmpdir());
    av_gguf_writer w;
    av_err err = {{0}};
    av_gguf_writer_init(&w);
    w.codec = &av_quant_codec; /* kernels/ converts the quantized types for io/ */
    const int64_t shape[2] = {ROWS, COLS};
    const struct {
        const char *name;
        av_dtype src, dst;
        const void *data;
        const float *via; /* f32 the written bytes come from */
    } ts[] = {{"a", AV_DTYPE_F32, AV_DTYPE_Q4_K, x, x},
              {"b", AV_DTYPE_F32, AV_DTYPE_Q4_0, x, x},
              {"c", AV_DTYPE_Q4_K, AV_DTYPE_Q8_0, q4k, y},
              {"d", AV_DTYPE_Q4_K, AV_DTYPE_F16, q4k, y},
              {"e", AV_DTYPE_Q4_K, AV_DTYPE_Q4_K, q4k, y}};
    for (int i = 0; i < 5; i++)
        REQUIREF(av_gguf_writer_tensor(&w, ts[i].name, ts[i].src, ts[i].dst, 2, shape, ts[i].data, &err) == 0,
                 "%s", err.msg);
    CHECK(av_gguf_writer_tensor(&w, "bad", AV_DTYPE_F32, AV_DTYPE_Q6_K, 2, shape, x, &err) == -1);
    const int64_t odd[2] = {2, 100};
    CHECK(av_gguf_writer_tensor(&w, "odd", AV_DTYPE_F32, AV_DTYPE_Q4_K, 2, odd, x, &err) == -1 &&
          strstr(err.msg, "multiple of 256"));
    REQUIREF(av_gguf_writer_save(&w, path, &err) == 0, "%s", err.msg);
    av_gguf_writer_free(&w);
    av_gguf g;
    REQUIREF(av_gguf_open(path, &g, &err) == 0, "%s", err.msg);
    for (int i = 0; i < 5; i++) {
        const av_gguf_tensor_info *ti = av_gguf_find_tensor(&g, ts[i].name);
        REQUIRE(ti);
        size_t nbytes;
        av_dtype_nbytes(ts[i].dst, ROWS * COLS, &nbytes);
        if (ts[i].src == ts[i].dst)
            memcpy(other, ts[i].data, nbytes); /* copied as stored */
        else
            REQUIRE(av_quantize(ts[i].dst, ts[i].via, other, ROWS * COLS) == 0);
        CHECKF(ti->t.dtype == ts[i].dst && ti->t.nbytes == nbytes && memcmp(ti->t.data, other, nbytes) == 0,
               "tensor %s (%s -> %s): type, size or bytes differ", ts[i].name, av_dtype_name(ts[i].src),
               av_dtype_name(ts[i].dst));
    }
    av_gguf_close(&g);
    snprintf(path, sizeof path, "%s/convert.safetensors", h_tmpdir());
    av_st_writer sw;
    av_st_writer_init(&sw);
    sw.codec = &av_quant_codec;
    REQUIREF(av_st_writer_add(&sw, "w", AV_DTYPE_Q4_K, AV_DTYPE_F32, 2, shape, q4k, &err) == 0, "%s",
             err.msg);
    REQUIREF(av_st_writer_save(&sw, path, &err) == 0, "%s", err.msg);
    av_st_writer_free(&sw);
    av_safetensors st;
    REQUIREF(av_st_open(path, &st, &err) == 0, "%s", err.msg);
    const av_tensor *t = av_st_find(&st, "w");
    CHECK(t && t->dtype == AV_DTYPE_F32 && memcmp(t->data, y, sizeof(float) * ROWS * COLS) == 0);
    av_st_close(&st);
    unlink(path);
    snprintf(path, sizeof path, "%s/convert.gguf", h_tmpdir());
    unlink(path);
    rmdir(h_tmpdir());
    free(x), free(y), free(q4k), free(other);
}

int main(void) {
    RUN(test_type_table);
    RUN(test_known_values);
    RUN(test_quantizer_error_bounds);
    RUN(test_matmul_quantized);
    RUN(test_writers_convert);
    return h_exit_code();
}
