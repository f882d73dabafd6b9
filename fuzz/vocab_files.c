/* Vocabulary files without a tokenizer.json: a WordPiece vocab.txt, or a {token: id} vocabulary with its
 * merges (vocab.json + merges.txt, or GPT-2's encoder.json + vocab.bpe when the merges start with
 * "#version"), and the tokenizer_config.json read beside them. Parts (FUZZ_SEP): 0 the vocabulary, 1 the
 * merges (absent: a vocab.txt directory), 2 tokenizer_config.json. Loaded as a directory and used to encode
 * texts (fuzz_model.h). Seeds: fuzz/make_seeds.py. */
#include "fuzz_model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_part part[3];
    int n = fuzz_split(data, size, part, 3);
    char path[1024];
    int has_merges = n > 1 && part[1].n;
    int gpt2 = has_merges && part[1].n >= 8 && memcmp(part[1].p, "#version", 8) == 0;
    fuzz_clear();
    fuzz_write(path, sizeof path,
               !has_merges ? "vocab.txt"
               : gpt2      ? "encoder.json"
                           : "vocab.json",
               part[0].p, part[0].n);
    if (has_merges) fuzz_write(path, sizeof path, gpt2 ? "vocab.bpe" : "merges.txt", part[1].p, part[1].n);
    if (n > 2 && part[2].n) fuzz_write(path, sizeof path, "tokenizer_config.json", part[2].p, part[2].n);
    fuzz_exercise_tokenizer(fuzz_dir());
    return 0;
}
