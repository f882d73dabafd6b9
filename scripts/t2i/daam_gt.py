#!/usr/bin/python3
"""DAAM of demo-t2i on ground-truth scenes: does a word's map land on the object the word names when the
image is right? evaluate.py measures DAAM on the model's own samples, where a badly drawn object (or the
detector missing it) also lowers the IoU; here the scene is rendered by shapes.py (held-out captions, so
the true masks are known), noised to a few timesteps, denoised once each (the conditional pass), and each
color/shape word's DAAM map (daam.py, summed over those timesteps, all layers and heads) is compared with
the true mask of its object and of the other object.

  iou        IoU of (map > 0.4) with the named object's mask
  iou_other  the same map against the other object's mask
  hit        the map's maximum lies on the named object
  beats      iou > iou_other

Deterministic: scenes from PCG64(--seed), noise from torch.Generator(scene * 10 + t).

Usage: /usr/bin/python3 scripts/t2i/daam_gt.py [--model models/demo-t2i] [--n 40] [--seed 99]
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import sample as S  # noqa: E402  (sets the CPU environment before torch loads)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import daam  # noqa: E402
import model as M  # noqa: E402
import shapes  # noqa: E402

TIMESTEPS = (900, 600, 300, 100)


def scene_probs(net, cfg, sc, n):
    """cross-attention (len(TIMESTEPS), layers, heads, 1 + P, S) of one rendered scene, and S"""
    img = torch.from_numpy(shapes.render(sc).astype(np.float32))[None] / 127.5 - 1.0
    ids, pad, _ = S.encode_batch([shapes.caption(sc)], net.words)
    ab = M.alphas_cumprod(cfg)
    out = []
    with torch.no_grad():
        mem = net.text(ids, pad)
        for t in TIMESTEPS:
            e = torch.randn(img.shape, generator=torch.Generator().manual_seed(n * 10 + t))
            x = float(np.sqrt(ab[t])) * img + float(np.sqrt(1 - ab[t])) * e
            _, p = net.denoiser(x, torch.tensor([t]), mem, pad, cfg, True)
            out.append(torch.stack(p)[:, 0].numpy())
    return np.stack(out), ids.shape[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/demo-t2i")
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--seed", type=int, default=99)
    args = ap.parse_args()
    torch.set_num_threads(1)
    net, cfg, _ = S.load(args.model)
    held = shapes.heldout_triples(1)
    rng = np.random.Generator(np.random.PCG64(args.seed))
    grid = cfg["image_size"] // cfg["patch_size"]
    rows = []
    for n in range(args.n):
        sc = shapes.sample_scene(rng, held, want_held=True)
        probs, n_tok = scene_probs(net, cfg, sc, n)
        maps = daam.word_maps(probs, grid, cfg["image_size"])
        for j, k in [(2, 0), (3, 0), (n_tok - 3, 1), (n_tok - 2, 1)]:
            m, mine, other = maps[j], shapes.mask(sc["objects"][k]), shapes.mask(sc["objects"][1 - k])
            y, x = np.unravel_index(int(m.argmax()), m.shape)
            rows.append((daam.iou(m, mine), daam.iou(m, other), float(mine[y, x])))
    r = np.array(rows)
    print("%d words of %d held-out ground-truth scenes, t = %s: iou %.3f (median %.3f), iou_other %.3f, hit %.2f, "
          "beats %.2f" % (len(r), args.n, ",".join(map(str, TIMESTEPS)), r[:, 0].mean(), np.median(r[:, 0]),
                          r[:, 1].mean(), r[:, 2].mean(), (r[:, 0] > r[:, 1]).mean()))


if __name__ == "__main__":
    main()
