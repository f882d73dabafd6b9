#!/bin/sh
# Quantized GGUF models at the 1.1 B benchmark shape (docs/BENCHMARKS.md, "Quantized GGUF"): peak memory and
# speed of a 512-token capture of every head, against llama.cpp's prompt processing of the same file.
#   1. bench/quant_bench.c: dequantization speed of every weight type (ns per value).
#   2. bench/make_synth_llama.py makes the F16 model (22 layers), `attnviz convert` writes it as GGUF F16, and
#      llama.cpp's llama_model_quantize (node-llama-cpp 3.21.1, tests/llamacpp/llama_ref.c) makes Q8_0 and
#      Q4_K_M from it.
#   3. For each file: `attnviz run` on 512 random ids (best of BENCH_REPEAT, default 2), its peak RSS against
#      the budget file size + trace size + 600 MB, and llama.cpp's llama_decode of the same ids (2 threads,
#      no capture, best of BENCH_REPEAT).
# Prints JSON lines. BENCH_THREADS (2), BENCH_TOKENS (512), BENCH_TYPES ("F16 Q8_0 Q4_K_M"),
# BENCH_DIR (scratch, default /tmp/attnviz-quant-bench; about 8 GB).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PY=/usr/bin/python3
THREADS=${BENCH_THREADS:-2}
TOKENS=${BENCH_TOKENS:-512}
TYPES=${BENCH_TYPES:-F16 Q8_0 Q4_K_M}
R=${BENCH_REPEAT:-2}
DIR=${BENCH_DIR:-/tmp/attnviz-quant-bench}
BIN=$ROOT/build/attnviz
mkdir -p "$DIR"
echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg)"

echo "== dequantization, one thread (16 rows x 2048 values, best of 200)"
LIBS=$(sed -n 's/^LIBS *= *//p' Makefile) # libattnviz's own dependencies
cc -O2 -std=c11 -D_DEFAULT_SOURCE -Isrc -Iinclude bench/quant_bench.c build/libattnviz.a -o "$DIR/quant_bench" $LIBS
"$DIR/quant_bench"

eval "$(sh tests/llamacpp/install.sh)"
export LIB
cc -std=c11 -D_DEFAULT_SOURCE -O2 -Iinclude -Isrc -I"${INC%%:*}" -I"${INC##*:}" -o "$DIR/llama_ref" \
    tests/llamacpp/llama_ref.c build/libattnviz.a -L"$LIB" -lllama.v0.4.0 -lggml.v0.4.0 -lggml-base \
    -Wl,-rpath,"$LIB" $LIBS

SYN=$DIR/synth-1b-22
[ -f "$SYN/config.json" ] || $PY bench/make_synth_llama.py --preset 1b --layers 22 --dtype f16 --out "$SYN"
# llama.cpp loads only files with a tokenizer: the synthetic model has Llama 2's vocabulary size (32000)
TOK=${ATTNVIZ_SHARED:-$ROOT/../shared}/tokenizers/llama2/tokenizer.model
[ -f "$TOK" ] || { echo "needs $TOK (../shared) for llama.cpp to load the model" >&2; exit 1; }
[ -f "$DIR/F16.gguf" ] || "$BIN" convert --model "$SYN" --tokenizer "$TOK" -o "$DIR/F16.gguf" --type f16
for t in $TYPES; do
    case $t in F16) continue ;; Q8_0) ft=7 ;; Q4_K_M) ft=15 ;; Q4_0) ft=2 ;; Q5_K_M) ft=17 ;; Q6_K) ft=18 ;;
        IQ4_XS) ft=30 ;; *) echo "unknown type $t" >&2; exit 1 ;; esac
    [ -f "$DIR/$t.gguf" ] || "$DIR/llama_ref" quantize "$DIR/F16.gguf" "$DIR/$t.gguf" "$ft"
done
$PY -c "import random;random.seed(1);print([random.randrange(32000) for _ in range($TOKENS)])" > "$DIR/ids.json"

FWD='forward ([0-9.]+) s'
for t in $TYPES; do
    M=$DIR/$t.gguf
    cat "$M" > /dev/null # page cache warm for both
    set -- $($PY bench/timecmd.py "$R" "$DIR/cmd.out" "$DIR/cmd.err" --inner "$FWD" --before "rm -f $DIR/trace.safetensors" \
        -- "$BIN" run --model "$M" --threads "$THREADS" --ids "@$DIR/ids.json" -o "$DIR/trace.safetensors")
    a_s=$1 a_rss=$2 a_fwd=$3
    l_best=""
    for _ in $(seq "$R"); do
        s=$("$DIR/llama_ref" time "$M" "$DIR/ids.json" "$THREADS")
        l_best=$($PY -c "print(min(float('$s'), float('${l_best:-inf}')))")
    done
    $PY - "$t" "$(stat -c %s "$M")" "$(stat -c %s "$DIR/trace.safetensors")" "$a_s" "$a_fwd" "$a_rss" "$l_best" \
        "$(cut -d' ' -f1 /proc/loadavg)" <<'PYEOF'
import json, sys
t, file_b, trace_b = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
a_s, a_fwd, a_rss_kib, l_s, load = float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7]), sys.argv[8]
mb = 1e6
budget = file_b + trace_b + 600 * mb
print(json.dumps({"type": t, "file_mb": round(file_b / mb), "trace_mb": round(trace_b / mb),
                  "attnviz_peak_rss_mb": round(a_rss_kib * 1024 / mb), "budget_mb": round(budget / mb),
                  "rss_beyond_file_and_trace_mb": round((a_rss_kib * 1024 - file_b - trace_b) / mb),
                  "within_budget": a_rss_kib * 1024 < budget, "attnviz_total_s": a_s, "attnviz_forward_s": a_fwd,
                  "llamacpp_decode_s": round(l_s, 3), "llamacpp_over_attnviz_forward": round(l_s / a_fwd, 2),
                  "load_after": load}))
PYEOF
done
