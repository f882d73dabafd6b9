/* The small things of src/core: UTF-8 against the RFC 3629 table (every 1-3 byte string, every 4-byte
 * character), hexadecimal digits against strtoul, base64 against the RFC 4648 test vectors, path helpers
 * against POSIX dirname/basename behaviour, little-endian loads/stores and the bounded reader on fixed byte
 * patterns, the embedded asset table against the files in web/. */
#include "harness.h"

#include "core/core.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>

/* ---- UTF-8 ---- */

/* Reference encoder written from RFC 3629's table (independent of core's): bytes of cp, or 0 for a
 * surrogate or a value past U+10FFFF (not a character). */
static int ref_utf8(uint32_t cp, unsigned char *b) {
    if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
    if (cp <= 0x7F) return b[0] = (unsigned char)cp, 1;
    if (cp <= 0x7FF) return b[0] = (unsigned char)(0xC0 + cp / 64), b[1] = (unsigned char)(0x80 + cp % 64), 2;
    if (cp <= 0xFFFF) {
        b[0] = (unsigned char)(0xE0 + cp / 4096);
        b[1] = (unsigned char)(0x80 + cp / 64 % 64);
        b[2] = (unsigned char)(0x80 + cp % 64);
        return 3;
    }
    if (cp > 0x10FFFF) return 0;
    b[0] = (unsigned char)(0xF0 + cp / 262144);
    b[1] = (unsigned char)(0x80 + cp / 4096 % 64);
    b[2] = (unsigned char)(0x80 + cp / 64 % 64);
    b[3] = (unsigned char)(0x80 + cp % 64);
    return 4;
}

static void test_utf8_decode_matches_rfc3629(void) {
    /* the characters of 2 and 3 bytes by their bytes: code point + 1, 0 for a string that is none */
    static uint32_t cp2[1 << 16];  /* b0 << 8 | b1 */
    static uint32_t cp3[16 << 16]; /* (b0 - 0xE0) << 16 | b1 << 8 | b2 */
    memset(cp2, 0, sizeof cp2);
    memset(cp3, 0, sizeof cp3);
    unsigned char b[4];
    for (uint32_t cp = 0; cp < 0x10000; cp++) {
        int n = ref_utf8(cp, b);
        if (n == 2) cp2[b[0] << 8 | b[1]] = cp + 1;
        if (n == 3) cp3[(b[0] - 0xE0) << 16 | b[1] << 8 | b[2]] = cp + 1;
    }
    int bad = 0;
    for (uint32_t s = 0; s < (1u << 16) && bad < 5; s++) { /* every 2-byte string */
        char t[2] = {(char)(s >> 8), (char)s};
        uint32_t cp = 0;
        int n = av_utf8_decode(t, 2, &cp);
        int want = (unsigned char)t[0] < 0x80 ? 1 : cp2[s] ? 2 : 0;
        uint32_t want_cp = want == 1 ? (unsigned char)t[0] : cp2[s] - 1;
        if (n != want || (n && cp != want_cp)) {
            CHECKF(0, "%02x %02x: decoded length %d cp %x, want %d %x", (unsigned)s >> 8, s & 255, n, cp,
                   want, want_cp);
            bad++;
        }
    }
    for (uint32_t s = 0xE00000; s < (1u << 24) && bad < 5; s++) { /* every 3-byte string with lead E0..FF */
        char t[3] = {(char)(s >> 16), (char)(s >> 8), (char)s};
        uint32_t cp = 0, ref = s < 0xF00000 ? cp3[s - 0xE00000] : 0; /* F0..FF: never 3 bytes */
        int n = av_utf8_decode(t, 3, &cp);
        if (n != (ref ? 3 : 0) || (n && cp != ref - 1)) {
            CHECKF(0, "%06x: decoded length %d cp %x, want %d", s, n, cp, ref ? 3 : 0);
            bad++;
        }
    }
    for (uint32_t cp = 0x10000; cp <= 0x10FFFF && bad < 5; cp++) { /* every 4-byte character */
        ref_utf8(cp, b);
        uint32_t got = 0;
        int n = av_utf8_decode((const char *)b, 4, &got);
        if (n != 4 || got != cp) {
            CHECKF(0, "U+%X: length %d, cp %x", cp, n, got);
            bad++;
        }
        if (av_utf8_decode((const char *)b, 3, &got) != 0) {
            CHECKF(0, "U+%X accepted when truncated", cp);
            bad++;
        }
    }
    /* 4-byte forms that are not characters: overlong, past U+10FFFF, F5..FF leads */
    static const char *const invalid4[] = {"\xF0\x8F\xBF\xBF", "\xF4\x90\x80\x80", "\xF5\x80\x80\x80",
                                           "\xF8\x88\x80\x80\x80", "\xFF\xBF\xBF\xBF"};
    uint32_t cp;
    for (size_t i = 0; i < sizeof invalid4 / sizeof invalid4[0]; i++)
        CHECKF(av_utf8_decode(invalid4[i], strlen(invalid4[i]), &cp) == 0, "invalid 4-byte case %zu accepted",
               i);
    CHECK(av_utf8_decode("a", 0, &cp) == 0);
}

static void test_utf8_encode_and_prefix(void) {
    unsigned char want[4];
    char got[4];
    int bad = 0;
    for (uint32_t cp = 0; cp <= 0x10FFFF && bad < 5; cp++) {
        int n = ref_utf8(cp, want);
        if (!n) continue;
        int k = av_utf8_encode(cp, got);
        if (k != n || memcmp(got, want, (size_t)n) != 0) {
            CHECKF(0, "U+%X encoded in %d bytes", cp, k);
            bad++;
        }
    }
    CHECK(av_utf8_encode(0x110000, got) == 3 && memcmp(got, AV_UTF8_REPLACEMENT, 3) == 0);
    /* valid prefix: stops at the first byte that does not start a character */
    CHECK(av_utf8_valid_prefix("ab\xC3\xA9", 4) == 4);
    CHECK(av_utf8_valid_prefix("ab\xC3\xA9\xFFz", 6) == 4);
    CHECK(av_utf8_valid_prefix("ab\xE2\x82", 4) == 2);              /* truncated euro sign */
    CHECK(av_utf8_valid_prefix("\xED\xA0\x80 surrogate", 13) == 0); /* CESU-8 surrogate */
    CHECK(av_utf8_valid_prefix("\xC0\xAF", 2) == 0);                /* overlong '/' */
}

/* ---- hexadecimal ---- */

/* Every 2-digit string of printable ASCII against strtoul (the C library's reading of base 16). */
static void test_hex_parse_matches_strtoul(void) {
    int bad = 0, ok = 0;
    for (int a = 0x20; a < 0x7F; a++)
        for (int b = 0x20; b < 0x7F; b++) {
            char s[3] = {(char)a, (char)b, 0}, *end;
            unsigned long want = strtoul(s, &end, 16);
            int valid = isxdigit(a) && isxdigit(b);
            uint32_t v = 12345;
            int rc = av_hex_parse(s, 2, &v);
            if (valid ? rc != 0 || v != want || *end : rc != -1) bad++;
            ok += valid;
        }
    CHECKF(bad == 0 && ok == 22 * 22, "%d mismatches, %d valid pairs", bad, ok);
    uint32_t v;
    CHECK(av_hex_parse("DeadBeef", 8, &v) == 0 && v == 0xDEADBEEFu);
    CHECK(av_hex_parse("", 0, &v) == 0 && v == 0);
    CHECK(av_hex_parse("12g4", 4, &v) == -1);
}

/* ---- base64 ---- */

static const char *const k_b64_plain[] = {"",     "f",     "fo",    "foo",
                                          "foob", "fooba", "foobar"}; /* RFC 4648 s. 10 */
static const char *const k_b64_coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};

static void test_base64_rfc4648_vectors(void) {
    for (size_t i = 0; i < 7; i++) {
        size_t n = strlen(k_b64_plain[i]);
        char *e = av_base64_encode(k_b64_plain[i], n);
        REQUIRE(e);
        CHECKF(strcmp(e, k_b64_coded[i]) == 0, "encode '%s' = '%s', want '%s'", k_b64_plain[i], e,
               k_b64_coded[i]);
        CHECK(av_base64_len(n) == strlen(k_b64_coded[i]));
        free(e);
        uint8_t *d = NULL;
        size_t dn = 0;
        REQUIRE(av_base64_decode(k_b64_coded[i], strlen(k_b64_coded[i]), &d, &dn) == 0);
        CHECKF(dn == n && memcmp(d, k_b64_plain[i], n) == 0, "decode '%s'", k_b64_coded[i]);
        free(d);
    }
    CHECK(av_base64_len(SIZE_MAX) == SIZE_MAX);
}

static void test_base64_decode_alphabets_and_errors(void) {
    /* bytes fb ff bf: "+/+/" in the standard alphabet, "-_-_" in the URL-safe one */
    static const uint8_t want[] = {0xFB, 0xEF, 0xBE, 0xFB, 0xEF, 0xBE};
    uint8_t *d;
    size_t n;
    REQUIRE(av_base64_decode("++++", 4, &d, &n) == 0);
    CHECK(n == 3 && d[0] == 0xFB && d[1] == 0xEF && d[2] == 0xBE);
    free(d);
    REQUIRE(av_base64_decode("----", 4, &d, &n) == 0); /* URL-safe '-' is '+' */
    CHECK(n == 3 && memcmp(d, want, 3) == 0);
    free(d);
    REQUIRE(av_base64_decode("++++\r\n----", 10, &d, &n) == 0); /* line breaks skipped */
    CHECK(n == 6 && memcmp(d, want, 6) == 0);
    free(d);
    REQUIRE(av_base64_decode("//__", 4, &d, &n) == 0);
    CHECK(n == 3 && d[0] == 0xFF && d[1] == 0xFF && d[2] == 0xFF);
    free(d);
    CHECK(av_base64_decode("Zm9v!", 5, &d, &n) == -1);
    CHECK(av_base64_decode("Zm 9v", 5, &d, &n) == -1);
    /* round trip of every byte value */
    uint8_t all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)(255 - i);
    for (size_t len = 250; len <= 256; len++) {
        char *e = av_base64_encode(all, len);
        REQUIRE(e && strlen(e) == av_base64_len(len));
        REQUIRE(av_base64_decode(e, strlen(e), &d, &n) == 0);
        CHECKF(n == len && memcmp(d, all, len) == 0, "round trip of %zu bytes", len);
        free(d);
        free(e);
    }
}

/* ---- paths ---- */

static void test_path_helpers(void) {
    static const struct {
        const char *path, *dir, *base, *ext;
    } cases[] = {
        {"a/b.txt", "a", "b.txt", ".txt"},
        {"b.txt", ".", "b.txt", ".txt"},
        {"/b", "/", "b", ""},
        {"/usr/lib/x.tar.gz", "/usr/lib", "x.tar.gz", ".gz"},
        {"a//b", "a", "b", ""},
        {"dir.d/file", "dir.d", "file", ""},
        {"a/b/", "a/b", "", ""},
        {"./m.safetensors", ".", "m.safetensors", ".safetensors"},
        {"", ".", "", ""},
    };
    char out[64];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        REQUIRE(av_path_dirname(cases[i].path, out, sizeof out) == 0);
        CHECKF(strcmp(out, cases[i].dir) == 0, "dirname('%s') = '%s', want '%s'", cases[i].path, out,
               cases[i].dir);
        CHECKF(strcmp(av_path_basename(cases[i].path), cases[i].base) == 0, "basename('%s') = '%s'",
               cases[i].path, av_path_basename(cases[i].path));
        CHECKF(strcmp(av_path_extension(cases[i].path), cases[i].ext) == 0, "extension('%s') = '%s'",
               cases[i].path, av_path_extension(cases[i].path));
    }
    char small[4];
    CHECK(av_path_dirname("abcd/e", small, sizeof small) == -1 && small[0] == 0);
    CHECK(av_path_dirname("abc/e", small, sizeof small) == 0 && strcmp(small, "abc") == 0);

    CHECK(av_path_join(out, sizeof out, "a", "b") == 0 && strcmp(out, "a/b") == 0);
    CHECK(av_path_join(out, sizeof out, "a//", "b") == 0 && strcmp(out, "a/b") == 0);
    CHECK(av_path_join(out, sizeof out, "/", "b") == 0 && strcmp(out, "/b") == 0);
    CHECK(av_path_join(out, sizeof out, "", "b") == 0 && strcmp(out, "b") == 0);
    CHECK(av_path_join(small, sizeof small, "ab", "c") == -1);
    CHECK(av_path_join(small, sizeof small, "a", "c") == 0 && strcmp(small, "a/c") == 0);

    const char *tmp = h_tmpdir();
    char file[512];
    REQUIRE(av_path_join(file, sizeof file, tmp, "plain") == 0);
    FILE *fp = fopen(file, "w");
    REQUIRE(fp);
    fclose(fp);
    CHECK(av_path_is_dir(tmp));
    CHECK(!av_path_is_dir(file));
    REQUIRE(av_path_join(file, sizeof file, tmp, "missing") == 0);
    CHECK(!av_path_is_dir(file));
}

/* ---- little-endian loads/stores and the bounded reader ---- */

static void test_little_endian(void) {
    static const uint8_t bytes[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x88, 0x00, 0x00, 0x80, 0x3F};
    CHECK(av_load_le16(bytes) == 0x0201);
    CHECK(av_load_le32(bytes) == 0x04030201u);
    CHECK(av_load_le64(bytes) == 0x8807060504030201ull);
    uint8_t out[8];
    av_store_le16(out, 0xBEEF);
    CHECK(out[0] == 0xEF && out[1] == 0xBE);
    av_store_le32(out, 0x11223344u);
    CHECK(out[0] == 0x44 && out[1] == 0x33 && out[2] == 0x22 && out[3] == 0x11);
    av_store_le64(out, 0x8807060504030201ull);
    CHECK(memcmp(out, bytes, 8) == 0);

    av_reader r;
    av_reader_init(&r, bytes, sizeof bytes, "bytes");
    av_err err = {{0}};
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    float f;
    REQUIRE(av_read_u16(&r, &u16, &err) == 0 && u16 == 0x0201);
    REQUIRE(av_reader_seek(&r, 0, &err) == 0 && av_read_u32(&r, &u32, &err) == 0 && u32 == 0x04030201u);
    REQUIRE(av_reader_seek(&r, 0, &err) == 0 && av_read_u64(&r, &u64, &err) == 0 &&
            u64 == 0x8807060504030201ull);
    REQUIRE(av_read_f32(&r, &f, &err) == 0 && f == 1.0f); /* 00 00 80 3F */
    u16 = 7;
    CHECK(av_read_u16(&r, &u16, &err) == -1 && u16 == 7 && strstr(err.msg, "bytes: truncated"));
}

/* ---- large buffers ---- */

/* The transparent huge pages' mode ("always", "madvise", "never"; "" when the kernel has none). */
static const char *thp_mode(char *buf, size_t cap) {
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    buf[0] = 0;
    if (!f) return buf;
    char line[128] = "";
    if (fgets(line, sizeof line, f)) {
        const char *a = strchr(line, '['), *b = a ? strchr(a, ']') : NULL;
        if (a && b && (size_t)(b - a - 1) < cap) memcpy(buf, a + 1, (size_t)(b - a - 1)), buf[b - a - 1] = 0;
    }
    fclose(f);
    return buf;
}

/* kB of anonymous huge pages in the mapping of /proc/self/smaps that contains p, or -1. */
static long huge_kb_at(const void *p) {
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return -1;
    char line[512];
    int inside = 0;
    long kb = -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) /* a mapping's first line */
            inside = (uintptr_t)p >= lo && (uintptr_t)p < hi;
        else if (inside && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
            break;
    }
    fclose(f);
    return kb;
}

/* av_alloc_large: the alignment asked for (2 MiB from 2 MiB up), writable whole, freed by free(); where
 * transparent huge pages are enabled ("always" or "madvise": the advice is what takes effect there), the
 * first touch of an 8 MiB buffer gets huge pages. */
static void test_alloc_large(void) {
    for (size_t n = 1; n <= ((size_t)8 << 20); n *= 8) {
        unsigned char *p = av_alloc_large(n, 4096);
        REQUIREF(p != NULL, "%zu bytes", n);
        CHECKF((uintptr_t)p % (n >= ((size_t)2 << 20) ? ((size_t)2 << 20) : 4096) == 0, "%zu bytes at %p", n,
               (void *)p);
        memset(p, 0x5a, n);
        CHECK(p[0] == 0x5a && p[n - 1] == 0x5a);
        free(p);
    }
    char mode[32];
    thp_mode(mode, sizeof mode);
    if (strcmp(mode, "always") && strcmp(mode, "madvise")) SKIP("transparent huge pages are '%s' here", mode);
    size_t n = (size_t)8 << 20;
    unsigned char *p = av_alloc_large(n, 64);
    REQUIRE(p != NULL);
    memset(p, 1, n);
    long kb = huge_kb_at(p);
    free(p);
    if (kb < 0) SKIP("no AnonHugePages line for the buffer in /proc/self/smaps");
    CHECKF(kb >= 2048, "8 MiB touched with THP '%s': %ld kB of huge pages in its mapping", mode, kb);
}

/* ---- embedded assets ---- */

static void test_assets_match_web_files(void) {
    static const char *const names[] = {"index.html", "viewer.js", "serve.html", "zoom.js"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const av_asset *a = av_asset_find(names[i]);
        REQUIREF(a, "%s is not embedded", names[i]);
        char path[256], *buf = NULL;
        size_t n = 0;
        av_err err = {{0}};
        snprintf(path, sizeof path, "web/%s", names[i]);
        REQUIREF(av_file_read_all(path, 1 << 24, &buf, &n, &err) == 0, "%s", err.msg);
        CHECKF(a->len == n && memcmp(a->data, buf, n) == 0 && a->data[n] == 0, "%s differs from web/",
               names[i]);
        free(buf);
    }
    CHECK(av_asset_find("missing.js") == NULL);
    CHECK(av_asset_find("web/index.html") == NULL);
}

int main(void) {
    RUN(test_utf8_decode_matches_rfc3629);
    RUN(test_utf8_encode_and_prefix);
    RUN(test_hex_parse_matches_strtoul);
    RUN(test_base64_rfc4648_vectors);
    RUN(test_base64_decode_alphabets_and_errors);
    RUN(test_path_helpers);
    RUN(test_little_endian);
    RUN(test_alloc_large);
    RUN(test_assets_match_web_files);
    return h_exit_code();
}
