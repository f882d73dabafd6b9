/* Tokenizers from GGUF metadata (tokenizer.ggml.model / tokens / scores / token_type / merges / pre), built
 * into the same encoders the other sources use: "llama" -> SentencePiece BPE (sp_model.c), "gpt2" ->
 * byte-level BPE with the pre-tokenizer pattern tokenizer.ggml.pre names, "bert" -> WordPiece. */
#include "hf.h"

#include <stdlib.h>
#include <string.h>

/* The regexes of llama.cpp's pre-tokenizer names (also those of the models' tokenizer.json files). */
static const char *pre_pattern(const char *pre, int *ignore_merges) {
    *ignore_merges = 0;
    if (!pre || !*pre || strcmp(pre, "default") == 0 || strcmp(pre, "gpt-2") == 0) return "";
    if (strcmp(pre, "llama3") == 0 || strcmp(pre, "llama-bpe") == 0) {
        *ignore_merges = 1;
        return "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
               "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
               "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    }
    if (strcmp(pre, "qwen2") == 0)
        return "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
               "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
               "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    return NULL;
}

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
    static const char *const names[] = {"llama-bpe", "qwen2"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        int ignore_merges;
        const char *pat = pre_pattern(names[i], &ignore_merges);
        if (strlen(pat) == p->items[0].pattern.len &&
            memcmp(pat, p->items[0].pattern.str, p->items[0].pattern.len) == 0 &&
            ignore_merges == hf->bpe.ignore_merges)
            return names[i];
    }
    return NULL;
}

static void free_all(int n, char **pieces, float *scores, int *types, char **merges, int n_merges) {
    for (int i = 0; pieces && i < n; i++)
        free(pieces[i]);
    free(pieces);
    free(scores);
    free(types);
    for (int i = 0; merges && i < n_merges; i++)
        free(merges[i]);
    free(merges);
}

static int setup_pretok(av_tok_hf *hf, const char *pre, av_err *err) {
    int ignore_merges;
    const char *pat = pre_pattern(pre, &ignore_merges);
    if (!pat)
        return av_errf(err,
                       "gguf tokenizer: unknown tokenizer.ggml.pre '%s' (supported: default, gpt-2, llama3, "
                       "llama-bpe, qwen2)",
                       pre);
    hf->bpe.ignore_merges = ignore_merges;
    hf->pretok = calloc(1, sizeof *hf->pretok);
    if (!hf->pretok) return av_errf(err, "out of memory");
    if (!*pat) { /* GPT-2: ByteLevel with its own pattern */
        hf->pretok->type = HF_PRE_BYTELEVEL;
        hf->pretok->use_regex = 1;
        return hf_gpt2_regex(0, &hf->pretok->regex, err);
    }
    /* Split(pattern, Isolated) then ByteLevel without regex, as those tokenizer.json files say */
    hf->pretok->type = HF_PRE_SEQUENCE;
    hf->pretok->items = calloc(2, sizeof *hf->pretok->items);
    if (!hf->pretok->items) return av_errf(err, "out of memory");
    hf->pretok->n_items = 2;
    hf->pretok->items[0].type = HF_PRE_SPLIT;
    hf->pretok->items[0].behavior = HF_SPLIT_ISOLATED;
    hf->pretok->items[1].type = HF_PRE_BYTELEVEL;
    hf->pretok->items[0].pattern.len = strlen(pat);
    if (!(hf->pretok->items[0].pattern.str = av_strdup(pat))) return av_errf(err, "out of memory");
    return hf_regex_compile(pat, strlen(pat), &hf->pretok->items[0].pattern.re, err);
}

int av_tok_from_gguf(const char *family, const char *pre, int n, char **pieces, float *scores, int *types,
                     char **merges, int n_merges, int bos, int eos, int unk, int add_space_prefix,
                     av_tokenizer **out, av_err *err) {
    *out = NULL;
    if (n <= 0 || !pieces) {
        free_all(n, pieces, scores, types, merges, n_merges);
        return av_errf(err, "gguf tokenizer: no tokens");
    }
    int is_llama = !family || strcmp(family, "llama") == 0;
    if (is_llama) {
        for (int i = 0; merges && i < n_merges; i++)
            free(merges[i]);
        free(merges);
        if (!scores) scores = calloc((size_t)n, sizeof *scores);
        if (!types && (types = malloc(sizeof *types * (size_t)n)))
            for (int i = 0; i < n; i++)
                types[i] = av_tok_byte_piece(pieces[i], pieces[i] ? strlen(pieces[i]) : 0) >= 0
                               ? AV_TOKTYPE_BYTE
                           : i == unk               ? AV_TOKTYPE_UNKNOWN
                           : (i == bos || i == eos) ? AV_TOKTYPE_CONTROL
                                                    : AV_TOKTYPE_NORMAL;
        if (!scores || !types) {
            free_all(n, pieces, scores, types, NULL, 0);
            return av_errf(err, "out of memory");
        }
        return av_tok_sp_from_pieces(n, pieces, scores, types, add_space_prefix, bos, eos, out, err);
    }
    int gpt2 = strcmp(family, "gpt2") == 0, bert = strcmp(family, "bert") == 0;
    if (!gpt2 && !bert) {
        free_all(n, pieces, scores, types, merges, n_merges);
        return av_errf(err, "gguf tokenizer: tokenizer.ggml.model '%s' is not supported (llama, gpt2, bert)",
                       family);
    }
    av_tokenizer *t = av_tok_alloc(AV_TOK_HF, n, err);
    if (!t || !(t->hf = calloc(1, sizeof *t->hf))) {
        av_tokenizer_free(t);
        free_all(n, pieces, scores, types, merges, n_merges);
        return t ? av_errf(err, "out of memory") : -1;
    }
    av_tok_hf *hf = t->hf;
    hf->bpe.unk_id = -1;
    for (int i = 0; i < n; i++) {
        t->pieces[i] = pieces[i] ? pieces[i] : av_strdup("");
        t->scores[i] = scores ? scores[i] : 0.0f;
        t->types[i] = types ? types[i] : AV_TOKTYPE_NORMAL;
    }
    free(pieces);
    free(scores);
    t->merges = merges;
    t->n_merges = merges ? n_merges : 0;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++)
        if (!t->pieces[i]) rc = av_errf(err, "out of memory");
    if (rc == 0) rc = av_tok_index(t, 1, err);
    /* control and user-defined tokens are matched in the text as added tokens */
    hf->added = calloc((size_t)n, sizeof *hf->added);
    if (rc == 0 && !hf->added) rc = av_errf(err, "out of memory");
    for (int i = 0; i < n && rc == 0 && types; i++) {
        if ((types[i] != AV_TOKTYPE_CONTROL && types[i] != AV_TOKTYPE_USER_DEFINED) || !t->lens[i]) continue;
        hf_added *a = &hf->added[hf->n_added++];
        a->len = (size_t)t->lens[i];
        a->content = av_strdup(t->pieces[i]);
        a->id = i;
        a->special = types[i] == AV_TOKTYPE_CONTROL;
        if (!a->content) rc = av_errf(err, "out of memory");
    }
    free(types);
    t->unk = unk >= 0 && unk < n ? unk : -1;
    if (rc == 0 && gpt2) {
        hf->model = HF_MODEL_BPE;
        hf->bpe.unk_id = t->unk;
        t->text = AV_TOK_TEXT_BYTELEVEL;
        for (int i = 0; i < t->n_merges && rc == 0; i++) {
            const char *m = t->merges[i], *sp = m ? strchr(m, ' ') : NULL;
            int a = sp ? av_tok_find(t, m, (size_t)(sp - m)) : -1,
                b = sp ? av_tok_find(t, sp + 1, strlen(sp + 1)) : -1;
            char joined[1024];
            int c = -1;
            if (sp && strlen(m) < sizeof joined) {
                size_t la = (size_t)(sp - m);
                memcpy(joined, m, la);
                strcpy(joined + la, sp + 1);
                c = av_tok_find(t, joined, strlen(joined));
            }
            if (a < 0 || b < 0 || c < 0)
                rc = av_errf(err, "gguf tokenizer: merge %d ('%.60s') uses unknown tokens", i, m ? m : "");
            else if (tok_pairmap_put(&hf->bpe.merges, a, b, i, c))
                rc = av_errf(err, "out of memory");
        }
        if (rc == 0) rc = setup_pretok(hf, pre, err);
    } else if (rc == 0) {
        hf->model = HF_MODEL_WORDPIECE;
        t->text = AV_TOK_TEXT_WORDPIECE;
        hf->norm = calloc(1, sizeof *hf->norm);
        hf->pretok = calloc(1, sizeof *hf->pretok);
        if (!hf->norm || !hf->pretok) rc = av_errf(err, "out of memory");
        if (rc == 0) {
            *hf->norm = (hf_norm){
                .type = HF_NORM_BERT, .clean_text = 1, .chinese = 1, .strip_accents = 1, .lowercase = 1};
            hf->pretok->type = HF_PRE_BERT;
            if (t->unk < 0) t->unk = av_tok_find(t, "[UNK]", 5);
            rc = tok_wordpiece_init(&hf->wp, t, "##", t->unk, 100, err);
        }
        int cls = av_tok_find(t, "[CLS]", 5), sep = av_tok_find(t, "[SEP]", 5);
        if (rc == 0 && cls >= 0 && sep >= 0) {
            hf->prefix = malloc(sizeof *hf->prefix);
            hf->suffix = malloc(sizeof *hf->suffix);
            if (!hf->prefix || !hf->suffix)
                rc = av_errf(err, "out of memory");
            else
                hf->prefix[0] = cls, hf->suffix[0] = sep, hf->n_prefix = hf->n_suffix = 1;
        }
    }
    if (rc == 0) rc = hf_finish(t, NULL, err);
    if (rc) {
        av_tokenizer_free(t);
        return -1;
    }
    if (gpt2) t->gguf_pre = hf_gguf_pre_name(hf);
    if (bos >= 0 && bos < n) t->bos = bos;
    if (eos >= 0 && eos < n) t->eos = eos;
    *out = t;
    return 0;
}
