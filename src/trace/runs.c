/* Running a model to a trace, for every family: token models on text or ids ("self"), encoder-decoders on a
 * source and a forced or greedy target ("enc", "dec", "cross", source_tokens / target_tokens), image models
 * on pixels ("self" over [CLS] + patches, patch_grid, predictions). Each prepares its inputs, declares what
 * it captures (capture.c) and runs the forward pass (model/forward.c). */
#include "capture.h"
#include "tok/tok.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { DEFAULT_STEPS = 32, LAZY_CHUNK = 1024 };

av_run_params av_run_default_params(void) {
    av_run_params p;
    memset(&p, 0, sizeof p);
    p.add_bos = 1;
    p.dtype = AV_DTYPE_F32;
    return p;
}

static int finish_run(const av_model *m, av_run_capture *c, const int32_t *ids, size_t n, av_trace **out,
                      av_err *err) {
    if (av_cap_finish(c, out, err)) return -1;
    if (!ids || av_cap_set_tokens(m, *out, ids, n, err) == 0) return 0;
    av_trace_free(*out);
    *out = NULL;
    return -1;
}

/* ---- decoder-only and encoder-only token models ---- */

/* The pass over ids: lazy causal runs go layer by layer in chunks (one layer's keys and values in memory,
 * its queries and keys streamed out); others are one chunk through every layer. */
static int tokens_pass(const av_model *m, av_run_capture *c, const int32_t *ids, int T, const uint8_t *types,
                       av_err *err) {
    const av_run_params *p = c->p;
    int layerwise = p->lazy && m->stacks[0].cfg.causal;
    av_cap_progress rp;
    av_cap_progress_init(&rp, c, AV_ATTN_SELF, T);
    av_pass pass = {.self = av_cap_view(c, AV_ATTN_SELF),
                    .logits = c->logits,
                    .logits_all = 1,
                    .token_types = types,
                    .on_layer = av_cap_on_layer,
                    .on_layer_ctx = &rp};
    av_state *s = NULL;
    int rc = layerwise ? av_state_new_layerwise(m, 0, T, p->n_threads, &s, err)
                       : av_state_new(m, 0, T, p->n_threads, &s, err);
    if (!rc)
        rc = layerwise ? av_forward_ids_layerwise(m, s, ids, T, LAZY_CHUNK, &pass, err)
                       : av_forward_ids(m, s, ids, T, 0, &pass, err);
    av_state_free(s);
    return rc;
}

static int tokens_trace(const av_model *m, const int32_t *ids, size_t n, const uint8_t *types,
                        const av_run_params *p, av_trace **out, av_err *err) {
    if (n == 0) return av_errf(err, "empty input: no tokens to run (give some text, or keep the BOS token)");
    if (n > (size_t)m->max_seq_len)
        return av_errf(err, "input is %zu tokens but the model's context window is %d", n, m->max_seq_len);
    int T = (int)n, rc = -1;
    av_run_capture c;
    if (av_cap_init(&c, m, p, err)) return -1;
    av_cap_declare(&c, AV_ATTN_SELF, 0, 0, T, T);
    c.write_out = 1; /* nothing reads the attention before av_cap_finish */
    if (!av_cap_alloc(&c, T, err) && !tokens_pass(m, &c, ids, T, types, err))
        rc = finish_run(m, &c, ids, n, out, err);
    av_cap_free(&c);
    return rc;
}

/* ---- encoder-decoders ---- */

int av_run_encode_source(const av_model *m, const av_run_capture *c, const int32_t *src, int S, av_state *dec,
                         int n_threads, av_err *err) {
    av_state *enc = NULL;
    av_pass pass = {0};
    if (c) pass.self = av_cap_view(c, AV_ATTN_ENC);
    int rc = av_state_new(m, 0, S, n_threads, &enc, err) || av_forward_ids(m, enc, src, S, 0, &pass, err) ||
             av_state_attach(dec, enc, err);
    av_state_free(enc);
    return rc ? -1 : 0;
}

static int at_eos(void *ctx, const int32_t *seq, int n) { return seq[n - 1] == *(const int *)ctx; }

/* Greedy decoding: *dec = [start, g1, ..., gk] (stops after end-of-sequence or steps tokens). */
static int greedy(const av_model *m, const int32_t *src, int S, int steps, int n_threads, int32_t **dec,
                  int *n_dec, av_err *err) {
    int32_t *seq = malloc(sizeof *seq * (size_t)(steps + 1));
    av_state *s = NULL;
    int eos = m->eos_id;
    if (!seq) return av_errf(err, "out of memory");
    seq[0] = m->dec_start_id;
    int rc = av_state_new(m, 1, steps + 1, n_threads, &s, err) ||
             av_run_encode_source(m, NULL, src, S, s, n_threads, err) ||
             av_decode_greedy(m, s, seq, 1, steps + 1, at_eos, &eos, n_dec, err);
    av_state_free(s);
    if (rc)
        free(seq);
    else
        *dec = seq;
    return rc ? -1 : 0;
}

static int pair_meta(const av_model *m, av_trace *t, const int32_t *src, size_t n_src, const int32_t *seq,
                     int T, int forced, av_err *err) {
    return av_cap_json_list(m, t, "source_tokens", src, n_src, 0, err) ||
                   av_cap_json_list(m, t, "source_token_ids", src, n_src, 1, err) ||
                   av_cap_json_list(m, t, "target_tokens", seq, (size_t)T, 0, err) ||
                   av_trace_set_meta(t, "decoding", forced ? "forced" : "greedy", err)
               ? -1
               : 0;
}

/* The traced pass: the encoder on src, the decoder teacher-forced on seq (T), capturing enc, dec and cross.
 */
static int pair_trace(const av_model *m, const int32_t *src, int S, const int32_t *seq, int T, int forced,
                      const av_run_params *p, av_trace **out, av_err *err) {
    av_run_capture c;
    av_state *dec = NULL;
    int rc = -1;
    if (av_cap_init(&c, m, p, err)) return -1;
    av_cap_declare(&c, AV_ATTN_ENC, 0, 0, S, S);
    av_cap_declare(&c, AV_ATTN_DEC, 1, 0, T, T);
    av_cap_declare(&c, AV_ATTN_CROSS, 1, 1, T, S);
    c.write_out = 1;
    av_cap_progress rp;
    if (av_cap_alloc(&c, T, err) || av_state_new(m, 1, T, p->n_threads, &dec, err) ||
        av_run_encode_source(m, &c, src, S, dec, p->n_threads, err))
        goto done;
    av_cap_progress_init(&rp, &c, AV_ATTN_DEC, T);
    av_pass pass = {.self = av_cap_view(&c, AV_ATTN_DEC),
                    .cross = av_cap_view(&c, AV_ATTN_CROSS),
                    .logits = c.logits,
                    .logits_all = 1,
                    .on_layer = av_cap_on_layer,
                    .on_layer_ctx = &rp};
    if (av_forward_ids(m, dec, seq, T, 0, &pass, err) || finish_run(m, &c, seq, (size_t)T, out, err))
        goto done;
    rc = pair_meta(m, *out, src, (size_t)S, seq, T, forced, err);
done:
    if (rc && *out) av_trace_free(*out), *out = NULL;
    av_cap_free(&c);
    av_state_free(dec);
    return rc;
}

int av_trace_from_pair_ids(const av_model *m, const int32_t *src, size_t n_src, const int32_t *tgt,
                           size_t n_tgt, int steps, const av_run_params *params, av_trace **out,
                           av_err *err) {
    *out = NULL;
    av_run_params defaults = av_run_default_params();
    if (!params) params = &defaults;
    if (m->family != AV_FAMILY_ENCDEC)
        return av_errf(err, "%s is not an encoder-decoder model (give it a single text)", m->name);
    if (n_src == 0) return av_errf(err, "empty source: nothing to encode");
    if (n_src > (size_t)m->max_seq_len || n_tgt > (size_t)m->max_seq_len)
        return av_errf(err, "source (%zu) or target (%zu) is longer than the model's %d positions", n_src,
                       n_tgt, m->max_seq_len);
    if (!tgt && (steps < 1 || steps >= m->max_seq_len))
        return av_errf(err, "steps must be between 1 and %d", m->max_seq_len - 1);
    if (tgt && n_tgt == 0) return av_errf(err, "empty target: give at least the decoder start token");
    if (tgt) return pair_trace(m, src, (int)n_src, tgt, (int)n_tgt, 1, params, out, err);
    int32_t *seq = NULL;
    int T = 0;
    int rc = greedy(m, src, (int)n_src, steps, params->n_threads, &seq, &T, err) ||
             pair_trace(m, src, (int)n_src, seq, T, 0, params, out, err);
    free(seq);
    return rc ? -1 : 0;
}

/* ---- text ---- */

/* ids of text with the tokenizer's special tokens, with room for extra more. */
static int encode(const av_model *m, const char *text, int add_special, int32_t **ids, size_t *n,
                  size_t extra, av_err *err) {
    if (!m->tok)
        return av_errf(err, "the model has no tokenizer%s%s: pass --tokenizer", m->tok_error[0] ? " (" : "",
                       m->tok_error[0] ? m->tok_error : "");
    int32_t *raw;
    if (av_tokenizer_encode(m->tok, text, strlen(text), add_special, &raw, n, err)) return -1;
    *ids = realloc(raw, sizeof *raw * (*n + extra + 1)); /* room for specials the caller adds */
    if (!*ids) {
        free(raw);
        return av_errf(err, "out of memory");
    }
    return 0;
}

int av_run_source_ids(const av_model *m, const char *source, int32_t **src, size_t *ns, av_err *err) {
    if (encode(m, source, 1, src, ns, 2, err)) return -1;
    if (m->bos_id >= 0 && (*ns == 0 || (*src)[0] != m->bos_id)) { /* BART: <s> source </s> */
        memmove(*src + 1, *src, sizeof **src * *ns);
        (*src)[0] = m->bos_id;
        (*ns)++;
    }
    if (*ns == 0 || (*src)[*ns - 1] != m->eos_id) (*src)[(*ns)++] = m->eos_id;
    return 0;
}

int av_trace_from_pair(const av_model *m, const char *source, const char *target, int steps,
                       const av_run_params *params, av_trace **out, av_err *err) {
    *out = NULL;
    if (m->family != AV_FAMILY_ENCDEC)
        return av_errf(err, "%s is not an encoder-decoder model (give it a single text)", m->name);
    if (!source || !*source || (target && !*target)) return av_errf(err, "empty input: the text is empty");
    int32_t *src = NULL, *labels = NULL, *dec = NULL;
    size_t ns, nl = 0;
    int rc = -1;
    if (av_run_source_ids(m, source, &src, &ns, err)) return -1;
    if (target) { /* decoder input = [start] + labels[:-1], labels = target with specials, ending in </s> */
        if (encode(m, target, 1, &labels, &nl, 1, err)) goto done;
        if (nl == 0 || labels[nl - 1] != m->eos_id) labels[nl++] = m->eos_id;
        if (!(dec = malloc(sizeof *dec * nl))) {
            av_errf(err, "out of memory");
            goto done;
        }
        dec[0] = m->dec_start_id;
        memcpy(dec + 1, labels, sizeof *dec * (nl - 1));
    }
    rc = av_trace_from_pair_ids(m, src, ns, dec, nl, steps, params, out, err);
done:
    free(src);
    free(labels);
    free(dec);
    return rc;
}

/* Id of a special piece: looked up in the vocabulary, or one of the tokenizer's BOS / EOS / UNK; -1 if
 * absent. */
static int special_id(const av_tokenizer *tok, const char *piece) {
    int id = av_tok_find(tok, piece, strlen(piece));
    int cand[3] = {av_tokenizer_bos(tok), av_tokenizer_eos(tok), tok->unk};
    for (int i = 0; id < 0 && i < 3; i++) {
        const char *p = av_tokenizer_piece(tok, cand[i]);
        if (p && strcmp(p, piece) == 0) id = cand[i];
    }
    return id;
}

/* BERT family: [CLS] text [SEP] (the tokenizer's post-processor adds them; added here when it did not). */
static void add_cls_sep(const av_model *m, int32_t *ids, size_t *n) {
    int cls = special_id(m->tok, "[CLS]"), sep = special_id(m->tok, "[SEP]");
    if (cls < 0 || sep < 0) { /* RoBERTa spelling */
        cls = special_id(m->tok, "<s>");
        sep = special_id(m->tok, "</s>");
    }
    if (cls < 0 || sep < 0) return;
    if (*n == 0 || ids[0] != cls) {
        memmove(ids + 1, ids, sizeof *ids * *n);
        ids[0] = cls;
        (*n)++;
    }
    if (ids[*n - 1] != sep) ids[(*n)++] = sep;
}

int av_trace_from_ids(const av_model *m, const int32_t *ids, size_t n, const av_run_params *params,
                      av_trace **out, av_err *err) {
    *out = NULL;
    av_run_params defaults = av_run_default_params();
    if (!params) params = &defaults;
    if (m->family == AV_FAMILY_VIT) return av_errf(err, "%s is an image model: give it an image", m->name);
    if (m->family == AV_FAMILY_T2I)
        return av_errf(err, "%s is a text-to-image model: give it a prompt as text", m->name);
    if (m->family == AV_FAMILY_ENCDEC)
        return av_trace_from_pair_ids(m, ids, n, NULL, 0, DEFAULT_STEPS, params, out, err);
    return tokens_trace(m, ids, n, NULL, params, out, err);
}

int av_trace_from_text(const av_model *m, const char *text, const av_run_params *params, av_trace **out,
                       av_err *err) {
    *out = NULL;
    av_run_params defaults = av_run_default_params();
    if (!params) params = &defaults;
    if (m->family == AV_FAMILY_VIT) return av_errf(err, "%s is an image model: give it an image", m->name);
    if (!text) return av_errf(err, "no text given");
    if (m->family == AV_FAMILY_ENCDEC)
        return av_trace_from_pair(m, text, NULL, DEFAULT_STEPS, params, out, err);
    if (m->family == AV_FAMILY_T2I) { /* an image from the prompt, the default seed and steps */
        av_t2i_params tp = av_t2i_default_params();
        tp.n_threads = params->n_threads;
        return av_trace_from_t2i(m, text, &tp, out, err);
    }
    int32_t *ids;
    size_t n;
    if (encode(m, text, params->add_bos, &ids, &n, 2, err)) return -1;
    if (m->family == AV_FAMILY_BERT && params->add_bos) add_cls_sep(m, ids, &n);
    int rc = av_trace_from_ids(m, ids, n, params, out, err);
    free(ids);
    return rc;
}

/* ---- sentence pairs (BERT family) ---- */

/* JSON metadata of a pair: sentence_b_start (the first token of sentence B) and token_type_ids. */
static int pair_text_meta(av_trace *t, size_t b_start, const uint8_t *types, size_t n, av_err *err) {
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, json_integer(types ? types[i] : 0));
    return av_trace_set_meta_json(t, "token_type_ids", arr, 0, err) ||
                   av_trace_set_meta_int(t, "sentence_b_start", (int)b_start, err) ||
                   av_trace_need_version(t, 3, err)
               ? -1
               : 0;
}

int av_trace_from_text_pair(const av_model *m, const char *a, const char *b, const av_run_params *params,
                            av_trace **out, av_err *err) {
    *out = NULL;
    av_run_params defaults = av_run_default_params();
    if (!params) params = &defaults;
    if (m->family != AV_FAMILY_BERT)
        return av_errf(err, "sentence pairs are for BERT-family encoders (%s is %s)", m->name,
                       av_family_name(m->family));
    if (!a || !*a || !b || !*b) return av_errf(err, "empty input: a sentence of the pair is empty");
    if (!params->add_bos) return av_errf(err, "a sentence pair needs the special tokens ([CLS], [SEP])");
    int32_t *ids = NULL, *tail = NULL;
    uint8_t *types = NULL;
    size_t na, nb;
    int rc = -1;
    if (encode(m, a, 1, &ids, &na, 2, err) || encode(m, b, 0, &tail, &nb, 0, err)) goto done;
    add_cls_sep(m, ids, &na);
    /* BERT: [CLS] A [SEP] B [SEP], types 0 then 1; RoBERTa: <s> A </s></s> B </s> (a type table of one row:
     * no types); the separator is A's last token */
    int32_t sep = ids[na - 1];
    int roberta = strcmp(m->arch, "roberta") == 0,
        typed = m->stacks[0].emb.type.data && m->stacks[0].emb.type.shape[0] >= 2;
    size_t b_start = na + (roberta ? 1 : 0), n = b_start + nb + 1;
    int32_t *all = realloc(ids, sizeof *ids * n);
    if (!all || (typed && !(types = calloc(n, 1)))) {
        av_errf(err, "out of memory");
        goto done;
    }
    ids = all;
    if (roberta) ids[na] = sep;
    memcpy(ids + b_start, tail, sizeof *ids * nb);
    ids[n - 1] = sep;
    for (size_t i = na; typed && i < n; i++)
        types[i] = 1;
    if (tokens_trace(m, ids, n, types, params, out, err) || pair_text_meta(*out, b_start, types, n, err))
        goto done;
    rc = 0;
done:
    if (rc && *out) av_trace_free(*out), *out = NULL;
    free(ids);
    free(tail);
    free(types);
    return rc;
}
