#!/usr/bin/python3
"""The reference sampler of demo-t2i: DDIM (eta = 0) with classifier-free guidance, deterministic for a seed.
docs/T2I_MODEL.md is its specification; the C engine must match it (image within 1e-3, attention within 1e-4).

  timesteps  t_i = (S - i) * T // S - 1, i = 0..S-1 ("trailing": 999, 959, ..., 39 for S = 25, T = 1000)
  x          = rng.normals(seed, (3, H, W))                          x_T, float32 (scripts/t2i/rng.py)
  per step:  v_c = denoiser(x, t_i, text(prompt)); v_u = denoiser(x, t_i, text(""))
             v   = v_u + g * (v_c - v_u)                             g = config guidance_scale
             a, b = f32(sqrt(ab[t_i])), f32(sqrt(1 - ab[t_i]));  a', b' the same for t_{i+1} (1 and 0 after the last)
             x0  = clamp(a * x - b * v, -1, 1);  eps = b * x + a * v;  x = a' * x0 + b' * eps
  image      = clamp((x + 1) / 2, 0, 1)                              [3, H, W]
Every tensor operation is float32; the schedule (ab = alphas_cumprod) is float64 until the f32() casts.
The cross-attention probabilities captured are those of the conditional pass.

Usage (writes a PNG, prints the tokens):
  /usr/bin/python3 scripts/t2i/sample.py --model models/demo-t2i --text "a red circle above a blue square"
         --seed 1 [--steps 25] [--guidance G] -o out.png
"""

import argparse
import json
import os
import struct
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import cpu_env  # noqa: E402

cpu_env.setup()
import numpy as np  # noqa: E402
import torch  # noqa: E402

import model as M  # noqa: E402
import rng  # noqa: E402
import safetensors_np as st  # noqa: E402
import tok  # noqa: E402


def load(model_dir):
    """-> (T2I module in eval mode, with .words = the vocabulary; config dict; vocabulary list)"""
    with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    with open(os.path.join(model_dir, "vocab.txt"), encoding="utf-8") as f:
        words = f.read().split("\n")[:-1]
    net = M.T2I({k: cfg[k] for k in M.DEFAULT_CONFIG}, len(words))
    M.load_tensors(net, st.read(os.path.join(model_dir, "model.safetensors"))[0])
    net.words = words
    return net.eval(), cfg, words


def timesteps(cfg, steps):
    T = cfg["num_train_timesteps"]
    if not 1 <= steps <= T:
        raise ValueError("steps must be in 1..%d" % T)
    return [(steps - i) * T // steps - 1 for i in range(steps)]


def coefficients(ab, t):
    """float32 sqrt(ab[t]) and sqrt(1 - ab[t]); t = -1: the clean end (1, 0)"""
    a = 1.0 if t < 0 else float(ab[t])
    return np.float32(np.sqrt(a)), np.float32(np.sqrt(1.0 - a))


def encode_batch(texts, words):
    """list of str -> ids (B, S) int64 padded with [PAD], pad (B, S) bool, lengths"""
    w2i = {w: i for i, w in enumerate(words)}
    enc = [tok.encode(t, w2i) for t in texts]
    S = max(len(e) for e in enc)
    ids = torch.full((len(enc), S), tok.PAD, dtype=torch.long)
    for i, e in enumerate(enc):
        ids[i, : len(e)] = torch.tensor(e)
    return ids, ids == tok.PAD, [len(e) for e in enc]


@torch.no_grad()
def sample(net, cfg, texts, seeds, steps=25, guidance=None, capture=False, keep_x=()):
    """Samples one image per (text, seed). Returns dict:
       image (B, 3, H, W) float32 in [0, 1];  x {i: x after step i (B, 3, H, W)} for i in keep_x;
       probs (steps, layers, B, heads, 1 + n_patches, S) float32 cross-attention of the conditional pass
       (padded keys of shorter prompts are 0) when capture;  lengths [B] token counts."""
    g = torch.tensor(cfg["guidance_scale"] if guidance is None else guidance, dtype=torch.float32)
    mc = cfg["max_text_positions"]
    ids, pad, lengths = encode_batch(texts, net.words)
    if ids.shape[1] > mc:
        raise ValueError("prompt longer than %d tokens" % mc)
    uids, upad, _ = encode_batch([cfg["uncond_prompt"]] * len(texts), net.words)
    mem_c, mem_u = net.text(ids, pad), net.text(uids, upad)
    x = torch.from_numpy(np.stack([rng.normals(s, (3, cfg["image_size"], cfg["image_size"])) for s in seeds]))
    ab = M.alphas_cumprod(cfg)
    ts = timesteps(cfg, steps)
    out = {"x": {}, "probs": [] if capture else None, "lengths": lengths, "timesteps": ts}
    for i, t in enumerate(ts):
        tt = torch.full((len(texts),), t, dtype=torch.long)
        v_c, probs = net.denoiser(x, tt, mem_c, pad, cfg, capture)
        v_u, _ = net.denoiser(x, tt, mem_u, upad, cfg)
        v = v_u + g * (v_c - v_u)
        a, b = coefficients(ab, t)
        a2, b2 = coefficients(ab, ts[i + 1] if i + 1 < len(ts) else -1)
        x0 = (a * x - b * v).clamp(-1.0, 1.0)
        eps = b * x + a * v
        x = a2 * x0 + b2 * eps
        if capture:
            out["probs"].append(torch.stack(probs).numpy())
        if i in keep_x:
            out["x"][i] = x.numpy().copy()
    out["image"] = ((x + 1.0) / 2.0).clamp(0.0, 1.0).numpy()
    if capture:
        out["probs"] = np.stack(out["probs"])
    return out


def write_png(path, img):
    """img float (3, H, W) in [0, 1] or uint8 (H, W, 3) -> an 8-bit RGB PNG (zlib only, no PIL)"""
    if img.dtype != np.uint8:
        img = np.round(np.clip(img, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0)
    h, w, _ = img.shape
    raw = b"".join(b"\x00" + img[y].tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/demo-t2i")
    ap.add_argument("--text", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--guidance", type=float, default=None)
    ap.add_argument("--scale", type=int, default=8, help="PNG pixels per image pixel")
    ap.add_argument("-o", "--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(2)
    net, cfg, words = load(args.model)
    r = sample(net, cfg, [args.text], [args.seed], args.steps, args.guidance)
    ids, _, _ = encode_batch([args.text], words)
    print("tokens:", " ".join(words[i] for i in ids[0].tolist()))
    img = np.repeat(np.repeat(r["image"][0], args.scale, 1), args.scale, 2)
    write_png(args.out, img)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
