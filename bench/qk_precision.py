#!/usr/bin/python3
"""How far attention rows move when a lazy trace's queries and keys are stored in a cheaper form
(docs/TRACE_FORMAT.md, "Why F32 queries and keys"). Reads the F32 q.<l>/k.<l> of a lazy trace (kind self),
recomputes sample rows in float64 from them as stored and rounded to F16 and BF16, and prints the largest
absolute difference of a probability per form (the exactness the tests ask of lazy rows: 1e-5).
Usage: qk_precision.py TRACE [ROWS_PER_HEAD]"""
import json, struct, sys

import numpy as np

path, n_rows = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 8
with open(path, "rb") as f:
    (hlen,) = struct.unpack("<Q", f.read(8))
    header = json.loads(f.read(hlen))
meta = header.pop("__metadata__")
lazy = json.loads(meta["lazy_attn"])["self"]
data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + hlen)


def tensor(name):
    e = header[name]
    a, b = e["data_offsets"]
    return np.frombuffer(data[a:b], dtype=np.float32).reshape(e["shape"])


def bf16(x):  # round to nearest even, as a bf16 conversion does
    u = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000
    return u.astype(np.uint32).view(np.float32)


forms = {"f16": lambda x: x.astype(np.float16).astype(np.float32), "bf16": bf16}
worst = {k: 0.0 for k in forms}
rng = np.random.default_rng(0)
layers = sorted(int(k.split(".")[1]) for k in header if k.startswith("q."))
for l in layers:
    q, k = tensor(f"q.{l}"), tensor(f"k.{l}")
    H, T, _ = q.shape
    G = k.shape[0]
    scale = lazy["scale"][l]
    for h in range(H):
        g = h // (H // G)
        for i in rng.choice(T, size=min(n_rows, T), replace=False):
            n = i + 1 if lazy["causal"] else T

            def row(qv, kv):
                s = scale * (kv[:n].astype(np.float64) @ qv.astype(np.float64))
                e = np.exp(s - s.max())
                return e / e.sum()

            exact = row(q[h, i], k[g])
            for name, f in forms.items():
                d = float(np.abs(row(f(q[h, i]), f(k[g])) - exact).max())
                worst[name] = max(worst[name], d)
print(json.dumps({"trace": path, "layers": len(layers), "rows_per_head": n_rows,
                  "max_abs_prob_diff": {k: float(f"{v:.3g}") for k, v in worst.items()}}))
