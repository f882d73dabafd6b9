#!/bin/sh
# scripts/demo.sh (what `make demo` runs after building) end to end on the committed demo models, into a
# scratch folder: it translates "le chat noir" to "the black cat", prints the cross-attention heatmap, and
# writes the standalone viewer (index.html) and PNG images. The numbers (alignment, exact match on held-out
# sentences) are checked by tests/test_demo.c.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${ATTNVIZ_BIN:-$ROOT/build/attnviz}
PY=/usr/bin/python3
TMP=$(mktemp -d "${TMPDIR:-/tmp}/attnviz-demo-XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM
ok() { if [ "$2" = 0 ]; then echo "PASS $1"; else echo "FAIL $1: $3"; fi; }

ATTNVIZ_BIN="$BIN" ATTNVIZ_DEMO_OUT="$TMP/demo" sh "$ROOT/scripts/demo.sh" >"$TMP/out" 2>"$TMP/err"
rc=$?
ok demo_script_runs "$rc" "scripts/demo.sh exited with $rc: $(tail -n 3 "$TMP/err" | tr '\n' ' ')"

grep -q '^target: <pad> the black cat </s>$' "$TMP/out"
ok demo_translates_le_chat_noir $? "no 'target: <pad> the black cat </s>' line in the demo output"

grep -q 'cross-attention · layer 1 · mean of 4 heads' "$TMP/out" && grep -q 'noir' "$TMP/out"
ok demo_prints_cross_heatmap $? "no cross-attention heatmap (with the source token noir) in the demo output"

bad=""
for f in index.html cross-attention.png cross-attention-grid.png sentence.html sentence-cross-attention.png; do
    [ -s "$TMP/demo/$f" ] || bad="$bad $f"
done
for f in cross-attention.png cross-attention-grid.png sentence-cross-attention.png; do
    [ -s "$TMP/demo/$f" ] && [ "$(head -c 8 "$TMP/demo/$f" | od -An -tx1 | tr -d ' \n')" != 89504e470d0a1a0a ] &&
        bad="$bad $f(not a PNG)"
done
ok demo_writes_viewer_and_images "$([ -z "$bad" ]; echo $?)" "missing or bad outputs:$bad"

grep -q 'le chat noir' "$TMP/demo/index.html" && ! grep -Eq '(src|href)="https?://' "$TMP/demo/index.html"
ok demo_viewer_standalone $? "demo/index.html lacks the title or loads something from the network"

grep -q '"state":{"kind":"cross","layer":1}' "$TMP/demo/index.html"
ok demo_viewer_opens_on_last_cross_layer $? "demo/index.html does not start on the last cross-attention layer"

if [ -f "$ROOT/models/induction/induction.bin" ]; then
    [ -s "$TMP/demo/induction.html" ] && [ -s "$TMP/demo/induction-grid.png" ]
    ok demo_induction_outputs $? "models/induction is there but induction.html / induction-grid.png were not written"
fi

if [ -f "$ROOT/models/demo-t2i/model.safetensors" ]; then
    [ -s "$TMP/demo/t2i-words.png" ] && [ -s "$TMP/demo/t2i-red.png" ] && [ -s "$TMP/demo/t2i.html" ] &&
        grep -q "descriptive, not explanatory" "$TMP/out"
    ok demo_t2i_outputs $? "models/demo-t2i is there but the DAAM outputs or the caveat were not written"
    # index.html carries the example: the per-word grid inlined (byte for byte t2i-words.png), a link to
    # t2i.html, the caveat, and still one </body> at the end
    "$PY" - "$TMP/demo/index.html" "$TMP/demo/t2i-words.png" <<'PYEOF'
import base64, re, sys
page = open(sys.argv[1], encoding="utf-8").read()
sec = page[page.index('<section id="t2i-demo"'):]
png = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', sec)
assert png and base64.b64decode(png.group(1)) == open(sys.argv[2], "rb").read()
assert 'href="t2i.html"' in sec and "descriptive, not explanatory" in sec
assert page.count("</body>") == 1 and page.rstrip().endswith("</html>")
PYEOF
    ok demo_index_t2i_section $? "demo/index.html lacks the image-generation section with its per-word maps"
fi
