/* attnviz generate: continuation (or, for encoder-decoders, translation) streamed to stdout, with sampling,
 * stop strings and a version 3 trace (-o) of everything: the produced tokens' log-probabilities, entropies
 * and alternatives, the prompt's own log-probabilities, every layer's attention (docs/GENERATION.md). */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static const cli_opt_spec opts[] = {
    {"model", 1, "PATH      model: llama2.c .bin, .gguf, or Hugging Face directory"},
    {"tokenizer", 1, "PATH  tokenizer file (default: from the model or next to it)"},
    {"prompt", 1,
     "TEXT     text to continue, or for a translator the source (default: start from BOS); '-' "
     "reads stdin, '@FILE' reads FILE ('@@' for a leading '@')"},
    {"prompt-file", 1, "PATH  the prompt from a file ('-': stdin), of any size"},
    {"text", 1, "TEXT       same as --prompt"},
    {"text-file", 1, "PATH  same as --prompt-file"},
    CLI_CHAT_OPTS,
    {"steps", 1, "N          tokens to produce at most (default 64; fewer when the context is full)"},
    {"temperature", 1, "T   sampling temperature (default 0: greedy)"},
    {"top-k", 1, "K         sample among the K most probable tokens (default 0: all)"},
    {"top-p", 1, "P         sample among the most probable tokens whose probability reaches P (default 1)"},
    {"min-p", 1, "P         drop tokens below P times the most probable one's probability (default 0)"},
    {"seed", 1, "N          seed of the sampler's random numbers (default 0; same seed, same output)"},
    {"top-logprobs", 1, "K  alternatives recorded per token in the trace (default 10)"},
    {"stop", 1, "TEXT       stop once the produced text holds TEXT (repeatable)"},
    {"ignore-eos", 0, "            go on after the end-of-sequence token"},
    {"no-bos", 0, "            do not add the tokenizer's BOS to the prompt"},
    {"dtype", 1, "f32|f16    storage of the trace's attention (default f32)"},
    {"lazy", 0, "            store queries and keys instead of full attention matrices"},
    {"output", 1, "PATH     save the trace (tokens, log-probabilities, attention); also -o"},
    {"o", 1, "PATH          same as --output"},
    {"threads", 1, "N       worker threads (default: all cores)"},
    {"help", 0, "            show this help"},
};
enum { N_OPTS = sizeof opts / sizeof opts[0] };

typedef struct gen_out {
    const char *prompt; /* printed before the first produced text, once generation runs */
    int started;
} gen_out;

static void print_piece(void *ctx, const char *bytes, size_t len) {
    gen_out *o = ctx;
    if (!o->started && o->prompt) fputs(o->prompt, stdout);
    o->started = 1;
    fwrite(bytes, 1, len, stdout);
    fflush(stdout);
}

/* Sampling, trace and stop options into p; -1 after printing the error. */
static int parse_params(const cli_args *a, const char *cmd, av_generate_params *p) {
    long steps, top_k, top_logprobs, seed;
    if (cli_get_int(a, "steps", 64, 1, 1 << 20, &steps, cmd) ||
        cli_get_int(a, "top-k", 0, 0, 1 << 30, &top_k, cmd) ||
        cli_get_int(a, "top-logprobs", 10, 0, 1024, &top_logprobs, cmd) ||
        cli_get_int(a, "seed", 0, 0, 0x7fffffffffffffffL, &seed, cmd) ||
        cli_get_num(a, "temperature", 0, 0, 1e6, "in [0, 1e6]", &p->sampling.temperature, cmd) ||
        cli_get_num(a, "top-p", 1, 1e-12, 1, "in (0, 1]", &p->sampling.top_p, cmd) ||
        cli_get_num(a, "min-p", 0, 0, 1, "in [0, 1]", &p->sampling.min_p, cmd))
        return -1;
    const char *dtype = cli_get(a, "dtype");
    if (dtype && strcmp(dtype, "f32") && strcmp(dtype, "f16"))
        return cli_failf(cmd, "--dtype must be f32 or f16, got '%s'", dtype), -1;
    p->steps = (int)steps;
    p->sampling.top_k = (int)top_k;
    p->sampling.seed = (uint64_t)seed;
    p->top_logprobs = (int)top_logprobs;
    p->ignore_eos = cli_has(a, "ignore-eos");
    p->add_bos = !cli_has(a, "no-bos");
    p->run.dtype = dtype && !strcmp(dtype, "f16") ? AV_DTYPE_F16 : AV_DTYPE_F32;
    p->run.lazy = cli_has(a, "lazy");
    p->run.output_path = cli_output(a, NULL);
    p->want_attention = cli_output(a, NULL) != NULL;
    for (int i = 0; i < p->n_stop; i++)
        if (!p->stop[i][0]) return cli_failf(cmd, "--stop needs a non-empty text"), -1;
    return 0;
}

/* --chat: the conversation formatted by the model's chat template (*text, malloc'd), encoded the way the
 * model's own runtime encodes it (p->add_bos from av_chat_format's BOS rule), as run --chat does. */
static int chat_text(const cli_args *a, const char *cmd, const av_model *m, char **text,
                     av_generate_params *p) {
    const av_tokenizer *tok = av_model_tokenizer(m);
    int add_special;
    if (!tok) return cli_failf(cmd, "the model has no tokenizer: pass --tokenizer"), -1;
    if (cli_chat_prompt(a, cmd, cli_get(a, "chat"), tok, text, &add_special)) return -1;
    p->add_bos = add_special;
    return 0;
}

static void print_summary(const av_trace *t, const char *out) {
    av_generation_info g;
    av_trace_generation_info(t, &g);
    fprintf(stderr, "attnviz generate: %d prompt + %d produced tokens (stop: %s) -> %s\n", g.prompt_len,
            av_trace_n_tokens(t) - g.prompt_len, g.stop_reason ? g.stop_reason : "?",
            out ? out : "(no trace)");
}

int cmd_generate(int argc, char **argv) {
    const char *cmd = "generate";
    cli_args a;
    int early;
    if (cli_start(argc, argv, opts, N_OPTS,
                  "usage: attnviz generate --model PATH [--prompt TEXT|-|@FILE | --prompt-file PATH | --chat "
                  "messages.json] [--steps N] "
                  "[--temperature T "
                  "--top-k K --top-p P --min-p P --seed N] [--stop TEXT]... [-o trace.safetensors]\n",
                  0, &a, cmd, &early))
        return early;
    int rc = 1;
    av_model *m = NULL;
    av_trace *t = NULL;
    av_err err = {{0}};
    av_generate_params p = av_generate_default_params();
    const char **stops = NULL, *prompt = NULL;
    char *chat = NULL, *given = NULL;
    p.n_stop = cli_get_all(&a, "stop", &stops);
    p.stop = stops;
    int alias = cli_has(&a, "text") || cli_has(&a, "text-file");
    if (alias && (cli_has(&a, "prompt") || cli_has(&a, "prompt-file"))) {
        cli_failf(cmd, "give the prompt once: --prompt (--prompt-file) or --text (--text-file)");
        goto done;
    }
    if (cli_get_text(&a, cmd, alias ? "text" : "prompt", alias ? "text-file" : "prompt-file", 0, &given))
        goto done;
    prompt = given;
    if (prompt && cli_has(&a, "chat")) {
        cli_failf(cmd, "give either --chat or --prompt, not both");
        goto done;
    }
    /* every option is checked before the model loads, and nothing is printed before generation runs */
    if (!stops || parse_params(&a, cmd, &p) || cli_load_model(&a, cmd, &m) ||
        (cli_has(&a, "chat") && chat_text(&a, cmd, m, &chat, &p)))
        goto done;
    if (chat) prompt = chat;
    if (av_sampling_check(&p.sampling, &err)) {
        cli_fail(cmd, &err);
        goto done;
    }
    gen_out o = {av_model_get_info(m).family == AV_FAMILY_ENCDEC ? NULL : prompt, 0};
    p.on_piece = print_piece;
    p.piece_ctx = &o;
    if (av_generate(m, prompt ? prompt : "", &p, &t, &err)) {
        if (o.started) putchar('\n');
        cli_fail(cmd, &err);
        goto done;
    }
    if (!o.started && o.prompt)
        fputs(o.prompt, stdout); /* nothing produced (end at once): the prompt alone */
    putchar('\n');
    const char *out = cli_output(&a, NULL);
    if (out && av_trace_save(t, out, &err)) {
        cli_fail(cmd, &err);
        goto done;
    }
    print_summary(t, out);
    rc = 0;
done:
    free(given);
    free(chat);
    free(stops);
    av_trace_free(t);
    av_model_free(m);
    cli_args_free(&a);
    return rc;
}
