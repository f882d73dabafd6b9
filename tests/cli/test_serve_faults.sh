#!/bin/sh
# attnviz serve under faults, against the real binary on loopback only, bounded in time (~25 s) and in counts:
# slow-header clients (slowloris) from one address and from many, a request flood, oversized headers, query
# strings, bodies and JSON, path traversal, bad methods, cross-site requests, malformed JSON, huge numbers in
# parameters and garbage on the wire; every answer must be a 4xx (or 503), never a crash or a hang, and the
# server must answer normally afterwards. With ../shared, 16 parallel viewer requests on a larger trace must
# cost one page build, not sixteen. The server runs the project's own induction model (models/induction).
# Prints PASS/FAIL/SKIP lines.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${ATTNVIZ_BIN:-$ROOT/build/attnviz}
SHARED=${ATTNVIZ_SHARED:-$ROOT/../shared}
PY=/usr/bin/python3
TMP=$(mktemp -d "${TMPDIR:-/tmp}/attnviz-faults-XXXXXX")
PID=""
stop_server() {
    [ -n "$PID" ] || return 0
    kill -TERM "$PID" 2>/dev/null
    i=0
    while kill -0 "$PID" 2>/dev/null && [ $i -lt 100 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    kill -KILL "$PID" 2>/dev/null
    wait "$PID" 2>/dev/null
    PID=""
}
trap 'stop_server; rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM

if [ ! -x "$PY" ]; then
    echo "SKIP serve_faults: /usr/bin/python3 is needed (make deps)"
    exit 0
fi

# start_server ARGS...: attnviz serve on a free loopback port; sets PID and PORT
start_server() {
    rm -f "$TMP/serve.err"
    "$BIN" serve "$@" --port 0 2>"$TMP/serve.err" &
    PID=$!
    PORT=""
    i=0
    while [ -z "$PORT" ] && [ $i -lt 100 ] && kill -0 "$PID" 2>/dev/null; do
        sleep 0.1
        PORT=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$TMP/serve.err" 2>/dev/null)
        i=$((i + 1))
    done
    [ -n "$PORT" ]
}

if ! start_server --model "$ROOT/models/induction/induction.bin" --max-connections 24 --max-per-ip 8 \
    --request-timeout 2 --timeout 30 --max-body 65536 --threads 1; then
    echo "FAIL serve_faults_start: $(tail -2 "$TMP/serve.err")"
    exit 0
fi

timeout 120 "$PY" - "$PORT" "$PID" <<'EOF'
import json, socket, sys, threading, time

PORT, PID = int(sys.argv[1]), int(sys.argv[2])
DEADLINE = 2.0  # --request-timeout

def ok(name): print("PASS serve_fault_" + name, flush=True)
def bad(name, why): print("FAIL serve_fault_%s: %s" % (name, why), flush=True)

def conn(src="127.0.0.1", timeout=5.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect(("127.0.0.1", PORT))
    return s

def raw(data, src="127.0.0.1", timeout=5.0):
    """Sends bytes, reads the answer until close; returns (status or None, head, body)."""
    try:
        s = conn(src, timeout)
    except OSError:
        return None, "", b""
    out = b""
    try:
        s.sendall(data)
    except OSError:
        pass  # the server may answer (413) and close before reading everything
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    except OSError:
        pass
    s.close()
    head, _, body = out.partition(b"\r\n\r\n")
    head = head.decode("latin-1")
    try:
        status = int(head.split(" ", 2)[1])
    except (IndexError, ValueError):
        status = None
    return status, head, body

def req(method, path, body=None, headers=(), src="127.0.0.1"):
    h = "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n" % (method, path, PORT)
    for k in headers:
        h += k + "\r\n"
    data = h.encode("latin-1")
    if body is not None:
        data += b"Content-Length: %d\r\n" % len(body)
    data += b"\r\n" + (body or b"")
    return raw(data, src)

def alive():
    return req("GET", "/api/info")[0] == 200

def rss_kib():
    with open("/proc/%d/status" % PID) as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1])
    return 0

# ---- slowloris from one address: more connections than the caps, one header byte every 0.25 s ----
slow, head = [], b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 64
for i in range(30):  # above --max-connections 24
    try:
        slow.append(conn())
    except OSError:
        pass
t0 = time.time()
served_other, step = None, 0
while time.time() - t0 < DEADLINE + 2.0:
    for s in slow:
        try:
            s.send(head[step % len(head):step % len(head) + 1])
        except OSError:
            pass
    if step == 2:
        t1 = time.time()
        st = req("GET", "/api/info", src="127.0.0.2")[0]
        served_other = (st, time.time() - t1)
    step += 1
    time.sleep(0.25)
still_open = 0
for s in slow:
    try:
        s.setblocking(False)
        still_open += s.recv(1) != b""  # b"" = closed by the server
    except BlockingIOError:
        still_open += 1
    except OSError:
        pass
    s.close()
if served_other and served_other[0] == 200 and served_other[1] < 1.0:
    ok("slowloris_other_client_served")
else:
    bad("slowloris_other_client_served", "another address got %s during the attack" % (served_other,))
if still_open == 0:
    ok("slowloris_cut_at_deadline")
else:
    bad("slowloris_cut_at_deadline", "%d slow connections still open after %.1f s" % (still_open, DEADLINE + 2))

# ---- slowloris from many addresses filling every slot: the lockout ends at the deadline ----
slow = []
for a in range(1, 6):
    for i in range(8):
        try:
            slow.append(conn("127.0.0.%d" % (10 + a)))
        except OSError:
            pass
t0, served_after = time.time(), None
while time.time() - t0 < DEADLINE + 3.0 and served_after is None:
    for s in slow:
        try:
            s.send(b"G")
        except OSError:
            pass
    if req("GET", "/api/info", src="127.0.0.3")[0] == 200:
        served_after = time.time() - t0
    time.sleep(0.25)
for s in slow:
    s.close()
if served_after is not None and served_after <= DEADLINE + 1.5:
    ok("slowloris_all_slots_lockout_bounded")
else:
    bad("slowloris_all_slots_lockout_bounded", "a new client was served after %s s" % served_after)

# ---- a flood of short requests from several addresses, in a bounded time ----
counts, lock = {}, threading.Lock()
def flood(k):
    for i in range(25):
        path = ["/api/info", "/", "/zoom.js", "/api/traces", "/nope"][i % 5]
        st = req("GET", path, src="127.0.0.%d" % (20 + k % 6))[0]
        with lock:
            counts[st] = counts.get(st, 0) + 1
r0 = rss_kib()
th = [threading.Thread(target=flood, args=(k,)) for k in range(24)]
t0 = time.time()
for t in th: t.start()
for t in th: t.join(30)
unexpected = {k: v for k, v in counts.items() if k not in (200, 404, 503, None)}
print("# flood: %d requests in %.1f s: %s; RSS %d -> %d KiB" % (sum(counts.values()), time.time() - t0, counts, r0, rss_kib()))
if not unexpected and counts.get(200, 0) > 0 and alive():
    ok("flood_answered_server_up")
else:
    bad("flood_answered_server_up", "statuses %s" % counts)

# ---- oversized, malformed, hostile requests: each a 4xx/503, the server up after each ----
J = ("Content-Type: application/json",)
big_json_ids = json.dumps({"ids": [1] * 20000}).encode()
deep = b"[" * 5000 + b"]" * 5000
cases = [
    ("header_100k", ("GET", "/api/info", None, ("X-Big: " + "a" * 100000,))),
    ("many_headers", ("GET", "/api/info", None, tuple("X-H%d: v" % i for i in range(3000)))),
    ("query_100k", ("GET", "/api/traces?x=" + "a" * 100000, None, ())),
    ("url_path_100k", ("GET", "/" + "a" * 100000, None, ())),
    ("body_over_limit", ("POST", "/api/run", b"{\"text\": \"" + b"a" * 200000 + b"\"}", J)),
    ("json_ids_over_max_tokens", ("POST", "/api/run", big_json_ids, J)),
    ("json_nested_5000", ("POST", "/api/run", deep, J)),
    ("json_malformed", ("POST", "/api/run", b"{\"text\": \"a\",,}", J)),
    ("json_not_utf8", ("POST", "/api/run", b"{\"text\": \"\xff\xfe\"}", J)),
    ("json_huge_int_id", ("POST", "/api/run", b"{\"ids\": [184467440737095516160000]}", J)),
    ("json_float_id", ("POST", "/api/run", b"{\"ids\": [1e300]}", J)),
    ("json_wrong_type", ("POST", "/api/run", b"{\"text\": [1, 2]}", J)),
    ("no_content_type", ("POST", "/api/run", b"{\"text\": \"a\"}", ())),
    ("traversal_dots", ("GET", "/../../etc/passwd", None, ())),
    ("traversal_encoded", ("GET", "/%2e%2e/%2e%2e/etc/passwd", None, ())),
    ("traversal_encoded_slash", ("GET", "/..%2f..%2fetc%2fpasswd", None, ())),
    ("traversal_api", ("GET", "/api/traces/..%2f..%2fetc%2fpasswd/file", None, ())),
    ("traversal_backslash", ("GET", "/..\\..\\etc\\passwd", None, ())),
    ("method_trace", ("TRACE", "/", None, ())),
    ("method_delete", ("DELETE", "/api/info", None, ())),
    ("method_unknown", ("FROB", "/api/run", None, ())),
    ("method_put_run", ("PUT", "/api/run", b"{}", J)),
    ("cross_site_origin_run", ("POST", "/api/run", b"{\"text\": \"a\"}", J + ("Origin: http://evil.example",))),
    ("cross_site_origin_read", ("GET", "/api/traces", None, ("Origin: http://localhost:1",))),
    ("cross_site_fetch_site", ("GET", "/api/info", None, ("Sec-Fetch-Site: cross-site",))),
    ("foreign_host", ("GET", "/api/info", None, ("Host: attacker.example",))),
]
for k, v in [("layer", "1e400"), ("layer", "99999999999999999999999"), ("layer", "-0x1"), ("head", "NaN"),
             ("q", "18446744073709551617"), ("rows", "2147483648")]:
    p = {"layer": "0", "head": "0", "q": "0", "rows": "2"}
    p[k] = v
    cases.append(("number_%s_%s" % (k, v), ("GET", "/api/traces/TID/%s?%s" % (
        "row" if k != "rows" else "tile", "&".join("%s=%s" % kv for kv in p.items())), None, ())))

# a finished run to point the number cases at
st, _, body = req("POST", "/api/run", json.dumps({"text": "abcabcabc"}).encode(), J)
tid = json.loads(body or b"{}").get("id", "none") if st == 202 else "none"
for i in range(100):
    if b"\"done\"" in req("GET", "/api/runs/" + tid)[2]:
        break
    time.sleep(0.05)
failures = []
for name, (m, path, body, hdrs) in cases:
    path = path.replace("TID", tid)
    if any(h.startswith("Host:") for h in hdrs):
        st, head, resp = raw(("%s %s HTTP/1.0\r\n%s\r\n\r\n" % (m, path, hdrs[0])).encode())
    else:
        st, head, resp = req(m, path, body, hdrs)
    good = st is not None and (400 <= st < 500 or st == 503) and b"root:" not in resp
    if not good:
        failures.append("%s: %s %s" % (name, st, resp[:120]))
    if not alive():
        failures.append("%s: server down afterwards" % name)
        break
print("# %d hostile requests, statuses checked" % len(cases))
if failures:
    bad("hostile_requests_4xx_server_up", "; ".join(failures[:6]))
else:
    ok("hostile_requests_4xx_server_up")

# garbage on the wire, a half request then close, a request line without a version
for junk in (b"\x00\x01\x02\xff" * 100, b"GET /api/info HTTP/1.1\r\nHost: 12", b"GET /\r\n\r\n", b"\r\n" * 1000):
    raw(junk, timeout=3)
if alive():
    ok("garbage_server_up")
else:
    bad("garbage_server_up", "the server does not answer")
EOF
rc=$?
[ $rc -eq 124 ] && echo "FAIL serve_faults: timed out after 120 s"
kill -0 "$PID" 2>/dev/null || echo "FAIL serve_faults_server_alive: the server exited ($(tail -1 "$TMP/serve.err"))"
stop_server

# ---- 16 parallel viewer requests on a ~10 MB trace: one page build, inside the budget ----
M=$SHARED/models/stories260K
if [ ! -f "$M/stories260K.bin" ]; then
    echo "SKIP serve_fault_viewer_parallel: $M not found (../shared is needed for the larger model)"
    exit 0
fi
if ! start_server --model "$M/stories260K.bin" --tokenizer "$M/tok512.bin" --max-tokens 256 --threads 2; then
    echo "FAIL serve_fault_viewer_start: $(tail -2 "$TMP/serve.err")"
    exit 0
fi
timeout 120 "$PY" - "$PORT" "$PID" <<'EOF'
import json, sys, threading, time, urllib.request

PORT, PID = int(sys.argv[1]), int(sys.argv[2])
U = "http://127.0.0.1:%d" % PORT

def rss_kib():
    with open("/proc/%d/status" % PID) as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS"))

def get(path):
    with urllib.request.urlopen(U + path, timeout=60) as r:
        return r.status, r.read()

body = json.dumps({"ids": [1] + [(i * 37) % 500 + 10 for i in range(255)]}).encode()
r = urllib.request.Request(U + "/api/run", body, {"Content-Type": "application/json"})
tid = json.loads(urllib.request.urlopen(r, timeout=30).read())["id"]
for i in range(400):
    if json.loads(get("/api/runs/" + tid)[1])["status"] in ("done", "failed"):
        break
    time.sleep(0.05)
r0 = rss_kib()
results = []
def fetch():
    try:
        results.append(get("/api/traces/%s/viewer" % tid))
    except Exception as e:  # 503 busy is an HTTPError
        results.append((getattr(e, "code", None), b""))
th = [threading.Thread(target=fetch) for _ in range(16)]
for t in th: t.start()
for t in th: t.join(90)
r1 = rss_kib()
sizes = sorted({len(b) for s, b in results if s == 200})
mem = json.loads(get("/api/info")[1])["memory"]
page = sizes[0] if sizes else 0
print("# 16 parallel viewer requests: statuses %s, page %d bytes, RSS %d -> %d KiB (+%d), charged %d bytes"
      % (sorted(s for s, _ in results), page, r0, r1, r1 - r0, mem["used"]))
if len(results) == 16 and all(s in (200, 503) for s, _ in results) and len(sizes) == 1 and \
        (r1 - r0) * 1024 < 6 * page and mem["used"] >= page:
    print("PASS serve_fault_viewer_parallel_one_build")
else:
    print("FAIL serve_fault_viewer_parallel_one_build: statuses %s, page sizes %s, RSS +%d KiB for a %d-byte page"
          % (sorted(s for s, _ in results), sizes, r1 - r0, page))
EOF
[ $? -eq 124 ] && echo "FAIL serve_fault_viewer_parallel: timed out"
exit 0
