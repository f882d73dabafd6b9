/* Row-split threading: av_parallel_for gives thread i of t the contiguous range [n*i/t, n*(i+1)/t); the
 * caller runs range 0 itself and returns when every range is done.
 *
 * The threads come from one persistent pool: workers are started on first use (at most AV_POOL_MAX, with the
 * asynchronous signals blocked so that sigwait-based shutdown keeps them), parked between calls and woken
 * per call. Token-by-token generation of the 1.1 B model makes ~90 threaded calls per token, each well under
 * a millisecond, where starting and joining threads per call cost a visible share (docs/BENCHMARKS.md). A
 * parked worker polls for its next job for a while (at most POOL_SPIN_NS, less when polling keeps failing:
 * spin_until), then sleeps on its condition variable, so an idle pool burns no CPU and a loaded machine
 * does not lose a core to polling; the caller waits for the workers the same way.
 *
 * One caller owns the pool at a time (a try-lock). A caller that cannot take it - another thread's call is
 * running, or a range function itself calls av_parallel_for - starts and joins threads of its own for the
 * call. A range whose thread cannot be started (pool worker or own thread) runs on the caller, and so does a
 * range whose worker has not taken it by the time the caller is done with its own: on a busy machine a woken
 * worker may wait milliseconds for a core, and the caller would only wait for it. Whatever the path, every
 * range runs exactly once with the same tid and bounds, so results never depend on it. After fork()
 * the child starts a fresh pool (pthread_atfork); a range function must not fork. At exit (or dlclose of
 * libattnviz.so) a destructor takes the pool and joins its parked workers, unless a call is still running
 * (exit from inside a range function): then it leaves them rather than wait. ATTNVIZ_POOL=0 in the
 * environment turns the pool off (every call starts its own threads): for comparisons on one binary. */
#include "core.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define AV_POOL_MAX 63         /* workers: ranges 1..63 of a 64-thread call */
#define POOL_SPIN_NS 50000     /* the longest a parked worker or a waiting caller polls before sleeping */
#define POOL_SPIN_MIN_NS 10000 /* the shortest (spin_until) */

typedef struct pool_worker {
    pthread_t thread;
    pthread_mutex_t mu; /* with cv: the worker sleeps here when no job came within POOL_SPIN_NS */
    pthread_cond_t cv;
    atomic_uint seq;     /* bumped by the pool's owner for each call this worker takes part in */
    atomic_ullong claim; /* 2 * seq of the latest call, + 1 once its range is taken (worker or owner) */
    atomic_int spin_ns;  /* the worker's polling budget (spin_until) */
} pool_worker;

static struct {
    atomic_int owned; /* 1 while one caller (or the exit destructor) owns the pool: the try-lock */
    int n_workers;    /* started so far; only the owner reads or changes it */
    atomic_int quit;  /* set by the destructor: posted workers return */
    /* the current call, written by the owner before any worker's seq is bumped */
    av_range_fn fn;
    void *ctx;
    int64_t n;
    int t;
    atomic_int remaining; /* ranges handed to workers and not yet done (by whoever took them) */
    pthread_mutex_t done_mu;
    pthread_cond_t done_cv; /* the last worker of a call signals the owner here */
    atomic_int spin_ns;     /* the owner's polling budget while it waits for the workers */
    pool_worker w[AV_POOL_MAX];
} pool = {.done_mu = PTHREAD_MUTEX_INITIALIZER, .done_cv = PTHREAD_COND_INITIALIZER, .spin_ns = POOL_SPIN_NS};

static pthread_once_t pool_once = PTHREAD_ONCE_INIT, env_once = PTHREAD_ONCE_INIT;
static int pool_off; /* ATTNVIZ_POOL=0: every call starts threads of its own (as before the pool) */

static void read_env(void) {
    const char *e = getenv("ATTNVIZ_POOL");
    pool_off = e && strcmp(e, "0") == 0;
}

int av_pool_poll_budget_ns(void) { return pool.n_workers > 0 ? atomic_load(&pool.w[0].spin_ns) : 0; }

int av_default_threads(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > 64 ? 64 : (int)n);
}

/* Starts fn(arg) on a new thread with the asynchronous signals blocked: a process-directed SIGINT or SIGTERM
 * then goes to a thread that waits for it (cmd_serve's sigwait), never to a worker. Faults still reach the
 * worker that caused them (ASan's reports). 0 on success. */
static int start_thread(pthread_t *t, void *(*fn)(void *), void *arg) {
    sigset_t all, old;
    sigfillset(&all);
    int sync_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS};
    for (size_t i = 0; i < sizeof sync_signals / sizeof *sync_signals; i++)
        sigdelset(&all, sync_signals[i]);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(t, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Polls ready(arg) for at most *budget ns; 1 when it became true. The budget adapts: halved by each poll
 * that ends without the event (down to POOL_SPIN_MIN_NS), doubled (up to POOL_SPIN_NS) by each that sees it.
 * On a quiet machine the next call comes within microseconds and the budget stays high; when the threads
 * share a core with other work, polling only delays the thread being waited for, fails, and the budget
 * drops to the floor. Without the floor it fell to nothing after a few long pauses (loading a model, a
 * token's sampling), and a poll that gives up at once never sees an event that would double it again: the
 * workers then slept and were woken for every call, ~90 per generated token (docs/BENCHMARKS.md, "The thread
 * pool's polling floor, decoding attention by kv group (session 39)"). */
static int spin_until(int (*ready)(const void *), const void *arg, atomic_int *budget) {
    int64_t until = 0;
    int b = atomic_load_explicit(budget, memory_order_relaxed); /* written by this thread only */
    for (int i = 0;; i++) {
        if (ready(arg)) {
            atomic_store_explicit(budget, b > POOL_SPIN_NS / 2 ? POOL_SPIN_NS : b * 2 + 1000,
                                  memory_order_relaxed);
            return 1;
        }
        cpu_relax();
        if (i % 16 == 15) {
            int64_t t = now_ns();
            if (!until) {
                until = t + b;
            } else if (t > until) {
                atomic_store_explicit(budget, b / 2 > POOL_SPIN_MIN_NS ? b / 2 : POOL_SPIN_MIN_NS,
                                      memory_order_relaxed);
                return 0;
            }
        }
    }
}

/* ---- the workers ---- */

typedef struct seq_wait {
    atomic_uint *seq;
    unsigned seen;
} seq_wait;

static int seq_moved(const void *arg) {
    const seq_wait *s = arg;
    return atomic_load_explicit(s->seq, memory_order_acquire) != s->seen;
}

/* Waits until the worker's seq moves past seen; returns the new value. */
static unsigned worker_wait(pool_worker *w, unsigned seen) {
    if (!spin_until(seq_moved, &(seq_wait){&w->seq, seen}, &w->spin_ns)) {
        pthread_mutex_lock(&w->mu);
        while (atomic_load_explicit(&w->seq, memory_order_acquire) == seen)
            pthread_cond_wait(&w->cv, &w->mu);
        pthread_mutex_unlock(&w->mu);
    }
    return atomic_load_explicit(&w->seq, memory_order_acquire);
}

/* Wakes a thread that checks its condition under mu before sleeping on cv. Taking mu once after the
 * condition changed means the thread either has not checked yet or already sleeps; the signal comes after
 * the unlock so that the woken thread does not block on mu again. */
static void wake(pthread_mutex_t *mu, pthread_cond_t *cv) {
    pthread_mutex_lock(mu);
    pthread_mutex_unlock(mu);
    pthread_cond_signal(cv);
}

/* Hands the worker its part of the current call (or the order to quit). Only the owner writes seq. */
static void worker_post(pool_worker *w) {
    unsigned s = atomic_load_explicit(&w->seq, memory_order_relaxed) + 1;
    atomic_store_explicit(&w->claim, 2ull * s, memory_order_release);
    atomic_store_explicit(&w->seq, s, memory_order_release);
    wake(&w->mu, &w->cv);
}

/* Takes the range of the worker's call number s: 1 for the one thread that gets it, 0 for any other and
 * for a worker woken so late that its call is over (the claim word has moved on). */
static int take_range(pool_worker *w, unsigned s) {
    unsigned long long want = 2ull * s;
    return atomic_compare_exchange_strong_explicit(&w->claim, &want, want + 1, memory_order_acq_rel,
                                                   memory_order_relaxed);
}

static void run_worker_range(int tid) {
    int64_t n = pool.n;
    pool.fn(pool.ctx, tid, n * tid / pool.t, n * (tid + 1) / pool.t);
}

static void *worker_main(void *arg) {
    pool_worker *w = arg;
    int tid = (int)(w - pool.w) + 1; /* worker k runs range k + 1 */
    unsigned seen = 0;
    for (;;) {
        seen = worker_wait(w, seen);
        if (atomic_load(&pool.quit)) return NULL;
        if (!take_range(w, seen)) continue; /* the owner ran it: nothing of that call is left to touch */
        run_worker_range(tid);
        if (atomic_fetch_sub_explicit(&pool.remaining, 1, memory_order_acq_rel) == 1)
            wake(&pool.done_mu, &pool.done_cv);
    }
}

/* ---- the pool ---- */

/* In a child after fork() the workers do not exist: forget them. */
static void pool_after_fork(void) {
    pool.n_workers = 0;
    atomic_store(&pool.remaining, 0);
    pthread_mutex_init(&pool.done_mu, NULL);
    pthread_cond_init(&pool.done_cv, NULL);
    atomic_store(&pool.owned, 0);
}

static void pool_register_fork(void) { pthread_atfork(NULL, NULL, pool_after_fork); }

/* Starts workers until there are want (or one fails to start). Owner only. */
static void pool_grow(int want) {
    if (want > AV_POOL_MAX) want = AV_POOL_MAX;
    pthread_once(&pool_once, pool_register_fork);
    while (pool.n_workers < want) {
        pool_worker *w = &pool.w[pool.n_workers];
        pthread_mutex_init(&w->mu, NULL);
        pthread_cond_init(&w->cv, NULL);
        atomic_store(&w->seq, 0);
        atomic_store(&w->spin_ns, POOL_SPIN_NS);
        if (start_thread(&w->thread, worker_main, w) != 0) {
            pthread_cond_destroy(&w->cv);
            pthread_mutex_destroy(&w->mu);
            return;
        }
        pool.n_workers++;
    }
}

static int call_done(const void *arg) {
    (void)arg;
    return atomic_load_explicit(&pool.remaining, memory_order_acquire) == 0;
}

/* The owner waits for the workers of its call. */
static void pool_wait_done(void) {
    if (spin_until(call_done, NULL, &pool.spin_ns)) return;
    pthread_mutex_lock(&pool.done_mu);
    while (!call_done(NULL))
        pthread_cond_wait(&pool.done_cv, &pool.done_mu);
    pthread_mutex_unlock(&pool.done_mu);
}

/* Runs the call on the pool; 0 (nothing run) when another call owns it. */
static int pool_run(int t, int64_t n, av_range_fn fn, void *ctx) {
    pthread_once(&env_once, read_env);
    if (pool_off) return 0;
    if (atomic_exchange_explicit(&pool.owned, 1, memory_order_acquire)) return 0;
    pool_grow(t - 1);
    int k = pool.n_workers < t - 1 ? pool.n_workers : t - 1; /* workers taking part: ranges 1..k */
    pool.fn = fn;
    pool.ctx = ctx;
    pool.n = n;
    pool.t = t;
    atomic_store_explicit(&pool.remaining, k, memory_order_relaxed);
    for (int i = 0; i < k; i++)
        worker_post(&pool.w[i]);
    fn(ctx, 0, 0, n / t);
    for (int i = k + 1; i < t; i++) /* no worker for these: run them here */
        fn(ctx, i, n * i / t, n * (i + 1) / t);
    for (int i = 0; i < k; i++) /* ranges whose worker has not started (not scheduled yet): run them here */
        if (take_range(&pool.w[i], atomic_load_explicit(&pool.w[i].seq, memory_order_relaxed))) {
            run_worker_range(i + 1);
            atomic_fetch_sub_explicit(&pool.remaining, 1, memory_order_acq_rel);
        }
    pool_wait_done();
    atomic_store_explicit(&pool.owned, 0, memory_order_release);
    return 1;
}

/* At exit or dlclose: stop and join the parked workers (a worker must not outlive the code it runs). */
__attribute__((destructor)) static void pool_stop(void) {
    if (atomic_exchange(&pool.owned, 1)) return; /* a call is running: leave it, never hang */
    atomic_store(&pool.quit, 1);
    for (int i = 0; i < pool.n_workers; i++)
        worker_post(&pool.w[i]);
    for (int i = 0; i < pool.n_workers; i++)
        pthread_join(pool.w[i].thread, NULL);
    pool.n_workers = 0; /* the pool stays owned: later calls start their own threads */
}

/* ---- threads of one call (when the pool is taken) ---- */

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

static void run_own_threads(int t, int64_t n, av_range_fn fn, void *ctx) {
    pthread_t tids[64];
    range_job jobs[64];
    int started[64] = {0};
    for (int i = 0; i < t; i++)
        jobs[i] = (range_job){fn, ctx, i, n * i / t, n * (i + 1) / t};
    for (int i = 1; i < t; i++)
        started[i] = start_thread(&tids[i], run_range, &jobs[i]) == 0;
    run_range(&jobs[0]);
    for (int i = 1; i < t; i++) {
        if (started[i])
            pthread_join(tids[i], NULL);
        else
            run_range(&jobs[i]); /* thread creation failed: do the work here */
    }
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
    if (!pool_run(n_threads, n, fn, ctx)) run_own_threads(n_threads, n, fn, ctx);
}
