/* Writing a corpus report from merged statistics: the texts of the top examples, their traces on request
 * (run again, saved with an offline viewer page each), the query/key projections, then corpus.json, the CSV
 * tables, the figures and index.html. */
#include "render/corpus_render.h"
#include "render/plot.h"

#include <stdlib.h>
#include <string.h>

static void free_refs(av_corpus_ref *refs, int n) {
    for (int i = 0; refs && i < n; i++) {
        free(refs[i].text);
        free(refs[i].trace);
    }
    free(refs);
}

/* Texts of every top example (cut to AV_CORPUS_TEXT_MAX bytes at a character boundary). */
static int load_refs(const av_corpus_job *job, const av_corpus_acc *acc, av_corpus_ref **out, int *n,
                     av_err *err) {
    int64_t *lines;
    if (av_corpus_top_lines(acc, &lines, n, err)) return -1;
    av_corpus_ref *refs = calloc((size_t)(*n ? *n : 1), sizeof *refs);
    if (!refs) {
        free(lines);
        return av_errf(err, "out of memory");
    }
    for (int i = 0; i < *n; i++) {
        refs[i].line = lines[i];
        char *text = av_corpus_read_text(job->input, lines[i], job->field, err);
        if (!text) {
            free(lines);
            free_refs(refs, *n);
            return av_err_prefix(err, "reading the top examples");
        }
        size_t len = strlen(text);
        if (len > AV_CORPUS_TEXT_MAX) {
            len = av_utf8_valid_prefix(text, AV_CORPUS_TEXT_MAX); /* never inside a character */
            memcpy(text + len, "\xE2\x80\xA6", 4); /* fits: the text had more than len + 3 bytes */
        }
        refs[i].text = text;
    }
    free(lines);
    *out = refs;
    return 0;
}

static av_corpus_ref *find_ref(av_corpus_ref *refs, int n, int64_t line) {
    for (int i = 0; i < n; i++)
        if (refs[i].line == line) return &refs[i];
    return NULL;
}

/* traces/line-<n>.safetensors and .html for each head's best examples of its role. */
static int save_traces(const av_corpus_job *job, const av_corpus_acc *acc, const char *dir, int per_head,
                       av_corpus_ref *refs, int n_refs, av_err *err) {
    int64_t *lines;
    int n;
    char path[4096];
    snprintf(path, sizeof path, "%s/traces", dir);
    if (av_corpus_mkdir(path, err) || av_corpus_trace_lines(acc, per_head, &lines, &n, err)) return -1;
    int rc = 0;
    for (int i = 0; !rc && i < n; i++) {
        av_trace *t;
        if (av_corpus_rerun_line(job, lines[i], &t, err)) {
            rc = av_err_prefix(err, "saving the trace of line %lld", (long long)lines[i]);
            break;
        }
        av_html_params hp = av_html_default_params();
        snprintf(path, sizeof path, "%s/traces/line-%lld.safetensors", dir, (long long)lines[i]);
        rc = av_trace_save(t, path, err);
        snprintf(path, sizeof path, "%s/traces/line-%lld.html", dir, (long long)lines[i]);
        if (!rc) rc = av_html_write(t, &hp, path, NULL, err);
        av_trace_free(t);
        av_corpus_ref *ref = find_ref(refs, n_refs, lines[i]);
        snprintf(path, sizeof path, "traces/line-%lld.html", (long long)lines[i]);
        if (!rc && ref && !(ref->trace = av_strdup(path))) rc = av_errf(err, "out of memory");
    }
    free(lines);
    return rc;
}

static int write_json(const json_t *o, const char *dir, const char *name, av_err *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *s = json_dumps(o, JSON_INDENT(1) | JSON_REAL_PRECISION(17));
    if (!s) return av_errf(err, "%s: out of memory", path);
    size_t n = strlen(s);
    s[n] = '\n'; /* the terminating NUL becomes the final newline */
    int rc = av_file_write_atomic(path, s, n + 1, err);
    free(s);
    return rc;
}

int av_corpus_write(const av_corpus_job *job, const av_corpus_acc *acc, const av_corpus_qk *qk,
                    const av_corpus_output *o, av_err *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/figures", o->dir);
    av_corpus_qk_map map = {0};
    av_corpus_report r = {.acc = acc,
                          .input = job->input,
                          .field = job->field,
                          .target_field = job->target_field,
                          .model_path = o->model_path,
                          .model = job->model,
                          .add_bos = o->add_bos,
                          .steps = o->steps};
    json_t *j = NULL;
    int rc = -1;
    if (av_corpus_mkdir(path, err) || load_refs(job, acc, &r.refs, &r.n_refs, err)) goto done;
    if (o->save_traces > 0 && save_traces(job, acc, o->dir, o->save_traces, r.refs, r.n_refs, err)) goto done;
    if (qk && qk->n >= 2) {
        av_tsne_params tp = o->tsne; /* a small sample lowers the perplexity to what it can support */
        if (tp.perplexity * 3 > qk->n - 1) tp.perplexity = (qk->n - 1) / 3.0;
        int tsne = tp.n_iter > 0 && tp.perplexity >= 2;
        if (av_corpus_qk_project(qk, tsne ? &tp : NULL, &map, err)) goto done;
        r.qk = qk;
        r.map = &map;
    }
    if (!(j = av_corpus_report_json(&r))) {
        av_errf(err, "out of memory building the report");
        goto done;
    }
    snprintf(path, sizeof path, "%s/index.html", o->dir);
    rc = write_json(j, o->dir, "corpus.json", err) || av_corpus_report_csv(&r, o->dir, err) ||
                 av_corpus_report_figures(&r, o->dir, err) || av_corpus_report_html(j, path, err)
             ? -1
             : 0;
done:
    json_decref(j);
    av_corpus_qk_map_free(&map);
    free_refs(r.refs, r.n_refs);
    return rc;
}
