/* The attnviz command: one file per subcommand, a shared option parser. */
#ifndef AV_CLI_H
#define AV_CLI_H

#include "attnviz.h"
#include "render/daam.h"

#include <stdio.h>

/* Options: "--name value" or "--name=value" pairs, flags without value, and positional arguments. */
typedef struct cli_opt_spec {
    const char *name; /* without the leading "--" */
    int takes_value;
    const char *help; /* "VALUE  what it does" */
} cli_opt_spec;

typedef struct cli_args {
    const cli_opt_spec *specs;
    int n_specs;
    const char **values; /* (n_specs) value or "" for a given flag, NULL when absent */
    const char **positional;
    int n_positional;
    const char **given; /* (n_given) the value of every option occurrence, in order */
    int *given_spec;    /* (n_given) its spec */
    int n_given;
} cli_args;

/* Parses argv (after the subcommand name). Prints a one-line error and returns -1 on unknown options. */
int cli_parse(int argc, char **argv, const cli_opt_spec *specs, int n_specs, cli_args *out, const char *cmd);
void cli_args_free(cli_args *a);
/* The start of every subcommand: parses argv; on --help prints usage and the options to stdout (exit 0); with
 * want_positional >= 0 and another number of positional arguments, prints them to stderr (exit 2); a parse
 * error exits 2. Returns 1 when the command must return *exit_code now (a is then freed), 0 to go on. */
int cli_start(int argc, char **argv, const cli_opt_spec *specs, int n_specs, const char *usage,
              int want_positional, cli_args *a, const char *cmd, int *exit_code);
const char *cli_get(const cli_args *a, const char *name);
/* Every value of a repeatable option (--stop A --stop B), in order: *out malloc'd (caller frees, also when
 * 0 is returned); the count. cli_get gives the last one. */
int cli_get_all(const cli_args *a, const char *name, const char ***out);
int cli_has(const cli_args *a, const char *name);
/* Integer option with a default; -1 and a message on a malformed number. */
int cli_get_int(const cli_args *a, const char *name, long def, long min, long max, long *out,
                const char *cmd);
/* Number option with a default; -1 and "--NAME must be a number RANGE, got 'V'" when malformed or outside
 * [lo, hi] (range: how the bounds read, e.g. "in [0, 1]"; NULL for none). */
int cli_get_num(const cli_args *a, const char *name, double def, double lo, double hi, const char *range,
                double *out, const char *cmd);
/* --output PATH or -o PATH; def when neither is given. */
const char *cli_output(const cli_args *a, const char *def);
void cli_print_options(FILE *fp, const cli_opt_spec *specs, int n_specs);
int cli_fail(const char *cmd, const av_err *err); /* prints "attnviz CMD: message", returns 1 */
int cli_failf(const char *cmd, const char *fmt, ...);

/* Loads --model with --tokenizer and --threads options; returns -1 after printing the error. */
int cli_load_model(const cli_args *a, const char *cmd, av_model **out);

/* The prompt of the conversation in messages_path (JSON), formatted with --chat-template FILE or the
 * tokenizer's own template (av_chat_format), honouring --no-generation-prompt, --chat-date YYYY-MM-DD,
 * --bos-token and --eos-token. *text malloc'd. Returns -1 after printing the error. */
int cli_chat_prompt(const cli_args *a, const char *cmd, const char *messages_path, const av_tokenizer *tok,
                    char **text, int *add_special);
/* The option specs of cli_chat_prompt, for the subcommands' tables. */
/* clang-format off */
#define CLI_CHAT_OPTS                                                                                        \
    {"chat", 1, "FILE       a conversation (JSON: [{\"role\": ..., \"content\": ...}] or "                   \
                "{\"messages\": [...]}), formatted with the model's chat template"},                         \
    {"chat-template", 1, "FILE  a Jinja chat template to use instead of the model's"},                       \
    {"no-generation-prompt", 0, "  do not end the prompt with the opening of the assistant's turn"},         \
    {"chat-date", 1, "YYYY-MM-DD  the date the template's strftime_now() sees (default: today)"}
/* clang-format on */

/* Token ids from "1,2,3" or "@path.json" (a JSON array of integers): *out malloc'd. */
int cli_parse_ids(const char *spec, int32_t **out, size_t *n, av_err *err);

/* --kind K as an attention kind (*kind unchanged when absent); returns -1 after printing the error. */
int cli_get_kind(const cli_args *a, const char *cmd, av_attn_kind *kind);
/* --attr METHOD as an attribution method, --positions A-B as the range [*pos0, *pos1) (each unchanged when
 * absent); -1 after printing the error. */
int cli_get_attr_method(const cli_args *a, const char *cmd, av_attr_method *method);
int cli_get_positions(const cli_args *a, const char *cmd, int *pos0, int *pos1);
/* A trace with neither attention nor log-probabilities but with attribution or a logit lens: prints which
 * option shows it and returns -1; else 0. */
int cli_no_attention_hint(const av_trace *t, const char *cmd);
/* Loads the trace named by the first positional argument; *kind: --kind, else the first kind the trace holds.
 * Returns -1 after printing the error. */
int cli_load_trace(const cli_args *a, const char *cmd, av_trace **t, av_attn_kind *kind);

/* ---- DAAM views of text-to-image traces (daam_opts.c) ---- */

#define CLI_DAAM_OPTS                                                                                        \
    {"word", 1, "W          text-to-image traces: the DAAM map of this prompt word (default: every token)"}, \
        {"step-range", 1, "A:B  DAAM: sum over sampling steps [A, B) only (default: all)"},                  \
        {"layer-range", 1, "A:B DAAM: sum over denoiser layers [A, B) only (default: all)"}, {               \
        "head-range", 1, "A:B  DAAM: sum over heads [A, B) only (default: all)"                              \
    }
/* 1 when the command should draw DAAM maps: a DAAM option is given, or the trace has daam.raw and no
 * attention-view option (--kind, --layer, --head, --grid, --steps) asks for the heatmap instead. */
int cli_daam_wanted(const cli_args *a, const av_trace *t);
/* --word, the ranges and --cmap into p (dpi 150); -1 after printing the error. */
int cli_daam_params(const cli_args *a, const char *cmd, av_daam_plot_params *p);

typedef struct cli_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
} cli_command;

int cmd_run(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_render(int argc, char **argv);
int cmd_html(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_roles(int argc, char **argv);
int cmd_corpus(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_attribute(int argc, char **argv);
int cmd_lens(int argc, char **argv);

#endif
