#!/usr/bin/python3
"""Compares two directories written by `sh bench/trace_regress.sh save`: for every case present in both, the max
|a - b| per tensor kind ("attn", "vnorm", "logits", "q", "k", ...), the tensors only one side has, and the
metadata values that differ (ignoring created_by and version). Cases refused on one side only are listed.
Generation transcripts (*.txt) and what `run` printed (*.out) must be identical. Prints one line per case and exits 1 when any tensor differs
by more than --tol (default 1e-6), a common tensor changed shape, a token label changed, or a transcript differs.

Usage: trace_compare.py OLD_DIR NEW_DIR [--tol 1e-6]"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "scripts"))
import numpy as np  # noqa: E402
import safetensors_np  # noqa: E402

IGNORED_META = {"created_by", "version"}
STRICT_META = {"tokens", "token_ids", "source_tokens", "target_tokens", "source_token_ids", "decoding",
               "patch_grid", "predictions"}


def compare_case(a_path, b_path, tol):
    ta, ma = safetensors_np.read(a_path)
    tb, mb = safetensors_np.read(b_path)
    worst, bad, notes = {}, False, []
    for name, x in ta.items():
        if name not in tb:
            continue
        y = tb[name]
        if x.shape != y.shape:
            notes.append("%s shape %s -> %s" % (name, list(x.shape), list(y.shape)))
            bad = True
            continue
        kind = name.split(".")[0]
        d = float(np.max(np.abs(x.astype(np.float64) - y.astype(np.float64)))) if x.size else 0.0
        worst[kind] = max(worst.get(kind, 0.0), d)
        bad |= d > tol
    only_a = sorted(set(ta) - set(tb))
    only_b = sorted(set(tb) - set(ta))
    if only_a:
        notes.append("only old: %s" % ", ".join(only_a[:6]) + (" ..." if len(only_a) > 6 else ""))
    if only_b:
        notes.append("only new: %s" % ", ".join(only_b[:6]) + (" ..." if len(only_b) > 6 else ""))
    for key in sorted(set(ma) | set(mb)):
        if key in IGNORED_META or ma.get(key) == mb.get(key):
            continue
        notes.append("meta %s: %.40r -> %.40r" % (key, ma.get(key), mb.get(key)))
        bad |= key in STRICT_META and key in ma and key in mb
    return worst, bad, notes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--tol", type=float, default=1e-6)
    args = ap.parse_args()
    failed = False
    names = sorted(set(os.listdir(args.old)) | set(os.listdir(args.new)))
    cases = sorted({n.rsplit(".", 1)[0] for n in names if n.rsplit(".", 1)[-1] in ("safetensors", "refused", "txt")})
    for case in cases:
        pa, pb = (os.path.join(d, case) for d in (args.old, args.new))
        if os.path.exists(pa + ".txt") or os.path.exists(pb + ".txt"):
            same = all(os.path.exists(p + ".txt") for p in (pa, pb)) and \
                open(pa + ".txt", "rb").read() == open(pb + ".txt", "rb").read()
            print("%-28s transcript %s" % (case, "identical" if same else "DIFFERS"))
            failed |= not same
            continue
        ha, hb = (os.path.exists(p + ".safetensors") for p in (pa, pb))
        if not (ha and hb):
            state = lambda h, p: "trace" if h else ("refused" if os.path.exists(p + ".refused") else "absent")
            print("%-28s old %s, new %s" % (case, state(ha, pa), state(hb, pb)))
            failed |= ha and not hb
            continue
        worst, bad, notes = compare_case(pa + ".safetensors", pb + ".safetensors", args.tol)
        outs = [open(p + ".out", "rb").read() if os.path.exists(p + ".out") else b"" for p in (pa, pb)]
        if outs[0] != outs[1]:  # what run printed: decoded targets, image classes
            notes.append("printed output differs: %.60r -> %.60r" % tuple(outs))
            bad = True
        print("%-28s %s %s%s" % (case, "FAIL" if bad else "ok  ", json.dumps({k: float("%.3g" % v) for k, v in
                                                                          sorted(worst.items())}),
                                 "".join("\n    " + n for n in notes)))
        failed |= bad
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
