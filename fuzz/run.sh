#!/bin/sh
# Fuzzing driver behind `make fuzz`, `make fuzz-smoke` and `make fuzz-long` (docs/SECURITY.md).
#   sh fuzz/run.sh check          exit 0 when clang can build libFuzzer binaries, else 1 with the reason
#   sh fuzz/run.sh smoke          build, then replay fuzz/corpus/<name> and fuzz/regress/<name> through each
#                                 harness once; prints "PASS fuzz_<name>: ..." / "FAIL ..." / "SKIP ..." lines
#   sh fuzz/run.sh long SECONDS   build, then fuzz each harness SECONDS seconds (FUZZ_ONLY="gguf npy" picks
#                                 some; FUZZ_RUNS=N stops a harness earlier after N execs), growing
#                                 build-fuzz/corpus/<name>; crashes, leaks, timeouts and out-of-memory inputs are
#                                 kept in fuzz/regress/<name>/; a summary line per harness gives execs, exec/s
#                                 and libFuzzer's final cov/ft.
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
FUZZ_CC=${FUZZ_CC:-clang}
OUT=build-fuzz
mode=${1:-smoke}

check() {
    if ! command -v "$FUZZ_CC" >/dev/null 2>&1; then
        echo "$FUZZ_CC not found (scripts/install-deps.sh installs clang and libclang-rt-14-dev)"
        return 1
    fi
    tmp=$(mktemp -d)
    printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { return d && n > 1 && d[0] == 1; }\n' \
        >"$tmp/t.c"
    if ! "$FUZZ_CC" -fsanitize=fuzzer,address,undefined "$tmp/t.c" -o "$tmp/t" >"$tmp/log" 2>&1; then
        echo "$FUZZ_CC cannot link -fsanitize=fuzzer: $(head -c 300 "$tmp/log" | tr '\n' ' ')(install libclang-rt-14-dev)"
        rm -rf "$tmp"
        return 1
    fi
    rm -rf "$tmp"
    return 0
}

harnesses() {
    for f in fuzz/*.c; do
        [ -f "$f" ] || continue
        n=$(basename "$f" .c)
        if [ -n "$FUZZ_ONLY" ]; then
            case " $FUZZ_ONLY " in *" $n "*) ;; *) continue ;; esac
        fi
        echo "$n"
    done
}

build() { # FUZZ_NOBUILD=1: use the binaries already in build-fuzz/ (several long runs side by side)
    [ -n "$FUZZ_NOBUILD" ] && return 0
    make --no-print-directory fuzz >"$OUT.log" 2>&1 && return 0
    tail -20 "$OUT.log"
    return 1
}

# Options every run shares: bounded memory (the per-input time limit is set by each mode).
OPTS="-rss_limit_mb=2560 -malloc_limit_mb=2048"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

smoke() {
    if ! why=$(check); then
        echo "SKIP fuzz-smoke: $why"
        return 0
    fi
    mkdir -p "$OUT"
    if ! build; then
        echo "FAIL fuzz-smoke: make fuzz failed (see $OUT.log)"
        return 1
    fi
    rc=0
    for n in $(harnesses); do
        files=$(find "fuzz/corpus/$n" "fuzz/regress/$n" -type f 2>/dev/null | sort)
        if [ -z "$files" ]; then
            echo "FAIL fuzz_$n: no inputs in fuzz/corpus/$n (fuzz/make_seeds.py makes them)"
            rc=1
            continue
        fi
        count=$(echo "$files" | wc -l)
        start=$(date +%s)
        # shellcheck disable=SC2086
        if "$OUT/fuzz_$n" $OPTS -timeout=60 $files >"$OUT/smoke_$n.log" 2>&1; then
            echo "PASS fuzz_$n: $count inputs replayed in $(($(date +%s) - start)) s"
        else
            why=$(grep -m1 -E 'ERROR: |runtime error|SUMMARY' "$OUT/smoke_$n.log" | cut -c1-200)
            echo "FAIL fuzz_$n: $why (log: $OUT/smoke_$n.log)"
            rc=1
        fi
    done
    return $rc
}

# One harness for SECONDS seconds; after a finding it starts again on the rest of the time (at most 5 times).
long_one() {
    n=$1 secs=$2
    mkdir -p "$OUT/corpus/$n" "fuzz/regress/$n" "$OUT/logs"
    dict=""
    [ -f "fuzz/$n.dict" ] && dict="-dict=fuzz/$n.dict"
    end=$(($(date +%s) + secs))
    log="$OUT/logs/$n.log"
    : >"$log"
    tries=0 execs=0 want=${FUZZ_RUNS:-0}
    while [ "$(date +%s)" -lt "$end" ] && [ $tries -lt 5 ] && { [ "$want" -eq 0 ] || [ $execs -lt "$want" ]; }; do
        left=$((end - $(date +%s)))
        runs=""
        [ "$want" -gt 0 ] && runs="-runs=$((want - execs))"
        tries=$((tries + 1))
        # shellcheck disable=SC2086
        timeout $((left + 120)) "$OUT/fuzz_$n" $OPTS -timeout=30 -max_total_time=$left $runs -print_final_stats=1 \
            -artifact_prefix="fuzz/regress/$n/" $dict "$OUT/corpus/$n" "fuzz/corpus/$n" >>"$log" 2>&1
        e=$(grep 'stat::number_of_executed_units' "$log" | tail -1 | awk '{print $2}')
        execs=$((execs + ${e:-0}))
    done
    rate=$(grep 'stat::average_exec_per_sec' "$log" | tail -1 | awk '{print $2}')
    cov=$(grep -E '#[0-9]+[[:space:]].*cov: ' "$log" | tail -1 | sed -e 's/.*\(cov: [0-9]* ft: [0-9]*\).*/\1/')
    found=$(grep -c -E '^artifact_prefix=|Test unit written to' "$log")
    echo "fuzz_$n: $execs execs, ${rate:-?} exec/s (last run), $cov, $found findings (log: $log)"
}

case "$mode" in
check)
    check
    ;;
smoke)
    smoke
    ;;
long)
    secs=${2:-60}
    why=$(check) || {
        echo "fuzz-long: $why"
        exit 1
    }
    build || exit 1
    for n in $(harnesses); do long_one "$n" "$secs"; done
    ;;
*)
    echo "usage: sh fuzz/run.sh check|smoke|long [SECONDS]" >&2
    exit 2
    ;;
esac
