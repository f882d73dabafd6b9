#!/usr/bin/python3
"""Train the project's second demo model: a 2-layer ATTENTION-ONLY decoder that develops
previous-token and induction heads, and export it as a llama2.c checkpoint the engine runs unchanged.

Data (generated here, nothing downloaded): sequences over the 95 printable ASCII characters in which
random segments are repeated, so the only way to predict beyond chance is to find the earlier copy of
the current token and predict what followed it (the induction mechanism).

Architecture (the engine's Llama block without the MLP): token embedding -> 2 x [RMSNorm -> multi-head
causal self-attention with interleaved (llama2.c) RoPE -> residual] -> RMSNorm -> untied classifier.
The llama2.c export carries an inert FFN (hidden_dim 8, w1 = w2 = w3 = 0): SwiGLU(0) * 0 = 0 exactly.

Outputs (in --out, default models/induction):
  induction.bin     llama2.c legacy checkpoint (negative vocab_size in the header: separate classifier)
  tokenizer.bin     llama2.c tokenizer: 0 <unk>, 1 <s>, 2 </s>, then one piece per printable ASCII char
  MODEL_CARD.md     data, command, seed, losses, and which heads are previous-token / induction heads,
                    measured here in PyTorch on the exported file and (when build/attnviz exists) by the C
                    `attnviz roles` command on the same probe sequences

Usage:
  /usr/bin/python3 scripts/train_induction.py [--out DIR] [--steps N] [--seed S]
  /usr/bin/python3 scripts/train_induction.py --card-only     # re-measure the checkpoint, rewrite the card

Deterministic: fixed seed, torch.set_num_threads(2), deterministic algorithms, data from numpy's PCG64.
"""

import argparse
import hashlib
import json
import math
import os
import struct
import subprocess
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import ref_llama  # noqa: E402  (the project's independent PyTorch Llama: loader, RoPE, RMSNorm)

UNK, BOS, EOS = 0, 1, 2
CHARS = [chr(c) for c in range(0x20, 0x7F)]  # 95 printable ASCII characters, ids 3..97
VOCAB = 3 + len(CHARS)
DIM, N_LAYERS, N_HEADS, HIDDEN, SEQ_LEN = 64, 2, 4, 8, 128  # SEQ_LEN: the checkpoint's context window
TRAIN_T = 96  # training sequence length (BOS included)
PROBE_FRAC = 0.6  # share of training sequences with the probe shape (a segment repeated back to back)
NORM_EPS, ROPE_THETA = 1e-5, 10000.0

# role probes (shared definition with src/analysis/roles.c)
PROBE_L, PROBE_SAMPLES, PROBE_SEED = 32, 4, 1
ROLE_MIN = 0.3  # a head is named for a role when that role is its best score and the score >= ROLE_MIN
# the natural-text probe: must equal av_roles_default_text() in src/analysis/roles.c (checked against the C
# command's JSON when it is built)
ROLES_TEXT = ("The little dog ran to the park. It saw a red ball, and it ran after the ball! Then the dog "
              "found a stick; the stick was long. \"Come here,\" said Tom. The dog came back with the ball and "
              "the stick, and Tom was happy.")


# --------------------------------------------------------------------------
# data


def make_sequence(rng, T):
    """[BOS] then random segments, many of them copies of an earlier span. Returns (ids[T], predictable[T]):
    predictable[i] is True when ids[i] can be inferred by copying (it continues a repeat whose first
    token has been seen)."""
    ids = [BOS]
    pred = [False]
    if rng.random() < PROBE_FRAC:  # the probe shape: a random segment repeated back to back
        L = int(rng.integers(8, (T - 1) // 2 + 1))
        seg = list(rng.integers(3, VOCAB, size=L))
        ids += seg + seg
        pred += [False] * L + [False] + [True] * (L - 1)
        while len(ids) < T:
            ids.append(int(rng.integers(3, VOCAB)))
            pred.append(False)
        return ids[:T], pred[:T]
    n0 = int(rng.integers(8, 33))
    ids += list(rng.integers(3, VOCAB, size=n0))
    pred += [False] * n0
    while len(ids) < T:
        if rng.random() < 0.6 and len(ids) > 8:
            L = int(rng.integers(6, 31))
            start = int(rng.integers(1, len(ids) - 4))
            span = ids[start:start + L]
            ids += span
            pred += [False] + [True] * (len(span) - 1)
        else:
            L = int(rng.integers(4, 21))
            ids += list(rng.integers(3, VOCAB, size=L))
            pred += [False] * L
    return [int(x) for x in ids[:T]], pred[:T]


def make_batch(rng, B, T):
    seqs = [make_sequence(rng, T) for _ in range(B)]
    ids = torch.tensor([s[0] for s in seqs], dtype=torch.long)
    pred = torch.tensor([s[1] for s in seqs], dtype=torch.bool)
    return ids, pred


# --------------------------------------------------------------------------
# model


class Cfg:
    dim, n_heads, head_size, rope_theta, rope_style = DIM, N_HEADS, DIM // N_HEADS, ROPE_THETA, "interleaved"


class AttnOnly(torch.nn.Module):
    def __init__(self):
        super().__init__()
        D = DIM
        self.tok_emb = torch.nn.Parameter(torch.randn(VOCAB, D) * 0.5)
        self.rms_att = torch.nn.Parameter(torch.ones(N_LAYERS, D))
        s = 1.0 / math.sqrt(D)
        self.wq = torch.nn.Parameter(torch.randn(N_LAYERS, D, D) * s)
        self.wk = torch.nn.Parameter(torch.randn(N_LAYERS, D, D) * s)
        self.wv = torch.nn.Parameter(torch.randn(N_LAYERS, D, D) * s)
        self.wo = torch.nn.Parameter(torch.randn(N_LAYERS, D, D) * s * 0.5)
        self.rms_final = torch.nn.Parameter(torch.ones(D))
        self.wcls = torch.nn.Parameter(torch.randn(VOCAB, D) * s)

    def forward(self, ids, want_attn=False):
        """ids [B, T] -> logits [B, T, V] (and attention [L][B, H, T, T])."""
        B, T = ids.shape
        H, hs = N_HEADS, DIM // N_HEADS
        cos, sin = ref_llama.rope_tables(Cfg, T)
        mask = torch.full((T, T), float("-inf")).triu(1)
        x = self.tok_emb[ids]  # [B, T, D]
        attns = []
        for l in range(N_LAYERS):
            h = ref_llama.rmsnorm(x, self.rms_att[l], NORM_EPS)
            q = (h @ self.wq[l].t()).view(B, T, H, hs).transpose(1, 2)  # [B, H, T, hs]
            k = (h @ self.wk[l].t()).view(B, T, H, hs).transpose(1, 2)
            v = (h @ self.wv[l].t()).view(B, T, H, hs).transpose(1, 2)
            q = ref_llama.apply_rope(q, cos, sin, "interleaved")
            k = ref_llama.apply_rope(k, cos, sin, "interleaved")
            att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hs) + mask, dim=-1)
            if want_attn:
                attns.append(att)
            x = x + (att @ v).transpose(1, 2).reshape(B, T, DIM) @ self.wo[l].t()
        logits = ref_llama.rmsnorm(x, self.rms_final, NORM_EPS) @ self.wcls.t()
        return (logits, attns) if want_attn else logits


# --------------------------------------------------------------------------
# export


def export_llama2c(model, path):
    """llama2.c legacy layout; see src/model/llama2c.c."""
    w = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
    hs = DIM // N_HEADS
    zeros_h = torch.zeros(N_LAYERS, HIDDEN, DIM)
    parts = [
        w["tok_emb"], w["rms_att"], w["wq"], w["wk"], w["wv"], w["wo"],
        torch.ones(N_LAYERS, DIM),  # rms_ffn (irrelevant: the FFN output is exactly 0)
        zeros_h,  # w1 (gate)
        torch.zeros(N_LAYERS, DIM, HIDDEN),  # w2 (down): all zeros -> the FFN contributes exactly 0
        zeros_h,  # w3 (up)
        w["rms_final"],
    ]
    # legacy RoPE tables (read and skipped by the engine, kept for llama2.c compatibility)
    cos, sin = ref_llama.rope_tables(Cfg, SEQ_LEN)
    parts += [cos.reshape(-1), sin.reshape(-1), w["wcls"]]
    assert cos.numel() == SEQ_LEN * hs // 2
    header = struct.pack("<7i", DIM, HIDDEN, N_LAYERS, N_HEADS, N_HEADS, -VOCAB, SEQ_LEN)
    with open(path + ".tmp", "wb") as f:
        f.write(header)
        for p in parts:
            f.write(p.numpy().astype("<f4").tobytes())
    os.replace(path + ".tmp", path)


def export_tokenizer(path):
    pieces = [b"<unk>", b"\n<s>\n", b"\n</s>\n"] + [c.encode() for c in CHARS]
    assert len(pieces) == VOCAB
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<i", max(len(p) for p in pieces)))
        for p in pieces:
            f.write(struct.pack("<fi", 0.0, len(p)))
            f.write(p)
    os.replace(path + ".tmp", path)
    return pieces


# --------------------------------------------------------------------------
# probes: the same sequences as `attnviz roles` (src/analysis/roles.c)


class SplitMix64:
    MASK = (1 << 64) - 1

    def __init__(self, seed):
        self.s = seed & self.MASK

    def next(self):
        self.s = (self.s + 0x9E3779B97F4A7C15) & self.MASK
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & self.MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & self.MASK
        return z ^ (z >> 31)


def probe_candidates(pieces, bos, eos):
    """Ids a random probe draws from: every id except BOS, EOS and pieces of the form <...> (unk, bytes)."""
    out = []
    for i, p in enumerate(pieces):
        if i in (bos, eos) or (len(p) >= 3 and p[:1] == b"<" and p[-1:] == b">"):
            continue
        out.append(i)
    return out


def repeat_probe(cands, L, n_samples, seed):
    rng = SplitMix64(seed)
    seqs = []
    for _ in range(n_samples):
        r = [cands[rng.next() % len(cands)] for _ in range(L)]
        seqs.append([BOS] + r + r)
    return seqs


def head_scores_repeat(attns, L):
    """attns: list over layers of [H, T, T] for [BOS] + R + R.  Induction: mean attention from position i of
    the second half (i = L+1 .. 2L) to i-L+1; duplicate-token: to i-L."""
    out = []
    for a in attns:
        idx = torch.arange(L + 1, 2 * L + 1)
        ind = a[:, idx, idx - L + 1].mean(-1)
        dup = a[:, idx, idx - L].mean(-1)
        out.append((ind, dup))
    return out


def prev_token_score(a):
    """a [H, T, T] causal: mean over rows i >= 1 of a[i, i-1]."""
    T = a.shape[-1]
    i = torch.arange(1, T)
    return a[:, i, i - 1].mean(-1)


def encode_chars(text):
    """The llama2.c tokenizer on this vocabulary: BOS, the dummy-prefix space, then one id per character."""
    return [BOS] + [3 + ord(c) - 0x20 for c in " " + text]


def python_roles(path, pieces):
    """Per-head induction and duplicate-token scores (repeated random probe) and previous-token scores (natural
    text probe) of the exported checkpoint, computed by ref_llama (the project's independent PyTorch Llama) on
    the same probe sequences as `attnviz roles`."""
    cfg, w = ref_llama.load_llama2c(path)
    model = ref_llama.Transformer(cfg, w)
    cands = probe_candidates(pieces, BOS, EOS)
    ind = torch.zeros(cfg.n_layers, cfg.n_heads)
    dup = torch.zeros(cfg.n_layers, cfg.n_heads)
    seqs = repeat_probe(cands, PROBE_L, PROBE_SAMPLES, PROBE_SEED)
    for ids in seqs:
        _, attns = model.forward(ids)
        for l, (i_s, d_s) in enumerate(head_scores_repeat(attns, PROBE_L)):
            ind[l] += i_s / len(seqs)
            dup[l] += d_s / len(seqs)
    _, attns = model.forward(encode_chars(ROLES_TEXT)[:cfg.seq_len])
    prev = torch.stack([prev_token_score(a) for a in attns])
    return ind, dup, prev


def c_roles(model_path):
    """`attnviz roles --json` on the exported model, when the C binary is built; None otherwise."""
    exe = os.path.join(REPO, "build", "attnviz")
    if not os.access(exe, os.X_OK):
        return None
    cmd = [exe, "roles", "--model", model_path, "--seq-len", str(PROBE_L), "--samples", str(PROBE_SAMPLES),
           "--seed", str(PROBE_SEED), "--json"]
    try:
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300).stdout
        return json.loads(out)
    except (subprocess.SubprocessError, ValueError) as e:
        print("note: %s failed: %s" % (" ".join(cmd), e), file=sys.stderr)
        return None


# --------------------------------------------------------------------------
# main


@torch.no_grad()
def evaluate(model, seed, n=256, T=TRAIN_T):
    rng = np.random.Generator(np.random.PCG64(seed))
    ids, pred = make_batch(rng, n, T)
    logits = model(ids)
    tgt = ids[:, 1:]
    lp = torch.log_softmax(logits[:, :-1], -1)
    nll = -lp.gather(-1, tgt[..., None])[..., 0]
    mask = pred[:, 1:]
    acc = (logits[:, :-1].argmax(-1) == tgt)
    return {
        "loss_all": float(nll.mean()),
        "loss_repeated": float(nll[mask].mean()),
        "loss_fresh": float(nll[~mask].mean()),
        "acc_repeated": float(acc[mask].float().mean()),
        "n_repeated": int(mask.sum()),
    }


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(REPO, "models", "induction"))
    ap.add_argument("--steps", type=int, default=1800)
    ap.add_argument("--batch", type=int, default=48)
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--card-only", action="store_true",
                    help="do not train: evaluate the checkpoint already in --out and rewrite MODEL_CARD.md "
                         "(the other options must be the ones it was trained with)")
    args = ap.parse_args()

    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    if args.card_only:
        return card_only(args)
    torch.manual_seed(args.seed)
    rng = np.random.Generator(np.random.PCG64(args.seed))
    model = AttnOnly()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01)
    warm = 100

    def lr_at(step):
        if step < warm:
            return args.lr * (step + 1) / warm
        p = (step - warm) / max(1, args.steps - warm)
        return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)))

    t0 = time.time()
    for step in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        ids, _ = make_batch(rng, args.batch, TRAIN_T)
        logits = model(ids)
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, VOCAB), ids[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 100 == 0 or step == args.steps - 1:
            print("step %5d  loss %.4f  lr %.2e  %.0fs" % (step, float(loss), lr_at(step), time.time() - t0),
                  flush=True)
    print("training took %.0f s" % (time.time() - t0))
    model.eval()
    ev = evaluate(model, args.seed + 1)
    print("eval: %s" % json.dumps(ev))

    os.makedirs(args.out, exist_ok=True)
    bin_path = os.path.join(args.out, "induction.bin")
    tok_path = os.path.join(args.out, "tokenizer.bin")
    export_llama2c(model, bin_path)
    pieces = export_tokenizer(tok_path)

    # the exported file, read back by the independent loader, must give the trained model's logits
    cfg, w = ref_llama.load_llama2c(bin_path)
    ids, _ = make_batch(np.random.Generator(np.random.PCG64(7)), 1, SEQ_LEN)
    ref_logits, _ = ref_llama.Transformer(cfg, w).forward(ids[0], want_attn=False)
    diff = float((ref_logits - model(ids)[0]).abs().max())
    print("export check: max |logit diff| between the trained model and the exported checkpoint %.2e" % diff)
    if diff > 1e-4:
        print("ERROR: exported checkpoint does not reproduce the trained model", file=sys.stderr)
        return 1

    return measure_and_write_card(args, ev, bin_path, tok_path, pieces)


def card_only(args):
    """Evaluates the committed checkpoint (loaded into the training model) and rewrites the card."""
    bin_path = os.path.join(args.out, "induction.bin")
    tok_path = os.path.join(args.out, "tokenizer.bin")
    cfg, w = ref_llama.load_llama2c(bin_path)
    model = AttnOnly()
    with torch.no_grad():
        for name in ("tok_emb", "rms_att", "wq", "wk", "wv", "wo", "rms_final", "wcls"):
            getattr(model, name).copy_(w[name])
    model.eval()
    ev = evaluate(model, args.seed + 1)
    print("eval: %s" % json.dumps(ev))
    pieces = [b"<unk>", b"\n<s>\n", b"\n</s>\n"] + [c.encode() for c in CHARS]
    return measure_and_write_card(args, ev, bin_path, tok_path, pieces)


def measure_and_write_card(args, ev, bin_path, tok_path, pieces):
    ind, dup, prev = python_roles(bin_path, pieces)
    for l in range(N_LAYERS):
        for h in range(N_HEADS):
            print("python head %d.%d  induction %.3f  duplicate %.3f  previous-token %.3f" % (
                l, h, ind[l, h], dup[l, h], prev[l, h]))
    croles = c_roles(bin_path)
    if croles and croles["probe"].get("text") != ROLES_TEXT:
        print("ERROR: ROLES_TEXT differs from the C command's built-in probe text", file=sys.stderr)
        return 1
    write_card(args, ev, bin_path, tok_path, ind, dup, prev, croles)
    return 0


def write_card(args, ev, bin_path, tok_path, ind, dup, prev, croles):
    py_ind = [(l, h) for l in range(N_LAYERS) for h in range(N_HEADS) if ind[l, h] >= ROLE_MIN]
    py_prev = [(l, h) for l in range(N_LAYERS) for h in range(N_HEADS) if prev[l, h] >= ROLE_MIN]
    fmt = lambda hs: ", ".join("%d.%d" % lh for lh in hs) or "none"  # noqa: E731
    lines = []
    lines.append("# induction — a 2-layer attention-only demo model (trained by this project)\n")
    lines.append("Trained by attnviz's own script `scripts/train_induction.py` on synthetic data the script "
                 "generates; no external data or weights. It exists to show previous-token and induction heads "
                 "in `attnviz roles` and the viewer.\n")
    lines.append("## Files\n")
    lines.append("- `induction.bin` — llama2.c legacy checkpoint, %d bytes, sha256 `%s`" % (
        os.path.getsize(bin_path), sha256(bin_path)))
    lines.append("- `tokenizer.bin` — llama2.c tokenizer, %d bytes, sha256 `%s`\n" % (
        os.path.getsize(tok_path), sha256(tok_path)))
    lines.append("## Architecture\n")
    lines.append("Attention-only decoder: token embedding (%d x %d), %d layers of [RMSNorm (eps 1e-5) -> %d-head causal "
                 "self-attention, head size %d, interleaved RoPE (theta 10000) -> residual], final RMSNorm, untied "
                 "classifier; context %d. No MLP: the checkpoint's FFN is inert (hidden_dim %d, w1 = w2 = w3 = 0, "
                 "so it adds exactly 0) and the engine runs it as an ordinary Llama model." % (
                     VOCAB, DIM, N_LAYERS, N_HEADS, DIM // N_HEADS, SEQ_LEN, HIDDEN))
    lines.append("Vocabulary (%d): 0 `<unk>`, 1 `<s>` (BOS), 2 `</s>`, then the 95 printable ASCII characters "
                 "(ids 3..97, one character per token), so `attnviz run` works on plain text.\n" % VOCAB)
    lines.append("## Data\n")
    lines.append("Generated on the fly (numpy PCG64, seed %d), %d-token sequences starting with BOS: %d%% have the "
                 "probe shape (a random segment of 8..%d characters repeated back to back, then random filler); "
                 "the rest are random segments (4..20 characters) interleaved with copies (6..30 characters) of "
                 "an earlier span. Tokens are uniform over the 95 characters, so a token is predictable only "
                 "when it continues a repeat (\"repeated\" positions below). %d steps x %d sequences = %d "
                 "training tokens.\n" % (args.seed, TRAIN_T, round(100 * PROBE_FRAC), (TRAIN_T - 1) // 2,
                                        args.steps, args.batch, args.steps * args.batch * TRAIN_T))
    lines.append("## Training\n")
    lines.append("```\n/usr/bin/python3 scripts/train_induction.py --steps %d --batch %d --lr %g --seed %d\n```\n" % (
        args.steps, args.batch, args.lr, args.seed))
    lines.append("CPU, `torch.set_num_threads(2)`, deterministic algorithms; AdamW (betas 0.9/0.98, weight decay "
                 "0.01), 100 warm-up steps then cosine to 10%%, gradient clipping 1.0; torch %s. About 3 minutes "
                 "on 2 otherwise idle cores (the script prints the time; it is not recorded here so that the "
                 "output stays byte-identical). Re-running the command rewrites induction.bin and tokenizer.bin "
                 "bit for bit (same sha256) and this card identically. `--card-only` re-measures the committed "
                 "checkpoint and rewrites only this card.\n" % torch.__version__)
    lines.append("## Results (256 fresh sequences, seed %d)\n" % (args.seed + 1))
    lines.append("| measure | value |\n|---|---|")
    lines.append("| loss, all positions (nats) | %.4f |" % ev["loss_all"])
    lines.append("| loss, fresh random positions (chance = ln 95 = %.3f) | %.4f |" % (math.log(95), ev["loss_fresh"]))
    lines.append("| loss, repeated positions | %.4f |" % ev["loss_repeated"])
    lines.append("| top-1 accuracy, repeated positions (%d) | %.2f%% |\n" % (ev["n_repeated"], 100 * ev["acc_repeated"]))
    lines.append("## Heads\n")
    lines.append("Probes (the defaults of `attnviz roles`): BOS followed by L = %d random tokens repeated twice, %d "
                 "samples, seed %d; induction score = mean attention from position i of the second copy to i-L+1 "
                 "(the token after the earlier occurrence), duplicate-token score = to i-L. A built-in English "
                 "paragraph (%d characters, cut to the 128-token context with BOS and the dummy-prefix space); previous-token "
                 "score = mean attention from i to i-1.\n" % (
                     PROBE_L, PROBE_SAMPLES, PROBE_SEED, len(ROLES_TEXT)))
    lines.append("| head | induction (python) | induction (C) | previous-token (python) | previous-token (C) | "
                 "duplicate-token (python) | C role (score) |")
    lines.append("|---|---|---|---|---|---|---|")
    c_by_head = {}
    if croles:
        for h in croles["heads"]:
            c_by_head[(h["layer"], h["head"])] = h
    for l in range(N_LAYERS):
        for h in range(N_HEADS):
            c = c_by_head.get((l, h))
            cs = (lambda k: "%.3f" % c["scores"][k]) if c else (lambda k: "-")  # noqa: E731
            lines.append("| %d.%d | %.3f | %s | %.3f | %s | %.3f | %s |" % (
                l, h, ind[l, h], cs("induction"), prev[l, h], cs("previous_token"), dup[l, h],
                ("%s (%.3f)" % (c["role"], c["score"])) if c else "-"))
    lines.append("")
    lines.append("Python scores: `ref_llama.py`'s independent PyTorch forward pass on the exported checkpoint. "
                 "C roles: `attnviz roles --model models/induction/induction.bin --json` (same probe).\n")
    if croles:
        c_ind = [(h["layer"], h["head"]) for h in croles["heads"] if h["role"] == "induction"]
        c_prev = [(h["layer"], h["head"]) for h in croles["heads"] if h["role"] == "previous_token"]
        agree = sorted(c_ind) == sorted(py_ind) and sorted(c_prev) == sorted(py_prev)
    else:
        c_ind, c_prev, agree = py_ind, py_prev, None
    # machine-read by tests/test_analysis_model.c: keep these two lines' format
    lines.append("- Induction heads (layer.head): %s" % fmt(sorted(c_ind)))
    lines.append("- Previous-token heads (layer.head): %s" % fmt(sorted(c_prev)))
    if croles:
        lines.append("- All roles found by `attnviz roles`: %s" % "; ".join(
            "%s %s" % (role, ", ".join(names)) for role, names in croles["summary"].items() if names))
    lines.append("")
    lines.append("This is the two-layer induction circuit of Olsson et al. (2022): layer-0 previous-token heads write "
                 "\"the token before me\" into each position, so a layer-1 head can match the current token against "
                 "it and attend to the token that followed the earlier occurrence (only the attention patterns are "
                 "measured here, not the weight composition).\n")
    if agree is None:
        lines.append("(C cross-check not run: build/attnviz was not built when the card was written.)")
    else:
        lines.append("C `attnviz roles` and the PyTorch scores (threshold %.1f) %s." % (
            ROLE_MIN, "agree on these heads" if agree else "DISAGREE — investigate"))
    path = os.path.join(args.out, "MODEL_CARD.md")
    with open(path + ".tmp", "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(path + ".tmp", path)
    print("wrote %s" % path)


if __name__ == "__main__":
    sys.exit(main())
