/* Head roles: previous-token, first-token (sink), self, broad, duplicate-token and induction heads, scored by
 * two probes run on the model (through the caller's runner: analysis reads traces, it never runs a model): a
 * natural text (previous/first/self/broad, from the head statistics) and sequences of random tokens repeated
 * twice, [BOS] R R (duplicate-token: attention from the second copy of a token to its first copy, i -> i-L;
 * induction: to the token after the first copy, i -> i-L+1). */
#include "analysis.h"
#include "core/core.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const role_names[AV_ROLE_COUNT] = {"previous_token", "first_token",     "self",
                                                      "broad",          "duplicate_token", "induction"};

const char *av_role_name(av_role r) { return r >= 0 && r < AV_ROLE_COUNT ? role_names[r] : "none"; }

void av_roles_pick(av_head_roles *r) {
    r->best = AV_ROLE_NONE;
    r->best_score = NAN;
    int best = -1;
    for (int k = 0; k < AV_ROLE_COUNT; k++)
        if (!isnan(r->score[k]) && (best < 0 || r->score[k] > r->score[best])) best = k;
    if (best < 0) return;
    r->best_score = r->score[best];
    r->best = r->score[best] >= AV_ROLE_MIN_SCORE ? (av_role)best : AV_ROLE_NONE;
}

void av_roles_from_stats(const av_head_stats *s, av_head_roles *r) {
    r->layer = s->layer;
    r->head = s->head;
    for (int k = 0; k < AV_ROLE_COUNT; k++)
        r->score[k] = NAN;
    r->score[AV_ROLE_PREV] = s->prev;
    r->score[AV_ROLE_FIRST] = s->first;
    r->score[AV_ROLE_SELF] = s->self;
    r->score[AV_ROLE_BROAD] = s->uniformity;
    av_roles_pick(r);
}

int av_roles_repeat_scores(const av_attn_view *v, int first, int L, double *induction, double *duplicate,
                           av_err *err) {
    if (L < 1 || first < 0 || first + 2 * L > v->n_query || first + 2 * L > v->n_key)
        return av_errf(err, "repeated segment [%d, %d) does not fit the %d x %d attention", first,
                       first + 2 * L, v->n_query, v->n_key);
    size_t plane = (size_t)v->n_query * (size_t)v->n_key;
    for (int h = 0; h < v->n_heads; h++) {
        const float *A = v->data + (size_t)h * plane; /* (n_query, n_key) */
        double ind = 0, dup = 0;
        for (int i = first + L; i < first + 2 * L; i++) {
            const float *a = A + (size_t)i * (size_t)v->n_key;
            ind += a[i - L + 1];
            dup += a[i - L];
        }
        induction[h] = ind / L;
        duplicate[h] = dup / L;
    }
    return 0;
}

av_roles_params av_roles_default_params(void) { return (av_roles_params){32, 4, 1, NULL}; }

const char *av_roles_default_text(void) {
    return "The little dog ran to the park. It saw a red ball, and it ran after the ball! Then the dog "
           "found a stick; the stick was long. \"Come here,\" said Tom. The dog came back with the ball and "
           "the stick, and Tom was happy.";
}

void av_roles_repeat_sequence(const int32_t *cands, int n_cands, int bos, int L, uint64_t *rng_state,
                              int32_t *ids) {
    int first = bos >= 0 ? 1 : 0;
    if (bos >= 0) ids[0] = bos;
    for (int k = 0; k < L; k++) {
        ids[first + k] = cands[av_splitmix64(rng_state) % (uint64_t)n_cands];
        ids[first + L + k] = ids[first + k];
    }
}

int av_roles_candidates(const av_model *m, int32_t **out, int *n_out, av_err *err) {
    av_model_info info = av_model_get_info(m);
    const av_tokenizer *tok = av_model_tokenizer(m);
    int32_t *c = malloc(sizeof *c * (size_t)info.vocab_size);
    if (!c) return av_errf(err, "out of memory");
    int n = 0;
    for (int id = 0; id < info.vocab_size; id++) {
        if (tok) {
            const char *p = av_tokenizer_piece(tok, id);
            size_t len = p ? strlen(p) : 0;
            if (id == av_tokenizer_bos(tok) || id == av_tokenizer_eos(tok) || !p || len == 0) continue;
            if (len >= 3 && p[0] == '<' && p[len - 1] == '>') continue;
        }
        c[n++] = id;
    }
    if (n == 0) {
        free(c);
        return av_errf(err, "the vocabulary has no ordinary tokens to build a random probe from");
    }
    *out = c;
    *n_out = n;
    return 0;
}

/* Natural-text probe ids: the text with BOS, cut to the context window; or, with no tokenizer, 64 ids drawn
 * from the candidates (seeded from seed ^ 0x7E57). *ids malloc'd. */
static int text_probe_ids(const av_model *m, const char *text, const int32_t *cands, int n_cands,
                          uint64_t seed, int32_t **ids, size_t *n, av_err *err) {
    av_model_info info = av_model_get_info(m);
    const av_tokenizer *tok = av_model_tokenizer(m);
    if (tok) {
        if (av_tokenizer_encode(tok, text, strlen(text), 1, ids, n, err)) return -1;
    } else {
        *n = 64;
        if (!(*ids = malloc(sizeof **ids * *n))) return av_errf(err, "out of memory");
        uint64_t s = seed ^ 0x7E57ull;
        for (size_t i = 0; i < *n; i++)
            (*ids)[i] = cands[av_splitmix64(&s) % (uint64_t)n_cands];
    }
    if (*n > (size_t)info.max_seq_len) *n = (size_t)info.max_seq_len;
    if (*n < 3) {
        free(*ids);
        *ids = NULL;
        return av_errf(err, "the natural-text probe is only %zu tokens", *n);
    }
    return 0;
}

void av_roles_result_free(av_roles_result *r) {
    if (!r) return;
    free(r->heads);
    memset(r, 0, sizeof *r);
}

/* One role-probe session: the model's description, its runner and the parameters. */
typedef struct roles_probe {
    const av_model *m;
    av_roles_run_fn run;
    void *run_ctx;
    const av_roles_params *p;
    int n_layers, n_heads;
    int bos, first, L;    /* BOS id (-1: none), 1 when the probes start with it, segment length */
    const int32_t *cands; /* (n_cands) ids for random sequences */
    int n_cands;
} roles_probe;

/* Refuses probes that cannot run on this model, with the option to change. */
static int check_probe(const av_model_info *info, int first, int L, const av_roles_params *p, av_err *err) {
    if (L < 2) return av_errf(err, "--seq-len must be at least 2");
    if (info->family == AV_FAMILY_ENCDEC)
        return av_errf(err,
                       "role probes run on decoder-only and encoder-only models; %s is an encoder-decoder "
                       "(use attnviz stats on its traces)",
                       info->name);
    if (first + 2 * L > info->max_seq_len)
        return av_errf(err,
                       "the repeated probe needs %d tokens (2 x %d%s) but the model's context is %d: use "
                       "--seq-len %d or less",
                       first + 2 * L, L, first ? " + BOS" : "", info->max_seq_len,
                       (info->max_seq_len - first) / 2);
    if (p->n_samples < 1) return av_errf(err, "the probe needs at least one sample");
    return 0;
}

/* Probe 1, natural text: previous-token, first-token, self and broad scores of every head into out->heads
 * (n_layers * n_heads). */
static int probe_text(const roles_probe *rp, av_roles_result *out, av_err *err) {
    int32_t *ids = NULL;
    size_t n_text = 0;
    av_trace *t = NULL;
    av_head_stats *stats = NULL;
    int n_stats = 0, rc = -1;
    if (text_probe_ids(rp->m, rp->p->text ? rp->p->text : av_roles_default_text(), rp->cands, rp->n_cands,
                       rp->p->seed, &ids, &n_text, err) ||
        rp->run(rp->run_ctx, ids, n_text, &t, err) ||
        av_trace_head_stats(t, AV_ATTN_SELF, -1, &stats, &n_stats, err))
        goto done;
    if (n_stats != rp->n_layers * rp->n_heads) {
        av_errf(err, "internal: %d head statistics for %d x %d heads", n_stats, rp->n_layers, rp->n_heads);
        goto done;
    }
    for (int k = 0; k < n_stats; k++)
        av_roles_from_stats(&stats[k], &out->heads[k]);
    out->text_tokens = (int)n_text;
    rc = 0;
done:
    av_trace_free(t);
    free(stats);
    free(ids);
    return rc;
}

/* Probe 2, [BOS] R R n_samples times: the mean duplicate-token and induction scores of every head into
 * sum_dup / sum_ind (n_layers * n_heads, summed over samples). */
static int probe_repeat(const roles_probe *rp, double *sum_ind, double *sum_dup, av_err *err) {
    int H = rp->n_heads, rc = -1;
    size_t n_rep = (size_t)(rp->first + 2 * rp->L);
    int32_t *ids = malloc(sizeof *ids * n_rep);                                            /* (n_rep) */
    double *ind = malloc(sizeof *ind * (size_t)H), *dup = malloc(sizeof *dup * (size_t)H); /* (H) one layer */
    av_trace *t = NULL;
    if (!ids || !ind || !dup) {
        av_errf(err, "out of memory");
        goto done;
    }
    uint64_t state = rp->p->seed;
    for (int s = 0; s < rp->p->n_samples; s++) {
        av_roles_repeat_sequence(rp->cands, rp->n_cands, rp->bos, rp->L, &state, ids);
        if (rp->run(rp->run_ctx, ids, n_rep, &t, err)) goto done;
        for (int l = 0; l < rp->n_layers; l++) {
            av_attn_view v;
            if (av_trace_attn(t, AV_ATTN_SELF, l, &v, err) ||
                av_roles_repeat_scores(&v, rp->first, rp->L, ind, dup, err))
                goto done;
            for (int h = 0; h < H; h++) {
                sum_ind[l * H + h] += ind[h];
                sum_dup[l * H + h] += dup[h];
            }
        }
        av_trace_free(t);
        t = NULL;
    }
    rc = 0;
done:
    av_trace_free(t);
    free(ids);
    free(ind);
    free(dup);
    return rc;
}

int av_model_roles(const av_model *m, av_roles_run_fn run, void *run_ctx, const av_roles_params *p,
                   av_roles_result *out, av_err *err) {
    memset(out, 0, sizeof *out);
    av_roles_params defaults = av_roles_default_params();
    if (!p) p = &defaults;
    av_model_info info = av_model_get_info(m);
    const av_tokenizer *tok = av_model_tokenizer(m);
    roles_probe rp = {
        m, run,        run_ctx, p, info.n_layers, info.n_heads, tok ? av_tokenizer_bos(tok) : -1,
        0, p->seq_len, NULL,    0};
    rp.first = rp.bos >= 0 ? 1 : 0;
    if (check_probe(&info, rp.first, rp.L, p, err)) return -1;
    int NL = rp.n_layers, H = rp.n_heads, rc = -1;
    int32_t *cands = NULL;
    double *sum_ind = calloc((size_t)NL * (size_t)H, sizeof *sum_ind); /* (NL, H) */
    double *sum_dup = calloc((size_t)NL * (size_t)H, sizeof *sum_dup); /* (NL, H) */
    out->heads = calloc((size_t)NL * (size_t)H, sizeof *out->heads);   /* (NL, H) */
    if (!sum_ind || !sum_dup || !out->heads) {
        av_errf(err, "out of memory");
        goto done;
    }
    if (av_roles_candidates(m, &cands, &rp.n_cands, err)) goto done;
    rp.cands = cands;
    if (probe_text(&rp, out, err) || probe_repeat(&rp, sum_ind, sum_dup, err)) goto done;
    for (int k = 0; k < NL * H; k++) {
        out->heads[k].score[AV_ROLE_INDUCTION] = sum_ind[k] / p->n_samples;
        out->heads[k].score[AV_ROLE_DUPLICATE] = sum_dup[k] / p->n_samples;
        av_roles_pick(&out->heads[k]);
    }
    out->n_layers = NL;
    out->n_heads = H;
    out->text = p->text ? p->text : av_roles_default_text();
    out->seq_len = rp.L;
    out->n_samples = p->n_samples;
    out->seed = p->seed;
    rc = 0;
done:
    if (rc) av_roles_result_free(out);
    free(cands);
    free(sum_ind);
    free(sum_dup);
    return rc;
}
