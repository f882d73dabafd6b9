/* Metadata keys and tensors that change the math but are not implemented are refused, never ignored: one
 * table per format (GGUF keys, config.json keys, tensors a loader may leave unused) in unsupported.c, which
 * names the families that apply an entry; the loaders read what they apply. */
#ifndef AV_MODEL_UNSUPPORTED_H
#define AV_MODEL_UNSUPPORTED_H

#include "hf.h"
#include "io/gguf.h"
#include "model.h"

/* GGUF decoders: every "<arch>." key must be one the loader applies (the common ones of unsupported.c, or
 * family_keys, space-separated: the family's own) or hold its neutral value; unknown ones are refused. */
int av_gguf_refuse_unsupported(const av_gguf *g, const char *arch, const char *family_keys, av_err *err);
/* The refusal of a GGUF tensor the loader of arch did not take (naming what it holds when known): -1. */
int av_gguf_refuse_tensor(const av_gguf *g, const char *name, const char *arch, av_err *err);

/* config.json keys that change the math of h->model_type's family: refused unless absent, null or neutral. */
int av_hf_refuse_unsupported_keys(const av_hf_dir *h, av_err *err);
/* After a family loader: every tensor of the weight files was taken (av_hf_find marks them), except buffers
 * and heads that do not enter what attnviz computes (position ids, GPT-2's causal-mask buffers, poolers...).
 */
int av_hf_refuse_unused_tensors(const av_hf_dir *h, av_err *err);
/* tie_word_embeddings (default true) with a stored output head that differs from the embedding: refused. */
int av_hf_refuse_tie_mismatch(const av_hf_dir *h, av_err *err);

/* Marian's sinusoidal positions are computed (tf.c); a stored table of that name (optional) must hold the
 * same values, else it is refused. */
int av_hf_check_sinusoids(const av_hf_dir *h, const char *name, av_err *err);

#endif
