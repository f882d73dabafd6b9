/* Choosing what to look at: one head, or the mean/max/min over all heads of a layer. */
#include "core/core.h"

#include <stdlib.h>
#include <string.h>

int av_attn_select_heads(const av_attn_view *v, const char *spec, float *out, av_err *err) {
    size_t plane = (size_t)v->n_query * (size_t)v->n_key;
    if (!spec || !*spec) spec = "mean";
    if (strcmp(spec, "mean") == 0 || strcmp(spec, "max") == 0 || strcmp(spec, "min") == 0) {
        int op = spec[1] == 'e' ? 0 : spec[1] == 'a' ? 1 : 2;
        memcpy(out, v->data, plane * sizeof(float));
        for (int h = 1; h < v->n_heads; h++) {
            const float *p = v->data + (size_t)h * plane;
            for (size_t i = 0; i < plane; i++) {
                if (op == 0)
                    out[i] += p[i];
                else if (op == 1)
                    out[i] = p[i] > out[i] ? p[i] : out[i];
                else
                    out[i] = p[i] < out[i] ? p[i] : out[i];
            }
        }
        if (op == 0)
            for (size_t i = 0; i < plane; i++)
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
