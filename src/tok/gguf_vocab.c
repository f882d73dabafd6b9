/* Tokenizers from GGUF metadata (tokenizer.ggml.*): "llama" and "gpt2" vocabularies become llama.cpp-exact
 * tokenizers (AV_TOK_GGUF, see gguf_tok.h), "bert" a Hugging Face style WordPiece.
 *
 * Also the other direction for `attnviz convert --to gguf`: which tokenizer.ggml.pre name a Hugging Face
 * byte-level pre-tokenizer corresponds to. */
#include "gguf_tok.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The Split patterns of the tokenizer.json files of the models behind two llama.cpp names. */
static const struct {
    const char *name, *pattern;
    int ignore_merges;
} hf_pre_patterns[] = {
    {"llama-bpe",
     "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
     "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
     1},
    {"qwen2",
     "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
     "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
     0},
};

const char *hf_gguf_pre_name(const av_tok_hf *hf) {
    const hf_pretok *p = hf ? hf->pretok : NULL;
    if (!p) return NULL;
    if (p->type == HF_PRE_BYTELEVEL)
        return p->use_regex && !p->add_prefix_space && !hf->bpe.ignore_merges ? "gpt-2" : NULL;
    if (p->type != HF_PRE_SEQUENCE || p->n_items != 2 || p->items[0].type != HF_PRE_SPLIT ||
        p->items[0].behavior != HF_SPLIT_ISOLATED || p->items[0].invert || !p->items[0].pattern.re ||
        !p->items[0].pattern.str || p->items[1].type != HF_PRE_BYTELEVEL || p->items[1].use_regex ||
        p->items[1].add_prefix_space)
        return NULL;
    for (size_t i = 0; i < sizeof hf_pre_patterns / sizeof *hf_pre_patterns; i++) {
        const char *pat = hf_pre_patterns[i].pattern;
        if (strlen(pat) == p->items[0].pattern.len &&
            memcmp(pat, p->items[0].pattern.str, p->items[0].pattern.len) == 0 &&
            hf_pre_patterns[i].ignore_merges == hf->bpe.ignore_merges)
            return hf_pre_patterns[i].name;
    }
    return NULL;
}

av_tok_gguf_spec av_tok_gguf_spec_init(void) {
    av_tok_gguf_spec s;
    memset(&s, 0, sizeof s);
    s.bos = s.eos = s.unk = AV_TOK_ID_ABSENT;
    for (int i = 0; i < 6; i++)
        s.fim[i] = AV_TOK_ID_ABSENT;
    s.add_bos = s.add_eos = s.add_space_prefix = -1;
    return s;
}

static void spec_free_arrays(av_tok_gguf_spec *s) {
    for (int i = 0; s->pieces && i < s->n; i++)
        free(s->pieces[i]);
    for (int i = 0; s->merges && i < s->n_merges; i++)
        free(s->merges[i]);
    free(s->pieces);
    free(s->merges);
    free(s->scores);
    free(s->types);
    s->pieces = s->merges = NULL;
    s->scores = NULL;
    s->types = NULL;
}

/* An id from the file, or llama.cpp's default when the key is absent or out of range (-1: none). */
static int pick_id(int given, int def, int n) {
    if (given >= 0 && given < n) return given;
    return def >= 0 && def < n ? def : -1;
}

/* ---- "bert": WordPiece with BERT's normalizer, [CLS] ... [SEP] ---- */
static int build_wordpiece(av_tokenizer *t, av_err *err) {
    av_tok_hf *hf = t->hf;
    hf->model = HF_MODEL_WORDPIECE;
    t->text = AV_TOK_TEXT_WORDPIECE;
    hf->norm = calloc(1, sizeof *hf->norm);
    hf->pretok = calloc(1, sizeof *hf->pretok);
    if (!hf->norm || !hf->pretok) return av_errf(err, "out of memory");
    *hf->norm =
        (hf_norm){.type = HF_NORM_BERT, .clean_text = 1, .chinese = 1, .strip_accents = 1, .lowercase = 1};
    hf->pretok->type = HF_PRE_BERT;
    if (t->unk < 0) t->unk = av_tok_find(t, "[UNK]", 5);
    if (tok_wordpiece_init(&hf->wp, t, "##", t->unk, 100, err)) return -1;
    int cls = av_tok_find(t, "[CLS]", 5), sep = av_tok_find(t, "[SEP]", 5);
    if (cls >= 0 && sep >= 0) {
        hf->prefix = malloc(sizeof *hf->prefix);
        hf->suffix = malloc(sizeof *hf->suffix);
        if (!hf->prefix || !hf->suffix) return av_errf(err, "out of memory");
        hf->prefix[0] = cls, hf->suffix[0] = sep, hf->n_prefix = hf->n_suffix = 1;
    }
    /* control and user-defined tokens are matched in the text as added tokens */
    hf->added = calloc((size_t)t->n_vocab, sizeof *hf->added);
    if (!hf->added) return av_errf(err, "out of memory");
    for (int i = 0; i < t->n_vocab; i++) {
        if ((t->types[i] != AV_TOKTYPE_CONTROL && t->types[i] != AV_TOKTYPE_USER_DEFINED) || !t->lens[i])
            continue;
        hf_added *a = &hf->added[hf->n_added++];
        *a = (hf_added){.content = av_strdup(t->pieces[i]),
                        .len = (size_t)t->lens[i],
                        .id = i,
                        .special = t->types[i] == AV_TOKTYPE_CONTROL};
        if (!a->content) return av_errf(err, "out of memory");
    }
    int bos = t->bos, eos = t->eos;
    if (hf_finish(t, NULL, err)) return -1;
    t->bos = bos >= 0 ? bos : t->bos;
    t->eos = eos >= 0 ? eos : t->eos;
    return 0;
}

/* ---- "llama" / "gpt2": llama.cpp's tokenizers ---- */

/* Merges "left right" (split at the first space after the first byte, as llama.cpp does) -> ranked id
 * pairs. */
static int load_merges(av_tokenizer *t, av_err *err) {
    tok_bpe *b = &t->gg->bpe;
    for (int i = 0; i < t->n_merges; i++) {
        const char *m = t->merges[i], *sp = m && m[0] ? strchr(m + 1, ' ') : NULL;
        int left = sp ? av_tok_find(t, m, (size_t)(sp - m)) : -1,
            right = sp ? av_tok_find(t, sp + 1, strlen(sp + 1)) : -1;
        char joined[2048];
        int id = -1;
        if (left >= 0 && right >= 0 && t->lens[left] + t->lens[right] < (int)sizeof joined) {
            memcpy(joined, m, (size_t)(sp - m));
            memcpy(joined + (sp - m), sp + 1, strlen(sp + 1));
            id = av_tok_find(t, joined, (size_t)(t->lens[left] + t->lens[right]));
        }
        if (id < 0)
            return av_errf(err,
                           "gguf tokenizer: merge %d ('%.60s') uses or makes a string that is not a token", i,
                           m ? m : "");
        if (tok_pairmap_put(&b->merges, left, right, i, id)) return av_errf(err, "out of memory");
    }
    return 0;
}

/* llama.cpp refuses vocabularies that hold a piece twice (its text -> id map must have one entry per
 * token). */
static int check_unique(const av_tokenizer *t, av_err *err) {
    for (int i = 0; i < t->n_vocab; i++) {
        int id = av_tok_find(t, t->pieces[i], (size_t)t->lens[i]);
        if (id != i)
            return av_errf(err, "gguf tokenizer: tokens %d and %d are both '%.60s'", id, i, t->pieces[i]);
    }
    return 0;
}

static int build_llamacpp(av_tokenizer *t, av_tok_gguf_spec *s, int bpe, av_err *err) {
    av_tok_gguf *g = t->gg;
    int n = t->n_vocab;
    g->vocab = bpe ? GG_VOCAB_BPE : GG_VOCAB_SPM;
    if (bpe && !(g->pre = gg_pre_find(s->pre)))
        return av_errf(err, "gguf tokenizer: unknown tokenizer.ggml.pre '%.60s' (supported: %s)", s->pre,
                       gg_pre_names());
    g->add_bos = s->add_bos >= 0 ? s->add_bos : bpe ? g->pre->add_bos : 1;
    g->add_eos = s->add_eos >= 0 ? s->add_eos : 0;
    g->add_space_prefix = bpe ? 0 : s->add_space_prefix >= 0 ? s->add_space_prefix : 1;
    g->ignore_merges = bpe && g->pre->ignore_merges;
    t->bos = pick_id(s->bos, bpe ? 11 : 1, n);
    t->eos = pick_id(s->eos, bpe ? 11 : 2, n);
    t->unk = pick_id(s->unk, bpe ? -1 : 0, n);
    t->family = bpe ? "gpt2" : "llama";
    t->text = bpe ? AV_TOK_TEXT_BYTELEVEL : AV_TOK_TEXT_METASPACE;
    if (bpe && !(g->pre_name = av_strdup(s->pre && *s->pre ? s->pre : "default")))
        return av_errf(err, "out of memory");
    t->gguf_pre = g->pre_name; /* written back as it was by `attnviz convert` */
    if (g->add_bos && t->bos < 0)
        return av_errf(err, "gguf tokenizer: add_bos_token is set but there is no BOS token");
    if (g->add_eos && t->eos < 0)
        return av_errf(err, "gguf tokenizer: add_eos_token is set but there is no EOS token");
    int fim_given[6];
    for (int k = 0; k < 6; k++)
        fim_given[k] = s->fim[k] >= 0 && s->fim[k] < n;
    if (av_tok_index(t, 1, err) || check_unique(t, err) || gg_build_attrs(t, s, fim_given, err)) return -1;
    if (bpe) {
        g->bpe.t = t;
        g->bpe.unk_id = -1;
        g->bpe.ignore_merges = g->ignore_merges;
        if (load_merges(t, err) || gg_pretok_compile(g, err)) return -1;
    }
    return av_tok_build_text(t, err);
}

static int fill_vocab(av_tokenizer *t, av_tok_gguf_spec *s, av_err *err) {
    for (int i = 0; i < s->n; i++) {
        t->pieces[i] = s->pieces[i];
        s->pieces[i] = NULL;
        if (!t->pieces[i] || !t->pieces[i][0]) { /* llama.cpp names empty tokens */
            char name[32];
            snprintf(name, sizeof name, "[EMPTY_%d]", i);
            free(t->pieces[i]);
            if (!(t->pieces[i] = av_strdup(name))) return av_errf(err, "out of memory");
        }
        t->scores[i] = s->scores ? s->scores[i] : 0.0f;
        t->types[i] = s->types ? s->types[i] : AV_TOKTYPE_NORMAL;
    }
    t->merges = s->merges;
    t->n_merges = s->merges ? s->n_merges : 0;
    s->merges = NULL;
    if (s->chat_template && !(t->chat_template = av_strdup(s->chat_template)))
        return av_errf(err, "out of memory");
    return 0;
}

int av_tok_from_gguf(av_tok_gguf_spec *s, av_tokenizer **out, av_err *err) {
    *out = NULL;
    const char *model = s->model ? s->model : "llama";
    int llama = strcmp(model, "llama") == 0, gpt2 = strcmp(model, "gpt2") == 0,
        bert = strcmp(model, "bert") == 0;
    int rc = 0;
    if (s->n <= 0 || !s->pieces)
        rc = av_errf(err, "gguf tokenizer: no tokens");
    else if (!llama && !gpt2 && !bert)
        rc = av_errf(err, "gguf tokenizer: tokenizer.ggml.model '%.40s' is not supported (llama, gpt2, bert)",
                     model);
    av_tokenizer *t = rc ? NULL : av_tok_alloc(bert ? AV_TOK_HF : AV_TOK_GGUF, s->n, err);
    if (!rc && !t) rc = -1;
    if (!rc && bert && !(t->hf = calloc(1, sizeof *t->hf))) rc = av_errf(err, "out of memory");
    if (!rc && !bert && !(t->gg = calloc(1, sizeof *t->gg))) rc = av_errf(err, "out of memory");
    if (!rc) rc = fill_vocab(t, s, err);
    if (!rc && bert) {
        t->bos = pick_id(s->bos, -1, s->n);
        t->eos = pick_id(s->eos, -1, s->n);
        t->unk = pick_id(s->unk, -1, s->n);
        rc = av_tok_index(t, 1, err) || build_wordpiece(t, err) ? -1 : 0;
        t->family = "bert";
    } else if (!rc) {
        rc = build_llamacpp(t, s, gpt2, err);
    }
    spec_free_arrays(s);
    if (rc) {
        av_tokenizer_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

void av_tok_gguf_free(av_tok_gguf *g) {
    if (!g) return;
    free(g->attr);
    free(g->specials);
    free(g->pre_name);
    tok_trie_free(&g->special_trie);
    for (int i = 0; i < GG_MAX_STEPS; i++)
        hf_regex_free(g->re[i]);
    tok_pairmap_free(&g->bpe.merges);
    free(g);
}
