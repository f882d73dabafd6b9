#!/usr/bin/python3
"""Reference numbers for the browser tests, computed from a trace file with numpy (independently of the
viewer): expect.py TRACE KIND LAYER HEAD Q K [exclude]  -> prints the weight and the row max as JSON.
HEAD is an index, "mean" or "max"; "exclude" drops token 0 and renormalizes the row as the viewer does."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import numpy as np  # noqa: E402
import safetensors_np  # noqa: E402


def main():
    path, kind, layer, head, q, k = sys.argv[1:7]
    exclude = len(sys.argv) > 7 and sys.argv[7] == "exclude"
    tensors, meta = safetensors_np.read(path)
    a = np.asarray(tensors[f"attn.{kind}.{int(layer)}"], np.float64)  # [heads, nq, nk]
    rows = a[:, int(q), :].copy()
    if exclude:
        rows[:, 0] = 0
        rows /= np.where(rows.sum(-1, keepdims=True) > 0, rows.sum(-1, keepdims=True), 1)
    if head == "mean":
        row = rows.mean(0)
    elif head == "max":
        row = rows.max(0)
    else:
        row = rows[int(head)]
    print(json.dumps({"value": float(row[int(k)]), "row_max": float(row.max()),
                      "head_row_max": float(a[:, int(q), :].max()), "tokens": json.loads(meta["tokens"])[:3]}))


if __name__ == "__main__":
    main()
