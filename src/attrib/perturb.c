/* Perturbation attribution (Captum's FeatureAblation and ShapleyValueSampling, inseq's occlusion): the
 * source is split into groups (tokens, words or spans), and groups are replaced by the baseline (a token,
 * a zero embedding, or nothing); batch.c evaluates every perturbed input. Each source token gets the
 * attribution of its group. */
#include "attrib.h"

#include <stdlib.h>
#include <string.h>

/* Whether the piece of id starts a word: a leading space marker (SentencePiece "▁", byte-level BPE "Ġ", a
 * plain space), or any piece but a WordPiece continuation ("##") in a WordPiece vocabulary. */
static int starts_word(const av_tokenizer *tok, int id) {
    const char *p = av_tokenizer_piece(tok, id);
    if (!p || !*p) return 1;
    if (strncmp(p, "##", 2) == 0) return 0;
    if (strcmp(av_tokenizer_model_name(tok), "wordpiece") == 0) return 1;
    return p[0] == ' ' || strncmp(p, "\xE2\x96\x81", 3) == 0 || strncmp(p, "\xC4\xA0", 2) == 0;
}

int av_attr_make_groups(av_attr_task *t, av_err *err) {
    const av_attr_params *p = t->p;
    const av_tokenizer *tok = t->m->tok;
    if (!(t->groups = malloc(sizeof *t->groups * (size_t)t->S))) return av_errf(err, "out of memory");
    if (p->group == AV_GROUP_SPAN && p->group_span < 1)
        return av_errf(err, "span groups need a span of at least 1 token, got %d", p->group_span);
    if (p->group == AV_GROUP_WORD && !tok) return av_errf(err, "word groups need the model's tokenizer");
    int g = -1;
    for (int j = 0; j < t->S; j++) {
        int id = t->ids[j], special = p->group == AV_GROUP_WORD && av_tokenizer_is_special(tok, id);
        int prev_special = j > 0 && p->group == AV_GROUP_WORD && av_tokenizer_is_special(tok, t->ids[j - 1]);
        int fresh = p->group == AV_GROUP_TOKEN || j == 0 ||
                    (p->group == AV_GROUP_SPAN && j % p->group_span == 0) ||
                    (p->group == AV_GROUP_WORD && (special || prev_special || starts_word(tok, id)));
        t->groups[j] = g += fresh;
    }
    t->n_groups = g + 1;
    return 0;
}

/* out (n_target, S) = per-group values v (n_groups, n_target), spread to every token of its group. */
static void spread(const av_attr_task *t, const float *v, float *out) {
    for (int i = 0; i < t->n_target; i++)
        for (int j = 0; j < t->S; j++)
            out[(size_t)i * (size_t)t->S + (size_t)j] =
                v[(size_t)t->groups[j] * (size_t)t->n_target + (size_t)i];
}

int av_attr_occlusion(const av_attr_task *t, float *out, av_err *err) {
    int G = t->n_groups, N = t->n_target;
    uint8_t *off = calloc((size_t)G * (size_t)G, 1); /* (G, G): perturbation g switches group g off */
    float *vals = malloc(sizeof(float) * (size_t)G * (size_t)N); /* (G, N) */
    int rc = off && vals ? 0 : av_errf(err, "out of memory");
    for (int g = 0; rc == 0 && g < G; g++)
        off[(size_t)g * (size_t)G + (size_t)g] = 1;
    if (rc == 0) rc = av_attr_values(t, off, G, vals, "occlusion", err);
    for (int g = 0; rc == 0 && g < G; g++)
        for (int i = 0; i < N; i++)
            vals[(size_t)g * (size_t)N + (size_t)i] = t->logp[i] - vals[(size_t)g * (size_t)N + (size_t)i];
    if (rc == 0) spread(t, vals, out);
    free(off);
    free(vals);
    return rc;
}

/* Fisher-Yates on a SplitMix64 stream: for i = n-1 .. 1, swap perm[i] with perm[next() % (i + 1)]. */
static void shuffle(int *perm, int n, uint64_t *state) {
    for (int i = 0; i < n; i++)
        perm[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(av_splitmix64(state) % (uint64_t)(i + 1)), tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
}

/* Shapley value sampling: for each permutation of the groups, start with every group at the baseline, put
 * the groups back in permutation order, and credit each with the change of log p it makes. The G + 1 inputs
 * of every permutation are one batch of perturbations. */
int av_attr_shapley(const av_attr_task *t, float *out, av_err *err) {
    int G = t->n_groups, N = t->n_target, K = t->p->samples;
    if (K < 1 || G < 1) return av_errf(err, "Shapley sampling needs at least 1 sample, got %d", K);
    size_t n_pert = (size_t)K * (size_t)(G + 1);
    uint8_t *off = malloc(n_pert * (size_t)G);                /* (K, G + 1, G) */
    float *vals = malloc(sizeof(float) * n_pert * (size_t)N); /* (K, G + 1, N) */
    int *perm = malloc(sizeof *perm * (size_t)K * (size_t)G); /* (K, G) */
    double *acc = calloc((size_t)G * (size_t)N, sizeof *acc); /* (G, N) */
    float *mean = malloc(sizeof(float) * (size_t)G * (size_t)N);
    if (!off || !vals || !perm || !acc || !mean || n_pert > INT32_MAX / 2) {
        free(off), free(vals), free(perm), free(acc), free(mean);
        return av_errf(err, "out of memory for %d Shapley samples of %d groups", K, G);
    }
    uint64_t state = t->p->seed;
    for (int s = 0; s < K; s++) {
        int *ps = perm + (size_t)s * (size_t)G;
        shuffle(ps, G, &state);
        uint8_t *o = off + (size_t)s * (size_t)(G + 1) * (size_t)G;
        memset(o, 1, (size_t)G); /* step 0: everything at the baseline */
        for (int k = 1; k <= G; k++) {
            memcpy(o + (size_t)k * (size_t)G, o + (size_t)(k - 1) * (size_t)G, (size_t)G);
            o[(size_t)k * (size_t)G + (size_t)ps[k - 1]] = 0;
        }
    }
    int rc = av_attr_values(t, off, (int)n_pert, vals, "shapley", err);
    for (int s = 0; rc == 0 && s < K; s++)
        for (int k = 1; k <= G; k++)
            for (int i = 0; i < N; i++) {
                const float *v = vals + ((size_t)s * (size_t)(G + 1) + (size_t)k) * (size_t)N, *prev = v - N;
                acc[(size_t)perm[(size_t)s * (size_t)G + (size_t)(k - 1)] * (size_t)N + (size_t)i] +=
                    (double)v[i] - prev[i];
            }
    for (size_t i = 0; i < (size_t)G * (size_t)N; i++)
        mean[i] = (float)(acc[i] / K);
    if (rc == 0) spread(t, mean, out);
    free(off), free(vals), free(perm), free(acc), free(mean);
    return rc;
}
