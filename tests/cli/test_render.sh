#!/bin/sh
# attnviz render and attnviz html from the command line: PNG/SVG files (the SVG parsed as XML by Python's
# xml.etree, with the token labels and title as selectable <text>), --grid, --dpi, and clear one-line
# errors for malformed or truncated traces and bad options (nothing written, nonzero exit).
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${ATTNVIZ_BIN:-$ROOT/build/attnviz}
PY=/usr/bin/python3
TMP=$(mktemp -d "${TMPDIR:-/tmp}/attnviz-render-XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM

if ! "$PY" -c 'import numpy' 2>/dev/null; then
    echo "SKIP render_cli: Debian's python3-numpy is missing (make deps)"
    exit 0
fi
"$PY" - "$TMP" <<'PYEOF'
import json, sys
import numpy as np
out = sys.argv[1]
rng = np.random.default_rng(3)
x = rng.standard_normal((2, 3, 7, 7)) * 2
x = np.where(np.tri(7)[None, None] > 0, x, -np.inf)
a = np.exp(x - x.max(-1, keepdims=True)); a /= a.sum(-1, keepdims=True)
np.save(f"{out}/a.npy", a.astype(np.float32))
json.dump({"tokens": ["<s>", "Der", " Bär", " & die", " <Maus>", "\u00e9t\u00e9", "\u2581end"], "model": "tiny \"test\""},
          open(f"{out}/tok.json", "w"))
PYEOF
"$BIN" import "$TMP/a.npy" --tokens "$TMP/tok.json" -o "$TMP/t.safetensors" 2>/dev/null ||
    { echo "FAIL render_fixture: import failed"; exit 0; }

t="$TMP/t.safetensors"
ok() { if [ "$2" = 0 ]; then echo "PASS $1"; else echo "FAIL $1: $3"; fi; }

"$BIN" render "$t" --layer 1 --head 2 -o "$TMP/h.svg" 2>"$TMP/err"
"$PY" - "$TMP/h.svg" <<'PYEOF' 2>"$TMP/perr"
import sys
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
ns = "{http://www.w3.org/2000/svg}"
assert root.tag == ns + "svg", root.tag
texts = ["".join(e.itertext()) for e in root.iter(ns + "text")]
for label in ["<s>", "Der", " Bär", " & die", " <Maus>", "\u00e9t\u00e9", "\u2581end"]:
    assert texts.count(label) >= 2, f"label {label!r} appears {texts.count(label)} times (want query + key)"
assert 'tiny "test" · layer 1 · head 2' in texts, texts[:3]
assert any(e.get("transform", "").startswith("rotate(-90") for e in root.iter(ns + "text")), "no rotated key labels"
rects = [e for e in root.iter(ns + "rect") if e.find(ns + "title") is not None]
assert len(rects) == 49, f"{len(rects)} cells with tooltips"
PYEOF
ok render_svg_parses_with_labels $? "$(tail -1 "$TMP/err") $(tail -1 "$TMP/perr")"

"$BIN" render "$t" --layer 0 --head mean --exclude-first --log --cmap magma --dpi 300 -o "$TMP/m.png" 2>"$TMP/err" &&
    "$PY" - "$TMP/m.png" <<'PYEOF' 2>"$TMP/perr"
import struct, sys
b = open(sys.argv[1], "rb").read()
assert b[:8] == b"\x89PNG\r\n\x1a\n"
w, h = struct.unpack(">II", b[16:24])
assert w > 900 and h > 900, (w, h)   # 300 dpi: about 3x the 96-dpi layout
i = b.index(b"pHYs")
ppm = struct.unpack(">I", b[i + 4:i + 8])[0]
assert abs(ppm * 0.0254 - 300) < 0.5, ppm
PYEOF
ok render_png_dpi $? "$(tail -1 "$TMP/err") $(tail -1 "$TMP/perr")"

"$BIN" render "$t" --grid -o "$TMP/g.png" 2>"$TMP/err" && "$BIN" render "$t" --grid -o "$TMP/g.svg" 2>>"$TMP/err" &&
    "$PY" -c "import xml.etree.ElementTree as E,sys; E.parse(sys.argv[1])" "$TMP/g.svg" 2>>"$TMP/err"
ok render_grid $? "$(tail -1 "$TMP/err")"

"$BIN" html "$t" -o "$TMP/v.html" 2>"$TMP/err" && grep -q 'id="av-data"' "$TMP/v.html"
ok html_cli $? "$(tail -1 "$TMP/err")"

# malformed and truncated traces: one clear line, nonzero exit, no output file
size=$(wc -c <"$t")
head -c 5 "$t" >"$TMP/cut5.safetensors"
head -c 100 "$t" >"$TMP/cut100.safetensors"
head -c $((size - 64)) "$t" >"$TMP/cutend.safetensors"
printf 'not a trace at all, just text\n' >"$TMP/text.safetensors"
: >"$TMP/empty.safetensors"
"$PY" -c "
import json,struct,sys
h=json.dumps({'__metadata__':{'format':'other'},'x':{'dtype':'F32','shape':[1],'data_offsets':[0,4]}}).encode()
open(sys.argv[1],'wb').write(struct.pack('<Q',len(h))+h+b'\0'*4)" "$TMP/notrace.safetensors"
for f in cut5 cut100 cutend text empty notrace missing; do
    for cmd in render html; do
        out="$TMP/out-$f.png"
        [ $cmd = html ] && out="$TMP/out-$f.html"
        "$BIN" $cmd "$TMP/$f.safetensors" -o "$out" 2>"$TMP/err"
        rc=$?
        lines=$(wc -l <"$TMP/err")
        if [ $rc -ne 0 ] && [ "$lines" -eq 1 ] && grep -q "attnviz $cmd: .*$f.safetensors" "$TMP/err" && [ ! -e "$out" ]; then
            echo "PASS ${cmd}_rejects_$f"
        else
            echo "FAIL ${cmd}_rejects_$f: rc=$rc, $lines lines: $(head -c 200 "$TMP/err")"
        fi
    done
done

# bad options
"$BIN" render "$t" --head 9 -o "$TMP/x.png" 2>"$TMP/err"
[ $? -ne 0 ] && grep -q "head 9 is out of range: the trace has self heads 0..2" "$TMP/err"
ok render_bad_head $? "$(cat "$TMP/err")"
"$BIN" render "$t" --layer 5 -o "$TMP/x.png" 2>"$TMP/err"
[ $? -ne 0 ] && grep -q "layer 5 is out of range" "$TMP/err"
ok render_bad_layer $? "$(cat "$TMP/err")"
"$BIN" render "$t" -o "$TMP/x.bmp" 2>"$TMP/err"
[ $? -ne 0 ] && grep -q "must end in .png, .svg, .csv or .npy" "$TMP/err"
ok render_bad_extension $? "$(cat "$TMP/err")"
"$BIN" render "$t" --cmap jet -o "$TMP/x.png" 2>"$TMP/err"
[ $? -ne 0 ] && grep -qi "jet" "$TMP/err"
ok render_bad_cmap $? "$(cat "$TMP/err")"
[ ! -e "$TMP/x.png" ] && [ -z "$(ls "$TMP" | grep '\.tmp\.')" ]
ok render_no_partial_files $? "$(ls "$TMP")"

# html --image: only for image traces, only PNG; the page then carries it as image_png_base64
"$BIN" html "$t" --image "$TMP/m.png" -o "$TMP/i.html" 2>"$TMP/err"
[ $? -ne 0 ] && grep -q "no patch_grid metadata" "$TMP/err" && [ ! -e "$TMP/i.html" ]
ok html_image_needs_patch_grid $? "$(cat "$TMP/err")"
"$BIN" import "$TMP/a.npy" --tokens "$TMP/tok.json" --patch-grid 2x3 --prefix-tokens 1 -o "$TMP/img.safetensors" 2>"$TMP/err" &&
    "$BIN" html "$TMP/img.safetensors" --image "$TMP/m.png" -o "$TMP/i.html" 2>>"$TMP/err" &&
    grep -q '"image_png_base64":"iVBORw0KGgo' "$TMP/i.html" &&
    ! "$BIN" html "$TMP/img.safetensors" --image "$TMP/tok.json" -o "$TMP/j.html" 2>>"$TMP/err" && grep -q "not a PNG" "$TMP/err"
ok html_image_embeds_png $? "$(tail -1 "$TMP/err")"
