#!/bin/sh
# attnviz run on the non-Llama families: the real ViT-Tiny on a photo (top-5 classes on stdout, a trace with the
# patch grid), encoder-decoders with a forced target and with greedy decoding (tiny fixtures), attnviz info on
# model directories, and one-line errors for inputs that do not fit the model.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${ATTNVIZ_BIN:-$ROOT/build/attnviz}
SHARED=${ATTNVIZ_SHARED:-$ROOT/../shared}
TINY=$ROOT/tests/fixtures/tiny
TMP=$(mktemp -d "${TMPDIR:-/tmp}/attnviz-models-XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM

# check NAME CONDITION-COMMAND...: PASS or FAIL with the output of the last command
check() {
    name=$1
    shift
    if "$@"; then echo "PASS $name"; else echo "FAIL $name: $(head -c 300 "$TMP/out" | tr '\n' ' ')"; fi
}

if [ -r "$SHARED/models/vit-tiny/model.safetensors" ] && [ -r "$SHARED/images/chelsea.png" ]; then
    "$BIN" run --model "$SHARED/models/vit-tiny" --image "$SHARED/images/chelsea.png" -o "$TMP/cat.st" >"$TMP/out" 2>&1
    rc=$?
    check cli_vit_image_top5 [ $rc -eq 0 ]
    check cli_vit_top5_lines [ "$(grep -c '^ *[1-5]\. ' "$TMP/out")" -eq 5 ]
    check cli_vit_top1_is_a_cat grep -q '^ 1\. .*cat (class 28[1-5])' "$TMP/out"
    "$BIN" info "$TMP/cat.st" >"$TMP/out" 2>&1
    check cli_vit_trace_patch_grid grep -q 'patch_grid *14x14' "$TMP/out"
    check cli_vit_trace_layers grep -q 'self *12 layers x 3 heads, 197 queries x 197 keys' "$TMP/out"
    "$BIN" run --model "$SHARED/models/vit-tiny" --text "a cat" -o "$TMP/x.st" >"$TMP/out" 2>&1
    check cli_vit_needs_an_image sh -c "[ $? -eq 1 ] && grep -q 'image model: give --image' '$TMP/out'"
else
    echo "SKIP cli_vit_image_top5: ../shared/models/vit-tiny or images/chelsea.png not found"
fi

"$BIN" run --model "$TINY/marian" --ids 5,9,12,0 --target-ids 39,11,8 -o "$TMP/mt.st" >"$TMP/out" 2>&1
check cli_encdec_forced_target [ $? -eq 0 ]
check cli_encdec_target_line grep -q '^target: #39 #11 #8$' "$TMP/out"
"$BIN" info "$TMP/mt.st" >"$TMP/out" 2>&1
check cli_encdec_kinds sh -c "grep -q 'enc *2 layers x 2 heads, 4 queries x 4 keys' '$TMP/out' &&
    grep -q 'dec *2 layers x 2 heads, 3 queries x 3 keys' '$TMP/out' &&
    grep -q 'cross *2 layers x 2 heads, 3 queries x 4 keys' '$TMP/out'"
"$BIN" run --model "$TINY/t5" --ids 5,9,12,1 --steps 3 -o "$TMP/t5.st" >"$TMP/out" 2>&1
check cli_encdec_greedy_steps sh -c "[ \$(grep '^target:' '$TMP/out' | wc -w) -le 5 ] && grep -q '^target: #0 ' '$TMP/out'"
"$BIN" info "$TINY/bart" >"$TMP/out" 2>&1
check cli_info_model_dir sh -c "grep -q 'family *encoder-decoder' '$TMP/out' && grep -q 'decoder *2 layers' '$TMP/out'"

"$BIN" run --model "$TINY/gpt2" --ids 1,2,3 --target "x" -o "$TMP/x.st" >"$TMP/out" 2>&1
check cli_target_needs_encdec sh -c "[ $? -eq 1 ] && grep -q 'for encoder-decoder models' '$TMP/out'"
"$BIN" run --model "$TINY/bert" --image /nonexistent/cat.png -o "$TMP/x.st" >"$TMP/out" 2>&1
check cli_image_on_text_model sh -c "[ $? -eq 1 ] && grep -q 'not an image model' '$TMP/out'"
"$BIN" run --model "$TINY/marian" --ids 5,9 --target "the cat" -o "$TMP/x.st" >"$TMP/out" 2>&1
check cli_target_text_with_ids sh -c "[ $? -eq 1 ] && grep -q 'target-ids' '$TMP/out'"
"$BIN" run --model "$TINY/bert" --ids 2,5,3 --logits -o "$TMP/bert.st" >"$TMP/out" 2>&1
check cli_bert_ids [ $? -eq 0 ]
mkdir -p "$TMP/weird"
printf '{"model_type": "mamba"}' >"$TMP/weird/config.json"
"$BIN" run --model "$TMP/weird" --ids 1 -o "$TMP/x.st" >"$TMP/out" 2>&1
check cli_unsupported_type sh -c "[ $? -eq 1 ] && [ \$(wc -l <'$TMP/out') -eq 1 ] && grep -q \"'mamba' is not supported\" '$TMP/out'"
