#!/bin/sh
# attnviz benchmarks (run on demand: `make bench`; not part of the tests). Compares `attnviz run` with a
# plain PyTorch eager implementation of the same model that keeps every attention probability, same weights,
# same thread count, in the same run. Prints JSON lines and a summary; see docs/BENCHMARKS.md.
#   BENCH_THREADS (default 2), BENCH_TOKENS (default 512), BENCH_LAYERS (1B model layers, default 22),
#   BENCH_SKIP_1B=1 to run only the small real model, BENCH_DIR (scratch, default /tmp/attnviz-bench).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PY=/usr/bin/python3
THREADS=${BENCH_THREADS:-2}
TOKENS=${BENCH_TOKENS:-512}
LAYERS=${BENCH_LAYERS:-22}
DIR=${BENCH_DIR:-/tmp/attnviz-bench}
SHARED=${ATTNVIZ_SHARED:-$ROOT/../shared}
BIN=$ROOT/build/attnviz
mkdir -p "$DIR"
export OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=$THREADS

cc -O2 -I/usr/include/x86_64-linux-gnu/openblas-pthread bench/sgemm_peak.c -o "$DIR/sgemm_peak" -lopenblas
echo "== OpenBLAS sgemm peak ($THREADS threads)"
"$DIR/sgemm_peak" "$TOKENS" "$THREADS" | tee "$DIR/sgemm.json"
echo "== attnviz GEMM paths on the 1B shapes (f16 weights): GFLOP/s and max error vs double"
cc -O2 -std=c11 -D_DEFAULT_SOURCE -Isrc -Iinclude -I/usr/include/x86_64-linux-gnu/openblas-pthread bench/gemm_bench.c \
    build/libattnviz.a -o "$DIR/gemm_bench" -lopenblas -lm -pthread
"$DIR/gemm_bench" "$TOKENS" "$THREADS" | tee "$DIR/gemm.json"
PEAK=$($PY -c "import json;print(json.load(open('$DIR/sgemm.json'))['peak_gflops'])")

# best wall seconds over N runs and peak RSS (KiB) of a command: "seconds kib"
measure() { n=$1; shift; $PY bench/timecmd.py "$n" "$DIR/cmd.out" "$DIR/cmd.err" -- "$@"; }

echo "== stories260K (real), whole process, best of 5"
M=$SHARED/models/stories260K/stories260K.bin
TEXT="Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball."
set -- $(measure 20 "$BIN" run --model "$M" --threads "$THREADS" --text "$TEXT" -o "$DIR/small.safetensors")
best_c=$1 rss_c=$2
set -- $(measure 5 $PY bench/torch_llama.py --model "$M" --threads "$THREADS" --text "$TEXT")
best_p=$1 rss_p=$2
echo "{\"model\": \"stories260K\", \"attnviz_s\": $best_c, \"torch_s\": $best_p, \"speedup\": $($PY -c "print(round($best_p/$best_c, 1))"), \"attnviz_rss_mb\": $((rss_c / 1024)), \"torch_rss_mb\": $((rss_p / 1024))}" | tee "$DIR/small.json"

[ "${BENCH_SKIP_1B:-0}" = 1 ] && exit 0
echo "== synthetic Llama ~1B (F16 safetensors, $LAYERS layers), $TOKENS tokens"
SYN=$DIR/synth-1b-$LAYERS
[ -f "$SYN/config.json" ] || $PY bench/make_synth_llama.py --preset 1b --layers "$LAYERS" --dtype f16 --out "$SYN"
$PY -c "import random,json;random.seed(1);print(json.dumps([random.randrange(32000) for _ in range($TOKENS)]))" > "$DIR/ids.json"
cat "$SYN"/*.safetensors > /dev/null # page cache warm for both
# best of BENCH_REPEAT (default 3): this VM's timings move by +-15% from run to run
R=${BENCH_REPEAT:-3}
FWD='forward ([0-9.]+) s'
set -- $($PY bench/timecmd.py "$R" "$DIR/cmd.out" "$DIR/cmd.err" --inner "$FWD" --before "rm -f $DIR/big.safetensors" -- \
    "$BIN" run --model "$SYN" --threads "$THREADS" --ids "@$DIR/ids.json" -o "$DIR/big.safetensors")
c_s=$1 c_rss=$2 c_fwd=$3
gemm=$(if grep -q amx_bf16 /proc/cpuinfo && [ "${ATTNVIZ_GEMM:-}" != sgemm ]; then echo amx-bf16x3; else echo sgemm; fi)
# the same run on plain f32 sgemm (ATTNVIZ_GEMM=sgemm), and how far its attention is from the default's
set -- $(ATTNVIZ_GEMM=sgemm $PY bench/timecmd.py "$R" "$DIR/cmd.out" "$DIR/cmd.err" --inner "$FWD" --before "rm -f $DIR/big-sgemm.safetensors" -- \
    "$BIN" run --model "$SYN" --threads "$THREADS" --ids "@$DIR/ids.json" -o "$DIR/big-sgemm.safetensors")
s_s=$1 s_fwd=$3
diff=$($PY bench/trace_diff.py "$DIR/big.safetensors" "$DIR/big-sgemm.safetensors")
set -- $(measure 1 $PY bench/torch_llama.py --model "$SYN" --threads "$THREADS" --tokens "$TOKENS")
p_s=$1 p_rss=$2
p_fwd=$($PY -c "import json;print(json.load(open('$DIR/cmd.out'))['seconds_forward'])")
$PY - "$SYN/config.json" "$TOKENS" "$PEAK" "$gemm" "$diff" "$c_s" "$c_fwd" "$c_rss" "$p_s" "$p_fwd" "$p_rss" "$s_s" "$s_fwd" <<'PYEOF' | tee "$DIR/big.json"
import json, sys
cfg = json.load(open(sys.argv[1])); T = int(sys.argv[2]); peak = float(sys.argv[3]); gemm = sys.argv[4]
diff = json.loads(sys.argv[5])
c_s, c_fwd, c_rss, p_s, p_fwd, p_rss, s_s, s_fwd = map(float, sys.argv[6:])
d, L, H = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"]
kv = cfg.get("num_key_value_heads", H); hs = d // H; ff = cfg["intermediate_size"]
linear = 2 * T * L * (2 * d * H * hs + 2 * d * kv * hs + 3 * d * ff)
attn = 4 * T * T * hs * H * L  # QK^T and PV over the full T x T block per head
gflop = (linear + attn) / 1e9
limit = gflop / peak
print(json.dumps({"model": "synthetic-llama", "params_b": round((L * (2*d*H*hs + 2*d*kv*hs + 3*d*ff) + 2*cfg["vocab_size"]*d) / 1e9, 3),
    "tokens": T, "gflop": round(gflop, 1), "sgemm_peak_gflops": peak, "gemm_limit_s": round(limit, 3),
    "attnviz_total_s": c_s, "attnviz_forward_s": c_fwd, "attnviz_forward_gflops": round(gflop / c_fwd, 1),
    "attnviz_forward_vs_limit": round(c_fwd / limit, 3), "attnviz_total_vs_limit": round(c_s / limit, 3),
    "attnviz_peak_rss_mb": round(c_rss / 1024), "attnviz_gemm": gemm,
    "sgemm_total_s": s_s, "sgemm_forward_s": s_fwd, "sgemm_forward_vs_limit": round(s_fwd / limit, 3),
    "max_abs_diff_vs_sgemm": diff, "torch_total_s": p_s, "torch_forward_s": p_fwd,
    "torch_forward_gflops": round(gflop / p_fwd, 1), "torch_forward_pct_of_peak": round(100 * limit / p_fwd, 1),
    "torch_peak_rss_mb": round(p_rss / 1024), "forward_speedup_vs_torch": round(p_fwd / c_fwd, 2)}))
PYEOF
