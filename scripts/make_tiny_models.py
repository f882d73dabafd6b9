#!/usr/bin/python3
"""Tiny random-weight checkpoints of every supported non-Llama family (and the Llama variants Qwen2 and
Mistral), with the exact tensor names and config.json keys of the real Hugging Face checkpoints, plus reference
outputs from independent PyTorch implementations written here from the published architectures (not from the
project's C code).

Writes tests/fixtures/tiny/<name>/:
    config.json                      the real checkpoint's keys (model_type, architectures, sizes, ...)
    model.safetensors                or model-0000k-of-0000n.safetensors + model.safetensors.index.json
    reference.safetensors            inputs and outputs of the torch reference:
        token models   ids I32 [T], logits F32 [T, vocab], attn.self.<l> F32 [H, T, T]
        encoder-decoders  src I32 [S], tgt I32 [T] (decoder input), logits F32 [T, vocab],
                       attn.enc.<l> [H, S, S], attn.dec.<l> [H, T, T], attn.cross.<l> [H, T, S],
                       greedy I32 [n] (greedy decoding from the start token, metadata steps)
        vit            pixels F32 [3, size, size], logits F32 [classes], attn.self.<l>

Models (weights F32 unless noted): gpt2 (two shards + index), bert, roberta (a pad token inside the input
exercises the position counting), distilbert, qwen2 (q/k/v biases, sliding window on layers >= 1), mistral
(sliding window 4), marian, bart (F16), t5 (relu, tied head, d_kv * heads != d_model), t5v11 (gated-gelu,
untied head, BF16), vit (Hugging Face names).

Usage: /usr/bin/python3 scripts/make_tiny_models.py [--out tests/fixtures/tiny]
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

torch.set_grad_enabled(False)


# ---------------------------------------------------------------------------------------------------------
# weights


class Weights:
    """Random tensors by name; `get` returns them as float32 torch tensors after rounding to the stored dtype."""

    def __init__(self, seed, dtype="F32"):
        self.g = torch.Generator().manual_seed(seed)
        self.t = {}
        self.dtype = dtype

    def add(self, name, shape, std=0.4, mean=0.0):
        x = torch.randn(*shape, generator=self.g) * std + mean
        if self.dtype == "F16":
            x = x.half().float()
        elif self.dtype == "BF16":
            x = x.bfloat16().float()
        self.t[name] = x
        return x

    def lin(self, name, out, inp, bias=True, std=0.4):
        self.add(name + ".weight", (out, inp), std)
        if bias:
            self.add(name + ".bias", (out,), 0.1)

    def norm(self, name, dim, bias=True, wname="weight", bname="bias"):
        self.add(name + "." + wname, (dim,), 0.1, 1.0)
        if bias:
            self.add(name + "." + bname, (dim,), 0.1)

    def __getitem__(self, name):
        return self.t[name]

    def save(self, d, shards=1):
        os.makedirs(d, exist_ok=True)
        names = list(self.t)
        arrays = {n: self.t[n].numpy().astype(np.float32) for n in names}
        dtypes = {n: self.dtype for n in names}
        if self.dtype == "F16":
            arrays = {n: a.astype(np.float16) for n, a in arrays.items()}
            dtypes = None
        elif self.dtype == "F32":
            dtypes = None
        meta = {"format": "pt"}
        if shards == 1:
            safetensors_np.write(os.path.join(d, "model.safetensors"), arrays, meta, dtypes)
            return
        per = (len(names) + shards - 1) // shards
        weight_map, total = {}, 0
        for k in range(shards):
            part = names[k * per:(k + 1) * per]
            fname = "model-%05d-of-%05d.safetensors" % (k + 1, shards)
            safetensors_np.write(os.path.join(d, fname), {n: arrays[n] for n in part}, meta,
                                 {n: dtypes[n] for n in part} if dtypes else None)
            for n in part:
                weight_map[n] = fname
                total += arrays[n].nbytes
        with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)


def save_config(d, cfg):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)


def save_reference(d, tensors, meta):
    out = {}
    for k, v in tensors.items():
        v = v.numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
        out[k] = v.astype(np.int32) if v.dtype.kind in "iu" else v.astype(np.float32)
    safetensors_np.write(os.path.join(d, "reference.safetensors"), out, {k: str(v) for k, v in meta.items()})


# ---------------------------------------------------------------------------------------------------------
# shared reference pieces (plain PyTorch)


def layer_norm(x, w, b, eps):
    return F.layer_norm(x, x.shape[-1:], w, b, eps)


def rms_norm(x, w, eps):  # T5LayerNorm / LlamaRMSNorm: no mean, no bias
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def attention(q, k, v, heads, kv_heads=None, scale=None, causal=False, window=0, bias=None, softcap=None):
    """q (T, heads*hd), k/v (S, kv_heads*hd) -> out (T, heads*hd), probs (heads, T, S). softcap: Gemma 2's
    cap * tanh(scores / cap) on the scaled scores, before the masks."""
    kv_heads = kv_heads or heads
    T, S = q.shape[0], k.shape[0]
    hd = q.shape[1] // heads
    q = q.view(T, heads, hd).transpose(0, 1)
    k = k.view(S, kv_heads, hd).transpose(0, 1).repeat_interleave(heads // kv_heads, 0)
    v = v.view(S, kv_heads, hd).transpose(0, 1).repeat_interleave(heads // kv_heads, 0)
    s = q @ k.transpose(-1, -2)
    if scale is not None:
        s = s * scale
    if softcap is not None:
        s = torch.tanh(s / softcap) * softcap
    if bias is not None:
        s = s + bias
    i = torch.arange(T)[:, None]
    j = torch.arange(S)[None, :]
    if causal:
        s = s.masked_fill(j > i, float("-inf"))
    if window:
        s = s.masked_fill(i - j >= window, float("-inf"))
    p = torch.softmax(s, -1)
    return (p @ v).transpose(0, 1).reshape(T, heads * hd), p


def lin(W, name, x, bias=True):
    y = x @ W[name + ".weight"].T
    return y + W[name + ".bias"] if bias and (name + ".bias") in W.t else y


# ---------------------------------------------------------------------------------------------------------
# GPT-2


def make_gpt2(out):
    d, L, H, V, P = 16, 2, 2, 48, 24
    cfg = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "activation_function": "gelu_new",
           "n_embd": d, "n_layer": L, "n_head": H, "n_positions": P, "n_ctx": P, "n_inner": None, "vocab_size": V,
           "layer_norm_epsilon": 1e-5, "bos_token_id": V - 1, "eos_token_id": V - 1, "scale_attn_weights": True,
           "resid_pdrop": 0.1, "embd_pdrop": 0.1, "attn_pdrop": 0.1, "initializer_range": 0.02,
           "tie_word_embeddings": True}
    W = Weights(1)
    W.add("transformer.wte.weight", (V, d), 1.0)
    W.add("transformer.wpe.weight", (P, d), 0.5)
    for l in range(L):
        p = "transformer.h.%d." % l
        W.norm(p + "ln_1", d)
        W.add(p + "attn.c_attn.weight", (d, 3 * d))  # Conv1D: (in, out)
        W.add(p + "attn.c_attn.bias", (3 * d,), 0.1)
        W.add(p + "attn.c_proj.weight", (d, d))
        W.add(p + "attn.c_proj.bias", (d,), 0.1)
        W.norm(p + "ln_2", d)
        W.add(p + "mlp.c_fc.weight", (d, 4 * d))
        W.add(p + "mlp.c_fc.bias", (4 * d,), 0.1)
        W.add(p + "mlp.c_proj.weight", (4 * d, d))
        W.add(p + "mlp.c_proj.bias", (d,), 0.1)
    W.norm("transformer.ln_f", d)
    ids = torch.tensor([5, 17, 3, 44, 9, 9, 30, 12, 0, 21])
    T = len(ids)
    x = W["transformer.wte.weight"][ids] + W["transformer.wpe.weight"][:T]
    attns = []
    for l in range(L):
        p = "transformer.h.%d." % l
        h = layer_norm(x, W[p + "ln_1.weight"], W[p + "ln_1.bias"], 1e-5)
        qkv = h @ W[p + "attn.c_attn.weight"] + W[p + "attn.c_attn.bias"]
        q, k, v = qkv.split(d, -1)
        o, a = attention(q, k, v, H, scale=(d // H) ** -0.5, causal=True)
        attns.append(a)
        x = x + o @ W[p + "attn.c_proj.weight"] + W[p + "attn.c_proj.bias"]
        h = layer_norm(x, W[p + "ln_2.weight"], W[p + "ln_2.bias"], 1e-5)
        h = F.gelu(h @ W[p + "mlp.c_fc.weight"] + W[p + "mlp.c_fc.bias"], approximate="tanh")
        x = x + h @ W[p + "mlp.c_proj.weight"] + W[p + "mlp.c_proj.bias"]
    x = layer_norm(x, W["transformer.ln_f.weight"], W["transformer.ln_f.bias"], 1e-5)
    logits = x @ W["transformer.wte.weight"].T
    save_config(out, cfg)
    W.save(out, shards=2)
    save_reference(out, {"ids": ids, "logits": logits, **{"attn.self.%d" % l: a for l, a in enumerate(attns)}},
                   {"family": "gpt2"})


# ---------------------------------------------------------------------------------------------------------
# BERT, RoBERTa, DistilBERT (post-norm encoders with a masked-LM head)


def make_bert(out, kind):
    d, L, H, ff, V = 16, 2, 2, 32, 40
    eps = 1e-12
    roberta, distil = kind == "roberta", kind == "distilbert"
    pad = 1 if roberta else 0
    P = 24 + (pad + 1 if roberta else 0)
    W = Weights({"bert": 2, "roberta": 3, "distilbert": 4}[kind])
    if distil:
        cfg = {"architectures": ["DistilBertForMaskedLM"], "model_type": "distilbert", "activation": "gelu",
               "dim": d, "n_layers": L, "n_heads": H, "hidden_dim": ff, "max_position_embeddings": P,
               "vocab_size": V, "pad_token_id": 0, "sinusoidal_pos_embds": False, "dropout": 0.1,
               "attention_dropout": 0.1, "initializer_range": 0.02, "tie_weights_": True}
        p = "distilbert."
        names = dict(layers="transformer.layer", q="attention.q_lin", k="attention.k_lin", v="attention.v_lin",
                     o="attention.out_lin", n1="sa_layer_norm", up="ffn.lin1", down="ffn.lin2",
                     n2="output_layer_norm")
    else:
        cfg = {"architectures": ["RobertaForMaskedLM" if roberta else "BertForMaskedLM"], "model_type": kind,
               "hidden_act": "gelu", "hidden_size": d, "num_hidden_layers": L, "num_attention_heads": H,
               "intermediate_size": ff, "max_position_embeddings": P, "type_vocab_size": 1 if roberta else 2,
               "vocab_size": V, "layer_norm_eps": eps, "pad_token_id": pad, "position_embedding_type": "absolute",
               "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02}
        if roberta:
            cfg.update({"bos_token_id": 0, "eos_token_id": 2})
        p = kind + "."
        names = dict(layers="encoder.layer", q="attention.self.query", k="attention.self.key",
                     v="attention.self.value", o="attention.output.dense", n1="attention.output.LayerNorm",
                     up="intermediate.dense", down="output.dense", n2="output.LayerNorm")
    W.add(p + "embeddings.word_embeddings.weight", (V, d), 1.0)
    W.add(p + "embeddings.position_embeddings.weight", (P, d), 0.5)
    if not distil:
        W.add(p + "embeddings.token_type_embeddings.weight", (cfg["type_vocab_size"], d), 0.5)
    W.norm(p + "embeddings.LayerNorm", d)
    for l in range(L):
        b = "%s%s.%d." % (p, names["layers"], l)
        for key, (o, i) in (("q", (d, d)), ("k", (d, d)), ("v", (d, d)), ("o", (d, d)), ("up", (ff, d)),
                            ("down", (d, ff))):
            W.lin(b + names[key], o, i)
        W.norm(b + names["n1"], d)
        W.norm(b + names["n2"], d)
    if distil:
        W.lin("vocab_transform", d, d)
        W.norm("vocab_layer_norm", d)
        W.add("vocab_projector.bias", (V,), 0.1)
        head = ("vocab_transform", "vocab_layer_norm", "vocab_projector.bias")
    elif roberta:
        W.lin("lm_head.dense", d, d)
        W.norm("lm_head.layer_norm", d)
        W.add("lm_head.bias", (V,), 0.1)
        head = ("lm_head.dense", "lm_head.layer_norm", "lm_head.bias")
    else:
        W.lin("cls.predictions.transform.dense", d, d)
        W.norm("cls.predictions.transform.LayerNorm", d)
        W.add("cls.predictions.bias", (V,), 0.1)
        head = ("cls.predictions.transform.dense", "cls.predictions.transform.LayerNorm", "cls.predictions.bias")
    # [CLS]-like first token, a pad token inside (RoBERTa positions skip it), [SEP]-like last
    ids = torch.tensor([0 if roberta else 2, 7, 19, 33, 1, 25, 6, 11, 2 if roberta else 3])
    T = len(ids)
    if roberta:  # create_position_ids_from_input_ids
        mask = (ids != pad).long()
        pos = torch.cumsum(mask, 0) * mask + pad
    else:
        pos = torch.arange(T)

    def run(types):  # types: token_type_ids (BERT's sentence A = 0, B = 1)
        x = W[p + "embeddings.word_embeddings.weight"][ids] + W[p + "embeddings.position_embeddings.weight"][pos]
        if not distil:
            x = x + W[p + "embeddings.token_type_embeddings.weight"][types]
        x = layer_norm(x, W[p + "embeddings.LayerNorm.weight"], W[p + "embeddings.LayerNorm.bias"], eps)
        attns = []
        for l in range(L):
            b = "%s%s.%d." % (p, names["layers"], l)
            o, a = attention(lin(W, b + names["q"], x), lin(W, b + names["k"], x), lin(W, b + names["v"], x), H,
                             scale=1.0 / math.sqrt(d // H))
            attns.append(a)
            x = layer_norm(x + lin(W, b + names["o"], o), W[b + names["n1"] + ".weight"], W[b + names["n1"] + ".bias"], eps)
            h = lin(W, b + names["down"], F.gelu(lin(W, b + names["up"], x)))
            x = layer_norm(x + h, W[b + names["n2"] + ".weight"], W[b + names["n2"] + ".bias"], eps)
        return x, attns

    x, attns = run(torch.zeros(T, dtype=torch.long))
    h = layer_norm(F.gelu(lin(W, head[0], x)), W[head[1] + ".weight"], W[head[1] + ".bias"], eps)
    logits = h @ W[p + "embeddings.word_embeddings.weight"].T + W[head[2]]
    save_config(out, cfg)
    W.save(out)
    ref = {"ids": ids, "logits": logits, **{"attn.self.%d" % l: a for l, a in enumerate(attns)}}
    if kind == "bert":  # a sentence pair: the last 4 tokens are sentence B (token type 1)
        types = torch.tensor([0] * 5 + [1] * (T - 5))
        ref.update({"pair_types": types, **{"pair_attn.self.%d" % l: a for l, a in enumerate(run(types)[1])}})
    save_reference(out, ref, {"family": kind})


# ---------------------------------------------------------------------------------------------------------
# Qwen2 and Mistral (Llama variants)


def rope_half(x, heads, theta):
    T, n = x.shape
    hd = n // heads
    x = x.view(T, heads, hd)
    inv = 1.0 / (theta ** (torch.arange(0, hd, 2).float() / hd))
    ang = torch.arange(T).float()[:, None] * inv[None, :]
    cos, sin = torch.cat([ang.cos(), ang.cos()], -1)[:, None, :], torch.cat([ang.sin(), ang.sin()], -1)[:, None, :]
    rot = torch.cat([-x[..., hd // 2:], x[..., :hd // 2]], -1)
    return (x * cos + rot * sin).reshape(T, n)


def make_llama_variant(out, kind):
    d, L, H, KV, ff, V, P = 16, 2, 4, 2, 32, 48, 64
    hd = d // H
    qwen = kind == "qwen2"
    theta = 1000000.0 if qwen else 10000.0
    eps = 1e-6 if qwen else 1e-5
    cfg = {"architectures": ["Qwen2ForCausalLM" if qwen else "MistralForCausalLM"], "model_type": kind,
           "hidden_act": "silu", "hidden_size": d, "intermediate_size": ff, "num_hidden_layers": L,
           "num_attention_heads": H, "num_key_value_heads": KV, "max_position_embeddings": P, "rms_norm_eps": eps,
           "rope_theta": theta, "vocab_size": V, "tie_word_embeddings": qwen, "bos_token_id": 1, "eos_token_id": 2,
           "attention_dropout": 0.0, "initializer_range": 0.02, "torch_dtype": "float32"}
    if qwen:  # the window applies to layers >= max_window_layers
        cfg.update({"use_sliding_window": True, "sliding_window": 4, "max_window_layers": 1})
        windows = [0 if l < 1 else 4 for l in range(L)]
    else:
        cfg.update({"sliding_window": 4})
        windows = [4] * L
    W = Weights(5 if qwen else 6)
    W.add("model.embed_tokens.weight", (V, d), 1.0)
    for l in range(L):
        p = "model.layers.%d." % l
        W.norm(p + "input_layernorm", d, bias=False)
        W.lin(p + "self_attn.q_proj", H * hd, d, bias=qwen, std=0.6)
        W.lin(p + "self_attn.k_proj", KV * hd, d, bias=qwen, std=0.6)
        W.lin(p + "self_attn.v_proj", KV * hd, d, bias=qwen)
        W.lin(p + "self_attn.o_proj", d, H * hd, bias=False)
        W.norm(p + "post_attention_layernorm", d, bias=False)
        W.lin(p + "mlp.gate_proj", ff, d, bias=False)
        W.lin(p + "mlp.up_proj", ff, d, bias=False)
        W.lin(p + "mlp.down_proj", d, ff, bias=False)
    W.norm("model.norm", d, bias=False)
    if not qwen:
        W.add("lm_head.weight", (V, d), 0.4)
    ids = torch.tensor([1, 14, 7, 40, 22, 3, 3, 9, 31, 17])
    x = W["model.embed_tokens.weight"][ids]
    attns = []
    for l in range(L):
        p = "model.layers.%d." % l
        h = rms_norm(x, W[p + "input_layernorm.weight"], eps)
        q = rope_half(lin(W, p + "self_attn.q_proj", h), H, theta)
        k = rope_half(lin(W, p + "self_attn.k_proj", h), KV, theta)
        o, a = attention(q, k, lin(W, p + "self_attn.v_proj", h), H, KV, scale=hd ** -0.5, causal=True,
                         window=windows[l])
        attns.append(a)
        x = x + lin(W, p + "self_attn.o_proj", o)
        h = rms_norm(x, W[p + "post_attention_layernorm.weight"], eps)
        x = x + lin(W, p + "mlp.down_proj", F.silu(lin(W, p + "mlp.gate_proj", h)) * lin(W, p + "mlp.up_proj", h))
    x = rms_norm(x, W["model.norm.weight"], eps)
    logits = x @ (W["model.embed_tokens.weight"] if qwen else W["lm_head.weight"]).T
    save_config(out, cfg)
    W.save(out)
    save_reference(out, {"ids": ids, "logits": logits, **{"attn.self.%d" % l: a for l, a in enumerate(attns)}},
                   {"family": kind})


# ---------------------------------------------------------------------------------------------------------
# Marian and BART


def sinusoid_table(n_pos, dim):  # MarianSinusoidalPositionalEmbedding: [sin | cos] halves
    pe = np.array([[pos / np.power(10000, 2 * (j // 2) / dim) for j in range(dim)] for pos in range(n_pos)])
    out = np.zeros((n_pos, dim))
    out[:, : dim // 2] = np.sin(pe[:, 0::2])
    out[:, dim // 2:] = np.cos(pe[:, 1::2])
    return torch.from_numpy(out).float()


def make_bart(out, kind):
    marian = kind == "marian"
    d, L, H, ff, V, P = 16, 2, 2, 32, 40, 32
    pad, eos, bos = (V - 1, 0, None) if marian else (1, 2, 0)
    start = pad if marian else eos
    cfg = {"architectures": ["MarianMTModel" if marian else "BartForConditionalGeneration"], "model_type": kind,
           "activation_function": "swish" if marian else "gelu", "d_model": d, "encoder_layers": L,
           "decoder_layers": L, "encoder_attention_heads": H, "decoder_attention_heads": H, "encoder_ffn_dim": ff,
           "decoder_ffn_dim": ff, "max_position_embeddings": P, "vocab_size": V, "scale_embedding": marian,
           "pad_token_id": pad, "eos_token_id": eos, "decoder_start_token_id": start, "dropout": 0.1,
           "attention_dropout": 0.0, "activation_dropout": 0.0, "init_std": 0.02, "is_encoder_decoder": True,
           "tie_word_embeddings": True, "normalize_before": False}
    if marian:
        cfg.update({"static_position_embeddings": True, "share_encoder_decoder_embeddings": True})
    else:
        cfg.update({"bos_token_id": bos, "normalize_embedding": True, "add_final_layer_norm": False})
    act = F.silu if marian else F.gelu
    W = Weights(7 if marian else 8, dtype="F32" if marian else "F16")
    W.add("model.shared.weight", (V, d), 1.0)
    for side in ("encoder", "decoder"):
        if not marian:
            W.add("model.%s.embed_positions.weight" % side, (P + 2, d), 0.5)
            W.norm("model.%s.layernorm_embedding" % side, d)
        for l in range(L):
            p = "model.%s.layers.%d." % (side, l)
            attns = ["self_attn"] + (["encoder_attn"] if side == "decoder" else [])
            for a in attns:
                for n in ("q_proj", "k_proj", "v_proj", "out_proj"):
                    W.lin(p + a + "." + n, d, d)
                W.norm(p + a + "_layer_norm", d)
            W.lin(p + "fc1", ff, d)
            W.lin(p + "fc2", d, ff)
            W.norm(p + "final_layer_norm", d)
    W.add("final_logits_bias", (1, V), 0.1)
    scale = math.sqrt(d) if marian else 1.0

    def embed(side, ids):
        x = W["model.shared.weight"][ids] * scale
        T = len(ids)
        if marian:
            return x + sinusoid_table(T, d)
        x = x + W["model.%s.embed_positions.weight" % side][torch.arange(T) + 2]
        return layer_norm(x, W["model.%s.layernorm_embedding.weight" % side],
                          W["model.%s.layernorm_embedding.bias" % side], 1e-5)

    def mha(p, xq, xkv, causal):
        o, a = attention(lin(W, p + ".q_proj", xq), lin(W, p + ".k_proj", xkv), lin(W, p + ".v_proj", xkv), H,
                         scale=(d // H) ** -0.5, causal=causal)
        return lin(W, p + ".out_proj", o), a

    def ln(x, name):
        return layer_norm(x, W[name + ".weight"], W[name + ".bias"], 1e-5)

    def encode(src):
        x, att = embed("encoder", src), []
        for l in range(L):
            p = "model.encoder.layers.%d." % l
            o, a = mha(p + "self_attn", x, x, False)
            att.append(a)
            x = ln(x + o, p + "self_attn_layer_norm")
            x = ln(x + lin(W, p + "fc2", act(lin(W, p + "fc1", x))), p + "final_layer_norm")
        return x, att

    def decode(mem, tgt):
        x, sa, ca = embed("decoder", tgt), [], []
        for l in range(L):
            p = "model.decoder.layers.%d." % l
            o, a = mha(p + "self_attn", x, x, True)
            sa.append(a)
            x = ln(x + o, p + "self_attn_layer_norm")
            o, a = mha(p + "encoder_attn", x, mem, False)
            ca.append(a)
            x = ln(x + o, p + "encoder_attn_layer_norm")
            x = ln(x + lin(W, p + "fc2", act(lin(W, p + "fc1", x))), p + "final_layer_norm")
        return x @ W["model.shared.weight"].T + W["final_logits_bias"][0], sa, ca

    src = torch.tensor(([] if marian else [bos]) + [5, 9, 12, 30, 7, 21, eos])
    tgt = torch.tensor([start, 11, 8, 25, 3, 16])
    save_encdec(out, cfg, W, src, tgt, encode, decode, start, eos, kind)


def save_encdec(out, cfg, W, src, tgt, encode, decode, start, eos, kind, steps=6):
    mem, enc = encode(src)
    logits, dec, cross = decode(mem, tgt)
    seq = [start]
    for _ in range(steps):
        lg, _, _ = decode(mem, torch.tensor(seq))
        seq.append(int(torch.argmax(lg[-1])))
        if seq[-1] == eos:
            break
    t = {"src": src, "tgt": tgt, "logits": logits, "greedy": torch.tensor(seq)}
    for l, a in enumerate(enc):
        t["attn.enc.%d" % l] = a
    for l, (a, c) in enumerate(zip(dec, cross)):
        t["attn.dec.%d" % l] = a
        t["attn.cross.%d" % l] = c
    save_config(out, cfg)
    W.save(out)
    save_reference(out, t, {"family": kind, "steps": steps})


# ---------------------------------------------------------------------------------------------------------
# T5


def t5_bucket(rel, bidirectional, num_buckets, max_distance):  # HF T5Attention._relative_position_bucket
    ret = torch.zeros_like(rel)
    if bidirectional:
        num_buckets //= 2
        ret += (rel > 0).long() * num_buckets
        rel = rel.abs()
    else:
        rel = -torch.min(rel, torch.zeros_like(rel))
    max_exact = num_buckets // 2
    small = rel < max_exact
    large = max_exact + (torch.log(rel.float() / max_exact) / math.log(max_distance / max_exact)
                         * (num_buckets - max_exact)).long()
    large = torch.min(large, torch.full_like(large, num_buckets - 1))
    return ret + torch.where(small, rel, large)


def make_t5(out, kind):
    v11 = kind == "t5v11"
    d, dkv, H, ff, L, V, NB, MD = 16, 6, 2, 32, 2, 40, 32, 128
    eps = 1e-6
    cfg = {"architectures": ["T5ForConditionalGeneration"], "model_type": "t5", "d_model": d, "d_kv": dkv,
           "d_ff": ff, "num_layers": L, "num_decoder_layers": L, "num_heads": H,
           "relative_attention_num_buckets": NB, "relative_attention_max_distance": MD, "vocab_size": V,
           "layer_norm_epsilon": eps, "feed_forward_proj": "gated-gelu" if v11 else "relu",
           "tie_word_embeddings": not v11, "pad_token_id": 0, "eos_token_id": 1, "decoder_start_token_id": 0,
           "dropout_rate": 0.1, "initializer_factor": 1.0, "is_encoder_decoder": True}
    W = Weights(9 if v11 else 10, dtype="BF16" if v11 else "F32")
    W.add("shared.weight", (V, d), 1.0)
    for side in ("encoder", "decoder"):
        for l in range(L):
            p = "%s.block.%d.layer." % (side, l)
            for n in "qkv":
                W.add(p + "0.SelfAttention.%s.weight" % n, (H * dkv, d), 0.5)
            W.add(p + "0.SelfAttention.o.weight", (d, H * dkv), 0.4)
            if l == 0:
                W.add(p + "0.SelfAttention.relative_attention_bias.weight", (NB, H), 1.0)
            W.norm(p + "0.layer_norm", d, bias=False)
            ffl = 1
            if side == "decoder":
                for n in "qkv":
                    W.add(p + "1.EncDecAttention.%s.weight" % n, (H * dkv, d), 0.5)
                W.add(p + "1.EncDecAttention.o.weight", (d, H * dkv), 0.4)
                W.norm(p + "1.layer_norm", d, bias=False)
                ffl = 2
            if v11:
                W.add(p + "%d.DenseReluDense.wi_0.weight" % ffl, (ff, d))
                W.add(p + "%d.DenseReluDense.wi_1.weight" % ffl, (ff, d))
            else:
                W.add(p + "%d.DenseReluDense.wi.weight" % ffl, (ff, d))
            W.add(p + "%d.DenseReluDense.wo.weight" % ffl, (d, ff))
            W.norm(p + "%d.layer_norm" % ffl, d, bias=False)
        W.norm("%s.final_layer_norm" % side, d, bias=False)
    if v11:
        W.add("lm_head.weight", (V, d), 0.4)

    def bias(side, T, S, bidirectional):
        rel = torch.arange(S)[None, :] - torch.arange(T)[:, None]
        b = W["%s.block.0.layer.0.SelfAttention.relative_attention_bias.weight" % side][
            t5_bucket(rel, bidirectional, NB, MD)]
        return b.permute(2, 0, 1)  # (H, T, S)

    def mha(p, xq, xkv, causal, pos_bias):
        o, a = attention(xq @ W[p + ".q.weight"].T, xkv @ W[p + ".k.weight"].T, xkv @ W[p + ".v.weight"].T, H,
                         scale=None, causal=causal, bias=pos_bias)
        return o @ W[p + ".o.weight"].T, a

    def ffn(p, x):
        if v11:
            h = F.gelu(x @ W[p + ".wi_0.weight"].T, approximate="tanh") * (x @ W[p + ".wi_1.weight"].T)
        else:
            h = F.relu(x @ W[p + ".wi.weight"].T)
        return h @ W[p + ".wo.weight"].T

    def encode(src):
        x, att, S = W["shared.weight"][src], [], len(src)
        pb = bias("encoder", S, S, True)
        for l in range(L):
            p = "encoder.block.%d.layer." % l
            o, a = mha(p + "0.SelfAttention", rms_norm(x, W[p + "0.layer_norm.weight"], eps),
                       rms_norm(x, W[p + "0.layer_norm.weight"], eps), False, pb)
            att.append(a)
            x = x + o
            x = x + ffn(p + "1.DenseReluDense", rms_norm(x, W[p + "1.layer_norm.weight"], eps))
        return rms_norm(x, W["encoder.final_layer_norm.weight"], eps), att

    def decode(mem, tgt):
        x, sa, ca, T = W["shared.weight"][tgt], [], [], len(tgt)
        pb = bias("decoder", T, T, False)
        for l in range(L):
            p = "decoder.block.%d.layer." % l
            h = rms_norm(x, W[p + "0.layer_norm.weight"], eps)
            o, a = mha(p + "0.SelfAttention", h, h, True, pb)
            sa.append(a)
            x = x + o
            o, a = mha(p + "1.EncDecAttention", rms_norm(x, W[p + "1.layer_norm.weight"], eps), mem, False, None)
            ca.append(a)
            x = x + o
            x = x + ffn(p + "2.DenseReluDense", rms_norm(x, W[p + "2.layer_norm.weight"], eps))
        x = rms_norm(x, W["decoder.final_layer_norm.weight"], eps)
        if v11:
            return x @ W["lm_head.weight"].T, sa, ca
        return (x * d ** -0.5) @ W["shared.weight"].T, sa, ca

    # 12 source tokens: relative distances up to 11 reach the logarithmic buckets (>= 8) of the encoder
    src = torch.tensor([5, 9, 12, 30, 7, 21, 4, 4, 18, 27, 33, 1])
    tgt = torch.tensor([0, 11, 8, 25, 3, 16, 2])
    save_encdec(out, cfg, W, src, tgt, encode, decode, 0, 1, kind)


# ---------------------------------------------------------------------------------------------------------
# ViT with Hugging Face names


def make_vit(out):
    d, L, H, ff, img, patch, C = 16, 2, 2, 32, 32, 8, 5
    eps = 1e-12
    g = img // patch
    cfg = {"architectures": ["ViTForImageClassification"], "model_type": "vit", "hidden_size": d,
           "num_hidden_layers": L, "num_attention_heads": H, "intermediate_size": ff, "hidden_act": "gelu",
           "layer_norm_eps": eps, "image_size": img, "patch_size": patch, "num_channels": 3, "qkv_bias": True,
           "id2label": {str(i): "class %c" % (65 + i) for i in range(C)},
           "label2id": {"class %c" % (65 + i): i for i in range(C)}, "hidden_dropout_prob": 0.0,
           "attention_probs_dropout_prob": 0.0, "initializer_range": 0.02}
    W = Weights(11)
    W.add("vit.embeddings.cls_token", (1, 1, d), 1.0)
    W.add("vit.embeddings.position_embeddings", (1, g * g + 1, d), 0.5)
    W.add("vit.embeddings.patch_embeddings.projection.weight", (d, 3, patch, patch), 0.2)
    W.add("vit.embeddings.patch_embeddings.projection.bias", (d,), 0.1)
    for l in range(L):
        p = "vit.encoder.layer.%d." % l
        W.norm(p + "layernorm_before", d)
        for n in ("query", "key", "value"):
            W.lin(p + "attention.attention." + n, d, d, std=0.6)
        W.lin(p + "attention.output.dense", d, d)
        W.norm(p + "layernorm_after", d)
        W.lin(p + "intermediate.dense", ff, d)
        W.lin(p + "output.dense", d, ff)
    W.norm("vit.layernorm", d)
    W.lin("classifier", C, d)
    pixels = torch.randn(3, img, img, generator=torch.Generator().manual_seed(12))
    x = F.conv2d(pixels[None], W["vit.embeddings.patch_embeddings.projection.weight"],
                 W["vit.embeddings.patch_embeddings.projection.bias"], stride=patch)[0]
    x = x.flatten(1).T  # (g*g, d), patches row-major
    x = torch.cat([W["vit.embeddings.cls_token"][0], x], 0) + W["vit.embeddings.position_embeddings"][0]
    attns = []
    for l in range(L):
        p = "vit.encoder.layer.%d." % l
        h = layer_norm(x, W[p + "layernorm_before.weight"], W[p + "layernorm_before.bias"], eps)
        o, a = attention(lin(W, p + "attention.attention.query", h), lin(W, p + "attention.attention.key", h),
                         lin(W, p + "attention.attention.value", h), H, scale=(d // H) ** -0.5)
        attns.append(a)
        x = x + lin(W, p + "attention.output.dense", o)
        h = layer_norm(x, W[p + "layernorm_after.weight"], W[p + "layernorm_after.bias"], eps)
        x = x + lin(W, p + "output.dense", F.gelu(lin(W, p + "intermediate.dense", h)))
    x = layer_norm(x, W["vit.layernorm.weight"], W["vit.layernorm.bias"], eps)
    logits = lin(W, "classifier", x[0])
    save_config(out, cfg)
    W.save(out)
    save_reference(out, {"pixels": pixels, "logits": logits, **{"attn.self.%d" % l: a for l, a in enumerate(attns)}},
                   {"family": "vit"})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "fixtures", "tiny"))
    args = ap.parse_args()
    if os.path.isdir(args.out):
        shutil.rmtree(args.out)
    make_gpt2(os.path.join(args.out, "gpt2"))
    for kind in ("bert", "roberta", "distilbert"):
        make_bert(os.path.join(args.out, kind), kind)
    for kind in ("qwen2", "mistral"):
        make_llama_variant(os.path.join(args.out, kind), kind)
    for kind in ("marian", "bart"):
        make_bart(os.path.join(args.out, kind), kind)
    for kind in ("t5", "t5v11"):
        make_t5(os.path.join(args.out, kind), kind)
    make_vit(os.path.join(args.out, "vit"))
    total = 0
    for root, _, files in os.walk(args.out):
        for f in files:
            total += os.path.getsize(os.path.join(root, f))
    print("wrote %s: %d bytes" % (args.out, total))


if __name__ == "__main__":
    main()
