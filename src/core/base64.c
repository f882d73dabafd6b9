/* Base64 (RFC 4648): encoding for data: URLs and HTML pages, decoding for base64 fields of tokenizer files.
 */
#include "core.h"

#include <stdlib.h>

static const char k_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t av_base64_len(size_t n) {
    size_t groups = n / 3 + (n % 3 != 0), len;
    return av_mul_size(groups, 4, &len) ? len : SIZE_MAX;
}

char *av_base64_encode(const void *data, size_t n) {
    const uint8_t *d = data;
    size_t len = av_base64_len(n);
    if (len == SIZE_MAX) return NULL;
    char *s = malloc(len + 1), *o = s;
    if (!s) return NULL;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
        *o++ = k_alphabet[v >> 18];
        *o++ = k_alphabet[(v >> 12) & 63];
        *o++ = k_alphabet[(v >> 6) & 63];
        *o++ = k_alphabet[v & 63];
    }
    if (i < n) { /* 1 or 2 bytes left: 2 or 3 characters and padding */
        uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0);
        *o++ = k_alphabet[v >> 18];
        *o++ = k_alphabet[(v >> 12) & 63];
        *o++ = i + 1 < n ? k_alphabet[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o = 0;
    return s;
}

/* Value of a character of either alphabet (standard "+/" or URL-safe "-_"), -1 for any other. */
static int b64_value(int c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

int av_base64_decode(const char *s, size_t n, uint8_t **out, size_t *out_n) {
    uint8_t *o = malloc(n / 4 * 3 + 4);
    if (!o) return -1;
    size_t k = 0;
    uint32_t acc = 0;
    int bits = 0; /* bits in acc not yet written */
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '=' || s[i] == '\n' || s[i] == '\r') continue;
        int v = b64_value((unsigned char)s[i]);
        if (v < 0) {
            free(o);
            return -1;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[k++] = (uint8_t)(acc >> bits);
        }
    }
    *out = o;
    *out_n = k;
    return 0;
}
