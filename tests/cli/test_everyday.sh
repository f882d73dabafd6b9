#!/bin/sh
# Everyday use (issue 21): every command on a lazy trace (info, show, render, html, stats), the one option
# vocabulary (negative layers, --head min, --exclude-first, --rows/--cols, CSV/.npy export, reductions over
# layers), input of any size (--text-file, --text -, --text @FILE), progress, helpful errors (a model file
# inside its directory, an image given as a model, a directory with vocab.json + merges.txt, empty input, a
# failed generate printing nothing), --keep-qk, --text-pair, and the image an image model saw. Numbers are
# checked against numpy computing them from the trace file's own queries and keys (softmax(scale q.k)), and
# the image against Debian's PIL. Each check fails on attnviz before these changes.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${ATTNVIZ_BIN:-$ROOT/build/attnviz}
SHARED=${ATTNVIZ_SHARED:-$ROOT/../shared}
PY=/usr/bin/python3
TMP=$(mktemp -d "${TMPDIR:-/tmp}/attnviz-everyday-XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM
ok() { if [ "$2" = 0 ]; then echo "PASS $1"; else echo "FAIL $1: $3"; fi; }
export PYTHONPATH="$ROOT/scripts"

if ! "$PY" -c 'import numpy, torch' 2>/dev/null; then
    echo "SKIP everyday_cli: Debian's python3-numpy / python3-torch are missing (make deps)"
    exit 0
fi

# ---- a lazy trace of a small random Llama (bench/make_synth_llama.py), 1200 tokens, a 24-cell overview ----
M=$TMP/synth
"$PY" "$ROOT/bench/make_synth_llama.py" --preset tiny --dtype f32 --out "$M" >/dev/null 2>"$TMP/err" &&
    "$PY" - "$M/config.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1])); c["max_position_embeddings"] = 4096; json.dump(c, open(sys.argv[1], "w"))
EOF
"$PY" -c "import json,random;random.seed(3);print(json.dumps([random.randrange(512) for _ in range(1200)]))" >"$TMP/ids.json"
L=$TMP/lazy.safetensors
"$BIN" run --model "$M" --ids @"$TMP/ids.json" --lazy --overview 24 -o "$L" >/dev/null 2>"$TMP/err"
ok everyday_lazy_run $? "$(tail -1 "$TMP/err")"

"$BIN" info "$L" >"$TMP/out" 2>"$TMP/err"
rc=$?
[ $rc = 0 ] && grep -q 'lazy: queries/keys of 16 dims stored' "$TMP/out" && grep -q 'overview: max and mean over 24 x 24' "$TMP/out" &&
    grep -q 'as matrices' "$TMP/out"
ok everyday_info_lazy $? "rc $rc: $(tail -3 "$TMP/out") $(cat "$TMP/err")"

"$BIN" show "$L" --layer -1 --head 1 --colors none --width 90 --height 30 >"$TMP/out" 2>"$TMP/err"
rc=$?
[ $rc = 0 ] && grep -q 'layer 1 · head 1 · max-pooled' "$TMP/out"
ok everyday_show_lazy_overview $? "rc $rc: $(head -2 "$TMP/out") $(cat "$TMP/err")"

"$BIN" show "$L" --layer 0 --head min --rows 1199: --colors none --width 90 --height 12 >"$TMP/out" 2>"$TMP/err"
rc=$?
[ $rc = 0 ] && grep -q 'min of 4 heads · queries 1199:1200 × keys 0:1200' "$TMP/out"
ok everyday_show_lazy_window $? "rc $rc: $(head -1 "$TMP/out") $(cat "$TMP/err")"

# exact rows of a window as .npy and CSV, against numpy's softmax(scale q.k) from the file's q/k
"$BIN" render "$L" --layer -1 --head 2 --rows 600:610 --cols 550:620 -o "$TMP/win.npy" 2>"$TMP/err" &&
    "$BIN" render "$L" --layer -1 --head 2 --rows 600:610 --cols 550:620 --exclude-first -o "$TMP/win.csv" 2>>"$TMP/err" &&
    "$BIN" render "$L" --layer mean --head max -o "$TMP/layers.npy" --cells 60 2>>"$TMP/err" &&
    "$PY" - "$L" "$TMP" <<'EOF' 2>"$TMP/perr"
import csv, json, sys
import numpy as np
import safetensors_np as st
t, meta = st.read(sys.argv[1])
lz = json.loads(meta["lazy_attn"])["self"]
def probs(l, h):
    q, k = t["q.%d" % l][h], t["k.%d" % l][h // (t["q.0"].shape[0] // t["k.0"].shape[0])]
    s = (q.astype(np.float64) @ k.T.astype(np.float64)) * lz["scale"][l]
    s[np.triu_indices(len(s), 1)] = -np.inf
    p = np.exp(s - s.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True)
P = probs(1, 2)
win = np.load(sys.argv[2] + "/win.npy")
assert win.shape == (10, 70) and np.abs(win - P[600:610, 550:620]).max() < 1e-5, np.abs(win - P[600:610, 550:620]).max()
rows = list(csv.reader(open(sys.argv[2] + "/win.csv")))
assert rows[0][0] == "query\\key" and len(rows) == 11 and len(rows[1]) == 71, (rows[0][:3], len(rows))
R = P[600:610, 1:] / P[600:610, 1:].sum(1, keepdims=True)  # first token excluded, rows renormalized
got = np.array([[float(x) for x in r[1:]] for r in rows[1:]])
assert np.abs(got - R[:, 549:619]).max() < 1e-5, np.abs(got - R[:, 549:619]).max()
# the max over heads max-pooled to 60 x 60 cells of 20 tokens, then the mean over layers (layers are reduced
# after pooling, docs/VIEWER.md)
pool = lambda m: m.reshape(60, 20, 60, 20).max(3).max(1)
want = np.mean([pool(np.max([probs(l, h) for h in range(4)], 0)) for l in range(2)], 0)
got = np.load(sys.argv[2] + "/layers.npy")
assert got.shape == (60, 60) and np.abs(got - want).max() < 1e-5, np.abs(got - want).max()
EOF
ok everyday_render_window_csv_npy_match_numpy $? "$(tail -1 "$TMP/err") $(tail -1 "$TMP/perr")"

"$BIN" render "$L" --layer -1 --head mean -o "$TMP/lazy.png" 2>"$TMP/err" && [ "$(head -c 4 "$TMP/lazy.png" | od -An -tx1 | tr -d ' \n')" = 89504e47 ] &&
    "$BIN" render "$L" --grid -o "$TMP/grid.svg" 2>>"$TMP/err"
ok everyday_render_lazy_png_grid $? "$(tail -1 "$TMP/err")"

"$BIN" html "$L" --rows 1190:1200 --max-mb 1 --layer -1 --head 3 -o "$TMP/lazy.html" 2>"$TMP/err" &&
    grep -q '"pooled":{"self":{"rows":24,"cols":24,"n_query":1200' "$TMP/lazy.html" &&
    grep -q '"rows":\[{"kind":"self","layer":1,"q0":1190,"nq":10' "$TMP/lazy.html" &&
    grep -q '"state":{"layer":1,"head":3}' "$TMP/lazy.html"
ok everyday_html_lazy_pooled_rows_start $? "$(tail -1 "$TMP/err")"

# stats streams rows: entropy of layer 0 head 1 against numpy; the mean over heads as one row
"$BIN" stats "$L" --csv --layer 0 >"$TMP/stats.csv" 2>"$TMP/err" &&
    "$BIN" stats "$L" --head mean --layer -1 >"$TMP/mean.txt" 2>>"$TMP/err" && grep -qE '^ +1 +mean ' "$TMP/mean.txt" &&
    "$PY" - "$L" "$TMP/stats.csv" <<'EOF' 2>"$TMP/perr"
import csv, json, sys
import numpy as np
import safetensors_np as st
t, meta = st.read(sys.argv[1])
sc = json.loads(meta["lazy_attn"])["self"]["scale"][0]
q, k = t["q.0"][1].astype(np.float64), t["k.0"][0].astype(np.float64)
s = q @ k.T * sc
s[np.triu_indices(len(s), 1)] = -np.inf
p = np.exp(s - s.max(1, keepdims=True)); p /= p.sum(1, keepdims=True)
ent = -(np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0)).sum(1)[1:].mean()  # row 0 left out (causal)
rows = {(r["layer"], r["head"]): r for r in csv.DictReader(open(sys.argv[2]))}
got = float(rows[("0", "1")]["entropy"])
assert len(rows) == 4 and abs(got - ent) < 1e-4, (got, ent)
EOF
ok everyday_stats_lazy_streams $? "$(tail -1 "$TMP/err") $(tail -1 "$TMP/perr")"

# ---- input of any size ----
IND=$ROOT/models/induction/induction.bin
printf 'the cat sat on the mat' >"$TMP/text.txt"
"$BIN" run --model "$IND" --text "the cat sat on the mat" -o "$TMP/a.safetensors" >/dev/null 2>&1
"$BIN" info "$TMP/a.safetensors" --tokens | grep -E '^ +[0-9]+ ' >"$TMP/want"
same=0
for how in file stdin at; do
    case $how in
    file) "$BIN" run --model "$IND" --text-file "$TMP/text.txt" -o "$TMP/b.safetensors" >/dev/null 2>"$TMP/err" ;;
    stdin) "$BIN" run --model "$IND" --text - -o "$TMP/b.safetensors" <"$TMP/text.txt" >/dev/null 2>"$TMP/err" ;;
    at) "$BIN" run --model "$IND" --text @"$TMP/text.txt" -o "$TMP/b.safetensors" >/dev/null 2>"$TMP/err" ;;
    esac
    "$BIN" info "$TMP/b.safetensors" --tokens 2>/dev/null | grep -E '^ +[0-9]+ ' | cmp -s - "$TMP/want" || same=1
done
ok everyday_text_file_stdin_at $same "the tokens of --text-file / --text - / --text @FILE differ from --text: $(cat "$TMP/err")"

# attribute and lens read their text the same way: --text @FILE and --text-file give --text's 24 tokens
"$BIN" lens --model "$IND" --text @"$TMP/text.txt" -o "$TMP/l.safetensors" >/dev/null 2>"$TMP/err" &&
    "$BIN" info "$TMP/l.safetensors" --tokens | grep -E '^ +[0-9]+ ' | cmp -s - "$TMP/want" &&
    "$BIN" attribute --model "$IND" --text-file "$TMP/text.txt" --target " on the" --method occlusion \
        -o "$TMP/attr.safetensors" >"$TMP/out" 2>>"$TMP/err" &&
    grep -q "^source: 24 tokens" "$TMP/out"
ok everyday_attribute_lens_text_file $? "$(tail -2 "$TMP/err")"

# "@@..." is the literal text "@...", the same tokens as a file holding "@cat"; a missing @FILE says what @ means
printf '@cat' >"$TMP/at.txt"
"$BIN" run --model "$IND" --text @@cat -o "$TMP/c.safetensors" >/dev/null 2>"$TMP/err" &&
    "$BIN" run --model "$IND" --text-file "$TMP/at.txt" -o "$TMP/c2.safetensors" >/dev/null 2>>"$TMP/err" &&
    [ "$("$BIN" info "$TMP/c.safetensors" --tokens | grep -cE '^ +[0-9]+ ')" = 6 ] &&
    [ "$("$BIN" info "$TMP/c.safetensors" --tokens | grep -E '^ +[0-9]+ ')" = "$("$BIN" info "$TMP/c2.safetensors" --tokens | grep -E '^ +[0-9]+ ')" ] &&
    ! "$BIN" run --model "$IND" --text @"$TMP/missing.txt" -o "$TMP/c3.safetensors" >/dev/null 2>"$TMP/err2" &&
    grep -q "@FILE reads FILE; write '@@...' for a text that starts with '@'" "$TMP/err2"
ok everyday_text_at_and_double_at $? "$(cat "$TMP/err" "$TMP/err2" 2>/dev/null | tail -2)"

# a 426 KB text: read from a file (no argv limit); it is longer than this model's context, and says so
"$PY" -c "print('the cat sat on the mat. ' * 17750)" >"$TMP/big.txt"
"$BIN" run --model "$IND" --text-file "$TMP/big.txt" -o "$TMP/d.safetensors" >/dev/null 2>"$TMP/err"
rc=$?
[ $rc = 1 ] && grep -q "context window" "$TMP/err"
ok everyday_big_text_file $? "rc $rc: $(cat "$TMP/err")"

"$BIN" run --model "$IND" --text "" -o "$TMP/e.safetensors" >/dev/null 2>"$TMP/err"
rc=$?
[ $rc = 1 ] && grep -q "empty input" "$TMP/err" && [ ! -e "$TMP/e.safetensors" ]
ok everyday_empty_text_is_an_error $? "rc $rc: $(cat "$TMP/err")"

"$BIN" run --model "$IND" --text "the cat sat" --progress -o "$TMP/f.safetensors" >/dev/null 2>"$TMP/err"
rc=$?
[ $rc = 0 ] && grep -qE 'layer 2/2, 13/13 tokens 100%' "$TMP/err"
ok everyday_run_progress $? "rc $rc: $(tr '\r' '\n' <"$TMP/err" | tail -2)"

# ---- errors that help ----
"$BIN" generate --model "$ROOT/tests/fixtures/tiny/mistral" --prompt "hello there" --steps 3 >"$TMP/out" 2>"$TMP/err"
rc=$?
[ $rc = 1 ] && [ ! -s "$TMP/out" ] && grep -q tokenizer "$TMP/err"
ok everyday_failed_generate_prints_nothing $? "rc $rc, stdout '$(cat "$TMP/out")'"

"$BIN" run --model "$ROOT/tests/fixtures/tiny/bert/model.safetensors" --text hi >/dev/null 2>"$TMP/err"
rc=$?
[ $rc = 1 ] && grep -q "is a file inside the model directory .*: pass the directory" "$TMP/err"
ok everyday_model_file_in_directory $? "rc $rc: $(cat "$TMP/err")"

"$BIN" run --model "$TMP/lazy.png" --text hi >/dev/null 2>"$TMP/err"
rc=$?
[ $rc = 1 ] && grep -q "is a PNG image, not a model" "$TMP/err"
ok everyday_png_as_model $? "rc $rc: $(cat "$TMP/err")"

# a model directory with vocab.json + merges.txt: found as --tokenizer DIR finds it
cp -r "$ROOT/tests/fixtures/tiny/gpt2" "$TMP/gpt2" && rm -f "$TMP/gpt2/reference.safetensors"
"$PY" - "$TMP/gpt2" <<'EOF'
import json, sys
V = json.load(open(sys.argv[1] + "/config.json"))["vocab_size"]
# byte-level BPE: the first 32 printable byte symbols, then merges of "a" + letters
syms = [chr(c) for c in range(ord("a"), ord("a") + 26)] + ["Ġ", "!", ".", ",", "?", "-"]
merges = ["a " + c for c in "bcdefghijklmnop"][: V - len(syms)]
vocab = {s: i for i, s in enumerate(syms + [m.replace(" ", "") for m in merges])}
json.dump(vocab, open(sys.argv[1] + "/vocab.json", "w"))
open(sys.argv[1] + "/merges.txt", "w").write("#version: 0.2\n" + "\n".join(merges) + "\n")
EOF
"$BIN" run --model "$TMP/gpt2" --text "ab cad" -o "$TMP/g.safetensors" >/dev/null 2>"$TMP/err" &&
    "$BIN" info "$TMP/g.safetensors" | grep -q '^text  *ab   c ad$'
ok everyday_model_dir_vocab_json_merges $? "$(cat "$TMP/err") $("$BIN" info "$TMP/g.safetensors" 2>&1 | tail -1)"

# ---- the neuron view's data, sentence pairs ----
"$BIN" run --model "$IND" --text "the cat sat" --keep-qk -o "$TMP/qk.safetensors" >/dev/null 2>"$TMP/err" &&
    "$BIN" info "$TMP/qk.safetensors" | grep -q 'queries/keys kept (neuron view)' &&
    "$PY" - "$TMP/qk.safetensors" <<'EOF' 2>"$TMP/perr"
import json, sys
import numpy as np
import safetensors_np as st
t, meta = st.read(sys.argv[1])
sc = json.loads(meta["lazy_attn"])["self"]["scale"][1]
H, G = t["q.1"].shape[0], t["k.1"].shape[0]
for h in range(H):
    s = t["q.1"][h].astype(np.float64) @ t["k.1"][h // (H // G)].T.astype(np.float64) * sc
    s[np.triu_indices(len(s), 1)] = -np.inf
    p = np.exp(s - s.max(1, keepdims=True)); p /= p.sum(1, keepdims=True)
    assert np.abs(p - t["attn.self.1"][h]).max() < 1e-5
assert meta["qk"] == "1" and "lazy" not in meta
EOF
ok everyday_keep_qk $? "$(cat "$TMP/err") $(tail -1 "$TMP/perr")"

"$PY" -c "
import json;V=json.load(open('$ROOT/tests/fixtures/tiny/bert/config.json'))['vocab_size']
open('$TMP/vocab.txt','w').write('\n'.join(['[PAD]','[UNK]','[CLS]','[SEP]']+['w%d'%i for i in range(4,V)])+'\n')"
"$BIN" run --model "$ROOT/tests/fixtures/tiny/bert" --tokenizer "$TMP/vocab.txt" --text "w7 w19 w33" \
    --text-pair "w25 w6" -o "$TMP/pair.safetensors" >/dev/null 2>"$TMP/err" &&
    "$PY" - "$TMP/pair.safetensors" <<'EOF' 2>"$TMP/perr"
import json, sys
import safetensors_np as st
t, meta = st.read(sys.argv[1])
assert json.loads(meta["tokens"]) == ["[CLS]", "w7", "w19", "w33", "[SEP]", "w25", "w6", "[SEP]"], meta["tokens"]
assert json.loads(meta["token_type_ids"]) == [0] * 5 + [1] * 3 and meta["sentence_b_start"] == "5"
EOF
ok everyday_text_pair $? "$(cat "$TMP/err") $(tail -1 "$TMP/perr")"

# ---- the image a ViT saw: the 8-bit crop equals PIL's (timm's resize + center crop) ----
VIT=$SHARED/models/vit-tiny
if [ -d "$VIT" ] && "$PY" -c 'import PIL' 2>/dev/null; then
    "$BIN" run --model "$VIT" --image "$SHARED/images/chelsea.png" -o "$TMP/cat.safetensors" >/dev/null 2>"$TMP/err" &&
        "$PY" - "$TMP/cat.safetensors" "$SHARED/images/chelsea.png" <<'EOF' 2>"$TMP/perr"
import json, math, sys
import numpy as np
from PIL import Image
import safetensors_np as st
t, meta = st.read(sys.argv[1])
im = Image.open(sys.argv[2]).convert("RGB")
W, H = im.size
short = math.floor(224 / 0.9)  # vit-tiny: timm crop_pct 0.9, bicubic
w, h = (short, int(short * H / W)) if W <= H else (int(short * W / H), short)
r = im.resize((w, h), Image.BICUBIC)
left, top = int(round((w - 224) / 2.0)), int(round((h - 224) / 2.0))
want = np.asarray(r.crop((left, top, left + 224, top + 224))).transpose(2, 0, 1)
assert t["image"].shape == (3, 224, 224) and (t["image"] == want).all(), np.abs(t["image"].astype(int) - want).max()
c = json.loads(meta["image_crop"])
assert c["width"] == W and c["height"] == H
assert abs(c["box"][0] - left * W / w) < 1e-6 and abs(c["box"][3] - (top + 224) * H / h) < 1e-6, c
EOF
    ok everyday_image_crop_equals_pil $? "$(cat "$TMP/err") $(tail -1 "$TMP/perr")"
else
    echo "SKIP everyday_image_crop_equals_pil: ../shared/models/vit-tiny or python3-pil missing"
fi
