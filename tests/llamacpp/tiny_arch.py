#!/usr/bin/python3
"""Tiny random decoders of every architecture attnviz reads, in GGUF (llama.cpp's tensor names and the metadata
keys convert_hf_to_gguf.py writes for a real checkpoint of the family) and as the same weights in a Hugging Face
directory, plus a float64 forward pass of any GGUF of them, for tests/cli/test_llamacpp_arch.sh. Independent of
attnviz: numpy only, and ggml's own dequantize_row_* (libggml-base from node-llama-cpp, through ctypes) to
expand quantized weights. The forward pass reads its whole configuration from the file's metadata and applies
llama.cpp's defaults where a key is absent, so it also checks what `attnviz convert` writes.

  tiny_arch.py archs                        the architecture names, one a line
  tiny_arch.py make ARCH OUT.gguf HFDIR     random F32 model as GGUF and as a Hugging Face directory
  tiny_arch.py compare ARCH REF.gguf DIR NAME...
        for each NAME: DIR/NAME.gguf (or, without one, the weights of REF.gguf) against DIR/NAME.llama.f32
        (llama.cpp's logits, optional), DIR/NAME.av.f32 and DIR/NAME.av_short.f32 (attnviz's): prints
        "# ARCH NAME ..." with the distances and PASS/FAIL lines for (a) attnviz vs llama.cpp within
        max(1e-3, 2 x llama.cpp's distance from float64) and (b) attnviz vs float64 within 1e-4, relative to
        the largest |logit|

Environment: LIB = the folder of libggml-base.so (tests/llamacpp/install.sh prints it).
Shapes: width 256, 2 layers (Gemma 3: 6, its local/global pattern), vocab 512, rows of at least 256 values so
llama_model_quantize keeps K-quants. Where a real model's effect would not show in 40 tokens, the tiny one
makes it show: sliding windows of 8, soft-caps of 5 and 3, Llama 3 scaling from an original context of 64.
"""

import ctypes
import json
import math
import os
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts"))
import safetensors_np  # noqa: E402

DIM, VOCAB, CTX = 256, 512, 4096
IDS = [(i * 37 + 11) % (VOCAB - 3) + 3 for i in range(40)]  # the fixed sequence (also in llama_ref.c)
SHORT = 6  # attnviz also runs the first SHORT ids alone: the matrix-vector path

# Per architecture: GGUF name, HF model_type and class, shapes and features (what a real file of it has).
ARCHS = {
    "llama": dict(gguf="llama", hf="llama", cls="LlamaForCausalLM", layers=2, heads=4, kv=2, hd=64, ff=768,
                  theta=10000.0, meta_rope=True, llama3=dict(factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                                             original_max_position_embeddings=64)),
    "mixtral": dict(gguf="llama", hf="mixtral", cls="MixtralForCausalLM", layers=2, heads=4, kv=2, hd=64, ff=256,
                    theta=1e6, meta_rope=True, experts=4, used=2),
    "qwen2": dict(gguf="qwen2", hf="qwen2", cls="Qwen2ForCausalLM", layers=2, heads=4, kv=2, hd=64, ff=768,
                  theta=1e6, qkv_bias=True, tied=True),
    "qwen3": dict(gguf="qwen3", hf="qwen3", cls="Qwen3ForCausalLM", layers=2, heads=8, kv=2, hd=64, ff=768,
                  theta=1e6, qk_norm=True, head_dim_key=True),
    "qwen3moe": dict(gguf="qwen3moe", hf="qwen3_moe", cls="Qwen3MoeForCausalLM", layers=2, heads=8, kv=2, hd=64,
                     ff=768, theta=1e6, qk_norm=True, head_dim_key=True, experts=4, used=2, expert_ff=256),
    "gemma": dict(gguf="gemma", hf="gemma", cls="GemmaForCausalLM", layers=2, heads=4, kv=1, hd=64, ff=768,
                  gemma=True, tied=True, head_dim_key=True),
    "gemma2": dict(gguf="gemma2", hf="gemma2", cls="Gemma2ForCausalLM", layers=2, heads=4, kv=2, hd=128, ff=768,
                   gemma=True, tied=True, head_dim_key=True, sandwich=True, window=8, attn_cap=5.0, final_cap=3.0),
    "gemma3": dict(gguf="gemma3", hf="gemma3_text", cls="Gemma3ForCausalLM", layers=6, heads=4, kv=2, hd=64,
                   ff=768, gemma=True, tied=True, head_dim_key=True, sandwich=True, qk_norm=True, window=8,
                   theta=1e6, theta_swa=10000.0, linear=8.0),
    "phi3": dict(gguf="phi3", hf="phi3", cls="Phi3ForCausalLM", layers=2, heads=4, kv=4, hd=64, ff=768,
                 theta=10000.0, fused=True, longrope=True, ctx=131072, orig_ctx=4096),
}

# ---- GGUF writing and reading (the subset these models need) ----
T_U32, T_I32, T_F32, T_BOOL, T_STR, T_ARR = 4, 5, 6, 7, 8, 9
GGML_NAMES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 10: "Q2_K", 11: "Q3_K",
              12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 20: "IQ4_NL", 23: "IQ4_XS", 30: "BF16"}
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
        return out + b"".join(s_str(x) if et == T_STR else struct.pack({T_F32: "<f", T_I32: "<i"}[et], x)
                              for x in items)
    return out + struct.pack({T_U32: "<I", T_F32: "<f", T_BOOL: "<?"}[typ], val)


def vocabulary():
    tokens, types = ["<unk>", "<s>", "</s>"], [2, 3, 3]
    tokens += ["<0x%02X>" % b for b in range(256)]
    types += [6] * 256
    tokens.append("<|endoftext|>")  # llama.cpp looks it up in files named phi3
    types.append(3)
    while len(tokens) < VOCAB:
        tokens.append("\u2581w%d" % len(tokens))
        types.append(1)
    return tokens, [-float(i) for i in range(VOCAB)], types


def write_gguf(path, kvs, tensors):
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs)
    offset = 0
    for name, arr in tensors:
        head += s_str(name) + struct.pack("<I", arr.ndim) + b"".join(struct.pack("<Q", d) for d in arr.shape[::-1])
        head += struct.pack("<IQ", 0, offset)
        offset += (arr.nbytes + 31) // 32 * 32
    with open(path, "wb") as f:
        f.write(head + b"\0" * ((32 - len(head) % 32) % 32))
        for _, arr in tensors:
            f.write(arr.tobytes() + b"\0" * ((32 - arr.nbytes % 32) % 32))


def read_gguf(path):
    """(metadata dict, {name: (ggml type, ne list, buffer, offset)})"""
    buf = open(path, "rb").read()
    pos = 4
    _, n_t, n_kv = struct.unpack_from("<IQQ", buf, pos)
    pos += 20
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    fmts = {4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d", 0: "<B", 1: "<b", 2: "<H", 3: "<h"}
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
        v = struct.unpack_from(fmts[typ], buf, pos)[0]
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
    """The tensor as float64 (outermost dimension first), expanded by ggml's own row function."""
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


# ---- making a model ----


def llama3_factors(theta, hd, s):
    """Llama 3.1's RoPE divisors, as convert_hf_to_gguf.py computes rope_freqs from config.json."""
    out = []
    for i in range(0, hd, 2):
        freq = 1.0 / theta ** (i / hd)
        wavelen = 2 * math.pi / freq
        ctx = s["original_max_position_embeddings"]
        if wavelen < ctx / s["high_freq_factor"]:
            out.append(1.0)
        elif wavelen > ctx / s["low_freq_factor"]:
            out.append(s["factor"])
        else:
            smooth = (ctx / wavelen - s["low_freq_factor"]) / (s["high_freq_factor"] - s["low_freq_factor"])
            out.append(1 / ((1 - smooth) / s["factor"] + smooth))
    return np.array(out, dtype=np.float32)


def gguf_keys(a, meta_name):
    g, p = a["gguf"], a["gguf"] + "."
    hd, ff = a["hd"], a["ff"]
    kvs = [kv("general.architecture", T_STR, g), kv("general.name", T_STR, "tiny-" + meta_name),
           kv("general.file_type", T_U32, 0), kv("general.quantization_version", T_U32, 2),
           kv(p + "context_length", T_U32, a.get("ctx", CTX)), kv(p + "embedding_length", T_U32, DIM),
           kv(p + "block_count", T_U32, a["layers"]), kv(p + "feed_forward_length", T_U32, ff),
           kv(p + "attention.head_count", T_U32, a["heads"]), kv(p + "attention.head_count_kv", T_U32, a["kv"]),
           kv(p + "attention.layer_norm_rms_epsilon", T_F32, 1e-6)]
    if "theta" in a:
        kvs.append(kv(p + "rope.freq_base", T_F32, a["theta"]))
    if g == "llama":
        kvs += [kv(p + "vocab_size", T_U32, VOCAB), kv(p + "rope.dimension_count", T_U32, hd)]
    if a.get("head_dim_key"):
        kvs += [kv(p + "attention.key_length", T_U32, hd), kv(p + "attention.value_length", T_U32, hd)]
    if a.get("experts"):
        kvs += [kv(p + "expert_count", T_U32, a["experts"]), kv(p + "expert_used_count", T_U32, a["used"])]
    if a.get("expert_ff"):
        kvs.append(kv(p + "expert_feed_forward_length", T_U32, a["expert_ff"]))
    if g == "gemma2":
        kvs += [kv(p + "attn_logit_softcapping", T_F32, a["attn_cap"]),
                kv(p + "final_logit_softcapping", T_F32, a["final_cap"]),
                kv(p + "attention.sliding_window", T_U32, a["window"])]
    if g == "gemma3":
        kvs += [kv(p + "rope.scaling.type", T_STR, "linear"), kv(p + "rope.scaling.factor", T_F32, a["linear"]),
                kv(p + "rope.freq_base_swa", T_F32, a["theta_swa"]),
                kv(p + "attention.sliding_window", T_U32, a["window"])]
    if g == "phi3":
        kvs += [kv(p + "rope.scaling.original_context_length", T_U32, a["orig_ctx"]),
                kv(p + "rope.dimension_count", T_U32, hd), kv(p + "attention.sliding_window", T_U32, 262144),
                kv(p + "rope.scaling.attn_factor", T_F32, phi3_attn_factor(a))]
    tokens, scores, types = vocabulary()
    kvs += [kv("tokenizer.ggml.model", T_STR, "llama"), kv("tokenizer.ggml.tokens", T_ARR, (T_STR, tokens)),
            kv("tokenizer.ggml.scores", T_ARR, (T_F32, scores)),
            kv("tokenizer.ggml.token_type", T_ARR, (T_I32, types)), kv("tokenizer.ggml.bos_token_id", T_U32, 1),
            kv("tokenizer.ggml.eos_token_id", T_U32, 2), kv("tokenizer.ggml.unknown_token_id", T_U32, 0),
            kv("tokenizer.ggml.add_bos_token", T_BOOL, True), kv("tokenizer.ggml.add_eos_token", T_BOOL, False)]
    return kvs


def phi3_attn_factor(a):
    scale = a["ctx"] / a["orig_ctx"]
    return math.sqrt(1 + math.log(scale) / math.log(a["orig_ctx"]))


def gguf_tensors(a, rng):
    """[(name, float32 array)] in GGUF's names and conventions (norms of Gemma stored as 1 + w)."""
    hd, H, KV = a["hd"], a["heads"], a["kv"]
    ff = a.get("expert_ff", a["ff"]) if a.get("experts") else a["ff"]
    norm_mean = 1.0  # Gemma's GGUF norms hold 1 + w with w around 0: the same values

    def mat(rows, cols, std=None):
        return ((std or 1.0 / np.sqrt(cols)) * rng.standard_normal((rows, cols))).astype(np.float32)

    def vec(n, mean=norm_mean, std=0.1):
        return (mean + std * rng.standard_normal(n)).astype(np.float32)

    out = [("token_embd.weight", (0.6 * rng.standard_normal((VOCAB, DIM))).astype(np.float32))]
    if a.get("llama3"):
        out.append(("rope_freqs.weight", llama3_factors(a["theta"], hd, a["llama3"])))
    if a.get("longrope"):
        out += [("rope_factors_long.weight", (1 + 9 * rng.random(hd // 2)).astype(np.float32)),
                ("rope_factors_short.weight", (1 + rng.random(hd // 2)).astype(np.float32))]
    for l in range(a["layers"]):
        p = "blk.%d." % l
        out.append((p + "attn_norm.weight", vec(DIM)))
        if a.get("fused"):
            out.append((p + "attn_qkv.weight", mat(H * hd + 2 * KV * hd, DIM)))
        else:
            out += [(p + "attn_q.weight", mat(H * hd, DIM)), (p + "attn_k.weight", mat(KV * hd, DIM)),
                    (p + "attn_v.weight", mat(KV * hd, DIM))]
            if a.get("qkv_bias"):
                out += [(p + "attn_q.bias", vec(H * hd, 0.0, 0.5)), (p + "attn_k.bias", vec(KV * hd, 0.0, 0.5)),
                        (p + "attn_v.bias", vec(KV * hd, 0.0, 0.5))]
        out.append((p + "attn_output.weight", mat(DIM, H * hd)))
        if a.get("qk_norm"):
            out += [(p + "attn_q_norm.weight", vec(hd)), (p + "attn_k_norm.weight", vec(hd))]
        if a.get("sandwich"):
            out.append((p + "post_attention_norm.weight", vec(DIM)))
        out.append((p + "ffn_norm.weight", vec(DIM)))
        if a.get("experts"):
            E = a["experts"]
            out += [(p + "ffn_gate_inp.weight", mat(E, DIM, 0.5)),
                    (p + "ffn_gate_exps.weight", np.stack([mat(ff, DIM) for _ in range(E)])),
                    (p + "ffn_up_exps.weight", np.stack([mat(ff, DIM) for _ in range(E)])),
                    (p + "ffn_down_exps.weight", np.stack([mat(DIM, ff) for _ in range(E)]))]
        elif a.get("fused"):
            out += [(p + "ffn_up.weight", mat(2 * ff, DIM)), (p + "ffn_down.weight", mat(DIM, ff))]
        else:
            out += [(p + "ffn_gate.weight", mat(ff, DIM)), (p + "ffn_up.weight", mat(ff, DIM)),
                    (p + "ffn_down.weight", mat(DIM, ff))]
        if a.get("sandwich"):
            out.append((p + "post_ffw_norm.weight", vec(DIM)))
    out.append(("output_norm.weight", vec(DIM)))
    if not a.get("tied"):
        out.append(("output.weight", mat(VOCAB, DIM, 0.4)))
    return out


HF_LAYER = {"attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
            "attn_v": "self_attn.v_proj", "attn_qkv": "self_attn.qkv_proj", "attn_output": "self_attn.o_proj",
            "attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm", "ffn_gate": "mlp.gate_proj",
            "ffn_down": "mlp.down_proj", "post_attention_norm": "post_attention_layernorm",
            "post_ffw_norm": "post_feedforward_layernorm"}


def hf_name(a, l, part):
    """The HF name(s) of GGUF tensor blk.l.part (experts: one per expert, with the expert index to fill)."""
    sandwich = a.get("sandwich")
    if part == "ffn_norm.weight":
        return "model.layers.%d.%s.weight" % (l, "pre_feedforward_layernorm" if sandwich else
                                              "post_attention_layernorm")
    if part == "ffn_up.weight":
        return "model.layers.%d.mlp.%s.weight" % (l, "gate_up_proj" if a.get("fused") else "up_proj")
    if part == "ffn_gate_inp.weight":
        return "model.layers.%d.%s.weight" % (l, "block_sparse_moe.gate" if a["hf"] == "mixtral" else "mlp.gate")
    if part.endswith("_exps.weight"):
        which = part.split("_")[1]
        if a["hf"] == "mixtral":
            return "model.layers.%d.block_sparse_moe.experts.%%d.%s.weight" % (l, {"gate": "w1", "up": "w3",
                                                                                  "down": "w2"}[which])
        return "model.layers.%d.mlp.experts.%%d.%s_proj.weight" % (l, which)
    base, kind = part.rsplit(".", 1)
    return "model.layers.%d.%s.%s" % (l, HF_LAYER[base], kind)


def unpermute(w, heads):
    """GGUF llama's q/k rows (Meta's pair order) back to Hugging Face's rotate-half order."""
    return w.reshape(heads, w.shape[0] // heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def hf_tensors(a, tensors):
    out = {}
    for name, arr in tensors:
        if name.startswith("rope_"):
            continue
        if a.get("gemma") and name.endswith("norm.weight"):
            arr = (arr - 1.0).astype(np.float32)  # HF Gemma norms scale by 1 + w
        if not name.startswith("blk."):
            out[{"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
                 "output.weight": "lm_head.weight"}[name]] = arr
            continue
        l, part = int(name.split(".")[1]), name.split(".", 2)[2]
        if a.get("meta_rope") and part in ("attn_q.weight", "attn_k.weight"):
            arr = unpermute(arr, a["heads"] if part == "attn_q.weight" else a["kv"])
        target = hf_name(a, l, part)
        if "%d" in target:
            for e in range(arr.shape[0]):
                out[target % e] = np.ascontiguousarray(arr[e])
        else:
            out[target] = arr
    return out


def hf_config(a):
    c = {"architectures": [a["cls"]], "model_type": a["hf"], "hidden_size": DIM, "intermediate_size": a["ff"],
         "num_hidden_layers": a["layers"], "num_attention_heads": a["heads"], "num_key_value_heads": a["kv"],
         "head_dim": a["hd"], "max_position_embeddings": a.get("ctx", CTX), "vocab_size": VOCAB,
         "rms_norm_eps": 1e-6, "rope_theta": a.get("theta", 10000.0), "tie_word_embeddings": bool(a.get("tied")),
         "hidden_act": "gelu_pytorch_tanh" if a.get("gemma") else "silu", "bos_token_id": 1, "eos_token_id": 2,
         "torch_dtype": "float32"}
    if a.get("llama3"):
        c["rope_scaling"] = dict(a["llama3"], rope_type="llama3")
    if a.get("experts"):
        c.update({"num_local_experts" if a["hf"] == "mixtral" else "num_experts": a["experts"],
                  "num_experts_per_tok": a["used"]})
    if a["hf"] == "qwen3_moe":
        c.update({"moe_intermediate_size": a["expert_ff"], "norm_topk_prob": True, "decoder_sparse_step": 1,
                  "mlp_only_layers": []})
    if a.get("gemma"):
        c["hidden_activation"] = "gelu_pytorch_tanh"
    if a["hf"] in ("gemma2", "gemma3_text"):
        c.update({"query_pre_attn_scalar": a["hd"], "sliding_window": a["window"]})
    if a["hf"] == "gemma2":
        c.update({"attn_logit_softcapping": a["attn_cap"], "final_logit_softcapping": a["final_cap"]})
    if a["hf"] == "gemma3_text":
        c.update({"rope_scaling": {"rope_type": "linear", "factor": a["linear"]},
                  "rope_local_base_freq": a["theta_swa"], "sliding_window_pattern": 6,
                  "attn_logit_softcapping": None, "final_logit_softcapping": None})
    if a["hf"] == "phi3":
        c.update({"original_max_position_embeddings": a["orig_ctx"], "sliding_window": 262144})
    return c


def make(arch, path, hf_dir):
    a = ARCHS[arch]
    rng = np.random.default_rng(sorted(ARCHS).index(arch) + 1234)
    tensors = gguf_tensors(a, rng)
    write_gguf(path, gguf_keys(a, arch), tensors)
    os.makedirs(hf_dir, exist_ok=True)
    cfg = hf_config(a)
    if a.get("longrope"):
        t = dict(tensors)
        cfg["rope_scaling"] = {"type": "longrope", "short_factor": [float(x) for x in t["rope_factors_short.weight"]],
                               "long_factor": [float(x) for x in t["rope_factors_long.weight"]]}
    with open(os.path.join(hf_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    safetensors_np.write(os.path.join(hf_dir, "model.safetensors"), hf_tensors(a, tensors), {"format": "pt"})
    write_tokenizer_bin(os.path.join(hf_dir, "tokenizer.bin"))


def write_tokenizer_bin(path):
    """The vocabulary as a llama2.c tokenizer (pieces with SentencePiece's U+2581 written as a space), which
    attnviz reads next to Hugging Face weights and writes back as GGUF metadata on convert."""
    tokens, scores, _ = vocabulary()
    pieces = [t.replace("\u2581", " ").encode() for t in tokens]
    with open(path, "wb") as f:
        f.write(struct.pack("<i", max(len(p) for p in pieces)))
        for p, sc in zip(pieces, scores):
            f.write(struct.pack("<fi", sc, len(p)) + p)


# ---- the float64 forward pass of a GGUF, as llama.cpp defines each architecture ----


def config(meta):
    """What the forward pass needs, from the metadata alone, with llama.cpp's defaults."""
    g = meta["general.architecture"]

    def key(k, default=None):
        return meta.get(g + "." + k, default)

    dim, H = key("embedding_length"), key("attention.head_count")
    c = dict(arch=g, dim=dim, layers=key("block_count"), heads=H, kv=key("attention.head_count_kv", H),
             hd=key("attention.key_length", dim // H), eps=key("attention.layer_norm_rms_epsilon"),
             theta=key("rope.freq_base", 10000.0), experts=key("expert_count", 0), used=key("expert_used_count", 0),
             attn_factor=key("rope.scaling.attn_factor", 1.0), softcap=0.0, final_cap=0.0, window=0,
             theta_swa=None, scale_swa=1.0, gemma=g.startswith("gemma"))
    c["rot"] = key("rope.dimension_count", c["hd"])
    scaling, factor = key("rope.scaling.type", "linear"), key("rope.scaling.factor", 0.0)
    c["freq_scale"] = 1.0 / factor if scaling == "linear" and factor else 1.0
    c["scale"] = 1.0 / math.sqrt(c["hd"])
    period = 0
    if g == "gemma2":
        c.update(softcap=key("attn_logit_softcapping", 50.0), final_cap=key("final_logit_softcapping", 30.0),
                 window=key("attention.sliding_window", 4096), theta_swa=key("rope.freq_base_swa", c["theta"]),
                 scale_swa=c["freq_scale"])
        period = key("attention.sliding_window_pattern", 2)
        if c["layers"] == 46:
            c["scale"] = 1.0 / math.sqrt(dim / H)
    if g == "gemma3":
        c.update(final_cap=key("final_logit_softcapping", 0.0), window=key("attention.sliding_window", 0))
        if c["window"]:
            period = key("attention.sliding_window_pattern", 6)
            c["theta_swa"] = key("rope.freq_base_swa", 10000.0)
        if c["layers"] == 62:
            c["scale"] = 1.0 / math.sqrt(dim / H)
    c["sliding"] = [bool(c["window"]) and (period == 0 or l % period < period - 1) for l in range(c["layers"])]
    c["neox"] = g != "llama"
    return c


def rmsnorm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope(x, heads, hd, c, theta, freq_scale, factors):
    """Rotates the first c["rot"] values of each head: pairs (2i, 2i+1) (llama) or (i, i + rot/2) (neox) by
    pos * theta^(-2i/rot) * freq_scale / factors[i]; cos and sin times attn_factor."""
    t, rot = x.shape[0], c["rot"]
    y = x.reshape(t, heads, hd).copy()
    inv = theta ** (-np.arange(0, rot, 2, dtype=np.float64) / rot) * freq_scale
    if factors is not None:
        inv = inv / factors
    ang = np.arange(t, dtype=np.float64)[:, None] * inv[None, :]
    cos, sin = np.cos(ang)[:, None, :] * c["attn_factor"], np.sin(ang)[:, None, :] * c["attn_factor"]
    if c["neox"]:
        a, b = y[..., :rot // 2].copy(), y[..., rot // 2:rot].copy()
        y[..., :rot // 2], y[..., rot // 2:rot] = a * cos - b * sin, a * sin + b * cos
    else:
        a, b = y[..., 0:rot:2].copy(), y[..., 1:rot:2].copy()
        y[..., 0:rot:2], y[..., 1:rot:2] = a * cos - b * sin, a * sin + b * cos
    return y.reshape(t, heads * hd)


def act(x, gemma):
    if gemma:
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    return x / (1 + np.exp(-x))


def ffn(W, p, h, c):
    if c["experts"]:
        logits = h @ W[p + "ffn_gate_inp.weight"].T
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        weights = np.zeros_like(probs)  # (tokens, experts): the chosen ones renormalized, as llama.cpp does
        for t in range(h.shape[0]):
            top = np.argsort(-probs[t], kind="stable")[:c["used"]]
            weights[t, top] = probs[t, top] / probs[t, top].sum()
        out = np.zeros_like(h)
        for e in range(c["experts"]):
            g, u = h @ W[p + "ffn_gate_exps.weight"][e].T, h @ W[p + "ffn_up_exps.weight"][e].T
            out += weights[:, e:e + 1] * ((act(g, False) * u) @ W[p + "ffn_down_exps.weight"][e].T)
        return out
    if p + "ffn_gate.weight" in W:
        g, u = h @ W[p + "ffn_gate.weight"].T, h @ W[p + "ffn_up.weight"].T
    else:  # Phi-3: gate | up in one matrix
        gu = h @ W[p + "ffn_up.weight"].T
        g, u = gu[:, :gu.shape[1] // 2], gu[:, gu.shape[1] // 2:]
    return (act(g, c["gemma"]) * u) @ W[p + "ffn_down.weight"].T


def attention(W, p, h, c, l):
    H, KV, hd, t = c["heads"], c["kv"], c["hd"], h.shape[0]
    if p + "attn_qkv.weight" in W:
        qkv = h @ W[p + "attn_qkv.weight"].T
        q, k, v = qkv[:, :H * hd], qkv[:, H * hd:(H + KV) * hd], qkv[:, (H + KV) * hd:]
    else:
        q, k, v = (h @ W[p + n + ".weight"].T + W.get(p + n + ".bias", 0.0) for n in ("attn_q", "attn_k", "attn_v"))
    if p + "attn_q_norm.weight" in W:
        q = rmsnorm(q.reshape(t, H, hd), W[p + "attn_q_norm.weight"], c["eps"]).reshape(t, H * hd)
        k = rmsnorm(k.reshape(t, KV, hd), W[p + "attn_k_norm.weight"], c["eps"]).reshape(t, KV * hd)
    local = c["sliding"][l] and c["theta_swa"] is not None
    theta = c["theta_swa"] if local else c["theta"]
    fscale = c["scale_swa"] if local else c["freq_scale"]
    factors = W.get("rope_freqs.weight", W.get("rope_factors_short.weight"))  # 40 positions: the short ones
    q, k = rope(q, H, hd, c, theta, fscale, factors), rope(k, KV, hd, c, theta, fscale, factors)
    i, j = np.arange(t)[:, None], np.arange(t)[None, :]
    mask = (j > i) | ((i - j >= c["window"]) & c["sliding"][l])
    out = np.empty((t, H * hd))
    for hh in range(H):
        g = hh // (H // KV)
        s = (q[:, hh * hd:(hh + 1) * hd] * c["scale"]) @ k[:, g * hd:(g + 1) * hd].T
        if c["softcap"]:
            s = c["softcap"] * np.tanh(s / c["softcap"])
        s = np.where(mask, -np.inf, s)
        pr = np.exp(s - s.max(axis=1, keepdims=True))
        pr /= pr.sum(axis=1, keepdims=True)
        out[:, hh * hd:(hh + 1) * hd] = pr @ v[:, g * hd:(g + 1) * hd]
    return out @ W[p + "attn_output.weight"].T


def forward(meta, W, ids):
    c = config(meta)
    x = W["token_embd.weight"][ids] * (math.sqrt(c["dim"]) if c["gemma"] else 1.0)
    for l in range(c["layers"]):
        p = "blk.%d." % l
        o = attention(W, p, rmsnorm(x, W[p + "attn_norm.weight"], c["eps"]), c, l)
        if p + "post_attention_norm.weight" in W:
            o = rmsnorm(o, W[p + "post_attention_norm.weight"], c["eps"])
        x = x + o
        f = ffn(W, p, rmsnorm(x, W[p + "ffn_norm.weight"], c["eps"]), c)
        if p + "post_ffw_norm.weight" in W:
            f = rmsnorm(f, W[p + "post_ffw_norm.weight"], c["eps"])
        x = x + f
    logits = rmsnorm(x, W["output_norm.weight"], c["eps"]) @ W.get("output.weight", W["token_embd.weight"]).T
    if c["final_cap"]:
        logits = c["final_cap"] * np.tanh(logits / c["final_cap"])
    return logits


# ---- comparing ----


def load_logits(path, t):
    if not os.path.exists(path):
        return None
    a = np.fromfile(path, dtype=np.float32).astype(np.float64)
    return a.reshape(t, VOCAB) if a.size == t * VOCAB else None


def compare_one(ggml, arch, path, base, name):
    meta, tensors = read_gguf(path)
    W = {k: dequantize(ggml, *v) for k, v in tensors.items()}
    exact = forward(meta, W, IDS)
    scale = np.abs(exact).max()
    llama, av = load_logits(base + ".llama.f32", len(IDS)), load_logits(base + ".av.f32", len(IDS))
    short = load_logits(base + ".av_short.f32", SHORT)
    label = "llamacpp_%s_%s" % (arch, name)
    if av is None or short is None:
        print("FAIL %s: attnviz's logits are missing (see the messages above)" % label)
        return
    rel = lambda a, b: float(np.abs(a - b).max() / scale)  # noqa: E731
    d_av, d_short = rel(av, exact), rel(short, forward(meta, W, IDS[:SHORT]))
    line = "# %s %s: |attnviz - f64| %.2e (first %d ids alone %.2e)" % (arch, name, d_av, SHORT, d_short)
    if llama is not None:
        d_llama, d_av_llama = rel(llama, exact), rel(av, llama)
        line += ", |llama.cpp - f64| %.2e, |attnviz - llama.cpp| %.2e" % (d_llama, d_av_llama)
        tol = max(1e-3, 2 * d_llama)
        ok = d_av_llama <= tol
        print(line + " (relative to max |logit| %.3f)" % scale)
        print(("PASS" if ok else "FAIL") + " %s_vs_llamacpp" % label +
              ("" if ok else ": %.3e > max(1e-3, 2 x %.3e)" % (d_av_llama, d_llama)))
    else:
        print(line + " (relative to max |logit| %.3f)" % scale)
    ok = max(d_av, d_short) <= 1e-4
    print(("PASS" if ok else "FAIL") + " %s_vs_float64" % label + ("" if ok else ": %.3e > 1e-4" % max(d_av, d_short)))


def main():
    if len(sys.argv) == 2 and sys.argv[1] == "archs":
        print("\n".join(ARCHS))
    elif len(sys.argv) == 5 and sys.argv[1] == "make":
        make(sys.argv[2], sys.argv[3], sys.argv[4])
    elif len(sys.argv) >= 6 and sys.argv[1] == "compare":
        arch, ref, d = sys.argv[2:5]
        ggml = ctypes.CDLL(os.path.join(os.environ["LIB"], "libggml-base.so"))
        for name in sys.argv[5:]:
            path = os.path.join(d, name + ".gguf")
            compare_one(ggml, arch, path if os.path.exists(path) else ref, os.path.join(d, name), name)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
