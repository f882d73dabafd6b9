/* Model lifecycle: format detection, tokenizer pairing, shape validation and introspection. */
#include "family.h"
#include "kernels/kernels.h"
#include "model.h"
#include "tok/tok.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

av_model_params av_model_default_params(void) { return (av_model_params){NULL, 0}; }

av_tensor av_tensor_f32(const float *data, int64_t rows, int64_t cols) {
    av_tensor t = {AV_DTYPE_F32, 2, {rows, cols, 0, 0}, data, (size_t)(rows * cols) * 4};
    return t;
}

const char *const av_llama_gguf_layer_names[AV_LLAMA_LAYER_WEIGHTS] = {
    "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_down", "ffn_up"};
const char *const av_llama_hf_layer_names[AV_LLAMA_LAYER_WEIGHTS] = {
    "input_layernorm",  "self_attn.q_proj", "self_attn.k_proj",
    "self_attn.v_proj", "self_attn.o_proj", "post_attention_layernorm",
    "mlp.gate_proj",    "mlp.down_proj",    "mlp.up_proj"};

int av_llama_take_layers(av_model *m, av_llama_take_fn take, const void *ctx, av_err *err) {
    if (!m->cls.data) {
        m->cls = m->tok_emb;
        m->tied = 1;
    }
    m->layers = calloc((size_t)m->n_layers, sizeof *m->layers);
    if (!m->layers) return av_errf(err, "out of memory");
    for (int l = 0; l < m->n_layers; l++) {
        av_tensor *w[AV_LLAMA_LAYER_WEIGHTS] = AV_LLAMA_LAYER_WEIGHT_PTRS(&m->layers[l]);
        for (int k = 0; k < AV_LLAMA_LAYER_WEIGHTS; k++)
            if (take(ctx, l, k, w[k], err)) return -1;
    }
    return 0;
}

int av_model_own(av_model *m, void *p, av_err *err) {
    void **grown = realloc(m->owned, sizeof(void *) * (size_t)(m->n_owned + 1));
    if (!grown) {
        free(p);
        return av_errf(err, "out of memory");
    }
    m->owned = grown;
    m->owned[m->n_owned++] = p;
    return 0;
}

void av_model_free(av_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_files; i++)
        av_file_unmap(&m->files[i]);
    for (int i = 0; i < m->n_shards; i++)
        av_st_close(&m->shards[i]);
    for (int i = 0; i < m->n_owned; i++)
        free(m->owned[i]);
    free(m->owned);
    free(m->layers);
    av_tf_free(m->tf);
    av_tokenizer_free(m->tok);
    free(m);
}

static int check_tensor(const av_tensor *t, const char *what, int layer, int64_t rows, int64_t cols,
                        av_err *err) {
    char where[64];
    if (layer >= 0)
        snprintf(where, sizeof where, "layer %d %s", layer, what);
    else
        snprintf(where, sizeof where, "%s", what);
    if (!t->data) return av_errf(err, "missing tensor: %s", where);
    if (t->dtype != AV_DTYPE_F32 && t->dtype != AV_DTYPE_F16 && t->dtype != AV_DTYPE_BF16 &&
        t->dtype != AV_DTYPE_Q8_0)
        return av_errf(err, "%s: unsupported weight type %s", where, av_dtype_name(t->dtype));
    int ok = cols == 0 ? (t->ndim == 1 && t->shape[0] == rows)
                       : (t->ndim == 2 && t->shape[0] == rows && t->shape[1] == cols);
    if (!ok) {
        char got[96] = "";
        for (int i = 0; i < t->ndim && i < AV_MAX_DIMS; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? ", " : "",
                     (long long)t->shape[i]);
        if (cols)
            return av_errf(err, "%s: shape [%s] does not match the config (expected [%lld, %lld])", where,
                           got, (long long)rows, (long long)cols);
        return av_errf(err, "%s: shape [%s] does not match the config (expected [%lld])", where, got,
                       (long long)rows);
    }
    size_t nbytes;
    if (!av_dtype_nbytes(t->dtype, (size_t)rows * (size_t)(cols ? cols : 1), &nbytes) || nbytes != t->nbytes)
        return av_errf(err, "%s: %zu bytes of data for its shape and type", where, t->nbytes);
    if ((t->dtype == AV_DTYPE_Q8_0) && (cols ? cols : rows) % 32)
        return av_errf(err, "%s: Q8_0 rows must be a multiple of 32 values", where);
    return 0;
}

int av_model_check(av_model *m, av_err *err) {
    if (m->family != AV_FAMILY_LLAMA) return av_tf_check(m, err);
    if (m->dim <= 0 || m->n_heads <= 0 || m->n_kv_heads <= 0 || m->n_layers <= 0 || m->vocab_size <= 0 ||
        m->hidden_dim <= 0 || m->max_seq_len <= 0)
        return av_errf(
            err,
            "model config has a non-positive size (dim %d, heads %d, kv heads %d, layers %d, vocab %d, "
            "hidden %d, context %d)",
            m->dim, m->n_heads, m->n_kv_heads, m->n_layers, m->vocab_size, m->hidden_dim, m->max_seq_len);
    if (m->dim > (1 << 16) || m->hidden_dim > (1 << 19) || m->n_layers > 1024 || m->vocab_size > (1 << 22) ||
        m->n_heads > 1024)
        return av_errf(err,
                       "model config sizes are implausibly large (dim %d, hidden %d, layers %d, vocab %d)",
                       m->dim, m->hidden_dim, m->n_layers, m->vocab_size);
    if (m->n_heads % m->n_kv_heads)
        return av_errf(err, "%d attention heads are not a multiple of %d kv heads", m->n_heads,
                       m->n_kv_heads);
    if (!m->head_dim) {
        if (m->dim % m->n_heads)
            return av_errf(err, "dim %d is not a multiple of %d heads", m->dim, m->n_heads);
        m->head_dim = m->dim / m->n_heads;
    }
    if (m->head_dim % 2) return av_errf(err, "head size %d is odd (RoPE needs pairs)", m->head_dim);
    if (!(m->norm_eps > 0) || !(m->rope_theta > 0))
        return av_errf(err, "norm epsilon and RoPE base must be positive");
    int64_t q_dim = (int64_t)m->n_heads * m->head_dim, kv_dim = (int64_t)m->n_kv_heads * m->head_dim;
    if (check_tensor(&m->tok_emb, "token embedding", -1, m->vocab_size, m->dim, err) ||
        check_tensor(&m->out_norm, "output norm", -1, m->dim, 0, err) ||
        check_tensor(&m->cls, "classifier", -1, m->vocab_size, m->dim, err))
        return -1;
    for (int l = 0; l < m->n_layers; l++) {
        const av_llama_layer *L = &m->layers[l];
        if (check_tensor(&L->attn_norm, "attention norm", l, m->dim, 0, err) ||
            check_tensor(&L->wq, "wq", l, q_dim, m->dim, err) ||
            check_tensor(&L->wk, "wk", l, kv_dim, m->dim, err) ||
            check_tensor(&L->wv, "wv", l, kv_dim, m->dim, err) ||
            check_tensor(&L->wo, "wo", l, m->dim, q_dim, err) ||
            check_tensor(&L->ffn_norm, "ffn norm", l, m->dim, 0, err) ||
            check_tensor(&L->w_gate, "ffn gate (w1)", l, m->hidden_dim, m->dim, err) ||
            check_tensor(&L->w_down, "ffn down (w2)", l, m->dim, m->hidden_dim, err) ||
            check_tensor(&L->w_up, "ffn up (w3)", l, m->hidden_dim, m->dim, err))
            return -1;
        if ((L->bq.data && check_tensor(&L->bq, "q bias", l, q_dim, 0, err)) ||
            (L->bk.data && check_tensor(&L->bk, "k bias", l, kv_dim, 0, err)) ||
            (L->bv.data && check_tensor(&L->bv, "v bias", l, kv_dim, 0, err)))
            return -1;
        if (L->bq.dtype == AV_DTYPE_Q8_0 || L->bk.dtype == AV_DTYPE_Q8_0 || L->bv.dtype == AV_DTYPE_Q8_0)
            return av_errf(err, "layer %d: quantized attention biases are not supported", l);
        if (L->window < 0) return av_errf(err, "layer %d: negative sliding window", l);
        /* norms are read as floats directly */
        if (L->attn_norm.dtype == AV_DTYPE_Q8_0 || L->ffn_norm.dtype == AV_DTYPE_Q8_0)
            return av_errf(err, "layer %d: quantized norm weights are not supported", l);
    }
    return 0;
}

static int has_magic(const char *path, const char *magic) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return 0;
    char buf[4] = {0};
    size_t n = fread(buf, 1, 4, fp);
    fclose(fp);
    return n == 4 && memcmp(buf, magic, 4) == 0;
}

static int has_suffix(const char *path, const char *suffix) {
    size_t n = strlen(path), k = strlen(suffix);
    return n >= k && strcmp(path + n - k, suffix) == 0;
}

/* For llama2.c checkpoints without --tokenizer: tokenizer.bin or tok<vocab>.bin next to the model. */
static int find_sibling_tokenizer(const char *model_path, int vocab, char *out, size_t n) {
    char dir[4096], name[32];
    snprintf(name, sizeof name, "tok%d.bin", vocab);
    if (av_path_dirname(model_path, dir, sizeof dir)) return -1;
    if (av_path_join(out, n, dir, name) == 0 && access(out, R_OK) == 0) return 0;
    return av_path_join(out, n, dir, "tokenizer.bin") == 0 && access(out, R_OK) == 0 ? 0 : -1;
}

/* The last path component; a file's name loses its extension ("stories260K.bin"), a directory's keeps it
 * ("vit_tiny_patch16_224.augreg_in21k"). */
static void name_from_path(av_model *m, const char *path, int keep_ext) {
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/')
        len--;
    const char *base = path;
    for (size_t i = 0; i < len; i++)
        if (path[i] == '/') base = path + i + 1;
    size_t blen = (size_t)(path + len - base);
    const char *dot = memchr(base, '.', blen);
    if (dot && dot != base && !keep_ext) blen = (size_t)(dot - base);
    if (blen >= sizeof m->name) blen = sizeof m->name - 1;
    memcpy(m->name, base, blen);
    m->name[blen] = 0;
}

int av_model_load(const char *path, const av_model_params *params, av_model **out, av_err *err) {
    *out = NULL;
    av_model_params defaults = av_model_default_params();
    if (!params) params = &defaults;
    av_kernels_init(); /* one threading layer: ours */
    av_model *m = calloc(1, sizeof *m);
    if (!m) return av_errf(err, "out of memory");
    m->n_threads = params->n_threads > 0 ? params->n_threads : av_default_threads();
    int rc, is_dir = av_path_is_dir(path);
    /* by content; a ".gguf" file with a bad magic still goes to the GGUF loader (a clear "bad magic" message)
     */
    if (is_dir)
        rc = av_load_hf_dir(path, m, err);
    else if (has_magic(path, "GGUF") || has_suffix(path, ".gguf"))
        rc = av_load_gguf(path, m, err);
    else
        rc = av_load_llama2c(path, m, err);
    if (rc == 0 && !m->name[0]) name_from_path(m, path, is_dir);
    if (rc == 0) rc = av_model_check(m, err);
    if (rc == 0 && params->tokenizer_path) {
        av_tokenizer_free(m->tok);
        m->tok = NULL;
        rc = av_tokenizer_load(params->tokenizer_path, &m->tok, err);
    } else if (rc == 0 && !m->tok && strcmp(m->format, "llama2c") == 0) {
        char tok_path[4096];
        if (find_sibling_tokenizer(path, m->vocab_size, tok_path, sizeof tok_path) == 0)
            rc = av_tokenizer_load(tok_path, &m->tok, err);
    }
    /* Hugging Face configs often pad the vocabulary past the tokenizer's (T5: 32128 for 32100 tokens) */
    int hf = strcmp(m->format, "hf") == 0;
    if (rc == 0 && m->tok &&
        (hf ? av_tokenizer_vocab_size(m->tok) > m->vocab_size
            : av_tokenizer_vocab_size(m->tok) != m->vocab_size))
        rc = av_errf(
            err, "tokenizer has %d tokens but the model's vocabulary has %d: wrong tokenizer for this model",
            av_tokenizer_vocab_size(m->tok), m->vocab_size);
    if (rc) {
        av_model_free(m);
        return -1;
    }
    *out = m;
    return 0;
}

av_model_info av_model_get_info(const av_model *m) {
    av_model_info info = {m->name,
                          m->arch,
                          m->format,
                          m->dim,
                          m->hidden_dim,
                          m->n_layers,
                          m->n_heads,
                          m->n_kv_heads,
                          m->vocab_size,
                          m->max_seq_len,
                          0,
                          NULL,
                          0};
    int64_t q_dim = (int64_t)m->n_heads * m->head_dim, kv_dim = (int64_t)m->n_kv_heads * m->head_dim;
    int64_t per_layer =
        2 * m->dim + q_dim * m->dim * 2 + kv_dim * m->dim * 2 + 3 * (int64_t)m->hidden_dim * m->dim;
    info.n_params = (int64_t)m->vocab_size * m->dim * (m->tied ? 1 : 2) + m->dim + per_layer * m->n_layers;
    static const char *families[] = {"llama", "gpt2", "bert", "vit", "encoder-decoder"};
    info.family = (unsigned)m->family < sizeof families / sizeof families[0] ? families[m->family] : "?";
    if (m->tf) {
        info.n_params = av_tf_n_params(m);
        info.n_dec_layers = m->tf->dec.n_layers;
    }
    return info;
}

const av_tokenizer *av_model_tokenizer(const av_model *m) { return m->tok; }
