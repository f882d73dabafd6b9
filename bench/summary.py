"""Markdown summary of a benchmark run, for docs/BENCHMARKS.md (printed at the end of the scripts):
    python3 bench/summary.py run DIR     the JSON files bench/run.sh wrote into DIR
    python3 bench/summary.py quant DIR   the JSON files bench/quant_mem.sh wrote into DIR
    python3 bench/summary.py rounds DIR  DIR/rounds.json of bench/rounds.sh (interleaved rounds)
Every table starts with the machine (CPU model, flags, threads, load average) and the f32 GEMM limit of the
same run, and checks the issue #20 targets against the numbers it prints."""
import json
import os
import sys
import time

FLAGS = ("fma", "f16c", "avx2", "avx512f", "avx512bw", "avx512vl", "avx512_bf16", "amx_bf16", "amx_tile")


def lines(path):
    """The JSON objects of a JSON-lines file (none when it is missing)."""
    if not os.path.exists(path):
        return []
    return [json.loads(x) for x in open(path) if x.strip().startswith("{")]


def one(path):
    got = lines(path)
    return got[-1] if got else None


def machine(d):
    """One line: CPU model, CPUID family/model, the flags that pick a GEMM path."""
    info, flags = {}, []
    for line in open("/proc/cpuinfo"):
        k, _, v = line.partition(":")
        k = k.strip()
        if k in ("model name", "cpu family", "model") and k not in info:
            info[k] = v.strip()
        if k == "flags" and not flags:
            flags = [f for f in v.split() if f in FLAGS]
    return "%s (CPUID family %s model %s; %s), %d CPUs, %s" % (
        info.get("model name"), info.get("cpu family"), info.get("model"), " ".join(flags), os.cpu_count(),
        time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))


def limit_line(d):
    lim = one(os.path.join(d, "limit.json"))
    if not lim:
        return None, "f32 GEMM limit: not measured (no limit.json)"
    cands = ", ".join("%s %.1f" % kv for kv in sorted(lim["candidates"].items()))
    return lim, ("f32 GEMM limit **%.1f GFLOP/s** (%s; candidates: %s); AVX2-only limit %.1f GFLOP/s (%s)" %
                 (lim["f32_limit_gflops"], lim["f32_limit_from"], cands, lim["avx2_limit_gflops"],
                  lim["avx2_limit_from"]))


def target(ok, what):
    return "- %s %s" % ("MET" if ok else "NOT MET", what)


def generation_table(d, name):
    """The generation kernels' table and the issue's target lines (>= 0.85x the copy rate per type)."""
    gen = [g["generation"] for g in lines(os.path.join(d, name)) if "generation" in g]
    if not gen:
        return []
    out = []
    for g in gen:
        out += ["", "Generation kernels (1-row products of 5632 x 2048 weights, beyond the last-level cache; %d "
                "thread(s), path %s; copy %.1f GB/s read + written, read-only streams: memchr %s GB/s, %s loads %s "
                "GB/s (\"x read\" is against the latter), in the same run):" % (
                    g["threads"], g["gemm_path"], g["copy_gbps"], g.get("read_gbps", "-"),
                    g.get("read_simd_isa", "vector"), g.get("read_simd_gbps", "-")), "",
                "| weights | MB | GB/s of weights | x copy | x read | 4 rows: GB/s | 1 thread from L2: GB/s |",
                "|---|---|---|---|---|---|---|"]
        types = [(t, v) for t, v in g.items() if isinstance(v, dict)]
        for t, v in types:
            out.append("| %s | %s | %.1f | %.2f | %s | %s | %s |" % (
                t, v.get("mb", "-"), v["weights_gbps"], v["vs_copy"], v.get("vs_read", "-"), v.get("rows4_gbps", "-"),
                v.get("l2_gbps", "-")))
        out.append("")
        for t, v in types:
            out.append(target(v["vs_copy"] >= 0.85, "%s generation at >= 0.85x the copy rate, %d thread(s) (%.2f)" %
                              (t, g["threads"], v["vs_copy"])))
    return out


def gathers_table(d, name):
    """gemm_bench "gathers": the AVX-512 row kernels' block scales by gather against converted in place, and
    whether av_fast_gathers() picks the faster way on this CPU (issue #20's check on Intel)."""
    runs = [g["gathers"] for g in lines(os.path.join(d, name)) if "gathers" in g]
    out = []
    for g in runs:
        if not isinstance(g, dict):
            out += ["", "Block scales by gather: %s" % g]
            continue
        out += ["", "Block scales of the AVX-512 row kernels by gather / converted in place (medians of alternating "
                "rounds; this CPU's choice: %s):" % g["cpu_choice"], "",
                "| weights | 1 thread from L2: gather, in place (GB/s) | gather / in place | %d threads from memory: "
                "gather, in place |" % g["threads"], "|---|---|---|---|"]
        types = [(t, v) for t, v in g.items() if isinstance(v, dict)]
        for t, v in types:
            out.append("| %s | %.1f, %.1f | %.3f | %.1f, %.1f |" % (
                t, v["l2_gbps_gather"], v["l2_gbps_in_place"], v["l2_gather_vs_in_place"], v["mem_gbps_gather"],
                v["mem_gbps_in_place"]))
        out.append("")
        for t, v in types:
            out.append(target(v["choice_is_faster"], "%s: av_fast_gathers() picks the faster way (%s)" %
                              (t, g["cpu_choice"])))
    return out


def pool_line(d, name):
    """The cost of one av_parallel_for call (gemm_bench "pool"), or nothing."""
    pf = [g["parallel_for"] for g in lines(os.path.join(d, name)) if "parallel_for" in g]
    return [x for p in pf for x in ("", "One av_parallel_for call of empty ranges, %d threads, wall: %.1f us through "
                                        "the thread pool, %.1f us with threads started for the call" %
                                        (p["threads"], p["pool_us"], p["own_threads_us"]))]


def gemm_table(d):
    rows = [m["matmul"] for m in lines(os.path.join(d, "gemm.json")) if "matmul" in m]
    if not rows:
        return []
    paths = [p for p in ("avx512", "avx2", "amx", "sgemm", "scalar") if any(p in r for r in rows)]
    out = ["", "GEMM paths, GFLOP/s (x W^T, conversion from the stored type included):", "",
           "| T x out x in | weights | " + " | ".join(paths) + " |", "|---|---|" + "---|" * len(paths)]
    for r in rows:
        cells = ["%.1f" % r[p]["gflops"] if p in r else "" for p in paths]
        out.append("| %d x %d x %d | %s | %s |" % (r["T"], r["out"], r["in"], r["dtype"], " | ".join(cells)))
    return out


def summary_run(d):
    big, small = one(os.path.join(d, "big.json")), one(os.path.join(d, "small.json"))
    mach = one(os.path.join(d, "machine.json")) or {}
    lim, lim_text = limit_line(d)
    out = ["Machine: " + machine(d), "Load average before: %s; after: %s" %
           (mach.get("loadavg_before", "?"), (big or {}).get("loadavg_after", "?")), "", lim_text]
    out += gemm_table(d) + generation_table(d, "gemm.json") + gathers_table(d, "gemm.json") + pool_line(d, "gemm.json")
    if small:
        out += ["", "stories260K whole process: attnviz %.4f s (%d MB RSS), PyTorch %.3f s (%d MB): %.0fx" %
                (small["attnviz_s"], small["attnviz_rss_mb"], small["torch_s"], small["torch_rss_mb"],
                 small["speedup"])]
    if not big:
        return out
    out += ["", "Synthetic Llama (1.1 B shape, %s layers), %d tokens, %.0f GFLOP: f32 limit %.3f s (%s), "
            "AVX2 limit %.3f s (%s)" % (os.environ.get("BENCH_LAYERS", "22"), big["tokens"], big["gflop"],
                                        big["f32_limit_s"], big["f32_limit_from"], big["avx2_limit_s"],
                                        big["avx2_limit_from"]), "",
            "| path | forward s | x f32 limit | x AVX2 limit | process CPU s | peak RSS MB | attention vs sgemm |",
            "|---|---|---|---|---|---|---|"]
    for p, e in big["paths"].items():
        out.append("| %s | %.3f | %.3f | %s | %.2f | %d | %s |" % (
            p, e["forward_s"], e["forward_vs_f32_limit"], e.get("forward_vs_avx2_limit", ""), e["process_cpu_s"],
            e["peak_rss_mb"], e["max_abs_diff_vs_sgemm"].get("attn", "")))
    if "torch" in big:
        t = big["torch"]
        out.append("| PyTorch eager | %.3f | %.3f | | | %d | |" % (t["forward_s"], t["forward_vs_f32_limit"],
                                                                  t["peak_rss_mb"]))
    paths = big["paths"]
    out.append("")
    if "avx512" in paths:
        out.append(target(paths["avx512"]["forward_vs_f32_limit"] <= 1.10, "avx512 forward <= 1.10x the f32 limit"))
    if "avx2" in paths:
        out.append(target(paths["avx2"]["forward_vs_avx2_limit"] <= 1.10, "avx2 forward <= 1.10x the AVX2 limit"))
    if "amx" in paths:  # issue #20: no slower than at its start (0.86-0.90x; docs/BENCHMARKS.md session 28: 0.63-0.67x)
        out.append(target(paths["amx"]["forward_vs_f32_limit"] <= 0.90,
                          "amx forward no slower than at issue #20's start (<= 0.90x the f32 limit; %.3f)" %
                          paths["amx"]["forward_vs_f32_limit"]))
    for p, e in paths.items():
        a = e["max_abs_diff_vs_sgemm"].get("attn")
        if a is not None:
            out.append(target(a <= 2e-5, "%s attention within 2e-5 of sgemm (%.2g)" % (p, a)))
    return out + traces_table(d)


def traces_table(d):
    """F32 against F16 traces on the default path (whole process), and `stats` of the F16 trace."""
    t = one(os.path.join(d, "traces.json"))
    if not t:
        return []
    mb = lambda kib: kib / 1024
    out = ["", "Traces on the default path (whole process, best of the runs; peak RSS includes the weights and, for "
           "`stats`, the trace's mapped pages):", "",
           "| command | s | peak RSS MB |", "|---|---|---|",
           "| `run -o` (F32 trace) | %.3f | %d |" % (t["f32_s"], mb(t["f32_rss_kib"])),
           "| `run --dtype f16 -o` | %.3f | %d |" % (t["f16_s"], mb(t["f16_rss_kib"])),
           "| `stats --json` of the F16 trace | %.3f | %d |" % (t["stats_s"], mb(t["stats_rss_kib"])),
           "| `stats --rollout --json` of the F16 trace | %.3f | %d |" % (t["rollout_s"], mb(t["rollout_rss_kib"])),
           ""]
    out.append(target(t["f16_s"] <= 1.10 * t["f32_s"] and t["f16_rss_kib"] <= 1.05 * t["f32_rss_kib"],
                      "an F16 trace's run no slower (<= 1.10x) and no larger in memory (<= 1.05x) than an F32 "
                      "trace's (%.2fx, %.2fx)" % (t["f16_s"] / t["f32_s"], t["f16_rss_kib"] / t["f32_rss_kib"])))
    return out


def summary_quant(d):
    runs = lines(os.path.join(d, "quant.json"))
    lim, lim_text = limit_line(d)
    loads = [r["load_before"] for r in runs] + [r["load_after"] for r in runs[-1:]]
    out = ["Machine: " + machine(d), "Load average (1, 5, 15 min) at each file's start, then at the end: " +
           "; ".join(loads), "", lim_text]
    out += generation_table(d, "gen-wall.json") + generation_table(d, "gen-wall-1.json")
    out += pool_line(d, "pool.json")
    if not runs:
        return out + ["", "no quant.json: the per-file runs did not finish"]
    out += ["", "Prompt of %s tokens capturing every head (attnviz) against llama.cpp's llama_decode (no capture), "
            "same file, same threads; f32 limit %.3f s (%s):" % (os.environ.get("BENCH_TOKENS", "512"),
                                                                  runs[0]["f32_limit_s"], runs[0]["f32_limit_from"]),
            "(\"CPU s / thread x limit\": the process's CPU seconds per thread against the own kernels' f32 peak per "
            "CPU-second, %.3f s: what a loaded machine moves least)" % runs[0]["f32_limit_cpu_s_per_thread"], "",
            "| file | MB | attnviz path | forward s | x f32 limit | CPU s / thread x limit | llama.cpp s | "
            "llama.cpp / attnviz | CPU s attnviz / llama.cpp | peak RSS MB (within budget) |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    peaks = {k: v["peak_gflops"] for k, v in (one(os.path.join(d, "own-peak-cpu.json")) or {}).get(
        "own_f32_peak", {}).items() if isinstance(v, dict)}
    for r in runs:
        for p, e in r["paths"].items():
            cpu = "%.3f" % e["process_cpu_per_thread_vs_cpu_limit"]
            if p == "avx2" and peaks.get("avx2"):  # also against the AVX2 kernel's own peak per CPU-second
                ratio = e["process_cpu_per_thread_vs_cpu_limit"] * peaks["avx2"] / max(peaks.values())
                cpu += " (AVX2: %.3f)" % ratio
            out.append("| %s | %d | %s | %.3f | %.3f | %s | %.3f | %.2f | %.1f / %.1f | %d (%s) |" % (
                r["type"], r["file_mb"], p, e["forward_s"], e["forward_vs_f32_limit"],
                cpu, r["llamacpp_decode_s"], e["llamacpp_over_attnviz_forward"],
                e["process_cpu_s"], r["llamacpp_cpu_s"], e["peak_rss_mb"], "yes" if e["within_budget"] else "NO"))
    out += ["", "Token-by-token generation (`attnviz generate`, seconds per token from steps 40 - 8):", "",
            "| file | s / token | weights MB / token | GB/s | copy GB/s | x copy | llama.cpp s / token |",
            "|---|---|---|---|---|---|---|"]
    for r in runs:
        g = r["generation"]
        out.append("| %s | %.4f | %d | %.2f | %.1f | %.2f | %s |" % (
            r["type"], g["s_per_token"], g["weights_mb_per_token"], g["weights_gbps"], g["copy_gbps"], g["vs_copy"],
            "%.4f" % g["llamacpp_s_per_token"] if "llamacpp_s_per_token" in g else "-"))
    out.append("")
    for r in runs:
        if r["type"] == "F16":
            continue
        e = r["paths"].get("default")
        if e:
            out.append(target(e["forward_vs_f32_limit"] <= 1.15, "%s forward <= 1.15x the f32 limit (%.3f)" %
                              (r["type"], e["forward_vs_f32_limit"])))
            out.append(target(e["llamacpp_over_attnviz_forward"] > 1, "%s faster than llama.cpp (%.2fx)" %
                              (r["type"], e["llamacpp_over_attnviz_forward"])))
    return out


def forward_gflop(cfg, T):
    """GFLOP of a Llama forward pass at T tokens: the weight products and QK^T and PV over the full T x T block
    per head (bench/run.sh counts the same)."""
    D, L, H = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"]
    kv = cfg.get("num_key_value_heads", H)
    hs, ff = D // H, cfg["intermediate_size"]
    return (2 * T * L * (2 * D * H * hs + 2 * D * kv * hs + 3 * D * ff) + 4 * T * T * hs * H * L) / 1e9


def spread(v):
    """median (min-max) of a list of ratios or seconds"""
    v = sorted(v)
    mid = v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2
    return mid, "%.3f (%.3f-%.3f)" % (mid, v[0], v[-1])


def summary_rounds(d):
    rounds = lines(os.path.join(d, "rounds.json"))
    gflop = forward_gflop(json.load(open(os.path.join(d, "synth-1b-22", "config.json"))), 512)
    out = ["Machine: " + machine(d), "%d interleaved rounds (bench/rounds.sh), 512 tokens, %.0f GFLOP per forward "
           "pass; every ratio is against the f32 limit of its own round (the AVX2-only limit for the avx2 path)" %
           (len(rounds), gflop)]
    if not rounds:
        return out + ["", "no rounds.json"]
    out.append("f32 limit over the rounds: %s GFLOP/s" % spread([r["limit"]["f32_limit_gflops"] for r in rounds])[1])
    vs_limit, seconds, new_old, llama = {}, {}, {}, {}
    for r in rounds:
        mine = {}  # (model, path, binary): this round's forward seconds
        for e in r["runs"]:
            if e.get("forward_s") is None:
                continue
            lim = r["limit"]["avx2_limit_gflops" if e["path"] == "avx2" else "f32_limit_gflops"]
            key = (e["model"], e["path"], e["binary"])
            mine.setdefault(key, []).append(e["forward_s"])
            seconds.setdefault(key, []).append(e["forward_s"])
            vs_limit.setdefault(key, []).append(e["forward_s"] * lim / gflop)
        for (m, p, b), v in mine.items():
            if b == "new" and (m, p, "old") in mine:
                new_old.setdefault((m, p), []).append(sum(v) / sum(mine[(m, p, "old")]))
        for e in r["runs"]:
            for (m, p, b), v in mine.items():
                if "llamacpp_s" in e and m == e["model"] and b == "new":
                    llama.setdefault(m, []).append(e["llamacpp_s"] * len(v) / sum(v))
    out += ["", "| model | path | attnviz | forward s, median (range) | x limit, median (range) |", "|---|---|---|---|---|"]
    for (m, p, b), v in sorted(vs_limit.items()):
        out.append("| %s | %s | %s | %s | %s |" % (m, p, b, spread(seconds[(m, p, b)])[1], spread(v)[1]))
    for (m, p), v in sorted(new_old.items()):
        out.append("- %s %s: new / old forward per round %s" % (m, p, spread(v)[1]))
    for m, v in sorted(llama.items()):
        out.append("- %s: llama.cpp / attnviz per round %s" % (m, spread(v)[1]))
    gen_lines, gen_targets = rounds_generation(rounds)
    out += gen_lines + [""]
    for (m, p, b), v in sorted(vs_limit.items()):
        if b != "new":
            continue
        bound = 1.10 if m == "F16" else 1.15
        out.append(target(spread(v)[0] <= bound, "%s %s forward <= %.2fx the limit (median %.3f)" %
                          (m, p, bound, spread(v)[0])))
    for m, v in sorted(llama.items()):
        out.append(target(spread(v)[0] > 1, "%s faster than llama.cpp (median %.2fx)" % (m, spread(v)[0])))
    return out + gen_targets


def rounds_generation(rounds):
    """bench/rounds.sh's generation runs (BENCH_GEN): seconds per token and the share of the copy rate of the
    round (weights MB per token from bench/quant_mem.sh), per-round new / old and llama.cpp / attnviz; the table
    and the target lines (>= 0.85x the copy rate, as summary_quant)."""
    per_token, vs_copy, new_old, llama = {}, {}, {}, {}
    for r in rounds:
        mine, llama_s, mb = {}, {}, {}  # this round's (model, binary) -> seconds per token; model -> ...
        for e in r["runs"]:
            if e.get("gen_s_per_token") is not None:
                mine.setdefault((e["model"], e["binary"]), []).append(e["gen_s_per_token"])
            if e.get("llamacpp_gen_s_per_token") is not None:
                llama_s[e["model"]], mb[e["model"]] = e["llamacpp_gen_s_per_token"], e.get("weights_mb_per_token")
        for (m, b), v in mine.items():
            s = sum(v) / len(v)
            per_token.setdefault((m, b), []).append(1000 * s)
            if r.get("copy_gbps") and mb.get(m):
                vs_copy.setdefault((m, b), []).append(mb[m] / 1000 / s / r["copy_gbps"])
            if b == "new" and (m, "old") in mine:
                new_old.setdefault(m, []).append(s / (sum(mine[(m, "old")]) / len(mine[(m, "old")])))
            if b == "new" and m in llama_s:
                llama.setdefault(m, []).append(llama_s[m] / s)
    if not per_token:
        return [], []
    out = ["", "Token-by-token generation (`attnviz generate`, time per token from the wall times of 40 and 8 "
           "steps; x copy: weights read per second against the copy rate of the round):", "",
           "| model | attnviz | ms / token, median (range) | x copy, median (range) |", "|---|---|---|---|"]
    for (m, b), v in sorted(per_token.items()):
        out.append("| %s | %s | %s | %s |" % (m, b, spread(v)[1], spread(vs_copy[(m, b)])[1] if (m, b) in vs_copy
                                                                else "-"))
    for m, v in sorted(new_old.items()):
        out.append("- %s: new / old seconds per token per round %s" % (m, spread(v)[1]))
    for m, v in sorted(llama.items()):
        out.append("- %s: llama.cpp / attnviz seconds per token per round %s" % (m, spread(v)[1]))
    targets = [target(spread(v)[0] >= 0.85, "%s generation at >= 0.85x the copy rate (median %.2f)" %
                      (m, spread(v)[0])) for (m, b), v in sorted(vs_copy.items()) if b == "new"]
    return out, targets


def main():
    kinds = {"run": summary_run, "quant": summary_quant, "rounds": summary_rounds}
    if len(sys.argv) != 3 or sys.argv[1] not in kinds:
        sys.exit("usage: summary.py run|quant|rounds DIR")
    print("\n".join(kinds[sys.argv[1]](sys.argv[2])))


if __name__ == "__main__":
    main()
