#!/usr/bin/python3
"""DAAM (Tang et al. 2023, "What the DAAM: Interpreting Stable Diffusion Using Cross Attention") for demo-t2i.

For prompt token j, over a selected range of sampling steps, denoiser layers and heads:
  1. raw[j] = sum over (step, layer, head) of the cross-attention probabilities of the patch rows, key j:
     probs[step, layer, head, 1 + p, j] for patch p = gy * grid + gx (row 0, the time token, is left out);
     summed in float64, shape (grid, grid)
  2. up[j]  = bilinear upsampling of raw[j] to (H, W) = the image size, exactly as PyTorch's
     F.interpolate(mode="bilinear", align_corners=False): output pixel (y, x) samples the grid at
     ((y + 0.5) * grid / H - 0.5, (x + 0.5) * grid / W - 0.5), coordinates clamped to [0, grid - 1]
  3. map[j] = (up[j] - min) / (max - min + 1e-8), min and max over that token's map (DAAM's expand_as)
DAAM itself upsamples each head's map bicubically (and clamps at 0) before summing; here the upsampling is
bilinear, which is linear and non-negative, so summing then upsampling equals upsampling then summing: the
engine may store the per-step, per-layer sums on the patch grid and upsample any selected range afterwards.
Binarized maps (for IoU) use DAAM's rule: map > tau, tau = 0.4.
"""

import numpy as np
import torch
import torch.nn.functional as F

TAU = 0.4


def raw_maps(probs, grid, steps=None, layers=None, heads=None):
    """probs (n_steps, n_layers, n_heads, 1 + grid*grid, S) of one prompt -> float64 (S, grid, grid);
    steps/layers/heads: index lists or None for all"""
    p = np.asarray(probs, np.float64)
    if steps is not None:
        p = p[list(steps)]
    if layers is not None:
        p = p[:, list(layers)]
    if heads is not None:
        p = p[:, :, list(heads)]
    s = p[:, :, :, 1:, :].sum(axis=(0, 1, 2))  # (grid*grid, S)
    return s.T.reshape(-1, grid, grid)


def upsample(raw, size):
    """(S, g, g) -> (S, size, size) bilinear, align_corners=False (float64)"""
    t = torch.from_numpy(np.ascontiguousarray(raw, np.float64))[:, None]
    return F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)[:, 0].numpy()


def normalize(up):
    lo = up.min(axis=(1, 2), keepdims=True)
    hi = up.max(axis=(1, 2), keepdims=True)
    return (up - lo) / (hi - lo + 1e-8)


def word_maps(probs, grid, size, steps=None, layers=None, heads=None):
    """The DAAM map of every prompt token: float32 (S, size, size) in [0, 1]"""
    return normalize(upsample(raw_maps(probs, grid, steps, layers, heads), size)).astype(np.float32)


def iou(heat, mask, tau=TAU):
    """IoU of (heat > tau) with a boolean mask"""
    b = heat > tau
    union = np.logical_or(b, mask).sum()
    return float(np.logical_and(b, mask).sum()) / float(union) if union else 0.0
