/* The corpus accumulator: per-example measurements summed exactly (fixed point, integer counts), top
 * examples per head and role, role votes, bad-line accounting. Every operation is order-free, so any split of
 * the inputs over threads and processes merges to the same bits. */
#include "corpus.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const k_bad_names[AV_BAD_COUNT] = {"invalid_json", "missing_field",  "empty_text",
                                                      "too_long",     "line_too_large", "model_error"};

const char *av_bad_name(av_bad b) { return b >= 0 && b < AV_BAD_COUNT ? k_bad_names[b] : "?"; }

void av_corpus_acc_init(av_corpus_acc *a, int top_k) {
    memset(a, 0, sizeof *a);
    a->top_k = top_k < 1 ? 1 : top_k;
    a->error_line = -1;
}

void av_corpus_acc_free(av_corpus_acc *a) {
    free(a->metric);
    free(a->sketch);
    free(a->pos);
    free(a->pos_n);
    free(a->votes);
    free(a->top);
    for (int i = 0; i < a->n_labels; i++) {
        free(a->labels[i].label);
        free(a->labels[i].m);
    }
    free(a->labels);
    int top_k = a->top_k;
    av_corpus_acc_init(a, top_k);
}

int av_corpus_acc_alloc(av_corpus_acc *a, const av_corpus_layout *lay, av_err *err) {
    size_t nh = (size_t)lay->n_heads;
    a->sketch_off[0] = 0;
    for (int m = 0; m < AV_CM_COUNT; m++)
        a->sketch_off[m + 1] = a->sketch_off[m] + av_sketch_buckets(av_cm_range((av_cm)m));
    a->sketch_len = a->sketch_off[AV_CM_COUNT];
    a->metric = calloc(nh * AV_CM_COUNT, sizeof *a->metric);
    a->sketch = calloc(nh * (size_t)a->sketch_len, sizeof *a->sketch);
    a->pos = calloc(nh * AV_POS_BINS, sizeof *a->pos);
    a->pos_n = calloc(nh, sizeof *a->pos_n);
    a->votes = calloc(nh * (AV_ROLE_COUNT + 1), sizeof *a->votes);
    a->top = malloc(sizeof *a->top * nh * AV_ROLE_COUNT * (size_t)a->top_k);
    if (!a->metric || !a->sketch || !a->pos || !a->pos_n || !a->votes || !a->top) {
        av_corpus_acc_free(a);
        return av_errf(err, "out of memory for the statistics of %d heads", lay->n_heads);
    }
    for (size_t i = 0; i < nh * AV_ROLE_COUNT * (size_t)a->top_k; i++)
        a->top[i] = (av_corpus_top){0, -1};
    a->layout = *lay;
    a->ready = 1;
    return 0;
}

static int acc_match(av_corpus_acc *a, const av_corpus_layout *lay, av_err *err) {
    if (!a->ready) return av_corpus_acc_alloc(a, lay, err);
    if (!av_corpus_layout_equal(&a->layout, lay))
        return av_errf(err, "inputs disagree on the model's attention layout (%d heads vs %d)",
                       a->layout.n_heads, lay->n_heads);
    return 0;
}

/* ---- top examples ---- */

static int top_before(const av_corpus_top *x, const av_corpus_top *y) {
    if (y->line < 0) return x->line >= 0;
    if (x->line < 0) return 0;
    return x->score > y->score || (x->score == y->score && x->line < y->line);
}

static void top_insert(av_corpus_top *list, int k, av_corpus_top e) {
    if (isnan(e.score) || !top_before(&e, &list[k - 1])) return;
    int i = k - 1;
    while (i > 0 && top_before(&e, &list[i - 1])) {
        list[i] = list[i - 1];
        i--;
    }
    list[i] = e;
}

/* ---- labels ---- */

/* Index of label in a->labels, inserted (sorted) when absent; -1 when out of memory. */
static int label_slot(av_corpus_acc *a, const char *label) {
    int lo = 0, hi = a->n_labels;
    while (lo < hi) {
        int mid = (lo + hi) / 2, c = strcmp(a->labels[mid].label, label);
        if (c == 0) return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    av_corpus_label *grown = realloc(a->labels, sizeof *grown * (size_t)(a->n_labels + 1));
    if (!grown) return -1;
    a->labels = grown;
    av_corpus_label e = {av_strdup(label), calloc((size_t)a->layout.n_heads, sizeof(av_moments))};
    if (!e.label || !e.m) {
        free(e.label);
        free(e.m);
        return -1;
    }
    memmove(a->labels + lo + 1, a->labels + lo, sizeof *a->labels * (size_t)(a->n_labels - lo));
    a->labels[lo] = e;
    a->n_labels++;
    return lo;
}

/* ---- adding an example ---- */

/* The example's role vote for one head: only when every score the head's group can have is defined. */
static void vote(av_corpus_acc *a, int h, const double *m, int positional) {
    av_head_roles r;
    for (int k = 0; k < AV_ROLE_COUNT; k++) {
        r.score[k] = m[av_cm_of_role((av_role)k)];
        int needed = positional || k == AV_ROLE_FIRST || k == AV_ROLE_BROAD;
        if (needed && isnan(r.score[k])) return;
    }
    av_roles_pick(&r);
    a->votes[(size_t)h * (AV_ROLE_COUNT + 1) + (r.best == AV_ROLE_NONE ? AV_ROLE_COUNT : (int)r.best)]++;
}

static void add_head(av_corpus_acc *a, const av_corpus_example *ex, int h, int positional) {
    const double *m = ex->metric + (size_t)h * AV_CM_COUNT;
    uint64_t *sk = a->sketch + (size_t)h * (size_t)a->sketch_len;
    for (int k = 0; k < AV_CM_COUNT; k++) {
        av_moments_add(&a->metric[(size_t)h * AV_CM_COUNT + k], m[k]);
        if (isnan(m[k])) continue;
        av_sketch_range r = av_cm_range((av_cm)k);
        sk[a->sketch_off[k] + av_sketch_index(r, a->sketch_off[k + 1] - a->sketch_off[k], m[k])]++;
    }
    const double *pos = ex->pos + (size_t)h * AV_POS_BINS;
    if (!isnan(pos[0])) {
        for (int b = 0; b < AV_POS_BINS; b++)
            a->pos[(size_t)h * AV_POS_BINS + b] += av_fx_from(pos[b]);
        a->pos_n[h]++;
    }
    for (int r = 0; r < AV_ROLE_COUNT; r++)
        top_insert(a->top + ((size_t)h * AV_ROLE_COUNT + r) * (size_t)a->top_k, a->top_k,
                   (av_corpus_top){m[av_cm_of_role((av_role)r)], ex->line});
    vote(a, h, m, positional);
}

int av_corpus_acc_add(av_corpus_acc *a, const av_corpus_example *ex, av_err *err) {
    if (acc_match(a, &ex->layout, err)) return -1;
    int h = 0;
    for (int g = 0; g < a->layout.n_groups; g++)
        for (int k = 0; k < a->layout.groups[g].n_layers * a->layout.groups[g].n_heads; k++, h++)
            add_head(a, ex, h, a->layout.groups[g].positional);
    for (int l = 0; l < ex->n_labels; l++) {
        int s = label_slot(a, ex->labels[l]);
        if (s < 0) return av_errf(err, "out of memory");
        for (h = 0; h < a->layout.n_heads; h++)
            av_moments_add(&a->labels[s].m[h], ex->label_pos[(size_t)l * a->layout.n_heads + h]);
    }
    a->n_examples++;
    a->n_tokens += (uint64_t)ex->n_tokens;
    if (ex->n_tokens > a->max_tokens) a->max_tokens = ex->n_tokens;
    return 0;
}

/* ---- bad lines ---- */

void av_corpus_acc_bad(av_corpus_acc *a, av_bad reason, int64_t line, const char *msg) {
    a->bad[reason]++;
    int64_t *v = a->bad_lines[reason];
    int n = a->n_bad_lines[reason];
    if (n == AV_BAD_KEEP && line >= v[n - 1]) goto message;
    int i = n < AV_BAD_KEEP ? n : n - 1;
    while (i > 0 && v[i - 1] > line) {
        v[i] = v[i - 1];
        i--;
    }
    v[i] = line;
    if (n < AV_BAD_KEEP) a->n_bad_lines[reason]++;
message:
    if (reason == AV_BAD_ERROR && msg && (a->error_line < 0 || line < a->error_line)) {
        a->error_line = line;
        snprintf(a->error_msg, sizeof a->error_msg, "%s", msg);
    }
}

/* ---- merging ---- */

static int merge_labels(av_corpus_acc *dst, const av_corpus_acc *src, av_err *err) {
    for (int l = 0; l < src->n_labels; l++) {
        int s = label_slot(dst, src->labels[l].label);
        if (s < 0) return av_errf(err, "out of memory");
        for (int h = 0; h < dst->layout.n_heads; h++)
            av_moments_merge(&dst->labels[s].m[h], &src->labels[l].m[h]);
    }
    return 0;
}

int av_corpus_acc_merge(av_corpus_acc *dst, const av_corpus_acc *src, av_err *err) {
    if (src->top_k != dst->top_k) return av_errf(err, "cannot merge statistics kept with different --top");
    for (int r = 0; r < AV_BAD_COUNT; r++) {
        uint64_t extra = src->bad[r] - (uint64_t)src->n_bad_lines[r]; /* counted, line numbers not kept */
        for (int i = 0; i < src->n_bad_lines[r]; i++)
            av_corpus_acc_bad(dst, (av_bad)r, src->bad_lines[r][i], NULL);
        dst->bad[r] += extra;
    }
    if (src->error_line >= 0 && (dst->error_line < 0 || src->error_line < dst->error_line)) {
        dst->error_line = src->error_line;
        memcpy(dst->error_msg, src->error_msg, sizeof dst->error_msg);
    }
    if (!src->ready) return 0;
    if (acc_match(dst, &src->layout, err)) return -1;
    size_t nh = (size_t)dst->layout.n_heads;
    for (size_t i = 0; i < nh * AV_CM_COUNT; i++)
        av_moments_merge(&dst->metric[i], &src->metric[i]);
    for (size_t i = 0; i < nh * (size_t)dst->sketch_len; i++)
        dst->sketch[i] += src->sketch[i];
    for (size_t i = 0; i < nh * AV_POS_BINS; i++)
        dst->pos[i] += src->pos[i];
    for (size_t i = 0; i < nh; i++)
        dst->pos_n[i] += src->pos_n[i];
    for (size_t i = 0; i < nh * (AV_ROLE_COUNT + 1); i++)
        dst->votes[i] += src->votes[i];
    for (size_t list = 0; list < nh * AV_ROLE_COUNT; list++)
        for (int i = 0; i < src->top_k; i++)
            top_insert(dst->top + list * (size_t)dst->top_k, dst->top_k,
                       src->top[list * (size_t)src->top_k + i]);
    dst->n_examples += src->n_examples;
    dst->n_tokens += src->n_tokens;
    if (src->max_tokens > dst->max_tokens) dst->max_tokens = src->max_tokens;
    return merge_labels(dst, src, err);
}

/* ---- roles ---- */

void av_corpus_acc_role(const av_corpus_acc *a, int h, av_corpus_role *out) {
    memset(out, 0, sizeof *out);
    int g, layer, head;
    av_corpus_head_at(&a->layout, h, &g, &layer, &head);
    out->roles.layer = layer;
    out->roles.head = head;
    const av_moments *m = a->metric + (size_t)h * AV_CM_COUNT;
    for (int r = 0; r < AV_ROLE_COUNT; r++)
        out->roles.score[r] = av_moments_mean(&m[av_cm_of_role((av_role)r)]);
    av_roles_pick(&out->roles);
    const uint64_t *v = a->votes + (size_t)h * (AV_ROLE_COUNT + 1);
    uint64_t total = 0;
    for (int r = 0; r <= AV_ROLE_COUNT; r++)
        total += v[r];
    int slot = out->roles.best == AV_ROLE_NONE ? AV_ROLE_COUNT : (int)out->roles.best;
    out->confidence = total ? (double)v[slot] / (double)total : NAN;
    out->ci95 = NAN;
    if (isnan(out->roles.best_score)) return;
    int best = 0; /* the best-scoring role, also when below AV_ROLE_MIN_SCORE */
    for (int r = 1; r < AV_ROLE_COUNT; r++)
        if (!isnan(out->roles.score[r]) &&
            (isnan(out->roles.score[best]) || out->roles.score[r] > out->roles.score[best]))
            best = r;
    const av_moments *bm = &m[av_cm_of_role((av_role)best)];
    if (bm->n >= 2) out->ci95 = 1.96 * av_moments_sd(bm) / sqrt((double)bm->n);
}
