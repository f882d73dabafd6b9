/* attnviz run: model + text -> trace file. */
#include "cli.h"

#include "io/io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* "1,2,3" or "@path.json" holding a JSON array of integers -> malloc'd ids. */
static int parse_ids(const char *spec, int32_t **out, size_t *n, av_err *err) {
    *out = NULL;
    *n = 0;
    if (spec[0] == '@') {
        json_t *j;
        if (av_json_load_file(spec + 1, &j, err)) return -1;
        if (!json_is_array(j)) {
            json_decref(j);
            return av_errf(err, "%s: expected a JSON array of token ids", spec + 1);
        }
        size_t m = json_array_size(j);
        *out = malloc(sizeof **out * (m ? m : 1));
        for (size_t i = 0; *out && i < m; i++) {
            json_t *v = json_array_get(j, i);
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX) {
                json_decref(j);
                free(*out);
                *out = NULL;
                return av_errf(err, "%s: element %zu is not a token id", spec + 1, i);
            }
            (*out)[i] = (int32_t)json_integer_value(v);
        }
        json_decref(j);
        if (!*out) return av_errf(err, "out of memory");
        *n = m;
        return 0;
    }
    size_t cap = 1;
    for (const char *p = spec; *p; p++) cap += *p == ',';
    *out = malloc(sizeof **out * cap);
    if (!*out) return av_errf(err, "out of memory");
    const char *p = spec;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT32_MAX || (*end && *end != ',')) {
            free(*out);
            *out = NULL;
            return av_errf(err, "--ids: '%s' is not a comma-separated list of token ids", spec);
        }
        (*out)[(*n)++] = (int32_t)v;
        p = *end ? end + 1 : end;
    }
    return 0;
}

static const cli_opt_spec opts[] = {
    {"model", 1, "PATH      model: llama2.c .bin, .gguf, or Hugging Face directory"},
    {"tokenizer", 1, "PATH  tokenizer file (default: from the model or next to it)"},
    {"text", 1, "TEXT       input text (or give it as the last argument)"},
    {"ids", 1, "LIST        token ids instead of text: \"1,403,407\" or @file.json (a JSON array)"},
    {"output", 1, "PATH     trace file to write (default: trace.safetensors); also -o"},
    {"o", 1, "PATH          same as --output"},
    {"dtype", 1, "f32|f16   storage type of the attention in the trace (default f32)"},
    {"no-bos", 0, "          do not prepend the BOS token"},
    {"logits", 0, "          also store the logits of every position"},
    {"lazy", 0, "            store queries/keys instead of T x T matrices (long inputs; see docs/TRACE_FORMAT.md)"},
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
    const char *ids_spec = cli_get(&a, "ids");
    if (!text && !ids_spec) {
        cli_failf(cmd, "no input: give --text TEXT or --ids LIST");
        goto done;
    }
    if (text && ids_spec) {
        cli_failf(cmd, "give either --text or --ids, not both");
        goto done;
    }
    if (dtype && strcmp(dtype, "f32") != 0 && strcmp(dtype, "f16") != 0) {
        cli_failf(cmd, "--dtype must be f32 or f16, got '%s'", dtype);
        goto done;
    }
    rp.dtype = dtype && strcmp(dtype, "f16") == 0 ? AV_DTYPE_F16 : AV_DTYPE_F32;
    rp.add_bos = !cli_has(&a, "no-bos");
    rp.want_logits = cli_has(&a, "logits");
    rp.lazy = cli_has(&a, "lazy");
    if (cli_load_model(&a, cmd, &m)) goto done;
    double t0 = av_seconds();
    if (ids_spec) {
        int32_t *ids;
        size_t n;
        if (parse_ids(ids_spec, &ids, &n, &err)) {
            cli_fail(cmd, &err);
            goto done;
        }
        int r = av_trace_from_ids(m, ids, n, &rp, &t, &err);
        free(ids);
        if (r) {
            cli_fail(cmd, &err);
            goto done;
        }
    } else if (av_trace_from_text(m, text, &rp, &t, &err)) {
        cli_fail(cmd, &err);
        goto done;
    }
    double t1 = av_seconds();
    if (av_trace_save(t, out, &err)) {
        cli_fail(cmd, &err);
        goto done;
    }
    double t2 = av_seconds();
    av_model_info info = av_model_get_info(m);
    fprintf(stderr, "attnviz run: %d tokens, %d layers x %d heads -> %s (forward %.3f s, write %.3f s)\n",
            av_trace_n_tokens(t), info.n_layers, info.n_heads, out, t1 - t0, t2 - t1);
    rc = 0;
done:
    av_trace_free(t);
    av_model_free(m);
    cli_args_free(&a);
    return rc;
}
