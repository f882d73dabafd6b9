#!/usr/bin/python3
"""Trains demo-t2i (scripts/t2i/model.py) on the data of scripts/t2i/make_data.py; resumable.

Objective: v-prediction (Salimans & Ho 2022) under the cosine schedule: t ~ U{0..T-1},
x_t = sqrt(ab_t) x_0 + sqrt(1 - ab_t) eps, target v = sqrt(ab_t) eps - sqrt(1 - ab_t) x_0, loss = mean (v_hat - v)^2;
images scaled to [-1, 1] (x_0 = pixel / 127.5 - 1). Caption dropout (--uncond-p) replaces the caption by the
empty one ([CLS] [SEP]) for classifier-free guidance. AdamW, linear warm-up then cosine decay to 10%, gradient
clipping 1.0, an exponential moving average (EMA) of the weights, which is what export.py ships.

Checkpoints: --work/ckpt.pt every --ckpt-every steps and at the end (written to a temporary file, then renamed);
the same command resumes from it (model, EMA, optimizer, step, random generator state, accumulated training
time). --work/train_log.json records the loss, wall time and load average along the way.

Deterministic on one machine: fixed seeds, torch.set_num_threads(2), deterministic algorithms; batches come
from a per-epoch permutation (numpy PCG64(seed + epoch)), noise and timesteps from a torch.Generator whose
state the checkpoint keeps, so an interrupted and resumed run takes the same steps.

Usage: /usr/bin/python3 scripts/t2i/train.py [--data build/t2i-data] [--work build/t2i-train] [--seed 1]
       [--steps 4000] [--batch 64] [--lr 1e-3]
"""

import argparse
import json
import math
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cpu_env  # noqa: E402  (OpenBLAS/OpenMP variables: before torch loads)

cpu_env.setup()
import numpy as np  # noqa: E402
import torch  # noqa: E402

import model as M  # noqa: E402
import tok  # noqa: E402


def load_data(data_dir, max_len):
    images = np.load(os.path.join(data_dir, "train_images.npy"), mmap_mode="r")
    with open(os.path.join(data_dir, "train_captions.txt"), encoding="utf-8") as f:
        caps = f.read().split("\n")[: images.shape[0]]
    w2i = {w: i for i, w in enumerate(tok.vocab())}
    ids = np.full((len(caps), max_len), tok.PAD, np.int64)
    for i, c in enumerate(caps):
        e = tok.encode(c, w2i)
        assert tok.UNK not in e and len(e) <= max_len, c
        ids[i, : len(e)] = e
    return images, ids


def batch_at(step, args, n):
    """indices of the training scenes of a step: epoch permutations of PCG64(seed + epoch)"""
    per_epoch = n // args.batch
    epoch, k = divmod(step, per_epoch)
    perm = np.random.Generator(np.random.PCG64(args.seed + epoch)).permutation(n)
    return np.sort(perm[k * args.batch:(k + 1) * args.batch])


def lr_at(step, args):
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    u = (step - args.warmup) / max(1, args.steps - args.warmup)
    return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * u)))


def train_step(net, opt, images, ids, idx, gen, sqrt_ab, sqrt_1mab, args):
    x0 = torch.from_numpy(images[idx].astype(np.float32)) / 127.5 - 1.0  # (B, 3, H, W)
    cap = torch.from_numpy(ids[idx])  # (B, L)
    B = x0.shape[0]
    drop = torch.rand(B, generator=gen) < args.uncond_p
    cap[drop] = tok.PAD
    cap[drop, 0], cap[drop, 1] = tok.CLS, tok.SEP
    width = int((cap != tok.PAD).sum(1).max())
    cap = cap[:, :width]
    pad = cap == tok.PAD
    t = torch.randint(0, len(sqrt_ab), (B,), generator=gen)
    eps = torch.randn(x0.shape, generator=gen)
    a, s = sqrt_ab[t][:, None, None, None], sqrt_1mab[t][:, None, None, None]
    v_hat, _ = net(a * x0 + s * eps, t, cap, pad)
    loss = (v_hat - (a * eps - s * x0)).pow(2).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
    opt.step()
    return float(loss)


def save_ckpt(path, state):
    torch.save(state, path + ".tmp")
    os.replace(path + ".tmp", path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="build/t2i-data")
    ap.add_argument("--work", default="build/t2i-train")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--uncond-p", type=float, default=0.1)
    ap.add_argument("--ckpt-every", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (the card's run: 1)")
    ap.add_argument("--config", default="{}", help="JSON overrides of model.DEFAULT_CONFIG")
    ap.add_argument("--stop-after", type=int, default=0, help="stop (with a checkpoint) after this many steps "
                    "of this invocation; the next invocation resumes")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    os.makedirs(args.work, exist_ok=True)
    cfg = dict(M.DEFAULT_CONFIG, **json.loads(args.config))
    images, ids = load_data(args.data, cfg["max_text_positions"])
    ab = M.alphas_cumprod(cfg)
    sqrt_ab, sqrt_1mab = torch.tensor(np.sqrt(ab), dtype=torch.float32), torch.tensor(np.sqrt(1 - ab),
                                                                                        dtype=torch.float32)
    torch.manual_seed(args.seed)
    net = M.T2I(cfg, len(tok.vocab()))
    ema = M.T2I(cfg, len(tok.vocab()))
    ema.load_state_dict(net.state_dict())
    decay, no_decay = [], []
    for name, p in net.named_parameters():
        (no_decay if p.ndim < 2 or "embed" in name else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.99))
    gen = torch.Generator().manual_seed(args.seed)
    ckpt_path, log_path = os.path.join(args.work, "ckpt.pt"), os.path.join(args.work, "train_log.json")
    step, train_s, log = 0, 0.0, []
    if os.path.exists(ckpt_path):
        st = torch.load(ckpt_path)
        if st["args"]["seed"] != args.seed or st["cfg"] != cfg or st["args"]["batch"] != args.batch:
            sys.exit("%s was written with other settings; remove it or use another --work" % ckpt_path)
        net.load_state_dict(st["model"])
        ema.load_state_dict(st["ema"])
        opt.load_state_dict(st["opt"])
        gen.set_state(st["gen"])
        step, train_s, log = st["step"], st["train_s"], st["log"]
        print("resuming at step %d (%.0f s trained so far)" % (step, train_s), flush=True)
    print("%d parameters; %d scenes; %d steps of %d" % (sum(p.numel() for p in net.parameters()), len(ids),
                                                        args.steps, args.batch), flush=True)
    t_seg, losses, done_here = time.time(), [], 0
    while step < args.steps:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args)
        losses.append(train_step(net, opt, images, ids, batch_at(step, args, len(ids)), gen, sqrt_ab,
                                 sqrt_1mab, args))
        with torch.no_grad():
            d = min(args.ema, (1 + step) / (10 + step))
            for pe, pn in zip(ema.parameters(), net.parameters()):
                pe.mul_(d).add_(pn, alpha=1 - d)
        step, done_here = step + 1, done_here + 1
        last = step == args.steps or (args.stop_after and done_here >= args.stop_after)
        if step % args.ckpt_every == 0 or last:
            now = time.time()
            train_s += now - t_seg
            t_seg = now
            log.append({"step": step, "loss": float(np.mean(losses)), "train_s": round(train_s, 1),
                        "loadavg": open("/proc/loadavg").read().split()[:3], "lr": lr_at(step - 1, args)})
            losses = []
            print("step %d  loss %.4f  %.0f s  load %s" % (step, log[-1]["loss"], train_s,
                                                           " ".join(log[-1]["loadavg"])), flush=True)
            save_ckpt(ckpt_path, {"model": net.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                                  "gen": gen.get_state(), "step": step, "train_s": train_s, "log": log,
                                  "args": vars(args), "cfg": cfg})
            with open(log_path, "w") as f:
                json.dump({"args": vars(args), "cfg": cfg, "log": log}, f, indent=1)
            t_seg = time.time()
        if last:
            break
    print("stopped at step %d of %d, %.0f s of training" % (step, args.steps, train_s), flush=True)


if __name__ == "__main__":
    main()
