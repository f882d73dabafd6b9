#!/usr/bin/python3
"""Build a synthetic Llama-shaped model (random weights) as a Hugging Face directory.

Writes OUT/config.json and OUT/model.safetensors, or with --shards N > 1
OUT/model-0000i-of-0000N.safetensors plus OUT/model.safetensors.index.json.
Tensor names follow transformers' LlamaForCausalLM:
  model.embed_tokens.weight                          [vocab, hidden]
  model.layers.N.input_layernorm.weight              [hidden]
  model.layers.N.self_attn.{q,o}_proj.weight         [hidden, hidden]
  model.layers.N.self_attn.{k,v}_proj.weight         [kv_heads*head_dim, hidden]
  model.layers.N.post_attention_layernorm.weight     [hidden]
  model.layers.N.mlp.{gate,up}_proj.weight           [intermediate, hidden]
  model.layers.N.mlp.down_proj.weight                [hidden, intermediate]
  model.norm.weight                                  [hidden]
  lm_head.weight                                     [vocab, hidden]   (untied)

Weights are N(0, 0.02) drawn in float32 with torch.manual_seed(--seed) in the
order listed above (so values do not depend on --dtype or --shards), then
rounded to --dtype; norm weights are 1.  Tensors are generated and written
one at a time (the header is computed from the shapes first), so memory stays
around one tensor: the 1b preset needs well under 8 GB of RAM.

Presets:
  1b    hidden 2048, intermediate 5632, 16 layers, 32 heads, 4 kv heads,
        vocab 32000, 2048 positions (TinyLlama-1.1B shape with 16 instead of
        22 layers: 0.84 B parameters including embeddings and lm_head; use
        --layers 22 for the real TinyLlama size, 1.10 B)
  tiny  hidden 64, intermediate 176, 2 layers, 4 heads, 2 kv heads,
        vocab 512, 256 positions (for tests)

Example:
  /usr/bin/python3 bench/make_synth_llama.py --preset tiny --dtype f32 --out /tmp/synth-tiny
  /usr/bin/python3 bench/make_synth_llama.py --preset 1b --dtype f16 --shards 2 --out /tmp/synth-1b
"""

import argparse
import glob
import json
import os
import sys
import time

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "scripts"))
import safetensors_np  # noqa: E402

PRESETS = {
    "1b": dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=16, num_attention_heads=32,
               num_key_value_heads=4, vocab_size=32000, max_position_embeddings=2048),
    "tiny": dict(hidden_size=64, intermediate_size=176, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=512, max_position_embeddings=256),
}
DTYPES = {  # --dtype -> (safetensors tag, config torch_dtype)
    "f32": ("F32", "float32"),
    "f16": ("F16", "float16"),
    "bf16": ("BF16", "bfloat16"),
}
STD = 0.02


def tensor_specs(c):
    """Canonical (generation) order: list of (name, shape, kind) with kind 'w' or 'norm'."""
    H, I, V = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    hd = H // c["num_attention_heads"]
    KV = c["num_key_value_heads"] * hd
    specs = [("model.embed_tokens.weight", (V, H), "w")]
    for l in range(c["num_hidden_layers"]):
        p = "model.layers.%d." % l
        specs += [
            (p + "input_layernorm.weight", (H,), "norm"),
            (p + "self_attn.q_proj.weight", (H, H), "w"),
            (p + "self_attn.k_proj.weight", (KV, H), "w"),
            (p + "self_attn.v_proj.weight", (KV, H), "w"),
            (p + "self_attn.o_proj.weight", (H, H), "w"),
            (p + "post_attention_layernorm.weight", (H,), "norm"),
            (p + "mlp.gate_proj.weight", (I, H), "w"),
            (p + "mlp.up_proj.weight", (I, H), "w"),
            (p + "mlp.down_proj.weight", (H, I), "w"),
        ]
    specs += [("model.norm.weight", (H,), "norm"), ("lm_head.weight", (V, H), "w")]
    return specs


def make_tensor(shape, kind, tag):
    if kind == "norm":
        t = torch.ones(shape, dtype=torch.float32)
    else:
        t = torch.randn(shape, dtype=torch.float32).mul_(STD)
    if tag == "F32":
        return t.numpy()
    if tag == "F16":
        return t.to(torch.float16).numpy()
    # bfloat16: round in torch, hand the raw bit pattern to the writer
    return t.to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)


def split_shards(specs, tag, n):
    """Contiguous runs of the canonical order, balanced by bytes."""
    if n < 1 or n > len(specs):
        raise SystemExit("--shards must be between 1 and %d" % len(specs))
    size = safetensors_np.dtype_size(tag)
    nbytes = [int(np.prod(s)) * size for _, s, _ in specs]
    total = sum(nbytes)
    shards, cur, acc = [], [], 0
    for i, spec in enumerate(specs):
        remaining_specs = len(specs) - i
        remaining_shards = n - len(shards)
        # close the current shard when it reached its share, or when every
        # remaining tensor is needed to give each later shard at least one
        if cur and remaining_shards > 1 and (acc >= total * (len(shards) + 1) / n
                                             or remaining_specs < remaining_shards):
            shards.append(cur)
            cur = []
        cur.append(spec)
        acc += nbytes[i]
    shards.append(cur)
    assert len(shards) == n and all(shards)
    return shards


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="f16")
    ap.add_argument("--out", required=True, help="output directory (created)")
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--layers", type=int, default=None, help="override the preset's layer count")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    cfg = dict(PRESETS[args.preset])
    if args.layers is not None:
        if args.layers < 1:
            raise SystemExit("--layers must be >= 1")
        cfg["num_hidden_layers"] = args.layers
    tag, torch_dtype = DTYPES[args.dtype]
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": cfg["hidden_size"],
        "intermediate_size": cfg["intermediate_size"],
        "num_attention_heads": cfg["num_attention_heads"],
        "num_key_value_heads": cfg["num_key_value_heads"],
        "num_hidden_layers": cfg["num_hidden_layers"],
        "hidden_act": "silu",
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "vocab_size": cfg["vocab_size"],
        "max_position_embeddings": cfg["max_position_embeddings"],
        "tie_word_embeddings": False,
        "attention_bias": False,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "torch_dtype": torch_dtype,
        "initializer_range": STD,
    }

    os.makedirs(args.out, exist_ok=True)
    stale = [p for pat in ("model.safetensors", "model-*-of-*.safetensors", "model.safetensors.index.json")
             for p in glob.glob(os.path.join(args.out, pat))]
    for p in stale:  # a previous run with a different --shards would confuse loaders
        os.unlink(p)

    torch.manual_seed(args.seed)
    t0 = time.time()
    specs = tensor_specs(cfg)
    n_params = sum(int(np.prod(s)) for _, s, _ in specs)
    shards = split_shards(specs, tag, args.shards)
    names = ["model.safetensors"] if args.shards == 1 else [
        "model-%05d-of-%05d.safetensors" % (i + 1, args.shards) for i in range(args.shards)]
    weight_map = {}
    total_size = 0
    metadata = {"format": "pt", "generator": "bench/make_synth_llama.py",
                "preset": args.preset, "seed": str(args.seed)}
    for fname, shard in zip(names, shards):
        path = os.path.join(args.out, fname)
        with safetensors_np.StreamWriter(path, [(n, tag, s) for n, s, _ in shard], metadata) as w:
            # every tensor has the same dtype, so the on-disk order is the canonical order
            assert w.order == [n for n, _, _ in shard]
            for name, shape, kind in shard:
                w.write_tensor(name, make_tensor(shape, kind, tag))
                weight_map[name] = fname
            total_size += w.data_bytes
    if args.shards > 1:
        index = {"metadata": {"total_size": total_size},
                 "weight_map": dict(sorted(weight_map.items()))}
        with open(os.path.join(args.out, "model.safetensors.index.json.tmp"), "w") as f:
            json.dump(index, f, indent=2)
            f.write("\n")
        os.replace(os.path.join(args.out, "model.safetensors.index.json.tmp"),
                   os.path.join(args.out, "model.safetensors.index.json"))
    with open(os.path.join(args.out, "config.json.tmp"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    os.replace(os.path.join(args.out, "config.json.tmp"), os.path.join(args.out, "config.json"))

    print(json.dumps({"out": args.out, "preset": args.preset, "dtype": args.dtype, "layers": cfg["num_hidden_layers"],
                      "n_params": n_params, "bytes": total_size, "files": names,
                      "seconds": round(time.time() - t0, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
