#!/usr/bin/python3
"""Independent numpy reference for `attnviz corpus` (used by tests/cli/test_corpus.sh).

    ref_corpus.py stats REPORT_DIR LINE=trace.safetensors ...
        Recomputes, from full traces written by `attnviz run` (one per good input line), every per-head
        statistic of every input in float64, averages over inputs and compares with REPORT_DIR/corpus.json:
        means and counts of the 12 metrics, the exact fixed-point sums, quantiles (within the sketch's relative
        accuracy), relative-position profiles, special-token masses, role votes and top examples.
    ref_corpus.py qk REPORT_DIR LINE=lazy_trace.safetensors ...
        Checks every sampled query/key vector (of the report's attention kind) and its label against the q/k
        stored in lazy traces of the same lines (with a sample larger than the corpus: every position, padding
        keys left out), then AttentionViz's normalization and PCA (numpy.linalg.eigh) against qk.csv.

Prints "ok ..." and exits 0, or prints the first mismatches and exits 1. Definitions: docs/ANALYSIS.md,
docs/CORPUS.md.
"""

import csv
import json
import math
import os
import string
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np  # noqa: E402

METRICS = ["entropy", "entropy_norm", "distance", "first", "self", "prev", "special", "punct", "uniformity",
           "first_norm", "duplicate", "induction"]
ROLES = ["previous_token", "first_token", "self", "broad", "duplicate_token", "induction"]
ROLE_METRIC = ["prev", "first", "self", "uniformity", "duplicate", "induction"]
LABEL_MAX = 47  # bytes kept of a special-token label
POS_SIDE = 44
PUNCT = set(string.punctuation)
failures = []


def fail(msg):
    failures.append(msg)


def token_class(label):
    """(special, punct) as av_token_class."""
    b = label.encode()
    if len(b) >= 3 and label[0] == "<" and label[-1] == ">" and not (len(b) == 6 and label[1:3] == "0x"):
        return True, False
    if len(b) >= 3 and label[0] == "[" and label[-1] == "]" and all(
            c.isascii() and (c.isupper() or c.isdigit() or c == "_") for c in label[1:-1]):
        return True, False
    s = label.lstrip(" \u2581\u0120")
    return False, bool(s) and all(c in PUNCT for c in s)


def pos_bin(d):
    a = abs(d)
    if a < 8:
        b = a
    else:
        k = a.bit_length() - 1
        b = min(8 + 2 * (k - 3) + ((a >> (k - 1)) & 1), POS_SIDE - 1)
    return POS_SIDE - 1 + (-b if d < 0 else b)


def bin_range(b):
    s = b - (POS_SIDE - 1)
    a = abs(s)
    if a < 8:
        lo = hi = a
    else:
        k, half = 3 + (a - 8) // 2, (a - 8) % 2
        lo = (1 << k) + half * (1 << (k - 1))
        hi = math.inf if a == POS_SIDE - 1 else lo + (1 << (k - 1)) - 1
    return (lo, hi) if s >= 0 else (-hi, -lo)


def head_metrics(A, positional, labels, ident, vn):
    """Per-example values of one head (A: (nq, nk) float32) as a dict, plus positions and label masses."""
    A = A.astype(np.float64)
    nq, nk = A.shape
    causal = positional and nq == nk and not np.any(np.triu(A, 1))
    row0 = 1 if causal and nq > 1 else 0
    cls = [token_class(x) for x in labels] if labels is not None else None
    acc = {m: [] for m in METRICS}
    pos = np.zeros(2 * POS_SIDE - 1)
    lab = {}
    rows = 0
    for i in range(row0, nq):
        vis = i + 1 if causal else nk
        a = A[i, :vis]
        rows += 1
        nz = a[a > 0]
        H = -np.sum(nz * np.log(nz))
        acc["entropy"].append(H)
        if vis > 1:
            acc["entropy_norm"].append(H / math.log(vis))
            u = np.sum(np.minimum(a, 1.0 / vis))
            acc["uniformity"].append((u - 1.0 / vis) / (1 - 1.0 / vis))
        acc["distance"].append(np.sum(a * np.abs(i - np.arange(vis))))
        acc["first"].append(A[i, 0])
        if positional and i < nk:
            acc["self"].append(A[i, i])
        if positional and i >= 1 and i - 1 < nk:
            acc["prev"].append(A[i, i - 1])
        if cls is not None:
            acc["special"].append(sum(a[j] for j in range(vis) if cls[j][0]))
            acc["punct"].append(sum(a[j] for j in range(vis) if cls[j][1]))
            for j in range(vis):
                if cls[j][0]:
                    key = labels[j].encode()[:LABEL_MAX].decode(errors="ignore")
                    lab[key] = lab.get(key, 0.0) + a[j]
        if vn is not None:
            w = np.sum(a * vn[:vis])
            if w > 0:
                acc["first_norm"].append(A[i, 0] * vn[0] / w)
        if positional:
            for j in range(vis):
                pos[pos_bin(i - j)] += a[j]
            earlier = [j for j in range(min(i, nk)) if ident[j] == ident[i]]
            if earlier:
                acc["duplicate"].append(sum(A[i, j] for j in earlier))
                follow = [j + 1 for j in earlier if j + 1 < i]
                if follow:
                    acc["induction"].append(sum(A[i, j] for j in follow))
    out = {m: (float(np.mean(v)) if v else math.nan) for m, v in acc.items()}
    for m in ("distance", "self", "prev"):
        if not positional:
            out[m] = math.nan
    keys_with = set(labels[j].encode()[:LABEL_MAX].decode(errors="ignore") for j in range(nk)
                    if cls is not None and cls[j][0])
    return out, (pos / rows if positional else None), {k: lab.get(k, 0.0) / rows for k in keys_with}


def side_labels(meta, kind, key_side, n):
    """Display labels of the queries (key_side 0) or keys (1) of kind, as docs/TRACE_FORMAT.md names them."""
    if kind == "self":
        key = "tokens"
    elif kind == "cross":
        key = "source_tokens" if key_side else "target_tokens"
    else:
        key = "target_tokens" if kind == "dec" else "source_tokens"
    labels = json.loads(meta[key]) if key in meta else None
    return labels if labels is not None and len(labels) == n else None


def measure(path, groups):
    """Per head (in corpus order): metrics, positions, label masses of one trace."""
    t, meta = safetensors_np.read(path)
    ids = json.loads(meta["token_ids"])
    heads = []
    for g in groups:
        kind = g["kind"]
        for layer in range(g["n_layers"]):
            att = t["attn.%s.%d" % (kind, layer)]
            H, nq, nk = att.shape
            labels = side_labels(meta, kind, 1, nk)
            if kind != "enc" and len(ids) == min(nq, nk):
                ident = ids
            else:
                ident = labels if labels is not None else list(range(nk))
            vnorm = t.get("vnorm.%d" % layer) if kind == "self" else None
            for h in range(H):
                heads.append(head_metrics(att[h], g["positional"], labels, ident,
                                          vnorm[h].astype(np.float64) if vnorm is not None else None))
    return heads, max(max(t[k].shape[1:]) for k in t if k.startswith("attn."))


def close(a, b, tol):
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return b is None or (isinstance(b, float) and math.isnan(b))
    return b is not None and abs(a - b) <= tol


def vote(values, positional):
    scores = [values[m] for m in ROLE_METRIC]
    for k, s in enumerate(scores):
        if (positional or ROLES[k] in ("first_token", "broad")) and math.isnan(s):
            return None
    best = None
    for k, s in enumerate(scores):
        if not math.isnan(s) and (best is None or s > scores[best]):
            best = k
    return ROLES[best] if best is not None and scores[best] >= 0.3 else "none"


def check_head(h, d, per_example, lines, top_k, positional, levels, alpha):
    name = "%s %d.%d" % (d["kind"], d["layer"], d["head"])
    for m in METRICS:
        vals = [v[m] for v in per_example if not math.isnan(v[m])]
        rep = d["metrics"][m]
        if rep["n"] != len(vals):
            fail("%s %s: n %d, reference %d" % (name, m, rep["n"], len(vals)))
            continue
        want = float(np.mean(vals)) if vals else None
        if not close(want, rep["mean"], 1e-9 * max(1.0, abs(want or 0))):
            fail("%s %s: mean %r, reference %r" % (name, m, rep["mean"], want))
        fx = int(rep["sum_fx"]) / 2.0 ** 48
        if abs(fx - sum(vals)) > 1e-9 * max(1.0, abs(sum(vals))) + len(vals) * 2.0 ** -47:
            fail("%s %s: fixed-point sum %r, reference %r" % (name, m, fx, sum(vals)))
        lo = 1e-3 if m == "distance" else 1e-4
        s = sorted(vals)
        for k, level in enumerate(levels):
            if not s:
                break
            exact, got = s[int(level * (len(s) - 1))], rep["quantiles"][k]
            ok = got == 0 if exact <= lo else abs(got - exact) <= alpha * exact * (1 + 1e-9)
            if not ok:
                fail("%s %s: quantile %.2f = %r, exact %r" % (name, m, level, got, exact))
    votes = {r: 0 for r in ROLES + ["none"]}
    for v in per_example:
        r = vote(v, positional)
        if r:
            votes[r] += 1
    if votes != d["votes"]:
        fail("%s: votes %r, reference %r" % (name, d["votes"], votes))
    for r, m in zip(ROLES, ROLE_METRIC):
        ranked = sorted((-v[m], line) for v, line in zip(per_example, lines) if not math.isnan(v[m]))[:top_k]
        if [line for _, line in ranked] != [e["line"] for e in d["top"][r]]:
            fail("%s: top %s lines %r, reference %r" % (name, r, [e["line"] for e in d["top"][r]],
                                                        [line for _, line in ranked]))


def stats(report, pairs):
    rep = json.load(open(os.path.join(report, "corpus.json")))
    lines = [int(p.split("=", 1)[0]) for p in pairs]
    measured = [measure(p.split("=", 1)[1], rep["groups"]) for p in pairs]
    if rep["examples"] != len(pairs):
        fail("examples %d, reference %d" % (rep["examples"], len(pairs)))
    max_tokens = max(n for _, n in measured)
    visible = [b for b in range(2 * POS_SIDE - 1)
               if (bin_range(b)[0] if bin_range(b)[0] >= 0 else -bin_range(b)[1]) <= max_tokens - 1]
    levels, alpha = rep["quantile_levels"], rep["settings"]["sketch_alpha"]
    for h, d in enumerate(rep["heads"]):
        positional = rep["groups"][[g["kind"] for g in rep["groups"]].index(d["kind"])]["positional"]
        per_example = [m[0][h][0] for m in measured]
        check_head(h, d, per_example, lines, rep["settings"]["top_k"], positional, levels, alpha)
        if positional:
            want = np.mean([m[0][h][1] for m in measured], axis=0)[visible]
            got = np.array([math.nan if x is None else x for x in d["positions"]])
            if got.shape != want.shape or np.max(np.abs(got - want)) > 1e-9:
                fail("%s %d.%d positions differ: %s vs %s" % (d["kind"], d["layer"], d["head"], got[:6], want[:6]))
        for s in rep["special_tokens"]:
            vals = [m[0][h][2][s["label"]] for m in measured if s["label"] in m[0][h][2]]
            if s["n"][h] != len(vals) or not close(float(np.mean(vals)) if vals else None, s["mean"][h], 1e-9):
                fail("%s %d.%d special %r: %r over %d, reference %r over %d" % (
                    d["kind"], d["layer"], d["head"], s["label"], s["mean"][h], s["n"][h],
                    float(np.mean(vals)) if vals else None, len(vals)))
    labels_seen = set(k for m in measured for head in m[0] for k in head[2])
    if labels_seen != set(s["label"] for s in rep["special_tokens"]):
        fail("special labels %r, reference %r" % ([s["label"] for s in rep["special_tokens"]], labels_seen))
    return "%d inputs x %d heads x %d metrics" % (len(pairs), len(rep["heads"]), len(METRICS))


def qk(report, pairs):
    rep = json.load(open(os.path.join(report, "corpus.json")))["qk"]
    t, _ = safetensors_np.read(os.path.join(report, "qk_vectors.safetensors"))
    vec, is_key = t["vectors"].astype(np.float64), t["is_key"]
    rows = list(csv.DictReader(open(os.path.join(report, "qk.csv"))))
    traces = {int(p.split("=", 1)[0]): safetensors_np.read(p.split("=", 1)[1]) for p in pairs}
    kind, layer, head = rep["kind"], rep["layer"], rep["head"]
    name = "%s.%d" % (kind, layer) if kind != "self" else "%d" % layer
    seen, want_all = set(), set()
    for line, (tr, meta) in traces.items():
        q, k = tr["q." + name], tr["k." + name]
        mask = tr.get("keymask." + kind)
        want_all |= {(line, "query", i) for i in range(q.shape[1])}
        want_all |= {(line, "key", j) for j in range(k.shape[1]) if mask is None or mask[j]}
    for i, r in enumerate(rows):
        tr, meta = traces[int(r["line"])]
        q, k = tr["q." + name], tr["k." + name]
        pos, key_side = int(r["pos"]), r["type"] == "key"
        want = k[head // (q.shape[0] // k.shape[0]), pos] if key_side else q[head, pos]
        if key_side != bool(is_key[i]) or np.max(np.abs(want - vec[i])) > 1e-6 * (1 + np.max(np.abs(want))):
            fail("point %d (%s line %s pos %s) differs from the trace" % (i, r["type"], r["line"], r["pos"]))
        n = (k if key_side else q).shape[1]
        labels = side_labels(meta, kind, key_side, n)
        label = labels[pos].encode()[:LABEL_MAX].decode(errors="ignore") if labels else ""
        if int(r["n_tokens"]) != n or rep["points"][i]["token"] != label:
            fail("point %d: n_tokens %s token %r, trace %d %r" % (i, r["n_tokens"], rep["points"][i]["token"],
                                                                  n, label))
        seen.add((int(r["line"]), r["type"], pos))
    n_side = max(sum(p[1] == side for p in want_all) for side in ("query", "key"))
    if rep["samples_per_side"] >= n_side and seen != want_all:
        fail("the sample (larger than the corpus) misses %d and adds %d positions"
             % (len(want_all - seen), len(seen - want_all)))
    x, key = vec.copy(), is_key.astype(bool)
    x[key] += x[~key].mean(axis=0) - x[key].mean(axis=0)
    c = math.sqrt(np.linalg.norm(x[key], axis=1).mean() / np.linalg.norm(x[~key], axis=1).mean())
    x[~key] *= c
    x[key] /= c
    xc = x - x.mean(axis=0)
    w, v = np.linalg.eigh(np.cov(xc, rowvar=False))
    order = np.argsort(w)[::-1][:2]
    ratio = w[order] / np.sum(np.clip(w, 0, None))
    for n, col in enumerate(order):
        e = v[:, col]
        e = e if e[np.argmax(np.abs(e))] > 0 else -e
        proj = xc @ e
        got = np.array([float(r["pca_x" if n == 0 else "pca_y"]) for r in rows])
        if np.max(np.abs(proj - got)) > 1e-6 * (1 + np.max(np.abs(proj))):
            fail("PCA component %d differs from numpy by %g" % (n + 1, np.max(np.abs(proj - got))))
        if abs(ratio[n] - rep["pca_variance_ratio"][n]) > 1e-9:
            fail("variance ratio %d: %r, numpy %r" % (n + 1, rep["pca_variance_ratio"][n], ratio[n]))
    return "%d vectors, PCA" % len(rows)


def main():
    if len(sys.argv) < 4 or sys.argv[1] not in ("stats", "qk"):
        sys.exit(__doc__)
    what = (stats if sys.argv[1] == "stats" else qk)(sys.argv[2], sys.argv[3:])
    if failures:
        print("\n".join(failures[:12]) + ("\n... %d more" % (len(failures) - 12) if len(failures) > 12 else ""))
        sys.exit(1)
    print("ok", what)


if __name__ == "__main__":
    main()
