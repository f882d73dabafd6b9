/* Row-split threading: thread i of n gets one contiguous range. No pool, no global state: threads are
 * started per call, which costs tens of microseconds and is only used for work far larger than that. */
#include "core.h"

#include <pthread.h>
#include <unistd.h>

typedef struct range_job {
    av_range_fn fn;
    void *ctx;
    int tid;
    int64_t start, end;
} range_job;

static void *run_range(void *arg) {
    range_job *j = arg;
    j->fn(j->ctx, j->tid, j->start, j->end);
    return NULL;
}

int av_default_threads(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > 64 ? 64 : (int)n);
}

void av_parallel_for(int n_threads, int64_t n, av_range_fn fn, void *ctx) {
    if (n <= 0) return;
    if (n_threads <= 0) n_threads = av_default_threads();
    if (n_threads > 64) n_threads = 64;
    if (n_threads > n) n_threads = (int)n;
    if (n_threads <= 1) {
        fn(ctx, 0, 0, n);
        return;
    }
    pthread_t tids[64];
    range_job jobs[64];
    int started[64] = {0};
    for (int i = 0; i < n_threads; i++) {
        jobs[i] = (range_job){fn, ctx, i, n * i / n_threads, n * (i + 1) / n_threads};
    }
    for (int i = 1; i < n_threads; i++)
        started[i] = pthread_create(&tids[i], NULL, run_range, &jobs[i]) == 0;
    run_range(&jobs[0]);
    for (int i = 1; i < n_threads; i++) {
        if (started[i])
            pthread_join(tids[i], NULL);
        else
            run_range(&jobs[i]); /* thread creation failed: do the work here */
    }
}
