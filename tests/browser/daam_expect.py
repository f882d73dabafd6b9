#!/usr/bin/python3
"""Expected DAAM map for the viewer test, by scripts/t2i/daam.py (numpy + PyTorch's F.interpolate) from a
trace's daam.raw: daam_expect.py TRACE WORD STEP0 STEP1 LAYERS(comma-separated) HEAD(-1: all) -> JSON list
(size*size)."""
import json
import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path[:0] = [os.path.join(ROOT, "scripts"), os.path.join(ROOT, "scripts", "t2i")]
import numpy as np  # noqa: E402
import daam  # noqa: E402
import safetensors_np as st  # noqa: E402

path, word, s0, s1, layers, head = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], int(
    sys.argv[6])
t, meta = st.read(path)
toks = json.loads(meta["prompt_tokens"])
g, size = [int(v) for v in meta["patch_grid"].split("x")][0], t["image"].shape[1]
N, L, H, _ = t["daam.raw"].shape
S = len(toks)
probs = np.zeros((N, L, H, 1 + g * g, S), np.float32)  # the time token's row: not stored, not used
probs[:, :, :, 1:, :] = t["daam.raw"].reshape(N, L, H, S, g * g).transpose(0, 1, 2, 4, 3)
maps = daam.word_maps(probs, g, size, range(s0, s1), [int(v) for v in layers.split(",")], None if head < 0 else [head])
group = [j for j, w in enumerate(toks) if w == word]
m = maps[group].astype(np.float64)
if len(group) > 1:
    m = daam.normalize(m.sum(axis=0, keepdims=True))
print(json.dumps(m.reshape(-1).tolist()))
