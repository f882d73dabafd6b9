/* SentencePiece .model files (protobuf: pieces with scores and types, trainer and normalizer specs, the
 * precompiled normalization map), loaded and used to encode texts (fuzz_model.h). Seeds: fuzz/make_seeds.py
 * (models trained by tests/tok/train_spm.py with python3-sentencepiece, BPE and unigram). */
#include "fuzz_model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[1024];
    fuzz_exercise_tokenizer(fuzz_write(path, sizeof path, "tokenizer.model", data, size));
    return 0;
}
