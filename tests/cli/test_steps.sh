#!/bin/sh
# Log-probabilities from the command line: API responses written by Python's json module (a character split
# over tokens as UTF-8 bytes, JSON lines, an SSE stream) imported and read back with numpy; the step view
# (--json) of `run --logits` traces against a float64 numpy log-softmax of the stored logits; the step figure
# as SVG parsed by xml.etree; attnviz diff on two runs of the project's own models. PASS/FAIL/SKIP lines.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${ATTNVIZ_BIN:-$ROOT/build/attnviz}
SHARED=${ATTNVIZ_SHARED:-$ROOT/../shared}
PY=/usr/bin/python3
TMP=$(mktemp -d "${TMPDIR:-/tmp}/attnviz-steps-XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }
skip() { echo "SKIP $1: $2"; }

if ! "$PY" -c 'import numpy' 2>/dev/null; then
    skip steps_cli "Debian's python3-numpy is missing (make deps)"
    exit 0
fi
export PYTHONPATH="$ROOT/scripts"

# ---- API responses written by Python, imported, read back with numpy ----
"$PY" - "$TMP" <<'EOF'
import json, sys
d = sys.argv[1]
smile = "\U0001F600".encode()            # F0 9F 98 80, split as [F0 9F] + [98 80]
toks = [("Hi", b"Hi", -0.25), (" " + smile[:2].decode("latin-1"), b" " + smile[:2], -0.5),
        ("x", smile[2:], -0.125), ("!", b"!", -2.0)]
content = [{"token": t, "logprob": lp, "bytes": list(b),
            "top_logprobs": [{"token": t, "logprob": lp, "bytes": list(b)},
                             {"token": "?", "logprob": lp - 1.5, "bytes": [63]}]} for t, b, lp in toks]
chat = {"object": "chat.completion", "model": "gpt-test", "choices": [{"index": 0, "message": {"role": "assistant",
        "content": "Hi " + "\U0001F600" + "!"}, "logprobs": {"content": content}, "finish_reason": "length"}]}
json.dump(chat, open(f"{d}/chat.json", "w"))
with open(f"{d}/stream.sse", "w") as f:           # the same tokens streamed one per chunk
    for e in content:
        f.write("data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": "."}, "logprobs": {"content": [e]}}]}) + "\n\n")
    f.write("data: [DONE]\n\n")
with open(f"{d}/ollama.jsonl", "w") as f:
    for i, (t, b, lp) in enumerate(toks):
        f.write(json.dumps({"model": "llama3", "created_at": "t", "response": t, "done": i == 3,
                            "logprobs": [{"token": t, "logprob": lp, "bytes": list(b)}]}) + "\n")
open(f"{d}/cut.json", "w").write(json.dumps(chat)[:300])
EOF
ok=1
for f in chat.json stream.sse ollama.jsonl; do
    if ! "$BIN" import "$TMP/$f" -o "$TMP/$f.safetensors" 2>"$TMP/err"; then
        fail import_api_python "$f: $(tail -1 "$TMP/err")"
        ok=0
    fi
done
if [ $ok = 1 ] && "$PY" - "$TMP" <<'EOF'; then pass import_api_python; else fail import_api_python "values differ (above)"; fi
import json, sys, numpy as np, safetensors_np as st
d = sys.argv[1]
for name, provider in (("chat.json", "openai-chat"), ("stream.sse", "openai-chat"), ("ollama.jsonl", "ollama-generate")):
    t, m = st.read(f"{d}/{name}.safetensors")
    tokens, g = json.loads(m["tokens"]), json.loads(m["generation"])
    assert np.array_equal(t["logprobs.token"], np.array([-0.25, -0.5, -0.125, -2.0], np.float32)), (name, t["logprobs.token"])
    assert tokens == ["Hi", " \U0001F600", "\u00b7<0x98><0x80>", "!"], (name, tokens)
    assert g["provider"] == provider and m["prompt_len"] == "0" and "attention" in g["missing"], (name, g)
    assert m["version"] == "3" and not any(k.startswith("attn.") for k in t), name
    if name != "ollama.jsonl":
        pieces = json.loads(m["logprob_pieces"])
        assert [pieces[i] for i in t["logprobs.pieces"][0]] == ["Hi", "?"], pieces
        assert np.allclose(t["logprobs.topk"][3], [-2.0, -3.5]), t["logprobs.topk"]
EOF
if "$BIN" import "$TMP/cut.json" -o "$TMP/cut.safetensors" 2>"$TMP/err"; then
    fail import_api_truncated "a truncated response was imported"
elif [ "$(wc -l <"$TMP/err")" = 1 ] && grep -q "cut.json: truncated JSON" "$TMP/err" && [ ! -e "$TMP/cut.safetensors" ]; then
    pass import_api_truncated
else
    fail import_api_truncated "$(cat "$TMP/err")"
fi

# ---- the step view of run --logits traces against numpy ----
check_logits() { # NAME MODEL TEXT
    name=$1
    if ! "$BIN" run --model "$2" --text "$3" --logits -o "$TMP/$name.safetensors" 2>"$TMP/err" ||
        ! "$BIN" show "$TMP/$name.safetensors" --steps --json >"$TMP/$name.json" 2>"$TMP/err"; then
        fail "$name" "$(tail -1 "$TMP/err")"
        return
    fi
    if "$PY" - "$TMP/$name.safetensors" "$TMP/$name.json" <<'EOF'; then pass "$name"; else fail "$name" "see above"; fi
import json, sys, numpy as np, safetensors_np as st
t, m = st.read(sys.argv[1])
steps = json.load(open(sys.argv[2]))["steps"]
logits = t["logits"].astype(np.float64)
ids = json.loads(m["token_ids"])
lp = logits - logits.max(1, keepdims=True)
lp -= np.log(np.exp(lp).sum(1, keepdims=True))
worst = 0.0
for i in range(1, len(ids)):
    s, ref = steps[i], lp[i - 1]
    worst = max(worst, abs(s["logprob"] - ref[ids[i]]), abs(s["entropy"] + (np.exp(ref) * ref).sum()))
    top = np.argsort(-ref, kind="stable")[:len(s["alts"])]
    assert [a[0] for a in s["alts"]] == list(top), (i, s["alts"], top)
    worst = max(worst, max(abs(a[2] - ref[a[0]]) for a in s["alts"]))
assert steps[0]["logprob"] is None and worst <= 1e-4, worst
print(f"# max |attnviz - numpy float64| = {worst:.2e}")
EOF
}
check_logits steps_logits_induction "$ROOT/models/induction/induction.bin" "Xq7 mZp3 vR8k Lw2 Xq7 mZp3 vR8k"
check_logits steps_logits_translator "$ROOT/models/demo-fr-en" "le chat noir"
if [ -f "$SHARED/models/stories260K/stories260K.bin" ]; then
    check_logits steps_logits_stories260K "$SHARED/models/stories260K/stories260K.bin" "Once upon a time, Lily saw a big red ball."
else
    skip steps_logits_stories260K "$SHARED/models/stories260K not found"
fi

# ---- terminal, figure and page of a trace without attention ----
if "$BIN" show "$TMP/chat.json.safetensors" --colors none >"$TMP/show.txt" 2>"$TMP/err" &&
    grep -q "this provider returns no attention weights" "$TMP/show.txt" &&
    grep -q "OpenAI returns at most 20 alternatives" "$TMP/show.txt" && grep -q "showing its steps" "$TMP/err"; then
    pass steps_show_no_attention
else
    fail steps_show_no_attention "$(head -3 "$TMP/show.txt") $(tail -1 "$TMP/err")"
fi
if "$BIN" render "$TMP/steps_logits_induction.safetensors" --steps -o "$TMP/steps.svg" 2>"$TMP/err" &&
    "$BIN" render "$TMP/steps_logits_induction.safetensors" --steps --color-by entropy -o "$TMP/steps.png" 2>>"$TMP/err" &&
    "$BIN" render "$TMP/chat.json.safetensors" -o "$TMP/api.svg" 2>>"$TMP/err" &&
    "$PY" - "$TMP/steps.svg" "$TMP/api.svg" <<'EOF'; then
import sys, xml.etree.ElementTree as ET
ns = "{http://www.w3.org/2000/svg}"
texts = [t.text for t in ET.parse(sys.argv[1]).iter(ns + "text")]
assert any(t and t.startswith("attention while producing") for t in texts), texts[:20]
assert all(c in texts for c in ("X", "q", "7", "Z")), texts[:20]   # the model's characters, one box each
api = [t.text for t in ET.parse(sys.argv[2]).iter(ns + "text")]
assert "this provider returns no attention weights" in api and "!" in api, api
EOF
    pass steps_render_figure
else
    fail steps_render_figure "$(tail -1 "$TMP/err")"
fi
if "$BIN" html "$TMP/chat.json.safetensors" -o "$TMP/api.html" 2>"$TMP/err" && grep -q '"steps":{' "$TMP/api.html" &&
    ! grep -Eq '(src|href)=["'"'"']?(https?:)?//' "$TMP/api.html"; then
    pass steps_html_no_attention
else
    fail steps_html_no_attention "$(tail -1 "$TMP/err")"
fi

# ---- attnviz diff ----
IND="$ROOT/models/induction/induction.bin"
"$BIN" run --model "$IND" --text "Xq7 mZp3 vR8k Lw2 Xq7 mZp3 vR8k" --logits --dtype f16 -o "$TMP/f16.safetensors" 2>/dev/null
"$BIN" run --model "$IND" --text "Xq7 mZp3 vR8k Lw2 Xq7 mZp3 Lw2" --logits -o "$TMP/other.safetensors" 2>/dev/null
A="$TMP/steps_logits_induction.safetensors"
if "$BIN" diff "$A" "$TMP/f16.safetensors" --colors none >"$TMP/diff.txt" 2>"$TMP/err" &&
    grep -q "tokens compared" "$TMP/diff.txt" && grep -q "distance of each head" "$TMP/diff.txt" &&
    "$BIN" diff "$A" "$TMP/f16.safetensors" -o "$TMP/diff.svg" 2>>"$TMP/err" &&
    "$BIN" diff "$A" "$TMP/f16.safetensors" -o "$TMP/diff.html" 2>>"$TMP/err" && grep -q '"diverging"' "$TMP/diff.html" &&
    "$PY" - "$A" "$TMP/f16.safetensors" "$TMP/diff.txt" <<'EOF'; then
import re, sys, numpy as np, safetensors_np as st
a, _ = st.read(sys.argv[1]); b, _ = st.read(sys.argv[2])
# the largest head distance the terminal names, recomputed: mean over rows of 0.5 sum |A - B|
best = max(0.5 * np.abs(a[k].astype(np.float64) - b[k].astype(np.float64)).sum(-1).mean(-1).max()
           for k in a if k.startswith("attn.self."))
text = open(sys.argv[3]).read()
assert "log p(A)" in text, text[-400:]
m = re.search(r"mean \|A - B\| (\S+) over (\d+) tokens", text)
assert m and float(m.group(1)) < 1e-2, text[-300:]       # f16 attention: same logits, tiny differences
assert best < 2e-3, best
EOF
    pass diff_f16_against_f32
else
    fail diff_f16_against_f32 "$(tail -1 "$TMP/err")"
fi
if "$BIN" diff "$A" "$TMP/other.safetensors" >"$TMP/out" 2>"$TMP/err"; then
    fail diff_tokens_differ "traces of other tokens were compared"
elif grep -q "differ at token" "$TMP/err" && grep -q -- "--common-prefix" "$TMP/err" &&
    "$BIN" diff "$A" "$TMP/other.safetensors" --common-prefix --colors none >"$TMP/out" 2>"$TMP/err" &&
    grep -q "tokens compared (common prefix)" "$TMP/out"; then
    pass diff_tokens_differ
else
    fail diff_tokens_differ "$(tail -1 "$TMP/err")"
fi
