# Sourced by the tests against llama.cpp's C API (tests/cli/test_llamacpp_*.sh) after setting NAME (the test
# name of SKIP/FAIL lines), ROOT and LIBAV (libattnviz.a): makes the scratch directory TMP (removed on exit),
# installs the reference (tests/llamacpp/install.sh: LIB and INC; SKIP and exit 0 when npm is unreachable),
# and sets CC, CFLAGS and LIBS to build a helper against libattnviz and libllama.
TMP=$(mktemp -d "${TMPDIR:-/tmp}/attnviz-$NAME-XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM

if ! out=$(sh "$ROOT/tests/llamacpp/install.sh" 2> "$TMP/install.err"); then
    echo "SKIP $NAME: llama.cpp reference unavailable: $(head -c 300 "$TMP/install.err")"
    exit 0
fi
eval "$out"
export LIB
if [ ! -f "$LIBAV" ]; then
    echo "FAIL $NAME: $LIBAV is not built"
    exit 1
fi
CC=${CC:-cc}
CFLAGS="-std=c11 -D_DEFAULT_SOURCE -O2 -I$ROOT/include -I$ROOT/src -I${INC%%:*} -I${INC##*:}"
# libattnviz's own dependencies: the LIBS line of the Makefile
LIBS="$LIBAV -L$LIB -lllama.v0.4.0 -lggml.v0.4.0 -lggml-base -Wl,-rpath,$LIB $(sed -n 's/^LIBS *= *//p' "$ROOT/Makefile")"
