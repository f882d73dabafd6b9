/* Hugging Face tokenizer.json, structure-aware (json_mutator.h: component types swapped, options set to edge
 * cases, vocabulary entries copied and deleted), then encoding of fixed texts (invalid UTF-8, specials, long
 * words) with and without special tokens, labels and decoded pieces of every id produced. Seeds:
 * fuzz/make_seeds.py (small tokenizer.json files of each model type and component, the demo model's). */
#include "fuzz_model.h"
#include "json_mutator.h"

/* clang-format off */
static const char *const keys[] = {
    "model", "type", "vocab", "merges", "normalizer", "normalizers", "pre_tokenizer", "pretokenizers",
    "post_processor", "processors", "decoder", "decoders", "added_tokens", "unk_token", "unk_id",
    "continuing_subword_prefix", "end_of_word_suffix", "byte_fallback", "fuse_unk", "ignore_merges", "dropout",
    "max_input_chars_per_word", "add_prefix_space", "trim_offsets", "use_regex", "replacement",
    "prepend_scheme", "split", "pattern", "behavior", "invert", "content", "id", "ids", "special",
    "single_word", "lstrip", "rstrip", "normalized", "single", "pair", "special_tokens", "cls", "sep",
    "tokens", "clean_text", "handle_chinese_chars", "strip_accents", "lowercase", "prepend", "strip_left",
    "strip_right", "delimiter", "individual_digits", "precompiled_charsmap", "String", "Regex", "SpecialToken",
    "Sequence", "version", "truncation", "padding", "start", "stop", "left", "right"};
static const char *const strings[] = {
    "BPE", "WordPiece", "Unigram", "WordLevel", "ByteLevel", "Metaspace", "Whitespace", "WhitespaceSplit",
    "BertPreTokenizer", "Split", "Punctuation", "Digits", "CharDelimiterSplit", "Sequence", "NFC", "NFD",
    "NFKC", "NFKD", "Lowercase", "Replace", "Prepend", "Strip", "StripAccents", "BertNormalizer",
    "Precompiled", "TemplateProcessing", "RobertaProcessing", "BertProcessing", "ByteFallback", "Fuse",
    "BPEDecoder", "CTC", "Isolated", "Removed", "MergedWithPrevious", "MergedWithNext", "Contiguous", "always",
    "never", "first", "<unk>", "[UNK]", "<s>", "</s>", "[CLS]", "[SEP]", "##", "\xE2\x96\x81", "\xC4\xA0", " ",
    "", "$A", "$B", "\\s+", "(?i:'s|'t)", "\\p{L}+|\\p{N}+", "(", "[", "\\", "a b", "\xFF", "e r", "<0x41>"};
/* clang-format on */
FUZZ_JSON_MUTATOR(keys, strings)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[1024];
    fuzz_exercise_tokenizer(fuzz_write(path, sizeof path, "tokenizer.json", data, size));
    return 0;
}
