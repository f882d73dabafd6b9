#!/bin/sh
# attnviz serve end to end, with curl against the real binary on a free loopback port (--port 0) and the real
# stories260K model: a run, rows and tiles compared (numpy) with a full trace written by `attnviz run`, the
# trace download, error cases (bad JSON, huge body, too many tokens, unknown ids, path traversal, wrong
# methods) with the server still up, a bounded wrk load test on 127.0.0.1 with zero failed requests and a flat
# RSS, serving a saved trace, the --host warning, and a clean exit on SIGTERM. Prints PASS/FAIL/SKIP lines.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${ATTNVIZ_BIN:-$ROOT/build/attnviz}
SHARED=${ATTNVIZ_SHARED:-$ROOT/../shared}
PY=/usr/bin/python3
M=$SHARED/models/stories260K
TMP=$(mktemp -d "${TMPDIR:-/tmp}/attnviz-serve-XXXXXX")
PID=""
# stop_server [SIGNAL]: signals the server and waits for it (SIGKILL after 20 s); STOP_RC = its exit status
# or "hung"
stop_server() {
    STOP_RC=""
    [ -n "$PID" ] || return 0
    kill -"${1:-TERM}" "$PID" 2>/dev/null
    i=0
    while kill -0 "$PID" 2>/dev/null && [ $i -lt 200 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    if kill -0 "$PID" 2>/dev/null; then
        kill -KILL "$PID" 2>/dev/null
        wait "$PID" 2>/dev/null
        STOP_RC=hung
    else
        wait "$PID" 2>/dev/null
        STOP_RC=$?
    fi
    PID=""
}
trap 'stop_server KILL; rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }
skip() { echo "SKIP $1: $2"; }

if [ ! -f "$M/stories260K.bin" ]; then
    skip serve_cli "$M not found (../shared is needed for the real model)"
    exit 0
fi
if ! command -v curl >/dev/null 2>&1 || ! "$PY" -c 'import numpy' 2>/dev/null; then
    skip serve_cli "curl and python3-numpy are needed (make deps)"
    exit 0
fi

# start_server ARGS...: starts attnviz serve on a free port; sets PID, PORT, URL. Returns 1 on failure.
start_server() {
    rm -f "$TMP/serve.err"
    "$BIN" serve "$@" --port 0 2>"$TMP/serve.err" &
    PID=$!
    i=0
    while [ $i -lt 300 ]; do
        PORT=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$TMP/serve.err" 2>/dev/null)
        [ -n "$PORT" ] && break
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
        i=$((i + 1))
    done
    URL="http://127.0.0.1:$PORT"
    [ -n "$PORT" ]
}

# req METHOD PATH [curl args...]: body to $TMP/body, prints the status code
req() {
    method=$1 path=$2
    shift 2
    curl -s --path-as-is -o "$TMP/body" -w '%{http_code}' -X "$method" "$@" "$URL$path"
}

alive() { [ "$(req GET /api/info)" = 200 ]; }

# json FILE EXPR: evaluates a Python expression on the parsed JSON in j
json() { "$PY" -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"; }

TEXT="Once upon a time, there was a little girl named Lily. She loved to play outside in the park."
if ! start_server --model "$M/stories260K.bin" --tokenizer "$M/tok512.bin" --max-tokens 64 --max-body 65536 --threads 2; then
    fail serve_start "$(tail -2 "$TMP/serve.err")"
    exit 0
fi
pass serve_start

# ---- a run, compared with a full trace file from `attnviz run` ----
"$BIN" run --model "$M/stories260K.bin" --tokenizer "$M/tok512.bin" --text "$TEXT" -o "$TMP/full.safetensors" 2>"$TMP/run.err" ||
    fail serve_reference_run "$(tail -1 "$TMP/run.err")"
code=$(req POST /api/run -H 'Content-Type: application/json' --data-binary "{\"text\": \"$TEXT\"}")
ID=$(json "$TMP/body" "j.get('id', '')")
status=""
if [ "$code" = 202 ]; then
    for i in $(seq 1 200); do
        req GET "/api/runs/$ID" >/dev/null
        status=$(json "$TMP/body" "j['status']")
        [ "$status" = done ] || [ "$status" = failed ] && break
        sleep 0.05
    done
fi
if [ "$status" = done ]; then pass serve_run; else fail serve_run "POST /api/run: $code, status '$status': $(cat "$TMP/body")"; fi

ok=1
req GET "/api/traces/$ID" >/dev/null
cp "$TMP/body" "$TMP/meta.json"
for spec in "1 3 17" "4 mean 20" "0 max 5" "2 7 0"; do
    set -- $spec
    [ "$(req GET "/api/traces/$ID/row?layer=$1&head=$2&q=$3")" = 200 ] || ok=0
    cp "$TMP/body" "$TMP/row_$1_$2_$3.json"
done
[ "$(req GET "/api/traces/$ID/tile?layer=3&head=5&q0=2&q1=25&k0=1&k1=24&rows=5&cols=4&pool=mean&format=json")" = 200 ] || ok=0
cp "$TMP/body" "$TMP/tile_mean.json"
[ "$(req GET "/api/traces/$ID/tile?layer=1&head=max&rows=7&cols=6&pool=max&format=json")" = 200 ] || ok=0
cp "$TMP/body" "$TMP/tile_max.json"
[ "$(req GET "/api/traces/$ID/tile?layer=2&head=1&rows=4&cols=4")" = 200 ] || ok=0
cp "$TMP/body" "$TMP/tile.f32"
if [ $ok = 1 ] && "$PY" - "$TMP" "$ROOT/scripts" >"$TMP/cmp.out" 2>&1 <<'EOF'; then
import glob, json, os, sys
import numpy as np
tmp = sys.argv[1]
sys.path.insert(0, sys.argv[2])
import safetensors_np
t, meta = safetensors_np.read(os.path.join(tmp, "full.safetensors"))
m = json.load(open(os.path.join(tmp, "meta.json")))
assert m["n_tokens"] == len(json.loads(meta["tokens"])), "token count"
assert m["tokens"] == json.loads(meta["tokens"]), "tokens"
def heads(layer, head):
    a = t["attn.self.%d" % layer].astype(np.float64)
    return a.mean(0) if head == "mean" else a.max(0) if head == "max" else a[int(head)]
def pool(a, q0, q1, k0, k1, rows, cols, how):
    out = np.zeros((rows, cols))
    for r in range(rows):
        for c in range(cols):
            b = a[q0 + r * (q1 - q0) // rows:q0 + (r + 1) * (q1 - q0) // rows, k0 + c * (k1 - k0) // cols:k0 + (c + 1) * (k1 - k0) // cols]
            out[r, c] = b.mean() if how == "mean" else b.max()
    return out
worst = 0.0
for f in glob.glob(os.path.join(tmp, "row_*.json")):
    _, layer, head, q = os.path.basename(f)[:-5].split("_")
    got = np.array(json.load(open(f))["values"])
    worst = max(worst, np.abs(got - heads(int(layer), head)[int(q)]).max())
T = m["n_tokens"]
j = json.load(open(os.path.join(tmp, "tile_mean.json")))
worst = max(worst, np.abs(np.array(j["values"]).reshape(5, 4) - pool(heads(3, 5), 2, 25, 1, 24, 5, 4, "mean")).max())
j = json.load(open(os.path.join(tmp, "tile_max.json")))
worst = max(worst, np.abs(np.array(j["values"]).reshape(7, 6) - pool(heads(1, "max"), 0, T, 0, T, 7, 6, "max")).max())
b = np.fromfile(os.path.join(tmp, "tile.f32"), "<f4").reshape(4, 4)
worst = max(worst, np.abs(b - pool(heads(2, 1), 0, T, 0, T, 4, 4, "max")).max())
print("max difference %.3g" % worst)
assert worst < 1e-5, "lazy rows/tiles differ from the full trace file by %g" % worst
EOF
    pass serve_rows_tiles_match_trace_file
else
    fail serve_rows_tiles_match_trace_file "$(tail -1 "$TMP/cmp.out")"
fi

code=$(req GET "/api/traces/$ID/file")
if [ "$code" = 200 ] && mv "$TMP/body" "$TMP/dl.safetensors" &&
    "$PY" -c "import sys; sys.path.insert(0, sys.argv[2]); import safetensors_np as s; t, m = s.read(sys.argv[1]); assert m['lazy'] == '1' and 'q.0' in t and 'k.4' in t" \
        "$TMP/dl.safetensors" "$ROOT/scripts" 2>"$TMP/dl.err"; then
    pass serve_trace_download
else
    fail serve_trace_download "$code $(tail -1 "$TMP/dl.err")"
fi

# ---- errors: each a 4xx JSON error, the server still up after each ----
head -c 200000 /dev/zero | tr '\0' 'a' >"$TMP/huge"
long=""
for i in $(seq 1 40); do long="$long and the dog ran"; done
ok=1
check() { # EXPECTED_CODE DESCRIPTION METHOD PATH [curl args]
    want=$1 what=$2
    shift 2
    got=$(req "$@")
    cp "$TMP/body" "$TMP/last"
    if [ "$got" != "$want" ] || ! json "$TMP/body" "j['error']" >/dev/null 2>&1; then
        fail "serve_error_$what" "got $got, expected $want: $(head -c 200 "$TMP/body")"
        ok=0
    elif grep -q 'root:' "$TMP/body"; then
        fail "serve_error_$what" "a file leaked"
        ok=0
    fi
    alive || { fail "serve_error_$what" "server down"; ok=0; }
}
J='Content-Type: application/json'
check 400 bad_json POST /api/run -H "$J" --data-binary '{"text": "unterminated'
check 400 not_object POST /api/run -H "$J" --data-binary '"just a string"'
check 413 huge_body POST /api/run -H "$J" --data-binary "@$TMP/huge"
check 413 too_many_tokens POST /api/run -H "$J" --data-binary "{\"text\": \"$long\"}"
grep -q 'at most 64 tokens' "$TMP/last" || { fail serve_error_too_many_tokens_message "$(cat "$TMP/last")"; ok=0; }
check 415 content_type POST /api/run --data-binary '{"text": "hi"}'
check 422 image_on_text_model POST /api/run -H "$J" --data-binary '{"image": "data:image/png;base64,AAAA"}'
check 404 unknown_trace GET /api/traces/r12345
check 404 unknown_run GET /api/runs/zzz
check 400 bad_layer GET "/api/traces/$ID/row?layer=77&head=0&q=0"
check 400 bad_query GET "/api/traces/$ID/row?layer=0&head=0&q=abc"
check 400 bad_pool GET "/api/traces/$ID/tile?layer=0&head=0&pool=sum"
check 404 traversal_dots GET /../../etc/passwd
check 404 traversal_encoded GET /%2e%2e/%2e%2e/etc/passwd
check 404 traversal_slash GET /..%2f..%2fetc%2fpasswd
check 404 traversal_api GET /api/../../etc/passwd
check 404 unknown_path GET /etc/passwd
check 405 wrong_method_get_run GET /api/run
check 405 wrong_method_delete DELETE "/api/traces/$ID"
check 405 wrong_method_post_static POST /serve.html
[ $ok = 1 ] && pass serve_errors_answered_server_up

# ---- bounded load on loopback: wrk for a fixed few seconds, zero failures, memory flat ----
rss() { awk '/^VmRSS/ {print $2}' "/proc/$PID/status"; }
if command -v wrk >/dev/null 2>&1; then
    cat >"$TMP/load.lua" <<EOF
local paths = {
  "/api/traces/$ID/tile?layer=0&head=0&format=f32",
  "/api/traces/$ID/tile?layer=4&head=mean&rows=16&cols=16&pool=mean",
  "/api/traces/$ID/row?layer=2&head=3&q=20&format=f32",
  "/api/traces/$ID/row?layer=1&head=max&q=9",
  "/api/runs/$ID",
  "/api/info",
  "/",
  "/zoom.js",
}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1])
end
EOF
    wrk -t2 -c8 -d2s -s "$TMP/load.lua" "$URL/" >"$TMP/wrk0.txt" 2>&1 # warm-up: caches, connection threads
    r0=$(rss)
    wrk -t2 -c8 -d3s -s "$TMP/load.lua" "$URL/" >"$TMP/wrk1.txt" 2>&1
    r1=$(rss)
    wrk -t2 -c8 -d3s -s "$TMP/load.lua" "$URL/" >"$TMP/wrk2.txt" 2>&1
    r2=$(rss)
    n1=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$TMP/wrk1.txt")
    n2=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$TMP/wrk2.txt")
    bad=$(cat "$TMP/wrk1.txt" "$TMP/wrk2.txt" | grep -E 'Non-2xx|Socket errors' | head -2 | tr '\n' ' ')
    echo "# wrk: $n1 + $n2 requests in 2 x 3 s ($(sed -n 's/^Requests\/sec: *//p' "$TMP/wrk2.txt") req/s), RSS ${r0} -> ${r1} -> ${r2} KiB"
    if [ -n "$n1" ] && [ -n "$n2" ] && [ "$n1" -gt 0 ] && [ -z "$bad" ]; then
        pass serve_load_zero_failures
    else
        fail serve_load_zero_failures "${bad:-no requests counted}"
    fi
    # flat: the second round grows RSS by less than 8 MiB, and load as a whole by less than 32 MiB
    if grep -q __asan_init "$BIN" 2>/dev/null; then
        skip serve_load_memory_flat "AddressSanitizer build: its quarantine holds freed memory, RSS is not meaningful"
    elif [ $((r2 - r1)) -lt 8192 ] && [ $((r2 - r0)) -lt 32768 ]; then
        pass serve_load_memory_flat
    else
        fail serve_load_memory_flat "RSS ${r0} -> ${r1} -> ${r2} KiB"
    fi
    alive && pass serve_up_after_load || fail serve_up_after_load "no answer"
else
    skip serve_load "wrk is not installed (make deps)"
fi

# ---- the --host warning (printed before the model loads; the model path is bogus, so nothing is bound) ----
timeout 20 "$BIN" serve --model "$TMP/no-such-model.bin" --host 0.0.0.0 --port "$PORT" 2>"$TMP/host.err"
hrc=$?
if grep -q 'warning: listening on 0.0.0.0' "$TMP/host.err" && [ $hrc -ne 0 ] && grep -q 'no-such-model' "$TMP/host.err"; then
    pass serve_host_warning
else
    fail serve_host_warning "rc $hrc: $(tail -2 "$TMP/host.err")"
fi

# ---- clean shutdown on SIGTERM ----
stop_server TERM
if [ "$STOP_RC" = 0 ] && grep -q 'stopped' "$TMP/serve.err"; then
    pass serve_sigterm_clean_exit
else
    fail serve_sigterm_clean_exit "exit $STOP_RC: $(tail -1 "$TMP/serve.err")"
fi

# ---- serving a saved trace ----
if start_server "$TMP/full.safetensors"; then
    ok=1
    [ "$(req GET /api/info)" = 200 ] && [ "$(json "$TMP/body" "j['mode']")" = trace ] || ok=0
    req GET /api/traces >/dev/null
    T0=$(json "$TMP/body" "j[0]['id']")
    [ "$(req GET "/api/traces/$T0/row?layer=1&head=3&q=17")" = 200 ] &&
        "$PY" -c "import json,sys; a=json.load(open(sys.argv[1]))['values']; b=json.load(open(sys.argv[2]))['values']; assert len(a) == len(b) and max(abs(x-y) for x,y in zip(a,b)) < 1e-5" \
            "$TMP/body" "$TMP/row_1_3_17.json" 2>/dev/null || ok=0
    [ "$(req POST /api/run -H "$J" --data-binary '{"text": "hi"}')" = 409 ] || ok=0
    [ "$(req GET "/api/traces/$T0/viewer")" = 200 ] && grep -q 'av-data' "$TMP/body" || ok=0
    if [ $ok = 1 ]; then pass serve_trace_file; else fail serve_trace_file "$(head -c 200 "$TMP/body")"; fi
    stop_server INT
    [ "$STOP_RC" = 0 ] && pass serve_sigint_clean_exit || fail serve_sigint_clean_exit "exit $STOP_RC"
else
    fail serve_trace_file "$(tail -2 "$TMP/serve.err")"
fi

# ---- usage errors ----
"$BIN" serve >/dev/null 2>"$TMP/u.err" && fail serve_usage "no arguments accepted" ||
    { grep -q 'nothing to serve' "$TMP/u.err" && pass serve_usage || fail serve_usage "$(cat "$TMP/u.err")"; }
