#!/usr/bin/python3
"""Reference numbers for the browser tests of the viewer's analysis views, computed from a trace file with
numpy straight from the definitions in docs/ANALYSIS.md (independently of src/analysis/ and the viewer):

    expect_analysis.py roles TRACE KIND            per-head role scores, role and a few statistics
    expect_analysis.py rollout TRACE KIND          rollout matrix (mean over heads, (A + I) / 2); KIND cross:
                                                   the encoder-decoder variant
    expect_analysis.py norm TRACE LAYER HEAD Q K   alpha_qk * vnorm[h][k] (HEAD an index, or mean / max over heads)

Prints JSON."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import numpy as np  # noqa: E402
import safetensors_np  # noqa: E402

MIN_ROLE_SCORE = 0.3
ROLE_ORDER = ["previous_token", "first_token", "self", "broad"]


def layers(tensors, kind):
    out, layer = [], 0
    while f"attn.{kind}.{layer}" in tensors:
        out.append(np.asarray(tensors[f"attn.{kind}.{layer}"], np.float64))  # [heads, nq, nk]
        layer += 1
    return out


def head_scores(a, causal, positional):
    """Means over query rows of one head a [nq, nk]; row 0 of a causal layer is left out."""
    nq, nk = a.shape
    first_row = 1 if causal and nq > 1 else 0
    rows = range(first_row, nq)
    ent, unif, first, self_, prev = [], [], [], [], []
    for i in rows:
        n = i + 1 if causal else nk
        x = a[i, :n]
        ent.append(-sum(v * np.log(v) for v in x if v > 0))
        if n > 1:
            unif.append((np.minimum(x, 1.0 / n).sum() - 1.0 / n) / (1 - 1.0 / n))
        first.append(a[i, 0])
        if positional:
            self_.append(a[i, i])
            if i >= 1:
                prev.append(a[i, i - 1])
    mean = lambda v: float(np.mean(v)) if v else None  # noqa: E731
    return {"previous_token": mean(prev), "first_token": mean(first), "self": mean(self_), "broad": mean(unif),
            "entropy": mean(ent), "rows": len(rows)}


def roles(path, kind):
    tensors, _ = safetensors_np.read(path)
    out = []
    for layer, a in enumerate(layers(tensors, kind)):
        positional = kind != "cross"
        causal = positional and a.shape[1] == a.shape[2] and all(
            not np.triu(a[h], 1).any() for h in range(a.shape[0]))
        for h in range(a.shape[0]):
            s = head_scores(a[h], causal, positional)
            scores = {r: s[r] for r in ROLE_ORDER if s[r] is not None}
            best = None
            for r in ROLE_ORDER:  # the first of equal scores wins
                if r in scores and (best is None or scores[r] > scores[best]):
                    best = r
            role = best if best is not None and scores[best] >= MIN_ROLE_SCORE else "none"
            out.append({"layer": layer, "head": h, "role": role, "score": scores[best] if best else None,
                        "scores": scores, "entropy": s["entropy"], "rows": s["rows"]})
    return out


def residual(a, r=0.5):
    m = (1 - r) * a + r * np.eye(a.shape[0])
    return m / m.sum(-1, keepdims=True)


def rollout_of(mats, r=0.5):
    out = None
    for a in mats:
        m = residual(a.mean(0), r)
        out = m if out is None else m @ out
    return out


def rollout(path, kind):
    tensors, _ = safetensors_np.read(path)
    if kind != "cross":
        return rollout_of(layers(tensors, kind)).tolist()
    r = 0.5
    cross, dec, enc = layers(tensors, "cross"), layers(tensors, "dec"), layers(tensors, "enc")
    t_len, s_len = cross[0].shape[1:]
    r_enc = rollout_of(enc, r) if enc else np.eye(s_len)
    r_ts = np.zeros((t_len, s_len))
    for layer, c in enumerate(cross):
        if dec:
            r_ts = residual(dec[layer].mean(0), r) @ r_ts
        c = c.mean(0)
        c = c / c.sum(-1, keepdims=True)
        r_ts = r * r_ts + (1 - r) * c @ r_enc
    return r_ts.tolist()


def norm(path, layer, head, q, k):
    tensors, _ = safetensors_np.read(path)
    a = np.asarray(tensors[f"attn.self.{layer}"], np.float64)[:, q, k]  # [heads]
    vn = np.asarray(tensors[f"vnorm.{layer}"], np.float64)[:, k]  # [heads]
    per_head = a * vn
    value = per_head.mean() if head == "mean" else per_head.max() if head == "max" else per_head[int(head)]
    h = 0 if head in ("mean", "max") else int(head)
    return {"value": float(value), "alpha": float(a[h]), "vnorm": float(vn[h])}


def main():
    cmd, path = sys.argv[1], sys.argv[2]
    if cmd == "roles":
        res = roles(path, sys.argv[3])
    elif cmd == "rollout":
        res = rollout(path, sys.argv[3])
    elif cmd == "norm":
        res = norm(path, int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
    else:
        raise SystemExit(f"unknown command {cmd}")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
