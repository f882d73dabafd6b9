/* Keys and tensors that change the math and are not implemented are refused with their name (issue #19), one
 * crafted file per entry: GGUF llama keys (unimplemented rope scaling types, value sizes, soft-capping,
 * shared experts, unknown "llama." keys) and tensors (q/k norms, LayerNorm biases, layers past block_count),
 * config.json keys of the Hugging Face families (rope_scaling where not applied, soft-capping,
 * query_pre_attn_scalar, partial rotary, biases, experts, layer_types, tie_word_embeddings mismatches),
 * safetensors tensors no loader takes, Marian position tables that are not the sinusoids; neutral values and
 * keys the family applies (src/model/arch.h) load. Also the add_bos / add_eos flags of GGUF
 * files and of tokenizer_config.json are honoured. */
#include "harness.h"
#include "io/gguf.h"
#include "io/io.h"

#include <sys/stat.h>

#define TINY "tests/fixtures/tiny/"

/* ---- GGUF ---- */

enum { V = 8, D = 8, FF = 16 };

typedef struct gguf_case {
    const char *key; /* extra key (NULL: none) */
    char type;       /* 's' string, 'f' f32, 'u' u32, 'b' bool, 'a' f32 array */
    const char *s;
    double v;
    const char *tensor; /* extra tensor (NULL: none) */
    const char *expect; /* substring of the error; NULL: loads */
} gguf_case;

static void add_extra(av_gguf_writer *w, const gguf_case *c, const float *zeros, av_err *err) {
    if (c->key && c->type == 's') av_gguf_writer_str(w, c->key, c->s, err);
    if (c->key && c->type == 'f') av_gguf_writer_f32(w, c->key, (float)c->v, err);
    if (c->key && c->type == 'u') av_gguf_writer_u32(w, c->key, (uint32_t)c->v, err);
    if (c->key && c->type == 'b') av_gguf_writer_bool(w, c->key, c->v != 0, err);
    if (c->key && c->type == 'a') av_gguf_writer_arr_f32(w, c->key, zeros, 4, err);
    int64_t shape[1] = {D};
    if (c->tensor) av_gguf_writer_tensor(w, c->tensor, AV_DTYPE_F32, AV_DTYPE_F32, 1, shape, zeros, err);
}

/* A 1-layer llama GGUF (dim 8, 2 heads of 4, vocab 8, a SentencePiece vocabulary) plus the case's key/tensor.
 * tok_model "gpt2" writes a byte-level BPE vocabulary instead; add_bos/add_eos -1: keys absent. */
static void write_gguf(const char *path, const gguf_case *c, const char *tok_model, int add_bos,
                       int add_eos) {
    static float w[V * FF], zeros[FF];
    for (int i = 0; i < V * FF; i++)
        w[i] = 0.01f * (float)((i * 37) % 23 - 11);
    av_gguf_writer g;
    av_err err = {{0}};
    av_gguf_writer_init(&g);
    av_gguf_writer_str(&g, "general.architecture", "llama", &err);
    av_gguf_writer_u32(&g, "llama.context_length", 16, &err);
    av_gguf_writer_u32(&g, "llama.embedding_length", D, &err);
    av_gguf_writer_u32(&g, "llama.block_count", 1, &err);
    av_gguf_writer_u32(&g, "llama.feed_forward_length", FF, &err);
    av_gguf_writer_u32(&g, "llama.attention.head_count", 2, &err);
    av_gguf_writer_u32(&g, "llama.attention.head_count_kv", 2, &err);
    av_gguf_writer_f32(&g, "llama.attention.layer_norm_rms_epsilon", 1e-5f, &err);
    static const char *const spm[V] = {"<unk>",
                                       "<s>",
                                       "</s>",
                                       "\xE2\x96\x81",
                                       "a",
                                       "b",
                                       "\xE2\x96\x81"
                                       "a",
                                       "ab"};
    static const char *const bpe[V] = {"<|begin|>",
                                       "<|end|>",
                                       "a",
                                       "b",
                                       "\xC4\xA0",
                                       "\xC4\xA0"
                                       "a",
                                       "ab",
                                       "c"};
    static const char *const merges[2] = {"\xC4\xA0 a", "a b"};
    int gpt2 = tok_model && strcmp(tok_model, "gpt2") == 0;
    av_gguf_writer_str(&g, "tokenizer.ggml.model", gpt2 ? "gpt2" : "llama", &err);
    av_gguf_writer_arr_str(&g, "tokenizer.ggml.tokens", gpt2 ? bpe : spm, V, &err);
    if (gpt2) {
        av_gguf_writer_arr_str(&g, "tokenizer.ggml.merges", merges, 2, &err);
        av_gguf_writer_u32(&g, "tokenizer.ggml.bos_token_id", 0, &err);
        av_gguf_writer_u32(&g, "tokenizer.ggml.eos_token_id", 1, &err);
    } else {
        float scores[V] = {0, 0, 0, -1, -2, -3, -4, -5};
        av_gguf_writer_arr_f32(&g, "tokenizer.ggml.scores", scores, V, &err);
    }
    if (add_bos >= 0) av_gguf_writer_bool(&g, "tokenizer.ggml.add_bos_token", add_bos, &err);
    if (add_eos >= 0) av_gguf_writer_bool(&g, "tokenizer.ggml.add_eos_token", add_eos, &err);
    if (c) add_extra(&g, c, zeros, &err);
    int64_t emb[2] = {V, D}, vec[1] = {D}, sq[2] = {D, D}, up[2] = {FF, D}, down[2] = {D, FF};
    av_gguf_writer_tensor(&g, "token_embd.weight", AV_DTYPE_F32, AV_DTYPE_F32, 2, emb, w, &err);
    av_gguf_writer_tensor(&g, "output_norm.weight", AV_DTYPE_F32, AV_DTYPE_F32, 1, vec, w, &err);
    static const char *const names[9] = {"attn_norm", "attn_q",   "attn_k",   "attn_v", "attn_output",
                                         "ffn_norm",  "ffn_gate", "ffn_down", "ffn_up"};
    const int64_t *shapes[9] = {vec, sq, sq, sq, sq, vec, up, down, up};
    for (int k = 0; k < 9; k++) {
        char name[64];
        snprintf(name, sizeof name, "blk.0.%s.weight", names[k]);
        av_gguf_writer_tensor(&g, name, AV_DTYPE_F32, AV_DTYPE_F32, shapes[k] == vec ? 1 : 2, shapes[k], w,
                              &err);
    }
    if (av_gguf_writer_save(&g, path, &err)) printf("# write_gguf: %s\n", err.msg);
    av_gguf_writer_free(&g);
}

static void test_gguf_keys_and_tensors_refused(void) {
    static const gguf_case cases[] = {
        {"llama.rope.scaling.type", 's', "yarn", 0, NULL, "llama.rope.scaling.type = 'yarn'"},
        {"llama.attention.value_length", 'u', NULL, 8, NULL, "value heads of 8"},
        {"llama.attention.causal", 'b', NULL, 0, NULL, "'llama.attention.causal' = 0 means non-causal"},
        {"llama.attention.sliding_window", 'u', NULL, 4096, NULL, "'llama.attention.sliding_window'"},
        {"llama.attention.clamp_kqv", 'f', NULL, 8, NULL, "'llama.attention.clamp_kqv'"},
        {"llama.attention.max_alibi_bias", 'f', NULL, 8, NULL, "ALiBi"},
        {"llama.attn_logit_softcapping", 'f', NULL, 50, NULL, "attention logit soft-capping"},
        {"llama.final_logit_softcapping", 'f', NULL, 30, NULL, "final logit soft-capping"},
        {"llama.logit_scale", 'f', NULL, 0.5, NULL, "'llama.logit_scale'"},
        {"llama.embedding_scale", 'f', NULL, 12, NULL, "'llama.embedding_scale'"},
        {"llama.residual_scale", 'f', NULL, 0.25, NULL, "'llama.residual_scale'"},
        {"llama.use_parallel_residual", 'b', NULL, 1, NULL, "'llama.use_parallel_residual'"},
        {"llama.expert_shared_count", 'u', NULL, 1, NULL, "shared experts"},
        {"llama.rope.freq_base_swa", 'f', NULL, 10000, NULL,
         "'llama.rope.freq_base_swa' = 10000 is not known"},
        {"llama.rope.dimension_sections", 'a', NULL, 0, NULL, "'llama.rope.dimension_sections' = (an array)"},
        {"llama.rope.scaling.yarn_log_multiplier", 'f', NULL, 0.1, NULL, "is not known to attnviz"},
        /* two applied names joined by a space are no applied key (the applied list is space-separated) */
        {"llama.context_length embedding_length", 'u', NULL, 16, NULL, "is not known to attnviz"},
        {NULL, 0, NULL, 0, "blk.0.attn_q_norm.weight", "query normalization"},
        {NULL, 0, NULL, 0, "blk.1.attn_norm.weight", "'blk.1.attn_norm.weight' is not used"},
        {NULL, 0, NULL, 0, "blk.00.attn_norm.weight", "'blk.00.attn_norm.weight' is not used"},
        {NULL, 0, NULL, 0, "output_norm.bias", "LayerNorm biases"},
        /* neutral values load */
        {"llama.rope.scaling.type", 's', "none", 0, NULL, NULL},
        {"llama.rope.scaling.factor", 'f', NULL, 1, NULL, NULL},
        {"llama.attention.key_length", 'u', NULL, 4, NULL, NULL},
        {"llama.attention.causal", 'b', NULL, 1, NULL, NULL},
        {"llama.expert_count", 'u', NULL, 0, NULL, NULL},
        {"llama.rope.scaling.original_context_length", 'u', NULL, 8192, NULL, NULL},
        {"general.some_note", 's', "anything", 0, NULL, NULL},
        /* applied (src/model/arch.h; their math is tested in test_decoders.c and test_llamacpp_arch.sh):
         * linear RoPE scaling, its factor alone (llama.cpp's default type), the attention factor. Also
         * applied, tested there: key_length, expert_count, rope_freqs.weight, q/k/v/o biases. */
        {"llama.rope.scaling.type", 's', "linear", 0, NULL, NULL},
        {"llama.rope.scaling.factor", 'f', NULL, 8, NULL, NULL},
        {"llama.rope.scaling.attn_factor", 'f', NULL, 2, NULL, NULL},
        {"llama.rope.scale_linear", 'f', NULL, 2, NULL, NULL},
    };
    char path[512];
    snprintf(path, sizeof path, "%s/case.gguf", h_tmpdir());
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const gguf_case *c = &cases[i];
        write_gguf(path, c, NULL, -1, -1);
        av_model *m = NULL;
        av_err err = {{0}};
        int rc = av_model_load(path, NULL, &m, &err);
        const char *what = c->key ? c->key : c->tensor;
        if (getenv("VERBOSE")) printf("# %s: %s\n", what, rc ? err.msg : "loaded");
        if (c->expect)
            CHECKF(rc == -1 && strstr(err.msg, c->expect) && strstr(err.msg, "refused"), "%s: %s", what,
                   rc ? err.msg : "loaded");
        else
            CHECKF(rc == 0, "%s (neutral): %s", what, err.msg);
        av_model_free(m);
    }
}

/* Ids of "ab" through a model's tokenizer with special tokens. */
static int encode_ab(const char *path, int32_t *out, int cap) {
    av_model *m = NULL;
    av_err err = {{0}};
    if (av_model_load(path, NULL, &m, &err)) {
        printf("# %s\n", err.msg);
        return -1;
    }
    int32_t *ids;
    size_t n = 0;
    int rc = av_tokenizer_encode(av_model_tokenizer(m), "ab", 2, 1, &ids, &n, &err);
    for (size_t i = 0; rc == 0 && i < n && (int)i < cap; i++)
        out[i] = ids[i];
    if (rc == 0) free(ids);
    av_model_free(m);
    return rc ? -1 : (int)n;
}

/* Llama 3 files are byte-level BPE with tokenizer.ggml.add_bos_token: their prompts start with BOS (issue
 * #19); a SentencePiece file with add_bos_token false gets none; add_eos_token appends EOS. */
static void test_gguf_add_bos_add_eos(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/tok.gguf", h_tmpdir());
    int32_t ids[16];
    write_gguf(path, NULL, "gpt2", -1, -1);
    int n = encode_ab(path, ids, 16);
    CHECKF(n == 1 && ids[0] == 6, "gpt2 without flags: %d ids, first %d", n, n > 0 ? ids[0] : -1);
    write_gguf(path, NULL, "gpt2", 1, -1);
    n = encode_ab(path, ids, 16);
    CHECKF(n == 2 && ids[0] == 0 && ids[1] == 6, "gpt2 add_bos_token: %d ids, first %d", n,
           n > 0 ? ids[0] : -1);
    write_gguf(path, NULL, "gpt2", 1, 1);
    n = encode_ab(path, ids, 16);
    CHECKF(n == 3 && ids[0] == 0 && ids[2] == 1, "gpt2 add_bos + add_eos: %d ids", n);
    write_gguf(path, NULL, "llama", -1, -1);
    n = encode_ab(path, ids, 16);
    CHECKF(n >= 2 && ids[0] == 1, "llama without flags: %d ids, first %d", n, n > 0 ? ids[0] : -1);
    int n_default = n;
    write_gguf(path, NULL, "llama", 0, -1);
    n = encode_ab(path, ids, 16);
    CHECKF(n == n_default - 1 && ids[0] != 1, "llama add_bos_token false: %d ids, first %d", n,
           n > 0 ? ids[0] : -1);
    write_gguf(path, NULL, "llama", -1, 1);
    n = encode_ab(path, ids, 16);
    CHECKF(n == n_default + 1 && ids[0] == 1 && ids[n - 1] == 2, "llama add_eos_token: %d ids", n);
}

/* ---- Hugging Face ---- */

static int copy_file(const char *src, const char *dst) {
    char *data;
    size_t n;
    av_err err;
    if (av_file_read_all(src, 64u << 20, &data, &n, &err)) return -1;
    FILE *fp = fopen(dst, "wb");
    int rc = fp && fwrite(data, 1, n, fp) == n ? 0 : -1;
    if (fp) fclose(fp);
    free(data);
    return rc;
}

/* A copy of a fixture directory whose config.json gets edit applied (a JSON object merged over it) and whose
 * weights lose the tensor drop and, when extra is given, get one more tensor of that name. */
static const char *hf_case(const char *fixture, const char *edit, const char *extra, const char *drop) {
    static char dir[512];
    char src[512], dst[600];
    snprintf(dir, sizeof dir, "%s/hf_%s", h_tmpdir(), fixture);
    mkdir(dir, 0755);
    snprintf(src, sizeof src, TINY "%s/config.json", fixture);
    json_t *cfg = json_load_file(src, 0, NULL), *e = json_loads(edit, 0, NULL);
    const char *k;
    json_t *v;
    json_object_foreach(e, k, v) json_object_set(cfg, k, v);
    snprintf(dst, sizeof dst, "%s/config.json", dir);
    json_dump_file(cfg, dst, 0);
    json_decref(cfg);
    json_decref(e);
    snprintf(src, sizeof src, TINY "%s/model.safetensors", fixture);
    snprintf(dst, sizeof dst, "%s/model.safetensors", dir);
    av_safetensors st;
    av_err err = {{0}};
    if (av_st_open(src, &st, &err)) return dir;
    av_st_writer w;
    av_st_writer_init(&w);
    for (int i = 0; i < st.n; i++) {
        const av_tensor *t = &st.entries[i].t;
        if (drop && strcmp(st.entries[i].name, drop) == 0) continue;
        av_st_writer_add(&w, st.entries[i].name, t->dtype, t->dtype, t->ndim, t->shape, t->data, &err);
        if (extra && i == 0) /* a copy of the first tensor under another name */
            av_st_writer_add(&w, extra, t->dtype, t->dtype, t->ndim, t->shape, t->data, &err);
    }
    av_st_writer_save(&w, dst, &err);
    av_st_writer_free(&w);
    av_st_close(&st);
    return dir;
}

static void test_hf_keys_and_tensors_refused(void) {
    static const struct {
        const char *fixture, *edit, *extra, *drop, *expect; /* expect NULL: loads */
    } cases[] = {
        {"gpt2", "{\"rope_scaling\": {\"type\": \"linear\", \"factor\": 2.0}}", NULL, NULL,
         "\"rope_scaling\""},
        {"mistral", "{\"rope_scaling\": {\"rope_type\": \"dynamic\", \"factor\": 8.0}}", NULL, NULL,
         "type 'dynamic' is not implemented"},
        {"qwen2", "{\"rope_scaling\": {\"type\": \"yarn\", \"factor\": 4.0}}", NULL, NULL,
         "\"rope_scaling\""},
        {"mistral", "{\"attn_logit_softcapping\": 50.0}", NULL, NULL, "\"attn_logit_softcapping\": 50"},
        {"mistral", "{\"final_logit_softcapping\": 30.0}", NULL, NULL, "final logit soft-capping"},
        {"mistral", "{\"query_pre_attn_scalar\": 256}", NULL, NULL, "\"query_pre_attn_scalar\""},
        {"mistral", "{\"partial_rotary_factor\": 0.5}", NULL, NULL, "partial rotary"},
        {"qwen2", "{\"mlp_bias\": true}", NULL, NULL, "\"mlp_bias\""},
        {"mistral", "{\"attention_bias\": true}", NULL, NULL, "\"attention_bias\""},
        {"mistral", "{\"num_local_experts\": 8}", NULL, NULL, "mixture of experts"},
        {"mistral", "{\"layer_types\": [\"full_attention\", \"full_attention\"]}", NULL, NULL,
         "\"layer_types\"[0]"},
        {"mistral", "{\"tie_word_embeddings\": true}", NULL, NULL,
         "lm_head.weight differs from the embedding"},
        {"mistral", "{}", NULL, "lm_head.weight", "no lm_head.weight"},
        {"mistral", "{}", "model.layers.0.self_attn.rotary_emb.inv_freq", NULL,
         "'model.layers.0.self_attn.rotary_emb"},
        {"mistral", "{}", "model.layers.0.self_attn.q_norm.weight", NULL, "not used by attnviz's mistral"},
        {"bert", "{\"is_decoder\": true}", NULL, NULL, "\"is_decoder\""},
        {"roberta", "{\"add_cross_attention\": true}", NULL, NULL, "\"add_cross_attention\""},
        {"bart", "{\"add_final_layer_norm\": true}", NULL, NULL, "\"add_final_layer_norm\""},
        {"bert", "{}", "bert.encoder.layer.0.attention.self.distance_embedding.weight", NULL, "not used"},
        {"vit", "{}", "vit.encoder.layer.0.layernorm_extra.weight", NULL, "not used by attnviz's vit"},
        /* neutral values load */
        {"mistral", "{\"rope_scaling\": null, \"attn_logit_softcapping\": null}", NULL, NULL, NULL},
        {"mistral", "{\"rope_scaling\": {\"rope_type\": \"default\"}, \"hidden_act\": \"silu\"}", NULL, NULL,
         NULL},
        {"mistral", "{\"layer_types\": [\"sliding_attention\", \"sliding_attention\"], \"mlp_bias\": false}",
         NULL, NULL, NULL},
        {"bert", "{\"is_decoder\": false}", "bert.embeddings.position_ids", NULL, NULL},
        /* applied by the decoder families (src/model/arch.h, tested in test_decoders.c) */
        {"mistral", "{\"rope_scaling\": {\"type\": \"linear\", \"factor\": 2.0}}", NULL, NULL, NULL},
        {"mistral", "{\"hidden_act\": \"gelu\"}", NULL, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *dir = hf_case(cases[i].fixture, cases[i].edit, cases[i].extra, cases[i].drop);
        av_model *m = NULL;
        av_err err = {{0}};
        int rc = av_model_load(dir, NULL, &m, &err);
        if (getenv("VERBOSE"))
            printf("# %s %s: %s\n", cases[i].fixture, cases[i].edit, rc ? err.msg : "loaded");
        if (cases[i].expect)
            CHECKF(rc == -1 && strstr(err.msg, cases[i].expect) && strstr(err.msg, "refused"), "%s %s: %s",
                   cases[i].fixture, cases[i].edit, rc ? err.msg : "loaded");
        else
            CHECKF(rc == 0, "%s %s (neutral): %s", cases[i].fixture, cases[i].edit, err.msg);
        av_model_free(m);
    }
}

/* GPT-2 (tied by default) with a stored lm_head that is not the embedding: refused; untied: it loads. */
static void test_tied_head_mismatch(void) {
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/gpt2_head", h_tmpdir());
    mkdir(dir, 0755);
    av_st_writer w;
    av_err err = {{0}};
    av_st_writer_init(&w);
    av_safetensors st[2];
    static const char *const shards[2] = {TINY "gpt2/model-00001-of-00002.safetensors",
                                          TINY "gpt2/model-00002-of-00002.safetensors"};
    float *head = NULL;
    for (int s = 0; s < 2; s++) {
        REQUIREF(av_st_open(shards[s], &st[s], &err) == 0, "%s", err.msg);
        for (int i = 0; i < st[s].n; i++) {
            const av_tensor *t = &st[s].entries[i].t;
            av_st_writer_add(&w, st[s].entries[i].name, t->dtype, t->dtype, t->ndim, t->shape, t->data, &err);
            if (strcmp(st[s].entries[i].name, "transformer.wte.weight") == 0 && t->dtype == AV_DTYPE_F32) {
                head = malloc(t->nbytes);
                memcpy(head, t->data, t->nbytes);
                head[3] += 1.0f;
                av_st_writer_add(&w, "lm_head.weight", t->dtype, t->dtype, t->ndim, t->shape, head, &err);
            }
        }
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    int saved = av_st_writer_save(&w, path, &err);
    av_st_writer_free(&w);
    free(head);
    av_st_close(&st[0]);
    av_st_close(&st[1]);
    REQUIREF(head && saved == 0, "%s", err.msg);
    for (int tied = 1; tied >= 0; tied--) {
        json_t *cfg = json_load_file(TINY "gpt2/config.json", 0, NULL);
        json_object_set_new(cfg, "tie_word_embeddings", json_boolean(tied));
        snprintf(path, sizeof path, "%s/config.json", dir);
        json_dump_file(cfg, path, 0);
        json_decref(cfg);
        av_model *m = NULL;
        int rc = av_model_load(dir, NULL, &m, &err);
        if (tied)
            CHECKF(rc == -1 && strstr(err.msg, "lm_head.weight differs from the embedding it is tied to"),
                   "%s", rc ? err.msg : "loaded");
        else
            CHECKF(rc == 0, "untied: %s", err.msg);
        av_model_free(m);
    }
}

/* Marian's positions are computed as sinusoids: a stored table with those values loads, another is refused.
 */
static void write_marian(const char *dir, const float *table, const int64_t *shape) {
    av_safetensors st;
    av_err err = {{0}};
    char dst[600];
    mkdir(dir, 0755);
    snprintf(dst, sizeof dst, "%s/config.json", dir);
    copy_file(TINY "marian/config.json", dst);
    if (av_st_open(TINY "marian/model.safetensors", &st, &err)) return;
    av_st_writer w;
    av_st_writer_init(&w);
    for (int i = 0; i < st.n; i++) {
        const av_tensor *t = &st.entries[i].t;
        av_st_writer_add(&w, st.entries[i].name, t->dtype, t->dtype, t->ndim, t->shape, t->data, &err);
    }
    av_st_writer_add(&w, "model.encoder.embed_positions.weight", AV_DTYPE_F32, AV_DTYPE_F32, 2, shape, table,
                     &err);
    snprintf(dst, sizeof dst, "%s/model.safetensors", dir);
    av_st_writer_save(&w, dst, &err);
    av_st_writer_free(&w);
    av_st_close(&st);
}

static void test_marian_positions_checked(void) {
    json_t *cfg = json_load_file(TINY "marian/config.json", 0, NULL);
    int64_t shape[2] = {json_integer_value(json_object_get(cfg, "max_position_embeddings")),
                        json_integer_value(json_object_get(cfg, "d_model"))};
    json_decref(cfg);
    REQUIRE(shape[0] > 1 && shape[1] > 0 && shape[0] * shape[1] < (1 << 20));
    float *table = malloc(sizeof(float) * (size_t)(shape[0] * shape[1])); /* (positions, d_model) */
    int64_t half = shape[1] / 2;
    for (int64_t p = 0; p < shape[0]; p++) /* MarianSinusoidalPositionalEmbedding: [sin | cos] halves */
        for (int64_t k = 0; k < half; k++) {
            double a = (double)p / pow(10000.0, 2.0 * (double)k / (double)shape[1]);
            table[p * shape[1] + k] = (float)sin(a);
            table[p * shape[1] + half + k] = (float)cos(a);
        }
    char dir[512];
    snprintf(dir, sizeof dir, "%s/marian_pos", h_tmpdir());
    av_model *m = NULL;
    av_err err = {{0}};
    write_marian(dir, table, shape);
    CHECKF(av_model_load(dir, NULL, &m, &err) == 0, "the sinusoidal table: %s", err.msg);
    av_model_free(m);
    m = NULL;
    table[shape[1] + 1] += 0.5f; /* row 1 */
    write_marian(dir, table, shape);
    CHECKF(av_model_load(dir, NULL, &m, &err) == -1 && strstr(err.msg, "row 1 is not the sinusoidal table"),
           "%s", m ? "loaded" : err.msg);
    av_model_free(m);
    free(table);
}

/* tokenizer_config.json's add_bos_token / add_eos_token decide the special tokens (Llama's rule). */
static void test_tokenizer_config_flags(void) {
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/tokcfg", h_tmpdir());
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/tokenizer.bin", dir);
    REQUIRE(copy_file("models/induction/tokenizer.bin", path) == 0);
    static const struct {
        const char *cfg;
        int bos_first, eos_last, extra; /* extra: ids beyond the text's own */
    } cases[] = {
        {NULL, 1, 0, 1},
        {"{\"add_bos_token\": false}", 0, 0, 0},
        {"{\"add_bos_token\": true, \"add_eos_token\": true}", 1, 1, 2},
        {"{\"add_eos_token\": true}", 1, 1, 2},
        {"{\"add_bos_token\": null, \"chat_template\": \"x\"}", 1, 0, 1},
    };
    int n_plain = -1;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
        unlink(path);
        if (cases[i].cfg) {
            FILE *fp = fopen(path, "w");
            fputs(cases[i].cfg, fp);
            fclose(fp);
        }
        av_tokenizer *t = NULL;
        av_err err = {{0}};
        REQUIREF(av_tokenizer_load(dir, &t, &err) == 0, "%s", err.msg);
        int32_t *ids;
        size_t n, n0;
        REQUIRE(av_tokenizer_encode(t, "abc", 3, 0, &ids, &n0, &err) == 0);
        free(ids);
        if (n_plain < 0) n_plain = (int)n0;
        CHECKF((int)n0 == n_plain, "%s: without special tokens %zu ids", cases[i].cfg, n0);
        REQUIRE(av_tokenizer_encode(t, "abc", 3, 1, &ids, &n, &err) == 0);
        CHECKF((int)n == n_plain + cases[i].extra && (ids[0] == av_tokenizer_bos(t)) == cases[i].bos_first &&
                   (ids[n - 1] == av_tokenizer_eos(t)) == cases[i].eos_last,
               "%s: %zu ids, first %d, last %d", cases[i].cfg ? cases[i].cfg : "(none)", n, ids[0],
               ids[n - 1]);
        free(ids);
        av_tokenizer_free(t);
    }
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    FILE *fp = fopen(path, "w");
    fputs("{\"add_bos_token\": \"yes\"}", fp);
    fclose(fp);
    av_tokenizer *t = NULL;
    av_err err = {{0}};
    CHECKF(av_tokenizer_load(dir, &t, &err) == -1 && strstr(err.msg, "must be true or false"), "%s", err.msg);
    av_tokenizer_free(t);
}

int main(void) {
    RUN(test_gguf_keys_and_tensors_refused);
    RUN(test_gguf_add_bos_add_eos);
    RUN(test_hf_keys_and_tensors_refused);
    RUN(test_tied_head_mismatch);
    RUN(test_marian_positions_checked);
    RUN(test_tokenizer_config_flags);
    return h_exit_code();
}
