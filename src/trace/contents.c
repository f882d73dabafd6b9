/* What a trace holds, for bindings: its metadata as one JSON object, and every tensor of the file it was
 * loaded from by position (later trace versions add tensors this version does not interpret). */
#include "trace/trace.h"

#include <stdlib.h>

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
