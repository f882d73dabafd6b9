/* A tokenizer written as GGUF metadata (tokenizer.ggml.*, tokenizer.chat_template) for `attnviz convert`:
 * everything llama.cpp needs to tokenize exactly as the tokenizer does, or an error when it could not. */
#include "gguf_tok.h"
#include "io/gguf.h"

#include <stdlib.h>
#include <string.h>

/* add_space_prefix of "llama" vocabularies, -1 for others. */
static int space_prefix(const av_tokenizer *t) {
    if (t->kind == AV_TOK_GGUF) return t->gg->vocab == GG_VOCAB_SPM ? t->gg->add_space_prefix : -1;
    if (t->kind == AV_TOK_SP) return t->sp->add_dummy_prefix;
    return t->kind == AV_TOK_SPM_BPE ? 1 : -1;
}

/* Pieces as GGUF spells them: ' ' of the SentencePiece kinds becomes "▁" (U+2581); others are written as they
 * are
 * ("Ġthe", "##ing", "▁the"). *out (n) malloc'd strings. */
static int gguf_pieces(const av_tokenizer *t, char ***out, av_err *err) {
    int n = t->n_vocab, meta = t->text == AV_TOK_TEXT_SPACE;
    char **pieces = calloc((size_t)n, sizeof *pieces);
    for (int i = 0; pieces && i < n; i++) {
        size_t len = (size_t)t->lens[i], spaces = 0, k = 0;
        for (size_t j = 0; meta && j < len; j++)
            spaces += t->pieces[i][j] == ' ';
        if (!(pieces[i] = malloc(len + 2 * spaces + 1))) break;
        for (size_t j = 0; j < len; j++) {
            if (meta && t->pieces[i][j] == ' ')
                memcpy(pieces[i] + k, "\xe2\x96\x81", 3), k += 3;
            else
                pieces[i][k++] = t->pieces[i][j];
        }
        pieces[i][k] = 0;
    }
    *out = pieces;
    return pieces && pieces[n - 1] ? 0 : av_errf(err, "out of memory");
}

int av_tok_write_gguf(av_gguf_writer *w, const av_tokenizer *t, av_err *err) {
    int n = t->n_vocab, rc = -1, add_bos, add_eos, prefix = space_prefix(t);
    int bytelevel = t->family && strcmp(t->family, "gpt2") == 0;
    if (bytelevel && !t->gguf_pre)
        return av_errf(
            err, "the tokenizer's byte-level pre-tokenizer has no GGUF name (tokenizer.ggml.pre: gpt-2, "
                 "llama-bpe, qwen2): a GGUF file would tokenize differently");
    av_tok_adds(t, &add_bos, &add_eos);
    char **pieces = NULL;
    int32_t *types = malloc(sizeof *types * (size_t)n); /* (n) */
    if (!types)
        av_errf(err, "out of memory");
    else if (gguf_pieces(t, &pieces, err) == 0) {
        for (int i = 0; i < n; i++)
            types[i] = t->types[i];
        rc =
            av_gguf_writer_str(w, "tokenizer.ggml.model", t->family ? t->family : "llama", err) ||
                    av_gguf_writer_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)pieces, (size_t)n,
                                           err) ||
                    av_gguf_writer_arr_f32(w, "tokenizer.ggml.scores", t->scores, (size_t)n, err) ||
                    av_gguf_writer_arr_i32(w, "tokenizer.ggml.token_type", types, (size_t)n, err) ||
                    (t->n_merges > 0 &&
                     av_gguf_writer_arr_str(w, "tokenizer.ggml.merges", (const char *const *)t->merges,
                                            (size_t)t->n_merges, err)) ||
                    (bytelevel && av_gguf_writer_str(w, "tokenizer.ggml.pre", t->gguf_pre, err)) ||
                    (t->bos >= 0 &&
                     av_gguf_writer_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)t->bos, err)) ||
                    (t->eos >= 0 &&
                     av_gguf_writer_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)t->eos, err)) ||
                    (t->unk >= 0 &&
                     av_gguf_writer_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)t->unk, err)) ||
                    av_gguf_writer_bool(w, "tokenizer.ggml.add_bos_token", add_bos, err) ||
                    av_gguf_writer_bool(w, "tokenizer.ggml.add_eos_token", add_eos, err) ||
                    (prefix >= 0 && av_gguf_writer_bool(w, "tokenizer.ggml.add_space_prefix", prefix, err)) ||
                    (t->chat_template &&
                     av_gguf_writer_str(w, "tokenizer.chat_template", t->chat_template, err))
                ? -1
                : 0;
    }
    for (int i = 0; pieces && i < n; i++)
        free(pieces[i]);
    free(pieces);
    free(types);
    return rc;
}
