/* Model export: a decoder of any family of arch.h (and llama2.c checkpoints) -> GGUF (llama.cpp's names and
 * keys) or a Hugging Face directory (config.json, safetensors in 1..N shards, tokenizer.bin), with the
 * conversions between the formats' conventions (export_arch.c). What the target cannot state exactly is
 * refused, naming it. */
#ifndef AV_MODEL_EXPORT_H
#define AV_MODEL_EXPORT_H

#include "model.h"

typedef struct av_export_params {
    av_dtype dtype; /* weight matrices: F32, F16, BF16, or (GGUF only; norms stay F32) Q8_0, Q4_0, Q4_K */
    int n_shards;   /* Hugging Face: 1 writes model.safetensors, N > 1 writes N shards + an index */
    int force;      /* replace an existing output (file, or directory of plain files) */
} av_export_params;

av_export_params av_export_default_params(void);

/* What was written, for the summary line. */
typedef struct av_export_report {
    int n_tensors;
    int n_fallback; /* matrices whose rows are not whole blocks of the type asked for, written as */
    int fallback[AV_DTYPE_COUNT]; /* Q4_0 (Q4_K asked, rows of 32k values) or F16: counts by written type */
    int tokenizer;                /* 1 when the tokenizer was written */
    int n_shards;
    uint64_t n_bytes; /* tensor data bytes */
    char note[160];   /* what the written file computes differently (Gemma's embedding scale), or "" */
} av_export_report;

/* Writes a GGUF v3 file atomically (temp file + rename). */
int av_export_gguf(const av_model *m, const char *path, const av_export_params *p, av_export_report *rep,
                   av_err *err);
/* Writes a Hugging Face directory: built in "<dir>.tmp.<pid>", then renamed into place. Refuses an existing
 * non-empty directory unless p->force. */
int av_export_hf(const av_model *m, const char *dir, const av_export_params *p, av_export_report *rep,
                 av_err *err);

#endif
