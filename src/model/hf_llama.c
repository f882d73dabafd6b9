/* Hugging Face llama directories: config.json + model.safetensors, or model.safetensors.index.json naming the
 * shards. HF checkpoints permute the q/k rows for the "rotate half" RoPE (pairs (i, i + head_dim/2)), so the
 * forward pass uses AV_ROPE_HALF. Shapes are validated against the config by av_model_check.
 * Llama variants: Mistral (sliding_window on every layer) and Qwen2 (q/k/v biases; with use_sliding_window, a
 * window on layers >= max_window_layers). Other model types are routed to their families by av_hf_route. */
#include "hf.h"
#include "model.h"
#include "tok/tok.h"
#include "unsupported.h"

#include <string.h>

#define AV_HF_MAX_DIM (1 << 16)
#define AV_HF_MAX_HIDDEN (1 << 19)
#define AV_HF_MAX_LAYERS 1024
#define AV_HF_MAX_HEADS 1024
#define AV_HF_MAX_CTX (1 << 24)
#define AV_HF_MAX_VOCAB (1 << 22)

typedef struct hf_window {
    int size; /* > 0: sliding-window attention (Mistral, Qwen2) */
    int from; /* first layer that uses the window */
} hf_window;

/* Without a model_type, av_hf_route matched architectures[0] by prefix: only the causal LM loads here. */
static int check_arch(const av_hf_dir *h, av_err *err) {
    static const char *const causal[] = {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"};
    if (av_hf_str(h, "model_type")) return 0;
    const char *arch0 = json_string_value(json_array_get(json_object_get(h->cfg, "architectures"), 0));
    if (!arch0) arch0 = "";
    for (size_t i = 0; i < sizeof causal / sizeof causal[0]; i++)
        if (strcmp(arch0, causal[i]) == 0) return 0;
    char shown[64];
    return av_errf(
        err,
        "%s: architecture '%s' is not supported yet (supported: LlamaForCausalLM, MistralForCausalLM, "
        "Qwen2ForCausalLM)",
        h->cfg_path, av_printable(shown, sizeof shown, arch0, strlen(arch0)));
}

/* Sliding window of Mistral (every layer) and Qwen2 (use_sliding_window: layers >= max_window_layers). */
static int read_window(const av_hf_dir *h, hf_window *w, av_err *err) {
    int is_qwen2 = strcmp(h->model_type, "qwen2") == 0;
    if (!is_qwen2 && strcmp(h->model_type, "mistral") != 0) return 0;
    if (is_qwen2 && !json_is_true(json_object_get(h->cfg, "use_sliding_window"))) return 0;
    return av_hf_int(h, "sliding_window", 0, 0, AV_HF_MAX_CTX, &w->size, err) ||
                   (is_qwen2 && av_hf_int(h, "max_window_layers", 0, 0, AV_HF_MAX_LAYERS, &w->from, err))
               ? -1
               : 0;
}

static int read_config(const av_hf_dir *h, av_model *m, hf_window *w, int *tied, av_err *err) {
    int tie = 0;
    double eps, theta;
    av_llama_cfg c = {0};
    if (check_arch(h, err) || av_hf_refuse_unsupported_keys(h, err) || read_window(h, w, err) ||
        av_hf_int(h, "hidden_size", -1, 1, AV_HF_MAX_DIM, &c.dim, err) ||
        av_hf_int(h, "intermediate_size", -1, 1, AV_HF_MAX_HIDDEN, &c.hidden, err) ||
        av_hf_int(h, "num_hidden_layers", -1, 1, AV_HF_MAX_LAYERS, &c.n_layers, err) ||
        av_hf_int(h, "num_attention_heads", -1, 1, AV_HF_MAX_HEADS, &c.n_heads, err) ||
        av_hf_int(h, "num_key_value_heads", c.n_heads, 1, AV_HF_MAX_HEADS, &c.n_kv_heads, err) ||
        av_hf_int(h, "max_position_embeddings", -1, 1, AV_HF_MAX_CTX, &m->max_seq_len, err) ||
        av_hf_int(h, "vocab_size", -1, 1, AV_HF_MAX_VOCAB, &m->vocab_size, err) ||
        av_hf_int(h, "head_dim", 0, 0, AV_HF_MAX_DIM, &c.head_dim, err) || /* 0: hidden_size / heads */
        av_hf_num(h, "rms_norm_eps", 1e-6, &eps, err) || av_hf_num(h, "rope_theta", 10000.0, &theta, err))
        return -1;
    json_t *tv = json_object_get(h->cfg, "tie_word_embeddings"); /* rope_scaling: unsupported.c's table */
    if (json_is_integer(tv))
        tie = json_integer_value(tv) != 0; /* 0 / 1 in some configs */
    else if (av_hf_bool(h, "tie_word_embeddings", 0, &tie, err))
        return -1;
    if (!(eps > 0) || !(theta > 0))
        return av_errf(err, "%s: rms_norm_eps and rope_theta must be positive", h->cfg_path);
    c.eps = (float)eps;
    c.rope_theta = (float)theta;
    c.rope = AV_ROPE_HALF;
    *tied = tie;
    snprintf(m->arch, sizeof m->arch, "%s", h->model_type); /* llama, mistral, qwen2 */
    m->format = AV_MODEL_FORMAT_HF;
    return av_llama_init(m, &c, err);
}

static int take_layer(const void *h, int l, int k, av_tensor *t, av_err *err) {
    return av_hf_take(h, t, 0, err, "model.layers.%d.%s.weight", l, av_llama_hf_layer_names[k]);
}

/* lm_head.weight must agree with tie_word_embeddings (issue #19): tied with a different head, or untied
 * without one, is a checkpoint attnviz would otherwise run with a guessed output layer. */
static int take_head(const av_hf_dir *h, av_model *m, int tied, av_err *err) {
    av_tensor *a = &m->head.out.w;
    if (av_hf_take(h, a, 1, err, "lm_head.weight")) return -1;
    if (!tied && !a->data)
        return av_errf(err,
                       "%s: \"tie_word_embeddings\" is false (the default) but there is no lm_head.weight: "
                       "refused rather than guessing the output layer",
                       h->cfg_path);
    if (tied && a->data) {
        const av_tensor *b = &m->tok_emb;
        if (a->dtype != b->dtype || a->nbytes != b->nbytes || memcmp(a->data, b->data, a->nbytes) != 0)
            return av_errf(
                err,
                "%s: \"tie_word_embeddings\" is true but lm_head.weight differs from the embedding: "
                "refused rather than guessing which one the output uses",
                h->cfg_path);
        memset(a, 0, sizeof *a); /* the same numbers: tied by av_llama_take_layers */
    }
    return 0;
}

/* "layer_types" (newer configs) must name exactly the layers read_window gives a window. */
static int check_layer_types(const av_hf_dir *h, const av_stack *st, av_err *err) {
    json_t *lt = json_object_get(h->cfg, "layer_types");
    if (!lt || json_is_null(lt)) return 0;
    if (!json_is_array(lt) || json_array_size(lt) != (size_t)st->n_layers)
        return av_errf(err, "%s: \"layer_types\" must list the %d layers", h->cfg_path, st->n_layers);
    for (int l = 0; l < st->n_layers; l++) {
        const char *t = json_string_value(json_array_get(lt, (size_t)l));
        int sliding = t && strcmp(t, "sliding_attention") == 0, full = t && strcmp(t, "full_attention") == 0;
        int window = st->blocks[l].window > 0;
        if ((!sliding && !full) || sliding != window)
            return av_errf(
                err,
                "%s: \"layer_types\"[%d] is '%.32s' but the sliding-window keys give this layer %s "
                "attention: refused rather than guessing",
                h->cfg_path, l, t ? t : "?", window ? "sliding" : "full");
    }
    return 0;
}

static int read_weights(av_hf_dir *h, av_model *m, const hf_window *w, int tied, av_err *err) {
    av_stack *st = &m->stacks[0];
    if (av_hf_open_weights(h, err) || av_hf_take(h, &m->tok_emb, 0, err, "model.embed_tokens.weight") ||
        av_hf_take(h, &st->final_norm.w, 0, err, "model.norm.weight") || take_head(h, m, tied, err) ||
        av_llama_take_layers(m, take_layer, h, err))
        return -1;
    for (int l = 0; l < st->n_layers; l++) {
        /* attention biases (Qwen2); an output-projection bias is not supported */
        av_block *B = &st->blocks[l];
        av_tensor bo, *bias[4] = {&B->attn.q.b, &B->attn.k.b, &B->attn.v.b, &bo};
        for (int i = 0; i < 4; i++)
            if (av_hf_take(h, bias[i], 1, err, "model.layers.%d.self_attn.%c_proj.bias", l, "qkvo"[i]))
                return -1;
        if (bo.data)
            return av_errf(err, "%s: model.layers.%d.self_attn.o_proj.bias: an o_proj bias is not supported",
                           h->dir, l);
        if ((B->attn.q.b.data || B->attn.k.b.data || B->attn.v.b.data) &&
            strcmp(h->model_type, "qwen2") != 0) /* attention_bias */
            return av_errf(
                err,
                "%s: layer %d has q/k/v biases, which %s uses only with \"attention_bias\" (with its "
                "o_proj bias, not supported): refused rather than ignored",
                h->dir, l, h->model_type);
        B->window = l >= w->from ? w->size : 0;
    }
    return check_layer_types(h, st, err) || av_hf_refuse_unused_tensors(h, err) ? -1 : 0;
}

int av_load_hf_dir(const char *dir, av_model *m, av_err *err) {
    av_hf_dir h;
    hf_window w = {0, 0};
    int routed = av_hf_route(dir, m, &h, err); /* other families (hf_dir.c); 0: h is open for us */
    if (routed) return routed < 0 ? -1 : 0;
    int tied = 0;
    int rc = read_config(&h, m, &w, &tied, err) || read_weights(&h, m, &w, tied, err) ? -1 : 0;
    av_hf_close(&h);
    if (rc) return -1;
    return av_hf_load_tokenizer(dir, m, 1, err); /* absent files are fine: --tokenizer can supply one */
}
