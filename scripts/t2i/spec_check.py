#!/usr/bin/python3
"""Checks docs/T2I_MODEL.md against the fixtures: an independent implementation of the written specification
(float64 tensor math written out here from the spec, no nn modules, none of model.py / sample.py / daam.py),
run from the model directory's files, compared with tests/fixtures/t2i/prompt*.safetensors. It is what the C
engine must do, so a mistake in the spec (an ordering, a constant) shows up here first.

Usage: /usr/bin/python3 scripts/t2i/spec_check.py [--model models/demo-t2i] [--fixtures tests/fixtures/t2i]
Exit status 0 when every comparison is inside the C engine's tolerances (image 1e-3, attention 1e-4).
"""

import argparse
import json
import math
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import numpy as np  # noqa: E402
import torch  # noqa: E402

import safetensors_np as st  # noqa: E402

MASK = (1 << 64) - 1


def splitmix_normals(seed, n):
    s, out = seed, []
    while len(out) < n:
        u = []
        for _ in range(2):
            s = (s + 0x9E3779B97F4A7C15) & MASK
            z = ((s ^ (s >> 30)) * 0xBF58476D1CE4E5B9) & MASK
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
            u.append(((z ^ (z >> 31)) >> 11) * 2.0 ** -53)
        r, a = math.sqrt(-2.0 * math.log(1.0 - u[0])), 2.0 * math.pi * u[1]
        out += [r * math.cos(a), r * math.sin(a)]
    return np.array(out[:n], np.float32)


class Spec:
    def __init__(self, model_dir):
        self.c = json.load(open(os.path.join(model_dir, "config.json")))
        w, _ = st.read(os.path.join(model_dir, "model.safetensors"))
        self.w = {k: torch.from_numpy(v.astype(np.float64)) for k, v in w.items()}
        self.vocab = open(os.path.join(model_dir, "vocab.txt"), encoding="utf-8").read().split("\n")[:-1]

    def ln(self, x, n):
        m = x.mean(-1, keepdim=True)
        var = ((x - m) ** 2).mean(-1, keepdim=True)
        return (x - m) / torch.sqrt(var + self.c["layer_norm_eps"]) * self.w[n + ".weight"] + self.w[n + ".bias"]

    def lin(self, x, n):
        return x @ self.w[n + ".weight"].T + self.w[n + ".bias"]

    def gelu(self, u):
        return 0.5 * u * (1 + torch.erf(u / math.sqrt(2)))

    def attn(self, y, kv, n):
        nh, hd = self.c["num_attention_heads"], self.c["head_dim"]
        q, k, v = self.lin(y, n + ".q"), self.lin(kv, n + ".k"), self.lin(kv, n + ".v")
        probs, outs = [], []
        for h in range(nh):
            sl = slice(h * hd, (h + 1) * hd)
            p = torch.softmax(q[:, sl] @ k[:, sl].T / math.sqrt(hd), dim=-1)
            probs.append(p)
            outs.append(p @ v[:, sl])
        return self.lin(torch.cat(outs, 1), n + ".o"), torch.stack(probs)

    def block(self, x, n, mem=None):
        y = self.ln(x, n + ".attn_norm")
        x = x + self.attn(y, y, n + ".attn")[0]
        probs = None
        if mem is not None:
            a, probs = self.attn(self.ln(x, n + ".cross_norm"), mem, n + ".cross")
            a[: self.c["cross_attention_from"]] = 0  # the time token (row 0) reads no text when it is 1
            x = x + a
        y = self.ln(x, n + ".mlp_norm")
        return x + self.lin(self.gelu(self.lin(y, n + ".mlp.up")), n + ".mlp.down"), probs

    def tokens(self, text):
        ids = [self.vocab.index(w) if w in self.vocab else 1 for w in text.lower().split()]
        return [2] + ids + [3]

    def text(self, ids):
        x = self.w["text.embed_tokens.weight"][ids] + self.w["text.embed_positions.weight"][: len(ids)]
        for L in range(self.c["text_layers"]):
            x, _ = self.block(x, "text.layers.%d" % L)
        return self.ln(x, "text.norm")

    def time_token(self, t):
        half = self.c["time_freq_dim"] // 2
        w = [math.exp(-math.log(self.c["time_max_period"]) * j / half) for j in range(half)]
        s = torch.tensor([math.cos(t * x) for x in w] + [math.sin(t * x) for x in w], dtype=torch.float32)
        h = self.gelu(self.lin(s.double(), "denoiser.time_embed.linear_1"))
        return self.lin(h, "denoiser.time_embed.linear_2")

    def denoise(self, x, t, mem):
        p, g = self.c["patch_size"], self.c["patch_grid"][0]
        vecs = torch.zeros(g * g, 3 * p * p, dtype=torch.float64)
        for gy in range(g):
            for gx in range(g):
                for c in range(3):
                    for dy in range(p):
                        for dx in range(p):
                            vecs[gy * g + gx, c * p * p + dy * p + dx] = x[c, p * gy + dy, p * gx + dx]
        e = self.lin(vecs, "denoiser.patch_embed") + self.w["denoiser.embed_positions.weight"]
        h = torch.cat([self.time_token(t)[None], e])
        probs = []
        for L in range(self.c["denoiser_layers"]):
            h, pr = self.block(h, "denoiser.layers.%d" % L, mem)
            probs.append(pr)
        out = self.lin(self.ln(h, "denoiser.norm")[1:], "denoiser.head")
        v = torch.zeros_like(x)
        for gy in range(g):
            for gx in range(g):
                v[:, p * gy:p * gy + p, p * gx:p * gx + p] = out[gy * g + gx].reshape(3, p, p)
        return v, probs

    def alphas_cumprod(self):
        T, s = self.c["num_train_timesteps"], self.c["cosine_s"]
        f = [math.cos((u / T + s) / (1 + s) * math.pi / 2) ** 2 for u in range(T + 1)]
        out, prod = [], 1.0
        for t in range(T):
            prod *= 1.0 - min(1.0 - f[t + 1] / f[t], self.c["max_beta"])
            out.append(prod)
        return out


def bilinear(raw, size):
    """the spec's formula, written out"""
    g = raw.shape[-1]
    out = np.zeros(raw.shape[:-2] + (size, size))
    for y in range(size):
        sy = max((y + 0.5) * g / size - 0.5, 0.0)
        y0 = int(math.floor(sy))
        y1, ly = min(y0 + 1, g - 1), sy - y0
        for x in range(size):
            sx = max((x + 0.5) * g / size - 0.5, 0.0)
            x0 = int(math.floor(sx))
            x1, lx = min(x0 + 1, g - 1), sx - x0
            out[..., y, x] = ((1 - ly) * ((1 - lx) * raw[..., y0, x0] + lx * raw[..., y0, x1]) +
                              ly * ((1 - lx) * raw[..., y1, x0] + lx * raw[..., y1, x1]))
    return out


def check(path, spec, report):
    fx, meta = st.read(path)
    fx = {k: np.array(v) for k, v in fx.items()}  # writable copies
    text, seed, steps = meta["prompt"], int(meta["seed"]), int(meta["steps"])
    c = spec.c
    ids = spec.tokens(text)
    report("token ids", float(np.abs(np.array(ids) - fx["token_ids"]).max()), 0)
    mem_c, mem_u = spec.text(ids), spec.text([2, 3])
    report("text_mem", float((mem_c - torch.from_numpy(fx["text_mem"]).double()).abs().max()), 1e-4)
    x = torch.from_numpy(splitmix_normals(seed, 3 * 32 * 32).reshape(3, 32, 32)).double()
    report("noise", float((x - torch.from_numpy(fx["noise"]).double()).abs().max()), 0)
    ab = spec.alphas_cumprod()
    T = c["num_train_timesteps"]
    ts = [(steps - i) * T // steps - 1 for i in range(steps)]
    report("time_token", float((spec.time_token(ts[0]) - torch.from_numpy(fx["time_token"])).abs().max()), 1e-4)
    w = c["guidance_scale"]
    cross_steps = json.loads(meta["cross_steps"])
    x_steps = json.loads(meta["x_steps"])
    raw = np.zeros((len(ids), 8, 8))
    for i, t in enumerate(ts):
        vc, probs = spec.denoise(x, t, mem_c)
        vu, _ = spec.denoise(x, t, mem_u)
        if i == 0:
            report("v_cond step 0", float((vc - torch.from_numpy(fx["v_cond"])).abs().max()), 1e-3)
            report("v_uncond step 0", float((vu - torch.from_numpy(fx["v_uncond"])).abs().max()), 1e-3)
        v = vu + w * (vc - vu)
        a, b = math.sqrt(ab[t]), math.sqrt(1 - ab[t])
        a2, b2 = (math.sqrt(ab[ts[i + 1]]), math.sqrt(1 - ab[ts[i + 1]])) if i + 1 < steps else (1.0, 0.0)
        x = a2 * (a * x - b * v).clamp(-1, 1) + b2 * (b * x + a * v)
        if i in cross_steps:
            d = max(float((probs[L] - torch.from_numpy(fx["cross.step%d.layer%d" % (i, L)])).abs().max())
                    for L in range(len(probs)))
            report("cross-attention step %d (all layers)" % i, d, 1e-4)
        if i in x_steps:
            report("x after step %d" % i, float((x - torch.from_numpy(fx["x.step%d" % i])).abs().max()), 1e-3)
        for pr in probs:
            raw += pr[:, 1:, :].sum(0).numpy().T.reshape(len(ids), 8, 8)
    img = ((x + 1) / 2).clamp(0, 1)
    report("image", float((img - torch.from_numpy(fx["image"])).abs().max()), 1e-3)
    rel = float(np.abs(raw - fx["daam.raw"]).max() / np.abs(fx["daam.raw"]).max())
    report("daam.raw (relative to its max)", rel, 1e-4)
    up = bilinear(fx["daam.raw"].astype(np.float64), 32)
    lo, hi = up.min(axis=(1, 2), keepdims=True), up.max(axis=(1, 2), keepdims=True)
    report("daam.words from daam.raw", float(np.abs((up - lo) / (hi - lo + 1e-8) - fx["daam.words"]).max()), 1e-5)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/demo-t2i")
    ap.add_argument("--fixtures", default="tests/fixtures/t2i")
    ap.add_argument("--prompts", type=int, default=1, help="how many prompt fixtures to check (slow: minutes each)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    spec = Spec(args.model)
    bad = []

    def report(what, diff, tol):
        ok = diff <= tol
        print("%s %-40s max |diff| %.3g (tolerance %g)" % ("ok  " if ok else "FAIL", what, diff, tol), flush=True)
        if not ok:
            bad.append(what)

    for n in range(args.prompts):
        path = os.path.join(args.fixtures, "prompt%d.safetensors" % n)
        print("%s: %s" % (path, st.read_header(path)[1]["prompt"]))
        check(path, spec, report)
    common, _ = st.read(os.path.join(args.fixtures, "common.safetensors"))
    report("alphas_cumprod", float(np.abs(np.array(spec.alphas_cumprod()) - common["alphas_cumprod_bits"].view(np.float64)).max()), 0)
    u = [struct.unpack("<Q", struct.pack("<q", int(v)))[0] for v in common["rng_u64_seed0"]]  # I64 bits
    report("splitmix64 seed 0", float(u[0] != 0xe220a8397b1dcdaf), 0)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
