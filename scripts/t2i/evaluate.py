#!/usr/bin/python3
"""Measures demo-t2i on caption lists (caption <TAB> seed): generation quality with the detector and DAAM
faithfulness, through the reference sampler (sample.py) on the exported model directory.

Per caption (relation captions "a C1 S1 REL a C2 S2"):
  found[k]     the k-th named object exists: a component of its color with its shape (detect.py)
  place_ok[k]  found, and the two objects stand in the named relation (centroids; counts for both objects)
  all_ok       both found and placed
Per color or shape word of a found object (DAAM over all steps, layers and heads, daam.py):
  iou          IoU of (map > 0.4) with the detector's mask of the object the word names
  iou_other    the same map against the OTHER named object's mask (what a map that ignored the word scores)
  hit          the map's maximum lies on the named object's mask (pointing game)

Usage: /usr/bin/python3 scripts/t2i/evaluate.py [--model models/demo-t2i] [--lists heldout,indist]
       [--guidance G] [--guidance-sweep 1.5,3,5] [--limit N] [--sheet sheet.png] [--out report.json]
"""

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import sample as S  # noqa: E402  (sets the CPU environment before torch loads)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import daam  # noqa: E402
import detect  # noqa: E402

BATCH = 25


def read_list(path, limit):
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            c, s = line.rstrip("\n").split("\t")
            rows.append((c, int(s)))
    return rows[:limit] if limit else rows


def word_positions(n_tokens):
    """token indices of C1, S1, C2, S2 in "[CLS] a C1 S1 REL.. a C2 S2 [SEP]" """
    return [(2, 0), (3, 0), (n_tokens - 3, 1), (n_tokens - 2, 1)]


def score_one(img, probs, text, grid, size):
    """img (3, H, W); probs (steps, layers, heads, 1 + P, S) of this prompt (S = its own token count)"""
    r = detect.check_caption(img, text)
    maps = daam.word_maps(probs, grid, size)
    words = []
    for j, k in word_positions(probs.shape[-1]):
        o, other = r["objects"][k], r["objects"][1 - k]
        if o is None:
            continue
        m = maps[j]
        y, x = np.unravel_index(int(m.argmax()), m.shape)
        words.append({"kind": "color" if j in (2, probs.shape[-1] - 3) else "shape", "iou": daam.iou(m, o["mask"]),
                      "iou_other": daam.iou(m, other["mask"]) if other is not None else None,
                      "hit": bool(o["mask"][y, x])})
    return {"text": text, "found": r["found"], "place_ok": r["place_ok"], "all_ok": r["all_ok"],
            "n_objects": r["n_objects"], "words": words}


def run_list(net, cfg, rows, guidance, steps):
    grid = cfg["image_size"] // cfg["patch_size"]
    results, images = [], []
    for b in range(0, len(rows), BATCH):
        chunk = rows[b:b + BATCH]
        out = S.sample(net, cfg, [c for c, _ in chunk], [s for _, s in chunk], steps, guidance, capture=True)
        for i, (c, _) in enumerate(chunk):
            n = out["lengths"][i]
            probs = out["probs"][:, :, i, :, :, :n]  # (steps, layers, heads, 1 + P, n)
            results.append(score_one(out["image"][i], probs, c, grid, cfg["image_size"]))
            images.append(out["image"][i])
    return results, images


def summarize(results):
    n = len(results)
    objs = [f for r in results for f in r["found"]]
    placed = [p for r in results for p in r["place_ok"]]
    both = [r for r in results if all(r["found"])]
    w = [x for r in results for x in r["words"]]

    def dist(vals):
        v = np.array(vals, np.float64)
        if not len(v):
            return None
        return {"n": int(len(v)), "mean": float(v.mean()), "median": float(np.median(v)),
                "p10": float(np.percentile(v, 10)), "p25": float(np.percentile(v, 25)),
                "p75": float(np.percentile(v, 75)), "p90": float(np.percentile(v, 90)),
                "histogram_0_to_1_by_0.1": np.histogram(v, bins=10, range=(0, 1))[0].tolist()}

    return {
        "captions": n,
        "object_found_rate": float(np.mean(objs)),
        "object_found_and_placed_rate": float(np.mean(placed)),
        "caption_all_correct_rate": float(np.mean([r["all_ok"] for r in results])),
        "relation_given_both_found": float(np.mean([r["all_ok"] for r in both])) if both else None,
        "exactly_two_objects_rate": float(np.mean([r["n_objects"] == 2 for r in results])),
        "daam_iou": dist([x["iou"] for x in w]),
        "daam_iou_color_words": dist([x["iou"] for x in w if x["kind"] == "color"]),
        "daam_iou_shape_words": dist([x["iou"] for x in w if x["kind"] == "shape"]),
        "daam_iou_against_other_object": dist([x["iou_other"] for x in w if x["iou_other"] is not None]),
        "daam_pointing_hit_rate": float(np.mean([x["hit"] for x in w])) if w else None,
        "daam_named_beats_other_rate": float(np.mean([x["iou"] > x["iou_other"] for x in w
                                                      if x["iou_other"] is not None])) if w else None,
    }


def contact_sheet(images, texts, path, cols=10, scale=3):
    """a grid of the first images (no captions: they are in the card's table)"""
    n = min(len(images), cols * 2)
    H = images[0].shape[1] * scale
    sheet = np.full((3, 2 * (H + 2), cols * (H + 2)), 0.5, np.float32)
    for i in range(n):
        y, x = (i // cols) * (H + 2), (i % cols) * (H + 2)
        sheet[:, y:y + H, x:x + H] = np.repeat(np.repeat(images[i], scale, 1), scale, 2)
    S.write_png(path, sheet)
    return texts[:n]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/demo-t2i")
    ap.add_argument("--lists", default="heldout,indist")
    ap.add_argument("--guidance", type=float, default=None)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--sheet", default="")
    ap.add_argument("--out", default="")
    ap.add_argument("--guidance-sweep", default="", help="comma-separated guidance scales to try on indist")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    net, cfg, _ = S.load(args.model)
    report = {"guidance_scale": cfg["guidance_scale"] if args.guidance is None else args.guidance,
              "steps": args.steps, "daam_threshold": daam.TAU, "layers": cfg["denoiser_layers"],
              "n_params": sum(p.numel() for p in net.parameters())}
    if args.guidance_sweep:
        rows = read_list(os.path.join(args.model, "indist.tsv"), args.limit)
        report["guidance_sweep"] = {}
        for g in args.guidance_sweep.split(","):
            report["guidance_sweep"][g] = summarize(run_list(net, cfg, rows, float(g), args.steps)[0])
            print("guidance %s: whole captions right %.3f" % (g, report["guidance_sweep"][g][
                "caption_all_correct_rate"]), flush=True)
    for name in args.lists.split(","):
        t0 = time.time()
        rows = read_list(os.path.join(args.model, name + ".tsv"), args.limit)
        results, images = run_list(net, cfg, rows, args.guidance, args.steps)
        report[name] = summarize(results)
        report[name]["seconds"] = round(time.time() - t0, 1)
        report[name]["loadavg"] = open("/proc/loadavg").read().split()[:3]
        if args.sheet and name == "heldout":
            report[name]["sheet_captions"] = contact_sheet(images, [c for c, _ in rows], args.sheet)
        print(name, json.dumps(report[name], indent=1), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
