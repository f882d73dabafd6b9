/* PNG and JPEG decoding to 8-bit RGB as PIL does it, the decoder PyTorch users' pipelines (timm, torchvision,
 * Hugging Face image processors) run before resizing: `Image.open(path).convert("RGB")`.
 *
 * PNG goes through libpng, JPEG through libjpeg-turbo's libjpeg API with PIL's settings (the library's
 * defaults: JDCT_ISLOW, fancy upsampling, no scaling; PIL changes them only in draft mode, which these
 * pipelines never use). The conversions to RGB are PIL's: grayscale repeated, palette looked up, alpha and
 * transparency dropped (not composited), 16-bit samples cut to their high byte, CMYK JPEGs read as Adobe's
 * inverted CMYK and converted with PIL's formula. A 16-bit grayscale PNG is refused: PIL opens it as 32-bit
 * integers and `convert("RGB")` clips every value above 255 (a white image), which no one wants reproduced.
 *
 * Every size is checked against AV_IMAGE_MAX_SIDE / AV_IMAGE_MAX_PIXELS from the header, before any pixel
 * buffer exists; libpng's own limits and a bound on JPEG scans keep hostile files from costing more. Both
 * libraries report errors through longjmp into these functions, which then free everything they own. */
#include "image.h"

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

enum {
    JPEG_MAX_SCANS = 1000,   /* progressive JPEGs with more scans are refused (decoding cost) */
    PNG_MAX_CHUNK = 8 << 20, /* largest ancillary chunk libpng will buffer (text, ICC profiles) */
};

static int check_size(const char *name, const char *kind, uint64_t w, uint64_t h, av_err *err) {
    if (w == 0 || h == 0 || w > AV_IMAGE_MAX_SIDE || h > AV_IMAGE_MAX_SIDE || w * h > AV_IMAGE_MAX_PIXELS)
        return av_errf(
            err, "%s: %s of %llu x %llu pixels is outside the supported size (at most %d a side, %u Mpixel)",
            name, kind, (unsigned long long)w, (unsigned long long)h, AV_IMAGE_MAX_SIDE,
            AV_IMAGE_MAX_PIXELS >> 20);
    return 0;
}

/* ---- PNG (libpng) ---- */

typedef struct png_ctx {
    const uint8_t *data;
    size_t size, off;
    char msg[200];
} png_ctx;

static void png_fail(png_structp png, png_const_charp msg) {
    png_ctx *c = png_get_error_ptr(png);
    snprintf(c->msg, sizeof c->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_quiet(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

static void png_read_mem(png_structp png, png_bytep out, size_t n) {
    png_ctx *c = png_get_io_ptr(png);
    if (n > c->size - c->off) png_error(png, "the file ends early");
    memcpy(out, c->data + c->off, n);
    c->off += n;
}

/* The transformations that make libpng's output what PIL's convert("RGB") gives; -1 when refused. */
static int png_to_rgb(png_structp png, png_infop info, const char *name, av_err *err) {
    int depth = png_get_bit_depth(png, info), type = png_get_color_type(png, info);
    if (depth == 16 && type == PNG_COLOR_TYPE_GRAY)
        return av_errf(err,
                       "%s: 16-bit grayscale PNG is not supported (PIL, which PyTorch pipelines use, clips "
                       "it to white when converting to RGB): convert it to 8 bits first",
                       name);
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if ((type & ~PNG_COLOR_MASK_ALPHA) == PNG_COLOR_TYPE_GRAY && depth < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16) png_set_strip_16(png); /* the high byte, as PIL's ";16B" unpackers */
    png_set_strip_alpha(png);               /* alpha channels and expanded tRNS: dropped, as convert("RGB") */
    if ((type & ~PNG_COLOR_MASK_ALPHA) == PNG_COLOR_TYPE_GRAY) png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_channels(png, info) != 3 || png_get_bit_depth(png, info) != 8)
        return av_errf(err, "%s: this PNG layout (color type %d, %d bits) does not decode to RGB", name, type,
                       depth);
    return 0;
}

static int decode_png(const uint8_t *data, size_t size, const char *name, av_rgb_image *out, av_err *err) {
    png_ctx c = {data, size, 0, ""};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &c, png_fail, png_quiet);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    uint8_t *volatile px = NULL;
    png_bytep *volatile rows = NULL;
    int rc = -1;
    if (!info) {
        av_errf(err, "%s: out of memory", name);
        goto done;
    }
    if (setjmp(png_jmpbuf(png))) {
        av_errf(err, "%s: cannot decode the PNG image (%s)", name, c.msg);
        goto done;
    }
    png_set_user_limits(png, AV_IMAGE_MAX_SIDE, AV_IMAGE_MAX_SIDE);
    png_set_chunk_malloc_max(png, PNG_MAX_CHUNK);
    png_set_read_fn(png, &c, png_read_mem);
    png_read_info(png, info);
    uint32_t w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    if (check_size(name, "a PNG", w, h, err) || png_to_rgb(png, info, name, err)) goto done;
    px = malloc((size_t)w * h * 3); /* (h, w, 3) */
    rows = malloc(sizeof *rows * h);
    if (!px || !rows) {
        av_errf(err, "%s: out of memory for %u x %u pixels", name, w, h);
        goto done;
    }
    for (uint32_t y = 0; y < h; y++)
        rows[y] = px + (size_t)y * w * 3;
    png_read_image(png, rows);
    *out = (av_rgb_image){(int)w, (int)h, px};
    px = NULL;
    rc = 0;
done:
    free(px);
    free(rows);
    png_destroy_read_struct(png ? &png : NULL, info ? &info : NULL, NULL);
    return rc;
}

/* ---- JPEG (libjpeg-turbo) ---- */

typedef struct jpeg_ctx {
    struct jpeg_error_mgr pub; /* first: libjpeg sees a jpeg_error_mgr */
    struct jpeg_progress_mgr progress;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
    int truncated;
} jpeg_ctx;

static void jpeg_fail(j_common_ptr cinfo) {
    jpeg_ctx *c = (jpeg_ctx *)cinfo->err;
    cinfo->err->format_message(cinfo, c->msg);
    longjmp(c->jb, 1);
}

/* Warnings are ignored as PIL ignores them, except the end of the data before the end of the image: PIL
 * refuses truncated files ("image file is truncated"). */
static void jpeg_message(j_common_ptr cinfo, int level) {
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) ((jpeg_ctx *)cinfo->err)->truncated = 1;
}

static void jpeg_scan_limit(j_common_ptr cinfo) {
    j_decompress_ptr d = (j_decompress_ptr)cinfo;
    if (d->input_scan_number > JPEG_MAX_SCANS) {
        jpeg_ctx *c = (jpeg_ctx *)cinfo->err;
        snprintf(c->msg, sizeof c->msg, "more than %d progressive scans", JPEG_MAX_SCANS);
        longjmp(c->jb, 1);
    }
}

/* PIL's CMYK to RGB of Adobe (inverted) CMYK samples: with c = 255 - raw and nk = 255 - k,
 * channel = nk - round(c * nk / 255), computed as PIL's MULDIV255. */
static void cmyk_row_to_rgb(const uint8_t *in, uint8_t *out, int w) {
    for (int x = 0; x < w; x++, in += 4, out += 3) {
        int nk = in[3]; /* 255 - (255 - raw k) */
        for (int ch = 0; ch < 3; ch++) {
            int c = 255 - in[ch], t = c * nk + 128;
            int v = nk - (((t >> 8) + t) >> 8);
            out[ch] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
}

/* Reads every scanline of a started decompression into px (h, w, 3). */
static void jpeg_read_rgb(j_decompress_ptr d, uint8_t *px, uint8_t *cmyk_row) {
    int w = (int)d->output_width;
    while (d->output_scanline < d->output_height) {
        uint8_t *dst = px + (size_t)d->output_scanline * (size_t)w * 3;
        JSAMPROW row = cmyk_row ? cmyk_row : dst;
        if (jpeg_read_scanlines(d, &row, 1) != 1) break; /* no more data: reported as truncated */
        if (cmyk_row) cmyk_row_to_rgb(cmyk_row, dst, w);
    }
}

static int decode_jpeg(const uint8_t *data, size_t size, const char *name, av_rgb_image *out, av_err *err) {
    struct jpeg_decompress_struct d;
    jpeg_ctx c;
    memset(&c, 0, sizeof c);
    d.err = jpeg_std_error(&c.pub);
    c.pub.error_exit = jpeg_fail;
    c.pub.emit_message = jpeg_message;
    c.progress.progress_monitor = jpeg_scan_limit;
    uint8_t *volatile px = NULL, *volatile cmyk = NULL;
    int rc = -1;
    if (setjmp(c.jb)) {
        av_errf(err, "%s: cannot decode the JPEG image (%s)", name, c.msg);
        goto done;
    }
    jpeg_create_decompress(&d);
    d.progress = &c.progress;
    jpeg_mem_src(&d, data, (unsigned long)size);
    jpeg_read_header(&d, TRUE);
    if (check_size(name, "a JPEG", d.image_width, d.image_height, err)) goto done;
    int is_cmyk = d.jpeg_color_space == JCS_CMYK || d.jpeg_color_space == JCS_YCCK;
    d.out_color_space = is_cmyk ? JCS_CMYK : JCS_RGB; /* grayscale is repeated into R, G, B */
    jpeg_start_decompress(&d);
    int w = (int)d.output_width, h = (int)d.output_height;
    px = malloc((size_t)w * (size_t)h * 3);
    cmyk = is_cmyk ? malloc((size_t)w * 4) : NULL;
    if (!px || (is_cmyk && !cmyk) || d.output_components != (is_cmyk ? 4 : 3)) {
        av_errf(err, "%s: out of memory for %d x %d pixels", name, w, h);
        goto done;
    }
    jpeg_read_rgb(&d, px, cmyk);
    if (d.output_scanline < d.output_height || c.truncated) {
        av_errf(err, "%s: the JPEG data ends before the image does (truncated file)", name);
        goto done;
    }
    jpeg_finish_decompress(&d);
    *out = (av_rgb_image){w, h, px};
    px = NULL;
    rc = 0;
done:
    jpeg_destroy_decompress(&d);
    free(px);
    free(cmyk);
    return rc;
}

/* ---- entry points ---- */

void av_rgb_image_free(av_rgb_image *im) {
    free(im->data);
    memset(im, 0, sizeof *im);
}

int av_image_decode_memory(const void *data, size_t size, const char *name, av_rgb_image *out, av_err *err) {
    memset(out, 0, sizeof *out);
    const uint8_t *p = data;
    if (size > AV_IMAGE_MAX_FILE)
        return av_errf(err, "%s: the file is larger than %u MiB", name, AV_IMAGE_MAX_FILE >> 20);
    if (size >= 8 && memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0) return decode_png(p, size, name, out, err);
    if (size >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF)
        return decode_jpeg(p, size, name, out, err);
    return av_errf(err, "%s: not a PNG or JPEG image", name);
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
