#!/usr/bin/python3
"""Measures a running `attnviz serve` through its HTTP API (used by bench/serve.sh).

serve_bench.py --port P --pid PID --tokens T --name NAME --weights BYTES
Runs T random token ids lazily (POST /api/run, polling /api/runs/{id}), then times on one keep-alive
connection: the overview of heads of the first and last layer (GET .../tile over the whole matrix, 1024 x
1024 cells as the page asks, each head once: uncached, then again: cached), single rows at random queries,
and zoomed-in exact tiles of 256 x 256 cells. Peak RSS is the server's VmHWM. Prints one JSON line."""
import argparse
import http.client
import os
import json
import random
import statistics
import time


def rss_kib(pid, key):
    for line in open("/proc/%d/status" % pid):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def cpu_s(pid):
    """user + system CPU seconds of the process (all threads)"""
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--tokens", type=int, required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--weights", type=int, default=0)
    a = ap.parse_args()
    conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=600)

    def call(method, path, body=None):
        headers = {"Content-Type": "application/json"} if body is not None else {}
        t0 = time.perf_counter()
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        dt = (time.perf_counter() - t0) * 1000
        if r.status >= 300:
            raise SystemExit("%s %s: %d %s" % (method, path, r.status, data[:300]))
        return data, dt

    info = json.loads(call("GET", "/api/info")[0])
    m = info["model"]
    rss_idle = rss_kib(a.pid, "VmRSS")
    load = open("/proc/loadavg").read().split()[0]
    random.seed(1)
    ids = [random.randrange(3, m["vocab_size"]) for _ in range(a.tokens)]
    t0 = time.perf_counter()
    rid = json.loads(call("POST", "/api/run", json.dumps({"ids": ids}))[0])["id"]
    while True:
        st = json.loads(call("GET", "/api/runs/" + rid)[0])
        if st["status"] in ("done", "failed"):
            break
        time.sleep(0.05)
    if st["status"] != "done":
        raise SystemExit("run failed: %s" % st.get("error"))
    run_s = st["elapsed_s"]
    wall_s = time.perf_counter() - t0
    rss_after_run = rss_kib(a.pid, "VmHWM")
    T, L, H = a.tokens, m["n_layers"], m["n_heads"]
    base = "/api/traces/%s" % rid
    ov = min(T, 1024)
    heads = list(dict.fromkeys([(0, 0), (0, H // 2), (L - 1, 1), (L - 1, H - 1), (L // 2, H // 3 + 2)]))
    overview, overview_cpu = [], []
    for layer, head in heads:
        path = "%s/tile?layer=%d&head=%d&rows=%d&cols=%d&pool=max&format=f32" % (base, layer, head, ov, ov)
        c0 = cpu_s(a.pid)
        overview.append(call("GET", path)[1])
        overview_cpu.append((cpu_s(a.pid) - c0) * 1000)
    cached = [call("GET", "%s/tile?layer=%d&head=%d&rows=%d&cols=%d&pool=max&format=f32" % (base, l, h, ov, ov))[1]
              for l, h in heads]
    rows = []
    for _ in range(40):
        q, layer, head = random.randrange(T), random.randrange(L), random.randrange(H)
        rows.append(call("GET", "%s/row?layer=%d&head=%d&q=%d&format=f32" % (base, layer, head, q))[1])
    tiles = []
    for _ in range(10):
        q0, k0 = random.randrange(0, T - 256), random.randrange(0, T - 256)
        k0 = min(k0, q0)  # below the diagonal, where a causal head has values
        tiles.append(call("GET", "%s/tile?layer=0&head=1&q0=%d&q1=%d&k0=%d&k1=%d&rows=256&cols=256&format=f32"
                          % (base, q0, q0 + 256, k0, k0 + 256))[1])
    mean_head = call("GET", "%s/tile?layer=0&head=mean&rows=%d&cols=%d&pool=max&format=f32" % (base, ov, ov))[1]
    peak = rss_kib(a.pid, "VmHWM")
    print(json.dumps({
        "model": "%s (%d layers, %d heads of %d, %d kv heads)" % (a.name, L, H, m["dim"] // H, m["n_kv_heads"]),
        "tokens": T, "load_avg_before": float(load), "run_s": round(run_s, 2), "run_wall_s": round(wall_s, 2),
        "overview_cells": ov, "overview_ms": [round(x, 1) for x in overview],
        "overview_ms_median": round(statistics.median(overview), 1), "overview_ms_max": round(max(overview), 1),
        "overview_cpu_ms_median": round(statistics.median(overview_cpu), 1),
        "overview_cached_ms": round(statistics.median(cached), 2),
        "row_ms_median": round(statistics.median(rows), 2), "row_ms_max": round(max(rows), 2),
        "tile_ms_median": round(statistics.median(tiles), 1), "mean_over_heads_overview_ms": round(mean_head, 1),
        "rss_idle_mb": rss_idle // 1024, "peak_rss_after_run_mb": rss_after_run // 1024, "peak_rss_mb": peak // 1024,
        "weights_mb": a.weights >> 20, "peak_beyond_weights_mb": max(0, peak // 1024 - (a.weights >> 20)),
    }))


if __name__ == "__main__":
    main()
