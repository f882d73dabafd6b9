/* Choosing what to look at: one head, or the mean/max/min over all heads of a layer. */
#include "trace/trace.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void av_heads_fold(float *out, const float *in, size_t n, int how) {
    for (size_t i = 0; i < n; i++)
        out[i] = how == AV_HEADS_MEAN  ? out[i] + in[i]
                 : how == AV_HEADS_MAX ? fmaxf(out[i], in[i])
                                       : fminf(out[i], in[i]);
}

int av_attn_select_heads(const av_attn_view *v, const char *spec, float *out, av_err *err) {
    size_t plane = (size_t)v->n_query * (size_t)v->n_key;
    if (!spec || !*spec) spec = "mean";
    int how = strcmp(spec, "mean") == 0  ? AV_HEADS_MEAN
              : strcmp(spec, "max") == 0 ? AV_HEADS_MAX
              : strcmp(spec, "min") == 0 ? AV_HEADS_MIN
                                         : 0;
    if (how) {
        memcpy(out, v->data, plane * sizeof(float));
        for (int h = 1; h < v->n_heads; h++)
            av_heads_fold(out, v->data + (size_t)h * plane, plane, how);
        for (size_t i = 0; how == AV_HEADS_MEAN && i < plane; i++)
            out[i] /= (float)v->n_heads;
        return 0;
    }
    char *end;
    long h = strtol(spec, &end, 10);
    if (*end || end == spec)
        return av_errf(err, "head must be an index, 'mean', 'max' or 'min', not '%s'", spec);
    if (h < 0 || h >= v->n_heads)
        return av_errf(err, "head %ld is out of range: this layer has heads 0..%d", h, v->n_heads - 1);
    memcpy(out, v->data + (size_t)h * plane, plane * sizeof(float));
    return 0;
}
