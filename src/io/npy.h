/* Arrays saved by other tools: NumPy .npy, .npz (zip of .npy, stored or deflated) and safetensors with
 * F16/F32/F64/BF16 tensors. Every byte is read through the bounded reader; shapes and offsets are checked
 * with overflow-safe arithmetic before use. Used by `attnviz import`. */
#ifndef AV_NPY_H
#define AV_NPY_H

#include "core/core.h"

#define AV_ARRAY_MAX_DIMS 8

typedef enum av_array_dtype { AV_ARRAY_F16 = 0, AV_ARRAY_F32, AV_ARRAY_F64, AV_ARRAY_BF16 } av_array_dtype;

typedef struct av_array {
    char *name;   /* "file.npy", "file.npz:arr_0", "file.safetensors:attn" (owned) */
    char *member; /* the array's own name: file stem, npz member without ".npy", or tensor name (owned) */
    av_array_dtype dtype;
    int big_endian;
    int ndim;
    int64_t shape[AV_ARRAY_MAX_DIMS];
    const uint8_t *data; /* points into a mapping or an inflated buffer owned by the av_arrays */
    size_t numel;
} av_array;

typedef struct av_arrays {
    av_array *items;
    int n, cap;
    av_mapped_file *maps; /* (n_maps) */
    int n_maps;
    void **bufs; /* inflated npz members (n_bufs) */
    int n_bufs;
} av_arrays;

/* Parses one .npy image held in buf (size bytes); out->data points into buf. name is used in messages. */
int av_npy_parse(const void *buf, size_t size, const char *name, av_array *out, av_err *err);

/* Adds the arrays of a file, chosen by extension (.npy, .npz, .safetensors) and checked against the magic
 * bytes; an npz contributes its members in natural order of their names (arr_2 before arr_10). */
int av_arrays_add_file(av_arrays *s, const char *path, av_err *err);
/* Adds an array held in memory (F32, F16 or BF16, C order, little-endian); the data is not copied and must
 * outlive s. name is both the array's name in messages and its member name (which gives its kind). */
int av_arrays_add_memory(av_arrays *s, const char *name, const av_tensor *t, av_err *err);
void av_arrays_free(av_arrays *s);

/* Writes a (rows, cols) float32 matrix as a version 1.0 .npy file (little-endian '<f4', C order), atomically.
 */
int av_npy_write_f32(const char *path, const float *data, int rows, int cols, av_err *err);

/* Element i of a as float (any dtype, either byte order). */
float av_array_get(const av_array *a, size_t i);
/* Compares names with embedded numbers by value ("arr_2" < "arr_10"). */
int av_natural_cmp(const char *a, const char *b);

#endif
