/* Files: read-only mapping, whole-file reads and atomic (temp + rename) writes. */
#define _GNU_SOURCE
#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int av_file_map(const char *path, av_mapped_file *out, av_err *err) {
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return av_errf(err, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return av_errf(err, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return av_errf(err, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return av_errf(err, "%s: file is empty", path);
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED) return av_errf(err, "%s: mmap failed: %s", path, strerror(e));
    out->data = p;
    out->size = (size_t)st.st_size;
    out->path = av_strdup(path);
    return 0;
}

void av_file_unmap(av_mapped_file *f) {
    if (f->data) munmap(f->data, f->size);
    free(f->path);
    memset(f, 0, sizeof *f);
}

int av_file_read_all(const char *path, size_t max_size, char **out, size_t *size, av_err *err) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return av_errf(err, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(fp);
        return av_errf(err, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > max_size) {
        fclose(fp);
        return av_errf(err, "%s: file is %lld bytes, more than the %zu allowed", path, (long long)st.st_size,
                       max_size);
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        fclose(fp);
        return av_errf(err, "%s: out of memory", path);
    }
    size_t got = fread(buf, 1, n, fp);
    fclose(fp);
    if (got != n) {
        free(buf);
        return av_errf(err, "%s: short read", path);
    }
    buf[n] = 0;
    *out = buf;
    if (size) *size = n;
    return 0;
}

/* ---- temp files that exist right now, removed if the process is killed by a signal ---- */

enum { MAX_LIVE_TEMPS = 64 };
static _Atomic(char *) live_temps[MAX_LIVE_TEMPS];

static void temp_register(char *path) {
    for (int i = 0; i < MAX_LIVE_TEMPS; i++) {
        char *expected = NULL;
        if (atomic_compare_exchange_strong(&live_temps[i], &expected, path)) return;
    }
}

static void temp_unregister(const char *path) {
    for (int i = 0; i < MAX_LIVE_TEMPS; i++) {
        char *expected = (char *)path;
        if (atomic_compare_exchange_strong(&live_temps[i], &expected, NULL)) return;
    }
}

static void remove_temps_and_die(int sig) {
    for (int i = 0; i < MAX_LIVE_TEMPS; i++) {
        char *p = atomic_load(&live_temps[i]);
        if (p) unlink(p); /* async-signal-safe */
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

void av_atomic_remove_on_signals(void) {
    const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = remove_temps_and_die;
        sigaction(sigs[i], &sa, NULL);
    }
}

int av_atomic_open(av_atomic_file *f, const char *path, av_err *err) {
    memset(f, 0, sizeof *f);
    struct stat st; /* the rename would replace whatever is there: only ever a regular file */
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return av_errf(err, "%s: %s, not a regular file: refusing to replace it", path,
                       S_ISDIR(st.st_mode) ? "is a directory" : "exists");
    size_t n = strlen(path) + 32;
    f->tmp_path = malloc(n);
    f->path = av_strdup(path);
    if (!f->tmp_path || !f->path) {
        free(f->tmp_path);
        free(f->path);
        return av_errf(err, "out of memory");
    }
    static atomic_uint serial; /* two temps of one path in one process (a trace saved while its in-file
                                  capture is still open) must not share a name */
    snprintf(f->tmp_path, n, "%s.tmp.%ld.%u", path, (long)getpid(), atomic_fetch_add(&serial, 1));
    f->fp = fopen(f->tmp_path, "w+b"); /* read-write: av_st_prealloc maps it */
    if (!f->fp) {
        int e = errno;
        av_errf(err, "%s: cannot write: %s", path, strerror(e));
        free(f->tmp_path);
        free(f->path);
        memset(f, 0, sizeof *f);
        return -1;
    }
    temp_register(f->tmp_path);
    return 0;
}

int av_atomic_write(av_atomic_file *f, const void *data, size_t n, av_err *err) {
    if (n && fwrite(data, 1, n, f->fp) != n)
        return av_errf(err, "%s: write failed: %s", f->path, strerror(errno));
    return 0;
}

static void atomic_release(av_atomic_file *f) {
    if (f->tmp_path) temp_unregister(f->tmp_path);
    free(f->tmp_path);
    free(f->path);
    memset(f, 0, sizeof *f);
}

int av_atomic_commit(av_atomic_file *f, av_err *err) {
    int bad = ferror(f->fp);
    if (fclose(f->fp) != 0) bad = 1;
    f->fp = NULL;
    if (bad) {
        av_errf(err, "%s: write failed: %s", f->path, strerror(errno));
        unlink(f->tmp_path);
        atomic_release(f);
        return -1;
    }
    if (rename(f->tmp_path, f->path) != 0) {
        av_errf(err, "%s: rename failed: %s", f->path, strerror(errno));
        unlink(f->tmp_path);
        atomic_release(f);
        return -1;
    }
    atomic_release(f);
    return 0;
}

void av_atomic_abort(av_atomic_file *f) {
    if (f->fp) fclose(f->fp);
    if (f->tmp_path) unlink(f->tmp_path);
    atomic_release(f);
}
