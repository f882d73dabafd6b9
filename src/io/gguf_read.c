/* GGUF reading. Every count is checked against the bytes left before anything is allocated (a kv count of
 * 2^60 fails at once), every string length against the end of the file, every shape product and offset + size
 * with overflow-safe arithmetic. Tensor views point into the mapping. */
#include "gguf.h"

#include <stdlib.h>
#include <string.h>

#define AV_GGUF_MAX_DEPTH 8   /* nested arrays */
#define AV_GGUF_MAX_KEY 65535 /* bytes in a key or tensor name */
#define AV_GGUF_MAX_ALIGNMENT (1u << 24)

static const char *const gguf_type_names[AV_GGUF_TYPE_COUNT] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"};

/* Encoded size of a fixed-size value type; 0 for string and array. */
static size_t type_size(av_gguf_type t) {
    static const size_t sizes[AV_GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return (unsigned)t < AV_GGUF_TYPE_COUNT ? sizes[t] : 0;
}

const char *av_gguf_type_name(av_gguf_type t) {
    return (unsigned)t < AV_GGUF_TYPE_COUNT ? gguf_type_names[t] : "?";
}

const char *av_ggml_type_name(uint32_t type) {
    static const char *const names[] = {
        "F32",      "F16",      "Q4_0",    "Q4_1",  "Q4_2",       "Q4_3",       "Q5_0",       "Q5_1",
        "Q8_0",     "Q8_1",     "Q2_K",    "Q3_K",  "Q4_K",       "Q5_K",       "Q6_K",       "Q8_K",
        "IQ2_XXS",  "IQ2_XS",   "IQ3_XXS", "IQ1_S", "IQ4_NL",     "IQ3_S",      "IQ2_S",      "IQ4_XS",
        "I8",       "I16",      "I32",     "I64",   "F64",        "IQ1_M",      "BF16",       "Q4_0_4_4",
        "Q4_0_4_8", "Q4_0_8_8", "TQ1_0",   "TQ2_0", "IQ4_NL_4_4", "IQ4_NL_4_8", "IQ4_NL_8_8", "MXFP4"};
    return type < sizeof names / sizeof names[0] ? names[type] : NULL;
}

static int is_int_type(av_gguf_type t) {
    return t == AV_GGUF_U8 || t == AV_GGUF_I8 || t == AV_GGUF_U16 || t == AV_GGUF_I16 || t == AV_GGUF_U32 ||
           t == AV_GGUF_I32 || t == AV_GGUF_U64 || t == AV_GGUF_I64 || t == AV_GGUF_BOOL;
}

/* Decodes one fixed-size little-endian value of type t at p. */
static void decode_scalar(av_gguf_type t, const uint8_t *p, av_gguf_value *v) {
    uint32_t u32;
    uint64_t u64;
    float f32;
    v->type = t;
    switch (t) {
    case AV_GGUF_U8: v->num.u = p[0]; break;
    case AV_GGUF_BOOL: v->num.u = p[0] != 0; break;
    case AV_GGUF_I8: v->num.i = (int8_t)p[0]; break;
    case AV_GGUF_U16: v->num.u = av_load_le16(p); break;
    case AV_GGUF_I16: v->num.i = (int16_t)av_load_le16(p); break;
    case AV_GGUF_U32: v->num.u = av_load_le32(p); break;
    case AV_GGUF_I32: v->num.i = (int32_t)av_load_le32(p); break;
    case AV_GGUF_F32:
        u32 = av_load_le32(p);
        memcpy(&f32, &u32, 4);
        v->num.f = f32;
        break;
    case AV_GGUF_U64: v->num.u = av_load_le64(p); break;
    case AV_GGUF_I64: v->num.i = (int64_t)av_load_le64(p); break;
    case AV_GGUF_F64:
        u64 = av_load_le64(p);
        memcpy(&v->num.f, &u64, 8);
        break;
    default: break;
    }
}

/* Reads n bytes; a short file gives "<file>: truncated: <what> at offset N needs n bytes, only M left". */
static int rd(av_reader *r, void *dst, size_t n, const char *what, av_err *err) {
    if (n > av_reader_left(r))
        return av_errf(err, "%s: truncated: %s at offset %zu needs %zu bytes, only %zu left", r->name, what,
                       r->pos, n, av_reader_left(r));
    return av_read_bytes(r, dst, n, err);
}

/* Reads a string: u64 length (checked against the bytes left) then the bytes. what names it in messages. */
static int read_str(av_reader *r, const char **s, uint64_t *len, const char *what, av_err *err) {
    size_t at = r->pos;
    if (rd(r, len, 8, what, err)) return -1;
    if (*len > av_reader_left(r))
        return av_errf(err, "%s: %s at offset %zu has length %llu, past the end of the file (%zu bytes left)",
                       r->name, what, at, (unsigned long long)*len, av_reader_left(r));
    const void *p;
    if (av_read_view(r, &p, (size_t)*len, err)) return -1;
    *s = p;
    return 0;
}

/* Reads a key or tensor name into a NUL-terminated copy. */
static int read_name(av_reader *r, char **out, const char *what, av_err *err) {
    const char *s;
    uint64_t len;
    if (read_str(r, &s, &len, what, err)) return -1;
    int ctrl = 0; /* names end up in one-line messages: no control characters */
    for (uint64_t i = 0; i < len && i <= AV_GGUF_MAX_KEY; i++)
        ctrl |= (uint8_t)s[i] < 0x20 || s[i] == 0x7f;
    if (len == 0 || len > AV_GGUF_MAX_KEY || ctrl)
        return av_errf(err,
                       "%s: %s at offset %zu is empty, too long (%llu bytes) or holds control characters",
                       r->name, what, r->pos - (size_t)len - 8, (unsigned long long)len);
    *out = av_strndup(s, (size_t)len);
    return *out ? 0 : av_errf(err, "out of memory");
}

static int parse_value(av_reader *r, av_gguf_type type, av_gguf_value *v, int depth, const char *key,
                       av_err *err);

static int parse_array(av_reader *r, av_gguf_value *v, int depth, const char *key, av_err *err) {
    uint32_t et;
    uint64_t n;
    size_t at = r->pos;
    char what[96];
    snprintf(what, sizeof what, "array header of key '%.60s'", key);
    if (rd(r, &et, 4, what, err) || rd(r, &n, 8, what, err)) return -1;
    if (et >= AV_GGUF_TYPE_COUNT)
        return av_errf(err, "%s: key '%s': array of unknown value type %u at offset %zu", r->name, key, et,
                       at);
    if (et == AV_GGUF_ARRAY && depth >= AV_GGUF_MAX_DEPTH)
        return av_errf(err, "%s: key '%s': arrays nested more than %d deep", r->name, key, AV_GGUF_MAX_DEPTH);
    size_t es = type_size((av_gguf_type)et);
    size_t min_size = es ? es : et == AV_GGUF_STRING ? 8 : 12; /* a string is >= 8 bytes, an array >= 12 */
    if (n > av_reader_left(r) / min_size)
        return av_errf(
            err, "%s: key '%s': array of %llu %s values at offset %zu does not fit in the %zu bytes left",
            r->name, key, (unsigned long long)n, av_gguf_type_name((av_gguf_type)et), at, av_reader_left(r));
    size_t start = r->pos;
    if (es) {
        const void *p;
        if (av_read_view(r, &p, (size_t)n * es, err)) return -1;
        if (et == AV_GGUF_BOOL)
            for (uint64_t i = 0; i < n; i++)
                if (((const uint8_t *)p)[i] > 1)
                    return av_errf(err, "%s: key '%s': bool array element %llu is %u (must be 0 or 1)",
                                   r->name, key, (unsigned long long)i, ((const uint8_t *)p)[i]);
    } else {
        for (uint64_t i = 0; i < n; i++) {
            av_gguf_value elem;
            if (parse_value(r, (av_gguf_type)et, &elem, depth + 1, key, err)) return -1;
        }
    }
    v->type = AV_GGUF_ARRAY;
    v->arr_type = (av_gguf_type)et;
    v->arr_n = n;
    v->arr_data = r->base + start;
    v->arr_bytes = r->pos - start;
    return 0;
}

static int parse_value(av_reader *r, av_gguf_type type, av_gguf_value *v, int depth, const char *key,
                       av_err *err) {
    char what[96];
    uint8_t buf[8];
    memset(v, 0, sizeof *v);
    v->type = type;
    snprintf(what, sizeof what, "%s value of key '%.60s'", av_gguf_type_name(type), key);
    if (type == AV_GGUF_STRING) return read_str(r, &v->str, &v->str_len, what, err);
    if (type == AV_GGUF_ARRAY) return parse_array(r, v, depth, key, err);
    size_t es = type_size(type);
    if (!es) return av_errf(err, "%s: key '%s' has unknown value type %d", r->name, key, (int)type);
    if (rd(r, buf, es, what, err)) return -1;
    if (type == AV_GGUF_BOOL && buf[0] > 1)
        return av_errf(err, "%s: key '%s': bool value %u (must be 0 or 1)", r->name, key, buf[0]);
    decode_scalar(type, buf, v);
    return 0;
}

static int cmp_str_ptr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* First duplicate among n names, or NULL. */
static const char *find_duplicate(const char **names, size_t n) {
    qsort(names, n, sizeof *names, cmp_str_ptr);
    for (size_t i = 1; i < n; i++)
        if (strcmp(names[i - 1], names[i]) == 0) return names[i];
    return NULL;
}

static int check_unique(av_gguf *g, int tensors, av_err *err) {
    size_t n = (size_t)(tensors ? g->n_tensors : g->n_kv);
    if (n < 2) return 0;
    const char **names = malloc(n * sizeof *names);
    if (!names) return av_errf(err, "out of memory");
    for (size_t i = 0; i < n; i++)
        names[i] = tensors ? g->tensors[i].name : g->kv[i].key;
    const char *dup = find_duplicate(names, n);
    int rc = dup ? av_errf(err, "%s: duplicate %s '%s'", g->name, tensors ? "tensor" : "key", dup) : 0;
    free(names);
    return rc;
}

static int parse_kvs(av_gguf *g, av_reader *r, av_err *err) {
    for (int64_t i = 0; i < g->n_kv; i++) {
        av_gguf_kv *kv = &g->kv[i];
        uint32_t type;
        size_t at;
        if (read_name(r, &kv->key, "key", err)) return -1;
        at = r->pos;
        if (rd(r, &type, 4, "value type", err)) return -1;
        if (type >= AV_GGUF_TYPE_COUNT)
            return av_errf(err, "%s: key '%s' has unknown value type %u at offset %zu", g->name, kv->key,
                           type, at);
        if (parse_value(r, (av_gguf_type)type, &kv->v, 0, kv->key, err)) return -1;
    }
    return check_unique(g, 0, err);
}

static int parse_alignment(av_gguf *g, av_err *err) {
    g->alignment = AV_GGUF_DEFAULT_ALIGNMENT;
    int64_t a;
    int rc = av_gguf_get_int(g, "general.alignment", &a, err);
    if (rc < 0) return -1;
    if (rc == 1) return 0;
    if (a <= 0 || a > (int64_t)AV_GGUF_MAX_ALIGNMENT || (a & (a - 1)))
        return av_errf(err, "%s: general.alignment %lld is not a power of two between 1 and %u", g->name,
                       (long long)a, AV_GGUF_MAX_ALIGNMENT);
    g->alignment = (size_t)a;
    return 0;
}

static int parse_tensor_info(av_gguf *g, av_reader *r, av_gguf_tensor_info *ti, av_err *err) {
    uint32_t n_dims;
    char what[96];
    if (read_name(r, &ti->name, "tensor name", err)) return -1;
    snprintf(what, sizeof what, "info of tensor '%.60s'", ti->name);
    if (rd(r, &n_dims, 4, what, err)) return -1;
    if (n_dims < 1 || n_dims > AV_MAX_DIMS)
        return av_errf(err, "%s: tensor '%s' has %u dimensions (1 to %d supported)", g->name, ti->name,
                       n_dims, AV_MAX_DIMS);
    ti->n_dims = (int)n_dims;
    for (int d = 0; d < AV_MAX_DIMS; d++)
        ti->ne[d] = 1;
    for (int d = 0; d < ti->n_dims; d++)
        if (rd(r, &ti->ne[d], 8, what, err)) return -1;
    if (rd(r, &ti->type, 4, what, err) || rd(r, &ti->offset, 8, what, err)) return -1;
    return 0;
}

/* The types attnviz reads, for messages: "F32, F16, ..., IQ4_XS". */
static const char *readable_types(char *buf, size_t n) {
    buf[0] = 0;
    for (int t = 0; t < AV_DTYPE_COUNT; t++)
        if (av_dtype_is_weight((av_dtype)t))
            snprintf(buf + strlen(buf), n - strlen(buf), "%s%s", buf[0] ? ", " : "",
                     av_dtype_name((av_dtype)t));
    return buf;
}

/* Checks one tensor's type, shape, offset and size, and makes its view. Rows (ne[0] values) must be whole
 * blocks of the type: every reader of weights slices them by rows. */
static int make_view(av_gguf *g, av_gguf_tensor_info *ti, size_t data_size, av_err *err) {
    const char *tname = av_ggml_type_name(ti->type);
    av_tensor *t = &ti->t;
    char types[160];
    if (!tname)
        return av_errf(err, "%s: tensor '%s' has unknown tensor type %u", g->name, ti->name, ti->type);
    if (av_dtype_from_ggml(ti->type, &t->dtype) || !av_dtype_is_weight(t->dtype))
        return av_errf(err, "%s: tensor '%s' has type %s (%u), not supported (supported: %s)", g->name,
                       ti->name, tname, ti->type, readable_types(types, sizeof types));
    /* every dimension at least 1 and the element count an int64 (shapes are int64 everywhere): an empty row
     * (ne[0] = 0) would otherwise let the other dimensions grow past any product (found by fuzz_gguf_quant)
     */
    size_t rows = 1, row_bytes, nbytes, numel;
    for (int d = 0; d < ti->n_dims; d++) {
        if (ti->ne[d] == 0)
            return av_errf(err, "%s: tensor '%s' has an empty dimension (ne[%d] = 0)", g->name, ti->name, d);
        if (ti->ne[d] > (uint64_t)INT64_MAX || (d > 0 && !av_mul_size(rows, (size_t)ti->ne[d], &rows)) ||
            !av_mul_size(rows, (size_t)ti->ne[0], &numel) || numel > (size_t)INT64_MAX)
            return av_errf(err, "%s: tensor '%s': shape overflows (ne[%d] = %llu)", g->name, ti->name, d,
                           (unsigned long long)ti->ne[d]);
    }
    int block = av_dtype_block_size(t->dtype);
    if (ti->ne[0] % (uint64_t)block)
        return av_errf(err, "%s: tensor '%s': %s rows of %llu values are not a multiple of its block of %d",
                       g->name, ti->name, tname, (unsigned long long)ti->ne[0], block);
    if (!av_dtype_row_bytes(t->dtype, (int64_t)ti->ne[0], &row_bytes) ||
        !av_mul_size(rows, row_bytes, &nbytes))
        return av_errf(err, "%s: tensor '%s': size overflows", g->name, ti->name);
    if (ti->offset % g->alignment)
        return av_errf(err, "%s: tensor '%s': offset %llu is not a multiple of the alignment %zu", g->name,
                       ti->name, (unsigned long long)ti->offset, g->alignment);
    size_t end;
    if (ti->offset > (uint64_t)SIZE_MAX || !av_add_size((size_t)ti->offset, nbytes, &end) || end > data_size)
        return av_errf(err,
                       "%s: tensor '%s': data [%llu, +%zu bytes) runs past the end of the file (the data "
                       "section has %zu bytes)",
                       g->name, ti->name, (unsigned long long)ti->offset, nbytes, data_size);
    const uint8_t *p = g->base + g->data_offset + (size_t)ti->offset;
    size_t need = t->dtype == AV_DTYPE_F32 ? 4 : 2; /* every other type (and block) is read as 16-bit units */
    if ((uintptr_t)p % need)
        return av_errf(err, "%s: tensor '%s': data is not aligned for %s (general.alignment %zu)", g->name,
                       ti->name, tname, g->alignment);
    t->ndim = ti->n_dims;
    for (int d = 0; d < ti->n_dims; d++)
        t->shape[d] = (int64_t)ti->ne[ti->n_dims - 1 - d];
    t->data = p;
    t->nbytes = nbytes;
    return 0;
}

static int parse_tensors(av_gguf *g, av_reader *r, av_err *err) {
    for (int64_t i = 0; i < g->n_tensors; i++)
        if (parse_tensor_info(g, r, &g->tensors[i], err)) return -1;
    if (check_unique(g, 1, err)) return -1;
    size_t start = r->pos, rem = start % g->alignment;
    if (rem && !av_add_size(start, g->alignment - rem, &start))
        return av_errf(err, "%s: data offset overflows", g->name);
    if (start > g->size) {
        if (g->n_tensors)
            return av_errf(
                err, "%s: truncated: the tensor data should start at offset %zu but the file has %zu bytes",
                g->name, start, g->size);
        start = g->size;
    }
    g->data_offset = start;
    for (int64_t i = 0; i < g->n_tensors; i++)
        if (make_view(g, &g->tensors[i], g->size - start, err)) return -1;
    return 0;
}

int av_gguf_parse(const void *data, size_t size, const char *name, av_gguf *g, av_err *err) {
    memset(g, 0, sizeof *g);
    g->base = data;
    g->size = size;
    g->name = av_strdup(name ? name : "gguf");
    if (!g->name) return av_errf(err, "out of memory");
    av_reader r;
    av_reader_init(&r, data, size, g->name);
    uint8_t magic[4];
    uint64_t n_tensors, n_kv;
    size_t left;
    if (size < 4 || memcmp(data, "GGUF", 4) != 0) {
        av_errf(err, "%s: not a GGUF file (bad magic)", g->name);
        goto fail;
    }
    if (rd(&r, magic, 4, "magic", err) || rd(&r, &g->version, 4, "GGUF header", err)) goto fail;
    if (g->version == 1) {
        av_errf(err, "%s: GGUF version 1 is not supported (only versions 2 and 3; re-convert the model)",
                g->name);
        goto fail;
    }
    if (g->version != 2 && g->version != 3) {
        av_errf(err, "%s: unsupported GGUF version %u%s (supported: 2, 3)", g->name, g->version,
                (g->version & 0xffff) == 0 ? ", a big-endian file?" : "");
        goto fail;
    }
    if (rd(&r, &n_tensors, 8, "GGUF header", err) || rd(&r, &n_kv, 8, "GGUF header", err)) goto fail;
    /* a kv takes at least 13 bytes (key length, 1 key byte, type, 1 value byte), a tensor info at least 33
     * (name length, 1 name byte, n_dims, ne[0], type, offset): reject impossible counts before allocating */
    left = av_reader_left(&r);
    if (n_kv > left / 13 || n_tensors > left / 33 || n_kv * 13 + n_tensors * 33 > left) {
        av_errf(
            err,
            "%s: header claims %llu keys and %llu tensors, more than the %zu bytes left can hold (truncated "
            "or corrupt file)",
            g->name, (unsigned long long)n_kv, (unsigned long long)n_tensors, av_reader_left(&r));
        goto fail;
    }
    g->kv = calloc(n_kv ? (size_t)n_kv : 1, sizeof *g->kv);
    g->tensors = calloc(n_tensors ? (size_t)n_tensors : 1, sizeof *g->tensors);
    if (!g->kv || !g->tensors) {
        av_errf(err, "out of memory");
        goto fail;
    }
    g->n_kv = (int64_t)n_kv;
    g->n_tensors = (int64_t)n_tensors;
    if (parse_kvs(g, &r, err) || parse_alignment(g, err) || parse_tensors(g, &r, err)) goto fail;
    return 0;
fail:
    av_gguf_close(g);
    return -1;
}

int av_gguf_open(const char *path, av_gguf *g, av_err *err) {
    av_mapped_file f;
    memset(g, 0, sizeof *g);
    if (av_file_map(path, &f, err)) return -1;
    if (av_gguf_parse(f.data, f.size, path, g, err)) {
        av_file_unmap(&f);
        return -1;
    }
    g->file = f;
    return 0;
}

void av_gguf_close(av_gguf *g) {
    if (g->kv)
        for (int64_t i = 0; i < g->n_kv; i++)
            free(g->kv[i].key);
    if (g->tensors)
        for (int64_t i = 0; i < g->n_tensors; i++)
            free(g->tensors[i].name);
    free(g->kv);
    free(g->tensors);
    free(g->name);
    av_file_unmap(&g->file);
    memset(g, 0, sizeof *g);
}

const av_gguf_kv *av_gguf_find_kv(const av_gguf *g, const char *key) {
    for (int64_t i = 0; i < g->n_kv; i++)
        if (g->kv[i].key && strcmp(g->kv[i].key, key) == 0) return &g->kv[i];
    return NULL;
}

const av_gguf_tensor_info *av_gguf_find_tensor(const av_gguf *g, const char *name) {
    for (int64_t i = 0; i < g->n_tensors; i++)
        if (g->tensors[i].name && strcmp(g->tensors[i].name, name) == 0) return &g->tensors[i];
    return NULL;
}

static int wrong_type(const av_gguf *g, const av_gguf_kv *kv, const char *want, av_err *err) {
    if (kv->v.type == AV_GGUF_ARRAY)
        return av_errf(err, "%s: key '%s' is an array of %s, expected %s", g->name, kv->key,
                       av_gguf_type_name(kv->v.arr_type), want);
    return av_errf(err, "%s: key '%s' is a %s, expected %s", g->name, kv->key, av_gguf_type_name(kv->v.type),
                   want);
}

int av_gguf_get_int(const av_gguf *g, const char *key, int64_t *out, av_err *err) {
    const av_gguf_kv *kv = av_gguf_find_kv(g, key);
    if (!kv) return 1;
    av_gguf_type t = kv->v.type;
    if (!is_int_type(t)) return wrong_type(g, kv, "an integer", err);
    if (t == AV_GGUF_I8 || t == AV_GGUF_I16 || t == AV_GGUF_I32 || t == AV_GGUF_I64) {
        *out = kv->v.num.i;
    } else {
        if (kv->v.num.u > (uint64_t)INT64_MAX)
            return av_errf(err, "%s: key '%s' = %llu is too large", g->name, key,
                           (unsigned long long)kv->v.num.u);
        *out = (int64_t)kv->v.num.u;
    }
    return 0;
}

int av_gguf_get_f32(const av_gguf *g, const char *key, float *out, av_err *err) {
    const av_gguf_kv *kv = av_gguf_find_kv(g, key);
    if (!kv) return 1;
    if (kv->v.type == AV_GGUF_F32 || kv->v.type == AV_GGUF_F64) {
        *out = (float)kv->v.num.f;
        return 0;
    }
    int64_t i;
    if (is_int_type(kv->v.type) && av_gguf_get_int(g, key, &i, err) == 0) {
        *out = (float)i;
        return 0;
    }
    return wrong_type(g, kv, "a number", err);
}

int av_gguf_get_str(const av_gguf *g, const char *key, const char **s, size_t *len, av_err *err) {
    const av_gguf_kv *kv = av_gguf_find_kv(g, key);
    if (!kv) return 1;
    if (kv->v.type != AV_GGUF_STRING) return wrong_type(g, kv, "a string", err);
    *s = kv->v.str;
    *len = (size_t)kv->v.str_len;
    return 0;
}

int av_gguf_get_array(const av_gguf *g, const char *key, av_gguf_type want_type, const av_gguf_value **out,
                      av_err *err) {
    const av_gguf_kv *kv = av_gguf_find_kv(g, key);
    if (!kv) return 1;
    if (kv->v.type != AV_GGUF_ARRAY || (want_type != AV_GGUF_TYPE_COUNT && kv->v.arr_type != want_type)) {
        char want[48];
        snprintf(want, sizeof want, "an array of %s", av_gguf_type_name(want_type));
        return wrong_type(g, kv, want_type == AV_GGUF_TYPE_COUNT ? "an array" : want, err);
    }
    *out = &kv->v;
    return 0;
}

int64_t av_gguf_array_int(const av_gguf_value *a, uint64_t i) {
    size_t es = type_size(a->arr_type);
    if (!es || i >= a->arr_n) return 0;
    av_gguf_value v = {0};
    decode_scalar(a->arr_type, a->arr_data + (size_t)i * es, &v);
    switch (a->arr_type) {
    case AV_GGUF_F32:
    case AV_GGUF_F64: /* truncated; NaN gives 0, values beyond int64 saturate (no out-of-range cast) */
        return v.num.f != v.num.f  ? 0
               : v.num.f >= 0x1p63 ? INT64_MAX
               : v.num.f < -0x1p63 ? INT64_MIN
                                   : (int64_t)v.num.f;
    case AV_GGUF_I8:
    case AV_GGUF_I16:
    case AV_GGUF_I32:
    case AV_GGUF_I64: return v.num.i;
    default: return (int64_t)v.num.u;
    }
}

double av_gguf_array_f64(const av_gguf_value *a, uint64_t i) {
    size_t es = type_size(a->arr_type);
    if (!es || i >= a->arr_n) return 0;
    if (a->arr_type == AV_GGUF_F32 || a->arr_type == AV_GGUF_F64) {
        av_gguf_value v = {0};
        decode_scalar(a->arr_type, a->arr_data + (size_t)i * es, &v);
        return v.num.f;
    }
    return (double)av_gguf_array_int(a, i);
}

int av_gguf_array_next_str(const av_gguf_value *a, size_t *pos, const char **s, size_t *len) {
    if (a->arr_type != AV_GGUF_STRING || *pos > a->arr_bytes || a->arr_bytes - *pos < 8) return -1;
    uint64_t n = av_load_le64(a->arr_data + *pos);
    if (n > a->arr_bytes - *pos - 8) return -1; /* validated at open; kept as a guard */
    *s = (const char *)a->arr_data + *pos + 8;
    *len = (size_t)n;
    *pos += 8 + (size_t)n;
    return 0;
}
