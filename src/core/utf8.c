/* UTF-8: the project's one decoder (the encoder, av_utf8_encode, is inline in core.h). Decoding is strict
 * (RFC 3629): no overlong forms, no surrogates (U+D800..U+DFFF), nothing past U+10FFFF, no truncated
 * sequences. Callers decide what an invalid byte becomes (U+FFFD, an escape, an error); each moves on by one
 * byte, so "\xED\xA0\x80" is three invalid bytes, as libsentencepiece and most terminals count them. */
#include "core.h"

int av_utf8_decode(const char *s, size_t n, uint32_t *cp) {
    const uint8_t *u = (const uint8_t *)s;
    if (n == 0) return 0;
    if (u[0] < 0x80) {
        *cp = u[0];
        return 1;
    }
    int len = u[0] >= 0xF0 ? 4 : u[0] >= 0xE0 ? 3 : u[0] >= 0xC0 ? 2 : 0; /* 0: a continuation byte */
    if (!len || (size_t)len > n || u[0] > 0xF7) return 0;
    uint32_t c = u[0] & (0x7F >> len);
    for (int i = 1; i < len; i++) {
        if ((u[i] & 0xC0) != 0x80) return 0;
        c = (c << 6) | (u[i] & 0x3F);
    }
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000}; /* smallest value of each length */
    if (c < min_cp[len] || c > 0x10FFFF || (c >= 0xD800 && c < 0xE000)) return 0;
    *cp = c;
    return len;
}

size_t av_utf8_valid_prefix(const char *s, size_t n) {
    size_t i = 0;
    uint32_t cp;
    while (i < n) {
        if ((uint8_t)s[i] < 0x80) { /* ASCII without a call: tokenizers run this over every input */
            i++;
            continue;
        }
        int k = av_utf8_decode(s + i, n - i, &cp);
        if (!k) break;
        i += (size_t)k;
    }
    return i;
}
