#!/bin/sh
# Tokenizer throughput against the reference implementations, on the same generated text (docs/BENCHMARKS.md,
# "## Tokenizers"). Needs the build (build/libattnviz.a), /usr/bin/python3 with python3-sentencepiece, node and
# tests/tok/node_modules (npm ci in tests/tok), and ../shared/tokenizers.
#   attnviz:  bench/tok_bench.c, one av_tokenizer_encode call per line, single thread, no cache
#   llama2:   python3-sentencepiece, one sp.encode call per line (and one batch call, 1 thread)
#   gpt2:     gpt-3-encoder 1.1.4, one encode call per line; its word cache is warm after the first repeat
# Each number is the best of BENCH_REPEATS (default 5) passes; runs alternate to share machine noise.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PY=/usr/bin/python3
SHARED=${ATTNVIZ_SHARED:-$ROOT/../shared}
DIR=${BENCH_DIR:-/tmp/attnviz-bench}
REP=${BENCH_REPEATS:-5}
LINES=${BENCH_LINES:-10240}
mkdir -p "$DIR"
LIBS="-lopenblas -ljansson -lonig -lutf8proc -lm -pthread -lpng -lz -lfreetype -lmicrohttpd -ljpeg"
cc -O2 -std=c11 -D_DEFAULT_SOURCE -Iinclude bench/tok_bench.c build/libattnviz.a -o "$DIR/tok_bench" $LIBS 2>/dev/null ||
    cc -O2 -std=c11 -D_DEFAULT_SOURCE -Iinclude bench/tok_bench.c build/libattnviz.a -o "$DIR/tok_bench" \
        -lopenblas -ljansson -lonig -lutf8proc -lm -pthread
[ -f tests/tok/node_modules/gpt-3-encoder/package.json ] || (cd tests/tok && npm ci --no-audit --no-fund --loglevel=error)
$PY tests/tok/gen_corpus.py "$LINES" 11 > "$DIR/tok_corpus.jsonl"
T=$SHARED/tokenizers
echo "== corpus: $LINES lines ($(wc -c < "$DIR/tok_corpus.jsonl") bytes of JSON), best of $REP"
for round in 1 2; do
    "$DIR/tok_bench" "$T/llama2/tokenizer.model" "$DIR/tok_corpus.jsonl" "$REP" | tee "$DIR/tok_llama2_c.$round.json"
    $PY bench/tok_ref_spm.py "$T/llama2/tokenizer.model" "$DIR/tok_corpus.jsonl" "$REP" | tee "$DIR/tok_llama2_ref.$round.json"
    "$DIR/tok_bench" "$T/gpt2" "$DIR/tok_corpus.jsonl" "$REP" | tee "$DIR/tok_gpt2_c.$round.json"
    node bench/tok_ref_gpt3.js "$DIR/tok_corpus.jsonl" "$REP" | tee "$DIR/tok_gpt2_ref.$round.json"
    "$DIR/tok_bench" "$T/bert-base-uncased" "$DIR/tok_corpus.jsonl" "$REP" | tee "$DIR/tok_bert_c.$round.json"
done
echo "== one 10 MB text (the corpus repeated), encoded in one call"
$PY - "$DIR/tok_corpus.jsonl" "$DIR/tok_10mb.txt" <<'EOF'
import json, sys
text = "\n".join(json.loads(l) for l in open(sys.argv[1], encoding="utf-8")).encode("utf-8")
open(sys.argv[2], "wb").write((text * (10 * 2**20 // len(text) + 1))[:10 * 2**20].decode("utf-8", "ignore").encode())
EOF
for tok in llama2/tokenizer.model gpt2 bert-base-uncased; do "$DIR/tok_bench" "$T/$tok" "$DIR/tok_10mb.txt" 2 --whole; done
$PY - "$DIR" <<'EOF'
import json, sys, glob
d = sys.argv[1]
def best(name, key):
    return max(json.load(open(f))[key] for f in glob.glob("%s/tok_%s.*.json" % (d, name)))
rows = [("Llama 2 SentencePiece", best("llama2_c", "tokens_per_s"), "python3-sentencepiece (per line)",
         best("llama2_ref", "tokens_per_s")),
        ("Llama 2 SentencePiece", best("llama2_c", "tokens_per_s"), "python3-sentencepiece (batch, 1 thread)",
         best("llama2_ref", "tokens_per_s_batch")),
        ("GPT-2 byte-level BPE", best("gpt2_c", "tokens_per_s"), "gpt-3-encoder (warm cache)", best("gpt2_ref", "tokens_per_s")),
        ("GPT-2 byte-level BPE", best("gpt2_c", "tokens_per_s"), "gpt-3-encoder (first pass)",
         best("gpt2_ref", "tokens_per_s_first"))]
print("\n| tokenizer | attnviz tokens/s | reference | reference tokens/s | attnviz / reference |")
print("|---|---|---|---|---|")
for name, c, ref, r in rows:
    print("| %s | %s | %s | %s | %.1fx |" % (name, format(int(c), ","), ref, format(int(r), ","), c / r))
print("| BERT uncased WordPiece | %s | - | - | - |" % format(int(best("bert_c", "tokens_per_s")), ","))
EOF
