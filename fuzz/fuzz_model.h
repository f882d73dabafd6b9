/* What the model and tokenizer harnesses do with what loaded: a tokenizer encodes texts that stress its
 * normalizers and pre-tokenizers; a model (gguf, hf_dir, config, llama2c) tokenizes a text, labels the
 * tokens, runs a tiny forward pass of every kind its family has (full and lazy, pairs for encoder-decoders,
 * pixels for ViT) and reads rows and tiles back, so a config or weight that slips past the checks is caught
 * where it is used. */
#ifndef AV_FUZZ_MODEL_H
#define AV_FUZZ_MODEL_H

#include "fuzz.h"
#include "model/model.h"

/* Forward passes only on small models: the input's size bounds the weights, this bounds the work. */
#define FUZZ_MAX_PARAMS (1 << 20)
#define FUZZ_MAX_DIM 256

static inline av_model_params fuzz_model_params(void) {
    av_model_params p = av_model_default_params();
    p.n_threads = 1;
    return p;
}

/* Labels and decoded pieces of every id (what traces and the viewer show). */
static inline void fuzz_labels(const av_tokenizer *tok, const int32_t *ids, size_t n) {
    for (size_t i = 0; i < n; i++) {
        char *label = av_tokenizer_display_ex(tok, ids, n, i, AV_DISPLAY_VISIBLE_SPACE);
        if (label && strlen(label) > (1u << 20)) abort(); /* reads the label as a C string, as traces do */
        free(label);
        char buf[8];
        size_t len;
        av_tokenizer_decode_piece(tok, i ? ids[i - 1] : -1, ids[i], buf, &len);
        (void)av_tokenizer_is_special(tok, ids[i]);
    }
}

/* Loads a tokenizer file and encodes texts that stress the normalizers and pre-tokenizers. */
static inline void fuzz_exercise_tokenizer(const char *path) {
    static const char *const texts[] = {"Hello world! The quick brown fox's 123 456.78",
                                        "caf\xC3\xA9 na\xC3\xAFve \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E "
                                        "\xF0\x9F\xA4\x97 \xE2\x80\x8B\xC2\xA0x",
                                        "\xFF\xFE bad \xC3 utf8 \xED\xA0\x80 \xF4\x90\x80\x80",
                                        "<s>[CLS] <unk> </s>[SEP]<|endoftext|>  \t\n\r  ",
                                        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                                        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                                        ""};
    av_tokenizer *t = NULL;
    av_err err;
    if (fuzz_note(av_tokenizer_load(path, &t, &err), "tokenizer", &err) != 0) return;
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        for (int add = 0; add < 2; add++) {
            int32_t *ids = NULL;
            size_t n = 0;
            if (av_tokenizer_encode(t, texts[i], strlen(texts[i]), add, &ids, &n, &err) == 0)
                fuzz_labels(t, ids, n);
            free(ids);
        }
    }
    (void)av_tokenizer_model_name(t);
    (void)av_tokenizer_find(t, "<unk>");
    int v = av_tokenizer_vocab_size(t);
    (void)av_tokenizer_piece(t, v - 1);
    av_tokenizer_free(t);
}

/* Rows and a pooled tile of every layer of kind (reads bounded by the trace's own shape). */
static inline void fuzz_read_trace(const av_trace *t, av_attn_kind kind) {
    int L = av_trace_n_layers(t, kind), H = av_trace_n_heads(t, kind), nq = av_trace_n_query(t, kind),
        nk = av_trace_n_key(t, kind);
    if (L <= 0 || nq <= 0 || nk <= 0 || (size_t)nq * (size_t)nk > (1u << 20)) return;
    float *buf = malloc(sizeof(float) * (size_t)nq * (size_t)nk); /* (nq, nk) */
    av_err err;
    for (int l = 0; buf && l < L; l++) {
        av_trace_attn_row(t, kind, l, AV_HEADS_MEAN, nq - 1, buf, &err);
        av_trace_attn_row(t, kind, l, 0, 0, buf, &err);
        av_trace_attn_row(t, kind, l, H - 1, nq / 2, buf, &err); /* the last head of every layer */
        av_trace_attn_tile(t, kind, l, AV_HEADS_MAX, 0, nq, 0, nk, nq > 1 ? nq / 2 : 1, nk, AV_POOL_MEAN, buf,
                           &err);
        av_attn_view v;
        if (av_trace_attn(t, kind, l, &v, &err) == 0) av_attn_select_heads(&v, "max", buf, &err);
    }
    free(buf);
}

static inline void fuzz_run_tokens(av_model *m, const int32_t *ids, size_t n, int lazy) {
    av_run_params rp = av_run_default_params();
    rp.n_threads = 1;
    rp.want_logits = 1;
    rp.lazy = lazy;
    av_trace *t = NULL;
    av_err err;
    if (av_trace_from_ids(m, ids, n, &rp, &t, &err) == 0) fuzz_read_trace(t, AV_ATTN_SELF);
    av_trace_free(t);
}

static inline void fuzz_run_image(av_model *m) {
    const av_vision *vis = &m->vision;
    size_t n = (size_t)3 * (size_t)vis->image_size * (size_t)vis->image_size;
    if (vis->image_size > 64) return;
    float *px = calloc(n ? n : 1, sizeof *px); /* (3, size, size) */
    av_run_params rp = av_run_default_params();
    rp.n_threads = 1;
    av_trace *t = NULL;
    av_class_score top[3];
    av_err err;
    for (size_t i = 0; px && i < n; i++)
        px[i] = (float)(i % 7) * 0.25f - 0.75f;
    if (px && av_trace_from_pixels(m, px, vis->image_size, vis->image_size, &rp, &t, top, 3, &err) == 0)
        fuzz_read_trace(t, AV_ATTN_SELF);
    av_trace_free(t);
    free(px);
}

static inline void fuzz_run_pair(av_model *m, const int32_t *ids, size_t n) {
    av_run_params rp = av_run_default_params();
    rp.n_threads = 1;
    av_trace *t = NULL;
    av_err err;
    int32_t tgt[2] = {m->dec_start_id >= 0 ? m->dec_start_id : 0, ids[0]};
    if (av_trace_from_pair_ids(m, ids, n, tgt, 2, 0, &rp, &t, &err) == 0) {
        fuzz_read_trace(t, AV_ATTN_ENC);
        fuzz_read_trace(t, AV_ATTN_DEC);
        fuzz_read_trace(t, AV_ATTN_CROSS);
    }
    av_trace_free(t);
    if (av_trace_from_pair_ids(m, ids, n, NULL, 0, 2, &rp, &t, &err) == 0) fuzz_read_trace(t, AV_ATTN_CROSS);
    av_trace_free(t);
}

/* Tokenizes text (when the model has a tokenizer) and runs the model on at most 4 tokens. */
static inline void fuzz_exercise_model(av_model *m, const char *text, size_t len) {
    av_model_info info = av_model_get_info(m);
    const av_tokenizer *tok = av_model_tokenizer(m);
    int32_t ids[4] = {0, 1, 2, 3}, *enc = NULL;
    size_t n = 3, n_enc = 0;
    av_err err;
    if (tok && av_tokenizer_encode(tok, text, len, 1, &enc, &n_enc, &err) == 0) {
        fuzz_labels(tok, enc, n_enc);
        for (size_t i = 0; i < n_enc && i < 4; i++)
            ids[i] = enc[i];
        if (n_enc) n = n_enc < 4 ? n_enc : 4;
    }
    free(enc);
    if (tok) { /* labels of arbitrary ids, as `attnviz run --ids` makes them */
        int32_t all[64];
        int n_all = av_tokenizer_vocab_size(tok) < 64 ? av_tokenizer_vocab_size(tok) : 64;
        for (int i = 0; i < n_all; i++)
            all[i] = i;
        fuzz_labels(tok, all, (size_t)n_all);
    }
    if (info.n_params > FUZZ_MAX_PARAMS || info.dim > FUZZ_MAX_DIM) return;
    if (m->family == AV_FAMILY_VIT) {
        fuzz_run_image(m);
        return;
    }
    if (info.vocab_size <= 0) return;
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= info.vocab_size) ids[i] = (int32_t)(i % (size_t)info.vocab_size);
    if (m->family == AV_FAMILY_ENCDEC) {
        fuzz_run_pair(m, ids, n);
    } else {
        fuzz_run_tokens(m, ids, n, 0);
        if (m->family == AV_FAMILY_LLAMA) fuzz_run_tokens(m, ids, n, 1);
    }
}

#endif
