/* The real ViT-Tiny (../shared/models/vit-tiny) against the independent PyTorch reference on the input
 * PyTorch users give it (scripts/ref_vit.py: timm's transform on PIL,
 * tests/fixtures/vit_tiny_{chelsea,rocket}. safetensors): the network input from the PNG and the JPEG equal
 * to PIL's value for value, the attention and logits of attnviz run on the image files themselves within
 * 1e-4, the predicted class, the trace layout (patch grid, [CLS] prefix) and clear errors on bad images. More
 * sizes and formats: tests/cli/test_image_pil.sh. */
#include "harness.h"
#include "io/image.h"
#include "io/io.h"
#include "model/model.h"

static const char *const k_images[2] = {"chelsea.png", "rocket.jpg"};
static const char *const k_fixtures[2] = {"tests/fixtures/vit_tiny_chelsea.safetensors",
                                          "tests/fixtures/vit_tiny_rocket.safetensors"};

/* Every class logit of pixels through the forward pass alone. */
static int vit_logits(const av_model *m, const float *pixels, float *logits, av_err *err) {
    av_state *s = NULL;
    av_pass p = {.logits = logits};
    int rc = av_state_new(m, 0, m->max_seq_len, 0, &s, err) || av_forward_pixels(m, s, pixels, &p, err);
    av_state_free(s);
    return rc ? -1 : 0;
}
static av_model *load_vit(void) {
    char path[4096];
    if (!h_shared_file(path, sizeof path, "models/vit-tiny/model.safetensors")) return NULL;
    *strrchr(path, '/') = 0;
    av_model *m = NULL;
    av_err err = {{0}};
    if (av_model_load(path, NULL, &m, &err)) {
        fprintf(stderr, "load failed: %s\n", err.msg);
        return NULL;
    }
    return m;
}

static void test_preprocessing_equals_pil(void) {
    av_model *m = load_vit();
    if (!m) SKIP("../shared/models/vit-tiny not found");
    for (int i = 0; i < 2; i++) {
        char img[4096];
        if (!h_shared_file(img, sizeof img, i ? "images/rocket.jpg" : "images/chelsea.png"))
            SKIP("../shared/images not found");
        av_safetensors ref;
        av_err err = {{0}};
        REQUIREF(av_st_open(k_fixtures[i], &ref, &err) == 0, "%s", err.msg);
        float *px = NULL;
        int h = 0, w = 0;
        REQUIREF(av_image_preprocess(m, img, &px, &h, &w, &err) == 0, "%s", err.msg);
        REQUIRE(h == 224 && w == 224);
        const av_tensor *pp = av_st_find(&ref, "pixels_pil");
        REQUIRE(pp && pp->dtype == AV_DTYPE_F32 && av_tensor_numel(pp) == 3 * 224 * 224);
        float d = h_max_abs_diff(px, pp->data, 3 * 224 * 224);
        printf("# %s: max |C - PIL pipeline| = %g over the 3 x 224 x 224 network input\n", k_images[i], d);
        CHECKF(d == 0, "%s: the network input differs from PIL's by %g", k_images[i], d);
        free(px);
        av_st_close(&ref);
    }
    av_model_free(m);
}

/* attnviz on the image file against PyTorch on PIL's input: every [CLS] row, full layers where stored, the
 * logits and the top-5 probabilities. */
static void compare_with_reference(av_model *m, const char *img, const char *fixture, const char *label) {
    av_safetensors ref;
    av_err err = {{0}};
    REQUIREF(av_st_open(fixture, &ref, &err) == 0, "%s", err.msg);
    const av_tensor *logits = av_st_find(&ref, "logits"), *cls = av_st_find(&ref, "attn_cls");
    REQUIRE(logits && cls && cls->shape[0] == 12);
    av_trace *t = NULL;
    av_class_score top[5];
    REQUIREF(av_trace_from_image(m, img, NULL, &t, top, 5, &err) == 0, "%s", err.msg);
    REQUIRE(av_trace_n_tokens(t) == 197 && av_trace_n_layers(t, AV_ATTN_SELF) == 12);
    float worst = 0, worst_cls = 0;
    for (int l = 0; l < 12; l++) {
        av_attn_view v;
        REQUIRE(av_trace_attn(t, AV_ATTN_SELF, l, &v, &err) == 0);
        REQUIRE(v.n_heads == 3 && v.n_query == 197 && v.n_key == 197);
        for (int h = 0; h < 3; h++) { /* the [CLS] row of every layer and head */
            float d = h_max_abs_diff(v.data + (size_t)h * 197 * 197,
                                     (const float *)cls->data + (size_t)(l * 3 + h) * 197, 197);
            worst_cls = d > worst_cls ? d : worst_cls;
        }
        char name[32];
        snprintf(name, sizeof name, "attn.%d", l);
        const av_tensor *full = av_st_find(&ref, name);
        if (!full) continue;
        float d = h_max_abs_diff(v.data, full->data, 3 * 197 * 197);
        worst = d > worst ? d : worst;
        CHECKF(d <= 1e-4f, "%s layer %d: attention differs by %g", label, l, d);
    }
    CHECKF(worst_cls <= 1e-4f, "%s: [CLS] attention rows differ by %g", label, worst_cls);
    const float *lg = logits->data;
    double mx = lg[0], sum = 0;
    for (int i = 1; i < 1000; i++)
        mx = lg[i] > mx ? lg[i] : mx;
    for (int i = 0; i < 1000; i++)
        sum += exp(lg[i] - mx);
    float worst_p = 0;
    for (int j = 0; j < 5; j++) {
        float p = (float)(exp(lg[top[j].id] - mx) / sum);
        worst_p = fabsf(p - top[j].prob) > worst_p ? fabsf(p - top[j].prob) : worst_p;
        if (j) CHECK(top[j].prob <= top[j - 1].prob);
    }
    float *px = NULL, full[1000]; /* every logit, through the forward pass alone */
    int h, w;
    REQUIREF(av_image_preprocess(m, img, &px, &h, &w, &err) == 0 && vit_logits(m, px, full, &err) == 0, "%s",
             err.msg);
    free(px);
    float dl = h_max_abs_diff(full, lg, 1000);
    CHECKF(dl <= 1e-4f, "%s: logits differ by %g", label, dl);
    int ref_best = 0;
    for (int i = 1; i < 1000; i++)
        ref_best = lg[i] > lg[ref_best] ? i : ref_best;
    CHECKF(top[0].id == ref_best, "%s: top-1 %d, reference %d", label, top[0].id, ref_best);
    CHECKF(worst_p <= 1e-5f, "%s: top-5 probabilities differ by %g", label, worst_p);
    printf("# ViT-Tiny on %s vs PyTorch on PIL's input: max |attention diff| %.3g (full layers), %.3g ([CLS] "
           "rows, all layers); max |logit diff| %.3g, max |top-5 probability diff| %.3g\n",
           label, worst, worst_cls, dl, worst_p);
    av_trace_free(t);
    av_st_close(&ref);
}

static void test_attention_and_logits_match_pytorch_pipeline(void) {
    av_model *m = load_vit();
    char img[4096];
    if (!m || !h_shared_file(img, sizeof img, "images/chelsea.png"))
        SKIP("../shared vit-tiny or images not found");
    for (int i = 0; i < 2; i++) {
        REQUIRE(h_shared_file(img, sizeof img, i ? "images/rocket.jpg" : "images/chelsea.png"));
        compare_with_reference(m, img, k_fixtures[i], k_images[i]);
    }
    av_model_free(m);
}

static void test_chelsea_is_a_cat_and_trace_layout(void) {
    av_model *m = load_vit();
    char img[4096];
    if (!m || !h_shared_file(img, sizeof img, "images/chelsea.png"))
        SKIP("../shared vit-tiny or chelsea.png not found");
    av_trace *t = NULL;
    av_class_score top[5];
    av_err err = {{0}};
    REQUIREF(av_trace_from_image(m, img, NULL, &t, top, 5, &err) == 0, "%s", err.msg);
    /* ImageNet cats: 281 tabby, 282 tiger cat, 283 Persian, 284 Siamese, 285 Egyptian cat */
    CHECKF(top[0].id >= 281 && top[0].id <= 285, "top-1 is class %d (%s)", top[0].id,
           top[0].label ? top[0].label : "?");
    CHECK(top[0].label && strstr(top[0].label, "cat"));
    printf("# chelsea.png: %s %.3f, %s %.3f\n", top[0].label, top[0].prob, top[1].label, top[1].prob);
    CHECK(av_trace_meta(t, "patch_grid") && strcmp(av_trace_meta(t, "patch_grid"), "14x14") == 0);
    CHECK(av_trace_meta(t, "prefix_tokens") && strcmp(av_trace_meta(t, "prefix_tokens"), "1") == 0);
    CHECK(av_trace_meta(t, "arch") && strcmp(av_trace_meta(t, "arch"), "vit") == 0);
    CHECK(av_trace_meta(t, "predictions") && strstr(av_trace_meta(t, "predictions"), "\"id\""));
    CHECK(av_trace_n_tokens(t) == 197 && strcmp(av_trace_token(t, 0), "[CLS]") == 0);
    CHECK(strcmp(av_trace_token(t, 196), "13,13") == 0);
    double worst = 0;
    for (int l = 0; l < 12; l++) {
        av_attn_view v;
        REQUIRE(av_trace_attn(t, AV_ATTN_SELF, l, &v, &err) == 0);
        for (int r = 0; r < 3 * 197; r++) {
            double s = 0;
            for (int k = 0; k < 197; k++)
                s += v.data[(size_t)r * 197 + (size_t)k];
            worst = fabs(s - 1) > worst ? fabs(s - 1) : worst;
        }
    }
    CHECKF(worst < 1e-5, "a row sums to 1 +- %g", worst);
    /* the trace survives a save/load round trip with its image metadata */
    char path[512];
    snprintf(path, sizeof path, "%s/vit.safetensors", h_tmpdir());
    REQUIREF(av_trace_save(t, path, &err) == 0, "%s", err.msg);
    av_trace *back = NULL;
    REQUIREF(av_trace_load(path, &back, &err) == 0, "%s", err.msg);
    CHECK(strcmp(av_trace_meta(back, "patch_grid"), "14x14") == 0 &&
          av_trace_n_layers(back, AV_ATTN_SELF) == 12);
    av_trace_free(back);
    av_trace_free(t);
    av_model_free(m);
}

static void write_file(const char *path, const void *data, size_t n) {
    FILE *fp = fopen(path, "wb");
    if (fp) {
        fwrite(data, 1, n, fp);
        fclose(fp);
    }
}

static void test_bad_images_give_clear_errors(void) {
    av_rgb_image im;
    av_err err = {{0}};
    char path[512];
    snprintf(path, sizeof path, "%s/not_an_image.png", h_tmpdir());
    write_file(path, "hello, world", 12);
    CHECK(av_image_decode_file(path, &im, &err) == -1 && strstr(err.msg, "not a PNG or JPEG"));
    /* a PNG signature and an IHDR claiming 100000 x 100000 pixels: refused before decoding */
    static const uint8_t huge[] = {0x89, 'P',  'N', 'G', '\r', '\n', 0x1a, '\n', 0,    0, 0,
                                   13,   'I',  'H', 'D', 'R',  0,    1,    0x86, 0xa0, 0, 1,
                                   0x86, 0xa0, 8,   2,   0,    0,    0,    0,    0,    0, 0};
    CHECK(av_image_decode_memory(huge, sizeof huge, "huge.png", &im, &err) == -1);
    CHECKF(strstr(err.msg, "huge.png") != NULL, "message: %s", err.msg);
    /* a truncated real PNG */
    char img[4096];
    if (h_shared_file(img, sizeof img, "images/chelsea.png")) {
        char *buf;
        size_t n;
        REQUIRE(av_file_read_all(img, 1u << 24, &buf, &n, &err) == 0);
        CHECK(av_image_decode_memory(buf, n / 3, "cut.png", &im, &err) == -1 || (av_rgb_image_free(&im), 1));
        CHECK(av_image_decode_memory(buf, 20, "cut.png", &im, &err) == -1 && strstr(err.msg, "cut.png"));
        free(buf);
    }
    CHECK(av_image_decode_file("/nonexistent/x.png", &im, &err) == -1 &&
          strstr(err.msg, "/nonexistent/x.png"));
    av_model *m = load_vit();
    if (m) {
        av_trace *t = NULL;
        CHECK(av_trace_from_image(m, path, NULL, &t, NULL, 0, &err) == -1 && t == NULL);
        int32_t ids[2] = {1, 2};
        CHECK(av_trace_from_ids(m, ids, 2, NULL, &t, &err) == -1 && strstr(err.msg, "image model"));
        float px[3 * 8 * 8] = {0};
        CHECK(av_trace_from_pixels(m, px, 8, 8, NULL, &t, NULL, 0, &err) == -1 && strstr(err.msg, "224x224"));
        av_model_free(m);
    }
}

static void test_resize_identity_and_constant(void) {
    /* same size: a copy; a constant image stays constant when shrinking or growing, through both passes */
    uint8_t src[5 * 7 * 3], dst[5 * 7 * 3], small[2 * 3 * 3], big[9 * 4 * 3];
    for (int i = 0; i < 105; i++)
        src[i] = (uint8_t)(i * 37 % 251);
    av_err err = {{0}};
    REQUIRE(av_image_resize_rgb8(src, 5, 7, dst, 5, 7, AV_RESAMPLE_BICUBIC, &err) == 0);
    CHECK(memcmp(src, dst, sizeof src) == 0);
    memset(src, 77, sizeof src);
    for (int rs = 0; rs < 2; rs++) {
        REQUIRE(av_image_resize_rgb8(src, 5, 7, small, 2, 3, (av_resample)rs, &err) == 0);
        for (int i = 0; i < 18; i++)
            CHECKF(small[i] == 77, "filter %d shrinking: %d", rs, small[i]);
        REQUIRE(av_image_resize_rgb8(src, 5, 7, big, 9, 4, (av_resample)rs, &err) == 0);
        for (int i = 0; i < 108; i++)
            CHECKF(big[i] == 77, "filter %d growing: %d", rs, big[i]);
    }
}

int main(void) {
    RUN(test_preprocessing_equals_pil);
    RUN(test_attention_and_logits_match_pytorch_pipeline);
    RUN(test_chelsea_is_a_cat_and_trace_layout);
    RUN(test_bad_images_give_clear_errors);
    RUN(test_resize_identity_and_constant);
    return h_exit_code();
}
