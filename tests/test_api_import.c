/* attnviz import of model API responses (src/trace/api_*.c): response files written here in each provider's
 * documented shape (OpenAI chat and legacy completions, vLLM with prompt_logprobs, Ollama generate/chat,
 * llama.cpp's three shapes) as JSON, JSON lines and SSE dumps, with fields missing and characters split over
 * tokens; the expected tokens, labels and numbers are written by hand next to each response. Broken inputs
 * must fail with one line naming the problem. */
#include "harness.h"

#include "attnviz.h"

#include <math.h>

static char g_dir[256];

static const char *write_file(const char *name, const char *text) {
    static char path[512];
    if (!g_dir[0]) {
        snprintf(g_dir, sizeof g_dir, "/tmp/av_api_test_XXXXXX");
        if (!mkdtemp(g_dir)) return NULL;
    }
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *fp = fopen(path, "wb");
    if (!fp) return NULL;
    fputs(text, fp);
    fclose(fp);
    return path;
}

/* Imports text written to name; NULL with err on failure. */
static av_trace *import(const char *name, const char *text, const char *provider, av_err *err) {
    av_api_import_params p = av_api_import_default_params();
    p.provider = provider;
    av_trace *t = NULL;
    const char *path = write_file(name, text);
    if (!path || av_trace_from_api_file(path, &p, &t, err)) return NULL;
    return t;
}

static int near(float a, double b) { return fabs((double)a - b) < 1e-6; }

/* Alternative j of position i: its label and log-probability. */
static const char *alt_label(const av_logprob_view *v, int i, int j) {
    int pi = v->alt_pieces[(size_t)i * (size_t)v->k + (size_t)j];
    return pi >= 0 ? v->pieces[pi] : NULL;
}
static float alt_lp(const av_logprob_view *v, int i, int j) {
    return v->alt_logprobs[(size_t)i * (size_t)v->k + (size_t)j];
}

static int has_missing(const av_generation_info *g, const char *what) {
    char q[64];
    snprintf(q, sizeof q, "\"%s\"", what);
    return g->missing && strstr(g->missing, q) != NULL;
}

/* OpenAI chat: a smiley (F0 9F 98 80) split over two tokens, given by "bytes"; alternatives out of order. */
static const char *openai_chat =
    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":"
    "0,"
    "\"message\":{\"role\":\"assistant\",\"content\":\"Hi \xF0\x9F\x98\x80!\"},\"logprobs\":{\"content\":["
    "{\"token\":\"Hi\",\"logprob\":-0.01,\"bytes\":[72,105],\"top_logprobs\":["
    "{\"token\":\"Hello\",\"logprob\":-4.6,\"bytes\":[72,101,108,108,111]},{\"token\":\"Hi\",\"logprob\":-0."
    "01,"
    "\"bytes\":[72,105]}]},"
    "{\"token\":\" \\\\xf0\\\\x9f\",\"logprob\":-0.5,\"bytes\":[32,240,159],\"top_logprobs\":["
    "{\"token\":\" \\\\xf0\\\\x9f\",\"logprob\":-0.5,\"bytes\":[32,240,159]}]},"
    "{\"token\":\"\\\\x98\\\\x80\",\"logprob\":-0.0001,\"bytes\":[152,128],\"top_logprobs\":[]},"
    "{\"token\":\"!\",\"logprob\":-9999.0,\"bytes\":null,\"top_logprobs\":[]}],\"refusal\":null},"
    "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":4}}";

static void test_openai_chat_split_character(void) {
    av_err err = {{0}};
    av_trace *t = import("chat.json", openai_chat, NULL, &err);
    REQUIREF(t, "%s", err.msg);
    av_logprob_view v;
    av_generation_info g;
    REQUIRE(av_trace_logprobs(t, &v, &err) == 0 && av_trace_generation_info(t, &g) == 0);
    REQUIRE(av_trace_n_tokens(t) == 4 && v.k == 2);
    CHECK(strcmp(av_trace_token(t, 0), "Hi") == 0);
    CHECKF(strcmp(av_trace_token(t, 1), " \xF0\x9F\x98\x80") == 0, "label 1 '%s'", av_trace_token(t, 1));
    CHECKF(strcmp(av_trace_token(t, 2), "\xC2\xB7<0x98><0x80>") == 0, "label 2 '%s'", av_trace_token(t, 2));
    CHECK(near(v.token[0], -0.01) && near(v.token[1], -0.5) && near(v.token[2], -0.0001));
    CHECK(isnan(v.token[3])); /* -9999: not in the top 20 */
    CHECK(strcmp(alt_label(&v, 0, 0), "Hi") == 0 && near(alt_lp(&v, 0, 0), -0.01)); /* sorted best first */
    CHECK(strcmp(alt_label(&v, 0, 1), "Hello") == 0 && near(alt_lp(&v, 0, 1), -4.6));
    CHECK(strcmp(alt_label(&v, 1, 0), " <0xF0><0x9F>") == 0 && isnan(alt_lp(&v, 1, 1)));
    CHECK(alt_label(&v, 2, 0) == NULL && v.alt_ids[0] == -1 && isnan(v.entropy[0]));
    CHECK(av_trace_token_id(t, 0) == -1 && av_trace_has_attention(t) == 0);
    CHECK(g.prompt_len == 0 && strcmp(g.source, "api") == 0 && strcmp(g.provider, "openai-chat") == 0);
    CHECK(g.alternatives_cap == 20 && g.top_logprobs == 2 && strcmp(g.stop_reason, "stop") == 0);
    CHECK(has_missing(&g, "attention") && has_missing(&g, "prompt") && has_missing(&g, "token_ids") &&
          has_missing(&g, "entropy"));
    CHECK(strcmp(av_trace_meta(t, "model"), "gpt-4o-mini") == 0 &&
          strcmp(av_trace_meta(t, "version"), "3") == 0);
    av_trace_free(t);
}

static void test_round_trip_file(void) {
    av_err err = {{0}};
    av_trace *t = import("chat2.json", openai_chat, NULL, &err), *u = NULL;
    REQUIREF(t, "%s", err.msg);
    char out[512];
    snprintf(out, sizeof out, "%s/chat.safetensors", g_dir);
    REQUIREF(av_trace_save(t, out, &err) == 0 && av_trace_load(out, &u, &err) == 0, "%s", err.msg);
    av_logprob_view a, b;
    av_generation_info ga, gb;
    REQUIRE(av_trace_logprobs(t, &a, &err) == 0 && av_trace_logprobs(u, &b, &err) == 0);
    av_trace_generation_info(t, &ga);
    av_trace_generation_info(u, &gb);
    CHECK(a.n_tokens == b.n_tokens && a.k == b.k && a.n_pieces == b.n_pieces);
    CHECK(memcmp(a.token, b.token, sizeof(float) * (size_t)a.n_tokens) == 0); /* NaN bits too */
    CHECK(memcmp(a.alt_logprobs, b.alt_logprobs, sizeof(float) * (size_t)(a.n_tokens * a.k)) == 0);
    CHECK(memcmp(a.alt_pieces, b.alt_pieces, sizeof(int32_t) * (size_t)(a.n_tokens * a.k)) == 0);
    for (int i = 0; i < a.n_pieces; i++)
        CHECK(strcmp(a.pieces[i], b.pieces[i]) == 0);
    CHECK(gb.prompt_len == 0 && strcmp(gb.provider, "openai-chat") == 0 &&
          strcmp(ga.missing, gb.missing) == 0);
    CHECK(strcmp(av_trace_token(u, 1), av_trace_token(t, 1)) == 0);
    av_trace_free(t);
    av_trace_free(u);
}

/* An OpenAI chat stream: chunks with deltas, a usage chunk without choices, [DONE]; two chunks on one line.
 */
static void test_openai_chat_sse(void) {
    const char *sse =
        ": keep-alive\n\n"
        "data: "
        "{\"id\":\"c\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"},"
        "\"logprobs\":null,\"finish_reason\":null}]}\n\n"
        "data: {\"id\":\"c\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"A\"},"
        "\"logprobs\":{\"content\":[{\"token\":\"A\",\"logprob\":-0.25,\"bytes\":[65],\"top_logprobs\":["
        "{\"token\":\"A\",\"logprob\":-0.25,\"bytes\":[65]},{\"token\":\"B\",\"logprob\":-1.5,\"bytes\":[66]}"
        "]}]},"
        "\"finish_reason\":null}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" "
        "c\"},\"logprobs\":{\"content\":[{\"token\":"
        "\" c\",\"logprob\":-2.0,\"top_logprobs\":[]}]},\"finish_reason\":null}]}"
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"length\"}]}\n\n"
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2}}\n\n"
        "data: [DONE]\n\n";
    av_err err = {{0}};
    av_trace *t = import("stream.sse", sse, NULL, &err);
    REQUIREF(t, "%s", err.msg);
    av_logprob_view v;
    av_generation_info g;
    REQUIRE(av_trace_logprobs(t, &v, &err) == 0 && av_trace_generation_info(t, &g) == 0);
    CHECK(v.n_tokens == 2 && near(v.token[0], -0.25) && near(v.token[1], -2.0));
    CHECK(strcmp(av_trace_token(t, 1), " c") == 0 && strcmp(alt_label(&v, 0, 1), "B") == 0);
    CHECK(strcmp(g.stop_reason, "length") == 0 && strcmp(g.provider, "openai-chat") == 0);
    av_trace_free(t);
}

/* Legacy completions with echo: the prompt first (its first token unscored), "bytes:" spellings. */
static void test_openai_completions_echo(void) {
    const char *json =
        "{\"object\":\"text_completion\",\"model\":\"gpt-3.5-turbo-instruct\",\"choices\":[{\"text\":\"x\","
        "\"index\":0,\"logprobs\":{\"tokens\":[\"The\",\" cat\",\" sat\",\" on\",\"bytes:\\\\xe2\\\\x80\"],"
        "\"token_logprobs\":[null,-3.5,-2.25,-0.5,-1.0],\"top_logprobs\":[null,{\" cat\":-3.5,\" dog\":-3.0},"
        "{\" sat\":-2.25},{\" on\":-0.5,\" in\":-1.75},{\"bytes:\\\\xe2\\\\x80\":-1.0}],"
        "\"text_offset\":[0,3,7,11,14]},\"finish_reason\":\"length\"}],"
        "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}";
    av_err err = {{0}};
    av_trace *t = import("completions.json", json, NULL, &err);
    REQUIREF(t, "%s", err.msg);
    av_logprob_view v;
    av_generation_info g;
    REQUIRE(av_trace_logprobs(t, &v, &err) == 0 && av_trace_generation_info(t, &g) == 0);
    CHECK(v.n_tokens == 5 && g.prompt_len == 3 && isnan(v.token[0]) && near(v.token[2], -2.25));
    CHECK(strcmp(alt_label(&v, 1, 0), " dog") == 0 && near(alt_lp(&v, 1, 0), -3.0));
    CHECK(strcmp(av_trace_token(t, 4), "<0xE2><0x80>") == 0); /* a character cut at the end */
    CHECK(strcmp(g.provider, "openai-completions") == 0 && g.alternatives_cap == 5 &&
          !has_missing(&g, "prompt"));
    av_trace_free(t);
}

/* vLLM completions: prompt_logprobs (first entry null; the prompt token, outside the top 1, listed second and
 * found by prompt_token_ids), ids, stop_reason. */
static void test_vllm_prompt_logprobs(void) {
    const char *json =
        "{\"object\":\"text_completion\",\"model\":\"Qwen/"
        "Qwen2.5-0.5B\",\"choices\":[{\"index\":0,\"text\":\" "
        "mat\",\"logprobs\":{\"tokens\":[\" mat\"],\"token_logprobs\":[-0.75],\"top_logprobs\":[{\" "
        "mat\":-0.75}]},"
        "\"finish_reason\":\"stop\",\"stop_reason\":\"\\n\",\"prompt_logprobs\":[null,"
        "{\"279\":{\"logprob\":-1.5,\"rank\":1,\"decoded_token\":\" "
        "the\"},\"8251\":{\"logprob\":-6.5,\"rank\":40,"
        "\"decoded_token\":\" cat\"}},{\"7482\":{\"logprob\":-0.25,\"rank\":1,\"decoded_token\":\" sat\"}}],"
        "\"prompt_token_ids\":[785,8251,7482],\"token_ids\":[5517]}],"
        "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}";
    av_err err = {{0}};
    av_trace *t = import("vllm.json", json, NULL, &err);
    REQUIREF(t, "%s", err.msg);
    av_logprob_view v;
    av_generation_info g;
    REQUIRE(av_trace_logprobs(t, &v, &err) == 0 && av_trace_generation_info(t, &g) == 0);
    REQUIRE(v.n_tokens == 4);
    CHECK(g.prompt_len == 3 && strcmp(g.provider, "vllm-completions") == 0);
    CHECK(av_trace_token_id(t, 0) == 785 && av_trace_token_id(t, 1) == 8251 &&
          av_trace_token_id(t, 3) == 5517);
    CHECK(isnan(v.token[0]) && near(v.token[1], -6.5) && near(v.token[2], -0.25) && near(v.token[3], -0.75));
    CHECK(strcmp(av_trace_token(t, 1), " cat") == 0 && strcmp(alt_label(&v, 1, 0), " the") == 0);
    CHECK(v.alt_ids[1 * v.k + 0] == 279 && !has_missing(&g, "token_ids") && !has_missing(&g, "prompt"));
    CHECK(strstr(av_trace_meta(t, "generation"), "\"stop\":\"\\n\"") != NULL);
    av_trace_free(t);
}

/* vLLM chat: prompt_logprobs at the top level, without prompt_token_ids (the first entry is the token). */
static void test_vllm_chat(void) {
    const char *json =
        "{\"object\":\"chat.completion\",\"model\":\"m\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
        "\"assistant\",\"content\":\"Yes\"},\"logprobs\":{\"content\":[{\"token\":\"Yes\",\"logprob\":-0.1,"
        "\"bytes\":[89,101,115],\"top_logprobs\":[]}]},\"finish_reason\":\"stop\",\"stop_reason\":null}],"
        "\"prompt_logprobs\":[null,{\"12\":{\"logprob\":-2.0,\"rank\":3,\"decoded_token\":\"ok\"},"
        "\"13\":{\"logprob\":-0.5,\"rank\":1,\"decoded_token\":\"no\"}}]}";
    av_err err = {{0}};
    av_trace *t = import("vllm_chat.json", json, NULL, &err);
    REQUIREF(t, "%s", err.msg);
    av_logprob_view v;
    av_generation_info g;
    REQUIRE(av_trace_logprobs(t, &v, &err) == 0 && av_trace_generation_info(t, &g) == 0);
    CHECK(v.n_tokens == 3 && g.prompt_len == 2 && strcmp(g.provider, "vllm-chat") == 0);
    CHECK(strcmp(av_trace_token(t, 1), "ok") == 0 && near(v.token[1], -2.0) && av_trace_token_id(t, 1) == 12);
    CHECK(strcmp(av_trace_token(t, 2), "Yes") == 0 && has_missing(&g, "token_ids"));
    av_trace_free(t);
}

/* Ollama /api/generate streamed as JSON lines; /api/chat as one document with a forced provider. */
static void test_ollama(void) {
    const char *lines =
        "{\"model\":\"gemma3\",\"created_at\":\"2025-01-01T00:00:00Z\",\"response\":\"Hel\",\"done\":false,"
        "\"logprobs\":[{\"token\":\"Hel\",\"logprob\":-0.5,\"bytes\":[72,101,108],\"top_logprobs\":["
        "{\"token\":\"Hel\",\"logprob\":-0.5},{\"token\":\"Hi\",\"logprob\":-1.25}]}]}\n"
        "{\"model\":\"gemma3\",\"created_at\":\"2025-01-01T00:00:01Z\",\"response\":\"lo\",\"done\":false,"
        "\"logprobs\":[{\"token\":\"lo\",\"logprob\":-0.125}]}\n"
        "{\"model\":\"gemma3\",\"created_at\":\"2025-01-01T00:00:02Z\",\"response\":\"\",\"done\":true,"
        "\"done_reason\":\"length\",\"eval_count\":2}\n";
    av_err err = {{0}};
    av_trace *t = import("ollama.jsonl", lines, NULL, &err);
    REQUIREF(t, "%s", err.msg);
    av_logprob_view v;
    av_generation_info g;
    REQUIRE(av_trace_logprobs(t, &v, &err) == 0 && av_trace_generation_info(t, &g) == 0);
    CHECK(v.n_tokens == 2 && near(v.token[1], -0.125) && strcmp(alt_label(&v, 0, 1), "Hi") == 0);
    CHECK(strcmp(g.provider, "ollama-generate") == 0 && strcmp(g.stop_reason, "length") == 0);
    CHECK(strcmp(av_trace_meta(t, "model"), "gemma3") == 0);
    av_trace_free(t);
    const char *chat =
        "{\"model\":\"qwen3\",\"created_at\":\"x\",\"message\":{\"role\":\"assistant\",\"content\":"
        "\"Yo\"},\"done\":true,\"done_reason\":\"stop\",\"logprobs\":[{\"token\":\"Yo\","
        "\"logprob\":-0.75,\"top_logprobs\":[]}]}";
    t = import("ollama_chat.json", chat, "ollama", &err);
    REQUIREF(t, "%s", err.msg);
    av_trace_generation_info(t, &g);
    CHECK(strcmp(g.provider, "ollama-chat") == 0 && g.alternatives_cap == 20);
    av_trace_free(t);
}

/* llama.cpp: the current shape, post_sampling_probs, and an old SSE stream whose last chunk repeats. */
static void test_llamacpp_shapes(void) {
    const char *now =
        "{\"content\":\" is\",\"model\":\"tiny.gguf\",\"stop_type\":\"eos\",\"completion_probabilities\":"
        "[{\"id\":374,\"token\":\" is\",\"bytes\":[32,105,115],\"logprob\":-0.3,\"top_logprobs\":["
        "{\"id\":374,\"token\":\" is\",\"bytes\":[32,105,115],\"logprob\":-0.3},{\"id\":11,\"token\":"
        "\",\",\"bytes\":[44],\"logprob\":-1.9}]}]}";
    av_err err = {{0}};
    av_trace *t = import("llamacpp.json", now, NULL, &err);
    REQUIREF(t, "%s", err.msg);
    av_logprob_view v;
    av_generation_info g;
    REQUIRE(av_trace_logprobs(t, &v, &err) == 0 && av_trace_generation_info(t, &g) == 0);
    CHECK(av_trace_token_id(t, 0) == 374 && v.alt_ids[1] == 11 && near(v.token[0], -0.3));
    CHECK(strcmp(g.provider, "llamacpp") == 0 && strcmp(g.stop_reason, "eos") == 0 &&
          g.alternatives_cap == 0);
    av_trace_free(t);
    const char *post =
        "{\"content\":\"a\",\"completion_probabilities\":[{\"id\":1,\"token\":\"a\",\"bytes\":[97],"
        "\"prob\":0.5,\"top_probs\":[{\"id\":1,\"token\":\"a\",\"bytes\":[97],\"prob\":0.5},"
        "{\"id\":2,\"token\":\"b\",\"bytes\":[98],\"prob\":0.25}]}]}";
    t = import("post.json", post, NULL, &err);
    REQUIREF(t, "%s", err.msg);
    av_trace_logprobs(t, &v, &err);
    CHECK(near(v.token[0], log(0.5)) && near(alt_lp(&v, 0, 1), log(0.25)));
    CHECK(strstr(av_trace_meta(t, "generation"), "post_sampling_probs") != NULL);
    av_trace_free(t);
    const char *old =
        "data: {\"content\":\"B\",\"stop\":false,\"completion_probabilities\":[{\"content\":\"B\","
        "\"probs\":[{\"tok_str\":\"B\",\"prob\":0.44},{\"tok_str\":\"C\",\"prob\":0.38}]}]}\n\n"
        "data: {\"content\":\"C\",\"stop\":false,\"completion_probabilities\":[{\"content\":\"C\","
        "\"probs\":[{\"tok_str\":\"D\",\"prob\":0.5},{\"tok_str\":\"C\",\"prob\":0.25}]}]}\n\n"
        "data: {\"content\":\"\",\"stop\":true,\"stopped_limit\":true,\"completion_probabilities\":["
        "{\"content\":\"B\",\"probs\":[{\"tok_str\":\"B\",\"prob\":0.44}]},{\"content\":\"C\","
        "\"probs\":[{\"tok_str\":\"D\",\"prob\":0.5}]}]}\n\n";
    t = import("old.sse", old, NULL, &err);
    REQUIREF(t, "%s", err.msg);
    av_trace_logprobs(t, &v, &err);
    av_trace_generation_info(t, &g);
    CHECK(v.n_tokens == 2 && near(v.token[0], log(0.44)) && near(v.token[1], log(0.25)));
    CHECK(strcmp(alt_label(&v, 1, 0), "D") == 0 && strcmp(g.stop_reason, "limit") == 0);
    av_trace_free(t);
}

static void test_max_alternatives(void) {
    av_api_import_params p = av_api_import_default_params();
    p.max_alternatives = 1;
    av_trace *t = NULL;
    av_err err = {{0}};
    REQUIREF(av_trace_from_api(openai_chat, strlen(openai_chat), "mem", &p, &t, &err) == 0, "%s", err.msg);
    av_logprob_view v;
    av_trace_logprobs(t, &v, &err);
    CHECK(v.k == 1 && strstr(av_trace_meta(t, "generation"), "dropped") != NULL);
    av_trace_free(t);
}

/* Each broken input fails with a message holding the words given. */
static void test_bad_inputs(void) {
    static const struct {
        const char *text, *provider, *expect;
    } cases[] = {
        {"{\"choices\":[{\"index\":0,\"logprobs\":{\"content\":[{\"token\":\"a\",\"logprob\":-1", NULL,
         "truncated JSON"},
        {"{\"choices\": [}", NULL, "invalid JSON at line 1 column"},
        {"   \n", NULL, "no JSON document"},
        {"", NULL, "no JSON document"},
        {"{\"error\":{\"message\":\"Invalid API key\",\"type\":\"auth\"}}", NULL, "Invalid API key"},
        {"{\"hello\":1}", NULL, "not a response this importer knows"},
        {"[1,2]", NULL, "not a JSON object"},
        {"{\"choices\":[{\"index\":0,\"message\":{\"content\":\"x\"},\"logprobs\":null}]}", NULL,
         "no log-probabilities"},
        {"{\"choices\":[{\"logprobs\":{\"content\":[{\"token\":\"a\",\"logprob\":-1,\"bytes\":[300]}]}}]}",
         NULL, "integers 0..255"},
        {"{\"choices\":[{\"logprobs\":{\"content\":[{\"logprob\":-1}]}}]}", NULL, "without \"token\""},
        {"{\"choices\":[{\"logprobs\":{\"content\":[{\"token\":\"a\",\"logprob\":2.5}]}}]}", NULL, "above 0"},
        {"{\"choices\":[{\"logprobs\":{\"content\":[7]}}]}", NULL, "not an object"},
        {"{\"choices\":[{\"logprobs\":{\"tokens\":[\"a\",\"b\"],\"token_logprobs\":[-1]}}]}", NULL,
         "one length"},
        {"{\"choices\":[]}", "nosuch", "unknown provider 'nosuch'"},
        {"data: {\"choices\":[{\"delta\":{}}]}\ndata: {\"choi", NULL, "truncated JSON"},
        {"{\"done\":true,\"logprobs\":[{\"token\":\"a\",\"logprob\":-1,\"top_logprobs\":[5]}]}", NULL,
         "alternative is not an object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        av_err err = {{0}};
        char name[32];
        snprintf(name, sizeof name, "bad%zu.json", i);
        av_trace *t = import(name, cases[i].text, cases[i].provider, &err);
        CHECKF(!t && strstr(err.msg, cases[i].expect) && !strchr(err.msg, '\n'),
               "case %zu: '%s' (expected '%s')", i, t ? "(imported)" : err.msg, cases[i].expect);
        av_trace_free(t);
    }
    av_err err = {{0}};
    av_trace *t = import("choice.json", openai_chat, NULL, &err);
    av_trace_free(t);
    av_api_import_params p = av_api_import_default_params();
    p.choice = 3;
    CHECK(av_trace_from_api(openai_chat, strlen(openai_chat), "mem", &p, &t, &err) == -1 &&
          strstr(err.msg, "no choice with that index"));
}

/* Every prefix of a valid response fails cleanly or imports (the fuzz harness does the same, longer). */
static void test_every_prefix(void) {
    size_t n = strlen(openai_chat);
    for (size_t k = 0; k < n; k++) {
        av_trace *t = NULL;
        av_err err = {{0}};
        int rc = av_trace_from_api(openai_chat, k, "prefix", NULL, &t, &err);
        CHECKF(rc == -1 && t == NULL && err.msg[0], "prefix of %zu bytes: rc %d", k, rc);
        av_trace_free(t);
    }
}

int main(void) {
    RUN(test_openai_chat_split_character);
    RUN(test_round_trip_file);
    RUN(test_openai_chat_sse);
    RUN(test_openai_completions_echo);
    RUN(test_vllm_prompt_logprobs);
    RUN(test_vllm_chat);
    RUN(test_ollama);
    RUN(test_llamacpp_shapes);
    RUN(test_max_alternatives);
    RUN(test_bad_inputs);
    RUN(test_every_prefix);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (g_dir[0] && system(cmd)) return 1;
    return h_exit_code();
}
