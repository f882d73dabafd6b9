/* The log-probabilities of a trace as one JSON object, for the viewer page, `attnviz show --steps --json` and
 * the server (docs/VIEWER.md, "Step view"). */
#include "trace/logprobs.h"

#include <math.h>

static json_t *num_or_null(float v) { return isnan(v) ? json_null() : json_real((double)v); }

/* [[id or null, piece, logprob], ...] of position i, at most max_alts. */
static json_t *alternatives(const av_logprob_view *v, int i, int max_alts) {
    json_t *a = json_array();
    for (int j = 0; a && j < v->k && j < max_alts; j++) {
        size_t at = (size_t)i * (size_t)v->k + (size_t)j;
        int32_t pi = v->alt_pieces[at];
        if (pi < 0) break;
        json_array_append_new(a, json_pack("[o, s, o]",
                                           v->alt_ids[at] >= 0 ? json_integer(v->alt_ids[at]) : json_null(),
                                           v->pieces[pi], num_or_null(v->alt_logprobs[at])));
    }
    return a;
}

static json_t *generation_json(const av_trace *t, const av_generation_info *g) {
    const char *text = av_trace_meta(t, "generation");
    json_t *o = text ? json_loads(text, 0, NULL) : NULL;
    if (!json_is_object(o)) {
        json_decref(o);
        o = json_object();
    }
    if (g->source && !json_object_get(o, "source")) json_object_set_new(o, "source", json_string(g->source));
    return o;
}

json_t *av_steps_json(const av_trace *t, int max_alts, av_err *err) {
    av_logprob_view v;
    av_generation_info g;
    if (av_trace_logprobs(t, &v, err)) return NULL;
    av_trace_generation_info(t, &g);
    json_t *steps = json_array();
    for (int i = 0; steps && i < v.n_tokens; i++) {
        json_t *s =
            json_pack("{s:i, s:s, s:o, s:o, s:o, s:o}", "t", i, "token", av_trace_token(t, i), "id",
                      av_trace_token_id(t, i) >= 0 ? json_integer(av_trace_token_id(t, i)) : json_null(),
                      "logprob", num_or_null(v.token[i]), "entropy", num_or_null(v.entropy[i]), "alts",
                      alternatives(&v, i, max_alts));
        if (!s || json_array_append_new(steps, s)) {
            json_decref(steps);
            steps = NULL;
        }
    }
    json_t *o = steps ? json_pack("{s:o, s:i, s:b, s:o, s:o}", "prompt_len",
                                  g.prompt_len >= 0 ? json_integer(g.prompt_len) : json_null(), "k",
                                  v.k < max_alts ? v.k : max_alts, "has_attention", av_trace_has_attention(t),
                                  "generation", generation_json(t, &g), "steps", steps)
                      : NULL;
    if (!o) av_errf(err, "out of memory building the step data");
    return o;
}

int av_steps_default_kind(const av_trace *t, av_attn_kind *out) {
    static const av_attn_kind order[] = {AV_ATTN_CROSS, AV_ATTN_SELF, AV_ATTN_DEC};
    for (int i = 0; i < 3; i++)
        if (av_trace_n_layers(t, order[i])) return *out = order[i], 0;
    return -1;
}
