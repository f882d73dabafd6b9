/* Log-probabilities and generation metadata of a trace (logprobs.h; docs/TRACE_FORMAT.md, version 3). */
#include "trace/logprobs.h"

#include "kernels/sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int av_lp_new(int n, int k, av_lp_data **out, av_err *err) {
    *out = NULL;
    if (n < 0 || k < 0 || k > AV_LP_MAX_K)
        return av_errf(err, "log-probabilities: %d alternatives per token (at most %d)", k, AV_LP_MAX_K);
    size_t nk = (size_t)n * (size_t)k, n1 = n ? (size_t)n : 1, nk1 = nk ? nk : 1;
    av_lp_data *d = calloc(1, sizeof *d);
    if (d) {
        d->token = malloc(sizeof(float) * n1);
        d->entropy = malloc(sizeof(float) * n1);
        d->alt_ids = malloc(sizeof(int32_t) * nk1);
        d->alt_lp = malloc(sizeof(float) * nk1);
        d->alt_piece = malloc(sizeof(int32_t) * nk1);
        d->piece_index = json_object();
    }
    if (!d || !d->token || !d->entropy || !d->alt_ids || !d->alt_lp || !d->alt_piece || !d->piece_index) {
        av_lp_free(d);
        return av_errf(err, "out of memory for the log-probabilities of %d tokens", n);
    }
    d->n = n, d->k = k;
    for (size_t i = 0; i < (size_t)n; i++)
        d->token[i] = d->entropy[i] = NAN;
    for (size_t i = 0; i < nk; i++) {
        d->alt_ids[i] = d->alt_piece[i] = -1;
        d->alt_lp[i] = NAN;
    }
    *out = d;
    return 0;
}

void av_lp_free(av_lp_data *d) {
    if (!d) return;
    free(d->token);
    free(d->entropy);
    free(d->alt_ids);
    free(d->alt_lp);
    free(d->alt_piece);
    av_strings_free(d->pieces, (size_t)d->n_pieces);
    json_decref(d->piece_index);
    free(d);
}

/* Appends a label the table does not hold yet (takes ownership); its index, or -1. */
static int push_piece(av_lp_data *d, char *label, av_err *err) {
    if (!label) return av_errf(err, "out of memory");
    if (d->n_pieces == d->cap_pieces) {
        int cap = d->cap_pieces ? 2 * d->cap_pieces : 64;
        char **p = realloc(d->pieces, sizeof *p * (size_t)cap);
        if (!p) {
            free(label);
            return av_errf(err, "out of memory");
        }
        d->pieces = p, d->cap_pieces = cap;
    }
    d->pieces[d->n_pieces] = label;
    return d->n_pieces++;
}

int av_lp_piece(av_lp_data *d, const char *label, av_err *err) {
    json_t *at = d->piece_index ? json_object_get(d->piece_index, label) : NULL;
    if (at) return (int)json_integer_value(at);
    int i = push_piece(d, av_strdup(label), err);
    if (i >= 0 && d->piece_index && json_object_set_new(d->piece_index, label, json_integer(i)))
        return av_errf(err, "out of memory");
    return i;
}

int av_lp_fill_row(av_lp_data *d, int t, const float *lp, int vocab, int32_t token, av_lp_label_fn label,
                   void *ctx, av_err *err) {
    d->token[t] = token >= 0 && token < vocab ? lp[token] : NAN;
    d->entropy[t] = (float)av_entropy_of_logprobs(lp, vocab);
    int32_t *ids = d->alt_ids + (size_t)t * (size_t)d->k;
    int k = av_top_k(lp, vocab, d->k, ids, d->alt_lp + (size_t)t * (size_t)d->k);
    for (int j = 0; j < k; j++) {
        char *s = label(ctx, ids[j]);
        int pi = s ? av_lp_piece(d, s, err) : av_errf(err, "out of memory");
        free(s);
        if (pi < 0) return -1;
        d->alt_piece[(size_t)t * (size_t)d->k + (size_t)j] = pi;
    }
    return 0;
}

/* ---- the state on a trace ---- */

void av_gen_free(struct av_gen_state *g) {
    if (!g) return;
    av_lp_free(g->lp);
    json_decref(g->info);
    free(g->missing);
    free(g->sampling);
    free(g);
}

static struct av_gen_state *gen_state(av_trace *t) {
    if (!t->gen) {
        t->gen = calloc(1, sizeof *t->gen);
        if (t->gen) t->gen->prompt_len = -1;
    }
    return t->gen;
}

/* Parses the "generation" object (keeps its JSON views) and checks prompt_len against the tokens. */
static int set_info(av_trace *t, struct av_gen_state *g, const char *text, const char *plen, const char *path,
                    av_err *err) {
    if (plen) {
        char *end;
        long p = strtol(plen, &end, 10);
        if (*end || end == plen || p < 0 || p > t->n_tokens)
            return av_errf(err, "%s: 'prompt_len' must be an integer in [0, %d], got '%.32s'", path,
                           t->n_tokens, plen);
        g->prompt_len = (int)p;
    }
    if (!text) return 0;
    g->info = json_loads(text, 0, NULL);
    if (!json_is_object(g->info))
        return av_errf(err, "%s: metadata 'generation' must be a JSON object", path);
    json_t *m = json_object_get(g->info, "missing"), *s = json_object_get(g->info, "sampling");
    if (m) g->missing = json_dumps(m, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(9));
    if (s) g->sampling = json_dumps(s, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(9));
    return 0;
}

int av_trace_set_logprobs(av_trace *t, av_lp_data *d, int prompt_len, const json_t *generation, av_err *err) {
    struct av_gen_state *g = gen_state(t);
    if (!g || d->n != t->n_tokens) {
        av_lp_free(d);
        return g ? av_errf(err, "log-probabilities of %d tokens for a trace of %d", d->n, t->n_tokens)
                 : av_errf(err, "out of memory");
    }
    av_lp_free(g->lp);
    g->lp = d;
    g->derived = 0;
    json_decref(d->piece_index); /* the labels are final */
    d->piece_index = NULL;
    char plen[16],
        *info = generation ? json_dumps(generation, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(9))
                           : NULL;
    snprintf(plen, sizeof plen, "%d", prompt_len);
    int rc = (prompt_len >= 0 && av_trace_set_meta(t, "prompt_len", plen, err)) ||
             (info && av_trace_set_meta(t, "generation", info, err)) ||
             av_trace_set_meta_strings(t, "logprob_pieces", d->pieces, d->n_pieces, err) ||
             av_trace_need_version(t, 3, err) ||
             set_info(t, g, info, prompt_len >= 0 ? plen : NULL, "trace", err);
    free(info);
    return rc ? -1 : 0;
}

/* ---- save and load ---- */

int av_lp_save(const av_trace *t, av_st_writer *w, av_err *err) {
    const av_lp_data *d = t->gen && !t->gen->derived ? t->gen->lp : NULL;
    if (!d) return 0;
    int64_t s1[1] = {d->n}, s2[2] = {d->n, d->k};
    if (av_st_writer_add(w, "logprobs.token", AV_DTYPE_F32, AV_DTYPE_F32, 1, s1, d->token, err) ||
        av_st_writer_add(w, "logprobs.entropy", AV_DTYPE_F32, AV_DTYPE_F32, 1, s1, d->entropy, err))
        return -1;
    if (d->k == 0) return 0;
    return av_st_writer_add(w, "logprobs.ids", AV_DTYPE_I32, AV_DTYPE_I32, 2, s2, d->alt_ids, err) ||
                   av_st_writer_add(w, "logprobs.topk", AV_DTYPE_F32, AV_DTYPE_F32, 2, s2, d->alt_lp, err) ||
                   av_st_writer_add(w, "logprobs.pieces", AV_DTYPE_I32, AV_DTYPE_I32, 2, s2, d->alt_piece,
                                    err)
               ? -1
               : 0;
}

/* A stored tensor of the expected dtype and shape [n] (k < 0) or [n, k] (k >= 0, k read when *k == -2). */
static const av_tensor *find_table(const av_trace *t, const char *name, av_dtype dt, int n, int *k,
                                   const char *path, av_err *err) {
    const av_tensor *v = av_st_find(&t->file, name);
    if (!v) {
        av_errf(err, "%s: '%s' is missing (the other logprobs.* tensors are there)", path, name);
        return NULL;
    }
    int want_nd = *k == -1 ? 1 : 2;
    if (v->dtype != dt || v->ndim != want_nd || v->shape[0] != n ||
        (want_nd == 2 && (v->shape[1] < 0 || v->shape[1] > AV_LP_MAX_K || (*k >= 0 && v->shape[1] != *k)))) {
        av_errf(err, "%s: '%s' must be %s [%d%s] (at most %d alternatives)", path, name, av_dtype_name(dt), n,
                want_nd == 2 ? ", k" : "", AV_LP_MAX_K);
        return NULL;
    }
    if (want_nd == 2) *k = (int)v->shape[1];
    return v;
}

/* The labels of "logprob_pieces" into d. */
static int load_pieces(const av_trace *t, av_lp_data *d, const char *path, av_err *err) {
    const char *text = av_trace_meta(t, "logprob_pieces");
    json_t *a = text ? json_loads(text, 0, NULL) : json_array();
    int rc = 0;
    if (!json_is_array(a)) rc = av_errf(err, "%s: metadata 'logprob_pieces' must be a JSON array", path);
    for (size_t i = 0; !rc && i < json_array_size(a); i++) {
        json_t *s = json_array_get(a, i);
        rc = json_is_string(s) ? (push_piece(d, av_strdup(json_string_value(s)), err) < 0)
                               : av_errf(err, "%s: 'logprob_pieces' entry %zu is not a string", path, i);
    }
    json_decref(a);
    return rc ? -1 : 0;
}

static int check_piece_indices(const av_lp_data *d, const char *path, av_err *err) {
    for (size_t i = 0; i < (size_t)d->n * (size_t)d->k; i++)
        if (d->alt_piece[i] < -1 || d->alt_piece[i] >= d->n_pieces)
            return av_errf(err, "%s: logprobs.pieces[%zu] = %d is outside the %d labels of 'logprob_pieces'",
                           path, i, d->alt_piece[i], d->n_pieces);
    return 0;
}

/* Log-probabilities are <= 0 and entropies >= 0 (NaN: unknown); a little rounding is allowed. */
static int check_values(const av_lp_data *d, const char *path, av_err *err) {
    for (int i = 0; i < d->n; i++)
        if (d->token[i] > 1e-3f || d->entropy[i] < -1e-3f || isinf(d->entropy[i]))
            return av_errf(err, "%s: position %d: log-probability %g / entropy %g out of range", path, i,
                           (double)d->token[i], (double)d->entropy[i]);
    for (size_t i = 0; i < (size_t)d->n * (size_t)d->k; i++)
        if (d->alt_lp[i] > 1e-3f || d->alt_ids[i] < -1)
            return av_errf(err, "%s: alternative %zu of position %zu: id %d, log-probability %g out of range",
                           path, i % (size_t)d->k, i / (size_t)d->k, d->alt_ids[i], (double)d->alt_lp[i]);
    return 0;
}

int av_lp_load(av_trace *t, const char *path, av_err *err) {
    const char *info = av_trace_meta(t, "generation"), *plen = av_trace_meta(t, "prompt_len");
    if (!av_st_find(&t->file, "logprobs.token")) {
        struct av_gen_state *g = info || plen ? gen_state(t) : NULL;
        return !g ? (info || plen ? av_errf(err, "out of memory") : 0)
                  : set_info(t, g, info, plen, path, err);
    }
    int n = t->n_tokens, k1 = -1, k = -2;
    const av_tensor *tok = find_table(t, "logprobs.token", AV_DTYPE_F32, n, &k1, path, err);
    const av_tensor *ent = tok ? find_table(t, "logprobs.entropy", AV_DTYPE_F32, n, &k1, path, err) : NULL;
    const av_tensor *ids = NULL, *lps = NULL, *pcs = NULL;
    if (!ent) return -1;
    if (av_st_find(&t->file, "logprobs.ids") || av_st_find(&t->file, "logprobs.topk")) {
        if (!(ids = find_table(t, "logprobs.ids", AV_DTYPE_I32, n, &k, path, err)) ||
            !(lps = find_table(t, "logprobs.topk", AV_DTYPE_F32, n, &k, path, err)) ||
            !(pcs = find_table(t, "logprobs.pieces", AV_DTYPE_I32, n, &k, path, err)))
            return -1;
    }
    av_lp_data *d;
    if (av_lp_new(n, k < 0 ? 0 : k, &d, err)) return -1;
    memcpy(d->token, tok->data, sizeof(float) * (size_t)n);
    memcpy(d->entropy, ent->data, sizeof(float) * (size_t)n);
    if (ids) {
        memcpy(d->alt_ids, ids->data, ids->nbytes);
        memcpy(d->alt_lp, lps->data, lps->nbytes);
        memcpy(d->alt_piece, pcs->data, pcs->nbytes);
    }
    json_decref(d->piece_index);
    d->piece_index = NULL;
    struct av_gen_state *g = gen_state(t);
    if (!g || load_pieces(t, d, path, err) || check_piece_indices(d, path, err) ||
        check_values(d, path, err)) {
        av_lp_free(d);
        return g ? -1 : av_errf(err, "out of memory");
    }
    g->lp = d;
    return set_info(t, g, info, plen, path, err);
}

/* ---- derived from stored logits (`attnviz run --logits`) ---- */

typedef struct id_pos {
    int32_t id;
    int pos;
} id_pos;

static int cmp_id_pos(const void *a, const void *b) {
    const id_pos *x = a, *y = b;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    return x->pos - y->pos;
}

typedef struct trace_labels {
    const av_trace *t;
    id_pos *by_id; /* (n_tokens) sorted by id */
} trace_labels;

/* An alternative's label: the trace's own label where the id occurs in it, else "#id". */
static char *label_from_trace(void *ctx, int32_t id) {
    const trace_labels *c = ctx;
    id_pos key = {id, -1}, *lo = c->by_id, *end = c->by_id + c->t->n_tokens;
    while (lo < end) { /* first entry >= key */
        id_pos *mid = lo + (end - lo) / 2;
        if (cmp_id_pos(mid, &key) < 0)
            lo = mid + 1;
        else
            end = mid;
    }
    if (lo < c->by_id + c->t->n_tokens && lo->id == id) return av_strdup(c->t->tokens[lo->pos]);
    return av_trace_id_label(id);
}

/* Row t of the table from logits row t - 1 (the distribution that produced token t). */
static int derive_locked(av_trace *t, struct av_gen_state *g, av_err *err) {
    const av_tensor *lg = &t->logits_view;
    int n = t->n_tokens, vocab = (int)lg->shape[1];
    av_lp_data *d;
    trace_labels c = {t, malloc(sizeof(id_pos) * (size_t)(n ? n : 1))};
    float *row = malloc(sizeof(float) * (size_t)(vocab > 0 ? vocab : 1)); /* (vocab) */
    if (!c.by_id || !row || av_lp_new(n, vocab < AV_LP_DEFAULT_K ? vocab : AV_LP_DEFAULT_K, &d, err)) {
        free(c.by_id);
        free(row);
        return av_errf(err, "out of memory deriving log-probabilities from logits");
    }
    for (int i = 0; i < n; i++)
        c.by_id[i] = (id_pos){t->token_ids[i], i};
    qsort(c.by_id, (size_t)n, sizeof *c.by_id, cmp_id_pos);
    int rc = 0;
    for (int i = 1; i < n && !rc; i++) {
        av_log_softmax((const float *)lg->data + (size_t)(i - 1) * (size_t)vocab, vocab, row);
        rc = av_lp_fill_row(d, i, row, vocab, t->token_ids[i], label_from_trace, &c, err);
    }
    free(c.by_id);
    free(row);
    if (rc) {
        av_lp_free(d);
        return -1;
    }
    json_decref(d->piece_index);
    d->piece_index = NULL;
    g->lp = d;
    g->derived = 1;
    return 0;
}

/* ---- public accessors ---- */

int av_trace_has_logprobs(const av_trace *t) { return (t->gen && t->gen->lp) || t->logits_view.data; }

int av_trace_has_attention(const av_trace *t) { return t->n_sets > 0 || t->lazy; }

int av_trace_logprobs(const av_trace *t, av_logprob_view *out, av_err *err) {
    av_trace *mt = (av_trace *)t; /* derived once under the lock; the trace is logically const */
    pthread_mutex_lock(&mt->lock);
    struct av_gen_state *g = mt->gen || mt->logits_view.data ? gen_state(mt) : NULL;
    int rc = 0;
    if (!g)
        rc = av_errf(err, mt->gen || mt->logits_view.data
                              ? "out of memory"
                              : "the trace holds no log-probabilities (nor logits)");
    else if (!g->lp)
        rc = derive_locked(mt, g, err);
    pthread_mutex_unlock(&mt->lock);
    if (rc) return -1;
    const av_lp_data *d = g->lp;
    *out = (av_logprob_view){d->n,       d->k,      d->token,     d->entropy,
                             d->alt_ids, d->alt_lp, d->alt_piece, (const char *const *)d->pieces,
                             d->n_pieces};
    return 0;
}

static const char *info_str(const json_t *info, const char *key) {
    return json_string_value(json_object_get(info, key));
}

int av_trace_generation_info(const av_trace *t, av_generation_info *out) {
    const struct av_gen_state *g = t->gen;
    memset(out, 0, sizeof *out);
    out->prompt_len = g ? g->prompt_len : -1;
    if (!g) return t->logits_view.data ? (out->source = "logits", 0) : -1;
    const json_t *i = g->info;
    out->source = g->derived ? "logits" : info_str(i, "source");
    out->provider = info_str(i, "provider");
    out->stop_reason = info_str(i, "stop_reason");
    out->top_logprobs = (int)json_integer_value(json_object_get(i, "top_logprobs"));
    out->alternatives_cap = (int)json_integer_value(json_object_get(i, "alternatives_cap"));
    out->missing = g->missing;
    out->sampling = g->sampling;
    return 0;
}
