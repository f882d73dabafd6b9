#!/bin/sh
# The Python package (python/attnviz, docs/PYTHON.md): pip installs it offline into a temp directory (with the
# libattnviz.so it bundles), runs the pytest suite on the installed package (tests/python), executes the notebook
# tests/python/viewers.ipynb headless (nbclient + ipykernel) and renders its outputs in Debian's chromium
# (tests/browser/notebook.test.mjs). Prints PASS/FAIL/SKIP lines; a missing Debian package gives a SKIP line.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${ATTNVIZ_BIN:-$ROOT/build/attnviz}
LIB=$ROOT/build/libattnviz.so.0
PY=/usr/bin/python3
SHOTS=$ROOT/build/screenshots
TMP=$(mktemp -d "${TMPDIR:-/tmp}/attnviz-python-XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }
skip() { echo "SKIP $1: $2"; }
has() { "$PY" -c "import $1" 2>/dev/null; }

if [ ! -f "$LIB" ]; then
    skip python "$LIB is not built (make)"
    exit 0
fi
if ! has numpy; then
    skip python "Debian's python3-numpy is missing (make deps)"
    exit 0
fi

# 1. pip install from a copy of python/ (nothing is written into the repository), offline
SITE=$ROOT/python
INSTALLED=0
if ! "$PY" -m pip --version >/dev/null 2>&1 || ! has setuptools; then
    skip python_pip_install "Debian's python3-pip / python3-setuptools are missing (make deps): testing the build tree"
else
    cp -r "$ROOT/python" "$TMP/src" && rm -rf "$TMP/src/build" "$TMP/src"/*.egg-info
    if ATTNVIZ_LIB="$LIB" "$PY" -m pip install --no-build-isolation --no-deps --no-index --target "$TMP/site" \
        "$TMP/src" >"$TMP/pip.log" 2>&1 && [ -f "$TMP/site/attnviz/libattnviz.so.0" ]; then
        pass python_pip_install
        SITE=$TMP/site
        INSTALLED=1
    else
        fail python_pip_install "$(grep -v '^WARNING' "$TMP/pip.log" | tail -1)"
    fi
fi

# 2. the API tests, on the installed package
if ! has pytest; then
    skip python_api "Debian's python3-pytest is missing (make deps)"
else
    (cd "$TMP" && AV_RESULT_LINES="$TMP/lines" AV_INSTALLED=$INSTALLED PYTHONPATH="$SITE" ATTNVIZ_LIB= \
        timeout 900 "$PY" -m pytest -q -p no:cacheprovider "$ROOT/tests/python" >"$TMP/pytest.log" 2>&1)
    rc=$?
    touch "$TMP/lines"
    cat "$TMP/lines"
    if grep -q '^FAIL ' "$TMP/lines"; then
        sed -n '/^=* FAILURES =*$/,$p' "$TMP/pytest.log" | head -60 | sed 's/^/# /'
    elif [ $rc -ne 0 ]; then
        fail python_pytest "pytest exited with status $rc: $(tail -1 "$TMP/pytest.log")"
    fi
fi

# 3. the notebook, executed headless, then its outputs in chromium
if ! has nbclient || ! has ipykernel; then
    skip python_notebook "Debian's python3-nbclient / python3-ipykernel are missing (make deps)"
    exit 0
fi
NB=$TMP/nb
mkdir -p "$NB"
"$BIN" run --model "$ROOT/models/induction/induction.bin" --text "Xq7 mZp3 vR8k Lw2 Xq7 mZp3 vR8k Lw2" \
    -o "$NB/a.safetensors" 2>"$TMP/err" &&
    "$BIN" run --model "$ROOT/models/demo-fr-en" --text "le chat noir" --target "the black cat" \
        -o "$NB/b.safetensors" 2>>"$TMP/err" >/dev/null &&
    "$BIN" html "$NB/a.safetensors" -o "$NB/a.html" 2>>"$TMP/err" &&
    "$BIN" html "$NB/b.safetensors" -o "$NB/b.html" 2>>"$TMP/err" ||
    { fail python_notebook "$(tail -1 "$TMP/err")"; exit 0; }
cat "$NB/a.html" "$NB/b.html" >"$NB/inline.html" # two standalone pages pasted into one document
"$PY" - "$NB" <<'PYEOF' || { fail python_notebook "cannot write the arrays"; exit 0; }
import json, sys
import numpy as np
rng = np.random.default_rng(7)
x = rng.normal(size=(3, 4, 6, 6)) * 2
a = np.exp(x - x.max(-1, keepdims=True))
np.savez(sys.argv[1] + "/arrays.npz", *(a / a.sum(-1, keepdims=True)).astype(np.float32))
json.dump(["[CLS]", "the", "cat", "sat", "down", "[SEP]"], open(sys.argv[1] + "/tokens.json", "w"))
PYEOF
PYDEVD_DISABLE_FILE_VALIDATION=1 AV_NB_TRACE_A="$NB/a.safetensors" AV_NB_TRACE_B="$NB/b.safetensors" AV_NB_ARRAYS="$NB/arrays.npz" \
    AV_NB_TOKENS="$NB/tokens.json" PYTHONPATH="$SITE" ATTNVIZ_LIB= \
    timeout 600 "$PY" "$ROOT/tests/python/run_notebook.py" "$ROOT/tests/python/viewers.ipynb" "$NB" || exit 0

. "$ROOT/tests/browser/ready.sh"
browser_ready python_notebook_browser "$TMP" || exit 0
mkdir -p "$SHOTS"
node "$ROOT/tests/browser/notebook.test.mjs" "$NB" "$SHOTS"
