/* PNG/JPEG decoding through stb_image (Debian libstb) behind magic and size checks, and the evaluation
 * preprocessing of vision models: antialiased resampling (PIL / torch antialias=True semantics, in float),
 * center crop, scaling to [0, 1] and per-channel normalization. */
#include "image.h"

#include <math.h>
#include <stb/stb_image.h>
#include <stdlib.h>
#include <string.h>

void av_rgb_image_free(av_rgb_image *im) {
    if (im->data) stbi_image_free(im->data);
    memset(im, 0, sizeof *im);
}

static const char *image_kind(const uint8_t *p, size_t n) {
    if (n >= 8 && memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0) return "PNG";
    if (n >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF) return "JPEG";
    return NULL;
}

int av_image_decode_memory(const void *data, size_t size, const char *name, av_rgb_image *out, av_err *err) {
    memset(out, 0, sizeof *out);
    const char *kind = image_kind(data, size);
    if (!kind) return av_errf(err, "%s: not a PNG or JPEG image", name);
    if (size > AV_IMAGE_MAX_FILE || size > (size_t)INT32_MAX)
        return av_errf(err, "%s: the file is larger than %u MiB", name, AV_IMAGE_MAX_FILE >> 20);
    int w, h, comp;
    if (!stbi_info_from_memory(data, (int)size, &w, &h, &comp))
        return av_errf(err, "%s: cannot read the %s header (%s)", name, kind, stbi_failure_reason());
    if (w <= 0 || h <= 0 || w > AV_IMAGE_MAX_SIDE || h > AV_IMAGE_MAX_SIDE ||
        (uint64_t)w * (uint64_t)h > AV_IMAGE_MAX_PIXELS)
        return av_errf(err, "%s: %d x %d pixels is outside the supported size (at most %d a side, %u Mpixel)",
                       name, w, h, AV_IMAGE_MAX_SIDE, AV_IMAGE_MAX_PIXELS >> 20);
    int w2, h2;
    uint8_t *px = stbi_load_from_memory(data, (int)size, &w2, &h2, &comp, 3);
    if (!px) return av_errf(err, "%s: cannot decode the %s image (%s)", name, kind, stbi_failure_reason());
    if (w2 != w || h2 != h) {
        stbi_image_free(px);
        return av_errf(err, "%s: the %s header and the decoded image disagree on the size", name, kind);
    }
    out->width = w;
    out->height = h;
    out->data = px;
    return 0;
}

int av_image_decode_file(const char *path, av_rgb_image *out, av_err *err) {
    char *buf;
    size_t n;
    memset(out, 0, sizeof *out);
    if (av_file_read_all(path, AV_IMAGE_MAX_FILE, &buf, &n, err)) return -1;
    int rc = av_image_decode_memory(buf, n, path, out, err);
    free(buf);
    return rc;
}

/* ---- resampling ---- */

static double filter_bicubic(double x) {
    const double a = -0.5; /* PIL's and torch's antialiased bicubic */
    if (x < 0) x = -x;
    if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
    return 0;
}

static double filter_bilinear(double x) {
    if (x < 0) x = -x;
    return x < 1 ? 1 - x : 0;
}

/* Per output index: first input index, tap count and normalized weights (PIL precompute_coeffs). */
typedef struct taps {
    int *first; /* (out) */
    int *count; /* (out) */
    float *w;   /* (out, max_taps) */
    int max_taps;
} taps;

static void taps_free(taps *t) {
    free(t->first);
    free(t->count);
    free(t->w);
}

static int taps_build(taps *t, int in, int out, av_resample rs, av_err *err) {
    memset(t, 0, sizeof *t);
    double support = rs == AV_RESAMPLE_BICUBIC ? 2.0 : 1.0;
    double scale = (double)in / out, fscale = scale > 1 ? scale : 1;
    support *= fscale;
    t->max_taps = (int)ceil(support) * 2 + 1;
    t->first = malloc(sizeof(int) * (size_t)out);
    t->count = malloc(sizeof(int) * (size_t)out);
    t->w = malloc(sizeof(float) * (size_t)out * (size_t)t->max_taps);
    if (!t->first || !t->count || !t->w) {
        taps_free(t);
        return av_errf(err, "out of memory");
    }
    for (int o = 0; o < out; o++) {
        double center = (o + 0.5) * scale, ss = 1.0 / fscale;
        int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in) hi = in;
        int n = hi - lo;
        if (n > t->max_taps) n = t->max_taps;
        double total = 0;
        float *wo = t->w + (size_t)o * (size_t)t->max_taps;
        for (int i = 0; i < n; i++) {
            double x = (i + lo - center + 0.5) * ss;
            total += rs == AV_RESAMPLE_BICUBIC ? filter_bicubic(x) : filter_bilinear(x);
        }
        for (int i = 0; i < n; i++) {
            double x = (i + lo - center + 0.5) * ss;
            double v = rs == AV_RESAMPLE_BICUBIC ? filter_bicubic(x) : filter_bilinear(x);
            wo[i] = (float)(total != 0 ? v / total : 0);
        }
        t->first[o] = lo;
        t->count[o] = n;
    }
    return 0;
}

int av_image_resize(const float *src, int channels, int h, int w, float *dst, int oh, int ow, av_resample rs,
                    av_err *err) {
    if (h <= 0 || w <= 0 || oh <= 0 || ow <= 0) return av_errf(err, "resize: empty image");
    taps tx, ty;
    if (taps_build(&tx, w, ow, rs, err)) return -1;
    if (taps_build(&ty, h, oh, rs, err)) {
        taps_free(&tx);
        return -1;
    }
    float *tmp = malloc(sizeof(float) * (size_t)h * (size_t)ow); /* (h, ow) one channel, horizontal pass */
    if (!tmp) {
        taps_free(&tx);
        taps_free(&ty);
        return av_errf(err, "out of memory");
    }
    for (int c = 0; c < channels; c++) {
        const float *s = src + (size_t)c * (size_t)h * (size_t)w;
        float *d = dst + (size_t)c * (size_t)oh * (size_t)ow;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < ow; x++) {
                const float *wt = tx.w + (size_t)x * (size_t)tx.max_taps;
                const float *row = s + (size_t)y * (size_t)w + tx.first[x];
                float acc = 0;
                for (int i = 0; i < tx.count[x]; i++)
                    acc += wt[i] * row[i];
                tmp[(size_t)y * (size_t)ow + (size_t)x] = acc;
            }
        for (int y = 0; y < oh; y++) {
            const float *wt = ty.w + (size_t)y * (size_t)ty.max_taps;
            for (int x = 0; x < ow; x++) {
                float acc = 0;
                for (int i = 0; i < ty.count[y]; i++)
                    acc += wt[i] * tmp[(size_t)(ty.first[y] + i) * (size_t)ow + (size_t)x];
                d[(size_t)y * (size_t)ow + (size_t)x] = acc;
            }
        }
    }
    free(tmp);
    taps_free(&tx);
    taps_free(&ty);
    return 0;
}

int av_image_preprocess_rgb(const av_rgb_image *im, const av_image_prep *p, float **out, av_err *err) {
    *out = NULL;
    int W = im->width, H = im->height;
    if (p->out_h <= 0 || p->out_w <= 0 || p->out_h > 8192 || p->out_w > 8192)
        return av_errf(err, "image preprocessing: bad input size %d x %d", p->out_w, p->out_h);
    /* resized size (rh, rw) and crop offset */
    int rh = p->out_h, rw = p->out_w;
    if (p->resize_short > 0) { /* torchvision Resize(int): shorter side -> size, longer side truncated */
        if (W <= H) {
            rw = p->resize_short;
            rh = (int)((int64_t)p->resize_short * H / W);
        } else {
            rh = p->resize_short;
            rw = (int)((int64_t)p->resize_short * W / H);
        }
        if (rh < p->out_h || rw < p->out_w)
            return av_errf(err, "image preprocessing: resized %d x %d is smaller than the %d x %d crop", rw,
                           rh, p->out_w, p->out_h);
    }
    /* torchvision CenterCrop: int(round(d / 2.0)), Python's round-half-to-even (rint in the default mode) */
    int top = (int)rint((rh - p->out_h) / 2.0), left = (int)rint((rw - p->out_w) / 2.0);
    size_t plane = (size_t)W * (size_t)H, rplane = (size_t)rw * (size_t)rh;
    float *src = malloc(sizeof(float) * 3 * plane);                               /* (3, H, W) in [0, 1] */
    float *res = malloc(sizeof(float) * 3 * rplane);                              /* (3, rh, rw) */
    float *dst = malloc(sizeof(float) * 3 * (size_t)p->out_h * (size_t)p->out_w); /* (3, out_h, out_w) */
    int rc = -1;
    if (!src || !res || !dst) {
        av_errf(err, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < plane; i++)
        for (int c = 0; c < 3; c++)
            src[(size_t)c * plane + i] = (float)im->data[i * 3 + (size_t)c] / 255.0f;
    if (av_image_resize(src, 3, H, W, res, rh, rw, p->resample, err)) goto done;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < p->out_h; y++)
            for (int x = 0; x < p->out_w; x++) {
                float v = res[(size_t)c * rplane + (size_t)(y + top) * (size_t)rw + (size_t)(x + left)];
                dst[((size_t)c * (size_t)p->out_h + (size_t)y) * (size_t)p->out_w + (size_t)x] =
                    (v - p->mean[c]) / p->std[c];
            }
    *out = dst;
    dst = NULL;
    rc = 0;
done:
    free(src);
    free(res);
    free(dst);
    return rc;
}
