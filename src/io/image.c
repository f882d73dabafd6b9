/* The evaluation preprocessing of vision models, equal to the PIL pipelines PyTorch users run (timm's
 * transforms, torchvision's Resize / CenterCrop / ToTensor / Normalize, Hugging Face's ViTImageProcessor):
 * PIL's resampling of 8-bit images, then a center crop, scaling to [0, 1] and per-channel normalization in
 * float32. Decoding is in image_decode.c.
 *
 * The resampler is PIL's (Resample.c, ImagingResample for 8-bit images), arithmetic included, so that the
 * network input equals PIL's bit for bit: a separable filter (bicubic a = -0.5 with support 2, bilinear with
 * support 1) widened by the scale when shrinking (antialiasing); per output pixel the taps from
 * floor(center -/+ support + 0.5), weights computed in double and normalized to sum 1, then turned into
 * fixed point with 22 fractional bits (rounded half away from zero); each pass sums 8-bit samples times
 * weights into an int starting at one half, shifts right by 22 and clamps to [0, 255]. The horizontal pass
 * runs first (only over the rows the vertical pass reads), its 8-bit result feeds the vertical pass, and a
 * pass whose size does not change is skipped. */
#include "image.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { FIX_BITS = 22 }; /* PIL's PRECISION_BITS: 32 - 8 bits of sample - 2 bits of headroom */

static double filter_bicubic(double x) {
    const double a = -0.5;
    if (x < 0) x = -x;
    if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
    return 0;
}

static double filter_bilinear(double x) {
    if (x < 0) x = -x;
    return x < 1 ? 1 - x : 0;
}

/* Per output index: first input index, tap count and fixed-point weights. */
typedef struct taps {
    int *first;  /* (out) */
    int *count;  /* (out) */
    int32_t *w;  /* (out, max_taps) */
    double *tmp; /* (max_taps) weights of one output before the fixed-point conversion */
    int max_taps;
} taps;

static void taps_free(taps *t) {
    free(t->first);
    free(t->count);
    free(t->w);
    free(t->tmp);
}

static int32_t to_fixed(double k) {
    return (int32_t)(k < 0 ? -0.5 + k * (1 << FIX_BITS) : 0.5 + k * (1 << FIX_BITS));
}

/* The weights of output o (PIL precompute_coeffs + normalize_coeffs_8bpc). */
static void taps_one(taps *t, int o, int in, double scale, double fscale, double support, av_resample rs) {
    double center = (o + 0.5) * scale, ss = 1.0 / fscale, total = 0;
    int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
    if (lo < 0) lo = 0;
    if (hi > in) hi = in;
    int n = hi - lo < t->max_taps ? hi - lo : t->max_taps;
    for (int i = 0; i < n; i++) {
        double x = (i + lo - center + 0.5) * ss;
        t->tmp[i] = rs == AV_RESAMPLE_BICUBIC ? filter_bicubic(x) : filter_bilinear(x);
        total += t->tmp[i];
    }
    int32_t *wo = t->w + (size_t)o * (size_t)t->max_taps;
    for (int i = 0; i < n; i++)
        wo[i] = to_fixed(total != 0 ? t->tmp[i] / total : t->tmp[i]);
    t->first[o] = lo;
    t->count[o] = n;
}

static int taps_build(taps *t, int in, int out, av_resample rs, av_err *err) {
    memset(t, 0, sizeof *t);
    double scale = (double)in / out, fscale = scale > 1 ? scale : 1;
    double support = (rs == AV_RESAMPLE_BICUBIC ? 2.0 : 1.0) * fscale;
    t->max_taps = (int)ceil(support) * 2 + 1;
    t->first = malloc(sizeof(int) * (size_t)out);
    t->count = malloc(sizeof(int) * (size_t)out);
    t->w = malloc(sizeof(int32_t) * (size_t)out * (size_t)t->max_taps);
    t->tmp = malloc(sizeof(double) * (size_t)t->max_taps);
    if (!t->first || !t->count || !t->w || !t->tmp) {
        taps_free(t);
        return av_errf(err, "out of memory for the resampling weights");
    }
    for (int o = 0; o < out; o++)
        taps_one(t, o, in, scale, fscale, support, rs);
    return 0;
}

static uint8_t clip8(int32_t acc) {
    return acc <= 0 ? 0 : acc >= (256 << FIX_BITS) ? 255 : (uint8_t)(acc >> FIX_BITS);
}

/* Horizontal pass over rows [y0, y0 + n_rows) of src (h, w, 3) into dst (n_rows, ow, 3). */
static void pass_horizontal(const uint8_t *src, int w, int y0, int n_rows, const taps *t, int ow,
                            uint8_t *dst) {
    for (int y = 0; y < n_rows; y++) {
        const uint8_t *row = src + (size_t)(y0 + y) * (size_t)w * 3;
        uint8_t *out = dst + (size_t)y * (size_t)ow * 3;
        for (int x = 0; x < ow; x++) {
            const int32_t *wt = t->w + (size_t)x * (size_t)t->max_taps;
            const uint8_t *p = row + (size_t)t->first[x] * 3;
            int32_t acc[3] = {1 << (FIX_BITS - 1), 1 << (FIX_BITS - 1), 1 << (FIX_BITS - 1)};
            for (int i = 0; i < t->count[x]; i++)
                for (int c = 0; c < 3; c++)
                    acc[c] += p[3 * i + c] * wt[i];
            for (int c = 0; c < 3; c++)
                out[3 * x + c] = clip8(acc[c]);
        }
    }
}

/* Vertical pass: src (rows starting at input row y0, w, 3) into dst (oh, w, 3). */
static void pass_vertical(const uint8_t *src, int w, int y0, const taps *t, int oh, uint8_t *dst) {
    size_t stride = (size_t)w * 3;
    for (int y = 0; y < oh; y++) {
        const int32_t *wt = t->w + (size_t)y * (size_t)t->max_taps;
        const uint8_t *col = src + (size_t)(t->first[y] - y0) * stride;
        uint8_t *out = dst + (size_t)y * stride;
        for (size_t x = 0; x < stride; x++) {
            int32_t acc = 1 << (FIX_BITS - 1);
            for (int i = 0; i < t->count[y]; i++)
                acc += col[(size_t)i * stride + x] * wt[i];
            out[x] = clip8(acc);
        }
    }
}

int av_image_resize_rgb8(const uint8_t *src, int h, int w, uint8_t *dst, int oh, int ow, av_resample rs,
                         av_err *err) {
    if (h <= 0 || w <= 0 || oh <= 0 || ow <= 0) return av_errf(err, "resize: empty image");
    if (oh == h && ow == w) {
        memcpy(dst, src, (size_t)h * (size_t)w * 3);
        return 0;
    }
    taps tx = {0}, ty = {0};
    uint8_t *tmp = NULL; /* (rows the vertical pass reads, ow, 3) */
    int rc = -1;
    if (taps_build(&ty, h, oh, rs, err) || (ow != w && taps_build(&tx, w, ow, rs, err))) goto done;
    if (ow == w) {
        pass_vertical(src, w, 0, &ty, oh, dst);
    } else if (oh == h) {
        pass_horizontal(src, w, 0, h, &tx, ow, dst);
    } else {
        int y0 = ty.first[0], y1 = ty.first[oh - 1] + ty.count[oh - 1];
        tmp = malloc((size_t)(y1 - y0) * (size_t)ow * 3);
        if (!tmp) {
            av_errf(err, "out of memory resizing a %d x %d image", w, h);
            goto done;
        }
        pass_horizontal(src, w, y0, y1 - y0, &tx, ow, tmp);
        pass_vertical(tmp, ow, y0, &ty, oh, dst);
    }
    rc = 0;
done:
    free(tmp);
    taps_free(&tx);
    taps_free(&ty);
    return rc;
}

/* The resized size before the crop: torchvision Resize(int) keeps the aspect (shorter side -> resize_short,
 * the longer one truncated); resize_short 0 resizes straight to the output size. */
static int resized_size(const av_rgb_image *im, const av_image_prep *p, int *rh, int *rw, av_err *err) {
    int W = im->width, H = im->height;
    *rh = p->out_h;
    *rw = p->out_w;
    if (p->resize_short <= 0) return 0;
    int64_t longer = (int64_t)p->resize_short * (W <= H ? H : W) / (W <= H ? W : H);
    if (longer * p->resize_short > (int64_t)AV_IMAGE_MAX_PIXELS)
        return av_errf(err,
                       "image preprocessing: a %d x %d image resized to %d on its shorter side would be "
                       "more than %u Mpixel",
                       W, H, p->resize_short, AV_IMAGE_MAX_PIXELS >> 20);
    *rw = W <= H ? p->resize_short : (int)longer;
    *rh = W <= H ? (int)longer : p->resize_short;
    if (*rh < p->out_h || *rw < p->out_w)
        return av_errf(err, "image preprocessing: resized %d x %d is smaller than the %d x %d crop", *rw, *rh,
                       p->out_w, p->out_h);
    return 0;
}

/* The crop (out_h x out_w at top, left of the rw x rh resized image) as 8 bits, and its box in the original.
 */
static int keep_seen(const av_rgb_image *im, const av_image_prep *p, const uint8_t *res, int rw, int rh,
                     int top, int left, av_image_seen *seen, av_err *err) {
    size_t row = (size_t)p->out_w * 3;
    *seen = (av_image_seen){malloc(row * (size_t)p->out_h), p->out_h, p->out_w, im->width, im->height, {0}};
    if (!seen->rgb) return av_errf(err, "out of memory");
    for (int y = 0; y < p->out_h; y++)
        memcpy(seen->rgb + (size_t)y * row, res + ((size_t)(y + top) * (size_t)rw + (size_t)left) * 3, row);
    double sx = (double)im->width / rw, sy = (double)im->height / rh; /* resized -> original pixels */
    seen->crop[0] = left * sx;
    seen->crop[1] = top * sy;
    seen->crop[2] = (left + p->out_w) * sx;
    seen->crop[3] = (top + p->out_h) * sy;
    return 0;
}

int av_image_preprocess_rgb(const av_rgb_image *im, const av_image_prep *p, float **out, av_image_seen *seen,
                            av_err *err) {
    *out = NULL;
    if (p->out_h <= 0 || p->out_w <= 0 || p->out_h > 8192 || p->out_w > 8192)
        return av_errf(err, "image preprocessing: bad input size %d x %d", p->out_w, p->out_h);
    int rh, rw;
    if (resized_size(im, p, &rh, &rw, err)) return -1;
    /* torchvision CenterCrop: int(round(d / 2.0)), Python's round-half-to-even (rint in the default mode) */
    int top = (int)rint((rh - p->out_h) / 2.0), left = (int)rint((rw - p->out_w) / 2.0);
    uint8_t *res = malloc((size_t)rh * (size_t)rw * 3);                           /* (rh, rw, 3) */
    float *dst = malloc(sizeof(float) * 3 * (size_t)p->out_h * (size_t)p->out_w); /* (3, out_h, out_w) */
    if (!res || !dst ||
        av_image_resize_rgb8(im->data, im->height, im->width, res, rh, rw, p->resample, err)) {
        if (!res || !dst) av_errf(err, "out of memory preprocessing a %d x %d image", im->width, im->height);
        free(res);
        free(dst);
        return -1;
    }
    /* ToTensor (x / 255 in float32) and Normalize ((x - mean) / std in float32) */
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < p->out_h; y++)
            for (int x = 0; x < p->out_w; x++) {
                float v = (float)res[((size_t)(y + top) * (size_t)rw + (size_t)(x + left)) * 3 + (size_t)c] /
                          255.0f;
                dst[((size_t)c * (size_t)p->out_h + (size_t)y) * (size_t)p->out_w + (size_t)x] =
                    (v - p->mean[c]) / p->std[c];
            }
    if (seen && keep_seen(im, p, res, rw, rh, top, left, seen, err)) {
        free(res);
        free(dst);
        return -1;
    }
    free(res);
    *out = dst;
    return 0;
}
