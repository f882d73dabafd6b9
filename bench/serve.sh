#!/bin/sh
# attnviz serve benchmark (on demand, not part of the tests): a lazy run at long context through the HTTP API,
# then the latency of the overview of a head (one tile of the whole matrix, as the page requests it), of single
# attention rows and of zoomed-in tiles, and the server's peak RSS. Synthetic Llama-shaped models from
# bench/make_synth_llama.py with their context raised to BENCH_SERVE_TOKENS:
#   tiny  (hidden 64, 4 heads of 16, 2 layers)                       -- seconds
#   1b-L  (hidden 2048, 32 heads of 64, 4 kv heads, vocab 32000; BENCH_SERVE_LAYERS layers, default 2)
# Prints JSON lines and a markdown table for docs/BENCHMARKS.md ("## Serve").
#   BENCH_SERVE_TOKENS (default 8192), BENCH_THREADS (default 2), BENCH_SERVE_SKIP_1B=1, BENCH_DIR.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PY=/usr/bin/python3
TOKENS=${BENCH_SERVE_TOKENS:-8192}
THREADS=${BENCH_THREADS:-2}
LAYERS=${BENCH_SERVE_LAYERS:-2}
DIR=${BENCH_DIR:-/tmp/attnviz-bench}
BIN=$ROOT/build/attnviz
mkdir -p "$DIR"
export OPENBLAS_NUM_THREADS=$THREADS
[ -x "$BIN" ] || make -j2 all >/dev/null

# make_model PRESET OUT [LAYERS]: synthetic model with its context raised to TOKENS
make_model() {
    if [ ! -f "$2/config.json" ]; then
        if [ -n "${3:-}" ]; then
            $PY bench/make_synth_llama.py --preset "$1" --dtype f16 --layers "$3" --out "$2" >/dev/null
        else
            $PY bench/make_synth_llama.py --preset "$1" --dtype f32 --out "$2" >/dev/null
        fi
    fi
    $PY - "$2/config.json" "$TOKENS" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c["max_position_embeddings"] = max(int(sys.argv[2]), c["max_position_embeddings"])
json.dump(c, open(sys.argv[1], "w"), indent=1)
EOF
}

PID=""
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; true' EXIT

# bench_one NAME MODEL_DIR
bench_one() {
    name=$1 model=$2
    cat "$model"/*.safetensors >/dev/null # page cache warm
    rm -f "$DIR/serve-$name.err" "$DIR/serve-$name.json"
    "$BIN" serve --model "$model" --port 0 --threads "$THREADS" --max-tokens "$TOKENS" --memory-mb 8192 \
        2>"$DIR/serve-$name.err" &
    PID=$!
    port=""
    for _ in $(seq 1 300); do
        port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$DIR/serve-$name.err" 2>/dev/null)
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "$port" ] || { echo "serve did not start: $(cat "$DIR/serve-$name.err")"; exit 1; }
    weights=$(cat "$model"/*.safetensors | wc -c)
    $PY bench/serve_bench.py --port "$port" --pid "$PID" --tokens "$TOKENS" --name "$name" --weights "$weights" |
        tee "$DIR/serve-$name.json"
    kill -INT "$PID"
    wait "$PID" || true
    PID=""
}

echo "== attnviz serve, $TOKENS tokens, $THREADS threads"
make_model tiny "$DIR/synth-tiny-ctx"
bench_one tiny "$DIR/synth-tiny-ctx"
if [ "${BENCH_SERVE_SKIP_1B:-0}" != 1 ]; then
    make_model 1b "$DIR/synth-1b-serve-$LAYERS" "$LAYERS"
    bench_one "1b-$LAYERS" "$DIR/synth-1b-serve-$LAYERS"
fi
$PY - "$DIR" <<'EOF'
import glob, json, sys
print("\n| model | tokens | load avg | run (s) | overview of a head, uncached: wall ms median / max (CPU ms) | overview cached (ms) | row (ms, median / max) | zoomed 256x256 tile (ms) | peak RSS (MiB) | beyond weights (MiB) |")
print("|---|---|---|---|---|---|---|---|---|---|")
for f in sorted(glob.glob(sys.argv[1] + "/serve-*.json")):
    for line in open(f):
        r = json.loads(line)
        print("| %s | %d | %.1f | %.2f | %.1f / %.1f (%.0f) | %.2f | %.2f / %.2f | %.1f | %d | %d |" % (
            r["model"], r["tokens"], r.get("load_avg_before", 0), r["run_s"], r["overview_ms_median"], r["overview_ms_max"],
            r.get("overview_cpu_ms_median", 0), r["overview_cached_ms"], r["row_ms_median"], r["row_ms_max"], r["tile_ms_median"],
            r["peak_rss_mb"], r["peak_beyond_weights_mb"]))
EOF
