#!/usr/bin/python3
"""Tiny random Hugging Face checkpoints of the decoder families of src/model/arch.h that scripts/make_tiny_models.py
does not cover, with the real tensor names and config.json keys, and reference outputs from an independent PyTorch
implementation written here from transformers' modeling files (not from the project's C code). Each model is
shaped so that what makes its family special shows in 12 tokens:

    llama3      Llama 3.1 RoPE scaling (llama3: factor 8, a smoothed band), q/k/v/o biases (attention_bias)
    qwen3       per-head q/k RMS norms, head_dim x heads != hidden_size, tied head
    qwen3_moe   4 experts, 2 per token, norm_topk_prob false (weights not renormalized: transformers' default)
    mixtral     4 experts, 2 per token (renormalized), sliding window 4
    gemma       BF16 weights: embeddings times sqrt(24) rounded to bfloat16 as transformers does; (1 + w) norms;
                hidden_act "gelu" without hidden_activation (transformers runs the tanh approximation)
    gemma2      soft-capped scores (2) and logits (3), query_pre_attn_scalar 12 (not head_dim), window 4 on even
                layers, norms on the attention and feed-forward outputs
    gemma3      6 layers: the default pattern (5 local, window 4, RoPE 10000 : 1 global, RoPE 1e6 with linear
                scaling 8), q/k norms, norms on the outputs
    phi3        fused qkv_proj and gate_up_proj, partial rotary (0.5), longrope: 12 tokens past
                original_max_position_embeddings 8, so the long factors and the attention factor sqrt(2) apply,
                sliding window 6 (transformers applies it)
    mistral     a sliding window of 4 on every layer, separate head
    qwen2       q/k/v biases (no o bias), sliding window 4 on layers >= max_window_layers (1), tied head

Writes tests/fixtures/decoders/<name>/: config.json, model.safetensors, reference.safetensors (ids I32 [T],
logits F32 [T, vocab], attn.self.<l> F32 [heads, T, T]). The forward pass runs in float64 on the stored weights
(rounded to their dtype), RoPE angles included, so the reference carries no float32 rounding of its own; what a
checkpoint's dtype defines (Gemma's embedding scale rounded to it) is kept. tests/test_decoders.c compares
attnviz against them.

Usage: /usr/bin/python3 scripts/make_tiny_decoders.py [--out tests/fixtures/decoders]
"""

import argparse
import math
import os
import shutil
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from make_tiny_models import Weights, save_config, save_reference  # noqa: E402

torch.set_grad_enabled(False)

V = 48
IDS = torch.tensor([1, 14, 7, 40, 22, 3, 3, 9, 31, 17, 5, 28])


def config(name, **kw):
    c = {"architectures": [kw.pop("cls")], "model_type": name, "vocab_size": V, "max_position_embeddings": 64,
         "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "hidden_act": "silu", "bos_token_id": 1, "eos_token_id": 2,
         "torch_dtype": "float32", "attention_dropout": 0.0, "initializer_range": 0.02}
    c.update(kw)
    return c


# ---- RoPE as transformers' modeling_rope_utils defines it (computed here in float64) ----


def inv_freq(cfg, dim, theta, scaling):
    base = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    kind = (scaling or {}).get("rope_type", (scaling or {}).get("type", "default"))
    if kind == "default":
        return base, 1.0
    if kind == "linear":
        return base / scaling["factor"], 1.0
    if kind == "llama3":
        factor, low, high = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
        old = scaling["original_max_position_embeddings"]
        wavelen = 2 * math.pi / base
        inv = torch.where(wavelen > old / low, base / factor, base)
        smooth = (old / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * inv / factor + smooth * inv
        medium = ~(wavelen < old / high) * ~(wavelen > old / low)
        return torch.where(medium, smoothed, inv), 1.0
    if kind == "longrope":  # Phi-3: long factors past the original context, the attention factor always
        orig = cfg["original_max_position_embeddings"]
        factor = cfg["max_position_embeddings"] / orig
        attn = math.sqrt(1 + math.log(factor) / math.log(orig)) if factor > 1 else 1.0
        ext = torch.tensor(scaling["long_factor" if len(IDS) > orig else "short_factor"], dtype=torch.float64)
        return 1.0 / (ext * theta ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)), attn
    raise ValueError(kind)


def rope(x, heads, hd, rot, inv, mscale):
    """rotate_half on the first rot values of each head (apply_rotary_pos_emb with partial rotary)."""
    T = x.shape[0]
    x = x.view(T, heads, hd)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    emb = torch.cat([ang, ang], -1)
    cos, sin = (emb.cos() * mscale)[:, None, :], (emb.sin() * mscale)[:, None, :]
    r, p = x[..., :rot], x[..., rot:]
    rotated = torch.cat([-r[..., rot // 2:], r[..., :rot // 2]], -1)
    return torch.cat([r * cos + rotated * sin, p], -1).reshape(T, heads * hd)


# ---- the decoder, as the transformers families define it ----


def rms(x, w, eps, off):  # LlamaRMSNorm; Gemma: x * (1 + w)
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * (off + w)


def attention(q, k, v, H, KV, scale, window, softcap):
    T, hd = q.shape[0], q.shape[1] // H
    q = q.view(T, H, hd).transpose(0, 1)
    k = k.view(T, KV, hd).transpose(0, 1).repeat_interleave(H // KV, 0)
    v = v.view(T, KV, hd).transpose(0, 1).repeat_interleave(H // KV, 0)
    s = (q @ k.transpose(-1, -2)) * scale
    if softcap:
        s = torch.tanh(s / softcap) * softcap
    i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
    s = s.masked_fill(j > i, float("-inf"))
    if window:
        s = s.masked_fill(i - j >= window, float("-inf"))
    p = torch.softmax(s, -1)
    return (p @ v).transpose(0, 1).reshape(T, H * hd), p


def lin(W, name, x):
    y = x @ W[name + ".weight"].T
    return y + W[name + ".bias"] if name + ".bias" in W.t else y


def moe(W, p, h, a):
    probs = torch.softmax(h @ W[p + a["router"] + ".weight"].T, -1)
    top, idx = torch.topk(probs, a["used"], -1)
    if a["norm_topk"]:
        top = top / top.sum(-1, keepdim=True)
    out = torch.zeros_like(h)
    for e in range(a["experts"]):
        g, u, d = (W[p + a["expert"] % (e, n) + ".weight"] for n in a["expert_parts"])
        w = (top * (idx == e)).sum(-1, keepdim=True)
        out += w * ((a["act"](h @ g.T) * (h @ u.T)) @ d.T)
    return out


class Double:
    """The stored weights (already rounded to the checkpoint's dtype) as float64 tensors."""

    def __init__(self, W):
        self.t = {k: v.double() for k, v in W.t.items()}

    def __getitem__(self, name):
        return self.t[name]


def forward(a, cfg, W):
    W = Double(W)
    H, KV, hd, L, eps, off = a["heads"], a["kv"], a["hd"], a["layers"], cfg["rms_norm_eps"], a.get("off", 0.0)
    rot = int(hd * cfg.get("partial_rotary_factor", 1.0))
    emb = W["model.embed_tokens.weight"][IDS]
    if a.get("emb_scale"):  # Gemma: the normalizer in the embedding's dtype
        emb = emb * torch.tensor(cfg["hidden_size"] ** 0.5, dtype=a["emb_dtype"]).double()
    x, attns = emb, []
    for l in range(L):
        p = "model.layers.%d." % l
        local = a["sliding"][l]
        h = rms(x, W[p + "input_layernorm.weight"], eps, off)
        if a.get("fused"):
            qkv = lin(W, p + "self_attn.qkv_proj", h)
            q, k, v = qkv.split([H * hd, KV * hd, KV * hd], -1)
        else:
            q, k, v = (lin(W, p + "self_attn.%s_proj" % n, h) for n in "qkv")
        if a.get("qk_norm"):
            q = rms(q.view(-1, H, hd), W[p + "self_attn.q_norm.weight"], eps, off).reshape(-1, H * hd)
            k = rms(k.view(-1, KV, hd), W[p + "self_attn.k_norm.weight"], eps, off).reshape(-1, KV * hd)
        theta = a["theta_local"] if local and "theta_local" in a else cfg["rope_theta"]
        scaling = None if local and "theta_local" in a else cfg.get("rope_scaling")
        inv, mscale = inv_freq(cfg, rot, theta, scaling)
        q, k = rope(q, H, hd, rot, inv, mscale), rope(k, KV, hd, rot, inv, mscale)
        o, att = attention(q, k, v, H, KV, a.get("scale", hd ** -0.5), a["window"] if local else 0,
                           cfg.get("attn_logit_softcapping"))
        attns.append(att)
        o = lin(W, p + "self_attn.o_proj", o)
        if a.get("sandwich"):
            o = rms(o, W[p + "post_attention_layernorm.weight"], eps, off)
        x = x + o
        h = rms(x, W[p + ("pre_feedforward_layernorm" if a.get("sandwich") else "post_attention_layernorm") +
                     ".weight"], eps, off)
        if a.get("experts"):
            f = moe(W, p, h, a)
        elif a.get("fused"):
            g, u = lin(W, p + "mlp.gate_up_proj", h).chunk(2, -1)
            f = lin(W, p + "mlp.down_proj", a["act"](g) * u)
        else:
            f = lin(W, p + "mlp.down_proj", a["act"](lin(W, p + "mlp.gate_proj", h)) * lin(W, p + "mlp.up_proj", h))
        if a.get("sandwich"):
            f = rms(f, W[p + "post_feedforward_layernorm.weight"], eps, off)
        x = x + f
    x = rms(x, W["model.norm.weight"], eps, off)
    logits = x @ (W["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else W["lm_head.weight"]).T
    cap = cfg.get("final_logit_softcapping")
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return logits, attns


# ---- the checkpoints ----


def weights(a, cfg, seed):
    D, H, KV, hd, ff = cfg["hidden_size"], a["heads"], a["kv"], a["hd"], a["ff"]
    W = Weights(seed, a.get("dtype", "F32"))
    mean = 0.0 if a.get("off") else 1.0  # Gemma stores norm weights around 0 (scaled by 1 + w)

    def norm(name, n):
        W.add(name + ".weight", (n,), 0.1, mean)

    bias = cfg.get("attention_bias", False)
    qkv_bias = bias or a.get("qkv_bias", False)  # Qwen2: q/k/v biases always, no o bias
    W.add("model.embed_tokens.weight", (V, D), 1.0)
    for l in range(a["layers"]):
        p = "model.layers.%d." % l
        norm(p + "input_layernorm", D)
        if a.get("fused"):
            W.lin(p + "self_attn.qkv_proj", (H + 2 * KV) * hd, D, bias=False, std=0.6)
        else:
            W.lin(p + "self_attn.q_proj", H * hd, D, bias=qkv_bias, std=0.6)
            W.lin(p + "self_attn.k_proj", KV * hd, D, bias=qkv_bias, std=0.6)
            W.lin(p + "self_attn.v_proj", KV * hd, D, bias=qkv_bias)
        W.lin(p + "self_attn.o_proj", D, H * hd, bias=bias)
        if a.get("qk_norm"):
            norm(p + "self_attn.q_norm", hd)
            norm(p + "self_attn.k_norm", hd)
        norm(p + ("post_attention_layernorm" if not a.get("sandwich") else "pre_feedforward_layernorm"), D)
        if a.get("sandwich"):
            norm(p + "post_attention_layernorm", D)
            norm(p + "post_feedforward_layernorm", D)
        if a.get("experts"):
            W.add(p + a["router"] + ".weight", (a["experts"], D), 1.0)
            for e in range(a["experts"]):
                for n, shape in zip(a["expert_parts"], [(ff, D), (ff, D), (D, ff)]):
                    W.add(p + a["expert"] % (e, n) + ".weight", shape, 0.4)
        elif a.get("fused"):
            W.lin(p + "mlp.gate_up_proj", 2 * ff, D, bias=False)
            W.lin(p + "mlp.down_proj", D, ff, bias=False)
        else:
            for n, (o, i) in (("gate_proj", (ff, D)), ("up_proj", (ff, D)), ("down_proj", (D, ff))):
                W.lin(p + "mlp." + n, o, i, bias=False)
    norm("model.norm", D)
    if not cfg.get("tie_word_embeddings"):
        W.add("lm_head.weight", (V, D), 0.4)
    return W


def gelu_tanh(x):
    return F.gelu(x, approximate="tanh")


def models():
    """(name, architecture facts for the reference, config.json)"""
    out = []
    a = dict(heads=4, kv=2, hd=8, ff=32, layers=2, act=F.silu, window=0, sliding=[0, 0])
    out.append(("llama3", a, config("llama", cls="LlamaForCausalLM", hidden_size=32, intermediate_size=32,
                                    num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                    attention_bias=True, mlp_bias=False, tie_word_embeddings=False,
                                    rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                                  "high_freq_factor": 4.0, "original_max_position_embeddings": 128})))
    a = dict(heads=4, kv=2, hd=8, ff=32, layers=2, act=F.silu, window=0, sliding=[0, 0], qk_norm=True)
    out.append(("qwen3", a, config("qwen3", cls="Qwen3ForCausalLM", hidden_size=16, intermediate_size=32,
                                   num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                                   rope_theta=1e6, tie_word_embeddings=True, use_sliding_window=False,
                                   sliding_window=None, max_window_layers=2, attention_bias=False)))
    moe = dict(experts=4, used=2, router="mlp.gate", expert="mlp.experts.%d.%s",
               expert_parts=("gate_proj", "up_proj", "down_proj"))
    a = dict(heads=4, kv=2, hd=8, ff=16, layers=2, act=F.silu, window=0, sliding=[0, 0], qk_norm=True,
             norm_topk=False, **moe)
    out.append(("qwen3_moe", a, config("qwen3_moe", cls="Qwen3MoeForCausalLM", hidden_size=16, intermediate_size=48,
                                       moe_intermediate_size=16, num_experts=4, num_experts_per_tok=2,
                                       norm_topk_prob=False, decoder_sparse_step=1, mlp_only_layers=[],
                                       num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                       head_dim=8, tie_word_embeddings=False, use_sliding_window=False,
                                       attention_bias=False)))
    moe = dict(experts=4, used=2, router="block_sparse_moe.gate", expert="block_sparse_moe.experts.%d.%s",
               expert_parts=("w1", "w3", "w2"))
    a = dict(heads=4, kv=2, hd=4, ff=16, layers=2, act=F.silu, window=4, sliding=[1, 1], norm_topk=True, **moe)
    out.append(("mixtral", a, config("mixtral", cls="MixtralForCausalLM", hidden_size=16, intermediate_size=16,
                                     num_local_experts=4, num_experts_per_tok=2, num_hidden_layers=2,
                                     num_attention_heads=4, num_key_value_heads=2, sliding_window=4,
                                     rope_theta=1e6, tie_word_embeddings=False, rms_norm_eps=1e-5)))
    a = dict(heads=2, kv=1, hd=12, ff=32, layers=2, act=gelu_tanh, window=0, sliding=[0, 0], off=1.0,
             emb_scale=True, emb_dtype=torch.bfloat16, dtype="BF16")
    out.append(("gemma", a, config("gemma", cls="GemmaForCausalLM", hidden_size=24, intermediate_size=32,
                                   num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, head_dim=12,
                                   hidden_act="gelu", tie_word_embeddings=True, torch_dtype="bfloat16",
                                   attention_bias=False)))
    a = dict(heads=4, kv=2, hd=8, ff=32, layers=3, act=gelu_tanh, window=4, sliding=[1, 0, 1], off=1.0,
             emb_scale=True, emb_dtype=torch.float32, sandwich=True, scale=12 ** -0.5)
    out.append(("gemma2", a, config("gemma2", cls="Gemma2ForCausalLM", hidden_size=16, intermediate_size=32,
                                    num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                                    hidden_activation="gelu_pytorch_tanh", query_pre_attn_scalar=12,
                                    attn_logit_softcapping=2.0, final_logit_softcapping=3.0, sliding_window=4,
                                    tie_word_embeddings=True, attention_bias=False)))
    a = dict(heads=4, kv=2, hd=8, ff=32, layers=6, act=gelu_tanh, window=4, sliding=[1, 1, 1, 1, 1, 0], off=1.0,
             emb_scale=True, emb_dtype=torch.float32, sandwich=True, qk_norm=True, theta_local=10000.0)
    out.append(("gemma3", a, config("gemma3_text", cls="Gemma3ForCausalLM", hidden_size=16, intermediate_size=32,
                                    num_hidden_layers=6, num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                                    hidden_activation="gelu_pytorch_tanh", query_pre_attn_scalar=8,
                                    sliding_window=4, rope_theta=1e6, rope_local_base_freq=10000.0,
                                    rope_scaling={"rope_type": "linear", "factor": 8.0},
                                    final_logit_softcapping=None, attn_logit_softcapping=None,
                                    tie_word_embeddings=True, attention_bias=False)))
    a = dict(heads=4, kv=2, hd=8, ff=32, layers=2, act=F.silu, window=6, sliding=[1, 1], fused=True)
    out.append(("phi3", a, config("phi3", cls="Phi3ForCausalLM", hidden_size=32, intermediate_size=32,
                                  num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                  partial_rotary_factor=0.5, original_max_position_embeddings=8,
                                  rope_scaling={"type": "longrope", "short_factor": [1.0, 1.5],
                                                "long_factor": [3.0, 20.0]},
                                  sliding_window=6, tie_word_embeddings=False, rms_norm_eps=1e-5)))
    a = dict(heads=4, kv=2, hd=4, ff=32, layers=2, act=F.silu, window=4, sliding=[1, 1])
    out.append(("mistral", a, config("mistral", cls="MistralForCausalLM", hidden_size=16, intermediate_size=32,
                                     num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                     sliding_window=4, tie_word_embeddings=False, rms_norm_eps=1e-5)))
    a = dict(heads=4, kv=2, hd=4, ff=32, layers=2, act=F.silu, window=4, sliding=[0, 1], qkv_bias=True)
    out.append(("qwen2", a, config("qwen2", cls="Qwen2ForCausalLM", hidden_size=16, intermediate_size=32,
                                   num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                   rope_theta=1e6, tie_word_embeddings=True, use_sliding_window=True,
                                   sliding_window=4, max_window_layers=1)))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "fixtures", "decoders"))
    args = ap.parse_args()
    if os.path.isdir(args.out):
        shutil.rmtree(args.out)
    for seed, (name, a, cfg) in enumerate(models(), start=40):
        d = os.path.join(args.out, name)
        W = weights(a, cfg, seed)
        logits, attns = forward(a, cfg, W)
        save_config(d, cfg)
        W.save(d)
        save_reference(d, {"ids": IDS, "logits": logits, **{"attn.self.%d" % l: t for l, t in enumerate(attns)}},
                       {"family": cfg["model_type"]})
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(args.out) for f in fs)
    print("wrote %s: %d bytes" % (args.out, total))


if __name__ == "__main__":
    main()
