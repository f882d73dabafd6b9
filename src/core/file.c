/* Files: read-only mapping, whole-file reads and atomic (temp + rename) writes. */
#define _GNU_SOURCE
#include "core.h"

#include <dirent.h>
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

/* ---- temp files left by processes that died without cleaning up (SIGKILL, power loss) ---- */

/* The directory of path into dir ("." when it has none); returns the file name part, NULL when too long. */
static const char *parent_dir(const char *path, char *dir, size_t n) {
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(dir, n, ".");
        return path;
    }
    if ((size_t)(slash - path) >= n) return NULL;
    snprintf(dir, n, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    return slash + 1;
}

/* 1 when name is "<base>.tmp.<pid>.<n>"; sets *pid. */
static int parse_temp_name(const char *name, const char *base, long *pid) {
    size_t bl = strlen(base);
    if (strncmp(name, base, bl) != 0 || strncmp(name + bl, ".tmp.", 5) != 0) return 0;
    const char *p = name + bl + 5;
    char *end;
    errno = 0;
    long v = strtol(p, &end, 10);
    if (errno || end == p || *end != '.' || v <= 0) return 0;
    p = end + 1;
    if (!*p) return 0;
    for (; *p; p++)
        if (*p < '0' || *p > '9') return 0;
    *pid = v;
    return 1;
}

/* Removes the temp files of path whose writer process is gone: a writer killed with SIGKILL (no handler
 * runs) leaves "<path>.tmp.<pid>.<n>" behind, up to the full preallocated size of a trace. A pid that is
 * alive (ours, another writer's, or a reused pid) keeps its file: only ESRCH proves the writer is gone. */
static void remove_stale_temps(const char *path) {
    char dir[4096];
    const char *base = parent_dir(path, dir, sizeof dir);
    DIR *d = base ? opendir(dir) : NULL;
    if (!d) return;
    int dfd = dirfd(d);
    for (struct dirent *e; (e = readdir(d));) {
        long pid;
        struct stat st;
        if (!parse_temp_name(e->d_name, base, &pid) || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
            unlinkat(dfd, e->d_name, 0);
    }
    closedir(d);
}

int av_atomic_open(av_atomic_file *f, const char *path, av_err *err) {
    memset(f, 0, sizeof *f);
    remove_stale_temps(path);
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

int av_pwrite_all(int fd, const void *data, size_t n, uint64_t off) {
    const unsigned char *p = data;
    while (n > 0) {
        ssize_t k = pwrite(fd, p, n, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            if (k == 0) errno = EIO;
            return -1;
        }
        p += k, n -= (size_t)k, off += (uint64_t)k;
    }
    return 0;
}

static void atomic_release(av_atomic_file *f) {
    if (f->tmp_path) temp_unregister(f->tmp_path);
    free(f->tmp_path);
    free(f->path);
    memset(f, 0, sizeof *f);
}

/* Makes the rename itself durable: the directory entry is flushed like the data. Filesystems that cannot
 * sync a directory (EINVAL) have nothing to flush. */
static int sync_parent_dir(const char *path, av_err *err) {
    char dir[4096];
    if (!parent_dir(path, dir, sizeof dir)) return av_errf(err, "%s: path too long", path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return av_errf(err, "%s: cannot open its directory to sync it: %s", path, strerror(errno));
    int rc = fsync(fd) == 0 || errno == EINVAL ? 0 : -1;
    int e = errno;
    close(fd);
    if (rc) return av_errf(err, "%s: written, but syncing its directory failed: %s", path, strerror(e));
    return 0;
}

int av_atomic_commit(av_atomic_file *f, av_err *err) {
    /* the data reaches the disk before the rename makes it visible: a crash leaves the old file or the
     * whole new one, never a renamed empty or partial file */
    int bad = fflush(f->fp) != 0 || ferror(f->fp) || fsync(fileno(f->fp)) != 0;
    int e = errno;
    if (fclose(f->fp) != 0 && !bad) bad = 1, e = errno;
    f->fp = NULL;
    if (bad) {
        av_errf(err, "%s: write failed: %s", f->path, strerror(e));
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
    int rc = sync_parent_dir(f->path, err);
    atomic_release(f);
    return rc;
}

void av_atomic_abort(av_atomic_file *f) {
    if (f->fp) fclose(f->fp);
    if (f->tmp_path) unlink(f->tmp_path);
    atomic_release(f);
}

int av_file_write_atomic(const char *path, const void *data, size_t n, av_err *err) {
    av_atomic_file f;
    if (av_atomic_open(&f, path, err)) return -1;
    if (av_atomic_write(&f, data, n, err)) {
        av_atomic_abort(&f);
        return -1;
    }
    return av_atomic_commit(&f, err);
}
