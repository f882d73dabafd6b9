#!/usr/bin/python3
"""demo-t2i's model in plain PyTorch: a text encoder and a U-ViT-style denoiser built only from the engine's
one transformer block (pre-norm LayerNorm -> self-attention -> residual; pre-norm LayerNorm -> cross-attention
to the text -> residual; pre-norm LayerNorm -> exact-erf GELU MLP -> residual), plus the noise schedule.
docs/T2I_MODEL.md is the exact specification; the names of the parameters below are the checkpoint's names.

  text:     ids (S) -> embed_tokens + embed_positions -> layers (self-attention + MLP) -> norm -> mem (S, d)
  denoiser: x_t (3, 32, 32), t -> [time token; patch tokens] (1 + 64, d) -> layers (self, cross to mem, MLP)
            -> norm -> head on the 64 patch tokens -> v-prediction (3, 32, 32)
  time token = time_embed.linear_2(gelu(time_embed.linear_1(sinusoid(t))))      (outside the blocks: no adaLN)

The shipped configuration has text_layers 0 (mem[s] = norm(embed_tokens[id_s] + embed_positions[s]): no token
mixes with another) and cross_attention_from 1 (the time token's cross-attention output is dropped, so it
carries no text to the patches): a patch learns what a word says only by attending to that word, which is
what makes DAAM's maps land on the objects (models/demo-t2i/MODEL_CARD.md has the before and after).
"""

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DEFAULT_CONFIG = {
    "image_size": 32, "channels": 3, "patch_size": 4,
    "hidden_size": 64, "num_attention_heads": 4, "intermediate_size": 256,
    "text_layers": 0, "denoiser_layers": 4, "max_text_positions": 16, "cross_attention_from": 1,
    "time_freq_dim": 128, "time_max_period": 10000.0, "layer_norm_eps": 1e-5, "hidden_act": "gelu",
    "num_train_timesteps": 1000, "beta_schedule": "squaredcos_cap_v2", "cosine_s": 0.008, "max_beta": 0.999,
    "prediction_type": "v_prediction",
}


# --------------------------------------------------------------------------
# noise schedule (float64, as specified) and the time token's sinusoid


def alphas_cumprod(cfg):
    """float64 (T,): the cosine schedule of Nichol & Dhariwal 2021 (diffusers' "squaredcos_cap_v2"):
    beta_t = min(1 - f(t + 1) / f(t), max_beta), f(u) = cos((u / T + s) / (1 + s) * pi / 2)^2,
    alphas_cumprod[t] = prod_{i <= t} (1 - beta_i), t = 0..T-1."""
    T, s = cfg["num_train_timesteps"], cfg["cosine_s"]

    def f(u):
        return math.cos((u / T + s) / (1 + s) * math.pi / 2) ** 2

    out, prod = np.empty(T, np.float64), 1.0
    for t in range(T):
        prod *= 1.0 - min(1.0 - f(t + 1) / f(t), cfg["max_beta"])
        out[t] = prod
    return out


def time_sinusoid(t, cfg):
    """t: int64 tensor (B,) of timesteps -> float32 (B, time_freq_dim): [cos(t w_j) | sin(t w_j)],
    w_j = exp(-ln(max_period) * j / half), j = 0..half-1, computed in float64 and rounded to float32."""
    half = cfg["time_freq_dim"] // 2
    w = torch.exp(-math.log(cfg["time_max_period"]) * torch.arange(half, dtype=torch.float64) / half)
    a = t.to(torch.float64)[:, None] * w[None]
    return torch.cat([torch.cos(a), torch.sin(a)], dim=1).float()


# --------------------------------------------------------------------------
# the block


class Attention(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.h, self.hd = h, d // h
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))

    def forward(self, x, kv, key_pad=None, want_probs=False):
        """x (B, T, d), kv (B, S, d), key_pad (B, S) bool True = padding -> (B, T, d), probs (B, h, T, S)"""
        B, T, _ = x.shape
        S = kv.shape[1]
        q = self.q(x).view(B, T, self.h, self.hd).transpose(1, 2)
        k = self.k(kv).view(B, S, self.h, self.hd).transpose(1, 2)
        v = self.v(kv).view(B, S, self.h, self.hd).transpose(1, 2)
        scores = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(self.hd))
        if key_pad is not None:
            scores = scores.masked_fill(key_pad[:, None, None, :], float("-inf"))
        p = torch.softmax(scores, dim=-1)
        out = self.o((p @ v).transpose(1, 2).reshape(B, T, -1))
        return out, (p if want_probs else None)


class MLP(nn.Module):
    def __init__(self, d, ff):
        super().__init__()
        self.up, self.down = nn.Linear(d, ff), nn.Linear(ff, d)

    def forward(self, x):
        return self.down(F.gelu(self.up(x)))  # exact erf GELU


class Block(nn.Module):
    """x += attn(attn_norm(x)); [x += cross(cross_norm(x), mem)]; x += mlp(mlp_norm(x))"""

    def __init__(self, d, h, ff, eps, cross):
        super().__init__()
        self.attn_norm, self.attn = nn.LayerNorm(d, eps=eps), Attention(d, h)
        if cross:
            self.cross_norm, self.cross = nn.LayerNorm(d, eps=eps), Attention(d, h)
        self.mlp_norm, self.mlp = nn.LayerNorm(d, eps=eps), MLP(d, ff)

    def forward(self, x, self_pad=None, mem=None, mem_pad=None, want_probs=False, cross_from=0):
        """cross_from: rows before it (the time token) get no cross-attention output: they read no text"""
        y = self.attn_norm(x)
        a, _ = self.attn(y, y, self_pad)
        x = x + a
        p = None
        if mem is not None:
            a, p = self.cross(self.cross_norm(x), mem, mem_pad, want_probs)
            if cross_from:
                a = torch.cat([torch.zeros_like(a[:, :cross_from]), a[:, cross_from:]], dim=1)
            x = x + a
        return x + self.mlp(self.mlp_norm(x)), p


# --------------------------------------------------------------------------
# the two stacks


class TextEncoder(nn.Module):
    def __init__(self, cfg, vocab_size):
        super().__init__()
        d = cfg["hidden_size"]
        self.embed_tokens = nn.Embedding(vocab_size, d)
        self.embed_positions = nn.Embedding(cfg["max_text_positions"], d)
        self.layers = nn.ModuleList(Block(d, cfg["num_attention_heads"], cfg["intermediate_size"],
                                          cfg["layer_norm_eps"], False) for _ in range(cfg["text_layers"]))
        self.norm = nn.LayerNorm(d, eps=cfg["layer_norm_eps"])

    def forward(self, ids, pad):
        """ids (B, S) int64, pad (B, S) bool or None -> mem (B, S, d)"""
        x = self.embed_tokens(ids) + self.embed_positions.weight[: ids.shape[1]][None]
        for layer in self.layers:
            x, _ = layer(x, pad)
        return self.norm(x)


def patchify(x, p):
    """(B, C, H, W) -> (B, (H/p)*(W/p), C*p*p): patches in row-major grid order, each flattened as (c, dy, dx)
    (the layout of a Conv2d patch-embedding weight [d, C, p, p])."""
    B, C, H, W = x.shape
    x = x.reshape(B, C, H // p, p, W // p, p).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(B, (H // p) * (W // p), C * p * p)


def unpatchify(t, C, H, W, p):
    """inverse of patchify: (B, (H/p)*(W/p), C*p*p) -> (B, C, H, W)"""
    B = t.shape[0]
    x = t.reshape(B, H // p, W // p, C, p, p).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(B, C, H, W)


class TimeEmbed(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d = cfg["hidden_size"]
        self.linear_1, self.linear_2 = nn.Linear(cfg["time_freq_dim"], d), nn.Linear(d, d)

    def forward(self, t, cfg):
        return self.linear_2(F.gelu(self.linear_1(time_sinusoid(t, cfg))))


class Denoiser(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, p, C = cfg["hidden_size"], cfg["patch_size"], cfg["channels"]
        n_patches = (cfg["image_size"] // p) ** 2
        self.time_embed = TimeEmbed(cfg)
        self.patch_embed = nn.Linear(C * p * p, d)
        self.embed_positions = nn.Embedding(n_patches, d)
        self.layers = nn.ModuleList(Block(d, cfg["num_attention_heads"], cfg["intermediate_size"],
                                          cfg["layer_norm_eps"], True) for _ in range(cfg["denoiser_layers"]))
        self.norm = nn.LayerNorm(d, eps=cfg["layer_norm_eps"])
        self.head = nn.Linear(d, C * p * p)

    def forward(self, x, t, mem, mem_pad, cfg, want_probs=False):
        """x (B, 3, H, W) float32, t (B,) int64, mem (B, S, d) -> v (B, 3, H, W), cross probs per layer
        [(B, heads, 1 + n_patches, S)] when want_probs"""
        p = cfg["patch_size"]
        tok = self.patch_embed(patchify(x, p)) + self.embed_positions.weight[None]
        h = torch.cat([self.time_embed(t, cfg)[:, None], tok], dim=1)
        probs = []
        for layer in self.layers:
            h, pr = layer(h, None, mem, mem_pad, want_probs, cfg["cross_attention_from"])
            probs.append(pr)
        out = self.head(self.norm(h)[:, 1:])
        return unpatchify(out, cfg["channels"], x.shape[2], x.shape[3], p), probs


def sincos_2d(grid, d):
    """(grid*grid, d) float32: MAE's / DiT's fixed 2-D sine-cosine table, here only the INITIAL value of the
    learned patch positions: [sin(y w_k), cos(y w_k), sin(x w_k), cos(x w_k)] blocks of d/4, w_k = 10000^(-k/(d/4))"""
    q = d // 4
    w = 1.0 / 10000 ** (np.arange(q, dtype=np.float64) / q)
    y, x = np.meshgrid(np.arange(grid, dtype=np.float64), np.arange(grid, dtype=np.float64), indexing="ij")
    y, x = y.reshape(-1, 1) * w, x.reshape(-1, 1) * w
    return torch.from_numpy(np.concatenate([np.sin(y), np.cos(y), np.sin(x), np.cos(x)], 1).astype(np.float32))


class T2I(nn.Module):
    def __init__(self, cfg, vocab_size):
        super().__init__()
        self.cfg = cfg
        self.text = TextEncoder(cfg, vocab_size)
        self.denoiser = Denoiser(cfg)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, std=0.02)
        nn.init.zeros_(self.denoiser.head.weight)  # start by predicting v = 0
        # Patch positions start as a 2-D sine-cosine table (norm ~sqrt(d/2), as large as a patch's content):
        # from a small random start the positions stay tiny next to the patch embeddings for thousands of
        # steps, self-attention cannot tell where a patch is, and samples come out as scattered patches.
        with torch.no_grad():
            self.denoiser.embed_positions.weight.copy_(
                sincos_2d(cfg["image_size"] // cfg["patch_size"], cfg["hidden_size"]))

    def forward(self, x, t, ids, pad, want_probs=False):
        mem = self.text(ids, pad)
        return self.denoiser(x, t, mem, pad, self.cfg, want_probs)


# --------------------------------------------------------------------------
# checkpoint names <-> tensors


def state_tensors(model):
    """name -> float32 numpy array, with the checkpoint's names (nn.Embedding tables as ".weight")."""
    return {k: v.detach().float().contiguous().numpy() for k, v in model.state_dict().items()}


def load_tensors(model, tensors):
    sd = {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in tensors.items()}
    missing = set(model.state_dict()) ^ set(sd)
    if missing:
        raise ValueError("checkpoint names differ from the model's: %s" % sorted(missing)[:5])
    model.load_state_dict(sd)
