#!/bin/sh
# The viewer's query/key map (docs/VIEWER.md, "Q/K map"; src/render/html_qkmap.c, web/qkmap.js): pages of the
# induction model's traces (--keep-qk full, --lazy) and the encoder-decoder demo (lazy: enc, dec, cross), every
# embedded map against numpy (tests/browser/expect_qkmap.py: AttentionViz's normalization + numpy.linalg.eigh
# on the trace's own queries and keys), a page whose budget makes it sample and drop layers (a numpy-made lazy
# trace: tests/browser/make_qkmap_fixture.py), the CLI's refusal, then the
# browser test (tests/browser/qkmap.test.mjs). Prints PASS/FAIL/SKIP lines.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${ATTNVIZ_BIN:-$ROOT/build/attnviz}
PY=/usr/bin/python3
IND=$ROOT/models/induction/induction.bin
DEMO=$ROOT/models/demo-fr-en
EXPECT=$ROOT/tests/browser/expect_qkmap.py
TMP=$(mktemp -d "${TMPDIR:-/tmp}/attnviz-qkmap-XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }

if ! "$PY" -c 'import numpy' 2>/dev/null; then
    echo "SKIP qkmap: Debian's python3-numpy is missing (make deps)"
    exit 0
fi
TEXT="the cat sat on the mat. the cat sat"
LONG="abcdefghijklmnopqrstuvwxyz0123456789 abcdefghijklmnopqrstuvwxyz0123456789 the quick brown fox jumps."
ok=1
run() { "$@" >/dev/null 2>>"$TMP/err" || ok=0; }
run "$BIN" run --model "$IND" --text "$TEXT" --keep-qk -o "$TMP/qk.safetensors"
run "$BIN" html "$TMP/qk.safetensors" --view qkmap --layer 1 --head 2 -o "$TMP/qk.html"
run "$BIN" run --model "$IND" --text "$LONG" --lazy -o "$TMP/lazy.safetensors"
run "$BIN" html "$TMP/lazy.safetensors" -o "$TMP/lazy.html"
run "$PY" "$ROOT/tests/browser/make_qkmap_fixture.py" "$TMP/big.safetensors"
run "$BIN" html "$TMP/big.safetensors" --max-mb 0.5 --layer 5 -o "$TMP/small.html"
run "$BIN" run --model "$DEMO" --text "le chat noir dort sur le tapis ." --target "the black cat sleeps on the mat ." \
    --lazy -o "$TMP/cross.safetensors"
run "$BIN" html "$TMP/cross.safetensors" -o "$TMP/cross.html"
run "$BIN" run --model "$IND" --text "$TEXT" -o "$TMP/plain.safetensors"
run "$BIN" html "$TMP/plain.safetensors" -o "$TMP/plain.html"
if [ $ok = 0 ]; then
    fail qkmap_pages "$(tail -1 "$TMP/err")"
    exit 0
fi
pass qkmap_pages

# every map against numpy: full and lazy traces, a page that samples 64 of 600 tokens a side and keeps 7 of 12
# layers (a numpy-made lazy trace with grouped-query heads and padding keys), an encoder-decoder's three kinds
"$PY" "$EXPECT" check "$TMP/qk.html" "$TMP/qk.safetensors" keep_qk
"$PY" "$EXPECT" check "$TMP/lazy.html" "$TMP/lazy.safetensors" lazy
"$PY" "$EXPECT" check "$TMP/small.html" "$TMP/big.safetensors" sampled_gqa_padding
"$PY" "$EXPECT" check "$TMP/cross.html" "$TMP/cross.safetensors" encdec

# what each page holds: the sampled page's side cap, padding keys left out, its first layer (--layer 5) then the
# layers that fit; the encoder-decoder's kinds; no map (but a note) without queries and keys
if "$PY" -c "
import sys; sys.path.insert(0, '$ROOT/tests/browser'); from expect_qkmap import page_data
m, _ = page_data('$TMP/small.html'); q = m['qkmap']; K = q['kinds']['self']
assert q['side_max'] == 64 and len(K['qpos']) == len(K['kpos']) == 64 and K['n_query'] == 600, q['side_max']
assert max(K['kpos']) < 560 and [e['layer'] for e in K['maps']] == [5, 0, 1, 2, 3, 4, 6], K['maps']
m, _ = page_data('$TMP/lazy.html'); K = m['qkmap']['kinds']['self']
assert len(K['qpos']) == K['n_query'] and [e['layer'] for e in K['maps']] == [0, 1], K['maps']
m, _ = page_data('$TMP/cross.html'); assert sorted(m['qkmap']['kinds']) == ['cross', 'dec', 'enc'], m['qkmap']['kinds'].keys()
m, _ = page_data('$TMP/plain.html'); assert 'qkmap' not in m and '--keep-qk' in m['qkmap_note'], m.get('qkmap_note')
" 2>"$TMP/err"; then
    pass qkmap_page_contents
else
    fail qkmap_page_contents "$(tail -1 "$TMP/err")"
fi

# --view qkmap on a trace without queries and keys: one clear line, nonzero exit, no file
if ! "$BIN" html "$TMP/plain.safetensors" --view qkmap -o "$TMP/bad.html" 2>"$TMP/err" &&
    grep -q 'the Q/K map needs the trace.s queries and keys: run with --keep-qk' "$TMP/err" &&
    [ "$(wc -l <"$TMP/err")" -eq 1 ] && [ ! -e "$TMP/bad.html" ]; then
    pass qkmap_view_refused_without_qk
else
    fail qkmap_view_refused_without_qk "$(cat "$TMP/err")"
fi

. "$ROOT/tests/browser/ready.sh"
browser_ready qkmap_browser "$TMP" || exit 0
mkdir -p "$ROOT/build/screenshots"
(cd "$ROOT/tests/browser" && timeout 300 node qkmap.test.mjs "$TMP" "$ROOT/build/screenshots") ||
    echo "FAIL qkmap_browser: the browser test exited with status $?"
