#!/bin/sh
# Text-to-image from the command line (models/demo-t2i): `attnviz run` writes image F32 [3, H, W] in [0, 1],
# daam.words F32 [S, H, W] in [0, 1] and prompt_tokens (read back with numpy); `render --word` and the
# all-token grid write PNG/SVG whose image tile holds the trace's image pixel for pixel (PIL); `show --word`
# prints the overlays and the caveat; bad words, ranges and options fail with one clear line.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${ATTNVIZ_BIN:-$ROOT/build/attnviz}
PY=/usr/bin/python3
MODEL=$ROOT/models/demo-t2i
TMP=$(mktemp -d "${TMPDIR:-/tmp}/attnviz-t2i-XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }
skip() { echo "SKIP $1: $2"; }

if [ ! -f "$MODEL/model.safetensors" ]; then
    skip t2i_cli "models/demo-t2i is missing"
    exit 0
fi
if ! "$PY" -c 'import numpy, PIL' 2>/dev/null; then
    skip t2i_cli "Debian's python3-numpy / python3-pil are missing (make deps)"
    exit 0
fi
export PYTHONPATH="$ROOT/scripts"
T=$TMP/t.safetensors

if "$BIN" run --model "$MODEL" --text "a red circle above a blue square" --seed 1 --steps 25 -o "$T" \
    >"$TMP/run.out" 2>"$TMP/run.err" &&
    "$PY" - "$T" "$MODEL/config.json" <<'PYEOF'; then
import json, sys
import numpy as np
import safetensors_np as st
t, meta = st.read(sys.argv[1])
img, words, raw = t["image"], t["daam.words"], t["daam.raw"]
toks = json.loads(meta["prompt_tokens"])
assert toks == ["[CLS]", "a", "red", "circle", "above", "a", "blue", "square", "[SEP]"], toks
assert img.dtype == np.float32 and img.shape == (3, 32, 32) and img.min() >= 0 and img.max() <= 1
assert words.shape == (len(toks), 32, 32) and abs(words.min()) < 1e-6 and abs(words.max() - 1) < 1e-6
cfg = json.load(open(sys.argv[2]))
L, H = cfg["denoiser_layers"], cfg["num_attention_heads"]
assert raw.shape == (25, L, H, len(toks) * 64)
# each patch's attention over the prompt sums to 1 (softmax over the keys), per step, layer and head
s = raw.reshape(25, L, H, len(toks), 64).sum(axis=3)
assert np.abs(s - 1).max() < 1e-4, np.abs(s - 1).max()
assert meta["seed"] == "1" and meta["steps"] == "25" and meta["patch_grid"] == "8x8"
PYEOF
    pass t2i_run_trace
else
    fail t2i_run_trace "$(tail -3 "$TMP/run.err")"
fi

# the figure's first tile is the generated image: CSS box (12, 30)-(140, 158), 4 CSS px per pixel, 1.5625 px
# per CSS px at 150 dpi
if "$BIN" render "$T" --word red -o "$TMP/red.png" 2>"$TMP/render.err" &&
    "$BIN" render "$T" -o "$TMP/all.svg" 2>>"$TMP/render.err" &&
    "$PY" - "$T" "$TMP/red.png" "$TMP/all.svg" <<'PYEOF'; then
import sys
import numpy as np
import safetensors_np as st
from PIL import Image
from xml.etree import ElementTree
t, _ = st.read(sys.argv[1])
img = np.rint(np.clip(t["image"], 0, 1) * 255).astype(int).transpose(1, 2, 0)  # (32, 32, 3)
png = np.asarray(Image.open(sys.argv[2]).convert("RGB")).astype(int)
s = 150 / 96
for y in range(32):
    for x in range(32):
        px = png[int((30 + 4 * y + 2) * s), int((12 + 4 * x + 2) * s)]
        assert np.abs(px - img[y, x]).max() <= 1, (y, x, px, img[y, x])
svg = open(sys.argv[3], encoding="utf-8").read()
ElementTree.fromstring(svg)
for word in ("red", "circle", "square", "descriptive, not explanatory"):
    assert word in svg, word
PYEOF
    pass t2i_render_word
else
    fail t2i_render_word "$(tail -3 "$TMP/render.err")"
fi

out=$("$BIN" show "$T" --word blue --colors 256 2>&1)
case "$out" in
*"descriptive, not explanatory"*) pass t2i_show_word ;;
*) fail t2i_show_word "no caveat line in: $(printf '%s' "$out" | tail -1)" ;;
esac

ok=1
expect_error() { # expect_error NAME PATTERN COMMAND...: nonzero exit and PATTERN on stderr
    name=$1 pattern=$2
    shift 2
    if "$@" >/dev/null 2>"$TMP/err"; then
        echo "  $name: succeeded" >&2
        ok=0
    elif ! grep -q "$pattern" "$TMP/err"; then
        echo "  $name: $(cat "$TMP/err")" >&2
        ok=0
    fi
}
expect_error word "not a prompt token" "$BIN" render "$T" --word banana -o "$TMP/x.png"
expect_error range "half-open" "$BIN" render "$T" --step-range 5:5 -o "$TMP/x.png"
expect_error outside "outside" "$BIN" render "$T" --layer-range 0:7 -o "$TMP/x.png"
expect_error long "at most 16" "$BIN" run --model "$MODEL" --text "a red circle a red circle a red circle a red circle a red circle" -o "$TMP/x.st"
expect_error steps "steps must be" "$BIN" run --model "$MODEL" --text "a red circle" --steps 5000 -o "$TMP/x.st"
expect_error seed "unsigned" "$BIN" run --model "$MODEL" --text "a red circle" --seed -1 -o "$TMP/x.st"
expect_error image "takes --text" "$BIN" run --model "$MODEL" --image "$ROOT/README.md" -o "$TMP/x.st"
[ ! -e "$TMP/x.png" ] && [ ! -e "$TMP/x.st" ] || ok=0
if [ $ok = 1 ]; then pass t2i_cli_errors; else fail t2i_cli_errors "see the lines above"; fi

# DAAM faithfulness of the C engine's maps on held-out captions (models/demo-t2i/heldout.tsv, the first
# IOU_N): for each color/shape word of an object scripts/t2i/detect.py finds, the IoU of the word's map (> 0.4)
# with that object's mask, and with the OTHER named object's mask. The mean IoU must reach IOU_FLOOR and beat
# the other object's by IOU_MARGIN (paired over the words whose caption's two objects were both found): a map
# of the wrong word, of no word in particular or an empty map fails. On these 12 the shipped model scores mean
# 0.087 (36 words) and named minus other 0.038 (28 words); the first demo-t2i (a mixing text encoder) scored
# 0.033 and 0.008 and fails both. MODEL_CARD.md has the numbers on all 200 held-out captions.
IOU_N=12
IOU_FLOOR=${IOU_FLOOR:-0.06}
IOU_MARGIN=${IOU_MARGIN:-0.02}
head -n $IOU_N "$MODEL/heldout.tsv" >"$TMP/iou.tsv"
ok=1
while IFS="$(printf '\t')" read -r caption seed; do
    n=$((${n:-0} + 1))
    "$BIN" run --model "$MODEL" --text "$caption" --seed "$seed" --steps 25 -o "$TMP/iou$n.safetensors" \
        >/dev/null 2>>"$TMP/iou.err" || ok=0
done <"$TMP/iou.tsv"
if [ $ok = 1 ] && "$PY" - "$TMP" "$IOU_N" "$IOU_FLOOR" "$IOU_MARGIN" <"$TMP/iou.tsv" >"$TMP/iou.out" 2>&1 <<'PYEOF'; then
import json, os, sys
sys.path.insert(0, os.path.join(os.environ["PYTHONPATH"], "t2i"))
import numpy as np
import evaluate
import safetensors_np as st
tmp, n, floor, margin = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
words = []
for i in range(1, n + 1):
    t, meta = st.read(os.path.join(tmp, "iou%d.safetensors" % i))
    N, L, H, _ = t["daam.raw"].shape
    S = len(json.loads(meta["prompt_tokens"]))
    probs = np.zeros((N, L, H, 65, S), np.float32)
    probs[:, :, :, 1:, :] = t["daam.raw"].reshape(N, L, H, S, 64).transpose(0, 1, 2, 4, 3)
    words += evaluate.score_one(t["image"], probs, meta["prompt"], 8, 32)["words"]
iou = np.array([w["iou"] for w in words])
pairs = np.array([(w["iou"], w["iou_other"]) for w in words if w["iou_other"] is not None]).reshape(-1, 2)
gap = float((pairs[:, 0] - pairs[:, 1]).mean()) if len(pairs) else -1.0
print("DAAM IoU over %d words of found objects: mean %.3f (floor %.3f); named minus other object over %d "
      "words: %.3f (margin %.3f)" % (len(iou), iou.mean() if len(iou) else 0, floor, len(pairs), gap, margin))
assert len(iou) >= n and iou.mean() >= floor and len(pairs) >= n // 2 and gap >= margin
PYEOF
    pass t2i_daam_iou_floor
else
    fail t2i_daam_iou_floor "$(grep "DAAM IoU" "$TMP/iou.out" 2>/dev/null) $(tail -1 "$TMP/iou.out" 2>/dev/null) $(grep -v "^attnviz run:" "$TMP/iou.err" 2>/dev/null | tail -1)"
fi

# the viewer's DAAM tab in headless chromium (tests/browser/daam.test.mjs)
. "$ROOT/tests/browser/ready.sh"
if "$BIN" html "$T" -o "$TMP/t2i.html" >/dev/null 2>"$TMP/html.err"; then
    if browser_ready viewer_daam "$TMP"; then
        node "$ROOT/tests/browser/daam.test.mjs" "$TMP/t2i.html" "$T"
    fi
else
    fail viewer_daam "$(tail -1 "$TMP/html.err")"
fi
