/* DAAM word maps (docs/T2I_MODEL.md section 9; Tang et al. 2023) from a text-to-image trace's daam.raw: per
 * prompt token, the cross-attention of the patches summed over a range of steps, layers and heads, upsampled
 * bilinearly to the image (PyTorch's align_corners=False) and min-max normalized. */
#include "trace.h"

#include "core/core.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Source coordinate of output pixel i when g cells stretch over size pixels: the lower cell, the upper one
 * (clamped) and the weight of the upper one. */
static void bilinear_tap(int i, int g, int size, int *c0, int *c1, double *w) {
    double s = (i + 0.5) * g / size - 0.5;
    if (s < 0) s = 0;
    *c0 = (int)s;
    *c1 = *c0 + 1 < g ? *c0 + 1 : g - 1;
    *w = s - *c0;
}

/* One token: grid (g, g) -> out (size, size), normalized to [0, 1]. */
static void upsample_normalize(const double *grid, int g, int size, float *out) {
    double *up = malloc(sizeof(double) * (size_t)size * (size_t)size), lo = INFINITY, hi = -INFINITY;
    if (!up) { /* callers checked their own allocations; keep the output defined */
        memset(out, 0, sizeof(float) * (size_t)size * (size_t)size);
        return;
    }
    for (int y = 0; y < size; y++) {
        int y0, y1, x0, x1;
        double ly, lx;
        bilinear_tap(y, g, size, &y0, &y1, &ly);
        for (int x = 0; x < size; x++) {
            bilinear_tap(x, g, size, &x0, &x1, &lx);
            double v = (1 - ly) * ((1 - lx) * grid[y0 * g + x0] + lx * grid[y0 * g + x1]) +
                       ly * ((1 - lx) * grid[y1 * g + x0] + lx * grid[y1 * g + x1]);
            up[y * size + x] = v;
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
    }
    for (int i = 0; i < size * size; i++)
        out[i] = (float)((up[i] - lo) / (hi - lo + 1e-8));
    free(up);
}

/* [lo, hi) of n; (0, 0) selects everything. */
static int pick_range(int *lo, int *hi, int n, const char *what, av_err *err) {
    if (*lo == 0 && *hi == 0) *hi = n;
    if (*lo < 0 || *hi > n || *lo >= *hi)
        return av_errf(err, "DAAM %s range [%d, %d) is empty or outside 0..%d", what, *lo, *hi, n);
    return 0;
}

int av_daam_maps(const float *raw, const int dims[5], int size, const av_daam_range *range, float *out,
                 av_err *err) {
    int n_steps = dims[0], n_layers = dims[1], n_heads = dims[2], S = dims[3], g = dims[4], gg = g * g;
    av_daam_range r = range ? *range : (av_daam_range){0};
    if (pick_range(&r.step0, &r.step1, n_steps, "step", err) ||
        pick_range(&r.layer0, &r.layer1, n_layers, "layer", err) ||
        pick_range(&r.head0, &r.head1, n_heads, "head", err))
        return -1;
    double *sum = calloc((size_t)S * (size_t)gg, sizeof *sum); /* (S, g, g) */
    if (!sum) return av_errf(err, "out of memory");
    for (int i = r.step0; i < r.step1; i++)
        for (int l = r.layer0; l < r.layer1; l++)
            for (int h = r.head0; h < r.head1; h++) {
                const float *p =
                    raw + (((size_t)i * (size_t)n_layers + (size_t)l) * (size_t)n_heads + (size_t)h) *
                              (size_t)S * (size_t)gg; /* (S, g, g) */
                for (size_t k = 0; k < (size_t)S * (size_t)gg; k++)
                    sum[k] += p[k];
            }
    for (int j = 0; j < S; j++)
        upsample_normalize(sum + (size_t)j * (size_t)gg, g, size,
                           out + (size_t)j * (size_t)size * (size_t)size);
    free(sum);
    return 0;
}

int av_trace_daam_dims(const av_trace *t, int dims[5], int *size, av_err *err) {
    av_tensor raw, img;
    const char *grid = av_trace_meta(t, "patch_grid");
    int g = 0, g2 = 0;
    if (av_trace_tensor(t, "daam.raw", &raw) || av_trace_tensor(t, "image", &img))
        return av_errf(err, "the trace has no DAAM data (daam.raw and image: a text-to-image run)");
    if (raw.dtype != AV_DTYPE_F32 || img.dtype != AV_DTYPE_F32 || !grid ||
        sscanf(grid, "%dx%d", &g, &g2) != 2 || g != g2 || g <= 0 || g > 4096 || raw.ndim != 4 ||
        raw.shape[3] % ((int64_t)g * g) || img.ndim != 3 || img.shape[0] != 3 ||
        img.shape[1] != img.shape[2] || img.shape[1] > 4096 || raw.shape[0] <= 0 || raw.shape[1] <= 0 ||
        raw.shape[2] <= 0 || raw.shape[3] <= 0 || raw.shape[0] > 1 << 20 || raw.shape[1] > 4096 ||
        raw.shape[2] > 4096 || raw.shape[3] / ((int64_t)g * g) != av_trace_n_key(t, AV_ATTN_CROSS))
        return av_errf(err, "the trace's daam.raw [steps, layers, heads, tokens x grid] does not match its "
                            "patch_grid, image or cross-attention");
    for (int i = 0; i < 3; i++)
        dims[i] = (int)raw.shape[i];
    dims[3] = (int)(raw.shape[3] / ((int64_t)g * g));
    dims[4] = g;
    *size = (int)img.shape[1];
    return 0;
}

int av_trace_daam(const av_trace *t, const av_daam_range *r, float *out, av_err *err) {
    av_tensor raw;
    int dims[5], size;
    if (av_trace_daam_dims(t, dims, &size, err)) return -1;
    av_trace_tensor(t, "daam.raw", &raw);
    return av_daam_maps(raw.data, dims, size, r, out, err);
}
