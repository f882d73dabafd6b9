#!/bin/sh
# Runs every test binary of each build in $BUILDS (default "build"; `make test` passes "build build-asan"),
# then every CLI/browser test script once with the first build's binary. Prints each result line and the
# closing "N passed, N failed, N skipped" line; exits nonzero when anything failed.
BUILDS=${BUILDS:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
export ATTNVIZ_SHARED="${ATTNVIZ_SHARED:-$ROOT/../shared}"
log=$(mktemp)
if [ ! -d "$ATTNVIZ_SHARED" ]; then
    echo "note: $ATTNVIZ_SHARED not found: tests on real models and tokenizers will be skipped"
fi
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

# run_one LABEL SUFFIX COMMAND...: records the result lines of one test program
run_one() {
    label=$1 suffix=$2
    shift 2
    start=$(date +%s)
    out=$("$@" 2>&1)
    rc=$?
    end=$(date +%s)
    printf '%s\n' "$out" | sed -e "s/^\(PASS\|FAIL\|SKIP\) \([^:]*\)/\1 \2$suffix/" >> "$log"
    printf '%s\n' "$out" | sed -e "s/^\(PASS\|FAIL\|SKIP\) \([^:]*\)/\1 \2$suffix/"
    if [ $rc -ne 0 ] && ! printf '%s\n' "$out" | grep -q '^FAIL '; then
        echo "FAIL $label$suffix: exited with status $rc (crash?)" | tee -a "$log"
    fi
    echo "# $label$suffix: $((end - start)) s"
}

first=""
for b in $BUILDS; do
    [ -z "$first" ] && first=$b
    suffix=""
    [ "$b" != "$first" ] && suffix=" [$b]"
    export ATTNVIZ_BIN="$ROOT/$b/attnviz"
    for t in "$b"/tests/test_*; do
        [ -x "$t" ] || continue
        case "$t" in *.d|*.o) continue ;; esac
        run_one "$(basename "$t")" "$suffix" "$t"
    done
done
export ATTNVIZ_BIN="$ROOT/$first/attnviz"
for s in tests/cli/test_*.sh; do
    [ -f "$s" ] || continue
    run_one "$(basename "$s")" "" sh "$s"
done
# `make test` also replays the fuzz corpora and regression inputs (fuzz/run.sh; SKIP lines without clang)
if [ -n "$FUZZ_SMOKE" ]; then
    run_one fuzz-smoke "" sh fuzz/run.sh smoke
fi
passed=$(grep -c '^PASS ' "$log")
failed=$(grep -c '^FAIL ' "$log")
skipped=$(grep -c '^SKIP ' "$log")
if [ "$failed" -gt 0 ]; then
    echo "failures:"
    grep '^FAIL ' "$log"
fi
rm -f "$log"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
