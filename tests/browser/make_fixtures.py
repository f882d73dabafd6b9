#!/usr/bin/python3
"""Synthetic attention for the viewer tests and benchmarks, written with numpy the way other tools save it.

    make_fixtures.py OUTDIR [--big]

OUTDIR/bert.npz          "attentions" [12, 12, 128, 128] float32: a BERT-base-shaped trace (sink, diagonal,
                         previous-token and diffuse heads), bert_tokens.json
OUTDIR/cross.npz         encoder_attentions [2, 4, 7, 7], decoder_attentions [2, 4, 5, 5] (causal),
                         cross_attentions [2, 4, 5, 7]; cross_tokens.json with source_tokens / target_tokens
OUTDIR/vit.npz           attentions [2, 3, 17, 17]: CLS + a 4x4 patch grid; vit_tokens.json (patch_grid,
                         prefix_tokens) and image.png (64x64, a red disc on a blue-green gradient)
OUTDIR/big.npy           [1, 2048, 2048] float32 (with --big): one 2048 x 2048 head, big_tokens.json
OUTDIR/roles.safetensors a causal trace written directly (3 layers x 5 heads x 12 tokens) whose heads have known
                         roles at known strengths (identity -> self, shifted identity -> previous token, first
                         column -> first token, uniform -> broad, two tokens back -> no role), with value norms
                         vnorm.<layer> for the norm-based view
"""
import json
import struct
import sys
import zlib

import os

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import safetensors_np  # noqa: E402


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def bert_like(rng, layers, heads, t, causal=False, first_kind=0):
    """Heads with recognizable patterns, so thumbnails differ from each other."""
    out = np.empty((layers, heads, t, t), np.float64)
    i = np.arange(t)
    for layer in range(layers):
        for h in range(heads):
            logits = rng.standard_normal((t, t)) * (0.5 + 0.15 * ((layer + h) % 5))
            kind = (first_kind + layer * heads + h) % 4
            if kind == 0:
                logits[:, 0] += 4.0  # attention sink on the first token
            elif kind == 1:
                logits[i, i] += 5.0  # self
            elif kind == 2:
                logits[i[1:], i[:-1]] += 5.0  # previous token
            else:
                logits[:, (i * (h + 3)) % t] += 2.0  # scattered
            if causal:
                logits = np.where(i[None, :] > i[:, None], -np.inf, logits)
            out[layer, h] = softmax(logits)
    return out


def roles_trace(rng, path):
    """Each head is w * pattern + (1 - w) * uniform over the visible keys (causal), the pattern and w chosen per
    (layer, head) so the summary grid shows every stats-based role at several strengths."""
    t, layers, heads = 12, 3, 5
    toks = ["<s>", " The", " cat", " sat", ",", " the", " dog", " ran", " .", " A", " bird", " sang"]
    i = np.arange(t)
    uni = np.tril(np.ones((t, t))) / (i + 1)[:, None]
    pats = {
        "self": np.eye(t),
        "prev": np.eye(t, k=-1) + np.diag((i == 0).astype(float)),  # row 0 can only attend to itself
        "first": np.eye(t)[[0] * t],
        "broad": uni,
        "back2": np.eye(t)[np.maximum(i - 2, 0)],
    }
    order = [["self", "prev", "first", "broad", "back2"], ["prev", "first", "back2", "self", "broad"],
             ["broad", "back2", "self", "prev", "first"]]
    strengths = [0.95, 0.75, 0.55]
    role_of = {"self": "self", "prev": "previous_token", "first": "first_token", "broad": "broad", "back2": "none"}
    attn, vnorm, designed = {}, {}, []
    for layer in range(layers):
        a = np.empty((heads, t, t))
        for h in range(heads):
            w = strengths[(layer + h) % 3]
            pat = order[layer][h]
            if pat == "broad":  # uniform mixed with peaked random rows, so its score is not always 1
                peaked = rng.dirichlet(np.full(t, 0.3), t) * np.tril(np.ones((t, t)))
                a[h] = w * uni + (1 - w) * peaked / peaked.sum(-1, keepdims=True)
            else:
                a[h] = w * pats[pat] + (1 - w) * uni
            designed.append({"layer": layer, "head": h, "pattern": pat, "role": role_of[pat], "w": w})
        attn[f"attn.self.{layer}"] = a.astype(np.float32)
        vn = 0.5 + 3 * rng.random((heads, t))
        vn[:, 0] = 0.1 + 0.1 * rng.random(heads)  # a short value vector on the sink token
        vnorm[f"vnorm.{layer}"] = vn.astype(np.float32)
    meta = {"format": "attnviz-trace", "version": "1", "model": "roles-synthetic", "arch": "llama",
            "tokens": json.dumps(toks), "token_ids": json.dumps(list(range(t))),
            "n_layers": str(layers), "n_heads": str(heads)}
    safetensors_np.write(path, {**attn, **vnorm}, meta)
    json.dump(designed, open(path.replace(".safetensors", "_designed.json"), "w"))


def png_rgb(path, img):
    """Minimal PNG writer (8-bit RGB) so the fixture needs nothing but numpy."""
    h, w, _ = img.shape
    raw = b"".join(b"\x00" + img[r].astype(np.uint8).tobytes() for r in range(h))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def main():
    out = sys.argv[1]
    rng = np.random.default_rng(1234)
    words = ("the quick brown fox jumps over a lazy dog while seven wise owls watch from old oak trees "
             "near the river bank , and café naïve résumé 東京 ! ").split()
    toks = ["[CLS]"] + [words[i % len(words)] for i in range(126)] + ["[SEP]"]
    np.savez(f"{out}/bert.npz", attentions=bert_like(rng, 12, 12, 128).astype(np.float32))
    json.dump({"tokens": toks, "model": "bert-base-synthetic"}, open(f"{out}/bert_tokens.json", "w"))

    src = ["<s>", "Le", "chat", "est", "sur", "le", "tapis"]
    tgt = ["<s>", "The", "cat", "is", "on"]
    enc = bert_like(rng, 2, 4, 7)
    dec = bert_like(rng, 2, 4, 5, causal=True)
    cross = softmax(rng.standard_normal((2, 4, 5, 7)) * 2 + 3 * np.eye(5, 7)[None, None])
    np.savez(f"{out}/cross.npz", encoder_attentions=enc, decoder_attentions=dec.astype(np.float16),
             cross_attentions=cross.astype(np.float32))
    json.dump({"source_tokens": src, "target_tokens": tgt, "model": "translator-synthetic"},
              open(f"{out}/cross_tokens.json", "w"))

    g = 4
    vit = bert_like(rng, 2, 3, 1 + g * g)
    # the CLS query of layer 1 looks mostly at patch (1, 2)
    vit[1, :, 0, :] = softmax(rng.standard_normal((3, 1 + g * g)) * 0.3 + 6 * (np.arange(1 + g * g) == 1 + 1 * g + 2))
    np.savez_compressed(f"{out}/vit.npz", attentions=vit.astype(np.float32))
    json.dump({"tokens": ["[CLS]"] + [f"p{r},{c}" for r in range(g) for c in range(g)], "model": "vit-synthetic",
               "patch_grid": f"{g}x{g}", "prefix_tokens": 1}, open(f"{out}/vit_tokens.json", "w"))
    yy, xx = np.mgrid[0:64, 0:64]
    img = np.stack([xx * 3, 80 + yy * 2, 200 - xx * 2], -1)
    img[(yy - 24) ** 2 + (xx - 40) ** 2 < 100] = (230, 30, 40)
    png_rgb(f"{out}/image.png", np.clip(img, 0, 255))

    roles_trace(rng, f"{out}/roles.safetensors")

    if "--big" in sys.argv:
        t = 2048
        big = bert_like(rng, 1, 1, t, first_kind=2)[0].astype(np.float32)  # previous-token head
        np.save(f"{out}/big.npy", big)
        json.dump([f"t{i}" for i in range(t)], open(f"{out}/big_tokens.json", "w"))


if __name__ == "__main__":
    main()
