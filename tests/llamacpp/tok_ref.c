/* Reference tokenizer for tests: llama.cpp's llama_tokenize (as node-llama-cpp 3.21.1 ships it) on the
 * tokenizer of a GGUF file loaded with vocab_only. Reads a file of JSON strings (one per line) and writes one
 * JSON array of ids per line, with add_special and parse_special set (what attnviz's GGUF tokenizers
 * reproduce).
 *
 *   tok_ref LIBDIR MODEL.gguf CORPUS.jsonl > ids.jsonl
 *
 * Built by tests/cli/test_gguf_tok_ref.sh against tests/llamacpp/install.sh's libraries and headers. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-backend.h"
#include "llama.h"

static void quiet(enum ggml_log_level level, const char *text, void *ctx) {
    (void)ctx;
    if (level == GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: tok_ref LIBDIR MODEL.gguf CORPUS.jsonl\n");
        return 2;
    }
    llama_log_set(quiet, NULL);
    ggml_backend_load_all_from_path(argv[1]);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.vocab_only = 1;
    struct llama_model *model = llama_model_load_from_file(argv[2], mp);
    if (!model) {
        fprintf(stderr, "tok_ref: llama.cpp cannot load %s\n", argv[2]);
        return 1;
    }
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    FILE *fp = fopen(argv[3], "r");
    if (!fp) {
        fprintf(stderr, "tok_ref: cannot open %s\n", argv[3]);
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int n_max = 1 << 16;
    llama_token *ids = malloc(sizeof *ids * (size_t)n_max);
    while ((len = getline(&line, &cap, fp)) > 0) {
        json_error_t jerr;
        json_t *j = json_loadb(line, (size_t)len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        if (!j || !json_is_string(j)) {
            fprintf(stderr, "tok_ref: a corpus line is not a JSON string\n");
            return 1;
        }
        const char *text = json_string_value(j);
        int32_t n = llama_tokenize(vocab, text, (int32_t)json_string_length(j), ids, n_max, true, true);
        if (n < 0) {
            n_max = -n;
            ids = realloc(ids, sizeof *ids * (size_t)n_max);
            n = llama_tokenize(vocab, text, (int32_t)json_string_length(j), ids, n_max, true, true);
        }
        putchar('[');
        for (int32_t i = 0; i < n; i++)
            printf(i ? ", %d" : "%d", ids[i]);
        puts("]");
        json_decref(j);
    }
    free(line);
    free(ids);
    fclose(fp);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
