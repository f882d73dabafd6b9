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
NAME=llamacpp_quants
# shellcheck source=tests/llamacpp/env.sh
. "$ROOT/tests/llamacpp/env.sh"
for prog in quant_ref; do
    # shellcheck disable=SC2086 # word splitting of the flag lists is intended
    if ! $CC $CFLAGS -o "$TMP/$prog" "$ROOT/tests/llamacpp/$prog.c" $LIBS > "$TMP/cc.log" 2>&1; then
        echo "FAIL llamacpp_quants: cannot build tests/llamacpp/$prog.c: $(head -c 400 "$TMP/cc.log")"
        exit 1
    fi
done

"$TMP/quant_ref"
