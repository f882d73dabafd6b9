/* GGUF llama models (llama.cpp's layout): config from llama.* keys, weights as views into the mapping, the
 * tokenizer from tokenizer.ggml.* metadata (llama, gpt2 or bert). GGUF llama weights use Meta's q/k row
 * order, so RoPE rotates interleaved pairs (2i, 2i+1) exactly as llama2.c does. */
#include "io/gguf.h"
#include "model.h"
#include "tok/tok.h"

#include <stdlib.h>
#include <string.h>

#define AV_GGUF_MAX_DIM (1 << 16)
#define AV_GGUF_MAX_HIDDEN (1 << 19)
#define AV_GGUF_MAX_LAYERS 1024
#define AV_GGUF_MAX_HEADS 1024
#define AV_GGUF_MAX_CTX (1 << 24)
#define AV_GGUF_MAX_VOCAB (1 << 22)

/* Integer key in [1, max]: required unless def > 0 (then used when absent). */
static int get_size(const av_gguf *g, const char *key, int64_t def, int64_t max, int *out, av_err *err) {
    int64_t v = def;
    int rc = av_gguf_get_int(g, key, &v, err);
    if (rc < 0) return -1;
    if (rc == 1 && def <= 0) return av_errf(err, "%s: missing key '%s'", g->name, key);
    if (v < 1 || v > max)
        return av_errf(err, "%s: %s = %lld is out of range (1 to %lld)", g->name, key, (long long)v,
                       (long long)max);
    *out = (int)v;
    return 0;
}

static int read_config(const av_gguf *g, av_model *m, av_err *err) {
    const char *arch;
    size_t arch_len;
    int rc = av_gguf_get_str(g, "general.architecture", &arch, &arch_len, err);
    if (rc < 0) return -1;
    if (rc == 1) return av_errf(err, "%s: no general.architecture key: not a GGUF model file", g->name);
    char shown[64];
    if (arch_len != 5 || memcmp(arch, "llama", 5) != 0)
        return av_errf(err, "%s: architecture '%s' is not supported (only llama is supported)", g->name,
                       av_printable(shown, sizeof shown, arch, arch_len));
    av_llama_cfg c = {0};
    if (get_size(g, "llama.context_length", 0, AV_GGUF_MAX_CTX, &m->max_seq_len, err) ||
        get_size(g, "llama.embedding_length", 0, AV_GGUF_MAX_DIM, &c.dim, err) ||
        get_size(g, "llama.block_count", 0, AV_GGUF_MAX_LAYERS, &c.n_layers, err) ||
        get_size(g, "llama.feed_forward_length", 0, AV_GGUF_MAX_HIDDEN, &c.hidden, err) ||
        get_size(g, "llama.attention.head_count", 0, AV_GGUF_MAX_HEADS, &c.n_heads, err) ||
        get_size(g, "llama.attention.head_count_kv", c.n_heads, AV_GGUF_MAX_HEADS, &c.n_kv_heads, err))
        return -1;
    if (c.dim % c.n_heads)
        return av_errf(err, "%s: llama.embedding_length %d is not a multiple of %d heads", g->name, c.dim,
                       c.n_heads);
    int head_dim = c.dim / c.n_heads, rope_dims = head_dim;
    if (get_size(g, "llama.rope.dimension_count", head_dim, AV_GGUF_MAX_DIM, &rope_dims, err)) return -1;
    if (rope_dims != head_dim)
        return av_errf(err,
                       "%s: llama.rope.dimension_count %d differs from the head size %d (partial RoPE is not "
                       "supported)",
                       g->name, rope_dims, head_dim);
    rc = av_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &c.eps, err);
    if (rc < 0) return -1;
    if (rc == 1) return av_errf(err, "%s: missing key 'llama.attention.layer_norm_rms_epsilon'", g->name);
    c.rope_theta = 10000.0f;
    if (av_gguf_get_f32(g, "llama.rope.freq_base", &c.rope_theta, err) < 0) return -1;
    if (!(c.eps > 0) || !(c.rope_theta > 0))
        return av_errf(err, "%s: layer_norm_rms_epsilon and rope.freq_base must be positive", g->name);
    c.rope = AV_ROPE_INTERLEAVED;
    if (av_llama_init(m, &c, err)) return -1;
    snprintf(m->arch, sizeof m->arch, "llama");
    m->format = AV_MODEL_FORMAT_GGUF;
    const char *name;
    size_t name_len;
    rc = av_gguf_get_str(g, "general.name", &name, &name_len, err);
    if (rc < 0) return -1;
    if (rc == 0 && name_len) av_printable(m->name, sizeof m->name, name, name_len);
    return 0;
}

/* View of a tensor by name; absent tensors are an error unless optional (then t->data stays NULL). */
static int take(const av_gguf *g, const char *name, int optional, av_tensor *t, av_err *err) {
    const av_gguf_tensor_info *ti = av_gguf_find_tensor(g, name);
    if (!ti) return optional ? 0 : av_errf(err, "%s: missing tensor '%s'", g->name, name);
    *t = ti->t;
    return 0;
}

static int take_layer(const void *g, int l, int k, av_tensor *t, av_err *err) {
    char name[96];
    snprintf(name, sizeof name, "blk.%d.%s.weight", l, av_llama_gguf_layer_names[k]);
    return take(g, name, 0, t, err);
}

static int read_weights(const av_gguf *g, av_model *m, av_err *err) {
    if (take(g, "token_embd.weight", 0, &m->tok_emb, err) ||
        take(g, "output_norm.weight", 0, &m->stacks[0].final_norm.w, err) ||
        take(g, "output.weight", 1, &m->head.out.w, err))
        return -1;
    if (m->tok_emb.ndim != 2 || m->tok_emb.shape[0] < 1 || m->tok_emb.shape[0] > AV_GGUF_MAX_VOCAB)
        return av_errf(err,
                       "%s: token_embd.weight must be a [vocab, dim] matrix with a vocabulary of 1 to %d",
                       g->name, AV_GGUF_MAX_VOCAB);
    m->vocab_size = (int)m->tok_emb.shape[0];
    int64_t vocab;
    int rc = av_gguf_get_int(g, "llama.vocab_size", &vocab, err);
    if (rc < 0) return -1;
    if (rc == 0 && vocab != m->vocab_size)
        return av_errf(err, "%s: llama.vocab_size %lld differs from token_embd.weight's %d rows", g->name,
                       (long long)vocab, m->vocab_size);
    return av_llama_take_layers(m, take_layer, g, err);
}

/* The file's own tokenizer (src/tok/gguf_meta.c): llama.cpp-exact for "llama" and "gpt2" vocabularies. Absent
 * metadata or another tokenizer model (which --tokenizer can supply) leaves m->tok NULL; broken metadata is
 * an error. */
static int read_tokenizer(const av_gguf *g, av_model *m, av_err *err) {
    return av_tok_load_gguf(g, &m->tok, err);
}

int av_load_gguf(const char *path, av_model *m, av_err *err) {
    av_gguf g;
    if (m->n_files >= AV_MAX_SHARDS) return av_errf(err, "%s: too many mapped files", path);
    if (av_gguf_open(path, &g, err)) return -1;
    int rc = read_config(&g, m, err) || read_weights(&g, m, err) || read_tokenizer(&g, m, err) ? -1 : 0;
    /* the views point into the mapping: the model keeps it, the parsed index goes */
    m->files[m->n_files++] = g.file;
    memset(&g.file, 0, sizeof g.file);
    av_gguf_close(&g);
    return rc;
}
