/* Importing attention from other tools: .npy parsing (dtypes, byte order, versions), .npz archives built
 * here byte by byte (stored and deflated members, natural member order, CRC and truncation errors),
 * safetensors members (the header checked by io/safetensors.c's parser), and av_trace_import's shape
 * interpretation and validation messages. Files written by real numpy are covered by
 * tests/cli/test_import.sh. */
#include "harness.h"

#include "core/core.h"
#include "io/npy.h"
#include "trace/import.h"

#include <zlib.h>

typedef struct bytes {
    uint8_t *p;
    size_t n;
} bytes;

static void put(bytes *b, const void *s, size_t n) {
    b->p = realloc(b->p, b->n + n);
    memcpy(b->p + b->n, s, n);
    b->n += n;
}
static void put16(bytes *b, unsigned v) {
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    put(b, x, 2);
}
static void put32(bytes *b, uint32_t v) {
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(b, x, 4);
}

/* A version 1.0 .npy image: header dict padded so the data starts at a multiple of 64. */
static bytes npy(const char *descr, const char *shape, const void *data, size_t n, int fortran) {
    char dict[256];
    int len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }", descr,
                       fortran ? "True" : "False", shape);
    int total = 10 + len + 1, pad = (64 - total % 64) % 64;
    bytes b = {0};
    put(&b, "\x93NUMPY\x01\x00", 8);
    put16(&b, (unsigned)(len + pad + 1));
    put(&b, dict, (size_t)len);
    for (int i = 0; i < pad; i++)
        put(&b, " ", 1);
    put(&b, "\n", 1);
    put(&b, data, n);
    return b;
}

static void save(const char *path, const bytes *b) {
    FILE *f = fopen(path, "wb");
    fwrite(b->p, 1, b->n, f);
    fclose(f);
}

static const char *tmp(const char *name) {
    static char buf[8][512];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 512, "%s/%s", h_tmpdir(), name);
    return p;
}

typedef struct member {
    const char *name;
    bytes data;
    int deflate;
} member;

/* A zip archive as numpy's savez writes it (without zip64 extras, which numpy adds only to local headers). */
static bytes zip(const member *m, int n) {
    bytes z = {0}, cd = {0};
    for (int i = 0; i < n; i++) {
        uint32_t crc = (uint32_t)crc32(0, m[i].data.p, (uInt)m[i].data.n), off = (uint32_t)z.n;
        bytes comp = m[i].data;
        uint8_t *cbuf = NULL;
        if (m[i].deflate) {
            z_stream s;
            memset(&s, 0, sizeof s);
            deflateInit2(&s, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
            cbuf = malloc(deflateBound(&s, (uLong)m[i].data.n));
            s.next_in = m[i].data.p;
            s.avail_in = (uInt)m[i].data.n;
            s.next_out = cbuf;
            s.avail_out = (uInt)deflateBound(&s, (uLong)m[i].data.n);
            deflate(&s, Z_FINISH);
            comp = (bytes){cbuf, s.total_out};
            deflateEnd(&s);
        }
        size_t nl = strlen(m[i].name);
        put32(&z, 0x04034b50);
        put16(&z, 20), put16(&z, 0), put16(&z, m[i].deflate ? 8 : 0), put16(&z, 0), put16(&z, 0x21);
        put32(&z, crc), put32(&z, (uint32_t)comp.n), put32(&z, (uint32_t)m[i].data.n);
        put16(&z, (unsigned)nl), put16(&z, 0);
        put(&z, m[i].name, nl);
        put(&z, comp.p, comp.n);
        put32(&cd, 0x02014b50);
        put16(&cd, 20), put16(&cd, 20), put16(&cd, 0), put16(&cd, m[i].deflate ? 8 : 0), put16(&cd, 0),
            put16(&cd, 0x21);
        put32(&cd, crc), put32(&cd, (uint32_t)comp.n), put32(&cd, (uint32_t)m[i].data.n);
        put16(&cd, (unsigned)nl), put16(&cd, 0), put16(&cd, 0), put16(&cd, 0), put16(&cd, 0), put32(&cd, 0);
        put32(&cd, off);
        put(&cd, m[i].name, nl);
        free(cbuf);
    }
    uint32_t cd_off = (uint32_t)z.n;
    put(&z, cd.p, cd.n);
    put32(&z, 0x06054b50);
    put16(&z, 0), put16(&z, 0), put16(&z, (unsigned)n), put16(&z, (unsigned)n);
    put32(&z, (uint32_t)cd.n), put32(&z, cd_off), put16(&z, 0);
    free(cd.p);
    return z;
}

/* Rows of a softmax-like pattern: row q of head h puts weight on key (q + h) % T. */
static void fill_attn(float *a, int L, int H, int T) {
    for (int l = 0; l < L; l++)
        for (int h = 0; h < H; h++)
            for (int q = 0; q < T; q++)
                for (int k = 0; k < T; k++)
                    a[((l * H + h) * T + q) * T + k] = k == (q + h + l) % T ? 0.7f : 0.3f / (T - 1);
}

static void test_npy_dtypes_and_byte_order(void) {
    float f[6] = {0.5f, 0.25f, 0.125f, 1, 0, 2};
    bytes b = npy("<f4", "(2, 3)", f, sizeof f, 0);
    av_array a;
    av_err err = {{0}};
    REQUIREF(av_npy_parse(b.p, b.n, "x.npy", &a, &err) == 0, "%s", err.msg);
    CHECK(a.ndim == 2 && a.shape[0] == 2 && a.shape[1] == 3 && a.numel == 6 && a.dtype == AV_ARRAY_F32);
    for (int i = 0; i < 6; i++)
        CHECK(av_array_get(&a, (size_t)i) == f[i]);
    free(b.p);
    uint8_t be[16];
    double d[2] = {0.75, -3.5};
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 8; k++)
            be[i * 8 + k] = ((uint8_t *)&d[i])[7 - k];
    b = npy(">f8", "(2,)", be, 16, 0);
    REQUIREF(av_npy_parse(b.p, b.n, "be.npy", &a, &err) == 0, "%s", err.msg);
    CHECK(a.big_endian && av_array_get(&a, 0) == 0.75f && av_array_get(&a, 1) == -3.5f);
    free(b.p);
    uint16_t h[2] = {0x3C00, 0x3800}; /* 1.0, 0.5 */
    b = npy("<f2", "(1, 2)", h, 4, 0);
    REQUIREF(av_npy_parse(b.p, b.n, "h.npy", &a, &err) == 0, "%s", err.msg);
    CHECK(av_array_get(&a, 0) == 1.f && av_array_get(&a, 1) == 0.5f);
    free(b.p);
}

static void test_npy_malformed_inputs(void) {
    float f[4] = {0};
    av_array a;
    av_err err = {{0}};
    struct {
        const char *descr, *shape;
        int fortran;
        size_t cut;
        const char *want;
    } cases[] = {
        {"<f4", "(2, 2)", 0, 4, "truncated .npy data"},
        {"<i4", "(2, 2)", 0, 0, "unsupported dtype '<i4'"},
        {"<f4", "(2, 2)", 1, 0, "Fortran-ordered"},
        {"<f4", "(2, 99999999999999999999)", 0, 0, "shape overflows"},
        {"<f4", "(4611686018427387904, 4)", 0, 0, "overflows"},
        {"<f4", "[2, 2]", 0, 0, "expected '('"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        bytes b = npy(cases[i].descr, cases[i].shape, f, sizeof f, cases[i].fortran);
        err.msg[0] = 0;
        CHECKF(av_npy_parse(b.p, b.n - cases[i].cut, "bad.npy", &a, &err) != 0 &&
                   strstr(err.msg, cases[i].want) && strstr(err.msg, "bad.npy"),
               "case %zu: '%s'", i, err.msg);
        free(b.p);
    }
    CHECK(av_npy_parse("\x93NUMPX\x01\x00\x00\x00", 10, "m.npy", &a, &err) != 0 && strstr(err.msg, "magic"));
    CHECK(av_npy_parse("\x93NUMPY\x01\x00\xff\x00{", 11, "h.npy", &a, &err) != 0 &&
          strstr(err.msg, "truncated"));
    for (size_t n = 0; n < 12; n++)
        CHECK(av_npy_parse("\x93NUMPY\x01\x00\x02\x00{}", n, "s.npy", &a, &err) != 0);
}

static void test_npz_stored_deflated_and_order(void) {
    float l[3][2 * 4 * 4];
    float all[3 * 2 * 4 * 4];
    fill_attn(all, 3, 2, 4);
    for (int i = 0; i < 3; i++)
        memcpy(l[i], all + i * 32, sizeof l[i]);
    member m[3] = {{"arr_10.npy", npy("<f4", "(2, 4, 4)", l[2], sizeof l[2], 0), 1},
                   {"arr_2.npy", npy("<f4", "(2, 4, 4)", l[1], sizeof l[1], 0), 0},
                   {"arr_0.npy", npy("<f4", "(2, 4, 4)", l[0], sizeof l[0], 0), 1}};
    bytes z = zip(m, 3);
    save(tmp("a.npz"), &z);
    av_arrays s = {0};
    av_err err = {{0}};
    REQUIREF(av_arrays_add_file(&s, tmp("a.npz"), &err) == 0, "%s", err.msg);
    REQUIRE(s.n == 3);
    CHECK(strcmp(s.items[0].member, "arr_0") == 0 && strcmp(s.items[1].member, "arr_2") == 0 &&
          strcmp(s.items[2].member, "arr_10") == 0);
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 32; k++)
            CHECK(av_array_get(&s.items[i], (size_t)k) == l[i][k]);
    av_arrays_free(&s);
    /* import: three [2, 4, 4] layers in natural order */
    av_import_params p = av_import_default_params();
    const char *in[1] = {tmp("a.npz")};
    p.inputs = in;
    p.n_inputs = 1;
    av_trace *t;
    REQUIREF(av_trace_import(&p, &t, &err) == 0, "%s", err.msg);
    CHECK(av_trace_n_layers(t, AV_ATTN_SELF) == 3 && av_trace_n_tokens(t) == 4);
    av_attn_view v;
    REQUIRE(av_trace_attn(t, AV_ATTN_SELF, 2, &v, &err) == 0);
    CHECK(v.n_heads == 2 && memcmp(v.data, l[2], sizeof l[2]) == 0);
    CHECK(strcmp(av_trace_meta(t, "format"), "attnviz-trace") == 0 && strcmp(av_trace_token(t, 3), "3") == 0);
    av_trace_free(t);
    /* corruption: a flipped byte in a stored member fails its CRC; a cut archive has no end record */
    size_t at = m[0].data.n; /* inside the stored arr_2 member, past arr_10's local header... find it */
    for (size_t i = 0; i + 9 < z.n; i++)
        if (memcmp(z.p + i, "arr_2.npy", 9) == 0) {
            at = i + 9 + 100;
            break;
        }
    z.p[at] ^= 0x40;
    save(tmp("crc.npz"), &z);
    CHECK(av_arrays_add_file(&s, tmp("crc.npz"), &err) != 0 && strstr(err.msg, "CRC") &&
          strstr(err.msg, "arr_2"));
    av_arrays_free(&s);
    z.p[at] ^= 0x40;
    bytes cut = {z.p, z.n - 30};
    save(tmp("cut.npz"), &cut);
    CHECK(av_arrays_add_file(&s, tmp("cut.npz"), &err) != 0 && strstr(err.msg, "end-of-central-directory"));
    av_arrays_free(&s);
    bytes cut2 = {z.p, 200}; /* the end record is gone and data is missing */
    save(tmp("cut2.npz"), &cut2);
    CHECK(av_arrays_add_file(&s, tmp("cut2.npz"), &err) != 0);
    av_arrays_free(&s);
    for (int i = 0; i < 3; i++)
        free(m[i].data.p);
    free(z.p);
}

static void test_import_shapes(void) {
    enum { L = 2, H = 3, T = 5 };
    float a[L * H * T * T];
    fill_attn(a, L, H, T);
    av_err err = {{0}};
    av_trace *t;
    av_import_params p = av_import_default_params();
    /* several [1, H, T, T] files: batch-1 layers */
    bytes b0 = npy("<f4", "(1, 3, 5, 5)", a, sizeof a / 2, 0),
          b1 = npy("<f4", "(1, 3, 5, 5)", a + H * T * T, sizeof a / 2, 0);
    save(tmp("l0.npy"), &b0);
    save(tmp("l1.npy"), &b1);
    const char *two[2] = {tmp("l0.npy"), tmp("l1.npy")};
    p.inputs = two;
    p.n_inputs = 2;
    REQUIREF(av_trace_import(&p, &t, &err) == 0, "%s", err.msg);
    CHECK(av_trace_n_layers(t, AV_ATTN_SELF) == 2);
    av_attn_view v;
    CHECK(av_trace_attn(t, AV_ATTN_SELF, 1, &v, &err) == 0 && v.n_heads == 3 &&
          memcmp(v.data, a + H * T * T, sizeof a / 2) == 0);
    av_trace_free(t);
    /* per-layer arrays with different head counts are refused (issue #19: readers use layer 0's shape) */
    bytes bh = npy("<f4", "(1, 5, 5)", a, sizeof(float) * T * T, 0);
    save(tmp("l1h.npy"), &bh);
    const char *mixed[2] = {tmp("l0.npy"), tmp("l1h.npy")};
    p.inputs = mixed;
    CHECKF(av_trace_import(&p, &t, &err) != 0 &&
               strstr(err.msg, "l1h.npy: 1 heads of 5 x 5 attention, but the first self layer had 3 heads"),
           "%s", err.msg);
    free(bh.p);
    /* one [L, 1, H, T, T] file */
    bytes b5 = npy("<f4", "(2, 1, 3, 5, 5)", a, sizeof a, 0);
    save(tmp("five.npy"), &b5);
    const char *one[1] = {tmp("five.npy")};
    p.inputs = one;
    p.n_inputs = 1;
    REQUIREF(av_trace_import(&p, &t, &err) == 0, "%s", err.msg);
    CHECK(av_trace_n_layers(t, AV_ATTN_SELF) == 2);
    av_trace_free(t);
    /* tokens must match, rows must be distributions, batches are refused */
    FILE *f = fopen(tmp("tok.json"), "w");
    fputs("[\"a\", \"b\", \"c\"]", f);
    fclose(f);
    p.tokens_path = tmp("tok.json");
    CHECK(av_trace_import(&p, &t, &err) != 0 &&
          strstr(err.msg, "5 queries x 5 keys but the tokens give 3 x 3"));
    p.tokens_path = NULL;
    a[H * T * T + 2 * T * T + 3 * T + 1] += 0.25f; /* layer 1, head 2, query 3 */
    free(b5.p);
    b5 = npy("<f4", "(2, 1, 3, 5, 5)", a, sizeof a, 0);
    save(tmp("five.npy"), &b5);
    CHECK(av_trace_import(&p, &t, &err) != 0 &&
          strstr(err.msg, "five.npy (layer 1 of its 2) head 2 query 3: row sums to 1.25"));
    p.check_rows = 0;
    CHECK(av_trace_import(&p, &t, &err) == 0);
    av_trace_free(t);
    p.check_rows = 1;
    float a2[2 * L * H * T * T];
    memcpy(a2, a, sizeof a);
    memcpy(a2 + L * H * T * T, a, sizeof a);
    bytes bb = npy("<f4", "(2, 2, 3, 5, 5)", a2, sizeof a2, 0);
    save(tmp("batch.npy"), &bb);
    one[0] = tmp("batch.npy");
    CHECK(av_trace_import(&p, &t, &err) != 0 && strstr(err.msg, "batch of 2"));
    bytes b6 = npy("<f4", "(1, 1, 1, 1, 5, 5)", a, 100, 0);
    save(tmp("six.npy"), &b6);
    one[0] = tmp("six.npy");
    CHECK(av_trace_import(&p, &t, &err) != 0 && strstr(err.msg, "expected [layers, heads, T, T]"));
    one[0] = tmp("missing.npy");
    CHECK(av_trace_import(&p, &t, &err) != 0 && strstr(err.msg, "missing.npy"));
    free(b0.p), free(b1.p), free(b5.p), free(bb.p), free(b6.p);
}

/* Arrays in memory (what the Python package passes): per-layer [1, H, T, T] F32 and F16, the tokens as a JSON
 * string, kinds from the names; the same checks as files; bad views refused. */
static void test_import_from_memory(void) {
    enum { L = 2, H = 3, T = 5 };
    float a[L * H * T * T];
    uint16_t h16[H * T * T];
    fill_attn(a, L, H, T);
    for (int i = 0; i < H * T * T; i++)
        h16[i] = av_f32_to_f16(a[H * T * T + i]);
    av_import_array arrays[2] = {
        {"attentions.0", {AV_DTYPE_F32, 4, {1, H, T, T}, a, sizeof(float) * H * T * T}},
        {"attentions.1", {AV_DTYPE_F16, 4, {1, H, T, T}, h16, sizeof h16}},
    };
    av_import_params p = av_import_default_params();
    p.arrays = arrays;
    p.n_arrays = 2;
    p.tokens_json = "{\"tokens\": [\"a\", \"b\", \"c\", \"d\", \"e\"], \"metadata\": {\"note\": \"x\"}}";
    av_err err = {{0}};
    av_trace *t;
    REQUIREF(av_trace_import(&p, &t, &err) == 0, "%s", err.msg);
    av_attn_view v;
    CHECK(av_trace_n_layers(t, AV_ATTN_SELF) == 2 && av_trace_n_tokens(t) == 5 &&
          strcmp(av_trace_token(t, 4), "e") == 0);
    CHECK(av_trace_attn(t, AV_ATTN_SELF, 0, &v, &err) == 0 &&
          memcmp(v.data, a, sizeof(float) * H * T * T) == 0);
    CHECK(av_trace_attn(t, AV_ATTN_SELF, 1, &v, &err) == 0 && fabsf(v.data[7] - a[H * T * T + 7]) < 1e-3f);
    CHECK(strcmp(av_trace_meta(t, "note"), "x") == 0);
    av_trace_free(t);
    arrays[0].name = "cross_attentions.0"; /* the name gives the kind; cross needs no square */
    p.n_arrays = 1;
    p.tokens_json = NULL;
    REQUIREF(av_trace_import(&p, &t, &err) == 0, "%s", err.msg);
    CHECK(av_trace_n_layers(t, AV_ATTN_CROSS) == 1 && av_trace_n_layers(t, AV_ATTN_SELF) == 0);
    av_trace_free(t);
    p.tokens_json = "[\"a\", \"b\"";
    CHECK(av_trace_import(&p, &t, &err) != 0 && strstr(err.msg, "tokens JSON: invalid JSON"));
    p.tokens_json = "[\"a\"]";
    p.tokens_path = "x.json";
    CHECK(av_trace_import(&p, &t, &err) != 0 && strstr(err.msg, "not both"));
    p.tokens_json = p.tokens_path = NULL;
    arrays[0].tensor.nbytes -= 4;
    CHECK(av_trace_import(&p, &t, &err) != 0 &&
          strstr(err.msg, "cross_attentions.0: 296 bytes given for 75"));
    arrays[0].tensor.nbytes += 4;
    arrays[0].tensor.dtype = AV_DTYPE_I32;
    CHECK(av_trace_import(&p, &t, &err) != 0 && strstr(err.msg, "expected F32, F16 or BF16"));
    arrays[0].tensor.dtype = AV_DTYPE_F32;
    arrays[0].tensor.shape[1] = -3;
    CHECK(av_trace_import(&p, &t, &err) != 0 && strstr(err.msg, "out of range"));
    arrays[0].tensor.shape[1] = H;
    a[2] += 0.5f; /* head 0 query 0 of the first array */
    CHECK(av_trace_import(&p, &t, &err) != 0 &&
          strstr(err.msg, "cross_attentions.0 head 0 query 0: row sums to 1.5"));
    p.n_arrays = 0;
    CHECK(av_trace_import(&p, &t, &err) != 0 && strstr(err.msg, "no input arrays"));
}

static void test_import_cross_and_image_meta(void) {
    float enc[2 * 4 * 4], cross[2 * 3 * 4];
    fill_attn(enc, 1, 2, 4);
    for (int i = 0; i < 6; i++)
        for (int k = 0; k < 4; k++)
            cross[i * 4 + k] = 0.25f;
    member m[2] = {{"encoder_attentions.npy", npy("<f4", "(2, 4, 4)", enc, sizeof enc, 0), 0},
                   {"cross_attentions.npy", npy("<f4", "(2, 3, 4)", cross, sizeof cross, 0), 1}};
    bytes z = zip(m, 2);
    save(tmp("ed.npz"), &z);
    FILE *f = fopen(tmp("ed.json"), "w");
    fputs("{\"source_tokens\": [\"<s>\", \"Le\", \"chat\", \"\\u00e9\"], \"target_tokens\": [\"<s>\", "
          "\"The\", \"cat\"],"
          " \"model\": \"t5-ish\", \"metadata\": {\"note\": \"hi\", \"format\": \"evil\"}}",
          f);
    fclose(f);
    av_import_params p = av_import_default_params();
    const char *in[1] = {tmp("ed.npz")};
    p.inputs = in;
    p.n_inputs = 1;
    p.tokens_path = tmp("ed.json");
    av_trace *t;
    av_err err = {{0}};
    REQUIREF(av_trace_import(&p, &t, &err) == 0, "%s", err.msg);
    CHECK(av_trace_n_layers(t, AV_ATTN_ENC) == 1 && av_trace_n_layers(t, AV_ATTN_CROSS) == 1 &&
          av_trace_n_layers(t, AV_ATTN_SELF) == 0);
    CHECK(strcmp(av_trace_meta(t, "target_tokens"), "[\"<s>\",\"The\",\"cat\"]") == 0);
    CHECK(strcmp(av_trace_meta(t, "model"), "t5-ish") == 0 && strcmp(av_trace_meta(t, "note"), "hi") == 0);
    CHECK(strcmp(av_trace_meta(t, "format"), "attnviz-trace") == 0);
    CHECK(av_trace_n_tokens(t) == 4 && strcmp(av_trace_token(t, 3), "\xC3\xA9") == 0);
    av_trace_free(t);
    /* swapped token sets no longer fit the cross shape */
    f = fopen(tmp("ed2.json"), "w");
    fputs("{\"source_tokens\": [\"a\", \"b\", \"c\"], \"target_tokens\": [\"a\", \"b\", \"c\", \"d\"]}", f);
    fclose(f);
    p.tokens_path = tmp("ed2.json");
    CHECKF(
        av_trace_import(&p, &t, &err) != 0 &&
            strstr(
                err.msg,
                "ed.npz:cross_attentions: cross attention is 3 queries x 4 keys but the tokens give 4 x 3"),
        "%s", err.msg);
    /* image traces: the patch grid must cover the keys; the image must be a PNG */
    float vit[1 * 5 * 5];
    fill_attn(vit, 1, 1, 5);
    bytes b = npy("<f4", "(1, 5, 5)", vit, sizeof vit, 0);
    save(tmp("vit.npy"), &b);
    in[0] = tmp("vit.npy");
    p.tokens_path = NULL;
    p.patch_grid = "2x2";
    p.prefix_tokens = 1;
    REQUIREF(av_trace_import(&p, &t, &err) == 0, "%s", err.msg);
    CHECK(strcmp(av_trace_meta(t, "patch_grid"), "2x2") == 0 &&
          strcmp(av_trace_meta(t, "prefix_tokens"), "1") == 0);
    av_trace_free(t);
    p.patch_grid = "3x3";
    CHECK(av_trace_import(&p, &t, &err) != 0 &&
          strstr(err.msg, "patch grid 3x3 plus 1 prefix tokens is 10 tokens"));
    p.patch_grid = "2x2";
    p.image_path = tmp("ed.json");
    CHECK(av_trace_import(&p, &t, &err) != 0 && strstr(err.msg, "not a PNG"));
    for (int i = 0; i < 2; i++)
        free(m[i].data.p);
    free(z.p);
    free(b.p);
}

/* A safetensors image: 8-byte little-endian header length, the header text, then data. */
static bytes safetensors(const char *header, const void *data, size_t n) {
    bytes b = {0};
    uint64_t hl = strlen(header);
    uint8_t len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (uint8_t)(hl >> (8 * i));
    put(&b, len, 8);
    put(&b, header, (size_t)hl);
    put(&b, data, n);
    return b;
}

static void test_safetensors_members_and_errors(void) {
    /* F64 attention (a dtype the engine's own reader refuses) and an integer tensor that is skipped */
    double att[4] = {1, 0, 0.25, 0.75};
    uint8_t data[32 + 8];
    memcpy(data, att, 32);
    memset(data + 32, 7, 8);
    bytes b = safetensors("{\"__metadata__\": {\"k\": \"v\"}, \"ids\": {\"dtype\": \"I64\", \"shape\": [1], "
                          "\"data_offsets\": [32, 40]}, \"a\": {\"dtype\": \"F64\", \"shape\": [1, 2, 2], "
                          "\"data_offsets\": [0, 32]}}",
                          data, sizeof data);
    save(tmp("ok.safetensors"), &b);
    free(b.p);
    av_arrays s = {0};
    av_err err = {{0}};
    REQUIREF(av_arrays_add_file(&s, tmp("ok.safetensors"), &err) == 0, "%s", err.msg);
    REQUIRE(s.n == 1);
    CHECK(strcmp(s.items[0].member, "a") == 0 && s.items[0].ndim == 3 && s.items[0].shape[2] == 2);
    CHECK(av_array_get(&s.items[0], 2) == 0.25f && av_array_get(&s.items[0], 3) == 0.75f);
    av_arrays_free(&s);

    static const struct {
        const char *name, *header, *want;
    } bad[] = {
        {"past_end", "{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 64]}}",
         "past the end of the data"},
        {"size", "{\"a\": {\"dtype\": \"F64\", \"shape\": [3], \"data_offsets\": [0, 32]}}",
         "shape needs 24 bytes but data_offsets give 32"},
        {"overflow",
         "{\"a\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296, 4294967296], \"data_offsets\": "
         "[0, "
         "32]}}",
         "shape overflows"},
        {"dup", "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}, \"a\": 1}",
         "not a safetensors file: header is not a JSON object"},
        {"desc", "{\"a\": {\"dtype\": \"F32\", \"shape\": [1]}}", "needs dtype, shape and data_offsets"},
        {"no_float", "{\"a\": {\"dtype\": \"I32\", \"shape\": [1], \"data_offsets\": [0, 4]}}",
         "no float tensors"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bytes f = safetensors(bad[i].header, data, 32);
        char name[64];
        snprintf(name, sizeof name, "bad_%s.safetensors", bad[i].name);
        save(tmp(name), &f);
        free(f.p);
        av_arrays t = {0};
        err.msg[0] = 0;
        CHECKF(av_arrays_add_file(&t, tmp(name), &err) == -1 && strstr(err.msg, bad[i].want), "%s: got '%s'",
               bad[i].name, err.msg);
        av_arrays_free(&t);
    }
    bytes tr = {0};
    put(&tr, "\x10\x00\x00", 3); /* shorter than the length field */
    save(tmp("short.safetensors"), &tr);
    free(tr.p);
    av_arrays t = {0};
    CHECK(av_arrays_add_file(&t, tmp("short.safetensors"), &err) == -1 && strstr(err.msg, "truncated"));
    av_arrays_free(&t);
}

static void test_natural_order(void) {
    CHECK(av_natural_cmp("arr_2", "arr_10") < 0 && av_natural_cmp("arr_10", "arr_2") > 0);
    CHECK(av_natural_cmp("layer_007", "layer_7") == 0 && av_natural_cmp("a", "b") < 0 &&
          av_natural_cmp("a1", "a") > 0);
}

int main(void) {
    RUN(test_npy_dtypes_and_byte_order);
    RUN(test_npy_malformed_inputs);
    RUN(test_npz_stored_deflated_and_order);
    RUN(test_import_shapes);
    RUN(test_import_from_memory);
    RUN(test_import_cross_and_image_meta);
    RUN(test_safetensors_members_and_errors);
    RUN(test_natural_order);
    return h_exit_code();
}
