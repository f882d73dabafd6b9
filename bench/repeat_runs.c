/* Times repeated runs of one loaded model through the API, as the server, `attnviz corpus` and the role
 * probes make them: the model is loaded once, then `runs` traces of the first `tokens` ids of an ids file (a
 * JSON list, as bench/run.sh writes) are captured in memory, one after another. Prints one JSON object: the
 * load time and every run's seconds (the first run pays for what a model computes once, e.g. the value norms'
 * Gram matrices). Usage: repeat_runs MODEL IDS.json TOKENS [runs] [threads]. Built (after `make`) as
 * bench/long_context.sh builds long_read.c, with the Makefile's LIBS:
 *   cc -O2 -std=c11 -D_DEFAULT_SOURCE -Iinclude bench/repeat_runs.c build/libattnviz.a $LIBS -o repeat_runs
 */
#include "attnviz.h"

#include <stdio.h>
#include <stdlib.h>

/* Up to max ids of a JSON list of integers; the count read. */
static int read_ids(const char *path, int32_t *ids, int max) {
    FILE *f = fopen(path, "r");
    int n = 0, c;
    long v;
    if (!f) return 0;
    while (n < max && (c = fgetc(f)) != EOF)
        if (c >= '0' && c <= '9') {
            ungetc(c, f);
            if (fscanf(f, "%ld", &v) != 1) break;
            ids[n++] = (int32_t)v;
        }
    fclose(f);
    return n;
}

int main(int argc, char **argv) {
    if (argc < 4) return fprintf(stderr, "usage: repeat_runs MODEL IDS.json TOKENS [runs] [threads]\n"), 2;
    int tokens = atoi(argv[3]), runs = argc > 4 ? atoi(argv[4]) : 5, threads = argc > 5 ? atoi(argv[5]) : 0;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)(tokens > 0 ? tokens : 1));
    if (!ids || tokens < 1 || read_ids(argv[2], ids, tokens) != tokens)
        return fprintf(stderr, "repeat_runs: %s holds fewer than %d ids\n", argv[2], tokens), 1;
    av_err err = {{0}};
    av_model *m = NULL;
    double t0 = av_seconds();
    if (av_model_load(argv[1], NULL, &m, &err)) return fprintf(stderr, "repeat_runs: %s\n", err.msg), 1;
    printf("{\"tokens\": %d, \"threads\": %d, \"load_s\": %.3f, \"runs_s\": [", tokens, threads,
           av_seconds() - t0);
    av_run_params rp = av_run_default_params();
    rp.add_bos = 0, rp.n_threads = threads;
    for (int r = 0; r < runs; r++) {
        av_trace *t = NULL;
        t0 = av_seconds();
        if (av_trace_from_ids(m, ids, (size_t)tokens, &rp, &t, &err))
            return fprintf(stderr, "repeat_runs: %s\n", err.msg), 1;
        printf("%s%.4f", r ? ", " : "", av_seconds() - t0);
        fflush(stdout);
        av_trace_free(t);
    }
    printf("]}\n");
    av_model_free(m);
    free(ids);
    return 0;
}
