/* Tokenizers on hostile input: invalid UTF-8, a 10 MB text, malformed and truncated tokenizer files
 * (real ones corrupted deterministically, and handcrafted SentencePiece protobufs). Every case must give a
 * clear error or a correct result; the sanitizer build (make SANITIZE=1) checks that nothing crashes or
 * reads out of bounds. */
#include "harness.h"

#include "attnviz.h"

#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

static uint64_t g_rng = 0x2545F4914F6CDD1Dull;
static uint64_t rng(void) {
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return g_rng * 0x2545F4914F6CDD1Dull;
}

static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- a small SentencePiece model written as protobuf ---- */

typedef struct pbuf {
    uint8_t b[8192];
    size_t n;
} pbuf;

static void pb_varint(pbuf *p, uint64_t v) {
    do {
        p->b[p->n++] = (uint8_t)((v & 0x7F) | (v > 0x7F ? 0x80 : 0));
        v >>= 7;
    } while (v);
}
static void pb_key(pbuf *p, unsigned field, unsigned wt) { pb_varint(p, (uint64_t)field << 3 | wt); }
static void pb_bytes(pbuf *p, unsigned field, const void *d, size_t n) {
    pb_key(p, field, 2);
    pb_varint(p, n);
    memcpy(p->b + p->n, d, n);
    p->n += n;
}
static void pb_piece(pbuf *m, const char *piece, float score, int type) {
    pbuf s = {{0}, 0};
    pb_bytes(&s, 1, piece, strlen(piece));
    pb_key(&s, 2, 5);
    memcpy(s.b + s.n, &score, 4);
    s.n += 4;
    if (type != 1) {
        pb_key(&s, 3, 0);
        pb_varint(&s, (uint64_t)type);
    }
    pb_bytes(m, 1, s.b, s.n);
}

#define SP_ "\xE2\x96\x81"

/* ids: 0 <unk>, 1 <s>, 2 </s>, 3 ▁, 4 a, 5 b, 6 c, 7 ▁a, 8 ab, 9 ▁ab, 10 bc */
static size_t tiny_model(uint8_t *out, int model_type, int with_unk, const char *dup) {
    pbuf m = {{0}, 0};
    if (with_unk) pb_piece(&m, "<unk>", 0, 2);
    pb_piece(&m, "<s>", 0, 3);
    pb_piece(&m, "</s>", 0, 3);
    pb_piece(&m, SP_, -4, 1);
    pb_piece(&m, "a", -5, 1);
    pb_piece(&m, "b", -5, 1);
    pb_piece(&m, "c", -5, 1);
    pb_piece(&m, SP_ "a", -1, 1);
    pb_piece(&m, "ab", -2, 1);
    pb_piece(&m, SP_ "ab", -0.5f, 1);
    pb_piece(&m, "bc", -3, 1);
    if (dup) pb_piece(&m, dup, -9, 1);
    pbuf t = {{0}, 0};
    pb_key(&t, 3, 0);
    pb_varint(&t, (uint64_t)model_type);
    pb_bytes(&m, 2, t.b, t.n);
    pbuf nspec = {{0}, 0};
    pb_bytes(&nspec, 1, "identity", 8);
    pb_key(&nspec, 4, 0); /* remove_extra_whitespaces = false */
    pb_varint(&nspec, 0);
    pb_bytes(&m, 3, nspec.b, nspec.n);
    memcpy(out, m.b, m.n);
    return m.n;
}

static const char *write_bytes(const char *name, const void *data, size_t n) {
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", h_tmpdir(), name);
    FILE *fp = fopen(path, "wb");
    if (!fp) return NULL;
    fwrite(data, 1, n, fp);
    fclose(fp);
    return path;
}

static int encode_ok(const av_tokenizer *t, const char *text, size_t len, int add, int32_t **ids, size_t *n) {
    av_err err = {{0}};
    return av_tokenizer_encode(t, text, len, add, ids, n, &err) == 0;
}

/* Encodes, checks ids are in range, builds every display label and decoded piece. */
static int exercise(const av_tokenizer *t, const char *text, size_t len, char *why, size_t why_n) {
    int32_t *ids;
    size_t n;
    av_err err = {{0}};
    for (int add = 0; add < 2; add++) {
        if (av_tokenizer_encode(t, text, len, add, &ids, &n, &err)) {
            snprintf(why, why_n, "encode failed: %.300s", err.msg);
            return 0;
        }
        for (size_t i = 0; i < n; i++) {
            if (ids[i] < 0 || ids[i] >= av_tokenizer_vocab_size(t)) {
                snprintf(why, why_n, "id %d out of range", ids[i]);
                free(ids);
                return 0;
            }
            char *s = av_tokenizer_display(t, ids, n, i), buf[8];
            size_t dl;
            av_tokenizer_decode_piece(t, i ? ids[i - 1] : -1, ids[i], buf, &dl);
            if (!s) {
                free(ids);
                snprintf(why, why_n, "display returned NULL");
                return 0;
            }
            free(s);
        }
        free(ids);
    }
    return 1;
}

static void test_sentencepiece_protobuf(void) {
    uint8_t model[8192];
    size_t n = tiny_model(model, 2, 1, NULL);
    const char *p = write_bytes("tiny.model", model, n);
    av_tokenizer *t;
    av_err err = {{0}};
    REQUIREF(av_tokenizer_load(p, &t, &err) == 0, "%s", err.msg);
    CHECK(strcmp(av_tokenizer_model_name(t), "sentencepiece bpe") == 0);
    CHECK(av_tokenizer_bos(t) == 1 && av_tokenizer_eos(t) == 2);
    int32_t *ids;
    size_t k;
    REQUIRE(encode_ok(t, "ab c", 4, 1, &ids, &k));
    const int32_t want[] = {1, 9, 3, 6}; /* <s> ▁ab ▁ c: "▁a" merges first (score -1), then "▁ab" */
    CHECK(k == 4 && memcmp(ids, want, sizeof want) == 0);
    free(ids);
    REQUIRE(encode_ok(t, "azzb", 4, 0, &ids, &k)); /* a run of unknown characters is one <unk> */
    const int32_t want2[] = {7, 0, 5};
    CHECK(k == 3 && memcmp(ids, want2, sizeof want2) == 0);
    free(ids);
    REQUIRE(encode_ok(t, "a\xFF", 2, 0, &ids, &k)); /* invalid byte: U+FFFD, unknown here */
    CHECK(k == 2 && ids[0] == 7 && ids[1] == 0);
    free(ids);
    /* 10 MB without the shared files: words of a, b, c and spaces; decoding gives the text back */
    size_t big = 10u << 20;
    char *text = malloc(big);
    for (size_t i = 0; i < big; i++)
        text[i] = " abc"[rng() % 4];
    text[0] = 'a';
    REQUIRE(encode_ok(t, text, big, 1, &ids, &k));
    size_t pos = 0;
    int same = 1;
    for (size_t i = 1; i < k && same; i++) {
        char buf[8];
        size_t dl;
        const char *d = av_tokenizer_decode_piece(t, ids[i - 1], ids[i], buf, &dl);
        same = pos + dl <= big && memcmp(text + pos, d, dl) == 0;
        pos += dl;
    }
    CHECKF(same && pos == big, "10 MB: decoding differs at byte %zu", pos);
    free(ids);
    free(text);
    av_tokenizer_free(t);

    /* unigram on the same pieces: the best path is ▁ab (-0.5) + c (-5)... */
    n = tiny_model(model, 1, 1, NULL);
    p = write_bytes("tiny_uni.model", model, n);
    REQUIREF(av_tokenizer_load(p, &t, &err) == 0, "%s", err.msg);
    CHECK(strcmp(av_tokenizer_model_name(t), "sentencepiece unigram") == 0);
    REQUIRE(encode_ok(t, "ab bc", 5, 0, &ids, &k));
    const int32_t want3[] = {9, 3, 10}; /* ▁ab ▁ bc (-0.5 -4 -3) beats ▁ b c (-14) */
    CHECK(k == 3 && memcmp(ids, want3, sizeof want3) == 0);
    free(ids);
    av_tokenizer_free(t);

    /* clear errors */
    struct {
        size_t len;
        const char *want;
    } bad[6];
    uint8_t bufs[6][8192];
    bad[0].len = tiny_model(bufs[0], 3, 1, NULL), bad[0].want = "model_type 3 is not supported";
    bad[1].len = tiny_model(bufs[1], 2, 0, NULL), bad[1].want = "no unknown piece";
    bad[2].len = tiny_model(bufs[2], 2, 1, "ab"), bad[2].want = "already defined";
    memcpy(bufs[3], "\x0A\xFF\xFF\xFF\xFF\x0F", 6), bad[3].len = 6, bad[3].want = "runs past the end";
    memcpy(bufs[4], "\x0A\x02\x0B\x00", 4), bad[4].len = 4, bad[4].want = "malformed protobuf";
    memcpy(bufs[5], "\x0A\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", 12), bad[5].len = 12,
                                                                             bad[5].want = "malformed varint";
    for (int i = 0; i < 6; i++) {
        p = write_bytes("bad.model", bufs[i], bad[i].len);
        t = NULL;
        CHECKF(av_tokenizer_load(p, &t, &err) != 0, "case %d loaded", i);
        CHECKF(strstr(err.msg, bad[i].want) != NULL, "case %d: '%s'", i, err.msg);
        av_tokenizer_free(t);
    }
    /* every truncation of a valid model: an error or a working tokenizer */
    n = tiny_model(model, 2, 1, NULL);
    for (size_t cut = 1; cut < n; cut++) {
        p = write_bytes("cut.model", model, cut);
        t = NULL;
        if (av_tokenizer_load(p, &t, &err) == 0) {
            char why[400];
            CHECKF(exercise(t, "ab c\xFFzz", 7, why, sizeof why), "cut %zu: %s", cut, why);
            av_tokenizer_free(t);
        } else {
            CHECKF(err.msg[0] != 0, "cut %zu: empty error message", cut);
        }
    }
}

/* ---- the shared real tokenizers ---- */

static const char *const real[] = {"tokenizers/llama2/tokenizer.model",      "tokenizers/gpt2",
                                   "tokenizers/gpt2/encoder.json",           "tokenizers/bert-base-uncased",
                                   "tokenizers/bert-base-uncased/vocab.txt", "models/stories260K/tok512.bin"};
enum { N_REAL = sizeof real / sizeof real[0] };

static void test_invalid_utf8(void) {
    char path[4096];
    int tested = 0;
    for (int r = 0; r < N_REAL; r++) {
        if (!h_shared_file(path, sizeof path, real[r])) continue;
        av_tokenizer *t;
        av_err err = {{0}};
        REQUIREF(av_tokenizer_load(path, &t, &err) == 0, "%s: %s", real[r], err.msg);
        tested++;
        for (int k = 0; k < 400; k++) {
            char text[96];
            size_t len = rng() % sizeof text;
            for (size_t i = 0; i < len; i++) {
                uint64_t x = rng();
                text[i] = (char)(x % 3 == 0   ? 0x80 + (x >> 8) % 0x80
                                 : x % 3 == 1 ? (x >> 8) % 0x100
                                              : 'a' + (x >> 8) % 26);
            }
            char why[400];
            CHECKF(exercise(t, text, len, why, sizeof why), "%s case %d: %s", real[r], k, why);
        }
        /* non-SentencePiece kinds: an invalid byte reads as U+FFFD */
        if (!strstr(real[r], "llama2") && !strstr(real[r], "tok512")) {
            int32_t *a, *b;
            size_t na, nb;
            REQUIRE(encode_ok(t, "ab\xFF\xC3x", 5, 1, &a, &na));
            REQUIRE(encode_ok(t, "ab\xEF\xBF\xBD\xEF\xBF\xBDx", 9, 1, &b, &nb));
            CHECKF(na == nb && memcmp(a, b, na * sizeof *a) == 0, "%s: invalid bytes are not read as U+FFFD",
                   real[r]);
            free(a);
            free(b);
        }
        if (strstr(real[r],
                   "llama2")) { /* as libsentencepiece: each bad byte is one U+FFFD (a piece in Llama 2) */
            int32_t *a;
            size_t na;
            REQUIRE(encode_ok(t,
                              "a\xFF"
                              "b",
                              3, 0, &a, &na));
            const int32_t want[] = {263, 30140, 29890};
            CHECKF(na == 3 && memcmp(a, want, sizeof want) == 0, "llama2 invalid byte: %zu ids", na);
            free(a);
            REQUIRE(encode_ok(t,
                              "a\xFF\xC3"
                              "b",
                              4, 0, &a, &na)); /* two of them: the piece "\uFFFD\uFFFD" */
            CHECKF(na == 3 && a[1] == 26308, "llama2 invalid bytes: %zu ids", na);
            free(a);
        }
        av_tokenizer_free(t);
    }
    if (!tested) SKIP("../shared/tokenizers not found");
}

/* A deterministic text of n bytes: a multilingual paragraph repeated, with a counter so it never repeats. */
static char *big_text(size_t n) {
    static const char *const parts[] = {
        "The quick brown fox jumps over the lazy dog. ",
        "Caf\xC3\xA9 na\xC3\xAFve r\xC3\xA9sum\xC3\xA9, ",
        "\xD0\xBF\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82 \xD0\xBC\xD0\xB8\xD1\x80! ",
        "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE3\x81\xAE\xE6\x96\x87\xE7\xAB\xA0\xE3\x80\x82",
        "\xF0\x9F\xA4\x97 \xF0\x9F\x9A\x80 emoji ",
        "\tx = 3.14159;\n",
        "    indented   spaces\n",
        "don't won't ",
        "2024-01-01 12:00 ",
        "supercalifragilisticexpialidocious "};
    char *s = malloc(n + 64);
    size_t k = 0;
    unsigned counter = 0;
    while (k < n) {
        const char *p = parts[rng() % (sizeof parts / sizeof parts[0])];
        size_t l = strlen(p);
        if (k + l > n) break;
        memcpy(s + k, p, l);
        k += l;
        if (++counter % 97 == 0 && k + 12 < n) k += (size_t)snprintf(s + k, 12, "%u ", counter);
    }
    while (k < n)
        s[k++] = ' ';
    s[n] = 0;
    return s;
}

static void test_10mb_input(void) {
    const size_t n = 10u << 20;
    char *text = big_text(n);
    char path[4096];
    int tested = 0;
    for (int r = 0; r < N_REAL; r++) {
        if (!h_shared_file(path, sizeof path, real[r])) continue;
        if (strstr(real[r], "encoder.json") || strstr(real[r], "vocab.txt"))
            continue;                                   /* same encoders as above */
        int legacy = strstr(real[r], "tok512") != NULL; /* llama2.c's encoder: 2 MB is enough */
        size_t len = legacy ? (2u << 20) : n;
        av_tokenizer *t;
        av_err err = {{0}};
        REQUIREF(av_tokenizer_load(path, &t, &err) == 0, "%s: %s", real[r], err.msg);
        tested++;
        int32_t *ids;
        size_t k;
        double t0 = seconds();
        int ok = av_tokenizer_encode(t, text, len, 1, &ids, &k, &err) == 0;
        double dt = seconds() - t0;
        CHECKF(ok, "%s: %s", real[r], err.msg);
        if (!ok) {
            av_tokenizer_free(t);
            continue;
        }
        printf("# %-40s %zu MB -> %zu tokens in %.2f s\n", real[r], len >> 20, k, dt);
        CHECKF(k > len / 16, "%s: only %zu tokens", real[r], k);
        if (!strstr(real[r], "bert")) { /* lossless tokenizers: decoding gives the text back */
            size_t pos = 0;
            int same = 1;
            for (size_t i = 0; i < k && same; i++) {
                char buf[8];
                size_t dl;
                const char *d = av_tokenizer_decode_piece(t, i ? ids[i - 1] : -1, ids[i], buf, &dl);
                same = pos + dl <= len && memcmp(text + pos, d, dl) == 0;
                pos += dl;
            }
            CHECKF(same && pos == len, "%s: decoding does not give the text back (at byte %zu)", real[r],
                   pos);
        } else {
            CHECK(ids[0] == 101 && ids[k - 1] == 102);
        }
        free(ids);
        av_tokenizer_free(t);
    }
    free(text);
    if (!tested) SKIP("../shared/tokenizers not found");
}

/* Corrupted copies of the real files: truncated and with flipped bytes. */
static void test_malformed_real_files(void) {
    static const char *const files[] = {"tokenizers/llama2/tokenizer.model",
                                        "tokenizers/bert-base-uncased/tokenizer.json",
                                        "tokenizers/bert-base-uncased/vocab.txt",
                                        "tokenizers/gpt2/encoder.json",
                                        "tokenizers/gpt2/vocab.bpe",
                                        "models/stories260K/tok512.bin"};
    char path[4096];
    int tested = 0, loaded = 0, rejected = 0;
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        if (!h_shared_file(path, sizeof path, files[f])) continue;
        FILE *fp = fopen(path, "rb");
        REQUIRE(fp);
        fseek(fp, 0, SEEK_END);
        size_t size = (size_t)ftell(fp);
        fseek(fp, 0, SEEK_SET);
        uint8_t *data = malloc(size), *copy = malloc(size);
        REQUIRE(fread(data, 1, size, fp) == size);
        fclose(fp);
        tested++;
        /* the gpt2 pair lives in a directory of its own: corrupt one file, keep the other */
        char dir[4096], other[4400], mine[4400];
        int gpt2 = strstr(files[f], "gpt2") != NULL;
        snprintf(dir, sizeof dir, "%s/corrupt%zu", h_tmpdir(), f);
        mkdir(dir, 0755);
        const char *base = strrchr(files[f], '/') + 1;
        snprintf(mine, sizeof mine, "%s/%s", dir, base);
        if (gpt2) {
            char src[4096], abs_src[4096];
            h_shared_file(src, sizeof src,
                          strcmp(base, "encoder.json") == 0 ? "tokenizers/gpt2/vocab.bpe"
                                                            : "tokenizers/gpt2/encoder.json");
            REQUIRE(realpath(src, abs_src));
            snprintf(other, sizeof other, "%s/%s", dir,
                     strcmp(base, "encoder.json") == 0 ? "vocab.bpe" : "encoder.json");
            unlink(other);
            REQUIRE(symlink(abs_src, other) == 0);
        }
        for (int v = 0; v < 24; v++) {
            size_t len = size;
            memcpy(copy, data, size);
            if (v < 12) {
                len = v == 0 ? 1 : (size_t)((double)size * v / 12.0) + rng() % 64;
                if (len >= size) len = size - 1;
            } else {
                int flips = 1 + (int)(rng() % 8);
                for (int k = 0; k < flips; k++)
                    copy[rng() % size] ^= (uint8_t)(1u << (rng() % 8));
            }
            FILE *o = fopen(mine, "wb");
            REQUIRE(o);
            fwrite(copy, 1, len, o);
            fclose(o);
            av_tokenizer *t = NULL;
            av_err err = {{0}};
            if (av_tokenizer_load(gpt2 ? dir : mine, &t, &err) == 0) {
                loaded++;
                char why[400];
                const char *s = "Hello w\xC3\xB6rld \xF0\x9F\xA4\x97 [CLS] 12345 \xFF";
                CHECKF(exercise(t, s, strlen(s), why, sizeof why), "%s variant %d: %s", files[f], v, why);
                av_tokenizer_free(t);
            } else {
                rejected++;
                CHECKF(err.msg[0] != 0, "%s variant %d: failed without a message", files[f], v);
            }
        }
        free(data);
        free(copy);
    }
    if (!tested) SKIP("../shared/tokenizers not found");
    printf("# corrupted files: %d loaded (and tokenized), %d rejected with a message\n", loaded, rejected);
}

int main(void) {
    RUN(test_sentencepiece_protobuf);
    RUN(test_invalid_utf8);
    RUN(test_10mb_input);
    RUN(test_malformed_real_files);
    return h_exit_code();
}
