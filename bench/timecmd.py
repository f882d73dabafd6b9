#!/usr/bin/python3
"""Runs a command N times; prints "best_seconds peak_rss_kib" (wall time via perf_counter, RSS via wait4),
plus "best_inner" when --inner REGEX is given: the smallest number its group 1 matched in each run's stderr
(e.g. attnviz's own "forward N s"), then "best_cpu_seconds" (user + system time of the child, the smallest of
the runs: on a machine shared with other jobs it moves much less than wall time). --before CMD runs a shell command before each run, untimed (e.g. removing
the previous output, whose deletion would otherwise be timed as part of the rename over it).
Usage: timecmd.py N OUT_FILE ERR_FILE [--inner REGEX] [--before CMD] -- command args..."""
import os, re, subprocess, sys, time

n, out_path, err_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
opts = sys.argv[4:sys.argv.index("--")]
inner = opts[opts.index("--inner") + 1] if "--inner" in opts else None
before = opts[opts.index("--before") + 1] if "--before" in opts else None
cmd = sys.argv[sys.argv.index("--") + 1:]
best, rss, best_inner, best_cpu = float("inf"), 0, float("inf"), float("inf")
for _ in range(n):
    if before:
        subprocess.run(before, shell=True, check=True)
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err)
        _, status, usage = os.wait4(p.pid, 0)
        dt = time.perf_counter() - t0
    if status != 0:
        sys.exit(f"command failed ({status}): {' '.join(cmd)}; see {err_path}")
    best, rss = min(best, dt), max(rss, usage.ru_maxrss)
    best_cpu = min(best_cpu, usage.ru_utime + usage.ru_stime)
    if inner:
        m = re.search(inner, open(err_path, errors="replace").read())
        if not m:
            sys.exit(f"no match for {inner!r} in {err_path}")
        best_inner = min(best_inner, float(m.group(1)))
print(f"{best:.4f} {rss}" + (f" {best_inner}" if inner else "") + f" {best_cpu:.3f}")
