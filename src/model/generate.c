/* Decoding with the KV cache: the given start in one batched pass, then one token a step, chosen by the
 * caller (sampling, trace/generation.c) or greedily. Decoder-only generation (av_generate_greedy from
 * text, av_generate_greedy_ids from ids, av_generate with sampling) and encoder-decoder decoding
 * (trace/runs.c) use it. */
#include "model.h"

#include <stdlib.h>
#include <string.h>

static int32_t argmax(void *ctx, const float *x, int n, av_err *err) {
    (void)ctx, (void)err;
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* The start seq[0..n) in chunks whose every row's logits go to d->start_rows; the last row's into last. */
static int start_in_chunks(const av_model *m, av_state *s, const int32_t *seq, int n, const av_decoder *d,
                           float *last, av_err *err) {
    size_t V = (size_t)m->head.n_out, per = AV_DECODE_LOGITS_FLOATS / V;
    int chunk = per < 1 ? 1 : per > (size_t)n ? n : (int)per;
    float *buf = malloc(sizeof(float) * (size_t)chunk * V); /* (chunk, n_out) */
    if (!buf) return av_errf(err, "out of memory for the logits of %d rows", chunk);
    int rc = 0;
    for (int r0 = 0; rc == 0 && r0 < n; r0 += chunk) {
        int c = n - r0 < chunk ? n - r0 : chunk;
        av_pass p = {.logits = buf, .logits_all = 1};
        rc = av_forward_ids(m, s, seq + r0, c, r0, &p, err) || d->start_rows(d->ctx, buf, r0, c, err);
        if (rc == 0 && r0 + c == n) memcpy(last, buf + (size_t)(c - 1) * V, sizeof(float) * V);
    }
    free(buf);
    return rc ? -1 : 0;
}

int av_decode(const av_model *m, av_state *s, int32_t *seq, int n, int cap, const av_decoder *d, int *n_out,
              av_err *err) {
    int V = m->head.n_out;
    float *last = malloc(sizeof(float) * (size_t)V); /* (n_out) of the last row */
    av_pass p = {.logits = last};
    av_next_fn next = d->next ? d->next : argmax;
    int rc = !last           ? av_errf(err, "out of memory")
             : d->start_rows ? start_in_chunks(m, s, seq, n, d, last, err)
                             : av_forward_ids(m, s, seq, n, 0, &p, err);
    while (rc == 0 && n < cap) {
        int32_t id = next(d->ctx, last, V, err);
        if (id < 0) {
            rc = -1;
            break;
        }
        seq[n++] = id;
        if (d->stop(d->ctx, seq, n)) break;
        if (n < cap) rc = av_forward_ids(m, s, seq + n - 1, 1, n - 1, &p, err); /* one new row */
    }
    free(last);
    *n_out = n;
    return rc;
}

int av_decode_greedy(const av_model *m, av_state *s, int32_t *seq, int n, int cap, av_stop_fn stop, void *ctx,
                     int *n_out, av_err *err) {
    av_decoder d = {NULL, stop, ctx, NULL};
    return av_decode(m, s, seq, n, cap, &d, n_out, err);
}

typedef struct piece_ctx {
    const av_tokenizer *tok;
    av_piece_fn on_piece;
    void *ctx;
} piece_ctx;

/* Stops at end- or begin-of-sequence; hands every other new token's text to the caller. */
static int piece_or_stop(void *ctx, const int32_t *seq, int n) {
    const piece_ctx *pc = ctx;
    int id = seq[n - 1];
    if (id == av_tokenizer_eos(pc->tok) || id == av_tokenizer_bos(pc->tok)) return 1;
    if (pc->on_piece) {
        char buf[8];
        size_t len;
        const char *piece = av_tokenizer_decode_piece(pc->tok, seq[n - 2], id, buf, &len);
        pc->on_piece(pc->ctx, piece, len);
    }
    return 0;
}

int av_model_prompt_ids(const av_model *m, const char *prompt, int add_bos, int32_t **ids, size_t *n,
                        av_err *err) {
    *ids = NULL;
    if (!m->tok) return av_errf(err, "the model has no tokenizer: pass --tokenizer");
    if (av_tokenizer_encode(m->tok, prompt ? prompt : "", prompt ? strlen(prompt) : 0, add_bos, ids, n, err))
        return -1;
    if (*n == 0 && m->family == AV_FAMILY_GPT2 && m->bos_id >= 0) {
        int32_t *one = realloc(*ids, sizeof *one);
        if (!one) return av_errf(err, "out of memory");
        one[0] = m->bos_id;
        *ids = one;
        *n = 1;
    }
    if (*n == 0) return av_errf(err, "empty prompt and no start token: give a prompt");
    return 0;
}

/* Generation needs a tokenizer (to stop and to print) and a decoder-only model with an output head. */
static int can_generate(const av_model *m, int steps, av_err *err) {
    if (!m->tok) return av_errf(err, "the model has no tokenizer: pass --tokenizer");
    if (steps < 0) return av_errf(err, "steps must be >= 0");
    if (m->n_stacks != 1 || !m->stacks[0].cfg.causal || !m->head.out.w.data)
        return av_errf(
            err,
            "%s is not a decoder-only model: generation needs llama or gpt2 (encoder-decoders decode "
            "with run --text, without --target)",
            m->arch);
    return 0;
}

int av_generate_greedy_ids(const av_model *m, const int32_t *ids, size_t n_ids, int steps,
                           av_piece_fn on_piece, void *ctx, int32_t **out_ids, size_t *n_out, av_err *err) {
    if (out_ids) *out_ids = NULL;
    if (n_out) *n_out = 0;
    if (can_generate(m, steps, err)) return -1;
    if (n_ids == 0) return av_errf(err, "no start tokens: give a prompt");
    if (n_ids > (size_t)m->max_seq_len)
        return av_errf(err, "prompt is %zu tokens but the model's context window is %d", n_ids,
                       m->max_seq_len);
    size_t total =
        n_ids + (size_t)steps < (size_t)m->max_seq_len ? n_ids + (size_t)steps : (size_t)m->max_seq_len;
    int32_t *seq = malloc(sizeof *seq * total); /* (total) */
    if (!seq) return av_errf(err, "out of memory");
    memcpy(seq, ids, sizeof *seq * n_ids);
    av_state *s = NULL;
    int n = 0, rc = -1;
    piece_ctx pc = {m->tok, on_piece, ctx};
    if (av_state_new(m, 0, (int)total, 0, &s, err) ||
        av_decode_greedy(m, s, seq, (int)n_ids, (int)total, piece_or_stop, &pc, &n, err))
        goto done;
    if (out_ids) {
        *out_ids = seq;
        seq = NULL;
    }
    if (n_out) *n_out = (size_t)n;
    rc = 0;
done:
    free(seq);
    av_state_free(s);
    return rc;
}

int av_generate_greedy(const av_model *m, const char *prompt, int steps, av_piece_fn on_piece, void *ctx,
                       int32_t **out_ids, size_t *n_out, av_err *err) {
    if (out_ids) *out_ids = NULL;
    if (n_out) *n_out = 0;
    if (can_generate(m, steps, err)) return -1;
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = av_model_prompt_ids(m, prompt, 1, &ids, &n, err);
    if (rc == 0) rc = av_generate_greedy_ids(m, ids, n, steps, on_piece, ctx, out_ids, n_out, err);
    free(ids);
    return rc;
}
