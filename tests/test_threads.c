/* av_parallel_for (src/core/threads.c) against its documented contract: thread i of t gets exactly
 * [n*i/t, n*(i+1)/t) once, every index is visited exactly once, whatever the thread count (1..64, 0 for the
 * default, more than 64), with callers on several threads at once, with nested calls, when threads cannot
 * be started (pthread_create fails: interposed below), after fork() and at exit. The pool's promises
 * beyond the contract: the same worker runs range 1 call after call (checked by kernel thread ids), and its
 * polling for the next call never falls below a floor (av_pool_poll_budget_ns). */
#define _GNU_SOURCE /* RTLD_NEXT */
#include "harness.h"

#include "core/core.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

/* ---- pthread_create that fails on request (the library's calls resolve to this definition) ---- */

static atomic_int creates_left = -1; /* threads that may still be started; -1: no limit */

int pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg) {
    typedef int create_fn(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
    static create_fn *real;
    if (!real) *(void **)&real = dlsym(RTLD_NEXT, "pthread_create");
    int left = atomic_load(&creates_left);
    while (left > 0 && !atomic_compare_exchange_weak(&creates_left, &left, left - 1)) {
    }
    if (left == 0 || !real) return EAGAIN;
    return real(t, attr, fn, arg);
}

/* LeakSanitizer's hook (ASan build): no leak check in the forked children. Their copy of the sanitizer's
 * thread registry still lists the parent's pool workers, which do not exist there, and LSan would print a
 * warning for each; the parent's own check at exit covers the pool. */
static pid_t main_pid;
int __lsan_is_turned_off(void);
int __lsan_is_turned_off(void) { return main_pid && getpid() != main_pid; }

/* ---- one call's record ---- */

#define MAX_N 20000

typedef struct visits {
    atomic_int calls[64]; /* (64) calls per tid */
    int64_t start[64], end[64];
    atomic_int bad_tid;
    atomic_int count[MAX_N]; /* (n) visits per index */
} visits;

static void record(void *ctx, int tid, int64_t start, int64_t end) {
    visits *v = ctx;
    if (tid < 0 || tid >= 64 || start < 0 || end > MAX_N) {
        atomic_fetch_add(&v->bad_tid, 1);
        return;
    }
    atomic_fetch_add(&v->calls[tid], 1);
    v->start[tid] = start;
    v->end[tid] = end;
    for (int64_t i = start; i < end; i++)
        atomic_fetch_add_explicit(&v->count[i], 1, memory_order_relaxed);
}

/* The thread count av_parallel_for documents for n_threads over n items. */
static int expected_threads(int n_threads, int64_t n) {
    int t = n_threads <= 0 ? av_default_threads() : n_threads;
    if (t > 64) t = 64;
    return t > n ? (int)n : t;
}

/* Runs av_parallel_for over n items and checks the record; "" or what went wrong in why. */
static int run_and_check(int n_threads, int64_t n, char why[160]) {
    visits *v = calloc(1, sizeof *v);
    if (!v) return snprintf(why, 160, "out of memory"), 0;
    av_parallel_for(n_threads, n, record, v);
    int t = expected_threads(n_threads, n), ok = 0;
    why[0] = 0;
    if (atomic_load(&v->bad_tid)) {
        snprintf(why, 160, "n_threads %d n %lld: a call out of bounds", n_threads, (long long)n);
        goto done;
    }
    for (int i = 0; i < 64; i++) {
        int c = atomic_load(&v->calls[i]), want = i < t;
        int64_t s = n * i / (t ? t : 1), e = n * (i + 1) / (t ? t : 1);
        if (c != want || (want && (v->start[i] != s || v->end[i] != e))) {
            snprintf(why, 160,
                     "n_threads %d n %lld: tid %d called %d times, [%lld, %lld) (want %d, [%lld, %lld))",
                     n_threads, (long long)n, i, c, (long long)v->start[i], (long long)v->end[i], want,
                     (long long)s, (long long)e);
            goto done;
        }
    }
    for (int64_t i = 0; i < n; i++)
        if (atomic_load(&v->count[i]) != 1) {
            snprintf(why, 160, "n_threads %d n %lld: index %lld visited %d times", n_threads, (long long)n,
                     (long long)i, atomic_load(&v->count[i]));
            goto done;
        }
    ok = 1;
done:
    free(v);
    return ok;
}

/* ---- the contract on one thread ---- */

static void test_split_every_thread_count(void) {
    static const int64_t ns[] = {1, 2, 3, 7, 63, 64, 65, 100, 1000, 12345};
    char why[160];
    for (size_t k = 0; k < sizeof ns / sizeof *ns; k++)
        for (int t = -1; t <= 70; t++)
            REQUIREF(run_and_check(t, ns[k], why), "%s", why);
    av_parallel_for(4, 0, record, NULL); /* nothing to do: fn is never called */
    av_parallel_for(4, -5, record, NULL);
}

static pid_t gettid_(void) { return (pid_t)syscall(SYS_gettid); }

typedef struct tid_note {
    atomic_int tid1; /* kernel thread id that ran range 1 */
} tid_note;

/* Range 0 waits for range 1, so that the caller cannot run range 1 itself (it does when the worker is late).
 */
static void note_tid(void *ctx, int tid, int64_t start, int64_t end) {
    tid_note *t = ctx;
    if (tid == 1) atomic_store(&t->tid1, (int)gettid_());
    for (int i = 0; tid == 0 && i < 2000 && !atomic_load(&t->tid1); i++)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
}

static void test_pool_keeps_its_worker(void) {
    const char *env = getenv("ATTNVIZ_POOL");
    if (env && strcmp(env, "0") == 0) SKIP("ATTNVIZ_POOL=0: the pool is off");
    pid_t first = 0;
    for (int i = 0; i < 50; i++) {
        tid_note t = {0};
        av_parallel_for(2, 2, note_tid, &t);
        pid_t tid = atomic_load(&t.tid1);
        REQUIREF(tid != 0 && tid != gettid_(), "call %d: range 1 ran on the caller (%d)", i, (int)tid);
        if (i == 0) first = tid;
        REQUIREF(tid == first, "call %d: range 1 ran on thread %d, the first call's on %d", i, (int)tid,
                 (int)first);
    }
}

/* ---- polling between calls ---- */

/* Pauses far longer than any poll lower the worker's polling budget as far as it goes, and it must stay
 * long enough to catch calls a few microseconds apart, as the ~90 calls of a generated token come after a
 * model was loaded: a budget that fell to nothing would give up at once, never see a call (the only thing
 * that raises it again), and sleep and be woken before every call. */
static void test_pool_polling_has_a_floor(void) {
    const char *env = getenv("ATTNVIZ_POOL");
    if (env && strcmp(env, "0") == 0) SKIP("ATTNVIZ_POOL=0: the pool is off");
    visits *v = calloc(1, sizeof *v);
    REQUIRE(v);
    for (int i = 0; i < 40; i++) {
        av_parallel_for(2, 2, record, v);
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    int budget = av_pool_poll_budget_ns();
    REQUIREF(budget >= 5000, "after 40 calls 1 ms apart the worker polls %d ns before sleeping", budget);
    free(v);
}

/* ---- several callers, nested calls ---- */

typedef struct caller {
    int seed;
    char why[160];
} caller;

static void *caller_main(void *arg) {
    caller *c = arg;
    unsigned r = (unsigned)c->seed * 2654435761u;
    for (int i = 0; i < 400 && !c->why[0]; i++) {
        r = r * 1103515245u + 12345u;
        int t = i % 40 == 39 ? 64 : 1 + (int)(r >> 16) % 8;
        int64_t n = 1 + (int64_t)(r >> 8) % 3000;
        run_and_check(t, n, c->why);
    }
    return NULL;
}

static void test_concurrent_callers(void) {
    pthread_t th[4];
    caller c[4];
    int started[4];
    for (int i = 0; i < 4; i++) {
        c[i] = (caller){.seed = i + 1};
        started[i] = pthread_create(&th[i], NULL, caller_main, &c[i]) == 0;
    }
    for (int i = 0; i < 4; i++) {
        if (started[i])
            pthread_join(th[i], NULL);
        else
            caller_main(&c[i]);
        CHECKF(!c[i].why[0], "caller %d: %s", i, c[i].why);
    }
}

/* A call that owns the pool waits (both its ranges) until a second caller has finished a call of its own:
 * the second caller must neither wait for the first nor take its workers. */
typedef struct overlap {
    atomic_int inside, second_done, timed_out;
    char why[160];
} overlap;

static int wait_for(atomic_int *flag, int value) {
    for (int i = 0; i < 3000; i++) { /* at most ~3 s */
        if (atomic_load(flag) >= value) return 1;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    return 0;
}

static void blocking_range(void *ctx, int tid, int64_t start, int64_t end) {
    overlap *o = ctx;
    atomic_fetch_add(&o->inside, 1);
    if (!wait_for(&o->second_done, 1)) atomic_store(&o->timed_out, 1);
}

static void *second_caller(void *arg) {
    overlap *o = arg;
    if (!wait_for(&o->inside, 2)) snprintf(o->why, sizeof o->why, "the first call never ran both ranges");
    run_and_check(3, 1000, o->why);
    atomic_store(&o->second_done, 1);
    return NULL;
}

static void test_second_caller_while_pool_busy(void) {
    overlap o = {0};
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, second_caller, &o) == 0);
    av_parallel_for(2, 2, blocking_range, &o);
    pthread_join(th, NULL);
    CHECKF(!o.why[0], "the second caller: %s", o.why);
    CHECKF(!atomic_load(&o.timed_out), "the second caller's call did not finish while the first ran");
}

typedef struct nest {
    int depth;
    atomic_int failures;
    char why[200];
} nest;

/* Each item of the outer call runs a call of its own (and one level deeper once more). */
static void nested(void *ctx, int tid, int64_t start, int64_t end) {
    nest *o = ctx;
    for (int64_t i = start; i < end; i++) {
        char why[160];
        if (!run_and_check(2 + (int)i % 3, 50 + i, why) && atomic_fetch_add(&o->failures, 1) == 0)
            snprintf(o->why, sizeof o->why, "%s", why);
        if (o->depth == 0) {
            nest inner = {.depth = 1};
            av_parallel_for(2, 3, nested, &inner);
            if (atomic_load(&inner.failures) && atomic_fetch_add(&o->failures, 1) == 0)
                snprintf(o->why, sizeof o->why, "depth 2: %.180s", inner.why);
        }
    }
}

static void test_nested_calls(void) {
    nest o = {.depth = 0};
    av_parallel_for(3, 6, nested, &o);
    CHECKF(atomic_load(&o.failures) == 0, "%s", o.why);
}

/* ---- thread start failures, fork, exit ---- */

/* In a forked child (a fresh pool): calls when only `allowed` threads can be started; exits 0 when all
 * checks hold. Returns normally through exit(), so the pool's destructor joins its workers. */
static void child_with_failing_creates(int allowed) {
    char why[160];
    atomic_store(&creates_left, allowed);
    int ok = run_and_check(8, 1000, why) && run_and_check(2, 10, why) && run_and_check(64, 5000, why);
    nest o = {.depth = 0}; /* nested calls start threads of their own: they fail too */
    av_parallel_for(3, 6, nested, &o);
    ok = ok && atomic_load(&o.failures) == 0;
    if (!ok) fprintf(stderr, "allowed %d: %s%s\n", allowed, why, o.why);
    exit(ok ? 0 : 1);
}

/* Forks; the child runs body(arg) and must exit 0 within 10 s. */
static int run_child(void (*body)(int), int arg, char why[160]) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) return snprintf(why, 160, "fork failed"), 0;
    if (pid == 0) {
        alarm(10); /* a hang (at exit, say) ends as SIGALRM */
        body(arg);
        _exit(3);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) return snprintf(why, 160, "waitpid failed"), 0;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 1;
    if (WIFSIGNALED(status))
        snprintf(why, 160, "child (arg %d) killed by signal %d%s", arg, WTERMSIG(status),
                 WTERMSIG(status) == SIGALRM ? " (hung)" : "");
    else
        snprintf(why, 160, "child (arg %d) exited with %d", arg, WEXITSTATUS(status));
    return 0;
}

static void test_thread_start_failures(void) {
    char why[160];
    for (int allowed = 0; allowed <= 5; allowed += 1)
        CHECKF(run_child(child_with_failing_creates, allowed, why), "%s", why);
}

/* The parent's pool has workers (earlier tests); the child's calls must not wait for them. */
static void child_after_fork(int unused) {
    char why[160];
    int ok = 1;
    for (int i = 0; i < 20 && ok; i++)
        ok = run_and_check(2 + i % 4, 777, why);
    if (!ok) fprintf(stderr, "%s\n", why);
    exit(ok ? 0 : 1);
}

static void test_fork_after_pool(void) {
    char why[160];
    REQUIREF(run_and_check(4, 4, why), "%s", why); /* the pool has 3 workers now */
    REQUIREF(run_child(child_after_fork, 0, why), "%s", why);
    REQUIREF(run_and_check(4, 999, why), "the parent after fork: %s", why);
}

int main(void) {
    main_pid = getpid();
    alarm(
        120); /* a deadlocked pool ends this program (a crash in tests/run.sh) instead of hanging the suite */
    RUN(test_split_every_thread_count);
    RUN(test_pool_keeps_its_worker);
    RUN(test_pool_polling_has_a_floor);
    RUN(test_second_caller_while_pool_busy);
    RUN(test_concurrent_callers);
    RUN(test_nested_calls);
    RUN(test_thread_start_failures);
    RUN(test_fork_after_pool);
    return h_exit_code();
}
