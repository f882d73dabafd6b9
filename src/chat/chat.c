/* Chat prompts: a conversation formatted with the model's own chat template (av_chat_format), on the Jinja
 * interpreter of this folder (jinja_render).
 *
 * What the model sees, exactly: the template's output, with the special tokens in it parsed as specials.
 * Whether the tokenizer adds BOS as well follows the runtime of the model's format:
 *   - GGUF (llama.cpp, common_chat_templates_apply): when the vocabulary adds BOS and the output starts with
 * the BOS text, that text is cut and the tokenizer adds the BOS token; the same for EOS at the end;
 *   - Hugging Face directories (transformers' apply_chat_template(tokenize=True)): the output is encoded
 * without adding special tokens, so a template that writes no BOS gets none. */
#include "attnviz.h"
#include "jinja.h"
#include "tok/tok.h"

#include <stdlib.h>
#include <string.h>

#define CHAT_MAX_TEMPLATE ((size_t)4 << 20)
#define CHAT_MAX_MESSAGES ((size_t)64 << 20)

int jinja_render(const char *tmpl, size_t len, const json_t *vars, int64_t now, char **out, size_t *out_len,
                 av_err *err) {
    jj_ctx c = {0};
    c.err = err;
    c.now = now;
    *out = NULL;
    *out_len = 0;
    if (len > CHAT_MAX_TEMPLATE)
        return av_errf(err, "chat template: %zu bytes (at most %zu)", len, CHAT_MAX_TEMPLATE);
    jtoken *toks = NULL;
    size_t n_toks = 0;
    jnode **body = NULL;
    int n_body = 0;
    jscope *g = NULL;
    jj_buf b = {0};
    int rc = jj_lex(&c, tmpl, len, &toks, &n_toks) || jj_parse(&c, toks, n_toks, &body, &n_body) ||
                     !(g = jj_scope_new(&c, NULL)) || jj_globals(&c, g)
                 ? -1
                 : 0;
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)vars, key, val) {
        jv *v = rc ? NULL : jv_from_json(&c, val, 0);
        if (!v || jj_scope_set(&c, g, key, v)) rc = -1;
    }
    if (rc == 0 && jj_render(&c, body, n_body, g, &b) < 0) rc = -1;
    if (rc == 0 && !b.p && !(b.p = calloc(1, 1))) rc = av_errf(err, "out of memory");
    if (rc == 0) {
        *out = b.p;
        *out_len = b.n;
    } else {
        jj_buf_free(&b);
        if (!err || !err->msg[0]) av_errf(err, "chat template: out of memory");
    }
    jj_ctx_free(&c);
    return rc;
}

av_chat_params av_chat_default_params(void) {
    av_chat_params p;
    memset(&p, 0, sizeof p);
    p.add_generation_prompt = 1;
    return p;
}

/* The template variables: messages, add_generation_prompt, bos_token, eos_token and the other keys of an
 * object. */
static json_t *template_vars(const av_tokenizer *tok, const char *text, size_t len, const av_chat_params *p,
                             av_err *err) {
    json_error_t je;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    if (!doc) return av_errf(err, "messages: %s (line %d)", je.text, je.line), NULL;
    json_t *vars = json_is_object(doc) ? json_deep_copy(doc) : json_object();
    json_t *msgs = json_is_array(doc) ? doc : json_object_get(doc, "messages");
    const char *bad =
        !json_is_array(msgs) ? "expected a JSON array of messages, or an object with \"messages\"" : NULL;
    for (size_t i = 0; !bad && i < json_array_size(msgs); i++)
        if (!json_is_object(json_array_get(msgs, i)) ||
            !json_is_string(json_object_get(json_array_get(msgs, i), "role")))
            bad = "every message must be an object with a string \"role\"";
    if (!bad && (!vars || json_object_set(vars, "messages", msgs))) bad = "out of memory";
    if (!bad && !json_object_get(vars, "add_generation_prompt"))
        json_object_set_new(vars, "add_generation_prompt", json_boolean(p->add_generation_prompt));
    const char *bos = p->bos_token ? p->bos_token
                      : tok        ? av_tokenizer_piece(tok, av_tokenizer_bos(tok))
                                   : NULL;
    const char *eos = p->eos_token ? p->eos_token
                      : tok        ? av_tokenizer_piece(tok, av_tokenizer_eos(tok))
                                   : NULL;
    if (!bad && bos) json_object_set_new(vars, "bos_token", json_string(bos));
    if (!bad && eos) json_object_set_new(vars, "eos_token", json_string(eos));
    json_decref(doc);
    if (bad) {
        json_decref(vars);
        return av_errf(err, "messages: %s", bad), NULL;
    }
    return vars;
}

/* llama.cpp: the BOS / EOS text the template writes is cut when the tokenizer adds the token itself. */
static void cut_specials(const av_tokenizer *tok, const json_t *vars, char *text, size_t *n) {
    int add_bos, add_eos;
    av_tok_adds(tok, &add_bos, &add_eos);
    const char *bos = json_string_value(json_object_get(vars, "bos_token"));
    const char *eos = json_string_value(json_object_get(vars, "eos_token"));
    size_t lb = bos ? strlen(bos) : 0, le = eos ? strlen(eos) : 0;
    if (add_bos && lb && lb <= *n && !memcmp(text, bos, lb)) {
        memmove(text, text + lb, *n - lb + 1);
        *n -= lb;
    }
    if (add_eos && le && le <= *n && !memcmp(text + *n - le, eos, le)) text[ *n -= le] = 0;
}

int av_chat_format(const av_tokenizer *tok, const char *messages, size_t len, const av_chat_params *params,
                   char **text, int *add_special, av_err *err) {
    av_chat_params p = params ? *params : av_chat_default_params();
    *text = NULL;
    *add_special = 0;
    const char *tmpl = p.chat_template ? p.chat_template : tok ? tok->chat_template : NULL;
    if (!tmpl)
        return av_errf(err,
                       "the model has no chat template (GGUF tokenizer.chat_template, tokenizer_config.json "
                       "chat_template): give one with --chat-template FILE, or the prompt with --text");
    if (!messages || len > CHAT_MAX_MESSAGES) return av_errf(err, "messages: missing or larger than 64 MiB");
    json_t *vars = template_vars(tok, messages, len, &p, err);
    if (!vars) return -1;
    size_t n;
    int rc = jinja_render(tmpl, strlen(tmpl), vars, p.now, text, &n, err);
    if (rc == 0 && tok && tok->kind == AV_TOK_GGUF) {
        cut_specials(tok, vars, *text, &n);
        *add_special = 1;
    }
    json_decref(vars);
    return rc;
}
