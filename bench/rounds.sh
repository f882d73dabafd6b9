#!/bin/sh
# Interleaved rounds (docs/BENCHMARKS.md, "Interleaved rounds"): on a machine whose speed drifts by 20-30%
# within minutes (a shared VM: the same binary's forward pass took 7.1-9.5 s in one hour), a ratio between
# numbers taken minutes apart says little. Each round measures the f32 GEMM limit (bench/f32_limit.sh) and
# then every run once, so that each forward pass is compared with the limit of its own minutes:
#   - `attnviz run` of the 1.1 B synthetic Llama (F16, bench/run.sh's model and ids) on each of BENCH_PATHS;
#   - `attnviz run` of each GGUF file of BENCH_TYPES (bench/quant_mem.sh's files) on the first of BENCH_PATHS,
#     then llama.cpp's prompt processing of the same file (node-llama-cpp 3.21.1's libllama through
#     tests/llamacpp/llama_ref.c, same ids and threads);
#   - with BENCH_GEN=1 (the default when BENCH_TYPES names files), token-by-token generation on each of those
#     files (`attnviz generate`, seconds per token from the wall times of 40 and 8 steps), llama.cpp's one-token
#     decoding of the same file (`llama_ref gen`, 32 tokens) and a STREAM-like copy (`gemm_bench copy`): each
#     generation against the copy rate of its own round, as in bench/quant_mem.sh;
#   - with BENCH_OLD (another attnviz binary, e.g. built from an older commit), every attnviz run (and
#     generation) twice more with it, in the order old new new old.
# Appends one JSON line per round to DIR/rounds.json (run again to add rounds; delete it to start over), then
# prints bench/summary.py's "rounds" table: each run's ratio to the limit of its round (median and range over
# the rounds) and the per-round ratios new/old and llama.cpp/attnviz.
# Needs `sh bench/run.sh` (BENCH_DIR) and, for BENCH_TYPES, `sh bench/quant_mem.sh` (BENCH_QDIR) run before.
# BENCH_ROUNDS (5), BENCH_THREADS (2), BENCH_PATHS ("avx512 avx2" where the CPU has AVX-512 F, BW and VL, the
# quantized files and generation on avx512, else "avx2"), BENCH_TYPES ("Q8_0 Q4_K_M"; "" for none),
# BENCH_GEN (1), BENCH_OLD (none), BENCH_DIR (/tmp/attnviz-bench), BENCH_QDIR (/tmp/attnviz-quant-bench).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PY=/usr/bin/python3
ROUNDS=${BENCH_ROUNDS:-5}
THREADS=${BENCH_THREADS:-2}
cpu_has() { grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -qx "$1"; }
default_paths=avx2
cpu_has avx512f && cpu_has avx512bw && cpu_has avx512vl && default_paths="avx512 avx2"
PATHS=${BENCH_PATHS:-$default_paths}
TYPES=${BENCH_TYPES-Q8_0 Q4_K_M}
OLD=${BENCH_OLD:-}
GEN=${BENCH_GEN:-1}
DIR=${BENCH_DIR:-/tmp/attnviz-bench}
QDIR=${BENCH_QDIR:-/tmp/attnviz-quant-bench}
BIN=$ROOT/build/attnviz
SYN=$DIR/synth-1b-22
for f in "$SYN/config.json" "$DIR/ids.json" "$DIR/sgemm_peak" "$DIR/gemm_bench"; do
    [ -e "$f" ] || { echo "bench/rounds.sh: $f is missing: run sh bench/run.sh first" >&2; exit 1; }
done
for t in $TYPES; do
    for f in "$QDIR/$t.gguf" "$QDIR/llama_ref"; do
        [ -e "$f" ] || { echo "bench/rounds.sh: $f is missing: run sh bench/quant_mem.sh first" >&2; exit 1; }
    done
done
[ -z "$TYPES" ] || { eval "$(sh tests/llamacpp/install.sh)"; export LIB; }
[ -z "$OLD" ] || [ -x "$OLD" ] || { echo "bench/rounds.sh: BENCH_OLD=$OLD is not an executable" >&2; exit 1; }
first_path=${PATHS%% *}
TMP=$DIR/rounds-trace.safetensors
LIMDIR=$DIR/rounds-limit # f32_limit.sh's files of the latest round (bench/run.sh's limit.json stays as it was)
mkdir -p "$LIMDIR"
ln -sf ../sgemm_peak ../gemm_bench "$LIMDIR/"

# Reads every file of a model (a file or a folder) into the page cache: some machines page idle page cache
# out within a minute (a KVM guest on 2026-12-07 ran DAMON's pageout scheme: 2 GB files 5-15% out of cache
# after 45 s idle, forward passes 1.5x slower when they paged the weights in from disk), so each run starts
# from cached weights.
warm() { find "$1" -type f -exec cat {} + > /dev/null; }
# "forward_s wall_s" of one `attnviz run` (executable $1, path $2, model $3); forward_s null when it failed
one_run() {
    rm -f "$TMP"
    warm "$3"
    start=$($PY -c 'import time; print(time.time())')
    fwd=$(ATTNVIZ_GEMM=$2 "$1" run --model "$3" --threads "$THREADS" --ids "@$DIR/ids.json" -o "$TMP" 2>&1 |
        sed -n 's/.*(forward \([0-9.]*\) s.*/\1/p')
    echo "${fwd:-null} $($PY -c "import time; print(round(time.time() - $start, 3))")"
}
# The JSON object of one run of binary $1 (new, or old: $OLD) on path $2 of model file $3 named $4
runs_of() {
    exe=$BIN
    [ "$1" = old ] && exe=$OLD
    # shellcheck disable=SC2046 # one_run prints two numbers
    set -- "$1" "$2" "$4" $(one_run "$exe" "$2" "$3")
    echo "{\"model\": \"$3\", \"path\": \"$2\", \"binary\": \"$1\", \"forward_s\": $4, \"wall_s\": $5}, "
}
# Wall seconds of `attnviz generate` (executable $1, file $2, $3 steps) on the first of BENCH_PATHS
gen_wall() {
    warm "$2"
    start=$($PY -c 'import time; print(time.time())')
    ATTNVIZ_GEMM=$first_path "$1" generate --model "$2" --threads "$THREADS" --steps "$3" > /dev/null 2>&1 ||
        { echo null; return; }
    $PY -c "import time; print(time.time() - $start)"
}
# The JSON object of one generation of binary $1 (new, or old) on GGUF file $2 named $3: seconds per token
gen_of() {
    exe=$BIN
    [ "$1" = old ] && exe=$OLD
    s8=$(gen_wall "$exe" "$2" 8) s40=$(gen_wall "$exe" "$2" 40)
    per=$($PY -c "print('null' if 'null' in ('$s8', '$s40') else round(($s40 - $s8) / 32, 5))")
    echo "{\"model\": \"$3\", \"binary\": \"$1\", \"gen_s_per_token\": $per}, "
}
# MB of weights a token reads in the file of type $1 (bench/quant_mem.sh's QDIR/quant.json), or null
weights_mb() {
    $PY - "$QDIR/quant.json" "$1" <<'PYEOF'
import json, sys
mb = "null"
try:
    for line in open(sys.argv[1]):
        r = json.loads(line)
        if r.get("type") == sys.argv[2]:
            mb = r["generation"]["weights_mb_per_token"]
except (OSError, ValueError, KeyError):
    pass
print(mb)
PYEOF
}
# Every binary's runs ($1: runs_of or gen_of) of the remaining arguments: old new new old, or new alone
# without BENCH_OLD
interleaved() {
    f=$1
    shift
    if [ -n "$OLD" ]; then
        for b in old new new old; do $f $b "$@"; done
    else
        $f new "$@"
    fi
}

for r in $(seq "$ROUNDS"); do
    BENCH_LIMIT_BUILT=1 sh bench/f32_limit.sh "$LIMDIR" "$THREADS" 512 > "$LIMDIR/out.txt"
    runs=""
    for p in $PATHS; do runs="$runs$(interleaved runs_of "$p" "$SYN" F16 | tr -d '\n')"; done
    for t in $TYPES; do
        runs="$runs$(interleaved runs_of "$first_path" "$QDIR/$t.gguf" "$t" | tr -d '\n')"
        warm "$QDIR/$t.gguf"
        # shellcheck disable=SC2046 # llama_ref prints "wall_s cpu_s"
        set -- $("$QDIR/llama_ref" time "$QDIR/$t.gguf" "$DIR/ids.json" "$THREADS")
        runs="$runs{\"model\": \"$t\", \"llamacpp_s\": $1, \"llamacpp_cpu_s\": $2}, "
        [ "$GEN" = 1 ] || continue
        runs="$runs$(interleaved gen_of "$QDIR/$t.gguf" "$t" | tr -d '\n')"
        lgen=$("$QDIR/llama_ref" gen "$QDIR/$t.gguf" "$THREADS" 32 | cut -d' ' -f1) # seconds per token
        runs="$runs{\"model\": \"$t\", \"llamacpp_gen_s_per_token\": $lgen, \"weights_mb_per_token\": $(weights_mb "$t")}, "
    done
    copy=null # GB/s, read + written (a gemm_bench built before its "copy" section prints nothing)
    if [ "$GEN" = 1 ] && [ -n "$TYPES" ]; then
        copy=$("$DIR/gemm_bench" 512 "$THREADS" copy | sed -n 's/^{"copy_gbps": \([0-9.]*\)}$/\1/p')
        [ -n "$copy" ] || {
            copy=null
            echo "bench/rounds.sh: $DIR/gemm_bench has no copy section (run bench/run.sh again)" >&2
        }
    fi
    echo "{\"round\": $r, \"load\": \"$(cut -d' ' -f1-3 /proc/loadavg)\", \"limit\": $(tail -1 "$LIMDIR/limit.json"), \"copy_gbps\": $copy, \"runs\": [${runs%, }]}" |
        tee -a "$DIR/rounds.json"
done
rm -f "$TMP"
echo "== summary (markdown for docs/BENCHMARKS.md)"
$PY bench/summary.py rounds "$DIR"
