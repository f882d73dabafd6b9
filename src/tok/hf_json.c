/* Hugging Face tokenizer.json: the model (BPE, WordPiece, Unigram, WordLevel) with its vocabulary and merges,
 * the added tokens, and the pipeline components (hf_json_parts.c). Truncation and padding settings are
 * ignored: attnviz always encodes the whole text, unpadded. */
#include "hf.h"
#include "io/io.h"

#include <stdlib.h>
#include <string.h>

#define HF_MAX_VOCAB (1 << 22)

static int bool_field(const json_t *j, const char *key, int def) {
    json_t *v = json_object_get(j, key);
    return json_is_boolean(v) ? json_is_true(v) : def;
}

/* Sets piece id (first writer wins unless force). */
static int set_piece(av_tokenizer *t, int64_t id, const char *s, size_t n, int force, const char *where,
                     av_err *err) {
    if (id < 0 || id >= t->n_vocab)
        return av_errf(err, "%s: token id %lld is out of range", where, (long long)id);
    if (memchr(s, 0, n)) return av_errf(err, "%s: token %lld contains a NUL character", where, (long long)id);
    if (t->pieces[id] && !force) return 0;
    char *p = av_strndup(s, n);
    if (!p) return av_errf(err, "out of memory");
    free(t->pieces[id]);
    t->pieces[id] = p;
    return 0;
}

/* Largest id used by the model vocabulary and the added tokens, +1. */
static int64_t count_ids(const json_t *model, const json_t *added, const char *where, av_err *err) {
    json_t *vocab = json_object_get(model, "vocab");
    int64_t n = 0;
    if (json_is_object(vocab)) {
        const char *key;
        json_t *v;
        json_object_foreach(vocab, key, v) {
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= HF_MAX_VOCAB)
                return av_errf(err, "%s: vocabulary entry '%.60s' has a bad id", where, key);
            if (json_integer_value(v) + 1 > n) n = json_integer_value(v) + 1;
        }
    } else if (json_is_array(vocab)) {
        n = (int64_t)json_array_size(vocab);
    } else {
        return av_errf(err, "%s: the model has no \"vocab\"", where);
    }
    for (size_t i = 0; i < json_array_size(added); i++) {
        json_t *id = json_object_get(json_array_get(added, i), "id");
        if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) >= HF_MAX_VOCAB)
            return av_errf(err, "%s: added token %zu has a bad id", where, i);
        if (json_integer_value(id) + 1 > n) n = json_integer_value(id) + 1;
    }
    if (n == 0 || n > HF_MAX_VOCAB) return av_errf(err, "%s: vocabulary of %lld tokens", where, (long long)n);
    return n;
}

static int load_merges(av_tokenizer *t, av_tok_hf *hf, const json_t *merges, const char *where, av_err *err) {
    size_t n = json_array_size(merges);
    size_t plen = hf->bpe.cont_prefix ? strlen(hf->bpe.cont_prefix) : 0;
    tok_buf joined = {0};
    t->merges = calloc(n ? n : 1, sizeof *t->merges);
    if (!t->merges) return av_errf(err, "out of memory");
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        json_t *m = json_array_get(merges, i);
        const char *a, *b;
        size_t la, lb;
        if (json_is_string(m)) { /* "a b" */
            const char *s = json_string_value(m), *sp = strchr(s, ' ');
            if (!sp || strchr(sp + 1, ' ')) {
                rc = av_errf(err, "%s: merge %zu ('%.60s') is not two tokens separated by one space", where,
                             i, s);
                break;
            }
            a = s, la = (size_t)(sp - s), b = sp + 1, lb = strlen(b);
        } else if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
                   json_is_string(json_array_get(m, 1))) {
            a = json_string_value(json_array_get(m, 0)), la = json_string_length(json_array_get(m, 0));
            b = json_string_value(json_array_get(m, 1)), lb = json_string_length(json_array_get(m, 1));
        } else {
            rc = av_errf(err, "%s: merge %zu is neither \"a b\" nor [a, b]", where, i);
            break;
        }
        int ia = av_tok_find(t, a, la), ib = av_tok_find(t, b, lb);
        size_t skip = plen && lb >= plen && memcmp(b, hf->bpe.cont_prefix, plen) == 0 ? plen : 0;
        joined.n = 0;
        if (tok_buf_add(&joined, a, la) || tok_buf_add(&joined, b + skip, lb - skip)) {
            rc = av_errf(err, "out of memory");
            break;
        }
        int im = av_tok_find(t, joined.p, joined.n);
        if (ia < 0 || ib < 0 || im < 0) {
            rc = av_errf(err, "%s: merge %zu ('%.*s' '%.*s') uses a token missing from the vocabulary", where,
                         i, (int)(la > 60 ? 60 : la), a, (int)(lb > 60 ? 60 : lb), b);
            break;
        }
        t->merges[i] = malloc(la + lb + 2);
        if (!t->merges[i] || tok_pairmap_put(&hf->bpe.merges, ia, ib, (int32_t)i, im)) {
            rc = av_errf(err, "out of memory");
            break;
        }
        memcpy(t->merges[i], a, la);
        t->merges[i][la] = ' ';
        memcpy(t->merges[i] + la + 1, b, lb);
        t->merges[i][la + 1 + lb] = 0;
        t->n_merges = (int)i + 1;
    }
    tok_buf_free(&joined);
    return rc;
}

static int opt_string(const json_t *j, const char *key, char **out) {
    const char *s = av_json_str(j, key);
    *out = NULL;
    if (!s || !*s) return 0;
    *out = av_strdup(s);
    return *out ? 0 : -1;
}

static int load_model(av_tokenizer *t, av_tok_hf *hf, const json_t *model, const char *where, av_err *err) {
    const char *type = av_json_str(model, "type");
    json_t *vocab = json_object_get(model, "vocab");
    if (!type) { /* old files: infer from the fields */
        type = json_object_get(model, "merges")                      ? "BPE"
               : json_is_array(vocab)                                ? "Unigram"
               : json_object_get(model, "continuing_subword_prefix") ? "WordPiece"
                                                                     : "WordLevel";
    }
    if (strcmp(type, "Unigram") == 0) {
        hf->model = HF_MODEL_UNIGRAM;
        if (!json_is_array(vocab))
            return av_errf(err, "%s: Unigram \"vocab\" must be a list of [piece, score]", where);
        hf->uni_scores = calloc((size_t)t->n_vocab, sizeof *hf->uni_scores);
        if (!hf->uni_scores || tok_trie_init(&hf->uni_trie)) return av_errf(err, "out of memory");
        hf->uni_min = 1e300;
        for (size_t i = 0; i < json_array_size(vocab); i++) {
            json_t *e = json_array_get(vocab, i), *p = json_array_get(e, 0), *s = json_array_get(e, 1);
            if (!json_is_string(p) || !json_is_number(s))
                return av_errf(err, "%s: Unigram vocab entry %zu is not [piece, score]", where, i);
            if (set_piece(t, (int64_t)i, json_string_value(p), json_string_length(p), 1, where, err))
                return -1;
            hf->uni_scores[i] = json_number_value(s);
            t->scores[i] = (float)hf->uni_scores[i];
            if (hf->uni_scores[i] < hf->uni_min) hf->uni_min = hf->uni_scores[i];
            if (tok_trie_insert(&hf->uni_trie, json_string_value(p), json_string_length(p), (int32_t)i, 1))
                return av_errf(err, "out of memory");
        }
        json_t *unk = json_object_get(model, "unk_id");
        if (json_is_integer(unk)) {
            if (json_integer_value(unk) < 0 || json_integer_value(unk) >= t->n_vocab)
                return av_errf(err, "%s: Unigram unk_id is out of range", where);
            t->unk = (int)json_integer_value(unk);
        }
        hf->uni_byte_fallback = bool_field(model, "byte_fallback", 0);
        hf->uni_fuse_unk = 1;
        return 0;
    }
    int is_wp = strcmp(type, "WordPiece") == 0, is_bpe = strcmp(type, "BPE") == 0,
        is_wl = strcmp(type, "WordLevel") == 0;
    if (!is_wp && !is_bpe && !is_wl)
        return av_errf(err, "%s: unknown model type '%s' (supported: BPE, WordPiece, Unigram, WordLevel)",
                       where, type);
    if (!json_is_object(vocab))
        return av_errf(err, "%s: %s \"vocab\" must be an object {token: id}", where, type);
    const char *key;
    json_t *v;
    json_object_foreach(vocab, key, v) {
        if (set_piece(t, json_integer_value(v), key, strlen(key), 0, where, err)) return -1;
    }
    const char *unk = av_json_str(model, "unk_token");
    hf->model = is_wp ? HF_MODEL_WORDPIECE : is_bpe ? HF_MODEL_BPE : HF_MODEL_WORDLEVEL;
    if (unk) {
        json_t *uid = json_object_get(vocab, unk);
        if (json_is_integer(uid))
            t->unk = (int)json_integer_value(uid);
        else if (!is_bpe)
            return av_errf(err, "%s: unk_token '%s' is not in the vocabulary", where, unk);
    }
    if (is_bpe) {
        if (opt_string(model, "continuing_subword_prefix", &hf->bpe.cont_prefix) ||
            opt_string(model, "end_of_word_suffix", &hf->bpe.eow_suffix))
            return av_errf(err, "out of memory");
        hf->bpe.byte_fallback = bool_field(model, "byte_fallback", 0);
        hf->bpe.fuse_unk = bool_field(model, "fuse_unk", 0);
        hf->bpe.ignore_merges = bool_field(model, "ignore_merges", 0);
        hf->bpe.unk_id = t->unk;
    }
    return 0;
}

static int load_added(av_tokenizer *t, av_tok_hf *hf, const json_t *added, const char *where, av_err *err) {
    size_t n = json_array_size(added);
    hf->added = calloc(n ? n : 1, sizeof *hf->added);
    if (!hf->added) return av_errf(err, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *a = json_array_get(added, i), *c = json_object_get(a, "content");
        if (!json_is_string(c) || json_string_length(c) == 0)
            return av_errf(err, "%s: added token %zu has no \"content\"", where, i);
        hf_added *d = &hf->added[hf->n_added++];
        d->len = json_string_length(c);
        d->content = av_strndup(json_string_value(c), d->len);
        if (!d->content) return av_errf(err, "out of memory");
        d->id = (int32_t)json_integer_value(json_object_get(a, "id"));
        d->single_word = (uint8_t)bool_field(a, "single_word", 0);
        d->lstrip = (uint8_t)bool_field(a, "lstrip", 0);
        d->rstrip = (uint8_t)bool_field(a, "rstrip", 0);
        d->special = (uint8_t)bool_field(a, "special", 0);
        d->normalized = (uint8_t)bool_field(a, "normalized", !d->special);
        if (set_piece(t, d->id, d->content, d->len, 1, where, err)) return -1;
    }
    return 0;
}

/* Added-token tries, once the normalizer is known (normalized tokens are matched in their normalized form).
 */
int hf_finish(av_tokenizer *t, const char *dir, av_err *err) {
    av_tok_hf *hf = t->hf;
    for (int i = 0; i < t->n_vocab; i++)
        if (!t->pieces[i])
            return av_errf(err, "tokenizer: token id %d has no piece (ids must be 0..%d)", i, t->n_vocab - 1);
    if (tok_trie_init(&hf->added_raw) || tok_trie_init(&hf->added_norm)) return av_errf(err, "out of memory");
    for (int i = 0; i < t->n_vocab; i++)
        t->types[i] = AV_TOKTYPE_NORMAL;
    tok_buf norm = {0};
    for (int i = 0; i < hf->n_added; i++) {
        hf_added *a = &hf->added[i];
        t->types[a->id] = a->special ? AV_TOKTYPE_CONTROL : AV_TOKTYPE_USER_DEFINED;
        int rc;
        if (a->normalized && hf->norm) {
            rc = hf_norm_apply(hf->norm, a->content, a->len, &norm, err);
            if (rc == 0 && norm.n) rc = tok_trie_insert(&hf->added_norm, norm.p, norm.n, i, 0);
            hf->n_added_norm++;
        } else {
            rc = tok_trie_insert(a->normalized ? &hf->added_norm : &hf->added_raw, a->content, a->len, i, 0);
            if (a->normalized)
                hf->n_added_norm++;
            else
                hf->n_added_raw++;
        }
        if (rc) {
            tok_buf_free(&norm);
            return -1;
        }
    }
    tok_buf_free(&norm);
    if (t->unk >= 0) t->types[t->unk] = AV_TOKTYPE_UNKNOWN;
    int byte_fallback = (hf->model == HF_MODEL_BPE && hf->bpe.byte_fallback) ||
                        (hf->model == HF_MODEL_UNIGRAM && hf->uni_byte_fallback);
    if (byte_fallback)
        for (int i = 0; i < t->n_vocab; i++)
            if (t->types[i] == AV_TOKTYPE_NORMAL &&
                av_tok_byte_piece(t->pieces[i], strlen(t->pieces[i])) >= 0)
                t->types[i] = AV_TOKTYPE_BYTE;
    if (av_tok_index(t, 1, err)) return -1;
    if (hf->model == HF_MODEL_WORDPIECE && !hf->wp.words.nodes) {
        /* set up by the loader with its prefix */
        return av_errf(err, "internal: WordPiece model not initialized");
    }
    hf->bpe.t = t;
    hf_guess_specials(t, dir);
    return av_tok_build_text(t, err);
}

static int wordpiece_setup(av_tokenizer *t, av_tok_hf *hf, const json_t *model, av_err *err) {
    const char *prefix = av_json_str(model, "continuing_subword_prefix");
    int64_t max_chars;
    if (av_json_int(model, "max_input_chars_per_word", 100, &max_chars, err)) return -1;
    return tok_wordpiece_init(&hf->wp, t, prefix ? prefix : "##", t->unk,
                              (int)(max_chars > INT32_MAX ? INT32_MAX : max_chars), err);
}

int av_tok_load_hf_json(const char *path, av_tokenizer **out, av_err *err) {
    json_t *root;
    if (av_json_load_file(path, &root, err)) return -1;
    av_tokenizer *t = NULL;
    int rc = -1;
    json_t *model = json_object_get(root, "model"), *added = json_object_get(root, "added_tokens");
    if (!json_is_object(root) || !json_is_object(model)) {
        av_errf(err, "%s: not a tokenizer.json (no \"model\" object)", path);
        goto done;
    }
    if (added && !json_is_array(added) && !json_is_null(added)) {
        av_errf(err, "%s: \"added_tokens\" must be a list", path);
        goto done;
    }
    int64_t n = count_ids(model, added, path, err);
    if (n < 0) goto done;
    t = av_tok_alloc(AV_TOK_HF, (int)n, err);
    if (!t) goto done;
    t->hf = calloc(1, sizeof *t->hf);
    if (!t->hf) {
        av_errf(err, "out of memory");
        goto done;
    }
    av_tok_hf *hf = t->hf;
    hf->bpe.unk_id = -1;
    if (load_model(t, hf, model, path, err) || load_added(t, hf, added, path, err)) goto done;
    json_t *nj = json_object_get(root, "normalizer"), *pj = json_object_get(root, "pre_tokenizer");
    json_t *post = json_object_get(root, "post_processor"), *dec = json_object_get(root, "decoder");
    if (nj && !json_is_null(nj)) {
        hf->norm = calloc(1, sizeof *hf->norm);
        if (!hf->norm || hf_json_normalizer(nj, hf->norm, path, err)) goto done;
    }
    if (pj && !json_is_null(pj)) {
        hf->pretok = calloc(1, sizeof *hf->pretok);
        if (!hf->pretok || hf_json_pretok(pj, hf->pretok, path, err)) goto done;
    }
    if (hf->model == HF_MODEL_BPE) {
        /* the vocabulary must be findable before the merges are read */
        for (int i = 0; i < t->n_vocab; i++)
            if (!t->pieces[i] && !(t->pieces[i] = av_strdup(""))) goto done;
        if (av_tok_index(t, 1, err)) goto done;
        json_t *merges = json_object_get(model, "merges");
        if (merges && !json_is_array(merges)) {
            av_errf(err, "%s: BPE \"merges\" must be a list", path);
            goto done;
        }
        if (load_merges(t, hf, merges, path, err)) goto done;
        for (int i = 0; i < t->n_vocab; i++)
            if (!t->pieces[i][0]) {
                free(t->pieces[i]);
                t->pieces[i] = NULL;
            }
    }
    if (hf->model == HF_MODEL_WORDPIECE) {
        for (int i = 0; i < t->n_vocab; i++)
            if (!t->pieces[i]) {
                av_errf(err, "%s: token id %d has no piece", path, i);
                goto done;
            }
        for (int i = 0; i < t->n_vocab; i++)
            t->lens[i] = (int)strlen(t->pieces[i]);
        if (wordpiece_setup(t, hf, model, err)) goto done;
    }
    if (post && !json_is_null(post) && hf_json_post(post, t, hf, path, err)) goto done;
    int text = -1;
    if (dec && !json_is_null(dec) && hf_json_decoder(dec, &text, path, err)) goto done;
    t->text = text >= 0 ? (av_tok_text)text : AV_TOK_TEXT_UNSET;
    char dir[4096];
    if (av_path_dirname(path, dir, sizeof dir)) {
        av_errf(err, "%s: path too long", path);
        goto done;
    }
    if (hf_finish(t, dir, err)) goto done;
    *out = t;
    t = NULL;
    rc = 0;
done:
    av_tokenizer_free(t);
    json_decref(root);
    return rc;
}
