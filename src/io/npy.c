/* NumPy .npy / .npz and float safetensors arrays, read through the bounded reader.
 *
 * .npy: "\x93NUMPY", version, header length (u16 for 1.x, u32 for 2.x/3.x), a Python dict literal
 *       {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } padded with spaces, then the raw data.
 * .npz: a zip archive of .npy members. The central directory (found through the end-of-central-directory
 *       record, zip64 records included since numpy writes with force_zip64) gives each member's method,
 *       sizes and local header offset; stored members are used in place, deflated ones inflated with zlib
 *       and checked against their CRC-32. */
#include "io/npy.h"

#include "io/io.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* ---- .npy header: a Python dict literal ---- */

typedef struct lit {
    const char *s, *end, *name;
} lit;

static void lit_ws(lit *l) {
    while (l->s < l->end && (*l->s == ' ' || *l->s == '\t' || *l->s == '\n' || *l->s == '\r'))
        l->s++;
}

static int lit_string(lit *l, char *out, size_t cap, av_err *err) {
    lit_ws(l);
    if (l->s >= l->end || (*l->s != '\'' && *l->s != '"'))
        return av_errf(err, "%s: .npy header: expected a quoted string", l->name);
    char q = *l->s++;
    size_t n = 0;
    while (l->s < l->end && *l->s != q) {
        if (n + 1 >= cap) return av_errf(err, "%s: .npy header: string too long", l->name);
        out[n++] = *l->s++;
    }
    if (l->s >= l->end) return av_errf(err, "%s: .npy header: unterminated string", l->name);
    l->s++;
    out[n] = 0;
    return 0;
}

static int lit_expect(lit *l, char c, av_err *err) {
    lit_ws(l);
    if (l->s >= l->end || *l->s != c) return av_errf(err, "%s: .npy header: expected '%c'", l->name, c);
    l->s++;
    return 0;
}

static int lit_shape(lit *l, av_array *a, av_err *err) {
    if (lit_expect(l, '(', err)) return -1;
    a->ndim = 0;
    for (;;) {
        lit_ws(l);
        if (l->s < l->end && *l->s == ')') {
            l->s++;
            return 0;
        }
        if (l->s >= l->end || !isdigit((unsigned char)*l->s))
            return av_errf(err, "%s: .npy header: bad shape", l->name);
        int64_t v = 0;
        while (l->s < l->end && isdigit((unsigned char)*l->s)) {
            if (v > (INT64_MAX - 9) / 10) return av_errf(err, "%s: .npy header: shape overflows", l->name);
            v = v * 10 + (*l->s++ - '0');
        }
        if (l->s < l->end && *l->s == 'L') l->s++;
        if (a->ndim == AV_ARRAY_MAX_DIMS)
            return av_errf(err, "%s: .npy array has more than %d dimensions", l->name, AV_ARRAY_MAX_DIMS);
        a->shape[a->ndim++] = v;
        lit_ws(l);
        if (l->s < l->end && *l->s == ',') l->s++;
    }
}

static int parse_descr(const char *d, av_array *a, const char *name, av_err *err) {
    char order = d[0];
    const char *t = d + 1;
    if (order != '<' && order != '>' && order != '=' && order != '|') t = d, order = '=';
    static const struct {
        const char *code;
        av_array_dtype dt;
    } types[] = {{"f2", AV_ARRAY_F16}, {"f4", AV_ARRAY_F32}, {"f8", AV_ARRAY_F64}};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(t, types[i].code) == 0) {
            a->dtype = types[i].dt;
            a->big_endian = order == '>';
            return 0;
        }
    return av_errf(err, "%s: unsupported dtype '%s': attention must be float16, float32 or float64", name, d);
}

static size_t dtype_size(av_array_dtype t) { return t == AV_ARRAY_F64 ? 8 : t == AV_ARRAY_F32 ? 4 : 2; }

int av_npy_parse(const void *buf, size_t size, const char *name, av_array *out, av_err *err) {
    memset(out, 0, sizeof *out);
    av_reader r;
    av_reader_init(&r, buf, size, name);
    uint8_t magic[6], ver[2];
    if (size < 10 || av_read_bytes(&r, magic, 6, NULL) || memcmp(magic, "\x93NUMPY", 6) != 0)
        return av_errf(err, "%s: not a .npy file (no \\x93NUMPY magic)", name);
    if (av_read_bytes(&r, ver, 2, err)) return -1;
    uint32_t hlen;
    if (ver[0] == 1) {
        uint16_t h16;
        if (av_read_u16(&r, &h16, err)) return -1;
        hlen = h16;
    } else if (ver[0] == 2 || ver[0] == 3) {
        if (av_read_u32(&r, &hlen, err)) return -1;
    } else {
        return av_errf(err, "%s: unsupported .npy version %d.%d", name, ver[0], ver[1]);
    }
    const void *htext;
    if (hlen > av_reader_left(&r) || av_read_view(&r, &htext, hlen, NULL))
        return av_errf(err, "%s: truncated .npy file: header of %u bytes but only %zu left", name, hlen,
                       av_reader_left(&r));
    lit l = {htext, (const char *)htext + hlen, name};
    int have_descr = 0, have_shape = 0, fortran = 0;
    if (lit_expect(&l, '{', err)) return -1;
    for (;;) {
        lit_ws(&l);
        if (l.s < l.end && *l.s == '}') break;
        char key[32], val[64];
        if (lit_string(&l, key, sizeof key, err) || lit_expect(&l, ':', err)) return -1;
        if (strcmp(key, "descr") == 0) {
            lit_ws(&l);
            if (l.s < l.end && *l.s == '[')
                return av_errf(err, "%s: structured dtypes are not supported: save a plain float array",
                               name);
            if (lit_string(&l, val, sizeof val, err) || parse_descr(val, out, name, err)) return -1;
            have_descr = 1;
        } else if (strcmp(key, "fortran_order") == 0) {
            lit_ws(&l);
            size_t left = (size_t)(l.end - l.s);
            if (left >= 4 && strncmp(l.s, "True", 4) == 0) {
                fortran = 1;
                l.s += 4;
            } else if (left >= 5 && strncmp(l.s, "False", 5) == 0) {
                l.s += 5;
            } else {
                return av_errf(err, "%s: .npy header: fortran_order must be True or False", name);
            }
        } else if (strcmp(key, "shape") == 0) {
            if (lit_shape(&l, out, err)) return -1;
            have_shape = 1;
        } else {
            return av_errf(err, "%s: .npy header: unknown key '%s'", name, key);
        }
        lit_ws(&l);
        if (l.s < l.end && *l.s == ',') l.s++;
    }
    if (!have_descr || !have_shape) return av_errf(err, "%s: .npy header lacks 'descr' or 'shape'", name);
    if (fortran && out->ndim > 1)
        return av_errf(err, "%s: Fortran-ordered array: save it with np.ascontiguousarray(a) first", name);
    size_t numel = 1, nbytes;
    for (int i = 0; i < out->ndim; i++)
        if (!av_mul_size(numel, (size_t)out->shape[i], &numel))
            return av_errf(err, "%s: shape overflows", name);
    if (!av_mul_size(numel, dtype_size(out->dtype), &nbytes))
        return av_errf(err, "%s: shape overflows", name);
    if (nbytes > av_reader_left(&r))
        return av_errf(err, "%s: truncated .npy data: the shape needs %zu bytes but only %zu are there", name,
                       nbytes, av_reader_left(&r));
    const void *data;
    av_read_view(&r, &data, nbytes, NULL);
    out->data = data;
    out->numel = numel;
    return 0;
}

float av_array_get(const av_array *a, size_t i) {
    size_t es = dtype_size(a->dtype);
    uint8_t b[8];
    memcpy(b, a->data + i * es, es);
    if (a->big_endian)
        for (size_t k = 0; k < es / 2; k++) {
            uint8_t t = b[k];
            b[k] = b[es - 1 - k];
            b[es - 1 - k] = t;
        }
    switch (a->dtype) {
    case AV_ARRAY_F16: return av_f16_to_f32(av_load_le16(b));
    case AV_ARRAY_BF16: return av_bf16_to_f32(av_load_le16(b));
    case AV_ARRAY_F32: {
        float f;
        memcpy(&f, b, 4);
        return f;
    }
    case AV_ARRAY_F64: {
        double d;
        memcpy(&d, b, 8);
        return (float)d;
    }
    }
    return 0;
}

int av_natural_cmp(const char *a, const char *b) {
    while (*a && *b) {
        if (isdigit((unsigned char)*a) && isdigit((unsigned char)*b)) {
            while (*a == '0')
                a++;
            while (*b == '0')
                b++;
            size_t la = 0, lb = 0;
            while (isdigit((unsigned char)a[la]))
                la++;
            while (isdigit((unsigned char)b[lb]))
                lb++;
            if (la != lb) return la < lb ? -1 : 1;
            int c = strncmp(a, b, la);
            if (c) return c;
            a += la;
            b += lb;
            continue;
        }
        if (*a != *b) return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
        a++;
        b++;
    }
    return *a ? 1 : *b ? -1 : 0;
}

/* ---- the collection ---- */

void av_arrays_free(av_arrays *s) {
    for (int i = 0; i < s->n; i++) {
        free(s->items[i].name);
        free(s->items[i].member);
    }
    free(s->items);
    for (int i = 0; i < s->n_maps; i++)
        av_file_unmap(&s->maps[i]);
    free(s->maps);
    for (int i = 0; i < s->n_bufs; i++)
        free(s->bufs[i]);
    free(s->bufs);
    memset(s, 0, sizeof *s);
}

/* name: for messages ("f.npz:arr_0"); member: the array's own name. */
static int push_array(av_arrays *s, const av_array *a, const char *name, const char *member, av_err *err) {
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 16;
        av_array *p = realloc(s->items, sizeof *p * (size_t)cap);
        if (!p) return av_errf(err, "out of memory");
        s->items = p;
        s->cap = cap;
    }
    av_array *d = &s->items[s->n];
    *d = *a;
    d->name = av_strdup(name);
    d->member = av_strdup(member);
    if (!d->name || !d->member) {
        free(d->name);
        free(d->member);
        return av_errf(err, "out of memory");
    }
    s->n++;
    return 0;
}

int av_arrays_add_memory(av_arrays *s, const char *name, const av_tensor *t, av_err *err) {
    av_array a;
    memset(&a, 0, sizeof a);
    switch (t->dtype) {
    case AV_DTYPE_F32: a.dtype = AV_ARRAY_F32; break;
    case AV_DTYPE_F16: a.dtype = AV_ARRAY_F16; break;
    case AV_DTYPE_BF16: a.dtype = AV_ARRAY_BF16; break;
    default: return av_errf(err, "%s: %s array: expected F32, F16 or BF16", name, av_dtype_name(t->dtype));
    }
    size_t bytes;
    if (t->ndim < 1 || t->ndim > AV_MAX_DIMS || !av_shape_numel(t->shape, t->ndim, &a.numel) ||
        !av_dtype_nbytes(t->dtype, a.numel, &bytes))
        return av_errf(err, "%s: %d dimensions or their product out of range", name, t->ndim);
    if (bytes != t->nbytes || (bytes && !t->data))
        return av_errf(err, "%s: %zu bytes given for %zu %s values (%zu bytes)", name, t->nbytes, a.numel,
                       av_dtype_name(t->dtype), bytes);
    a.ndim = t->ndim;
    memcpy(a.shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
    a.data = t->data;
    return push_array(s, &a, name, name, err);
}

static int keep_map(av_arrays *s, av_mapped_file *m, av_err *err) {
    av_mapped_file *p = realloc(s->maps, sizeof *p * (size_t)(s->n_maps + 1));
    if (!p) {
        av_file_unmap(m);
        return av_errf(err, "out of memory");
    }
    s->maps = p;
    s->maps[s->n_maps++] = *m;
    return 0;
}

static int keep_buf(av_arrays *s, void *b, av_err *err) {
    void **p = realloc(s->bufs, sizeof *p * (size_t)(s->n_bufs + 1));
    if (!p) {
        free(b);
        return av_errf(err, "out of memory");
    }
    s->bufs = p;
    s->bufs[s->n_bufs++] = b;
    return 0;
}

/* ---- .npz ---- */

typedef struct zip_entry {
    char name[256];
    uint16_t method, flags;
    uint32_t crc;
    uint64_t csize, usize, offset;
} zip_entry;

static int zip_find_eocd(av_reader *r, size_t *pos) {
    size_t size = r->size;
    if (size < 22) return -1;
    size_t lo = size > 22 + 65535 ? size - 22 - 65535 : 0;
    for (size_t p = size - 22 + 1; p-- > lo;) {
        const uint8_t *b = r->base + p;
        if (b[0] == 0x50 && b[1] == 0x4b && b[2] == 0x05 && b[3] == 0x06) {
            *pos = p;
            return 0;
        }
    }
    return -1;
}

static int zip_entry_read(av_reader *r, zip_entry *e, const char *path, av_err *err) {
    uint32_t sig, crc, cs, us, off32, ext;
    uint16_t vmade, vneed, flags, method, tm, dt, nlen, xlen, clen, disk, iattr;
    if (av_read_u32(r, &sig, err)) return -1;
    if (sig != 0x02014b50)
        return av_errf(err, "%s: corrupt zip central directory (bad entry signature)", path);
    if (av_read_u16(r, &vmade, err) || av_read_u16(r, &vneed, err) || av_read_u16(r, &flags, err) ||
        av_read_u16(r, &method, err) || av_read_u16(r, &tm, err) || av_read_u16(r, &dt, err) ||
        av_read_u32(r, &crc, err) || av_read_u32(r, &cs, err) || av_read_u32(r, &us, err) ||
        av_read_u16(r, &nlen, err) || av_read_u16(r, &xlen, err) || av_read_u16(r, &clen, err) ||
        av_read_u16(r, &disk, err) || av_read_u16(r, &iattr, err) || av_read_u32(r, &ext, err) ||
        av_read_u32(r, &off32, err))
        return av_err_prefix(err, "%s: zip central directory", path);
    const void *name, *extra, *comment;
    if (av_read_view(r, &name, nlen, err) || av_read_view(r, &extra, xlen, err) ||
        av_read_view(r, &comment, clen, err))
        return av_err_prefix(err, "%s: zip central directory", path);
    if (nlen >= sizeof e->name) return av_errf(err, "%s: zip member name too long", path);
    memcpy(e->name, name, nlen);
    e->name[nlen] = 0;
    e->method = method;
    e->flags = flags;
    e->crc = crc;
    e->csize = cs;
    e->usize = us;
    e->offset = off32;
    /* zip64 extended information: 64-bit values for the fields stored as 0xFFFFFFFF, in this order */
    av_reader x;
    av_reader_init(&x, extra, xlen, path);
    while (av_reader_left(&x) >= 4) {
        uint16_t id, sz;
        av_read_u16(&x, &id, NULL);
        av_read_u16(&x, &sz, NULL);
        av_reader f;
        const void *fd;
        if (av_read_view(&x, &fd, sz, NULL)) return av_errf(err, "%s: corrupt zip extra field", path);
        if (id != 0x0001) continue;
        av_reader_init(&f, fd, sz, path);
        if ((us == 0xFFFFFFFFu && av_read_u64(&f, &e->usize, NULL)) ||
            (cs == 0xFFFFFFFFu && av_read_u64(&f, &e->csize, NULL)) ||
            (off32 == 0xFFFFFFFFu && av_read_u64(&f, &e->offset, NULL)))
            return av_errf(err, "%s: corrupt zip64 extra field of '%s'", path, e->name);
    }
    return 0;
}

/* Data of one member: a view into the file (stored) or an inflated buffer kept in s (deflated). */
static int zip_member_data(av_arrays *s, av_reader *r, const zip_entry *e, const char *path,
                           const uint8_t **out, av_err *err) {
    uint32_t sig;
    uint16_t skip16[11];
    if (e->offset > r->size || av_reader_seek(r, (size_t)e->offset, NULL) || av_read_u32(r, &sig, NULL) ||
        sig != 0x04034b50)
        return av_errf(err,
                       "%s: member '%s': local header missing at offset %llu (truncated or corrupt zip?)",
                       path, e->name, (unsigned long long)e->offset);
    for (int i = 0; i < 11; i++) /* version, flags, method, time, date, crc(2), csize(2), usize(2) */
        if (av_read_u16(r, &skip16[i], err)) return av_err_prefix(err, "%s: member '%s'", path, e->name);
    uint16_t nlen, xlen;
    const void *skip, *data;
    if (av_read_u16(r, &nlen, err) || av_read_u16(r, &xlen, err) ||
        av_read_view(r, &skip, (size_t)nlen + xlen, err))
        return av_err_prefix(err, "%s: member '%s'", path, e->name);
    if (e->csize > av_reader_left(r) || av_read_view(r, &data, (size_t)e->csize, NULL))
        return av_errf(err,
                       "%s: member '%s' is truncated: %llu compressed bytes declared, %zu left in the file",
                       path, e->name, (unsigned long long)e->csize, av_reader_left(r));
    if (e->flags & 1) return av_errf(err, "%s: member '%s' is encrypted", path, e->name);
    if (e->method == 0) {
        if (e->csize != e->usize)
            return av_errf(err, "%s: stored member '%s' has mismatched sizes", path, e->name);
        if ((uint32_t)crc32_z(crc32(0L, Z_NULL, 0), data, (z_size_t)e->csize) != e->crc)
            return av_errf(err, "%s: member '%s' fails its CRC-32 check (corrupt file)", path, e->name);
        *out = data;
        return 0;
    }
    if (e->method != 8)
        return av_errf(err, "%s: member '%s' uses zip method %u (only stored and deflated are supported)",
                       path, e->name, e->method);
    /* deflate expands at most ~1032:1; refuse sizes no honest member could have */
    if (e->usize > (uint64_t)e->csize * 1040 + 1024 || e->usize > ((uint64_t)1 << 40))
        return av_errf(err, "%s: member '%s' declares an impossible size %llu", path, e->name,
                       (unsigned long long)e->usize);
    uint8_t *buf = malloc(e->usize ? (size_t)e->usize : 1);
    if (!buf) return av_errf(err, "%s: out of memory inflating '%s'", path, e->name);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) {
        free(buf);
        return av_errf(err, "zlib: inflateInit failed");
    }
    const uint8_t *in = data;
    uint64_t in_left = e->csize, out_done = 0;
    int zr = Z_OK;
    while (zr == Z_OK) {
        uInt ci = in_left > 1u << 30 ? 1u << 30 : (uInt)in_left;
        uint64_t ol = e->usize - out_done;
        uInt co = ol > 1u << 30 ? 1u << 30 : (uInt)ol;
        zs.next_in = (Bytef *)(uintptr_t)in;
        zs.avail_in = ci;
        zs.next_out = buf + out_done;
        zs.avail_out = co;
        zr = inflate(&zs, Z_NO_FLUSH);
        in += ci - zs.avail_in;
        in_left -= ci - zs.avail_in;
        out_done += co - zs.avail_out;
        if (zr == Z_BUF_ERROR && (in_left == 0 || out_done == e->usize)) break;
    }
    inflateEnd(&zs);
    if (zr != Z_STREAM_END || out_done != e->usize) {
        free(buf);
        return av_errf(err, "%s: member '%s': deflate data is corrupt or truncated (%s)", path, e->name,
                       zr == Z_STREAM_END ? "wrong size"
                       : zs.msg           ? zs.msg
                                          : "stream did not end");
    }
    if ((uint32_t)crc32_z(crc32(0L, Z_NULL, 0), buf, (z_size_t)e->usize) != e->crc) {
        free(buf);
        return av_errf(err, "%s: member '%s' fails its CRC-32 check (corrupt file)", path, e->name);
    }
    if (keep_buf(s, buf, err)) return -1;
    *out = buf;
    return 0;
}

static int cmp_entry(const void *a, const void *b) {
    return av_natural_cmp(((const zip_entry *)a)->name, ((const zip_entry *)b)->name);
}

static int add_npz(av_arrays *s, const av_mapped_file *m, const char *path, av_err *err) {
    av_reader r;
    av_reader_init(&r, m->data, m->size, path);
    size_t eocd;
    if (zip_find_eocd(&r, &eocd))
        return av_errf(err, "%s: not a zip archive (no end-of-central-directory record): truncated .npz?",
                       path);
    uint32_t sig, cd_size32, cd_off32;
    uint16_t d0, d1, n_disk, n_total, clen;
    av_reader_seek(&r, eocd, NULL);
    if (av_read_u32(&r, &sig, err) || av_read_u16(&r, &d0, err) || av_read_u16(&r, &d1, err) ||
        av_read_u16(&r, &n_disk, err) || av_read_u16(&r, &n_total, err) || av_read_u32(&r, &cd_size32, err) ||
        av_read_u32(&r, &cd_off32, err) || av_read_u16(&r, &clen, err))
        return av_err_prefix(err, "%s: zip end record", path);
    uint64_t n_entries = n_total, cd_off = cd_off32;
    if (n_total == 0xFFFF || cd_off32 == 0xFFFFFFFFu || cd_size32 == 0xFFFFFFFFu) { /* zip64 */
        uint32_t lsig, ldisk, ltotal;
        uint64_t z64_off, rec_size, n64_disk;
        uint16_t vm, vn;
        uint32_t disk, cd_disk;
        if (eocd < 20 || av_reader_seek(&r, eocd - 20, NULL) || av_read_u32(&r, &lsig, NULL) ||
            lsig != 0x07064b50 || av_read_u32(&r, &ldisk, NULL) || av_read_u64(&r, &z64_off, NULL) ||
            av_read_u32(&r, &ltotal, NULL) || z64_off > r.size || av_reader_seek(&r, (size_t)z64_off, NULL) ||
            av_read_u32(&r, &lsig, NULL) || lsig != 0x06064b50 || av_read_u64(&r, &rec_size, NULL) ||
            av_read_u16(&r, &vm, NULL) || av_read_u16(&r, &vn, NULL) || av_read_u32(&r, &disk, NULL) ||
            av_read_u32(&r, &cd_disk, NULL) || av_read_u64(&r, &n64_disk, NULL) ||
            av_read_u64(&r, &n_entries, NULL) || av_read_u64(&r, &rec_size, NULL) ||
            av_read_u64(&r, &cd_off, NULL))
            return av_errf(err, "%s: corrupt zip64 end-of-central-directory records", path);
    }
    if (cd_off > eocd || n_entries > (eocd - cd_off) / 46 + 1)
        return av_errf(err,
                       "%s: corrupt zip: central directory offset %llu / %llu entries do not fit the file",
                       path, (unsigned long long)cd_off, (unsigned long long)n_entries);
    if (n_entries == 0) return av_errf(err, "%s: the .npz archive is empty", path);
    zip_entry *ents = calloc((size_t)n_entries, sizeof *ents);
    if (!ents) return av_errf(err, "out of memory");
    av_reader_seek(&r, (size_t)cd_off, NULL);
    int rc = 0;
    for (uint64_t i = 0; !rc && i < n_entries; i++)
        rc = zip_entry_read(&r, &ents[i], path, err);
    if (!rc) qsort(ents, (size_t)n_entries, sizeof *ents, cmp_entry);
    for (uint64_t i = 0; !rc && i < n_entries; i++) {
        zip_entry *e = &ents[i];
        size_t nl = strlen(e->name);
        if (nl > 0 && e->name[nl - 1] == '/') continue; /* a directory */
        if (nl < 5 || strcmp(e->name + nl - 4, ".npy") != 0) {
            rc = av_errf(err, "%s: member '%s' is not a .npy array", path, e->name);
            break;
        }
        const uint8_t *data = NULL;
        char full[600];
        snprintf(full, sizeof full, "%s:%s", path, e->name);
        av_array a;
        rc = zip_member_data(s, &r, e, path, &data, err) ||
             av_npy_parse(data, (size_t)e->usize, full, &a, err);
        if (!rc) {
            e->name[nl - 4] = 0;
            snprintf(full, sizeof full, "%s:%s", path, e->name);
            rc = push_array(s, &a, full, e->name, err);
        }
    }
    free(ents);
    return rc ? -1 : 0;
}

/* ---- safetensors with float tensors of any width (the header checked by io/safetensors.c) ---- */

_Static_assert(AV_ST_MAX_DIMS <= AV_ARRAY_MAX_DIMS, "a safetensors shape must fit an av_array");

static int float_dtype(const char *name, av_array_dtype *out) {
    static const struct {
        const char *name;
        av_array_dtype t;
    } types[] = {
        {"F16", AV_ARRAY_F16}, {"F32", AV_ARRAY_F32}, {"F64", AV_ARRAY_F64}, {"BF16", AV_ARRAY_BF16}};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        if (strcmp(name, types[i].name) == 0) {
            *out = types[i].t;
            return 0;
        }
    }
    return -1;
}

static int add_safetensors(av_arrays *s, const av_mapped_file *m, const char *path, av_err *err) {
    json_t *h;
    size_t data_offset;
    if (av_st_parse_header(m->data, m->size, path, &h, &data_offset, err)) return -1;
    const uint8_t *base = (const uint8_t *)m->data + data_offset;
    const char *key;
    json_t *v;
    int rc = 0, added = 0;
    json_object_foreach(h, key, v) {
        if (strcmp(key, "__metadata__") == 0) continue;
        av_st_desc d;
        if ((rc = av_st_parse_desc(path, key, v, m->size - data_offset, &d, err))) break;
        av_array a;
        memset(&a, 0, sizeof a);
        if (float_dtype(d.dtype, &a.dtype)) continue; /* integer tensors (token ids...) cannot be attention */
        a.ndim = d.ndim;
        memcpy(a.shape, d.shape, sizeof(int64_t) * (size_t)d.ndim);
        a.data = base + d.begin;
        a.numel = d.numel;
        char full[600];
        snprintf(full, sizeof full, "%s:%s", path, key);
        if ((rc = push_array(s, &a, full, key, err))) break;
        added++;
    }
    json_decref(h);
    if (!rc && !added) rc = av_errf(err, "%s: no float tensors in this safetensors file", path);
    return rc;
}

static int cmp_array(const void *a, const void *b) {
    return av_natural_cmp(((const av_array *)a)->member, ((const av_array *)b)->member);
}

int av_arrays_add_file(av_arrays *s, const char *path, av_err *err) {
    av_mapped_file m;
    if (av_file_map(path, &m, err)) return -1;
    if (keep_map(s, &m, err)) return -1;
    const av_mapped_file *mf = &s->maps[s->n_maps - 1];
    const uint8_t *b = mf->data;
    size_t n = mf->size;
    const char *base = av_path_basename(path), *ext = av_path_extension(path);
    int first = s->n;
    int rc;
    if (n >= 6 && memcmp(b, "\x93NUMPY", 6) == 0) {
        av_array a;
        char stem[256]; /* the member name: the file name without its extension (".npy" stays ".npy") */
        snprintf(stem, sizeof stem, "%.*s", (int)(ext > base ? ext - base : (ptrdiff_t)strlen(base)), base);
        rc = av_npy_parse(b, n, path, &a, err) || push_array(s, &a, path, stem, err);
    } else if (n >= 4 && b[0] == 'P' && b[1] == 'K') {
        rc = add_npz(s, mf, path, err);
    } else if (strcmp(ext, ".safetensors") == 0) {
        rc = add_safetensors(s, mf, path, err);
        if (!rc) qsort(s->items + first, (size_t)(s->n - first), sizeof *s->items, cmp_array);
    } else if (strcmp(ext, ".npz") == 0 || strcmp(ext, ".npy") == 0) {
        rc = av_errf(err, "%s: not a %s file (%s)", path, ext + 1, n == 0 ? "empty" : "wrong magic bytes");
    } else {
        rc = av_errf(err, "%s: unknown array format: expected .npy, .npz or .safetensors", path);
    }
    return rc ? -1 : 0;
}

/* ---- writing ---- */

int av_npy_write_f32(const char *path, const float *data, int rows, int cols, av_err *err) {
    char head[128];
    int n = snprintf(head, sizeof head, "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", rows,
                     cols);
    int total = (10 + n + 1 + 63) / 64 * 64; /* magic, version, length, dict, '\n': a multiple of 64 */
    uint8_t pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
    av_store_le16(pre + 8, (uint16_t)(total - 10));
    memset(head + n, ' ', (size_t)(total - 10 - n - 1));
    head[total - 11] = '\n';
    av_atomic_file f;
    if (av_atomic_open(&f, path, err)) return -1;
    if (av_atomic_write(&f, pre, sizeof pre, err) || av_atomic_write(&f, head, (size_t)(total - 10), err) ||
        av_atomic_write(&f, data, sizeof(float) * (size_t)rows * (size_t)cols,
                        err)) { /* little-endian host */
        av_atomic_abort(&f);
        return -1;
    }
    return av_atomic_commit(&f, err);
}
