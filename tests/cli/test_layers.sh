#!/bin/sh
# The layers of src/, lowest first. A folder may include its own headers, include/attnviz.h and the
# headers of folders before it in this list, never those of a folder after it (an "upward" include):
#
#   core  io  kernels  tok  chat  model  trace  attrib  analysis  render  server  cli
#
# core: errors, reader, files, paths, UTF-8, base64; io: file formats; kernels: math (quantization too);
# tok: tokenizers; chat: chat templates (a Jinja subset) rendered for a tokenizer; model: loading and the
# forward pass; trace: capture, save/load; attrib: attribution and the logit lens (runs the model, writes
# traces); analysis: statistics of traces (it never runs a model: it gets a
# runner); render: pictures and pages; server: HTTP; cli: commands.
# This script greps every #include "folder/..." line of src/ and FAILs on an upward one. Docs:
# docs/ARCHITECTURE.md ("Layers").
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
LAYERS="core io kernels tok chat model trace attrib analysis render server cli"

rank() { # rank NAME: position of a layer in LAYERS (1 = lowest), empty for anything else
    i=1
    for l in $LAYERS; do
        [ "$l" = "$1" ] && { echo "$i"; return; }
        i=$((i + 1))
    done
}

bad=""
n_files=0
for dir in src/*/; do
    layer=$(basename "$dir")
    own=$(rank "$layer")
    if [ -z "$own" ]; then
        bad="$bad; src/$layer/ is not in the layer list of tests/cli/test_layers.sh"
        continue
    fi
    for f in "$dir"*.c "$dir"*.h; do
        [ -f "$f" ] || continue
        n_files=$((n_files + 1))
        for inc in $(sed -n 's|^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([a-z_]*\)/[^"]*".*|\1|p' "$f" | sort -u); do
            r=$(rank "$inc")
            [ -z "$r" ] && continue # not a layer folder
            if [ "$r" -gt "$own" ]; then
                line=$(grep -n "#[[:space:]]*include[[:space:]]*\"$inc/" "$f" | head -1 | cut -d: -f1)
                bad="$bad; $f:$line includes $inc/ (above $layer)"
            fi
        done
    done
done
if [ "$n_files" -eq 0 ]; then
    echo "FAIL layers_no_upward_include: no source files found under src/"
elif [ -n "$bad" ]; then
    echo "FAIL layers_no_upward_include: ${bad#; }"
else
    echo "PASS layers_no_upward_include"
fi
