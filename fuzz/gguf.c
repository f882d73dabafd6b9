/* GGUF model files: the parser on the bytes in memory, then the whole model load from a file (config keys,
 * tensor views, the tokenizer built from tokenizer.ggml.* metadata) and, when it loads, tokenization, labels
 * and a tiny forward pass (fuzz_model.h). Seeds: fuzz/make_seeds.py (`attnviz convert` of tiny checkpoints).
 */
#include "fuzz_model.h"
#include "io/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    av_gguf g;
    av_err err;
    if (av_gguf_parse(data, size, "fuzz.gguf", &g, &err) == 0) av_gguf_close(&g);
    char path[1024];
    fuzz_write(path, sizeof path, "model.gguf", data, size);
    av_model_params mp = fuzz_model_params();
    av_model *m = NULL;
    if (fuzz_note(av_model_load(path, &mp, &m, &err), "model", &err) == 0) {
        static const char text[] = "Once upon a time, caf\xC3\xA9 \xE6\x97\xA5 \xF0\x9F\xA4\x97 \xFF\n\t<s>";
        fuzz_exercise_model(m, text, sizeof text - 1);
    }
    av_model_free(m);
    return 0;
}
