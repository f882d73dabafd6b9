#!/bin/sh
# Tokenizers embedded in GGUF files against llama.cpp's llama_tokenize (node-llama-cpp 3.21.1, installed by
# tests/llamacpp/install.sh; add_special and parse_special set), on a generated corpus of 5,500 lines
# (tests/tok/gen_gguf_corpus.py: gen_corpus.py's mixed scripts, digits, whitespace runs, emoji, control
# characters and long words, then code and chat markup with the special tokens of Llama 3, Qwen, Gemma,
# Mistral, Phi-3 and SmolLM written in the text).
#
# The vocabularies (tests/tok/make_gguf_vocabs.py): one byte-level BPE file per tokenizer.ggml.pre variant
# (merges trained on the corpus, chat tokens of the family that uses the variant), SentencePiece-style files
# trained here with Gemma's and Llama's conventions, and, when ../shared has them, the real GPT-2 and Llama 2
# vocabularies (Llama 2 also dressed as Phi-3 and as Mistral v0.3). Every line must give identical ids; each
# comparison prints its mismatch count.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${ATTNVIZ_BIN:-$ROOT/build/attnviz}
SHARED=${ATTNVIZ_SHARED:-$ROOT/../shared}
PY=/usr/bin/python3
T=$ROOT/tests/tok
TMP=$(mktemp -d "${TMPDIR:-/tmp}/attnviz-ggtok-XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM

if [ ! -x "$BIN" ]; then
    echo "FAIL gguf_tok_ref: $BIN is not built"
    exit 1
fi
if ! ref=$(sh "$ROOT/tests/llamacpp/install.sh" 2> "$TMP/install.err"); then
    echo "SKIP gguf_tok_ref: llama.cpp reference not installable: $(tail -1 "$TMP/install.err")"
    exit 0
fi
eval "$ref" # LIB=..., INC=dir1:dir2
if ! cc -O1 -I"${INC%%:*}" -I"${INC##*:}" -o "$TMP/tok_ref" "$ROOT/tests/llamacpp/tok_ref.c" -L"$LIB" \
    -lllama.v0.4.0 -lggml.v0.4.0 -lggml-base -ljansson -Wl,-rpath,"$LIB" 2> "$TMP/cc.err"; then
    echo "FAIL gguf_tok_ref: building the llama.cpp helper failed: $(head -c 300 "$TMP/cc.err")"
    exit 1
fi
if ! "$PY" -c 'import sentencepiece' 2> /dev/null; then
    echo "FAIL gguf_tok_ref: python3-sentencepiece is missing (run scripts/install-deps.sh)"
    exit 1
fi
if ! "$PY" "$T/gen_gguf_corpus.py" > "$TMP/corpus.jsonl" ||
    ! "$PY" "$T/make_gguf_vocabs.py" "$TMP/corpus.jsonl" "$TMP/vocabs" "$SHARED/tokenizers" > "$TMP/list" 2> "$TMP/gen.err"; then
    echo "FAIL gguf_tok_ref: corpus or vocabulary generation failed: $(tail -c 300 "$TMP/gen.err")"
    exit 1
fi
[ -f "$SHARED/tokenizers/gpt2/encoder.json" ] ||
    echo "SKIP gguf_tok_gpt2_real: $SHARED/tokenizers/gpt2 not found (../shared is absent)"
[ -f "$SHARED/tokenizers/llama2/tokenizer.model" ] ||
    echo "SKIP gguf_tok_llama2_real: $SHARED/tokenizers/llama2 not found (../shared is absent)"

while read -r name path; do
    if ! "$TMP/tok_ref" "$LIB" "$path" "$TMP/corpus.jsonl" > "$TMP/exp_$name.jsonl" 2> "$TMP/ref.err"; then
        echo "FAIL gguf_tok_$name: llama.cpp failed: $(tail -c 300 "$TMP/ref.err")"
    elif ! "$BIN" tokenize --tokenizer "$path" --batch "$TMP/corpus.jsonl" > "$TMP/got_$name.jsonl" 2> "$TMP/err.txt"; then
        echo "FAIL gguf_tok_$name: attnviz tokenize failed: $(head -c 300 "$TMP/err.txt")"
    else
        "$PY" "$T/compare.py" "gguf_tok_$name" "$TMP/corpus.jsonl" "$TMP/exp_$name.jsonl" "$TMP/got_$name.jsonl"
    fi
done < "$TMP/list"

# the corpus must reach what the tokenizers do differently: chat tokens matched whole (the first ids of the
# synthetic BPE files), rstrip after Phi-3's tokens, the EOS that Phi-4-mini style files append
"$PY" - "$TMP" <<'EOF'
import json, os, sys
tmp = sys.argv[1]
def ids(name):
    p = os.path.join(tmp, "exp_%s.jsonl" % name)
    return [json.loads(l) for l in open(p)] if os.path.exists(p) else None
llama3, qwen, gpt4o = ids("bpe_llama3"), ids("bpe_qwen2"), ids("bpe_gpt4o")
specials_llama3 = sum(1 for x in llama3 for i in x[1:] if i < 7)
specials_qwen = sum(1 for x in qwen for i in x if i < 11)
eos_gpt4o = sum(1 for x in gpt4o if x and x[-1] == 0)
ok = specials_llama3 > 500 and specials_qwen > 500 and eos_gpt4o == len(gpt4o) and all(x[0] == 0 for x in llama3)
print("%s gguf_tok_corpus_coverage: %d Llama 3 and %d Qwen chat tokens in the text, BOS on every Llama 3 line, "
      "EOS on %d of %d gpt-4o lines" % ("PASS" if ok else "FAIL", specials_llama3, specials_qwen, eos_gpt4o, len(gpt4o)))
EOF
exit 0
