/* Model API responses (src/trace/api_*.c): the bytes as one JSON document, JSON lines or an SSE dump, through
 * every provider's reader (detected, then each one forced), and a trace that imports is read the ways the
 * views read it: log-probabilities, generation metadata, labels. Seeds: fuzz/corpus/api_import/ (the files
 * tests/test_api_import.c writes: every provider's shape, streams, broken and truncated inputs). */
#include "attnviz.h"

#include <math.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Touches every entry a view reads; an index outside the tables is a bug (the fuzzer sees the crash). */
static void read_trace(const av_trace *t) {
    av_logprob_view v;
    av_generation_info g;
    av_err err;
    volatile double sink = 0;
    if (av_trace_logprobs(t, &v, &err) != 0) abort(); /* an imported trace always has log-probabilities */
    if (v.n_tokens != av_trace_n_tokens(t) || av_trace_has_attention(t)) abort();
    for (int i = 0; i < v.n_tokens; i++) {
        sink += v.token[i] + v.entropy[i] + (double)av_trace_token_id(t, i);
        if (!av_trace_token(t, i)) abort();
        for (int j = 0; j < v.k; j++) {
            int32_t p = v.alt_pieces[(size_t)i * (size_t)v.k + (size_t)j];
            if (p < -1 || p >= v.n_pieces) abort();
            if (p >= 0) sink += (double)v.pieces[p][0];
            sink += v.alt_logprobs[(size_t)i * (size_t)v.k + (size_t)j];
        }
    }
    av_trace_generation_info(t, &g);
    if (g.prompt_len < 0 || g.prompt_len > v.n_tokens) abort();
    (void)sink;
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
