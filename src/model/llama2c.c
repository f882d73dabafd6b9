/* llama2.c legacy checkpoints: 7 int32 header fields, then fp32 tensors in a fixed order, two legacy RoPE
 * tables, then the classifier only when vocab_size in the header is negative (not tied). */
#include "model.h"

#include <stdlib.h>
#include <string.h>

#define AV_L2C_MAX_DIM (1 << 16)
#define AV_L2C_MAX_LAYERS 1024
#define AV_L2C_MAX_VOCAB (1 << 22)
#define AV_L2C_MAX_SEQ (1 << 22)

/* Takes a view of rows x cols floats from the reader. */
static int take(av_reader *r, int64_t rows, int64_t cols, av_tensor *t, av_err *err) {
    size_t n, nbytes;
    const void *p;
    int64_t shape[2] = {rows, cols};
    if (!av_shape_numel(shape, 2, &n) || !av_mul_size(n, 4, &nbytes))
        return av_errf(err, "%s: tensor size overflows", r->name);
    if (av_read_view(r, &p, nbytes, err)) return -1;
    *t = rows == 1 ? av_tensor_f32(p, cols, 0) : av_tensor_f32(p, rows, cols); /* vectors are 1-D */
    return 0;
}

int av_load_llama2c(const char *path, av_model *m, av_err *err) {
    av_mapped_file *f = &m->files[m->n_files];
    if (av_file_map(path, f, err)) return -1;
    m->n_files++;
    av_reader r;
    av_reader_init(&r, f->data, f->size, path);
    int32_t h[7];
    for (int i = 0; i < 7; i++)
        if (av_read_i32(&r, &h[i], err)) return -1;
    int dim = h[0], hidden = h[1], n_layers = h[2], n_heads = h[3], n_kv = h[4], vocab = h[5], seq = h[6];
    int tied = vocab > 0;
    if (vocab < 0) vocab = vocab == INT32_MIN ? 0 : -vocab;
    if (dim <= 0 || dim > AV_L2C_MAX_DIM || hidden <= 0 || hidden > 8 * AV_L2C_MAX_DIM || n_layers <= 0 ||
        n_layers > AV_L2C_MAX_LAYERS || n_heads <= 0 || n_heads > dim || n_kv <= 0 || n_kv > n_heads ||
        vocab <= 0 || vocab > AV_L2C_MAX_VOCAB || seq <= 0 || seq > AV_L2C_MAX_SEQ)
        return av_errf(
            err,
            "%s: not a llama2.c checkpoint or corrupt header (dim %d, hidden %d, layers %d, heads %d, "
            "kv heads %d, vocab %d, seq_len %d)",
            path, dim, hidden, n_layers, n_heads, n_kv, vocab, seq);
    if (dim % n_heads || n_heads % n_kv || (dim / n_heads) % 2)
        return av_errf(err, "%s: dim %d, %d heads and %d kv heads are inconsistent", path, dim, n_heads,
                       n_kv);
    av_llama_cfg c = {dim, hidden, n_layers, n_heads, n_kv, 0, 1e-5f, 10000.0f, AV_ROPE_INTERLEAVED};
    m->vocab_size = vocab;
    m->max_seq_len = seq;
    snprintf(m->arch, sizeof m->arch, "llama");
    m->format = AV_MODEL_FORMAT_LLAMA2C;
    if (av_llama_init(m, &c, err)) return -1;
    av_stack *st = &m->stacks[0];
    int hs = dim / n_heads, kv_dim = hs * n_kv;
    if (take(&r, vocab, dim, &m->tok_emb, err)) return -1;
        /* the checkpoint stores each tensor for all layers at once */
#define PER_LAYER(field, rows, cols)                                                                         \
    for (int l = 0; l < n_layers; l++)                                                                       \
        if (take(&r, rows, cols, &st->blocks[l].field, err)) return -1;
    PER_LAYER(attn_norm.w, 1, dim)
    PER_LAYER(attn.q.w, dim, dim)
    PER_LAYER(attn.k.w, kv_dim, dim)
    PER_LAYER(attn.v.w, kv_dim, dim)
    PER_LAYER(attn.o.w, dim, dim)
    PER_LAYER(ffn_norm.w, 1, dim)
    PER_LAYER(ffn.gate.w, hidden, dim)
    PER_LAYER(ffn.down.w, dim, hidden)
    PER_LAYER(ffn.up.w, hidden, dim)
#undef PER_LAYER
    if (take(&r, 1, dim, &st->final_norm.w, err)) return -1;
    size_t rope_floats;
    if (!av_mul_size((size_t)seq, (size_t)hs, &rope_floats)) return av_errf(err, "%s: size overflows", path);
    const void *skip;
    if (av_read_view(&r, &skip, rope_floats * 4, err)) return av_err_prefix(err, "legacy RoPE tables");
    if (tied) {
        m->head.out.w = m->tok_emb;
    } else if (take(&r, vocab, dim, &m->head.out.w, err)) {
        return av_err_prefix(err, "classifier");
    }
    m->head.n_out = vocab;
    if (av_reader_left(&r) != 0)
        return av_errf(err, "%s: %zu unexpected bytes after the last tensor (wrong header?)", path,
                       av_reader_left(&r));
    return 0;
}
