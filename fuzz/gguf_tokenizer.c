/* Fuzz harness of the tokenizers embedded in GGUF files: the input is a GGUF image (a vocabulary-only file is
 * enough); its tokenizer.ggml.* metadata is read into a tokenizer (src/tok/gguf_meta.c, gguf_vocab.c) which
 * then encodes a few texts (special tokens, invalid UTF-8, whitespace runs) and labels every id it produces.
 * Every outcome must be a tokenizer or a one-line error: no crash, no leak. Seeds: fuzz/corpus/gguf_tokenizer
 * (tiny vocabularies of every tokenizer.ggml.pre variant and a SentencePiece-style one, written by
 * tests/tok/make_gguf_vocabs.py --fuzz-seeds on the corpus of tests/tok/gen_gguf_corpus.py). */
#include "attnviz.h"
#include "io/gguf.h"
#include "tok/tok.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const texts[] = {"Hello world, it's 2024! <|im_end|><s> x</s>  \n\n\tend", "",
                                        "\xF0\x9F\xA4\x97 \xE6\x97\xA5\xE6\x9C\xAC 12345 \xC3\xA9\xCC\x81",
                                        "\xFF\xFE\xC3 bad \xED\xA0\x80 utf8 \xF5\x80\x80\x80"};
    av_gguf g;
    av_err err;
    if (av_gguf_parse(data, size, "fuzz.gguf", &g, &err)) return 0;
    av_tokenizer *t = NULL;
    if (av_tok_load_gguf(&g, &t, &err) == 0 && t) {
        for (size_t k = 0; k < sizeof texts / sizeof *texts; k++) {
            int32_t *ids;
            size_t n;
            if (av_tokenizer_encode(t, texts[k], strlen(texts[k]), (int)(k & 1), &ids, &n, &err)) continue;
            for (size_t i = 0; i < n; i++)
                free(av_tokenizer_display(t, ids, n, i));
            free(ids);
        }
        av_tokenizer_free(t);
    }
    av_gguf_close(&g);
    return 0;
}
