/* attnviz convert: any model attnviz can open -> GGUF file or Hugging Face directory. */
#include "cli.h"
#include "kernels/kernels.h"
#include "model/export.h"

#include <string.h>
#include <strings.h>

static const cli_opt_spec opts[] = {
    {"model", 1, "PATH      input model: llama2.c .bin, .gguf, or Hugging Face directory"},
    {"tokenizer", 1, "PATH  tokenizer to include (default: from the model or next to it)"},
    {"to", 1, "gguf|hf        output format (default: gguf when the output ends in .gguf, else hf)"},
    {"output", 1, "PATH     output file (gguf) or directory (hf); also -o"},
    {"o", 1, "PATH          same as --output"},
    {"type", 1, "T           weight type: f32 (default), f16, bf16, or (gguf only) q8_0, q4_0, q4_k"},
    {"shards", 1, "N        hf: number of safetensors shards (default 1)"},
    {"force", 0, "           replace an existing output"},
    {"help", 0, "            show this help"},
};

#define TYPES "f32, f16, bf16, q8_0, q4_0 or q4_k"

static int has_gguf_suffix(const char *path) {
    size_t n = strlen(path);
    return n >= 5 && strcasecmp(path + n - 5, ".gguf") == 0;
}

int cmd_convert(int argc, char **argv) {
    const char *cmd = "convert";
    cli_args a;
    int early;
    if (cli_start(argc, argv, opts, sizeof opts / sizeof opts[0],
                  "usage: attnviz convert --model PATH -o OUT.gguf|OUTDIR [--to gguf|hf]\n"
                  "                       [--type f32|f16|bf16|q8_0|q4_0|q4_k] [--shards N]\n",
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
    if (!out || !*out) {
        cli_failf(cmd, "-o PATH is required (a .gguf file or a directory for hf)");
        goto done;
    }
    av_model_format target = has_gguf_suffix(out) ? AV_MODEL_FORMAT_GGUF : AV_MODEL_FORMAT_HF;
    if (to && (av_model_format_parse(to, &target) || target == AV_MODEL_FORMAT_LLAMA2C)) {
        cli_failf(cmd, "--to must be gguf or hf");
        goto done;
    }
    if (target == AV_MODEL_FORMAT_HF && has_gguf_suffix(out)) {
        cli_failf(cmd, "--to hf writes a directory, not '%s' (drop --to to write GGUF)", out);
        goto done;
    }
    if (type && (av_dtype_parse(type, &ep.dtype) || !av_dtype_can_quantize(ep.dtype))) {
        cli_failf(cmd, "--type must be " TYPES ", got '%s'", type);
        goto done;
    }
    if (target == AV_MODEL_FORMAT_HF && av_dtype_is_quantized(ep.dtype)) {
        cli_failf(cmd, "--type %s is only available for GGUF output (-o FILE.gguf)", type);
        goto done;
    }
    if (cli_get_int(&a, "shards", 1, 1, 64, &shards, cmd)) goto done;
    if (shards > 1 && target == AV_MODEL_FORMAT_GGUF) {
        cli_failf(cmd, "--shards applies to --to hf only");
        goto done;
    }
    ep.n_shards = (int)shards;
    ep.force = cli_has(&a, "force");
    if (cli_load_model(&a, cmd, &m)) goto done;
    int failed = target == AV_MODEL_FORMAT_GGUF ? av_export_gguf(m, out, &ep, &rep, &err)
                                                : av_export_hf(m, out, &ep, &rep, &err);
    if (failed) {
        cli_fail(cmd, &err);
        goto done;
    }
    av_model_info info = av_model_get_info(m);
    char extra[160] = "";
    for (int t = 0; t < AV_DTYPE_COUNT; t++)
        if (rep.fallback[t])
            snprintf(extra + strlen(extra), sizeof extra - strlen(extra), ", %d matrices written %s",
                     rep.fallback[t], av_dtype_name((av_dtype)t));
    if (rep.n_fallback)
        snprintf(extra + strlen(extra), sizeof extra - strlen(extra), " (rows not a multiple of %d)",
                 av_dtype_block_size(ep.dtype));
    fprintf(stderr, "attnviz convert: %s (%s) -> %s: %s %s, %d tensors, %.2f MiB in %d file%s%s, %s\n",
            info.name, av_model_format_name(info.format), out,
            target == AV_MODEL_FORMAT_GGUF ? "GGUF v3" : "Hugging Face", av_dtype_name(ep.dtype),
            rep.n_tensors, (double)rep.n_bytes / (1024.0 * 1024.0), rep.n_shards,
            rep.n_shards == 1 ? "" : "s", extra, rep.tokenizer ? "with tokenizer" : "no tokenizer");
    if (rep.note[0]) fprintf(stderr, "attnviz convert: note: %s\n", rep.note);
    rc = 0;
done:
    av_model_free(m);
    cli_args_free(&a);
    return rc;
}
