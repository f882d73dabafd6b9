/* Images for vision models, as PyTorch users' PIL pipelines see them: PNG (libpng) and JPEG (libjpeg-turbo)
 * decoding to RGB as PIL's Image.open(...).convert("RGB") (image_decode.c), and the evaluation preprocessing
 * of timm / torchvision / Hugging Face image processors with PIL's resampler, bit for bit (image.c). */
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

/* Decodes a PNG or JPEG to 8-bit RGB as PIL does (see image_decode.c for the conversions). */
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

/* PIL's resampling of 8-bit images (Image.resize with BICUBIC or BILINEAR, antialiased when shrinking), with
 * its fixed-point weights and its rounding to 8 bits between the horizontal and the vertical pass.
 * src: (h, w, 3) RGB; dst: (oh, ow, 3). */
int av_image_resize_rgb8(const uint8_t *src, int h, int w, uint8_t *dst, int oh, int ow, av_resample rs,
                         av_err *err);

/* What the model sees of an image: the 8-bit crop before normalization, and where it lies in the original. */
typedef struct av_image_seen {
    uint8_t *rgb;      /* (out_h, out_w, 3) malloc'd */
    int out_h, out_w;  /* its size */
    int width, height; /* the original image's */
    double crop[4];    /* x0, y0, x1, y1 of the crop in the original's pixels (the whole image: 0, 0, W, H) */
} av_image_seen;

/* The whole preprocessing: out (3, p->out_h, p->out_w) malloc'd, normalized; seen (may be NULL) receives the
 * 8-bit crop and its box (free seen->rgb). */
int av_image_preprocess_rgb(const av_rgb_image *im, const av_image_prep *p, float **out, av_image_seen *seen,
                            av_err *err);

#endif
