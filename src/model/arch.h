/* Decoder-only architectures on the one block: Llama and the families built like it (Mistral, Mixtral, Qwen2,
 * Qwen3, Qwen3-MoE, Gemma, Gemma 2, Gemma 3, Phi-3), from GGUF metadata (gguf_decoder.c) or a Hugging Face
 * config.json (hf_decoder.c), and back (export.c).
 *
 * A family is data: an av_arch entry (its names in both formats, what its blocks have, its feed-forward
 * activation) plus two small hooks that read the keys only it has, in its family file (arch_llama.c,
 * arch_qwen.c, arch_gemma.c, arch_phi3.c). The format readers fill one av_arch_cfg in the same units for both
 * formats; av_arch_init turns it into blocks and av_arch_take_weights finds every weight through one name
 * table (arch.c) that the writers use too. A key that changes the math is read by a reader or refused there,
 * never ignored (docs/MODELS.md lists both). */
#ifndef AV_ARCH_H
#define AV_ARCH_H

#include "hf.h"
#include "io/gguf.h"
#include "model.h"

#define AV_ARCH_MAX_LAYERS 1024
/* Limits of both readers' configurations. */
#define AV_ARCH_MAX_DIM (1 << 16)
#define AV_ARCH_MAX_HIDDEN (1 << 19)
#define AV_ARCH_MAX_HEADS 1024
#define AV_ARCH_MAX_CTX (1 << 24)
#define AV_ARCH_MAX_VOCAB (1 << 22)

/* What an architecture's blocks have (av_arch.flags). */
enum {
    AV_ARCH_QK_NORM = 1 << 0,    /* per-head RMS norms of q and k (Qwen3, Gemma 3) */
    AV_ARCH_SANDWICH = 1 << 1,   /* norms on the attention and feed-forward outputs (Gemma 2, 3) */
    AV_ARCH_GEMMA = 1 << 2,      /* embeddings times sqrt(dim); HF norms scale by 1 + w (GGUF stores 1 + w) */
    AV_ARCH_FUSED = 1 << 3,      /* one q|k|v matrix and one gate|up matrix (Phi-3) */
    AV_ARCH_MOE = 1 << 4,        /* a mixture of experts in every block (Mixtral, Qwen3-MoE) */
    AV_ARCH_GGUF_TIED = 1 << 5,  /* GGUF: the output is always the token embedding (Gemma, Gemma 2) */
    AV_ARCH_GGUF_META = 1 << 6,  /* GGUF: q/k rows in Meta's order, RoPE on interleaved pairs (llama) */
    AV_ARCH_HF_MIXTRAL = 1 << 7, /* HF expert names block_sparse_moe.experts.N.w1|w3|w2 (else Qwen's) */
    AV_ARCH_PARTIAL_ROPE = 1 << 8, /* may rotate only part of each head (Phi-3 family: Phi-4-mini) */
    AV_ARCH_GGUF_BIASES = 1 << 9,  /* GGUF: o and feed-forward biases when present (llama.cpp's llama) */
    AV_ARCH_HF_QKV_BIAS = 1 << 10, /* HF: q/k/v biases always (Qwen2), not by "attention_bias" */
};

typedef struct av_arch_cfg av_arch_cfg;

typedef struct av_arch {
    const char *name;     /* m->arch: "llama", "qwen3moe", "gemma3", ... */
    const char *hf_type;  /* config.json model_type: "llama", "qwen3_moe", "gemma3_text", ... */
    const char *gguf;     /* general.architecture of its GGUF files ("llama" for Mistral and Mixtral too) */
    const char *hf_class; /* config.json architectures[0] of the causal LM ("LlamaForCausalLM") */
    unsigned flags;
    av_act act;       /* the gated feed-forward's activation in GGUF (config.json names its own) */
    int tied_default; /* config.json tie_word_embeddings when absent */
    double eps_default, theta_default;
    int head_dim_default; /* config.json head_dim when absent (Gemma 256, Qwen3 128), 0: dim / heads */
    /* The family's own keys: GGUF "<arch>.<key>" (after the common ones) and config.json (after the common
     * ones); each fills c or fails naming the key. */
    int (*gguf_keys)(const av_gguf *g, av_arch_cfg *c, av_err *err);
    int (*hf_keys)(const av_hf_dir *h, av_arch_cfg *c, av_err *err);
    const char *gguf_known; /* "<arch>." keys gguf_keys reads (space-separated), for the key check */
} av_arch;

/* The architectures, for the readers, the writers and error messages. */
extern const av_arch *const av_archs[];
extern const int av_n_archs;
/* The entry of a config.json model_type or architectures[0], or of a GGUF general.architecture (NULL: not
 * supported). */
const av_arch *av_arch_by_hf_type(const char *model_type);
const av_arch *av_arch_by_hf_class(const char *class_name);
const av_arch *av_arch_by_gguf(const char *gguf_arch, size_t len);
/* "llama, mistral, ..." (model_types) or the GGUF architecture names, for messages. */
void av_arch_list(char *out, size_t n, int gguf);

/* Family keys for the hooks. GGUF "<arch>.<key>": integer in [lo, hi] (required when def < lo), number >= 0
 * (required when def < 0). */
int av_gguf_arch_int(const av_gguf *g, const av_arch_cfg *c, const char *key, int64_t def, int64_t lo,
                     int64_t hi, int *out, av_err *err);
int av_gguf_arch_num(const av_gguf *g, const av_arch_cfg *c, const char *key, double def, double *out,
                     av_err *err);
/* The attention scale llama.cpp gives a GGUF file of architecture a: 1/sqrt(head size), but 1/sqrt(dim /
 * heads) for Gemma 2 of 46 and Gemma 3 of 62 layers (the 27B shapes, whose query_pre_attn_scalar is dim /
 * heads; arch_gemma.c). */
double av_arch_gguf_attn_scale(const av_arch *a, const av_arch_cfg *c);
/* Sliding layers every `period` layers but the last of each period (Gemma: layer l slides when
 * l % period < period - 1). */
void av_arch_window_period(av_arch_cfg *c, int period);
/* config.json "layer_types" into sliding (n_layers entries: 1 sliding_attention, 0 full_attention): 1, 0 when
 * absent or null, -1 with a message (hf_decoder.c). */
int av_hf_layer_types(const av_hf_dir *h, int n_layers, unsigned char *sliding, av_err *err);

/* RoPE scaling as checkpoints state it (one form for both formats). */
typedef enum av_rope_scaling {
    AV_ROPE_SCALING_NONE = 0,
    AV_ROPE_SCALING_LINEAR,   /* positions / factor */
    AV_ROPE_SCALING_LLAMA3,   /* Llama 3.1: low frequencies / factor, a smooth band between (HF's formula) */
    AV_ROPE_SCALING_FACTORS,  /* frequencies / factors[i] (GGUF rope_freqs: Llama 3.1 precomputed) */
    AV_ROPE_SCALING_LONGROPE, /* Phi-3: frequencies / short or long factors[i], cos and sin times attn_factor
                               */
} av_rope_scaling;

typedef struct av_rope_scale {
    av_rope_scaling type;
    double factor;                            /* linear and Llama 3 */
    double low_freq_factor, high_freq_factor; /* Llama 3 */
    int orig_ctx;                             /* Llama 3 and longrope: the original context length */
    const float *factors, *long_factors;      /* (rot_dims/2) FACTORS and LONGROPE (short, long), or NULL */
    double attn_factor;                       /* longrope: cos and sin scale (1: none) */
    int local_too;                            /* 1: the sliding layers are scaled as well (Gemma 2) */
} av_rope_scale;

/* One decoder as a checkpoint describes it, in the same units whatever the format. */
struct av_arch_cfg {
    const av_arch *arch;
    av_model_format format;
    int dim, hidden, n_layers, n_heads, n_kv_heads, head_dim, rope_dims; /* rope_dims 0: head_dim */
    int vocab, ctx;
    double eps, rope_theta, rope_theta_local; /* theta_local: sliding layers' base (0: rope_theta) */
    av_act act;
    double attn_scale;                  /* 0: 1/sqrt(head_dim) */
    double attn_softcap, final_softcap; /* 0: none */
    int window;                         /* sliding window of the layers `sliding` marks */
    unsigned char sliding[AV_ARCH_MAX_LAYERS];
    av_rope_scale scale;
    int n_experts, n_used, norm_topk; /* mixtures of experts */
    int bias_qkv, bias_o, bias_mlp;   /* biases the checkpoint has (GGUF: whichever tensors are present) */
    int tied;                         /* the output is the token embedding */
};

/* The values of each head that RoPE rotates (rope_dims, or the whole head). */
static inline int av_arch_rot_dims(const av_arch_cfg *c) { return c->rope_dims ? c->rope_dims : c->head_dim; }

/* Sets m up from c: one causal pre-RMSNorm stack of c->n_layers blocks with gated feed-forwards, per-layer
 * attention scale, soft-cap, window, RoPE base and frequency tables, Gemma's embedding scale and norm offset
 * (HF; GGUF stores 1 + w), the final soft-cap, mixtures of experts. emb_dtype: the token embedding's stored
 * type (Gemma scales by sqrt(dim) rounded to it, as Hugging Face does). */
int av_arch_init(av_model *m, const av_arch_cfg *c, av_dtype emb_dtype, av_err *err);
/* Gemma's embedding scale: sqrt(dim) rounded to the embedding's stored type as Hugging Face computes it
 * (torch.tensor(dim ** 0.5, dtype=embedding dtype)); llama.cpp and F32 checkpoints use the f32 value. */
float av_arch_gemma_emb_scale(int dim, av_dtype emb, av_model_format fmt);

/* The weights of a format, found by name: 0 with t filled, 0 with t empty when absent and optional, -1 with
 * a message otherwise. A 3-D GGUF expert tensor comes whole; av_arch_take_weights takes its rows. */
typedef int (*av_arch_find_fn)(const void *ctx, const char *name, int optional, av_tensor *t, av_err *err);
/* Takes every layer weight of m's blocks by the name table of c's format (blk.N.* or model.layers.N.*):
 * fused matrices split into views, experts as views of their rows. */
int av_arch_take_weights(av_model *m, const av_arch_cfg *c, av_arch_find_fn find, const void *ctx,
                         av_err *err);

/* The writers' view of the name table: the plain (unfused, unstacked) layer tensors of c's blocks in table
 * order, with both names and where they live in av_block; fused and expert tensors by the names below. */
typedef struct av_arch_entry {
    const char *gguf, *hf; /* after "blk.N." and "model.layers.N." */
    size_t off;            /* the av_tensor in av_block */
    int norm;              /* a norm weight (Gemma's 1 + w differs between the formats) */
    int qk;                /* 1: q rows, 2: k rows (their RoPE pair order differs between formats) */
} av_arch_entry;
enum { AV_ARCH_MAX_ENTRIES = 32 };
int av_arch_entries(const av_arch_cfg *c, av_arch_entry *out);
/* Fused q|k|v and gate|up ([0]: GGUF, [1]: HF), GGUF's stacked experts (gate, up, down) and HF's expert name
 * of an expert index and part (gate 0, up 1, down 2). */
extern const char *const av_arch_fused_qkv[2], *const av_arch_fused_gate_up[2],
                                                   *const av_arch_gguf_experts[3];
void av_arch_hf_expert(const av_arch *a, int expert, int part, char *out, size_t n);
/* The architecture's flags for c, with a mixture when c has experts. */
unsigned av_arch_cfg_flags(const av_arch_cfg *c);

/* Inverse RoPE frequencies (rope.c): (rot_dims/2) floats owned by m for theta and the scaling (NULL scale or
 * type NONE: plain), factors chosen by which (0 short, 1 long). */
const float *av_rope_table_make(av_model *m, double theta, int rot_dims, const av_rope_scale *s, int which,
                                av_err *err);

/* Llama 3 parameters reproducing GGUF rope_freqs divisors ff (rot_dims/2), for config.json: 0 with *out set,
 * -1 when they do not fit HF's formula. */
int av_rope_fit_llama3(double theta, int rot_dims, const float *ff, av_rope_scale *out);

#endif
