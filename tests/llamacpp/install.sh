#!/bin/sh
# Installs llama.cpp as node-llama-cpp 3.21.1 ships it (pinned in package-lock.json) and prints two lines:
#   LIB=<folder with libllama / libggml-base .so files>
#   INC=<folder with llama.h and ggml.h, from the llama.cpp source bundle inside node-llama-cpp>
# Exits 1 with a one-line reason on stderr when npm or the registry is unreachable (tests then SKIP).
# Idempotent and quiet: the second call only checks and prints.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE" || exit 1
if [ ! -d node_modules/@node-llama-cpp/linux-x64 ] || [ ! -d node_modules/node-llama-cpp/llama ]; then
    command -v npm >/dev/null 2>&1 || { echo "npm is not installed" >&2; exit 1; }
    npm ci --omit=optional --ignore-scripts --no-audit --no-fund --loglevel=error >npm.log 2>&1 ||
        { echo "npm ci failed: $(tail -1 npm.log)" >&2; exit 1; }
fi
LIB=$HERE/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64
SRC=$HERE/llama.cpp-src
if [ ! -f "$SRC/include/llama.h" ]; then
    rm -rf "$SRC.tmp"
    git clone -q node_modules/node-llama-cpp/llama/gitRelease.bundle "$SRC.tmp" 2>/dev/null ||
        { echo "cannot unpack llama.cpp's sources from node-llama-cpp's gitRelease.bundle" >&2; exit 1; }
    mv "$SRC.tmp" "$SRC"
fi
[ -f "$LIB/libllama.v0.4.0.so" ] || [ -n "$(ls "$LIB"/libllama*.so 2>/dev/null)" ] ||
    { echo "no libllama in $LIB" >&2; exit 1; }
echo "LIB=$LIB"
echo "INC=$SRC/include:$SRC/ggml/include"
