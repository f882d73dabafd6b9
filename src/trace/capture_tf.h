/* Traces of the non-Llama families (capture_tf.c): av_trace_from_text / av_trace_from_ids hand such models
 * here. */
#ifndef AV_CAPTURE_TF_H
#define AV_CAPTURE_TF_H

#include "model/model.h"

int av_tf_trace_from_text(av_model *m, const char *text, const av_run_params *params, av_trace **out,
                          av_err *err);
int av_tf_trace_from_ids(av_model *m, const int32_t *ids, size_t n, const av_run_params *params,
                         av_trace **out, av_err *err);

/* Shared with the Llama capture (capture.c). Trace metadata of the model: name, arch, family (not for Llama),
 * format, layer and head counts. */
int av_capture_model_meta(const av_model *m, av_trace *t, av_err *err);
/* Moves n capture buffers (heads, rows, cols) into the trace as attn.<kind>.<l>; each p[l] becomes NULL. */
int av_capture_add_sets(av_trace *t, av_attn_kind kind, float **p, int n, int heads, int rows, int cols,
                        av_err *err);
/* Frees n buffers and the array (NULL entries and a NULL array are fine). */
void av_capture_free_sets(float **p, int n);

#endif
