/* Generation (attnviz generate, docs/GENERATION.md): the one decoder with the KV cache (model/generate.c)
 * picks each token by the sampler (kernels/sample.c) and this file records, per position, the token's
 * log-probability under the model, the entropy of its distribution and the k most probable alternatives (the
 * prompt's tokens too), stops at end-of-sequence, a stop string or the step budget, then captures every
 * layer's attention of the whole sequence (one more pass, as `attnviz run` does) into a version 3 trace.
 * Decoder-only models continue a prompt; encoder-decoders translate it, decoding from their start token. */
#include "capture.h"
#include "kernels/sample.h"
#include "trace/logprobs.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

av_generate_params av_generate_default_params(void) {
    av_generate_params p;
    memset(&p, 0, sizeof p);
    p.steps = 64;
    p.sampling = av_sampling_default_params();
    p.top_logprobs = AV_LP_DEFAULT_K;
    p.add_bos = 1;
    p.want_attention = 1;
    p.run = av_run_default_params();
    return p;
}

typedef enum stop_reason { STOP_LENGTH = 0, STOP_CONTEXT, STOP_EOS, STOP_STRING } stop_reason;
static const char *const k_stop_names[] = {"length", "context", "eos", "stop"};

typedef struct gen_run {
    const av_model *m;
    const av_generate_params *p;
    int encdec;
    av_rng rng;
    av_sample_work work;
    float *lp_row;      /* (vocab) log-softmax of the row at hand */
    av_lp_data *lp;     /* (cap positions, k) */
    const int32_t *seq; /* the sequence being decoded */
    int n;              /* tokens so far: the next one goes to position n */
    av_buf text;        /* the produced text, for stop strings */
    stop_reason why;
    int stop_hit; /* index of the stop string found */
} gen_run;

/* An alternative's label: the tokenizer's display of the token alone. */
static char *alt_label(void *ctx, int32_t id) {
    const gen_run *g = ctx;
    char *s = g->m->tok ? av_tokenizer_display(g->m->tok, &id, 1, 0) : NULL;
    return s ? s : av_trace_id_label(id);
}

/* Row `pos` of the table from the logits that predict it, with its token. */
static int record(gen_run *g, const float *logits, int vocab, int pos, int32_t token, av_err *err) {
    av_log_softmax(logits, vocab, g->lp_row);
    return av_lp_fill_row(g->lp, pos, g->lp_row, vocab, token, alt_label, g, err);
}

/* The prompt's rows (decoder-only prompts): row r predicts token r + 1. */
static int prompt_rows(void *ctx, const float *logits, int row0, int n_rows, av_err *err) {
    gen_run *g = ctx;
    int V = g->m->head.n_out;
    for (int r = row0; r < row0 + n_rows && r + 1 < g->n; r++)
        if (record(g, logits + (size_t)(r - row0) * (size_t)V, V, r + 1, g->seq[r + 1], err)) return -1;
    return 0;
}

static int32_t next_token(void *ctx, const float *logits, int vocab, av_err *err) {
    gen_run *g = ctx;
    int32_t id = av_sample_next(logits, vocab, &g->p->sampling, &g->rng, &g->work);
    if (id < 0) {
        av_errf(err, "the model's logits at position %d hold NaN or no finite value", g->n - 1);
        return -1;
    }
    return record(g, logits, vocab, g->n, id, err) ? -1 : id;
}

/* After each new token: end-of-sequence, the produced text (streamed to on_piece) and the stop strings. */
static int stop_here(void *ctx, const int32_t *seq, int n) {
    gen_run *g = ctx;
    g->n = n;
    const av_tokenizer *tok = g->m->tok;
    int id = seq[n - 1], eos = g->encdec || !tok ? g->m->eos_id : av_tokenizer_eos(tok),
        bos = g->encdec || !tok ? -1 : av_tokenizer_bos(tok);
    if (!g->p->ignore_eos && (id == eos || id == bos)) return g->why = STOP_EOS, 1;
    if (!tok) return 0; /* ids only: no text to stream or to search */
    char buf[8];
    size_t len, before = g->text.n;
    const char *piece = av_tokenizer_decode_piece(g->m->tok, seq[n - 2], id, buf, &len);
    av_buf_put(&g->text, piece, len);
    if (g->p->on_piece) g->p->on_piece(g->p->piece_ctx, piece, len);
    for (int i = 0; i < g->p->n_stop && !g->text.oom; i++) {
        size_t sl = strlen(g->p->stop[i]), from = before >= sl ? before - sl + 1 : 0;
        for (size_t k = from; sl && k + sl <= g->text.n; k++)
            if (memcmp(g->text.s + k, g->p->stop[i], sl) == 0)
                return g->why = STOP_STRING, g->stop_hit = i, 1;
    }
    return 0;
}

/* ---- the run ---- */

static int gen_init(gen_run *g, const av_model *m, const av_generate_params *p, int cap, av_err *err) {
    memset(g, 0, sizeof *g);
    g->m = m, g->p = p, g->encdec = m->family == AV_FAMILY_ENCDEC;
    int V = m->head.n_out;
    av_rng_seed(&g->rng, p->sampling.seed);
    g->work.ids = malloc(sizeof(int32_t) * (size_t)V);
    g->work.p = malloc(sizeof(double) * (size_t)V);
    g->lp_row = malloc(sizeof(float) * (size_t)V);
    if (!g->work.ids || !g->work.p || !g->lp_row) return av_errf(err, "out of memory");
    return av_lp_new(cap, p->top_logprobs < V ? p->top_logprobs : V, &g->lp, err);
}

static void gen_free(gen_run *g) {
    free(g->work.ids);
    free(g->work.p);
    free(g->lp_row);
    av_lp_free(g->lp);
    free(g->text.s);
}

/* The "generation" metadata: settings and why it stopped. */
static json_t *gen_info(const gen_run *g) {
    const av_sampling *s = &g->p->sampling;
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:i, s:i, s:{s:f, s:i, s:f, s:f, s:I}}", "source", "attnviz", "decoding",
                  s->temperature > 0 ? "sampled" : "greedy", "stop_reason", k_stop_names[g->why],
                  "top_logprobs", g->lp->k, "steps", g->p->steps, "sampling", "temperature", s->temperature,
                  "top_k", s->top_k, "top_p", s->top_p, "min_p", s->min_p, "seed", (json_int_t)s->seed);
    if (o && g->why == STOP_STRING) json_object_set_new(o, "stop", json_string(g->p->stop[g->stop_hit]));
    return o;
}

/* Decodes from seq[0..n) on the decoder's state s up to cap tokens; *n_out the length reached. */
static int decode(gen_run *g, av_state *s, int32_t *seq, int n, int cap, int *n_out, av_err *err) {
    g->seq = seq, g->n = n;
    av_decoder d = {next_token, stop_here, g, g->encdec ? NULL : prompt_rows};
    if (av_decode(g->m, s, seq, n, cap, &d, n_out, err)) return -1;
    if (g->text.oom) return av_errf(err, "out of memory");
    if (*n_out == cap && g->why == STOP_LENGTH && cap - n < g->p->steps) g->why = STOP_CONTEXT;
    return 0;
}

/* The trace of seq: every layer's attention (one more pass), or only the tokens. */
static int sequence_trace(const av_model *m, const int32_t *src, size_t n_src, const int32_t *seq, int n,
                          const av_generate_params *p, av_trace **out, av_err *err) {
    if (p->want_attention)
        return m->family == AV_FAMILY_ENCDEC
                   ? av_trace_from_pair_ids(m, src, n_src, seq, (size_t)n, 0, &p->run, out, err)
                   : av_trace_from_ids(m, seq, (size_t)n, &p->run, out, err);
    av_trace *t = av_trace_new();
    if (!t) return av_errf(err, "out of memory");
    if (av_cap_set_tokens(m, t, seq, (size_t)n, err) || av_trace_set_meta(t, "model", m->name, err) ||
        av_trace_set_meta(t, "arch", m->arch, err)) {
        av_trace_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

static int check_params(const av_model *m, const av_generate_params *p, av_err *err) {
    if (!m->tok && p->n_stop)
        return av_errf(err, "stop strings need the model's tokenizer: pass --tokenizer");
    if (p->steps < 1) return av_errf(err, "steps must be at least 1, got %d", p->steps);
    if (p->top_logprobs < 0 || p->top_logprobs > AV_LP_MAX_K)
        return av_errf(err, "top_logprobs must be in [0, %d], got %d", AV_LP_MAX_K, p->top_logprobs);
    if (m->family == AV_FAMILY_ENCDEC) return av_sampling_check(&p->sampling, err);
    if (m->n_stacks != 1 || !m->stacks[0].cfg.causal || !m->head.out.w.data)
        return av_errf(err,
                       "%s cannot generate: generation needs a decoder (Llama family, GPT-2) or an "
                       "encoder-decoder",
                       m->arch);
    return av_sampling_check(&p->sampling, err);
}

int av_generate_ids(const av_model *m, const int32_t *ids, size_t n_ids, const av_generate_params *p,
                    av_trace **out, av_err *err) {
    *out = NULL;
    av_generate_params dp = av_generate_default_params();
    if (!p) p = &dp;
    if (check_params(m, p, err)) return -1;
    int encdec = m->family == AV_FAMILY_ENCDEC;
    if (n_ids == 0)
        return av_errf(err, encdec ? "empty source: nothing to translate" : "empty prompt: no tokens");
    if (n_ids >= (size_t)m->max_seq_len)
        return av_errf(err, "the %s is %zu tokens but the model's context window is %d",
                       encdec ? "source" : "prompt", n_ids, m->max_seq_len);
    int start = encdec ? 1 : (int)n_ids,
        cap = start + p->steps < m->max_seq_len ? start + p->steps : m->max_seq_len;
    int32_t *seq = malloc(sizeof *seq * (size_t)cap);
    gen_run g;
    memset(&g, 0, sizeof g);
    av_state *s = NULL;
    int n = 0, rc = !seq ? av_errf(err, "out of memory") : gen_init(&g, m, p, cap, err);
    if (!rc && encdec) {
        seq[0] = m->dec_start_id;
        rc = av_state_new(m, 1, cap, p->run.n_threads, &s, err) ||
             av_run_encode_source(m, NULL, ids, (int)n_ids, s, p->run.n_threads, err);
    } else if (!rc) {
        memcpy(seq, ids, sizeof *seq * n_ids);
        rc = av_state_new(m, 0, cap, p->run.n_threads, &s, err);
    }
    if (!rc) rc = decode(&g, s, seq, start, cap, &n, err);
    av_state_free(s);
    if (!rc) rc = sequence_trace(m, ids, n_ids, seq, n, p, out, err);
    json_t *info = rc ? NULL : gen_info(&g);
    if (!rc) {
        g.lp->n = n; /* rows beyond the sequence are never read */
        rc = av_trace_set_logprobs(*out, g.lp, start, info, err) ||
             (encdec &&
              av_trace_set_meta(*out, "decoding", p->sampling.temperature > 0 ? "sampled" : "greedy", err));
        g.lp = NULL;
    }
    json_decref(info);
    if (rc && *out) av_trace_free(*out), *out = NULL;
    gen_free(&g);
    free(seq);
    return rc ? -1 : 0;
}

int av_generate(const av_model *m, const char *prompt, const av_generate_params *p, av_trace **out,
                av_err *err) {
    *out = NULL;
    av_generate_params dp = av_generate_default_params();
    if (!p) p = &dp;
    int32_t *ids = NULL;
    size_t n = 0;
    if (check_params(m, p, err)) return -1;
    int rc = m->family == AV_FAMILY_ENCDEC ? av_run_source_ids(m, prompt, &ids, &n, err)
                                           : av_model_prompt_ids(m, prompt, p->add_bos, &ids, &n, err);
    if (!rc) rc = av_generate_ids(m, ids, n, p, out, err);
    free(ids);
    return rc;
}
