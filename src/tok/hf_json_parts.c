/* tokenizer.json components: normalizers, pre-tokenizers, post-processors and decoders. Every object is
 * checked for its "type"; an unknown type is an error that names it. */
#include "hf.h"
#include "io/io.h"

#include <stdlib.h>
#include <string.h>

static const char *type_of(const json_t *j) { return av_json_str(j, "type"); }

static int bool_field(const json_t *j, const char *key, int def) {
    json_t *v = json_object_get(j, key);
    return json_is_boolean(v) ? json_is_true(v) : def;
}

static char *dup_field(const json_t *j, const char *key, const char *def) {
    const char *s = av_json_str(j, key);
    return av_strdup(s ? s : def);
}

int hf_json_pattern(const json_t *j, hf_pattern *out, const char *where, av_err *err) {
    memset(out, 0, sizeof *out);
    const char *s;
    if (json_is_object(j) && (s = av_json_str(j, "String"))) {
        out->len = json_string_length(json_object_get(j, "String"));
        out->str = av_strndup(s, out->len);
        return out->str ? 0 : av_errf(err, "out of memory");
    }
    if (json_is_object(j) && (s = av_json_str(j, "Regex"))) {
        size_t n = json_string_length(json_object_get(j, "Regex"));
        if (hf_regex_compile(s, n, &out->re, err)) return av_err_prefix(err, "%s", where);
        return 0;
    }
    return av_errf(err, "%s: a pattern must be {\"String\": ...} or {\"Regex\": ...}", where);
}

/* ---- normalizers ---- */

int hf_json_normalizer(const json_t *j, hf_norm *out, const char *where, av_err *err) {
    memset(out, 0, sizeof *out);
    const char *type = type_of(j);
    if (!type) return av_errf(err, "%s: normalizer without a \"type\"", where);
    static const struct {
        const char *name;
        hf_norm_type t;
    } simple[] = {{"NFC", HF_NORM_NFC},
                  {"NFD", HF_NORM_NFD},
                  {"NFKC", HF_NORM_NFKC},
                  {"NFKD", HF_NORM_NFKD},
                  {"Lowercase", HF_NORM_LOWERCASE},
                  {"StripAccents", HF_NORM_STRIP_ACCENTS}};
    for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++)
        if (strcmp(type, simple[i].name) == 0) {
            out->type = simple[i].t;
            return 0;
        }
    if (strcmp(type, "BertNormalizer") == 0) {
        out->type = HF_NORM_BERT;
        out->clean_text = bool_field(j, "clean_text", 1);
        out->chinese = bool_field(j, "handle_chinese_chars", 1);
        out->lowercase = bool_field(j, "lowercase", 1);
        out->strip_accents = bool_field(j, "strip_accents", out->lowercase); /* null: follows lowercase */
        return 0;
    }
    if (strcmp(type, "Replace") == 0) {
        out->type = HF_NORM_REPLACE;
        if (!av_json_str(j, "content"))
            return av_errf(err, "%s: Replace normalizer without \"content\"", where);
        out->content = dup_field(j, "content", "");
        if (!out->content) return av_errf(err, "out of memory");
        return hf_json_pattern(json_object_get(j, "pattern"), &out->pattern, where, err);
    }
    if (strcmp(type, "Prepend") == 0) {
        out->type = HF_NORM_PREPEND;
        if (!av_json_str(j, "prepend"))
            return av_errf(err, "%s: Prepend normalizer without \"prepend\"", where);
        out->content = dup_field(j, "prepend", "");
        return out->content ? 0 : av_errf(err, "out of memory");
    }
    if (strcmp(type, "Strip") == 0) {
        out->type = HF_NORM_STRIP;
        out->left = bool_field(j, "strip_left", 1);
        out->right = bool_field(j, "strip_right", 1);
        return 0;
    }
    if (strcmp(type, "Precompiled") == 0) {
        out->type = HF_NORM_PRECOMPILED;
        json_t *m = json_object_get(j, "precompiled_charsmap");
        if (!m || json_is_null(m)) return 0; /* identity */
        if (!json_is_string(m))
            return av_errf(err, "%s: \"precompiled_charsmap\" must be a base64 string", where);
        uint8_t *blob;
        size_t n;
        if (av_base64_decode(json_string_value(m), json_string_length(m), &blob, &n))
            return av_errf(err, "%s: \"precompiled_charsmap\" is not valid base64", where);
        int rc = tok_charsmap_parse(&out->charsmap, blob, n, where, err);
        free(blob);
        return rc;
    }
    if (strcmp(type, "Sequence") == 0) {
        out->type = HF_NORM_SEQUENCE;
        json_t *items = json_object_get(j, "normalizers");
        if (!json_is_array(items))
            return av_errf(err, "%s: Sequence normalizer without a \"normalizers\" list", where);
        size_t n = json_array_size(items);
        out->items = calloc(n ? n : 1, sizeof *out->items);
        if (!out->items) return av_errf(err, "out of memory");
        for (size_t i = 0; i < n; i++) {
            out->n_items = (int)i + 1;
            if (hf_json_normalizer(json_array_get(items, i), &out->items[i], where, err)) return -1;
        }
        return 0;
    }
    return av_errf(
        err,
        "%s: unknown normalizer type '%s' (supported: NFC, NFD, NFKC, NFKD, Lowercase, StripAccents, "
        "BertNormalizer, Replace, Prepend, Strip, Precompiled, Sequence)",
        where, type);
}

/* ---- pre-tokenizers ---- */

static int parse_behavior(const json_t *j, hf_behavior def, hf_behavior *out, const char *where,
                          av_err *err) {
    const char *b = av_json_str(j, "behavior");
    static const char *names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext",
                                  "Contiguous"};
    if (!b) {
        *out = def;
        return 0;
    }
    for (int i = 0; i < 5; i++)
        if (strcmp(b, names[i]) == 0) {
            *out = (hf_behavior)i;
            return 0;
        }
    return av_errf(err, "%s: unknown split behavior '%s'", where, b);
}

int hf_json_pretok(const json_t *j, hf_pretok *out, const char *where, av_err *err) {
    memset(out, 0, sizeof *out);
    const char *type = type_of(j);
    if (!type) return av_errf(err, "%s: pre-tokenizer without a \"type\"", where);
    if (strcmp(type, "BertPreTokenizer") == 0) {
        out->type = HF_PRE_BERT;
        return 0;
    }
    if (strcmp(type, "WhitespaceSplit") == 0) {
        out->type = HF_PRE_WHITESPACE_SPLIT;
        return 0;
    }
    if (strcmp(type, "Whitespace") == 0) {
        out->type = HF_PRE_WHITESPACE;
        static const char re[] = "\\w+|[^\\w\\s]+";
        return hf_regex_compile(re, strlen(re), &out->regex, err);
    }
    if (strcmp(type, "ByteLevel") == 0) {
        out->type = HF_PRE_BYTELEVEL;
        out->add_prefix_space = bool_field(j, "add_prefix_space", 1);
        out->use_regex = bool_field(j, "use_regex", 1);
        return out->use_regex ? hf_gpt2_regex(0, &out->regex, err) : 0;
    }
    if (strcmp(type, "Metaspace") == 0) {
        out->type = HF_PRE_METASPACE;
        out->replacement = dup_field(j, "replacement", "\xE2\x96\x81");
        if (!out->replacement) return av_errf(err, "out of memory");
        if (!out->replacement[0]) return av_errf(err, "%s: Metaspace replacement is empty", where);
        out->split = bool_field(j, "split", 1);
        const char *scheme = av_json_str(j, "prepend_scheme");
        if (scheme) {
            if (strcmp(scheme, "always") == 0)
                out->prepend_scheme = HF_PREPEND_ALWAYS;
            else if (strcmp(scheme, "first") == 0)
                out->prepend_scheme = HF_PREPEND_FIRST;
            else if (strcmp(scheme, "never") == 0)
                out->prepend_scheme = HF_PREPEND_NEVER;
            else
                return av_errf(err, "%s: unknown Metaspace prepend_scheme '%s'", where, scheme);
        } else {
            out->prepend_scheme = bool_field(j, "add_prefix_space", 1) ? HF_PREPEND_ALWAYS : HF_PREPEND_NEVER;
        }
        return 0;
    }
    if (strcmp(type, "Split") == 0) {
        out->type = HF_PRE_SPLIT;
        out->invert = bool_field(j, "invert", 0);
        if (parse_behavior(j, HF_SPLIT_ISOLATED, &out->behavior, where, err)) return -1;
        return hf_json_pattern(json_object_get(j, "pattern"), &out->pattern, where, err);
    }
    if (strcmp(type, "Punctuation") == 0) {
        out->type = HF_PRE_PUNCTUATION;
        return parse_behavior(j, HF_SPLIT_ISOLATED, &out->behavior, where, err);
    }
    if (strcmp(type, "Digits") == 0) {
        out->type = HF_PRE_DIGITS;
        out->individual_digits = bool_field(j, "individual_digits", 0);
        return 0;
    }
    if (strcmp(type, "CharDelimiterSplit") == 0) {
        out->type = HF_PRE_CHAR_DELIMITER;
        const char *d = av_json_str(j, "delimiter");
        uint32_t cp;
        if (!d || !av_utf8_decode(d, strlen(d), &cp) ||
            (size_t)av_utf8_decode(d, strlen(d), &cp) != strlen(d))
            return av_errf(err, "%s: CharDelimiterSplit needs a one-character \"delimiter\"", where);
        out->delimiter = cp;
        return 0;
    }
    if (strcmp(type, "Sequence") == 0) {
        out->type = HF_PRE_SEQUENCE;
        json_t *items = json_object_get(j, "pretokenizers");
        if (!json_is_array(items))
            return av_errf(err, "%s: Sequence pre-tokenizer without a \"pretokenizers\" list", where);
        size_t n = json_array_size(items);
        out->items = calloc(n ? n : 1, sizeof *out->items);
        if (!out->items) return av_errf(err, "out of memory");
        for (size_t i = 0; i < n; i++) {
            out->n_items = (int)i + 1;
            if (hf_json_pretok(json_array_get(items, i), &out->items[i], where, err)) return -1;
        }
        return 0;
    }
    return av_errf(err,
                   "%s: unknown pre-tokenizer type '%s' (supported: BertPreTokenizer, ByteLevel, Metaspace, "
                   "Split, Digits, Whitespace, WhitespaceSplit, Punctuation, CharDelimiterSplit, Sequence)",
                   where, type);
}

/* ---- post-processors ---- */

static int append_ids(int32_t **v, int *n, const int32_t *ids, int k, int front) {
    int32_t *p = realloc(*v, sizeof *p * (size_t)(*n + k + 1));
    if (!p) return -1;
    if (front) {
        memmove(p + k, p, sizeof *p * (size_t)*n);
        memcpy(p, ids, sizeof *p * (size_t)k);
    } else {
        memcpy(p + *n, ids, sizeof *p * (size_t)k);
    }
    *v = p;
    *n += k;
    return 0;
}

static int pair_id(const json_t *pair, const av_tokenizer *t, int32_t *id, const char *what,
                   const char *where, av_err *err) {
    json_t *v = json_array_get(pair, 1);
    if (!json_is_array(pair) || !json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) >= t->n_vocab)
        return av_errf(err, "%s: post-processor \"%s\" must be [token, id] with an id in the vocabulary",
                       where, what);
    *id = (int32_t)json_integer_value(v);
    return 0;
}

int hf_json_post(const json_t *j, const av_tokenizer *t, av_tok_hf *hf, const char *where, av_err *err) {
    const char *type = type_of(j);
    if (!type) return av_errf(err, "%s: post-processor without a \"type\"", where);
    int32_t pre[64], suf[64];
    int np = 0, ns = 0;
    if (strcmp(type, "BertProcessing") == 0 || strcmp(type, "RobertaProcessing") == 0) {
        if (pair_id(json_object_get(j, "cls"), t, &pre[0], "cls", where, err) ||
            pair_id(json_object_get(j, "sep"), t, &suf[0], "sep", where, err))
            return -1;
        np = ns = 1;
    } else if (strcmp(type, "TemplateProcessing") == 0) {
        json_t *single = json_object_get(j, "single"), *specials = json_object_get(j, "special_tokens");
        if (!json_is_array(single))
            return av_errf(err, "%s: TemplateProcessing without a \"single\" template", where);
        int seen_seq = 0;
        for (size_t i = 0; i < json_array_size(single); i++) {
            json_t *item = json_array_get(single, i), *sp = json_object_get(item, "SpecialToken");
            if (json_object_get(item, "Sequence")) {
                seen_seq = 1;
                continue;
            }
            const char *name = av_json_str(sp, "id");
            json_t *def = name ? json_object_get(specials, name) : NULL, *ids = json_object_get(def, "ids");
            if (!json_is_array(ids))
                return av_errf(err, "%s: TemplateProcessing special token '%s' has no ids", where,
                               name ? name : "?");
            for (size_t k = 0; k < json_array_size(ids); k++) {
                json_t *v = json_array_get(ids, k);
                if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= t->n_vocab)
                    return av_errf(
                        err, "%s: TemplateProcessing special token '%s' has an id outside the vocabulary",
                        where, name);
                int32_t *dst = seen_seq ? suf : pre;
                int *cnt = seen_seq ? &ns : &np;
                if (*cnt >= 64) return av_errf(err, "%s: TemplateProcessing adds too many tokens", where);
                dst[(*cnt)++] = (int32_t)json_integer_value(v);
            }
        }
    } else if (strcmp(type, "ByteLevel") == 0) {
        return 0; /* offsets only */
    } else if (strcmp(type, "Sequence") == 0) {
        json_t *items = json_object_get(j, "processors");
        if (!json_is_array(items))
            return av_errf(err, "%s: Sequence post-processor without \"processors\"", where);
        for (size_t i = 0; i < json_array_size(items); i++)
            if (hf_json_post(json_array_get(items, i), t, hf, where, err)) return -1;
        return 0;
    } else {
        return av_errf(err,
                       "%s: unknown post-processor type '%s' (supported: TemplateProcessing, BertProcessing, "
                       "RobertaProcessing, ByteLevel, Sequence)",
                       where, type);
    }
    if (append_ids(&hf->prefix, &hf->n_prefix, pre, np, 1) ||
        append_ids(&hf->suffix, &hf->n_suffix, suf, ns, 0))
        return av_errf(err, "out of memory");
    return 0;
}

/* ---- decoders: only how token text is spelled matters here ---- */

int hf_json_decoder(const json_t *j, int *text, const char *where, av_err *err) {
    const char *type = type_of(j);
    if (!type) return av_errf(err, "%s: decoder without a \"type\"", where);
    if (strcmp(type, "ByteLevel") == 0)
        *text = AV_TOK_TEXT_BYTELEVEL;
    else if (strcmp(type, "WordPiece") == 0)
        *text = AV_TOK_TEXT_WORDPIECE;
    else if (strcmp(type, "Metaspace") == 0 || strcmp(type, "ByteFallback") == 0) {
        if (*text < 0 || *text == AV_TOK_TEXT_RAW) *text = AV_TOK_TEXT_METASPACE;
    } else if (strcmp(type, "Replace") == 0) {
        const char *s = av_json_str(json_object_get(j, "pattern"), "String");
        if (s && strcmp(s, "\xE2\x96\x81") == 0 && *text < 0) *text = AV_TOK_TEXT_METASPACE;
    } else if (strcmp(type, "Sequence") == 0) {
        json_t *items = json_object_get(j, "decoders");
        if (!json_is_array(items)) return av_errf(err, "%s: Sequence decoder without \"decoders\"", where);
        for (size_t i = 0; i < json_array_size(items); i++)
            if (hf_json_decoder(json_array_get(items, i), text, where, err)) return -1;
    } else if (strcmp(type, "BPEDecoder") == 0 || strcmp(type, "CTC") == 0 || strcmp(type, "Fuse") == 0 ||
               strcmp(type, "Strip") == 0) {
        if (*text < 0) *text = AV_TOK_TEXT_RAW;
    } else {
        return av_errf(
            err,
            "%s: unknown decoder type '%s' (supported: ByteLevel, WordPiece, Metaspace, ByteFallback, "
            "Replace, Fuse, Strip, BPEDecoder, CTC, Sequence)",
            where, type);
    }
    return 0;
}
