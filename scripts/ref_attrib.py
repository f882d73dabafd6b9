#!/usr/bin/python3
"""Independent PyTorch references for attribution and the logit lens (tests/test_attrib*.c).

Written from the methods' definitions (Captum's FeatureAblation, ShapleyValueSampling, Saliency,
InputXGradient, IntegratedGradients; Hao et al.'s attention x gradient; nostalgebraist's / Ecco's logit lens)
and the published architectures, in float64 with torch autograd, not from the project's C code.

Writes tests/fixtures/attrib/:
    kernels.safetensors     one case per backward kernel: inputs, an upstream gradient and autograd's input
                            gradients (linear, RMSNorm, LayerNorm, every activation, gated products, RoPE in
                            both pairings, soft-cap, attention with GQA / causal / window / soft-cap,
                            log-softmax). Metadata "cases": JSON {name: {params}}.
    <model>.safetensors     per model (stories260K from ../shared, tiny gpt2 / qwen2 / mistral / bert, the
                            gemma block extras, and as dec_<name> the families of tests/fixtures/decoders:
                            llama3 (Llama 3.1 RoPE scaling, biases), qwen3 (q/k norms), gemma (GeGLU, BF16),
                            gemma2 (soft-caps, sandwich norms), gemma3 (local/global RoPE, q/k norms), phi3
                            (fused matrices, partial rotary, longrope), mixtral and qwen3_moe (routers and
                            experts, with and without renormalized weights)): ids I32 [T] (source then targets for decoders), rows I32
                            [n_target] (the logits row of each target), targets I32 [n_target], logp F32
                            [n_target], occlusion.<baseline> F32 [n_target, S] for baselines unk (token id),
                            zero (zero embedding) and remove, occlusion.span2 (token baseline, groups of 2),
                            shapley F32 [n_target, S], grad F32 [n_target, S, dim] (d logp / d token rows),
                            saliency, ixg, ig F32 [n_target, S], ig.delta F32 [n_target] (completeness error),
                            ig.fb F32 [n_target] (logp at the baseline), attn_grad F32 [n_target, L, H, S]
                            (sum over queries of A dlogp/dA) and its sum over layers and heads attn_grad.sum,
                            lens.topk_ids I32 / lens.topk_logprobs F32 [L + 1, T, k], lens.target_ids I32 [T],
                            lens.target_logprobs F32 / lens.target_ranks I32 [L + 1, T].
                            Metadata "params": JSON (source_len, baseline_id, samples, seed, steps, k, ...).

Usage: /usr/bin/python3 scripts/ref_attrib.py [--shared ../shared] [--out tests/fixtures/attrib]
"""

import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import safetensors_np  # noqa: E402

torch.set_default_dtype(torch.float64)
DT = torch.float64
MASK64 = (1 << 64) - 1


# ---------------------------------------------------------------------------------------------------------
# the model, on token rows (inputs_embeds)


def act_fn(name):
    return {"silu": F.silu, "gelu": F.gelu, "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
            "relu": F.relu, "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x)}[name]


def norm(kind, x, w, b, eps, offset=0.0):
    if kind == "rms":
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * (offset + w)
    return F.layer_norm(x, x.shape[-1:], offset + w, b, eps)


def rope_scaled(x, n_h, hd, inv, rot, mscale, pos):
    """Rotate-half on the first rot values of each head with inverse frequencies inv (rot / 2), cos and sin
    times mscale (transformers' apply_rotary_pos_emb with partial rotary and a scaled RoPE)."""
    T = x.shape[0]
    x = x.view(T, n_h, hd)
    ang = pos.to(DT)[:, None] * inv[None, :]
    emb = torch.cat([ang, ang], -1)
    cos, sin = (emb.cos() * mscale)[:, None, :], (emb.sin() * mscale)[:, None, :]
    r, p = x[..., :rot], x[..., rot:]
    rotated = torch.cat([-r[..., rot // 2:], r[..., :rot // 2]], -1)
    return torch.cat([r * cos + rotated * sin, p], -1).reshape(T, n_h * hd)


def rope(x, n_h, hd, theta, style, pos):
    """x (T, n_h * hd) -> rotated; pairs (2i, 2i+1) interleaved or (i, i + hd/2) for rotate-half."""
    T = x.shape[0]
    x = x.view(T, n_h, hd)
    freq = 1.0 / torch.tensor(theta, dtype=torch.float32) ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd)
    ang = (pos.float()[:, None] * freq[None, :]).to(DT)
    cos, sin = ang.cos()[:, None, :], ang.sin()[:, None, :]
    if style == "interleaved":
        a, b = x[..., 0::2], x[..., 1::2]
        out = torch.stack((a * cos - b * sin, a * sin + b * cos), -1).flatten(-2)
    else:
        a, b = x[..., : hd // 2], x[..., hd // 2:]
        out = torch.cat((a * cos - b * sin, a * sin + b * cos), -1)
    return out.reshape(T, n_h * hd)


class Model:
    """A transformer block stack as the published architectures define it; cfg and W use the plain names of
    the loaders below. forward(tok_rows, ids) -> logits (T, V), residual streams, attention probabilities."""

    def __init__(self, cfg, W):
        self.c = cfg
        self.W = {k: torch.as_tensor(np.asarray(v, dtype=np.float64)) for k, v in W.items()}
        self.norms = {k[:-2] for k in self.W if k.endswith(".w")}

    def w(self, name):
        return self.W.get(name)

    def lin(self, x, name):
        y = x @ self.W[name + ".w"].T
        return y + self.W[name + ".b"] if name + ".b" in self.W else y

    def nrm(self, x, name, kind=None):
        c = self.c
        return norm(kind or c["norm"], x, self.W[name + ".w"], self.w(name + ".b"), c["eps"], c.get("norm_offset", 0.0))

    def embed_tokens(self, ids):
        return self.W["tok"][torch.as_tensor(ids)] * self.c.get("emb_scale", 1.0)

    def positions(self, ids):
        c, T = self.c, len(ids)
        if c.get("roberta_pad") is not None:
            pad = c["roberta_pad"]
            m = (torch.as_tensor(ids) != pad).long()
            return torch.cumsum(m, 0) * m + pad
        return torch.arange(T)

    def embed_rest(self, x, ids):
        if "pos" in self.W:
            x = x + self.W["pos"][self.positions(ids)]
        if "type0" in self.W:
            x = x + self.W["type0"]
        if "emb_norm.w" in self.W:
            x = norm("layer", x, self.W["emb_norm.w"], self.w("emb_norm.b"), self.c["eps"])
        return x

    def attention(self, l, h):
        c, p = self.c, "layers.%d." % l
        H, KV, hd, T = c["n_heads"], c["n_kv_heads"], c["head_dim"], h.shape[0]
        q, k, v = self.lin(h, p + "q"), self.lin(h, p + "k"), self.lin(h, p + "v")
        if p + "q_norm.w" in self.W:
            q = self.nrm(q.view(T, H, hd), p + "q_norm", "rms").reshape(T, H * hd)
            k = self.nrm(k.view(T, KV, hd), p + "k_norm", "rms").reshape(T, KV * hd)
        if c.get("rope_inv"):  # a frequency table per layer (scaled RoPE, partial rotary)
            pos, inv, rot, ms = torch.arange(T), c["rope_inv"][l], c["rope_dims"], c["rope_mscale"][l]
            q, k = rope_scaled(q, H, hd, inv, rot, ms, pos), rope_scaled(k, KV, hd, inv, rot, ms, pos)
        elif c["rope"]:
            pos = torch.arange(T)
            q = rope(q, H, hd, c["rope_theta"][l], c["rope"], pos)
            k = rope(k, KV, hd, c["rope_theta"][l], c["rope"], pos)
        q = q.view(T, H, hd).transpose(0, 1)
        k = k.view(T, KV, hd).transpose(0, 1).repeat_interleave(H // KV, 0)
        v = v.view(T, KV, hd).transpose(0, 1).repeat_interleave(H // KV, 0)
        s = (q @ k.transpose(-1, -2)) * c["attn_scale"][l]
        if c["attn_softcap"][l]:
            s = torch.tanh(s / c["attn_softcap"][l]) * c["attn_softcap"][l]
        i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
        if c["causal"]:
            s = s.masked_fill(j > i, float("-inf"))
        if c["window"][l]:
            s = s.masked_fill(i - j >= c["window"][l], float("-inf"))
        a = torch.softmax(s, -1)
        return (a @ v).transpose(0, 1).reshape(T, H * hd), a

    def ffn(self, l, h):
        p, act = "layers.%d." % l, act_fn(self.c["act"])
        if p + "router.w" in self.W:  # Mixtral / Qwen3-MoE: softmax router, top-k experts
            top, idx = torch.topk(torch.softmax(self.lin(h, p + "router"), -1), self.c["moe_used"], -1)
            if self.c["moe_norm_topk"]:
                top = top / top.sum(-1, keepdim=True)
            out = torch.zeros_like(h)
            for e in range(self.W[p + "router.w"].shape[0]):
                q = p + "experts.%d." % e
                w = (top * (idx == e)).sum(-1, keepdim=True)
                out = out + w * self.lin(act(self.lin(h, q + "gate")) * self.lin(h, q + "up"), q + "down")
            return out
        if p + "gate.w" in self.W:
            return self.lin(act(self.lin(h, p + "gate")) * self.lin(h, p + "up"), p + "down")
        return self.lin(act(self.lin(h, p + "up")), p + "down")

    def sublayer(self, x, name, out_norm, fn):
        post = self.c["post_norm"]
        y, extra = fn(x if post else self.nrm(x, name))
        if out_norm in self.norms:
            y = self.nrm(y, out_norm)
        return (self.nrm(x + y, name) if post else x + y), extra

    def forward(self, tok_rows, ids, keep_attn=False):
        x = self.embed_rest(tok_rows, ids)
        resid, attns = [], []
        for l in range(self.c["n_layers"]):
            p = "layers.%d." % l
            resid.append(x)
            x, a = self.sublayer(x, p + "attn_norm", p + "attn_out_norm", lambda h: (
                lambda o, a: (self.lin(o, p + "o"), a))(*self.attention(l, h)))
            if keep_attn:
                a.retain_grad()
            attns.append(a)
            x, _ = self.sublayer(x, p + "ffn_norm", p + "ffn_out_norm", lambda h: (self.ffn(l, h), None))
        resid.append(x)
        return self.head(x), resid, attns

    def head(self, x):
        c = self.c
        if "final_norm.w" in self.W:
            x = self.nrm(x, "final_norm")
        if "head.dense.w" in self.W:
            x = norm("layer", act_fn(c["head_act"])(self.lin(x, "head.dense")), self.W["head.norm.w"],
                     self.w("head.norm.b"), c["eps"])
        logits = self.lin(x * c.get("head_scale", 1.0), "head.out")
        if c.get("final_softcap"):
            logits = torch.tanh(logits / c["final_softcap"]) * c["final_softcap"]
        return logits


# ---------------------------------------------------------------------------------------------------------
# loaders: stories260K (llama2.c), tiny Hugging Face directories, the gemma block extras


def load_stories(shared):
    from ref_llama import load_llama2c
    cfg, w = load_llama2c(os.path.join(shared, "models", "stories260K", "stories260K.bin"))
    L = cfg.n_layers
    c = dict(dim=cfg.dim, n_layers=L, n_heads=cfg.n_heads, n_kv_heads=cfg.n_kv_heads, head_dim=cfg.head_size,
             hidden=cfg.hidden_dim, vocab=cfg.vocab_size, norm="rms", eps=1e-5, post_norm=False, act="silu",
             rope="interleaved", rope_theta=[10000.0] * L, causal=True, window=[0] * L,
             attn_scale=[cfg.head_size ** -0.5] * L, attn_softcap=[0.0] * L)
    W = {"tok": w["tok_emb"], "final_norm.w": w["rms_final"], "head.out.w": w["wcls"]}
    for l in range(L):
        p = "layers.%d." % l
        for ours, theirs in (("attn_norm", "rms_att"), ("q", "wq"), ("k", "wk"), ("v", "wv"), ("o", "wo"),
                             ("ffn_norm", "rms_ffn"), ("gate", "w1"), ("down", "w2"), ("up", "w3")):
            W[p + ours + ".w"] = w[theirs][l]
    return c, {k: v.numpy() for k, v in W.items()}


def read_hf(d):
    idx = os.path.join(d, "model.safetensors.index.json")
    t = {}
    files = sorted(set(json.load(open(idx))["weight_map"].values())) if os.path.exists(idx) else ["model.safetensors"]
    for f in files:
        t.update(safetensors_np.read(os.path.join(d, f))[0])
    return json.load(open(os.path.join(d, "config.json"))), {k: v.astype(np.float64) for k, v in t.items()}


def load_tiny(d):
    hc, t = read_hf(d)
    mt = hc["model_type"]
    W = {}
    if mt == "gpt2":
        dim, L, H = hc["n_embd"], hc["n_layer"], hc["n_head"]
        c = dict(dim=dim, n_layers=L, n_heads=H, n_kv_heads=H, head_dim=dim // H, hidden=4 * dim,
                 vocab=hc["vocab_size"], norm="layer", eps=hc["layer_norm_epsilon"], post_norm=False,
                 act="gelu_tanh", rope=None, causal=True, window=[0] * L, attn_scale=[(dim // H) ** -0.5] * L,
                 attn_softcap=[0.0] * L)
        W["tok"], W["pos"] = t["transformer.wte.weight"], t["transformer.wpe.weight"]
        for l in range(L):
            p, q = "transformer.h.%d." % l, "layers.%d." % l
            wa, ba = t[p + "attn.c_attn.weight"].T, t[p + "attn.c_attn.bias"]  # Conv1D (in, out)
            for i, n in enumerate("qkv"):
                W[q + n + ".w"], W[q + n + ".b"] = wa[i * dim:(i + 1) * dim], ba[i * dim:(i + 1) * dim]
            for ours, theirs in (("o", "attn.c_proj"), ("up", "mlp.c_fc"), ("down", "mlp.c_proj")):
                W[q + ours + ".w"], W[q + ours + ".b"] = t[p + theirs + ".weight"].T, t[p + theirs + ".bias"]
            for ours, theirs in (("attn_norm", "ln_1"), ("ffn_norm", "ln_2")):
                W[q + ours + ".w"], W[q + ours + ".b"] = t[p + theirs + ".weight"], t[p + theirs + ".bias"]
        W["final_norm.w"], W["final_norm.b"] = t["transformer.ln_f.weight"], t["transformer.ln_f.bias"]
        W["head.out.w"] = t["transformer.wte.weight"]
    elif mt in ("qwen2", "mistral"):
        dim, L, H, KV = hc["hidden_size"], hc["num_hidden_layers"], hc["num_attention_heads"], hc["num_key_value_heads"]
        win = hc.get("sliding_window") or 0
        windows = [0 if (mt == "qwen2" and l < hc.get("max_window_layers", 0)) else win for l in range(L)]
        c = dict(dim=dim, n_layers=L, n_heads=H, n_kv_heads=KV, head_dim=dim // H, hidden=hc["intermediate_size"],
                 vocab=hc["vocab_size"], norm="rms", eps=hc["rms_norm_eps"], post_norm=False, act="silu",
                 rope="half", rope_theta=[hc["rope_theta"]] * L, causal=True, window=windows,
                 attn_scale=[(dim // H) ** -0.5] * L, attn_softcap=[0.0] * L)
        W["tok"] = t["model.embed_tokens.weight"]
        for l in range(L):
            p, q = "model.layers.%d." % l, "layers.%d." % l
            for ours, theirs in (("q", "self_attn.q_proj"), ("k", "self_attn.k_proj"), ("v", "self_attn.v_proj"),
                                 ("o", "self_attn.o_proj"), ("gate", "mlp.gate_proj"), ("up", "mlp.up_proj"),
                                 ("down", "mlp.down_proj"), ("attn_norm", "input_layernorm"),
                                 ("ffn_norm", "post_attention_layernorm")):
                W[q + ours + ".w"] = t[p + theirs + ".weight"]
                if p + theirs + ".bias" in t:
                    W[q + ours + ".b"] = t[p + theirs + ".bias"]
        W["final_norm.w"] = t["model.norm.weight"]
        W["head.out.w"] = t.get("lm_head.weight", t["model.embed_tokens.weight"])
    elif mt == "bert":
        dim, L, H = hc["hidden_size"], hc["num_hidden_layers"], hc["num_attention_heads"]
        c = dict(dim=dim, n_layers=L, n_heads=H, n_kv_heads=H, head_dim=dim // H, hidden=hc["intermediate_size"],
                 vocab=hc["vocab_size"], norm="layer", eps=hc["layer_norm_eps"], post_norm=True, act="gelu",
                 rope=None, causal=False, window=[0] * L, attn_scale=[(dim // H) ** -0.5] * L,
                 attn_softcap=[0.0] * L, head_act="gelu")
        e = "bert.embeddings."
        W["tok"], W["pos"] = t[e + "word_embeddings.weight"], t[e + "position_embeddings.weight"]
        W["type0"] = t[e + "token_type_embeddings.weight"][0]
        W["emb_norm.w"], W["emb_norm.b"] = t[e + "LayerNorm.weight"], t[e + "LayerNorm.bias"]
        for l in range(L):
            p, q = "bert.encoder.layer.%d." % l, "layers.%d." % l
            for ours, theirs in (("q", "attention.self.query"), ("k", "attention.self.key"),
                                 ("v", "attention.self.value"), ("o", "attention.output.dense"),
                                 ("attn_norm", "attention.output.LayerNorm"), ("up", "intermediate.dense"),
                                 ("down", "output.dense"), ("ffn_norm", "output.LayerNorm")):
                W[q + ours + ".w"], W[q + ours + ".b"] = t[p + theirs + ".weight"], t[p + theirs + ".bias"]
        h = "cls.predictions."
        W["head.dense.w"], W["head.dense.b"] = t[h + "transform.dense.weight"], t[h + "transform.dense.bias"]
        W["head.norm.w"], W["head.norm.b"] = t[h + "transform.LayerNorm.weight"], t[h + "transform.LayerNorm.bias"]
        W["head.out.w"], W["head.out.b"] = t[e + "word_embeddings.weight"], t[h + "bias"]
    else:
        raise ValueError(mt)
    return c, W


def load_decoder(d, name):
    """A Hugging Face directory of scripts/make_tiny_decoders.py (tests/fixtures/decoders/<name>), with the
    architecture facts that script's reference states for it (its models() table)."""
    import make_tiny_decoders as mtd
    torch.set_grad_enabled(True)  # that script turns autograd off when imported
    hc, t = read_hf(d)
    a = {n: (a, c) for n, a, c in mtd.models()}[name][0]
    L, H, KV, hd, D = a["layers"], a["heads"], a["kv"], a["hd"], hc["hidden_size"]
    rot = int(hd * hc.get("partial_rotary_factor", 1.0))
    inv, ms = [], []
    for l in range(L):
        local = a["sliding"][l] and "theta_local" in a
        f, m = mtd.inv_freq(hc, rot, a["theta_local"] if local else hc["rope_theta"],
                            None if local else hc.get("rope_scaling"))
        inv.append(f)
        ms.append(m)
    emb_scale = 1.0
    if a.get("emb_scale"):
        emb_scale = float(torch.tensor(D ** 0.5, dtype=a["emb_dtype"]).double())
    act = "silu" if a["act"] is F.silu else "gelu_tanh"
    c = dict(dim=D, n_layers=L, n_heads=H, n_kv_heads=KV, head_dim=hd, hidden=a["ff"], vocab=hc["vocab_size"],
             norm="rms", eps=hc["rms_norm_eps"], post_norm=False, act=act, rope="half", rope_theta=[0.0] * L,
             rope_inv=inv, rope_mscale=ms, rope_dims=rot, causal=True,
             window=[a["window"] if a["sliding"][l] else 0 for l in range(L)],
             attn_scale=[a.get("scale", hd ** -0.5)] * L, attn_softcap=[hc.get("attn_logit_softcapping") or 0.0] * L,
             norm_offset=a.get("off", 0.0), emb_scale=emb_scale, final_softcap=hc.get("final_logit_softcapping"),
             moe_used=a.get("used"), moe_norm_topk=a.get("norm_topk"))
    W = {"tok": t["model.embed_tokens.weight"], "final_norm.w": t["model.norm.weight"],
         "head.out.w": t["model.embed_tokens.weight"] if hc.get("tie_word_embeddings") else t["lm_head.weight"]}
    names = [("attn_norm", "input_layernorm"), ("o", "self_attn.o_proj"), ("q_norm", "self_attn.q_norm"),
             ("k_norm", "self_attn.k_norm"), ("down", "mlp.down_proj"), ("gate", "mlp.gate_proj"), ("up", "mlp.up_proj")]
    names += [("q", "self_attn.q_proj"), ("k", "self_attn.k_proj"), ("v", "self_attn.v_proj")]
    if a.get("sandwich"):  # Gemma 2/3: norms on both sub-layer outputs
        names += [("attn_out_norm", "post_attention_layernorm"), ("ffn_norm", "pre_feedforward_layernorm"),
                  ("ffn_out_norm", "post_feedforward_layernorm")]
    else:
        names += [("ffn_norm", "post_attention_layernorm")]
    for l in range(L):
        p, q = "model.layers.%d." % l, "layers.%d." % l
        for ours, theirs in names:
            for sfx in ("weight", "bias"):
                if p + theirs + "." + sfx in t:
                    W[q + ours + "." + sfx[0]] = t[p + theirs + "." + sfx]
        if a.get("fused"):  # Phi-3: qkv_proj rows q | k | v, gate_up_proj rows gate | up
            W[q + "q.w"], W[q + "k.w"], W[q + "v.w"] = np.split(t[p + "self_attn.qkv_proj.weight"],
                                                                [H * hd, (H + KV) * hd])
            W[q + "gate.w"], W[q + "up.w"] = np.split(t[p + "mlp.gate_up_proj.weight"], 2)
        if a.get("experts"):
            W[q + "router.w"] = t[p + a["router"] + ".weight"]
            for e in range(a["experts"]):
                for ours, part in zip(("gate", "up", "down"), a["expert_parts"]):
                    W[q + "experts.%d.%s.w" % (e, ours)] = t[p + a["expert"] % (e, part) + ".weight"]
    return c, W


def load_extras(path):
    t, md = safetensors_np.read(path)
    x = json.loads(md["config"])
    L = len(x["window"])
    c = dict(dim=x["dim"], n_layers=L, n_heads=x["n_heads"], n_kv_heads=x["n_kv_heads"], head_dim=x["head_dim"],
             hidden=x["hidden"], vocab=x["vocab"], norm="rms", eps=x["eps"], post_norm=False,
             act="gelu_tanh" if x["act"] != "silu" else "silu", rope="half", rope_theta=x["rope_theta"], causal=True,
             window=x["window"], attn_scale=x["attn_scale"], attn_softcap=x["attn_softcap"],
             norm_offset=x["norm_offset"], emb_scale=x["emb_scale"], final_softcap=x["final_softcap"])
    W = {"tok": t["embed"], "final_norm.w": t["norm"], "head.out.w": t.get("lm_head", t["embed"])}
    for k, v in t.items():
        if k.startswith("layers."):
            W[k + ".w"] = v
    return c, W


# ---------------------------------------------------------------------------------------------------------
# attribution, as the methods define it


class Task:
    """A model, a source and targets: decoders append the targets (target i is predicted at row S - 1 + i);
    encoders predict target i at the given row of the source alone."""

    def __init__(self, model, src, targets, rows=None):
        self.m, self.src, self.targets = model, list(src), list(targets)
        self.S = len(src)
        self.decoder = model.c["causal"]
        self.ids = self.src + self.targets if self.decoder else self.src
        self.rows = [self.S - 1 + i for i in range(len(targets))] if self.decoder else list(rows)

    def logp(self, tok_rows, ids):
        """log p of every target given token rows (T', dim) of ids (T'); rows shift when tokens were removed."""
        logits, _, _ = self.m.forward(tok_rows, ids)
        shift = len(ids) - len(self.ids)
        lp = torch.log_softmax(logits, -1)
        return torch.stack([lp[r + shift, t] for r, t in zip(self.rows, self.targets)])

    def perturbed(self, off_groups, groups, baseline):
        """Token rows and ids with every source position of the groups in off_groups replaced (id or zero
        embedding) or removed."""
        ids = list(self.ids)
        rows = self.m.embed_tokens(ids)
        off = [j for j in range(self.S) if groups[j] in off_groups]
        if baseline == "remove":
            keep = [j for j in range(len(ids)) if j not in off]
            return rows[keep], [ids[j] for j in keep]
        for j in off:
            if baseline == "zero":
                rows[j] = 0
            else:
                rows[j] = self.m.embed_tokens([baseline])[0]
                ids[j] = baseline
        return rows, ids

    def value(self, off_groups, groups, baseline):
        return self.logp(*self.perturbed(off_groups, groups, baseline)).detach()

    def occlusion(self, baseline, groups):
        f0 = self.value(set(), groups, baseline)
        out = torch.zeros(len(self.targets), self.S)
        for g in sorted(set(groups)):
            d = f0 - self.value({g}, groups, baseline)
            for j in range(self.S):
                if groups[j] == g:
                    out[:, j] = d
        return out

    def shapley(self, baseline, groups, samples, seed):
        gs = sorted(set(groups))
        state = [seed]
        acc = {g: torch.zeros(len(self.targets)) for g in gs}
        for _ in range(samples):
            perm = list(gs)
            for i in range(len(perm) - 1, 0, -1):  # Fisher-Yates with SplitMix64, j = next % (i + 1)
                j = splitmix64(state) % (i + 1)
                perm[i], perm[j] = perm[j], perm[i]
            off = set(gs)
            prev = self.value(off, groups, baseline)
            for g in perm:
                off.discard(g)
                cur = self.value(off, groups, baseline)
                acc[g] += cur - prev
                prev = cur
        out = torch.zeros(len(self.targets), self.S)
        for j in range(self.S):
            out[:, j] = acc[groups[j]] / samples
        return out

    def grads(self, tok_rows):
        """d logp_i / d tok_rows for every target: (n_target, T, dim), and the attention probabilities'
        A * dA summed over queries per layer and head: (n_target, L, H, T)."""
        gs, axg = [], []
        for i in range(len(self.targets)):
            x = tok_rows.detach().clone().requires_grad_(True)
            logits, _, attns = self.m.forward(x, self.ids, keep_attn=True)
            lp = torch.log_softmax(logits, -1)[self.rows[i], self.targets[i]]
            lp.backward()
            gs.append(x.grad.detach())
            axg.append(torch.stack([(a * a.grad).sum(-2) for a in attns]))
        return torch.stack(gs), torch.stack(axg).detach()

    def ig(self, baseline_rows, steps):
        x = self.m.embed_tokens(self.ids)
        nodes, weights = np.polynomial.legendre.leggauss(steps)  # Captum's default rule (gausslegendre)
        alphas, w = 0.5 * (nodes + 1), 0.5 * weights
        total = torch.zeros(len(self.targets), x.shape[0], x.shape[1])
        for a, wa in zip(alphas, w):
            xi = x.clone()
            xi[: self.S] = baseline_rows + float(a) * (x[: self.S] - baseline_rows)
            g, _ = self.grads(xi)
            total += float(wa) * g
        attr = ((x[: self.S] - baseline_rows)[None] * total[:, : self.S]).sum(-1)
        xb = x.clone()
        xb[: self.S] = baseline_rows
        fb = self.logp(xb, self.ids).detach()
        fx = self.logp(x, self.ids).detach()
        return attr, attr.sum(-1) - (fx - fb), fb


def splitmix64(state):
    state[0] = (state[0] + 0x9E3779B97F4A7C15) & MASK64
    z = state[0]
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def lens(task, k):
    m = task.m
    with torch.no_grad():
        _, resid, _ = m.forward(m.embed_tokens(task.ids), task.ids)
        T = len(task.ids)
        nxt = [task.ids[t + 1] if t + 1 < T else -1 for t in range(T)]
        ids, lps, tlp, trk = [], [], [], []
        for r in resid:
            lp = torch.log_softmax(m.head(r), -1)
            v, i = torch.sort(lp, dim=-1, descending=True, stable=True)
            ids.append(i[:, :k])
            lps.append(v[:, :k])
            tlp.append(torch.tensor([lp[t, n] if n >= 0 else float("nan") for t, n in enumerate(nxt)]))
            trk.append(torch.tensor([int((lp[t] > lp[t, n]).sum()) if n >= 0 else -1 for t, n in enumerate(nxt)]))
        return dict(topk_ids=torch.stack(ids), topk_logprobs=torch.stack(lps), target_ids=torch.tensor(nxt),
                    target_logprobs=torch.stack(tlp), target_ranks=torch.stack(trk))


def check_model(name, model, ref_path, prefix=""):
    """The reference model must reproduce the project's committed PyTorch fixtures (written by other scripts)."""
    t, _ = safetensors_np.read(ref_path)
    ids = [int(i) for i in t[prefix + "ids"]]
    with torch.no_grad():
        logits, _, _ = model.forward(model.embed_tokens(ids), ids)
    ref = t[prefix + "logits"]
    err = np.abs(logits.numpy()[-ref.shape[0]:] - ref).max()
    assert err < 1e-4, "%s: the reference model is %g away from %s" % (name, err, ref_path)


def model_case(name, model, src, targets, rows, baseline_id, out, samples=3, seed=7, steps=16, k=5, grads=True):
    """grads False: the perturbation methods and the lens only (attnviz refuses gradients through a mixture of
    experts)."""
    task = Task(model, src, targets, rows)
    S = task.S
    tokens = list(range(S))
    res = {"ids": np.array(task.ids, np.int32), "rows": np.array(task.rows, np.int32),
           "targets": np.array(targets, np.int32)}
    x = model.embed_tokens(task.ids)
    res["logp"] = task.logp(x, task.ids).detach()
    for b, name_b in ((baseline_id, "unk"), ("zero", "zero"), ("remove", "remove")):
        if b != "remove" or task.decoder:  # removing a token moves an encoder's target rows: not defined
            res["occlusion." + name_b] = task.occlusion(b, tokens)
    span2 = [j // 2 for j in range(S)]
    res["occlusion.span2"] = task.occlusion(baseline_id, span2)
    res["shapley"] = task.shapley(baseline_id, tokens, samples, seed)
    if grads:
        g, axg = task.grads(x)
        res["grad"] = g[:, :S]
        res["saliency"] = g[:, :S].norm(dim=-1)
        res["ixg"] = (g[:, :S] * x[None, :S]).sum(-1)
        res["attn_grad"] = axg[..., :S]
        res["attn_grad.sum"] = axg[..., :S].sum((1, 2))
        base_rows = model.embed_tokens([baseline_id] * S)
        res["ig"], res["ig.delta"], res["ig.fb"] = task.ig(base_rows, steps)
    for key, v in lens(task, k).items():
        res["lens." + key] = v
    params = dict(source_len=S, baseline_id=baseline_id, samples=samples, seed=seed, steps=steps, k=k,
                  decoder=task.decoder)
    tensors = {}
    for key, v in res.items():
        v = v.numpy() if isinstance(v, torch.Tensor) else v
        tensors[key] = v.astype(np.int32) if v.dtype.kind in "iu" else v.astype(np.float32)
    safetensors_np.write(os.path.join(out, name + ".safetensors"), tensors, {"params": json.dumps(params)})
    print("%-12s T %d, S %d, %d targets: logp %s; IG completeness error %s" % (
        name, len(task.ids), S, len(targets), np.round(tensors["logp"], 4),
        np.abs(tensors["ig.delta"]).max() if grads else "-"))


# ---------------------------------------------------------------------------------------------------------
# kernels


def kernel_cases():
    g = torch.Generator().manual_seed(3)

    def rnd(*shape, scale=1.0):
        return (torch.randn(tuple(shape), generator=g, dtype=torch.float32) * scale).to(DT)

    cases, tensors = {}, {}

    def add(name, params, inputs, fn):
        xs = {k: v.clone().requires_grad_(True) for k, v in inputs.items() if k in params.get("diff", [])}
        allv = {**inputs, **xs}
        y = fn(allv)
        dy = rnd(*y.shape)
        (y * dy).sum().backward()
        tensors[name + ".dy"] = dy
        for k, v in inputs.items():
            tensors[name + "." + k] = v
        for k, v in xs.items():
            tensors[name + ".d" + k] = v.grad
        cases[name] = {k: v for k, v in params.items() if k != "diff"}

    G, n, dim, out = 2, 5, 12, 7
    add("linear", dict(G=G, n=n, diff=["x"]), dict(x=rnd(G, n, dim), w=rnd(out, dim)), lambda v: v["x"] @ v["w"].T)
    for kind in ("rms", "layer"):
        add(kind + "norm", dict(G=G, n=n, eps=1e-5, diff=["x"]), dict(x=rnd(n, dim, scale=2.0), w=rnd(dim) + 1),
            lambda v, kind=kind: norm(kind, v["x"], v["w"], None, 1e-5))
    for a in ("gelu", "gelu_tanh", "relu", "silu", "quick_gelu"):
        add("act." + a, dict(act=a, diff=["x"]), dict(x=rnd(40, scale=3.0)), lambda v, a=a: act_fn(a)(v["x"]))
        add("gated." + a, dict(act=a, diff=["g", "u"]), dict(g=rnd(40, scale=3.0), u=rnd(40)),
            lambda v, a=a: act_fn(a)(v["g"]) * v["u"])
    for style in ("interleaved", "half"):
        add("rope." + style, dict(style=style, theta=10000.0, n_heads=3, head_dim=8, diff=["x"]),
            dict(x=rnd(6, 24)), lambda v, style=style: rope(v["x"], 3, 8, 10000.0, style, torch.arange(6)))
    add("softcap", dict(cap=2.5, diff=["x"]), dict(x=rnd(30, scale=4.0)), lambda v: torch.tanh(v["x"] / 2.5) * 2.5)
    add("log_softmax", dict(target=3, diff=["x"]), dict(x=rnd(11, scale=2.0)),
        lambda v: torch.log_softmax(v["x"], -1)[3])
    for name, causal, window, cap in (("attn.causal", 1, 0, 0.0), ("attn.window", 1, 3, 0.0),
                                      ("attn.softcap", 1, 0, 1.5), ("attn.bidir", 0, 0, 0.0)):
        H, KV, hd, T = 4, 2, 6, 7

        def fn(v, causal=causal, window=window, cap=cap):
            q = v["q"].view(T, H, hd).transpose(0, 1)
            k = v["k"].view(T, KV, hd).transpose(0, 1).repeat_interleave(H // KV, 0)
            vv = v["v"].view(T, KV, hd).transpose(0, 1).repeat_interleave(H // KV, 0)
            s = (q @ k.transpose(-1, -2)) * hd ** -0.5
            if cap:
                s = torch.tanh(s / cap) * cap
            i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
            if causal:
                s = s.masked_fill(j > i, float("-inf"))
            if window:
                s = s.masked_fill(i - j >= window, float("-inf"))
            return (torch.softmax(s, -1) @ vv).transpose(0, 1).reshape(T, H * hd)
        add(name, dict(n_heads=H, n_kv_heads=KV, head_dim=hd, T=T, causal=causal, window=window, softcap=cap,
                       diff=["q", "k", "v"]), dict(q=rnd(T, H * hd), k=rnd(T, KV * hd), v=rnd(T, KV * hd)), fn)
    return cases, tensors


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", default=os.path.normpath(os.path.join(REPO, "..", "shared")))
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "fixtures", "attrib"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)

    cases, tensors = kernel_cases()
    safetensors_np.write(os.path.join(args.out, "kernels.safetensors"),
                         {k: v.detach().numpy().astype(np.float32) for k, v in tensors.items()},
                         {"cases": json.dumps(cases)})
    print("kernels: %d cases" % len(cases))

    tiny = os.path.join(REPO, "tests", "fixtures", "tiny")
    fixtures = os.path.join(REPO, "tests", "fixtures")
    stories = Model(*load_stories(args.shared))
    check_model("stories260K", stories, os.path.join(fixtures, "stories260K_ref.safetensors"), "p0.")
    from ref_llama import Tokenizer
    tok = Tokenizer(os.path.join(args.shared, "models", "stories260K", "tok512.bin"), 512)
    full = tok.encode("Once upon a time, Lily saw a big ball", bos=True)
    model_case("stories260K", stories, full[:8], full[8:], None, 0, args.out, samples=4)
    cases = (("gpt2", [5, 17, 3, 44, 9, 9, 30], [12, 0, 21], None, 47),
             ("qwen2", [1, 14, 7, 40, 22, 3, 3], [9, 31, 17], None, 0),
             ("mistral", [1, 14, 7, 40, 22, 3, 3], [9, 31], None, 0),
             ("bert", [2, 7, 19, 33, 1, 25, 6, 11, 3], [19, 25], [2, 5], 1))
    for name, src, tgt, rows, base in cases:
        m = Model(*load_tiny(os.path.join(tiny, name)))
        check_model(name, m, os.path.join(tiny, name, "reference.safetensors"))
        model_case(name, m, src, tgt, rows, base, args.out)
    gemma_path = os.path.join(fixtures, "extras", "gemma.safetensors")
    gemma = Model(*load_extras(gemma_path))
    check_model("gemma", gemma, gemma_path)
    model_case("gemma", gemma, [1, 14, 7, 39, 22, 3, 3, 9], [31, 17, 5], None, 0, args.out)
    decoders = os.path.join(fixtures, "decoders")  # the families of src/model/arch.h (#13)
    for name in ("llama3", "qwen3", "gemma", "gemma2", "gemma3", "phi3", "mixtral", "qwen3_moe"):
        m = Model(*load_decoder(os.path.join(decoders, name), name))
        check_model("decoders/" + name, m, os.path.join(decoders, name, "reference.safetensors"))
        model_case("dec_" + name, m, [1, 14, 7, 40, 22, 3, 3, 9], [31, 17, 5], None, 0, args.out)
    total = sum(os.path.getsize(os.path.join(args.out, f)) for f in os.listdir(args.out))
    print("wrote %s (%d bytes)" % (args.out, total))


if __name__ == "__main__":
    main()
