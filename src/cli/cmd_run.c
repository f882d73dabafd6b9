/* attnviz run: model + text -> trace file. */
#include "cli.h"

#include <string.h>

static const cli_opt_spec opts[] = {
    {"model", 1, "PATH      model: llama2.c .bin, .gguf, or Hugging Face directory"},
    {"tokenizer", 1, "PATH  tokenizer file (default: from the model or next to it)"},
    {"text", 1, "TEXT       input text (or give it as the last argument)"},
    {"output", 1, "PATH     trace file to write (default: trace.safetensors); also -o"},
    {"o", 1, "PATH          same as --output"},
    {"dtype", 1, "f32|f16   storage type of the attention in the trace (default f32)"},
    {"no-bos", 0, "          do not prepend the BOS token"},
    {"logits", 0, "          also store the logits of every position"},
    {"threads", 1, "N       worker threads (default: all cores)"},
    {"help", 0, "            show this help"},
};

int cmd_run(int argc, char **argv) {
    const char *cmd = "run";
    cli_args a;
    if (cli_parse(argc, argv, opts, sizeof opts / sizeof opts[0], &a, cmd)) return 2;
    if (cli_has(&a, "help")) {
        printf("usage: attnviz run --model PATH [--tokenizer PATH] --text TEXT [-o trace.safetensors]\n\n");
        cli_print_options(stdout, opts, sizeof opts / sizeof opts[0]);
        cli_args_free(&a);
        return 0;
    }
    const char *text = cli_get(&a, "text");
    if (!text && a.n_positional == 1) text = a.positional[0];
    const char *out = cli_get(&a, "output") ? cli_get(&a, "output") : cli_get(&a, "o");
    if (!out) out = "trace.safetensors";
    const char *dtype = cli_get(&a, "dtype");
    av_run_params rp = av_run_default_params();
    int rc = 1;
    av_model *m = NULL;
    av_trace *t = NULL;
    av_err err = {{0}};
    if (!text) {
        cli_failf(cmd, "no input text: give --text TEXT");
        goto done;
    }
    if (dtype && strcmp(dtype, "f32") != 0 && strcmp(dtype, "f16") != 0) {
        cli_failf(cmd, "--dtype must be f32 or f16, got '%s'", dtype);
        goto done;
    }
    rp.dtype = dtype && strcmp(dtype, "f16") == 0 ? AV_DTYPE_F16 : AV_DTYPE_F32;
    rp.add_bos = !cli_has(&a, "no-bos");
    rp.want_logits = cli_has(&a, "logits");
    if (cli_load_model(&a, cmd, &m)) goto done;
    if (av_trace_from_text(m, text, &rp, &t, &err) || av_trace_save(t, out, &err)) {
        cli_fail(cmd, &err);
        goto done;
    }
    av_model_info info = av_model_get_info(m);
    fprintf(stderr, "attnviz run: %d tokens, %d layers x %d heads -> %s\n", av_trace_n_tokens(t), info.n_layers,
            info.n_heads, out);
    rc = 0;
done:
    av_trace_free(t);
    av_model_free(m);
    cli_args_free(&a);
    return rc;
}
