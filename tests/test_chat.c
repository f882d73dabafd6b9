/* The chat-template interpreter against hostile and broken templates (every one fails quickly with a one-line
 * error naming what went wrong, never hangs or crashes), and av_chat_format's BOS / EOS handling for GGUF
 * tokenizers (llama.cpp's) and the others (transformers'). Renderings of real templates are compared with
 * @huggingface/jinja in tests/cli/test_chat_ref.sh. */
#include "harness.h"

#include "attnviz.h"
#include "chat/jinja.h"
#include "tok/tok.h"

#include <time.h>

/* Renders tmpl with messages [{"role": "user", "content": "hi"}]; 0 on success. */
static int render(const char *tmpl, size_t len, char **out, av_err *err) {
    json_t *vars = json_pack("{s:[{s:s,s:s}],s:b}", "messages", "role", "user", "content", "hi",
                             "add_generation_prompt", 1);
    size_t n;
    int rc = jinja_render(tmpl, len, vars, 0, out, &n, err);
    json_decref(vars);
    return rc;
}

/* A template made of prefix, then repeat x times, then suffix x times. */
static char *repeated(const char *prefix, const char *repeat, const char *suffix, int times) {
    size_t n = strlen(prefix) + (strlen(repeat) + strlen(suffix)) * (size_t)times + 16; /* room for a tail */
    char *s = malloc(n), *p = s;
    p += sprintf(p, "%s", prefix);
    for (int i = 0; i < times; i++)
        p += sprintf(p, "%s", repeat);
    for (int i = 0; i < times; i++)
        p += sprintf(p, "%s", suffix);
    return s;
}

static void test_hostile_templates_are_bounded(void) {
    char *parens = repeated("{{ ", "(", ")", 20000),
         *ifs = repeated("", "{% if true %}", "{% endif %}", 3000);
    char *nots = repeated("{{ ", "not ", "", 20000), *minus = repeated("{{ ", "-", "", 20000);
    strcat(nots, "1 }}"), strcat(minus, "1 }}");
    char *closed = repeated("", "", "", 0);
    struct {
        const char *tmpl, *want;
    } cases[] = {
        {"{% for i in range(3000) %}{% for j in range(3000) %}{% for k in range(3000) %}{% endfor %}{% "
         "endfor %}"
         "{% endfor %}",
         "more than"},
        {"{% set x = 'abcdefgh' %}{% for i in range(64) %}{% set x = x ~ x %}{% endfor %}{{ x }}", "MiB"},
        {"{% set l = [1] %}{% for i in range(64) %}{% set l = l + l %}{% endfor %}", "more than"},
        {"{% for i in range(3000000) %}0123456789012345678901234567890123456789{% endfor %}", "MiB"},
        {"{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "macros call each other"},
        {"{{ range(100000000) | length }}", "range() of more than"},
        {parens, "nested"},
        {ifs, "nested"},
        {nots, "nested"},
        {minus, "nested"},
        {"{% set ns = namespace(a=1) %}{% for i in range(5000000) %}{% set ns.a = ns.a + 1 %}{% endfor %}",
         "more than"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *out = NULL;
        av_err err = {{0}};
        double t0 = av_seconds();
        int rc = render(cases[i].tmpl, strlen(cases[i].tmpl), &out, &err);
        double dt = av_seconds() - t0;
        CHECKF(rc != 0 && strstr(err.msg, cases[i].want) && !strchr(err.msg, '\n'), "case %zu: rc %d, '%s'",
               i, rc, err.msg);
        CHECKF(dt < 30, "case %zu took %.1f s", i, dt);
        free(out);
    }
    free(parens), free(ifs), free(nots), free(minus), free(closed);
}

static void test_errors_name_the_construct(void) {
    struct {
        const char *tmpl, *want;
    } cases[] = {
        {"{{ 'abc }}", "unterminated string"},
        {"a\nb\n{% if x %}", "line 3: the template ends inside a block: expected {% endif %}"},
        {"{# no end", "comment without #}"},
        {"{{ x", "expected '}}'"},
        {"{{ '\\q' }}", "bad escape sequence"},
        {"{{ 1 is prime }}", "unknown test 'prime'"},
        {"x\n{{ messages | wordcount }}", "line 2: unknown filter 'wordcount'"},
        {"{{ 'a' | items }}", "filter 'items' does not apply to a string"},
        {"{% include 'x' %}", "unsupported statement 'include'"},
        {"{% call foo() %}{% endcall %}", "unsupported statement 'call'"},
        {"{{ raise_exception('Conversation roles must alternate') }}",
         "raise_exception: Conversation roles must alternate"},
        {"{{ 1() }}", "integer is not callable"},
        {"{{ f(*args) }}", "argument unpacking"},
        {"{% set x.y = 1 %}", "cannot set an attribute of undefined"},
        {"{{ none + 1 }}", "'+' on none"},
        {"{{ [1] < [2] }}", "'<' is not defined between list and list"},
        {"{% for x in 5 %}{% endfor %}", "cannot loop over integer"},
        {"{{ 1 // 0 }}", "integer division by zero"},
        {"{{ 'x' | join(1) }}", "separator must be a string"},
        {"{% for a, b in [1, 2] %}{% endfor %}", "cannot unpack"},
        {"{{ 'x'[::0] }}", "slice step cannot be zero"},
        {"{{ @ }}", "unexpected character '@'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *out = NULL;
        av_err err = {{0}};
        int rc = render(cases[i].tmpl, strlen(cases[i].tmpl), &out, &err);
        CHECKF(rc != 0 && strstr(err.msg, cases[i].want) && !strncmp(err.msg, "chat template", 13),
               "case %zu: rc %d, '%s'", i, rc, err.msg);
        free(out);
    }
}

/* Random bytes and random mixes of template syntax never crash (ASan build: nor leak or overflow). */
static void test_garbage_templates(void) {
    static const char *const parts[] = {
        "{{",    "}}",     "{%",    "%}",      "{#",        "#}",       "-", "if", "for",   "in",
        "endif", "endfor", "set",   "=",       "x",         "messages", "(", ")",  "[",     "]",
        "{",     "}",      ":",     ",",       ".",         "|",        "'", "\"", " ",     "\n",
        "loop",  "not",    "is",    "defined", "1",         "2.5",      "~", "+",  "macro", "endmacro",
        "else",  "elif",   "break", "ns",      "namespace", "range"};
    unsigned seed = 12345;
    for (int round = 0; round < 3000; round++) {
        char t[512];
        size_t n = 0;
        int k = 1 + (int)(seed % 40);
        for (int i = 0; i < k && n < sizeof t - 16; i++) {
            seed = seed * 1103515245u + 12345u;
            if (round % 3 == 0)
                t[n++] = (char)(seed >> 16);
            else
                n += (size_t)sprintf(t + n, "%s", parts[(seed >> 16) % (sizeof parts / sizeof *parts)]);
        }
        char *out = NULL;
        av_err err = {{0}};
        if (render(t, n, &out, &err) == 0)
            CHECK(out != NULL);
        else
            CHECKF(err.msg[0] && !strchr(err.msg, '\n'), "round %d: message '%s'", round, err.msg);
        free(out);
    }
}

/* A small SentencePiece-style GGUF tokenizer with a chat template that writes BOS and EOS. */
static av_tokenizer *gguf_tokenizer(int add_bos, int add_eos) {
    static const char *const pieces[] = {"<unk>", "<s>", "</s>", "\xE2\x96\x81", "a", "b", "<|user|>"};
    av_tok_gguf_spec s = av_tok_gguf_spec_init();
    s.model = "llama", s.n = 7, s.add_bos = add_bos, s.add_eos = add_eos;
    s.pieces = malloc(sizeof *s.pieces * 7);
    s.types = malloc(sizeof *s.types * 7);
    for (int i = 0; i < 7; i++) {
        s.pieces[i] = strdup(pieces[i]);
        s.types[i] = i == 0 ? AV_TOKTYPE_UNKNOWN : i < 3 || i == 6 ? AV_TOKTYPE_CONTROL : AV_TOKTYPE_NORMAL;
    }
    s.chat_template =
        "{{ bos_token }}{% for m in messages %}<|user|>{{ m.content }}{% endfor %}{{ eos_token }}";
    av_tokenizer *t = NULL;
    av_err err = {{0}};
    return av_tok_from_gguf(&s, &t, &err) ? NULL : t;
}

static void test_bos_as_the_runtime_adds_it(void) {
    const char *msgs = "[{\"role\": \"user\", \"content\": \"ab\"}]";
    av_err err = {{0}};
    char *text = NULL;
    int add = -1;
    /* GGUF, add_bos + add_eos: llama.cpp cuts the template's BOS / EOS text; encoding adds the tokens once */
    av_tokenizer *t = gguf_tokenizer(1, 1);
    REQUIRE(t);
    REQUIREF(av_chat_format(t, msgs, strlen(msgs), NULL, &text, &add, &err) == 0, "%s", err.msg);
    CHECKF(strcmp(text, "<|user|>ab") == 0 && add == 1, "'%s' %d", text, add);
    int32_t *ids;
    size_t n;
    REQUIRE(av_tokenizer_encode(t, text, strlen(text), add, &ids, &n, &err) == 0);
    CHECKF(n == 6 && ids[0] == 1 && ids[1] == 6 && ids[n - 1] == 2, "%zu ids, first %d %d", n, ids[0],
           ids[1]);
    free(ids);
    free(text);
    av_tokenizer_free(t);
    /* GGUF without add_bos: the text keeps the template's BOS (a special token once parsed) */
    REQUIRE((t = gguf_tokenizer(0, 0)));
    REQUIRE(av_chat_format(t, msgs, strlen(msgs), NULL, &text, &add, &err) == 0);
    CHECKF(strcmp(text, "<s><|user|>ab</s>") == 0 && add == 1, "'%s' %d", text, add);
    free(text);
    /* the generation prompt and template variables pass through; an explicit template overrides the
     * model's */
    av_chat_params p = av_chat_default_params();
    p.chat_template =
        "{{ add_generation_prompt }} {{ tools | length }} {{ messages | length }} {{ bos_token }}";
    const char *obj = "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"tools\": [1, 2, 3]}";
    p.add_generation_prompt = 0;
    REQUIREF(av_chat_format(t, obj, strlen(obj), &p, &text, &add, &err) == 0, "%s", err.msg);
    CHECKF(strcmp(text, "false 3 1 <s>") == 0, "'%s'", text);
    free(text);
    av_tokenizer_free(t);
    /* no tokenizer: the template's text as it is, encoded without added tokens (transformers) */
    p = av_chat_default_params();
    p.chat_template = "{{ bos_token }}{{ messages[0].content }}";
    p.bos_token = "<s>";
    REQUIRE(av_chat_format(NULL, msgs, strlen(msgs), &p, &text, &add, &err) == 0);
    CHECKF(strcmp(text, "<s>ab") == 0 && add == 0, "'%s' %d", text, add);
    free(text);
}

static void test_bad_messages(void) {
    av_chat_params p = av_chat_default_params();
    p.chat_template = "{{ messages }}";
    const char *bad[] = {"", "{", "3", "{\"msgs\": []}", "[1]", "[{\"content\": \"x\"}]", "[{\"role\": 3}]"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *text = NULL;
        int add;
        av_err err = {{0}};
        CHECKF(av_chat_format(NULL, bad[i], strlen(bad[i]), &p, &text, &add, &err) != 0 &&
                   !strncmp(err.msg, "messages: ", 10),
               "case %zu: '%s'", i, err.msg);
        free(text);
    }
    char *text = NULL;
    int add;
    av_err err = {{0}};
    CHECK(av_chat_format(NULL, "[]", 2, NULL, &text, &add, &err) != 0 && strstr(err.msg, "no chat template"));
}

/* strftime_now() formats the time the caller gives. */
static void test_strftime_now(void) {
    struct tm tm = {0};
    tm.tm_year = 124, tm.tm_mon = 6, tm.tm_mday = 26, tm.tm_hour = 12, tm.tm_isdst = -1;
    json_t *vars = json_object();
    const char *tmpl = "{{ strftime_now('%d %b %Y|%B|%m/%d %H:%M|%%|%j') }}";
    char *out = NULL;
    size_t n;
    av_err err = {{0}};
    REQUIREF(jinja_render(tmpl, strlen(tmpl), vars, (int64_t)mktime(&tm), &out, &n, &err) == 0, "%s",
             err.msg);
    CHECKF(strcmp(out, "26 Jul 2024|July|07/26 12:00|%|%j") == 0, "'%s'", out);
    free(out);
    json_decref(vars);
}

int main(void) {
    RUN(test_hostile_templates_are_bounded);
    RUN(test_errors_name_the_construct);
    RUN(test_garbage_templates);
    RUN(test_bos_as_the_runtime_adds_it);
    RUN(test_bad_messages);
    RUN(test_strftime_now);
    return h_exit_code();
}
