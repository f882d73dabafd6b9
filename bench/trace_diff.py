#!/usr/bin/python3
"""Max |a - b| per tensor kind ("attn", "vnorm", ...) between two attnviz safetensors traces with the same
tensors; prints one JSON object. Used by bench/run.sh to show what the AMX split-bf16 GEMM changes against
plain f32 sgemm. Usage: trace_diff.py A.safetensors B.safetensors"""
import json, struct, sys

import numpy as np

DTYPES = {"F32": np.float32, "F16": np.float16}


def tensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
    for name, t in header.items():
        if name != "__metadata__" and t["dtype"] in DTYPES:
            a, b = t["data_offsets"]
            yield name, np.frombuffer(data[a:b], dtype=DTYPES[t["dtype"]]).reshape(t["shape"])


a, b = dict(tensors(sys.argv[1])), dict(tensors(sys.argv[2]))
worst = {}
for name, x in a.items():
    if name in b:
        kind = name.split(".")[0]
        d = float(np.max(np.abs(x.astype(np.float64) - b[name]))) if x.size else 0.0
        worst[kind] = max(worst.get(kind, 0.0), d)
print(json.dumps({k: float(f"{v:.3g}") for k, v in sorted(worst.items())}))
