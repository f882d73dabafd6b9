/* Helpers shared by the analysis files (not part of the analysis API). */
#ifndef AV_ANALYSIS_INTERNAL_H
#define AV_ANALYSIS_INTERNAL_H

#include "analysis.h"

#include <stddef.h>

/* Rescales each row of m (rows, cols) to sum 1 (rows summing to 0 are left as they are). */
void av_an_rownorm(float *m, int rows, int cols);
/* out (T, T) = rownorm((1-r) a + r I), a (T, T). */
void av_an_residual(const float *a, int T, float r, float *out);
/* malloc of a x b floats with overflow checks; NULL + message on failure. */
float *av_an_alloc(size_t a, size_t b, av_err *err);
/* Every layer of kind fused over heads: *out (n_layers) pointers to (n_query, n_key), free with
 * av_an_free_layers. */
int av_an_fused_layers(const av_trace *t, av_attn_kind kind, av_reduce fusion, float ***out, int *n_layers,
                       int *n_query, int *n_key, av_err *err);
void av_an_free_layers(float **mats, int n);

#endif
