#!/bin/sh
# attnviz benchmarks (run on demand: `make bench`; not part of the tests). Prints JSON lines, then a markdown
# summary for docs/BENCHMARKS.md (bench/summary.py); see docs/BENCHMARKS.md for how to read them.
#  1. the machine: CPU model, CPUID family/model, SIMD flags, load average (before and after);
#  2. the f32 GEMM limit (bench/f32_limit.sh): OpenBLAS sgemm peak with the best OPENBLAS_CORETYPE for this
#     CPU and the project's own kernels' peak, whichever is higher; the same for AVX2 alone;
#  3. every GEMM path on the 1B shapes (F16 weights; Q8_0, Q4_K, Q6_K on the own paths and amx), and
#     token-by-token generation against a STREAM-like copy, and on AVX-512 whether av_fast_gathers() picks the
#     faster way to fetch block scales on this CPU (bench/gemm_bench.c);
#  4. stories260K (real) against plain PyTorch, whole process;
#  5. the 1.1 B synthetic Llama at BENCH_TOKENS tokens: the forward pass with each path forced by ATTNVIZ_GEMM
#     (avx512, avx2, amx, sgemm; those this CPU runs) against the limit, each path's attention against the
#     sgemm path's, F32 and F16 traces on the default path and `stats` of the F16 one, and PyTorch eager on
#     the same weights.
# Environment: BENCH_THREADS (2), BENCH_TOKENS (512), BENCH_LAYERS (22), BENCH_REPEAT (3: best of),
#   BENCH_PATHS ("avx512 avx2 amx sgemm"), BENCH_SKIP_1B=1, BENCH_SKIP_TORCH=1, BENCH_DIR (/tmp/attnviz-bench).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PY=/usr/bin/python3
THREADS=${BENCH_THREADS:-2}
TOKENS=${BENCH_TOKENS:-512}
LAYERS=${BENCH_LAYERS:-22}
R=${BENCH_REPEAT:-3}
PATHS=${BENCH_PATHS:-avx512 avx2 amx sgemm}
DIR=${BENCH_DIR:-/tmp/attnviz-bench}
SHARED=${ATTNVIZ_SHARED:-$ROOT/../shared}
BIN=$ROOT/build/attnviz
mkdir -p "$DIR"
export OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=$THREADS

echo "== machine"
flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|fma|f16c|avx512f|avx512bw|avx512vl|avx512_bf16|amx_bf16|amx_tile)$' | tr '\n' ' ')
has() { case " $flags " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
$PY - "$flags" "$(cat /proc/loadavg)" <<'PYEOF' | tee "$DIR/machine.json"
import json, sys
info = {}
for line in open("/proc/cpuinfo"):
    k, _, v = line.partition(":")
    k = k.strip()
    if k in ("model name", "cpu family", "model") and k not in info:
        info[k] = v.strip()
print(json.dumps({"cpu": info.get("model name"), "family": info.get("cpu family"), "model": info.get("model"),
                  "flags": sys.argv[1].split(), "loadavg_before": sys.argv[2]}))
PYEOF

sh bench/f32_limit.sh "$DIR" "$THREADS" "$TOKENS"
echo "== attnviz GEMM paths on the 1B shapes (f16 and quantized weights), generation vs copy ($THREADS threads)"
"$DIR/gemm_bench" "$TOKENS" "$THREADS" f16,quant,gen,gathers | tee "$DIR/gemm.json"

# best wall seconds over N runs and peak RSS (KiB) of a command: "seconds kib"
measure() { n=$1; shift; $PY bench/timecmd.py "$n" "$DIR/cmd.out" "$DIR/cmd.err" -- "$@"; }

echo "== stories260K (real), whole process, best of 20 / 5"
M=$SHARED/models/stories260K/stories260K.bin
TEXT="Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball."
set -- $(measure 20 "$BIN" run --model "$M" --threads "$THREADS" --text "$TEXT" -o "$DIR/small.safetensors")
best_c=$1 rss_c=$2
set -- $(measure 5 $PY bench/torch_llama.py --model "$M" --threads "$THREADS" --text "$TEXT")
best_p=$1 rss_p=$2
echo "{\"model\": \"stories260K\", \"attnviz_s\": $best_c, \"torch_s\": $best_p, \"speedup\": $($PY -c "print(round($best_p/$best_c, 1))"), \"attnviz_rss_mb\": $((rss_c / 1024)), \"torch_rss_mb\": $((rss_p / 1024))}" | tee "$DIR/small.json"

summary() { echo "== summary (markdown for docs/BENCHMARKS.md)"; $PY bench/summary.py run "$DIR"; }
[ "${BENCH_SKIP_1B:-0}" = 1 ] && { summary; exit 0; }
echo "== synthetic Llama ~1B (F16 safetensors, $LAYERS layers), $TOKENS tokens, best of $R per path"
SYN=$DIR/synth-1b-$LAYERS
[ -f "$SYN/config.json" ] || $PY bench/make_synth_llama.py --preset 1b --layers "$LAYERS" --dtype f16 --out "$SYN"
$PY -c "import random,json;random.seed(1);print(json.dumps([random.randrange(32000) for _ in range($TOKENS)]))" > "$DIR/ids.json"
cat "$SYN"/*.safetensors > /dev/null # page cache warm
FWD='forward ([0-9.]+) s'
: > "$DIR/paths.json"
# sgemm first: the other paths' attention is compared with it
for p in sgemm $(echo "$PATHS" | tr ' ' '\n' | grep -v '^sgemm$'); do
    case " $PATHS " in *" $p "*) ;; *) continue ;; esac
    case $p in avx512) has avx512f || continue ;; amx) has amx_bf16 || continue ;; avx2) has avx2 || continue ;; esac
    out=$DIR/big-$p.safetensors
    set -- $(ATTNVIZ_GEMM=$p $PY bench/timecmd.py "$R" "$DIR/cmd.out" "$DIR/cmd.err" --inner "$FWD" --before "rm -f $out" -- \
        "$BIN" run --model "$SYN" --threads "$THREADS" --ids "@$DIR/ids.json" -o "$out")
    diff='{}'
    [ "$p" != sgemm ] && [ -f "$DIR/big-sgemm.safetensors" ] && diff=$($PY bench/trace_diff.py "$out" "$DIR/big-sgemm.safetensors")
    echo "{\"path\": \"$p\", \"total_s\": $1, \"rss_kib\": $2, \"forward_s\": $3, \"cpu_s\": $4, \"max_abs_diff_vs_sgemm\": $diff}" | tee -a "$DIR/paths.json"
done
# The trace formats on the default path: an F16 trace is written as the run goes, like an F32 one (no second
# copy of the attention in memory); then `stats` and `stats --rollout` on the F16 trace (rows read as tiles)
echo "== F32 and F16 traces (default path), stats of the F16 trace, best of $R"
out16=$DIR/big-f16.safetensors
trace_run() { # dtype -> "seconds kib"
    $PY bench/timecmd.py "$R" "$DIR/cmd.out" "$DIR/cmd.err" --before "rm -f $out16" -- \
        "$BIN" run --model "$SYN" --threads "$THREADS" --dtype "$1" --ids "@$DIR/ids.json" -o "$out16" | cut -d' ' -f1,2
}
set -- $(trace_run f32) $(trace_run f16)
t32_s=$1 t32_rss=$2 t16_s=$3 t16_rss=$4
set -- $(measure "$R" "$BIN" stats "$out16" --json | cut -d' ' -f1,2) \
    $(measure 1 "$BIN" stats "$out16" --rollout --json | cut -d' ' -f1,2)
echo "{\"f32_s\": $t32_s, \"f32_rss_kib\": $t32_rss, \"f16_s\": $t16_s, \"f16_rss_kib\": $t16_rss, \"stats_s\": $1, \"stats_rss_kib\": $2, \"rollout_s\": $3, \"rollout_rss_kib\": $4}" | tee "$DIR/traces.json"
rm -f "$out16"
p_s=0 p_fwd=0 p_rss=0
if [ "${BENCH_SKIP_TORCH:-0}" != 1 ]; then
    set -- $(measure 1 $PY bench/torch_llama.py --model "$SYN" --threads "$THREADS" --tokens "$TOKENS")
    p_s=$1 p_rss=$2
    p_fwd=$($PY -c "import json;print(json.load(open('$DIR/cmd.out'))['seconds_forward'])")
fi
$PY - "$SYN/config.json" "$TOKENS" "$DIR" "$p_s" "$p_fwd" "$p_rss" "$(cat /proc/loadavg)" <<'PYEOF' | tee "$DIR/big.json"
import json, os, sys
cfg = json.load(open(sys.argv[1])); T = int(sys.argv[2]); d = sys.argv[3]
p_s, p_fwd, p_rss = map(float, sys.argv[4:7])
lim = json.load(open(os.path.join(d, "limit.json")))
D, L, H = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"]
kv = cfg.get("num_key_value_heads", H); hs = D // H; ff = cfg["intermediate_size"]
linear = 2 * T * L * (2 * D * H * hs + 2 * D * kv * hs + 3 * D * ff)
attn = 4 * T * T * hs * H * L  # QK^T and PV over the full T x T block per head
gflop = (linear + attn) / 1e9
limit, limit2 = gflop / lim["f32_limit_gflops"], gflop / lim["avx2_limit_gflops"]
out = {"model": "synthetic-llama", "tokens": T, "gflop": round(gflop, 1),
       "f32_limit_s": round(limit, 3), "f32_limit_from": lim["f32_limit_from"],
       "avx2_limit_s": round(limit2, 3), "avx2_limit_from": lim["avx2_limit_from"], "paths": {}}
for line in open(os.path.join(d, "paths.json")):
    r = json.loads(line)
    e = {"forward_s": r["forward_s"], "total_s": r["total_s"], "forward_vs_f32_limit": round(r["forward_s"] / limit, 3),
         "process_cpu_s": r["cpu_s"],
         "peak_rss_mb": round(r["rss_kib"] / 1024), "max_abs_diff_vs_sgemm": r["max_abs_diff_vs_sgemm"]}
    if r["path"] == "avx2":
        e["forward_vs_avx2_limit"] = round(r["forward_s"] / limit2, 3)
    out["paths"][r["path"]] = e
if p_fwd:
    best = min(e["forward_s"] for e in out["paths"].values())
    out["torch"] = {"forward_s": p_fwd, "total_s": p_s, "peak_rss_mb": round(p_rss / 1024),
                    "forward_vs_f32_limit": round(p_fwd / limit, 3), "fastest_attnviz_speedup": round(p_fwd / best, 2)}
out["loadavg_after"] = sys.argv[7]
print(json.dumps(out))
PYEOF
summary
