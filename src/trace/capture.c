/* Running a model to a trace: encode, one batched forward pass capturing every layer's attention, labels. */
#include "capture_tf.h"
#include "model/model.h"
#include "trace.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

av_run_params av_run_default_params(void) {
    av_run_params p;
    memset(&p, 0, sizeof p);
    p.add_bos = 1;
    p.dtype = AV_DTYPE_F32;
    return p;
}

int av_trace_from_text(av_model *m, const char *text, const av_run_params *params, av_trace **out,
                       av_err *err) {
    *out = NULL;
    if (m->family != AV_FAMILY_LLAMA)
        return av_tf_trace_from_text(m, text, params, out, err); /* capture_tf.c */
    av_run_params defaults = av_run_default_params();
    if (!params) params = &defaults;
    if (!m->tok) return av_errf(err, "the model has no tokenizer: pass --tokenizer");
    int32_t *ids;
    size_t n;
    if (av_tokenizer_encode(m->tok, text, strlen(text), params->add_bos, &ids, &n, err)) return -1;
    int rc = av_trace_from_ids(m, ids, n, params, out, err);
    free(ids);
    return rc;
}

static int label_tokens(const av_model *m, av_trace *t, const int32_t *ids, size_t n, av_err *err) {
    char **labels = calloc(n ? n : 1, sizeof *labels);
    int32_t *copy = malloc(sizeof *copy * (n ? n : 1));
    if (!labels || !copy) {
        free(labels);
        free(copy);
        return av_errf(err, "out of memory");
    }
    memcpy(copy, ids, sizeof *copy * n);
    for (size_t i = 0; i < n; i++) {
        if (m->tok) {
            labels[i] = av_tokenizer_display(m->tok, ids, n, i);
        } else {
            char buf[24];
            snprintf(buf, sizeof buf, "#%d", ids[i]);
            labels[i] = av_strdup(buf);
        }
        if (!labels[i]) {
            for (size_t k = 0; k < i; k++)
                free(labels[k]);
            free(labels);
            free(copy);
            return av_errf(err, "out of memory");
        }
    }
    return av_trace_set_tokens(t, labels, copy, (int)n, err);
}

int av_trace_from_ids(av_model *m, const int32_t *ids, size_t n, const av_run_params *params, av_trace **out,
                      av_err *err) {
    *out = NULL;
    if (m->family != AV_FAMILY_LLAMA)
        return av_tf_trace_from_ids(m, ids, n, params, out, err); /* capture_tf.c */
    av_run_params defaults = av_run_default_params();
    if (!params) params = &defaults;
    if (n == 0) return av_errf(err, "empty input: no tokens to run (give some text, or keep the BOS token)");
    if (n > (size_t)m->max_seq_len)
        return av_errf(err, "input is %zu tokens but the model's context window is %d", n, m->max_seq_len);
    if (params->dtype != AV_DTYPE_F32 && params->dtype != AV_DTYPE_F16)
        return av_errf(err, "traces store attention as F32 or F16, not %s", av_dtype_name(params->dtype));
    if (params->lazy && !av_model_lazy_supported(m, err)) return -1;
    int T = (int)n;
    size_t per_layer;
    if (!av_mul_size((size_t)m->n_heads * (size_t)T, (size_t)T, &per_layer))
        return av_errf(err, "attention size overflows");
    av_trace *t = av_trace_new();
    float **attn = calloc((size_t)m->n_layers, sizeof *attn);
    float **vnorm = calloc((size_t)m->n_layers, sizeof *vnorm);
    float **qs = params->lazy ? calloc((size_t)m->n_layers, sizeof *qs) : NULL;
    float **ks = params->lazy ? calloc((size_t)m->n_layers, sizeof *ks) : NULL;
    float *logits = NULL;
    av_state *s = NULL;
    av_st_prealloc *pre = NULL; /* the output file, when the attention goes straight into it */
    int mapped = 0;             /* attn[l] point into that file's mapping: never free()d */
    int rc = -1;
    if (!t || !attn || !vnorm || (params->lazy && (!qs || !ks))) {
        av_errf(err, "out of memory");
        goto done;
    }
    size_t attn_bytes,
        header_room = 65536 + (size_t)T * 128 + (size_t)m->n_layers * 512; /* labels, ids, entries */
    if (params->output_path && !params->lazy && params->dtype == AV_DTYPE_F32 &&
        av_mul_size(per_layer * sizeof(float), (size_t)m->n_layers, &attn_bytes) &&
        attn_bytes >= 4 * header_room) { /* small traces: the header room would outweigh the data */
        int r = (pre = calloc(1, sizeof *pre))
                    ? av_st_prealloc_open(pre, params->output_path, header_room, attn_bytes, err)
                    : 1;
        if (r < 0) goto done;
        if (r == 1) free(pre), pre = NULL; /* keep the capture in memory */
        mapped = pre != NULL;
    }
    if (params->n_threads > 0) m->n_threads = params->n_threads;
    t->store_dtype = params->dtype;
    for (int l = 0; l < m->n_layers; l++) {
        vnorm[l] = malloc(sizeof(float) * (size_t)m->n_heads * (size_t)T);
        if (params->lazy) {
            qs[l] = malloc(sizeof(float) * (size_t)m->n_heads * (size_t)T * (size_t)m->head_dim);
            ks[l] = malloc(sizeof(float) * (size_t)m->n_kv_heads * (size_t)T * (size_t)m->head_dim);
            if (!qs[l] || !ks[l] || !vnorm[l]) {
                av_errf(err, "out of memory for the lazy trace's queries and keys (%d tokens)", T);
                goto done;
            }
            continue;
        }
        /* fresh zero pages either way (file holes, or calloc): see av_capture.zeroed */
        attn[l] =
            pre ? (float *)(pre->map + pre->room) + (size_t)l * per_layer : calloc(per_layer, sizeof(float));
        if (!attn[l] || !vnorm[l]) {
            av_errf(err,
                    "out of memory: the full trace needs %zu MiB (%d layers x %d heads x %d x %d floats); "
                    "try a lazy trace (--lazy)",
                    (per_layer * sizeof(float) * (size_t)m->n_layers) >> 20, m->n_layers, m->n_heads, T, T);
            goto done;
        }
    }
    if (params->want_logits) {
        logits = malloc(sizeof(float) * (size_t)T * (size_t)m->vocab_size);
        if (!logits) {
            av_errf(err, "out of memory for logits");
            goto done;
        }
    }
    av_capture cap = {params->lazy ? NULL : attn, vnorm, qs, ks, T, 1};
    if (av_state_new(m, T, &s, err)) goto done;
    /* lazy runs go in chunks so activations stay small; full runs need all rows at once anyway */
    int chunk = params->lazy ? 1024 : T;
    for (int p0 = 0; p0 < T; p0 += chunk) {
        int n_chunk = T - p0 < chunk ? T - p0 : chunk;
        float *lg = logits ? logits + (size_t)p0 * (size_t)m->vocab_size : NULL;
        if (av_llama_forward(m, s, ids + p0, n_chunk, p0, &cap, lg, 1, err)) goto done;
        if (params->progress) params->progress(params->progress_ctx, p0 + n_chunk, T);
    }
    t->prealloc = pre; /* the trace now owns the file; its attention sets borrow the mapping */
    pre = NULL;
    if (av_capture_model_meta(m, t, err) || label_tokens(m, t, ids, n, err)) goto done;
    if (params->lazy) {
        float scale = 1.0f / sqrtf((float)m->head_dim);
        float **q2 = qs, **k2 = ks;
        qs = ks = NULL;
        if (av_trace_set_qk(t, q2, k2, m->n_layers, m->n_heads, m->n_kv_heads, m->head_dim, scale, err))
            goto done;
    }
    if (!params->lazy && av_capture_add_sets(t, "self", attn, m->n_layers, m->n_heads, T, T, err)) goto done;
    av_trace_set_vnorm(t, vnorm, m->n_layers, m->n_heads, err);
    vnorm = NULL;
    if (logits) av_trace_set_logits(t, logits, T, m->vocab_size);
    logits = NULL;
    *out = t;
    t = NULL;
    rc = 0;
done:
    for (int l = 0; attn && mapped && l < m->n_layers; l++)
        attn[l] = NULL;
    av_capture_free_sets(attn, m->n_layers);
    av_capture_free_sets(vnorm, m->n_layers);
    av_capture_free_sets(qs, m->n_layers);
    av_capture_free_sets(ks, m->n_layers);
    free(logits);
    av_state_free(s);
    av_trace_free(t);
    if (pre) av_st_prealloc_free(pre);
    free(pre);
    return rc;
}

int av_model_lazy_supported(const av_model *m, av_err *why) {
    if (m->family != AV_FAMILY_LLAMA)
        return av_errf(why, "lazy traces are only built for Llama-family models (this is %s)", m->arch), 0;
    for (int l = 0; l < m->n_layers; l++) /* the lazy recompute knows no sliding window */
        if (m->layers[l].window > 0)
            return av_errf(why, "lazy traces of sliding-window models (%s) are not supported yet", m->arch),
                   0;
    return 1;
}
