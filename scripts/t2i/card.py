#!/usr/bin/python3
"""Writes models/demo-t2i/eval.json and MODEL_CARD.md from the training log (train.py), the evaluation report
(evaluate.py) and the data settings (shapes.py). Numbers only come from those files.

Usage: /usr/bin/python3 scripts/t2i/card.py [--model models/demo-t2i] [--work build/t2i-train]
       [--report build/t2i-train/eval_report.json] [--sheet docs/img/t2i-heldout-samples.png]
"""

import argparse
import hashlib
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import shapes  # noqa: E402


def pct(x):
    return "n/a" if x is None else "%.1f%%" % (100 * x)


def dist_line(d):
    if not d:
        return "n/a"
    return ("mean **%.3f**, median %.3f, quartiles %.3f / %.3f, 10th-90th percentile %.3f-%.3f (n = %d)"
            % (d["mean"], d["median"], d["p25"], d["p75"], d["p10"], d["p90"], d["n"]))


def quality_rows(rep, names):
    rows = ["| measure | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    keys = [("captions", "captions", lambda x: str(x)),
            ("each named object present (named color and shape)", "object_found_rate", pct),
            ("each named object present and in the named place", "object_found_and_placed_rate", pct),
            ("whole caption right (both objects, relation)", "caption_all_correct_rate", pct),
            ("relation right when both objects are present", "relation_given_both_found", pct),
            ("exactly two objects in the image", "exactly_two_objects_rate", pct),
            ("DAAM IoU, color and shape words (mean)", "daam_iou", lambda d: "%.3f" % d["mean"] if d else "n/a"),
            ("DAAM IoU against the other object (mean)", "daam_iou_against_other_object",
             lambda d: "%.3f" % d["mean"] if d else "n/a"),
            ("DAAM maximum on the named object", "daam_pointing_hit_rate", pct),
            ("DAAM IoU with the named object above that with the other", "daam_named_beats_other_rate", pct)]
    for label, k, f in keys:
        rows.append("| %s | " % label + " | ".join(f(rep[n].get(k)) for n in names) + " |")
    return rows


DESIGN_NOTE = (
    "**Why no text encoder.** The first demo-t2i (2 bidirectional text blocks, d_model 128, 6 denoiser layers, "
    "2.0 M parameters, 1.8 h of training) drew the objects but its DAAM maps did not localize them: on the same "
    "200 held-out captions the mean IoU of a word's map with its object was 0.029, against 0.027 with the *other* "
    "object, and the map's maximum lay on the named object for 1.7% of the words. With a mixing text encoder "
    "every token carries the whole caption, so a patch can read \"red circle on top\" from the [SEP] or \"a\" "
    "token as well as from \"red\", and nothing ties the attention to the word \"red\" to the red object. Here "
    "each key and value the patches read is one word (and its position) and nothing else, and the time token, "
    "which every patch reads through self-attention, is kept from the text: to draw red a patch has to look at "
    "\"red\".")


def text_encoder_line(cfg):
    if cfg["text_layers"] == 0:
        return ("Text: no encoder layers (`text_layers` 0): each prompt token is its token embedding plus a learned "
                "position embedding (up to %d positions), through one LayerNorm; no token mixes with another."
                % cfg["max_text_positions"])
    return ("Text encoder: token + learned position embeddings (up to %d tokens), %d pre-norm transformer blocks "
            "(LayerNorm, self-attention, exact-GELU MLP), final LayerNorm." % (cfg["max_text_positions"],
                                                                              cfg["text_layers"]))


def training_section(tl, cfg, n_params, note):
    a, log = tl["args"], tl["log"]
    done = log[-1]["step"]
    loads = [float(e["loadavg"][0]) for e in log]
    cmd = ("OPENBLAS_NUM_THREADS=1 nice -n 5 /usr/bin/python3 scripts/t2i/train.py --data build/t2i-data --work build/t2i-train --seed %d "
           "--steps %d --lr %g --warmup %d --ema %g --threads %d" % (a["seed"], a["steps"], a["lr"], a["warmup"],
                                                                      a["ema"], a.get("threads", 2)))
    L = ["## Training\n", "    sh scripts/t2i/train_all.sh        # all of it: data, training, export, evaluation, "
         "fixtures, this card\n", "The training step alone:\n", "    " + cmd + "\n",
         "Debian's python3-torch (1.13) on the CPU, `torch.set_num_threads(%d)`, deterministic algorithms, seed %d "
         "(data, initialization, batch order, noise). %d steps of batch %d (%d scenes seen, %.1f epochs) of a %d-step "
         "schedule, AdamW "
         "(lr %g, betas 0.9/0.99, weight decay %g on matrices), %d warm-up steps then cosine decay to 10%%, "
         "gradient clipping 1.0, caption dropout %g (classifier-free guidance), EMA of the weights (decay %g; the "
         "EMA is what is shipped). v-prediction loss, timesteps uniform in 0..%d."
         % (a.get("threads", 2), a["seed"], done, a["batch"], done * a["batch"], done * a["batch"] / 100000.0,
            a["steps"],
            a["lr"], a["weight_decay"], a["warmup"], a["uncond_p"], a["ema"], cfg["num_train_timesteps"] - 1),
         "",
         "**Wall time: %.0f s (%.2f h)** of training on this project's shared 2-core development machine "
         "(Intel Xeon, AVX-512; OpenBLAS with its SkylakeX kernels, see scripts/t2i/cpu_env.py), whose 1-minute "
         "load average was %.1f to %.1f (median %.1f) during the run: other jobs shared the two cores, so on an "
         "idle 2-core machine it takes a fraction of this. The run checkpoints every %d steps (`build/t2i-train/"
         "ckpt.pt`) and the same command resumes an interrupted run exactly (same weights as an uninterrupted "
         "run)." % (log[-1]["train_s"], log[-1]["train_s"] / 3600, min(loads), max(loads), sorted(loads)[len(loads) // 2],
                    a["ckpt_every"]), ""]
    if note:
        L += [note, ""]
    L.append("| step | loss (mean since previous row) | wall s | load average (1, 5, 15 min) |")
    L.append("|---|---|---|---|")
    every = max(1, len(log) // 10)
    for e in log[every - 1::every]:
        L.append("| %d | %.4f | %.0f | %s |" % (e["step"], e["loss"], e["train_s"], " ".join(e["loadavg"])))
    L.append("")
    return L


def daam_section(rep):
    h = rep["heldout"]
    return [
        "## DAAM faithfulness\n",
        "For every color and shape word of a held-out caption whose object the detector found, the word's DAAM "
        "map (cross-attention of the conditional pass, patch rows, summed over all 25 steps, all %d layers and "
        "all heads, bilinear upsampling to 32x32, min-max normalized; `scripts/t2i/daam.py`) is binarized at "
        "DAAM's threshold **tau = %.1f** (map > tau) and compared with the detector's pixel mask of that object:"
        % (rep["layers"], rep["daam_threshold"]), "",
        "- IoU, all color and shape words: " + dist_line(h["daam_iou"]),
        "- color words: " + dist_line(h["daam_iou_color_words"]),
        "- shape words: " + dist_line(h["daam_iou_shape_words"]),
        "- the same maps against the *other* named object's mask (what a map that ignored the word would score): "
        + dist_line(h["daam_iou_against_other_object"]),
        "- the map's maximum lies on the named object: %s of the words" % pct(h["daam_pointing_hit_rate"]),
        "- the map's IoU with the named object is above its IoU with the other object: %s of the words "
        "whose caption's two objects were both found" % pct(h.get("daam_named_beats_other_rate")),
        "- distribution of the IoU (10 bins from 0 to 1): %s" % h["daam_iou"]["histogram_0_to_1_by_0.1"]
        if h["daam_iou"] else "", "",
        "**Caveat (also shown wherever attnviz draws these maps): the maps are descriptive, not explanatory.** "
        "They show where the denoiser's patches read each word at the layers and steps summed, which overlaps "
        "where the object ends up; they do not show that the word caused the object, nor what the model would "
        "do without it.", ""]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/demo-t2i")
    ap.add_argument("--work", default="build/t2i-train")
    ap.add_argument("--report", default="build/t2i-train/eval_report.json")
    ap.add_argument("--sheet", default="docs/img/t2i-heldout-samples.png")
    ap.add_argument("--training-note", default="", help="a paragraph on how this run went (interruptions, "
                    "changed settings), printed under the training command")
    ap.add_argument("--daam-note", default="", help="a paragraph on what the DAAM numbers mean for this model, "
                    "printed under the DAAM measurements")
    ap.add_argument("--engine-note", default="", help="a paragraph on the C engine against the reference "
                    "(measured differences), printed under Use")
    args = ap.parse_args()
    tl = json.load(open(os.path.join(args.work, "train_log.json")))
    rep = json.load(open(args.report))
    cfg = json.load(open(os.path.join(args.model, "config.json")))
    wpath = os.path.join(args.model, "model.safetensors")
    sha = hashlib.sha256(open(wpath, "rb").read()).hexdigest()
    triples = [l.split() for l in open(os.path.join(args.model, "heldout_triples.txt")).read().splitlines()]
    triples = [(t[0], t[1], " ".join(t[2:])) for t in triples]
    d, L_den = cfg["hidden_size"], cfg["denoiser_layers"]
    n_params = rep["n_params"]
    ev = {"pytorch": rep, "training": {"args": tl["args"], "train_s": tl["log"][-1]["train_s"],
                                       "final_loss": tl["log"][-1]["loss"]},
          "seed": tl["args"]["seed"], "sha256_model_safetensors": sha}
    with open(os.path.join(args.model, "eval.json"), "w") as f:
        json.dump(ev, f, indent=1)
        f.write("\n")
    L = ["# demo-t2i: attnviz's tiny text-to-image diffusion model\n",
         "**Trained by this project** (`scripts/t2i/`) on **synthetic data this project generates**; nothing was "
         "downloaded. It exists so that attnviz can show DAAM-style cross-attention maps (which image regions "
         "read which prompt word) on a real, working text-to-image model: \"a red circle above a blue square\" "
         "-> a 32x32 picture of that. It draws only the tiny grammar below.\n",
         "## Files\n", "| file | what |", "|---|---|",
         "| `config.json` | every hyper-parameter: architecture, noise schedule, sampler, guidance, token ids "
         "(docs/T2I_MODEL.md explains each) |",
         "| `model.safetensors` | F16 weights (%d parameters), names as in docs/T2I_MODEL.md; EMA weights at step "
         "%d; sha256 `%s` |" % (n_params, tl["log"][-1]["step"], sha),
         "| `vocab.txt`, `tokenizer.json`, `tokenizer_config.json` | word-level BERT WordPiece tokenizer: "
         "lowercase, `[CLS] words [SEP]`, %d tokens, unknown words -> `[UNK]` |" % cfg["vocab_size"],
         "| `heldout.tsv` | the %d held-out evaluation captions with their sampler seeds |" % rep["heldout"]["captions"],
         "| `indist.tsv` | %d captions drawn like the training ones, same format (for comparison) |"
         % rep["indist"]["captions"],
         "| `heldout_triples.txt` | the held-out (color, shape, relation) triples |",
         "| `eval.json` | the numbers of this card, machine-readable |\n",
         "## Architecture\n",
         text_encoder_line(cfg) + " Denoiser (U-ViT style): the 32x32x3 image "
         "in %dx%d patches (%d patch tokens + learned positions) after one time token (sinusoid(t) -> Linear -> "
         "GELU -> Linear), %d blocks of the engine's shape (pre-norm LayerNorm -> self-attention over all %d "
         "tokens -> residual; LayerNorm -> cross-attention to the text -> residual; LayerNorm -> GELU MLP -> "
         "residual), final LayerNorm, a linear head to the patch pixels (v-prediction). d_model %d, %d heads of "
         "%d, MLP %d. No adaLN: time enters only as the extra token%s. Cosine noise schedule, %d training "
         "timesteps. Sampling: DDIM (eta 0), 25 steps by default, classifier-free guidance scale %g "
         "(v = v_uncond + %g (v_cond - v_uncond), unconditional prompt = the empty text)."
         % (cfg["patch_size"], cfg["patch_size"], cfg["num_patches"], L_den,
            cfg["num_patches"] + 1, d, cfg["num_attention_heads"], cfg["head_dim"], cfg["intermediate_size"],
            ", and it reads no text: its cross-attention output is dropped (`cross_attention_from` 1), so the "
            "patches' cross-attention is the only path from the prompt to the image"
            if cfg.get("cross_attention_from") else "",
            cfg["num_train_timesteps"], cfg["guidance_scale"], cfg["guidance_scale"]), "",
         DESIGN_NOTE, "",
         "## Data\n",
         "`scripts/t2i/shapes.py` (grammar and renderer) and `scripts/t2i/make_data.py` (seed %d, %d scenes, "
         "regenerated, not committed): 32x32 RGB, black background, shapes %s in colors %s. Captions: "
         "\"a [small|big] COLOR SHAPE\" (20%%), \"a COLOR SHAPE REL a COLOR SHAPE\" with REL in %s (65%%), \"two "
         "COLOR SHAPEs\" (15%%). Objects never touch. Layouts are regular on purpose: a single object near the "
         "middle (+-4 px), two objects in two slots along an axis (centers 8.5 and 23.5 +-2 px, 16 +-3 px across); "
         "shapes.py says why (objects anywhere on the canvas were not learnable in this budget)."
         % (tl["args"]["seed"], 100000, ", ".join(shapes.SHAPES), ", ".join(shapes.COLORS),
            ", ".join(shapes.RELATIONS)), "",
         "**Held out:** %d (color, shape, relation) triples of the first object never occur in training: %s. "
         "The %d held-out captions (`heldout.tsv`) each use one of them; their colors, shapes and relations all "
         "occur in training, only not together in that role." % (
             len(triples), "; ".join("\"a %s %s %s ...\"" % t for t in triples), rep["heldout"]["captions"]), ""]
    L += training_section(tl, cfg, n_params, args.training_note)
    L += ["## Quality, measured by the detector\n",
          "`scripts/t2i/detect.py`: palette colors on the background -> 4-connected components -> shape from fill "
          "ratio and taper -> relation from centroids (100%% right on 3,000 rendered ground-truth scenes). One "
          "image per caption, seed from the list, DDIM 25 steps, guidance %g (PyTorch reference sampler):\n"
          % rep["guidance_scale"]]
    L += quality_rows(rep, ["heldout", "indist"])
    L.append("")
    if rep.get("guidance_sweep"):
        L.append("Guidance scale chosen on the in-distribution list (not the held-out one): " + ", ".join(
            "g = %g: %s whole captions right" % (float(g), pct(r["caption_all_correct_rate"]))
            for g, r in sorted(rep["guidance_sweep"].items(), key=lambda x: float(x[0]))) + ".\n")
    if os.path.exists(args.sheet):
        L.append("The first %d held-out samples (`%s`, left to right, top to bottom): %s.\n" % (
            len(rep["heldout"]["sheet_captions"]), args.sheet,
            "; ".join(rep["heldout"]["sheet_captions"])))
        L.append("![held-out samples](../../%s)\n" % args.sheet)
    L += daam_section(rep)
    if args.daam_note:
        L[-1:-1] = ["", args.daam_note]
    L += ["## Use\n",
          "    ./attnviz run --model models/demo-t2i --text \"a red circle above a blue square\" --seed 1 --steps 25 "
          "-o t.safetensors",
          "    ./attnviz render t.safetensors --word red -o red.png      # DAAM map of \"red\" over the image",
          "    /usr/bin/python3 scripts/t2i/sample.py --text \"a red circle above a blue square\" --seed 1 -o t.png"
          "   # the PyTorch reference\n",
          "The C engine's sampler follows docs/T2I_MODEL.md and is checked against tests/fixtures/t2i/ "
          "(`scripts/t2i/make_fixtures.py`). Limits: only the grammar's %d words (others become `[UNK]`), at most "
          "%d tokens including [CLS] and [SEP], 32x32 images." % (cfg["vocab_size"] - 5, cfg["max_text_positions"]),
          ""]
    if args.engine_note:
        L += [args.engine_note, ""]
    with open(os.path.join(args.model, "MODEL_CARD.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(L))
    print("wrote %s/eval.json and MODEL_CARD.md" % args.model)


if __name__ == "__main__":
    main()
