/* The direct writer (src/core/direct_write.c): byte ranges of any offset and length, queued in any order from
 * several threads, must land in the file exactly (read back with ordinary reads and compared with the bytes
 * meant for it), leave the rest of the file as it was, and a write the kernel refuses must come back from
 * av_direct_close as an error naming the file. Needs a file system that takes O_DIRECT ($TMPDIR, else
 * /var/tmp; tmpfs before Linux 6.6 does not); skips with the reason where none does. The writer into memory
 * (av_direct_open_memory: a mapping, for file systems without direct writes) runs everywhere. */
#include "harness.h"

#include "core/core.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

enum { FILE_BYTES = (3 << 20) + 1234, BUF_BYTES = 300000, N_THREADS = 3 };

/* A file of `bytes` filled with `fill` under the first directory that takes direct writes; path set. NULL
 * when none does (w then NULL too). */
static av_direct_writer *open_scratch(char *path, size_t cap, size_t bytes, unsigned char fill) {
    const char *dirs[] = {h_tmpdir(), "/var/tmp"};
    for (size_t d = 0; d < sizeof dirs / sizeof *dirs; d++) {
        snprintf(path, cap, "%s/direct-%d.bin", dirs[d], (int)getpid());
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) continue;
        unsigned char *b = malloc(bytes);
        memset(b, fill, bytes);
        int ok = b && write(fd, b, bytes) == (ssize_t)bytes;
        free(b);
        close(fd);
        av_direct_writer *w = ok ? av_direct_open(path, 2 * N_THREADS, BUF_BYTES) : NULL;
        if (w) return w;
        unlink(path);
    }
    return NULL;
}

/* The file holds exactly n bytes: into dst. */
static int read_file(const char *path, unsigned char *dst, size_t n) {
    int fd = open(path, O_RDONLY);
    struct stat st;
    int ok = fd >= 0 && fstat(fd, &st) == 0 && (size_t)st.st_size == n;
    for (size_t got = 0; ok && got < n;) {
        ssize_t k = read(fd, dst + got, n - got);
        ok = k > 0;
        got += ok ? (size_t)k : 0;
    }
    if (fd >= 0) close(fd);
    return ok ? 0 : -1;
}

typedef struct range {
    size_t off, len;
} range;

typedef struct writer_job {
    av_direct_writer *w;
    const unsigned char *want;
    const range *r;
    int n, first, step;
} writer_job;

/* Ranges first, first + step, ...: each copied from want into a lent buffer and queued. */
static void *put_ranges(void *arg) {
    const writer_job *j = arg;
    for (int i = j->first; i < j->n; i += j->step) {
        unsigned char *b = av_direct_take(j->w);
        memcpy(b, j->want + j->r[i].off, j->r[i].len);
        av_direct_put(j->w, b, j->r[i].len, j->r[i].off);
    }
    return NULL;
}

/* Random pieces of [100, bytes - 77) of want (the ends stay as they were, the pieces' bytes random): 1-byte
 * ones, ones inside a block, across block edges, whole aligned blocks, a buffer's full length; queued in a
 * random order from N_THREADS threads. Returns how many. */
static int put_random_ranges(av_direct_writer *w, unsigned char *want, size_t bytes) {
    range *r = malloc(sizeof *r * 4096);
    if (!r) return 0;
    unsigned seed = 12345;
    int n = 0;
    for (size_t off = 100; off < bytes - 77 && n < 4096; n++) {
        size_t len;
        switch (rand_r(&seed) % 5) {
        case 0: len = 1; break;
        case 1: len = 1 + (size_t)rand_r(&seed) % 600; break;
        case 2: len = off % 512 ? 512 - off % 512 + 512 * (size_t)(rand_r(&seed) % 8) : 4096; break;
        case 3: len = BUF_BYTES; break;
        default: len = 1 + (size_t)rand_r(&seed) % BUF_BYTES;
        }
        len = len < bytes - 77 - off ? len : bytes - 77 - off;
        r[n] = (range){off, len};
        for (size_t i = 0; i < len; i++)
            want[off + i] = (unsigned char)rand_r(&seed);
        off += len;
    }
    for (int i = n - 1; i > 0; i--) { /* queued in a random order */
        int k = rand_r(&seed) % (i + 1);
        range t = r[i];
        r[i] = r[k], r[k] = t;
    }
    pthread_t th[N_THREADS];
    writer_job jobs[N_THREADS];
    int started[N_THREADS];
    for (int t = 0; t < N_THREADS; t++) {
        jobs[t] = (writer_job){w, want, r, n, t, N_THREADS};
        started[t] = pthread_create(&th[t], NULL, put_ranges, &jobs[t]) == 0;
    }
    for (int t = 0; t < N_THREADS; t++)
        if (started[t])
            pthread_join(th[t], NULL);
        else
            put_ranges(&jobs[t]); /* no thread: queued from here */
    free(r);
    return n;
}

/* The first byte where got and want differ, or n. */
static size_t first_difference(const unsigned char *got, const unsigned char *want, size_t n) {
    size_t i = 0;
    while (i < n && got[i] == want[i])
        i++;
    return i;
}

static void test_any_ranges_land_exactly(void) {
    char path[600];
    av_direct_writer *w = open_scratch(path, sizeof path, FILE_BYTES, 0xAB);
    if (!w) SKIP("no directory here takes O_DIRECT writes (%s, /var/tmp)", h_tmpdir());
    CHECK(av_direct_buffer_bytes(w) >= BUF_BYTES && av_direct_buffer_bytes(w) % 4096 == 0);
    unsigned char *want = malloc(FILE_BYTES), *got = malloc(FILE_BYTES);
    REQUIRE(want && got);
    memset(want, 0xAB, FILE_BYTES);
    int n = put_random_ranges(w, want, FILE_BYTES);
    av_err err = {{0}};
    CHECKF(av_direct_close(w, &err) == 0, "%s", err.msg);
    REQUIREF(read_file(path, got, FILE_BYTES) == 0, "cannot read %s back (or its size changed)", path);
    size_t bad = first_difference(got, want, FILE_BYTES);
    CHECKF(bad == FILE_BYTES, "%d ranges: byte %zu is %u, not %u", n, bad, bad < FILE_BYTES ? got[bad] : 0,
           bad < FILE_BYTES ? want[bad] : 0);
    unlink(path);
    free(want), free(got);
}

/* The same ranges copied into memory (a file system without direct writes: the capture's F16 rows go into
 * the file's mapping) land exactly; a range past the memory's end is refused at close, naming it. */
static void test_memory_ranges_land_exactly(void) {
    unsigned char *mem = malloc(FILE_BYTES), *want = malloc(FILE_BYTES);
    REQUIRE(mem && want);
    memset(mem, 0xAB, FILE_BYTES);
    memset(want, 0xAB, FILE_BYTES);
    av_direct_writer *w = av_direct_open_memory(mem, FILE_BYTES, "mapping.bin", 2 * N_THREADS, BUF_BYTES);
    REQUIRE(w);
    int n = put_random_ranges(w, want, FILE_BYTES);
    av_err err = {{0}};
    CHECKF(av_direct_close(w, &err) == 0, "%s", err.msg);
    size_t bad = first_difference(mem, want, FILE_BYTES);
    CHECKF(bad == FILE_BYTES, "%d ranges: byte %zu is %u, not %u", n, bad, bad < FILE_BYTES ? mem[bad] : 0,
           bad < FILE_BYTES ? want[bad] : 0);
    w = av_direct_open_memory(mem, 4096, "mapping.bin", 2, 4096);
    REQUIRE(w);
    void *b = av_direct_take(w);
    av_direct_put(w, b, 100, 4000); /* 4000 + 100 > 4096 */
    CHECK(av_direct_close(w, &err) == -1 && strstr(err.msg, "mapping.bin") &&
          strstr(err.msg, strerror(EINVAL)));
    CHECK(av_direct_open_memory(NULL, 4096, "x", 2, 4096) == NULL &&
          av_direct_open_memory(mem, 4096, "x", 0, 4096) == NULL);
    free(mem), free(want);
}

/* A write the kernel refuses (past a file size limit) comes back at close, naming the file. */
static void test_refused_write_is_reported(void) {
    char path[600];
    av_direct_writer *w = open_scratch(path, sizeof path, 8192, 0);
    if (!w) SKIP("no directory here takes O_DIRECT writes (%s, /var/tmp)", h_tmpdir());
    av_direct_close(w, NULL);
    pid_t pid = fork(); /* the limit is the process's: a child takes it */
    REQUIRE(pid >= 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {64 << 10, 64 << 10};
        av_direct_writer *c = av_direct_open(path, 2, 4096);
        if (!c || setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(3);
        void *b = av_direct_take(c);
        memset(b, 7, 4096);
        av_direct_put(c, b, 4096, 1 << 20); /* aligned, past the limit */
        b = av_direct_take(c);
        av_direct_put(c, b, 100, (1 << 20) + 5000); /* and one through the bounce buffer */
        av_err e = {{0}};
        _exit(av_direct_close(c, &e) == -1 && strstr(e.msg, path) && strstr(e.msg, "write failed") ? 0 : 4);
    }
    av_direct_writer *c = av_direct_open(path, 2, 4096); /* a range longer than its buffer: refused */
    REQUIRE(c);
    void *b = av_direct_take(c);
    av_direct_put(c, b, av_direct_buffer_bytes(c) + 1, 0);
    av_err e = {{0}};
    CHECK(av_direct_close(c, &e) == -1 && strstr(e.msg, strerror(EINVAL)));
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
    unlink(path);
}

static void test_missing_file_declines(void) {
    CHECK(av_direct_open("/no/such/dir/x.bin", 2, 4096) == NULL);
    char path[600];
    snprintf(path, sizeof path, "%s/direct-missing.bin", h_tmpdir());
    CHECK(av_direct_open(path, 2, 4096) == NULL && access(path, F_OK) != 0); /* never creates one */
    CHECK(av_direct_open(path, 0, 4096) == NULL && av_direct_open(path, 2, 0) == NULL);
}

int main(void) {
    RUN(test_any_ranges_land_exactly);
    RUN(test_memory_ranges_land_exactly);
    RUN(test_refused_write_is_reported);
    RUN(test_missing_file_declines);
    return h_exit_code();
}
