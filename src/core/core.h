/* Internal core utilities shared by every module: errors, overflow-safe arithmetic, the bounded reader,
 * read-only file mapping, atomic file writing, half-precision conversion and row-split threading. */
#ifndef AV_CORE_H
#define AV_CORE_H

#include "attnviz.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#if defined(__GNUC__)
#define AV_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define AV_PRINTF(a, b)
#endif

/* ---- errors: fill err (may be NULL) and return -1 ---- */
int av_errf(av_err *err, const char *fmt, ...) AV_PRINTF(2, 3);
/* Prepends "prefix: " to an existing message. Returns -1. */
int av_err_prefix(av_err *err, const char *fmt, ...) AV_PRINTF(2, 3);

/* ---- overflow-safe size arithmetic: return false on overflow ---- */
static inline bool av_mul_size(size_t a, size_t b, size_t *out) { return !__builtin_mul_overflow(a, b, out); }
static inline bool av_add_size(size_t a, size_t b, size_t *out) { return !__builtin_add_overflow(a, b, out); }
/* Product of n non-negative dims, false on overflow or a negative dim. */
bool av_shape_numel(const int64_t *shape, int ndim, size_t *out);

/* ---- tensor types (core/dtype.c: one table of names, GGUF ids, block sizes and bytes) ---- */
/* Bytes of numel elements of dtype; false on overflow or when numel is not a whole number of blocks. */
bool av_dtype_nbytes(av_dtype t, size_t numel, size_t *out);
/* Bytes of one row of cols values; false on overflow, cols < 0, or cols not a multiple of the block size.
 * Code that slices weight rows uses this, never `cols * 2 or 4`. */
bool av_dtype_row_bytes(av_dtype t, int64_t cols, size_t *out);
/* Bytes of one row (the innermost dimension) of t; 0 when that is not a whole number of blocks. */
size_t av_tensor_row_bytes(const av_tensor *t);
/* Values per block: 1 for F32/F16/BF16 and the integer types, 32 or 256 for the GGUF quantized types. */
int av_dtype_block_size(av_dtype t);
/* 1 for the block-quantized types (Q8_0, Q4_K, IQ4_XS, ...), 0 otherwise. */
int av_dtype_is_quantized(av_dtype t);
/* 1 for the types weights may have: F32, F16, BF16 and every quantized type. */
int av_dtype_is_weight(av_dtype t);

/* ---- bounded reader: every read checks the bytes remaining ---- */
typedef struct av_reader {
    const uint8_t *base;
    size_t size;
    size_t pos;
    const char *name; /* for messages, e.g. the file name */
} av_reader;

void av_reader_init(av_reader *r, const void *base, size_t size, const char *name);
size_t av_reader_left(const av_reader *r);
int av_read_bytes(av_reader *r, void *dst, size_t n, av_err *err);
/* Returns a pointer to n bytes inside the buffer and advances. */
int av_read_view(av_reader *r, const void **dst, size_t n, av_err *err);
int av_read_u8(av_reader *r, uint8_t *v, av_err *err);
int av_read_u32(av_reader *r, uint32_t *v, av_err *err);
int av_read_i32(av_reader *r, int32_t *v, av_err *err);
int av_read_u64(av_reader *r, uint64_t *v, av_err *err);
int av_read_f32(av_reader *r, float *v, av_err *err);
int av_reader_seek(av_reader *r, size_t pos, av_err *err);
int av_reader_align(av_reader *r, size_t alignment, av_err *err);

/* ---- read-only file mapping ---- */
typedef struct av_mapped_file {
    void *data;
    size_t size;
    char *path;
} av_mapped_file;

int av_file_map(const char *path, av_mapped_file *out, av_err *err);
void av_file_unmap(av_mapped_file *f);
/* Reads a whole (small) file into a NUL-terminated malloc'd buffer. */
int av_file_read_all(const char *path, size_t max_size, char **out, size_t *size, av_err *err);
bool av_path_is_dir(const char *path);

/* ---- atomic file writing: write to "<path>.tmp.<pid>.<n>", fsync-free rename on commit ---- */
typedef struct av_atomic_file {
    FILE *fp;
    char *path;
    char *tmp_path;
} av_atomic_file;

int av_atomic_open(av_atomic_file *f, const char *path, av_err *err);
int av_atomic_write(av_atomic_file *f, const void *data, size_t n, av_err *err);
int av_atomic_commit(av_atomic_file *f, av_err *err); /* closes and renames; on failure removes the temp */
void av_atomic_abort(av_atomic_file *f);              /* closes and removes the temp file */
/* Makes SIGINT, SIGTERM and SIGHUP remove every temp file still open, then kill the process as before
 * (the CLI calls it first; a command that handles these signals itself installs its own handler later). */
void av_atomic_remove_on_signals(void);

/* ---- half precision ---- */
float av_f16_to_f32(uint16_t h);
uint16_t av_f32_to_f16(float f);
float av_bf16_to_f32(uint16_t h);
uint16_t av_f32_to_bf16(float f);

/* ---- threads: fn(ctx, tid, start, end) over [0, n) split into contiguous ranges, thread tid of n ---- */
typedef void (*av_range_fn)(void *ctx, int tid, int64_t start, int64_t end);
void av_parallel_for(int n_threads, int64_t n, av_range_fn fn, void *ctx);
int av_default_threads(void);

/* ---- priority queue: binary heap of fixed-size elements, "before(a, b)" = a comes out first ---- */
#define AV_HEAP_MAX_ELEM 64
typedef struct av_heap {
    unsigned char *v; /* (cap, size) */
    size_t n, cap, size;
    int (*before)(const void *a, const void *b);
} av_heap;
void av_heap_init(av_heap *h, size_t elem_size, int (*before)(const void *, const void *));
int av_heap_push(av_heap *h, const void *elem); /* -1 when out of memory */
void av_heap_pop(av_heap *h, void *out);         /* h->n must be > 0 */
void av_heap_free(av_heap *h);

/* ---- growing byte buffer (NUL-terminated); oom is set and further writes dropped when allocation fails ---- */
typedef struct av_buf {
    char *s;
    size_t n, cap;
    int oom;
} av_buf;
void av_buf_put(av_buf *b, const void *s, size_t n);
void av_buf_printf(av_buf *b, const char *fmt, ...) AV_PRINTF(2, 3);

/* ---- small helpers ---- */
char *av_strdup(const char *s);
char *av_strndup(const char *s, size_t n);
/* Untrusted text for a one-line message: n bytes of s (at most cap - 1), control characters as '?'. Returns dst. */
const char *av_printable(char *dst, size_t cap, const char *s, size_t n);
void *av_malloc_checked(size_t n, av_err *err); /* NULL + message on failure */
double av_now_seconds(void);

#endif /* AV_CORE_H */
