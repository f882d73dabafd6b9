/* The decoder families of src/model/arch.h as Hugging Face directories against independent PyTorch references
 * (scripts/make_tiny_decoders.py, tests/fixtures/decoders/): Llama 3.1 RoPE scaling and attention biases,
 * Qwen3 q/k norms, Qwen3-MoE without renormalized expert weights, Mixtral with a window, Gemma in BF16 (its
 * embedding scale rounded to bfloat16), Gemma 2 soft-caps and scale, Gemma 3's local/global layers, Phi-3's
 * fused matrices, partial rotary and long factors, Mistral's window, Qwen2's biases and windowed layers.
 * Logits and every attention layer within 1e-4, the KV cache in chunks, each model written by `convert` as
 * GGUF and as Hugging Face and read back (same logits), and the refusals: config.json keys and GGUF keys that
 * change the math but are not applied, unused tensors, and conversions that would change the results. (GGUF
 * files against llama.cpp: tests/cli/test_llamacpp_arch.sh.)
 */
#define TINY_DIR "tests/fixtures/decoders/"
#define TOL 1e-4f
#include "io/gguf.h"
#include "kernels/kernels.h"
#include "model/export.h"
#include "tiny_ref.h"

static const char *const names[] = {"llama3", "qwen3",  "qwen3_moe", "mixtral", "gemma",
                                    "gemma2", "gemma3", "phi3",      "mistral", "qwen2"};
static const char *const archs[] = {"llama",  "qwen3",  "qwen3moe", "mixtral", "gemma",
                                    "gemma2", "gemma3", "phi3",     "mistral", "qwen2"};
enum { N_MODELS = sizeof names / sizeof names[0] };

static void test_every_family_matches_pytorch(void) {
    for (int i = 0; i < N_MODELS; i++)
        check_token_model(names[i], archs[i]);
}

static void test_kv_cache_chunks_equal_one_pass(void) {
    for (int i = 0; i < N_MODELS; i++)
        check_chunks(names[i]);
}

/* ---- convert: each family written as GGUF (F32, Q8_0) and as Hugging Face, read back ---- */

static int logits_of(const char *path, const int32_t *ids, int n, float *out, av_err *err) {
    av_model *m = NULL;
    av_model_params mp = av_model_default_params();
    mp.n_threads = 2;
    av_state *s = NULL;
    av_pass p = {.logits = out, .logits_all = 1};
    int rc = av_model_load(path, &mp, &m, err) || av_state_new(m, 0, n, 2, &s, err) ||
                     av_forward_ids(m, s, ids, n, 0, &p, err)
                 ? -1
                 : 0;
    av_state_free(s);
    av_model_free(m);
    return rc;
}

/* Logits of `to` (a model written from `from` as type) against those of `from`: their max |difference|
 * relative to the largest |logit|; -1 when something failed (message in err). rep: the export's report. */
static float round_trip(const char *from, const char *to, int gguf, av_dtype type, av_export_report *rep,
                        av_err *err) {
    int32_t ids[12] = {1, 14, 7, 40, 22, 3, 3, 9, 31, 17, 5, 28};
    float a[12 * 48], b[12 * 48];
    av_model *m = NULL;
    av_export_params ep = av_export_default_params();
    ep.dtype = type;
    ep.force = 1;
    if (av_model_load(from, NULL, &m, err)) return -1;
    int rc = gguf ? av_export_gguf(m, to, &ep, rep, err) : av_export_hf(m, to, &ep, rep, err);
    av_model_free(m);
    if (rc || logits_of(from, ids, 12, a, err) || logits_of(to, ids, 12, b, err)) return -1;
    float scale = 0;
    for (int i = 0; i < 12 * 48; i++)
        scale = fabsf(a[i]) > scale ? fabsf(a[i]) : scale;
    return h_max_abs_diff(a, b, 12 * 48) / scale;
}

/* Every family through convert: HF -> HF as stored (the same logits; Gemma in F32 with a note: its embedding
 * scale is rounded to the type), HF -> GGUF F32 (Gemma: within that rounding, which GGUF does not keep),
 * GGUF -> HF, HF -> GGUF Q8_0 (within its quantization). Families with what GGUF cannot state (tested in
 * test_convert_refuses_what_the_target_cannot_state) go to GGUF as a variant without it. The GGUF files stay
 * in the scratch directory for test_unapplied_gguf_keys_and_tensors_are_refused. */
static void test_convert_round_trips(void) {
    static const struct {
        const char *name, *key; /* key, value: the variant written to GGUF, or NULL */
        const char *value;      /* JSON */
        av_dtype stored;
        float tol; /* HF -> GGUF, relative to the largest |logit|; 4e-6 for F32 is float rounding: GGUF's q/k
                      row order and rope_freqs change the order of the float operations */
    } cases[] = {
        {"llama3", NULL, NULL, AV_DTYPE_F32, 4e-6f},
        {"qwen3", NULL, NULL, AV_DTYPE_F32, 4e-6f},
        {"qwen3_moe", "norm_topk_prob", "true", AV_DTYPE_F32, 4e-6f},
        {"mixtral", "sliding_window", "null", AV_DTYPE_F32, 4e-6f},
        {"gemma", NULL, NULL, AV_DTYPE_BF16, 3e-3f},
        {"gemma2", "query_pre_attn_scalar", "8", AV_DTYPE_F32, 4e-6f},
        {"gemma3", NULL, NULL, AV_DTYPE_F32, 4e-6f},
        {"phi3", "sliding_window", "null", AV_DTYPE_F32, 4e-6f},
        {"mistral", "sliding_window", "null", AV_DTYPE_F32, 4e-6f},
        {"qwen2", "use_sliding_window", "false", AV_DTYPE_F32, 4e-6f},
    };
    for (int i = 0; i < N_MODELS; i++) {
        char dir[600], gguf[512], q8[512], back[512], hf[512];
        av_err err = {{0}};
        av_export_report rep;
        const char *name = cases[i].name;
        snprintf(dir, sizeof dir, TINY_DIR "%s", name);
        snprintf(hf, sizeof hf, "%s/%s-hf", h_tmpdir(), name);
        float d_hf = round_trip(dir, hf, 0, cases[i].stored, &rep, &err);
        CHECKF(d_hf == 0 && !rep.note[0], "%s -> HF %s: %s %g %s", name, av_dtype_name(cases[i].stored),
               err.msg, d_hf, rep.note);
        float d_f32 = round_trip(dir, hf, 0, AV_DTYPE_F32, &rep, &err);
        CHECKF(d_f32 >= 0 && d_f32 <= cases[i].tol && (cases[i].stored != AV_DTYPE_F32) == !!rep.note[0],
               "%s -> HF F32: %s %g, note '%s'", name, err.msg, d_f32, rep.note);
        if (cases[i].key) {
            const char *v = variant(name, cases[i].key, json_loads(cases[i].value, JSON_DECODE_ANY, NULL));
            REQUIREF(v, "cannot build a variant of %s", name);
            snprintf(dir, sizeof dir, "%s", v);
        }
        snprintf(gguf, sizeof gguf, "%s/%s.gguf", h_tmpdir(), name);
        snprintf(q8, sizeof q8, "%s/%s-q8.gguf", h_tmpdir(), name);
        snprintf(back, sizeof back, "%s/%s-back", h_tmpdir(), name);
        float d_gguf = round_trip(dir, gguf, 1, AV_DTYPE_F32, &rep, &err);
        CHECKF(d_gguf >= 0 && d_gguf <= cases[i].tol, "%s -> GGUF F32: %s %g", name, err.msg, d_gguf);
        float d_back = round_trip(gguf, back, 0, AV_DTYPE_F32, &rep, &err);
        CHECKF(d_back >= 0 && d_back <= 4e-6f, "%s -> GGUF -> HF F32: %s %g", name, err.msg, d_back);
        float d_q8 = round_trip(dir, q8, 1, AV_DTYPE_Q8_0, &rep, &err); /* rows of 16 values stay F16 */
        CHECKF(d_q8 >= 0 && d_q8 <= 0.2f, "%s -> GGUF Q8_0: %s %g", name, err.msg, d_q8);
        printf(
            "# %-10s HF -> HF %.2g (F32 %.2g), HF%s -> GGUF F32 %.2g, GGUF -> HF %.2g, HF -> GGUF Q8_0 %.2g "
            "(relative)\n",
            name, d_hf, d_f32, cases[i].key ? " variant" : "", d_gguf, d_back, d_q8);
    }
}

static void expect_convert_refused(const char *name, int gguf, const char *needle) {
    char dir[256], out[512];
    av_err err = {{0}};
    av_export_report rep;
    snprintf(dir, sizeof dir, TINY_DIR "%s", name);
    snprintf(out, sizeof out, "%s/refused-%s%s", h_tmpdir(), name, gguf ? ".gguf" : "");
    CHECKF(round_trip(dir, out, gguf, AV_DTYPE_F32, &rep, &err) < 0 && strstr(err.msg, needle),
           "%s: converted, or message '%s' lacks '%s'", name, err.msg, needle);
    CHECKF(access(out, F_OK) != 0, "%s: a refused conversion left %s", name, out);
}

static void test_convert_refuses_what_the_target_cannot_state(void) {
    expect_convert_refused("mixtral", 1, "sliding window (4) would be lost: llama.cpp's llama has none");
    expect_convert_refused("phi3", 1, "sliding window (6) would be lost: llama.cpp's phi3 does not apply it");
    expect_convert_refused("qwen2", 1, "sliding window (4) would be lost: llama.cpp's qwen2 has none");
    expect_convert_refused("qwen3_moe", 1, "not renormalized: llama.cpp always renormalizes");
    expect_convert_refused("gemma2", 1, "attention scale of 0.288675 where GGUF gemma2 uses 0.353553");
    expect_convert_refused("../tiny/gpt2", 1, "converting gpt2 models is not supported");
}

/* ---- config.json keys that change the math ---- */

static void expect_refused(const char *name, const char *key, json_t *value, const char *needle) {
    const char *dir = variant(name, key, value);
    REQUIREF(dir, "cannot build a variant of %s", name);
    av_model *m = NULL;
    av_err err = {{0}};
    CHECKF(av_model_load(dir, NULL, &m, &err) == -1 && m == NULL, "%s with %s changed: loaded", name, key);
    CHECKF(strstr(err.msg, needle) != NULL && !strchr(err.msg, '\n'), "%s with %s: message '%s' lacks '%s'",
           name, key, err.msg, needle);
    av_model_free(m);
}

static void test_unapplied_config_keys_are_refused(void) {
    expect_refused("llama3", "rope_scaling", json_pack("{s:s, s:f}", "rope_type", "yarn", "factor", 4.0),
                   "type 'yarn' is not implemented");
    expect_refused("llama3", "rope_scaling", json_pack("{s:s, s:f}", "type", "dynamic", "factor", 2.0),
                   "'dynamic'");
    expect_refused("llama3", "partial_rotary_factor", json_real(0.5), "\"partial_rotary_factor\": 0.5");
    expect_refused("qwen3", "attn_logit_softcapping", json_real(30), "attention logit soft-capping");
    expect_refused("qwen3", "logit_scale", json_real(2), "scaled logits");
    expect_refused("qwen3", "layer_norm_eps", json_real(1e-5), "LayerNorm instead of RMSNorm");
    expect_refused("mixtral", "num_experts", json_integer(8), "a mixture of experts");
    expect_refused("qwen3_moe", "mlp_only_layers", json_pack("[i]", 1), "make some layers dense");
    expect_refused("qwen3_moe", "decoder_sparse_step", json_integer(2), "make some layers dense");
    expect_refused("gemma2", "layer_types",
                   json_pack("[s,s,s]", "sliding_attention", "chunked_attention", "full_attention"),
                   "must be sliding_attention or full_attention");
    expect_refused(
        "phi3", "rope_scaling",
        json_pack("{s:s, s:[f], s:[f]}", "type", "longrope", "short_factor", 1.0, "long_factor", 2.0),
        "must list 2 numbers");
    expect_refused("llama3", "tie_word_embeddings", json_true(), "lm_head.weight differs from the embedding");
    expect_refused("qwen3", "tie_word_embeddings", json_false(), "there is no lm_head.weight");
    expect_refused("llama3", "attention_bias", json_false(), "is not used by attnviz's llama");
    expect_refused("gemma3", "use_bidirectional_attention", json_true(), "bidirectional");
    expect_refused("phi3", "hidden_act", json_string("cubic"), "not supported");
}

/* ---- GGUF keys and tensors ---- */

/* path rewritten with key (a u32 or f32) added or replaced, or with an extra tensor: out. */
static int gguf_variant(const char *path, const char *key, double value, int is_f32, const char *extra,
                        const char *out, av_err *err) {
    av_gguf g;
    av_gguf_writer w;
    if (av_gguf_open(path, &g, err)) return -1;
    av_gguf_writer_init(&w);
    int rc = 0;
    for (int64_t i = 0; !rc && i < g.n_kv; i++) {
        const av_gguf_kv *kv = &g.kv[i];
        const av_gguf_value *v = &kv->v;
        if (key && strcmp(kv->key, key) == 0) continue;
        if (v->type == AV_GGUF_STRING) {
            char s[512];
            snprintf(s, sizeof s, "%.*s", (int)v->str_len, v->str);
            rc = av_gguf_writer_str(&w, kv->key, s, err);
        } else if (v->type == AV_GGUF_F32) {
            rc = av_gguf_writer_f32(&w, kv->key, (float)v->num.f, err);
        } else if (v->type == AV_GGUF_U32) {
            rc = av_gguf_writer_u32(&w, kv->key, (uint32_t)v->num.u, err);
        } /* the tokenizer's arrays and flags are left out: these files are run from ids */
    }
    if (!rc && key)
        rc = is_f32 ? av_gguf_writer_f32(&w, key, (float)value, err)
                    : av_gguf_writer_u32(&w, key, (uint32_t)value, err);
    for (int64_t i = 0; !rc && i < g.n_tensors; i++) {
        const av_gguf_tensor_info *ti = &g.tensors[i];
        rc = av_gguf_writer_tensor(&w, ti->name, ti->t.dtype, ti->t.dtype, ti->t.ndim, ti->t.shape,
                                   ti->t.data, err);
        if (!rc && extra && i == 0)
            rc = av_gguf_writer_tensor(&w, extra, ti->t.dtype, ti->t.dtype, ti->t.ndim, ti->t.shape,
                                       ti->t.data, err);
    }
    rc = rc || av_gguf_writer_save(&w, out, err);
    av_gguf_writer_free(&w);
    av_gguf_close(&g);
    return rc ? -1 : 0;
}

static void expect_gguf(const char *name, const char *key, double value, int is_f32, const char *extra,
                        const char *needle) {
    char src[512], out[512];
    av_err err = {{0}};
    snprintf(src, sizeof src, "%s/%s.gguf", h_tmpdir(), name);
    snprintf(out, sizeof out, "%s/%s-variant.gguf", h_tmpdir(), name);
    REQUIREF(gguf_variant(src, key, value, is_f32, extra, out, &err) == 0, "%s: %s", name, err.msg);
    av_model *m = NULL;
    int rc = av_model_load(out, NULL, &m, &err);
    if (!needle) {
        CHECKF(rc == 0, "%s with %s: %s", name, key ? key : extra, err.msg);
    } else {
        CHECKF(rc == -1 && strstr(err.msg, needle), "%s with %s: %s, message '%s' lacks '%s'", name,
               key ? key : extra, rc ? "refused" : "loaded", err.msg, needle);
    }
    av_model_free(m);
}

static void test_unapplied_gguf_keys_and_tensors_are_refused(void) {
    /* the GGUF files of test_convert_round_trips */
    expect_gguf("qwen3", "qwen3.attention.sliding_window", 4, 0, NULL, "means sliding-window attention");
    expect_gguf("qwen3", "qwen3.attention.sliding_window", 0, 0, NULL, NULL); /* neutral */
    expect_gguf("llama3", "llama.logit_scale", 2, 1, NULL, "scaled logits");
    expect_gguf("llama3", "llama.rope.scaling.yarn_log_multiplier", 0.1, 1, NULL,
                "not known to attnviz's llama");
    expect_gguf("gemma3", "gemma3.attn_logit_softcapping", 50, 1, NULL, "attention logit soft-capping");
    expect_gguf("phi3", "phi3.attention.sliding_window", 4, 0, NULL,
                NULL); /* stated, not applied: llama.cpp */
    expect_gguf("qwen3_moe", "qwen3moe.expert_used_count", 5, 0, NULL, "5 used per token");
    expect_gguf("qwen3_moe", "qwen3moe.expert_shared_count", 1, 0, NULL, "shared experts");
    expect_gguf("gemma2", NULL, 0, 0, "blk.0.attn_q_norm.weight",
                "query normalization, which attnviz's gemma2 does not apply");
    expect_gguf("qwen3", "qwen3.attention.key_length", 4, 0, NULL, "is out of range (0 to 4)");
}

int main(void) {
    RUN(test_every_family_matches_pytorch);
    RUN(test_kv_cache_chunks_equal_one_pass);
    RUN(test_convert_round_trips);
    RUN(test_convert_refuses_what_the_target_cannot_state);
    RUN(test_unapplied_config_keys_are_refused);
    RUN(test_unapplied_gguf_keys_and_tensors_are_refused);
    return h_exit_code();
}
