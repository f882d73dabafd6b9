#!/bin/sh
# attnviz attribute and attnviz lens end to end on the real stories260K (docs/ATTRIBUTION.md): the trace files
# read by numpy (scripts/safetensors_np.py: shapes, metadata, occlusion of a span equal to the sum it must
# telescope to), the terminal views (show --attr / --lens), PNG and SVG figures (render --attr / --lens; the
# SVG parsed by xml.etree), the HTML pages in chromium (tests/browser/attribution.test.mjs), `serve` handing out
# the same page, and bad input refused with one line and a nonzero exit. Prints PASS/FAIL/SKIP lines.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${ATTNVIZ_BIN:-$ROOT/build/attnviz}
SHARED=${ATTNVIZ_SHARED:-$ROOT/../shared}
PY=/usr/bin/python3
M=$SHARED/models/stories260K/stories260K.bin
TMP=$(mktemp -d "${TMPDIR:-/tmp}/attnviz-attr-XXXXXX")
PID=""
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }
skip() { echo "SKIP $1: $2"; }

if [ ! -f "$M" ]; then
    skip attribution_cli "$M not found (../shared holds the real models)"
    exit 0
fi
if ! "$PY" -c 'import numpy' 2>/dev/null; then
    skip attribution_cli "Debian's python3-numpy is missing (make deps)"
    exit 0
fi
TEXT="Once upon a time, Lily saw"

# 1. the commands and their files
if "$BIN" attribute --model "$M" --text "$TEXT" --target " a big ball" --method occlusion,shapley,ig,attn-grad \
    --samples 3 --steps 16 -o "$TMP/attr.safetensors" >"$TMP/out" 2>"$TMP/err" &&
    grep -q '^occlusion  top sources' "$TMP/out" && grep -q 'completeness error' "$TMP/out" &&
    grep -q 'attnviz attribute: occlusion 8/8' "$TMP/err" &&
    "$BIN" attribute --model "$M" --text "$TEXT" --target " a big ball" --group span:8 --quiet \
        -o "$TMP/whole.safetensors" >/dev/null 2>"$TMP/err" &&
    "$BIN" lens --model "$M" --text "$TEXT a big ball" --k 3 -o "$TMP/lens.safetensors" 2>"$TMP/err"; then
    pass attribution_commands
else
    fail attribution_commands "$(tail -1 "$TMP/err")"
fi
if "$PY" - "$ROOT/scripts" "$TMP" >"$TMP/py" 2>&1 <<'EOF'; then
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import safetensors_np as st
d = sys.argv[2]
t, m = st.read(d + "/attr.safetensors")
S, ids = int(m["source_len"]), json.loads(m["token_ids"])
N = len(ids) - S
assert S == 8 and ids[0] == 1, (S, ids)  # BOS is a source position
a = json.loads(m["attribution"])
assert a["version"] == 1 and a["baseline"] == "token" and int(m["attr.baseline_id"]) == a["baseline_id"] == 0, a
for k in ("occlusion", "shapley", "ig", "attn-grad"):
    assert t["attr." + k].shape == (N, S) and t["attr." + k].dtype == np.float32, k
assert t["attr.attn-grad.heads"].shape == (N, 5, 8, S)
assert list(t["attr.target_ids"]) == ids[S:] and list(t["attr.target_rows"]) == list(range(S - 1, S - 1 + N))
assert "attn.self.0" in t  # the attention of the sequence comes along
# Shapley values telescope: per target they sum to f(x) - f(every source token at the baseline), which is the
# occlusion of one span covering the whole source
w, _ = st.read(d + "/whole.safetensors")
np.testing.assert_allclose(t["attr.shapley"].sum(1), w["attr.occlusion"][:, 0], atol=1e-4)
assert np.all(w["attr.occlusion"] == w["attr.occlusion"][:, :1])  # one group: one value per target
l, lm = st.read(d + "/lens.safetensors")
T = len(json.loads(lm["token_ids"]))
assert l["lens.topk_ids"].shape == (6, T, 3) and l["lens.topk_logprobs"].shape == (6, T, 3)
assert l["lens.target_logprobs"].shape == (6, T) and np.isnan(l["lens.target_logprobs"][:, -1]).all()
assert (np.diff(l["lens.topk_logprobs"], axis=2) <= 0).all()  # best first
labels = json.loads(lm["lens.labels"])
assert all(str(i) in labels for i in l["lens.topk_ids"].ravel())
print("ok")
EOF
    pass attribution_trace_contract
else
    fail attribution_trace_contract "$(tail -1 "$TMP/py")"
fi

# 2. terminal and figures
if "$BIN" show "$TMP/attr.safetensors" --attr shapley --colors none --width 100 >"$TMP/show" 2>"$TMP/err" &&
    grep -q '^source:' "$TMP/show" && grep -q '^target 0' "$TMP/show" && grep -q 'target (rows) by source' "$TMP/show" &&
    "$BIN" show "$TMP/lens.safetensors" --lens --colors none --width 120 >"$TMP/lshow" 2>>"$TMP/err" &&
    grep -q '^embeddings' "$TMP/lshow" && grep -q '^layer 5' "$TMP/lshow" &&
    "$BIN" show "$TMP/lens.safetensors" --lens --positions 0-3 --colors none >"$TMP/lshow2" 2>>"$TMP/err" &&
    grep -q 'positions 0..3 of' "$TMP/lshow2"; then
    pass attribution_show
else
    fail attribution_show "$(tail -1 "$TMP/err")"
fi
if "$BIN" render "$TMP/attr.safetensors" --attr ig -o "$TMP/attr.png" 2>"$TMP/err" &&
    "$BIN" render "$TMP/attr.safetensors" --attr occlusion -o "$TMP/attr.svg" 2>>"$TMP/err" &&
    "$BIN" render "$TMP/lens.safetensors" --lens -o "$TMP/lens.svg" 2>>"$TMP/err" &&
    "$BIN" render "$TMP/lens.safetensors" --lens --positions 2-5 -o "$TMP/lens.png" 2>>"$TMP/err" &&
    "$PY" - "$TMP" "$ROOT/scripts" >"$TMP/py" 2>&1 <<'EOF'; then
import json, sys, xml.etree.ElementTree as ET
sys.path.insert(0, sys.argv[2])
import safetensors_np as st
d = sys.argv[1]
for f in ("attr.png", "lens.png"):
    assert open(d + "/" + f, "rb").read(8) == b"\x89PNG\r\n\x1a\n", f
texts = [e.text for e in ET.parse(d + "/attr.svg").iter() if e.tag.endswith("text")]
_, m = st.read(d + "/attr.safetensors")
assert any("occlusion" in (s or "") for s in texts), texts[:3]
for tok in json.loads(m["tokens"])[1:8]:
    assert tok in texts, (tok, texts)
ltexts = [e.text for e in ET.parse(d + "/lens.svg").iter() if e.tag.endswith("text")]
assert "embeddings" in ltexts and "layer 5" in ltexts, ltexts[:10]
print("ok")
EOF
    pass attribution_render
else
    fail attribution_render "$(tail -1 "$TMP/err" "$TMP/py" 2>/dev/null | tail -1)"
fi

# 3. bad input: one line, nonzero exit, no output file
bad() { # NAME EXPECTED-TEXT ARGS...
    n=$1 want=$2
    shift 2
    if "$BIN" "$@" >/dev/null 2>"$TMP/err"; then
        fail "attribution_refuses_$n" "exit status 0"
    elif [ "$(wc -l <"$TMP/err")" -ne 1 ] || ! grep -q -- "$want" "$TMP/err"; then
        fail "attribution_refuses_$n" "$(head -2 "$TMP/err" | tr '\n' ' ')"
    else
        pass "attribution_refuses_$n"
    fi
}
bad method "unknown method 'lime'" attribute --model "$M" --text "$TEXT" --method lime -o "$TMP/x.st"
bad baseline "--baseline must be" attribute --model "$M" --text "$TEXT" --baseline nothing -o "$TMP/x.st"
bad group "--group must be" attribute --model "$M" --text "$TEXT" --group span:0 -o "$TMP/x.st"
bad ig_remove "removal" attribute --model "$M" --text "$TEXT" --method ig --baseline remove -o "$TMP/x.st"
bad vocab "outside the vocabulary" attribute --model "$M" --ids 1,403,9999 --target-ids 5 -o "$TMP/x.st"
bad no_source "give the source" attribute --model "$M" -o "$TMP/x.st"
bad show_missing "no shapley attribution" show "$TMP/lens.safetensors" --attr shapley
bad render_missing "no logit lens" render "$TMP/attr.safetensors" --lens -o "$TMP/x.png"
bad lens_k "--k must be" lens --model "$M" --text "$TEXT" --k 0
# a trace without attention: show and render name the option that shows what it holds
if "$BIN" attribute --model "$M" --ids 1,403,407 --target-ids 408 --method ixg --no-attention --quiet \
    -o "$TMP/noattn.safetensors" >/dev/null 2>"$TMP/err"; then
    bad show_no_attention "give --attr ixg" show "$TMP/noattn.safetensors"
    bad render_no_attention "give --attr ixg" render "$TMP/noattn.safetensors" -o "$TMP/x.png"
else
    fail attribution_no_attention "$(tail -1 "$TMP/err")"
fi
[ -e "$TMP/x.st" ] || [ -e "$TMP/x.png" ] && fail attribution_no_partial_files "an output was written" ||
    pass attribution_no_partial_files

# 4. the HTML pages in chromium, and serve
if "$BIN" html "$TMP/attr.safetensors" -o "$TMP/attr.html" 2>"$TMP/err" &&
    "$BIN" html "$TMP/lens.safetensors" --view lens -o "$TMP/lens.html" 2>>"$TMP/err"; then
    pass attribution_html
else
    fail attribution_html "$(tail -1 "$TMP/err")"
fi
. "$ROOT/tests/browser/ready.sh"
if browser_ready attribution_browser "$TMP"; then
    mkdir -p "$ROOT/build/screenshots"
    (cd "$ROOT/tests/browser" && timeout 300 node attribution.test.mjs "$TMP" "$ROOT/build/screenshots") ||
        true # each test printed its line
fi
if command -v curl >/dev/null 2>&1; then
    "$BIN" serve "$TMP/attr.safetensors" --port 0 2>"$TMP/serve.err" &
    PID=$!
    i=0
    while [ $i -lt 100 ] && ! grep -q 'listening on' "$TMP/serve.err"; do
        sleep 0.1
        i=$((i + 1))
    done
    PORT=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$TMP/serve.err")
    S="http://127.0.0.1:$PORT"
    ID=$(curl -s "$S/api/info" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["traces"][0]["id"])' 2>/dev/null)
    if [ -n "$ID" ] && curl -sf "$S/api/traces/$ID/viewer?view=attribution" -o "$TMP/served.html" &&
        grep -q '"attribution":{' "$TMP/served.html"; then
        pass attribution_serve
    else
        fail attribution_serve "no viewer page with the attribution from $S (trace '$ID')"
    fi
    kill "$PID" 2>/dev/null
    wait "$PID" 2>/dev/null
    PID=""
else
    skip attribution_serve "curl is not installed"
fi
