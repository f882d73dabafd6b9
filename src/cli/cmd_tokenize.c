/* attnviz tokenize: show how a tokenizer splits a text (ids, pieces, display labels), or tokenize a file of
 * texts (one JSON string per line) for comparisons with other implementations. */
#include "cli.h"

#include "core/core.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define TOKENIZE_MAX_INPUT (256u << 20)

static const cli_opt_spec opts[] = {
    {"tokenizer", 1,
     "PATH  tokenizer file or directory (tokenizer.json, vocab.txt, vocab.json + merges.txt, "
     "encoder.json + vocab.bpe, .model, llama2.c .bin, a .gguf model)"},
    {"json", 0, "      print JSON: {\"ids\": [...], \"pieces\": [...], \"display\": [...]}"},
    {"no-bos", 0, "      do not add the tokenizer's special tokens (BOS, [CLS] ... [SEP])"},
    {"visible-space", 0, "      show spaces in display labels as \xE2\x90\xA3"},
    {"batch", 1, "FILE  FILE holds one JSON string per line; print one JSON array of ids per line"},
    CLI_CHAT_OPTS,
    {"help", 0, "      show this help"},
};

/* JSON string: valid UTF-8 copied, control characters escaped, invalid bytes as \ufffd. */
static void put_json_string(FILE *fp, const char *s, size_t n) {
    fputc('"', fp);
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            fputc('\\', fp);
            fputc(c, fp);
            i++;
        } else if (c < 0x20) {
            fprintf(fp, "\\u%04x", c);
            i++;
        } else if (c < 0x80) {
            fputc(c, fp);
            i++;
        } else {
            uint32_t cp;
            int len = av_utf8_decode(s + i, n - i, &cp);
            if (len) {
                fwrite(s + i, 1, (size_t)len, fp);
                i += (size_t)len;
            } else {
                fputs("\\ufffd", fp);
                i++;
            }
        }
    }
    fputc('"', fp);
}

static void put_ids(FILE *fp, const int32_t *ids, size_t n) {
    fputc('[', fp);
    for (size_t i = 0; i < n; i++)
        fprintf(fp, i ? ", %d" : "%d", ids[i]);
    fputc(']', fp);
}

static int print_one(const av_tokenizer *tok, const char *text, size_t len, int add_bos, int json,
                     unsigned flags) {
    int32_t *ids;
    size_t n;
    av_err err = {{0}};
    if (av_tokenizer_encode(tok, text, len, add_bos, &ids, &n, &err)) return cli_fail("tokenize", &err);
    char **labels = calloc(n ? n : 1, sizeof *labels);
    int rc = 0;
    for (size_t i = 0; labels && i < n; i++)
        if (!(labels[i] = av_tokenizer_display_ex(tok, ids, n, i, flags))) rc = 1;
    if (!labels || rc) {
        rc = cli_failf("tokenize", "out of memory");
    } else if (json) {
        printf("{\"ids\": ");
        put_ids(stdout, ids, n);
        printf(", \"pieces\": [");
        for (size_t i = 0; i < n; i++) {
            const char *p = av_tokenizer_piece(tok, ids[i]);
            if (i) printf(", ");
            put_json_string(stdout, p ? p : "", p ? strlen(p) : 0);
        }
        printf("], \"display\": [");
        for (size_t i = 0; i < n; i++) {
            if (i) printf(", ");
            put_json_string(stdout, labels[i], strlen(labels[i]));
        }
        printf("]}\n");
    } else {
        printf("%zu tokens (%s, vocabulary of %d)\n", n, av_tokenizer_model_name(tok),
               av_tokenizer_vocab_size(tok));
        for (size_t i = 0; i < n; i++) {
            const char *p = av_tokenizer_piece(tok, ids[i]);
            size_t width = 0; /* pad by characters, not bytes */
            for (const char *c = labels[i]; *c; c++)
                width += ((unsigned char)*c & 0xC0) != 0x80;
            printf("%6zu %8d  %s%*s ", i, ids[i], labels[i], width < 24 ? (int)(24 - width) : 0, "");
            put_json_string(stdout, p ? p : "", p ? strlen(p) : 0);
            printf("%s\n", av_tokenizer_is_special(tok, ids[i]) ? "  (special)" : "");
        }
    }
    for (size_t i = 0; labels && i < n; i++)
        free(labels[i]);
    free(labels);
    free(ids);
    return rc;
}

static int run_batch(const av_tokenizer *tok, const char *path, int add_bos) {
    FILE *fp = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!fp) return cli_failf("tokenize", "%s: cannot open", path);
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    long line_no = 0;
    int rc = 0;
    while (rc == 0 && (got = getline(&line, &cap, fp)) >= 0) {
        line_no++;
        json_error_t je;
        json_t *j = json_loadb(line, (size_t)got, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        if (!json_is_string(j)) {
            rc = cli_failf("tokenize", "%s: line %ld is not a JSON string", path, line_no);
        } else {
            int32_t *ids;
            size_t n;
            av_err err = {{0}};
            if (av_tokenizer_encode(tok, json_string_value(j), json_string_length(j), add_bos, &ids, &n,
                                    &err)) {
                rc = cli_failf("tokenize", "%s: line %ld: %s", path, line_no, err.msg);
            } else {
                put_ids(stdout, ids, n);
                putchar('\n');
                free(ids);
            }
        }
        json_decref(j);
    }
    free(line);
    if (fp != stdin) fclose(fp);
    return rc;
}

static int read_stdin(char **out, size_t *n) {
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    if (!buf) return -1;
    size_t got;
    while ((got = fread(buf + len, 1, cap - len, stdin)) > 0) {
        len += got;
        if (len == cap) {
            if (cap >= TOKENIZE_MAX_INPUT) {
                free(buf);
                return -2;
            }
            char *p = realloc(buf, cap * 2);
            if (!p) {
                free(buf);
                return -1;
            }
            buf = p;
            cap *= 2;
        }
    }
    *out = buf;
    *n = len;
    return 0;
}

int cmd_tokenize(int argc, char **argv) {
    cli_args a;
    if (cli_parse(argc, argv, opts, sizeof opts / sizeof opts[0], &a, "tokenize")) return 2;
    const char *path = cli_get(&a, "tokenizer");
    if (cli_has(&a, "help") || !path || (!cli_has(&a, "batch") && a.n_positional > 1)) {
        FILE *fp = cli_has(&a, "help") ? stdout : stderr;
        fprintf(
            fp,
            "usage: attnviz tokenize --tokenizer PATH [--json] [--no-bos] \"text\"   (no text: read stdin)\n"
            "       attnviz tokenize --tokenizer PATH --batch FILE\n"
            "       attnviz tokenize --tokenizer PATH --chat messages.json\n\n");
        cli_print_options(fp, opts, sizeof opts / sizeof opts[0]);
        int rc = cli_has(&a, "help") ? 0 : 2;
        cli_args_free(&a);
        return rc;
    }
    av_tokenizer *tok;
    av_err err = {{0}};
    if (av_tokenizer_load(path, &tok, &err)) {
        cli_args_free(&a);
        return cli_fail("tokenize", &err);
    }
    int add_bos = !cli_has(&a, "no-bos");
    unsigned flags = cli_has(&a, "visible-space") ? AV_DISPLAY_VISIBLE_SPACE : 0;
    int rc;
    if (cli_has(&a, "chat")) {
        char *text = NULL;
        int add_special = 0;
        rc = cli_chat_prompt(&a, "tokenize", cli_get(&a, "chat"), tok, &text, &add_special)
                 ? 1
                 : print_one(tok, text, strlen(text), add_bos && add_special, cli_has(&a, "json"), flags);
        free(text);
    } else if (cli_has(&a, "batch")) {
        rc = run_batch(tok, cli_get(&a, "batch"), add_bos);
    } else if (a.n_positional == 1) {
        rc = print_one(tok, a.positional[0], strlen(a.positional[0]), add_bos, cli_has(&a, "json"), flags);
    } else {
        char *text;
        size_t n;
        int r = read_stdin(&text, &n);
        if (r)
            rc = cli_failf("tokenize",
                           r == -2 ? "input is larger than 256 MiB" : "out of memory reading stdin");
        else {
            rc = print_one(tok, text, n, add_bos, cli_has(&a, "json"), flags);
            free(text);
        }
    }
    av_tokenizer_free(tok);
    cli_args_free(&a);
    return rc;
}
