#!/bin/sh
# The live page of `attnviz serve` in Debian's headless chromium (Playwright, tests/browser/serve.test.mjs):
# starts the server with the real stories260K model on a free loopback port, runs the browser test, always
# stops the server. Screenshots go to build/screenshots/serve_*.png. Prints PASS/FAIL/SKIP lines.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${ATTNVIZ_BIN:-$ROOT/build/attnviz}
SHARED=${ATTNVIZ_SHARED:-$ROOT/../shared}
M=$SHARED/models/stories260K
SHOTS=$ROOT/build/screenshots
BR=$ROOT/tests/browser
TMP=$(mktemp -d "${TMPDIR:-/tmp}/attnviz-serve-browser-XXXXXX")
PID=""
trap '[ -n "$PID" ] && kill -KILL "$PID" 2>/dev/null; rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM

skip() { echo "SKIP $1: $2"; }

if [ ! -f "$M/stories260K.bin" ]; then
    skip serve_browser "$M not found (../shared is needed for the real model)"
    exit 0
fi
. "$ROOT/tests/browser/ready.sh"
browser_ready serve_browser "$TMP" || exit 0

"$BIN" serve --model "$M/stories260K.bin" --tokenizer "$M/tok512.bin" --port 0 --threads 2 2>"$TMP/serve.err" &
PID=$!
PORT=""
i=0
while [ -z "$PORT" ] && [ $i -lt 100 ] && kill -0 "$PID" 2>/dev/null; do
    sleep 0.1
    PORT=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$TMP/serve.err" 2>/dev/null)
    i=$((i + 1))
done
if [ -z "$PORT" ]; then
    echo "FAIL serve_browser_start: $(tail -2 "$TMP/serve.err")"
    exit 0
fi
mkdir -p "$SHOTS"
timeout 120 node "$BR/serve.test.mjs" "http://127.0.0.1:$PORT" "$SHOTS"
rc=$?
[ $rc -eq 124 ] && echo "FAIL serve_browser: timed out after 120 s"
kill -0 "$PID" 2>/dev/null || echo "FAIL serve_browser_server_up: the server exited during the browser test"
kill -TERM "$PID" 2>/dev/null
i=0
while kill -0 "$PID" 2>/dev/null && [ $i -lt 200 ]; do
    sleep 0.1
    i=$((i + 1))
done
exit 0
