/* attnviz convert: any model attnviz can open -> GGUF file or Hugging Face directory. */
#include "cli.h"
#include "model/export.h"

#include <string.h>

static const cli_opt_spec opts[] = {
    {"model", 1, "PATH      input model: llama2.c .bin, .gguf, or Hugging Face directory"},
    {"tokenizer", 1, "PATH  tokenizer to include (default: from the model or next to it)"},
    {"to", 1, "gguf|hf        output format"},
    {"output", 1, "PATH     output file (gguf) or directory (hf); also -o"},
    {"o", 1, "PATH          same as --output"},
    {"type", 1, "T           weight type: f32 (default), f16, bf16, or q8_0 (gguf only)"},
    {"shards", 1, "N        hf: number of safetensors shards (default 1)"},
    {"force", 0, "           replace an existing output"},
    {"help", 0, "            show this help"},
};

static int parse_type(const char *s, av_dtype *out) {
    static const struct {
        const char *name;
        av_dtype t;
    } types[] = {
        {"f32", AV_DTYPE_F32}, {"f16", AV_DTYPE_F16}, {"bf16", AV_DTYPE_BF16}, {"q8_0", AV_DTYPE_Q8_0}};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(s, types[i].name) == 0) {
            *out = types[i].t;
            return 0;
        }
    return -1;
}

int cmd_convert(int argc, char **argv) {
    const char *cmd = "convert";
    cli_args a;
    int early;
    if (cli_start(argc, argv, opts, sizeof opts / sizeof opts[0],
                  "usage: attnviz convert --model PATH --to gguf|hf -o OUT [--type f32|f16|bf16|q8_0] "
                  "[--shards N]\n",
                  -1, &a, cmd, &early))
        return early;
    const char *to = cli_get(&a, "to");
    const char *out = cli_output(&a, NULL);
    const char *type = cli_get(&a, "type");
    av_export_params ep = av_export_default_params();
    av_export_report rep;
    av_model *m = NULL;
    av_err err = {{0}};
    int rc = 1;
    long shards;
    if (!to || (strcmp(to, "gguf") != 0 && strcmp(to, "hf") != 0)) {
        cli_failf(cmd, "--to must be gguf or hf");
        goto done;
    }
    if (!out || !*out) {
        cli_failf(cmd, "-o PATH is required (a .gguf file or a directory for hf)");
        goto done;
    }
    if (type && parse_type(type, &ep.dtype)) {
        cli_failf(cmd, "--type must be f32, f16, bf16 or q8_0, got '%s'", type);
        goto done;
    }
    if (strcmp(to, "hf") == 0 && ep.dtype == AV_DTYPE_Q8_0) {
        cli_failf(cmd, "--type q8_0 is only available with --to gguf");
        goto done;
    }
    if (cli_get_int(&a, "shards", 1, 1, 64, &shards, cmd)) goto done;
    if (shards > 1 && strcmp(to, "gguf") == 0) {
        cli_failf(cmd, "--shards applies to --to hf only");
        goto done;
    }
    ep.n_shards = (int)shards;
    ep.force = cli_has(&a, "force");
    if (cli_load_model(&a, cmd, &m)) goto done;
    int failed = strcmp(to, "gguf") == 0 ? av_export_gguf(m, out, &ep, &rep, &err)
                                         : av_export_hf(m, out, &ep, &rep, &err);
    if (failed) {
        cli_fail(cmd, &err);
        goto done;
    }
    av_model_info info = av_model_get_info(m);
    char extra[96] = "";
    if (rep.n_fallback)
        snprintf(extra, sizeof extra, ", %d tensors kept F16 (rows not a multiple of 32)", rep.n_fallback);
    fprintf(stderr, "attnviz convert: %s (%s) -> %s: %s %s, %d tensors, %.2f MiB in %d file%s%s, %s\n",
            info.name, info.format, out, strcmp(to, "gguf") == 0 ? "GGUF v3" : "Hugging Face",
            av_dtype_name(ep.dtype), rep.n_tensors, (double)rep.n_bytes / (1024.0 * 1024.0), rep.n_shards,
            rep.n_shards == 1 ? "" : "s", extra, rep.tokenizer ? "with tokenizer" : "no tokenizer");
    rc = 0;
done:
    av_model_free(m);
    cli_args_free(&a);
    return rc;
}
