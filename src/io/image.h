/* Images for vision models: PNG/JPEG decoding (stb_image, behind size checks) and the evaluation
 * preprocessing of timm / Hugging Face image processors (resize, center crop, scale to [0, 1], normalize). */
#ifndef AV_IMAGE_H
#define AV_IMAGE_H

#include "core/core.h"

#define AV_IMAGE_MAX_SIDE 16384         /* larger images are refused before decoding */
#define AV_IMAGE_MAX_PIXELS (64u << 20) /* 64 Mpixel */
#define AV_IMAGE_MAX_FILE (256u << 20)  /* bytes */

typedef struct av_rgb_image {
    int width, height;
    uint8_t *data; /* (height, width, 3) RGB, malloc'd */
} av_rgb_image;

/* Decodes a PNG or JPEG (any format stb_image reads) to 8-bit RGB. */
int av_image_decode_file(const char *path, av_rgb_image *out, av_err *err);
int av_image_decode_memory(const void *data, size_t size, const char *name, av_rgb_image *out, av_err *err);
void av_rgb_image_free(av_rgb_image *im);

typedef enum av_resample { AV_RESAMPLE_BICUBIC = 0, AV_RESAMPLE_BILINEAR } av_resample;

/* How an image becomes the model's input tensor. */
typedef struct av_image_prep {
    int out_h, out_w; /* final input size, e.g. 224 x 224 */
    int resize_short; /* > 0: resize the shorter side to this (aspect kept), then center-crop out_h x out_w
                         (timm); 0: resize straight to out_h x out_w (Hugging Face ViTImageProcessor) */
    av_resample resample;
    float mean[3], std[3]; /* applied to RGB scaled to [0, 1] */
} av_image_prep;

/* Antialiased separable resampling of (h, w) planes as PIL and torch interpolate(antialias=True) do it:
 * the filter (bicubic a = -0.5, support 2; bilinear support 1) is widened by the scale when shrinking.
 * Float throughout (no rounding to 8 bits between the passes). src: (channels, h, w); dst: (channels, oh,
 * ow). */
int av_image_resize(const float *src, int channels, int h, int w, float *dst, int oh, int ow, av_resample rs,
                    av_err *err);

/* The whole preprocessing: out (3, p->out_h, p->out_w) malloc'd, normalized. */
int av_image_preprocess_rgb(const av_rgb_image *im, const av_image_prep *p, float **out, av_err *err);

#endif
