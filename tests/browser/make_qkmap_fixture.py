#!/usr/bin/python3
"""A lazy trace written by numpy for the Q/K map tests (tests/cli/test_qkmap.sh): 12 layers x 8 query heads
reading 4 key heads (grouped-query attention), head size 8, 600 tokens, the last 40 keys padding
(keymask.self), random queries and keys (seed 7) with a per-head offset between the sides, as AttentionViz's
normalization expects of real heads. Large enough that a small page (--max-mb 0.5) samples each side and
keeps only some layers.

  make_qkmap_fixture.py OUT.safetensors
"""

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import safetensors_np  # noqa: E402

L, H, KV, T, D, PAD = 12, 8, 4, 600, 8, 40


def main(out):
    rng = np.random.default_rng(7)
    tensors = {}
    for layer in range(L):
        q = rng.standard_normal((H, T, D)) + rng.standard_normal((H, 1, D)) * 2
        k = rng.standard_normal((KV, T, D)) * 0.5 + rng.standard_normal((KV, 1, D)) * 3
        tensors["q.%d" % layer] = q.astype(np.float32)
        tensors["k.%d" % layer] = k.astype(np.float32)
    mask = np.ones(T, np.uint8)
    mask[T - PAD:] = 0
    tensors["keymask.self"] = mask
    meta = {
        "format": "attnviz-trace", "version": "2", "model": "qkmap-fixture", "arch": "llama", "lazy": "1",
        "lazy_attn": json.dumps({"self": {"causal": False, "scale": [D ** -0.5] * L, "softcap": [0] * L,
                                          "window": [0] * L}}),
        "tokens": json.dumps(["t%d" % i for i in range(T)]), "token_ids": json.dumps(list(range(T))),
    }
    safetensors_np.write(out, tensors, meta)


if __name__ == "__main__":
    main(sys.argv[1])
