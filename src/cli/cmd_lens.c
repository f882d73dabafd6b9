/* attnviz lens: the logit lens (each layer's residual stream decoded by the final norm and the head) of a
 * text -> a trace with lens.* tensors beside its attention (docs/ATTRIBUTION.md). */
#include "cli.h"

#include <stdlib.h>

static const cli_opt_spec opts[] = {
    {"model", 1, "PATH      model: llama2.c .bin, .gguf, or Hugging Face directory (decoders, BERT)"},
    {"tokenizer", 1, "PATH  tokenizer file (default: from the model or next to it)"},
    {"text", 1, "TEXT       input text ('-': stdin, @FILE: a file; or give it as the last argument)"},
    {"text-file", 1, "PATH  input text from a file ('-': stdin), of any size"},
    {"ids", 1, "LIST        token ids instead of text: \"1,403,407\" or @file.json"},
    {"k", 1, "N           top tokens kept per layer and position (default 5)"},
    {"lazy", 0, "            store the attention lazily (queries/keys; long inputs)"},
    {"no-bos", 0, "          do not prepend the BOS token"},
    {"output", 1, "PATH     trace file to write (default: lens.safetensors); also -o"},
    {"o", 1, "PATH          same as --output"},
    {"threads", 1, "N       worker threads (default: all cores)"},
    {"help", 0, "            show this help"},
};

int cmd_lens(int argc, char **argv) {
    const char *cmd = "lens";
    cli_args a;
    int early, rc = 1;
    if (cli_start(argc, argv, opts, sizeof opts / sizeof opts[0],
                  "usage: attnviz lens --model M --text TEXT [--k 5] [-o lens.safetensors]", -1, &a, cmd,
                  &early))
        return early;
    const char *ids_spec = cli_get(&a, "ids"), *out = cli_output(&a, "lens.safetensors");
    char *text = NULL;
    av_model *m = NULL;
    av_trace *t = NULL;
    av_err err = {{0}};
    int32_t *ids = NULL;
    size_t n = 0;
    long k;
    av_lens_params p = av_lens_default_params();
    if (cli_get_text(&a, cmd, "text", "text-file", 1, &text)) goto done;
    if (!text == !ids_spec) {
        cli_failf(cmd, "give either --text TEXT or --ids LIST");
        goto done;
    }
    if (cli_get_int(&a, "k", 5, 1, 1000, &k, cmd) || cli_load_model(&a, cmd, &m)) goto done;
    p.k = (int)k;
    p.run.lazy = cli_has(&a, "lazy");
    p.run.add_bos = !cli_has(&a, "no-bos");
    p.run.output_path = out;
    double t0 = av_seconds();
    if (ids_spec ? cli_parse_ids(ids_spec, &ids, &n, &err) || av_lens_ids(m, ids, n, &p, &t, &err)
                 : av_lens_text(m, text, &p, &t, &err)) {
        cli_fail(cmd, &err);
        goto done;
    }
    double t1 = av_seconds();
    if (av_trace_save(t, out, &err)) {
        cli_fail(cmd, &err);
        goto done;
    }
    fprintf(stderr, "attnviz lens: %d tokens, %d layers -> %s (%.3f s); see it with attnviz show %s --lens\n",
            av_trace_n_tokens(t), av_model_get_info(m).n_layers, out, t1 - t0, out);
    rc = 0;
done:
    free(text);
    free(ids);
    av_trace_free(t);
    av_model_free(m);
    cli_args_free(&a);
    return rc;
}
