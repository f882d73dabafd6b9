/* config.json of every Hugging Face / timm family, structure-aware: the input is a JSON object, mutated as
 * JSON (json_mutator.h: edge-case numbers, deleted and added keys), written as config.json next to the
 * weights of the matching tiny fixture (tests/fixtures/tiny/<family>, made by scripts/make_tiny_models.py;
 * timm configs use ../shared/models/vit-tiny when present), then loaded and run (fuzz_model.h). Seeds: the
 * fixtures' own config.json files and a converted Llama's. */
#include "fuzz_model.h"
#include "json_mutator.h"

/* clang-format off */
static const char *const keys[] = {
    "model_type", "architectures", "architecture", "hidden_size", "intermediate_size", "num_hidden_layers",
    "num_attention_heads", "num_key_value_heads", "max_position_embeddings", "vocab_size", "head_dim",
    "rms_norm_eps", "rope_theta", "rope_scaling", "tie_word_embeddings", "sliding_window",
    "use_sliding_window", "max_window_layers", "hidden_act", "activation_function", "activation", "n_embd",
    "n_layer", "n_head", "n_positions", "n_inner", "layer_norm_epsilon", "layer_norm_eps",
    "scale_attn_weights", "scale_attn_by_inverse_layer_idx", "bos_token_id", "eos_token_id", "pad_token_id",
    "dim", "n_layers", "n_heads", "hidden_dim", "position_embedding_type", "image_size", "patch_size",
    "num_channels", "qkv_bias", "id2label", "num_classes", "global_pool", "model_args", "pretrained_cfg",
    "embed_dim", "depth", "num_heads", "img_size", "mlp_ratio", "input_size", "crop_pct", "interpolation",
    "crop_mode", "mean", "std", "d_model", "encoder_layers", "decoder_layers", "encoder_attention_heads",
    "decoder_attention_heads", "encoder_ffn_dim", "decoder_ffn_dim", "scale_embedding", "normalize_before",
    "decoder_start_token_id", "d_kv", "d_ff", "num_layers", "num_decoder_layers",
    "relative_attention_num_buckets", "relative_attention_max_distance", "feed_forward_proj",
    "attn_logit_softcapping", "final_logit_softcapping", "query_pre_attn_scalar", "partial_rotary_factor",
    "attention_bias", "mlp_bias", "rope_type", "type_vocab_size", "add_cross_attention", "is_decoder",
    "layernorm_embedding", "add_final_layer_norm", "normalize_embedding", "static_position_embeddings",
    "share_encoder_decoder_embeddings", "tie_encoder_decoder", "sinusoidal_pos_embds", "alibi", "use_alibi"};
static const char *const strings[] = {
    "llama", "mistral", "qwen2", "gpt2", "bert", "roberta", "distilbert", "vit", "marian", "bart", "t5",
    "gemma", "LlamaForCausalLM", "GPT2LMHeadModel", "vit_tiny_patch16_224", "gelu", "gelu_new", "relu", "silu",
    "swish", "gelu_pytorch_tanh", "gelu_fast", "quick_gelu", "tanh", "gated-gelu", "gated-silu", "relu2",
    "absolute", "relative_key", "token", "avg", "bicubic", "bilinear", "center", "squash", "linear", "dynamic",
    "yarn", "llama3", ""};
/* clang-format on */
FUZZ_JSON_MUTATOR(keys, strings)

/* The fixture whose weights fit the config's family (by model_type, else the architecture's prefix). */
static const char *fixture_for(const json_t *cfg) {
    static const struct {
        const char *type, *arch, *dir;
    } map[] = {{"llama", "Llama", "mistral"},
               {"mistral", "Mistral", "mistral"},
               {"qwen2", "Qwen2", "qwen2"},
               {"gpt2", "GPT2", "gpt2"},
               {"bert", "Bert", "bert"},
               {"roberta", "Roberta", "roberta"},
               {"distilbert", "DistilBert", "distilbert"},
               {"vit", "ViT", "vit"},
               {"marian", "Marian", "marian"},
               {"bart", "Bart", "bart"},
               {"t5", "T5", "t5"}};
    const char *type = json_string_value(json_object_get(cfg, "model_type"));
    const char *arch = json_string_value(json_array_get(json_object_get(cfg, "architectures"), 0));
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        if (type ? strcmp(type, map[i].type) != 0
                 : !arch || strncmp(arch, map[i].arch, strlen(map[i].arch)) != 0)
            continue;
        const char *ff = json_string_value(json_object_get(cfg, "feed_forward_proj"));
        return strcmp(map[i].dir, "t5") == 0 && ff && strncmp(ff, "gated", 5) == 0 ? "t5v11" : map[i].dir;
    }
    return json_object_get(cfg, "architecture") ? NULL : "mistral"; /* NULL: timm */
}

/* Links every file of dir except config.json and reference.safetensors into the scratch directory. */
static int link_weights(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[2048];
    int n = 0;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, "config.json") == 0 ||
            strcmp(e->d_name, "reference.safetensors") == 0 || strstr(e->d_name, ".md"))
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        fuzz_link(p, e->d_name);
        n++;
    }
    if (d) closedir(d);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    json_t *cfg = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(cfg)) {
        json_decref(cfg);
        return 0;
    }
    const char *fx = fixture_for(cfg);
    char dir[1024], path[1024];
    if (fx)
        snprintf(dir, sizeof dir, "%s/tests/fixtures/tiny/%s", FUZZ_ROOT, fx);
    else
        snprintf(dir, sizeof dir, "%s/../shared/models/vit-tiny", FUZZ_ROOT);
    json_decref(cfg);
    fuzz_clear();
    if (link_weights(dir) == 0) return 0; /* the timm weights are not here */
    fuzz_write(path, sizeof path, "config.json", data, size);
    av_model_params mp = fuzz_model_params();
    av_model *m = NULL;
    av_err err;
    if (fuzz_note(av_model_load(fuzz_dir(), &mp, &m, &err), "model", &err) == 0)
        fuzz_exercise_model(m, "", 0);
    av_model_free(m);
    return 0;
}
