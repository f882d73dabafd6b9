/* safetensors: 8-byte little-endian header length, a JSON header, then raw little-endian tensor bytes.
 * Reading maps the file and checks every dtype, shape and offset; writing streams to a temp file + rename. */
#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define AV_ST_MAX_HEADER (100u << 20)

static const struct {
    const char *name;
    av_dtype dtype;
} st_dtypes[] = {{"F32", AV_DTYPE_F32}, {"F16", AV_DTYPE_F16}, {"BF16", AV_DTYPE_BF16},
                 {"I32", AV_DTYPE_I32}, {"I64", AV_DTYPE_I64}, {"U8", AV_DTYPE_U8}};

int av_st_parse_dtype(const char *s, av_dtype *out) {
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++) {
        if (strcmp(s, st_dtypes[i].name) == 0) {
            *out = st_dtypes[i].dtype;
            return 0;
        }
    }
    return -1;
}

const char *av_st_dtype_name(av_dtype t) {
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (st_dtypes[i].dtype == t) return st_dtypes[i].name;
    return NULL;
}

static size_t dtype_align(av_dtype t) {
    switch (t) {
    case AV_DTYPE_F32:
    case AV_DTYPE_I32: return 4;
    case AV_DTYPE_I64: return 8;
    case AV_DTYPE_F16:
    case AV_DTYPE_BF16: return 2;
    default: return 1;
    }
}

/* ---- the header, shared by av_st_open and the attention importer (io/npy.c) ---- */

/* Every element type of the format and its size, for the byte-range check of any tensor. */
static const struct {
    const char *name;
    size_t size;
} st_all_dtypes[] = {{"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1},
                     {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},
                     {"U32", 4},  {"F32", 4}, {"I64", 8}, {"U64", 8},     {"F64", 8}};

static size_t st_elem_size(const char *dtype) {
    for (size_t i = 0; i < sizeof st_all_dtypes / sizeof st_all_dtypes[0]; i++)
        if (strcmp(dtype, st_all_dtypes[i].name) == 0) return st_all_dtypes[i].size;
    return 0;
}

int av_st_parse_header(const void *file, size_t size, const char *path, json_t **hdr, size_t *data_offset,
                       av_err *err) {
    *hdr = NULL;
    av_reader r;
    av_reader_init(&r, file, size, path);
    uint64_t hlen;
    const void *htext;
    if (av_read_u64(&r, &hlen, err)) return -1;
    if (hlen > AV_ST_MAX_HEADER || hlen > av_reader_left(&r))
        return av_errf(err,
                       "%s: not a safetensors file: header length %llu does not fit in the file (%zu bytes)",
                       path, (unsigned long long)hlen, size);
    if (av_read_view(&r, &htext, (size_t)hlen, err)) return -1;
    json_error_t je;
    json_t *h = json_loadb(htext, (size_t)hlen, JSON_REJECT_DUPLICATES, &je);
    if (!h || !json_is_object(h)) {
        av_errf(err, "%s: not a safetensors file: header is not a JSON object (%s at column %d)", path,
                h ? "wrong type" : je.text, je.column);
        json_decref(h);
        return -1;
    }
    json_t *meta = json_object_get(h, "__metadata__");
    if (meta && !json_is_object(meta)) {
        json_decref(h);
        return av_errf(err, "%s: __metadata__ must be an object", path);
    }
    *hdr = h;
    *data_offset = r.pos;
    return 0;
}

int av_st_parse_desc(const char *path, const char *name, const json_t *desc, size_t data_size,
                     av_st_desc *out, av_err *err) {
    memset(out, 0, sizeof *out);
    if (!json_is_object(desc))
        return av_errf(err, "%s: tensor '%s': descriptor is not an object", path, name);
    const char *dt = av_json_str(desc, "dtype");
    json_t *shape = json_object_get(desc, "shape");
    json_t *offs = json_object_get(desc, "data_offsets");
    if (!dt || !json_is_array(shape) || !json_is_array(offs) || json_array_size(offs) != 2)
        return av_errf(err, "%s: tensor '%s': needs dtype, shape and data_offsets [begin, end]", path, name);
    out->dtype = dt;
    out->elem_size = st_elem_size(dt);
    size_t nd = json_array_size(shape);
    if (nd > AV_ST_MAX_DIMS)
        return av_errf(err, "%s: tensor '%s': %zu dimensions (max %d)", path, name, nd, AV_ST_MAX_DIMS);
    out->ndim = (int)nd;
    for (size_t i = 0; i < nd; i++) {
        json_t *d = json_array_get(shape, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0)
            return av_errf(err, "%s: tensor '%s': shape entries must be non-negative integers", path, name);
        out->shape[i] = json_integer_value(d);
    }
    json_t *b = json_array_get(offs, 0), *en = json_array_get(offs, 1);
    if (!json_is_integer(b) || !json_is_integer(en) || json_integer_value(b) < 0 ||
        json_integer_value(en) < json_integer_value(b))
        return av_errf(err, "%s: tensor '%s': bad data_offsets", path, name);
    out->begin = (uint64_t)json_integer_value(b);
    out->end = (uint64_t)json_integer_value(en);
    if (out->end > data_size)
        return av_errf(err, "%s: tensor '%s': data_offsets [%llu, %llu] past the end of the data (%zu bytes)",
                       path, name, (unsigned long long)out->begin, (unsigned long long)out->end, data_size);
    size_t nbytes;
    if (!av_shape_numel(out->shape, out->ndim, &out->numel) ||
        !av_mul_size(out->numel, out->elem_size ? out->elem_size : 1, &nbytes))
        return av_errf(err, "%s: tensor '%s': shape overflows", path, name);
    if (out->elem_size && nbytes != out->end - out->begin)
        return av_errf(err, "%s: tensor '%s': shape needs %zu bytes but data_offsets give %llu", path, name,
                       nbytes, (unsigned long long)(out->end - out->begin));
    return 0;
}

/* ---- reading for the engine: the dtypes it computes with, aligned views into the mapping ---- */

static int open_entry(av_safetensors *st, const char *name, const json_t *desc, const uint8_t *data,
                      size_t data_size, av_st_entry *e, av_err *err) {
    const char *path = st->file.path;
    av_st_desc d;
    if (av_st_parse_desc(path, name, desc, data_size, &d, err)) return -1;
    if (av_st_parse_dtype(d.dtype, &e->t.dtype))
        return av_errf(err,
                       "%s: tensor '%s': unsupported dtype '%s' (supported: F32, F16, BF16, I32, I64, U8)",
                       path, name, d.dtype);
    if (d.ndim > AV_MAX_DIMS)
        return av_errf(err, "%s: tensor '%s': %d dimensions (max %d)", path, name, d.ndim, AV_MAX_DIMS);
    e->t.ndim = d.ndim;
    memcpy(e->t.shape, d.shape, sizeof(int64_t) * (size_t)d.ndim);
    size_t nbytes = (size_t)(d.end - d.begin);
    e->name = av_strdup(name);
    e->t.nbytes = nbytes;
    const uint8_t *p = data + d.begin;
    if ((uintptr_t)p % dtype_align(e->t.dtype)) { /* keep typed access aligned */
        void *copy = malloc(nbytes ? nbytes : 1);
        void **grown = realloc(st->copies, sizeof(void *) * (size_t)(st->n_copies + 1));
        if (!copy || !grown) {
            free(copy);
            if (grown) st->copies = grown;
            return av_errf(err, "%s: out of memory", path);
        }
        st->copies = grown;
        memcpy(copy, p, nbytes);
        st->copies[st->n_copies++] = copy;
        p = copy;
    }
    e->t.data = p;
    return e->name ? 0 : av_errf(err, "out of memory");
}

int av_st_open(const char *path, av_safetensors *st, av_err *err) {
    memset(st, 0, sizeof *st);
    if (av_file_map(path, &st->file, err)) return -1;
    json_t *hdr;
    size_t data_offset;
    if (av_st_parse_header(st->file.data, st->file.size, path, &hdr, &data_offset, err)) goto fail;
    const uint8_t *data = (const uint8_t *)st->file.data + data_offset;
    size_t data_size = st->file.size - data_offset;
    size_t n = json_object_size(hdr);
    st->entries = calloc(n ? n : 1, sizeof *st->entries);
    if (!st->entries) {
        json_decref(hdr);
        av_errf(err, "%s: out of memory", path);
        goto fail;
    }
    const char *key;
    json_t *val;
    json_object_foreach(hdr, key, val) {
        if (strcmp(key, "__metadata__") == 0) {
            st->metadata = json_incref(val);
            continue;
        }
        if (open_entry(st, key, val, data, data_size, &st->entries[st->n], err)) {
            json_decref(hdr);
            goto fail;
        }
        st->n++;
    }
    json_decref(hdr);
    return 0;
fail:
    av_st_close(st);
    return -1;
}

void av_st_close(av_safetensors *st) {
    for (int i = 0; i < st->n; i++)
        free(st->entries[i].name);
    free(st->entries);
    for (int i = 0; i < st->n_copies; i++)
        free(st->copies[i]);
    free(st->copies);
    json_decref(st->metadata);
    av_file_unmap(&st->file);
    memset(st, 0, sizeof *st);
}

const av_tensor *av_st_find(const av_safetensors *st, const char *name) {
    for (int i = 0; i < st->n; i++)
        if (strcmp(st->entries[i].name, name) == 0) return &st->entries[i].t;
    return NULL;
}

const char *av_st_meta(const av_safetensors *st, const char *key) {
    return st->metadata ? av_json_str(st->metadata, key) : NULL;
}

/* ---- writing ---- */

void av_st_writer_init(av_st_writer *w) {
    memset(w, 0, sizeof *w);
    w->metadata = json_object();
}

void av_st_writer_free(av_st_writer *w) {
    for (int i = 0; i < w->n; i++)
        free(w->items[i].name);
    free(w->items);
    json_decref(w->metadata);
    memset(w, 0, sizeof *w);
}

int av_st_writer_meta(av_st_writer *w, const char *key, const char *value, av_err *err) {
    if (!w->metadata || json_object_set_new(w->metadata, key, json_string(value)))
        return av_errf(err, "metadata '%s': not valid UTF-8 or out of memory", key);
    return 0;
}

int av_st_writer_add(av_st_writer *w, const char *name, av_dtype src_dtype, av_dtype dst_dtype, int ndim,
                     const int64_t *shape, const void *data, av_err *err) {
    if (ndim < 0 || ndim > AV_MAX_DIMS) return av_errf(err, "tensor '%s': bad rank %d", name, ndim);
    if (src_dtype != dst_dtype && (ndim < 1 || !av_dtype_convertible(w->codec, src_dtype, dst_dtype) ||
                                   shape[ndim - 1] % av_dtype_block_size(src_dtype)))
        return av_errf(err, "tensor '%s': cannot write %s data as %s", name, av_dtype_name(src_dtype),
                       av_dtype_name(dst_dtype));
    if (!av_st_dtype_name(dst_dtype))
        return av_errf(err, "tensor '%s': dtype %s has no safetensors name", name, av_dtype_name(dst_dtype));
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 16;
        av_st_item *p = realloc(w->items, sizeof *p * (size_t)cap);
        if (!p) return av_errf(err, "out of memory");
        w->items = p;
        w->cap = cap;
    }
    av_st_item *it = &w->items[w->n];
    memset(it, 0, sizeof *it);
    it->name = av_strdup(name);
    if (!it->name) return av_errf(err, "out of memory");
    it->src_dtype = src_dtype;
    it->dst_dtype = dst_dtype;
    it->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        it->shape[i] = shape[i];
    it->data = data;
    w->n++;
    return 0;
}

static int item_bytes(const av_st_item *it, size_t *nbytes) {
    size_t numel;
    return av_shape_numel(it->shape, it->ndim, &numel) && av_dtype_nbytes(it->dst_dtype, numel, nbytes) ? 0
                                                                                                        : -1;
}

/* Writes one tensor, converted by rows (io/convert.c) when its written type differs: no second full copy. */
static int write_item(av_atomic_file *f, const av_st_writer *w, const av_st_item *it, size_t nbytes,
                      av_err *err) {
    if (it->src_dtype == it->dst_dtype) return av_atomic_write(f, it->data, nbytes, err);
    int64_t rows = 1;
    for (int d = 0; d < it->ndim - 1; d++)
        rows *= it->shape[d]; /* sizes checked by item_bytes */
    return av_write_converted(f, w->codec, it->name, it->src_dtype, it->dst_dtype, it->data, rows,
                              it->shape[it->ndim - 1], err);
}

/* The header JSON (unpadded, malloc'd) and the data section's size for w's items laid out in order. */
static int writer_header(const av_st_writer *w, char **text, size_t *data_bytes, av_err *err) {
    json_t *hdr = json_object();
    if (!hdr) return av_errf(err, "out of memory");
    if (json_object_size(w->metadata)) json_object_set(hdr, "__metadata__", w->metadata);
    size_t offset = 0;
    for (int i = 0; i < w->n; i++) {
        const av_st_item *it = &w->items[i];
        size_t nbytes;
        if (item_bytes(it, &nbytes) || !av_add_size(offset, nbytes, &offset)) {
            json_decref(hdr);
            return av_errf(err, "tensor '%s': size overflows", it->name);
        }
        json_t *shape = json_array();
        for (int d = 0; d < it->ndim; d++)
            json_array_append_new(shape, json_integer(it->shape[d]));
        json_t *desc = json_pack("{s:s, s:o, s:[I,I]}", "dtype", av_st_dtype_name(it->dst_dtype), "shape",
                                 shape, "data_offsets", (json_int_t)(offset - nbytes), (json_int_t)offset);
        if (!desc || json_object_set_new(hdr, it->name, desc)) {
            json_decref(hdr);
            return av_errf(err, "tensor '%s': cannot build header", it->name);
        }
    }
    *text = json_dumps(hdr, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(hdr);
    *data_bytes = offset;
    return *text ? 0 : av_errf(err, "out of memory");
}

int av_st_writer_save(const av_st_writer *w, const char *path, av_err *err) {
    char *text;
    size_t data_bytes;
    if (writer_header(w, &text, &data_bytes, err)) return -1;
    size_t tlen = strlen(text), padded = (tlen + 7) & ~(size_t)7;
    uint8_t hlen[8]; /* the header length, little-endian */
    av_store_le64(hlen, padded);
    av_atomic_file f;
    if (av_atomic_open(&f, path, err)) {
        free(text);
        return -1;
    }
    int rc = av_atomic_write(&f, hlen, 8, err) || av_atomic_write(&f, text, tlen, err) ||
             av_atomic_write(&f, "        ", padded - tlen, err);
    free(text);
    for (int i = 0; !rc && i < w->n; i++) {
        size_t nbytes;
        item_bytes(&w->items[i], &nbytes);
        rc = write_item(&f, w, &w->items[i], nbytes, err);
    }
    if (rc) {
        av_atomic_abort(&f);
        return -1;
    }
    return av_atomic_commit(&f, err);
}

/* ---- files laid out before their data exists ---- */

int av_st_prealloc_open(av_st_prealloc *p, const char *path, size_t header_room, size_t data_bytes,
                        av_err *err) {
    memset(p, 0, sizeof *p);
    p->room = (header_room + 4095) & ~(size_t)4095; /* page-aligned data section */
    if (!av_add_size(p->room, data_bytes, &p->map_len)) return av_errf(err, "%s: size overflows", path);
    if (av_atomic_open(&p->file, path, err)) return -1;
    int fd = fileno(p->file.fp);
    /* blocks reserved up front: a full disk (or a file size limit) fails here, before the run, with a clear
     * error, instead of at save or as SIGBUS on a page fault. A filesystem that cannot reserve space
     * (EOPNOTSUPP, EINVAL) gets no mapping: the caller keeps its data in memory and saves with the ordinary
     * writer (docs/ARCHITECTURE.md). */
    int e = posix_fallocate(fd, 0, (off_t)p->map_len);
    if (e && e != EOPNOTSUPP && e != EINVAL && e != ENOSYS) {
        av_errf(err, "%s: cannot reserve %zu MiB on disk for the trace: %s", path, p->map_len >> 20,
                strerror(e));
        av_atomic_abort(&p->file);
        memset(p, 0, sizeof *p);
        return -1;
    }
    void *map = e ? MAP_FAILED : mmap(NULL, p->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) { /* no reservation possible, or no address space: keep the data in memory */
        av_atomic_abort(&p->file);
        memset(p, 0, sizeof *p);
        return 1;
    }
    p->map = map;
    return 0;
}

int av_st_prealloc_commit(av_st_prealloc *p, const av_st_writer *w, av_err *err) {
    if (!p->map || !p->file.fp) return 1;
    char *text;
    size_t data_bytes;
    if (writer_header(w, &text, &data_bytes, err)) return -1;
    size_t tlen = strlen(text), total;
    int fits = tlen + 8 <= p->room && av_add_size(p->room, data_bytes, &total);
    for (int i = 0; fits && i < w->n; i++) /* every tensor not in place must be a plain copy */
        fits = w->items[i].src_dtype == w->items[i].dst_dtype;
    if (!fits) {
        free(text);
        return 1;
    }
    int fd = fileno(p->file.fp), rc = 0;
    av_store_le64(p->map, p->room - 8);
    memcpy(p->map + 8, text, tlen);
    memset(p->map + 8 + tlen, ' ', p->room - 8 - tlen);
    free(text);
    size_t offset = 0;
    for (int i = 0; !rc && i < w->n; i++) {
        size_t nbytes, at = p->room + offset;
        item_bytes(&w->items[i], &nbytes);
        offset += nbytes;
        const unsigned char *src = w->items[i].data;
        if (at + nbytes <= p->map_len) {
            if (src != p->map + at) memmove(p->map + at, src, nbytes);
            continue;
        }
        if (av_pwrite_all(fd, src, nbytes, at)) /* past the mapping: append */
            rc = av_errf(err, "%s: write failed: %s", p->file.path, strerror(errno));
    }
    if (!rc && total < p->map_len && ftruncate(fd, (off_t)total) != 0)
        rc = av_errf(err, "%s: cannot set the size: %s", p->file.path, strerror(errno));
    if (rc) {
        av_atomic_abort(&p->file);
        return -1;
    }
    return av_atomic_commit(&p->file, err); /* the mapping stays valid after close and rename */
}

void av_st_prealloc_free(av_st_prealloc *p) {
    if (p->file.fp) av_atomic_abort(&p->file); /* never committed: no half file is left */
    if (p->map) munmap(p->map, p->map_len);
    memset(p, 0, sizeof *p);
}
