/* Option parsing and error printing shared by the subcommands. */
#include "cli.h"
#include "core/core.h"

#include "io/io.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cli_parse(int argc, char **argv, const cli_opt_spec *specs, int n_specs, cli_args *out, const char *cmd) {
    memset(out, 0, sizeof *out);
    out->specs = specs;
    out->n_specs = n_specs;
    out->values = calloc((size_t)n_specs + 1, sizeof *out->values);
    out->positional = calloc((size_t)argc + 1, sizeof *out->positional);
    out->given = calloc((size_t)argc + 1, sizeof *out->given);
    out->given_spec = calloc((size_t)argc + 1, sizeof *out->given_spec);
    if (!out->values || !out->positional || !out->given || !out->given_spec) {
        cli_args_free(out);
        return cli_failf(cmd, "out of memory") ? -1 : -1;
    }
    int only_positional = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (only_positional || arg[0] != '-' || arg[1] == 0) {
            out->positional[out->n_positional++] = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            only_positional = 1;
            continue;
        }
        const char *name = arg + (arg[1] == '-' ? 2 : 1);
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        int found = -1;
        for (int k = 0; k < n_specs; k++)
            if (strlen(specs[k].name) == nlen && strncmp(specs[k].name, name, nlen) == 0) found = k;
        if (found < 0) {
            cli_failf(cmd, "unknown option '%s' (see 'attnviz %s --help')", arg, cmd);
            cli_args_free(out);
            return -1;
        }
        if (specs[found].takes_value) {
            if (eq) {
                out->values[found] = eq + 1;
            } else if (i + 1 < argc) {
                out->values[found] = argv[++i];
            } else {
                cli_failf(cmd, "option '--%s' needs a value", specs[found].name);
                cli_args_free(out);
                return -1;
            }
        } else {
            if (eq) {
                cli_failf(cmd, "option '--%s' takes no value", specs[found].name);
                cli_args_free(out);
                return -1;
            }
            out->values[found] = "";
        }
        out->given[out->n_given] = out->values[found]; /* every occurrence, for repeatable options */
        out->given_spec[out->n_given++] = found;
    }
    return 0;
}

int cli_get_all(const cli_args *a, const char *name, const char ***out) {
    int n = 0;
    *out = calloc((size_t)a->n_given + 1, sizeof **out);
    for (int i = 0; *out && i < a->n_given; i++)
        if (strcmp(a->specs[a->given_spec[i]].name, name) == 0) (*out)[n++] = a->given[i];
    return n;
}

int cli_start(int argc, char **argv, const cli_opt_spec *specs, int n_specs, const char *usage,
              int want_positional, cli_args *a, const char *cmd, int *exit_code) {
    if (cli_parse(argc, argv, specs, n_specs, a, cmd)) {
        *exit_code = 2;
        return 1;
    }
    int help = cli_has(a, "help");
    if (!help && (want_positional < 0 || a->n_positional == want_positional)) return 0;
    FILE *fp = help ? stdout : stderr;
    fprintf(fp, "%s\n", usage);
    cli_print_options(fp, specs, n_specs);
    cli_args_free(a);
    *exit_code = help ? 0 : 2;
    return 1;
}

void cli_args_free(cli_args *a) {
    free(a->values);
    free(a->positional);
    free(a->given);
    free(a->given_spec);
    memset(a, 0, sizeof *a);
}

const char *cli_get(const cli_args *a, const char *name) {
    for (int k = 0; k < a->n_specs; k++)
        if (strcmp(a->specs[k].name, name) == 0) return a->values[k];
    return NULL;
}

int cli_has(const cli_args *a, const char *name) { return cli_get(a, name) != NULL; }

int cli_get_int(const cli_args *a, const char *name, long def, long min, long max, long *out,
                const char *cmd) {
    const char *v = cli_get(a, name);
    if (!v) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < min || x > max) {
        cli_failf(cmd, "--%s must be an integer in [%ld, %ld], got '%s'", name, min, max, v);
        return -1;
    }
    *out = x;
    return 0;
}

int cli_get_num(const cli_args *a, const char *name, double def, double lo, double hi, const char *range,
                double *out, const char *cmd) {
    const char *v = cli_get(a, name);
    if (!v) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !(x >= lo && x <= hi)) {
        cli_failf(cmd, "--%s must be a number%s%s, got '%s'", name, range ? " " : "", range ? range : "", v);
        return -1;
    }
    *out = x;
    return 0;
}

const char *cli_output(const cli_args *a, const char *def) {
    const char *out = cli_get(a, "output") ? cli_get(a, "output") : cli_get(a, "o");
    return out ? out : def;
}

int cli_get_kind(const cli_args *a, const char *cmd, av_attn_kind *kind) {
    const char *s = cli_get(a, "kind");
    if (s && av_attn_kind_parse(s, kind)) {
        cli_failf(cmd, "--kind must be self, enc, dec or cross, got '%s'", s);
        return -1;
    }
    return 0;
}

int cli_get_attr_method(const cli_args *a, const char *cmd, av_attr_method *method) {
    const char *s = cli_get(a, "attr");
    if (s && av_attr_method_parse(s, method))
        return cli_failf(cmd, "--attr must be occlusion, shapley, saliency, ixg, ig or attn-grad, got '%s'",
                         s)
                   ? -1
                   : -1;
    return 0;
}

int cli_get_positions(const cli_args *a, const char *cmd, int *pos0, int *pos1) {
    const char *s = cli_get(a, "positions");
    int p0, p1;
    if (!s) return 0;
    if (sscanf(s, "%d-%d", &p0, &p1) != 2 || p0 < 0 || p1 < p0)
        return cli_failf(cmd, "--positions must be A-B (first and last position), got '%s'", s) ? -1 : -1;
    *pos0 = p0, *pos1 = p1 + 1;
    return 0;
}

int cli_no_attention_hint(const av_trace *t, const char *cmd) {
    av_tensor x;
    const char *method = NULL;
    if (av_trace_has_attention(t) || av_trace_has_logprobs(t)) return 0;
    for (int k = 0; k < AV_ATTR_METHOD_COUNT && !method; k++) {
        char name[48];
        snprintf(name, sizeof name, "attr.%s", av_attr_method_name((av_attr_method)k));
        if (av_trace_tensor(t, name, &x) == 0) method = av_attr_method_name((av_attr_method)k);
    }
    int lens = av_trace_tensor(t, "lens.topk_ids", &x) == 0;
    if (!method && !lens) return 0;
    return cli_failf(cmd, "this trace holds no attention weights (made with --no-attention): give %s%s%s%s",
                     method ? "--attr " : "", method ? method : "", method && lens ? " or " : "",
                     lens ? "--lens" : "")
               ? -1
               : -1;
}

int cli_load_trace(const cli_args *a, const char *cmd, av_trace **t, av_attn_kind *kind) {
    av_err err = {{0}};
    *t = NULL;
    *kind = AV_ATTN_SELF;
    if (cli_get_kind(a, cmd, kind)) return -1;
    if (av_trace_load(a->positional[0], t, &err)) {
        cli_fail(cmd, &err);
        return -1;
    }
    if (!cli_get(a, "kind"))
        for (int k = 0; k < AV_ATTN_KIND_COUNT; k++)
            if (av_trace_n_layers(*t, (av_attn_kind)k)) {
                *kind = (av_attn_kind)k;
                break;
            }
    return 0;
}

/* Help strings are "VALUE  what it does" for options with a value and "what it does" for flags; the value
 * word goes next to the option name and the descriptions line up in one column. */
void cli_print_options(FILE *fp, const cli_opt_spec *specs, int n_specs) {
    for (int k = 0; k < n_specs; k++) {
        const char *h = specs[k].help;
        while (*h == ' ')
            h++;
        char left[96];
        int n = snprintf(left, sizeof left, "%s%s", strlen(specs[k].name) > 1 ? "--" : "-", specs[k].name);
        if (specs[k].takes_value) {
            size_t w = strcspn(h, " ");
            n += snprintf(left + n, sizeof left - (size_t)n, " %.*s", (int)w, h);
            h += w;
            while (*h == ' ')
                h++;
        }
        fprintf(fp, "  %-28s %s\n", left, h);
    }
}

int cli_fail(const char *cmd, const av_err *err) {
    fprintf(stderr, "attnviz %s: %s\n", cmd, err->msg[0] ? err->msg : "failed");
    return 1;
}

int cli_failf(const char *cmd, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "attnviz %s: %s\n", cmd, msg);
    return 1;
}

int cli_load_model(const cli_args *a, const char *cmd, av_model **out) {
    const char *path = cli_get(a, "model");
    if (!path || !*path) {
        cli_failf(cmd,
                  "--model PATH is required (a llama2.c .bin, a .gguf file or a Hugging Face directory)");
        return -1;
    }
    long threads;
    if (cli_get_int(a, "threads", 0, 0, 64, &threads, cmd)) return -1;
    av_model_params mp = av_model_default_params();
    mp.tokenizer_path = cli_get(a, "tokenizer");
    mp.n_threads = (int)threads;
    av_err err = {{0}};
    if (av_model_load(path, &mp, out, &err)) {
        cli_fail(cmd, &err);
        return -1;
    }
    return 0;
}

/* ---- input of any size ---- */

/* All of stdin, or the file at path, NUL-terminated; hint follows a file's error message. */
static int read_input(const char *path, const char *hint, const char *cmd, char **out, size_t *n) {
    av_err err = {{0}};
    if (path) {
        if (av_file_read_all(path, CLI_TEXT_MAX, out, n, &err))
            return cli_failf(cmd, "%s%s", err.msg, hint) ? -1 : -1;
        return 0;
    }
    av_buf b = {0};
    char chunk[65536];
    size_t k;
    while ((k = fread(chunk, 1, sizeof chunk, stdin)) > 0 && b.n <= CLI_TEXT_MAX)
        av_buf_put(&b, chunk, k);
    if (ferror(stdin) || b.oom || b.n > CLI_TEXT_MAX) {
        free(b.s);
        return cli_failf(cmd, "cannot read the text from stdin (%s)",
                         b.n > CLI_TEXT_MAX ? "more than 256 MiB" : "read error")
                   ? -1
                   : -1;
    }
    *out = b.s ? b.s : av_strdup("");
    *n = b.n;
    return *out ? 0 : -1;
}

int cli_get_text(const cli_args *a, const char *cmd, const char *name, const char *file_opt,
                 int allow_positional, char **out) {
    const char *v = cli_get(a, name), *file = file_opt ? cli_get(a, file_opt) : NULL;
    *out = NULL;
    if (!v && allow_positional && a->n_positional == 1) v = a->positional[0];
    if (v && file) return cli_failf(cmd, "give either --%s or --%s, not both", name, file_opt) ? -1 : -1;
    if (!v && !file) return 0;
    size_t n = 0;
    int rc = 0;
    if (file)
        rc = read_input(strcmp(file, "-") == 0 ? NULL : file, "", cmd, out, &n);
    else if (strcmp(v, "-") == 0)
        rc = read_input(NULL, "", cmd, out, &n);
    else if (v[0] == '@' && v[1] != '@')
        rc = read_input(v + 1, " (@FILE reads FILE; write '@@...' for a text that starts with '@')", cmd, out,
                        &n);
    else if (!(*out = av_strdup(v[0] == '@' ? v + 1 : v)))
        rc = cli_failf(cmd, "out of memory") ? -1 : -1;
    if (!rc && !*out) rc = -1;
    if (!rc && n == 0 && **out == 0)
        rc = cli_failf(cmd, "empty input: the %s is empty (give some text%s)", file ? "file" : "text",
                       v && v[0] == '@' && v[1] != '@' ? ", or '@@...' for a text starting with '@'" : "")
                 ? -1
                 : -1;
    if (!rc && strlen(*out) != n && (file || (v && (v[0] == '-' || (v[0] == '@' && v[1] != '@')))))
        rc = cli_failf(cmd, "the input holds a NUL byte at offset %zu: not a text", strlen(*out)) ? -1 : -1;
    if (rc) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

/* ---- the selection ---- */

/* "mean", "max", "min" -> AV_HEADS_* (negative); 0 for anything else. */
static int parse_reduce(const char *s) {
    return strcmp(s, "mean") == 0  ? AV_HEADS_MEAN
           : strcmp(s, "max") == 0 ? AV_HEADS_MAX
           : strcmp(s, "min") == 0 ? AV_HEADS_MIN
                                   : 0;
}

const char *cli_reduce_name(int head, char buf[16]) {
    if (head == AV_HEADS_MEAN) return "mean";
    if (head == AV_HEADS_MAX) return "max";
    if (head == AV_HEADS_MIN) return "min";
    snprintf(buf, 16, "%d", head);
    return buf;
}

/* An index or a reduction: "3", "-1" (from the end of n), "mean"; -1 after printing the error. */
static int parse_index_or_reduce(const char *v, const char *opt, int n, const char *what, av_attn_kind kind,
                                 const char *cmd, int *out) {
    if (parse_reduce(v)) {
        *out = parse_reduce(v);
        return 0;
    }
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end)
        return cli_failf(cmd, "--%s must be a %s index, mean, max or min, got '%s'", opt, what, v) ? -1 : -1;
    if (x < 0) x += n;
    if (x < 0 || x >= n)
        return cli_failf(cmd, "--%s %s is out of range: the trace has %s %ss 0..%d (or -%d..-1)", opt, v,
                         av_attn_kind_name(kind), what, n - 1, n)
                   ? -1
                   : -1;
    *out = (int)x;
    return 0;
}

/* "A:B" against n tokens into [*lo, *hi); either end may be left out, negative counts from the end. */
static int parse_range(const char *v, const char *opt, int n, const char *cmd, int *lo, int *hi) {
    const char *colon = strchr(v, ':');
    long x[2] = {0, n};
    for (int i = 0; colon && i < 2; i++) {
        const char *s = i ? colon + 1 : v, *stop = i ? v + strlen(v) : colon;
        if (s == stop) continue;
        char *end;
        errno = 0;
        x[i] = strtol(s, &end, 10);
        if (errno || end != stop)
            colon = NULL;
        else if (x[i] < 0)
            x[i] += n;
    }
    if (!colon)
        return cli_failf(cmd, "--%s must be A:B (tokens A..B-1; A or B may be left out), got '%s'", opt, v)
                   ? -1
                   : -1;
    if (x[0] < 0 || x[1] > n || x[0] >= x[1])
        return cli_failf(cmd, "--%s %s is empty or outside the %d tokens 0..%d", opt, v, n, n - 1) ? -1 : -1;
    *lo = (int)x[0];
    *hi = (int)x[1];
    return 0;
}

int cli_get_sel(const cli_args *a, const char *cmd, const av_trace *t, av_attn_kind kind, int def_head,
                cli_sel *s) {
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->n_layers = av_trace_n_layers(t, kind);
    s->n_heads = av_trace_n_heads(t, kind);
    s->n_query = av_trace_n_query(t, kind);
    s->n_key = av_trace_n_key(t, kind);
    if (s->n_layers == 0)
        return cli_failf(cmd, "the trace has no '%s' attention", av_attn_kind_name(kind)) ? -1 : -1;
    const char *layer = cli_get(a, "layer"), *head = cli_get(a, "head"), *pool = cli_get(a, "pool");
    s->head = def_head;
    if (layer && parse_index_or_reduce(layer, "layer", s->n_layers, "layer", kind, cmd, &s->layer)) return -1;
    if (s->layer < 0) s->layer_reduce = s->layer, s->layer = -1;
    if (head && parse_index_or_reduce(head, "head", s->n_heads, "head", kind, cmd, &s->head)) return -1;
    s->exclude_first = cli_has(a, "exclude-first");
    int off = s->exclude_first ? 1 : 0;
    s->q0 = s->k0 = off;
    s->q1 = s->n_query;
    s->k1 = s->n_key;
    if ((cli_get(a, "rows") && parse_range(cli_get(a, "rows"), "rows", s->n_query, cmd, &s->q0, &s->q1)) ||
        (cli_get(a, "cols") && parse_range(cli_get(a, "cols"), "cols", s->n_key, cmd, &s->k0, &s->k1)))
        return -1;
    s->window_given = cli_has(a, "rows") || cli_has(a, "cols");
    if (off && (s->q0 < off || s->k0 < off)) { /* the first token is left out of any window */
        s->q0 = s->q0 < off ? off : s->q0;
        s->k0 = s->k0 < off ? off : s->k0;
        if (s->q0 >= s->q1 || s->k0 >= s->k1)
            return cli_failf(cmd, "--exclude-first leaves no token in the window") ? -1 : -1;
    }
    s->pool = AV_POOL_MAX;
    s->pool_given = pool != NULL;
    if (pool && strcmp(pool, "max") != 0 && strcmp(pool, "mean") != 0)
        return cli_failf(cmd, "--pool must be max or mean, got '%s'", pool) ? -1 : -1;
    if (pool) s->pool = strcmp(pool, "mean") == 0 ? AV_POOL_MEAN : AV_POOL_MAX;
    return 0;
}

/* --head of the step views (which need no attention to run): an index, mean (default) or max. */
int cli_get_steps_head(const cli_args *a, const char *cmd, int *out) {
    const char *h = cli_get(a, "head");
    *out = AV_HEADS_MEAN;
    if (!h || strcmp(h, "mean") == 0) return 0;
    if (strcmp(h, "max") == 0) {
        *out = AV_HEADS_MAX;
        return 0;
    }
    char *end;
    errno = 0;
    long v = strtol(h, &end, 10);
    if (errno || end == h || *end || v < 0 || v > 65535)
        return cli_failf(cmd, "--steps: --head must be a head index, mean or max, got '%s'", h) ? -1 : -1;
    *out = (int)v;
    return 0;
}

/* ---- progress ---- */

void cli_progress_start(cli_progress *p, const cli_args *a, const char *cmd) {
    memset(p, 0, sizeof *p);
    p->on = cli_has(a, "progress") || isatty(2);
    p->t0 = p->last = av_seconds();
    p->cmd = cmd;
}

void cli_progress_show(cli_progress *p, double fraction, const char *what) {
    double now = av_seconds();
    if (!p->on || (now - p->last < 0.25 && fraction < 1)) return;
    p->last = now;
    char left[48] = "";
    double el = now - p->t0;
    if (fraction > 0.01 && fraction < 1) {
        double s = el * (1 - fraction) / fraction;
        if (s >= 60)
            snprintf(left, sizeof left, " · %dm%02ds left", (int)(s / 60), (int)s % 60);
        else
            snprintf(left, sizeof left, " · %.0fs left", s);
    }
    fprintf(stderr, "\r\033[Kattnviz %s: %s %3.0f%%%s", p->cmd, what, 100 * fraction, left);
    fflush(stderr);
    p->shown = 1;
}

void cli_progress_end(cli_progress *p) {
    if (p->shown) fputs("\r\033[K", stderr);
    p->shown = 0;
}

void cli_progress_run(void *ctx, const av_progress *pr) {
    char what[96];
    snprintf(what, sizeof what, "layer %d/%d, %d/%d tokens", pr->layer + 1, pr->n_layers, pr->tokens,
             pr->n_tokens);
    cli_progress_show(ctx, pr->total > 0 ? pr->done / pr->total : 0, what);
}
int cli_parse_ids(const char *spec, int32_t **out, size_t *n, av_err *err) {
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
    for (const char *p = spec; *p; p++)
        cap += *p == ',';
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
