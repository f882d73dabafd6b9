/* Byte ranges written into a file past the page cache (O_DIRECT) by a background thread, from staging
 * buffers the writer lends (see core.h); or, where a file system takes no direct writes, copied by that
 * thread into the file's shared mapping (av_direct_open_memory). Why: a full trace is hundreds of MB written
 * once; through a shared mapping or write() every one of its pages is first a fresh page-cache page (zeroed,
 * on a VM often faulted in by the host as well), then dirty data for fsync to write back. Direct writes go
 * from the same few warm buffers to the device, on a thread that mostly waits for it.
 *
 * The device takes transfers whose file offset, length and memory address are multiples of its alignment
 * (statx's STATX_DIOALIGN). Ranges that meet it go out as they are; any other is written as the aligned
 * range around it through a bounce buffer, its partial first and last blocks read back first (and the file
 * cut back to its size when that last block passed its end). Only this thread writes these bytes, one range
 * after another, so those reads see every earlier range. */
#define _GNU_SOURCE
#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { BOUNCE_BYTES = 1 << 20 }; /* the bounce buffer (a multiple of any alignment this code accepts) */

typedef struct dw_job {
    unsigned char *buf;
    size_t len;
    uint64_t off;
} dw_job;

struct av_direct_writer {
    int fd;             /* the file written with O_DIRECT, or -1: writes go to mem */
    unsigned char *mem; /* (mem_len) the memory written instead (a file's shared mapping), or NULL */
    size_t mem_len;
    size_t align, buf_bytes;
    int n_bufs;
    unsigned char *pool;   /* (n_bufs, buf_bytes) the staging buffers */
    unsigned char *bounce; /* (BOUNCE_BYTES) */
    unsigned char **free_bufs;
    int n_free;
    dw_job *queue; /* ring of n_bufs jobs (a job holds a buffer: never more) */
    int q_head, q_len;
    int closing, failed, err_no;
    uint64_t err_off;
    uint64_t size; /* the file's size: at open, then the end of the last range past it (the writer's) */
    pthread_mutex_t lock;
    pthread_cond_t changed; /* a job queued, a buffer freed, or closing */
    pthread_t thread;
    char *path;
};

/* The device's alignment for direct transfers of fd (offsets and memory), or 0 when it takes none. */
static size_t direct_alignment(int fd) {
#ifdef STATX_DIOALIGN
    struct statx st;
    if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &st) == 0 && (st.stx_mask & STATX_DIOALIGN)) {
        size_t a =
            st.stx_dio_offset_align > st.stx_dio_mem_align ? st.stx_dio_offset_align : st.stx_dio_mem_align;
        return st.stx_dio_offset_align && a <= BOUNCE_BYTES / 2 ? a : 0;
    }
#endif
    return 4096; /* older kernels: a page satisfies every device */
}

/* n bytes at off into p; past the end of the file, zeros. */
static int read_all(int fd, unsigned char *p, size_t n, uint64_t off) {
    while (n > 0) {
        ssize_t k = pread(fd, p, n, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return -1;
        if (k == 0) { /* the file holds nothing there */
            memset(p, 0, n);
            return 0;
        }
        p += k, n -= (size_t)k, off += (uint64_t)k;
    }
    return 0;
}

/* Bytes [off, off + len) from src, aligned or not (see the top of the file); or copied into memory. */
static int write_range(av_direct_writer *w, const unsigned char *src, size_t len, uint64_t off) {
    if (w->mem) {
        if (off > w->mem_len || len > w->mem_len - off) return errno = EINVAL, -1;
        memcpy(w->mem + off, src, len);
        return 0;
    }
    size_t a = w->align;
    if (off % a == 0 && len % a == 0 && (uintptr_t)src % a == 0) {
        if (off + len > w->size) w->size = off + len;
        return av_pwrite_all(w->fd, src, len, off);
    }
    uint64_t end = off + len, end_up = (end + a - 1) / a * a;
    for (uint64_t lo = off / a * a; lo < end;) { /* pieces [lo, hi) of whole blocks through the bounce */
        uint64_t hi = lo + BOUNCE_BYTES < end_up ? lo + BOUNCE_BYTES : end_up;
        uint64_t from = off > lo ? off : lo, to = end < hi ? end : hi; /* the payload's part of the piece */
        int head = from > lo, tail = to < hi; /* first / last block partly outside the payload */
        if (head && read_all(w->fd, w->bounce, a, lo)) return -1;
        if (tail && !(head && hi - lo == a) && read_all(w->fd, w->bounce + (hi - a - lo), a, hi - a))
            return -1;
        memcpy(w->bounce + (from - lo), src + (from - off), (size_t)(to - from));
        if (av_pwrite_all(w->fd, w->bounce, (size_t)(hi - lo), lo)) return -1;
        lo = hi;
    }
    if (end > w->size) w->size = end;
    return end_up > w->size ? ftruncate(w->fd, (off_t)w->size) : 0; /* a last block past the end: cut */
}

static void *writer_main(void *arg) {
    av_direct_writer *w = arg;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->q_len && !w->closing)
            pthread_cond_wait(&w->changed, &w->lock);
        if (!w->q_len) break; /* closing and nothing left */
        dw_job j = w->queue[w->q_head];
        int skip = w->failed;
        pthread_mutex_unlock(&w->lock);
        int bad = 0;
        if (!skip && j.len > w->buf_bytes) /* more than the buffer holds: the caller's error */
            bad = 1, errno = EINVAL;
        else if (!skip)
            bad = write_range(w, j.buf, j.len, j.off) != 0;
        int e = errno;
        pthread_mutex_lock(&w->lock);
        if (bad && !w->failed) w->failed = 1, w->err_no = e, w->err_off = j.off;
        w->q_head = (w->q_head + 1) % w->n_bufs, w->q_len--;
        w->free_bufs[w->n_free++] = j.buf;
        pthread_cond_broadcast(&w->changed);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* The staging buffers, their lists and the thread of a writer whose target (fd or mem) and alignment are
 * set; NULL (w freed) when something fails. */
static av_direct_writer *start(av_direct_writer *w, int n_bufs, size_t buf_bytes, const char *path) {
    size_t page = w->align > 4096 ? w->align : 4096;
    w->n_bufs = n_bufs;
    w->buf_bytes = (buf_bytes + page - 1) / page * page;
    w->pool = av_alloc_large(w->buf_bytes * (size_t)n_bufs, page);
    w->bounce = w->mem ? NULL : aligned_alloc(page, BOUNCE_BYTES);
    w->free_bufs = calloc((size_t)n_bufs, sizeof *w->free_bufs);
    w->queue = calloc((size_t)n_bufs, sizeof *w->queue);
    w->path = strdup(path);
    int ok = w->pool && (w->mem || w->bounce) && w->free_bufs && w->queue && w->path;
    /* a direct read of the first block: a file system that opens with O_DIRECT but wants another alignment
     * than the one assumed refuses it here (EINVAL), not in the middle of a run */
    if (ok && !w->mem && pread(w->fd, w->bounce, w->align, 0) < 0) ok = 0;
    if (ok) ok = !pthread_mutex_init(&w->lock, NULL);
    if (ok && pthread_cond_init(&w->changed, NULL)) pthread_mutex_destroy(&w->lock), ok = 0;
    if (ok && pthread_create(&w->thread, NULL, writer_main, w))
        pthread_cond_destroy(&w->changed), pthread_mutex_destroy(&w->lock), ok = 0;
    if (!ok) {
        free(w->pool), free(w->bounce), free(w->free_bufs), free(w->queue), free(w->path);
        if (w->fd >= 0) close(w->fd);
        free(w);
        return NULL;
    }
    for (int i = 0; i < n_bufs; i++)
        w->free_bufs[w->n_free++] = w->pool + (size_t)i * w->buf_bytes;
    return w;
}

av_direct_writer *av_direct_open(const char *path, int n_bufs, size_t buf_bytes) {
    if (n_bufs < 1 || !buf_bytes) return NULL;
    int fd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);
    size_t a = fd >= 0 ? direct_alignment(fd) : 0;
    struct stat st;
    if (a && fstat(fd, &st) != 0) a = 0;
    av_direct_writer *w = a ? calloc(1, sizeof *w) : NULL;
    if (!w) {
        if (fd >= 0) close(fd);
        return NULL;
    }
    w->fd = fd, w->align = a, w->size = (uint64_t)st.st_size;
    return start(w, n_bufs, buf_bytes, path);
}

av_direct_writer *av_direct_open_memory(unsigned char *mem, size_t len, const char *name, int n_bufs,
                                        size_t buf_bytes) {
    av_direct_writer *w = n_bufs >= 1 && buf_bytes && mem ? calloc(1, sizeof *w) : NULL;
    if (!w) return NULL;
    w->fd = -1, w->mem = mem, w->mem_len = len, w->size = len;
    return start(w, n_bufs, buf_bytes, name);
}

size_t av_direct_buffer_bytes(const av_direct_writer *w) { return w->buf_bytes; }

void *av_direct_take(av_direct_writer *w) {
    pthread_mutex_lock(&w->lock);
    while (!w->n_free)
        pthread_cond_wait(&w->changed, &w->lock);
    void *b = w->free_bufs[--w->n_free];
    pthread_mutex_unlock(&w->lock);
    return b;
}

void av_direct_put(av_direct_writer *w, void *buf, size_t len, uint64_t off) {
    pthread_mutex_lock(&w->lock);
    w->queue[(w->q_head + w->q_len++) % w->n_bufs] = (dw_job){buf, len, off};
    pthread_cond_broadcast(&w->changed);
    pthread_mutex_unlock(&w->lock);
}

int av_direct_close(av_direct_writer *w, av_err *err) {
    if (!w) return 0;
    pthread_mutex_lock(&w->lock);
    w->closing = 1;
    pthread_cond_broadcast(&w->changed);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    int rc = 0;
    if (w->failed)
        rc = av_errf(err, "%s: write failed at byte %llu: %s", w->path, (unsigned long long)w->err_off,
                     strerror(w->err_no));
    pthread_cond_destroy(&w->changed);
    pthread_mutex_destroy(&w->lock);
    if (w->fd >= 0) close(w->fd);
    free(w->pool), free(w->bounce), free(w->free_bufs), free(w->queue), free(w->path), free(w);
    return rc;
}
