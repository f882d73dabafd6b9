#!/usr/bin/python3
"""A tiny random Llama in GGUF, and a float64 forward pass of any quantization of it, for
tests/cli/test_llamacpp_quants.sh. Independent of attnviz: numpy only, plus ggml's own dequantize_row_*
(libggml-base from node-llama-cpp, through ctypes) to expand the quantized weights.

  tiny_llama.py make OUT.gguf          random F32 model, tensor names and metadata as llama.cpp's
                                       convert_hf_to_gguf.py writes them for a Llama checkpoint
  tiny_llama.py types FILE.gguf        "token_embd.weight Q4_K ..." one tensor per line
  tiny_llama.py compare FILE.gguf NAME LLAMA.f32 ATTNVIZ.f32 [ATTNVIZ_SHORT.f32]
                                       float64 logits of the fixed ids; prints PASS/FAIL lines for
                                       (a) attnviz vs llama.cpp within max(1e-3, 2 x llama.cpp's distance
                                       from float64) and (b) attnviz vs float64 within 1e-4 (relative to
                                       the largest |logit|), plus a "# NAME ..." line with the numbers

Environment: LIB = the folder of libggml-base.so (tests/llamacpp/install.sh prints it).
Shape: dim 256, 4 heads of 64 (2 kv heads), ffn 768, 2 layers, vocab 512 (rows of at least 256 values:
llama_model_quantize would otherwise fall back from K-quants to Q5_0/Q8_0).
"""

import ctypes
import os
import struct
import sys

import numpy as np

DIM, HEADS, KV_HEADS, FFN, LAYERS, VOCAB, CTX = 256, 4, 2, 768, 2, 512, 256
EPS, THETA = 1e-5, 10000.0
IDS = [(i * 37 + 11) % (VOCAB - 3) + 3 for i in range(40)]  # the fixed sequence (also in llama_ref.c)
SHORT = 6  # attnviz also runs the first SHORT ids alone: the matrix-vector path

# ---- GGUF writing and reading (the subset this model needs) ----
T_U32, T_F32, T_BOOL, T_STR, T_ARR, T_I32 = 4, 6, 7, 8, 9, 5
GGML_NAMES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 10: "Q2_K", 11: "Q3_K",
              12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 20: "IQ4_NL", 23: "IQ4_XS", 30: "BF16"}
# (values per block, bytes per block) and the ggml function that expands a row
GGML_LAYOUT = {0: (1, 4, None), 1: (1, 2, "ggml_fp16_to_fp32_row"), 30: (1, 2, "ggml_bf16_to_fp32_row"),
               2: (32, 18, "dequantize_row_q4_0"), 3: (32, 20, "dequantize_row_q4_1"),
               6: (32, 22, "dequantize_row_q5_0"), 7: (32, 24, "dequantize_row_q5_1"),
               8: (32, 34, "dequantize_row_q8_0"), 10: (256, 84, "dequantize_row_q2_K"),
               11: (256, 110, "dequantize_row_q3_K"), 12: (256, 144, "dequantize_row_q4_K"),
               13: (256, 176, "dequantize_row_q5_K"), 14: (256, 210, "dequantize_row_q6_K"),
               20: (32, 18, "dequantize_row_iq4_nl"), 23: (256, 136, "dequantize_row_iq4_xs")}


def s_str(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def kv(key, typ, val):
    out = s_str(key) + struct.pack("<I", typ)
    if typ == T_STR:
        return out + s_str(val)
    if typ == T_ARR:
        et, items = val
        out += struct.pack("<IQ", et, len(items))
        fmt = {T_F32: "<f", T_I32: "<i"}
        return out + b"".join(s_str(x) if et == T_STR else struct.pack(fmt[et], x) for x in items)
    return out + struct.pack({T_U32: "<I", T_F32: "<f", T_BOOL: "<?"}[typ], val)


def vocabulary():
    tokens, types = ["<unk>", "<s>", "</s>"], [2, 3, 3]
    tokens += ["<0x%02X>" % b for b in range(256)]
    types += [6] * 256
    while len(tokens) < VOCAB:
        tokens.append("\u2581w%d" % len(tokens))
        types.append(1)
    return tokens, [-float(i) for i in range(VOCAB)], types


def make(path):
    rng = np.random.default_rng(1234)
    mats = [("token_embd.weight", (VOCAB, DIM))]
    for l in range(LAYERS):
        hd = DIM // HEADS
        mats += [(f"blk.{l}.attn_norm.weight", (DIM,)), (f"blk.{l}.attn_q.weight", (DIM, DIM)),
                 (f"blk.{l}.attn_k.weight", (KV_HEADS * hd, DIM)), (f"blk.{l}.attn_v.weight", (KV_HEADS * hd, DIM)),
                 (f"blk.{l}.attn_output.weight", (DIM, DIM)), (f"blk.{l}.ffn_norm.weight", (DIM,)),
                 (f"blk.{l}.ffn_gate.weight", (FFN, DIM)), (f"blk.{l}.ffn_down.weight", (DIM, FFN)),
                 (f"blk.{l}.ffn_up.weight", (FFN, DIM))]
    mats += [("output_norm.weight", (DIM,)), ("output.weight", (VOCAB, DIM))]
    data = []
    for name, shape in mats:
        if len(shape) == 1:
            data.append((1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32))
        else:
            std = 0.6 if name == "token_embd.weight" else 1.0 / np.sqrt(shape[1])
            data.append((std * rng.standard_normal(shape)).astype(np.float32))
    tokens, scores, types = vocabulary()
    kvs = [kv("general.architecture", T_STR, "llama"), kv("general.name", T_STR, "tiny-llama"),
           kv("general.file_type", T_U32, 0), kv("general.quantization_version", T_U32, 2),
           kv("llama.vocab_size", T_U32, VOCAB), kv("llama.context_length", T_U32, CTX),
           kv("llama.embedding_length", T_U32, DIM), kv("llama.block_count", T_U32, LAYERS),
           kv("llama.feed_forward_length", T_U32, FFN), kv("llama.rope.dimension_count", T_U32, DIM // HEADS),
           kv("llama.attention.head_count", T_U32, HEADS), kv("llama.attention.head_count_kv", T_U32, KV_HEADS),
           kv("llama.attention.layer_norm_rms_epsilon", T_F32, EPS), kv("llama.rope.freq_base", T_F32, THETA),
           kv("tokenizer.ggml.model", T_STR, "llama"), kv("tokenizer.ggml.tokens", T_ARR, (T_STR, tokens)),
           kv("tokenizer.ggml.scores", T_ARR, (T_F32, scores)), kv("tokenizer.ggml.token_type", T_ARR, (T_I32, types)),
           kv("tokenizer.ggml.bos_token_id", T_U32, 1), kv("tokenizer.ggml.eos_token_id", T_U32, 2),
           kv("tokenizer.ggml.unknown_token_id", T_U32, 0), kv("tokenizer.ggml.add_bos_token", T_BOOL, True),
           kv("tokenizer.ggml.add_eos_token", T_BOOL, False)]
    head = b"GGUF" + struct.pack("<IQQ", 3, len(mats), len(kvs)) + b"".join(kvs)
    offset = 0
    for (name, shape), arr in zip(mats, data):
        head += s_str(name) + struct.pack("<I", len(shape)) + b"".join(struct.pack("<Q", d) for d in shape[::-1])
        head += struct.pack("<IQ", 0, offset)
        offset += (arr.nbytes + 31) // 32 * 32
    with open(path, "wb") as f:
        f.write(head + b"\0" * ((32 - len(head) % 32) % 32))
        for arr in data:
            f.write(arr.tobytes() + b"\0" * ((32 - arr.nbytes % 32) % 32))


def read_gguf(path):
    """{name: (ggml type, ne list, bytes)} and the alignment-resolved data of each tensor."""
    buf = open(path, "rb").read()
    pos = 4
    version, n_t, n_kv = struct.unpack_from("<IQQ", buf, pos)
    pos += 20
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    meta = {}

    def value(typ):
        nonlocal pos
        if typ == T_STR:
            n = struct.unpack_from("<Q", buf, pos)[0]
            pos += 8 + n
            return buf[pos - n:pos].decode("utf-8", "replace")
        if typ == T_ARR:
            et, n = struct.unpack_from("<IQ", buf, pos)
            pos += 12
            return [value(et) for _ in range(n)]
        v = struct.unpack_from({4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d", 0: "<B",
                                1: "<b", 2: "<H", 3: "<h"}[typ], buf, pos)[0]
        pos += sizes[typ]
        return v

    for _ in range(n_kv):
        key = value(T_STR)
        typ = struct.unpack_from("<I", buf, pos)[0]
        pos += 4
        meta[key] = value(typ)
    infos = []
    for _ in range(n_t):
        name = value(T_STR)
        nd = struct.unpack_from("<I", buf, pos)[0]
        ne = list(struct.unpack_from("<%dQ" % nd, buf, pos + 4))
        typ, off = struct.unpack_from("<IQ", buf, pos + 4 + 8 * nd)
        pos += 4 + 8 * nd + 12
        infos.append((name, typ, ne, off))
    align = meta.get("general.alignment", 32)
    start = (pos + align - 1) // align * align
    return meta, {name: (typ, ne, buf, start + off) for name, typ, ne, off in infos}


def dequantize(ggml, typ, ne, buf, off):
    """The tensor as float64 (rows outermost), expanded by ggml's own row function."""
    n = int(np.prod(ne))
    block, bbytes, fn = GGML_LAYOUT[typ]
    raw = buf[off:off + n // block * bbytes]
    if fn is None:
        out = np.frombuffer(raw, dtype=np.float32).copy()
    else:
        out = np.empty(n, dtype=np.float32)
        src = ctypes.create_string_buffer(raw, len(raw))
        getattr(ggml, fn)(src, out.ctypes.data_as(ctypes.c_void_p), ctypes.c_int64(n))
    return out.astype(np.float64).reshape(ne[::-1])


def rmsnorm(x, w):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + EPS) * w


def rope(x, heads):
    """GGUF llama order: pairs (2i, 2i+1) of each head rotated by pos * theta^(-2i/hd)."""
    t, hd = x.shape[0], DIM // HEADS
    y = x.reshape(t, heads, hd // 2, 2)
    freq = THETA ** (-np.arange(0, hd, 2, dtype=np.float64) / hd)
    ang = np.arange(t, dtype=np.float64)[:, None] * freq[None, :]
    c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    out = np.stack([y[..., 0] * c - y[..., 1] * s, y[..., 0] * s + y[..., 1] * c], axis=-1)
    return out.reshape(t, heads * hd)


def forward(W, ids):
    hd, t = DIM // HEADS, len(ids)
    x = W["token_embd.weight"][ids]
    mask = np.triu(np.full((t, t), -np.inf), 1)
    for l in range(LAYERS):
        p = f"blk.{l}."
        h = rmsnorm(x, W[p + "attn_norm.weight"])
        q = rope(h @ W[p + "attn_q.weight"].T, HEADS)
        k = rope(h @ W[p + "attn_k.weight"].T, KV_HEADS)
        v = h @ W[p + "attn_v.weight"].T
        out = np.empty((t, DIM))
        for hh in range(HEADS):
            g = hh // (HEADS // KV_HEADS)
            s = q[:, hh * hd:(hh + 1) * hd] @ k[:, g * hd:(g + 1) * hd].T / np.sqrt(hd) + mask
            a = np.exp(s - s.max(axis=1, keepdims=True))
            a /= a.sum(axis=1, keepdims=True)
            out[:, hh * hd:(hh + 1) * hd] = a @ v[:, g * hd:(g + 1) * hd]
        x = x + out @ W[p + "attn_output.weight"].T
        h = rmsnorm(x, W[p + "ffn_norm.weight"])
        gate, up = h @ W[p + "ffn_gate.weight"].T, h @ W[p + "ffn_up.weight"].T
        x = x + (gate / (1 + np.exp(-gate)) * up) @ W[p + "ffn_down.weight"].T
    return rmsnorm(x, W["output_norm.weight"]) @ W["output.weight"].T


def load_logits(path, t):
    a = np.fromfile(path, dtype=np.float32).astype(np.float64)
    return a.reshape(t, VOCAB) if a.size == t * VOCAB else None


def compare(path, name, llama_path, av_path, av_short_path=None):
    ggml = ctypes.CDLL(os.path.join(os.environ["LIB"], "libggml-base.so"))
    _, tensors = read_gguf(path)
    W = {k: dequantize(ggml, *v) for k, v in tensors.items()}
    exact = forward(W, IDS)
    scale = np.abs(exact).max()
    llama, av = load_logits(llama_path, len(IDS)), load_logits(av_path, len(IDS))
    if llama is None or av is None:
        print(f"FAIL llamacpp_logits_{name}: logits files of the wrong size")
        return
    rel = lambda a, b: float(np.abs(a - b).max() / scale)
    d_llama, d_av, d_av_llama = rel(llama, exact), rel(av, exact), rel(av, llama)
    tol_a = max(1e-3, 2 * d_llama)
    d_short = 0.0
    if av_short_path:
        short = np.fromfile(av_short_path, dtype=np.float32).astype(np.float64).reshape(SHORT, VOCAB)
        d_short = rel(short, forward(W, IDS[:SHORT]))
    print(f"# {name}: |llama.cpp - f64| {d_llama:.2e}, |attnviz - f64| {d_av:.2e} (first {SHORT} ids alone "
          f"{d_short:.2e}), |attnviz - llama.cpp| {d_av_llama:.2e} (relative to max |logit| {scale:.3f})")
    ok_a, ok_b = d_av_llama <= tol_a, max(d_av, d_short) <= 1e-4
    print(("PASS" if ok_a else "FAIL") + f" llamacpp_logits_{name}_vs_llamacpp" +
          ("" if ok_a else f": {d_av_llama:.3e} > max(1e-3, 2 x {d_llama:.3e})"))
    print(("PASS" if ok_b else "FAIL") + f" llamacpp_logits_{name}_vs_float64" +
          ("" if ok_b else f": {max(d_av, d_short):.3e} > 1e-4"))


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "make":
        make(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "types":
        _, tensors = read_gguf(sys.argv[2])
        for k, v in tensors.items():
            print(k, GGML_NAMES.get(v[0], str(v[0])))
    elif len(sys.argv) in (6, 7) and sys.argv[1] == "compare":
        compare(*sys.argv[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
