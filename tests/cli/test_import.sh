#!/bin/sh
# attnviz import round trips of arrays written by real numpy (Debian's /usr/bin/python3): .npy per layer in
# float32 / float16 / float64, .npz from np.savez and np.savez_compressed, safetensors; the trace is read
# back with numpy and compared with the arrays. Malformed inputs must fail with a message naming the problem.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${ATTNVIZ_BIN:-$ROOT/build/attnviz}
PY=/usr/bin/python3
TMP=$(mktemp -d "${TMPDIR:-/tmp}/attnviz-import-XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM

if ! "$PY" -c 'import numpy' 2>/dev/null; then
    echo "SKIP import_numpy_round_trip: Debian's python3-numpy is missing (make deps)"
    exit 0
fi
"$PY" - "$TMP" "$ROOT/scripts" <<'PYEOF' || { echo "FAIL import_fixtures: numpy could not write the fixtures"; exit 0; }
import json, sys
import numpy as np
out = sys.argv[1]
sys.path.insert(0, sys.argv[2])
import safetensors_np
rng = np.random.default_rng(7)
x = rng.standard_normal((3, 4, 6, 6)) * 2
a = np.exp(x - x.max(-1, keepdims=True)); a /= a.sum(-1, keepdims=True)
np.save(f"{out}/ref.npy", a)
np.save(f"{out}/l0.npy", a[0].astype(np.float32))
np.save(f"{out}/l1.npy", a[1][None].astype(np.float16))   # [1, H, T, T] as output_attentions gives
np.save(f"{out}/l2.npy", a[2])                              # float64
np.savez(f"{out}/plain.npz", *[a[i].astype(np.float32) for i in range(3)])
np.savez_compressed(f"{out}/comp.npz", attentions=a.astype(np.float32))
safetensors_np.write(f"{out}/st.safetensors", {"attentions": a[:, None].astype(np.float32), "input_ids": np.arange(6, dtype=np.int64)})
json.dump(["<s>", "H\u00e9", "llo", " w\u00f6r", "ld", "\u6771"], open(f"{out}/tok.json", "w"))
bad = a.copy(); bad[1, 2, 4, :] *= 0.5
np.savez(f"{out}/badrow.npz", attentions=bad.astype(np.float32))
np.save(f"{out}/ints.npy", np.zeros((2, 6, 6), np.int32))
open(f"{out}/trunc.npz", "wb").write(open(f"{out}/plain.npz", "rb").read()[:700])
json.dump(["a", "b"], open(f"{out}/short.json", "w"))
PYEOF

# verify TRACE DTYPE_TOL: the trace holds ref.npy (as float32) and the tokens
verify() {
    "$PY" - "$1" "$2" "$TMP" "$ROOT/scripts" <<'PYEOF'
import json, sys
import numpy as np
trace, tol, tmp = sys.argv[1], float(sys.argv[2]), sys.argv[3]
sys.path.insert(0, sys.argv[4])
import safetensors_np
t, meta = safetensors_np.read(trace)
ref = np.load(f"{tmp}/ref.npy")
assert meta["format"] == "attnviz-trace" and meta["version"] == "1", meta
assert json.loads(meta["tokens"]) == json.load(open(f"{tmp}/tok.json")), meta["tokens"]
for l in range(3):
    got = np.asarray(t[f"attn.self.{l}"], np.float64)
    assert got.shape == (4, 6, 6), got.shape
    err = np.abs(got - ref[l]).max()
    assert err <= tol, f"layer {l}: max error {err} > {tol}"
assert "attn.self.3" not in t
PYEOF
}

check() { # NAME TOL ARGS...: import ARGS and verify against ref.npy
    name=$1 tol=$2
    shift 2
    if "$BIN" import "$@" --tokens "$TMP/tok.json" -o "$TMP/$name.safetensors" 2>"$TMP/err" &&
        verify "$TMP/$name.safetensors" "$tol" 2>"$TMP/verr"; then
        echo "PASS import_$name"
    else
        echo "FAIL import_$name: $(tail -1 "$TMP/err") $(tail -1 "$TMP/verr" 2>/dev/null)"
    fi
}
# per-layer files: f32 exact, f16 within half precision (layer 1), f64 rounded to f32
check npy_per_layer 5e-4 "$TMP/l0.npy" "$TMP/l1.npy" "$TMP/l2.npy"
check npz_savez 1e-7 "$TMP/plain.npz"
check npz_compressed 1e-7 "$TMP/comp.npz"
check safetensors 1e-7 "$TMP/st.safetensors"
# f16 storage in the trace
if "$BIN" import "$TMP/comp.npz" --tokens "$TMP/tok.json" --dtype f16 -o "$TMP/f16.safetensors" 2>"$TMP/err" &&
    verify "$TMP/f16.safetensors" 5e-4 2>"$TMP/verr" &&
    "$PY" -c "import json,struct,sys; b=open(sys.argv[1],'rb').read(); h=json.loads(b[8:8+struct.unpack('<Q',b[:8])[0]]); sys.exit(h['attn.self.0']['dtype']!='F16')" "$TMP/f16.safetensors"; then
    echo "PASS import_store_f16"
else
    echo "FAIL import_store_f16: $(tail -1 "$TMP/err") $(tail -1 "$TMP/verr")"
fi

# expect_error NAME PATTERN ARGS...: the import fails, and stderr has one line matching PATTERN
expect_error() {
    name=$1 pat=$2
    shift 2
    if "$BIN" import "$@" -o "$TMP/x.safetensors" 2>"$TMP/err"; then
        echo "FAIL import_error_$name: succeeded"
    elif [ "$(wc -l <"$TMP/err")" -ge 1 ] && grep -q -- "$pat" "$TMP/err" && [ ! -e "$TMP/x.safetensors" ]; then
        echo "PASS import_error_$name"
    else
        echo "FAIL import_error_$name: got '$(tail -1 "$TMP/err")', want /$pat/"
    fi
}
expect_error row_sum "badrow.npz:attentions (layer 1 of its 3) head 2 query 4: row sums to 0.5" \
    "$TMP/badrow.npz" --tokens "$TMP/tok.json"
expect_error token_count "6 queries x 6 keys but the tokens give 2 x 2" "$TMP/comp.npz" --tokens "$TMP/short.json"
expect_error int_dtype "unsupported dtype '<i4'" "$TMP/ints.npy"
expect_error truncated_npz "trunc.npz" "$TMP/trunc.npz"
expect_error missing_file "nope.npy" "$TMP/nope.npy"
expect_error no_input "no input arrays" --tokens "$TMP/tok.json"
expect_error bad_grid "patch grid '7' must look like 14x14" "$TMP/comp.npz" --patch-grid 7
if "$BIN" import "$TMP/badrow.npz" --tokens "$TMP/tok.json" --no-check -o "$TMP/nc.safetensors" 2>/dev/null; then
    echo "PASS import_no_check"
else
    echo "FAIL import_no_check: --no-check did not accept unnormalized rows"
fi
