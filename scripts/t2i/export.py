#!/usr/bin/python3
"""Exports the EMA weights of a scripts/t2i/train.py checkpoint as the model directory attnviz loads:

  model.safetensors      F16 weights, the names of scripts/t2i/model.py (docs/T2I_MODEL.md lists them)
  config.json            every hyper-parameter the C engine needs (architecture, schedule, sampler, tokens)
  vocab.txt              the word-level WordPiece vocabulary, one token per line (id = line number)
  tokenizer.json         the same tokenizer for Hugging Face `tokenizers` and attnviz's tokenizer.json reader
  tokenizer_config.json  lower-casing and the special tokens

F16 because it halves the file (4 MB) and every weight converts back to F32 exactly: the reference sampler
(sample.py) and the C engine both compute in F32 from the F16 values, so nothing differs between them.

Usage: /usr/bin/python3 scripts/t2i/export.py [--work build/t2i-train] [--out models/demo-t2i]
       [--guidance 3.0]
"""

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import cpu_env  # noqa: E402

cpu_env.setup()
import numpy as np  # noqa: E402
import torch  # noqa: E402

import model as M  # noqa: E402
import safetensors_np as st  # noqa: E402
import tok  # noqa: E402

SAMPLER = {"sampler": "ddim", "eta": 0.0, "default_steps": 25, "timestep_spacing": "trailing",
           "clip_sample": True, "clip_sample_range": 1.0, "uncond_prompt": "",
           "noise": "splitmix64_box_muller", "image_range": [-1.0, 1.0]}


def config_json(cfg, guidance, words):
    c = {"model_type": "attnviz-t2i", "architectures": ["AttnvizT2I"], "torch_dtype": "float16"}
    c.update(cfg)
    p = cfg["image_size"] // cfg["patch_size"]
    c.update({"patch_grid": [p, p], "num_patches": p * p, "prefix_tokens": 1, "head_dim":
              cfg["hidden_size"] // cfg["num_attention_heads"], "vocab_size": len(words),
              "pad_token_id": tok.PAD, "unk_token_id": tok.UNK, "cls_token_id": tok.CLS, "sep_token_id": tok.SEP,
              "guidance_scale": guidance})
    c.update(SAMPLER)
    return c


def write_json(path, obj):
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
    os.replace(path + ".tmp", path)


def export(ckpt_path, out, guidance):
    ck = torch.load(ckpt_path)
    words = tok.vocab()
    net = M.T2I(ck["cfg"], len(words))
    net.load_state_dict(ck["ema"])
    os.makedirs(out, exist_ok=True)
    tensors = {k: v.astype(np.float16) for k, v in M.state_tensors(net).items()}
    st.write(os.path.join(out, "model.safetensors"), tensors,
             metadata={"format": "pt", "step": str(ck["step"]), "weights": "ema"})
    write_json(os.path.join(out, "config.json"), config_json(ck["cfg"], guidance, words))
    with open(os.path.join(out, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("".join(w + "\n" for w in words))
    write_json(os.path.join(out, "tokenizer.json"), tok.tokenizer_json(words))
    write_json(os.path.join(out, "tokenizer_config.json"), tok.tokenizer_config(ck["cfg"]["max_text_positions"]))
    return ck


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="build/t2i-train")
    ap.add_argument("--out", default="models/demo-t2i")
    ap.add_argument("--guidance", type=float, default=3.0)
    args = ap.parse_args()
    ck = export(os.path.join(args.work, "ckpt.pt"), args.out, args.guidance)
    print("exported step %d to %s" % (ck["step"], args.out))


if __name__ == "__main__":
    main()
