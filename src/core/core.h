/* Internal core utilities shared by every module: errors, overflow-safe arithmetic, little-endian loads and
 * stores, the bounded reader, read-only file mapping, paths, atomic file writing, half precision, UTF-8,
 * hexadecimal digits, base64, the embedded web assets and row-split threading. Each small thing lives here
 * once. */
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

/* ---- little-endian byte order (every file format here is little-endian) ----
 * Headers and metadata are read and written through these, independent of the host; tensor data is mapped
 * and used as it lies in the file, so the host must be little-endian too (checked here at compile time). */
#if defined(__BYTE_ORDER__)
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "attnviz maps little-endian tensor data as is");
#endif
static inline uint16_t av_load_le16(const void *p) {
    const uint8_t *b = p;
    return (uint16_t)(b[0] | b[1] << 8);
}
static inline uint32_t av_load_le32(const void *p) {
    const uint8_t *b = p;
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}
static inline uint64_t av_load_le64(const void *p) {
    const uint8_t *b = p;
    return av_load_le32(b) | (uint64_t)av_load_le32(b + 4) << 32;
}
static inline void av_store_le16(void *p, uint16_t v) {
    uint8_t *b = p;
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
}
static inline void av_store_le32(void *p, uint32_t v) {
    uint8_t *b = p;
    for (int i = 0; i < 4; i++)
        b[i] = (uint8_t)(v >> (8 * i));
}
static inline void av_store_le64(void *p, uint64_t v) {
    av_store_le32(p, (uint32_t)v);
    av_store_le32((uint8_t *)p + 4, (uint32_t)(v >> 32));
}

/* ---- bounded reader: every read checks the bytes remaining; multi-byte values are little-endian ---- */
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
int av_read_u16(av_reader *r, uint16_t *v, av_err *err);
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

/* ---- paths (path.c): '/'-separated strings; only av_path_is_dir looks at the file system ---- */
/* The last component: "a/b.txt" -> "b.txt", "b.txt" -> "b.txt", "a/" -> "". Points into path. */
const char *av_path_basename(const char *path);
/* The last component's extension with its dot ("a/b.tar.gz" -> ".gz"), or "" (the end of path) when the
 * last component has no dot. Points into path. */
const char *av_path_extension(const char *path);
/* The directory part into out: "a/b" -> "a", "b" -> ".", "/b" -> "/", "a//b" -> "a". -1 when it does not
 * fit cap bytes (out then holds ""). */
int av_path_dirname(const char *path, char *out, size_t cap);
/* "dir/name" into out, one '/' between ("a/" + "b" -> "a/b", "" + "b" -> "b"). -1 when it does not fit. */
int av_path_join(char *out, size_t cap, const char *dir, const char *name);
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
/* All n bytes of data at offset off of fd (short writes continued, EINTR retried): 0, or -1 with errno. */
int av_pwrite_all(int fd, const void *data, size_t n, uint64_t off);
/* The whole file at once: open, write, commit (or abort). */
int av_file_write_atomic(const char *path, const void *data, size_t n, av_err *err);
/* Makes SIGINT, SIGTERM and SIGHUP remove every temp file still open, then kill the process as before
 * (the CLI calls it first; a command that handles these signals itself installs its own handler later). */
void av_atomic_remove_on_signals(void);

/* ---- writing past the page cache (direct_write.c) ----
 * A thread that writes byte ranges into an existing file with O_DIRECT, from n_bufs staging buffers of (at
 * least) buf_bytes that it lends: take one (waiting while all are queued), fill it, put it with its place in
 * the file; it comes back once written. Any offset and length work (unaligned ones cost a copy and reading
 * back the partial blocks at their ends); ranges must not overlap while queued, and nothing else may write
 * them. Used for large captures (docs/ARCHITECTURE.md, "Trace files"). */
typedef struct av_direct_writer av_direct_writer;
/* NULL when the file system takes no direct writes (tmpfs before Linux 6.6, ...), or out of memory: write
 * another way. */
av_direct_writer *av_direct_open(const char *path, int n_bufs, size_t buf_bytes);
/* The same staging buffers and thread copying each range into mem (len bytes: a file's shared mapping, for
 * file systems without direct writes) at its offset; name: the file, for errors. NULL: out of memory. */
av_direct_writer *av_direct_open_memory(unsigned char *mem, size_t len, const char *name, int n_bufs,
                                        size_t buf_bytes);
size_t av_direct_buffer_bytes(const av_direct_writer *w); /* buf_bytes rounded up to whole pages */
void *av_direct_take(av_direct_writer *w);
/* Queues buf's first len bytes for file offset off (more than the buffer holds fails the writer). */
void av_direct_put(av_direct_writer *w, void *buf, size_t len, uint64_t off);
/* Waits for every queued range, stops the thread and frees w (NULL: nothing): 0, or -1 with the first
 * failed write (later ranges are dropped once one fails). */
int av_direct_close(av_direct_writer *w, av_err *err);

/* ---- half precision ---- */
float av_f16_to_f32(uint16_t h);
uint16_t av_f32_to_f16(float f);
/* dst[i] = av_f32_to_f16(src[i]) for n values, 8 at a time with F16C (the same bits). dst may be src
 * (front to back, each value read before its half is stored: converted in place). */
void av_f32_to_f16_n(const float *src, uint16_t *dst, size_t n);
float av_bf16_to_f32(uint16_t h);
uint16_t av_f32_to_bf16(float f);

/* ---- UTF-8 (utf8.c): strict decoding (no overlongs, surrogates or values past U+10FFFF) ---- */
#define AV_UTF8_REPLACEMENT "\xEF\xBF\xBD" /* U+FFFD, what an invalid byte usually becomes */
/* Decodes the character at the start of s[0..n): returns its length (1-4) and sets *cp, or returns 0 when
 * s does not start with a valid character (or n is 0). */
int av_utf8_decode(const char *s, size_t n, uint32_t *cp);
/* Encodes cp into out; returns the length (1-4). A value past U+10FFFF is written as U+FFFD. Inline: the
 * byte-level tokenizers call it for every byte. */
static inline int av_utf8_encode(uint32_t cp, char out[4]) {
    if (cp > 0x10FFFF) cp = 0xFFFD;
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Number of bytes of the longest valid prefix of s[0..n). */
size_t av_utf8_valid_prefix(const char *s, size_t n);

/* ---- hexadecimal ---- */
/* The value of the n (at most 8) hexadecimal digits at s (0-9, a-f, A-F) into *v; -1 when one is not a
 * hexadecimal digit. */
static inline int av_hex_parse(const char *s, int n, uint32_t *v) {
    *v = 0;
    for (int i = 0; i < n; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) return -1;
        *v = *v << 4 | (uint32_t)d;
    }
    return 0;
}

/* ---- base64 (base64.c), RFC 4648 ---- */
/* Characters of the padded encoding of n bytes (no NUL), SIZE_MAX on overflow. */
size_t av_base64_len(size_t n);
/* Standard alphabet with '=' padding, into a malloc'd NUL-terminated string; NULL when out of memory. */
char *av_base64_encode(const void *data, size_t n);
/* Decodes s[0..n) written in the standard ("+/") or URL-safe ("-_") alphabet; '=' and line breaks are
 * skipped. *out is malloc'd (*out_n bytes). -1 on any other character or when out of memory. */
int av_base64_decode(const char *s, size_t n, uint8_t **out, size_t *out_n);

/* ---- files of web/ embedded at build time (asset.c; the table is written by tools/embed.c) ---- */
typedef struct av_asset {
    const char *name; /* file name without its directory: "viewer.js" */
    const unsigned char *data;
    size_t len; /* bytes; data[len] is an extra NUL, so text assets are C strings */
} av_asset;
/* The embedded file of that name, or NULL. */
const av_asset *av_asset_find(const char *name);

/* ---- threads: fn(ctx, tid, start, end) over [0, n) split into contiguous ranges, thread tid of n ---- */
typedef void (*av_range_fn)(void *ctx, int tid, int64_t start, int64_t end);
void av_parallel_for(int n_threads, int64_t n, av_range_fn fn, void *ctx);
int av_default_threads(void);
/* How long (ns) the pool's first worker polls for its next call before sleeping, 0 before it exists
 * (threads.c's adaptive budget; for tests, between calls). */
int av_pool_poll_budget_ns(void);

/* ---- priority queue: binary heap of fixed-size elements, "before(a, b)" = a comes out first ---- */
#define AV_HEAP_MAX_ELEM 64
typedef struct av_heap {
    unsigned char *v; /* (cap, size) */
    size_t n, cap, size;
    int (*before)(const void *a, const void *b);
} av_heap;
void av_heap_init(av_heap *h, size_t elem_size, int (*before)(const void *, const void *));
int av_heap_push(av_heap *h, const void *elem); /* -1 when out of memory */
void av_heap_pop(av_heap *h, void *out);        /* h->n must be > 0 */
void av_heap_free(av_heap *h);

/* ---- growing byte buffer (NUL-terminated); oom is set and further writes dropped when allocation fails ----
 */
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
/* Frees the n strings of s (NULL entries, or s NULL, allowed), then s. */
void av_strings_free(char **s, size_t n);
/* Untrusted text for a one-line message: n bytes of s (at most cap - 1), control characters as '?'. Returns
 * dst. */
const char *av_printable(char *dst, size_t cap, const char *s, size_t n);
void *av_malloc_checked(size_t n, av_err *err); /* NULL + message on failure */
/* n bytes (uninitialized) for a large buffer soon written whole (activations, staging, scratch), aligned to
 * `align` (a power of two up to 2 MiB) or more: from 2 MiB up aligned to 2 MiB and advised as transparent
 * huge pages, so its first touch takes a fault per 2 MiB instead of one per 4 KiB page (1.4-10 us each on
 * the VMs of docs/BENCHMARKS.md, "K-quant factors without a gather, huge pages for the forward pass's
 * buffers (session 37)"). NULL when memory runs out; free() it. */
void *av_alloc_large(size_t n, size_t align);
/* SplitMix64 (Steele, Lea, Flood 2014): the next value of the stream whose state is *state (start it at a
 * seed). Reproducible across platforms; scripts/train_induction.py and scripts/ref_attrib.py replay it. */
uint64_t av_splitmix64(uint64_t *state);
double av_now_seconds(void);

#endif /* AV_CORE_H */
