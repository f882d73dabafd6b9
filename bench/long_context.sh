#!/bin/sh
# Long-context benchmark (on demand, not part of the tests): `attnviz run --lazy` on the 1.1 B benchmark shape
# (bench/make_synth_llama.py, 22 layers, F16, context raised) with BENCH_LONG_TOKENS random ids (default
# 32,768): wall time and peak RSS of the run against the size of the weights; then the readers of the trace
# through the API (bench/long_read.c: overview of a head, the mean of heads, single rows, a zoomed tile) and
# through the CLI (`attnviz show` of a head's overview and of one row, whole process). Prints JSON lines and
# the rows of docs/BENCHMARKS.md ("Long context"), with the forward's seconds per layer and GFLOP/s (the FLOP of
# a layer: projections, feed-forward, causal scores and P.V). About a minute per layer at 32k on 2 quiet cores.
#   BENCH_LONG_TOKENS (32768), BENCH_LONG_LAYERS (22), BENCH_THREADS (2), BENCH_DIR (/tmp/attnviz-bench),
#   BENCH_LONG_SKIP_RUN=1 to reuse the trace of an earlier run.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PY=/usr/bin/python3
TOKENS=${BENCH_LONG_TOKENS:-32768}
LAYERS=${BENCH_LONG_LAYERS:-22}
THREADS=${BENCH_THREADS:-2}
DIR=${BENCH_DIR:-/tmp/attnviz-bench}
BIN=$ROOT/build/attnviz
LIBS="-lopenblas -ljansson -lonig -lutf8proc -lm -pthread -lpng -lz -lfreetype -lmicrohttpd -ljpeg"
mkdir -p "$DIR"
[ -x "$BIN" ] || make -j2 all >/dev/null
cc -O2 -std=c11 -D_DEFAULT_SOURCE -Isrc -Iinclude bench/long_read.c build/libattnviz.a -o "$DIR/long_read" $LIBS

SYN=$DIR/synth-1b-$LAYERS
[ -f "$SYN/config.json" ] || $PY bench/make_synth_llama.py --preset 1b --layers "$LAYERS" --dtype f16 --out "$SYN"
$PY - "$SYN/config.json" "$TOKENS" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c["max_position_embeddings"] = max(int(sys.argv[2]), c["max_position_embeddings"])
json.dump(c, open(sys.argv[1], "w"), indent=1)
EOF
$PY -c "import random,json;random.seed(1);print(json.dumps([random.randrange(32000) for _ in range($TOKENS)]))" >"$DIR/long-ids.json"
TRACE=$DIR/long-$LAYERS-$TOKENS.safetensors
WEIGHTS=$(cat "$SYN"/*.safetensors | wc -c)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
if [ "${BENCH_LONG_SKIP_RUN:-0}" != 1 ]; then
    cat "$SYN"/*.safetensors >/dev/null # page cache warm
    set -- $($PY bench/timecmd.py 1 "$DIR/long.out" "$DIR/long.err" --inner 'forward ([0-9.]+) s' \
        --before "rm -f $TRACE" -- "$BIN" run --model "$SYN" --threads "$THREADS" --lazy \
        --ids "@$DIR/long-ids.json" -o "$TRACE")
    # FLOP of one layer: the projections and feed-forward of every token, the causal scores and P.V
    PER_LAYER=$($PY - "$SYN/config.json" "$TOKENS" "$3" "$LAYERS" <<'EOF'
import json, sys
c, T, fwd, L = json.load(open(sys.argv[1])), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
d, H, G, f = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"], c["intermediate_size"]
hs = d // H
flop = 2 * T * (d * (H + 2 * G) * hs + H * hs * d + 3 * d * f) + 4 * H * hs * T * (T + 1) / 2
print(f'"s_per_layer": {fwd / L:.1f}, "tflop_per_layer": {flop / 1e12:.2f}, "gflops": {flop * L / fwd / 1e9:.1f}')
EOF
)
    echo "{\"tokens\": $TOKENS, \"layers\": $LAYERS, \"run_s\": $1, \"forward_s\": $3, \"cpu_s\": $4, $PER_LAYER, \"peak_rss_mb\": $(($2 / 1024)), \"weights_mb\": $((WEIGHTS / 1048576)), \"beyond_weights_mb\": $((($2 * 1024 - WEIGHTS) / 1048576)), \"trace_mb\": $(($(wc -c <"$TRACE") / 1048576)), \"load_avg\": \"$LOAD0 -> $(cut -d' ' -f1-3 /proc/loadavg)\"}" |
        tee "$DIR/long-run.json"
fi
echo "== readers through the API (median, max ms over 10 random layers/heads/queries)"
"$DIR/long_read" "$TRACE" 10 | tee "$DIR/long-read.json"
echo "== readers through the CLI (whole process: load the trace, compute, draw; best of 5 and peak RSS)"
L=$((LAYERS - 1)) Q=$((TOKENS - 1))
for what in overview row; do
    if [ $what = overview ]; then ARGS="--layer $L --head 3"; else ARGS="--layer $L --head 3 --rows $Q:"; fi
    set -- $($PY bench/timecmd.py 5 "$DIR/show.out" "$DIR/show.err" -- "$BIN" show "$TRACE" $ARGS --colors none \
        --width 120 --height 50)
    echo "{\"cli\": \"show $ARGS\", \"best_ms\": $($PY -c "print(round($1 * 1000, 1))"), \"peak_rss_mb\": $(($2 / 1024))}"
done | tee "$DIR/long-cli.json"
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; load average now $(cut -d' ' -f1-3 /proc/loadavg)"
