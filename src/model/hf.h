/* Hugging Face (and timm) model directories for the non-Llama families: config.json, model.safetensors or a
 * sharded model.safetensors.index.json, tensor lookup by name, and the dispatch on the config's model type.
 */
#ifndef AV_HF_H
#define AV_HF_H

#include "model.h"

typedef struct av_hf_dir {
    const char *dir;
    char cfg_path[4096];
    json_t *cfg;        /* config.json (owned) */
    json_t *index;      /* model.safetensors.index.json (owned), or NULL for one model.safetensors */
    json_t *weight_map; /* borrowed from index */
    const char *shard_names[AV_MAX_SHARDS]; /* (m->n_shards) borrowed from index */
    unsigned char *used[AV_MAX_SHARDS]; /* (m->n_shards) of (shard's tensors): 1 once found (unsupported.h) */
    av_model *m;                        /* the shards live in m->shards */
    const char *model_type; /* the family's model_type ("bert", "marian", ...), also when matched otherwise */
    int timm;               /* matched by timm's "architecture" */
} av_hf_dir;

/* Routes a Hugging Face / timm directory by its config.json and loads its family into m: 1, or -1 with a
 * message (unsupported types name every supported one). h is closed on return. */
int av_hf_route(const char *dir, av_model *m, av_hf_dir *h, av_err *err);

/* Opens model.safetensors or the shards of model.safetensors.index.json. */
int av_hf_open_weights(av_hf_dir *h, av_err *err);
/* Tensor by exact name, NULL when absent. */
const av_tensor *av_hf_find(const av_hf_dir *h, const char *name);
/* Tensor named by printf-style fmt into *t; absent: an error unless optional (then t is left empty). */
int av_hf_take(const av_hf_dir *h, av_tensor *t, int optional, av_err *err, const char *fmt, ...)
    AV_PRINTF(5, 6);

/* "<name>.weight" and "<name>.bias" (name printf-formatted) into w and b; flags: the bias is optional
 * (AV_HF_OPT_BIAS), the weight a Conv1D (in, out) taken as a transposed copy (AV_HF_CONV1D: GPT-2). */
enum { AV_HF_OPT_BIAS = 1, AV_HF_CONV1D = 2 };
int av_hf_take_wb(const av_hf_dir *h, av_tensor *w, av_tensor *b, int flags, av_err *err, const char *fmt,
                  ...) AV_PRINTF(6, 7);

/* config.json members: integer in [lo, hi] (required when def < 0), number, boolean, string. */
int av_hf_int(const av_hf_dir *h, const char *key, int64_t def, int64_t lo, int64_t hi, int *out,
              av_err *err);
int av_hf_num(const av_hf_dir *h, const char *key, double def, double *out, av_err *err);
int av_hf_bool(const av_hf_dir *h, const char *key, int def, int *out, av_err *err);
const char *av_hf_str(const av_hf_dir *h, const char *key);
/* Joins dir and file into out. */
void av_hf_path(char *out, size_t n, const char *dir, const char *file);

/* Family loaders (gpt2.c, bert.c, vit.c, encdec.c): fill m->tf from an opened directory. */
int av_gpt2_load(av_hf_dir *h, av_model *m, av_err *err);
int av_bert_load(av_hf_dir *h, av_model *m, av_err *err); /* bert, roberta, distilbert */
int av_vit_load(av_hf_dir *h, av_model *m, av_err *err);  /* timm and Hugging Face ViT */
int av_bart_load(av_hf_dir *h, av_model *m, av_err *err); /* marian, bart */
int av_t5_load(av_hf_dir *h, av_model *m, av_err *err);
int av_t2i_load(av_hf_dir *h, av_model *m, av_err *err); /* attnviz-t2i (docs/T2I_MODEL.md) */
/* The decoder families of arch.h (hf_decoder.c): config.json, then the weights (opened here). */
struct av_arch;
int av_hf_decoder_load(av_hf_dir *h, av_model *m, const struct av_arch *a, av_err *err);

#endif
