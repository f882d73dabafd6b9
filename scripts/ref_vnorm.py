#!/usr/bin/python3
"""PyTorch reference for norm-based attention (Kobayashi et al. 2020) on the real stories260K model.

For a fixed prompt, runs the llama2.c checkpoint in float32 and writes, for every layer l:

  vnorm.{l}  F32 [n_heads, T]      ||v_j W_o^h||: the value vector of token j (of the KV head that query head
                                   h reads) projected by head h's slice of the output matrix,
                                   W_o^h = wo[:, h*hs:(h+1)*hs]
  norm.{l}   F32 [n_heads, T, T]   ||alpha_ij v_j W_o^h||, computed here from the materialized
                                   [n_heads, T, T, dim] tensor of weighted vectors (the C code never builds it)
  ids        I32 [T]               token ids (BOS first)

to tests/fixtures/stories260K_vnorm.safetensors (metadata: prompt, model, generator).

Usage:
  /usr/bin/python3 scripts/ref_vnorm.py [--shared DIR] [--out DIR]

The forward pass is written here from ref_llama's building blocks (its loader, tokenizer, RMSNorm and RoPE);
nothing comes from the project's C code.
"""

import argparse
import json
import math
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import ref_llama  # noqa: E402
import safetensors_np  # noqa: E402

PROMPT = "The cat sat on the mat. It was a sunny day, and the cat was happy."


@torch.no_grad()
def forward_with_values(cfg, w, ids):
    """Returns per layer (attn [H, T, T], v [H, T, hs] per query head, wo [D, D])."""
    ids = torch.as_tensor(ids, dtype=torch.long)
    T = ids.shape[0]
    nh, nkv, hs = cfg.n_heads, cfg.n_kv_heads, cfg.head_size
    cos, sin = ref_llama.rope_tables(cfg, T)
    mask = torch.full((T, T), float("-inf")).triu(1)
    x = w["tok_emb"][ids].float()
    out = []
    for l in range(cfg.n_layers):
        h = ref_llama.rmsnorm(x, w["rms_att"][l], cfg.norm_eps)
        q = (h @ w["wq"][l].t()).view(T, nh, hs).transpose(0, 1)
        k = (h @ w["wk"][l].t()).view(T, nkv, hs).transpose(0, 1)
        v = (h @ w["wv"][l].t()).view(T, nkv, hs).transpose(0, 1)
        q = ref_llama.apply_rope(q, cos, sin, cfg.rope_style)
        k = ref_llama.apply_rope(k, cos, sin, cfg.rope_style)
        kv_of_head = torch.arange(nh) // (nh // nkv)
        k, v = k[kv_of_head], v[kv_of_head]  # [nh, T, hs]
        att = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(hs) + mask, dim=-1)
        out.append((att, v, w["wo"][l]))
        x = x + (att @ v).transpose(0, 1).reshape(T, nh * hs) @ w["wo"][l].t()
        hf = ref_llama.rmsnorm(x, w["rms_ffn"][l], cfg.norm_eps)
        x = x + (torch.nn.functional.silu(hf @ w["w1"][l].t()) * (hf @ w["w3"][l].t())) @ w["w2"][l].t()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", default=os.path.normpath(os.path.join(REPO, "..", "shared")))
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "fixtures"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    mdir = os.path.join(args.shared, "models", "stories260K")
    cfg, w = ref_llama.load_llama2c(os.path.join(mdir, "stories260K.bin"))
    tok = ref_llama.Tokenizer(os.path.join(mdir, "tok512.bin"), cfg.vocab_size)
    ids = tok.encode(PROMPT, bos=True)
    T, hs = len(ids), cfg.head_size
    tensors = {"ids": np.asarray(ids, dtype=np.int32)}
    for l, (att, v, wo) in enumerate(forward_with_values(cfg, w, ids)):
        # f[h, j, :] = v_j^h W_o^h  (dim-vectors), [H, T, D]
        f = torch.stack([v[h] @ wo[:, h * hs:(h + 1) * hs].t() for h in range(cfg.n_heads)])
        vnorm = f.norm(dim=-1)  # [H, T]
        weighted = att[..., None] * f[:, None, :, :]  # [H, T, T, D] materialized on purpose
        norm = weighted.norm(dim=-1)  # [H, T, T]
        tensors["vnorm.%d" % l] = vnorm.numpy().astype(np.float32)
        tensors["norm.%d" % l] = norm.numpy().astype(np.float32)
    meta = {"prompt": PROMPT, "model": "stories260K", "generator": "scripts/ref_vnorm.py",
            "config": json.dumps(cfg.as_dict()), "torch_version": torch.__version__}
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "stories260K_vnorm.safetensors")
    safetensors_np.write(path, tensors, meta)
    print("%d tokens %s" % (T, ids))
    print("vnorm layer 0 head 0: %s" % np.array2string(tensors["vnorm.0"][0], precision=4))
    print("wrote %s (%d bytes)" % (path, os.path.getsize(path)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
