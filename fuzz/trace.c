/* Trace files (safetensors: attn.<kind>.<layer>, q/k of lazy traces, vnorm, logits, metadata), mutated
 * structure-aware: the JSON header is mutated as JSON (json_mutator.h: shapes, dtypes, offsets, metadata) and
 * written back with its length, or the data bytes are mutated. A trace that loads is read the ways the
 * viewer, the server and `attnviz stats` read it: rows and tiles of every kind, head statistics, rollout,
 * flow, norm-based attention, then saved and loaded again. Seeds: fuzz/make_seeds.py (`attnviz run` and
 * `attnviz import` outputs: full F32/F16, lazy, encoder-decoder kinds). */
#include "fuzz_model.h" /* first: it sets _GNU_SOURCE */

#include "analysis/analysis.h"
#include "render/plot.h"
#include "json_mutator.h"

static const char *const keys[] = {
    "__metadata__", "dtype",         "shape",         "data_offsets", "format",
    "version",      "tokens",        "token_ids",     "lazy",         "attn_scale",
    "causal",       "source_tokens", "target_tokens", "patch_grid",   "prefix_tokens",
    "model",        "arch",          "attn.self.0",   "attn.self.1",  "attn.self.2",
    "attn.enc.0",   "attn.dec.0",    "attn.cross.0",  "attn.cross.1", "q.0",
    "k.0",          "q.1",           "k.1",           "vnorm.0",      "vnorm.1",
    "logits",       "n_layers",      "n_heads",       "predictions",  "image_png_base64"};
static const char *const strings[] = {"F32",           "F16", "BF16",  "I32", "U8",  "F64",
                                      "attnviz-trace", "1",   "2",     "0",   "0.5", "[\"a\",\"b\",\"c\"]",
                                      "[1,2,3]",       "[]",  "14x14", "2x2", "-1",  "nan"};
static const fuzz_json_dict dict = {keys, sizeof keys / sizeof keys[0], strings,
                                    sizeof strings / sizeof strings[0]};

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned seed);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned seed) {
    fuzz_rng r = {((uint64_t)seed << 1) | 1};
    uint64_t hlen = 0;
    for (int i = 7; size >= 8 && i >= 0; i--)
        hlen = hlen << 8 | data[i];
    json_t *h =
        size >= 8 && hlen <= size - 8 ? json_loadb((const char *)data + 8, (size_t)hlen, 0, NULL) : NULL;
    if (!json_is_object(h) || fuzz_rand(&r, 6) == 0) {
        json_decref(h);
        return LLVMFuzzerMutate(data, size, max_size);
    }
    size_t body = size - 8 - (size_t)hlen;
    uint8_t *rest = malloc(body + 1024); /* the tensor bytes, mutated one time in three */
    if (!rest) {
        json_decref(h);
        return LLVMFuzzerMutate(data, size, max_size);
    }
    memcpy(rest, data + 8 + hlen, body);
    if (fuzz_rand(&r, 3) == 0)
        body = LLVMFuzzerMutate(rest, body, body + 1024);
    else
        fuzz_json_mutate_tree(h, &r, &dict);
    char *s = json_dumps(h, JSON_COMPACT);
    json_decref(h);
    size_t n = s ? strlen(s) : 0, out = 0;
    if (s && 8 + n + body <= max_size) {
        for (int i = 0; i < 8; i++)
            data[i] = (uint8_t)((uint64_t)n >> (8 * i));
        memcpy(data + 8, s, n);
        memcpy(data + 8 + n, rest, body);
        out = 8 + n + body;
    }
    free(s);
    free(rest);
    return out ? out : LLVMFuzzerMutate(data, size, max_size);
}

/* What `attnviz stats` and the viewer compute on a trace. */
static void analyses(const av_trace *t) {
    av_err err;
    for (av_attn_kind k = 0; k < AV_ATTN_KIND_COUNT; k++) {
        fuzz_read_trace(t, k);
        av_head_stats *st = NULL;
        int n = 0;
        if (av_trace_head_stats(t, k, -1, &st, &n, &err) == 0) json_decref(av_stats_json(t, k, st, n));
        free(st);
    }
    int T = av_trace_n_query(t, AV_ATTN_SELF);
    if (T <= 0 || T > 256) return;
    float *out = malloc(sizeof(float) * (size_t)T * (size_t)T); /* (T, T) */
    av_rollout_params rp = av_rollout_default_params();
    av_flow_params fp = av_flow_default_params();
    fp.max_work = 1e5;
    fp.n_threads = 1;
    av_rollout_trace(t, AV_ATTN_SELF, &rp, out, &err);
    av_flow_trace(t, AV_ATTN_SELF, &fp, out, &err);
    av_norm_attn_trace(t, 0, "mean", 1, out, &err);
    av_norm_attn_trace(t, 0, "0", 0, out, &err);
    free(out);
    int nt = av_trace_n_query(t, AV_ATTN_CROSS), ns = av_trace_n_key(t, AV_ATTN_CROSS);
    if (nt > 0 && ns > 0 && (size_t)nt * (size_t)ns <= (1u << 16)) {
        float *c = malloc(sizeof(float) * (size_t)nt * (size_t)ns); /* (n_target, n_source) */
        av_rollout_cross_trace(t, &rp, c, &nt, &ns, &err);
        free(c);
    }
    av_tensor v;
    av_trace_logits(t, &v);
    for (int l = 0; l < 4; l++)
        av_trace_vnorm(t, l, &v, &err);
}

/* A heatmap (SVG, then a grid) and the standalone viewer page of a small trace, as `attnviz render` / `html`.
 */
static void render(const av_trace *t) {
    int T = av_trace_n_query(t, AV_ATTN_SELF), L = av_trace_n_layers(t, AV_ATTN_SELF),
        H = av_trace_n_heads(t, AV_ATTN_SELF);
    if (T <= 0 || T > 12 || L * H > 16 || av_trace_is_lazy(t)) return;
    av_plot_params p = av_plot_default_params();
    av_err err;
    char path[1024];
    p.head = AV_HEAD_MEAN;
    p.exclude_first = 1;
    av_plot_render(t, &p, fuzz_path(path, sizeof path, "fig.svg"), NULL, &err);
    p.grid = 1;
    p.log_scale = 1;
    av_plot_render(t, &p, path, NULL, &err);
    av_html_params hp = av_html_default_params();
    char *page = NULL;
    size_t n;
    if (av_html_build(t, &hp, &page, &n, &err) == 0) free(page);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[1024], again[1024];
    fuzz_write(path, sizeof path, "trace.safetensors", data, size);
    av_trace *t = NULL;
    av_err err;
    if (fuzz_note(av_trace_load(path, &t, &err), "trace", &err) == 0) {
        for (int i = 0; i < av_trace_n_tokens(t); i++)
            (void)av_trace_token(t, i), (void)av_trace_token_id(t, i);
        analyses(t);
        fuzz_read_logprobs(t);                              /* version 3: stored, or derived from logits */
        if (size > 8 && data[size / 3] % 4 == 0) render(t); /* one input in four: rendering is slow */
        if (av_trace_save(t, fuzz_path(again, sizeof again, "again.safetensors"), &err) == 0) {
            av_trace *u = NULL;
            av_trace_load(again, &u, &err);
            av_trace_free(u);
        }
    }
    av_trace_free(t);
    return 0;
}
