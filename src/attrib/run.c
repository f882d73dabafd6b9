/* The public entry points of attribution and the logit lens: check the question, run the methods asked for,
 * and store the results (docs/TRACE_FORMAT.md) in a trace that also holds the attention of the whole
 * sequence (unless the caller turns it off). */
#include "attrib.h"

#include <stdlib.h>
#include <string.h>

enum { ATTR_FORMAT_VERSION = 1 }; /* the "attribution" metadata object's own version */

av_attr_params av_attr_default_params(void) {
    av_attr_params p;
    memset(&p, 0, sizeof p);
    p.methods = 1u << AV_ATTR_OCCLUSION;
    p.baseline_id = -1;
    p.group_span = 1;
    p.samples = 25;
    p.steps = 32;
    p.with_attention = 1;
    p.run = av_run_default_params();
    return p;
}

av_lens_params av_lens_default_params(void) {
    av_lens_params p = {5, av_run_default_params()};
    return p;
}

/* A model with one stack and an output head: decoder-only or encoder-only. */
static int single_stack(const av_model *m, const char *what, av_err *err) {
    if (m->n_stacks != 1 || m->family == AV_FAMILY_VIT || !m->head.out.w.data ||
        m->head.n_out != m->vocab_size)
        return av_errf(
            err, "%s needs a decoder-only (llama, gpt2) or encoder-only (bert) language model; %s is %s",
            what, m->name, av_family_name(m->family));
    return 0;
}

/* The baseline token: the caller's, else the tokenizer's pad, unk or mask token. */
static int baseline_id(const av_model *m, const av_attr_params *p, av_err *err) {
    if (p->baseline != AV_BASELINE_TOKEN) return -1;
    int id = p->baseline_id;
    const char *names[] = {"<pad>", "[PAD]", "<unk>", "[UNK]", "<mask>", "[MASK]"};
    if (id < 0 && m->pad_id >= 0) id = m->pad_id;
    for (size_t i = 0; id < 0 && m->tok && i < sizeof names / sizeof names[0]; i++)
        id = av_tokenizer_find(m->tok, names[i]);
    if (id < 0)
        return av_errf(err,
                       "no pad, unk or mask token to use as the baseline: give a token id (--baseline ID) or "
                       "--baseline zero"),
               -2;
    if (id >= m->vocab_size)
        return av_errf(err, "baseline token %d is outside the vocabulary (%d)", id, m->vocab_size), -2;
    return id;
}

/* Validates ids and targets and fills the task (t->ids and t->rows allocated). */
static int task_init(av_attr_task *t, const av_model *m, const av_attr_params *p, const int32_t *src,
                     size_t n_src, const int32_t *tgt, size_t n_tgt, av_err *err) {
    memset(t, 0, sizeof *t);
    t->m = m;
    t->p = p;
    t->decoder = m->stacks[0].cfg.causal;
    if (single_stack(m, "attribution", err)) return -1;
    if (n_src == 0 || n_tgt == 0)
        return av_errf(err, "attribution needs a source and at least one target token");
    size_t T = n_src + (t->decoder ? n_tgt : 0);
    if (T > (size_t)m->max_seq_len)
        return av_errf(err, "source and targets are %zu tokens but the model's context window is %d", T,
                       m->max_seq_len);
    if (!p->methods || p->methods >> AV_ATTR_METHOD_COUNT)
        return av_errf(err, "no attribution method chosen (or an unknown one)");
    if (p->baseline == AV_BASELINE_REMOVE && !t->decoder)
        return av_errf(err, "removing tokens moves an encoder's target rows: use a token or zero baseline");
    if ((unsigned)p->baseline >= AV_BASELINE_COUNT || (unsigned)p->group >= AV_GROUP_COUNT ||
        (unsigned)p->ig_rule >= AV_IG_RULE_COUNT)
        return av_errf(err, "unknown baseline, group or integration rule");
    int32_t *ids = malloc(sizeof *ids * T), *rows = malloc(sizeof *rows * n_tgt);
    t->ids = ids;
    t->rows = rows;
    if (!ids || !rows) return av_errf(err, "out of memory");
    memcpy(ids, src, sizeof *ids * n_src);
    if (t->decoder) memcpy(ids + n_src, tgt, sizeof *ids * n_tgt);
    for (size_t i = 0; i < T; i++)
        if (ids[i] < 0 || ids[i] >= m->vocab_size)
            return av_errf(err, "token id %d at position %zu is outside the vocabulary (%d)", ids[i], i,
                           m->vocab_size);
    for (size_t i = 0; i < n_tgt; i++) {
        rows[i] = t->decoder ? (int32_t)(n_src - 1 + i) : p->target_rows ? p->target_rows[i] : -1;
        if (rows[i] < 0 || rows[i] >= (int)(t->decoder ? T - 1 : n_src))
            return av_errf(err, "target %zu: no input row to predict it at (encoders: give target rows)", i);
        if (tgt[i] < 0 || tgt[i] >= m->head.n_out)
            return av_errf(err, "target token %d is outside the vocabulary (%d)", tgt[i], m->head.n_out);
    }
    t->T = (int)T;
    t->S = (int)n_src;
    t->targets = tgt;
    t->n_target = (int)n_tgt;
    t->n_threads = p->run.n_threads > 0 ? p->run.n_threads
                   : m->n_threads > 0   ? m->n_threads
                                        : av_default_threads();
    if ((t->baseline_id = baseline_id(m, p, err)) < -1) return -1;
    return av_attr_make_groups(t, err);
}

static void task_free(av_attr_task *t) {
    free((void *)t->ids);
    free((void *)t->rows);
    free(t->groups);
    free(t->logp);
}

/* log p of the targets with the original input (t->logp). */
static int original_logp(av_attr_task *t, av_err *err) {
    int dim = t->m->stacks[0].cfg.dim;
    av_state *s = NULL;
    float *rows = malloc(sizeof(float) * (size_t)t->T * (size_t)dim), *x = NULL; /* (T, dim) */
    t->logp = malloc(sizeof(float) * (size_t)t->n_target);
    int rc =
        rows && t->logp ? av_state_new(t->m, 0, t->T, t->n_threads, &s, err) : av_errf(err, "out of memory");
    if (rc == 0) rc = av_embed_tokens(t->m, &t->m->stacks[0], t->ids, t->T, rows, err);
    if (rc == 0) rc = av_forward_embeds(t->m, s, t->ids, rows, t->T, 0, NULL, err);
    if (rc == 0 && (x = malloc(sizeof(float) * (size_t)t->n_target * (size_t)dim)))
        for (int i = 0; i < t->n_target; i++)
            memcpy(x + (size_t)i * (size_t)dim, s->x + (size_t)t->rows[i] * (size_t)dim,
                   sizeof(float) * (size_t)dim);
    if (rc == 0)
        rc = x ? av_attr_target_logp(t, s, x, t->n_target, t->logp, err) : av_errf(err, "out of memory");
    free(rows);
    free(x);
    av_state_free(s);
    return rc;
}

/* A copy of n values of size bytes each (the trace owns its tensors). */
static void *dup(const void *p, size_t n, size_t size) {
    void *q = malloc(n * size > 0 ? n * size : 1);
    if (q) memcpy(q, p, n * size);
    return q;
}

/* Puts F32 data (taken) under name unless an earlier step failed (rc != 0: data is freed); returns the rc of
 * the sequence so far. */
static int put_or_free(int rc, av_trace *tr, const char *name, int ndim, const int64_t *shape, float *data,
                       av_err *err) {
    if (rc) {
        free(data);
        return rc;
    }
    return av_trace_put_tensor(tr, name, AV_DTYPE_F32, ndim, shape, data, err);
}

static int put_i32(av_trace *tr, const char *name, const int32_t *data, int64_t n, av_err *err) {
    return av_trace_put_tensor(tr, name, AV_DTYPE_I32, 1, &n, dup(data, (size_t)n, sizeof *data), err);
}

/* The "attribution" metadata object: how the numbers were made. */
static int describe(const av_attr_task *t, av_trace *tr, av_err *err) {
    const av_attr_params *p = t->p;
    json_t *o = json_object(), *ms = json_array();
    for (int k = 0; k < AV_ATTR_METHOD_COUNT; k++)
        if (p->methods & 1u << k)
            json_array_append_new(ms, json_string(av_attr_method_name((av_attr_method)k)));
    char group[32];
    if (p->group == AV_GROUP_SPAN)
        snprintf(group, sizeof group, "span:%d", p->group_span);
    else
        snprintf(group, sizeof group, "%s", p->group == AV_GROUP_WORD ? "word" : "token");
    json_object_set_new(o, "version", json_integer(ATTR_FORMAT_VERSION));
    json_object_set_new(o, "methods", ms);
    json_object_set_new(o, "source_len", json_integer(t->S));
    json_object_set_new(o, "n_target", json_integer(t->n_target));
    json_object_set_new(o, "decoder", json_boolean(t->decoder));
    json_object_set_new(o, "baseline", json_string(av_attr_baseline_name(p->baseline)));
    json_object_set_new(o, "baseline_id", json_integer(t->baseline_id));
    json_object_set_new(o, "group", json_string(group));
    json_object_set_new(o, "samples", json_integer(p->samples));
    json_object_set_new(o, "seed", json_integer((json_int_t)p->seed));
    json_object_set_new(o, "steps", json_integer(p->steps));
    json_object_set_new(o, "ig_rule", json_string(av_ig_rule_name(p->ig_rule)));
    char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(o);
    int rc = s ? av_trace_set_meta(tr, "attribution", s, err) : av_errf(err, "out of memory");
    free(s);
    return rc || av_cap_meta_int(tr, "source_len", t->S, err) ||
                   av_cap_json_list(t->m, tr, "attr.target_labels", t->targets, (size_t)t->n_target, 0,
                                    err) ||
                   av_cap_meta_int(tr, "attr.baseline_id", t->baseline_id, err)
               ? -1
               : 0;
}

/* Runs the methods of t; their results (and what describes the targets) become tensors of tr. */
static int compute(av_attr_task *t, av_trace *tr, av_err *err) {
    const av_stack *st = &t->m->stacks[0];
    int N = t->n_target, S = t->S, L = st->n_layers, H = st->cfg.n_heads, rc = 0;
    unsigned m = t->p->methods, grads = m & ~(1u << AV_ATTR_OCCLUSION | 1u << AV_ATTR_SHAPLEY);
    av_attr_grads g;
    memset(&g, 0, sizeof g);
    for (int k = 0; k < AV_ATTR_METHOD_COUNT; k++)
        if ((m & 1u << k) && !(g.out[k] = malloc(sizeof(float) * (size_t)N * (size_t)S))) rc = -1;
    if (m & 1u << AV_ATTR_IG)
        g.ig_delta = malloc(sizeof(float) * (size_t)N), g.ig_fb = malloc(sizeof(float) * (size_t)N);
    if (m & 1u << AV_ATTR_ATTN_GRAD)
        g.axg_heads = malloc(sizeof(float) * (size_t)N * (size_t)L * (size_t)H * (size_t)S);
    if (rc || ((m & 1u << AV_ATTR_IG) && (!g.ig_delta || !g.ig_fb)) ||
        ((m & 1u << AV_ATTR_ATTN_GRAD) && !g.axg_heads))
        rc = av_errf(err, "out of memory for the attributions");
    if (rc == 0 && (m & 1u << AV_ATTR_OCCLUSION)) rc = av_attr_occlusion(t, g.out[AV_ATTR_OCCLUSION], err);
    if (rc == 0 && (m & 1u << AV_ATTR_SHAPLEY)) rc = av_attr_shapley(t, g.out[AV_ATTR_SHAPLEY], err);
    if (rc == 0 && grads) rc = av_attr_gradients(t, grads, &g, err);
    for (int k = 0; k < AV_ATTR_METHOD_COUNT; k++) { /* the trace owns each buffer from here */
        char name[48];
        snprintf(name, sizeof name, "attr.%s", av_attr_method_name((av_attr_method)k));
        if (g.out[k]) rc = put_or_free(rc, tr, name, 2, (int64_t[]){N, S}, g.out[k], err);
    }
    if (g.axg_heads)
        rc = put_or_free(rc, tr, "attr.attn-grad.heads", 4, (int64_t[]){N, L, H, S}, g.axg_heads, err);
    if (g.ig_delta) rc = put_or_free(rc, tr, "attr.ig.delta", 1, (int64_t[]){N}, g.ig_delta, err);
    if (g.ig_fb) rc = put_or_free(rc, tr, "attr.ig.baseline_logprobs", 1, (int64_t[]){N}, g.ig_fb, err);
    if (rc) return -1;
    return put_i32(tr, "attr.target_ids", t->targets, N, err) ||
                   put_i32(tr, "attr.target_rows", t->rows, N, err) ||
                   put_or_free(0, tr, "attr.target_logprobs", 1, (int64_t[]){N},
                               dup(t->logp, (size_t)N, sizeof(float)), err) ||
                   put_i32(tr, "attr.groups", t->groups, S, err)
               ? -1
               : 0;
}

/* The trace of ids: the attention of the whole sequence as attnviz run captures it, or (with_attention 0)
 * only the model metadata and tokens. */
static int base_trace(const av_model *m, const int32_t *ids, int T, int with_attention,
                      const av_run_params *rp, av_trace **out, av_err *err) {
    if (with_attention) return av_trace_from_ids(m, ids, (size_t)T, rp, out, err);
    av_run_capture c;
    if (av_cap_init(&c, m, rp, err) || av_cap_finish(&c, out, err)) return -1;
    if (av_cap_set_tokens(m, *out, ids, (size_t)T, err) == 0) return 0;
    av_trace_free(*out);
    *out = NULL;
    return -1;
}

int av_attribute_ids(const av_model *m, const int32_t *src, size_t n_src, const int32_t *tgt, size_t n_tgt,
                     const av_attr_params *p, av_trace **out, av_err *err) {
    av_attr_params defaults = av_attr_default_params();
    av_attr_task t;
    *out = NULL;
    if (!p) p = &defaults;
    int rc = task_init(&t, m, p, src, n_src, tgt, n_tgt, err);
    if (rc == 0) rc = original_logp(&t, err);
    if (rc == 0) rc = base_trace(m, t.ids, t.T, p->with_attention, &p->run, out, err);
    if (rc == 0) rc = compute(&t, *out, err) || describe(&t, *out, err) ? -1 : 0;
    if (rc && *out) {
        av_trace_free(*out);
        *out = NULL;
    }
    task_free(&t);
    return rc;
}

int av_lens_ids(const av_model *m, const int32_t *ids, size_t n, const av_lens_params *p, av_trace **out,
                av_err *err) {
    av_lens_params defaults = av_lens_default_params();
    *out = NULL;
    if (!p) p = &defaults;
    if (single_stack(m, "the logit lens", err)) return -1;
    if (n == 0 || n > (size_t)m->max_seq_len)
        return av_errf(err, "the input is %zu tokens; the model takes 1 to %d", n, m->max_seq_len);
    int nt = p->run.n_threads;
    if (av_trace_from_ids(m, ids, n, &p->run, out, err)) return -1;
    if (av_lens_compute(m, ids, (int)n, p->k, nt, *out, err) == 0) return 0;
    av_trace_free(*out);
    *out = NULL;
    return -1;
}

/* ---- from text ---- */

static int encode(const av_model *m, const char *text, int specials, int32_t **ids, size_t *n, av_err *err) {
    if (!m->tok) return av_errf(err, "the model has no tokenizer: pass --tokenizer (or give token ids)");
    return av_tokenizer_encode(m->tok, text, strlen(text), specials, ids, n, err);
}

/* Encoders: the rows of the mask token in src (rows malloc'd, *n of them). */
static int mask_rows(const av_model *m, const int32_t *src, size_t n_src, int32_t **rows, size_t *n,
                     av_err *err) {
    int mask = av_tokenizer_find(m->tok, "[MASK]");
    if (mask < 0) mask = av_tokenizer_find(m->tok, "<mask>");
    *n = 0;
    if (!(*rows = malloc(sizeof **rows * (n_src ? n_src : 1)))) return av_errf(err, "out of memory");
    for (size_t j = 0; mask >= 0 && j < n_src; j++)
        if (src[j] == mask) (*rows)[(*n)++] = (int32_t)j;
    return *n ? 0 : av_errf(err, "an encoder predicts its mask tokens: put [MASK] (or <mask>) in the text");
}

/* Encoders without a target: the most probable token at each row. */
static int argmax_at(const av_model *m, const int32_t *src, size_t n_src, const int32_t *rows, size_t n,
                     int n_threads, int32_t *out, av_err *err) {
    av_state *s = NULL;
    float *logits = malloc(sizeof(float) * (size_t)m->head.n_out * n_src); /* (n_src, V) */
    av_pass p = {.logits = logits, .logits_all = 1};
    int rc = logits ? av_state_new(m, 0, (int)n_src, n_threads, &s, err) : av_errf(err, "out of memory");
    if (rc == 0) rc = av_forward_ids(m, s, src, (int)n_src, 0, &p, err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const float *row = logits + (size_t)rows[i] * (size_t)m->head.n_out;
        out[i] = 0;
        for (int v = 1; v < m->head.n_out; v++)
            if (row[v] > row[out[i]]) out[i] = v;
    }
    free(logits);
    av_state_free(s);
    return rc;
}

/* Decoders: target encoded without special tokens, or the greedy continuation of src. */
static int decoder_targets(const av_model *m, const int32_t *src, size_t n_src, const char *target,
                           int gen_steps, int32_t **tgt, size_t *n_tgt, av_err *err) {
    if (target) return encode(m, target, 0, tgt, n_tgt, err);
    int32_t *seq = NULL;
    size_t n = 0;
    if (gen_steps < 1) return av_errf(err, "give a target, or at least 1 token to generate");
    if (av_generate_greedy_ids(m, src, n_src, gen_steps, NULL, NULL, &seq, &n, err)) return -1;
    *n_tgt = n - n_src;
    *tgt = malloc(sizeof **tgt * (*n_tgt ? *n_tgt : 1));
    if (*tgt) memcpy(*tgt, seq + n_src, sizeof **tgt * *n_tgt);
    free(seq);
    if (!*tgt) return av_errf(err, "out of memory");
    return *n_tgt ? 0 : av_errf(err, "the model generated nothing after the source (its context is full)");
}

int av_attribute_text(const av_model *m, const char *source, const char *target, int gen_steps,
                      const av_attr_params *p, av_trace **out, av_err *err) {
    av_attr_params q = p ? *p : av_attr_default_params();
    int32_t *src = NULL, *tgt = NULL, *rows = NULL;
    size_t n_src = 0, n_tgt = 0, n_rows = 0;
    *out = NULL;
    int rc =
        single_stack(m, "attribution", err) || encode(m, source, q.run.add_bos, &src, &n_src, err) ? -1 : 0;
    if (rc == 0 && m->stacks[0].cfg.causal) {
        rc = decoder_targets(m, src, n_src, target, gen_steps, &tgt, &n_tgt, err);
    } else if (rc == 0) {
        rc = mask_rows(m, src, n_src, &rows, &n_rows, err);
        if (rc == 0 && target) rc = encode(m, target, 0, &tgt, &n_tgt, err);
        if (rc == 0 && target && n_tgt != n_rows)
            rc = av_errf(err, "the target has %zu tokens for %zu mask tokens in the text", n_tgt, n_rows);
        if (rc == 0 && !target && (tgt = malloc(sizeof *tgt * n_rows)) == NULL)
            rc = av_errf(err, "out of memory");
        if (rc == 0 && !target) rc = argmax_at(m, src, n_src, rows, n_rows, q.run.n_threads, tgt, err);
        n_tgt = n_rows;
        q.target_rows = rows;
    }
    if (rc == 0) rc = av_attribute_ids(m, src, n_src, tgt, n_tgt, &q, out, err);
    free(src), free(tgt), free(rows);
    return rc;
}

int av_lens_text(const av_model *m, const char *text, const av_lens_params *p, av_trace **out, av_err *err) {
    av_lens_params defaults = av_lens_default_params();
    int32_t *ids = NULL;
    size_t n = 0;
    *out = NULL;
    if (!p) p = &defaults;
    if (encode(m, text, p->run.add_bos, &ids, &n, err)) return -1;
    int rc = av_lens_ids(m, ids, n, p, out, err);
    free(ids);
    return rc;
}
