#!/bin/sh
# Chat prompts. 1) Every chat template fixture (tests/chat/templates: Qwen 2.5/3, Llama 3.1/3.2, Gemma 2/3, Mistral
# v3/v7/Nemo/Small 3.2, Phi-3/3.5, SmolLM2/3) with every message list of tests/chat/messages (system or not,
# multi-turn, Unicode, tools, thinking, ending with the assistant), with and without the generation prompt, rendered
# by `attnviz chat` must equal what @huggingface/jinja (npm, pinned in tests/chat/package-lock.json) renders, byte
# for byte; a template that raises must fail in both. 2) `attnviz run --chat` on a GGUF model traces exactly the ids
# llama.cpp's llama_tokenize gives the prompt (one BOS), and `attnviz generate --chat` continues those ids; with a
# non-GGUF tokenizer, transformers' rule (no BOS the template does not write). 3) One-line errors.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${ATTNVIZ_BIN:-$ROOT/build/attnviz}
SHARED=${ATTNVIZ_SHARED:-$ROOT/../shared}
PY=/usr/bin/python3
C=$ROOT/tests/chat
TMP=$(mktemp -d "${TMPDIR:-/tmp}/attnviz-chat-XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM

if [ ! -x "$BIN" ]; then
    echo "FAIL chat_ref: $BIN is not built"
    exit 1
fi

# ---- 1. templates against @huggingface/jinja ----
if ! command -v node > /dev/null 2>&1; then
    echo "SKIP chat_ref: node is not installed (run scripts/install-deps.sh)"
else
    if [ ! -f "$C/node_modules/@huggingface/jinja/package.json" ]; then
        (cd "$C" && npm ci --no-audit --no-fund --loglevel=error > "$TMP/npm.log" 2>&1) || true
    fi
    if [ ! -f "$C/node_modules/@huggingface/jinja/package.json" ]; then
        echo "SKIP chat_ref: npm could not install @huggingface/jinja: $(tail -1 "$TMP/npm.log")"
    else
        mkdir -p "$TMP/exp"
        if "$PY" "$C/cases.py" "$C/templates" "$C/messages" > "$TMP/cases.json" &&
            (cd "$C" && LC_ALL=C node render.mjs "$TMP/cases.json" "$TMP/exp") 2> "$TMP/node.err"; then
            "$PY" "$C/compare.py" "$BIN" "$TMP/cases.json" "$TMP/exp"
        else
            echo "FAIL chat_ref: the reference renderer failed: $(tail -c 300 "$TMP/node.err")"
        fi
    fi
fi

# ---- 2. run --chat on a GGUF model: the ids llama.cpp gives the prompt ----
check() {
    name=$1
    shift
    if "$@"; then echo "PASS $name"; else echo "FAIL $name: $(head -c 300 "$TMP/out" | tr '\n' ' ')"; fi
}
trace_ids() { # the token_ids of a trace file, as a JSON array
    "$PY" -c 'import json,struct,sys; f=open(sys.argv[1],"rb"); n=struct.unpack("<Q",f.read(8))[0]
print(json.dumps(json.loads(json.loads(f.read(n))["__metadata__"]["token_ids"])))' "$1"
}
MODEL=$SHARED/models/stories260K
if [ ! -r "$MODEL/stories260K.bin" ]; then
    echo "SKIP chat_run_gguf: $MODEL not found (../shared is absent)"
elif ! ref=$(sh "$ROOT/tests/llamacpp/install.sh" 2> "$TMP/install.err"); then
    echo "SKIP chat_run_gguf: llama.cpp reference not installable: $(tail -1 "$TMP/install.err")"
else
    eval "$ref"
    cc -O1 -I"${INC%%:*}" -I"${INC##*:}" -o "$TMP/tok_ref" "$ROOT/tests/llamacpp/tok_ref.c" -L"$LIB" \
        -lllama.v0.4.0 -lggml.v0.4.0 -lggml-base -ljansson -Wl,-rpath,"$LIB" 2> "$TMP/out"
    "$BIN" convert --model "$MODEL/stories260K.bin" --tokenizer "$MODEL/tok512.bin" --to gguf -o "$TMP/s.gguf" > "$TMP/out" 2>&1
    T="--chat-template $C/templates/phi-3-mini-instruct.jinja"
    "$BIN" run --model "$TMP/s.gguf" --chat "$C/messages/multi_turn_no_system.json" $T -o "$TMP/t.st" > "$TMP/out" 2>&1 &&
        "$BIN" chat --model "$TMP/s.gguf" $T "$C/messages/multi_turn_no_system.json" > "$TMP/prompt.txt" 2>> "$TMP/out" &&
        "$PY" -c 'import json,sys; print(json.dumps(open(sys.argv[1],encoding="utf-8").read()))' "$TMP/prompt.txt" > "$TMP/prompt.jsonl" &&
        "$TMP/tok_ref" "$LIB" "$TMP/s.gguf" "$TMP/prompt.jsonl" > "$TMP/exp_ids" 2>> "$TMP/out" &&
        trace_ids "$TMP/t.st" > "$TMP/got_ids"
    check chat_run_gguf_ids_equal_llama_cpp sh -c "[ -s '$TMP/got_ids' ] && cmp -s '$TMP/exp_ids' '$TMP/got_ids' &&
        grep -q '^\[1, ' '$TMP/got_ids' && ! grep -q '^\[1, 1,' '$TMP/got_ids'"
    "$BIN" generate --model "$TMP/s.gguf" --chat "$C/messages/multi_turn_no_system.json" $T --steps 4 \
        -o "$TMP/g.st" > "$TMP/out" 2>&1 && trace_ids "$TMP/g.st" > "$TMP/gen_ids"
    check chat_generate_gguf_starts_with_llama_cpp_ids "$PY" -c 'import json,sys
exp = json.load(open(sys.argv[1])); got = json.load(open(sys.argv[2]))
sys.exit(not (exp and got[:len(exp)] == exp and len(got) > len(exp)))' "$TMP/exp_ids" "$TMP/gen_ids"
fi
# generate --chat with a tokenizer that adds BOS and a template that writes none (Phi-3.5): transformers' rule,
# the rendered text encoded without special tokens, so the sequence has no BOS (1) and is the one run --chat traces.
if [ -r "$MODEL/stories260K.bin" ]; then
    M="--model $MODEL/stories260K.bin --tokenizer $MODEL/tok512.bin"
    T="--chat-template $C/templates/phi-3.5-mini-instruct.jinja"
    "$BIN" generate $M --chat "$C/messages/multi_turn_no_system.json" $T --steps 4 -o "$TMP/g2.st" > "$TMP/out" 2>&1 &&
        "$BIN" run $M --chat "$C/messages/multi_turn_no_system.json" $T -o "$TMP/r2.st" >> "$TMP/out" 2>&1 &&
        trace_ids "$TMP/g2.st" > "$TMP/gen2_ids" && trace_ids "$TMP/r2.st" > "$TMP/run2_ids"
    check chat_generate_no_bos_when_the_template_writes_none "$PY" -c 'import json,sys
run = json.load(open(sys.argv[1])); gen = json.load(open(sys.argv[2]))
sys.exit(not (run and run[0] != 1 and gen[:len(run)] == run and len(gen) > len(run)))' "$TMP/run2_ids" "$TMP/gen2_ids"
fi

# ---- 3. errors ----
printf '[{"role": "user", "content": "hi"}]' > "$TMP/m.json"
"$BIN" run --model "$ROOT/tests/fixtures/tiny/gpt2" --chat "$TMP/m.json" -o "$TMP/x.st" > "$TMP/out" 2>&1
check chat_no_template_is_an_error sh -c "[ $? -eq 1 ] && [ \$(wc -l < '$TMP/out') -eq 1 ] && grep -q -- '--chat-template' '$TMP/out'"
"$BIN" run --model "$ROOT/tests/fixtures/tiny/gpt2" --chat "$TMP/m.json" --text hi -o "$TMP/x.st" > "$TMP/out" 2>&1
check chat_and_text_refused sh -c "[ $? -eq 1 ] && grep -q 'not both' '$TMP/out'"
printf '{%% for m in messages %%}{{ m.content | wordcount }}{%% endfor %%}' > "$TMP/bad.jinja"
"$BIN" chat --chat-template "$TMP/bad.jinja" "$TMP/m.json" > "$TMP/out" 2>&1
check chat_unknown_filter_named sh -c "[ $? -eq 1 ] && grep -q \"line 1: unknown filter 'wordcount'\" '$TMP/out'"
printf '{%% include "x.jinja" %%}' > "$TMP/bad.jinja"
"$BIN" chat --chat-template "$TMP/bad.jinja" "$TMP/m.json" > "$TMP/out" 2>&1
check chat_unsupported_statement_named sh -c "[ $? -eq 1 ] && grep -q \"unsupported statement 'include'\" '$TMP/out'"
printf '{"role": "user"}' > "$TMP/bad.json"
"$BIN" chat --chat-template "$C/templates/qwen3.jinja" "$TMP/bad.json" > "$TMP/out" 2>&1
check chat_bad_messages sh -c "[ $? -eq 1 ] && grep -q 'expected a JSON array of messages' '$TMP/out'"
exit 0
