/* attnviz chat: the prompt a conversation becomes with a model's chat template (what `run --chat` traces). */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static const cli_opt_spec opts[] = {
    {"tokenizer", 1,
     "PATH  where the chat template comes from: a .gguf file, a Hugging Face directory (or a tokenizer)"},
    {"model", 1, "PATH      same as --tokenizer"},
    {"chat-template", 1, "FILE  a Jinja chat template to use instead of the model's"},
    {"no-generation-prompt", 0, "  do not end the prompt with the opening of the assistant's turn"},
    {"chat-date", 1, "YYYY-MM-DD  the date the template's strftime_now() sees (default: today)"},
    {"bos-token", 1, "TEXT  the template's bos_token (default: the tokenizer's BOS piece)"},
    {"eos-token", 1, "TEXT  the template's eos_token (default: the tokenizer's EOS piece)"},
    {"ids", 0, "            also print the token ids the prompt encodes to (stderr; needs a tokenizer)"},
    {"help", 0, "           show this help"},
};

int cmd_chat(int argc, char **argv) {
    const char *cmd = "chat";
    cli_args a;
    int early;
    if (cli_start(argc, argv, opts, sizeof opts / sizeof opts[0],
                  "usage: attnviz chat --model MODEL.gguf|HF_DIR MESSAGES.json          (prints the prompt)\n"
                  "       attnviz chat --chat-template T.jinja [--bos-token S] MESSAGES.json\n",
                  1, &a, cmd, &early))
        return early;
    const char *path = cli_get(&a, "tokenizer") ? cli_get(&a, "tokenizer") : cli_get(&a, "model");
    av_tokenizer *tok = NULL;
    av_err err = {{0}};
    char *text = NULL;
    int add_special = 0, rc = 1;
    if (!path && !cli_has(&a, "chat-template")) {
        cli_failf(cmd, "give --model (or --tokenizer) for the model's template, or --chat-template FILE");
        goto done;
    }
    if (path && av_tokenizer_load(path, &tok, &err)) {
        cli_fail(cmd, &err);
        goto done;
    }
    if (cli_chat_prompt(&a, cmd, a.positional[0], tok, &text, &add_special)) goto done;
    fwrite(text, 1, strlen(text), stdout);
    fflush(stdout);
    if (cli_has(&a, "ids") && tok) {
        int32_t *ids;
        size_t n;
        if (av_tokenizer_encode(tok, text, strlen(text), add_special, &ids, &n, &err)) {
            cli_fail(cmd, &err);
            goto done;
        }
        fprintf(stderr, "%zu tokens%s:", n, add_special ? " (BOS/EOS added by the tokenizer)" : "");
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, " %d", ids[i]);
        fputc('\n', stderr);
        free(ids);
    }
    rc = 0;
done:
    free(text);
    av_tokenizer_free(tok);
    cli_args_free(&a);
    return rc;
}
