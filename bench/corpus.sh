#!/bin/sh
# attnviz corpus throughput (on demand, not part of the tests; results in docs/BENCHMARKS.md): inputs per
# second for 1 process x 1 thread, 1 process x 2 threads and 2 MPI ranks x 1 thread, on the demo translator
# (models/demo-fr-en, forced targets) and on stories260K (../shared), each best of BENCH_REPEAT runs (default 3).
# Prints one JSON line per configuration with the CPU model and the load average before the run.
#   BENCH_LINES (inputs per corpus, default 2000), BENCH_DIR (scratch, default /tmp/attnviz-bench-corpus)
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/build/attnviz
PY=/usr/bin/python3
SHARED=${ATTNVIZ_SHARED:-$ROOT/../shared}
LINES=${BENCH_LINES:-2000}
REPEAT=${BENCH_REPEAT:-3}
DIR=${BENCH_DIR:-/tmp/attnviz-bench-corpus}
mkdir -p "$DIR"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)

# inputs: the translator's held-out pairs (cycled) as JSON Lines; stories-like sentences from a fixed word list
$PY - "$ROOT/models/demo-fr-en/heldout.tsv" "$DIR" "$LINES" <<'EOF'
import json, random, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
n = int(sys.argv[3])
with open(sys.argv[2] + "/demo.jsonl", "w") as f:
    for i in range(n):
        fr, en = rows[i % len(rows)][:2]
        f.write(json.dumps({"fr": fr, "en": en}) + "\n")
rng = random.Random(1)
words = ("once upon a time there was a little girl named lily she loved to play outside in the park one day "
         "saw big red ball wanted it but was too high tom dog cat happy sad ran jumped").split()
with open(sys.argv[2] + "/stories.txt", "w") as f:
    for i in range(n):
        f.write(" ".join(rng.choice(words) for _ in range(rng.randint(8, 60))).capitalize() + ".\n")
EOF

# run LABEL MODEL_ARGS...: best inputs/s (run phase, from run.json) and best wall seconds over REPEAT runs
bench() {
    label=$1 ranks=$2 threads=$3
    shift 3
    best_rate=0 best_wall=999999
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    for _ in $(seq 1 "$REPEAT"); do
        rm -rf "$DIR/out"
        t0=$($PY -c 'import time; print(time.time())')
        if [ "$ranks" = 1 ]; then
            "$BIN" corpus "$@" -o "$DIR/out" --threads "$threads" --tsne-iters 0 --quiet
        else
            mpirun --oversubscribe --bind-to none -np "$ranks" "$BIN" corpus "$@" -o "$DIR/out" --threads "$threads" \
                --tsne-iters 0 --quiet
        fi
        t1=$($PY -c 'import time; print(time.time())')
        rate=$($PY -c "import json; print(json.load(open('$DIR/out/run.json'))['inputs_per_second'])")
        best_rate=$($PY -c "print(max($best_rate, $rate))")
        best_wall=$($PY -c "print(round(min($best_wall, $t1 - $t0), 3))")
    done
    echo "{\"model\": \"$label\", \"inputs\": $LINES, \"ranks\": $ranks, \"threads_per_rank\": $threads," \
        "\"inputs_per_s\": $(printf '%.1f' "$best_rate"), \"wall_s\": $best_wall, \"loadavg\": \"$load\", \"cpu\": \"$CPU\"}"
}

for cfg in "1 1" "1 2" "2 1"; do
    # shellcheck disable=SC2086
    bench demo-fr-en $cfg --model "$ROOT/models/demo-fr-en" --input "$DIR/demo.jsonl" --field fr --target-field en
done
if [ -r "$SHARED/models/stories260K/stories260K.bin" ]; then
    for cfg in "1 1" "1 2" "2 1"; do
        # shellcheck disable=SC2086
        bench stories260K $cfg --model "$SHARED/models/stories260K/stories260K.bin" \
            --tokenizer "$SHARED/models/stories260K/tok512.bin" --input "$DIR/stories.txt"
    done
else
    echo "stories260K skipped: $SHARED/models/stories260K not found" >&2
fi
