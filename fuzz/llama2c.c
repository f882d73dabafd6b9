/* llama2.c checkpoints and their tokenizers: parts (FUZZ_SEP) 0 the checkpoint .bin, 1 the tokenizer .bin
 * (absent when empty), 2 a text to encode. The tokenizer alone is loaded too, then the model with it and,
 * when it loads, run (fuzz_model.h). Seeds: fuzz/make_seeds.py (tiny checkpoints written as llama2.c's export
 * does). */
#include "fuzz_model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_part part[3];
    int n = fuzz_split(data, size, part, 3);
    char model[1024], tok[1024];
    fuzz_clear();
    fuzz_write(model, sizeof model, "model.bin", part[0].p, part[0].n);
    av_model_params mp = fuzz_model_params();
    av_err err;
    if (n > 1 && part[1].n) {
        mp.tokenizer_path = fuzz_write(tok, sizeof tok, "tok.bin", part[1].p, part[1].n);
        av_tokenizer *t = NULL;
        if (av_tokenizer_load(tok, &t, &err) == 0) {
            int32_t *ids = NULL;
            size_t n_ids = 0;
            const char *text = n > 2 ? (const char *)part[2].p : "";
            if (av_tokenizer_encode(t, text, n > 2 ? part[2].n : 0, 1, &ids, &n_ids, &err) == 0)
                fuzz_labels(t, ids, n_ids);
            free(ids);
        }
        av_tokenizer_free(t);
    }
    av_model *m = NULL;
    if (fuzz_note(av_model_load(model, &mp, &m, &err), "model", &err) == 0)
        fuzz_exercise_model(m, n > 2 ? (const char *)part[2].p : "", n > 2 ? part[2].n : 0);
    av_model_free(m);
    return 0;
}
