#!/usr/bin/python3
"""Tiny random decoders exercising the optional parts of the one block (src/model/block.h) that the next families
need, each against an independent PyTorch reference written here from the published architectures (Qwen3,
Gemma 2, Gemma 3 as the Hugging Face implementations define them), not from the project's C code:

    base            Llama-shaped: RMSNorm, rotate-half RoPE, grouped-query heads, SwiGLU; head size x heads != dim
    qk_norm         Qwen3: RMSNorm of every query and key head (weights [head_dim]) before RoPE
    attn_softcap    Gemma 2: scores = cap * tanh(scores / cap) after scaling, before the causal mask
    final_softcap   Gemma 2: logits = cap * tanh(logits / cap)
    sandwich        Gemma 2/3: extra RMSNorms on the attention and feed-forward outputs before the residual adds
    rope_per_layer  Gemma 3: a local layer (RoPE base 10000, sliding window 4) and a global one (base 1e6)
    emb_scale       Gemma: token embeddings times sqrt(dim)
    norm_offset     Gemma: every RMSNorm scales by (1 + w)
    gemma           all of the above with gated tanh-GELU, query_pre_attn_scalar and a tied head

Writes tests/fixtures/extras/<name>.safetensors: the weights under plain names (embed, layers.<l>.{attn_norm, q,
k, v, o, q_norm, k_norm, attn_out_norm, ffn_norm, gate, up, down, ffn_out_norm}, norm, lm_head), metadata "config"
(JSON: sizes, eps, act, norm_offset, emb_scale, final_softcap and per-layer attn_scale, attn_softcap, window,
rope_theta), and the reference: ids I32 [T], logits F32 [T, vocab], attn.self.<l> F32 [heads, T, T].
tests/test_block_extras.c builds each model in C, the way a family file would, and compares.

Usage: /usr/bin/python3 scripts/make_block_extras.py [--out tests/fixtures/extras]
"""

import argparse
import json
import math
import os
import shutil
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import safetensors_np  # noqa: E402
from make_tiny_models import Weights, attention, rope_half  # noqa: E402

torch.set_grad_enabled(False)

D, L, H, KV, HD, FF, V = 16, 2, 4, 2, 8, 32, 40
EPS = 1e-6
IDS = [1, 14, 7, 39, 22, 3, 3, 9, 31, 17, 5, 28]


def variant_cfg(name):
    g = name == "gemma"
    return {
        "dim": D, "n_heads": H, "n_kv_heads": KV, "head_dim": HD, "hidden": FF, "vocab": V, "eps": EPS,
        "act": "gelu_pytorch_tanh" if g else "silu",
        "norm_offset": 1.0 if g or name == "norm_offset" else 0.0,
        "emb_scale": math.sqrt(D) if g or name == "emb_scale" else 1.0,
        "final_softcap": 3.0 if g or name == "final_softcap" else 0.0,
        "attn_scale": [24.0 ** -0.5 if g else HD ** -0.5] * L,
        "attn_softcap": [2.0 if g or name == "attn_softcap" else 0.0] * L,
        "window": [4, 0] if g or name == "rope_per_layer" else [0, 0],
        "rope_theta": [10000.0, 1e6] if g or name == "rope_per_layer" else [10000.0] * L,
        "qk_norm": g or name == "qk_norm",
        "sandwich": g or name == "sandwich",
        "tied": g,
    }


def make_weights(cfg, seed):
    W = Weights(seed)
    mean = 0.0 if cfg["norm_offset"] else 1.0  # Gemma stores norm weights around 0 (scaled by 1 + w)

    def norm(name, n):
        W.add(name, (n,), 0.1, mean)

    W.add("embed", (V, D), 1.0)
    for l in range(L):
        p = "layers.%d." % l
        norm(p + "attn_norm", D)
        W.add(p + "q", (H * HD, D), 0.6)
        W.add(p + "k", (KV * HD, D), 0.6)
        W.add(p + "v", (KV * HD, D), 0.4)
        W.add(p + "o", (D, H * HD), 0.4)
        if cfg["qk_norm"]:
            norm(p + "q_norm", HD)
            norm(p + "k_norm", HD)
        if cfg["sandwich"]:
            norm(p + "attn_out_norm", D)
            norm(p + "ffn_out_norm", D)
        norm(p + "ffn_norm", D)
        W.add(p + "gate", (FF, D), 0.4)
        W.add(p + "up", (FF, D), 0.4)
        W.add(p + "down", (D, FF), 0.4)
    norm("norm", D)
    if not cfg["tied"]:
        W.add("lm_head", (V, D), 0.4)
    return W


def reference(cfg, W):
    off = cfg["norm_offset"]

    def rms(x, w):  # LlamaRMSNorm / Qwen3 q_norm, k_norm; Gemma: (1 + w), computed in float32
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * (off + w)

    def heads_rms(x, w, n):  # per head of head_dim values
        T = x.shape[0]
        return rms(x.view(T, n, HD), w).reshape(T, n * HD)

    act = (lambda x: F.gelu(x, approximate="tanh")) if cfg["act"] != "silu" else F.silu
    ids = torch.tensor(IDS)
    x = W["embed"][ids] * cfg["emb_scale"]
    attns = []
    for l in range(L):
        p = "layers.%d." % l
        h = rms(x, W[p + "attn_norm"])
        q, k, v = h @ W[p + "q"].T, h @ W[p + "k"].T, h @ W[p + "v"].T
        if cfg["qk_norm"]:
            q, k = heads_rms(q, W[p + "q_norm"], H), heads_rms(k, W[p + "k_norm"], KV)
        theta = cfg["rope_theta"][l]
        q, k = rope_half(q, H, theta), rope_half(k, KV, theta)
        cap = cfg["attn_softcap"][l] or None
        o, a = attention(q, k, v, H, KV, scale=cfg["attn_scale"][l], causal=True, window=cfg["window"][l],
                         softcap=cap)
        attns.append(a)
        o = o @ W[p + "o"].T
        if cfg["sandwich"]:
            o = rms(o, W[p + "attn_out_norm"])
        x = x + o
        h = rms(x, W[p + "ffn_norm"])
        f = (act(h @ W[p + "gate"].T) * (h @ W[p + "up"].T)) @ W[p + "down"].T
        if cfg["sandwich"]:
            f = rms(f, W[p + "ffn_out_norm"])
        x = x + f
    x = rms(x, W["norm"])
    logits = x @ (W["embed"] if cfg["tied"] else W["lm_head"]).T
    if cfg["final_softcap"]:
        logits = torch.tanh(logits / cfg["final_softcap"]) * cfg["final_softcap"]
    return ids, logits, attns


VARIANTS = ["base", "qk_norm", "attn_softcap", "final_softcap", "sandwich", "rope_per_layer", "emb_scale",
            "norm_offset", "gemma"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "fixtures", "extras"))
    args = ap.parse_args()
    if os.path.isdir(args.out):
        shutil.rmtree(args.out)
    os.makedirs(args.out)
    for seed, name in enumerate(VARIANTS, start=20):
        cfg = variant_cfg(name)
        W = make_weights(cfg, seed)
        ids, logits, attns = reference(cfg, W)
        tensors = {n: t.numpy().astype(np.float32) for n, t in W.t.items()}
        tensors["ids"] = ids.numpy().astype(np.int32)
        tensors["logits"] = logits.numpy().astype(np.float32)
        for l, a in enumerate(attns):
            tensors["attn.self.%d" % l] = a.numpy().astype(np.float32)
        safetensors_np.write(os.path.join(args.out, name + ".safetensors"), tensors, {"config": json.dumps(cfg)})
    total = sum(os.path.getsize(os.path.join(args.out, f)) for f in os.listdir(args.out))
    print("wrote %s: %d variants, %d bytes" % (args.out, len(VARIANTS), total))


if __name__ == "__main__":
    main()
