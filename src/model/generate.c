/* Greedy (temperature 0) decoding with the KV cache: the given start in one batched pass, then one token a
 * step. Decoder-only generation (av_generate_greedy from text, av_generate_greedy_ids from ids) and
 * encoder-decoder decoding (trace/runs.c) use it. */
#include "model.h"

#include <stdlib.h>
#include <string.h>

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

int av_decode_greedy(const av_model *m, av_state *s, int32_t *seq, int n, int cap, av_stop_fn stop, void *ctx,
                     int *n_out, av_err *err) {
    float *logits = malloc(sizeof(float) * (size_t)m->head.n_out); /* (n_out) of the last row */
    av_pass p = {.logits = logits};
    int rc = logits ? av_forward_ids(m, s, seq, n, 0, &p, err) : av_errf(err, "out of memory");
    while (rc == 0 && n < cap) {
        seq[n++] = argmax(logits, m->head.n_out);
        if (stop(ctx, seq, n)) break;
        if (n < cap) rc = av_forward_ids(m, s, seq + n - 1, 1, n - 1, &p, err); /* one new row */
    }
    free(logits);
    *n_out = n;
    return rc;
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

/* The prompt's ids, or the start token (GPT-2's BOS) for an empty prompt that encodes to nothing. */
static int prompt_ids(const av_model *m, const char *prompt, int32_t **ids, size_t *n, av_err *err) {
    if (av_tokenizer_encode(m->tok, prompt ? prompt : "", prompt ? strlen(prompt) : 0, 1, ids, n, err))
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
    int rc = prompt_ids(m, prompt, &ids, &n, err);
    if (rc == 0) rc = av_generate_greedy_ids(m, ids, n, steps, on_piece, ctx, out_ids, n_out, err);
    free(ids);
    return rc;
}
