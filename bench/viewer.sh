#!/bin/sh
# Viewer benchmarks (on demand, not part of the tests): page sizes and `attnviz html` time for a
# BERT-base-shaped trace (12 layers x 12 heads x 128 tokens) and one 2048 x 2048 head, then paint times in
# Debian's headless chromium (bench/viewer_bench.mjs, best and median of BENCH_REPS runs, default 7).
# Needs /usr/bin/python3 + numpy, chromium, node and tests/browser/node_modules (npm ci there).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${ATTNVIZ_BIN:-$ROOT/build/attnviz}
DIR=${BENCH_DIR:-/tmp/attnviz-viewer-bench}
mkdir -p "$DIR"
/usr/bin/python3 "$ROOT/tests/browser/make_fixtures.py" "$DIR" --big
"$BIN" import "$DIR/bert.npz" --tokens "$DIR/bert_tokens.json" -o "$DIR/bert.safetensors" 2>/dev/null
"$BIN" import "$DIR/big.npy" --tokens "$DIR/big_tokens.json" -o "$DIR/big.safetensors" 2>/dev/null
now() { /usr/bin/python3 -c 'import time; print(time.perf_counter())'; }
for n in bert big; do
    for prec in auto f16; do
        t0=$(now)
        "$BIN" html "$DIR/$n.safetensors" --precision $prec -o "$DIR/$n-$prec.html" 2>/dev/null
        t1=$(now)
        echo "{\"page\": \"$n\", \"precision\": \"$prec\", \"bytes\": $(wc -c <"$DIR/$n-$prec.html"), \"html_seconds\": $(/usr/bin/python3 -c "print(round($t1 - $t0, 3))")}"
    done
done
[ -f "$ROOT/tests/browser/node_modules/playwright-core/package.json" ] || (cd "$ROOT/tests/browser" && npm ci --no-audit --no-fund --loglevel=error)
node "$ROOT/bench/viewer_bench.mjs" "$DIR" "${BENCH_REPS:-7}"
