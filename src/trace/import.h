/* Bring your own attention: build a trace from arrays saved by other tools (.npy per layer, .npz,
 * safetensors) or given in memory. The API (av_import_params, av_trace_import) is public, in attnviz.h; see
 * docs/VIEWER.md ("Importing attention"). */
#ifndef AV_IMPORT_H
#define AV_IMPORT_H

#include "trace/trace.h"

#endif
