/* attnviz generate: greedy continuation, streamed to stdout; optional trace of the whole sequence. */
#include "cli.h"

#include <stdlib.h>

static const cli_opt_spec opts[] = {
    {"model", 1, "PATH      model: llama2.c .bin, .gguf, or Hugging Face directory"},
    {"tokenizer", 1, "PATH  tokenizer file (default: from the model or next to it)"},
    {"prompt", 1, "TEXT     text to continue (default: start from BOS); '-' reads stdin, '@FILE' reads FILE"},
    {"prompt-file", 1, "PATH  the prompt from a file ('-': stdin), of any size"},
    {"text", 1, "TEXT       same as --prompt"},
    {"text-file", 1, "PATH  same as --prompt-file"},
    {"steps", 1, "N          tokens to generate (default 256, capped by the context window)"},
    {"output", 1, "PATH     also run the whole sequence and save its attention trace; also -o"},
    {"o", 1, "PATH          same as --output"},
    {"threads", 1, "N       worker threads (default: all cores)"},
    {"help", 0, "            show this help"},
};

/* Writes the prompt before the first generated piece, so a run that fails writes nothing. */
typedef struct echo {
    const char *prompt;
    int started;
} echo;

static void start_output(echo *e) {
    if (!e->started && e->prompt) fputs(e->prompt, stdout);
    e->started = 1;
}

static void print_piece(void *ctx, const char *bytes, size_t len) {
    start_output(ctx);
    fwrite(bytes, 1, len, stdout);
    fflush(stdout);
}

int cmd_generate(int argc, char **argv) {
    const char *cmd = "generate";
    cli_args a;
    int early;
    if (cli_start(
            argc, argv, opts, sizeof opts / sizeof opts[0],
            "usage: attnviz generate --model PATH [--prompt TEXT|-|@FILE | --prompt-file PATH] [--steps N] "
            "[-o trace.safetensors]\n",
            0, &a, cmd, &early))
        return early;
    long steps;
    int rc = 1;
    av_model *m = NULL;
    av_trace *t = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    av_err err = {{0}};
    char *prompt = NULL;
    const char *out = cli_output(&a, NULL);
    int alias = cli_has(&a, "text") || cli_has(&a, "text-file");
    if (alias && (cli_has(&a, "prompt") || cli_has(&a, "prompt-file"))) {
        cli_failf(cmd, "give the prompt once: --prompt (--prompt-file) or --text (--text-file)");
        goto done;
    }
    if (cli_get_text(&a, cmd, alias ? "text" : "prompt", alias ? "text-file" : "prompt-file", 0, &prompt) ||
        cli_get_int(&a, "steps", 256, 0, 1 << 20, &steps, cmd) || cli_load_model(&a, cmd, &m))
        goto done;
    echo e = {prompt, 0};
    if (av_generate_greedy(m, prompt ? prompt : "", (int)steps, print_piece, &e, &ids, &n, &err)) {
        if (e.started) putchar('\n');
        cli_fail(cmd, &err);
        goto done;
    }
    start_output(&e);
    putchar('\n');
    if (out) {
        if (av_trace_from_ids(m, ids, n, NULL, &t, &err) || av_trace_save(t, out, &err)) {
            cli_fail(cmd, &err);
            goto done;
        }
        fprintf(stderr, "attnviz generate: trace of %zu tokens -> %s\n", n, out);
    }
    rc = 0;
done:
    free(prompt);
    free(ids);
    av_trace_free(t);
    av_model_free(m);
    cli_args_free(&a);
    return rc;
}
