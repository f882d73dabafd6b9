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

/* ---- input of any size ---- */

#define CLI_TEXT_MAX ((size_t)256 << 20) /* the largest text read from a file or stdin */

/* The text given by option `name` (or, with allow_positional, a lone positional argument) or read from the
 * file named by option `file_opt` (may be NULL): "TEXT" as given, "-" reads stdin, "@PATH" reads PATH
 * ("@@..." is the literal text "@..."). *out is malloc'd; NULL (and 0 returned) when none is given. Empty
 * text, two sources at once or an unreadable file: -1 after printing the error. */
int cli_get_text(const cli_args *a, const char *cmd, const char *name, const char *file_opt,
                 int allow_positional, char **out);

/* ---- one selection vocabulary for show, render, html and stats ----
 * --kind K, --layer L|mean|max|min (negative L counts from the end), --head H|mean|max|min, --exclude-first,
 * --rows A:B and --cols C:D (half-open token ranges; A or B may be left out; negative counts from the end),
 * --pool max|mean (how cells covering several tokens are pooled). */
#define CLI_SELECTION_OPTS                                                                                   \
    {"kind", 1, "K          attention kind: self, enc, dec or cross (default: the first present)"},          \
        {"layer", 1, "L|mean|max|min  layer (negative counts from the end), or a reduction over layers"},    \
        {"head", 1, "H|mean|max|min  head index or reduction over heads"},                                   \
        {"exclude-first", 0,                                                                                 \
         "  leave out the first (sink) token, as query and key; rows renormalized to 1"},                    \
        {"rows", 1, "A:B        query tokens A..B-1 only (a zoomed window; A or B may be left out)"},        \
        {"cols", 1, "C:D        key tokens C..D-1 only"}, {                                                  \
        "pool", 1,                                                                                           \
            "max|mean   pooling of cells that cover several tokens (default max; mean for --head mean "      \
            "on a lazy trace's overview)"                                                                    \
    }

typedef struct cli_sel {
    av_attn_kind kind;
    int layer;        /* >= 0, or -1 with layer_reduce */
    int layer_reduce; /* 0, or AV_HEADS_MEAN / MAX / MIN: a reduction over every layer */
    int head;         /* >= 0 or AV_HEADS_MEAN / MAX / MIN */
    int exclude_first;
    int q0, q1, k0, k1; /* the token window [q0, q1) x [k0, k1), resolved against the trace */
    int window_given;   /* --rows or --cols was given */
    av_pool pool;
    int pool_given;
    int n_layers, n_heads, n_query, n_key; /* of the kind */
} cli_sel;

/* The selection options against a loaded trace (kind resolved by cli_load_trace); def_head is the head when
 * --head is absent. Returns -1 after printing the error. */
int cli_get_sel(const cli_args *a, const char *cmd, const av_trace *t, av_attn_kind kind, int def_head,
                cli_sel *s);
/* --head of the step views: an index, mean (default) or max; -1 after printing the error. */
int cli_get_steps_head(const cli_args *a, const char *cmd, int *out);
/* "mean", "max", "min" or the index, for titles. */
const char *cli_reduce_name(int head, char buf[16]);

/* ---- progress on stderr (a terminal, or --progress) ---- */

typedef struct cli_progress {
    int on; /* stderr is a terminal or --progress was given */
    double t0, last;
    int shown; /* a line is on the screen */
    const char *cmd;
} cli_progress;

void cli_progress_start(cli_progress *p, const cli_args *a, const char *cmd);
/* "attnviz CMD: <what> 43% · 3m10s left" at most 4 times a second (fraction in [0, 1]). */
void cli_progress_show(cli_progress *p, double fraction, const char *what);
/* Clears the line (call before printing results or errors). */
void cli_progress_end(cli_progress *p);
/* av_run_params.on_progress for a cli_progress (ctx). */
void cli_progress_run(void *ctx, const av_progress *pr);

/* ---- the matrix of a selection (selection.c) ---- */

typedef struct cli_matrix {
    float *data; /* (rows, cols) */
    int rows, cols;
    int pooled; /* cells cover several tokens */
    av_pool pool;
    char **row_labels, **col_labels; /* (rows), (cols): token labels, "a-b" for pooled cells */
} cli_matrix;

/* The selection's matrix in at most max_rows x max_cols cells: exact values when its window fits, else
 * pooled (s->pool; the mean for the mean of heads when a lazy trace's overview answers it at once). prog
 * (may be NULL) shows progress over layers. Returns -1 after printing the error. */
int cli_sel_matrix(const av_trace *t, const cli_sel *s, int max_rows, int max_cols, cli_matrix *m,
                   cli_progress *prog, const char *cmd);
void cli_matrix_free(cli_matrix *m);
/* "model · layer L · head H · queries a:b × keys c:d · first token excluded · max-pooled" */
void cli_sel_title(const av_trace *t, const cli_sel *s, const cli_matrix *m, char *buf, size_t n);

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
