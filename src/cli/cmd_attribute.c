/* attnviz attribute: which source tokens matter to the target tokens (occlusion, Shapley values, saliency,
 * input x gradient, integrated gradients, attention x gradient) -> a trace with attr.<method> tensors beside
 * the attention of the sequence (docs/ATTRIBUTION.md). */
#include "cli.h"
#include "core/core.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const cli_opt_spec opts[] = {
    {"model", 1, "PATH      model: llama2.c .bin, .gguf, or Hugging Face directory (decoders, BERT)"},
    {"tokenizer", 1, "PATH  tokenizer file (default: from the model or next to it)"},
    {"text", 1, "TEXT       the source (the prompt; or give it as the last argument)"},
    {"text-file", 1, "PATH  input text from a file ('-': stdin), of any size"},
    {"ids", 1, "LIST        source token ids instead of text: \"1,403,407\" or @file.json"},
    {"target", 1,
     "TEXT     target tokens after the source (default: the greedy continuation; BERT: the "
     "tokens expected at the [MASK]s, default their predictions)"},
    {"target-ids", 1, "LIST target token ids (with --ids)"},
    {"target-rows", 1, "LIST encoders with --ids: the input row each target is predicted at"},
    {"generate", 1, "N      without a target: greedy tokens to attribute (default 8)"},
    {"method", 1,
     "LIST     occlusion (default), shapley, saliency, ixg, ig, attn-grad, or several: ig,occlusion"},
    {"baseline", 1,
     "B    what replaces a token: pad (default: pad, else unk, else mask), unk, mask, a token id, "
     "zero (a zero embedding) or remove (occlusion/shapley of decoders)"},
    {"group", 1, "G        occlusion/shapley: token (default), word, or span:N"},
    {"samples", 1, "N      shapley: sampled permutations (default 25)"},
    {"seed", 1, "N         shapley: seed of the permutations (default 0)"},
    {"steps", 1, "N        ig: integration points (default 32)"},
    {"ig-rule", 1,
     "R      ig: gausslegendre (default), riemann_left, riemann_right, riemann_middle, "
     "riemann_trapezoid"},
    {"batch", 1, "N        occlusion/shapley/ig: sequences per forward pass (default: as fit in ~1 GiB)"},
    {"no-attention", 0, "    do not store the attention of the sequence in the trace"},
    {"lazy", 0, "            store the attention lazily (queries/keys; long inputs)"},
    {"no-bos", 0, "          do not prepend the BOS token to the source"},
    {"output", 1, "PATH     trace file to write (default: attribution.safetensors); also -o"},
    {"o", 1, "PATH          same as --output"},
    {"quiet", 0, "           no progress on stderr"},
    {"threads", 1, "N       worker threads (default: all cores)"},
    {"help", 0, "            show this help"},
};

/* "ig,occlusion" -> method bits. */
static int parse_methods(const char *s, unsigned *out) {
    char buf[256];
    *out = 0;
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        av_attr_method m;
        if (av_attr_method_parse(tok, &m))
            return cli_failf("attribute",
                             "unknown method '%s' (occlusion, shapley, "
                             "saliency, ixg, ig, attn-grad)",
                             tok)
                       ? -1
                       : -1;
        *out |= 1u << m;
    }
    return *out ? 0 : cli_failf("attribute", "--method lists no method") ? -1 : -1;
}

/* --baseline and --group into p; the token names resolve through the tokenizer. */
static int parse_baseline(const cli_args *a, const av_model *m, av_attr_params *p) {
    const char *b = cli_get(a, "baseline"), *g = cli_get(a, "group");
    const av_tokenizer *tok = av_model_tokenizer(m);
    static const char *const names[][3] = {{"unk", "<unk>", "[UNK]"}, {"mask", "<mask>", "[MASK]"}};
    char *end;
    if (b && av_attr_baseline_parse(b, &p->baseline) == 0 && p->baseline != AV_BASELINE_TOKEN) {
    } else if (b && strcmp(b, "pad") != 0) {
        long id = strtol(b, &end, 10);
        p->baseline_id = *end || end == b ? -1 : (int)id;
        for (int i = 0; i < 2 && tok && p->baseline_id < 0; i++)
            if (strcmp(b, names[i][0]) == 0)
                p->baseline_id = av_tokenizer_find(tok, names[i][1]) >= 0
                                     ? av_tokenizer_find(tok, names[i][1])
                                     : av_tokenizer_find(tok, names[i][2]);
        if (p->baseline_id < 0)
            return cli_failf("attribute",
                             "--baseline must be pad, unk, mask, zero, remove or a token id (and the "
                             "model's tokenizer must have that token), got '%s'",
                             b)
                       ? -1
                       : -1;
    }
    if (!g || strcmp(g, "token") == 0) return 0;
    if (strcmp(g, "word") == 0) return p->group = AV_GROUP_WORD, 0;
    long span = strncmp(g, "span:", 5) == 0 ? strtol(g + 5, &end, 10) : 0;
    if (span < 1 || span > 100000 || *end)
        return cli_failf("attribute", "--group must be token, word or span:N, got '%s'", g) ? -1 : -1;
    p->group = AV_GROUP_SPAN;
    p->group_span = (int)span;
    return 0;
}

/* Progress of the long stages on stderr: one rewritten line on a terminal, else a line every few seconds. */
typedef struct progress {
    double last;
    int tty;
} progress;

static void on_progress(void *ctx, const char *stage, int done, int total) {
    progress *pr = ctx;
    double now = av_seconds();
    if (done < total && now - pr->last < (pr->tty ? 0.2 : 5.0)) return;
    pr->last = now;
    fprintf(stderr, "%sattnviz attribute: %s %d/%d%s", pr->tty ? "\r" : "", stage, done, total,
            pr->tty && done < total ? "" : "\n");
}

/* What attribute prints: the targets, and per method the source tokens that matter most to the whole target.
 */
static void summary(const av_trace *t, unsigned methods) {
    av_attr_view v;
    for (int k = 0; k < AV_ATTR_METHOD_COUNT; k++) {
        if (!(methods & 1u << k) || av_trace_attribution(t, (av_attr_method)k, &v, NULL)) continue;
        if (k == __builtin_ctz(methods)) {
            json_t *tl = json_loads(av_trace_meta(t, "attr.target_labels"), 0, NULL);
            printf("source: %d tokens; targets:", v.source_len);
            for (int i = 0; i < v.n_target; i++)
                printf(" %s (log p %.3f)%s", json_string_value(json_array_get(tl, (size_t)i)),
                       v.target_logprobs[i], i + 1 < v.n_target ? "," : "\n");
            json_decref(tl);
        }
        printf("%-10s top sources for the whole target:", av_attr_method_name((av_attr_method)k));
        unsigned char used[4096] = {0};
        for (int r = 0; r < 5 && r < v.source_len && v.source_len <= 4096; r++) {
            int best = -1;
            double bv = 0;
            for (int j = 0; j < v.source_len; j++) {
                double s = 0;
                for (int i = 0; i < v.n_target; i++)
                    s += v.scores[(size_t)i * (size_t)v.source_len + (size_t)j];
                if (!used[j] && (best < 0 || fabs(s) > fabs(bv))) best = j, bv = s;
            }
            used[best] = 1;
            printf(" \"%s\" %+.3g", av_trace_token(t, best), bv);
        }
        av_tensor d;
        if (k == AV_ATTR_IG && av_trace_tensor(t, "attr.ig.delta", &d) == 0) {
            double worst = 0;
            for (int i = 0; i < v.n_target; i++)
                worst = fmax(worst, fabs(((const float *)d.data)[i]));
            printf("  (completeness error up to %.3g nats)", worst);
        }
        printf("\n");
    }
}

/* Every numeric option into p. */
static int read_params(const cli_args *a, const av_model *m, av_attr_params *p) {
    const char *cmd = "attribute", *rule = cli_get(a, "ig-rule");
    long samples, seed, steps, batch;
    if (parse_methods(cli_get(a, "method") ? cli_get(a, "method") : "occlusion", &p->methods) ||
        parse_baseline(a, m, p) || cli_get_int(a, "samples", 25, 1, 100000, &samples, cmd) ||
        cli_get_int(a, "seed", 0, 0, 0x7fffffffL, &seed, cmd) ||
        cli_get_int(a, "steps", 32, 1, 4096, &steps, cmd) ||
        cli_get_int(a, "batch", 0, 0, 1 << 20, &batch, cmd))
        return -1;
    if (rule && av_ig_rule_parse(rule, &p->ig_rule))
        return cli_failf(cmd,
                         "--ig-rule must be gausslegendre, riemann_left, riemann_right, riemann_middle or "
                         "riemann_trapezoid, got '%s'",
                         rule)
                   ? -1
                   : -1;
    p->samples = (int)samples;
    p->seed = (uint64_t)seed;
    p->steps = (int)steps;
    p->max_batch = (int)batch;
    p->with_attention = !cli_has(a, "no-attention");
    p->run.lazy = cli_has(a, "lazy");
    p->run.add_bos = !cli_has(a, "no-bos");
    return 0;
}

/* --ids [--target-ids] [--target-rows]: decoders continue greedily without target ids. */
static int attribute_ids(const av_model *m, const cli_args *a, long gen, av_attr_params *p, av_trace **t) {
    int32_t *src = NULL, *tgt = NULL, *rows = NULL, *seq = NULL;
    size_t ns = 0, nt = 0, nr = 0, n_seq = 0;
    av_err err = {{0}};
    int rc = cli_parse_ids(cli_get(a, "ids"), &src, &ns, &err) ||
             (cli_get(a, "target-ids") && cli_parse_ids(cli_get(a, "target-ids"), &tgt, &nt, &err)) ||
             (cli_get(a, "target-rows") && cli_parse_ids(cli_get(a, "target-rows"), &rows, &nr, &err));
    if (!rc && rows && nr != nt) rc = av_errf(&err, "--target-rows gives %zu rows for %zu targets", nr, nt);
    if (!rc && !tgt) {
        rc = av_generate_greedy_ids(m, src, ns, (int)gen, NULL, NULL, &seq, &n_seq, &err);
        if (!rc && n_seq <= ns) rc = av_errf(&err, "the model generated nothing to attribute");
        tgt = rc ? NULL : seq + ns, nt = rc ? 0 : n_seq - ns;
    }
    p->target_rows = rows;
    if (!rc) rc = av_attribute_ids(m, src, ns, tgt, nt, p, t, &err);
    if (rc) cli_fail("attribute", &err);
    free(src), free(rows), free(seq ? seq : tgt);
    return rc ? -1 : 0;
}

int cmd_attribute(int argc, char **argv) {
    const char *cmd = "attribute";
    cli_args a;
    int early, rc = 1;
    if (cli_start(
            argc, argv, opts, sizeof opts / sizeof opts[0],
            "usage: attnviz attribute --model M --text TEXT [--target TEXT] [--method occlusion|shapley|"
            "saliency|ixg|ig|attn-grad] [-o attribution.safetensors]\n"
            "       attnviz attribute --model M --ids LIST [--target-ids LIST] ...",
            -1, &a, cmd, &early))
        return early;
    const char *out = cli_output(&a, "attribution.safetensors");
    char *text = NULL;
    av_model *m = NULL;
    av_trace *t = NULL;
    av_err err = {{0}};
    long gen;
    progress pr = {0, isatty(2)};
    av_attr_params p = av_attr_default_params();
    if (cli_get_text(&a, cmd, "text", "text-file", 1, &text)) goto done;
    if (!text == !cli_get(&a, "ids") || (cli_get(&a, "target-ids") && !cli_get(&a, "ids")) ||
        (cli_get(&a, "target") && !text)) {
        cli_failf(cmd,
                  "give the source as --text TEXT (with --target TEXT) or --ids LIST (with --target-ids)");
        goto done;
    }
    if (cli_get_int(&a, "generate", 8, 1, 4096, &gen, cmd) || cli_load_model(&a, cmd, &m) ||
        read_params(&a, m, &p))
        goto done;
    p.run.output_path = out;
    if (!cli_has(&a, "quiet")) p.progress = on_progress, p.progress_ctx = &pr;
    double t0 = av_seconds();
    if (text
            ? av_attribute_text(m, text, cli_get(&a, "target"), (int)gen, &p, &t, &err) && cli_fail(cmd, &err)
            : attribute_ids(m, &a, gen, &p, &t))
        goto done;
    double t1 = av_seconds();
    if (av_trace_save(t, out, &err)) {
        cli_fail(cmd, &err);
        goto done;
    }
    summary(t, p.methods);
    fprintf(stderr, "attnviz attribute: %d tokens -> %s (%.3f s)\n", av_trace_n_tokens(t), out, t1 - t0);
    rc = 0;
done:
    free(text);
    av_trace_free(t);
    av_model_free(m);
    cli_args_free(&a);
    return rc;
}
