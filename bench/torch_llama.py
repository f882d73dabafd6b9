#!/usr/bin/python3
"""Plain PyTorch eager Llama forward, used as the timing baseline for attnviz.

Loads either a llama2.c checkpoint (.bin; loader and tokenizer from
scripts/ref_llama.py) or a Hugging Face Llama directory (config.json +
model.safetensors or sharded model-*-of-*.safetensors with an index, as made
by bench/make_synth_llama.py), runs ONE forward pass over T tokens and keeps
the attention probabilities of every layer ([n_heads, T, T] per layer, like
transformers' output_attentions=True).  Prints one JSON object on stdout:

  {"seconds_forward": forward pass only,
   "seconds_total_process": wall time since the very top of this script
                            (imports, loading, forward; interpreter start-up
                            before the first line is not included),
   "peak_rss_mb": ru_maxrss of this process,
   "n_tokens": T, "threads": torch threads, ...}

Weights stored as F16/BF16 are converted to float32 at load time; all
compute is float32.  The llama2.c format uses interleaved RoPE pairs
(2i, 2i+1); the HF layout uses "rotate half" pairs (j, j + head_dim/2).

Threads: torch.set_num_threads(--threads) (default 2).  The caller should
set OMP_WAIT_POLICY=PASSIVE in the environment (OpenMP reads it at start-up,
so it cannot be set from inside this script) so idle OpenMP threads do not
spin and distort timings on a shared machine, e.g.

  OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 bench/torch_llama.py \\
      --model ../shared/models/stories260K/stories260K.bin --text "Once upon a time"
  OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 bench/torch_llama.py \\
      --model /tmp/synth-1b --tokens 512 --threads 2
"""

import time

T_START = time.time()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "scripts"))
import ref_llama  # noqa: E402
import safetensors_np  # noqa: E402


def load_hf(dirpath):
    """HF Llama directory -> (ref_llama.Config, weights dict with per-layer lists)."""
    with open(os.path.join(dirpath, "config.json")) as f:
        c = json.load(f)
    if c.get("model_type") != "llama":
        raise SystemExit("%s: model_type %r is not 'llama'" % (dirpath, c.get("model_type")))
    H, nh = c["hidden_size"], c["num_attention_heads"]
    nkv = c.get("num_key_value_heads", nh)
    if c.get("head_dim", H // nh) != H // nh:
        raise SystemExit("%s: head_dim != hidden_size / num_attention_heads is not supported" % dirpath)
    cfg = ref_llama.Config(H, c["intermediate_size"], c["num_hidden_layers"], nh, nkv, c["vocab_size"],
                           c.get("max_position_embeddings", 2048), norm_eps=c.get("rms_norm_eps", 1e-5),
                           rope_theta=float(c.get("rope_theta", 10000.0)), rope_style="half")
    index = os.path.join(dirpath, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    raw = {}
    for fn in files:
        tensors, _ = safetensors_np.read(os.path.join(dirpath, fn), mmap=True)
        for name, a in tensors.items():
            # one tensor at a time: float32 copy (BF16 already float32 from the reader)
            raw[name] = torch.from_numpy(np.array(a, dtype=np.float32))
        del tensors
    L = cfg.n_layers

    def take(name):
        if name not in raw:
            raise SystemExit("%s: missing tensor %s" % (dirpath, name))
        return raw.pop(name)

    def per_layer(suffix):
        return [take("model.layers.%d.%s" % (l, suffix)) for l in range(L)]

    w = {
        "tok_emb": take("model.embed_tokens.weight"),
        "rms_att": per_layer("input_layernorm.weight"),
        "wq": per_layer("self_attn.q_proj.weight"),
        "wk": per_layer("self_attn.k_proj.weight"),
        "wv": per_layer("self_attn.v_proj.weight"),
        "wo": per_layer("self_attn.o_proj.weight"),
        "rms_ffn": per_layer("post_attention_layernorm.weight"),
        "w1": per_layer("mlp.gate_proj.weight"),
        "w2": per_layer("mlp.down_proj.weight"),
        "w3": per_layer("mlp.up_proj.weight"),
        "rms_final": take("model.norm.weight"),
    }
    if "lm_head.weight" in raw:
        w["wcls"] = take("lm_head.weight")
    elif c.get("tie_word_embeddings", False):
        w["wcls"] = w["tok_emb"]
    else:
        raise SystemExit("%s: missing lm_head.weight and tie_word_embeddings is false" % dirpath)
    return cfg, w


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--model", required=True, help="llama2.c .bin file or HF Llama directory")
    ap.add_argument("--tokenizer", default=None,
                    help="llama2.c tokenizer .bin for --text (default: tok512.bin next to a .bin model)")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--tokens", type=int, default=None, help="N random token ids (seeded); default 128")
    g.add_argument("--text", default=None, help="encode this text with the llama2.c tokenizer (BOS added)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-attn", action="store_true", help="do not keep attention probabilities")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    t_load = time.perf_counter()
    if os.path.isdir(args.model):
        cfg, w = load_hf(args.model)
        fmt = "hf"
    else:
        cfg, w = ref_llama.load_llama2c(args.model)
        fmt = "llama2c"
    seconds_load = time.perf_counter() - t_load

    if args.text is not None:
        tok_path = args.tokenizer
        if tok_path is None:
            if fmt != "llama2c":
                raise SystemExit("--text with an HF directory needs --tokenizer (llama2.c tokenizer .bin)")
            tok_path = os.path.join(os.path.dirname(os.path.abspath(args.model)), "tok512.bin")
        tok = ref_llama.Tokenizer(tok_path, cfg.vocab_size)
        ids = tok.encode(args.text, bos=True)
    else:
        n = 128 if args.tokens is None else args.tokens
        if n < 1:
            raise SystemExit("--tokens must be >= 1")
        gen = torch.Generator().manual_seed(args.seed)
        ids = [ref_llama.BOS] + torch.randint(3, cfg.vocab_size, (n - 1,), generator=gen).tolist()
    if len(ids) > cfg.seq_len:
        raise SystemExit("%d tokens exceed the model's context of %d" % (len(ids), cfg.seq_len))

    model = ref_llama.Transformer(cfg, w)
    t0 = time.perf_counter()
    logits, attns = model.forward(ids, want_attn=not args.no_attn)
    seconds_forward = time.perf_counter() - t0

    attn_bytes = sum(a.numel() * a.element_size() for a in attns)
    result = {
        "seconds_forward": round(seconds_forward, 6),
        "seconds_total_process": round(time.time() - T_START, 6),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        "n_tokens": len(ids),
        "threads": torch.get_num_threads(),
        "seconds_load": round(seconds_load, 6),
        "format": fmt,
        "n_layers": cfg.n_layers,
        "n_heads": cfg.n_heads,
        "attn_layers_kept": len(attns),
        "attn_mb": round(attn_bytes / 1e6, 3),
        "argmax_last": int(torch.argmax(logits[-1])),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "torch_version": torch.__version__,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
