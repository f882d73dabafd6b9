#!/usr/bin/python3
"""Independent PyTorch (float32, CPU) reference for llama2.c models.

Reads a llama2.c legacy checkpoint (stories260K.bin) and its tokenizer
(tok512.bin), and writes reference fixtures used by the C tests:

  tests/fixtures/stories260K_ref.safetensors
      p{p}.ids        I32 [T]                token ids (BOS first)
      p{p}.logits     F32 [T, vocab]         (or [4, vocab], see metadata logits_rows)
      p{p}.attn.{l}   F32 [n_heads, T, T]    post-softmax, masked entries exactly 0
      __metadata__: prompts (JSON array), n_prompts, model, generator,
                    logits_rows ("all" | "last4"), config (JSON object)
  tests/fixtures/stories260K_greedy.txt       greedy text (temperature 0) from BOS
  tests/fixtures/stories260K_greedy_ids.json  JSON array: BOS then the generated ids
  tests/fixtures/stories260K_tok.json         tokenizer cases: [{"text", "text_hex", "ids"}]
                                              (ids with BOS; "text" is null for non-UTF-8 input)

Usage:
  /usr/bin/python3 scripts/ref_llama.py [--shared DIR] [--out DIR] [--steps 200]

The model and tokenizer code here is written from the format description
(llama2.c run.c semantics), not from the project's C code.  The loader and
Transformer class are also imported by bench/torch_llama.py.
"""

import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import safetensors_np  # noqa: E402

BOS, EOS = 1, 2
PROMPTS = [
    "Once upon a time, Lily saw a big red ball.",
    "The cat sat on the mat.",
    "Tom and Sue went to the park to play with a ball. They had fun!",
    "",
]
# extra tokenizer cases (tests/fixtures/stories260K_tok.json); bytes entries are
# not valid UTF-8 and exercise the byte fallback on malformed input
TOKENIZER_CASES = [
    "", " ", "  two  spaces", "Hello world", "Once upon a time", "naïve café", "日本", "emoji 😀!",
    "a\tb\nc", "<s>", "</s>", "<0x41>", "xxx", "ÿ", "The end.\n\nThe", "123 + 456 = 579",
    b"\xff\xfe", b"a\x80b", b"\xe6\x97", b"\xf0\x9f\x98\x80\x80\x80", b"\x80\x80\x80\x80\x80x",
    "it's \"quoted\"",
] + PROMPTS[:3]
EXPECTED_GREEDY_PREFIX = (
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. "
    "One day, she saw a big, red ball. She wanted to play with it, but it was too high."
)
FIXTURE_BUDGET = 2 * 1000 * 1000


# --------------------------------------------------------------------------
# checkpoint


class Config:
    def __init__(self, dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len,
                 norm_eps=1e-5, rope_theta=10000.0, rope_style="interleaved"):
        self.dim = dim
        self.hidden_dim = hidden_dim
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.n_kv_heads = n_kv_heads
        self.vocab_size = vocab_size
        self.seq_len = seq_len
        self.norm_eps = norm_eps
        self.rope_theta = rope_theta
        # "interleaved": llama2.c/Meta pairs (2i, 2i+1); "half": HF pairs (j, j + hs/2)
        self.rope_style = rope_style
        if dim % n_heads or n_heads % n_kv_heads:
            raise ValueError("bad head configuration: dim %d, n_heads %d, n_kv_heads %d" % (dim, n_heads, n_kv_heads))
        self.head_size = dim // n_heads
        self.kv_dim = dim * n_kv_heads // n_heads

    def as_dict(self):
        return {k: getattr(self, k) for k in ("dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads",
                                              "vocab_size", "seq_len", "norm_eps", "rope_theta", "rope_style")}


def load_llama2c(path):
    """Load a llama2.c legacy .bin -> (Config, dict of float32 torch tensors).

    Weight names: tok_emb [V,D], rms_att [L,D], wq [L,D,D], wk [L,KV,D],
    wv [L,KV,D], wo [L,D,D], rms_ffn [L,D], w1 [L,H,D], w2 [L,D,H],
    w3 [L,H,D], rms_final [D], wcls [V,D] (== tok_emb when tied).
    """
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 28:
        raise ValueError("%s: too short for a llama2.c checkpoint" % path)
    dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len = struct.unpack("<7i", raw[:28])
    shared = vocab > 0
    vocab = abs(vocab)
    cfg = Config(dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len)
    hs, kv, L = cfg.head_size, cfg.kv_dim, n_layers
    shapes = [
        ("tok_emb", (vocab, dim)),
        ("rms_att", (L, dim)),
        ("wq", (L, dim, dim)),
        ("wk", (L, kv, dim)),
        ("wv", (L, kv, dim)),
        ("wo", (L, dim, dim)),
        ("rms_ffn", (L, dim)),
        ("w1", (L, hidden, dim)),
        ("w2", (L, dim, hidden)),
        ("w3", (L, hidden, dim)),
        ("rms_final", (dim,)),
        ("_freq_cis_real", (seq_len * hs // 2,)),
        ("_freq_cis_imag", (seq_len * hs // 2,)),
    ]
    if not shared:
        shapes.append(("wcls", (vocab, dim)))
    floats = np.frombuffer(raw, dtype="<f4", offset=28)
    w = {}
    off = 0
    for name, shape in shapes:
        n = int(np.prod(shape))
        if off + n > floats.size:
            raise ValueError("%s: truncated at tensor %s" % (path, name))
        if not name.startswith("_"):
            w[name] = torch.from_numpy(floats[off:off + n].reshape(shape).copy())
        off += n
    if off != floats.size:
        raise ValueError("%s: %d trailing floats after the last tensor" % (path, floats.size - off))
    if shared:
        w["wcls"] = w["tok_emb"]
    return cfg, w


# --------------------------------------------------------------------------
# tokenizer (llama2.c run.c semantics)


class Tokenizer:
    def __init__(self, path, vocab_size):
        with open(path, "rb") as f:
            raw = f.read()
        (self.max_token_length,) = struct.unpack_from("<i", raw, 0)
        off = 4
        self.pieces = []
        self.scores = []
        for i in range(vocab_size):
            score, n = struct.unpack_from("<fi", raw, off)
            off += 8
            if n < 0 or off + n > len(raw):
                raise ValueError("%s: bad length %d for token %d" % (path, n, i))
            self.pieces.append(raw[off:off + n])
            self.scores.append(score)
            off += n
        if off != len(raw):
            raise ValueError("%s: %d trailing bytes" % (path, len(raw) - off))
        # run.c looks pieces up with bsearch over the sorted vocab; pieces are
        # unique in practice, keep the first id if one ever repeats.
        self.lookup = {}
        for i, p in enumerate(self.pieces):
            self.lookup.setdefault(p, i)

    def encode(self, text, bos=True, eos=False):
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        ids = []
        if bos:
            ids.append(BOS)
        if len(data) > 0:
            ids.append(self.lookup[b" "])  # dummy prefix
        # split into UTF-8 code points exactly like run.c: a new piece starts at
        # every non-continuation byte, and at most 4 bytes are grouped
        i = 0
        while i < len(data):
            j = i + 1
            while j < len(data) and (data[j] & 0xC0) == 0x80 and j - i < 4:
                j += 1
            cp = data[i:j]
            tid = self.lookup.get(cp)
            if tid is not None:
                ids.append(tid)
            else:
                ids.extend(b + 3 for b in cp)  # byte fallback: <0x00> is id 3
            i = j
        # greedy merges: best score wins, leftmost on ties
        while True:
            best_score, best_id, best_idx = -1e10, -1, -1
            for k in range(len(ids) - 1):
                tid = self.lookup.get(self.pieces[ids[k]] + self.pieces[ids[k + 1]])
                if tid is not None and self.scores[tid] > best_score:
                    best_score, best_id, best_idx = self.scores[tid], tid, k
            if best_idx < 0:
                break
            ids[best_idx:best_idx + 2] = [best_id]
        if eos:
            ids.append(EOS)
        return ids

    def decode_piece(self, prev, tid):
        """Bytes printed for tid following prev (run.c decode())."""
        p = self.pieces[tid]
        if prev == BOS and p[:1] == b" ":
            p = p[1:]
        if len(p) == 6 and p.startswith(b"<0x") and p.endswith(b">"):
            try:
                p = bytes([int(p[3:5], 16)])
            except ValueError:
                pass
        return p

    @staticmethod
    def printable(b):
        """run.c safe_printf(): drop single non-printable, non-space bytes."""
        if len(b) == 1 and not (32 <= b[0] < 127 or b[0] in b" \t\n\v\f\r"):
            return b""
        return b

    def decode(self, ids):
        """Text for ids[1:] as run.c prints it while generating after ids[0]."""
        out = b""
        for prev, tid in zip(ids[:-1], ids[1:]):
            out += self.printable(self.decode_piece(prev, tid))
        return out.decode("utf-8", errors="replace")


# --------------------------------------------------------------------------
# model


def rmsnorm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope_tables(cfg, T, start=0, dtype=torch.float32):
    hs = cfg.head_size
    i2 = torch.arange(0, hs, 2, dtype=torch.float64)  # 2i
    freq = 1.0 / (cfg.rope_theta ** (i2 / hs))  # [hs/2]
    pos = torch.arange(start, start + T, dtype=torch.float64)
    ang = pos[:, None] * freq[None, :]  # [T, hs/2]
    return torch.cos(ang).to(dtype), torch.sin(ang).to(dtype)


def apply_rope(x, cos, sin, style):
    """x: [n, T, hs]; cos/sin: [T, hs/2]."""
    if style == "interleaved":
        a, b = x[..., 0::2], x[..., 1::2]
        ra = a * cos - b * sin
        rb = a * sin + b * cos
        return torch.stack((ra, rb), dim=-1).flatten(-2)
    if style == "half":
        h = x.shape[-1] // 2
        a, b = x[..., :h], x[..., h:]
        return torch.cat((a * cos - b * sin, a * sin + b * cos), dim=-1)
    raise ValueError("unknown rope style %r" % style)


class Transformer:
    """Full-sequence forward pass that returns logits and every attention map."""

    def __init__(self, cfg, w, dtype=torch.float32):
        self.cfg = cfg
        self.w = w
        self.dtype = dtype  # torch.float64 for the float64 reference (scripts/ref_logprobs.py)

    def layer_weights(self, l):
        w = self.w
        return (w["rms_att"][l], w["wq"][l], w["wk"][l], w["wv"][l], w["wo"][l],
                w["rms_ffn"][l], w["w1"][l], w["w2"][l], w["w3"][l])

    @torch.no_grad()
    def forward(self, ids, want_attn=True):
        """ids: list/1-D tensor of T token ids.
        Returns (logits [T, V], list of n_layers attention tensors [n_heads, T, T])."""
        cfg = self.cfg
        ids = torch.as_tensor(ids, dtype=torch.long)
        T = ids.shape[0]
        if T > cfg.seq_len:
            raise ValueError("sequence of %d tokens exceeds seq_len %d" % (T, cfg.seq_len))
        nh, nkv, hs = cfg.n_heads, cfg.n_kv_heads, cfg.head_size
        group = nh // nkv
        cos, sin = rope_tables(cfg, T, dtype=self.dtype)
        mask = torch.full((T, T), float("-inf")).triu(1)  # 0 on and below the diagonal
        scale = 1.0 / math.sqrt(hs)
        x = self.w["tok_emb"][ids].to(self.dtype)  # [T, D]
        attns = []
        for l in range(cfg.n_layers):
            rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3 = [t.to(self.dtype) for t in self.layer_weights(l)]
            h = rmsnorm(x, rms_att, cfg.norm_eps)
            q = (h @ wq.t()).view(T, nh, hs).transpose(0, 1)  # [nh, T, hs]
            k = (h @ wk.t()).view(T, nkv, hs).transpose(0, 1)  # [nkv, T, hs]
            v = (h @ wv.t()).view(T, nkv, hs).transpose(0, 1)  # [nkv, T, hs]
            q = apply_rope(q, cos, sin, cfg.rope_style)
            k = apply_rope(k, cos, sin, cfg.rope_style)
            kv_of_head = torch.arange(nh) // group  # query head h uses kv head h // group
            k = k[kv_of_head]  # [nh, T, hs]
            v = v[kv_of_head]
            scores = (q @ k.transpose(1, 2)) * scale + mask  # [nh, T, T]
            att = torch.softmax(scores, dim=-1)
            if want_attn:
                attns.append(att)
            o = (att @ v).transpose(0, 1).reshape(T, nh * hs)  # [T, D]
            x = x + o @ wo.t()
            h = rmsnorm(x, rms_ffn, cfg.norm_eps)
            g = h @ w1.t()
            x = x + (torch.nn.functional.silu(g) * (h @ w3.t())) @ w2.t()
        x = rmsnorm(x, self.w["rms_final"].to(self.dtype), cfg.norm_eps)
        logits = x @ self.w["wcls"].to(self.dtype).t()
        return logits, attns


def greedy(model, prompt_ids, steps):
    """run.c generate() with temperature 0: returns the full id list
    (prompt then generated), stopping early when BOS is produced.
    Full recompute per step (no KV cache) keeps this obviously correct."""
    ids = list(prompt_ids)
    steps = min(steps, model.cfg.seq_len)
    for pos in range(steps):
        if pos < len(prompt_ids) - 1:
            continue  # still forcing the prompt
        logits, _ = model.forward(ids, want_attn=False)
        nxt = int(torch.argmax(logits[-1]))
        if nxt == BOS:
            break
        ids.append(nxt)
    return ids


# --------------------------------------------------------------------------
# main


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", default=os.path.normpath(os.path.join(REPO, "..", "shared")),
                    help="shared data directory (default: ../shared next to the repo)")
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "fixtures"), help="output directory")
    ap.add_argument("--steps", type=int, default=200, help="greedy generation steps (default 200)")
    args = ap.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(1)
    mdir = os.path.join(args.shared, "models", "stories260K")
    cfg, w = load_llama2c(os.path.join(mdir, "stories260K.bin"))
    tok = Tokenizer(os.path.join(mdir, "tok512.bin"), cfg.vocab_size)
    model = Transformer(cfg, w)
    print("model: dim %d hidden %d layers %d heads %d kv_heads %d vocab %d seq_len %d (tied=%s)" % (
        cfg.dim, cfg.hidden_dim, cfg.n_layers, cfg.n_heads, cfg.n_kv_heads, cfg.vocab_size, cfg.seq_len,
        w["wcls"] is w["tok_emb"]))

    # ---- per-prompt reference tensors
    results = []
    for p, text in enumerate(PROMPTS):
        ids = tok.encode(text, bos=True)
        logits, attns = model.forward(ids)
        results.append((ids, logits, attns))
        print("p%d: %d tokens %r" % (p, len(ids), text))
        print("    ids    %s" % ids)
        print("    pieces %s" % [tok.pieces[i].decode("utf-8", "replace") for i in ids])

    def build(rows):
        tensors = {}
        for p, (ids, logits, attns) in enumerate(results):
            tensors["p%d.ids" % p] = np.asarray(ids, dtype=np.int32)
            lg = logits if rows == "all" else logits[-4:]
            tensors["p%d.logits" % p] = lg.numpy().astype(np.float32)
            for l, a in enumerate(attns):
                tensors["p%d.attn.%d" % (p, l)] = a.numpy().astype(np.float32)
        return tensors

    rows = "all"
    tensors = build(rows)
    if sum(t.nbytes for t in tensors.values()) > FIXTURE_BUDGET:
        rows = "last4"
        tensors = build(rows)
    for name, t in tensors.items():  # sanity: causal rows sum to 1, masked entries exactly 0
        if ".attn." in name:
            T = t.shape[-1]
            assert np.allclose(t.sum(-1), 1.0, atol=1e-5), name
            assert (t[:, np.triu_indices(T, 1)[0], np.triu_indices(T, 1)[1]] == 0).all(), name
    metadata = {
        "prompts": json.dumps(PROMPTS, ensure_ascii=False),
        "n_prompts": str(len(PROMPTS)),
        "model": "stories260K",
        "generator": "scripts/ref_llama.py",
        "logits_rows": rows,
        "config": json.dumps(cfg.as_dict()),
        "torch_version": torch.__version__,
    }
    os.makedirs(args.out, exist_ok=True)
    ref_path = os.path.join(args.out, "stories260K_ref.safetensors")
    safetensors_np.write(ref_path, tensors, metadata)
    back, md = safetensors_np.read(ref_path)
    assert md == metadata and set(back) == set(tensors)
    for k in tensors:
        assert np.array_equal(back[k], tensors[k]), k
    print("wrote %s (%d bytes, %d tensors, logits_rows=%s)" % (ref_path, os.path.getsize(ref_path), len(tensors), rows))

    # ---- tokenizer cases
    cases = []
    for c in TOKENIZER_CASES:
        raw = c if isinstance(c, bytes) else c.encode("utf-8")
        try:
            txt = raw.decode("utf-8")
        except UnicodeDecodeError:
            txt = None
        cases.append({"text": txt, "text_hex": raw.hex(), "ids": tok.encode(raw, bos=True)})
    tok_path = os.path.join(args.out, "stories260K_tok.json")
    with open(tok_path + ".tmp", "w", encoding="utf-8") as f:
        f.write("[\n" + ",\n".join(json.dumps(c, ensure_ascii=True) for c in cases) + "\n]\n")
    os.replace(tok_path + ".tmp", tok_path)
    print("wrote %s (%d cases)" % (tok_path, len(cases)))

    # ---- greedy generation from BOS
    ids = greedy(model, [BOS], args.steps)
    text = tok.decode(ids)
    stopped = "BOS" if len(ids) - 1 < min(args.steps, cfg.seq_len) else "steps"
    print("greedy: %d generated tokens (stopped on %s)" % (len(ids) - 1, stopped))
    print("greedy text: %s" % text)
    ok = text.startswith(EXPECTED_GREEDY_PREFIX)
    txt_path = os.path.join(args.out, "stories260K_greedy.txt")
    ids_path = os.path.join(args.out, "stories260K_greedy_ids.json")
    for path, data in ((txt_path, text), (ids_path, json.dumps(ids) + "\n")):
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.write(data)
        os.replace(path + ".tmp", path)
    print("wrote %s (%d bytes), %s (%d bytes)" % (txt_path, os.path.getsize(txt_path), ids_path, os.path.getsize(ids_path)))
    if not ok:
        print("ERROR: greedy text does not start with the published text", file=sys.stderr)
        return 1
    print("greedy text matches the published behaviour")
    return 0


if __name__ == "__main__":
    sys.exit(main())
