/* The corpus report's data (docs/CORPUS.md): corpus.json (everything, deterministic: runs that split the same
 * input differently write identical files) and the CSV tables. The figures, the page and the writer of a
 * whole report are render/'s (render/corpus_render.h). */
#ifndef AV_CORPUS_REPORT_H
#define AV_CORPUS_REPORT_H

#include "corpus_run.h"

#include <jansson.h>

#define AV_CORPUS_FORMAT "attnviz-corpus"
#define AV_CORPUS_FORMAT_VERSION "1"
#define AV_CORPUS_TEXT_MAX 400 /* bytes of an example's text kept in the report */

/* 2-D maps of a query/key sample (corpus_report.c). */
typedef struct av_corpus_qk_map {
    int n, dim;
    double *pca; /* (n, 2) */
    double pca_var[2];
    double *tsne; /* (n, 2), or NULL when not computed */
    av_tsne_params tsne_params;
} av_corpus_qk_map;

/* Normalizes the sampled vectors (av_qk_normalize), projects them with PCA and, when tsne, with t-SNE. */
int av_corpus_qk_project(const av_corpus_qk *qk, const av_tsne_params *tsne, av_corpus_qk_map *out,
                         av_err *err);
void av_corpus_qk_map_free(av_corpus_qk_map *m);

/* An input referenced by the report (a top example): its text and, when saved, its trace page. */
typedef struct av_corpus_ref {
    int64_t line;
    char *text;  /* cut to AV_CORPUS_TEXT_MAX bytes (at a character boundary) */
    char *trace; /* "traces/line-<n>.html" relative to the report, or NULL */
} av_corpus_ref;

typedef struct av_corpus_report {
    const av_corpus_acc *acc;
    const av_corpus_qk *qk;      /* NULL: no query/key map */
    const av_corpus_qk_map *map; /* with qk */
    const av_corpus_input *input;
    const char *field, *target_field, *model_path;
    const av_model *model;
    int add_bos, steps;
    av_corpus_ref *refs; /* (n_refs) sorted by line */
    int n_refs;
} av_corpus_report;

/* Every line in some head's top list, sorted and unique (*lines malloc'd). */
int av_corpus_top_lines(const av_corpus_acc *acc, int64_t **lines, int *n, av_err *err);
/* The lines whose traces --save-traces N keeps: each head's n best examples of its corpus role. */
int av_corpus_trace_lines(const av_corpus_acc *acc, int n_per_head, int64_t **lines, int *n, av_err *err);

json_t *av_corpus_report_json(const av_corpus_report *r);
/* heads.csv, quantiles.csv, positions.csv, special.csv, top.csv, skipped.csv, qk.csv (+ qk_vectors.npy) */
int av_corpus_report_csv(const av_corpus_report *r, const char *dir, av_err *err);
/* mkdir that accepts an existing directory. */
int av_corpus_mkdir(const char *path, av_err *err);

#endif /* AV_CORPUS_REPORT_H */
