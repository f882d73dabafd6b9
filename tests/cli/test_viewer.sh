#!/bin/sh
# The standalone HTML viewer: builds pages from numpy-made traces (tests/browser/make_fixtures.py via
# `attnviz import`) and the real stories260K model when ../shared has it, checks the size target, then runs
# the Playwright browser tests (tests/browser/viewer.test.mjs) in Debian's headless chromium.
# Screenshots of every view go to build/screenshots/. Prints PASS/FAIL/SKIP lines.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${ATTNVIZ_BIN:-$ROOT/build/attnviz}
SHARED=${ATTNVIZ_SHARED:-$ROOT/../shared}
PY=/usr/bin/python3
SHOTS=$ROOT/build/screenshots
TMP=$(mktemp -d "${TMPDIR:-/tmp}/attnviz-viewer-XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }
skip() { echo "SKIP $1: $2"; }

if ! "$PY" -c 'import numpy' 2>/dev/null; then
    skip viewer_html "Debian's python3-numpy is missing (make deps)"
    exit 0
fi
if ! "$PY" "$ROOT/tests/browser/make_fixtures.py" "$TMP" --big 2>"$TMP/err"; then
    fail viewer_fixtures "$(tail -1 "$TMP/err")"
    exit 0
fi

# traces and pages
ok=1
imp() { # NAME [extra import args]
    n=$1
    shift
    "$BIN" import "$@" -o "$TMP/$n.safetensors" 2>"$TMP/err" && "$BIN" html "$TMP/$n.safetensors" -o "$TMP/$n.html" 2>>"$TMP/err" ||
        { fail "viewer_html_$n" "$(tail -1 "$TMP/err")"; ok=0; }
}
imp bert "$TMP/bert.npz" --tokens "$TMP/bert_tokens.json"
imp cross "$TMP/cross.npz" --tokens "$TMP/cross_tokens.json"
imp vit "$TMP/vit.npz" --tokens "$TMP/vit_tokens.json" --image "$TMP/image.png"
imp big "$TMP/big.npy" --tokens "$TMP/big_tokens.json"
# the analysis views: a synthetic trace with known head roles and value norms (written by make_fixtures.py),
# and the project's induction model with the roles of its probes (--roles)
"$BIN" html "$TMP/roles.safetensors" -o "$TMP/roles.html" 2>"$TMP/err" || { fail viewer_html_roles "$(tail -1 "$TMP/err")"; ok=0; }
if "$BIN" html "$TMP/roles.safetensors" --view rollout -o "$TMP/roles-rollout.html" 2>"$TMP/err" &&
    grep -q '"view":"rollout"' "$TMP/roles-rollout.html" &&
    ! "$BIN" html "$TMP/roles.safetensors" --view roles -o "$TMP/bad.html" 2>"$TMP/err" &&
    grep -q "heatmap, model, head, image, summary, rollout, norm, steps, attribution, lens, neuron, rows, qkmap, got 'roles'" "$TMP/err"; then
    pass viewer_html_view_option
else
    fail viewer_html_view_option "$(tail -1 "$TMP/err")"
fi
IND="$ROOT/models/induction/induction.bin"
if [ -f "$IND" ]; then
    if "$BIN" run --model "$IND" --text "Xq7 mZp3 vR8k Lw2 Xq7 mZp3 vR8k Lw2" -o "$TMP/induction.safetensors" 2>"$TMP/err" &&
        "$BIN" roles --model "$IND" --json >"$TMP/induction_roles.json" 2>>"$TMP/err" &&
        "$BIN" html "$TMP/induction.safetensors" --roles "$TMP/induction_roles.json" -o "$TMP/induction.html" 2>>"$TMP/err"; then
        pass viewer_html_probe_roles
    else
        fail viewer_html_probe_roles "$(tail -1 "$TMP/err")"
    fi
    # roles of another model are refused with a message naming both shapes
    if "$BIN" html "$TMP/roles.safetensors" --roles "$TMP/induction_roles.json" -o "$TMP/bad.html" 2>"$TMP/err"; then
        fail viewer_html_roles_mismatch "accepted the roles of a 2 x 4 model for a 3 x 5 trace"
    elif grep -q "roles of 2 layers x 4 heads, but the trace's self-attention has 3 x 5" "$TMP/err" && [ ! -e "$TMP/bad.html" ]; then
        pass viewer_html_roles_mismatch
    else
        fail viewer_html_roles_mismatch "unexpected message: $(tail -1 "$TMP/err")"
    fi
else
    skip viewer_html_probe_roles "$IND not found"
fi
model="$SHARED/models/stories260K/stories260K.bin"
if [ -f "$model" ]; then
    if "$BIN" run --model "$model" --text "Once upon a time, Lily saw a big red ball." -o "$TMP/story.safetensors" 2>"$TMP/err" &&
        "$BIN" html "$TMP/story.safetensors" -o "$TMP/story.html" 2>>"$TMP/err"; then
        pass viewer_html_story
    else
        fail viewer_html_story "$(tail -1 "$TMP/err")"
    fi
else
    skip viewer_html_story "$model not found: the browser tests use the synthetic traces only"
fi
# the step view: a numpy-written generation trace, an imported API response, a difference of two traces
if "$PY" "$ROOT/tests/browser/make_steps_fixtures.py" "$TMP" 2>"$TMP/err" &&
    "$BIN" html "$TMP/gen.safetensors" -o "$TMP/gen.html" 2>>"$TMP/err" &&
    "$BIN" import "$TMP/openai.json" -o "$TMP/api.safetensors" 2>>"$TMP/err" &&
    "$BIN" html "$TMP/api.safetensors" -o "$TMP/api.html" 2>>"$TMP/err" &&
    "$BIN" diff "$TMP/a.safetensors" "$TMP/b.safetensors" -o "$TMP/diff.html" >/dev/null 2>>"$TMP/err"; then
    pass viewer_html_steps
else
    fail viewer_html_steps "$(tail -1 "$TMP/err")"
    ok=0
fi
[ $ok = 1 ] && pass viewer_html_synthetic

# pages of the everyday views (tests/browser/everyday.test.mjs): the neuron view (queries/keys kept), a BERT
# sentence pair, a pooled page of a lazy trace with exact rows, and a ViT on a non-square photo
ev_ok=1
ev() { "$@" >/dev/null 2>>"$TMP/everr" || ev_ok=0; }
if [ -f "$IND" ]; then
    ev "$BIN" run --model "$IND" --text "the cat sat on the mat. the cat sat" --keep-qk -o "$TMP/qk.safetensors"
    ev "$BIN" html "$TMP/qk.safetensors" --view neuron --layer 1 --head 2 -o "$TMP/qk.html"
fi
"$PY" -c "
import json;V=json.load(open('$ROOT/tests/fixtures/tiny/bert/config.json'))['vocab_size']
open('$TMP/vocab.txt','w').write('\n'.join(['[PAD]','[UNK]','[CLS]','[SEP]']+['w%d'%i for i in range(4,V)])+'\n')"
ev "$BIN" run --model "$ROOT/tests/fixtures/tiny/bert" --tokenizer "$TMP/vocab.txt" --text "w7 w19 w33 w8" \
    --text-pair "w25 w6 w11" -o "$TMP/pair.safetensors"
ev "$BIN" html "$TMP/pair.safetensors" --view head -o "$TMP/pair.html"
if "$PY" -c 'import torch' 2>/dev/null; then
    ev "$PY" "$ROOT/bench/make_synth_llama.py" --preset tiny --dtype f32 --out "$TMP/synth"
    "$PY" -c "
import json; p='$TMP/synth/config.json'; c=json.load(open(p)); c['max_position_embeddings']=4096; json.dump(c,open(p,'w'))
import random; random.seed(5); json.dump([random.randrange(512) for _ in range(1200)], open('$TMP/lazy_ids.json','w'))"
    ev "$BIN" run --model "$TMP/synth" --ids @"$TMP/lazy_ids.json" --lazy --overview 24 -o "$TMP/lazy.safetensors"
    ev "$BIN" html "$TMP/lazy.safetensors" --rows 1190:1200 --max-mb 1 --precision f16 --layer -1 --head 3 \
        -o "$TMP/lazy.html"
fi
VIT=$SHARED/models/vit-tiny
if [ -d "$VIT" ]; then
    ev "$BIN" run --model "$VIT" --image "$SHARED/images/chelsea.png" -o "$TMP/cat.safetensors"
    ev "$BIN" html "$TMP/cat.safetensors" -o "$TMP/cat.html"
    ev "$BIN" html "$TMP/cat.safetensors" --precision u8 -o "$TMP/cat-u8.html"
    ev "$BIN" html "$TMP/cat.safetensors" --image "$SHARED/images/chelsea.png" -o "$TMP/cat-orig.html"
fi
if [ $ev_ok = 1 ]; then pass viewer_html_everyday_pages; else fail viewer_html_everyday_pages "$(tail -1 "$TMP/everr")"; fi

# size target: a BERT-base-shaped trace (12 layers x 12 heads x 128 tokens) -> at most 4 MiB of HTML, with
# the analysis (head statistics, rollout) embedded
if [ -f "$TMP/bert.html" ]; then
    size=$(wc -c <"$TMP/bert.html")
    "$BIN" html "$TMP/bert.safetensors" --no-analysis -o "$TMP/bert-plain.html" 2>/dev/null &&
        echo "# bert-base-shaped page: $size bytes ($(wc -c <"$TMP/bert-plain.html") without the analysis)"
    if [ "$size" -le 4194304 ]; then pass viewer_bert_html_under_4MiB; else fail viewer_bert_html_under_4MiB "$size bytes"; fi
    if grep -Eq '(src|href)=["'"'"']?(https?:)?//' "$TMP/bert.html"; then
        fail viewer_html_no_external_urls "the page references an external URL"
    else
        pass viewer_html_no_external_urls
    fi
fi

# browser tests
. "$ROOT/tests/browser/ready.sh"
browser_ready viewer_browser "$TMP" || exit 0
BR="$ROOT/tests/browser"
mkdir -p "$SHOTS"
node "$BR/viewer.test.mjs" "$TMP" "$SHOTS"
