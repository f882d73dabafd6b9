/* attnviz generate: greedy continuation, streamed to stdout; optional trace of the whole sequence. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static const cli_opt_spec opts[] = {
    {"model", 1, "PATH      model: llama2.c .bin, .gguf, or Hugging Face directory"},
    {"tokenizer", 1, "PATH  tokenizer file (default: from the model or next to it)"},
    {"prompt", 1, "TEXT     text to continue (default: start from BOS)"},
    {"steps", 1, "N          tokens to generate (default 256, capped by the context window)"},
    CLI_CHAT_OPTS,
    {"output", 1, "PATH     also run the whole sequence and save its attention trace; also -o"},
    {"o", 1, "PATH          same as --output"},
    {"threads", 1, "N       worker threads (default: all cores)"},
    {"help", 0, "            show this help"},
};

static void print_piece(void *ctx, const char *bytes, size_t len) {
    (void)ctx;
    fwrite(bytes, 1, len, stdout);
    fflush(stdout);
}

/* The conversation's prompt (*text, printed) and its ids as the model's own runtime encodes it (*ids): the
 * BOS rule of av_chat_format, so the generation continues exactly the sequence run --chat traces. */
static int chat_ids(const cli_args *a, const av_model *m, const char *path, char **text, int32_t **ids,
                    size_t *n) {
    const av_tokenizer *tok = av_model_tokenizer(m);
    av_err err = {{0}};
    int add_special;
    if (!tok) {
        cli_failf("generate", "the model has no tokenizer: pass --tokenizer");
        return -1;
    }
    if (cli_chat_prompt(a, "generate", path, tok, text, &add_special)) return -1;
    if (av_tokenizer_encode(tok, *text, strlen(*text), add_special, ids, n, &err)) {
        cli_fail("generate", &err);
        return -1;
    }
    return 0;
}

int cmd_generate(int argc, char **argv) {
    const char *cmd = "generate";
    cli_args a;
    int early;
    if (cli_start(argc, argv, opts, sizeof opts / sizeof opts[0],
                  "usage: attnviz generate --model PATH [--prompt TEXT] [--steps N] [-o trace.safetensors]\n"
                  "       attnviz generate --model PATH --chat messages.json [--steps N]\n",
                  -1, &a, cmd, &early))
        return early;
    long steps;
    int rc = 1;
    av_model *m = NULL;
    av_trace *t = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    av_err err = {{0}};
    const char *prompt = cli_get(&a, "prompt"), *chat = cli_get(&a, "chat");
    const char *out = cli_output(&a, NULL);
    char *chat_text = NULL;
    int32_t *chat_prompt = NULL; /* (n_chat) */
    size_t n_chat = 0;
    if (chat && prompt) {
        cli_failf(cmd, "give either --chat or --prompt, not both");
        goto done;
    }
    if (cli_get_int(&a, "steps", 256, 0, 1 << 20, &steps, cmd) || cli_load_model(&a, cmd, &m)) goto done;
    if (chat && chat_ids(&a, m, chat, &chat_text, &chat_prompt, &n_chat)) goto done;
    if (chat) prompt = chat_text;
    if (prompt) fputs(prompt, stdout);
    if (chat ? av_generate_greedy_ids(m, chat_prompt, n_chat, (int)steps, print_piece, NULL, &ids, &n, &err)
             : av_generate_greedy(m, prompt ? prompt : "", (int)steps, print_piece, NULL, &ids, &n, &err)) {
        putchar('\n');
        cli_fail(cmd, &err);
        goto done;
    }
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
    free(chat_text);
    free(chat_prompt);
    free(ids);
    av_trace_free(t);
    av_model_free(m);
    cli_args_free(&a);
    return rc;
}
