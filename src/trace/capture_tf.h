/* Traces of the non-Llama families (capture_tf.c): av_trace_from_text / av_trace_from_ids hand such models
 * here. */
#ifndef AV_CAPTURE_TF_H
#define AV_CAPTURE_TF_H

#include "model/model.h"

int av_tf_trace_from_text(av_model *m, const char *text, const av_run_params *params, av_trace **out,
                          av_err *err);
int av_tf_trace_from_ids(av_model *m, const int32_t *ids, size_t n, const av_run_params *params,
                         av_trace **out, av_err *err);

#endif
