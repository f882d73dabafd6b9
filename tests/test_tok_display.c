/* Display labels of the real tokenizers (the strings attention maps are labelled with): GPT-2's "Ġthe" shows
 * as " the" (or "␣the" with the visible-space flag), SentencePiece's "▁the" likewise, byte pieces are merged
 * back into the character they complete, WordPiece continuations keep "##", special tokens show their name
 * and control characters are escaped. */
#include "harness.h"

#include "attnviz.h"

#include <malloc.h>

/* Labels of text joined with '|'. */
static void labels(const av_tokenizer *t, const char *text, int add, unsigned flags, char *out, size_t cap) {
    int32_t *ids;
    size_t n;
    av_err err = {{0}};
    out[0] = 0;
    if (av_tokenizer_encode(t, text, strlen(text), add, &ids, &n, &err)) {
        snprintf(out, cap, "error: %.200s", err.msg);
        return;
    }
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        char *s = av_tokenizer_display_ex(t, ids, n, i, flags);
        pos += (size_t)snprintf(out + pos, pos < cap ? cap - pos : 0, "%s%s", i ? "|" : "", s ? s : "<NULL>");
        free(s);
        if (pos >= cap) break;
    }
    free(ids);
}

#define CHECK_LABELS(t, text, add, flags, want)                                                              \
    do {                                                                                                     \
        char got_[1024];                                                                                     \
        labels(t, text, add, flags, got_, sizeof got_);                                                      \
        CHECKF(strcmp(got_, want) == 0, "'%s': got '%s', want '%s'", text, got_, want);                      \
    } while (0)

static av_tokenizer *load_shared(const char *rel) {
    char path[4096];
    if (!h_shared_file(path, sizeof path, rel)) return NULL;
    av_tokenizer *t = NULL;
    av_err err = {{0}};
    if (av_tokenizer_load(path, &t, &err)) {
        printf("# %s: %s\n", rel, err.msg);
        return NULL;
    }
    return t;
}

static void test_gpt2_labels(void) {
    av_tokenizer *t = load_shared("tokenizers/gpt2");
    if (!t) SKIP("../shared/tokenizers/gpt2 not found");
    CHECK_LABELS(t, "Hello world", 0, 0, "Hello| world");
    CHECK_LABELS(t, "Hello world", 0, AV_DISPLAY_VISIBLE_SPACE, "Hello|\xE2\x90\xA3world");
    /* 🤗 is three byte-level tokens: the character shows on the first, the others are marked continuations
     */
    CHECK_LABELS(t, "\xF0\x9F\xA4\x97", 0, 0, "\xF0\x9F\xA4\x97|\xC2\xB7<0xA4>|\xC2\xB7<0x97>");
    CHECK_LABELS(t, "a\nb\tc", 0, 0, "a|\\n|b|\\t|c");
    /* gpt-3-encoder reads "<|endoftext|>" in a text as plain text; the id itself is special and shows its
     * name */
    CHECK_LABELS(t, "<|endoftext|>x", 0, 0, "<|||end|of|text|||>|x");
    CHECK(av_tokenizer_is_special(t, 50256));
    int32_t eot[2] = {50256, 50256};
    char *s = av_tokenizer_display(t, eot, 2, 1);
    CHECKF(s && strcmp(s, "<|endoftext|>") == 0, "label '%s'", s ? s : "");
    free(s);
    av_tokenizer_free(t);
}

static void test_llama2_labels(void) {
    av_tokenizer *t = load_shared("tokenizers/llama2/tokenizer.model");
    if (!t) SKIP("../shared/tokenizers/llama2 not found");
    CHECK_LABELS(t, "Hello world", 1, 0, "<s>| Hello| world");
    CHECK_LABELS(t, "Hello world", 1, AV_DISPLAY_VISIBLE_SPACE, "<s>|\xE2\x90\xA3Hello|\xE2\x90\xA3world");
    /* byte fallback: <0xF0><0x9F><0xA4><0x97> shows 🤗 on the first byte */
    CHECK_LABELS(t, "\xF0\x9F\xA4\x97", 0, 0,
                 " |\xF0\x9F\xA4\x97|\xC2\xB7<0x9F>|\xC2\xB7<0xA4>|\xC2\xB7<0x97>");
    CHECK_LABELS(t, "a\x01", 0, 0, " a|\\x01");
    /* decoding after BOS drops the dummy-prefix space */
    int32_t *ids;
    size_t n;
    av_err err = {{0}};
    REQUIRE(av_tokenizer_encode(t, "Hello", 5, 1, &ids, &n, &err) == 0);
    char buf[8];
    size_t len;
    const char *d = av_tokenizer_decode_piece(t, ids[0], ids[1], buf, &len);
    CHECK(n == 2 && len == 5 && memcmp(d, "Hello", 5) == 0);
    free(ids);
    av_tokenizer_free(t);
}

static void test_bert_labels(void) {
    av_tokenizer *t = load_shared("tokenizers/bert-base-uncased");
    if (!t) SKIP("../shared/tokenizers/bert-base-uncased not found");
    CHECK_LABELS(t, "Unaffable caf\xC3\xA9!", 1, 0, "[CLS]|una|##ffa|##ble|cafe|!|[SEP]");
    CHECK_LABELS(t, "\xE6\x97\xA5\xE6\x9C\xAC", 1, 0, "[CLS]|\xE6\x97\xA5|\xE6\x9C\xAC|[SEP]");
    av_tokenizer_free(t);
}

static void test_llama2c_labels_unchanged(void) {
    av_tokenizer *t = load_shared("models/stories260K/tok512.bin");
    if (!t) SKIP("../shared/models/stories260K not found");
    CHECK(strcmp(av_tokenizer_model_name(t), "llama2.c bpe") == 0);
    char got[1024];
    labels(t, "Once upon", 1, 0, got, sizeof got);
    CHECKF(strncmp(got, "<s>| ", 5) == 0, "got '%s'", got);
    av_tokenizer_free(t);
}

/* A vocabulary entry with an empty piece has an empty label, a C string like any other (issue #19: the
 * label buffer came back unterminated, so trace metadata got heap bytes). Fresh heap memory is filled with
 * 0xAA (glibc's M_PERTURB; ASan fills with 0xBE) so a missing terminator shows. */
static void test_empty_piece_label(void) {
    mallopt(M_PERTURB, 0x55);
    static const char *pieces[] = {"<unk>", "<s>", "</s>", "a", "b", "", "c"};
    char path[512];
    snprintf(path, sizeof path, "%s/empty_piece.bin", h_tmpdir());
    FILE *fp = fopen(path, "wb");
    REQUIRE(fp);
    int32_t max_len = 8;
    fwrite(&max_len, 4, 1, fp);
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
        float score = -(float)i;
        int32_t len = (int32_t)strlen(pieces[i]);
        fwrite(&score, 4, 1, fp);
        fwrite(&len, 4, 1, fp);
        fwrite(pieces[i], 1, (size_t)len, fp);
    }
    fclose(fp);
    av_tokenizer *t = NULL;
    av_err err = {{0}};
    REQUIREF(av_tokenizer_load(path, &t, &err) == 0, "%s", err.msg);
    int32_t ids[3] = {3, 5, 6};
    for (unsigned flags = 0; flags < 2; flags++) {
        char *s = av_tokenizer_display_ex(t, ids, 3, 1, flags);
        CHECKF(s && s[0] == 0, "label of the empty piece: '%.16s'", s ? s : "(null)");
        free(s);
    }
    mallopt(M_PERTURB, 0);
    av_tokenizer_free(t);
}

int main(void) {
    RUN(test_empty_piece_label);
    RUN(test_gpt2_labels);
    RUN(test_llama2_labels);
    RUN(test_bert_labels);
    RUN(test_llama2c_labels_unchanged);
    return h_exit_code();
}
