#!/usr/bin/python3
"""Independent PyTorch reference for the Vision Transformer (timm names), written from the published
architecture, not from the project's C code, on the input PyTorch users give it.

1. Preprocessing: timm's evaluation transform on PIL (Debian python3-pil), as timm and torchvision run it:
   Image.open(path).convert("RGB"), resize the shorter side to floor(224 / crop_pct) with PIL's bicubic
   (antialiased, fixed-point, 8-bit result after each pass), center crop 224 x 224, ToTensor (x / 255 in
   float32), Normalize(mean, std). attnviz must produce exactly this tensor ("pixels_pil").
2. The model runs on that tensor and records logits and attention: attnviz, run on the image file itself,
   must match them within 1e-4.

Fixture (tests/fixtures/vit_tiny_<image>.safetensors):
    pixels_pil F32 [3, 224, 224]   the PIL pipeline's network input
    logits     F32 [1000]          on pixels_pil
    attn.0, attn.11  F32 [3, 197, 197]   full attention of the first and last layers (--full-layers)
    attn_cls   F32 [12, 3, 197]    the [CLS] query row of every layer
    __metadata__: top5 (JSON), image, model, preprocessing

Usage:
    /usr/bin/python3 scripts/ref_vit.py [--image ../shared/images/chelsea.png] [--shared ../shared] [--out F]
    /usr/bin/python3 scripts/ref_vit.py --image ../shared/images/rocket.jpg --no-full-layers \
        --out tests/fixtures/vit_tiny_rocket.safetensors
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


def resized_size(h, w, short):
    # torchvision Resize(int): the shorter side becomes `short`, the longer one int(short * long / short_side)
    if w <= h:
        return int(short * h / w), short
    return short, int(short * w / h)


def preprocess_pil(path, size, crop_pct, mean, std, interpolation="bicubic"):
    from PIL import Image

    short = int(math.floor(size / crop_pct))
    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        rh, rw = resized_size(h, w, short)
        im = im.resize((rw, rh), Image.BICUBIC if interpolation == "bicubic" else Image.BILINEAR)
        top, left = int(round((rh - size) / 2.0)), int(round((rw - size) / 2.0))
        im = im.crop((left, top, left + size, top + size))
        x = torch.from_numpy(np.asarray(im, dtype=np.uint8).copy()).permute(2, 0, 1).float().div(255)  # ToTensor
    return (x - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)  # Normalize


class ViT:
    """timm VisionTransformer (class token, learned positions, pre-norm blocks, exact GELU)."""

    def __init__(self, w, heads, eps=1e-6):
        self.w = {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in w.items()}
        self.heads = heads
        self.eps = eps
        self.depth = len([k for k in w if k.startswith("blocks.") and k.endswith(".norm1.weight")])
        self.patch = self.w["patch_embed.proj.weight"].shape[-1]

    def ln(self, x, name):
        return F.layer_norm(x, x.shape[-1:], self.w[name + ".weight"], self.w[name + ".bias"], self.eps)

    def lin(self, x, name):
        return x @ self.w[name + ".weight"].T + self.w[name + ".bias"]

    def forward(self, pixels):
        w = self.w
        p = self.patch
        c, hh, ww = pixels.shape
        g = hh // p
        # patches (N, c*p*p) in (c, ky, kx) order: the conv as a matrix product
        patches = pixels.reshape(c, g, p, g, p).permute(1, 3, 0, 2, 4).reshape(g * g, c * p * p)
        x = patches @ w["patch_embed.proj.weight"].reshape(-1, c * p * p).T + w["patch_embed.proj.bias"]
        x = torch.cat([w["cls_token"].reshape(1, -1), x], 0) + w["pos_embed"].reshape(g * g + 1, -1)
        T, dim = x.shape
        hd = dim // self.heads
        attns = []
        for l in range(self.depth):
            b = f"blocks.{l}"
            y = self.ln(x, b + ".norm1")
            qkv = self.lin(y, b + ".attn.qkv").reshape(T, 3, self.heads, hd).permute(1, 2, 0, 3)
            q, k, v = qkv[0], qkv[1], qkv[2]  # (heads, T, hd)
            a = torch.softmax((q @ k.transpose(-1, -2)) * hd ** -0.5, dim=-1)
            attns.append(a)
            o = (a @ v).permute(1, 0, 2).reshape(T, dim)
            x = x + self.lin(o, b + ".attn.proj")
            y = self.ln(x, b + ".norm2")
            x = x + self.lin(F.gelu(self.lin(y, b + ".mlp.fc1")), b + ".mlp.fc2")
        x = self.ln(x, "norm")
        logits = x[0] @ w["head.weight"].T + w["head.bias"]
        return logits, attns


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=os.path.join(REPO, "..", "shared"))
    ap.add_argument("--image", default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument("--no-full-layers", action="store_true", help="store only the [CLS] rows and logits")
    args = ap.parse_args()
    model_dir = os.path.join(args.shared, "models", "vit-tiny")
    image = args.image or os.path.join(args.shared, "images", "chelsea.png")
    stem = os.path.splitext(os.path.basename(image))[0]
    out = args.out or os.path.join(REPO, "tests", "fixtures", "vit_tiny_%s.safetensors" % stem)
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    pc = cfg["pretrained_cfg"]
    size, crop_pct, mean, std = pc["input_size"][1], pc["crop_pct"], pc["mean"], pc["std"]
    labels = open(os.path.join(model_dir, "imagenet_labels.txt")).read().splitlines()

    weights, _ = safetensors_np.read(os.path.join(model_dir, "model.safetensors"))
    model = ViT(weights, heads=cfg["model_args"]["num_heads"])
    px = preprocess_pil(image, size, crop_pct, mean, std, pc.get("interpolation", "bicubic"))

    torch.set_grad_enabled(False)
    logits, attns = model.forward(px)
    probs = torch.softmax(logits.double(), -1)
    top = torch.topk(probs, 5)
    top5 = [{"id": int(i), "label": labels[int(i)], "prob": round(float(p), 6)} for p, i in zip(top.values, top.indices)]
    meta = {
        "generator": "scripts/ref_vit.py",
        "model": "vit-tiny (timm vit_tiny_patch16_224.augreg_in21k_ft_in1k)",
        "image": os.path.basename(image),
        "top5": json.dumps(top5),
        "preprocessing": "PIL: convert RGB, shorter side -> %d (%s), center crop %d, ToTensor, Normalize mean %s "
        "std %s" % (int(math.floor(size / crop_pct)), pc.get("interpolation", "bicubic"), size, mean, std),
    }
    tensors = {
        "pixels_pil": px.numpy().astype(np.float32),
        "logits": logits.numpy().astype(np.float32),
        "attn_cls": torch.stack([a[:, 0, :] for a in attns]).numpy().astype(np.float32),
    }
    for l in () if args.no_full_layers else (0, len(attns) - 1):
        tensors["attn.%d" % l] = attns[l].numpy().astype(np.float32)
    safetensors_np.write(out, tensors, metadata=meta)
    print("top5:", ", ".join("%s %.3f" % (t["label"], t["prob"]) for t in top5))
    print("wrote", out, os.path.getsize(out), "bytes")


if __name__ == "__main__":
    main()
