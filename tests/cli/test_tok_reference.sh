#!/bin/sh
# Tokenizers against their reference implementations, on a generated corpus of 10,240 lines
# (tests/tok/gen_corpus.py: mixed scripts, emoji, digits, whitespace runs, control characters, long words):
#   - Llama 2 SentencePiece (../shared/tokenizers/llama2/tokenizer.model) vs Debian's python3-sentencepiece
#   - three SentencePiece models trained here (unigram + nmt_nfkc, unigram + nfkc_cf + byte fallback, BPE with
#     user-defined symbols) vs python3-sentencepiece
#   - GPT-2 (../shared/tokenizers/gpt2, encoder.json + vocab.bpe) vs the npm package gpt-3-encoder 1.1.4
#     (installed into tests/tok/node_modules from tests/tok/package-lock.json when missing)
#   - BERT uncased (tokenizer.json and vocab.txt) vs tests/tok/ref_bert.py, written from the published algorithm
# Every line must give identical ids. Prints one PASS/FAIL/SKIP line per comparison.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${ATTNVIZ_BIN:-$ROOT/build/attnviz}
SHARED=${ATTNVIZ_SHARED:-$ROOT/../shared}
TOK=$SHARED/tokenizers
PY=/usr/bin/python3 # Debian's python, which has python3-sentencepiece (the one on PATH may not)
T=$ROOT/tests/tok
TMP=$(mktemp -d "${TMPDIR:-/tmp}/attnviz-tokref-XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM

if [ ! -x "$BIN" ]; then
    echo "FAIL tok_reference: $BIN is not built"
    exit 1
fi
if [ ! -x "$PY" ]; then
    echo "SKIP tok_reference: $PY not found (run scripts/install-deps.sh)"
    exit 0
fi
if ! "$PY" "$T/gen_corpus.py" > "$TMP/corpus.jsonl"; then
    echo "FAIL tok_reference: corpus generation failed"
    exit 1
fi

# compare NAME TOKENIZER BOSFLAG EXPECTED
compare() {
    if ! "$BIN" tokenize --tokenizer "$2" $3 --batch "$TMP/corpus.jsonl" > "$TMP/got.jsonl" 2> "$TMP/err.txt"; then
        echo "FAIL $1: attnviz tokenize failed: $(head -c 300 "$TMP/err.txt")"
        return
    fi
    "$PY" "$T/compare.py" "$1" "$TMP/corpus.jsonl" "$4" "$TMP/got.jsonl"
}

has_spm=0
"$PY" -c 'import sentencepiece' 2>/dev/null && has_spm=1

# ---- SentencePiece: Llama 2 ----
if [ ! -f "$TOK/llama2/tokenizer.model" ]; then
    echo "SKIP tok_ref_llama2_sentencepiece: $TOK/llama2/tokenizer.model not found (../shared is absent)"
elif [ $has_spm = 0 ]; then
    echo "FAIL tok_ref_llama2_sentencepiece: python3-sentencepiece is missing (run scripts/install-deps.sh)"
else
    "$PY" "$T/ref_spm.py" "$TOK/llama2/tokenizer.model" "$TMP/corpus.jsonl" > "$TMP/exp_llama2.jsonl" &&
        compare tok_ref_llama2_sentencepiece "$TOK/llama2/tokenizer.model" --no-bos "$TMP/exp_llama2.jsonl"
fi

# ---- SentencePiece: models trained here (no shared data needed) ----
if [ $has_spm = 1 ]; then
    if "$PY" "$T/train_spm.py" "$TMP/corpus.jsonl" "$TMP/spm" > "$TMP/train.log" 2>&1; then
        for m in uni uni_cf bpe; do
            "$PY" "$T/ref_spm.py" "$TMP/spm/$m.model" "$TMP/corpus.jsonl" > "$TMP/exp_$m.jsonl" &&
                compare "tok_ref_sentencepiece_$m" "$TMP/spm/$m.model" --no-bos "$TMP/exp_$m.jsonl"
        done
    else
        echo "FAIL tok_ref_sentencepiece_trained: training failed: $(tail -c 300 "$TMP/train.log")"
    fi
fi

# ---- GPT-2 vs gpt-3-encoder ----
if [ ! -f "$TOK/gpt2/encoder.json" ]; then
    echo "SKIP tok_ref_gpt2_gpt3_encoder: $TOK/gpt2 not found (../shared is absent)"
elif ! command -v node > /dev/null 2>&1; then
    echo "SKIP tok_ref_gpt2_gpt3_encoder: node is not installed (run scripts/install-deps.sh)"
else
    if [ ! -f "$T/node_modules/gpt-3-encoder/package.json" ]; then
        (cd "$T" && npm ci --no-audit --no-fund --loglevel=error > "$TMP/npm.log" 2>&1) ||
            echo "FAIL tok_ref_gpt2_gpt3_encoder: npm ci in tests/tok failed: $(tail -c 300 "$TMP/npm.log")"
    fi
    if [ -f "$T/node_modules/gpt-3-encoder/package.json" ]; then
        if node "$T/ref_gpt2.js" "$TMP/corpus.jsonl" > "$TMP/exp_gpt2.jsonl"; then
            compare tok_ref_gpt2_gpt3_encoder "$TOK/gpt2" --no-bos "$TMP/exp_gpt2.jsonl"
        else
            echo "FAIL tok_ref_gpt2_gpt3_encoder: the reference runner failed"
        fi
    fi
fi

# ---- BERT uncased vs the independent reference ----
if [ ! -f "$TOK/bert-base-uncased/vocab.txt" ]; then
    echo "SKIP tok_ref_bert_uncased: $TOK/bert-base-uncased not found (../shared is absent)"
else
    "$PY" "$T/ref_bert.py" "$TOK/bert-base-uncased/vocab.txt" "$TMP/corpus.jsonl" > "$TMP/exp_bert.jsonl" &&
        compare tok_ref_bert_uncased_tokenizer_json "$TOK/bert-base-uncased/tokenizer.json" "" "$TMP/exp_bert.jsonl" &&
        compare tok_ref_bert_uncased_vocab_txt "$TOK/bert-base-uncased/vocab.txt" "" "$TMP/exp_bert.jsonl"
    # the corpus must exercise what the issue asks for: [UNK] for long words and special tokens in the text
    "$PY" - "$TMP/exp_bert.jsonl" "$TMP/corpus.jsonl" <<'EOF'
import json, sys
ids = [json.loads(l) for l in open(sys.argv[1])]
texts = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8")]
unk = sum(x.count(100) for x in ids)
cls_inside = sum(1 for x in ids if 101 in x[1:])
long_words = sum(1 for t in texts for w in t.split() if len(w) > 100)
ok = unk > 100 and cls_inside > 10 and long_words > 100
print("%s tok_ref_bert_corpus_coverage: %d [UNK], %d lines with [CLS] written in the text, %d words over 100 chars"
      % ("PASS" if ok else "FAIL", unk, cls_inside, long_words))
EOF
fi
exit 0
