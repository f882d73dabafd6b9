#!/bin/sh
# Every architecture against llama.cpp (node-llama-cpp 3.21.1's libllama/libggml, tests/llamacpp/install.sh) and
# a float64 forward pass (tests/llamacpp/tiny_arch.py, numpy on weights expanded by ggml itself). For each of
# llama (with Llama 3.1's rope_freqs), mixtral (llama with experts), qwen2, qwen3, qwen3moe, gemma, gemma2,
# gemma3 and phi3 (longrope):
#   1. tiny_arch.py writes a tiny random model as GGUF (llama.cpp's names and keys: llama.cpp must load it) and
#      as a Hugging Face directory of the same weights;
#   2. llama_model_quantize makes every type attnviz reads and llama.cpp's usual mixes (cached under
#      build/llamacpp/<arch>/ until tiny_arch.py changes);
#   3. `attnviz convert` writes the HF directory as GGUF F32, Q8_0, Q4_0 and Q4_K (llama.cpp must load them too)
#      and the GGUF as an HF directory;
#   4. on the fixed ids, attnviz's logits of every file (a) agree with llama.cpp's within max(1e-3, 2 x llama.cpp's
#      distance from float64) and (b) equal the float64 forward of that file's weights within 1e-4, relative to
#      the largest |logit|; the HF directories against the float64 forward of the GGUF they came from.
# Skips when npm, the registry, a C compiler or Debian's python3-numpy is unavailable.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${ATTNVIZ_BIN:-$ROOT/build/attnviz}
BUILD=$(dirname "$BIN")
LIBAV=$BUILD/libattnviz.a
PY=/usr/bin/python3
TINY=$ROOT/tests/llamacpp/tiny_arch.py
CACHE=$BUILD/llamacpp
NAME=llamacpp_arch
# shellcheck source=tests/llamacpp/env.sh
. "$ROOT/tests/llamacpp/env.sh"
if ! "$PY" -c 'import numpy' 2> /dev/null; then
    echo "SKIP llamacpp_arch: $PY has no numpy (run scripts/install-deps.sh)"
    exit 0
fi
mkdir -p "$CACHE"
REF=$TMP/llama_ref
# shellcheck disable=SC2086 # word splitting of the flag lists is intended
if ! $CC $CFLAGS -o "$REF" "$ROOT/tests/llamacpp/llama_ref.c" $LIBS > "$TMP/cc.log" 2>&1; then
    echo "FAIL llamacpp_arch: cannot build tests/llamacpp/llama_ref.c: $(head -c 400 "$TMP/cc.log")"
    exit 1
fi

# name=llama_ftype: every type attnviz reads (Q2_K comes with Q3_K, the K-quant _S files with Q5_K/Q6_K, the
# low-bit ones with a Q6_K output); llama also gets llama.cpp's usual mixes
TYPES="F32=0 F16=1 BF16=32 Q8_0=7 Q4_0=2 Q4_1=3 Q5_0=8 Q5_1=9 Q2_K=10 Q3_K_S=11 Q4_K_S=14 Q5_K_S=16 Q6_K=18 \
IQ4_NL=25 IQ4_XS=30"
MIXES="Q3_K_M=12 Q3_K_L=13 Q4_K_M=15 Q5_K_M=17"
STAMP=$(cat "$TINY" "$ROOT/tests/llamacpp/package-lock.json" | cksum | cut -d' ' -f1)

for arch in $("$PY" "$TINY" archs); do
    D=$CACHE/$arch
    if [ "$(cat "$D/stamp" 2> /dev/null)" != "$STAMP" ]; then
        rm -rf "$D" && mkdir -p "$D"
        if ! "$PY" "$TINY" make "$arch" "$D/F32.gguf" "$D/hf" > "$TMP/make.log" 2>&1; then
            echo "FAIL llamacpp_${arch}_make: $(tail -c 300 "$TMP/make.log")"
            continue
        fi
        echo "$STAMP" > "$D/stamp"
    fi
    rm -rf "$D"/cv-*
    names="" specs=""
    types=$TYPES
    [ "$arch" = llama ] && types="$TYPES $MIXES"
    for t in $types; do
        names="$names ${t%%=*}"
        specs="$specs $t"
    done
    for q in f32 q8_0 q4_0 q4_k; do
        if "$BIN" convert --model "$D/hf" --type $q -o "$D/cv-$q.gguf" 2> "$TMP/cv.err"; then
            names="$names cv-$q" specs="$specs cv-$q@$D/cv-$q.gguf"
        else
            echo "FAIL llamacpp_${arch}_convert_$q: $(head -c 300 "$TMP/cv.err")"
        fi
    done
    if "$BIN" convert --model "$D/F32.gguf" -o "$D/cv-hf" 2> "$TMP/cv.err"; then
        names="$names cv-hf" specs="$specs cv-hf@$D/cv-hf"
    else
        echo "FAIL llamacpp_${arch}_convert_hf: $(head -c 300 "$TMP/cv.err")"
    fi
    names="$names hf" specs="$specs hf@$D/hf"
    # shellcheck disable=SC2086 # the lists are meant to split
    "$REF" batch "$arch" "$D/F32.gguf" "$D" $specs 2> "$TMP/batch.err" || sed 's/^/# /' "$TMP/batch.err" | head -20
    # shellcheck disable=SC2086
    "$PY" "$TINY" compare "$arch" "$D/F32.gguf" "$D" $names 2>&1 | sed 's/^Traceback/FAIL llamacpp_arch_compare: Traceback/'
done
