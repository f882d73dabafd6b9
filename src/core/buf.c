/* A growing byte buffer for text outputs (HTML pages, SVG figures): appends never fail loudly; an allocation
 * failure sets oom, drops further writes, and the caller reports it once at the end. */
#include "core.h"

#include <stdlib.h>
#include <string.h>

static void buf_grow(av_buf *b, size_t extra) {
    if (b->oom || b->n + extra + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 1 << 16;
    while (cap < b->n + extra + 1)
        cap *= 2;
    char *p = realloc(b->s, cap);
    if (!p) {
        b->oom = 1;
        return;
    }
    b->s = p;
    b->cap = cap;
}

void av_buf_put(av_buf *b, const void *s, size_t n) {
    buf_grow(b, n);
    if (b->oom) return;
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

void av_buf_printf(av_buf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    if ((size_t)k < sizeof tmp) {
        av_buf_put(b, tmp, (size_t)k);
        return;
    }
    buf_grow(b, (size_t)k);
    if (b->oom) return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->n, (size_t)k + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)k;
}
