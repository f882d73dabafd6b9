/* End-to-end tests of the GGUF and Hugging Face loaders and writers on the real stories260K model: convert
 * the llama2.c checkpoint to every format and type, load each back, run the same sentence and compare every
 * attention tensor and token id with the llama2.c run. Also: GGUF tokenizer round trip, tensor layout (ggml
 * ne order), HF -> GGUF (un-permuting q/k back), output refusal/--force, and the `attnviz convert` command.
 */
#include "harness.h"

#include "io/gguf.h"
#include "kernels/kernels.h"
#include "model/export.h"
#include "tok/tok.h"

#include <sys/stat.h>
#include <sys/wait.h>

static const char *SENTENCE = "Once upon a time, Lily saw a big red ball.";

/* Tolerances on attention probabilities against the llama2.c run of the same weights.
 * HF F32: rotate-half stores each RoPE pair at (i, i + 4) instead of (2i, 2i + 1), so q.k sums its 8 products
 * in another order; measured 1.19e-6 (-O2) and 2.24e-6 (the -O1 sanitizer build, scalar exp), hence 5e-6. A
 * wrong permutation or RoPE pairing gives differences of order 1e-1. Q8_0: 8-bit weights on a 64-wide model
 * move the sharpest probabilities by up to ~0.03 (measured 0.029; 0.025 with an F16 embedding), so 5e-2; the
 * weights themselves are checked to within half a quantization step. */
#define HF_F32_TOL 5e-6
#define HALF_TOL 2e-2
#define Q8_TOL 5e-2

static av_model *g_ref;   /* llama2.c model + tok512.bin */
static av_trace *g_trace; /* its trace of SENTENCE */

/* Loads the reference model and trace once; NULL when the shared data is missing. */
static const char *setup_ref(void) {
    static char model[4096], tok[4096];
    if (g_ref) return NULL;
    if (!h_shared_file(model, sizeof model, "models/stories260K/stories260K.bin") ||
        !h_shared_file(tok, sizeof tok, "models/stories260K/tok512.bin"))
        return "../shared/models/stories260K not found";
    av_model_params mp = av_model_default_params();
    mp.tokenizer_path = tok;
    av_err err = {{0}};
    av_run_params rp = av_run_default_params();
    if (av_model_load(model, &mp, &g_ref, &err) || av_trace_from_text(g_ref, SENTENCE, &rp, &g_trace, &err)) {
        fprintf(stderr, "reference: %s\n", err.msg);
        return "reference model failed to load";
    }
    return NULL;
}

static const char *tmp_path(const char *name) {
    static char buf[8][512];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 512, "%s/%s", h_tmpdir(), name);
    return p;
}

/* Max abs difference of every attention tensor against the reference; -1 on a shape or id mismatch. */
static double trace_diff(const av_trace *t, char *why, size_t why_n) {
    if (av_trace_n_tokens(t) != av_trace_n_tokens(g_trace)) {
        snprintf(why, why_n, "%d tokens, reference has %d", av_trace_n_tokens(t), av_trace_n_tokens(g_trace));
        return -1;
    }
    for (int i = 0; i < av_trace_n_tokens(t); i++)
        if (av_trace_token_id(t, i) != av_trace_token_id(g_trace, i)) {
            snprintf(why, why_n, "token %d is id %d, reference %d", i, av_trace_token_id(t, i),
                     av_trace_token_id(g_trace, i));
            return -1;
        }
    int L = av_trace_n_layers(g_trace, AV_ATTN_SELF);
    if (L <= 0 || av_trace_n_layers(t, AV_ATTN_SELF) != L) {
        snprintf(why, why_n, "%d layers, reference has %d", av_trace_n_layers(t, AV_ATTN_SELF), L);
        return -1;
    }
    double worst = 0;
    for (int l = 0; l < L; l++) {
        av_attn_view a, b;
        av_err err = {{0}};
        if (av_trace_attn(t, AV_ATTN_SELF, l, &a, &err) ||
            av_trace_attn(g_trace, AV_ATTN_SELF, l, &b, &err) || a.n_heads != b.n_heads ||
            a.n_query != b.n_query || a.n_key != b.n_key) {
            snprintf(why, why_n, "layer %d: shape differs or missing (%.150s)", l, err.msg);
            return -1;
        }
        size_t n = (size_t)a.n_heads * (size_t)a.n_query * (size_t)a.n_key;
        double d = h_max_abs_diff(a.data, b.data, n);
        if (!(d <= worst)) worst = d;
    }
    return worst;
}

/* Loads path with its own tokenizer (GGUF metadata / tokenizer.bin), runs SENTENCE, compares. */
static void check_model(const char *path, const char *label, double tol) {
    av_model *m = NULL;
    av_trace *t = NULL;
    av_err err = {{0}};
    av_run_params rp = av_run_default_params();
    if (av_model_load(path, NULL, &m, &err)) REQUIREF(0, "%s: load failed: %s", label, err.msg);
    CHECKF(m->tok != NULL, "%s: no tokenizer loaded from the converted model", label);
    av_model_info info = av_model_get_info(m), ref = av_model_get_info(g_ref);
    CHECK(info.dim == ref.dim && info.n_layers == ref.n_layers && info.n_heads == ref.n_heads &&
          info.n_kv_heads == ref.n_kv_heads && info.vocab_size == ref.vocab_size &&
          info.hidden_dim == ref.hidden_dim && info.max_seq_len == ref.max_seq_len);
    if (m->tok && av_trace_from_text(m, SENTENCE, &rp, &t, &err) == 0) {
        char why[256] = "";
        double d = trace_diff(t, why, sizeof why);
        CHECKF(d >= 0, "%s: %s", label, why);
        CHECKF(d <= tol, "%s: max abs attention diff %.3g > %.3g", label, d, tol);
        printf("# %-22s max abs attention diff vs llama2.c: %.3g (tolerance %.0e)\n", label, d, tol);
    } else {
        CHECKF(0, "%s: trace failed: %s", label, err.msg);
    }
    av_trace_free(t);
    av_model_free(m);
}

static int export_gguf(const char *path, av_dtype type, av_export_report *rep) {
    av_export_params p = av_export_default_params();
    p.dtype = type;
    av_err err = {{0}};
    if (av_export_gguf(g_ref, path, &p, rep, &err)) {
        printf("# export %s: %s\n", path, err.msg);
        return -1;
    }
    return 0;
}

static int export_hf(const char *dir, av_dtype type, int shards, av_export_report *rep) {
    av_export_params p = av_export_default_params();
    p.dtype = type;
    p.n_shards = shards;
    av_err err = {{0}};
    if (av_export_hf(g_ref, dir, &p, rep, &err)) {
        printf("# export %s: %s\n", dir, err.msg);
        return -1;
    }
    return 0;
}

/* The GGUF writer quantizes through the codec its caller gives (io/ does not link kernels/ itself). */
static void test_gguf_writer_quantizer(void) {
    float x[64]; /* (2, 32) */
    for (int i = 0; i < 64; i++)
        x[i] = (float)(i - 20) / 7.0f;
    const int64_t shape[2] = {2, 32};
    av_gguf_writer w;
    av_err err = {{0}};
    av_gguf_writer_init(&w);
    CHECK(av_gguf_writer_tensor(&w, "t", AV_DTYPE_F32, AV_DTYPE_Q8_0, 2, shape, x, &err) == -1 &&
          strstr(err.msg, "needs a codec"));
    w.codec = &av_quant_codec;
    REQUIREF(av_gguf_writer_tensor(&w, "t", AV_DTYPE_F32, AV_DTYPE_Q8_0, 2, shape, x, &err) == 0, "%s",
             err.msg);
    char path[512];
    snprintf(path, sizeof path, "%s/quant.gguf", h_tmpdir());
    REQUIREF(av_gguf_writer_save(&w, path, &err) == 0, "%s", err.msg);
    av_gguf_writer_free(&w);
    av_gguf g;
    REQUIREF(av_gguf_open(path, &g, &err) == 0, "%s", err.msg);
    const av_gguf_tensor_info *ti = av_gguf_find_tensor(&g, "t");
    av_block_q8_0 want[2];
    av_quantize_q8_0(x, want, 64);
    CHECK(ti && ti->t.dtype == AV_DTYPE_Q8_0 && ti->t.nbytes == sizeof want &&
          memcmp(ti->t.data, want, sizeof want) == 0);
    av_gguf_close(&g);
}

static void test_gguf_f32(void) {
    const char *why = setup_ref();
    if (why) SKIP("%s", why);
    av_export_report rep;
    REQUIRE(export_gguf(tmp_path("f32.gguf"), AV_DTYPE_F32, &rep) == 0);
    CHECK(rep.n_tensors == 2 + 9 * 5 && rep.tokenizer == 1 && rep.n_fallback == 0);
    check_model(tmp_path("f32.gguf"), "GGUF F32", 0.0);
}

static void test_gguf_layout(void) {
    const char *why = setup_ref();
    if (why) SKIP("%s", why);
    av_gguf g;
    av_err err = {{0}};
    const char *path = tmp_path("f32.gguf");
    av_export_report rep;
    if (access(path, R_OK) != 0) REQUIRE(export_gguf(path, AV_DTYPE_F32, &rep) == 0);
    REQUIREF(av_gguf_open(path, &g, &err) == 0, "%s", err.msg);
    CHECK(g.version == 3 && g.alignment == 32 && g.data_offset % 32 == 0);
    const av_gguf_tensor_info *emb = av_gguf_find_tensor(&g, "token_embd.weight");
    const av_gguf_tensor_info *wk = av_gguf_find_tensor(&g, "blk.4.attn_k.weight");
    const av_gguf_tensor_info *norm = av_gguf_find_tensor(&g, "output_norm.weight");
    REQUIRE(emb && wk && norm);
    /* ggml order: ne[0] is the innermost (row length); the view is [vocab, dim] as in PyTorch */
    CHECK(emb->n_dims == 2 && emb->ne[0] == 64 && emb->ne[1] == 512);
    CHECK(emb->t.ndim == 2 && emb->t.shape[0] == 512 && emb->t.shape[1] == 64 &&
          emb->t.dtype == AV_DTYPE_F32);
    CHECK(wk->ne[0] == 64 && wk->ne[1] == 32 && wk->t.shape[0] == 32);
    CHECK(norm->n_dims == 1 && norm->t.shape[0] == 64);
    CHECK(memcmp(emb->t.data, g_ref->tok_emb.data, emb->t.nbytes) == 0);
    CHECK(memcmp(wk->t.data, g_ref->stacks[0].blocks[4].attn.k.w.data, wk->t.nbytes) ==
          0);                                                /* GGUF keeps Meta's q/k order */
    CHECK(av_gguf_find_tensor(&g, "output.weight") == NULL); /* tied */
    int64_t v = 0;
    float f = 0;
    const char *s;
    size_t len;
    CHECK(av_gguf_get_int(&g, "llama.attention.head_count_kv", &v, &err) == 0 && v == 4);
    CHECK(av_gguf_get_int(&g, "llama.rope.dimension_count", &v, &err) == 0 && v == 8);
    CHECK(av_gguf_get_f32(&g, "llama.attention.layer_norm_rms_epsilon", &f, &err) == 0 && f == 1e-5f);
    CHECK(av_gguf_get_str(&g, "general.architecture", &s, &len, &err) == 0 && len == 5 &&
          !memcmp(s, "llama", 5));
    CHECK(av_gguf_get_int(&g, "no.such.key", &v, &err) == 1);
    CHECK(av_gguf_get_f32(&g, "general.architecture", &f, &err) == -1 &&
          strstr(err.msg, "general.architecture"));
    av_gguf_close(&g);
}

static void test_gguf_tokenizer_roundtrip(void) {
    const char *why = setup_ref();
    if (why) SKIP("%s", why);
    const char *path = tmp_path("f32.gguf");
    av_export_report rep;
    if (access(path, R_OK) != 0) REQUIRE(export_gguf(path, AV_DTYPE_F32, &rep) == 0);
    av_model *m = NULL;
    av_err err = {{0}};
    REQUIREF(av_model_load(path, NULL, &m, &err) == 0, "%s", err.msg);
    const av_tokenizer *a = g_ref->tok, *b = m->tok;
    REQUIRE(b != NULL);
    CHECK(a->n_vocab == b->n_vocab && a->bos == b->bos && a->eos == b->eos && a->unk == b->unk);
    int bad = -1;
    char spelled[256]; /* llama2.c's ' ' is the file's "▁" (GGUF tokenizers keep the file's spelling) */
    for (int i = 0; i < a->n_vocab && i < b->n_vocab && bad < 0; i++) {
        size_t k = 0;
        for (const char *p = a->pieces[i]; *p && k + 4 < sizeof spelled; p++) {
            if (*p == ' ')
                memcpy(spelled + k, "\xE2\x96\x81", 3), k += 3;
            else
                spelled[k++] = *p;
        }
        spelled[k] = 0;
        if (strcmp(spelled, b->pieces[i]) != 0 || a->scores[i] != b->scores[i] || a->types[i] != b->types[i])
            bad = i;
    }
    CHECKF(bad < 0, "token %d differs: '%s' (%g, type %d) vs '%s' (%g, type %d)", bad,
           bad >= 0 ? a->pieces[bad] : "", bad >= 0 ? a->scores[bad] : 0, bad >= 0 ? a->types[bad] : 0,
           bad >= 0 ? b->pieces[bad] : "", bad >= 0 ? b->scores[bad] : 0, bad >= 0 ? b->types[bad] : 0);
    CHECK(strcmp(b->pieces[262], "\xE2\x96\x81s") == 0); /* "▁s" in the file */
    CHECK(a->byte_ids[0x41] == b->byte_ids[0x41] && b->byte_ids[0x41] == 3 + 0x41);
    /* same ids for text that needs merges, byte fallback and UTF-8 */
    const char *text = "Tom and Lily's dog ran \xc3\xa9\xe2\x9c\x93 fast!";
    int32_t *ia = NULL, *ib = NULL;
    size_t na = 0, nb = 0;
    CHECK(av_tokenizer_encode(a, text, strlen(text), 1, &ia, &na, &err) == 0);
    CHECK(av_tokenizer_encode(b, text, strlen(text), 1, &ib, &nb, &err) == 0);
    CHECK(na == nb && na > 0 && ia && ib && memcmp(ia, ib, na * sizeof *ia) == 0);
    free(ia);
    free(ib);
    CHECK(strcmp(m->name, "stories260K") == 0 && m->format == AV_MODEL_FORMAT_GGUF);
    av_model_free(m);
}

static void test_hf_f32(void) {
    const char *why = setup_ref();
    if (why) SKIP("%s", why);
    av_export_report rep;
    const char *dir = tmp_path("hf_f32");
    REQUIRE(export_hf(dir, AV_DTYPE_F32, 1, &rep) == 0);
    CHECK(rep.n_shards == 1 && rep.tokenizer == 1);
    char p[600];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    CHECK(access(p, R_OK) == 0);
    snprintf(p, sizeof p, "%s/config.json", dir);
    CHECK(access(p, R_OK) == 0);
    snprintf(p, sizeof p, "%s/tokenizer.bin", dir);
    CHECK(access(p, R_OK) == 0);
    check_model(dir, "HF F32", HF_F32_TOL);
    /* q/k rows are permuted for rotate-half: row h*8 + j*4 + i holds Meta row h*8 + 2i + j */
    av_model *m = NULL;
    av_err err = {{0}};
    REQUIREF(av_model_load(dir, NULL, &m, &err) == 0, "%s", err.msg);
    CHECK(m->stacks[0].cfg.rope == AV_ROPE_HALF && strcmp(m->name, "hf_f32") == 0);
    const float *hf = m->stacks[0].blocks[2].attn.q.w.data, *meta = g_ref->stacks[0].blocks[2].attn.q.w.data;
    int ok = 1;
    for (int h = 0; h < 8; h++)
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 2; j++)
                ok &= memcmp(hf + (h * 8 + j * 4 + i) * 64, meta + (h * 8 + 2 * i + j) * 64, 64 * 4) == 0;
    CHECK(ok);
    CHECK(memcmp(m->stacks[0].blocks[2].attn.v.w.data, g_ref->stacks[0].blocks[2].attn.v.w.data,
                 g_ref->stacks[0].blocks[2].attn.v.w.nbytes) == 0);
    av_model_free(m);
}

static void test_hf_f32_sharded(void) {
    const char *why = setup_ref();
    if (why) SKIP("%s", why);
    av_export_report rep;
    const char *dir = tmp_path("hf_f32_3");
    REQUIRE(export_hf(dir, AV_DTYPE_F32, 3, &rep) == 0);
    CHECK(rep.n_shards == 3);
    char p[600];
    for (int s = 1; s <= 3; s++) {
        snprintf(p, sizeof p, "%s/model-%05d-of-00003.safetensors", dir, s);
        CHECKF(access(p, R_OK) == 0, "missing %s", p);
    }
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    CHECK(access(p, R_OK) == 0);
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    CHECK(access(p, R_OK) != 0);
    check_model(dir, "HF F32 (3 shards)", HF_F32_TOL);
    av_model *m = NULL;
    av_err err = {{0}};
    REQUIREF(av_model_load(dir, NULL, &m, &err) == 0, "%s", err.msg);
    CHECK(m->n_shards == 3);
    av_model_free(m);
}

static void test_gguf_f16(void) {
    const char *why = setup_ref();
    if (why) SKIP("%s", why);
    av_export_report rep;
    REQUIRE(export_gguf(tmp_path("f16.gguf"), AV_DTYPE_F16, &rep) == 0);
    check_model(tmp_path("f16.gguf"), "GGUF F16", HALF_TOL);
}

static void test_gguf_q8_0(void) {
    const char *why = setup_ref();
    if (why) SKIP("%s", why);
    av_export_report rep;
    const char *path = tmp_path("q8.gguf");
    REQUIRE(export_gguf(path, AV_DTYPE_Q8_0, &rep) == 0);
    CHECKF(rep.n_fallback == 5, "%d fallbacks (ffn_down rows of 172 cannot be Q8_0)", rep.n_fallback);
    av_gguf g;
    av_err err = {{0}};
    REQUIREF(av_gguf_open(path, &g, &err) == 0, "%s", err.msg);
    const av_gguf_tensor_info *emb = av_gguf_find_tensor(&g, "token_embd.weight");
    const av_gguf_tensor_info *down = av_gguf_find_tensor(&g, "blk.0.ffn_down.weight");
    const av_gguf_tensor_info *norm = av_gguf_find_tensor(&g, "blk.0.attn_norm.weight");
    CHECK(emb && emb->type == AV_GGML_Q8_0 && emb->t.nbytes == 512 * 2 * 34);
    CHECK(down && down->type == AV_GGML_F16);
    CHECK(norm && norm->type == AV_GGML_F32);
    /* every Q8_0 weight within half a step of the original (d = block amax / 127; rounding d to f16 adds up
     * to 127 * 2^-11 d, an eighth of a step) */
    const av_gguf_tensor_info *wq = av_gguf_find_tensor(&g, "blk.3.attn_q.weight");
    const av_tensor *tensors[2] = {emb ? &emb->t : NULL, wq ? &wq->t : NULL};
    const av_tensor *orig[2] = {&g_ref->tok_emb, &g_ref->stacks[0].blocks[3].attn.q.w};
    for (int k = 0; k < 2; k++) {
        REQUIRE(tensors[k] && tensors[k]->dtype == AV_DTYPE_Q8_0);
        size_t n = (size_t)av_tensor_numel(orig[k]);
        const av_block_q8_0 *b = tensors[k]->data;
        const float *x = orig[k]->data;
        double worst = 0;
        for (size_t i = 0; i < n; i++) {
            float d = av_f16_to_f32(b[i / 32].d);
            double e = fabs((double)d * b[i / 32].qs[i % 32] - x[i]) / ((double)d / 2 + 1e-30);
            worst = e > worst ? e : worst;
        }
        CHECKF(worst <= 1.13, "tensor %d: Q8_0 error %.3f half-steps", k, worst);
    }
    av_gguf_close(&g);
    check_model(path, "GGUF Q8_0", Q8_TOL);
}

static void test_hf_bf16(void) {
    const char *why = setup_ref();
    if (why) SKIP("%s", why);
    av_export_report rep;
    REQUIRE(export_hf(tmp_path("hf_bf16"), AV_DTYPE_BF16, 1, &rep) == 0);
    check_model(tmp_path("hf_bf16"), "HF BF16", HALF_TOL);
}

/* HF (rotate-half) -> GGUF must undo the permutation: the weights come back bit for bit. */
static void test_hf_to_gguf(void) {
    const char *why = setup_ref();
    if (why) SKIP("%s", why);
    av_export_report rep;
    const char *dir = tmp_path("hf_src");
    REQUIRE(export_hf(dir, AV_DTYPE_F32, 2, &rep) == 0);
    av_model *m = NULL;
    av_err err = {{0}};
    REQUIREF(av_model_load(dir, NULL, &m, &err) == 0, "%s", err.msg);
    av_export_params p = av_export_default_params();
    const char *out = tmp_path("from_hf.gguf");
    CHECKF(av_export_gguf(m, out, &p, &rep, &err) == 0, "%s", err.msg);
    av_model_free(m);
    m = NULL;
    REQUIREF(av_model_load(out, NULL, &m, &err) == 0, "%s", err.msg);
    int same = 1;
    for (int l = 0; l < 5; l++) {
        same &= memcmp(m->stacks[0].blocks[l].attn.q.w.data, g_ref->stacks[0].blocks[l].attn.q.w.data,
                       g_ref->stacks[0].blocks[l].attn.q.w.nbytes) == 0;
        same &= memcmp(m->stacks[0].blocks[l].attn.k.w.data, g_ref->stacks[0].blocks[l].attn.k.w.data,
                       g_ref->stacks[0].blocks[l].attn.k.w.nbytes) == 0;
    }
    CHECK(same);
    av_model_free(m);
    check_model(out, "HF -> GGUF F32", 0.0);
}

static void test_output_refused(void) {
    const char *why = setup_ref();
    if (why) SKIP("%s", why);
    av_export_report rep;
    av_err err = {{0}};
    av_export_params p = av_export_default_params();
    const char *dir = tmp_path("hf_again");
    REQUIRE(export_hf(dir, AV_DTYPE_F32, 1, &rep) == 0);
    CHECK(av_export_hf(g_ref, dir, &p, &rep, &err) == -1 && strstr(err.msg, "--force"));
    p.force = 1;
    p.dtype = AV_DTYPE_F16;
    CHECKF(av_export_hf(g_ref, dir, &p, &rep, &err) == 0, "%s", err.msg);
    char cfg[600];
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    json_t *j = NULL;
    CHECKF(av_json_load_file(cfg, &j, &err) == 0, "%s", err.msg);
    CHECK(j && json_real_value(json_object_get(j, "rms_norm_eps")) == 1e-5 &&
          strcmp(av_json_str(j, "torch_dtype"), "float16") == 0 &&
          json_is_true(json_object_get(j, "tie_word_embeddings")));
    json_decref(j);
    p.dtype = AV_DTYPE_Q8_0;
    CHECK(av_export_hf(g_ref, tmp_path("hf_q8"), &p, &rep, &err) == -1 && strstr(err.msg, "bf16"));
    p.dtype = AV_DTYPE_F32;
    p.force = 0;
    CHECK(av_export_gguf(g_ref, tmp_path("f32.gguf"), &p, &rep, &err) == -1 &&
          strstr(err.msg, "already exists"));
    /* no temp directory or file left behind */
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", dir, (long)getpid());
    CHECK(access(tmp, F_OK) != 0);
}

/* The attnviz binary and stories260K's checkpoint and tokenizer for the convert command's tests: NULL, or
 * why they cannot run. model, tok: (4096) */
static const char *convert_cli_setup(const char **bin, char *model, char *tok) {
    const char *why = setup_ref();
    if (why) return why;
    *bin = getenv("ATTNVIZ_BIN");
    if (!*bin || !**bin) *bin = "build/attnviz";
    if (access(*bin, X_OK) != 0) return "the attnviz binary is not built";
    h_shared_file(model, 4096, "models/stories260K/stories260K.bin");
    h_shared_file(tok, 4096, "models/stories260K/tok512.bin");
    return NULL;
}

/* `attnviz convert` end to end: exit status, one summary line on stderr, a loadable result. */
static void test_convert_cli(void) {
    const char *bin, *why;
    char model[4096], tok[4096], cmd[10000];
    if ((why = convert_cli_setup(&bin, model, tok))) SKIP("%s", why);
    const char *out = tmp_path("cli.gguf"), *errf = tmp_path("cli.err");
    snprintf(cmd, sizeof cmd,
             "'%s' convert --model '%s' --tokenizer '%s' --to gguf -o '%s' --type q8_0 2>'%s'", bin, model,
             tok, out, errf);
    int st = system(cmd);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "convert exited with %d", st);
    char *text = NULL;
    size_t n = 0;
    av_err err = {{0}};
    REQUIRE(av_file_read_all(errf, 1 << 16, &text, &n, &err) == 0);
    CHECKF(strncmp(text, "attnviz convert: ", 17) == 0 && strchr(text, '\n') == text + n - 1 &&
               strstr(text, "Q8_0"),
           "stderr: %s", text);
    free(text);
    check_model(out, "CLI GGUF Q8_0", Q8_TOL);
    snprintf(cmd, sizeof cmd, "'%s' convert --model '%s' --to hf -o '%s' --type q8_0 2>'%s'", bin, model,
             tmp_path("cli_hf"), errf);
    st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
}

/* `attnviz convert --type q4_k|q4_0` with the output format taken from the .gguf extension: the summary
 * counts the matrices that fell back (stories260K's rows of 64 are no K-quant super-blocks: Q4_0; ffn_down's
 * 172: F16), the file holds those types, every Q4_0 weight is within one step (|d|) of the original, and it
 * runs (4-bit weights on this 64-wide model move the attention by up to ~0.5:
 * tests/cli/test_llamacpp_quants.sh is where quantized forward passes are checked exactly). A quantized type
 * for a Hugging Face directory and --to hf with a .gguf name are usage errors. */
static void test_convert_cli_quantized(void) {
    const char *bin, *why;
    char model[4096], tok[4096], cmd[10000];
    if ((why = convert_cli_setup(&bin, model, tok))) SKIP("%s", why);
    const char *types[2] = {"q4_k", "q4_0"}, *errf = tmp_path("cli4.err");
    for (int k = 0; k < 2; k++) {
        char out[600];
        snprintf(out, sizeof out, "%s", tmp_path(k ? "cli_q4_0.gguf" : "cli_q4_k.gguf"));
        snprintf(cmd, sizeof cmd, "'%s' convert --model '%s' --tokenizer '%s' -o '%s' --type %s 2>'%s'", bin,
                 model, tok, out, types[k], errf);
        int st = system(cmd);
        char *text = NULL;
        size_t n = 0;
        av_err err = {{0}};
        REQUIRE(av_file_read_all(errf, 1 << 16, &text, &n, &err) == 0);
        CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0 && strstr(text, "GGUF v3") &&
                   strstr(text, k ? "Q4_0, 47 tensors" : "Q4_K, 47 tensors") &&
                   strstr(text, "5 matrices written F16") && (k || strstr(text, "31 matrices written Q4_0")),
               "%s: exit %d, stderr: %s", types[k], st, text);
        free(text);
        av_gguf g;
        REQUIREF(av_gguf_open(out, &g, &err) == 0, "%s", err.msg);
        const av_gguf_tensor_info *q = av_gguf_find_tensor(&g, "blk.3.attn_q.weight");
        const av_gguf_tensor_info *down = av_gguf_find_tensor(&g, "blk.0.ffn_down.weight");
        CHECK(down && down->t.dtype == AV_DTYPE_F16);
        REQUIRE(q && q->t.dtype == AV_DTYPE_Q4_0);
        const av_tensor *orig = &g_ref->stacks[0].blocks[3].attn.q.w;
        size_t numel = (size_t)av_tensor_numel(orig);
        float *y = malloc(sizeof(float) * numel);
        av_dequantize_rows(&q->t, 0, q->t.shape[0], y);
        double worst = 0;
        for (size_t i = 0; i < numel; i++) {
            float d = fabsf(av_f16_to_f32(((const av_block_q4_0 *)q->t.data)[i / 32].d));
            double e = fabs((double)y[i] - ((const float *)orig->data)[i]) / ((double)d + 1e-30);
            worst = e > worst ? e : worst;
        }
        free(y);
        CHECKF(worst <= 1.01, "%s: Q4_0 error %.3f steps", types[k], worst);
        av_gguf_close(&g);
        check_model(out, k ? "CLI GGUF Q4_0" : "CLI GGUF Q4_K", 0.6);
    }
    snprintf(cmd, sizeof cmd, "'%s' convert --model '%s' -o '%s' --type q4_k 2>'%s'", bin, model,
             tmp_path("cli_q4hf"), errf);
    int st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    snprintf(cmd, sizeof cmd, "'%s' convert --model '%s' --to hf -o '%s' 2>'%s'", bin, model,
             tmp_path("x.gguf"), errf);
    st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
}

/* A GGUF whose tokenizer.ggml.model is "gpt2" loads with the byte-level BPE it describes, and converting
 * keeps its pre-tokenizer (tokenizer.ggml.pre). The project's induction model (vocabulary 98) gets a
 * hand-made byte-level vocabulary: the 95 printable ASCII bytes (space spelled "Ġ"), then "Ġt", "he", "Ġ1"
 * from three ranked merges. " the 1" is [Ġt, he, Ġ1] = [95, 96, 97] with GPT-2's pattern (" 1" is one chunk)
 * and [95, 96, Ġ, 1] = [95, 96, 0, 17] with Llama 3's (digits apart from the space). */
static void test_gguf_gpt2_tokenizer_through_loader(void) {
    const char *pres[] = {"gpt-2", "llama-bpe"};
    const int32_t want[2][4] = {{95, 96, 97}, {95, 96, 0, 17}};
    const size_t n_want[2] = {3, 4};
    for (int v = 0; v < 2; v++) {
        av_model_params mp = av_model_default_params();
        av_model *m = NULL, *back = NULL;
        av_err err = {{0}};
        REQUIREF(av_model_load("models/induction/induction.bin", &mp, &m, &err) == 0, "%s", err.msg);
        REQUIRE(m->vocab_size == 98);
        char **pieces = malloc(sizeof *pieces * 98), **merges = malloc(sizeof *merges * 3);
        for (int i = 0; i < 95; i++) {
            char c[2] = {(char)(0x20 + i), 0};
            pieces[i] = strdup(i == 0 ? "\xC4\xA0" : c);
        }
        pieces[95] = strdup("\xC4\xA0t"), pieces[96] = strdup("he"),
        pieces[97] = strdup("\xC4\xA0"
                            "1");
        merges[0] = strdup("\xC4\xA0 t"), merges[1] = strdup("h e"), merges[2] = strdup("\xC4\xA0 1");
        av_tokenizer *tok = NULL;
        av_tok_gguf_spec spec = av_tok_gguf_spec_init();
        spec.model = "gpt2", spec.pre = pres[v], spec.n = 98, spec.pieces = pieces, spec.merges = merges,
        spec.n_merges = 3;
        REQUIREF(av_tok_from_gguf(&spec, &tok, &err) == 0, "%s", err.msg);
        av_tokenizer_free(m->tok);
        m->tok = tok;
        char path[512];
        snprintf(path, sizeof path, "%s/gpt2_vocab_%d.gguf", h_tmpdir(), v);
        av_export_params p = av_export_default_params();
        av_export_report rep;
        REQUIREF(av_export_gguf(m, path, &p, &rep, &err) == 0, "%s", err.msg);
        REQUIREF(av_model_load(path, &mp, &back, &err) == 0, "%s", err.msg);
        REQUIREF(back->tok, "the GGUF's gpt2 tokenizer was not loaded");
        CHECKF(back->tok->gguf_pre && strcmp(back->tok->gguf_pre, pres[v]) == 0, "pre %s came back as %s",
               pres[v], back->tok->gguf_pre ? back->tok->gguf_pre : "(none)");
        for (int side = 0; side < 2; side++) {
            int32_t *ids;
            size_t n;
            REQUIREF(av_tokenizer_encode(side ? back->tok : m->tok, " the 1", 6, 0, &ids, &n, &err) == 0,
                     "%s", err.msg);
            CHECKF(n == n_want[v] && memcmp(ids, want[v], n * sizeof *ids) == 0, "%s, %s: %zu ids", pres[v],
                   side ? "reloaded" : "built", n);
            free(ids);
        }
        av_model_free(back);
        av_model_free(m);
    }
}

int main(void) {
    RUN(test_gguf_writer_quantizer);
    RUN(test_gguf_f32);
    RUN(test_gguf_layout);
    RUN(test_gguf_tokenizer_roundtrip);
    RUN(test_gguf_gpt2_tokenizer_through_loader);
    RUN(test_hf_f32);
    RUN(test_hf_f32_sharded);
    RUN(test_gguf_f16);
    RUN(test_gguf_q8_0);
    RUN(test_hf_bf16);
    RUN(test_hf_to_gguf);
    RUN(test_output_refused);
    RUN(test_convert_cli);
    RUN(test_convert_cli_quantized);
    av_trace_free(g_trace);
    av_model_free(g_ref);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", h_tmpdir());
    if (strncmp(h_tmpdir(), "/tmp", 4) == 0 || getenv("TMPDIR")) (void)!system(cmd);
    return h_exit_code();
}
