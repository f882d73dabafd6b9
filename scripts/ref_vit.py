#!/usr/bin/python3
"""Independent PyTorch reference for the Vision Transformer (timm names), written from the published
architecture, not from the project's C code.

It checks two things separately, so that the model comparison does not depend on resampling details:

1. Preprocessing. The timm evaluation transform of ../shared/models/vit-tiny is: resize the shorter side to
   floor(224 / crop_pct) = 248 with bicubic interpolation, center-crop 224 x 224, scale to [0, 1], normalize
   with mean = std = 0.5. timm does the resize with PIL (antialiased bicubic, a = -0.5, rounding to 8 bits after
   each pass). attnviz implements the same antialiased bicubic filter in float without the 8-bit rounding,
   which is what torch.nn.functional.interpolate(mode="bicubic", antialias=True, align_corners=False) computes;
   that is the reference here ("pixels_ref"). The PIL result is measured too and recorded in the metadata.

2. The model. The reference runs the ViT on the exact tensor attnviz produced (`attnviz run --image ...
   --dump-pixels px.safetensors`), stored in the fixture as "pixels_c", and records logits and attention.

Fixture (tests/fixtures/vit_tiny_chelsea.safetensors):
    pixels_c   F32 [3, 224, 224]   attnviz's preprocessing of chelsea.png (model input)
    pixels_ref F16 [3, 224, 224]   torch preprocessing of the same image (check of the C resize)
    logits     F32 [1000]          on pixels_c
    attn.0, attn.11  F32 [3, 197, 197]   full attention of the first and last layers
    attn_cls   F32 [12, 3, 197]    the [CLS] query row of every layer
    __metadata__: top5 (JSON), diffs between preprocessings, image, model

Usage:
    attnviz run --model ../shared/models/vit-tiny --image ../shared/images/chelsea.png --dump-pixels /tmp/px.st
    /usr/bin/python3 scripts/ref_vit.py --pixels /tmp/px.st [--shared ../shared] [--out tests/fixtures/...]
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


def load_png_rgb(path):
    from PIL import Image  # Debian python3-pil; only decodes the PNG (lossless, identical to any decoder)

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def resized_size(h, w, short):
    # torchvision Resize(int): the shorter side becomes `short`, the longer one int(short * long / short_side)
    if w <= h:
        return int(short * h / w), short
    return short, int(short * w / h)


def preprocess_torch(rgb, size, crop_pct, mean, std):
    short = int(math.floor(size / crop_pct))
    h, w = rgb.shape[:2]
    rh, rw = resized_size(h, w, short)
    x = torch.from_numpy(rgb.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    x = F.interpolate(x, size=(rh, rw), mode="bicubic", align_corners=False, antialias=True)[0]
    top, left = int(round((rh - size) / 2.0)), int(round((rw - size) / 2.0))
    x = x[:, top:top + size, left:left + size]
    m = torch.tensor(mean).view(3, 1, 1)
    s = torch.tensor(std).view(3, 1, 1)
    return (x - m) / s


def preprocess_pil(path, size, crop_pct, mean, std):
    from PIL import Image

    short = int(math.floor(size / crop_pct))
    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        rh, rw = resized_size(h, w, short)
        im = im.resize((rw, rh), Image.BICUBIC)
        top, left = int(round((rh - size) / 2.0)), int(round((rw - size) / 2.0))
        im = im.crop((left, top, left + size, top + size))
        x = torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1)
    return (x - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)


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
    ap.add_argument("--pixels", required=True, help="attnviz's preprocessed input (--dump-pixels)")
    ap.add_argument("--image", default=None)
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "fixtures", "vit_tiny_chelsea.safetensors"))
    args = ap.parse_args()
    model_dir = os.path.join(args.shared, "models", "vit-tiny")
    image = args.image or os.path.join(args.shared, "images", "chelsea.png")
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    pc = cfg["pretrained_cfg"]
    size, crop_pct, mean, std = pc["input_size"][1], pc["crop_pct"], pc["mean"], pc["std"]
    labels = open(os.path.join(model_dir, "imagenet_labels.txt")).read().splitlines()

    weights, _ = safetensors_np.read(os.path.join(model_dir, "model.safetensors"))
    model = ViT(weights, heads=cfg["model_args"]["num_heads"])
    px_c_np = safetensors_np.read(args.pixels)[0]["pixels"].astype(np.float32)
    px_c = torch.from_numpy(px_c_np)

    rgb = load_png_rgb(image)
    px_ref = preprocess_torch(rgb, size, crop_pct, mean, std)
    px_pil = preprocess_pil(image, size, crop_pct, mean, std)
    d_c_ref = float((px_c - px_ref).abs().max())
    d_pil_ref = float((px_pil - px_ref).abs().max())
    d_pil_mean = float((px_pil - px_ref).abs().mean())

    torch.set_grad_enabled(False)
    logits, attns = model.forward(px_c)
    logits_ref, _ = model.forward(px_ref)
    logits_pil, _ = model.forward(px_pil)
    probs = torch.softmax(logits.double(), -1)
    top = torch.topk(probs, 5)
    top5 = [{"id": int(i), "label": labels[int(i)], "prob": round(float(p), 6)} for p, i in zip(top.values, top.indices)]
    meta = {
        "generator": "scripts/ref_vit.py",
        "model": "vit-tiny (timm vit_tiny_patch16_224.augreg_in21k_ft_in1k)",
        "image": os.path.basename(image),
        "top5": json.dumps(top5),
        "top1_torch_preprocessing": str(int(torch.argmax(logits_ref))),
        "top1_pil_preprocessing": str(int(torch.argmax(logits_pil))),
        "max_abs_diff_c_vs_torch_pixels": "%.3g" % d_c_ref,
        "max_abs_diff_pil_vs_torch_pixels": "%.3g" % d_pil_ref,
        "mean_abs_diff_pil_vs_torch_pixels": "%.3g" % d_pil_mean,
        "preprocessing": "shorter side -> %d (antialiased bicubic, float), center crop %d, mean %s std %s"
        % (int(math.floor(size / crop_pct)), size, mean, std),
    }
    tensors = {
        "pixels_c": px_c_np,
        "pixels_ref": px_ref.numpy().astype(np.float16),
        "logits": logits.numpy().astype(np.float32),
        "attn_cls": torch.stack([a[:, 0, :] for a in attns]).numpy().astype(np.float32),
    }
    for l in (0, len(attns) - 1):
        tensors["attn.%d" % l] = attns[l].numpy().astype(np.float32)
    safetensors_np.write(args.out, tensors, metadata=meta)
    print("top5:", ", ".join("%s %.3f" % (t["label"], t["prob"]) for t in top5))
    print("C vs torch pixels max |diff| %.3g; PIL vs torch max %.3g mean %.3g" % (d_c_ref, d_pil_ref, d_pil_mean))
    print("wrote", args.out, os.path.getsize(args.out), "bytes")


if __name__ == "__main__":
    main()
