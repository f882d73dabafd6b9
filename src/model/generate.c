/* Greedy (temperature 0) generation of decoder-only models with the KV cache: the prompt in one batched pass,
 * then one token a step. */
#include "model.h"

#include <stdlib.h>
#include <string.h>

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* The prompt's ids, or the start token (GPT-2's BOS) for an empty prompt that encodes to nothing. */
static int prompt_ids(const av_model *m, const char *prompt, int32_t **ids, size_t *n, av_err *err) {
    if (av_tokenizer_encode(m->tok, prompt ? prompt : "", prompt ? strlen(prompt) : 0, 1, ids, n, err)) return -1;
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

int av_generate_greedy(const av_model *m, const char *prompt, int steps, av_piece_fn on_piece, void *ctx,
                       int32_t **out_ids, size_t *n_out, av_err *err) {
    if (out_ids) *out_ids = NULL;
    if (n_out) *n_out = 0;
    if (!m->tok) return av_errf(err, "the model has no tokenizer: pass --tokenizer");
    if (steps < 0) return av_errf(err, "steps must be >= 0");
    if (m->n_stacks != 1 || !m->stacks[0].cfg.causal || !m->head.out.w.data)
        return av_errf(err, "%s is not a decoder-only model: generation needs llama or gpt2 (encoder-decoders decode "
                            "with run --text, without --target)", m->arch);
    int32_t *seq = NULL;
    size_t np = 0;
    if (prompt_ids(m, prompt, &seq, &np, err)) {
        free(seq);
        return -1;
    }
    size_t total = np + (size_t)steps;
    if (total > (size_t)m->max_seq_len) total = (size_t)m->max_seq_len;
    float *logits = NULL; /* (vocab) */
    av_state *s = NULL;
    av_pass p = {0};
    size_t n = np;
    int rc = -1;
    if (np > total) {
        av_errf(err, "prompt is %zu tokens but the model's context window is %d", np, m->max_seq_len);
        goto done;
    }
    int32_t *grown = realloc(seq, sizeof *seq * total);
    if (grown) seq = grown;
    if (!grown || !(p.logits = logits = malloc(sizeof(float) * (size_t)m->vocab_size))) {
        av_errf(err, "out of memory");
        goto done;
    }
    if (av_state_new(m, 0, (int)total, 0, &s, err) || av_forward_ids(m, s, seq, (int)np, 0, &p, err)) goto done;
    while (n < total) {
        int next = argmax(logits, m->vocab_size);
        seq[n] = next;
        if (next == av_tokenizer_eos(m->tok) || next == av_tokenizer_bos(m->tok)) {
            n++;
            break;
        }
        if (on_piece) {
            char buf[8];
            size_t len;
            const char *piece = av_tokenizer_decode_piece(m->tok, seq[n - 1], next, buf, &len);
            on_piece(ctx, piece, len);
        }
        n++;
        if (n < total && av_forward_ids(m, s, seq + n - 1, 1, (int)n - 1, &p, err)) goto done; /* one new row */
    }
    if (out_ids) {
        *out_ids = seq;
        seq = NULL;
    }
    if (n_out) *n_out = n;
    rc = 0;
done:
    free(seq);
    free(logits);
    av_state_free(s);
    return rc;
}
