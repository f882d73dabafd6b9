/* RGB images, PNG encoding with libpng, and the raster backend of figures (display list -> pixels). */
#include "render/plot.h"

#include "core/core.h"

#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

int av_image_init(av_image *im, int w, int h, const uint8_t bg[3], av_err *err) {
    memset(im, 0, sizeof *im);
    size_t n;
    if (w <= 0 || h <= 0 || w > 32768 || h > 32768 || !av_mul_size((size_t)w * 3, (size_t)h, &n))
        return av_errf(err, "image size %d x %d is out of range (1..32768 pixels a side)", w, h);
    im->px = malloc(n);
    if (!im->px) return av_errf(err, "out of memory for a %d x %d image", w, h);
    im->w = w;
    im->h = h;
    for (size_t i = 0; i < n; i += 3)
        memcpy(im->px + i, bg, 3);
    return 0;
}

void av_image_free(av_image *im) {
    free(im->px);
    memset(im, 0, sizeof *im);
}

/* Pixels whose centers fall in [a, b): first index ceil(a - 0.5), one past the last ceil(b - 0.5). */
static void pixel_span(double a, double b, int limit, int *lo, int *hi) {
    double l = ceil(a - 0.5), h = ceil(b - 0.5);
    *lo = l < 0 ? 0 : l > limit ? limit : (int)l;
    *hi = h < 0 ? 0 : h > limit ? limit : (int)h;
}

void av_image_fill(av_image *im, double x, double y, double w, double h, const uint8_t rgb[3]) {
    int x0, x1, y0, y1;
    pixel_span(x, x + w, im->w, &x0, &x1);
    pixel_span(y, y + h, im->h, &y0, &y1);
    for (int r = y0; r < y1; r++) {
        uint8_t *p = im->px + ((size_t)r * (size_t)im->w + (size_t)x0) * 3;
        for (int c = x0; c < x1; c++, p += 3)
            memcpy(p, rgb, 3);
    }
}

/* ---- PNG ---- */

/* libpng's output goes into a core av_buf (binary data; its trailing NUL is not part of the PNG). */
static void png_buf_write(png_structp png, png_bytep data, png_size_t len) {
    av_buf_put(png_get_io_ptr(png), data, len);
}

static void png_buf_flush(png_structp png) { (void)png; }

static void png_on_error(png_structp png, png_const_charp msg) {
    av_err *err = png_get_error_ptr(png);
    if (err) av_errf(err, "libpng: %s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

int av_png_encode(const av_image *im, double dpi, uint8_t **out, size_t *n, av_err *err) {
    *out = NULL;
    *n = 0;
    av_buf buf = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, err, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, NULL);
        return av_errf(err, "libpng: out of memory");
    }
    png_bytep *rows = malloc(sizeof *rows * (size_t)im->h);
    if (!rows) {
        png_destroy_write_struct(&png, &info);
        return av_errf(err, "out of memory");
    }
    for (int r = 0; r < im->h; r++)
        rows[r] = im->px + (size_t)r * (size_t)im->w * 3;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(rows);
        free(buf.s);
        return -1;
    }
    png_set_write_fn(png, &buf, png_buf_write, png_buf_flush);
    png_set_IHDR(png, info, (png_uint_32)im->w, (png_uint_32)im->h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (dpi > 0) {
        png_uint_32 ppm = (png_uint_32)lround(dpi / 0.0254);
        png_set_pHYs(png, info, ppm, ppm, PNG_RESOLUTION_METER);
    }
    png_set_compression_level(png, 6);
    png_set_rows(png, info, rows);
    png_write_png(png, info, PNG_TRANSFORM_IDENTITY, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    if (buf.oom) {
        free(buf.s);
        return av_errf(err, "out of memory encoding a %d x %d PNG", im->w, im->h);
    }
    *out = (uint8_t *)buf.s;
    *n = buf.n;
    return 0;
}

/* ---- raster backend of figures ---- */

static void draw_raster(av_image *im, const av_fig_item *it, double s) {
    for (int r = 0; r < it->rh; r++) {
        double y0 = (it->y + it->h * r / it->rh) * s, y1 = (it->y + it->h * (r + 1) / it->rh) * s;
        for (int c = 0; c < it->rw; c++) {
            double x0 = (it->x + it->w * c / it->rw) * s, x1 = (it->x + it->w * (c + 1) / it->rw) * s;
            av_image_fill(im, x0, y0, x1 - x0, y1 - y0,
                          it->raster + ((size_t)r * (size_t)it->rw + (size_t)c) * 3);
        }
    }
}

int av_fig_to_image(const av_fig *fig, double scale, av_image *im, av_err *err) {
    int w = (int)ceil(fig->w * scale - 1e-6), h = (int)ceil(fig->h * scale - 1e-6);
    if (av_image_init(im, w, h, fig->bg, err)) return -1;
    for (int i = 0; i < fig->n; i++) {
        const av_fig_item *it = &fig->items[i];
        switch (it->kind) {
        case AV_FIG_RECT:
            av_image_fill(im, it->x * scale, it->y * scale, it->w * scale, it->h * scale, it->rgb);
            break;
        case AV_FIG_LINE: {
            /* axis-aligned strokes (ticks, frames): a rectangle of the stroke width, at least one pixel */
            double lw = fmax(it->size * scale, 1.0);
            double x = it->x * scale, y = it->y * scale, dx = it->w * scale, dy = it->h * scale;
            if (fabs(dy) < 1e-9)
                av_image_fill(im, fmin(x, x + dx), y - lw / 2, fabs(dx), lw, it->rgb);
            else
                av_image_fill(im, x - lw / 2, fmin(y, y + dy), lw, fabs(dy), it->rgb);
            break;
        }
        case AV_FIG_TEXT:
            if (av_font_draw(fig->font, im, it->text, it->x * scale, it->y * scale, it->size * scale,
                             it->angle, it->anchor, it->rgb, err)) {
                av_image_free(im);
                return -1;
            }
            break;
        case AV_FIG_RASTER: draw_raster(im, it, scale); break;
        }
    }
    return 0;
}
