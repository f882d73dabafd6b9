#!/bin/sh
# Quantized GGUF models at the 1.1 B benchmark shape (docs/BENCHMARKS.md, "Quantized GGUF"), everything in one
# run so the ratios hold on a shared machine:
#   1. the machine (CPU, flags, load) and its f32 GEMM limit (bench/f32_limit.sh), and the own kernels' f32
#      peak per CPU-second (on a shared machine the CPU times below are compared with that one);
#   2. bench/quant_bench.c: dequantization speed of every weight type (ns per value);
#   3. bench/gemm_bench.c "gen": 1-row products over F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K and Q6_K weights (GB/s
#      of weights read) against a STREAM-like copy, wall time (BENCH_THREADS and 1 thread) and per CPU-second,
#      and "pool": the wall time of one av_parallel_for call through the thread pool and through threads
#      started per call (DIR/pool.json);
#   4. bench/make_synth_llama.py makes the F16 model (22 layers), `attnviz convert` writes it as GGUF F16, and
#      llama.cpp's llama_model_quantize (node-llama-cpp 3.21.1, tests/llamacpp/llama_ref.c) makes Q8_0 and
#      Q4_K_M from it;
#   5. for each file, interleaved, best of BENCH_REPEAT: `attnviz run` on 512 random ids capturing every head
#      (the default GEMM path and each of BENCH_PATHS forced with ATTNVIZ_GEMM), its forward pass against the
#      f32 limit, its peak RSS against the budget file + trace + 600 MB; llama.cpp's llama_decode of the same
#      ids (2 threads, no capture, logits of the last position); wall and process CPU seconds of both;
#   6. token-by-token generation on each file (`attnviz generate`, steps 8 and 40: seconds per token from the
#      difference), as GB/s of weights read per token (every tensor but the embedding table) against the copy,
#      and llama.cpp's one-token decoding of the same file (`llama_ref gen`, 32 tokens, same threads).
# Prints JSON lines (per file also in DIR/quant.json), then a markdown summary (bench/summary.py).
# BENCH_THREADS (2), BENCH_TOKENS (512), BENCH_TYPES ("F16 Q8_0 Q4_K_M"), BENCH_REPEAT (2),
# BENCH_PATHS ("avx512 avx2"), BENCH_DIR (scratch, default /tmp/attnviz-quant-bench; about 8 GB).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PY=/usr/bin/python3
THREADS=${BENCH_THREADS:-2}
TOKENS=${BENCH_TOKENS:-512}
TYPES=${BENCH_TYPES:-F16 Q8_0 Q4_K_M}
PATHS=${BENCH_PATHS:-avx512 avx2}
R=${BENCH_REPEAT:-2}
DIR=${BENCH_DIR:-/tmp/attnviz-quant-bench}
BIN=$ROOT/build/attnviz
mkdir -p "$DIR"
load() { cut -d' ' -f1-3 /proc/loadavg; }
flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|fma|f16c|avx512f|avx512bw|avx512vl|avx512_bf16|amx_bf16|amx_tile)$' | tr '\n' ' ')
echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); flags: $flags; load average $(load)"

sh bench/f32_limit.sh "$DIR" "$THREADS" "$TOKENS"
echo "== the own kernels' f32 peak per CPU-second (the limit's counterpart for CPU times under load)"
BENCH_CLOCK=cpu "$DIR/gemm_bench" "$TOKENS" "$THREADS" peak | tee "$DIR/own-peak-cpu.json"

echo "== dequantization, one thread (16 rows x 2048 values, best of 200)"
LIBS=$(sed -n 's/^LIBS *= *//p' Makefile) # libattnviz's own dependencies
# shellcheck disable=SC2086 # LIBS is a list of flags
cc -O2 -std=c11 -D_DEFAULT_SOURCE -Isrc -Iinclude bench/quant_bench.c build/libattnviz.a -o "$DIR/quant_bench" $LIBS
"$DIR/quant_bench"

echo "== generation: 1-row products against a STREAM-like copy ($THREADS threads; wall, then per CPU-second)"
"$DIR/gemm_bench" "$TOKENS" "$THREADS" gen | tee "$DIR/gen-wall.json"
"$DIR/gemm_bench" "$TOKENS" 1 gen | tee "$DIR/gen-wall-1.json" # one thread: the rate per core
BENCH_CLOCK=cpu "$DIR/gemm_bench" "$TOKENS" "$THREADS" gen | tee "$DIR/gen-cpu.json"
"$DIR/gemm_bench" "$TOKENS" "$THREADS" pool | tee "$DIR/pool.json"

eval "$(sh tests/llamacpp/install.sh)"
export LIB
# shellcheck disable=SC2086
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

# "wall_s rss_kib forward_s cpu_s" of the best of $R attnviz runs on path $2 ("default": none forced)
attnviz_run() {
    env ${2:+ATTNVIZ_GEMM=$2} $PY bench/timecmd.py "$R" "$DIR/cmd.out" "$DIR/cmd.err" --inner 'forward ([0-9.]+) s' \
        --before "rm -f $DIR/trace.safetensors" -- \
        "$BIN" run --model "$1" --threads "$THREADS" --ids "@$DIR/ids.json" -o "$DIR/trace.safetensors"
}
# "wall_s cpu_s" of llama.cpp's decode, the best of $R
llama_run() {
    best=""
    for _ in $(seq "$R"); do
        s=$("$DIR/llama_ref" time "$1" "$DIR/ids.json" "$THREADS")
        best=$($PY -c "a='${best:-inf inf}'.split(); b='$s'.split(); print(b[0], b[1]) if float(b[0]) < float(a[0]) else print(a[0], a[1])")
    done
    echo "$best"
}
# bytes of every tensor but the embedding table (what a token's forward pass reads), from the GGUF header
weight_bytes() {
    $PY - "$1" <<'PYEOF'
import os, struct, sys
f = open(sys.argv[1], "rb"); buf = f.read(64 << 20); pos = 4
ver, n_t, n_kv = struct.unpack_from("<IQQ", buf, pos); pos += 20
fixed = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
def skip(t):
    global pos
    if t == 8: n = struct.unpack_from("<Q", buf, pos)[0]; pos += 8 + n
    elif t == 9:
        et, n = struct.unpack_from("<IQ", buf, pos); pos += 12
        for _ in range(n): skip(et)
    else: pos += fixed[t]
def string():
    global pos
    n = struct.unpack_from("<Q", buf, pos)[0]; pos += 8 + n
    return buf[pos - n:pos].decode()
for _ in range(n_kv):
    string(); t = struct.unpack_from("<I", buf, pos)[0]; pos += 4; skip(t)
offs = []
for _ in range(n_t):
    name = string(); nd = struct.unpack_from("<I", buf, pos)[0]
    off = struct.unpack_from("<Q", buf, pos + 4 + 8 * nd + 4)[0]; pos += 4 + 8 * nd + 12
    offs.append((off, name))
offs.sort()
start = (pos + 31) // 32 * 32
ends = [o for o, _ in offs[1:]] + [os.path.getsize(sys.argv[1]) - start]
print(sum(e - o for (o, n), e in zip(offs, ends) if n != "token_embd.weight"))
PYEOF
}
# wall seconds of `attnviz generate --steps $2`, best of $R
gen_time() {
    # shellcheck disable=SC2046 # timecmd.py prints numbers
    set -- $($PY bench/timecmd.py "$R" "$DIR/cmd.out" "$DIR/cmd.err" -- "$BIN" generate --model "$1" \
        --threads "$THREADS" --steps "$2")
    echo "$1"
}

: > "$DIR/quant.json"
for t in $TYPES; do
    M=$DIR/$t.gguf
    cat "$M" > /dev/null # page cache warm for both
    l_before=$(load)
    runs=""
    for p in default $PATHS; do
        case $p in avx512) case " $flags " in *" avx512f "*) ;; *) continue ;; esac ;; esac
        pp=$p
        [ "$p" = default ] && pp=""
        runs="$runs $p:$(attnviz_run "$M" "$pp" | tr ' ' ,)"
    done
    llama=$(llama_run "$M")
    g8=$(gen_time "$M" 8)
    g40=$(gen_time "$M" 40)
    lgen=$("$DIR/llama_ref" gen "$M" "$THREADS" 32 | cut -d' ' -f1) # llama.cpp: seconds per token
    $PY - "$t" "$(stat -c %s "$M")" "$(stat -c %s "$DIR/trace.safetensors")" "$(weight_bytes "$M")" "$runs" \
        "$llama" "$g8" "$g40" "$DIR" "$TOKENS" "$l_before" "$(load)" "$lgen" <<'PYEOF' | tee -a "$DIR/quant.json"
import json, os, sys
t, file_b, trace_b, wbytes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
runs = dict((p, list(map(float, v.split(",")))) for p, v in (r.split(":") for r in sys.argv[5].split()))
l_s, l_cpu = map(float, sys.argv[6].split())
g8, g40, d, T = float(sys.argv[7]), float(sys.argv[8]), sys.argv[9], int(sys.argv[10])
lim = json.load(open(os.path.join(d, "limit.json")))
copy = {k: json.loads(open(os.path.join(d, f)).read())["generation"]["copy_gbps"]
        for k, f in (("wall", "gen-wall.json"), ("cpu", "gen-cpu.json"))}
L, D, H, KV, FF, V = 22, 2048, 32, 4, 5632, 32000
hs = D // H
gflop = (2 * T * L * (2 * D * H * hs + 2 * D * KV * hs + 3 * D * FF) + 4 * T * T * hs * H * L) / 1e9
limit = gflop / lim["f32_limit_gflops"]
own_cpu = json.load(open(os.path.join(d, "own-peak-cpu.json")))["own_f32_peak"]
limit_cpu = gflop / max(v["peak_gflops"] for v in own_cpu.values() if isinstance(v, dict))
threads = own_cpu["threads"]
mb = 1e6
out = {"type": t, "file_mb": round(file_b / mb), "f32_limit_s": round(limit, 3),
       "f32_limit_from": lim["f32_limit_from"], "f32_limit_cpu_s_per_thread": round(limit_cpu, 3),
       "llamacpp_decode_s": l_s, "llamacpp_cpu_s": l_cpu, "paths": {}}
for p, (wall, rss, fwd, cpu) in runs.items():
    budget = file_b + trace_b + 600 * mb
    out["paths"][p] = {"forward_s": fwd, "forward_vs_f32_limit": round(fwd / limit, 3), "process_cpu_s": cpu,
                       "process_cpu_per_thread_vs_cpu_limit": round(cpu / threads / limit_cpu, 3),
                       "llamacpp_over_attnviz_forward": round(l_s / fwd, 2),
                       "llamacpp_decode_cpu_over_attnviz_process_cpu": round(l_cpu / cpu, 2),
                       "peak_rss_mb": round(rss * 1024 / mb), "within_budget": rss * 1024 < budget}
per_token = (g40 - g8) / 32
out["generation"] = {"s_per_token": round(per_token, 4), "weights_mb_per_token": round(wbytes / mb),
                     "weights_gbps": round(wbytes / per_token / 1e9, 2), "copy_gbps": copy["wall"],
                     "vs_copy": round(wbytes / per_token / 1e9 / copy["wall"], 2),
                     "llamacpp_s_per_token": float(sys.argv[13])}
out["load_before"], out["load_after"] = sys.argv[11], sys.argv[12]
print(json.dumps(out))
PYEOF
done
echo "== summary (markdown for docs/BENCHMARKS.md)"
$PY bench/summary.py quant "$DIR"
