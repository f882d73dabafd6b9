/* The bounded reader: every parser in the project reads through it, so no read goes past the buffer. */
#include "core.h"

#include <string.h>

void av_reader_init(av_reader *r, const void *base, size_t size, const char *name) {
    r->base = base;
    r->size = size;
    r->pos = 0;
    r->name = name ? name : "input";
}

size_t av_reader_left(const av_reader *r) { return r->size - r->pos; }

static int truncated(const av_reader *r, size_t want, av_err *err) {
    return av_errf(err, "%s: truncated: need %zu bytes at offset %zu, only %zu left", r->name, want, r->pos,
                   av_reader_left(r));
}

int av_read_view(av_reader *r, const void **dst, size_t n, av_err *err) {
    if (n > av_reader_left(r)) return truncated(r, n, err);
    *dst = r->base + r->pos;
    r->pos += n;
    return 0;
}

int av_read_bytes(av_reader *r, void *dst, size_t n, av_err *err) {
    const void *src = NULL;
    if (av_read_view(r, &src, n, err)) return -1;
    memcpy(dst, src, n);
    return 0;
}

int av_read_u8(av_reader *r, uint8_t *v, av_err *err) { return av_read_bytes(r, v, 1, err); }

int av_read_u16(av_reader *r, uint16_t *v, av_err *err) {
    const void *p = NULL;
    if (av_read_view(r, &p, 2, err)) return -1;
    *v = av_load_le16(p);
    return 0;
}

int av_read_u32(av_reader *r, uint32_t *v, av_err *err) {
    const void *p = NULL;
    if (av_read_view(r, &p, 4, err)) return -1;
    *v = av_load_le32(p);
    return 0;
}

int av_read_i32(av_reader *r, int32_t *v, av_err *err) {
    uint32_t u;
    if (av_read_u32(r, &u, err)) return -1;
    *v = (int32_t)u;
    return 0;
}

int av_read_u64(av_reader *r, uint64_t *v, av_err *err) {
    const void *p = NULL;
    if (av_read_view(r, &p, 8, err)) return -1;
    *v = av_load_le64(p);
    return 0;
}

int av_read_f32(av_reader *r, float *v, av_err *err) {
    uint32_t u;
    if (av_read_u32(r, &u, err)) return -1;
    memcpy(v, &u, 4);
    return 0;
}

int av_reader_seek(av_reader *r, size_t pos, av_err *err) {
    if (pos > r->size)
        return av_errf(err, "%s: offset %zu is past the end (%zu bytes)", r->name, pos, r->size);
    r->pos = pos;
    return 0;
}

int av_reader_align(av_reader *r, size_t alignment, av_err *err) {
    if (alignment == 0) return av_errf(err, "%s: alignment 0", r->name);
    size_t rem = r->pos % alignment;
    if (rem == 0) return 0;
    size_t pad = alignment - rem;
    if (pad > av_reader_left(r)) return truncated(r, pad, err);
    r->pos += pad;
    return 0;
}

bool av_shape_numel(const int64_t *shape, int ndim, size_t *out) {
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return false;
        if (!av_mul_size(n, (size_t)shape[i], &n)) return false;
    }
    *out = n;
    return true;
}
