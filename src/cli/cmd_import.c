/* attnviz import: attention saved by other tools (.npy per layer, .npz, safetensors), or a model API's
 * response with log-probabilities (OpenAI, vLLM, Ollama, llama.cpp: JSON, JSON lines or an SSE dump) -> a
 * trace file. */
#include "cli.h"

#include "trace/import.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const cli_opt_spec opts[] = {
    {"tokens", 1,
     "PATH        tokens JSON: [\"tok\", ...] or {\"tokens\": [...], \"source_tokens\": ..., ...}"},
    {"output", 1, "PATH        trace file to write (default: trace.safetensors); also -o"},
    {"o", 1, "PATH        same as --output"},
    {"kind", 1, "K           force the attention kind of every array: self, enc, dec, cross"},
    {"dtype", 1, "f32|f16     storage type of the attention in the trace (default f32)"},
    {"no-check", 0, "            do not require rows to be probability distributions"},
    {"tol", 1, "X           allowed |row sum - 1| (default 1e-3; 2e-2 for float16 arrays)"},
    {"model", 1, "NAME        model name stored in the trace"},
    {"patch-grid", 1, "RxC         image trace: patches form an R x C grid (e.g. 14x14)"},
    {"prefix-tokens", 1, "N           tokens before the patches (1 for a CLS token)"},
    {"image", 1, "PNG         embed this image for the viewer's patch overlay"},
    {"provider", 1,
     "NAME        API responses: auto (default), openai, vllm, ollama, llamacpp, or openai-chat, ..."},
    {"choice", 1, "N           API responses: which choice of several (default 0)"},
    {"max-alternatives", 1,
     "N           API responses: alternatives kept per token (default all, at most 1024)"},
    {"help", 0, "            show this help"},
};
enum { N_OPTS = sizeof opts / sizeof opts[0] };

/* An API response rather than arrays: not a .npy/.npz/.safetensors file, and text starting like JSON or SSE.
 */
static int is_api_response(const char *path) {
    const char *ext = strrchr(path, '.');
    if (ext && (!strcmp(ext, ".npy") || !strcmp(ext, ".npz") || !strcmp(ext, ".safetensors"))) return 0;
    FILE *fp = fopen(path, "rb");
    char head[8] = {0};
    int c = ' ', n = 0;
    while (fp && (c = fgetc(fp)) != EOF && (c == ' ' || c == '\t' || c == '\n' || c == '\r'))
        ;
    if (c != EOF) head[n++] = (char)c;
    while (fp && n < 6 && (c = fgetc(fp)) != EOF)
        head[n++] = (char)c;
    if (fp) fclose(fp);
    return head[0] == '{' || head[0] == '[' || head[0] == ':' || !strncmp(head, "data:", 5) ||
           !strncmp(head, "event:", 6);
}

static const char *const array_only[] = {"tokens", "kind",       "dtype",         "no-check",
                                         "tol",    "patch-grid", "prefix-tokens", "image"};

/* attnviz import RESPONSE.json: log-probabilities without attention. */
static int import_api(const cli_args *a, const char *cmd) {
    for (size_t i = 0; i < sizeof array_only / sizeof array_only[0]; i++)
        if (cli_has(a, array_only[i]))
            return cli_failf(cmd, "--%s applies to attention arrays, not to an API response", array_only[i]);
    long choice, max_alts;
    if (a->n_positional != 1) return cli_failf(cmd, "give one API response file");
    if (cli_get_int(a, "choice", 0, 0, 1 << 20, &choice, cmd) ||
        cli_get_int(a, "max-alternatives", 1024, 1, 1024, &max_alts, cmd))
        return 1;
    av_api_import_params p = av_api_import_default_params();
    p.provider = cli_get(a, "provider");
    p.choice = (int)choice;
    p.max_alternatives = (int)max_alts;
    p.model = cli_get(a, "model");
    const char *out = cli_output(a, "trace.safetensors");
    av_trace *t = NULL;
    av_err err = {{0}};
    av_generation_info gi;
    av_logprob_view v;
    if (av_trace_from_api_file(a->positional[0], &p, &t, &err) || av_trace_save(t, out, &err) ||
        av_trace_logprobs(t, &v, &err)) {
        av_trace_free(t);
        return cli_fail(cmd, &err);
    }
    av_trace_generation_info(t, &gi);
    fprintf(stderr,
            "attnviz import: %s response: %d tokens (%d of the prompt), up to %d alternatives each, no "
            "attention -> %s\n",
            gi.provider, v.n_tokens, gi.prompt_len, v.k, out);
    av_trace_free(t);
    return 0;
}

int cmd_import(int argc, char **argv) {
    const char *cmd = "import";
    cli_args a;
    int early;
    if (cli_start(argc, argv, opts, N_OPTS,
                  "usage: attnviz import ARRAYS.npz|LAYER0.npy LAYER1.npy ...|ARRAYS.safetensors --tokens "
                  "tokens.json "
                  "-o trace.safetensors\n\n"
                  "Arrays: [layers, heads, T, T], [layers, 1, heads, T, T], or one layer [heads, T, T] / [1, "
                  "heads, T, T]\n"
                  "per .npy / npz member (layers in order; npz members by name: arr_0, arr_1, ..., arr_10).\n"
                  "   or: attnviz import RESPONSE.json|.jsonl|.sse [--provider P] -o trace.safetensors\n"
                  "A model API's response with log-probabilities (OpenAI, vLLM, Ollama, llama.cpp) gives a "
                  "trace of tokens\n"
                  "and log-probabilities without attention (docs/GENERATION.md).\n",
                  -1, &a, cmd, &early))
        return early;
    int rc = 1;
    av_trace *t = NULL;
    av_err err = {{0}};
    av_import_params p = av_import_default_params();
    const char *out = cli_output(&a, "trace.safetensors"), *dtype = cli_get(&a, "dtype");
    long prefix;
    if (a.n_positional == 0) {
        cli_failf(cmd, "no input arrays given (attnviz import attentions.npz --tokens tokens.json -o "
                       "trace.safetensors)");
        goto done;
    }
    if (cli_has(&a, "provider") || is_api_response(a.positional[0])) {
        rc = import_api(&a, cmd);
        goto done;
    }
    for (const char *o = "provider\0choice\0max-alternatives\0"; *o; o += strlen(o) + 1)
        if (cli_has(&a, o)) {
            cli_failf(cmd, "--%s applies to API responses, not to attention arrays", o);
            goto done;
        }
    if (dtype && strcmp(dtype, "f32") != 0 && strcmp(dtype, "f16") != 0) {
        cli_failf(cmd, "--dtype must be f32 or f16, got '%s'", dtype);
        goto done;
    }
    if (cli_get_int(&a, "prefix-tokens", -1, 0, 1000000, &prefix, cmd) ||
        cli_get_num(&a, "tol", p.tolerance, nextafter(0.0, 1.0), nextafter(1.0, 0.0), "in (0, 1)",
                    &p.tolerance, cmd))
        goto done;
    p.inputs = a.positional;
    p.n_inputs = a.n_positional;
    p.tokens_path = cli_get(&a, "tokens");
    av_attn_kind kind;
    if (cli_get(&a, "kind")) {
        if (cli_get_kind(&a, cmd, &kind)) goto done;
        p.kind = (int)kind;
    }
    p.check_rows = !cli_has(&a, "no-check");
    p.dtype = dtype && strcmp(dtype, "f16") == 0 ? AV_DTYPE_F16 : AV_DTYPE_F32;
    p.model = cli_get(&a, "model");
    p.patch_grid = cli_get(&a, "patch-grid");
    p.prefix_tokens = (int)prefix;
    p.image_path = cli_get(&a, "image");
    if (!p.tokens_path)
        fprintf(stderr, "attnviz import: no --tokens given: tokens will be shown as their indices\n");
    if (av_trace_import(&p, &t, &err) || av_trace_save(t, out, &err)) {
        cli_fail(cmd, &err);
        goto done;
    }
    fprintf(stderr, "attnviz import: %d tokens,", av_trace_n_tokens(t));
    for (int k = 0; k < AV_ATTN_KIND_COUNT; k++) {
        int n = av_trace_n_layers(t, (av_attn_kind)k);
        av_attn_view v;
        if (n && !av_trace_attn(t, (av_attn_kind)k, 0, &v, NULL))
            fprintf(stderr, " %s: %d layers x %d heads (%d x %d),", av_attn_kind_name((av_attn_kind)k), n,
                    v.n_heads, v.n_query, v.n_key);
    }
    fprintf(stderr, " -> %s\n", out);
    rc = 0;
done:
    av_trace_free(t);
    cli_args_free(&a);
    return rc;
}
