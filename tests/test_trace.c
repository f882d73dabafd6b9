/* Trace files: round trips in F32 and F16, atomic writes, and malformed traces. */
#include "harness.h"
#include "trace/trace.h"

#include <sys/stat.h>

/* A 2-layer, 2-head trace over 3 tokens with hand-set causal rows. */
static av_trace *make_trace(void) {
    av_trace *t = av_trace_new();
    av_err err = {{0}};
    char **tokens = malloc(3 * sizeof *tokens);
    int32_t *ids = malloc(3 * sizeof *ids);
    const char *words[3] = {"<s>", " caf\xC3\xA9", " \xE6\x97\xA5"};
    for (int i = 0; i < 3; i++) {
        tokens[i] = strdup(words[i]);
        ids[i] = 10 + i;
    }
    av_trace_set_tokens(t, tokens, ids, 3, &err);
    av_trace_set_meta(t, "model", "synthetic", &err);
    for (int l = 0; l < 2; l++) {
        float *a = calloc(2 * 9, sizeof *a);
        const float rows[9] = {1, 0, 0, 0.25f, 0.75f, 0, 0.125f, 0.25f, 0.625f};
        for (int h = 0; h < 2; h++)
            for (int i = 0; i < 9; i++)
                a[h * 9 + i] = rows[i];
        a[9 + 3] = 0.5f, a[9 + 4] = 0.5f; /* head 1 row 1 differs */
        av_trace_add_attn(t, AV_ATTN_SELF, l, 2, 3, 3, a, &err);
    }
    return t;
}

static void test_round_trip_f32_and_f16(void) {
    av_trace *t = make_trace();
    char path[512];
    av_err err = {{0}};
    for (int f16 = 0; f16 < 2; f16++) {
        snprintf(path, sizeof path, "%s/t%d.safetensors", h_tmpdir(), f16);
        t->store_dtype = f16 ? AV_DTYPE_F16 : AV_DTYPE_F32;
        REQUIREF(av_trace_save(t, path, &err) == 0, "%s", err.msg);
        av_trace *u = NULL;
        REQUIREF(av_trace_load(path, &u, &err) == 0, "%s", err.msg);
        CHECK(av_trace_n_tokens(u) == 3 && strcmp(av_trace_token(u, 1), " caf\xC3\xA9") == 0);
        CHECK(av_trace_token_id(u, 2) == 12);
        CHECK(strcmp(av_trace_meta(u, "format"), "attnviz-trace") == 0);
        CHECK(strcmp(av_trace_meta(u, "model"), "synthetic") == 0);
        CHECK(av_trace_n_layers(u, AV_ATTN_SELF) == 2 && av_trace_n_layers(u, AV_ATTN_CROSS) == 0);
        av_attn_view a, b;
        REQUIRE(av_trace_attn(t, AV_ATTN_SELF, 1, &a, &err) == 0 &&
                av_trace_attn(u, AV_ATTN_SELF, 1, &b, &err) == 0);
        CHECK(b.n_heads == 2 && b.n_query == 3 && b.n_key == 3);
        /* all test values are exact in half precision */
        CHECK(h_max_abs_diff(a.data, b.data, 18) == 0.0f);
        CHECK(av_trace_attn(u, AV_ATTN_SELF, 2, &b, &err) == -1 && strstr(err.msg, "out of range"));
        av_trace_free(u);
    }
    struct stat s32, s16;
    snprintf(path, sizeof path, "%s/t0.safetensors", h_tmpdir());
    stat(path, &s32);
    snprintf(path, sizeof path, "%s/t1.safetensors", h_tmpdir());
    stat(path, &s16);
    CHECK(s16.st_size < s32.st_size);
    av_trace_free(t);
}

/* What bindings read: the metadata as one JSON object, and every tensor of the loaded file by position (an
 * in-memory trace has none). */
static void test_meta_json_and_file_tensors(void) {
    av_trace *t = make_trace();
    av_err err = {{0}};
    char path[512], *js = av_trace_meta_json(t);
    REQUIRE(js);
    json_error_t je;
    json_t *m = json_loads(js, 0, &je);
    CHECK(m && strcmp(json_string_value(json_object_get(m, "model")), "synthetic") == 0 &&
          strcmp(json_string_value(json_object_get(m, "token_ids")), "[10,11,12]") == 0);
    json_decref(m);
    av_free(js);
    const char *name;
    av_tensor v;
    CHECK(av_trace_n_file_tensors(t) == 0);
    CHECK(av_trace_file_tensor(t, 0, &name, &v, &err) == -1 && strstr(err.msg, "not loaded from a file"));
    snprintf(path, sizeof path, "%s/files.safetensors", h_tmpdir());
    REQUIREF(av_trace_save(t, path, &err) == 0, "%s", err.msg);
    av_trace *u = NULL;
    REQUIREF(av_trace_load(path, &u, &err) == 0, "%s", err.msg);
    REQUIRE(av_trace_n_file_tensors(u) == 2);
    av_attn_view a;
    REQUIRE(av_trace_attn(u, AV_ATTN_SELF, 1, &a, &err) == 0);
    int found = 0;
    for (int i = 0; i < 2; i++) {
        REQUIRE(av_trace_file_tensor(u, i, &name, &v, &err) == 0);
        if (strcmp(name, "attn.self.1") == 0)
            found =
                v.dtype == AV_DTYPE_F32 && v.ndim == 3 && v.shape[0] == 2 && v.data == (const void *)a.data;
    }
    CHECK(found); /* the view is the mapped file itself, as av_trace_attn's */
    CHECK(av_trace_file_tensor(u, 2, &name, &v, &err) == -1 && strstr(err.msg, "tensors 0..1"));
    av_trace_free(u);
    av_trace_free(t);
}

static void test_head_selection(void) {
    av_trace *t = make_trace();
    av_attn_view v;
    av_err err = {{0}};
    float out[9];
    REQUIRE(av_trace_attn(t, AV_ATTN_SELF, 0, &v, &err) == 0);
    REQUIRE(av_attn_select_heads(&v, "mean", out, &err) == 0);
    CHECK(fabsf(out[3] - 0.375f) < 1e-7f && fabsf(out[4] - 0.625f) < 1e-7f);
    REQUIRE(av_attn_select_heads(&v, "max", out, &err) == 0);
    CHECK(out[3] == 0.5f && out[4] == 0.75f);
    REQUIRE(av_attn_select_heads(&v, "1", out, &err) == 0);
    CHECK(out[3] == 0.5f);
    CHECK(av_attn_select_heads(&v, "2", out, &err) == -1 && strstr(err.msg, "0..1"));
    CHECK(av_attn_select_heads(&v, "sum", out, &err) == -1);
    av_trace_free(t);
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *fp = fopen(path, "wb");
    fwrite(data, 1, n, fp);
    fclose(fp);
}

static void test_malformed_traces_give_clear_errors(void) {
    av_trace *t = make_trace();
    char good[512], bad[512];
    av_err err = {{0}};
    snprintf(good, sizeof good, "%s/good.safetensors", h_tmpdir());
    REQUIRE(av_trace_save(t, good, &err) == 0);
    av_trace_free(t);
    char *data;
    size_t n;
    REQUIRE(av_file_read_all(good, 1 << 20, &data, &n, &err) == 0);
    snprintf(bad, sizeof bad, "%s/bad.safetensors", h_tmpdir());
    struct {
        size_t len;
        const char *expect;
    } cases[] = {{n - 10, "past the end"}, {20, "header length"}, {5, "truncated"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_bytes(bad, data, cases[i].len);
        av_trace *u = NULL;
        CHECKF(av_trace_load(bad, &u, &err) == -1 && strstr(err.msg, cases[i].expect), "case %zu: %s", i,
               err.msg);
    }
    /* a safetensors file that is not a trace */
    av_st_writer w;
    av_st_writer_init(&w);
    float x[4] = {0};
    int64_t shape[1] = {4};
    av_st_writer_add(&w, "x", AV_DTYPE_F32, AV_DTYPE_F32, 1, shape, x, &err);
    REQUIRE(av_st_writer_save(&w, bad, &err) == 0);
    av_st_writer_free(&w);
    av_trace *u = NULL;
    CHECKF(av_trace_load(bad, &u, &err) == -1 && strstr(err.msg, "not an attnviz trace"), "%s", err.msg);
    /* header JSON corrupted */
    memcpy(data + 8, "{{{{", 4);
    write_bytes(bad, data, n);
    CHECK(av_trace_load(bad, &u, &err) == -1 && strstr(err.msg, "not a safetensors file"));
    CHECK(av_trace_load("/nonexistent/x.safetensors", &u, &err) == -1 && strstr(err.msg, "No such file"));
    free(data);
}

/* A trace file with the given attention tensors ("attn.self.0" [H, 3, 3] F16...) over 3 tokens. */
static void write_attn_file(const char *path, int n, const char *const *names, const int *heads) {
    av_st_writer w;
    av_err err = {{0}};
    av_st_writer_init(&w);
    av_st_writer_meta(&w, "format", AV_TRACE_FORMAT, &err);
    av_st_writer_meta(&w, "tokens", "[\"a\",\"b\",\"c\"]", &err);
    static float data[64 * 9]; /* zeros: the shapes are what is checked */
    for (int i = 0; i < n; i++) {
        int64_t shape[3] = {heads[i], 3, 3};
        av_st_writer_add(&w, names[i], AV_DTYPE_F32, AV_DTYPE_F16, 3, shape, data, &err);
    }
    av_st_writer_save(&w, path, &err);
    av_st_writer_free(&w);
}

/* Issue #19: layer 0 with 64 heads and layer 1 with 1 head was accepted; rows of layer 1's "head 7" were then
 * read from past its end (heap memory served as attention). Every layer of a kind must have one shape, each
 * layer appears once and none is missing; builders in memory (capture, import) are held to the same rule. */
static void test_mixed_layer_shapes_refused(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/mixed.safetensors", h_tmpdir());
    static const char *const two[2] = {"attn.self.0", "attn.self.1"};
    static const char *const gap[2] = {"attn.self.0", "attn.self.2"};
    static const char *const dup[3] = {"attn.self.0", "attn.self.1", "attn.self.01"};
    static const char *const kinds[3] = {"attn.cross.0", "attn.self.0", "attn.cross.1"};
    struct {
        int n;
        const char *const *names;
        int heads[3];
        const char *expect; /* NULL: loads */
    } cases[] = {
        {2, two, {64, 1}, "'attn.self.1' is [1, 3, 3] but 'attn.self.0' is [64, 3, 3]"},
        {2, two, {1, 64}, "'attn.self.1' is [64, 3, 3] but 'attn.self.0' is [1, 3, 3]"},
        {2, gap, {2, 2}, "'attn.self.2' follows a missing layer"},
        {3, dup, {2, 2, 2}, "appears twice"},
        {3, kinds, {2, 4, 3}, "'attn.cross.1' is [3, 3, 3] but 'attn.cross.0' is [2, 3, 3]"},
        {3, kinds, {2, 4, 2}, NULL}, /* kinds differ from each other: fine */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_attn_file(path, cases[i].n, cases[i].names, cases[i].heads);
        av_trace *t = NULL;
        av_err err = {{0}};
        int rc = av_trace_load(path, &t, &err);
        if (cases[i].expect)
            CHECKF(rc == -1 && strstr(err.msg, cases[i].expect), "case %zu: %s", i, rc ? err.msg : "loaded");
        else
            CHECKF(rc == 0 && av_trace_n_heads(t, AV_ATTN_CROSS) == 2 &&
                       av_trace_n_heads(t, AV_ATTN_SELF) == 4,
                   "case %zu: %s", i, err.msg);
        av_trace_free(t);
    }
    /* in memory: av_trace_add_attn refuses a layer unlike the kind's others, and keeps no data */
    av_trace *t = make_trace(); /* 2 layers of [2, 3, 3] */
    av_err err = {{0}};
    float *a = calloc(9, sizeof *a);
    CHECKF(av_trace_add_attn(t, AV_ATTN_SELF, 2, 1, 3, 3, a, &err) == -1 && strstr(err.msg, "same heads"),
           "%s", err.msg);
    CHECK(av_trace_n_layers(t, AV_ATTN_SELF) == 2);
    float row[3];
    CHECK(av_trace_attn_row(t, AV_ATTN_SELF, 1, 1, 2, row, &err) == 0 && fabsf(row[2] - 0.625f) < 1e-6f);
    av_trace_free(t);
}

static void test_failed_save_keeps_existing_file(void) {
    av_trace *t = make_trace();
    char path[512];
    av_err err = {{0}};
    snprintf(path, sizeof path, "%s/keep.safetensors", h_tmpdir());
    write_bytes(path, "precious", 8);
    /* a tensor whose dtype cannot be written fails before anything replaces the file */
    t->store_dtype = AV_DTYPE_Q8_0;
    CHECK(av_trace_save(t, path, &err) == -1);
    char *data;
    size_t n;
    REQUIRE(av_file_read_all(path, 100, &data, &n, &err) == 0);
    CHECK(n == 8 && memcmp(data, "precious", 8) == 0);
    free(data);
    /* no temp files left behind */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls %s | grep -c tmp > /dev/null", h_tmpdir());
    CHECK(system(cmd) != 0);
    /* unwritable directory */
    CHECK(av_trace_save(t, "/nonexistent/dir/x.safetensors", &err) == -1 && strstr(err.msg, "cannot write"));
    av_trace_free(t);
}

int main(void) {
    RUN(test_round_trip_f32_and_f16);
    RUN(test_meta_json_and_file_tensors);
    RUN(test_head_selection);
    RUN(test_malformed_traces_give_clear_errors);
    RUN(test_failed_save_keeps_existing_file);
    RUN(test_mixed_layer_shapes_refused);
    return h_exit_code();
}
