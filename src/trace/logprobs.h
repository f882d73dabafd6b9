/* Log-probabilities in a trace (docs/TRACE_FORMAT.md, version 3): per position the token's own
 * log-probability, the entropy of the distribution that produced it and its k most probable alternatives,
 * plus the generation metadata (prompt_len, generation). Built by generation and by the API importer, saved
 * and loaded with the trace, or derived on first use from stored logits (`attnviz run --logits`). */
#ifndef AV_TRACE_LOGPROBS_H
#define AV_TRACE_LOGPROBS_H

#include "trace/trace.h"

#define AV_LP_MAX_K 1024   /* alternatives per position a trace may hold */
#define AV_LP_DEFAULT_K 10 /* alternatives kept when none is asked for */

typedef struct av_lp_data {
    int n, k;           /* positions (the trace's tokens), alternatives per position */
    float *token;       /* (n) log p(token t | tokens < t); NaN where unknown */
    float *entropy;     /* (n) nats; NaN where unknown */
    int32_t *alt_ids;   /* (n, k) best first; -1 where unknown or absent */
    float *alt_lp;      /* (n, k) NaN where absent */
    int32_t *alt_piece; /* (n, k) index into pieces; -1 where absent */
    char **pieces;      /* (n_pieces) display labels of the alternatives, each once */
    int n_pieces, cap_pieces;
    json_t *piece_index; /* piece -> index while building; NULL once loaded */
} av_lp_data;

/* What a trace holds beside its attention: the table and the parsed generation metadata. */
struct av_gen_state {
    av_lp_data *lp;           /* NULL until set, loaded or derived */
    int derived;              /* lp was computed from the trace's logits (not saved) */
    int prompt_len;           /* -1: not a generation */
    json_t *info;             /* the "generation" object, or NULL */
    char *missing, *sampling; /* JSON texts of info's "missing" and "sampling" */
};

/* An n x k table with every entry unknown (NaN / -1). */
int av_lp_new(int n, int k, av_lp_data **out, av_err *err);
void av_lp_free(av_lp_data *d);
/* Index of a display label in d->pieces (added when new); -1 when out of memory. */
int av_lp_piece(av_lp_data *d, const char *label, av_err *err);

/* Labels of token ids, for alternatives found from a full distribution. */
typedef char *(*av_lp_label_fn)(void *ctx, int32_t id); /* malloc'd label, NULL when out of memory */

/* Row t from a full distribution lp (vocab log-probs, as av_log_softmax gives): the log-probability of token
 * (when token >= 0), the entropy and the k best alternatives, labelled by label(ctx, id). */
int av_lp_fill_row(av_lp_data *d, int t, const float *lp, int vocab, int32_t token, av_lp_label_fn label,
                   void *ctx, av_err *err);

/* Attaches d to the trace (which takes ownership, also on failure) with its generation metadata: prompt_len
 * (-1: not a generation) and generation (a JSON object, borrowed; may be NULL). Sets version 3. */
int av_trace_set_logprobs(av_trace *t, av_lp_data *d, int prompt_len, const json_t *generation, av_err *err);

/* The logprobs.* tensors into w (av_trace_save), and back from a loaded file (av_trace_load). */
int av_lp_save(const av_trace *t, av_st_writer *w, av_err *err);
int av_lp_load(av_trace *t, const char *path, av_err *err);
/* The step data as JSON (steps_json.c): {"prompt_len", "k", "has_attention", "generation", "steps": [{"t",
 * "token", "id", "logprob", "entropy", "alts": [[id, piece, logprob], ...]}]}, at most max_alts alternatives;
 * NaN and unknown ids are null. NULL with a message when the trace has no log-probabilities. */
json_t *av_steps_json(const av_trace *t, int max_alts, av_err *err);
/* The attention kind step views show by default: cross for encoder-decoders (what source a step read), else
 * self, else dec; -1 for a trace without attention. */
int av_steps_default_kind(const av_trace *t, av_attn_kind *out);
/* Frees t->gen (av_trace_free). */
void av_gen_free(struct av_gen_state *g);

#endif
