/* Minimal test harness. Each tests/test_*.c is one binary whose main() calls RUN(fn) per test.
 * Every test prints one line: "PASS name", "FAIL name: why" or "SKIP name: why"; tests/run.sh counts them.
 * CHECK records a failure and continues; REQUIRE records it and returns from the test. */
#ifndef AV_TEST_HARNESS_H
#define AV_TEST_HARNESS_H

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int h_test_failed;  /* failures in the current test */
static int h_test_skipped; /* current test skipped */
static char h_first_failure[512];
static int h_total_failed;

__attribute__((unused)) static void h_note_failure(const char *file, int line, const char *fmt, ...) {
    if (h_test_failed++ == 0) {
        char msg[400];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        snprintf(h_first_failure, sizeof h_first_failure, "%s:%d: %s", file, line, msg);
    }
}

/* One line per macro reads better than the formatter's layout. */
/* clang-format off */
#define CHECK(cond) \
    do { if (!(cond)) h_note_failure(__FILE__, __LINE__, "%s", #cond); } while (0)
#define CHECKF(cond, ...) \
    do { if (!(cond)) h_note_failure(__FILE__, __LINE__, __VA_ARGS__); } while (0)
#define REQUIRE(cond) \
    do { if (!(cond)) { h_note_failure(__FILE__, __LINE__, "%s", #cond); return; } } while (0)
#define REQUIREF(cond, ...) \
    do { if (!(cond)) { h_note_failure(__FILE__, __LINE__, __VA_ARGS__); return; } } while (0)
#define SKIP(...) \
    do { h_test_skipped = 1; snprintf(h_first_failure, sizeof h_first_failure, __VA_ARGS__); return; } while (0)

/* clang-format on */

#define RUN(fn) h_run(#fn, fn)

__attribute__((unused)) static void h_run(const char *name, void (*fn)(void)) {
    h_test_failed = 0;
    h_test_skipped = 0;
    h_first_failure[0] = 0;
    fn();
    if (h_test_failed) {
        printf("FAIL %s: %s%s\n", name, h_first_failure, h_test_failed > 1 ? " (and more)" : "");
        h_total_failed++;
    } else if (h_test_skipped) {
        printf("SKIP %s: %s\n", name, h_first_failure);
    } else {
        printf("PASS %s\n", name);
    }
    fflush(stdout);
}

__attribute__((unused)) static int h_exit_code(void) { return h_total_failed ? 1 : 0; }

/* Path of the shared real data (../shared beside the repo), or NULL when it is not there. */
__attribute__((unused)) static const char *h_shared_dir(void) {
    static char path[4096];
    const char *env = getenv("ATTNVIZ_SHARED");
    snprintf(path, sizeof path, "%s", env && *env ? env : "../shared");
    return access(path, R_OK) == 0 ? path : NULL;
}

/* Builds "<shared>/<rel>" into buf; returns NULL (so the caller can SKIP) when the file is missing. */
__attribute__((unused)) static const char *h_shared_file(char *buf, size_t n, const char *rel) {
    const char *dir = h_shared_dir();
    if (!dir) return NULL;
    int k = snprintf(buf, n, "%s/%s", dir, rel);
    if (k < 0 || (size_t)k >= n) return NULL;
    return access(buf, R_OK) == 0 ? buf : NULL;
}

/* Removes `name` under the directory `parent_fd`, descending into directories (never following links). */
__attribute__((unused)) static void h_remove_tree(int parent_fd, const char *name) {
    int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    if (fd < 0) { /* a file or a link */
        unlinkat(parent_fd, name, 0);
        return;
    }
    (void)!fchmod(fd, 0700); /* a test may have made it read-only */
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) h_remove_tree(dirfd(d), e->d_name);
    closedir(d);
    unlinkat(parent_fd, name, AT_REMOVEDIR);
}

/* The test binary's scratch directory ("" until h_tmpdir creates it) and the process that created it. */
__attribute__((unused)) static char h_scratch[256];
__attribute__((unused)) static pid_t h_scratch_owner;

/* At exit of the process that made it (not of forked children): the scratch directory goes when every test
 * passed and stays for inspection, named on stderr, when one failed. */
__attribute__((unused)) static void h_scratch_cleanup(void) {
    if (!h_scratch[0] || getpid() != h_scratch_owner) return;
    if (h_total_failed)
        fprintf(stderr, "scratch kept for inspection: %s\n", h_scratch);
    else
        h_remove_tree(AT_FDCWD, h_scratch);
}

/* A fresh scratch directory for one test binary under $TMPDIR, removed at exit when every test passed. */
__attribute__((unused)) static const char *h_tmpdir(void) {
    if (!h_scratch[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(h_scratch, sizeof h_scratch, "%s/attnviz-test-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(h_scratch)) {
            h_scratch[0] = 0;
            return "/tmp";
        }
        h_scratch_owner = getpid();
        atexit(h_scratch_cleanup);
    }
    return h_scratch;
}

__attribute__((unused)) static float h_max_abs_diff(const float *a, const float *b, size_t n) {
    float m = 0;
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        if (!(d <= m)) m = d; /* NaN propagates as a failure */
    }
    return m;
}

#endif
