#!/bin/sh
# GGUF weight types against llama.cpp (node-llama-cpp 3.21.1's libllama/libggml, tests/llamacpp/install.sh):
#   1. tests/llamacpp/quant_ref.c: attnviz's dequantization of every type equals ggml's dequantize_row_* bit for
#      bit (rows quantized by ggml and random block bytes); its Q8_0/Q4_0/Q4_K/F16/BF16 quantizers equal ggml's
#      reference quantizers byte for byte.
#   2. tests/llamacpp/tiny_llama.py writes a tiny random Llama GGUF (llama.cpp's tensor names and metadata);
#      llama_model_quantize turns it into every supported type and the Q*_K_S/M/L, IQ4_XS mixes; for each,
#      attnviz's logits on fixed ids (a) agree with llama.cpp's within max(1e-3, 2 x llama.cpp's own distance
#      from a float64 forward) and (b) equal that float64 forward (numpy, on weights expanded by ggml itself)
#      within 1e-4, relative to the largest |logit|.
# Skips when npm, the registry, a C compiler or Debian's python3-numpy is unavailable.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${ATTNVIZ_BIN:-$ROOT/build/attnviz}
LIBAV=$(dirname "$BIN")/libattnviz.a
PY=/usr/bin/python3
TMP=$(mktemp -d "${TMPDIR:-/tmp}/attnviz-llamacpp-XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM

if ! out=$(sh "$ROOT/tests/llamacpp/install.sh" 2> "$TMP/install.err"); then
    echo "SKIP llamacpp_quants: llama.cpp reference unavailable: $(head -c 300 "$TMP/install.err")"
    exit 0
fi
eval "$out"
export LIB
if [ ! -f "$LIBAV" ]; then
    echo "FAIL llamacpp_quants: $LIBAV is not built"
    exit 1
fi
if ! "$PY" -c 'import numpy' 2> /dev/null; then
    echo "SKIP llamacpp_quants: $PY has no numpy (run scripts/install-deps.sh)"
    exit 0
fi
CC=${CC:-cc}
CFLAGS="-std=c11 -D_DEFAULT_SOURCE -O2 -I$ROOT/include -I$ROOT/src -I${INC%%:*} -I${INC##*:}"
# libattnviz's own dependencies: the LIBS line of the Makefile
LIBS="$LIBAV -L$LIB -lllama.v0.4.0 -lggml.v0.4.0 -lggml-base -Wl,-rpath,$LIB $(sed -n 's/^LIBS *= *//p' "$ROOT/Makefile")"
for prog in quant_ref llama_ref; do
    # shellcheck disable=SC2086 # word splitting of the flag lists is intended
    if ! $CC $CFLAGS -o "$TMP/$prog" "$ROOT/tests/llamacpp/$prog.c" $LIBS > "$TMP/cc.log" 2>&1; then
        echo "FAIL llamacpp_quants: cannot build tests/llamacpp/$prog.c: $(head -c 400 "$TMP/cc.log")"
        exit 1
    fi
done

"$TMP/quant_ref"

M=$TMP/tiny
if ! "$PY" "$ROOT/tests/llamacpp/tiny_llama.py" make "$M-F32.gguf" > "$TMP/make.log" 2>&1; then
    echo "FAIL llamacpp_logits: tiny_llama.py make failed: $(tail -c 300 "$TMP/make.log")"
    exit 1
fi
# name and llama_ftype: the types attnviz reads, and the mixes llama.cpp makes of them (Q2_K also uses Q3_K,
# Q3_K_M Q4_K/Q5_K, Q4_K_M and Q5_K_M Q6_K, every low-bit type a Q6_K output)
for spec in F32:0 F16:1 BF16:32 Q8_0:7 Q4_0:2 Q4_1:3 Q5_0:8 Q5_1:9 Q2_K:10 Q3_K_S:11 Q3_K_M:12 Q3_K_L:13 \
    Q4_K_S:14 Q4_K_M:15 Q5_K_S:16 Q5_K_M:17 Q6_K:18 IQ4_NL:25 IQ4_XS:30; do
    name=${spec%%:*} ftype=${spec##*:}
    if [ "$name" != F32 ] && ! "$TMP/llama_ref" quantize "$M-F32.gguf" "$M-$name.gguf" "$ftype" 2> "$TMP/q.err"; then
        echo "FAIL llamacpp_logits_$name: llama_model_quantize: $(head -c 300 "$TMP/q.err")"
        continue
    fi
    if ! "$TMP/llama_ref" logits "$M-$name.gguf" "$TMP/llama.f32" "$TMP/av.f32" "$TMP/av_short.f32" 2> "$TMP/l.err"; then
        echo "FAIL llamacpp_logits_$name: $(head -c 300 "$TMP/l.err")"
        continue
    fi
    "$PY" "$ROOT/tests/llamacpp/tiny_llama.py" compare "$M-$name.gguf" "$name" "$TMP/llama.f32" "$TMP/av.f32" \
        "$TMP/av_short.f32"
    [ "$name" != F32 ] && rm -f "$M-$name.gguf"
done
