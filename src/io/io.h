/* File formats: safetensors (read + write), GGUF (read + write), llama2.c checkpoints, JSON helpers. */
#ifndef AV_IO_H
#define AV_IO_H

#include "core/dtype.h" /* tensor types; av_dtype_codec */

#include <jansson.h>

/* ---- safetensors reading ---- */
typedef struct av_st_entry {
    char *name;
    av_tensor t; /* data points into the mapping (or an aligned copy when the file's offset was misaligned) */
} av_st_entry;

typedef struct av_safetensors {
    av_mapped_file file;
    int n;
    av_st_entry *entries; /* (n) */
    json_t *metadata;     /* the "__metadata__" object, or NULL */
    void **copies;        /* aligned copies of misaligned tensors */
    int n_copies;
} av_safetensors;

int av_st_open(const char *path, av_safetensors *st, av_err *err);
void av_st_close(av_safetensors *st);
const av_tensor *av_st_find(const av_safetensors *st, const char *name);
const char *av_st_meta(const av_safetensors *st, const char *key);
int av_st_parse_dtype(const char *s, av_dtype *out);
const char *av_st_dtype_name(av_dtype t); /* safetensors spelling: F32, F16, BF16, I32, I64, U8 */

/* ---- the header alone, for readers of other dtypes (io/npy.c imports F64 attention) ---- */
#define AV_ST_MAX_DIMS 8

/* Checks the header of a safetensors file held in memory: its JSON object (duplicate keys refused,
 * __metadata__ an object when present) into *hdr (caller json_decrefs) and where the data section starts. */
int av_st_parse_header(const void *file, size_t size, const char *path, json_t **hdr, size_t *data_offset,
                       av_err *err);

/* One tensor descriptor, checked against a data section of data_size bytes. */
typedef struct av_st_desc {
    const char *dtype; /* as written ("F32", "F64", "I8", ...), borrowed from the header JSON */
    size_t elem_size;  /* bytes per element; 0 for a name the format does not define (not size-checked) */
    int ndim;
    int64_t shape[AV_ST_MAX_DIMS];
    size_t numel;
    uint64_t begin, end; /* byte range in the data section; end - begin = numel * elem_size */
} av_st_desc;
int av_st_parse_desc(const char *path, const char *name, const json_t *desc, size_t data_size,
                     av_st_desc *out, av_err *err);

/* ---- safetensors writing: tensors are described first, data streamed at save (temp file + rename) ---- */
typedef struct av_st_item {
    char *name;
    av_dtype src_dtype; /* dtype of data in memory */
    av_dtype dst_dtype; /* dtype written: same as src, or F32/F16/BF16 from any weight type */
    int ndim;
    int64_t shape[AV_MAX_DIMS];
    const void *data; /* borrowed: must stay valid until av_st_writer_save returns */
} av_st_item;

typedef struct av_st_writer {
    av_st_item *items;
    int n, cap;
    json_t *metadata; /* string -> string */
    const av_dtype_codec
        *codec; /* conversions beyond F32/F16/BF16 (kernels' av_quant_codec); NULL after init */
} av_st_writer;

void av_st_writer_init(av_st_writer *w);
void av_st_writer_free(av_st_writer *w);
int av_st_writer_meta(av_st_writer *w, const char *key, const char *value, av_err *err);
int av_st_writer_add(av_st_writer *w, const char *name, av_dtype src_dtype, av_dtype dst_dtype, int ndim,
                     const int64_t *shape, const void *data, av_err *err);
int av_st_writer_save(const av_st_writer *w, const char *path, av_err *err);

/* A safetensors file laid out before its data exists: the temp file is created at full size and mapped, so a
 * producer (the forward pass) writes tensors straight into the file's pages; committing writes the header and
 * renames. The data section starts at `room` (header_room rounded up to a page). */
typedef struct av_st_prealloc {
    av_atomic_file file; /* fp NULL once committed */
    unsigned char *map;  /* (map_len) the whole file: header room, then data */
    size_t map_len, room;
} av_st_prealloc;

/* 0; 1 when the filesystem cannot reserve space (EOPNOTSUPP) or the file cannot be mapped (nothing created:
 * keep the data in memory and save with the ordinary writer); -1 with a message when the file cannot be
 * created or its space cannot be reserved (full disk, file size limit): the run fails before it starts. */
int av_st_prealloc_open(av_st_prealloc *p, const char *path, size_t header_room, size_t data_bytes,
                        av_err *err);
/* Writes w into the prepared file: tensors whose data already sits at their place in the mapping are not
 * copied, others are copied in or appended; the header is padded with spaces to fill the room. Returns 0,
 * -1 on error (temp removed), or 1 without writing anything when w does not fit the layout (header larger
 * than the room, or a dtype conversion): the caller then saves normally. The mapping stays readable. */
int av_st_prealloc_commit(av_st_prealloc *p, const av_st_writer *w, av_err *err);
/* Unmaps; removes the temp file when it was never committed. */
void av_st_prealloc_free(av_st_prealloc *p);

/* ---- tensor data in another type (io/convert.c) ---- */
/* 1 when rows stored as src can be written as dst: the same type, or both weight types with F32, F16 and BF16
 * converted here and any other through codec (NULL: none). */
int av_dtype_convertible(const av_dtype_codec *codec, av_dtype src, av_dtype dst);
/* Appends rows x cols values stored as src to f as dst (av_dtype_convertible), converting a chunk of rows at
 * a time through f32. name is for messages. */
int av_write_converted(av_atomic_file *f, const av_dtype_codec *codec, const char *name, av_dtype src,
                       av_dtype dst, const void *data, int64_t rows, int64_t cols, av_err *err);

/* ---- JSON helpers (jansson) ---- */
int av_json_load_file(const char *path, json_t **out, av_err *err);
/* Integer member, or def when absent; -1 with a message when present but not an integer. */
int av_json_int(const json_t *obj, const char *key, int64_t def, int64_t *out, av_err *err);
int av_json_num(const json_t *obj, const char *key, double def, double *out, av_err *err);
const char *av_json_str(const json_t *obj, const char *key);

#endif
