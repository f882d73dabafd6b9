/* attnviz: entry point and subcommand dispatch. */
#include "cli.h"
#include "core/core.h"

#include <string.h>

static const cli_command commands[] = {
    {"run", "run a model on text and save every layer's attention as a trace", cmd_run},
    {"show", "draw one head (or the mean/max over heads) of a trace in the terminal", cmd_show},
    {"info", "describe a trace or a model file", cmd_info},
    {"generate", "greedy (temperature 0) continuation of a prompt", cmd_generate},
    {"convert", "write a Llama-family model as GGUF or as a Hugging Face directory", cmd_convert},
    {"tokenize", "show how a tokenizer splits a text: ids, pieces and display labels", cmd_tokenize},
    {"chat", "the prompt a conversation becomes with a model's chat template", cmd_chat},
    {"serve", "local web app and HTTP API: run text, explore every head, zoom down to single cells",
     cmd_serve},
    {"render", "draw a trace as a PNG or SVG heatmap (one head, mean/max, or the layers x heads grid)",
     cmd_render},
    {"html", "write a trace as one standalone offline HTML page with the interactive viewer", cmd_html},
    {"import",
     "make a trace from attention saved by other tools (.npy, .npz, safetensors) or a model API response",
     cmd_import},
    {"stats", "per-head statistics of a trace (entropy, sink, previous-token...), rollout, flow", cmd_stats},
    {"roles", "find previous-token, sink, induction... heads of a model with built-in probes", cmd_roles},
    {"corpus", "head statistics, roles and query/key maps over a data set (threads, MPI ranks)", cmd_corpus},
    {"attribute", "which input tokens matter to the output: occlusion, Shapley, gradients, IG",
     cmd_attribute},
    {"lens", "the logit lens: each layer's residual stream decoded into tokens", cmd_lens},
    {"diff", "compare two traces of the same tokens: attention differences per head, log-probability changes",
     cmd_diff},
};
enum { N_COMMANDS = sizeof commands / sizeof commands[0] };

static void usage(FILE *fp) {
    fprintf(fp, "attnviz %s: see what every layer and head of a transformer attends to\n\n", AV_VERSION);
    fprintf(fp, "usage: attnviz COMMAND [options]   (attnviz COMMAND --help for its options)\n\ncommands:\n");
    for (int i = 0; i < N_COMMANDS; i++)
        fprintf(fp, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("attnviz %s (trace format %s)\n", AV_VERSION, AV_TRACE_VERSION);
        return 0;
    }
    av_atomic_remove_on_signals(); /* an interrupted run leaves no "<out>.tmp.<pid>" behind */
    for (int i = 0; i < N_COMMANDS; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "attnviz: unknown command '%s' (try 'attnviz --help')\n", argv[1]);
    return 2;
}
