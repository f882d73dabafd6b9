/* Greedy (temperature 0) generation with the KV cache: the prompt in one batched pass, then one token a step.
 * GPT-2 (family.h, no KV cache) recomputes the whole prefix for every token instead. */
#include "family.h"
#include "model.h"

#include <stdlib.h>
#include <string.h>

/* Logits (vocab) of position n-1, seq[0..first) being in the cache already (Llama family). */
static int next_logits(const av_model *m, av_state *s, const int32_t *seq, int n, int first, float *logits,
                       av_err *err) {
    if (m->family == AV_FAMILY_GPT2) return av_tf_forward_tokens(m, seq, n, NULL, logits, 0, err);
    return av_llama_forward(m, s, seq + first, n - first, first, NULL, logits, 0, err);
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

int av_generate_greedy(av_model *m, const char *prompt, int steps, av_piece_fn on_piece, void *ctx,
                       int32_t **out_ids, size_t *n_out, av_err *err) {
    if (out_ids) *out_ids = NULL;
    if (n_out) *n_out = 0;
    if (!m->tok) return av_errf(err, "the model has no tokenizer: pass --tokenizer");
    if (steps < 0) return av_errf(err, "steps must be >= 0");
    if (m->family != AV_FAMILY_LLAMA && m->family != AV_FAMILY_GPT2)
        return av_errf(
            err,
            "%s is not a decoder-only model: generation needs llama or gpt2 (encoder-decoders decode "
            "with run --text, without --target)",
            m->arch);
    int32_t *prompt_ids;
    size_t np;
    if (av_tokenizer_encode(m->tok, prompt ? prompt : "", prompt ? strlen(prompt) : 0, 1, &prompt_ids, &np,
                            err))
        return -1;
    size_t total = np + (size_t)steps;
    if (total > (size_t)m->max_seq_len) total = (size_t)m->max_seq_len;
    if (np > total) {
        free(prompt_ids);
        return av_errf(err, "prompt is %zu tokens but the model's context window is %d", np, m->max_seq_len);
    }
    int32_t *seq = malloc(sizeof *seq * total);
    float *logits = malloc(sizeof(float) * (size_t)m->vocab_size);
    av_state *s = NULL;
    int rc = -1;
    if (!seq || !logits) {
        av_errf(err, "out of memory");
        goto done;
    }
    memcpy(seq, prompt_ids, sizeof *seq * np);
    if (np == 0 && m->family == AV_FAMILY_GPT2 && m->tf->bos_id >= 0 && total > 0) seq[np++] = m->tf->bos_id;
    if (np == 0) {
        av_errf(err, "empty prompt and no start token: give a prompt");
        goto done;
    }
    if (m->family == AV_FAMILY_LLAMA && av_state_new(m, (int)total, &s, err)) goto done;
    size_t n = np;
    if (next_logits(m, s, seq, (int)np, 0, logits, err)) goto done;
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
            const char *p = av_tokenizer_decode_piece(m->tok, seq[n - 1], next, buf, &len);
            on_piece(ctx, p, len);
        }
        n++;
        if (n < total && next_logits(m, s, seq, (int)n, (int)n - 1, logits, err)) goto done;
    }
    if (out_ids) {
        *out_ids = seq;
        seq = NULL;
    }
    if (n_out) *n_out = n;
    rc = 0;
done:
    free(prompt_ids);
    free(seq);
    free(logits);
    av_state_free(s);
    return rc;
}
