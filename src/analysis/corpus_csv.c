/* The corpus report's tables: one CSV file per table (RFC 4180 quoting, empty cells for values that do not
 * apply), and the sampled query/key vectors as safetensors for numpy users. */
#include "corpus_report.h"
#include "io/io.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void csv_num(av_buf *b, double x) {
    if (isnan(x) || isinf(x))
        av_buf_put(b, ",", 1);
    else
        av_buf_printf(b, ",%.9g", x);
}

static void csv_str(av_buf *b, const char *s, int first) {
    if (!first) av_buf_put(b, ",", 1);
    if (!strpbrk(s, ",\"\r\n")) {
        av_buf_put(b, s, strlen(s));
        return;
    }
    av_buf_put(b, "\"", 1);
    for (; *s; s++) {
        if (*s == '"')
            av_buf_put(b, "\"\"", 2);
        else
            av_buf_put(b, s, 1);
    }
    av_buf_put(b, "\"", 1);
}

static int write_buf(const char *dir, const char *name, av_buf *b, av_err *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int rc = b->oom ? av_errf(err, "out of memory writing %s", path)
                    : av_file_write_atomic(path, b->s ? b->s : "", b->n, err);
    free(b->s);
    memset(b, 0, sizeof *b);
    return rc;
}

/* "kind,layer,head" of head h. */
static void head_cells(av_buf *b, const av_corpus_acc *a, int h) {
    int g, layer, head;
    av_corpus_head_at(&a->layout, h, &g, &layer, &head);
    av_buf_printf(b, "%s,%d,%d", av_attn_kind_name(a->layout.groups[g].kind), layer, head);
}

static int heads_csv(const av_corpus_acc *a, const char *dir, av_err *err) {
    av_buf b = {0};
    av_buf_printf(&b, "kind,layer,head,role,role_score,confidence,ci95,examples");
    for (int m = 0; m < AV_CM_COUNT; m++)
        av_buf_printf(&b, ",%s", av_cm_name((av_cm)m));
    av_buf_put(&b, "\n", 1);
    for (int h = 0; h < a->layout.n_heads; h++) {
        av_corpus_role cr;
        av_corpus_acc_role(a, h, &cr);
        head_cells(&b, a, h);
        av_buf_printf(&b, ",%s", av_role_name(cr.roles.best));
        csv_num(&b, cr.roles.best_score);
        csv_num(&b, cr.confidence);
        csv_num(&b, cr.ci95);
        av_buf_printf(&b, ",%llu", (unsigned long long)a->metric[(size_t)h * AV_CM_COUNT].n);
        for (int m = 0; m < AV_CM_COUNT; m++)
            csv_num(&b, av_moments_mean(&a->metric[(size_t)h * AV_CM_COUNT + m]));
        av_buf_put(&b, "\n", 1);
    }
    return write_buf(dir, "heads.csv", &b, err);
}

static int quantiles_csv(const av_corpus_acc *a, const char *dir, av_err *err) {
    av_buf b = {0};
    av_buf_printf(&b, "kind,layer,head,metric,n,mean,sd");
    for (int k = 0; k < AV_SKETCH_QUANTILES; k++)
        av_buf_printf(&b, ",p%d", 100 * k / (AV_SKETCH_QUANTILES - 1));
    av_buf_put(&b, "\n", 1);
    for (int h = 0; h < a->layout.n_heads; h++)
        for (int m = 0; m < AV_CM_COUNT; m++) {
            const av_moments *mo = &a->metric[(size_t)h * AV_CM_COUNT + m];
            const uint64_t *sk = a->sketch + (size_t)h * (size_t)a->sketch_len + a->sketch_off[m];
            head_cells(&b, a, h);
            av_buf_printf(&b, ",%s,%llu", av_cm_name((av_cm)m), (unsigned long long)mo->n);
            csv_num(&b, av_moments_mean(mo));
            csv_num(&b, av_moments_sd(mo));
            for (int k = 0; k < AV_SKETCH_QUANTILES; k++)
                csv_num(&b,
                        av_sketch_quantile(av_cm_range((av_cm)m), sk, a->sketch_off[m + 1] - a->sketch_off[m],
                                           (double)k / (AV_SKETCH_QUANTILES - 1)));
            av_buf_put(&b, "\n", 1);
        }
    return write_buf(dir, "quantiles.csv", &b, err);
}

static int positions_csv(const av_corpus_acc *a, const char *dir, av_err *err) {
    av_buf b = {0};
    av_buf_printf(&b, "kind,layer,head,offset_lo,offset_hi,mass\n");
    int64_t reach = a->max_tokens > 0 ? a->max_tokens - 1 : 0;
    for (int h = 0; h < a->layout.n_heads; h++) {
        if (!a->pos_n[h]) continue;
        for (int bin = 0; bin < AV_POS_BINS; bin++) {
            int64_t lo, hi;
            av_pos_bin_range(bin, &lo, &hi);
            if ((lo >= 0 ? lo : -hi) > reach) continue;
            head_cells(&b, a, h);
            av_buf_printf(&b, lo == INT64_MIN ? ",-inf" : ",%lld", (long long)lo);
            av_buf_printf(&b, hi == INT64_MAX ? ",inf" : ",%lld", (long long)hi);
            csv_num(&b, av_fx_to_double(a->pos[(size_t)h * AV_POS_BINS + bin]) / (double)a->pos_n[h]);
            av_buf_put(&b, "\n", 1);
        }
    }
    return write_buf(dir, "positions.csv", &b, err);
}

static int special_csv(const av_corpus_acc *a, const char *dir, av_err *err) {
    av_buf b = {0};
    av_buf_printf(&b, "kind,layer,head,label,examples,mass\n");
    for (int l = 0; l < a->n_labels; l++)
        for (int h = 0; h < a->layout.n_heads; h++) {
            const av_moments *mo = &a->labels[l].m[h];
            if (!mo->n) continue;
            head_cells(&b, a, h);
            csv_str(&b, a->labels[l].label, 0);
            av_buf_printf(&b, ",%llu", (unsigned long long)mo->n);
            csv_num(&b, av_moments_mean(mo));
            av_buf_put(&b, "\n", 1);
        }
    return write_buf(dir, "special.csv", &b, err);
}

static int top_csv(const av_corpus_acc *a, const char *dir, av_err *err) {
    av_buf b = {0};
    av_buf_printf(&b, "kind,layer,head,role,rank,line,score\n");
    for (int h = 0; h < a->layout.n_heads; h++)
        for (int r = 0; r < AV_ROLE_COUNT; r++) {
            const av_corpus_top *t = a->top + ((size_t)h * AV_ROLE_COUNT + r) * (size_t)a->top_k;
            for (int i = 0; i < a->top_k && t[i].line >= 0; i++) {
                head_cells(&b, a, h);
                av_buf_printf(&b, ",%s,%d,%lld", av_role_name((av_role)r), i + 1, (long long)t[i].line);
                csv_num(&b, t[i].score);
                av_buf_put(&b, "\n", 1);
            }
        }
    return write_buf(dir, "top.csv", &b, err);
}

static int skipped_csv(const av_corpus_acc *a, const char *dir, av_err *err) {
    av_buf b = {0};
    av_buf_printf(&b, "reason,line\n");
    for (int r = 0; r < AV_BAD_COUNT; r++)
        for (int i = 0; i < a->n_bad_lines[r]; i++)
            av_buf_printf(&b, "%s,%lld\n", av_bad_name((av_bad)r), (long long)a->bad_lines[r][i]);
    return write_buf(dir, "skipped.csv", &b, err);
}

static int qk_files(const av_corpus_qk *qk, const av_corpus_qk_map *map, const char *dir, av_err *err) {
    av_buf b = {0};
    av_buf_printf(&b, "type,line,pos,n_tokens,token,pca_x,pca_y,tsne_x,tsne_y\n");
    float *vec =
        malloc(sizeof *vec * (size_t)(qk->n ? qk->n : 1) * (size_t)(qk->dim ? qk->dim : 1)); /* (n, dim) */
    int32_t *side = malloc(sizeof *side * (size_t)(qk->n ? qk->n : 1));                      /* (n) */
    if (!vec || !side) {
        free(vec);
        free(side);
        return av_errf(err, "out of memory");
    }
    for (int i = 0; i < qk->n; i++) {
        const av_qk_point *p = &qk->pts[i];
        av_buf_printf(&b, "%s,%lld,%d,%d", p->is_key ? "key" : "query", (long long)p->line, p->pos,
                      p->n_tokens);
        csv_str(&b, p->label, 0);
        csv_num(&b, map->pca[2 * i]);
        csv_num(&b, map->pca[2 * i + 1]);
        csv_num(&b, map->tsne ? map->tsne[2 * i] : NAN);
        csv_num(&b, map->tsne ? map->tsne[2 * i + 1] : NAN);
        av_buf_put(&b, "\n", 1);
        memcpy(vec + (size_t)i * qk->dim, p->vec, sizeof *vec * (size_t)qk->dim);
        side[i] = p->is_key;
    }
    int rc = write_buf(dir, "qk.csv", &b, err);
    char path[4096];
    snprintf(path, sizeof path, "%s/qk_vectors.safetensors", dir);
    av_st_writer w;
    av_st_writer_init(&w);
    int64_t shape[2] = {qk->n, qk->dim};
    if (!rc)
        rc = av_st_writer_meta(&w, "about",
                               "sampled query/key vectors (rows of qk.csv), before normalization", err) ||
             av_st_writer_add(&w, "vectors", AV_DTYPE_F32, AV_DTYPE_F32, 2, shape, vec, err) ||
             av_st_writer_add(&w, "is_key", AV_DTYPE_I32, AV_DTYPE_I32, 1, shape, side, err) ||
             av_st_writer_save(&w, path, err);
    av_st_writer_free(&w);
    free(vec);
    free(side);
    return rc ? -1 : 0;
}

int av_corpus_report_csv(const av_corpus_report *r, const char *dir, av_err *err) {
    const av_corpus_acc *a = r->acc;
    if (skipped_csv(a, dir, err)) return -1;
    if (a->ready && (heads_csv(a, dir, err) || quantiles_csv(a, dir, err) || positions_csv(a, dir, err) ||
                     special_csv(a, dir, err) || top_csv(a, dir, err)))
        return -1;
    if (r->qk && r->map && qk_files(r->qk, r->map, dir, err)) return -1;
    return 0;
}
