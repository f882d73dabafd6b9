/* The non-Llama families: one av_tf_model describes GPT-2, BERT/RoBERTa/DistilBERT, ViT, Marian/BART and T5
 * as embeddings + one or two stacks of the shared block (block.h) + an output head. The family files only map
 * checkpoint names and config keys onto it (gpt2.c, bert.c, vit.c, encdec.c); tf.c runs it. */
#ifndef AV_FAMILY_H
#define AV_FAMILY_H

#include "block.h"
#include "io/image.h"

/* Token + position embeddings of one stack: x = tok_emb[id] * emb_scale + pos[p + pos_offset] (+ type row 0),
 * then the optional norm. */
typedef struct av_tf_embed {
    av_tensor tok;  /* (vocab, dim) this stack's own token table, or empty: av_tf_model.tok_emb */
    av_tensor pos;  /* (n_pos, dim) learned positions, or empty */
    int pos_offset; /* row of position 0 (BART 2; RoBERTa padding_idx + 1 counted over non-pad tokens) */
    int sinusoidal; /* Marian: fixed sin | cos table instead of learned rows */
    av_norm norm;   /* LayerNorm after the sum (BERT, BART layernorm_embedding), or empty */
} av_tf_embed;

typedef struct av_tf_model {
    int causal;   /* the only stack is a decoder (GPT-2) */
    av_stack enc; /* the only stack, or the encoder */
    av_stack dec; /* encoder-decoder: the decoder; n_layers 0 otherwise */
    av_tf_embed enc_emb, dec_emb;
    av_tensor tok_emb;  /* (vocab, dim), shared by encoder and decoder */
    av_tensor type_emb; /* (n_types, dim): row 0 is added (BERT token_type_ids all 0), or empty */
    float emb_scale;    /* sqrt(dim) with scale_embedding (Marian), else 1 */
    int roberta_pos;    /* RoBERTa: position = pad_id + number of non-pad tokens so far; pads get pad_id */
    int pad_id;
    /* T5 relative position bias: bucket b of head h adds rel[b][h] to the scores */
    av_tensor rel_enc, rel_dec; /* (n_buckets, n_heads), or empty */
    int rel_buckets, rel_max_distance;
    /* output head: logits = (norm(act(x W_d + b_d)) when head_dense is set) * head_scale W^T + b */
    av_linear head_dense;
    av_norm head_norm;
    av_act head_act;
    av_linear head;   /* (n_out, dim) + optional bias, or empty: no head */
    float head_scale; /* 1, or dim^-0.5 for T5 with a tied head */
    int n_out;        /* vocabulary or classes; 0 without a head */
    /* images (ViT): x = [cls_token; patches W_p^T + b_p] + pos */
    av_linear patch;     /* (dim, channels * patch * patch), flattened (c, ky, kx) as a conv weight */
    av_tensor cls_token; /* (1, dim) */
    int image_size, patch_size, grid, channels;
    av_image_prep prep;
    char **labels; /* (n_out) class names, or NULL */
    /* special tokens (-1 when unknown) */
    int bos_id, eos_id, dec_start_id;
    char tok_error[256]; /* why a tokenizer file next to the weights did not load ("" when none was tried) */
} av_tf_model;

/* Allocates m->tf with defaults (emb_scale 1, head_scale 1, ids -1). */
int av_tf_new(av_model *m, av_err *err);
void av_tf_free(av_tf_model *tf);
/* Validates all shapes of m->tf against the config (called by av_model_check). */
int av_tf_check(av_model *m, av_err *err);
int64_t av_tf_n_params(const av_model *m);

/* Decoder-only and encoder-only families (GPT-2, BERT): ids (T) -> captured self-attention (cap may be NULL)
 * and logits (T, vocab) when logits_all, else (vocab) of the last position; logits may be NULL. */
int av_tf_forward_tokens(const av_model *m, const int32_t *ids, int T, const av_capture *cap, float *logits,
                         int logits_all, av_err *err);

/* ViT: pixels (channels, image_size, image_size) normalized -> attention over [CLS] + patches, class logits
 * (n_out). */
int av_vit_forward(const av_model *m, const float *pixels, const av_capture *cap, float *logits, av_err *err);
/* Decodes and preprocesses an image file for m: out (3, image_size, image_size) malloc'd. */
int av_vit_preprocess_file(const av_model *m, const char *path, float **out, av_err *err);

/* Encoder-decoders (Marian, BART, T5). Encoder: src (S) -> mem (S, dim); enc_attn NULL or (n_layers) pointers
 * to (n_heads, S, S). Decoder: tgt (T) over mem -> dec_attn (n_heads, T, T), cross_attn (n_heads, T, S) per
 * decoder layer (NULL to skip), logits (T, vocab) when logits_all, else (vocab) of the last position. */
int av_encdec_encode(const av_model *m, const int32_t *src, int S, float **enc_attn, float *mem, av_err *err);
int av_encdec_decode(const av_model *m, const float *mem, int S, const int32_t *tgt, int T, float **dec_attn,
                     float **cross_attn, float *logits, int logits_all, av_err *err);

/* T5 relative position bias: out (n_heads, T, S) for queries 0..T-1 and keys 0..S-1. */
void av_t5_position_bias(const av_tensor *rel, int n_heads, int n_buckets, int max_distance,
                         int bidirectional, int T, int S, float *out);

#endif
