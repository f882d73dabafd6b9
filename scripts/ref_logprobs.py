#!/usr/bin/python3
"""Float64 reference of a generation trace of a llama2.c model (attnviz generate -o), independent of the C code.

    ref_logprobs.py TRACE MODEL.bin [--tol 1e-4]

Runs the whole sequence of the trace through ref_llama.py's PyTorch transformer in float64 and checks, for every
position t >= 1 (the prompt's tokens and the produced ones):
  - logprobs.token[t]   = log softmax(logits[t - 1])[token t]
  - logprobs.entropy[t] = -sum p log p of that distribution
  - logprobs.ids[t]     = its most probable tokens (ties within 1e-6 in either order), logprobs.topk their values
  - the produced tokens are the ones the sampler of docs/GENERATION.md picks, replayed here from the trace's
    settings (metadata "generation": temperature, top_k, top_p, min_p, seed): greedy = argmax; otherwise
    SplitMix64 draws over the filtered distribution (a draw within 1e-6 of a boundary may go either way).
Prints the largest differences; exits 1 when one is above the tolerance.
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ref_llama  # noqa: E402
import safetensors_np  # noqa: E402

M64 = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed):
        self.s = seed & M64

    def uniform(self):
        self.s = (self.s + 0x9E3779B97F4A7C15) & M64
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return ((z ^ (z >> 31)) >> 11) / float(1 << 53)


def sample(logits, s, rng):
    """The token docs/GENERATION.md's procedure picks from float64 logits, and the distance of the draw from the
    nearest boundary of the cumulative distribution (small: a float32 run may pick a neighbour)."""
    if s["temperature"] <= 0:
        return int(np.argmax(logits)), 1.0
    order = sorted(range(len(logits)), key=lambda i: (-logits[i], i))
    if s["top_k"] > 0:
        order = order[: s["top_k"]]
    z = np.array([logits[i] for i in order]) / s["temperature"]
    p = np.exp(z - z.max())
    keep = len(order)
    if s["top_p"] < 1:
        cum, keep = 0.0, 0
        while keep < len(order) and cum < s["top_p"] * p.sum():
            cum += p[keep]
            keep += 1
    if s["min_p"] > 0:
        keep = next((i for i in range(1, keep) if p[i] < s["min_p"] * p[0]), keep)
    p = p[:keep]
    u = rng.uniform() * p.sum()
    cum = np.cumsum(p)
    i = int(np.searchsorted(cum, u, side="right"))
    i = min(i, keep - 1)
    return order[i], float(np.min(np.abs(cum - u)) / p.sum())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trace")
    ap.add_argument("model")
    ap.add_argument("--tol", type=float, default=1e-4)
    a = ap.parse_args()
    t, meta = safetensors_np.read(a.trace)
    ids = json.loads(meta["token_ids"])
    prompt_len = int(meta["prompt_len"])
    gen = json.loads(meta["generation"])
    cfg, w = ref_llama.load_llama2c(a.model)
    logits, _ = ref_llama.Transformer(cfg, w, dtype=torch.float64).forward(ids, want_attn=False)
    lp = torch.log_softmax(logits, -1).numpy()  # [T, V] float64
    worst = {"logprob": 0.0, "entropy": 0.0, "alternatives": 0.0}
    bad = []
    for i in range(1, len(ids)):
        ref = lp[i - 1]
        worst["logprob"] = max(worst["logprob"], abs(float(t["logprobs.token"][i]) - ref[ids[i]]))
        worst["entropy"] = max(worst["entropy"], abs(float(t["logprobs.entropy"][i]) + float((np.exp(ref) * ref).sum())))
        for j, (aid, alp) in enumerate(zip(t["logprobs.ids"][i], t["logprobs.topk"][i])):
            rank_val = np.sort(ref)[::-1][j]
            if abs(ref[aid] - rank_val) > 1e-6:
                bad.append("position %d: alternative %d is id %d (log p %.6f), the reference's has %.6f" % (i, j, aid, ref[aid], rank_val))
            worst["alternatives"] = max(worst["alternatives"], abs(float(alp) - ref[aid]))
    rng = SplitMix64(gen["sampling"]["seed"])
    close_calls = 0
    for i in range(prompt_len, len(ids)):
        want, margin = sample(logits[i - 1].numpy(), gen["sampling"], rng)
        if want != ids[i]:
            if margin < 1e-6:
                close_calls += 1
            else:
                bad.append("position %d: produced %d, the sampler replayed in float64 picks %d" % (i, ids[i], want))
            break  # the rest of the sequence follows another path
    print("# %d positions, %d produced; max |attnviz - float64|: log-prob %.2e, entropy %.2e, alternatives %.2e%s" % (
        len(ids) - 1, len(ids) - prompt_len, worst["logprob"], worst["entropy"], worst["alternatives"],
        " (a draw on a boundary)" if close_calls else ""))
    for b in bad[:5]:
        print(b)
    ok = not bad and all(v <= a.tol for v in worst.values())
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
