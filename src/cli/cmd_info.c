/* attnviz info: describe a trace (model, tokens, layers x heads, sizes) or a model. */
#include "cli.h"

#include <string.h>
#include <sys/stat.h>

static const cli_opt_spec opts[] = {
    {"tokens", 0, "          list every token with its index and id"},
    {"tokenizer", 1, "PATH  (models) tokenizer to pair with the model"},
    {"help", 0, "            show this help"},
};

static void print_size(const char *label, double bytes) {
    const char *unit = "B";
    if (bytes >= 1024.0 * 1024 * 1024)
        bytes /= 1024.0 * 1024 * 1024, unit = "GiB";
    else if (bytes >= 1024.0 * 1024)
        bytes /= 1024.0 * 1024, unit = "MiB";
    else if (bytes >= 1024.0)
        bytes /= 1024.0, unit = "KiB";
    printf("%-14s %.1f %s\n", label, bytes, unit);
}

/* One line per attention kind: layers x heads, queries x keys, and how it is stored; returns the bytes the
 * kind's matrices take (or would take, for a lazy kind) as F32. */
static double info_kind(const av_trace *t, av_attn_kind k) {
    int L = av_trace_n_layers(t, k), H = av_trace_n_heads(t, k), nq = av_trace_n_query(t, k),
        nk = av_trace_n_key(t, k), R, C;
    av_trace_overview_cells(t, k, &R, &C);
    av_qk_view qk;
    char how[160] = "";
    if (av_trace_is_lazy(t) && av_trace_qk(t, k, 0, &qk, NULL) == 0)
        snprintf(how, sizeof how, "; lazy: queries/keys of %lld dims stored, rows recomputed%s",
                 (long long)qk.q.shape[2], R ? "" : ", no overview");
    else if (av_trace_qk(t, k, 0, &qk, NULL) == 0)
        snprintf(how, sizeof how, "; queries/keys kept (neuron view)");
    printf("%-14s %d layers x %d heads, %d queries x %d keys%s\n", av_attn_kind_name(k), L, H, nq, nk, how);
    if (R) printf("%-14s %s: max and mean over %d x %d cells of every head\n", "", "overview", R, C);
    return (double)L * H * nq * nk * 4.0;
}

static int info_trace(const av_trace *t, const char *path, int list_tokens) {
    const char *keys[] = {"model", "arch", "model_format", "version", "created_by", "patch_grid"};
    printf("%-14s %s\n", "trace", path);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (av_trace_meta(t, keys[i])) printf("%-14s %s\n", keys[i], av_trace_meta(t, keys[i]));
    int n = av_trace_n_tokens(t);
    printf("%-14s %d\n", "tokens", n);
    double attn_bytes = 0;
    for (int k = 0; k < AV_ATTN_KIND_COUNT; k++)
        if (av_trace_n_layers(t, (av_attn_kind)k)) attn_bytes += info_kind(t, (av_attn_kind)k);
    print_size(av_trace_is_lazy(t) ? "as matrices" : "attention", attn_bytes);
    struct stat st;
    if (stat(path, &st) == 0) print_size("file", (double)st.st_size);
    av_tensor lg;
    if (av_trace_logits(t, &lg) == 0)
        printf("%-14s [%lld, %lld]\n", "logits", (long long)lg.shape[0], (long long)lg.shape[1]);
    if (list_tokens) {
        for (int i = 0; i < n; i++)
            printf("%5d %7d  %s\n", i, av_trace_token_id(t, i), av_trace_token(t, i));
    } else if (n) {
        printf("%-14s", "text");
        for (int i = 0; i < n && i < 40; i++)
            printf(" %s", av_trace_token(t, i));
        printf("%s\n", n > 40 ? " ..." : "");
    }
    return 0;
}

static int info_model(const cli_args *a, const char *path) {
    av_model_params mp = av_model_default_params();
    mp.tokenizer_path = cli_get(a, "tokenizer");
    av_model *m;
    av_err err = {{0}};
    if (av_model_load(path, &mp, &m, &err)) return cli_fail("info", &err);
    av_model_info i = av_model_get_info(m);
    printf("%-14s %s\n%-14s %s\n%-14s %s\n", "model", i.name, "arch", i.arch, "format",
           av_model_format_name(i.format));
    printf("%-14s %d layers, %d heads (%d kv heads), dim %d, ffn %d\n", "shape", i.n_layers, i.n_heads,
           i.n_kv_heads, i.dim, i.hidden_dim);
    printf("%-14s %d\n%-14s %d\n%-14s %.3f M\n", "vocab", i.vocab_size, "context", i.max_seq_len,
           "parameters", (double)i.n_params / 1e6);
    printf("%-14s %s\n", "family", av_family_name(i.family));
    if (i.n_dec_layers) printf("%-14s %d layers\n", "decoder", i.n_dec_layers);
    printf("%-14s %s\n", "tokenizer", av_model_tokenizer(m) ? "yes" : "none (pass --tokenizer)");
    av_model_free(m);
    return 0;
}

int cmd_info(int argc, char **argv) {
    cli_args a;
    int early;
    if (cli_start(argc, argv, opts, sizeof opts / sizeof opts[0],
                  "usage: attnviz info FILE   (a trace .safetensors, or a model)\n", 1, &a, "info", &early))
        return early;
    int rc;
    const char *path = a.positional[0];
    av_trace *t;
    av_err err = {{0}};
    if (av_trace_load(path, &t, &err) == 0) {
        rc = info_trace(t, path, cli_has(&a, "tokens"));
        av_trace_free(t);
    } else if (strstr(err.msg, "not an attnviz trace") || strstr(err.msg, "not a safetensors file") ||
               strstr(err.msg, "not a regular file")) { /* a directory: a Hugging Face / timm model */
        rc = info_model(&a, path);                      /* not a trace: maybe a model */
    } else {
        rc = cli_fail("info", &err);
    }
    cli_args_free(&a);
    return rc;
}
