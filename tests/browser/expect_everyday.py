#!/usr/bin/python3
"""Reference numbers for tests/browser/everyday.test.mjs, computed with numpy from trace files, independently
of the viewer and of attnviz's C code:
  expect_everyday.py row TRACE LAYER HEAD Q      attention row of query Q (HEAD: index or "mean"), from the
                                                 stored matrices, or softmax(scale q.k) of a lazy trace's q/k
  expect_everyday.py rollout TRACE Q             row Q of the attention rollout (mean fusion, (A + I) / 2)
  expect_everyday.py image TRACE                 the "image" tensor [3, H, W] as nested lists
Prints JSON."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import numpy as np  # noqa: E402
import safetensors_np  # noqa: E402


def probs(t, meta, layer, head):
    if "attn.self.%d" % layer in t:
        return np.asarray(t["attn.self.%d" % layer][head], np.float64)
    p = json.loads(meta["lazy_attn"])["self"]
    q, k = t["q.%d" % layer], t["k.%d" % layer]
    s = q[head].astype(np.float64) @ k[head // (q.shape[0] // k.shape[0])].T.astype(np.float64)
    s *= p["scale"][layer]
    if p["causal"]:
        s[np.triu_indices(len(s), 1)] = -np.inf
    e = np.exp(s - s.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def main():
    what, path = sys.argv[1], sys.argv[2]
    t, meta = safetensors_np.read(path)
    if what == "row":
        layer, head, q = int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
        H = int(meta["n_heads"])
        rows = [probs(t, meta, layer, h)[q] for h in (range(H) if head == "mean" else [int(head)])]
        print(json.dumps(np.mean(rows, 0).tolist()))
    elif what == "rollout":
        q, L, H = int(sys.argv[3]), int(meta["n_layers"]), int(meta["n_heads"])
        r = None
        for layer in range(L):
            a = np.mean([probs(t, meta, layer, h) for h in range(H)], 0)
            a = 0.5 * a + 0.5 * np.eye(len(a))
            a /= a.sum(1, keepdims=True)
            r = a if r is None else a @ r
        print(json.dumps(r[q].tolist()))
    elif what == "image":
        print(json.dumps(t["image"].astype(int).tolist()))


if __name__ == "__main__":
    main()
