/* Hugging Face llama directories: config.json + model.safetensors, or model.safetensors.index.json naming the
 * shards. HF checkpoints permute the q/k rows for the "rotate half" RoPE (pairs (i, i + head_dim/2)), so the
 * forward pass uses AV_ROPE_HALF. Shapes are validated against the config by av_model_check.
 * Llama variants: Mistral (sliding_window on every layer) and Qwen2 (q/k/v biases; with use_sliding_window, a
 * window on layers >= max_window_layers). Other model types are routed to their families by av_hf_route. */
#include "hf.h"
#include "model.h"
#include "tok/tok.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define AV_HF_MAX_DIM (1 << 16)
#define AV_HF_MAX_HIDDEN (1 << 19)
#define AV_HF_MAX_LAYERS 1024
#define AV_HF_MAX_HEADS 1024
#define AV_HF_MAX_CTX (1 << 24)
#define AV_HF_MAX_VOCAB (1 << 22)

typedef struct hf_ctx {
    const char *dir;
    json_t *weight_map; /* name -> shard file (borrowed from index), NULL for one model.safetensors */
    json_t *index;
    const char *shard_names[AV_MAX_SHARDS]; /* (n_shards) borrowed from index */
    int window;      /* > 0: sliding-window attention (Mistral, Qwen2) */
    int window_from; /* first layer that uses the window */
} hf_ctx;

static void join(char *out, size_t n, const char *dir, const char *file) {
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/') len--;
    snprintf(out, n, "%.*s/%s", (int)len, dir, file);
}

/* Integer config member in [1, max]; def > 0 is used when absent, else it is required. */
static int cfg_size(const json_t *cfg, const char *path, const char *key, int64_t def, int64_t max, int *out,
                    av_err *err) {
    int64_t v;
    if (av_json_int(cfg, key, def, &v, err)) return av_err_prefix(err, "%s", path);
    if (v == 0 && def == 0 && !json_object_get(cfg, key)) return av_errf(err, "%s: \"%s\" is missing", path, key);
    if (v < 1 || v > max)
        return av_errf(err, "%s: \"%s\" = %lld is out of range (1 to %lld)", path, key, (long long)v, (long long)max);
    *out = (int)v;
    return 0;
}

/* Untrusted text for a one-line message: at most cap-1 bytes, control characters as '?'. */
static const char *printable(char *dst, size_t cap, const char *s) {
    size_t k = 0;
    for (; s[k] && k + 1 < cap; k++) dst[k] = (unsigned char)s[k] < 0x20 || s[k] == 0x7f ? '?' : s[k];
    dst[k] = 0;
    return dst;
}

static int check_arch(const json_t *cfg, const char *path, av_err *err) {
    const char *type = av_json_str(cfg, "model_type");
    json_t *archs = json_object_get(cfg, "architectures");
    const char *arch0 = json_is_array(archs) ? json_string_value(json_array_get(archs, 0)) : NULL;
    if (type && (strcmp(type, "llama") == 0 || strcmp(type, "mistral") == 0 || strcmp(type, "qwen2") == 0)) return 0;
    if (!type && arch0 &&
        (strcmp(arch0, "LlamaForCausalLM") == 0 || strcmp(arch0, "MistralForCausalLM") == 0 ||
         strcmp(arch0, "Qwen2ForCausalLM") == 0))
        return 0;
    char shown[64];
    if (type)
        return av_errf(err, "%s: model_type '%s' is not supported yet (supported: llama)", path,
                       printable(shown, sizeof shown, type));
    if (arch0)
        return av_errf(err, "%s: architecture '%s' is not supported yet (supported: llama, as LlamaForCausalLM)", path,
                       printable(shown, sizeof shown, arch0));
    return av_errf(err, "%s: no \"model_type\": not a Hugging Face model config", path);
}

/* Sliding window of Mistral (every layer) and Qwen2 (use_sliding_window: layers >= max_window_layers). */
static int read_window(const json_t *cfg, const char *path, const char *type, hf_ctx *c, av_err *err) {
    int64_t window = 0, from = 0;
    json_t *use = json_object_get(cfg, "use_sliding_window");
    int is_qwen2 = type && strcmp(type, "qwen2") == 0, is_mistral = type && strcmp(type, "mistral") == 0;
    if (!is_qwen2 && !is_mistral) return 0;
    if (is_qwen2 && !json_is_true(use)) return 0;
    if (av_json_int(cfg, "sliding_window", 0, &window, err) ||
        (is_qwen2 && av_json_int(cfg, "max_window_layers", 0, &from, err)))
        return av_err_prefix(err, "%s", path);
    if (window < 0 || window > AV_HF_MAX_CTX || from < 0 || from > AV_HF_MAX_LAYERS)
        return av_errf(err, "%s: sliding_window %lld / max_window_layers %lld out of range", path, (long long)window,
                       (long long)from);
    c->window = (int)window;
    c->window_from = (int)from;
    return 0;
}

static int read_config(const char *dir, hf_ctx *c, av_model *m, av_err *err) {
    char path[4096];
    join(path, sizeof path, dir, "config.json");
    json_t *cfg;
    if (av_json_load_file(path, &cfg, err)) return -1;
    int rc = -1, head_dim = 0, tie = 0;
    double eps, theta;
    int64_t tie_int;
    if (!json_is_object(cfg)) {
        av_errf(err, "%s: not a JSON object", path);
        goto done;
    }
    if (check_arch(cfg, path, err) || read_window(cfg, path, av_json_str(cfg, "model_type"), c, err) ||
        cfg_size(cfg, path, "hidden_size", 0, AV_HF_MAX_DIM, &m->dim, err) ||
        cfg_size(cfg, path, "intermediate_size", 0, AV_HF_MAX_HIDDEN, &m->hidden_dim, err) ||
        cfg_size(cfg, path, "num_hidden_layers", 0, AV_HF_MAX_LAYERS, &m->n_layers, err) ||
        cfg_size(cfg, path, "num_attention_heads", 0, AV_HF_MAX_HEADS, &m->n_heads, err) ||
        cfg_size(cfg, path, "num_key_value_heads", m->n_heads, AV_HF_MAX_HEADS, &m->n_kv_heads, err) ||
        cfg_size(cfg, path, "max_position_embeddings", 0, AV_HF_MAX_CTX, &m->max_seq_len, err) ||
        cfg_size(cfg, path, "vocab_size", 0, AV_HF_MAX_VOCAB, &m->vocab_size, err))
        goto done;
    if (json_object_get(cfg, "head_dim") && !json_is_null(json_object_get(cfg, "head_dim")) &&
        cfg_size(cfg, path, "head_dim", 0, AV_HF_MAX_DIM, &head_dim, err))
        goto done;
    if (av_json_num(cfg, "rms_norm_eps", 1e-6, &eps, err) || av_json_num(cfg, "rope_theta", 10000.0, &theta, err)) {
        av_err_prefix(err, "%s", path);
        goto done;
    }
    json_t *tv = json_object_get(cfg, "tie_word_embeddings");
    if (json_is_boolean(tv)) {
        tie = json_is_true(tv);
    } else if (av_json_int(cfg, "tie_word_embeddings", 0, &tie_int, err) == 0) {
        tie = tie_int != 0;
    } else {
        av_errf(err, "%s: \"tie_word_embeddings\" must be true or false", path);
        goto done;
    }
    json_t *scaling = json_object_get(cfg, "rope_scaling");
    if (scaling && !json_is_null(scaling)) {
        av_errf(err, "%s: \"rope_scaling\" is not supported yet (only plain RoPE)", path);
        goto done;
    }
    if (!(eps > 0) || !(theta > 0)) {
        av_errf(err, "%s: rms_norm_eps and rope_theta must be positive", path);
        goto done;
    }
    m->head_dim = head_dim; /* 0: hidden_size / heads, filled by av_model_check */
    m->norm_eps = (float)eps;
    m->rope_theta = (float)theta;
    m->rope = AV_ROPE_HALF;
    m->tied = tie;
    const char *type = av_json_str(cfg, "model_type");
    snprintf(m->arch, sizeof m->arch, "%s",
             type && (strcmp(type, "mistral") == 0 || strcmp(type, "qwen2") == 0) ? type : "llama");
    snprintf(m->format, sizeof m->format, "hf");
    rc = 0;
done:
    json_decref(cfg);
    return rc;
}

static int open_shard(const char *dir, const char *file, av_model *m, av_err *err) {
    char path[4096];
    if (m->n_shards >= AV_MAX_SHARDS) return av_errf(err, "%s: more than %d shards", dir, AV_MAX_SHARDS);
    join(path, sizeof path, dir, file);
    if (av_st_open(path, &m->shards[m->n_shards], err)) return -1;
    m->n_shards++;
    return 0;
}

/* Opens model.safetensors, or every shard named by model.safetensors.index.json. */
static int open_weights(hf_ctx *c, av_model *m, av_err *err) {
    char path[4096];
    join(path, sizeof path, c->dir, "model.safetensors.index.json");
    if (access(path, F_OK) != 0) {
        join(path, sizeof path, c->dir, "model.safetensors");
        if (access(path, F_OK) != 0)
            return av_errf(err, "%s: no model.safetensors or model.safetensors.index.json in the directory", c->dir);
        return open_shard(c->dir, "model.safetensors", m, err);
    }
    if (av_json_load_file(path, &c->index, err)) return -1;
    c->weight_map = json_object_get(c->index, "weight_map");
    if (!json_is_object(c->weight_map) || json_object_size(c->weight_map) == 0)
        return av_errf(err, "%s: no \"weight_map\" object", path);
    const char *name;
    json_t *v;
    json_object_foreach(c->weight_map, name, v) {
        const char *file = json_string_value(v);
        char shown_name[128], shown_file[128];
        int ctrl = 0;
        for (const char *ch = file; ch && *ch; ch++) ctrl |= (unsigned char)*ch < 0x20 || *ch == 0x7f;
        if (!file || !*file || ctrl || strchr(file, '/') || strchr(file, '\\') || strstr(file, ".."))
            return av_errf(err, "%s: tensor '%s' names shard '%s': not a plain file name in the directory", path,
                           printable(shown_name, sizeof shown_name, name),
                           file ? printable(shown_file, sizeof shown_file, file) : "(not a string)");
        int known = 0;
        for (int i = 0; i < m->n_shards && !known; i++) known = strcmp(c->shard_names[i], file) == 0;
        if (known) continue;
        if (open_shard(c->dir, file, m, err))
            return av_err_prefix(err, "model.safetensors.index.json names shard '%.128s'", file);
        c->shard_names[m->n_shards - 1] = file;
    }
    return 0;
}

/* Tensor by name (in the shard the index names); absent -> error unless optional. */
static int take(const hf_ctx *c, const av_model *m, const char *name, int optional, av_tensor *t, av_err *err) {
    const av_tensor *found = NULL;
    if (c->weight_map) {
        const char *file = json_string_value(json_object_get(c->weight_map, name));
        for (int i = 0; file && i < m->n_shards; i++)
            if (strcmp(c->shard_names[i], file) == 0) {
                found = av_st_find(&m->shards[i], name);
                if (!found) return av_errf(err, "%s: tensor '%s' is not in shard '%s' named by the index", c->dir,
                                           name, file);
            }
    } else {
        found = av_st_find(&m->shards[0], name);
    }
    if (!found) return optional ? 0 : av_errf(err, "%s: missing tensor '%s'", c->dir, name);
    *t = *found;
    return 0;
}

static int take_layer(const hf_ctx *c, const av_model *m, int l, const char *what, av_tensor *t, av_err *err) {
    char name[128];
    snprintf(name, sizeof name, "model.layers.%d.%s.weight", l, what);
    return take(c, m, name, 0, t, err);
}

static int read_weights(hf_ctx *c, av_model *m, av_err *err) {
    if (open_weights(c, m, err)) return -1;
    if (take(c, m, "model.embed_tokens.weight", 0, &m->tok_emb, err) || take(c, m, "model.norm.weight", 0,
                                                                               &m->out_norm, err))
        return -1;
    if (!m->tied && take(c, m, "lm_head.weight", 1, &m->cls, err)) return -1;
    if (!m->cls.data) {
        m->cls = m->tok_emb;
        m->tied = 1;
    }
    m->layers = calloc((size_t)m->n_layers, sizeof *m->layers);
    if (!m->layers) return av_errf(err, "out of memory");
    for (int l = 0; l < m->n_layers; l++) {
        av_llama_layer *L = &m->layers[l];
        if (take_layer(c, m, l, "input_layernorm", &L->attn_norm, err) ||
            take_layer(c, m, l, "self_attn.q_proj", &L->wq, err) ||
            take_layer(c, m, l, "self_attn.k_proj", &L->wk, err) ||
            take_layer(c, m, l, "self_attn.v_proj", &L->wv, err) ||
            take_layer(c, m, l, "self_attn.o_proj", &L->wo, err) ||
            take_layer(c, m, l, "post_attention_layernorm", &L->ffn_norm, err) ||
            take_layer(c, m, l, "mlp.gate_proj", &L->w_gate, err) ||
            take_layer(c, m, l, "mlp.down_proj", &L->w_down, err) || take_layer(c, m, l, "mlp.up_proj", &L->w_up, err))
            return -1;
        /* attention biases (Qwen2); an output-projection bias is not supported */
        char name[128];
        av_tensor *bias[3] = {&L->bq, &L->bk, &L->bv};
        const char *proj[3] = {"q_proj", "k_proj", "v_proj"};
        for (int i = 0; i < 3; i++) {
            snprintf(name, sizeof name, "model.layers.%d.self_attn.%s.bias", l, proj[i]);
            if (take(c, m, name, 1, bias[i], err)) return -1;
        }
        av_tensor bo = {0};
        snprintf(name, sizeof name, "model.layers.%d.self_attn.o_proj.bias", l);
        if (take(c, m, name, 1, &bo, err)) return -1;
        if (bo.data) return av_errf(err, "%s: %s: an o_proj bias is not supported", c->dir, name);
        L->window = l >= c->window_from ? c->window : 0;
    }
    return 0;
}

static void base_name(av_model *m, const char *dir) {
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/') len--;
    size_t start = len;
    while (start > 0 && dir[start - 1] != '/') start--;
    size_t n = len - start < sizeof m->name ? len - start : sizeof m->name - 1;
    memcpy(m->name, dir + start, n);
    m->name[n] = 0;
}

int av_load_hf_dir(const char *dir, av_model *m, av_err *err) {
    hf_ctx c = {dir, NULL, NULL, {0}, 0, 0};
    int routed = av_hf_route(dir, m, err); /* other families (hf_dir.c) */
    if (routed) return routed < 0 ? -1 : 0;
    if (read_config(dir, &c, m, err)) return -1;
    int rc = read_weights(&c, m, err);
    json_decref(c.index);
    if (rc) return -1;
    base_name(m, dir);
    /* Tokenizer: tokenizer.bin (llama2.c format, what `attnviz convert --to hf` writes).
     * TODO: tokenizer.json (Hugging Face tokenizers) once that loader lands; its absence is not an error. */
    char path[4096];
    join(path, sizeof path, dir, "tokenizer.bin");
    if (access(path, F_OK) == 0 && av_tokenizer_load(path, &m->tok, err)) return -1;
    return 0;
}
