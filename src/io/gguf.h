/* GGUF (llama.cpp's model format), versions 2 and 3: reading (mapped, every count, length, shape and offset
 * checked against the bytes left before anything is allocated) and writing (temp file + rename).
 *
 * Layout: "GGUF", u32 version, u64 tensor count, u64 kv count, the kvs (string key, u32 type, value), the
 * tensor infos (string name, u32 n_dims, u64 ne[n_dims] with ne[0] innermost, u32 ggml type, u64 offset),
 * padding to general.alignment (default 32), then the tensor data; offsets are relative to the start of the
 * data. Strings are a u64 byte length and the bytes (no NUL). Everything is little-endian. */
#ifndef AV_GGUF_H
#define AV_GGUF_H

#include "core/dtype.h" /* tensor types, their GGUF ids (AV_GGML_*), av_dtype_codec */

#define AV_GGUF_DEFAULT_ALIGNMENT 32

typedef enum av_gguf_type {
    AV_GGUF_U8 = 0,
    AV_GGUF_I8 = 1,
    AV_GGUF_U16 = 2,
    AV_GGUF_I16 = 3,
    AV_GGUF_U32 = 4,
    AV_GGUF_I32 = 5,
    AV_GGUF_F32 = 6,
    AV_GGUF_BOOL = 7,
    AV_GGUF_STRING = 8,
    AV_GGUF_ARRAY = 9,
    AV_GGUF_U64 = 10,
    AV_GGUF_I64 = 11,
    AV_GGUF_F64 = 12,
    AV_GGUF_TYPE_COUNT
} av_gguf_type;

const char *av_gguf_type_name(av_gguf_type t);
/* "Q4_K" for a known ggml type number, NULL for an unknown one. */
const char *av_ggml_type_name(uint32_t type);

/* A value view: scalars are decoded; strings and arrays point into the mapping. */
typedef struct av_gguf_value {
    av_gguf_type type;
    union {
        uint64_t u; /* U8, U16, U32, U64, BOOL */
        int64_t i;  /* I8, I16, I32, I64 */
        double f;   /* F32, F64 */
    } num;
    const char *str;         /* STRING: bytes (not NUL-terminated) */
    uint64_t str_len;        /* STRING: byte length */
    av_gguf_type arr_type;   /* ARRAY: element type */
    uint64_t arr_n;          /* ARRAY: element count */
    const uint8_t *arr_data; /* ARRAY: the encoded elements (unaligned) */
    size_t arr_bytes;        /* ARRAY: their size in bytes */
} av_gguf_value;

typedef struct av_gguf_kv {
    char *key; /* NUL-terminated copy */
    av_gguf_value v;
} av_gguf_kv;

typedef struct av_gguf_tensor_info {
    char *name;               /* NUL-terminated copy */
    int n_dims;               /* 1..4 */
    uint64_t ne[AV_MAX_DIMS]; /* ggml order: ne[0] innermost; unused entries 1 */
    uint32_t type;            /* ggml type number (one of core/dtype.c's table once opened) */
    uint64_t offset;          /* from the start of the data section */
    av_tensor t; /* view: shape reversed from ne (row-major, outermost first), data in the mapping */
} av_gguf_tensor_info;

typedef struct av_gguf {
    av_mapped_file file; /* when opened from a path (data NULL for av_gguf_parse) */
    const uint8_t *base; /* the image parsed */
    size_t size;
    char *name; /* path or name, for messages */
    uint32_t version;
    int64_t n_kv, n_tensors;
    av_gguf_kv *kv;               /* (n_kv) */
    av_gguf_tensor_info *tensors; /* (n_tensors) */
    size_t alignment;             /* general.alignment or 32 */
    size_t data_offset;           /* file offset of the data section */
} av_gguf;

/* Maps and parses path; on failure g is left closed. */
int av_gguf_open(const char *path, av_gguf *g, av_err *err);
/* Parses an in-memory image (not copied: must outlive g). name is used in messages. */
int av_gguf_parse(const void *data, size_t size, const char *name, av_gguf *g, av_err *err);
void av_gguf_close(av_gguf *g);

const av_gguf_kv *av_gguf_find_kv(const av_gguf *g, const char *key);
const av_gguf_tensor_info *av_gguf_find_tensor(const av_gguf *g, const char *name);

/* Typed getters: 0 when found (out filled), 1 when the key is absent (out untouched), -1 with a message when
 * the key holds another type. Integers accept any integer type (and bool); floats accept F32 and F64. */
int av_gguf_get_int(const av_gguf *g, const char *key, int64_t *out, av_err *err);
int av_gguf_get_f32(const av_gguf *g, const char *key, float *out, av_err *err);
/* String view (not NUL-terminated) in the mapping. */
int av_gguf_get_str(const av_gguf *g, const char *key, const char **s, size_t *len, av_err *err);
/* Array view; want_type is the element type required (AV_GGUF_TYPE_COUNT: any). */
int av_gguf_get_array(const av_gguf *g, const char *key, av_gguf_type want_type, const av_gguf_value **out,
                      av_err *err);

/* Element i of a numeric array (any integer or float element type; floats are truncated toward zero,
 * saturated to the int64 range, NaN gives 0). */
int64_t av_gguf_array_int(const av_gguf_value *a, uint64_t i);
double av_gguf_array_f64(const av_gguf_value *a, uint64_t i);
/* Next string of a string array: *pos starts at 0 and is advanced; returns -1 at the end. */
int av_gguf_array_next_str(const av_gguf_value *a, size_t *pos, const char **s, size_t *len);

/* ---- writing: kvs are encoded as they are added, tensors described and then streamed at save ---- */
typedef struct av_gguf_wtensor {
    char *name;
    av_dtype src_dtype; /* in memory: any weight type (converted by rows when dst differs) */
    av_dtype dst_dtype; /* written */
    int ndim;
    int64_t shape[AV_MAX_DIMS]; /* row-major, outermost first (written reversed as ne) */
    const void *data;           /* borrowed until av_gguf_writer_save returns */
    size_t nbytes;              /* written size */
    uint64_t offset;            /* in the data section */
} av_gguf_wtensor;

typedef struct av_gguf_writer {
    uint8_t *meta; /* encoded kvs */
    size_t meta_len, meta_cap;
    int64_t n_kv;
    av_gguf_wtensor *tensors;
    int n_tensors, cap_tensors;
    size_t alignment;            /* 32 */
    int failed;                  /* an earlier add ran out of memory */
    const av_dtype_codec *codec; /* conversions from/to quantized types (kernels/ is above io/: the caller
                                    sets av_quant_codec); NULL after init: F32, F16 and BF16 only */
} av_gguf_writer;

void av_gguf_writer_init(av_gguf_writer *w);
void av_gguf_writer_free(av_gguf_writer *w);
int av_gguf_writer_str(av_gguf_writer *w, const char *key, const char *value, av_err *err);
int av_gguf_writer_u32(av_gguf_writer *w, const char *key, uint32_t value, av_err *err);
int av_gguf_writer_f32(av_gguf_writer *w, const char *key, float value, av_err *err);
int av_gguf_writer_bool(av_gguf_writer *w, const char *key, int value, av_err *err);
/* Arrays: strings (n NUL-terminated), f32 and i32 values. */
int av_gguf_writer_arr_str(av_gguf_writer *w, const char *key, const char *const *values, size_t n,
                           av_err *err);
int av_gguf_writer_arr_f32(av_gguf_writer *w, const char *key, const float *values, size_t n, av_err *err);
int av_gguf_writer_arr_i32(av_gguf_writer *w, const char *key, const int32_t *values, size_t n, av_err *err);
/* Describes a tensor written at save: src == dst copied as is, or converted a few rows at a time
 * (io/convert.c: F32, F16 and BF16 here, quantized types through w->codec, which must then be set). Rows must
 * be whole blocks of both types. */
int av_gguf_writer_tensor(av_gguf_writer *w, const char *name, av_dtype src_dtype, av_dtype dst_dtype,
                          int ndim, const int64_t *shape, const void *data, av_err *err);
/* Writes version 3 to path (temp file + rename). */
int av_gguf_writer_save(const av_gguf_writer *w, const char *path, av_err *err);

#endif
