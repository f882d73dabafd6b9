/* Pre-tokenizers of byte-level BPE vocabularies in GGUF files, by tokenizer.ggml.pre name, as llama.cpp runs
 * them (llm_tokenizer_bpe + unicode_regex_split):
 *
 *   - the text is decoded to code points (invalid bytes -> U+FFFD) and split by each step of the variant in
 * turn, every step working inside the pieces of the previous one;
 *   - custom steps are llama.cpp's hand-written splitters (gguf_split.c);
 *   - pattern steps run on a "collapsed" copy of the text where every code point is one byte: ASCII stays,
 * other whitespace becomes \v, other characters the byte of their category (0xD1 number, 0xD2 letter, 0xD3
 *     punctuation, 0xD4 mark, 0xD5 symbol, 0xD0 anything else); \p{..} in the pattern becomes a class of that
 *     byte and the ASCII members of the category. So "letters that are not a-z" of the Tekken and GPT-4o
 * patterns include every non-ASCII letter, upper or lower case, exactly as in llama.cpp. Text between matches
 * is kept as pieces of its own;
 *   - each word is then written in GPT-2's byte alphabet (code points past U+10FFFF, which llama.cpp cannot
 *     encode and aborts on, become U+FFFD).
 *
 * The patterns are the ones llama.cpp uses (they adapt the models' tokenizer.json patterns to the collapsed
 * text). */
#include "gguf_tok.h"

#include <stdlib.h>
#include <string.h>

#define CASED_WORD(contraction)                                                                              \
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+" contraction                       \
    "|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*" contraction
#define CONTRACTION_ANY_CASE "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?"
#define PUNCT_AND_SPACES "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

/* clang-format off */
static const gg_pre_variant variants[] = {
    {"default", 4, {GG_SPLIT_REGEX, GG_SPLIT_GPT2, GG_SPLIT_REGEX, GG_SPLIT_REGEX},
     {"[\\p{P}\\$\\+<=>\\^~\\|]+", NULL, "\\p{N}+", "[0-9][0-9][0-9]"}, 0, 0},
    {"gpt-2 phi-2 mpt olmo jais exaone4", 1, {GG_SPLIT_GPT2}, {NULL}, 0, 0},
    {"llama-bpe llama3 llama-v3 falcon3 falcon-h1 pixtral midm-2.0 lfm2", 1, {GG_SPLIT_LLAMA3}, {NULL}, 1, 1},
    {"dbrx smaug-bpe", 1, {GG_SPLIT_LLAMA3}, {NULL}, 0, 0},
    {"qwen2 deepseek-r1-qwen megrez stablelm2", 1, {GG_SPLIT_QWEN2}, {NULL}, 0, 0},
    {"qwen35", 1, {GG_SPLIT_QWEN35}, {NULL}, 0, 0},
    {"smollm starcoder refact command-r codeshell exaone minerva-7b", 2, {GG_SPLIT_REGEX, GG_SPLIT_GPT2},
     {"\\p{N}", NULL}, 0, 0},
    {"tekken", 1, {GG_SPLIT_REGEX}, {CASED_WORD("") "|\\p{N}" PUNCT_AND_SPACES}, 1, 1},
    {"gpt-4o llama4", 1, {GG_SPLIT_REGEX}, {CASED_WORD(CONTRACTION_ANY_CASE) "|\\p{N}{1,3}" PUNCT_AND_SPACES}, 0, 0},
};
/* clang-format on */
enum { N_VARIANTS = sizeof variants / sizeof variants[0] };

static int has_name(const char *names, const char *name) {
    size_t n = strlen(name);
    for (const char *p = names; *p;) {
        const char *end = strchr(p, ' ');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && memcmp(p, name, n) == 0) return 1;
        p += len + (end != NULL);
    }
    return 0;
}

const gg_pre_variant *gg_pre_find(const char *name) {
    if (!name || !*name) return &variants[0];
    for (int i = 0; i < N_VARIANTS; i++)
        if (has_name(variants[i].names, name)) return &variants[i];
    return NULL;
}

const char *gg_pre_names(void) {
    static char buf[512];
    if (!buf[0]) {
        size_t k = 0;
        for (int i = 0; i < N_VARIANTS; i++)
            k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%s", i ? ", " : "", variants[i].names);
        for (char *p = buf; *p; p++)
            if (p[0] == ' ' && p[-1] != ',') *p = '/'; /* "llama-bpe/llama3, qwen2/..." */
    }
    return buf;
}

/* ---- collapsed text and patterns ---- */

enum { COLLAPSED_OTHER = 0xD0, COLLAPSED_WS = 0x0B };

static char collapse_cpt(uint32_t cp, uint16_t f) {
    if (cp < 128) return (char)cp;
    if (f & GG_CPT_WHITESPACE) return COLLAPSED_WS;
    switch (f & GG_CPT_CATEGORIES) {
    case GG_CPT_NUMBER: return (char)0xD1;
    case GG_CPT_LETTER: return (char)0xD2;
    case GG_CPT_PUNCT: return (char)0xD3;
    case GG_CPT_MARK: return (char)0xD4;
    case GG_CPT_SYMBOL: return (char)0xD5;
    default: return (char)COLLAPSED_OTHER;
    }
}

/* \p{X} -> its collapsed byte and ASCII members (inside a class, or as a class of its own). */
static const char *category_class(const char *name, size_t len) {
    static const struct {
        const char *name, *members;
    } cats[] = {
        {"N", "\xD1"
              "0-9"},
        {"L", "\xD2"
              "A-Za-z"},
        {"Lu", "\xD2"
               "A-Za-z"},
        {"Ll", "\xD2"
               "A-Za-z"},
        {"Lt", "\xD2"
               "A-Za-z"},
        {"Lm", "\xD2"
               "A-Za-z"},
        {"Lo", "\xD2"
               "A-Za-z"},
        {"P", "\xD3"
              "!-#%-*,-/:-;?-@\\[-\\]_\\{\\}"},
        {"M", "\xD4"},
        {"S", "\xD5"
              "\\$\\+<->^`\\|\\~"},
    };
    for (size_t i = 0; i < sizeof cats / sizeof cats[0]; i++)
        if (strlen(cats[i].name) == len && memcmp(cats[i].name, name, len) == 0) return cats[i].members;
    return NULL;
}

static int collapse_pattern(const char *p, tok_buf *out) {
    int inside = 0;
    for (size_t i = 0, n = strlen(p); i < n; i++) {
        int escaped = i > 0 && p[i - 1] == '\\';
        if (p[i] == '[' && !escaped)
            inside = 1;
        else if (p[i] == ']' && inside && !escaped)
            inside = 0;
        else if (p[i] == '\\' && i + 3 < n && p[i + 1] == 'p' && p[i + 2] == '{') {
            const char *close = strchr(p + i + 3, '}');
            const char *members = close ? category_class(p + i + 3, (size_t)(close - p - i - 3)) : NULL;
            if (members) {
                if ((!inside && tok_buf_addc(out, '[')) || tok_buf_add(out, members, strlen(members)) ||
                    (!inside && tok_buf_addc(out, ']')))
                    return -1;
                i = (size_t)(close - p);
                continue;
            }
        }
        if (tok_buf_addc(out, p[i])) return -1;
    }
    return 0;
}

int gg_pretok_compile(av_tok_gguf *g, av_err *err) {
    for (int s = 0; s < g->pre->n_steps; s++) {
        if (g->pre->kind[s] != GG_SPLIT_REGEX) continue;
        tok_buf b = {0};
        int rc = collapse_pattern(g->pre->regex[s], &b) ? av_errf(err, "out of memory")
                                                        : hf_regex_compile_bytes(b.p, b.n, &g->re[s], err);
        tok_buf_free(&b);
        if (rc) return -1;
    }
    return 0;
}

/* Splits every piece of in with pattern re over the collapsed text: matches and the text between them. */
static int split_regex(const hf_regex *re, const char *collapsed, const gg_pieces *in, gg_pieces *out,
                       av_err *err) {
    hf_matches m = {0};
    size_t start = 0;
    int rc = 0;
    for (size_t i = 0; i < in->n && rc == 0; i++) {
        size_t len = in->len[i], at = 0;
        rc = hf_regex_find_all(re, collapsed + start, len, &m, err);
        for (size_t k = 0; k < m.n && rc == 0; k++) {
            if (m.v[k].start > at && gg_pieces_push(out, m.v[k].start - at)) rc = -1;
            if (m.v[k].end > m.v[k].start && gg_pieces_push(out, m.v[k].end - m.v[k].start)) rc = -1;
            at = m.v[k].end > at ? m.v[k].end : at;
        }
        if (rc == 0 && at < len && gg_pieces_push(out, len - at)) rc = -1;
        start += len;
    }
    free(m.v);
    return rc ? (err->msg[0] ? -1 : av_errf(err, "out of memory")) : 0;
}

/* Appends the code points [a, b) as GPT-2 byte-alphabet text. */
static int add_bytelevel(tok_buf *words, const gg_text *t, size_t a, size_t b) {
    for (size_t i = a; i < b; i++) {
        char u[4];
        int n = av_utf8_encode(t->cpt[i], u); /* past U+10FFFF: U+FFFD */
        for (int k = 0; k < n; k++)
            if (tok_buf_add_cp(words, hf_byte_to_char((uint8_t)u[k]))) return -1;
    }
    return 0;
}

int gg_pretokenize(const av_tok_gguf *g, const char *s, size_t n, tok_buf *words, gg_pieces *lens,
                   av_err *err) {
    gg_text t = {0};
    gg_pieces cur = {0}, next = {0};
    char *collapsed = NULL;
    int rc = gg_text_decode(&t, s, n) || gg_pieces_push(&cur, t.n) ? av_errf(err, "out of memory") : 0;
    for (int st = 0; rc == 0 && st < g->pre->n_steps; st++) {
        next.n = 0;
        if (g->pre->kind[st] == GG_SPLIT_REGEX) {
            if (!collapsed && (collapsed = malloc(t.n + 1)))
                for (size_t i = 0; i < t.n; i++)
                    collapsed[i] = collapse_cpt(t.cpt[i], t.flags[i]);
            rc = !collapsed ? av_errf(err, "out of memory")
                            : split_regex(g->re[st], collapsed, &cur, &next, err);
        } else if (gg_split_custom(g->pre->kind[st], &t, &cur, &next)) {
            rc = av_errf(err, "out of memory");
        }
        gg_pieces swap = cur;
        cur = next;
        next = swap;
    }
    for (size_t i = 0, at = 0; rc == 0 && i < cur.n; at += cur.len[i++]) {
        size_t before = words->n;
        if (add_bytelevel(words, &t, at, at + cur.len[i]) || gg_pieces_push(lens, words->n - before))
            rc = av_errf(err, "out of memory");
    }
    free(collapsed);
    free(cur.len);
    free(next.len);
    gg_text_free(&t);
    return rc;
}
