#!/usr/bin/python3
"""Traces for the step-view browser tests, written with numpy, and the numbers the tests expect.

    make_steps_fixtures.py OUTDIR

OUTDIR/gen.safetensors     a generation trace (docs/TRACE_FORMAT.md, version 3): 2 layers x 3 heads of causal
                           attention over 8 tokens (3 prompt, 5 produced), log-probabilities, entropies and 4
                           alternatives per position, generation metadata
OUTDIR/gen_expect.json     for each produced token t: p, the attention row t - 1 of every layer and head and their
                           means (the step view's "attention while producing token t"), the alternatives
OUTDIR/a.safetensors, b.safetensors  two traces of the same 6 tokens with different attention and log-probs
OUTDIR/diff_expect.json    A - B of layer 1 (mean over heads) and log p(A) - log p(B)
OUTDIR/openai.json         an OpenAI chat response with 3 tokens and 2 alternatives each (attnviz import)
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import safetensors_np  # noqa: E402


def causal_softmax(rng, layers, heads, t):
    x = rng.normal(0, 1.5, (layers, heads, t, t))
    x[..., np.triu(np.ones((t, t), bool), 1)] = -np.inf
    e = np.exp(x - x.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)).astype(np.float32)


def write_trace(path, tokens, attn, lp, ent, alt_ids, alt_lp, pieces, prompt_len, generation):
    alt_piece = np.array([[pieces.index(p) if p is not None else -1 for p in row] for row in alt_ids[1]], np.int32)
    tensors = {"attn.self.%d" % l: attn[l] for l in range(attn.shape[0])}
    tensors.update({"logprobs.token": lp, "logprobs.entropy": ent, "logprobs.ids": alt_ids[0],
                    "logprobs.topk": alt_lp, "logprobs.pieces": alt_piece})
    meta = {"format": "attnviz-trace", "version": "3", "model": "synthetic-gen", "tokens": json.dumps(tokens),
            "token_ids": json.dumps(list(range(100, 100 + len(tokens)))), "prompt_len": str(prompt_len),
            "generation": json.dumps(generation), "logprob_pieces": json.dumps(pieces)}
    safetensors_np.write(path, tensors, meta)


def logprob_tables(rng, tokens, k, words):
    """A distribution per position: the token's log-prob, the entropy and the k best alternatives (labels)."""
    t = len(tokens)
    lp = np.full(t, np.nan, np.float32)
    ent = np.full(t, np.nan, np.float32)
    ids = np.full((t, k), -1, np.int32)
    alp = np.full((t, k), np.nan, np.float32)
    labels = [[None] * k for _ in range(t)]
    for i in range(1, t):
        logits = rng.normal(0, 2, len(words))
        p = np.exp(logits - logits.max())
        p /= p.sum()
        order = np.argsort(-p, kind="stable")
        lp[i] = np.log(p[words.index(tokens[i])])
        ent[i] = -(p * np.log(p)).sum()
        for j in range(k):
            ids[i, j], alp[i, j], labels[i][j] = order[j], np.log(p[order[j]]), words[order[j]]
    return lp, ent, ids, alp, labels


def main(out):
    rng = np.random.default_rng(5)
    words = [" the", " cat", " sat", " on", " a", " mat", ".", " dog"]
    tokens = ["<s>", " the", " cat", " sat", " on", " a", " mat", "."]
    attn = causal_softmax(rng, 2, 3, len(tokens))
    lp, ent, ids, alp, labels = logprob_tables(rng, tokens, 4, words)
    pieces = sorted({w for row in labels for w in row if w is not None})
    gen = {"source": "attnviz", "sampling": {"temperature": 0.7, "top_k": 0, "top_p": 0.9, "min_p": 0, "seed": 3},
           "stop_reason": "length", "top_logprobs": 4}
    write_trace(f"{out}/gen.safetensors", tokens, attn, lp, ent, (ids, labels), alp, pieces, 3, gen)
    expect = {"tokens": tokens, "prompt_len": 3, "steps": {}}
    for t in range(3, len(tokens)):
        rows = attn[:, :, t - 1, :].astype(np.float64)  # [layers, heads, keys]
        expect["steps"][t] = {"p": float(np.exp(lp[t])), "rows": rows.tolist(), "head_mean": rows.mean(1).tolist(),
                              "layer_mean_head_mean": rows.mean((0, 1)).tolist(),
                              "alts": [[labels[t][j], float(np.exp(alp[t, j]))] for j in range(4)]}
    json.dump(expect, open(f"{out}/gen_expect.json", "w"))

    # two traces of the same tokens for attnviz diff
    t6 = tokens[:6]
    a, b = causal_softmax(rng, 2, 2, 6), causal_softmax(rng, 2, 2, 6)
    la, ea, ia, pa, wa = logprob_tables(rng, t6, 2, words)
    lb, eb, ib, pb, wb = logprob_tables(rng, t6, 2, words)
    for name, at, l, e, i, p, w in (("a", a, la, ea, ia, pa, wa), ("b", b, lb, eb, ib, pb, wb)):
        pcs = sorted({x for row in w for x in row if x is not None})
        write_trace(f"{out}/{name}.safetensors", t6, at, l, e, (i, w), p, pcs, 2, {"source": "attnviz"})
    d = (a[1].astype(np.float64) - b[1].astype(np.float64)).mean(0)
    delta = [None if np.isnan(x) or np.isnan(y) else float(x) - float(y) for x, y in zip(la, lb)]
    json.dump({"layer1_head_mean": d.tolist(), "delta": delta}, open(f"{out}/diff_expect.json", "w"))

    def entry(tok, lp, alts):
        return {"token": tok, "logprob": lp, "bytes": list(tok.encode()),
                "top_logprobs": [{"token": x, "logprob": y, "bytes": list(x.encode())} for x, y in alts]}
    content = [entry("Paris", -0.05, [("Paris", -0.05), ("Lyon", -3.1)]), entry(" is", -0.4, [(" is", -0.4), (",", -1.2)]),
               entry(".", -0.9, [(".", -0.9), ("!", -1.0)])]
    json.dump({"object": "chat.completion", "model": "gpt-fixture", "choices": [{"index": 0, "message": {
        "role": "assistant", "content": "Paris is."}, "logprobs": {"content": content}, "finish_reason": "stop"}]},
        open(f"{out}/openai.json", "w"))


if __name__ == "__main__":
    main(sys.argv[1])
