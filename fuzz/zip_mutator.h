/* A zip-aware mutator for .npz inputs: the archive is read back into its members (stored or deflated, zip64
 * sizes understood), one member's uncompressed bytes get libFuzzer's mutations (or it is renamed, dropped,
 * duplicated, or switched between stored and deflated), and a valid archive is written again with fresh CRCs
 * and sizes, so mutations reach the .npy parser behind the zip layer. One time in eight a header field of the
 * result is set to an edge-case value instead (the zip layer's own checks); inputs that are not zips get
 * byte mutations. */
#ifndef AV_FUZZ_ZIP_MUTATOR_H
#define AV_FUZZ_ZIP_MUTATOR_H

#include "json_mutator.h" /* fuzz_rng */

#include <stdint.h>
#include <string.h>
#include <zlib.h>

#define FUZZ_ZIP_MAX_MEMBERS 16
#define FUZZ_ZIP_MAX_MEMBER (1u << 20)

typedef struct fuzz_zip_member {
    char name[64];
    int deflate;
    uint8_t *data; /* (n) uncompressed, malloc'd with room up to FUZZ_ZIP_MAX_MEMBER */
    size_t n;
} fuzz_zip_member;

static uint32_t fuzz_le(const uint8_t *p, int bytes) {
    uint32_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void fuzz_put(uint8_t *p, uint32_t v, int bytes) {
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Raw inflate of n bytes into a new buffer of at most FUZZ_ZIP_MAX_MEMBER; NULL when it is not deflate. */
static uint8_t *fuzz_inflate(const uint8_t *in, size_t n, size_t *out_n) {
    uint8_t *out = malloc(FUZZ_ZIP_MAX_MEMBER);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (!out || inflateInit2(&zs, -MAX_WBITS) != Z_OK) {
        free(out);
        return NULL;
    }
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)n;
    zs.next_out = out;
    zs.avail_out = FUZZ_ZIP_MAX_MEMBER;
    int zr = inflate(&zs, Z_FINISH);
    *out_n = zs.total_out;
    inflateEnd(&zs);
    if (zr != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    return out;
}

/* Members from the local headers; returns their count, or -1 when the input is not a zip we can rewrite. */
static int fuzz_zip_read(const uint8_t *d, size_t size, fuzz_zip_member *m) {
    size_t pos = 0;
    int k = 0;
    while (pos + 30 <= size && fuzz_le(d + pos, 4) == 0x04034b50 && k < FUZZ_ZIP_MAX_MEMBERS) {
        uint32_t flags = fuzz_le(d + pos + 6, 2), method = fuzz_le(d + pos + 8, 2);
        uint64_t cs = fuzz_le(d + pos + 18, 4);
        size_t nlen = fuzz_le(d + pos + 26, 2), xlen = fuzz_le(d + pos + 28, 2), at = pos + 30;
        if ((flags & 8) || (method != 0 && method != 8) || at + nlen + xlen > size ||
            nlen >= sizeof m[k].name)
            return -1;
        for (size_t x = at + nlen;
             cs == 0xFFFFFFFFu && x + 4 <= at + nlen + xlen;) { /* zip64: usize, csize */
            size_t id = fuzz_le(d + x, 2), sz = fuzz_le(d + x + 2, 2);
            if (id == 1 && sz >= 16 && x + 20 <= size) cs = fuzz_le(d + x + 12, 4); /* < 4 GiB here */
            x += 4 + sz;
        }
        at += nlen + xlen;
        if (cs > size - at) return -1;
        memcpy(m[k].name, d + pos + 30, nlen);
        m[k].name[nlen] = 0;
        m[k].deflate = method == 8;
        if (method == 0 && cs > FUZZ_ZIP_MAX_MEMBER) return -1;
        m[k].data = method == 8 ? fuzz_inflate(d + at, (size_t)cs, &m[k].n) : malloc(FUZZ_ZIP_MAX_MEMBER);
        if (!m[k].data) return -1;
        if (method == 0) memcpy(m[k].data, d + at, (size_t)(m[k].n = (size_t)cs));
        k++;
        pos = at + (size_t)cs;
    }
    return k > 0 ? k : -1;
}

/* A valid archive of the members into out (cap bytes); returns its size, 0 when it does not fit. */
static size_t fuzz_zip_write(const fuzz_zip_member *m, int k, uint8_t *out, size_t cap) {
    size_t pos = 0, offs[FUZZ_ZIP_MAX_MEMBERS], csz[FUZZ_ZIP_MAX_MEMBERS];
    uint32_t crcs[FUZZ_ZIP_MAX_MEMBERS];
    for (int i = 0; i < k; i++) {
        size_t nlen = strlen(m[i].name);
        uLongf cn = compressBound((uLong)m[i].n) + 64;
        uint8_t *c = malloc(cn);
        if (!c) return 0;
        const uint8_t *body = m[i].data;
        if (m[i].deflate) {
            z_stream zs;
            memset(&zs, 0, sizeof zs);
            deflateInit2(&zs, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
            zs.next_in = (Bytef *)(uintptr_t)m[i].data;
            zs.avail_in = (uInt)m[i].n;
            zs.next_out = c;
            zs.avail_out = (uInt)cn;
            deflate(&zs, Z_FINISH);
            cn = zs.total_out;
            deflateEnd(&zs);
            body = c;
        } else {
            cn = m[i].n;
        }
        crcs[i] = (uint32_t)crc32(crc32(0L, Z_NULL, 0), m[i].data, (uInt)m[i].n);
        csz[i] = cn;
        offs[i] = pos;
        if (pos + 30 + nlen + cn > cap) return free(c), 0;
        uint8_t *h = out + pos;
        memset(h, 0, 30);
        fuzz_put(h, 0x04034b50, 4), fuzz_put(h + 4, 20, 2), fuzz_put(h + 8, m[i].deflate ? 8 : 0, 2);
        fuzz_put(h + 14, crcs[i], 4), fuzz_put(h + 18, (uint32_t)cn, 4),
            fuzz_put(h + 22, (uint32_t)m[i].n, 4);
        fuzz_put(h + 26, (uint32_t)nlen, 2);
        memcpy(h + 30, m[i].name, nlen);
        memcpy(h + 30 + nlen, body, cn);
        pos += 30 + nlen + cn;
        free(c);
    }
    size_t cd = pos;
    for (int i = 0; i < k; i++) {
        size_t nlen = strlen(m[i].name);
        if (pos + 46 + nlen > cap) return 0;
        uint8_t *h = out + pos;
        memset(h, 0, 46);
        fuzz_put(h, 0x02014b50, 4), fuzz_put(h + 4, 20, 2), fuzz_put(h + 6, 20, 2);
        fuzz_put(h + 10, m[i].deflate ? 8 : 0, 2), fuzz_put(h + 16, crcs[i], 4);
        fuzz_put(h + 20, (uint32_t)csz[i], 4), fuzz_put(h + 24, (uint32_t)m[i].n, 4);
        fuzz_put(h + 28, (uint32_t)nlen, 2), fuzz_put(h + 42, (uint32_t)offs[i], 4);
        memcpy(h + 46, m[i].name, nlen);
        pos += 46 + nlen;
    }
    if (pos + 22 > cap) return 0;
    uint8_t *e = out + pos;
    memset(e, 0, 22);
    fuzz_put(e, 0x06054b50, 4), fuzz_put(e + 8, (uint32_t)k, 2), fuzz_put(e + 10, (uint32_t)k, 2);
    fuzz_put(e + 12, (uint32_t)(pos - cd), 4), fuzz_put(e + 16, (uint32_t)cd, 4);
    return pos + 22;
}

static void fuzz_zip_change(fuzz_zip_member *m, int *k, fuzz_rng *r) {
    static const char *const names[] = {"arr_0.npy",
                                        "arr_1.npy",
                                        "arr_2.npy",
                                        "arr_10.npy",
                                        "attn.npy",
                                        "encoder_attentions.npy",
                                        "cross_attentions.npy",
                                        "decoder_attn.npy",
                                        "x",
                                        "arr_0",
                                        "../up.npy",
                                        ""};
    int i = (int)fuzz_rand(r, (uint32_t)*k);
    switch (fuzz_rand(r, 8)) {
    case 0:
        snprintf(m[i].name, sizeof m[i].name, "%s", names[fuzz_rand(r, sizeof names / sizeof names[0])]);
        break;
    case 1: m[i].deflate = !m[i].deflate; break;
    case 2:
        if (*k > 1) {
            free(m[i].data);
            m[i] = m[--*k];
            m[*k].data = NULL;
        }
        break;
    case 3:
        if (*k < FUZZ_ZIP_MAX_MEMBERS && (m[*k].data = malloc(FUZZ_ZIP_MAX_MEMBER))) {
            memcpy(m[*k].data, m[i].data, m[i].n);
            m[*k].n = m[i].n;
            m[*k].deflate = m[i].deflate;
            snprintf(m[*k].name, sizeof m[*k].name, "%s", names[fuzz_rand(r, 4)]);
            ++*k;
        }
        break;
    default: {
        size_t room = m[i].n + 256 < FUZZ_ZIP_MAX_MEMBER ? m[i].n + 256 : FUZZ_ZIP_MAX_MEMBER;
        m[i].n = LLVMFuzzerMutate(m[i].data, m[i].n, room);
        break;
    }
    }
}

/* The LLVMFuzzerCustomMutator body of a zip harness (non-zip inputs: byte mutations). */
static inline size_t fuzz_zip_mutate(uint8_t *data, size_t size, size_t max_size, unsigned seed) {
    fuzz_rng r = {((uint64_t)seed << 1) | 1};
    fuzz_zip_member m[FUZZ_ZIP_MAX_MEMBERS];
    memset(m, 0, sizeof m);
    int k = size >= 4 && fuzz_le(data, 4) == 0x04034b50 ? fuzz_zip_read(data, size, m) : -1;
    size_t n = 0;
    if (k > 0) {
        fuzz_zip_change(m, &k, &r);
        n = fuzz_zip_write(m, k, data, max_size);
        if (n && fuzz_rand(&r, 8) == 0) { /* one header field of the result set to an edge case */
            static const uint32_t vals[] = {0, 1, 0xFFFF, 0xFFFFFFFFu, 0x7FFFFFFF, 8, 30, 46};
            size_t at = fuzz_rand(&r, (uint32_t)(n > 4 ? n - 4 : 1));
            fuzz_put(data + at, vals[fuzz_rand(&r, 8)],
                     1 + (int)fuzz_rand(&r, 2) * 1 + (int)fuzz_rand(&r, 2) * 2);
        }
    }
    for (int i = 0; i < FUZZ_ZIP_MAX_MEMBERS; i++)
        free(m[i].data);
    return n ? n : LLVMFuzzerMutate(data, size, max_size);
}

#endif
