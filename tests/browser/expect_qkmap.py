#!/usr/bin/python3
"""numpy reference of the viewer's query/key map (tests/cli/test_qkmap.sh, tests/browser/qkmap.test.mjs).

  expect_qkmap.py check PAGE.html TRACE.safetensors [NAME]
      every embedded map of the page (meta "qkmap": each kind, layer and head) against AttentionViz's
      normalization + PCA by numpy.linalg.eigh on the trace's own queries and keys at the sampled positions;
      the sampled positions (evenly spaced, padding keys left out) and their labels; prints PASS/FAIL lines.
  expect_qkmap.py top TRACE.safetensors KIND LAYER HEAD QUERY N
      the N strongest keys of one attention row of a full trace (its stored matrix), as JSON
      [[key, weight], ...]: the keys the view rings when that query is clicked.
"""

import base64
import json
import math
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import safetensors_np  # noqa: E402


def page_data(path):
    html = open(path, encoding="utf-8").read()
    meta = json.loads(re.search(r'<script type="application/json" id="av-meta">(.*?)</script>', html, re.S).group(1))
    blob = base64.b64decode(re.search(r'<script type="text/plain" id="av-data">(.*?)</script>', html, re.S).group(1))
    return meta, blob


def qk_of(tensors, kind, layer):
    name = "%d" % layer if kind == "self" else "%s.%d" % (kind, layer)
    return tensors["q." + name].astype(np.float64), tensors["k." + name].astype(np.float64)


def attentionviz_pca(q, k):
    """Keys translated onto the queries' mean, sides scaled to equal mean norms, then the first two principal
    components (sign: each component's largest-magnitude entry positive). Returns (n, 2) and the variance
    ratios."""
    if len(q) and len(k):
        k = k - k.mean(0) + q.mean(0)
        c = math.sqrt(np.linalg.norm(k, axis=1).mean() / np.linalg.norm(q, axis=1).mean())
        q, k = q * c, k / c
    x = np.vstack([q, k])
    cov = np.cov(x, rowvar=False, ddof=1)
    w, v = np.linalg.eigh(cov)
    order = np.argsort(w)[::-1][:2]
    out = np.zeros((len(x), 2))
    for col, c in enumerate(order):
        vec = v[:, c]
        vec = vec * (1 if vec[np.argmax(np.abs(vec))] > 0 else -1)
        out[:, col] = (x - x.mean(0)) @ vec
    total = np.clip(w, 0, None).sum()
    return out, [w[c] / total for c in order]


def even(idx, cap):
    m = min(len(idx), cap)
    return [idx[i * len(idx) // m] for i in range(m)]


def labels(meta_trace, kind, side, n):
    key = {"self": "tokens", "enc": "source_tokens", "dec": "target_tokens",
           "cross": "target_tokens" if side == "q" else "source_tokens"}[kind]
    toks = json.loads(meta_trace.get(key) or meta_trace.get("tokens") or "[]")
    return toks if len(toks) == n else None


def check(page, trace, name):
    meta, blob = page_data(page)
    tensors, tmeta = safetensors_np.read(trace)
    qm = meta.get("qkmap")
    if not qm:
        print("FAIL qkmap_numpy_%s: the page has no qkmap (%s)" % (name, meta.get("qkmap_note")))
        return
    worst, n_maps, bad = 0.0, 0, []
    for kind, K in qm["kinds"].items():
        q0, k0 = qk_of(tensors, kind, 0)
        mask = tensors.get("keymask." + kind)
        valid = [j for j in range(k0.shape[1]) if mask is None or mask[j]]
        cap = qm["side_max"]
        if K["qpos"] != even(list(range(q0.shape[1])), cap) or K["kpos"] != even(valid, cap):
            bad.append("%s: sampled positions differ from evenly spaced picks of %d" % (kind, cap))
        for side, pos in (("q", K["qpos"]), ("k", K["kpos"])):
            full = labels(tmeta, kind, side, q0.shape[1] if side == "q" else k0.shape[1])
            if full is not None and K[side + "tok"] != [full[p] for p in pos]:
                bad.append("%s: %s labels differ from the trace's tokens" % (kind, side))
        for m in K["maps"]:
            q, k = qk_of(tensors, kind, m["layer"])
            H, G = q.shape[0], q.shape[0] // k.shape[0]
            n = len(K["qpos"]) + len(K["kpos"])
            got = np.frombuffer(blob, np.float32, H * n * 2, m["off"]).reshape(H, n, 2)
            for h in range(H):
                ref, var = attentionviz_pca(q[h][K["qpos"]], k[h // G][K["kpos"]])
                err = np.abs(got[h] - ref).max() / max(np.abs(ref).max(), 1e-12)
                verr = max(abs(a - b) for a, b in zip(m["var"][h], var))
                worst = max(worst, err)
                n_maps += 1
                if err > 1e-4 or verr > 1e-6:
                    bad.append("%s layer %d head %d: relative error %.2e, variance ratio error %.2e" %
                               (kind, m["layer"], h, err, verr))
    if bad:
        print("FAIL qkmap_numpy_%s: %s" % (name, bad[0]))
    elif n_maps == 0:
        print("FAIL qkmap_numpy_%s: no map embedded" % name)
    else:
        print("PASS qkmap_numpy_%s" % name)
        print("# %s: %d maps, worst relative difference %.1e" % (name, n_maps, worst))


def top(trace, kind, layer, head, query, n):
    tensors, _ = safetensors_np.read(trace)
    row = tensors["attn.%s.%d" % (kind, layer)][head, query].astype(np.float64)  # a full trace's matrix
    order = sorted(range(len(row)), key=lambda j: (-row[j], j))[:n]
    print(json.dumps([[j, float(row[j])] for j in order]))


if __name__ == "__main__":
    if sys.argv[1] == "check":
        check(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else "page")
    else:
        top(sys.argv[2], sys.argv[3], *map(int, sys.argv[4:8]))
