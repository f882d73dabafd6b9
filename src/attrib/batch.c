/* Log-probabilities of the targets under many perturbed inputs, in batches: the perturbed sequences of one
 * length run side by side through the one forward pass (av_state_new_batch: linear layers over every row at
 * once, attention per sequence). In a decoder nothing before a sequence's first perturbed position changes,
 * so a batch starts there, on copies of the original's KV cache for the positions before it: occluding token
 * j costs T - j positions instead of T. */
#include "attrib.h"

#include <stdlib.h>
#include <string.h>

enum { HEAD_ROWS = 64 }; /* rows through the output head at a time: (HEAD_ROWS, vocab) logits */
#define BATCH_BYTES ((size_t)1 << 30)

int av_attr_target_logp(const av_attr_task *t, av_state *s, const float *x, int n, float *out, av_err *err) {
    int V = t->m->head.n_out, dim = s->st->cfg.dim;
    float *logits = malloc(sizeof(float) * HEAD_ROWS * (size_t)V); /* (HEAD_ROWS, V) */
    if (!logits) return av_errf(err, "out of memory for the logits");
    int rc = 0;
    for (int r0 = 0; r0 < n && rc == 0; r0 += HEAD_ROWS) {
        int nr = n - r0 < HEAD_ROWS ? n - r0 : HEAD_ROWS;
        rc = av_head_logits(t->m, s, x + (size_t)r0 * (size_t)dim, nr, logits, err);
        for (int r = 0; rc == 0 && r < nr; r++) {
            const float *row = logits + (size_t)r * (size_t)V;
            out[r0 + r] = (float)(row[t->targets[(r0 + r) % t->n_target]] - av_logsumexp(row, V));
        }
    }
    free(logits);
    return rc;
}

/* One perturbation: its sequence length, where it first differs, and where its batch may start. */
typedef struct pert {
    int k;     /* index into off */
    int len;   /* T minus the removed tokens */
    int start; /* first position to compute: the first perturbed one, at most the first target row */
} pert;

static int by_len_start(const void *a, const void *b) {
    const pert *x = a, *y = b;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    if (x->start != y->start) return x->start < y->start ? -1 : 1;
    return x->k - y->k;
}

/* The perturbed sequence of off_k: ids (len) and token rows (len, dim). */
static int perturb_one(const av_attr_task *t, const uint8_t *off_k, int32_t *ids, float *rows, int *len,
                       av_err *err) {
    int dim = t->m->stacks[0].cfg.dim, n = 0;
    av_attr_baseline b = t->p->baseline;
    for (int j = 0; j < t->T; j++) {
        int is_off = j < t->S && off_k[t->groups[j]];
        if (is_off && b == AV_BASELINE_REMOVE) continue;
        ids[n++] = is_off && b == AV_BASELINE_TOKEN ? t->baseline_id : t->ids[j];
    }
    if (av_embed_tokens(t->m, &t->m->stacks[0], ids, n, rows, err)) return -1;
    for (int j = 0; b == AV_BASELINE_ZERO && j < t->S; j++)
        if (off_k[t->groups[j]]) memset(rows + (size_t)j * (size_t)dim, 0, sizeof(float) * (size_t)dim);
    *len = n;
    return 0;
}

static void describe(const av_attr_task *t, const uint8_t *off_k, pert *p) {
    int removed = 0, first = t->T;
    for (int j = 0; j < t->S; j++)
        if (off_k[t->groups[j]]) {
            removed++;
            first = j < first ? j : first;
        }
    p->len = t->T - (t->p->baseline == AV_BASELINE_REMOVE ? removed : 0);
    int row0 = t->rows[0] - (t->T - p->len); /* removed tokens all precede the targets */
    p->start = !t->decoder ? 0 : first < row0 ? first : row0;
}

/* Sequences per batch of length len: about BATCH_BYTES of activations and KV cache, or the caller's cap. */
static int batch_size(const av_attr_task *t, int len, int n_pert) {
    const av_stack_cfg *c = &t->m->stacks[0].cfg;
    size_t kv = (size_t)c->n_kv_heads * (size_t)c->head_dim, q = (size_t)c->n_heads * (size_t)c->head_dim;
    size_t per = (size_t)len * 4 *
                 (3 * (size_t)c->dim + 2 * q + 2 * (size_t)c->hidden + 2 * kv +
                  2 * kv * (size_t)t->m->stacks[0].n_layers);
    int b = t->p->max_batch > 0 ? t->p->max_batch : (int)(BATCH_BYTES / (per ? per : 1));
    return b < 1 ? 1 : b > n_pert ? n_pert : b;
}

/* Buffers of one run over the perturbations. */
typedef struct batch_ctx {
    const av_attr_task *t;
    const uint8_t *off;
    av_state *orig; /* the original sequence's KV cache (decoders), or NULL */
    int32_t *ids;   /* (B, T) */
    float *rows;    /* (B, T, dim) token rows, then the gathered target rows (B * n_target, dim) */
    float *vals;    /* (n_pert, n_target) */
} batch_ctx;

/* Perturbations ps[0..nb) of one length, side by side from their common start. */
static int run_batch(batch_ctx *c, const pert *ps, int nb, av_err *err) {
    const av_attr_task *t = c->t;
    int dim = t->m->stacks[0].cfg.dim, len = ps[0].len, start = ps[0].start, n = len - start, G = t->n_target;
    int32_t *seq = malloc(sizeof *seq * (size_t)t->T);                /* (T) one perturbed sequence */
    float *full = malloc(sizeof(float) * (size_t)t->T * (size_t)dim); /* (T, dim) its token rows */
    av_state *s = NULL;
    int rc = seq && full ? av_state_new_batch(t->m, 0, len, nb, t->n_threads, &s, err)
                         : av_errf(err, "out of memory");
    for (int b = 0; rc == 0 && b < nb; b++) {
        int got;
        rc = perturb_one(t, c->off + (size_t)ps[b].k * (size_t)t->n_groups, seq, full, &got, err);
        memcpy(c->ids + (size_t)b * (size_t)n, seq + start, sizeof *seq * (size_t)n);
        memcpy(c->rows + (size_t)b * (size_t)n * (size_t)dim, full + (size_t)start * (size_t)dim,
               sizeof(float) * (size_t)n * (size_t)dim);
        if (rc == 0 && start > 0) av_state_copy_prefix(s, b, c->orig, 0, start);
    }
    if (rc == 0) rc = av_forward_embeds(t->m, s, c->ids, c->rows, n, start, NULL, err);
    for (int b = 0; rc == 0 && b < nb; b++) /* the target rows of every sequence, (nb, G, dim) */
        for (int i = 0; i < G; i++)
            memcpy(c->rows + ((size_t)b * (size_t)G + (size_t)i) * (size_t)dim,
                   s->x + ((size_t)b * (size_t)n + (size_t)(t->rows[i] - (t->T - len) - start)) * (size_t)dim,
                   sizeof(float) * (size_t)dim);
    float *v = rc == 0 ? malloc(sizeof(float) * (size_t)nb * (size_t)G) : NULL;
    if (rc == 0) rc = v ? av_attr_target_logp(t, s, c->rows, nb * G, v, err) : av_errf(err, "out of memory");
    for (int b = 0; rc == 0 && b < nb; b++)
        memcpy(c->vals + (size_t)ps[b].k * (size_t)G, v + (size_t)b * (size_t)G, sizeof(float) * (size_t)G);
    free(v);
    free(seq);
    free(full);
    av_state_free(s);
    return rc;
}

/* The original sequence's KV cache, for batches that start after position 0. */
static int original_cache(const av_attr_task *t, av_state **out, av_err *err) {
    int dim = t->m->stacks[0].cfg.dim;
    float *rows = malloc(sizeof(float) * (size_t)t->T * (size_t)dim); /* (T, dim) */
    int rc = rows ? av_state_new(t->m, 0, t->T, t->n_threads, out, err) : av_errf(err, "out of memory");
    if (rc == 0) rc = av_embed_tokens(t->m, &t->m->stacks[0], t->ids, t->T, rows, err);
    if (rc == 0) rc = av_forward_embeds(t->m, *out, t->ids, rows, t->T, 0, NULL, err);
    free(rows);
    return rc;
}

int av_attr_values(const av_attr_task *t, const uint8_t *off, int n_pert, float *vals, const char *stage,
                   av_err *err) {
    int dim = t->m->stacks[0].cfg.dim, max_b = 1;
    pert *ps = malloc(sizeof *ps * (size_t)(n_pert > 0 ? n_pert : 1));
    batch_ctx c = {t, off, NULL, NULL, NULL, vals};
    if (!ps) return av_errf(err, "out of memory");
    for (int k = 0; k < n_pert; k++) {
        ps[k].k = k;
        describe(t, off + (size_t)k * (size_t)t->n_groups, &ps[k]);
    }
    qsort(ps, (size_t)n_pert, sizeof *ps, by_len_start);
    for (int k = 0; k < n_pert; k++)
        max_b = batch_size(t, ps[k].len, n_pert) > max_b ? batch_size(t, ps[k].len, n_pert) : max_b;
    size_t rows_n = (size_t)max_b * (size_t)(t->T > t->n_target ? t->T : t->n_target) * (size_t)dim;
    c.ids = malloc(sizeof *c.ids * (size_t)max_b * (size_t)t->T);
    c.rows = malloc(sizeof(float) * rows_n);
    int rc = c.ids && c.rows ? 0 : av_errf(err, "out of memory for a batch of %d sequences", max_b);
    if (rc == 0 && t->decoder && n_pert > 0 && ps[n_pert - 1].start > 0) rc = original_cache(t, &c.orig, err);
    for (int k0 = 0, done = 0; rc == 0 && k0 < n_pert; k0 += done) {
        int cap = batch_size(t, ps[k0].len, n_pert);
        for (done = 1; k0 + done < n_pert && done < cap && ps[k0 + done].len == ps[k0].len; done++) {
        }
        rc = run_batch(&c, ps + k0, done, err);
        if (rc == 0 && t->p->progress) t->p->progress(t->p->progress_ctx, stage, k0 + done, n_pert);
    }
    av_state_free(c.orig);
    free(c.ids);
    free(c.rows);
    free(ps);
    return rc;
}
