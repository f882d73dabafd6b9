/* Norm-based attention (Kobayashi et al. 2020, "Attention is Not Only a Weight"): the contribution of key j
 * to query i through head h is the vector alpha_ij (v_j W_o^h), whose norm is alpha_ij * ||v_j W_o^h||.
 * The forward pass stores ||v_j W_o^h|| per head and token (vnorm.<layer>, (n_heads, T)), so the norm-based
 * matrix is one multiply per entry; the (H, N, N, d) tensor of vectors is never built. */
#include "analysis.h"
#include "core/core.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static int check_vnorm(const av_attn_view *v, const av_tensor *vnorm, av_err *err) {
    if (vnorm->dtype != AV_DTYPE_F32 || vnorm->ndim != 2 || vnorm->shape[0] != v->n_heads ||
        vnorm->shape[1] != v->n_key)
        return av_errf(err, "value norms must be F32 [%d heads, %d keys], got %s [%lld, %lld]", v->n_heads,
                       v->n_key, av_dtype_name(vnorm->dtype), (long long)vnorm->shape[0],
                       (long long)(vnorm->ndim > 1 ? vnorm->shape[1] : 0));
    return 0;
}

int av_norm_attn_head(const av_attn_view *v, const av_tensor *vnorm, int head, float *out, av_err *err) {
    if (check_vnorm(v, vnorm, err)) return -1;
    if (head < 0 || head >= v->n_heads)
        return av_errf(err, "head %d is out of range: the layer has heads 0..%d", head, v->n_heads - 1);
    const float *a = v->data + (size_t)head * (size_t)v->n_query * (size_t)v->n_key; /* (n_query, n_key) */
    const float *vn = (const float *)vnorm->data + (size_t)head * (size_t)v->n_key;  /* (n_key) */
    for (int i = 0; i < v->n_query; i++)
        for (int j = 0; j < v->n_key; j++) {
            size_t k = (size_t)i * (size_t)v->n_key + (size_t)j;
            out[k] = a[k] * vn[j];
        }
    return 0;
}

int av_norm_attn_trace(const av_trace *t, int layer, const char *spec, int normalize_rows, float *out,
                       av_err *err) {
    av_attn_view v;
    av_tensor vn;
    if (av_trace_attn(t, AV_ATTN_SELF, layer, &v, err)) return -1;
    if (av_trace_vnorm(t, layer, &vn, err)) return -1;
    if (check_vnorm(&v, &vn, err)) return -1;
    size_t plane = (size_t)v.n_query * (size_t)v.n_key;
    if (!spec || !*spec) spec = "mean";
    av_reduce op;
    if (av_reduce_parse(spec, &op, NULL) == 0) {
        float *tmp = av_an_alloc((size_t)v.n_query, (size_t)v.n_key, err); /* (n_query, n_key) one head */
        if (!tmp) return -1;
        for (int h = 0; h < v.n_heads; h++) {
            av_norm_attn_head(&v, &vn, h, h == 0 ? out : tmp, NULL);
            if (h == 0) continue;
            for (size_t k = 0; k < plane; k++) {
                if (op == AV_REDUCE_MEAN)
                    out[k] += tmp[k];
                else if (op == AV_REDUCE_MAX)
                    out[k] = tmp[k] > out[k] ? tmp[k] : out[k];
                else
                    out[k] = tmp[k] < out[k] ? tmp[k] : out[k];
            }
        }
        if (op == AV_REDUCE_MEAN)
            for (size_t k = 0; k < plane; k++)
                out[k] /= (float)v.n_heads;
        free(tmp);
    } else {
        char *end;
        long h = strtol(spec, &end, 10);
        if (*end || end == spec)
            return av_errf(err, "head must be an index, 'mean', 'max' or 'min', not '%s'", spec);
        if (av_norm_attn_head(&v, &vn, (int)(h < 0 || h > 1 << 20 ? -1 : h), out, err)) return -1;
    }
    if (normalize_rows) av_an_rownorm(out, v.n_query, v.n_key);
    return 0;
}
