#!/bin/sh
# Runs every test binary and every CLI test script; prints each result line and the closing
# "N passed, N failed, N skipped" line. Exit status is nonzero when anything failed.
BUILD=${BUILD:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
export ATTNVIZ_BIN="$ROOT/$BUILD/attnviz"
export ATTNVIZ_SHARED="${ATTNVIZ_SHARED:-$ROOT/../shared}"
log=$(mktemp)
if [ ! -d "$ATTNVIZ_SHARED" ]; then
    echo "note: $ATTNVIZ_SHARED not found: tests on real models and tokenizers will be skipped"
fi
for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    out=$("$t" 2>&1)
    rc=$?
    printf '%s\n' "$out" | tee -a "$log" | grep -E '^(PASS|FAIL|SKIP) ' >/dev/null || true
    printf '%s\n' "$out"
    if [ $rc -ne 0 ] && ! printf '%s\n' "$out" | grep -q '^FAIL '; then
        echo "FAIL $(basename "$t"): exited with status $rc (crash?)" | tee -a "$log"
    fi
done
for s in tests/cli/test_*.sh; do
    [ -f "$s" ] || continue
    out=$(sh "$s" 2>&1)
    rc=$?
    printf '%s\n' "$out" >> "$log"
    printf '%s\n' "$out"
    if [ $rc -ne 0 ] && ! printf '%s\n' "$out" | grep -q '^FAIL '; then
        echo "FAIL $(basename "$s"): exited with status $rc" | tee -a "$log"
    fi
done
passed=$(grep -c '^PASS ' "$log")
failed=$(grep -c '^FAIL ' "$log")
skipped=$(grep -c '^SKIP ' "$log")
rm -f "$log"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
