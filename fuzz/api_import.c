/* Model API responses (src/trace/api_*.c): the bytes as one JSON document, JSON lines or an SSE dump, through
 * every provider's reader (detected, then each one forced), and a trace that imports is read the ways the
 * views read it: log-probabilities, generation metadata, labels. Seeds: fuzz/corpus/api_import/ (the files
 * tests/test_api_import.c writes: every provider's shape, streams, broken and truncated inputs). */
#include "fuzz.h"

/* An imported trace always has log-probabilities, a prompt length and never attention. */
static void read_trace(const av_trace *t) {
    av_generation_info g;
    av_trace_generation_info(t, &g);
    if (fuzz_read_logprobs(t) != 0 || av_trace_has_attention(t) || g.prompt_len < 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const providers[] = {NULL,     "openai",   "vllm",
                                            "ollama", "llamacpp", "openai-completions"};
    for (size_t i = 0; i < sizeof providers / sizeof providers[0]; i++) {
        av_api_import_params p = av_api_import_default_params();
        p.provider = providers[i];
        p.max_alternatives = i == 3 ? 2 : p.max_alternatives;
        av_trace *t = NULL;
        av_err err;
        if (av_trace_from_api((const char *)data, size, "fuzz.json", &p, &t, &err) == 0) read_trace(t);
        av_trace_free(t);
    }
    return 0;
}
