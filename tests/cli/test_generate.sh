#!/bin/sh
# attnviz generate end to end: traces of greedy and sampled generations of llama2.c models (the project's
# induction model, and stories260K when ../shared has it) checked by scripts/ref_logprobs.py, a float64 PyTorch
# reference that also replays the sampler; seeds; stop strings; the translator; failures that print nothing.
# PASS/FAIL/SKIP lines.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${ATTNVIZ_BIN:-$ROOT/build/attnviz}
SHARED=${ATTNVIZ_SHARED:-$ROOT/../shared}
PY=/usr/bin/python3
TMP=$(mktemp -d "${TMPDIR:-/tmp}/attnviz-generate-XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }
skip() { echo "SKIP $1: $2"; }

IND="$ROOT/models/induction/induction.bin"
STORIES="$SHARED/models/stories260K/stories260K.bin"

# ---- log-probabilities and sampled tokens against the float64 reference ----
if ! "$PY" -c 'import numpy, torch' 2>/dev/null; then
    skip generate_float64_reference "Debian's python3-numpy / python3-torch are missing (make deps)"
else
    check() { # NAME MODEL generate-options...
        name=$1 model=$2
        shift 2
        if ! "$BIN" generate --model "$model" "$@" -o "$TMP/$name.safetensors" >"$TMP/out" 2>"$TMP/err"; then
            fail "$name" "$(tail -1 "$TMP/err")"
        elif "$PY" "$ROOT/scripts/ref_logprobs.py" "$TMP/$name.safetensors" "$model" >"$TMP/ref" 2>&1; then
            echo "$(head -1 "$TMP/ref")"
            pass "$name"
        else
            fail "$name" "$(tr '\n' ' ' <"$TMP/ref")"
        fi
    }
    check generate_induction_greedy "$IND" --prompt "Xq7 mZp3 vR8k Lw2 Xq7" --steps 20
    check generate_induction_sampled "$IND" --prompt "Xq7 mZp3 vR8k" --steps 30 --temperature 1.2 --top-k 8 --seed 4
    if [ -f "$STORIES" ]; then
        check generate_stories260K_greedy "$STORIES" --prompt "Once upon a time" --steps 60
        check generate_stories260K_sampled "$STORIES" --prompt "Lily saw a" --steps 80 --temperature 0.9 \
            --top-k 40 --top-p 0.95 --min-p 0.02 --seed 11
        check generate_stories260K_hot "$STORIES" --steps 60 --temperature 1.4 --top-p 0.8 --seed 2 --top-logprobs 20
    else
        skip generate_stories260K "$STORIES not found"
    fi
fi

# ---- seeds: the same seed gives the same text, another seed another ----
run() { "$BIN" generate --model "$IND" --prompt "Xq7 mZp3" --steps 40 --temperature 1.5 "$@" 2>/dev/null; }
a=$(run --seed 9) b=$(run --seed 9) c=$(run --seed 10)
if [ -n "$a" ] && [ "$a" = "$b" ] && [ "$a" != "$c" ]; then pass generate_seed_repeats; else fail generate_seed_repeats "'$a' '$b' '$c'"; fi

# ---- stop strings and the trace rows ----
# "mZp3 Xq7" spans several tokens: the text stops right after it
if "$BIN" generate --model "$IND" --prompt "Xq7 mZp3 vR8k Lw2 Xq7" --steps 40 --stop "nothing" --stop "mZp3 Xq7" \
    -o "$TMP/stop.safetensors" >"$TMP/out" 2>"$TMP/err" &&
    grep -q "stop: stop" "$TMP/err" && [ "$(cat "$TMP/out")" = "Xq7 mZp3 vR8k Lw2 Xq7 mZp3 Xq7" ] &&
    "$BIN" show "$TMP/stop.safetensors" --steps --colors none >"$TMP/show" 2>&1 &&
    grep -q "prompt tokens ·" "$TMP/show" && grep -q "attended (self" "$TMP/show"; then
    pass generate_stop_string
else
    fail generate_stop_string "$(cat "$TMP/out") / $(tail -1 "$TMP/err")"
fi

# ---- the translator: decoding from the start token, cross-attention in the trace ----
if "$BIN" generate --model "$ROOT/models/demo-fr-en" --prompt "le chat noir" --steps 10 -o "$TMP/fr.safetensors" \
    >"$TMP/out" 2>"$TMP/err" && grep -q "the black cat" "$TMP/out" && grep -q "stop: eos" "$TMP/err" &&
    "$PY" - "$TMP/fr.safetensors" <<'EOF'; then
import json, sys
sys.path.insert(0, "scripts")
import safetensors_np as st
t, m = st.read(sys.argv[1])
assert m["prompt_len"] == "1" and m["decoding"] == "greedy", m
assert "attn.cross.0" in t and json.loads(m["target_tokens"])[-1] == "</s>", list(t)
assert t["logprobs.token"].shape[0] == len(json.loads(m["tokens"]))
EOF
    pass generate_translator
else
    fail generate_translator "$(tail -1 "$TMP/err")"
fi

# ---- failures print nothing on stdout, leave no file, and say why in one line ----
nothing() { # NAME EXPECTED-MESSAGE generate-options...
    name=$1 want=$2
    shift 2
    if "$BIN" generate "$@" -o "$TMP/none.safetensors" >"$TMP/out" 2>"$TMP/err"; then
        fail "$name" "it succeeded"
    elif [ -s "$TMP/out" ] || [ -e "$TMP/none.safetensors" ] || [ "$(wc -l <"$TMP/err")" != 1 ] ||
        ! grep -q -- "$want" "$TMP/err"; then
        fail "$name" "stdout '$(head -c 80 "$TMP/out")', stderr '$(cat "$TMP/err")'"
    else
        pass "$name"
    fi
}
nothing generate_fails_bad_temperature "temperature must be a number" --model "$IND" --prompt "Xq7" --temperature -1
nothing generate_fails_bad_top_p "top-p must be a number" --model "$IND" --prompt "Xq7" --top-p 0
nothing generate_fails_no_model "No such file" --model "$TMP/missing.bin" --prompt "Xq7"
nothing generate_fails_prompt_too_long "context window" --model "$IND" --prompt "$(printf 'Xq7 %.0s' $(seq 1 400))"
nothing generate_fails_chat_and_prompt "not both" --model "$IND" --prompt "a" --chat "$TMP/x.json"
