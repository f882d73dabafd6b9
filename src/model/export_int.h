/* Inside the exporters (export.c writes files, export_arch.c lists a decoder's tensors under the target's
 * names, export_cfg.c writes its configuration as GGUF keys or config.json). */
#ifndef AV_EXPORT_INT_H
#define AV_EXPORT_INT_H

#include "arch.h"
#include "export.h"

/* Buffers made during one export (permuted, shifted, fused or stacked copies). */
typedef struct ex_bufs {
    void **p;
    int n, cap;
} ex_bufs;
void av_ex_free(ex_bufs *b);

/* One tensor to write. */
typedef struct ex_tensor {
    char name[112];
    av_tensor src;    /* what to write, in its stored type (a view of the model, or an export buffer) */
    av_dtype dst;     /* written type */
    size_t dst_bytes; /* written size */
} ex_tensor;

/* What an export writes: the source configuration, the target architecture and format. */
typedef struct ex_plan {
    const av_model *m;
    av_arch_cfg c;      /* the model's configuration (synthesized for llama2.c checkpoints) */
    av_arch_cfg target; /* the same under the target's architecture and format */
    int gguf;
    float norm_add; /* added to every norm weight: Gemma stores w (HF) or 1 + w (GGUF) */
} ex_plan;

/* Sets the plan up for m and checks that the target represents it exactly (a refusal names what it would
 * lose). */
int av_ex_plan(const av_model *m, int gguf, ex_plan *p, av_err *err);
/* The period of Gemma's pattern the sliding layers form (layer l slides when l % period < period - 1), 0 when
 * they form none. */
int av_ex_window_period(const av_arch_cfg *c);
/* Every tensor of the plan under the target's names, prepared (permuted q/k rows, shifted norms, fused and
 * stacked matrices), in file order; want: the matrices' type (GGUF norms stay F32). *out is malloc'd. */
int av_ex_tensors(const ex_plan *p, av_dtype want, ex_bufs *b, ex_tensor **out, int *n_out,
                  av_export_report *rep, av_err *err);
/* The configuration: GGUF keys (general.* and "<arch>.*"), or config.json as a new JSON object. */
int av_ex_gguf_keys(const ex_plan *p, av_gguf_writer *w, av_dtype type, av_err *err);
json_t *av_ex_hf_config(const ex_plan *p, av_dtype type, av_err *err);

#endif
