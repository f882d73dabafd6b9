/* Tokenizer throughput: encodes every line of a JSON-lines corpus (or a whole text file) several times and
 * prints tokens per second. Usage: tok_bench TOKENIZER CORPUS.jsonl|TEXT [REPEATS] [--whole]
 *   --whole: encode the file as one text instead of line by line (the file is read raw). */
#include "attnviz.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct text {
    char *s;
    size_t n;
} text;

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: tok_bench TOKENIZER CORPUS.jsonl|TEXT [REPEATS] [--whole]\n");
        return 2;
    }
    int repeats = argc > 3 ? atoi(argv[3]) : 3, whole = argc > 4 && strcmp(argv[4], "--whole") == 0;
    if (repeats < 1) repeats = 1;
    av_tokenizer *tok;
    av_err err = {{0}};
    double t0 = now();
    if (av_tokenizer_load(argv[1], &tok, &err)) {
        fprintf(stderr, "tok_bench: %s\n", err.msg);
        return 1;
    }
    double load_s = now() - t0;
    FILE *fp = fopen(argv[2], "rb");
    if (!fp) {
        fprintf(stderr, "tok_bench: cannot open %s\n", argv[2]);
        return 1;
    }
    text *texts = NULL;
    size_t n_texts = 0, cap = 0, bytes = 0;
    if (whole) {
        fseek(fp, 0, SEEK_END);
        long size = ftell(fp);
        fseek(fp, 0, SEEK_SET);
        texts = malloc(sizeof *texts);
        texts[0].s = malloc((size_t)size + 1);
        texts[0].n = fread(texts[0].s, 1, (size_t)size, fp);
        n_texts = 1;
        bytes = texts[0].n;
    } else {
        char *line = NULL;
        size_t lcap = 0;
        ssize_t got;
        while ((got = getline(&line, &lcap, fp)) >= 0) {
            json_error_t je;
            json_t *j = json_loadb(line, (size_t)got, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
            if (!json_is_string(j)) {
                fprintf(stderr, "tok_bench: line %zu is not a JSON string\n", n_texts + 1);
                return 1;
            }
            if (n_texts == cap) {
                cap = cap ? cap * 2 : 1024;
                texts = realloc(texts, sizeof *texts * cap);
            }
            texts[n_texts].n = json_string_length(j);
            texts[n_texts].s = malloc(texts[n_texts].n + 1);
            memcpy(texts[n_texts].s, json_string_value(j), texts[n_texts].n);
            bytes += texts[n_texts].n;
            n_texts++;
            json_decref(j);
        }
        free(line);
    }
    fclose(fp);
    double best = 1e30;
    size_t tokens = 0;
    for (int r = 0; r < repeats; r++) {
        tokens = 0;
        double t = now();
        for (size_t i = 0; i < n_texts; i++) {
            int32_t *ids;
            size_t n;
            if (av_tokenizer_encode(tok, texts[i].s, texts[i].n, 0, &ids, &n, &err)) {
                fprintf(stderr, "tok_bench: %s\n", err.msg);
                return 1;
            }
            tokens += n;
            free(ids);
        }
        t = now() - t;
        if (t < best) best = t;
    }
    printf("{\"tokenizer\": \"%s\", \"model\": \"%s\", \"texts\": %zu, \"bytes\": %zu, \"tokens\": %zu, "
           "\"seconds\": %.4f, \"tokens_per_s\": %.0f, \"mb_per_s\": %.2f, \"load_s\": %.3f}\n",
           argv[1], av_tokenizer_model_name(tok), n_texts, bytes, tokens, best, (double)tokens / best,
           (double)bytes / best / 1e6, load_s);
    for (size_t i = 0; i < n_texts; i++)
        free(texts[i].s);
    free(texts);
    av_tokenizer_free(tok);
    return 0;
}
