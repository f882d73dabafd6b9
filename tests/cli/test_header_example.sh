#!/bin/sh
# The usage example at the top of include/attnviz.h compiles against build/libattnviz.a and runs: it prints one
# line per token (the mean over heads of layer 0's last attention row, which must sum to 1) and saves a trace
# that `attnviz info` reads. Keeps the header's example true.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
BIN=${ATTNVIZ_BIN:-$ROOT/build/attnviz}
MODEL=${ATTNVIZ_SHARED:-$ROOT/../shared}/models/stories260K/stories260K.bin
LIB=$(dirname "$BIN")/libattnviz.a
if [ ! -f "$MODEL" ]; then
    echo "SKIP header_example: $MODEL not found (../shared)"
    exit 0
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sed -n '/\/\/ BEGIN EXAMPLE/,/\/\/ END EXAMPLE/p' include/attnviz.h | sed -e 's/^ \*   //' -e 's/^ \*$//' > "$dir/example.c"
if [ "$(wc -l < "$dir/example.c")" -lt 10 ]; then
    echo "FAIL header_example_found: no example between BEGIN/END EXAMPLE in include/attnviz.h"
    exit 0
fi
libs=$(sed -n 's/^LIBS *= *//p' Makefile)
# shellcheck disable=SC2086 # $libs is a list of linker flags
if ! cc -std=c11 -Wall -Wextra -Werror -Iinclude "$dir/example.c" "$LIB" $libs -o "$dir/example" 2> "$dir/cc.err"; then
    echo "FAIL header_example_compiles: $(head -c 400 "$dir/cc.err" | tr '\n' ' ')"
    exit 0
fi
echo "PASS header_example_compiles"
if ! (cd "$dir" && ./example "$MODEL" "Once upon a time" > out.txt 2> err.txt); then
    echo "FAIL header_example_runs: $(head -c 300 "$dir/err.txt")"
    exit 0
fi
n=$(wc -l < "$dir/out.txt")
sum=$(awk '{s += $NF} END {printf "%.4f", s}' "$dir/out.txt")
if [ "$n" -ge 4 ] && awk -v s="$sum" 'BEGIN {exit !(s > 0.999 && s < 1.001)}'; then
    echo "PASS header_example_runs"
else
    echo "FAIL header_example_runs: $n lines, row sum $sum (want >= 4 lines summing to 1)"
fi
if "$BIN" info "$dir/example.safetensors" > "$dir/info.txt" 2>&1 && grep -q "layers" "$dir/info.txt"; then
    echo "PASS header_example_saves_trace"
else
    echo "FAIL header_example_saves_trace: $(head -c 300 "$dir/info.txt")"
fi
