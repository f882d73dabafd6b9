/* The tokens read from an API response -> a trace with labels, a log-probability table and the "generation"
 * metadata (api.h). */
#include "trace/api.h"

#include "trace/logprobs.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int build_init(api_build *b, const char *name, int max_alts, av_err *err) {
    memset(b, 0, sizeof *b);
    b->name = name;
    b->max_alts = max_alts > 0 && max_alts < AV_LP_MAX_K ? max_alts : AV_LP_MAX_K;
    b->info = json_pack("{s:s, s:[s]}", "source", "api", "missing", "attention");
    return b->info ? 0 : av_errf(err, "out of memory");
}

static void build_free(api_build *b) {
    for (int i = 0; i < b->n; i++) {
        free(b->toks[i].tok.text);
        for (int j = 0; j < b->toks[i].n_alts; j++)
            free(b->toks[i].alts[j].text);
        free(b->toks[i].alts);
    }
    free(b->toks);
    free(b->model);
    json_decref(b->info);
    memset(b, 0, sizeof *b);
}

static int fill_alt(api_alt *a, const char *text, size_t len, int32_t id, double lp, const char *name,
                    av_err *err) {
    if (len > AV_API_MAX_TEXT)
        return av_errf(err, "%s: a token of %zu bytes (at most %d)", name, len, AV_API_MAX_TEXT);
    if (!isnan(lp) && lp > 1e-3) return av_errf(err, "%s: log-probability %g is above 0", name, lp);
    a->text = malloc(len ? len : 1);
    if (!a->text) return av_errf(err, "out of memory");
    if (len) memcpy(a->text, text, len);
    a->len = len, a->id = id, a->lp = (float)lp;
    return 0;
}

int api_add_token(api_build *b, const char *text, size_t len, int32_t id, double lp, av_err *err) {
    if (b->n >= AV_API_MAX_TOKENS) return av_errf(err, "%s: more than %d tokens", b->name, AV_API_MAX_TOKENS);
    if (b->n == b->cap) {
        int cap = b->cap ? 2 * b->cap : 256;
        api_tok *p = realloc(b->toks, sizeof *p * (size_t)cap);
        if (!p) return av_errf(err, "out of memory");
        b->toks = p, b->cap = cap;
    }
    api_tok *t = &b->toks[b->n];
    memset(t, 0, sizeof *t);
    if (fill_alt(&t->tok, text, len, id, lp, b->name, err)) return -1;
    b->n++;
    return 0;
}

int api_add_alt(api_build *b, const char *text, size_t len, int32_t id, double lp, av_err *err) {
    if (b->n == 0) return av_errf(err, "%s: alternatives before any token", b->name);
    api_tok *t = &b->toks[b->n - 1];
    if (t->n_alts >= b->max_alts) {
        b->truncated++;
        return 0;
    }
    if (t->n_alts == t->cap_alts) {
        int cap = t->cap_alts ? 2 * t->cap_alts : 8;
        api_alt *p = realloc(t->alts, sizeof *p * (size_t)cap);
        if (!p) return av_errf(err, "out of memory");
        t->alts = p, t->cap_alts = cap;
    }
    if (fill_alt(&t->alts[t->n_alts], text, len, id, lp, b->name, err)) return -1;
    t->n_alts++;
    return 0;
}

int api_set(api_build *b, const char *key, json_t *value, av_err *err) {
    return value && json_object_set_new(b->info, key, value) == 0 ? 0 : av_errf(err, "out of memory");
}

/* Appends text to the array member key of the generation object, once. */
static int add_to_list(api_build *b, const char *key, const char *text, av_err *err) {
    json_t *a = json_object_get(b->info, key);
    if (!a && api_set(b, key, a = json_array(), err)) return -1;
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) if (strcmp(json_string_value(v), text) == 0) return 0;
    return json_array_append_new(a, json_string(text)) ? av_errf(err, "out of memory") : 0;
}

int api_missing(api_build *b, const char *what, av_err *err) { return add_to_list(b, "missing", what, err); }
int api_note(api_build *b, const char *text, av_err *err) { return add_to_list(b, "notes", text, err); }

/* ---- the trace ---- */

static int by_lp_desc(const void *a, const void *b) {
    float x = ((const api_alt *)a)->lp, y = ((const api_alt *)b)->lp;
    if (isnan(x) || isnan(y)) return isnan(x) - isnan(y);
    return x > y ? -1 : x < y;
}

/* Display labels of the tokens, read as one text (a character split over tokens shows on its first). */
static char **token_labels(const api_build *b, av_err *err) {
    const char **texts = malloc(sizeof *texts * (size_t)b->n);
    size_t *lens = malloc(sizeof *lens * (size_t)b->n);
    char **labels = calloc((size_t)b->n, sizeof *labels);
    int ok = texts && lens && labels;
    for (int i = 0; ok && i < b->n; i++)
        texts[i] = b->toks[i].tok.text, lens[i] = b->toks[i].tok.len;
    for (int i = 0; ok && i < b->n; i++)
        ok = (labels[i] = av_display_bytes(texts, lens, (size_t)b->n, (size_t)i, 0)) != NULL;
    free(texts);
    free(lens);
    if (ok) return labels;
    av_strings_free(labels, (size_t)b->n);
    av_errf(err, "out of memory");
    return NULL;
}

/* The alternatives of token i, best first, into row i of d. */
static int fill_alternatives(const api_build *b, int i, av_lp_data *d, av_err *err) {
    api_tok *t = &b->toks[i];
    if (t->n_alts > 1) qsort(t->alts, (size_t)t->n_alts, sizeof *t->alts, by_lp_desc);
    for (int j = 0; j < t->n_alts; j++) {
        const char *text = t->alts[j].text;
        size_t len = t->alts[j].len;
        char *label = av_display_bytes(&text, &len, 1, 0, 0);
        int pi = label ? av_lp_piece(d, label, err) : av_errf(err, "out of memory");
        free(label);
        if (pi < 0) return -1;
        size_t at = (size_t)i * (size_t)d->k + (size_t)j;
        d->alt_ids[at] = t->alts[j].id;
        d->alt_lp[at] = t->alts[j].lp;
        d->alt_piece[at] = pi;
    }
    return 0;
}

static int build_table(const api_build *b, av_lp_data **out, av_err *err) {
    int k = 0;
    for (int i = 0; i < b->n; i++)
        if (b->toks[i].n_alts > k) k = b->toks[i].n_alts;
    if (av_lp_new(b->n, k, out, err)) return -1;
    for (int i = 0; i < b->n; i++) {
        (*out)->token[i] = b->toks[i].tok.lp;
        if (fill_alternatives(b, i, *out, err)) {
            av_lp_free(*out);
            return -1;
        }
    }
    return 0;
}

/* The trace: tokens labelled as av_display_bytes labels them, alternatives best first. */
static int build_trace(api_build *b, av_trace **out, av_err *err) {
    *out = NULL;
    if (b->n == 0) return av_errf(err, "%s: the response holds no tokens with log-probabilities", b->name);
    if (b->truncated && api_note(b, "alternatives beyond the import's --max-alternatives were dropped", err))
        return -1;
    av_trace *t = av_trace_new();
    char **labels = token_labels(b, err);
    int32_t *ids = malloc(sizeof *ids * (size_t)b->n);
    av_lp_data *d = NULL;
    int have_ids = 1;
    for (int i = 0; ids && i < b->n; i++)
        have_ids &= (ids[i] = b->toks[i].tok.id) >= 0;
    int rc = !t || !labels || !ids ? av_errf(err, "out of memory") : 0;
    if (!rc) rc = av_trace_set_tokens(t, labels, ids, b->n, err), labels = NULL, ids = NULL;
    if (!rc && !have_ids) rc = api_missing(b, "token_ids", err);
    if (!rc) rc = av_trace_set_meta(t, "model", b->model ? b->model : "api", err);
    if (!rc) rc = av_trace_set_meta(t, "arch", "api", err);
    if (!rc) rc = build_table(b, &d, err);
    if (!rc) rc = av_trace_set_logprobs(t, d, b->n_prompt, b->info, err);
    av_strings_free(labels, (size_t)b->n);
    free(ids);
    if (rc) {
        av_trace_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

/* ---- the public entry points ---- */

av_api_import_params av_api_import_default_params(void) {
    return (av_api_import_params){NULL, 0, AV_LP_MAX_K, NULL};
}

int av_trace_from_api(const char *data, size_t size, const char *name, const av_api_import_params *p,
                      av_trace **out, av_err *err) {
    av_api_import_params dp = av_api_import_default_params();
    if (!p) p = &dp;
    *out = NULL;
    if (p->choice < 0) return av_errf(err, "choice must be >= 0, got %d", p->choice);
    api_build b;
    if (build_init(&b, name ? name : "response", p->max_alternatives, err)) return -1;
    if (p->model) {
        free(b.model);
        b.model = av_strdup(p->model);
    }
    int rc = api_parse(data, size, b.name, p->provider, p->choice, &b, err) || build_trace(&b, out, err);
    build_free(&b);
    return rc ? -1 : 0;
}

int av_trace_from_api_file(const char *path, const av_api_import_params *p, av_trace **out, av_err *err) {
    char *text;
    size_t n;
    *out = NULL;
    if (av_file_read_all(path, AV_API_MAX_FILE, &text, &n, err)) return -1;
    int rc = av_trace_from_api(text, n, path, p, out, err);
    free(text);
    return rc;
}
