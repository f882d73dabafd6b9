/* What a trace holds, for bindings: its metadata as one JSON object, and every tensor of the file it was
 * loaded from by position (later trace versions add tensors this version does not interpret). */
#include "trace/trace.h"

#include <stdlib.h>
#include <string.h>

char *av_trace_meta_json(const av_trace *t) {
    return json_dumps(t->meta, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_SORT_KEYS);
}

int av_trace_n_file_tensors(const av_trace *t) { return t->loaded ? t->file.n : 0; }

int av_trace_file_tensor(const av_trace *t, int i, const char **name, av_tensor *out, av_err *err) {
    int n = av_trace_n_file_tensors(t);
    if (i < 0 || i >= n) {
        if (n == 0) return av_errf(err, "the trace was not loaded from a file: it has no file tensors");
        return av_errf(err, "file tensor %d is out of range: the file has tensors 0..%d", i, n - 1);
    }
    *name = t->file.entries[i].name;
    *out = t->file.entries[i].t;
    return 0;
}

int av_trace_tensor(const av_trace *t, const char *name, av_tensor *out) {
    for (int i = 0; i < t->n_extras; i++) {
        const av_trace_extra *x = &t->extras[i];
        if (strcmp(x->name, name) != 0) continue;
        *out = (av_tensor){.dtype = AV_DTYPE_F32, .ndim = x->ndim, .data = x->data};
        memcpy(out->shape, x->shape, sizeof x->shape);
        out->nbytes = (size_t)av_tensor_numel(out) * sizeof(float);
        return 0;
    }
    for (int i = 0; i < av_trace_n_file_tensors(t); i++)
        if (strcmp(t->file.entries[i].name, name) == 0 && t->file.entries[i].t.dtype == AV_DTYPE_F32) {
            *out = t->file.entries[i].t;
            return 0;
        }
    return -1;
}
