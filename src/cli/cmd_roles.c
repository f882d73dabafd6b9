/* attnviz roles: run the head-role probes on a model and print every head's best role and all its scores. */
#include "analysis/analysis.h"
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const cli_opt_spec opts[] = {
    {"model", 1, "PATH      model: llama2.c .bin, .gguf, or Hugging Face directory"},
    {"tokenizer", 1, "PATH  tokenizer file (default: from the model or next to it)"},
    {"seq-len", 1, "N       length L of the random segment repeated twice (default 32)"},
    {"samples", 1, "K       random sequences averaged (default 4)"},
    {"seed", 1, "S          seed of the random sequences (default 1)"},
    {"text", 1, "TEXT       natural-text probe (default: a built-in paragraph)"},
    {"json", 0, "            JSON output (schema in docs/ANALYSIS.md)"},
    {"threads", 1, "N       worker threads (default: all cores)"},
    {"help", 0, "            show this help"},
};
enum { N_OPTS = sizeof opts / sizeof opts[0] };

static void print_roles(FILE *fp, const av_model *m, const av_roles_result *r) {
    av_model_info info = av_model_get_info(m);
    fprintf(fp,
            "%s: %d layers x %d heads; probes: natural text (%d tokens), %d x [BOS + %d random tokens "
            "repeated twice] (seed %llu)\n",
            info.name, r->n_layers, r->n_heads, r->text_tokens, r->n_samples, r->seq_len,
            (unsigned long long)r->seed);
    fprintf(fp, "%5s %4s  %-16s %6s  %6s %6s %6s %6s %6s %6s\n", "layer", "head", "role", "score", "prev",
            "first", "self", "broad", "dup", "induct");
    for (int k = 0; k < r->n_layers * r->n_heads; k++) {
        const av_head_roles *h = &r->heads[k];
        fprintf(fp, "%5d %4d  %-16s %6.3f ", h->layer, h->head, av_role_name(h->best), h->best_score);
        for (int s = 0; s < AV_ROLE_COUNT; s++) {
            if (isnan(h->score[s]))
                fprintf(fp, " %6s", "-");
            else
                fprintf(fp, " %6.3f", h->score[s]);
        }
        fputc('\n', fp);
    }
    fputc('\n', fp);
}

/* One line per role: "induction heads: 1.2, 1.3". */
static void print_summary(FILE *fp, const av_roles_result *r) {
    for (int role = 0; role < AV_ROLE_COUNT; role++) {
        int n = 0;
        for (int k = 0; k < r->n_layers * r->n_heads; k++) {
            if (r->heads[k].best != (av_role)role) continue;
            if (n++ == 0)
                fprintf(fp, "%-16s heads: ", av_role_name((av_role)role));
            else
                fputs(", ", fp);
            fprintf(fp, "%d.%d", r->heads[k].layer, r->heads[k].head);
        }
        if (n) fputc('\n', fp);
    }
}

/* The probes' model runs: the ids as given (the probes carry their own BOS). */
static int run_probe(void *model, const int32_t *ids, size_t n, av_trace **out, av_err *err) {
    av_run_params rp = av_run_default_params();
    rp.add_bos = 0;
    return av_trace_from_ids(model, ids, n, &rp, out, err);
}

static int parse_u64(const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-') return -1;
    *out = (uint64_t)v;
    return 0;
}

int cmd_roles(int argc, char **argv) {
    const char *cmd = "roles";
    cli_args a;
    int early;
    if (cli_start(
            argc, argv, opts, N_OPTS,
            "usage: attnviz roles --model PATH [--tokenizer PATH] [--seq-len N] [--samples K] [--seed S] "
            "[--json]\n",
            0, &a, cmd, &early))
        return early;
    int rc = 1;
    av_model *m = NULL;
    av_roles_result res = {0};
    av_err err = {{0}};
    av_roles_params p = av_roles_default_params();
    long seq_len, samples;
    if (cli_get_int(&a, "seq-len", p.seq_len, 2, 1 << 20, &seq_len, cmd) ||
        cli_get_int(&a, "samples", p.n_samples, 1, 1000, &samples, cmd))
        goto done;
    if (cli_get(&a, "seed") && parse_u64(cli_get(&a, "seed"), &p.seed)) {
        cli_failf(cmd, "--seed must be a non-negative integer, got '%s'", cli_get(&a, "seed"));
        goto done;
    }
    p.seq_len = (int)seq_len;
    p.n_samples = (int)samples;
    p.text = cli_get(&a, "text");
    if (cli_load_model(&a, cmd, &m)) goto done;
    if (av_model_roles(m, run_probe, m, &p, &res, &err)) {
        cli_fail(cmd, &err);
        goto done;
    }
    if (cli_has(&a, "json")) {
        json_t *o = av_roles_json(m, &res);
        char *s = o ? json_dumps(o, JSON_INDENT(1) | JSON_REAL_PRECISION(6)) : NULL;
        json_decref(o);
        if (!s) {
            cli_failf(cmd, "out of memory writing JSON");
            goto done;
        }
        puts(s);
        free(s);
    } else {
        print_roles(stdout, m, &res);
        print_summary(stdout, &res);
    }
    rc = 0;
done:
    av_roles_result_free(&res);
    av_model_free(m);
    cli_args_free(&a);
    return rc;
}
