/* The logit lens (nostalgebraist 2020; Ecco's layer-wise predictions): the residual stream entering each
 * block (entry 0: the embeddings) and leaving the last one, decoded by the model's own final norm and output
 * head, as if the network stopped there. Per entry and position: the k most probable tokens with their
 * log-probabilities, and the log-probability and rank of the token that actually comes next. The last entry
 * is the model's output. */
#include "attrib.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { LENS_ROWS = 256 }; /* positions decoded at a time: (LENS_ROWS, vocab) logits */

/* The lens tensors being filled. */
typedef struct lens_out {
    int T, k, V;
    int32_t *ids;   /* (n_entries, T, k) */
    float *lps;     /* (n_entries, T, k) */
    int32_t *next;  /* (T) */
    float *tlp;     /* (n_entries, T) */
    int32_t *trank; /* (n_entries, T) */
} lens_out;

/* Top k of one logits row (V) by insertion into a sorted list (ties: the lower id first); rank and
 * log-probability of the next token. */
static void decode_row(const float *row, lens_out *o, int e, int t) {
    double lse = av_logsumexp(row, o->V);
    size_t at = ((size_t)e * (size_t)o->T + (size_t)t) * (size_t)o->k;
    int32_t *ids = o->ids + at;
    float *lps = o->lps + at;
    int n = 0;
    for (int v = 0; v < o->V; v++) {
        if (n == o->k && !(row[v] > row[ids[n - 1]])) continue;
        int i = n < o->k ? n++ : n - 1;
        for (; i > 0 && row[v] > row[ids[i - 1]]; i--)
            ids[i] = ids[i - 1];
        ids[i] = v;
    }
    for (int i = 0; i < o->k; i++)
        lps[i] = (float)(row[ids[i]] - lse);
    size_t et = (size_t)e * (size_t)o->T + (size_t)t;
    int nx = o->next[t], rank = 0;
    for (int v = 0; nx >= 0 && v < o->V; v++)
        rank += row[v] > row[nx];
    o->tlp[et] = nx >= 0 ? (float)(row[nx] - lse) : NAN;
    o->trank[et] = nx >= 0 ? rank : -1;
}

/* Entry e: the residual stream h (T, dim) through the final norm and the head, LENS_ROWS rows at a time. */
static int decode_entry(const av_model *m, av_state *s, float *h, int e, lens_out *o, float *logits,
                        av_err *err) {
    const av_stack *st = &m->stacks[0];
    const av_stack_cfg *c = &st->cfg;
    if (st->final_norm.w.data)
        av_norm_apply(c->norm, &st->final_norm, c->eps, c->norm_offset, h, h, o->T, c->dim, s->n_threads);
    for (int r0 = 0; r0 < o->T; r0 += LENS_ROWS) {
        int nr = o->T - r0 < LENS_ROWS ? o->T - r0 : LENS_ROWS;
        if (av_head_logits(m, s, h + (size_t)r0 * (size_t)c->dim, nr, logits, err)) return -1;
        for (int r = 0; r < nr; r++)
            decode_row(logits + (size_t)r * (size_t)o->V, o, e, r0 + r);
    }
    return 0;
}

/* Metadata lens.labels: {"id": display label} of every token the lens names (top-k and next tokens), so
 * figures and pages show them without the model. */
static int vocab_labels(const av_model *m, av_trace *tr, const lens_out *o, size_t n_ids, av_err *err) {
    json_t *obj = json_object();
    for (size_t i = 0; obj && i < n_ids + (size_t)o->T; i++) {
        int32_t id = i < n_ids ? o->ids[i] : o->next[i - n_ids];
        char key[16], fallback[24], *label = NULL;
        snprintf(key, sizeof key, "%d", id);
        if (id < 0 || json_object_get(obj, key)) continue;
        if (m->tok && id < av_tokenizer_vocab_size(m->tok)) label = av_tokenizer_display(m->tok, &id, 1, 0);
        snprintf(fallback, sizeof fallback, "#%d", id);
        json_t *s = json_string(label ? label : fallback);
        json_object_set_new(obj, key, s ? s : json_string("\xEF\xBF\xBD"));
        free(label);
    }
    char *text = obj ? json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(obj);
    int rc = text ? av_trace_set_meta(tr, "lens.labels", text, err) : av_errf(err, "out of memory");
    free(text);
    return rc;
}

static int put(av_trace *tr, const char *name, av_dtype dt, int ndim, int64_t a, int64_t b, int64_t c,
               void *data, av_err *err) {
    int64_t shape[3] = {a, b, c};
    return av_trace_put_tensor(tr, name, dt, ndim, shape, data, err);
}

int av_lens_compute(const av_model *m, const int32_t *ids, int T, int k, int n_threads, av_trace *tr,
                    av_err *err) {
    const av_stack *st = &m->stacks[0];
    int L = st->n_layers, E = L + 1, dim = st->cfg.dim;
    lens_out o = {T, k, m->head.n_out, NULL, NULL, NULL, NULL, NULL};
    if (k < 1 || k > o.V) return av_errf(err, "k must be between 1 and the vocabulary (%d), got %d", o.V, k);
    size_t cells = (size_t)E * (size_t)T;
    o.ids = malloc(sizeof *o.ids * cells * (size_t)k);
    o.lps = malloc(sizeof *o.lps * cells * (size_t)k);
    o.next = malloc(sizeof *o.next * (size_t)T);
    o.tlp = malloc(sizeof *o.tlp * cells);
    o.trank = malloc(sizeof *o.trank * cells);
    float **resid = calloc((size_t)E, sizeof *resid), *rows = malloc(sizeof(float) * (size_t)T * (size_t)dim);
    float *logits = malloc(sizeof(float) * LENS_ROWS * (size_t)o.V);
    av_state *s = NULL;
    int rc = o.ids && o.lps && o.next && o.tlp && o.trank && resid && rows && logits
                 ? 0
                 : av_errf(err, "out of memory for the logit lens");
    for (int e = 0; rc == 0 && e < E; e++)
        if (!(resid[e] = malloc(sizeof(float) * (size_t)T * (size_t)dim))) rc = av_errf(err, "out of memory");
    for (int t = 0; rc == 0 && t < T; t++)
        o.next[t] = t + 1 < T ? ids[t + 1] : -1;
    av_pass p = {.resid = resid};
    if (rc == 0) rc = av_state_new(m, 0, T, n_threads, &s, err);
    if (rc == 0) rc = av_embed_tokens(m, st, ids, T, rows, err);
    if (rc == 0) rc = av_forward_embeds(m, s, ids, rows, T, 0, &p, err);
    for (int e = 0; rc == 0 && e < E; e++)
        rc = decode_entry(m, s, resid[e], e, &o, logits, err);
    for (int e = 0; resid && e < E; e++)
        free(resid[e]);
    free(resid), free(rows), free(logits);
    av_state_free(s);
    if (rc == 0) rc = vocab_labels(m, tr, &o, cells * (size_t)k, err);
    if (rc == 0) { /* the trace owns the buffers from here, also when a put fails */
        rc = put(tr, "lens.topk_ids", AV_DTYPE_I32, 3, E, T, k, o.ids, err) |
             put(tr, "lens.topk_logprobs", AV_DTYPE_F32, 3, E, T, k, o.lps, err) |
             put(tr, "lens.target_ids", AV_DTYPE_I32, 1, T, 0, 0, o.next, err) |
             put(tr, "lens.target_logprobs", AV_DTYPE_F32, 2, E, T, 0, o.tlp, err) |
             put(tr, "lens.target_ranks", AV_DTYPE_I32, 2, E, T, 0, o.trank, err);
        return rc ? -1 : av_trace_set_meta_int(tr, "lens.k", k, err);
    }
    free(o.ids), free(o.lps), free(o.next), free(o.tlp), free(o.trank);
    return rc;
}
