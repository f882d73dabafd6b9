#!/usr/bin/python3
"""Runs a command N times; prints "best_seconds peak_rss_kib" (wall time via perf_counter, RSS via wait4).
Usage: timecmd.py N OUT_FILE ERR_FILE -- command args..."""
import os, subprocess, sys, time

n, out_path, err_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
cmd = sys.argv[sys.argv.index("--") + 1:]
best, rss = float("inf"), 0
for _ in range(n):
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err)
        _, status, usage = os.wait4(p.pid, 0)
        dt = time.perf_counter() - t0
    if status != 0:
        sys.exit(f"command failed ({status}): {' '.join(cmd)}; see {err_path}")
    best, rss = min(best, dt), max(rss, usage.ru_maxrss)
print(f"{best:.4f} {rss}")
