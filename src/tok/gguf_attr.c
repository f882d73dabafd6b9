/* Token attributes of GGUF vocabularies as llama.cpp derives them (llama_vocab::impl::load): from
 * tokenizer.ggml.token_type, then by token text, because converted files often leave chat tokens NORMAL:
 *
 *   - end-of-generation names ("<|eot_id|>", "<|im_end|>", "<end_of_turn>", "</s>"...) become CONTROL;
 *   - of each fill-in-the-middle group ("<|fim_prefix|>", "<PRE>"...) whose id the file does not give, one
 * token becomes CONTROL (llama.cpp takes whichever its hash map yields first; we take the lowest id: the same
 *     whenever a vocabulary holds one name of a group, as real ones do);
 *   - gpt-oss's "<|channel|>", "<|message|>", "<|start|>", "<|constrain|>" become USER_DEFINED, and so does
 *     "<|end|>" next to "<|return|>" + "<|call|>" or "<|call(s)|>" + "<|flush|>";
 *   - "</s>" next to "<|tool_response>" becomes NORMAL;
 *   - in models named Phi-3 (general.name), every special token eats the whitespace after it (rstrip), except
 *     "<unk>", "<s>" and "<|endoftext|>".
 *
 * The special tokens matched whole in the text are the CONTROL, USER_DEFINED and UNKNOWN ones, longest
 * first. */
#include "gguf_tok.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof "\u2581" == 4, "string literals must be UTF-8 (the token names below use \\u escapes)");

/* clang-format off */
static const char *const eog_names[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
    "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>",
    "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<\uFF5Cend\u2581of\u2581sentence\uFF5C>", /* DeepSeek's */
    "[e~[",
};

/* fim_pre, fim_suf, fim_mid, fim_pad, fim_rep, fim_sep (the order of av_tok_gguf_spec.fim) */
static const char *const fim_names[6][9] = {
    {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<\uFF5Cfim\u2581begin\uFF5C>",
     "<PRE>", "\u2581<PRE>", "<|code_prefix|>", "<|prefix|>"},
    {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<\uFF5Cfim\u2581hole\uFF5C>",
     "<SUF>", "\u2581<SUF>", "<|code_suffix|>", "<|suffix|>"},
    {"<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<\uFF5Cfim\u2581end\uFF5C>",
     "<MID>", "\u2581<MID>", "<|code_middle|>", "<|middle|>"},
    {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"},
    {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"},
    {"<|file_sep|>"},
};
/* clang-format on */

static int id_of(const av_tokenizer *t, const char *piece) { return av_tok_find(t, piece, strlen(piece)); }

static uint16_t attr_of_type(int type) {
    switch (type) {
    case AV_TOKTYPE_UNKNOWN: return GG_ATTR_UNKNOWN;
    case AV_TOKTYPE_UNUSED: return GG_ATTR_UNUSED;
    case AV_TOKTYPE_NORMAL: return GG_ATTR_NORMAL;
    case AV_TOKTYPE_CONTROL: return GG_ATTR_CONTROL;
    case AV_TOKTYPE_USER_DEFINED: return GG_ATTR_USER_DEFINED;
    case AV_TOKTYPE_BYTE: return GG_ATTR_BYTE;
    default: return 0; /* undefined */
    }
}

static void name_rules(const av_tokenizer *t, const int fim_given[6], uint16_t *attr) {
    for (size_t i = 0; i < sizeof eog_names / sizeof *eog_names; i++) {
        int id = id_of(t, eog_names[i]);
        if (id >= 0) attr[id] |= GG_ATTR_CONTROL;
    }
    for (int g = 0; g < 6; g++) {
        int best = -1;
        for (int k = 0; !fim_given[g] && k < 9 && fim_names[g][k]; k++) {
            int id = id_of(t, fim_names[g][k]);
            if (id >= 0 && (best < 0 || id < best)) best = id;
        }
        if (best >= 0) attr[best] |= GG_ATTR_CONTROL;
    }
    static const char *const gpt_oss[] = {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"};
    for (int i = 0; i < 4; i++) {
        int id = id_of(t, gpt_oss[i]);
        if (id >= 0) attr[id] = GG_ATTR_USER_DEFINED;
    }
    int end = id_of(t, "<|end|>"), call = id_of(t, "<|call|>") >= 0 || id_of(t, "<|calls|>") >= 0;
    if (end >= 0 && call && (id_of(t, "<|return|>") >= 0 || id_of(t, "<|flush|>") >= 0))
        attr[end] = GG_ATTR_USER_DEFINED;
    int eos_s = id_of(t, "</s>");
    if (eos_s >= 0 && id_of(t, "<|tool_response>") >= 0) attr[eos_s] = GG_ATTR_NORMAL;
}

static int contains_ci(const char *s, const char *word) {
    for (size_t n = strlen(word); s && *s; s++) {
        size_t k = 0;
        while (k < n && s[k] && tolower((unsigned char)s[k]) == word[k])
            k++;
        if (k == n) return 1;
    }
    return 0;
}

/* Longest text first, then lowest id (llama.cpp sorts by length only; equal lengths cannot both match at one
 * place, so the order between them only matters for overlapping texts). A merge sort: no global state. */
static void sort_specials(const av_tokenizer *t, int32_t *v, int32_t *tmp, int n) {
    if (n < 2) return;
    int h = n / 2;
    sort_specials(t, v, tmp, h);
    sort_specials(t, v + h, tmp, n - h);
    int i = 0, j = h, k = 0;
    while (i < h || j < n) {
        int take_left =
            j >= n ||
            (i < h && (t->lens[v[i]] > t->lens[v[j]] || (t->lens[v[i]] == t->lens[v[j]] && v[i] < v[j])));
        tmp[k++] = take_left ? v[i++] : v[j++];
    }
    memcpy(v, tmp, sizeof *v * (size_t)n);
}

int gg_build_attrs(av_tokenizer *t, const av_tok_gguf_spec *spec, const int fim_given[6], av_err *err) {
    av_tok_gguf *g = t->gg;
    int n = t->n_vocab;
    g->attr = calloc((size_t)n, sizeof *g->attr);
    g->specials = malloc(sizeof *g->specials * (size_t)n);
    int32_t *tmp = malloc(sizeof *tmp * (size_t)n);
    if (!g->attr || !g->specials || !tmp || tok_trie_init(&g->special_trie)) {
        free(tmp);
        return av_errf(err, "out of memory");
    }
    for (int i = 0; i < n; i++)
        g->attr[i] = spec->types ? attr_of_type(spec->types[i]) : GG_ATTR_NORMAL;
    name_rules(t, fim_given, g->attr);
    const uint16_t matched = GG_ATTR_CONTROL | GG_ATTR_USER_DEFINED | GG_ATTR_UNKNOWN;
    for (int i = 0; i < n; i++)
        if (g->attr[i] & matched) g->specials[g->n_specials++] = i;
    sort_specials(t, g->specials, tmp, g->n_specials);
    free(tmp);
    if (contains_ci(spec->name, "phi-3") || contains_ci(spec->name, "phi3")) {
        for (int k = 0; k < g->n_specials; k++)
            g->attr[g->specials[k]] |= GG_ATTR_RSTRIP;
        int id = id_of(t, "</s>");
        if (id >= 0) g->attr[id] |= GG_ATTR_RSTRIP;
        static const char *const keep[] = {"<unk>", "<s>", "<|endoftext|>"};
        for (int i = 0; i < 3; i++)
            if ((id = id_of(t, keep[i])) >= 0) g->attr[id] &= (uint16_t)~GG_ATTR_RSTRIP;
    }
    for (int k = 0; k < g->n_specials; k++) {
        int id = g->specials[k];
        if (tok_trie_insert(&g->special_trie, t->pieces[id], (size_t)t->lens[id], k, 0))
            return av_errf(err, "out of memory");
    }
    /* the types the rest of attnviz reads (display labels, is_special, GGUF export) follow the attributes */
    for (int i = 0; i < n; i++) {
        uint16_t a = g->attr[i];
        t->types[i] = a & GG_ATTR_CONTROL        ? AV_TOKTYPE_CONTROL
                      : a & GG_ATTR_UNKNOWN      ? AV_TOKTYPE_UNKNOWN
                      : a & GG_ATTR_USER_DEFINED ? AV_TOKTYPE_USER_DEFINED
                      : a & GG_ATTR_BYTE         ? AV_TOKTYPE_BYTE
                      : a & GG_ATTR_UNUSED       ? AV_TOKTYPE_UNUSED
                                                 : AV_TOKTYPE_NORMAL;
    }
    return 0;
}
