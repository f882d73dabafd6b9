#!/bin/sh
# The machine's f32 GEMM limit (docs/BENCHMARKS.md), shared by bench/run.sh and bench/quant_mem.sh:
#   sh bench/f32_limit.sh DIR THREADS TOKENS
# the better of OpenBLAS's sgemm peak (bench/sgemm_peak.c) with the best OPENBLAS_CORETYPE for this CPU
# (SkylakeX with AVX-512, Haswell with AVX2; set for that child process only: Debian's OpenBLAS 0.3.21 runs
# its SSE3 kernels on CPUs it does not know) and the project's own kernels' f32 peak (bench/gemm_bench.c,
# section "peak"), on the 1B shapes at TOKENS rows with THREADS threads; the same for AVX2 alone (the limit of
# an AVX2-only machine). Builds DIR/sgemm_peak and DIR/gemm_bench, writes DIR/limit.json (also printed):
# {"f32_limit_gflops", "f32_limit_from", "avx2_limit_gflops", "avx2_limit_from", "candidates"}; on a CPU
# without AVX-512 every candidate is an AVX2 kernel, so both limits are the same.
# BENCH_CLOCK=cpu makes the own kernels' figures per CPU-second (gemm_bench.c); BENCH_LIMIT_BUILT=1 reuses
# DIR's binaries.
set -eu
DIR=$1 THREADS=$2 TOKENS=$3
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-/usr/bin/python3}
OB=/usr/include/x86_64-linux-gnu/openblas-pthread
flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n')
has() { printf '%s\n' "$flags" | grep -qx "$1"; }
best_core=""
if has avx512f; then best_core=SkylakeX; elif has avx2; then best_core=Haswell; fi
if [ "${BENCH_LIMIT_BUILT:-0}" != 1 ]; then # bench/rounds.sh measures again with the same binaries
    cc -O2 -I"$OB" "$ROOT/bench/sgemm_peak.c" -o "$DIR/sgemm_peak" -lopenblas
    # shellcheck disable=SC2046 # the Makefile's LIBS line is a list of flags
    cc -O2 -std=c11 -D_DEFAULT_SOURCE -I"$ROOT/src" -I"$ROOT/include" -I"$OB" "$ROOT/bench/gemm_bench.c" \
        "$ROOT/build/libattnviz.a" -o "$DIR/gemm_bench" $(sed -n 's/^LIBS *= *//p' "$ROOT/Makefile")
fi
echo "== OpenBLAS sgemm peak ($THREADS threads): its own core choice, then the best OPENBLAS_CORETYPE for this CPU"
"$DIR/sgemm_peak" "$TOKENS" "$THREADS" | tee "$DIR/sgemm-default.json"
rm -f "$DIR/sgemm-best.json" "$DIR/sgemm-haswell.json"
[ -n "$best_core" ] && OPENBLAS_CORETYPE=$best_core "$DIR/sgemm_peak" "$TOKENS" "$THREADS" | tee "$DIR/sgemm-best.json"
has avx2 && OPENBLAS_CORETYPE=Haswell "$DIR/sgemm_peak" "$TOKENS" "$THREADS" | tee "$DIR/sgemm-haswell.json"
echo "== attnviz's own f32 GEMM peak ($THREADS threads)"
"$DIR/gemm_bench" "$TOKENS" "$THREADS" peak | tee "$DIR/own-peak.json"
$PY - "$DIR" "$best_core" <<'PYEOF' | tee "$DIR/limit.json"
import json, os, sys
d, core = sys.argv[1], sys.argv[2]
def peak(name):
    p = os.path.join(d, name)
    return json.load(open(p))["peak_gflops"] if os.path.exists(p) else 0.0
own = json.load(open(os.path.join(d, "own-peak.json")))["own_f32_peak"]
cands = {"openblas-default": peak("sgemm-default.json")}
if core:
    cands[f"openblas-{core}"] = peak("sgemm-best.json")
if peak("sgemm-haswell.json"):  # on a noisy machine the AVX2 kernels can time higher than the AVX-512 ones
    cands["openblas-Haswell"] = peak("sgemm-haswell.json")
cands.update({f"own-{k}": v["peak_gflops"] for k, v in own.items() if isinstance(v, dict)})
best = max(cands, key=cands.get)
avx2 = {k: v for k, v in {"openblas-Haswell": peak("sgemm-haswell.json"),
                          "own-avx2": own.get("avx2", {}).get("peak_gflops", 0.0)}.items() if v}
if core != "SkylakeX":  # no AVX-512: OpenBLAS's own choice is an AVX2 kernel too, and the AVX2 limit is the f32 one
    avx2["openblas-default"] = cands["openblas-default"]
best2 = max(avx2, key=avx2.get) if avx2 else best
print(json.dumps({"f32_limit_gflops": cands[best], "f32_limit_from": best,
                  "avx2_limit_gflops": avx2.get(best2, cands[best]), "avx2_limit_from": best2, "candidates": cands}))
PYEOF
