/* Each provider's documented response shape -> tokens with log-probabilities (api.h). Shapes read:
 *   OpenAI chat completions: choices[].logprobs.content[] = {token, logprob, bytes, top_logprobs[]}; streams
 *     carry the same per chunk (choices[].delta); legacy completions: choices[].logprobs = {tokens[],
 *     token_logprobs[], top_logprobs[] ({token: logprob} or null)}, with echo the prompt first;
 *   vLLM: the OpenAI shapes plus prompt_logprobs (completions: per choice; chat: top level) = [null,
 *     {"<id>": {logprob, rank, decoded_token}}, ...], prompt_token_ids, token_ids and stop_reason;
 *   Ollama /api/generate and /api/chat: logprobs[] = {token, logprob, bytes, top_logprobs[]} per document,
 *     done_reason on the last one (streams are JSON lines);
 *   llama.cpp server /completion: completion_probabilities[] = {id, token, bytes, logprob, top_logprobs[]}
 *     (since late 2024), {id, token, bytes, prob, top_probs[]} (post_sampling_probs), or the old
 *     {content, probs[] = {tok_str, prob}}. */
#include "trace/api.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum api_provider {
    P_OPENAI_CHAT = 0,
    P_OPENAI_COMPLETIONS,
    P_VLLM_CHAT,
    P_VLLM_COMPLETIONS,
    P_OLLAMA_GENERATE,
    P_OLLAMA_CHAT,
    P_LLAMACPP,
    P_COUNT
} api_provider;

static const struct {
    const char *name;
    int cap; /* most alternatives the provider returns per token; 0: no fixed limit */
    const char *cap_note;
} providers[P_COUNT] = {
    {"openai-chat", 20, "OpenAI returns at most 20 alternatives per token (top_logprobs <= 20)"},
    {"openai-completions", 5, "OpenAI's legacy completions return at most 5 alternatives per token"},
    {"vllm-chat", 20, "vLLM returns at most --max-logprobs alternatives per token (20 by default)"},
    {"vllm-completions", 20, "vLLM returns at most --max-logprobs alternatives per token (20 by default)"},
    {"ollama-generate", 20, "Ollama returns at most 20 alternatives per token (top_logprobs <= 20)"},
    {"ollama-chat", 20, "Ollama returns at most 20 alternatives per token (top_logprobs <= 20)"},
    {"llamacpp", 0, "llama.cpp returns the n_probs alternatives asked for"},
};

typedef struct parse_ctx {
    api_build *b;
    const char *name;
    int provider; /* -1 until detected */
    int vendor;   /* a vendor forced with --provider openai|vllm|ollama|llamacpp (the shape is detected): the
                     provider index of its chat flavour, or -1 */
    int choice;   /* which choice of several */
    int prompt_done;
    int64_t usage_prompt, usage_completion; /* from "usage", -1 when absent */
} parse_ctx;

/* ---- token text ---- */

/* "\xNN" escapes of OpenAI's "bytes:\xe6\x9c" spelling of partial characters; 0 when s is not that. */
static int unescape_bytes(const char *s, char *buf, size_t *len) {
    if (strncmp(s, "bytes:", 6) != 0) return 0;
    size_t n = 0;
    for (s += 6; *s; s += 4) {
        if (s[0] != '\\' || s[1] != 'x' || n >= AV_API_MAX_TEXT) return 0;
        uint32_t v;
        if (av_hex_parse(s + 2, 2, &v)) return 0;
        buf[n++] = (char)v;
    }
    *len = n;
    return 1;
}

/* The bytes of a token: its "bytes" array when it has one, else its text (key text_key). */
static int token_text(parse_ctx *c, const json_t *entry, const char *text_key, char *buf, size_t *len,
                      av_err *err) {
    const json_t *bytes = json_object_get(entry, "bytes");
    if (json_is_array(bytes)) {
        if (json_array_size(bytes) > AV_API_MAX_TEXT)
            return av_errf(err, "%s: a token of %zu bytes", c->name, json_array_size(bytes));
        size_t i;
        json_t *v;
        json_array_foreach(bytes, i, v) {
            json_int_t x = json_integer_value(v);
            if (!json_is_integer(v) || x < 0 || x > 255)
                return av_errf(err, "%s: \"bytes\" must hold integers 0..255", c->name);
            buf[i] = (char)x;
        }
        *len = json_array_size(bytes);
        return 0;
    }
    const char *s = json_string_value(json_object_get(entry, text_key));
    if (!s) return av_errf(err, "%s: a token without \"%s\" or \"bytes\"", c->name, text_key);
    if (unescape_bytes(s, buf, len)) return 0;
    *len = strlen(s);
    if (*len > AV_API_MAX_TEXT) return av_errf(err, "%s: a token of %zu bytes", c->name, *len);
    memcpy(buf, s, *len);
    return 0;
}

/* A log-probability member: a number (-9999 and below, OpenAI's "not in the top 20", become unknown), or a
 * probability under prob_key (llama.cpp's post-sampling and old shapes). NaN when absent or null. */
static double logprob_of(const json_t *entry, const char *prob_key) {
    const json_t *v = json_object_get(entry, "logprob");
    if (json_is_number(v)) return json_number_value(v) <= -9999 ? NAN : json_number_value(v);
    v = prob_key ? json_object_get(entry, prob_key) : NULL;
    if (json_is_number(v) && json_number_value(v) >= 0 && json_number_value(v) <= 1)
        return log(json_number_value(v));
    return NAN;
}

static int32_t id_of(const json_t *entry) {
    const json_t *v = json_object_get(entry, "id");
    return json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= INT32_MAX
               ? (int32_t)json_integer_value(v)
               : -1;
}

/* Where an entry keeps its parts: {token/bytes, logprob, top_logprobs[]} (OpenAI chat, Ollama, llama.cpp) and
 * llama.cpp's variants. */
typedef struct entry_shape {
    const char *text;     /* the token's text */
    const char *alt_text; /* an alternative's text */
    const char *alts;     /* the alternatives' array */
    const char *prob;     /* a probability member when there is no "logprob" (llama.cpp), or NULL */
} entry_shape;

static const entry_shape shape_logprobs = {"token", "token", "top_logprobs", NULL};
static const entry_shape shape_post_sampling = {"token", "token", "top_probs", "prob"};
static const entry_shape shape_llamacpp_old = {"content", "tok_str", "probs", "prob"};

/* One entry and its alternatives. A token without its own log-probability takes that of the alternative
 * with its text (llama.cpp's old shape gives it only there). */
static int add_entry(parse_ctx *c, const json_t *e, const entry_shape *sh, av_err *err) {
    char buf[AV_API_MAX_TEXT];
    size_t len;
    if (!json_is_object(e)) return av_errf(err, "%s: a log-probability entry is not an object", c->name);
    if (token_text(c, e, sh->text, buf, &len, err) ||
        api_add_token(c->b, buf, len, id_of(e), logprob_of(e, sh->prob), err))
        return -1;
    api_tok *t = &c->b->toks[c->b->n - 1];
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(e, sh->alts), i, a) {
        if (!json_is_object(a)) return av_errf(err, "%s: an alternative is not an object", c->name);
        double lp = logprob_of(a, sh->prob);
        if (token_text(c, a, sh->alt_text, buf, &len, err) || api_add_alt(c->b, buf, len, id_of(a), lp, err))
            return -1;
        if (isnan(t->tok.lp) && len == t->tok.len && memcmp(buf, t->tok.text, len) == 0)
            t->tok.lp = (float)lp;
    }
    return 0;
}

static int add_entries(parse_ctx *c, const json_t *list, const entry_shape *sh, av_err *err) {
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e) if (add_entry(c, e, sh, err)) return -1;
    return 0;
}

/* ---- OpenAI and vLLM ---- */

/* Legacy completions: parallel arrays tokens[], token_logprobs[], top_logprobs[] ({token: logprob}). */
static int add_legacy(parse_ctx *c, const json_t *lp, av_err *err) {
    const json_t *toks = json_object_get(lp, "tokens"), *lps = json_object_get(lp, "token_logprobs"),
                 *tops = json_object_get(lp, "top_logprobs");
    if (!json_is_array(toks) || (lps && json_array_size(lps) != json_array_size(toks)) ||
        (json_is_array(tops) && json_array_size(tops) != json_array_size(toks)))
        return av_errf(err,
                       "%s: logprobs.tokens, token_logprobs and top_logprobs must be arrays of one length",
                       c->name);
    char buf[AV_API_MAX_TEXT];
    for (size_t i = 0; i < json_array_size(toks); i++) {
        const char *s = json_string_value(json_array_get(toks, i));
        const json_t *v = json_array_get(lps, i), *top = json_array_get(tops, i);
        size_t len = s ? strlen(s) : 0;
        if (!s || len > AV_API_MAX_TEXT)
            return av_errf(err, "%s: logprobs.tokens[%zu] is not a token", c->name, i);
        if (!unescape_bytes(s, buf, &len)) memcpy(buf, s, len);
        int32_t id = strncmp(s, "token_id:", 9) == 0 ? (int32_t)strtol(s + 9, NULL, 10) : -1;
        double x = json_is_number(v) ? json_number_value(v) : NAN;
        if (api_add_token(c->b, buf, len, id, x <= -9999 ? NAN : x, err)) return -1;
        const char *key;
        json_t *alt;
        json_object_foreach((json_t *)top, key, alt) {
            size_t n = strlen(key) > AV_API_MAX_TEXT ? AV_API_MAX_TEXT : strlen(key);
            if (!unescape_bytes(key, buf, &n)) memcpy(buf, key, n);
            double y = json_is_number(alt) ? json_number_value(alt) : NAN;
            if (api_add_alt(c->b, buf, n, -1, y <= -9999 ? NAN : y, err)) return -1;
        }
    }
    return 0;
}

/* vLLM's prompt_logprobs: [null, {"<id>": {logprob, rank, decoded_token}}, ...]. The prompt token is the
 * entry whose id prompt_token_ids gives, else the first one (vLLM lists it first). */
static int add_prompt_logprobs(parse_ctx *c, const json_t *pl, const json_t *ids, av_err *err) {
    if (!json_is_array(pl) || c->prompt_done || c->b->n) return 0;
    c->prompt_done = 1;
    for (size_t i = 0; i < json_array_size(pl); i++) {
        const json_t *pos = json_array_get(pl, i), *idv = json_array_get(ids, i);
        int32_t want = json_is_integer(idv) ? (int32_t)json_integer_value(idv) : -1;
        const char *key, *tok_key = NULL;
        json_t *e, *tok = NULL;
        json_object_foreach((json_t *)pos, key, e) if (!tok || atoi(key) == want) tok = e, tok_key = key;
        const char *text = json_string_value(json_object_get(tok, "decoded_token"));
        if (!tok) { /* the first prompt token has no distribution: only its id, when given */
            if (api_add_token(c->b, "", 0, want, NAN, err)) return -1;
            continue;
        }
        if (api_add_token(c->b, text ? text : "", text ? strlen(text) : 0, (int32_t)atoi(tok_key),
                          logprob_of(tok, NULL), err))
            return -1;
        json_object_foreach((json_t *)pos, key, e) {
            text = json_string_value(json_object_get(e, "decoded_token"));
            if (api_add_alt(c->b, text ? text : "", text ? strlen(text) : 0, (int32_t)atoi(key),
                            logprob_of(e, NULL), err))
                return -1;
        }
    }
    c->b->n_prompt = c->b->n;
    return api_note(c->b, "prompt log-probabilities from vLLM's prompt_logprobs", err);
}

/* The choice's stop: finish_reason, and vLLM's stop_reason (the stop string, or the stop token's id). */
static int choice_stop(parse_ctx *c, const json_t *ch, av_err *err) {
    const json_t *fr = json_object_get(ch, "finish_reason"), *sr = json_object_get(ch, "stop_reason");
    if (json_is_string(fr) && api_set(c->b, "stop_reason", json_copy((json_t *)fr), err)) return -1;
    if ((json_is_string(sr) || json_is_integer(sr)) && api_set(c->b, "stop", json_copy((json_t *)sr), err))
        return -1;
    return 0;
}

static int openai_choice(parse_ctx *c, const json_t *doc, const json_t *ch, av_err *err) {
    const json_t *pl = json_object_get(ch, "prompt_logprobs");
    if (!pl) pl = json_object_get(doc, "prompt_logprobs");
    const json_t *pids = json_object_get(ch, "prompt_token_ids");
    if (!pids) pids = json_object_get(doc, "prompt_token_ids");
    if (add_prompt_logprobs(c, pl, pids, err)) return -1;
    const json_t *lp = json_object_get(ch, "logprobs");
    int first = c->b->n;
    if (json_is_array(json_object_get(lp, "content"))) {
        if (add_entries(c, json_object_get(lp, "content"), &shape_logprobs, err)) return -1;
    } else if (json_is_object(lp) && add_legacy(c, lp, err)) {
        return -1;
    }
    const json_t *tids = json_object_get(ch, "token_ids"); /* vLLM return_token_ids: ids of this chunk */
    if (json_array_size(tids) == (size_t)(c->b->n - first))
        for (int i = first; i < c->b->n; i++) {
            const json_t *v = json_array_get(tids, (size_t)(i - first));
            if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= INT32_MAX)
                c->b->toks[i].tok.id = (int32_t)json_integer_value(v);
        }
    return choice_stop(c, ch, err);
}

static int openai_doc(parse_ctx *c, const json_t *doc, av_err *err) {
    const json_t *usage = json_object_get(doc, "usage"), *ch;
    if (json_is_integer(json_object_get(usage, "prompt_tokens")))
        c->usage_prompt = json_integer_value(json_object_get(usage, "prompt_tokens"));
    if (json_is_integer(json_object_get(usage, "completion_tokens")))
        c->usage_completion = json_integer_value(json_object_get(usage, "completion_tokens"));
    size_t i;
    json_array_foreach(json_object_get(doc, "choices"), i, ch) {
        const json_t *ix = json_object_get(ch, "index");
        if ((json_is_integer(ix) ? json_integer_value(ix) : (json_int_t)i) != c->choice) continue;
        if (openai_choice(c, doc, ch, err)) return -1;
    }
    return 0;
}

/* ---- Ollama and llama.cpp ---- */

/* The response's model name, the first one given. */
static int take_model(parse_ctx *c, const json_t *model, av_err *err) {
    if (!c->b->model && json_is_string(model) && !(c->b->model = av_strdup(json_string_value(model))))
        return av_errf(err, "out of memory");
    return 0;
}

static int ollama_doc(parse_ctx *c, const json_t *doc, av_err *err) {
    const json_t *dr = json_object_get(doc, "done_reason");
    if (add_entries(c, json_object_get(doc, "logprobs"), &shape_logprobs, err)) return -1;
    return json_is_string(dr) ? api_set(c->b, "stop_reason", json_copy((json_t *)dr), err) : 0;
}

/* llama.cpp's stop: stop_type "eos"/"word"/"limit" (stopping_word), or the old stopped_* flags. */
static int llamacpp_stop(parse_ctx *c, const json_t *doc, av_err *err) {
    const char *type = json_string_value(json_object_get(doc, "stop_type"));
    if (!type)
        type = json_is_true(json_object_get(doc, "stopped_eos"))     ? "eos"
               : json_is_true(json_object_get(doc, "stopped_word"))  ? "word"
               : json_is_true(json_object_get(doc, "stopped_limit")) ? "limit"
                                                                     : NULL;
    const char *word = json_string_value(json_object_get(doc, "stopping_word"));
    if (type && strcmp(type, "none") != 0 && api_set(c->b, "stop_reason", json_string(type), err)) return -1;
    return word && *word ? api_set(c->b, "stop", json_string(word), err) : 0;
}

/* The last chunk of old llama.cpp streams ("stop": true) repeats every token's probabilities: 1 when it does.
 */
static int repeats_stream(const parse_ctx *c, const json_t *doc, const json_t *cp, const entry_shape *sh) {
    size_t n = json_array_size(cp);
    if (!json_is_true(json_object_get(doc, "stop")) || n == 0 || n > (size_t)c->b->n) return 0;
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_object_get(json_array_get(cp, i), sh->text));
        const api_alt *t = &c->b->toks[(size_t)c->b->n - n + i].tok;
        if (!s || strlen(s) != t->len || memcmp(s, t->text, t->len) != 0) return 0;
    }
    return 1;
}

static int llamacpp_doc(parse_ctx *c, const json_t *doc, av_err *err) {
    const json_t *cp = json_object_get(doc, "completion_probabilities"), *e0 = json_array_get(cp, 0);
    if (take_model(c, json_object_get(json_object_get(doc, "generation_settings"), "model"), err)) return -1;
    const entry_shape *sh = json_object_get(e0, "probs") ? &shape_llamacpp_old
                            : json_object_get(e0, "top_probs") || json_object_get(e0, "prob")
                                ? &shape_post_sampling
                                : &shape_logprobs;
    if (sh == &shape_post_sampling &&
        api_note(c->b, "llama.cpp post_sampling_probs: probabilities after its sampler chain", err))
        return -1;
    if (!repeats_stream(c, doc, cp, sh) && add_entries(c, cp, sh, err)) return -1;
    return llamacpp_stop(c, doc, err);
}

/* ---- detection and the walk ---- */

/* The provider a document's shape suggests; -1 when none fits. */
static int shape_provider(const json_t *doc) {
    const json_t *ch = json_array_get(json_object_get(doc, "choices"), 0);
    if (json_is_array(json_object_get(doc, "choices"))) {
        int chat = json_object_get(ch, "message") || json_object_get(ch, "delta") ||
                   json_is_array(json_object_get(json_object_get(ch, "logprobs"), "content"));
        int vllm = json_object_get(doc, "prompt_logprobs") || json_object_get(ch, "prompt_logprobs") ||
                   json_object_get(ch, "stop_reason") || json_object_get(ch, "token_ids");
        return vllm ? (chat ? P_VLLM_CHAT : P_VLLM_COMPLETIONS)
                    : (chat ? P_OPENAI_CHAT : P_OPENAI_COMPLETIONS);
    }
    if (json_object_get(doc, "completion_probabilities")) return P_LLAMACPP;
    if (json_object_get(doc, "done") || json_object_get(doc, "created_at"))
        return json_object_get(doc, "message") ? P_OLLAMA_CHAT : P_OLLAMA_GENERATE;
    return -1;
}

/* The provider: from the shape, in the flavour (chat or completions) of a vendor given with --provider. */
static int detect(const parse_ctx *c, const json_t *doc) {
    int p = shape_provider(doc);
    if (p < 0 || c->vendor < 0) return p;
    int chat = p == P_OPENAI_CHAT || p == P_VLLM_CHAT || p == P_OLLAMA_CHAT;
    switch (c->vendor) {
    case P_OPENAI_CHAT: return chat ? P_OPENAI_CHAT : P_OPENAI_COMPLETIONS;
    case P_VLLM_CHAT: return chat ? P_VLLM_CHAT : P_VLLM_COMPLETIONS;
    case P_OLLAMA_CHAT: return chat ? P_OLLAMA_CHAT : P_OLLAMA_GENERATE;
    default: return P_LLAMACPP;
    }
}

static int on_doc(void *ctx, json_t *doc, int index, av_err *err) {
    parse_ctx *c = ctx;
    const json_t *e = json_object_get(doc, "error");
    if (e) {
        const char *msg =
            json_is_string(e) ? json_string_value(e) : json_string_value(json_object_get(e, "message"));
        return av_errf(err, "%s: the provider answered with an error: %.200s", c->name,
                       msg ? msg : "(no message)");
    }
    if (!json_is_object(doc)) return av_errf(err, "%s: document %d is not a JSON object", c->name, index + 1);
    if (c->provider < 0) {
        c->provider = detect(c, doc);
        if (c->provider < 0)
            return av_errf(err,
                           "%s: not a response this importer knows (OpenAI, vLLM, Ollama, llama.cpp): no "
                           "\"choices\", \"completion_probabilities\" or \"done\"",
                           c->name);
    }
    if (take_model(c, json_object_get(doc, "model"), err)) return -1;
    if (json_object_get(doc, "choices"))
        return openai_doc(c, doc, err); /* also OpenAI-compatible endpoints */
    if (json_object_get(doc, "completion_probabilities")) return llamacpp_doc(c, doc, err);
    return ollama_doc(c, doc, err);
}

/* --provider: a provider name, a vendor (openai, vllm, ollama, llamacpp: its shapes detected), or auto. */
static int parse_provider(parse_ctx *c, const char *name, av_err *err) {
    static const struct {
        const char *name;
        int vendor;
    } vendors[] = {{"openai", P_OPENAI_CHAT},
                   {"vllm", P_VLLM_CHAT},
                   {"ollama", P_OLLAMA_CHAT},
                   {"llamacpp", P_LLAMACPP}};
    c->provider = c->vendor = -1;
    if (!name || strcmp(name, "auto") == 0) return 0;
    for (size_t i = 0; i < sizeof vendors / sizeof vendors[0]; i++)
        if (strcmp(name, vendors[i].name) == 0) return c->vendor = vendors[i].vendor, 0;
    for (int p = 0; p < P_COUNT; p++)
        if (strcmp(name, providers[p].name) == 0) return c->provider = p, 0;
    return av_errf(err,
                   "unknown provider '%s' (auto, openai, vllm, ollama, llamacpp, openai-chat, "
                   "openai-completions, vllm-chat, vllm-completions, ollama-generate, ollama-chat)",
                   name);
}

/* The legacy completions' echo: the prompt is the first usage.prompt_tokens tokens. */
static void echo_prompt(parse_ctx *c) {
    if (c->b->n_prompt == 0 && c->usage_prompt > 0 && c->usage_completion >= 0 &&
        c->usage_prompt + c->usage_completion == c->b->n)
        c->b->n_prompt = (int)c->usage_prompt;
}

/* Provider, cap and what the response lacks, into the "generation" object. */
static int finish_info(parse_ctx *c, av_err *err) {
    api_build *b = c->b;
    int k = 0;
    for (int i = 0; i < b->n; i++)
        if (b->toks[i].n_alts > k) k = b->toks[i].n_alts;
    if (api_set(b, "provider", json_string(providers[c->provider].name), err) ||
        api_set(b, "top_logprobs", json_integer(k), err) ||
        (providers[c->provider].cap &&
         api_set(b, "alternatives_cap", json_integer(providers[c->provider].cap), err)) ||
        api_note(b, providers[c->provider].cap_note, err) || api_missing(b, "entropy", err))
        return -1;
    if (b->n_prompt == 0 && (api_missing(b, "prompt", err) || api_missing(b, "prompt_logprobs", err)))
        return -1;
    if (k == 0 &&
        (api_missing(b, "alternatives", err) ||
         api_note(b, "no alternatives: ask for top_logprobs (OpenAI, vLLM, Ollama) or n_probs (llama.cpp)",
                  err)))
        return -1;
    return 0;
}

int api_parse(const char *data, size_t size, const char *name, const char *provider, int choice, api_build *b,
              av_err *err) {
    parse_ctx c = {b, name, -1, -1, choice, 0, -1, -1};
    if (parse_provider(&c, provider, err) || av_api_walk(data, size, name, on_doc, &c, err) < 0) return -1;
    if (c.provider < 0) return av_errf(err, "%s: no response in the input", name);
    if (b->n == 0)
        return av_errf(err,
                       "%s: the response holds no log-probabilities (ask for them: logprobs/top_logprobs for "
                       "OpenAI, vLLM and Ollama, n_probs for llama.cpp)%s",
                       name, choice ? " or no choice with that index" : "");
    echo_prompt(&c);
    return finish_info(&c, err);
}
