#!/bin/sh
# Output regression of `attnviz run` across engine changes: the same inputs through every model family.
#   sh bench/trace_regress.sh save BIN DIR        write DIR/<case>.safetensors (+ DIR/<case>.txt for generation)
#   sh bench/trace_regress.sh compare OLD NEW     max |difference| per case and tensor kind (bench/trace_compare.py)
# Models: the tiny reference checkpoints (tests/fixtures/tiny), the demo models (models/), and the real
# stories260K and ViT-Tiny from ../shared/models (skipped when absent). Llama-family cases are saved full and
# lazy, with logits; a long stories260K input exercises in-file capture. Cases a binary refuses (an older
# engine without lazy traces for some family) are recorded as DIR/<case>.refused with the error line.
# The decoder families of tests/fixtures/decoders run from their Hugging Face directories and from the GGUF
# and Hugging Face files `convert` writes of them (the written files are compared too: DIR/convert/), and
# the demo text-to-image model runs a few sampler steps.
set -eu
cmd=${1:-}
PY=${PYTHON:-/usr/bin/python3} # Debian's python3 with numpy
here=$(cd "$(dirname "$0")/.." && pwd)

save_case() { # name, then the run arguments
    name=$1
    shift
    if ! "$BIN" run "$@" -o "$DIR/$name.safetensors" >"$DIR/$name.out" 2>"$DIR/$name.err"; then
        mv "$DIR/$name.err" "$DIR/$name.refused"
        rm -f "$DIR/$name.out"
        echo "refused: $name: $(tail -n 1 "$DIR/$name.refused")"
        return 0
    fi
    rm -f "$DIR/$name.err"
}

save_all() {
    T=$here/tests/fixtures/tiny
    S=$here/../shared
    for fam in gpt2 bert roberta distilbert; do
        ids=$("$PY" -c "import json,sys; sys.path.insert(0,'$here/scripts'); import safetensors_np as s; \
print(','.join(str(int(i)) for i in s.read('$T/$fam/reference.safetensors')[0]['ids']))")
        save_case "tiny-$fam" --model "$T/$fam" --ids "$ids" --logits
        save_case "tiny-$fam-lazy" --model "$T/$fam" --ids "$ids" --logits --lazy
    done
    for fam in qwen2 mistral; do
        save_case "tiny-$fam" --model "$T/$fam" --ids 1,14,7,40,22,3,3,9,31,17 --logits
        save_case "tiny-$fam-lazy" --model "$T/$fam" --ids 1,14,7,40,22,3,3,9,31,17 --logits --lazy
    done
    for fam in marian bart t5 t5v11; do
        ref=$("$PY" -c "import sys; sys.path.insert(0,'$here/scripts'); import safetensors_np as s; \
r = s.read('$T/$fam/reference.safetensors')[0]; \
print(','.join(str(int(i)) for i in r['src']), ','.join(str(int(i)) for i in r['tgt']))")
        src=${ref% *}
        tgt=${ref#* }
        save_case "tiny-$fam-forced" --model "$T/$fam" --ids "$src" --target-ids "$tgt" --logits
        save_case "tiny-$fam-greedy" --model "$T/$fam" --ids "$src" --steps 6 --logits
        save_case "tiny-$fam-forced-lazy" --model "$T/$fam" --ids "$src" --target-ids "$tgt" --logits --lazy
    done
    D=$here/tests/fixtures/decoders
    mkdir -p "$DIR/convert"
    for fam in gemma gemma2 gemma3 llama3 mistral mixtral phi3 qwen2 qwen3 qwen3_moe; do
        save_case "dec-$fam" --model "$D/$fam" --ids 1,14,7,40,22,3,3,9,31,17,5,28 --logits
        save_case "dec-$fam-lazy" --model "$D/$fam" --ids 1,14,7,40,22,3,3,9,31,17,5,28 --logits --lazy
        for to in gguf hf; do
            out="$DIR/convert/$fam-$to"
            [ "$to" = gguf ] && out="$out.gguf"
            if "$BIN" convert --model "$D/$fam" --to "$to" -o "$out" >/dev/null 2>"$DIR/convert/$fam-$to.err"; then
                rm -f "$DIR/convert/$fam-$to.err"
                save_case "dec-$fam-$to" --model "$out" --ids 1,14,7,40,22,3,3,9,31,17,5,28 --logits
            fi
        done
    done
    save_case t2i --model "$here/models/demo-t2i" --text "a red circle above a blue square" --seed 1 --steps 4
    if [ -r "$S/images/chelsea.png" ]; then
        save_case tiny-vit --model "$T/vit" --image "$S/images/chelsea.png"
        save_case tiny-vit-lazy --model "$T/vit" --image "$S/images/chelsea.png" --lazy
    fi
    save_case demo-fr-en-forced --model "$here/models/demo-fr-en" --text "le chat noir dort." \
        --target "the black cat sleeps." --logits
    save_case demo-fr-en-greedy --model "$here/models/demo-fr-en" --text "le chat noir dort." --logits
    save_case demo-fr-en-greedy-lazy --model "$here/models/demo-fr-en" --text "le chat noir dort." --logits --lazy
    induct="abcdefgh ijklmnop abcdefgh ijklmnop qrstuv qrstuv"
    save_case induction --model "$here/models/induction/induction.bin" --text "$induct" --logits
    save_case induction-lazy --model "$here/models/induction/induction.bin" --text "$induct" --logits --lazy
    if [ -r "$S/models/stories260K/stories260K.bin" ]; then
        st="$S/models/stories260K/stories260K.bin"
        tk="$S/models/stories260K/tok512.bin"
        save_case stories --model "$st" --tokenizer "$tk" --text "Once upon a time, there was a little girl" --logits
        save_case stories-lazy --model "$st" --tokenizer "$tk" --text "Once upon a time, there was a little girl" \
            --logits --lazy
        long=$("$PY" -c "print(' '.join(['Lily saw a big red ball in the park and she ran to get it.'] * 12))")
        save_case stories-long --model "$st" --tokenizer "$tk" --text "$long" --logits
        save_case stories-long-f16 --model "$st" --tokenizer "$tk" --text "$long" --dtype f16
        save_case stories-long-lazy --model "$st" --tokenizer "$tk" --text "$long" --logits --lazy
        "$BIN" generate --model "$st" --tokenizer "$tk" --steps 60 >"$DIR/stories-generate.txt" 2>/dev/null
    fi
    if [ -r "$S/models/vit-tiny/model.safetensors" ]; then
        save_case vit-tiny --model "$S/models/vit-tiny" --image "$S/images/chelsea.png"
        save_case vit-tiny-lazy --model "$S/models/vit-tiny" --image "$S/images/chelsea.png" --lazy
    fi
}

case "$cmd" in
save)
    BIN=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
    DIR=$3
    mkdir -p "$DIR"
    save_all
    ;;
compare)
    rc=0
    "$PY" "$here/bench/trace_compare.py" "$2" "$3" || rc=1
    for f in "$2"/convert/*; do # the files convert wrote, byte for byte (config and tokenizer included)
        [ -e "$f" ] || continue
        if ! diff -r "$f" "$3/convert/$(basename "$f")" >/dev/null 2>&1; then
            echo "DIFFERS: convert/$(basename "$f")"
            rc=1
        fi
    done
    exit $rc
    ;;
*)
    echo "usage: sh bench/trace_regress.sh save BIN DIR | compare OLD_DIR NEW_DIR" >&2
    exit 2
    ;;
esac
