#!/usr/bin/python3
"""A pixel-level detector for demo-t2i's scenes, and the caption check built on it.

  1. color:  every pixel takes the nearest color of shapes.PALETTE plus the black background (Euclidean RGB
             distance, 0..255 scale) when that distance is below MAX_DIST; farther pixels are "other"
  2. blobs:  4-connected components of each palette color; components under MIN_AREA pixels are dropped
  3. shape:  from the component's bounding box (w x h) and fill ratio = area / (w h):
               taper = mean row width over the top half of the box / over the bottom half
               taper < 0.75 -> triangle (apex up); else square when fill >= 0.92, or fill >= 0.85 and at least
               3 of the box's 4 corner pixels are set; else circle
             (rendered ground truth: triangle taper 0.25-0.4, square fill 1, circle fill 0.76-0.89 with empty
             corners)
  4. place:  centroids; "A above B" holds when A's centroid is higher and the vertical distance exceeds the
             horizontal one (likewise below, left of, right of), as the grammar draws them
For a caption, each named object is the largest component of its color and shape (check_caption).

Self-test on ground truth: /usr/bin/python3 scripts/t2i/detect.py --selftest 2000
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shapes  # noqa: E402

MAX_DIST = 90.0
MIN_AREA = 10
NAMES = ["background"] + shapes.COLORS
RGB = np.array([shapes.BACKGROUND] + [shapes.PALETTE[c] for c in shapes.COLORS], np.float64)


def to_uint8(img):
    """float (3, H, W) in [0, 1] or uint8 (3, H, W) -> uint8 (H, W, 3)"""
    if img.dtype != np.uint8:
        img = np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)
    return img.transpose(1, 2, 0)


def color_labels(img):
    """(H, W) int: index into NAMES, or -1 for pixels near no palette color"""
    px = to_uint8(img).astype(np.float64)
    d = np.sqrt(((px[:, :, None, :] - RGB[None, None]) ** 2).sum(-1))  # (H, W, colors)
    lab = d.argmin(-1)
    lab[d.min(-1) >= MAX_DIST] = -1
    return lab


def components(mask):
    """list of bool masks: the 4-connected components of mask"""
    H, W = mask.shape
    seen = np.zeros_like(mask)
    out = []
    for y0, x0 in zip(*np.nonzero(mask)):
        if seen[y0, x0]:
            continue
        comp, stack = np.zeros_like(mask), [(y0, x0)]
        seen[y0, x0] = True
        while stack:
            y, x = stack.pop()
            comp[y, x] = True
            for yy, xx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= yy < H and 0 <= xx < W and mask[yy, xx] and not seen[yy, xx]:
                    seen[yy, xx] = True
                    stack.append((yy, xx))
        out.append(comp)
    return out


def shape_of(m):
    ys, xs = np.nonzero(m)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    widths = m[y0:y1, x0:x1].sum(1).astype(np.float64)
    half = (y1 - y0) // 2
    top, bottom = widths[:max(half, 1)].mean(), widths[(y1 - y0) - max(half, 1):].mean()
    fill = m.sum() / float((y1 - y0) * (x1 - x0))
    corners = int(m[y0, x0]) + int(m[y0, x1 - 1]) + int(m[y1 - 1, x0]) + int(m[y1 - 1, x1 - 1])
    if top / bottom < 0.75:
        return "triangle"
    return "square" if fill >= 0.92 or (fill >= 0.85 and corners >= 3) else "circle"


def detect(img):
    """list of objects {color, shape, area, cx, cy, mask (H, W) bool}, largest first"""
    lab = color_labels(img)
    objs = []
    for ci, name in enumerate(NAMES[1:], start=1):
        for m in components(lab == ci):
            area = int(m.sum())
            if area < MIN_AREA:
                continue
            ys, xs = np.nonzero(m)
            objs.append({"color": name, "shape": shape_of(m), "area": area, "cx": xs.mean() + 0.5,
                         "cy": ys.mean() + 0.5, "mask": m})
    return sorted(objs, key=lambda o: -o["area"])


def relation_holds(a, b, relation):
    dx, dy = a["cx"] - b["cx"], a["cy"] - b["cy"]
    return {"above": dy < 0 and -dy > abs(dx), "below": dy > 0 and dy > abs(dx),
            "left of": dx < 0 and -dx > abs(dy), "right of": dx > 0 and dx > abs(dy)}[relation]


def check_caption(img, text, objs=None):
    """-> dict: found [bool per named object], place_ok [bool per named object: found and in the named place],
    all_ok (every object found and placed), objects (the detected object of each name or None),
    n_objects (all detected components)"""
    kind, named, relation, _ = shapes.parse_caption(text)
    objs = detect(img) if objs is None else objs
    if kind == "count":
        match = [o for o in objs if (o["color"], o["shape"]) == named[0]][:2]
        picks = match + [None] * (2 - len(match))
    else:
        picks = []
        for c, s in named:
            cand = [o for o in objs if (o["color"], o["shape"]) == (c, s) and not any(o is p for p in picks)]
            picks.append(cand[0] if cand else None)
    found = [p is not None for p in picks]
    if kind == "relation" and all(found):
        ok = relation_holds(picks[0], picks[1], relation)
        place = [ok, ok]
    else:
        place = list(found)
    return {"found": found, "place_ok": place, "all_ok": all(place), "objects": picks, "n_objects": len(objs)}


def selftest(n, seed):
    rng = np.random.Generator(np.random.PCG64(seed))
    ok = 0
    for _ in range(n):
        sc = shapes.sample_scene(rng)
        r = check_caption(shapes.render(sc), shapes.caption(sc))
        good = r["all_ok"] and r["n_objects"] == len(sc["objects"])
        ok += good
        if not good:
            print("miss: %s %s" % (shapes.caption(sc), [(o["color"], o["shape"], o["size"]) for o in sc["objects"]]))
    print("detector on %d ground-truth scenes: %d correct (%.2f%%)" % (n, ok, 100.0 * ok / n))
    return ok / n


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--selftest", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=12345)
    a = ap.parse_args()
    sys.exit(0 if selftest(a.selftest, a.seed) == 1.0 else 1)
