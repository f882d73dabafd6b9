/* Text for PNG figures: FreeType rendering of the DejaVu Sans font compiled into the binary (tools/embed.c
 * turns fonts-dejavu-core's DejaVuSans.ttf into av_font_dejavu_sans[] at build time), so no font file is
 * needed at run time. Measuring uses unhinted advances in font units (the same numbers at every size and
 * angle), so a layout computed in CSS px scales exactly to any dpi and matches the SVG output. */
#include "render/plot.h"

#include "core/core.h"

#include <ft2build.h>
#include FT_FREETYPE_H
#include FT_ADVANCES_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct av_font {
    FT_Library lib;
    FT_Face face;
    double size_set; /* px the face is currently sized for (0: none) */
    int units;       /* units per em */
    int has_kerning;
    int ascii_adv[128]; /* advance in font units of ASCII code points (-1: not cached) */
};

int av_font_open(av_font **out, av_err *err) {
    *out = NULL;
    av_font *f = calloc(1, sizeof *f);
    if (!f) return av_errf(err, "out of memory");
    if (FT_Init_FreeType(&f->lib)) {
        free(f);
        return av_errf(err, "FreeType: cannot initialize");
    }
    if (FT_New_Memory_Face(f->lib, av_font_dejavu_sans, (FT_Long)av_font_dejavu_sans_len, 0, &f->face)) {
        FT_Done_FreeType(f->lib);
        free(f);
        return av_errf(err, "FreeType: the embedded DejaVu Sans font does not load (%zu bytes)",
                       av_font_dejavu_sans_len);
    }
    f->units = f->face->units_per_EM > 0 ? f->face->units_per_EM : 2048;
    f->has_kerning = FT_HAS_KERNING(f->face) ? 1 : 0;
    for (int i = 0; i < 128; i++)
        f->ascii_adv[i] = -1;
    *out = f;
    return 0;
}

void av_font_free(av_font *f) {
    if (!f) return;
    FT_Done_Face(f->face);
    FT_Done_FreeType(f->lib);
    free(f);
}

/* Next code point of NUL-terminated UTF-8 text; a byte that does not start a valid character gives U+FFFD
 * and advances one byte. */
static uint32_t utf8_next(const unsigned char **ps) {
    const char *s = (const char *)*ps;
    uint32_t cp;
    int n = av_utf8_decode(s, strnlen(s, 4), &cp);
    if (n == 0) {
        cp = 0xFFFD;
        n = 1;
    }
    *ps += n;
    return cp;
}

static int glyph_advance(av_font *f, uint32_t cp, FT_UInt idx) {
    if (cp < 128 && f->ascii_adv[cp] >= 0) return f->ascii_adv[cp];
    FT_Fixed adv = 0;
    if (FT_Get_Advance(f->face, idx, FT_LOAD_NO_SCALE, &adv)) adv = 0;
    if (cp < 128) f->ascii_adv[cp] = (int)adv;
    return (int)adv;
}

static double kerning(av_font *f, FT_UInt prev, FT_UInt idx) {
    if (!f->has_kerning || !prev || !idx) return 0;
    FT_Vector k;
    if (FT_Get_Kerning(f->face, prev, idx, FT_KERNING_UNSCALED, &k)) return 0;
    return (double)k.x;
}

double av_font_width(av_font *f, const char *utf8, double px) {
    const unsigned char *s = (const unsigned char *)utf8;
    double units = 0;
    FT_UInt prev = 0;
    while (*s) {
        uint32_t cp = utf8_next(&s);
        FT_UInt idx = FT_Get_Char_Index(f->face, cp);
        units += kerning(f, prev, idx) + glyph_advance(f, cp, idx);
        prev = idx;
    }
    return units * px / f->units;
}

static void blit(av_image *im, const FT_Bitmap *bm, int x0, int y0, const uint8_t rgb[3]) {
    if (bm->pixel_mode != FT_PIXEL_MODE_GRAY) return;
    int pitch = bm->pitch < 0 ? -bm->pitch : bm->pitch;
    for (unsigned r = 0; r < bm->rows; r++) {
        int y = y0 + (int)r;
        if (y < 0 || y >= im->h) continue;
        const unsigned char *src = bm->buffer + (size_t)r * (size_t)pitch;
        for (unsigned c = 0; c < bm->width; c++) {
            int x = x0 + (int)c;
            unsigned a = src[c];
            if (x < 0 || x >= im->w || a == 0) continue;
            uint8_t *d = im->px + ((size_t)y * (size_t)im->w + (size_t)x) * 3;
            for (int k = 0; k < 3; k++)
                d[k] = (uint8_t)((d[k] * (255 - a) + rgb[k] * a + 127) / 255);
        }
    }
}

int av_font_draw(av_font *f, av_image *im, const char *utf8, double x, double y, double px, int angle,
                 int anchor, const uint8_t rgb[3], av_err *err) {
    if (!(px > 0.5) || px > 2000) return 0;
    if (f->size_set != px) {
        if (FT_Set_Char_Size(f->face, 0, (FT_F26Dot6)lround(px * 64), 72, 72))
            return av_errf(err, "FreeType: cannot set size %.1f px", px);
        f->size_set = px;
    }
    double a = angle * M_PI / 180.0, ca = cos(a), sa = sin(a);
    double w = anchor ? av_font_width(f, utf8, px) : 0;
    double start = anchor == 1 ? -w / 2 : anchor == 2 ? -w : 0;
    double penx = x + start * ca, peny = y - start * sa; /* direction in image coords: (cos a, -sin a) */
    FT_Matrix m = {(FT_Fixed)lround(ca * 65536), (FT_Fixed)lround(-sa * 65536), (FT_Fixed)lround(sa * 65536),
                   (FT_Fixed)lround(ca * 65536)};
    FT_Int32 flags = FT_LOAD_RENDER | (angle ? FT_LOAD_NO_HINTING : FT_LOAD_TARGET_LIGHT);
    const unsigned char *s = (const unsigned char *)utf8;
    FT_UInt prev = 0;
    double scale = px / f->units;
    while (*s) {
        uint32_t cp = utf8_next(&s);
        FT_UInt idx = FT_Get_Char_Index(f->face, cp);
        double kx = kerning(f, prev, idx) * scale;
        penx += kx * ca;
        peny -= kx * sa;
        double fx = floor(penx), fy = floor(peny);
        FT_Vector delta = {(FT_Pos)lround((penx - fx) * 64), (FT_Pos)lround(-(peny - fy) * 64)};
        FT_Set_Transform(f->face, &m, &delta);
        if (FT_Load_Glyph(f->face, idx, flags)) {
            FT_Set_Transform(f->face, NULL, NULL);
            return av_errf(err, "FreeType: cannot render glyph U+%04X", (unsigned)cp);
        }
        FT_GlyphSlot g = f->face->glyph;
        blit(im, &g->bitmap, (int)fx + g->bitmap_left, (int)fy - g->bitmap_top, rgb);
        double adv = glyph_advance(f, cp, idx) * scale;
        penx += adv * ca;
        peny -= adv * sa;
        prev = idx;
    }
    FT_Set_Transform(f->face, NULL, NULL);
    return 0;
}
