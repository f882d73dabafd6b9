#!/usr/bin/python3
"""Reference fixtures for the C implementation of demo-t2i (tests/fixtures/t2i/), from the committed model
through the reference sampler (sample.py, batch 1, exactly the computation docs/T2I_MODEL.md specifies).

  common.safetensors      alphas_cumprod_bits I64 [1000] (the float64 values' bit patterns);
                          timesteps_25 / timesteps_10 I32; rng_u64_seed{0,1,42} I64 [4] (splitmix64 outputs,
                          the uint64 bit patterns); rng_normals_seed1 F32 [3, 32, 32]; time_sinusoid
                          F32 [3, 128] for t = 999, 500, 39
  tokenization.json       [{text, ids, tokens}] including lower-casing, punctuation and unknown words
  prompt{N}.safetensors   one prompt and seed (metadata: prompt, prompt_tokens, seed, steps, guidance_scale,
                          cross_steps, daam_range):
      token_ids I32 [S]; text_mem F32 [S, d] (text encoder output, after its final norm)
      noise F32 [3, 32, 32] (x_T); time_token F32 [d] (step 0); v_cond / v_uncond F32 [3, 32, 32] (step 0)
      x.step{0,1,4,11,23} F32 [3, 32, 32] (x after that step: 11 and 23 feed steps 12 and 24); image
      cross.step{K}.layer{L} F32 [heads, 1 + 64, S] for K in cross_steps, every layer (conditional pass)
      daam.raw F32 [S, 8, 8] (sum over all steps, layers, heads, before upsampling)
      daam.words F32 [S, 32, 32] (normalized DAAM map of every token, all steps/layers/heads)
      daam.range.words F32 [S, 32, 32] (steps, layers, heads of daam_range: half-open [lo, hi) each)
      daam.step_layer F32 [steps, layers, S, 64] (heads summed, the 8 x 8 grid row-major; prompt 0 only)

Also prints how far a float64 run of the same sampler lands from the float32 one (the numerical headroom
for the C engine's tolerances).

Usage: /usr/bin/python3 scripts/t2i/make_fixtures.py [--model models/demo-t2i] [--out tests/fixtures/t2i]
"""

import argparse
import copy
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import sample as S  # noqa: E402  (sets the CPU environment before torch loads)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import daam  # noqa: E402
import model as M  # noqa: E402
import rng  # noqa: E402
import safetensors_np as st  # noqa: E402
import tok  # noqa: E402

PROMPTS = [("a red circle above a blue square", 1), ("a yellow circle left of a red square", 3),
           ("two green triangles", 7)]
TOKEN_CASES = ["a red circle above a blue square", "A R\u00e9d  Circle, LEFT of\ta purple triangle",
               "two white squares!", "a pink banana", ""]
CROSS_STEPS = [0, 12, 24]
KEEP_X = (0, 1, 4, 11, 23)  # 11 and 23: the inputs of steps 12 and 24 (one-step checks)
DAAM_RANGE = {"steps": [5, 20], "layers": [1, 3], "heads": [1, 3]}


def common(cfg):
    # F64 and U64 travel as their bit patterns in I64 (attnviz's safetensors reader has no F64/U64 type)
    t = {"alphas_cumprod_bits": M.alphas_cumprod(cfg).view(np.int64),
         "timesteps_25": np.array(S.timesteps(cfg, 25), np.int32),
         "timesteps_10": np.array(S.timesteps(cfg, 10), np.int32),
         "rng_normals_seed1": rng.normals(1, (3, cfg["image_size"], cfg["image_size"])),
         "time_sinusoid": M.time_sinusoid(torch.tensor([999, 500, 39]), cfg).numpy()}
    for seed in (0, 1, 42):
        g = rng.SplitMix64(seed)
        t["rng_u64_seed%d" % seed] = np.array([g.next_u64() for _ in range(4)], np.uint64).view(np.int64)
    return t


def step0(net, cfg, text, seed):
    """text memory, time token, conditional and unconditional v at the first step"""
    ids, pad, _ = S.encode_batch([text], net.words)
    uids, upad, _ = S.encode_batch([""], net.words)
    with torch.no_grad():
        mem, umem = net.text(ids, pad), net.text(uids, upad)
        x = torch.from_numpy(rng.normals(seed, (1, 3, cfg["image_size"], cfg["image_size"])))
        t = torch.tensor([S.timesteps(cfg, 25)[0]])
        tt = net.denoiser.time_embed(t, cfg)
        vc, _ = net.denoiser(x, t, mem, pad, cfg)
        vu, _ = net.denoiser(x, t, umem, upad, cfg)
    return ids[0].numpy().astype(np.int32), mem[0].numpy(), x[0].numpy(), tt[0].numpy(), vc[0].numpy(), vu[0].numpy()


def prompt_fixture(net, cfg, text, seed, with_step_layer):
    grid, size = cfg["image_size"] // cfg["patch_size"], cfg["image_size"]
    ids, mem, noise, tt, vc, vu = step0(net, cfg, text, seed)
    out = S.sample(net, cfg, [text], [seed], 25, None, capture=True, keep_x=KEEP_X)
    probs = out["probs"][:, :, 0]  # (steps, layers, heads, 1 + P, S)
    t = {"token_ids": ids, "text_mem": mem, "noise": noise, "time_token": tt, "v_cond": vc, "v_uncond": vu,
         "image": out["image"][0], "daam.raw": daam.raw_maps(probs, grid).astype(np.float32),
         "daam.words": daam.word_maps(probs, grid, size),
         "daam.range.words": daam.word_maps(probs, grid, size, range(*DAAM_RANGE["steps"]),
                                            range(*DAAM_RANGE["layers"]), range(*DAAM_RANGE["heads"]))}
    for k in KEEP_X:
        t["x.step%d" % k] = out["x"][k][0]
    for k in CROSS_STEPS:
        for layer in range(probs.shape[1]):
            t["cross.step%d.layer%d" % (k, layer)] = probs[k, layer]
    if with_step_layer:
        sl = probs[:, :, :, 1:, :].sum(2)  # (steps, layers, P, S)
        t["daam.step_layer"] = np.ascontiguousarray(sl.transpose(0, 1, 3, 2)).astype(np.float32)  # (.., S, P)
    meta = {"prompt": text, "prompt_tokens": json.dumps([net.words[i] for i in ids]), "seed": str(seed),
            "steps": "25", "guidance_scale": repr(cfg["guidance_scale"]), "cross_steps": json.dumps(CROSS_STEPS),
            "x_steps": json.dumps(list(KEEP_X)), "daam_range": json.dumps(DAAM_RANGE),
            "daam_threshold": repr(daam.TAU)}
    return t, meta, out["image"][0]


def float64_headroom(net, cfg, text, seed, img32):
    """max |image| difference of the same sampler run in float64 (weights and activations)"""
    n64 = copy.deepcopy(net).double()
    n64.words = net.words
    orig = M.time_sinusoid

    def sinus64(t, c):
        return orig(t, c).double()

    M.time_sinusoid = sinus64
    try:
        torch.set_default_dtype(torch.float64)
        x = torch.from_numpy(rng.normals64(seed, 3 * cfg["image_size"] ** 2).reshape(1, 3, cfg["image_size"], -1))
        out = sample64(n64, cfg, text, x)
    finally:
        torch.set_default_dtype(torch.float32)
        M.time_sinusoid = orig
    return float(np.abs(out - img32).max())


@torch.no_grad()
def sample64(net, cfg, text, x):
    ids, pad, _ = S.encode_batch([text], net.words)
    uids, upad, _ = S.encode_batch([""], net.words)
    mem, umem = net.text(ids, pad), net.text(uids, upad)
    ab = M.alphas_cumprod(cfg)
    ts = S.timesteps(cfg, 25)
    g = cfg["guidance_scale"]
    for i, t in enumerate(ts):
        tt = torch.tensor([t])
        vc, _ = net.denoiser(x, tt, mem, pad, cfg)
        vu, _ = net.denoiser(x, tt, umem, upad, cfg)
        v = vu + g * (vc - vu)
        a, b = np.sqrt(ab[t]), np.sqrt(1 - ab[t])
        a2, b2 = (np.sqrt(ab[ts[i + 1]]), np.sqrt(1 - ab[ts[i + 1]])) if i + 1 < len(ts) else (1.0, 0.0)
        x = a2 * (a * x - b * v).clamp(-1, 1) + b2 * (b * x + a * v)
    return ((x + 1) / 2).clamp(0, 1)[0].numpy()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/demo-t2i")
    ap.add_argument("--out", default="tests/fixtures/t2i")
    args = ap.parse_args()
    torch.set_num_threads(2)
    net, cfg, words = S.load(args.model)
    os.makedirs(args.out, exist_ok=True)
    st.write(os.path.join(args.out, "common.safetensors"), common(cfg), metadata={"format": "attnviz-t2i-ref"})
    w2i = {w: i for i, w in enumerate(words)}
    cases = [{"text": c, "ids": tok.encode(c, w2i), "tokens": [words[i] for i in tok.encode(c, w2i)]}
             for c in TOKEN_CASES]
    with open(os.path.join(args.out, "tokenization.json"), "w", encoding="utf-8") as f:
        json.dump(cases, f, indent=1)
        f.write("\n")
    for n, (text, seed) in enumerate(PROMPTS):
        t, meta, img = prompt_fixture(net, cfg, text, seed, n == 0)
        meta["format"] = "attnviz-t2i-ref"
        st.write(os.path.join(args.out, "prompt%d.safetensors" % n), t, metadata=meta)
        print("prompt%d: %r seed %d; float64 sampler vs float32: max |image diff| %.2e"
              % (n, text, seed, float64_headroom(net, cfg, text, seed, img)), flush=True)


if __name__ == "__main__":
    main()
