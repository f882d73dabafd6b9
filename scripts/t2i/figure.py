#!/usr/bin/python3
"""A PNG of one generated image and the DAAM map of each of its prompt tokens (reference sampler + daam.py),
for the model card: first the image, then one tile per token, the map (all steps, layers, heads) as
brightness over the dimmed image.

Usage: /usr/bin/python3 scripts/t2i/figure.py [--model models/demo-t2i]
       [--text "a red circle above a blue square"] [--seed 1] -o docs/img/t2i-daam.png
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sample as S  # noqa: E402  (sets the CPU environment before torch loads)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import daam  # noqa: E402


def tiles(img, maps, scale):
    """img (3, H, W), maps (S, H, W) -> (3, H*scale, (1 + S) * (W*scale + 4)) float image"""
    out = [img] + [0.25 * img + 0.75 * np.stack([m, m, m]) for m in maps]
    pad = [np.pad(np.repeat(np.repeat(t, scale, 1), scale, 2), ((0, 0), (0, 0), (0, 4)), constant_values=1.0)
           for t in out]
    return np.concatenate(pad, 2)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/demo-t2i")
    ap.add_argument("--text", default="a red circle above a blue square")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scale", type=int, default=3)
    ap.add_argument("-o", "--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(2)
    net, cfg, words = S.load(args.model)
    out = S.sample(net, cfg, [args.text], [args.seed], capture=True)
    grid = cfg["image_size"] // cfg["patch_size"]
    maps = daam.word_maps(out["probs"][:, :, 0], grid, cfg["image_size"])
    S.write_png(args.out, tiles(out["image"][0], maps, args.scale))
    ids = S.encode_batch([args.text], words)[0][0].tolist()
    print("wrote %s: image, then %s" % (args.out, " ".join(words[i] for i in ids)))


if __name__ == "__main__":
    main()
