/* Image decoding (av_image_decode_memory: PNG through libpng, JPEG through libjpeg-turbo, behind the size
 * checks) and the vision preprocessing (PIL's resampler, center crop, normalization) at a few output sizes
 * and both filters picked by the input's last byte. The harness stays on the public decode function,
 * whatever library decodes. Seeds: fuzz/make_seeds.py (PNGs of every color type written there, baseline,
 * progressive, 4:4:4 and grayscale JPEGs written by PIL). */
#include "fuzz.h"
#include "io/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    av_rgb_image im;
    av_err err;
    if (fuzz_note(av_image_decode_memory(data, size, "fuzz-image", &im, &err), "image", &err) != 0) return 0;
    static const int sides[4][2] = {{1, 1}, {7, 5}, {16, 16}, {3, 31}};
    unsigned b = size ? data[size - 1] : 0;
    av_image_prep p = {sides[b & 3][0],          sides[b & 3][1],
                       (b >> 2) & 1 ? 9 : 0,     (av_resample)((b >> 3) & 1),
                       {0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};
    if (p.resize_short && p.resize_short < p.out_h) p.resize_short = p.out_h > p.out_w ? p.out_h : p.out_w;
    float *px = NULL;
    av_image_seen seen = {0}; /* the 8-bit crop and its box, as `attnviz run --image` keeps them */
    if ((uint64_t)im.width * (uint64_t)im.height <= (1u << 22))
        av_image_preprocess_rgb(&im, &p, &px, (b >> 4) & 1 ? &seen : NULL, &err);
    free(px);
    free(seen.rgb);
    av_rgb_image_free(&im);
    return 0;
}
