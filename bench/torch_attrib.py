#!/usr/bin/python3
"""PyTorch baseline of attnviz attribute: every method on a Llama model, with Captum's algorithms written plainly (Captum itself is not a Debian package), float32 eager PyTorch on the CPU.

  occlusion   Captum FeatureAblation over the token positions of the source with a baseline token id:
              perturbed inputs evaluated `--batch` at a time (perturbations_per_eval), attribution =
              log p(target | input) - log p(target | position j replaced), every position including BOS.
  ig          Captum IntegratedGradients on the input embeddings (LayerIntegratedGradients on the embedding
              layer): the baseline token's embedding at every source position, `--steps` Gauss-Legendre
              points (Captum's default rule), `--batch` points per forward/backward (internal_batch_size),
              attribution = (e - b) . sum_k w_k grad_k summed over the embedding; reports the completeness
              error as Captum's convergence delta.
  attn-grad   attention x gradient (Hao et al. 2021): sum over layers, heads and queries of A dlogp/dA.

On 2 cores the full PyTorch occlusion and IG of the 1.1 B shape take hours: --occlusion-subset and --ig-points
time a fixed subset (evenly spaced positions; the first points) and extrapolate per perturbed input or point
(each costs the same full pass); the JSON says what was measured.

The model is loaded as bench/torch_llama.py loads it (llama2.c .bin or a Hugging Face directory made by
bench/make_synth_llama.py). Prints one JSON object: seconds per method, the attributions' sums (to compare
with attnviz's), threads. Set OMP_WAIT_POLICY=PASSIVE in the environment on a shared machine.

  OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 bench/torch_attrib.py --model /tmp/synth-1b --tokens 512 --threads 2
"""
import time

T_START = time.time()

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "scripts"))
import ref_llama  # noqa: E402
import torch_llama  # noqa: E402


class Llama:
    """Batched causal Llama forward on input embeddings [B, T, dim], differentiable."""

    def __init__(self, cfg, w):
        self.cfg, self.w = cfg, w

    def embed(self, ids):
        return self.w["tok_emb"][torch.as_tensor(ids)]

    def forward(self, x, keep=None):
        """Final-normed rows [B, T, dim]; with a list `keep`, each layer's attention [B, H, T, T] kept with its
        gradient (for attention x gradient)."""
        c, w = self.cfg, self.w
        B, T, _ = x.shape
        nh, nkv, hs = c.n_heads, c.n_kv_heads, c.head_size
        cos, sin = ref_llama.rope_tables(c, T)
        mask = torch.full((T, T), float("-inf")).triu(1)
        for l in range(c.n_layers):
            h = ref_llama.rmsnorm(x, w["rms_att"][l], c.norm_eps)
            q = (h @ w["wq"][l].t()).view(B, T, nh, hs).transpose(1, 2)
            k = (h @ w["wk"][l].t()).view(B, T, nkv, hs).transpose(1, 2)
            v = (h @ w["wv"][l].t()).view(B, T, nkv, hs).transpose(1, 2)
            q, k = ref_llama.apply_rope(q, cos, sin, c.rope_style), ref_llama.apply_rope(k, cos, sin, c.rope_style)
            k, v = k.repeat_interleave(nh // nkv, 1), v.repeat_interleave(nh // nkv, 1)
            a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hs) + mask, -1)
            if keep is not None:
                a.retain_grad()
                keep.append(a)
            x = x + (a @ v).transpose(1, 2).reshape(B, T, nh * hs) @ w["wo"][l].t()
            h = ref_llama.rmsnorm(x, w["rms_ffn"][l], c.norm_eps)
            x = x + (F.silu(h @ w["w1"][l].t()) * (h @ w["w3"][l].t())) @ w["w2"][l].t()
        return ref_llama.rmsnorm(x, w["rms_final"], c.norm_eps)

    def logp(self, x, row, target, keep=None):
        """log p(target) at one row of every sequence: [B]."""
        h = self.forward(x, keep)[:, row]
        return torch.log_softmax(h @ self.w["wcls"].t(), -1)[:, target]


def subset(n, k):
    """All of range(n), or k of them evenly spaced with the first and the last (a fixed, deterministic subset)."""
    if not k or k >= n:
        return list(range(n))
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)}) if k > 1 else [0]


@torch.no_grad()
def occlusion(m, ids, S, row, target, baseline, batch, only=0):
    """Captum FeatureAblation, one feature per source position, perturbations_per_eval = batch. only > 0:
    just `only` positions (subset()); the others stay NaN. Returns the attribution, f(input) and the seconds
    of the f(input) pass (the rest is per perturbed input)."""
    t0 = time.perf_counter()
    x = m.embed(ids)[None]
    f0 = m.logp(x, row, target)[0]
    t_f0 = time.perf_counter() - t0
    out = torch.full((S,), float("nan"))
    pos = subset(S, only)
    for j0 in range(0, len(pos), batch):
        js = pos[j0:j0 + batch]
        xb = x.repeat(len(js), 1, 1)
        for b, j in enumerate(js):
            xb[b, j] = m.w["tok_emb"][baseline]
        out[js] = f0 - m.logp(xb, row, target)
    return out, float(f0), t_f0


@torch.no_grad()
def shapley(m, ids, S, row, target, baseline, samples, seed, batch):
    """Captum ShapleyValueSampling, one feature per source position: per sampled permutation, every position
    at the baseline, then put back in permutation order, each credited with the change of log p it makes;
    the S + 1 inputs of a permutation evaluated `batch` at a time."""
    x = m.embed(ids)[None]
    g = torch.Generator().manual_seed(seed)
    out = torch.zeros(S, dtype=torch.float64)
    for _ in range(samples):
        perm = torch.randperm(S, generator=g).tolist()
        xs = x.repeat(S + 1, 1, 1)
        for k in range(S + 1):
            xs[k, perm[k:]] = m.w["tok_emb"][baseline]
        v = torch.cat([m.logp(xs[k0:k0 + batch], row, target) for k0 in range(0, S + 1, batch)]).double()
        out[perm] += v[1:] - v[:-1]
    return (out / samples).float()


def gradient(m, ids, S, row, target):
    """Captum Saliency (abs=False, reduced by the L2 norm over the embedding as inseq does) and InputXGradient
    on the input embeddings: one forward and backward."""
    x = m.embed(ids)[None].clone().requires_grad_(True)
    m.logp(x, row, target).sum().backward()
    g = x.grad[0, :S]
    return g.norm(dim=-1), (x.detach()[0, :S] * g).sum(-1)


def attention_gradient(m, ids, S, row, target):
    """Attention x gradient (Hao et al. 2021): sum over layers, heads and queries of A_qj d logp / d A_qj."""
    keep, x = [], m.embed(ids)[None].clone().requires_grad_(True)  # a graph through the attention
    m.logp(x, row, target, keep).sum().backward()
    return sum((a * a.grad).sum((0, 1, 2)) for a in keep)[:S].detach()


def integrated_gradients(m, ids, S, row, target, baseline, steps, batch, points=0):
    """Captum IntegratedGradients on the embeddings, method gausslegendre, internal_batch_size = batch.
    points > 0: only the first `points` points (rounded up to whole batches) and no completeness check: the
    time of a subset, the attribution partial."""
    nodes, weights = np.polynomial.legendre.leggauss(steps)
    alphas, w = 0.5 * (nodes + 1), 0.5 * weights
    with torch.no_grad():
        x = m.embed(ids)
        b = x.clone()
        b[:S] = m.w["tok_emb"][baseline]
    total = torch.zeros(S, x.shape[1])
    for k0 in range(0, min(steps, points) if points else steps, batch):
        ks = list(range(k0, min(steps, k0 + batch)))
        a = torch.tensor(alphas[ks], dtype=torch.float32)[:, None, None]
        xs = (b[None] + a * (x - b)[None]).detach().requires_grad_(True)
        m.logp(xs, row, target).sum().backward()
        total += (torch.tensor(w[ks], dtype=torch.float32)[:, None, None] * xs.grad[:, :S]).sum(0)
    attr = ((x - b)[:S] * total).sum(-1)
    if points and points < steps:
        return attr, float("nan")
    with torch.no_grad():
        delta = float(attr.sum()) - float(m.logp(x[None], row, target)[0] - m.logp(b[None], row, target)[0])
    return attr, delta


def draw_ids(n, vocab, seed):
    """BOS and n random ids in [3, vocab) (torch's generator, seeded): the source is the first n, the target
    the last."""
    g = torch.Generator().manual_seed(seed)
    return [ref_llama.BOS] + torch.randint(3, vocab, (n,), generator=g).tolist()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokens", type=int, default=512, help="source tokens (BOS + random ids, seeded)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--batch", type=int, default=8, help="perturbations / IG points per forward pass")
    ap.add_argument("--baseline", type=int, default=0)
    ap.add_argument("--samples", type=int, default=8, help="shapley: sampled permutations")
    ap.add_argument("--methods", default="occlusion,ig", help="comma list of occlusion,shapley,saliency,ixg,ig,"
                    "attn-grad")
    ap.add_argument("--ids", help="JSON file of the source ids (default: BOS + --tokens random ids, seeded)")
    ap.add_argument("--target", type=int, help="the target token id (default: one more random id)")
    ap.add_argument("--occlusion-subset", type=int, default=0, help="time occlusion on this many perturbed "
                    "inputs (evenly spaced positions) and extrapolate to all of them per input")
    ap.add_argument("--ig-points", type=int, default=0, help="time IG on the first this many points (whole "
                    "batches) and extrapolate to --steps per point")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg, w = torch_llama.load_hf(args.model) if os.path.isdir(args.model) else ref_llama.load_llama2c(args.model)
    m = Llama(cfg, {k: [t.float() for t in v] if isinstance(v, list) else v.float() for k, v in w.items()})
    ids = draw_ids(args.tokens, cfg.vocab_size, args.seed)
    if args.ids:
        ids = json.load(open(args.ids)) + [args.target]
    S, target, row = len(ids) - 1, ids[-1], len(ids) - 2  # source = ids[:S], one target token
    res = {"tokens": S, "threads": torch.get_num_threads(), "n_layers": cfg.n_layers, "batch": args.batch,
           "ids": ids, "torch_version": torch.__version__}
    methods = args.methods.split(",")
    run = {"occlusion": lambda: occlusion(m, ids, S, row, target, args.baseline, args.batch, args.occlusion_subset),
           "shapley": lambda: shapley(m, ids, S, row, target, args.baseline, args.samples, args.seed, args.batch),
           "saliency": lambda: gradient(m, ids, S, row, target)[0],
           "ixg": lambda: gradient(m, ids, S, row, target)[1],
           "ig": lambda: integrated_gradients(m, ids, S, row, target, args.baseline, args.steps, args.batch,
                                          args.ig_points),
           "attn-grad": lambda: attention_gradient(m, ids, S, row, target)}
    for name in methods:
        t0 = time.perf_counter()
        attr = run[name]()
        seconds = time.perf_counter() - t0
        if name == "ig":
            attr, res["ig_delta"] = attr
            done = min(args.steps, -(-args.ig_points // args.batch) * args.batch) if args.ig_points else args.steps
            if done < args.steps:  # every point costs the same: extrapolate per point
                res["ig_measured"] = {"points": done, "of": args.steps, "seconds": round(seconds, 3)}
                seconds *= args.steps / done
        if name == "occlusion":
            attr, _, t_f0 = attr
            pos = subset(S, args.occlusion_subset)
            if len(pos) < S:  # f(input) once, then the same cost per perturbed input (each a full pass)
                res["occlusion_measured"] = {"inputs": len(pos), "of": S, "seconds": round(seconds, 3),
                                             "positions": pos, "values": [float(attr[j]) for j in pos]}
                seconds = t_f0 + (seconds - t_f0) * S / len(pos)
        res["seconds_" + name] = round(seconds, 3)
        res[name + "_sum"] = float(torch.nan_to_num(attr, nan=0.0).sum())
    res["seconds_total_process"] = round(time.time() - T_START, 3)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
