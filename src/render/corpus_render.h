/* The corpus report's pictures and page, and the writer of a whole report (docs/CORPUS.md). */
#ifndef AV_CORPUS_RENDER_H
#define AV_CORPUS_RENDER_H

#include "analysis/corpus_report.h"

/* The PNG figures under dir/figures/ (corpus_figures.c). */
int av_corpus_report_figures(const av_corpus_report *r, const char *dir, av_err *err);
/* index.html: the page with data (the corpus.json object) inline (corpus_html.c). */
int av_corpus_report_html(const json_t *data, const char *path, av_err *err);

typedef struct av_corpus_output {
    const char *dir;        /* exists; figures/ and traces/ are created inside */
    const char *model_path; /* as given on the command line (recorded in corpus.json) */
    int add_bos, steps;     /* how inputs were run (recorded in corpus.json) */
    int save_traces;        /* > 0: save the traces of each head's n best examples of its role */
    av_tsne_params tsne;    /* n_iter 0: no t-SNE */
} av_corpus_output;

/* The whole report of merged statistics (qk may be NULL): texts of the top examples, saved traces (run again
 * through job's runner), projections, corpus.json, CSV, figures, index.html (corpus_write.c). */
int av_corpus_write(const av_corpus_job *job, const av_corpus_acc *acc, const av_corpus_qk *qk,
                    const av_corpus_output *o, av_err *err);

#endif /* AV_CORPUS_RENDER_H */
