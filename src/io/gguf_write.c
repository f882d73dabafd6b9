/* GGUF writing (version 3). kvs are encoded into a buffer as they are added; tensors are described first and
 * their data streamed at save, into a temp file + rename. A tensor whose written type differs from its source
 * is converted a few rows at a time (io/convert.c; quantized types through the caller's codec), never whole.
 */
#include "gguf.h"
#include "io.h"

#include <stdlib.h>
#include <string.h>

void av_gguf_writer_init(av_gguf_writer *w) {
    memset(w, 0, sizeof *w);
    w->alignment = AV_GGUF_DEFAULT_ALIGNMENT;
}

void av_gguf_writer_free(av_gguf_writer *w) {
    for (int i = 0; i < w->n_tensors; i++)
        free(w->tensors[i].name);
    free(w->tensors);
    free(w->meta);
    memset(w, 0, sizeof *w);
}

static int put(av_gguf_writer *w, const void *p, size_t n) {
    if (w->failed) return -1;
    if (n > w->meta_cap - w->meta_len) {
        size_t cap = w->meta_cap ? w->meta_cap : 4096;
        while (cap - w->meta_len < n) {
            if (!av_mul_size(cap, 2, &cap)) {
                w->failed = 1;
                return -1;
            }
        }
        uint8_t *grown = realloc(w->meta, cap);
        if (!grown) {
            w->failed = 1;
            return -1;
        }
        w->meta = grown;
        w->meta_cap = cap;
    }
    memcpy(w->meta + w->meta_len, p, n);
    w->meta_len += n;
    return 0;
}

static int put_u32(av_gguf_writer *w, uint32_t v) {
    uint8_t b[4];
    av_store_le32(b, v);
    return put(w, b, 4);
}

static int put_u64(av_gguf_writer *w, uint64_t v) {
    uint8_t b[8];
    av_store_le64(b, v);
    return put(w, b, 8);
}
static int put_str(av_gguf_writer *w, const char *s) {
    size_t n = strlen(s);
    return put_u64(w, n) || put(w, s, n) ? -1 : 0;
}

/* Starts a kv: key and value type. */
static int put_key(av_gguf_writer *w, const char *key, av_gguf_type type) {
    if (put_str(w, key) || put_u32(w, (uint32_t)type)) return -1;
    w->n_kv++;
    return 0;
}

static int done(av_gguf_writer *w, const char *key, int rc, av_err *err) {
    return rc || w->failed ? av_errf(err, "gguf: out of memory writing key '%s'", key) : 0;
}

int av_gguf_writer_str(av_gguf_writer *w, const char *key, const char *value, av_err *err) {
    return done(w, key, put_key(w, key, AV_GGUF_STRING) || put_str(w, value), err);
}

int av_gguf_writer_u32(av_gguf_writer *w, const char *key, uint32_t value, av_err *err) {
    return done(w, key, put_key(w, key, AV_GGUF_U32) || put_u32(w, value), err);
}

int av_gguf_writer_f32(av_gguf_writer *w, const char *key, float value, av_err *err) {
    uint32_t bits;
    memcpy(&bits, &value, 4);
    return done(w, key, put_key(w, key, AV_GGUF_F32) || put_u32(w, bits), err);
}

int av_gguf_writer_bool(av_gguf_writer *w, const char *key, int value, av_err *err) {
    uint8_t b = value != 0;
    return done(w, key, put_key(w, key, AV_GGUF_BOOL) || put(w, &b, 1), err);
}

static int put_arr_header(av_gguf_writer *w, const char *key, av_gguf_type et, size_t n) {
    return put_key(w, key, AV_GGUF_ARRAY) || put_u32(w, (uint32_t)et) || put_u64(w, n) ? -1 : 0;
}

int av_gguf_writer_arr_str(av_gguf_writer *w, const char *key, const char *const *values, size_t n,
                           av_err *err) {
    int rc = put_arr_header(w, key, AV_GGUF_STRING, n);
    for (size_t i = 0; !rc && i < n; i++)
        rc = put_str(w, values[i]);
    return done(w, key, rc, err);
}

int av_gguf_writer_arr_f32(av_gguf_writer *w, const char *key, const float *values, size_t n, av_err *err) {
    size_t bytes;
    if (!av_mul_size(n, 4, &bytes)) return av_errf(err, "gguf: key '%s': array too large", key);
    return done(w, key, put_arr_header(w, key, AV_GGUF_F32, n) || put(w, values, bytes), err);
}

int av_gguf_writer_arr_i32(av_gguf_writer *w, const char *key, const int32_t *values, size_t n, av_err *err) {
    size_t bytes;
    if (!av_mul_size(n, 4, &bytes)) return av_errf(err, "gguf: key '%s': array too large", key);
    return done(w, key, put_arr_header(w, key, AV_GGUF_I32, n) || put(w, values, bytes), err);
}

int av_gguf_writer_tensor(av_gguf_writer *w, const char *name, av_dtype src_dtype, av_dtype dst_dtype,
                          int ndim, const int64_t *shape, const void *data, av_err *err) {
    if (ndim < 1 || ndim > AV_MAX_DIMS)
        return av_errf(err, "gguf: tensor '%s': rank %d (1 to 4)", name, ndim);
    const av_dtype_traits *dt = av_dtype_get_traits(dst_dtype);
    if (!dt || dt->ggml_type < 0 || !av_dtype_is_weight(dst_dtype))
        return av_errf(err, "gguf: tensor '%s': cannot write %s", name, av_dtype_name(dst_dtype));
    if (!av_dtype_convertible(w->codec, src_dtype, dst_dtype))
        return av_errf(err, "gguf: tensor '%s': cannot convert %s data to %s%s", name,
                       av_dtype_name(src_dtype), av_dtype_name(dst_dtype),
                       w->codec ? "" : " (needs a codec: av_gguf_writer.codec)");
    if (shape[ndim - 1] % dt->block || shape[ndim - 1] % av_dtype_block_size(src_dtype))
        return av_errf(err, "gguf: tensor '%s': %s needs rows of a multiple of %d values, not %lld", name,
                       av_dtype_name(dst_dtype), dt->block, (long long)shape[ndim - 1]);
    size_t numel, nbytes;
    if (!av_shape_numel(shape, ndim, &numel) || !av_dtype_nbytes(dst_dtype, numel, &nbytes))
        return av_errf(err, "gguf: tensor '%s': size overflows", name);
    if (w->n_tensors == w->cap_tensors) {
        int cap = w->cap_tensors ? 2 * w->cap_tensors : 64;
        av_gguf_wtensor *p = realloc(w->tensors, sizeof *p * (size_t)cap);
        if (!p) return av_errf(err, "out of memory");
        w->tensors = p;
        w->cap_tensors = cap;
    }
    av_gguf_wtensor *t = &w->tensors[w->n_tensors];
    memset(t, 0, sizeof *t);
    t->name = av_strdup(name);
    if (!t->name) return av_errf(err, "out of memory");
    t->src_dtype = src_dtype;
    t->dst_dtype = dst_dtype;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++)
        t->shape[d] = shape[d];
    t->data = data;
    t->nbytes = nbytes;
    w->n_tensors++;
    return 0;
}

static size_t pad_to(size_t n, size_t a) { return (a - n % a) % a; }

static int write_pad(av_atomic_file *f, size_t n, av_err *err) {
    static const uint8_t zeros[64];
    while (n) {
        size_t k = n < sizeof zeros ? n : sizeof zeros;
        if (av_atomic_write(f, zeros, k, err)) return -1;
        n -= k;
    }
    return 0;
}

/* Streams one tensor's data, converted by rows when its written type differs. */
static int write_data(av_atomic_file *f, const av_gguf_writer *w, const av_gguf_wtensor *t, av_err *err) {
    if (t->src_dtype == t->dst_dtype) return av_atomic_write(f, t->data, t->nbytes, err);
    int64_t rows = 1;
    for (int d = 0; d < t->ndim - 1; d++)
        rows *= t->shape[d]; /* sizes checked when added */
    return av_write_converted(f, w->codec, t->name, t->src_dtype, t->dst_dtype, t->data, rows,
                              t->shape[t->ndim - 1], err);
}

int av_gguf_writer_save(const av_gguf_writer *w, const char *path, av_err *err) {
    if (w->failed) return av_errf(err, "%s: out of memory building the GGUF header", path);
    /* the header: magic, version, counts, kvs, then tensor infos with offsets laid out at the alignment */
    av_gguf_writer hdr;
    av_gguf_writer_init(&hdr);
    uint32_t version = 3;
    put(&hdr, "GGUF", 4);
    put_u32(&hdr, version);
    put_u64(&hdr, (uint64_t)w->n_tensors);
    put_u64(&hdr, (uint64_t)w->n_kv);
    if (w->meta_len) put(&hdr, w->meta, w->meta_len);
    size_t offset = 0;
    for (int i = 0; i < w->n_tensors; i++) {
        const av_gguf_wtensor *t = &w->tensors[i];
        put_str(&hdr, t->name);
        put_u32(&hdr, (uint32_t)t->ndim);
        for (int d = t->ndim - 1; d >= 0; d--)
            put_u64(&hdr, (uint64_t)t->shape[d]); /* ne[0] innermost */
        put_u32(&hdr, (uint32_t)av_dtype_get_traits(t->dst_dtype)->ggml_type);
        put_u64(&hdr, offset);
        if (!av_add_size(offset, t->nbytes + pad_to(t->nbytes, w->alignment), &offset)) hdr.failed = 1;
    }
    if (hdr.failed) {
        av_gguf_writer_free(&hdr);
        return av_errf(err, "%s: out of memory building the GGUF header", path);
    }
    av_atomic_file f;
    if (av_atomic_open(&f, path, err)) {
        av_gguf_writer_free(&hdr);
        return -1;
    }
    int rc = av_atomic_write(&f, hdr.meta, hdr.meta_len, err) ||
             write_pad(&f, pad_to(hdr.meta_len, w->alignment), err);
    av_gguf_writer_free(&hdr);
    for (int i = 0; !rc && i < w->n_tensors; i++)
        rc = write_data(&f, w, &w->tensors[i], err) ||
             write_pad(&f, pad_to(w->tensors[i].nbytes, w->alignment), err);
    if (rc) {
        av_atomic_abort(&f);
        return -1;
    }
    return av_atomic_commit(&f, err);
}
