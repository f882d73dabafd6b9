/* Bring your own attention: build a trace from arrays saved by other tools (.npy per layer, .npz,
 * safetensors), shaped [layers, heads, T, T], [layers, 1, heads, T, T] or per layer [heads, T, T] /
 * [1, heads, T, T] / [T, T]. See docs/VIEWER.md ("Importing attention"). */
#ifndef AV_IMPORT_H
#define AV_IMPORT_H

#include "trace/trace.h"

typedef struct av_import_params {
    const char *const *inputs; /* (n_inputs) array files, in layer order */
    int n_inputs;
    const char
        *tokens_path;  /* JSON: ["tok", ...] or {"tokens": [...], "token_ids": [...], "source_tokens": [...],
                          "target_tokens": [...], "model": "...", "patch_grid": "14x14", "prefix_tokens": 1,
                          "metadata": {"key": "value"}}; NULL: tokens are shown as indices */
    int kind;          /* an av_attn_kind to force every array to; -1 (default): from the array name */
    int check_rows;    /* validate values in [0, 1] and row sums (default 1) */
    double tolerance;  /* |row sum - 1| allowed; 0: 1e-3 (2e-2 for float16 arrays) */
    av_dtype dtype;    /* trace storage: AV_DTYPE_F32 (default) or AV_DTYPE_F16 */
    const char *model; /* metadata "model" (overrides the tokens file) */
    const char *patch_grid; /* "14x14" for image traces */
    int prefix_tokens;      /* tokens before the patches (1 for CLS); -1: unset */
    const char *image_path; /* a PNG stored base64 in metadata "image_png_base64" for the viewer */
} av_import_params;

av_import_params av_import_default_params(void);
int av_trace_import(const av_import_params *p, av_trace **out, av_err *err);

#endif
