#!/usr/bin/python3
"""Writes the seed corpora of the fuzz harnesses (fuzz/corpus/<name>/, a few KB each) with the project's own
tools: tiny llama2.c checkpoints written here, converted by `attnviz convert` to GGUF and Hugging Face
directories, traces from `attnviz run` / `attnviz import`, the tiny fixtures of every family
(scripts/make_tiny_models.py) cut to one layer, hand-written tokenizer files of every kind, SentencePiece models
(python3-sentencepiece), NumPy arrays (np.save, and .npz archives as np.savez writes them), images (PNG written here, JPEG through PIL when
present) and HTTP requests for every endpoint. Multi-file inputs are joined with the harnesses' separator
(fuzz/fuzz.h FUZZ_SEP).

Usage: /usr/bin/python3 fuzz/make_seeds.py   (after `make`; rewrites fuzz/corpus/)
"""

import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "scripts"))
import safetensors_np  # noqa: E402

SEP = b"\n--8<--\n"
HARNESSES = ("config", "gguf", "hf_dir", "http", "image", "llama2c", "npy", "spm_model", "tokenizer_json", "trace",
             "vocab_files")
CORPUS = os.path.join(HERE, "corpus")
ATTNVIZ = os.path.join(REPO, "build", "attnviz")
rng = np.random.default_rng(19)


def seed(harness, name, data):
    d = os.path.join(CORPUS, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def joined(*parts):
    return SEP.join(p if isinstance(p, bytes) else p.encode() for p in parts)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def attnviz(*args):
    subprocess.run([ATTNVIZ, *args], check=True, stdout=subprocess.DEVNULL)


# ---- llama2.c checkpoints and tokenizers ------------------------------------------------------------------

PIECES = ["<unk>", "<s>", "</s>", "<0x0A>", "<0x41>", "\u2581", "e", "t", "a", "o", "n", "s", "h", "r", "d", "l",
          "\u2581t", "he", "\u2581the", "\u2581a", "in", "er", "an", "\u2581s", "\u2581w", "nd", "ou", "\u2581c",
          "at", "en", "on", "."]


def llama2c_tokenizer(pieces=PIECES):
    out = struct.pack("<i", max(len(p.encode()) for p in pieces))
    for i, p in enumerate(pieces):
        b = p.encode()
        out += struct.pack("<fi", -float(i), len(b)) + b
    return out


def llama2c_model(dim, hidden, layers, heads, kv, vocab, seq, tied=True):
    hs = dim // heads
    out = struct.pack("<7i", dim, hidden, layers, heads, kv, vocab if tied else -vocab, seq)

    def t(*shape, mean=0.0):
        return (rng.standard_normal(shape) * 0.3 + mean).astype("<f4").tobytes()

    out += t(vocab, dim)
    out += t(layers, dim, mean=1.0) + t(layers, dim, dim) + t(layers, kv * hs, dim) + t(layers, kv * hs, dim)
    out += t(layers, dim, dim) + t(layers, dim, mean=1.0) + t(layers, hidden, dim) + t(layers, dim, hidden)
    out += t(layers, hidden, dim) + t(dim, mean=1.0) + t(seq, hs)  # out norm, legacy RoPE tables
    if not tied:
        out += t(vocab, dim)
    return out


# ---- tokenizer files ----------------------------------------------------------------------------------------

BYTE_CHARS = "abcdefghijklmnopqrstuvwxyz\u0120."


def bpe_vocab():
    toks = list(BYTE_CHARS) + ["\u0120t", "he", "\u0120the", "\u0120a"]
    return {t: i for i, t in enumerate(toks)}, ["\u0120 t", "h e", "\u0120t he"]


def tokenizer_jsons():
    vocab, merges = bpe_vocab()
    wp = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "cat", "##s", "a", "##b", "!",
                                       "caf", "##e", "\u65e5"])}
    added = [{"id": 31, "content": "<|endoftext|>", "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True}]
    yield "bytelevel_bpe", {
        "version": "1.0", "added_tokens": added, "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "vocab": vocab,
                  "merges": merges}}
    yield "wordpiece_bert", {
        "version": "1.0", "added_tokens": [{"id": 2, "content": "[CLS]", "special": True},
                                           {"id": 3, "content": "[SEP]", "special": True}],
        "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                       "strip_accents": None, "lowercase": True},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}},
                                      {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
                           "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                                              "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}},
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": wp}}
    uni = [["<unk>", 0.0], ["<s>", 0.0], ["</s>", 0.0], ["\u2581", -1.0], ["\u2581the", -2.0], ["a", -3.0],
           ["t", -3.5], ["h", -3.6], ["e", -3.7], ["\u2581c", -4.0], ["at", -4.5], ["<0x41>", -9.0]]
    yield "unigram_metaspace", {
        "version": "1.0", "added_tokens": [{"id": 1, "content": "<s>", "special": True}],
        "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFKC"}, {"type": "Replace",
                       "pattern": {"String": " "}, "content": "\u2581"}, {"type": "Prepend", "prepend": "\u2581"}]},
        "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": True},
        "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                                                    {"Sequence": {"id": "A", "type_id": 0}}],
                           "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "\u2581"},
                    "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ",
                                                                                    "start": 1, "stop": 0}]},
        "model": {"type": "Unigram", "unk_id": 0, "vocab": uni, "byte_fallback": True}}
    yield "wordlevel_split", {
        "version": "1.0", "added_tokens": [],
        "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFD"}, {"type": "StripAccents"},
                                                           {"type": "Lowercase"}, {"type": "Strip",
                                                                                   "strip_left": True,
                                                                                   "strip_right": True}]},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "Removed", "invert": False},
            {"type": "Punctuation", "behavior": "Isolated"}, {"type": "Digits", "individual_digits": True},
            {"type": "WhitespaceSplit"}]},
        "post_processor": {"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 0],
                           "trim_offsets": True, "add_prefix_space": False},
        "decoder": None,
        "model": {"type": "WordLevel", "vocab": {"<s>": 0, "<unk>": 1, "</s>": 2, "the": 3, "cat": 4, "!": 5,
                                                 "1": 6}, "unk_token": "<unk>"}}
    yield "bpe_bytefallback", {
        "version": "1.0", "added_tokens": [{"id": 0, "content": "<unk>", "special": True}],
        "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"},
                                                           {"type": "Replace", "pattern": {"String": " "},
                                                            "content": "\u2581"}]},
        "pre_tokenizer": None, "post_processor": None,
        "decoder": {"type": "Sequence", "decoders": [{"type": "ByteFallback"}, {"type": "Fuse"}]},
        "model": {"type": "BPE", "unk_token": "<unk>", "fuse_unk": True, "byte_fallback": True,
                  "ignore_merges": False, "vocab": {"<unk>": 0, "<0x41>": 1, "<0xC3>": 2, "\u2581": 3, "t": 4,
                                                    "h": 5, "e": 6, "th": 7, "\u2581th": 8, "\u2581the": 9},
                  "merges": [["t", "h"], ["\u2581", "th"], ["\u2581th", "e"]]}}


def sp_model(path, model_type, vocab):
    import sentencepiece as spm  # Debian python3-sentencepiece
    text = ("the cat sat on the mat. a dog ran after the cat! 123 456 caf\u00e9 na\u00efve \u65e5\u672c "
            "The quick brown fox jumps over the lazy dog.\n") * 20
    spm.SentencePieceTrainer.train(sentence_iterator=iter(text.splitlines()), model_writer=open(path, "wb"),
                                   model_type=model_type, vocab_size=vocab, normalization_rule_name="identity",
                                   byte_fallback=model_type == "bpe", character_coverage=1.0,
                                   hard_vocab_limit=False, minloglevel=2)


# ---- model directories --------------------------------------------------------------------------------------

LAYER = re.compile(r"\.(h|layer|layers|block|blocks)\.(\d+)\.")
LAYER_KEYS = ["n_layer", "num_hidden_layers", "n_layers", "encoder_layers", "decoder_layers", "num_layers",
              "num_decoder_layers"]


def one_layer_dir(src):
    """A fixture of scripts/make_tiny_models.py cut to one layer, F32 stored as F16: (config, weights) bytes."""
    cfg = json.load(open(os.path.join(src, "config.json")))
    for k in LAYER_KEYS:
        if k in cfg:
            cfg[k] = 1
    if "max_window_layers" in cfg:
        cfg["max_window_layers"] = 0
    tensors, dtypes = {}, {}
    files = sorted(f for f in os.listdir(src) if f.startswith("model") and f.endswith(".safetensors"))
    for f in files:
        t, _ = safetensors_np.read(os.path.join(src, f), raw_bf16=True)
        hdr, _, _ = safetensors_np.read_header(os.path.join(src, f))
        for name, a in t.items():
            m = LAYER.search(name)
            if m and int(m.group(2)) >= 1:
                continue
            if hdr[name]["dtype"] == "BF16":
                dtypes[name] = "BF16"
                tensors[name] = a
            else:
                tensors[name] = a.astype(np.float16)
    path = tempfile.mktemp(suffix=".safetensors")
    safetensors_np.write(path, tensors, {"format": "pt"}, dtypes or None)
    data = read(path)
    os.unlink(path)
    return json.dumps(cfg).encode(), data


def png(width, height, mode, pixels, bits=8, palette=None):
    """A PNG written here (zlib + CRC): mode 0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA."""
    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + row for row in pixels)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bits, mode, 0, 0, 0))
    if palette:
        out += chunk(b"PLTE", palette)
    return out + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def main():
    if not os.access(ATTNVIZ, os.X_OK):
        sys.exit("make_seeds.py: build attnviz first (make)")
    for h in HARNESSES:  # other_seeds() runs the scripts that own the other corpora
        d = os.path.join(CORPUS, h)
        for f in os.listdir(d) if os.path.isdir(d) else []:
            if not f.startswith("cov-"):  # cov-*: inputs campaigns found (docs/SECURITY.md), kept
                os.unlink(os.path.join(d, f))
    tmp = tempfile.mkdtemp()
    tok = llama2c_tokenizer()
    open(os.path.join(tmp, "tok.bin"), "wb").write(tok)

    # llama2c: checkpoint | tokenizer | text
    variants = {"tiny": (8, 16, 1, 2, 1, 32, 16, True), "untied_gqa": (8, 12, 2, 4, 2, 32, 8, False),
                "q8": (32, 32, 1, 4, 2, 32, 8, True)}
    for name, v in variants.items():
        ckpt = llama2c_model(*v)
        open(os.path.join(tmp, name + ".bin"), "wb").write(ckpt)
        if name != "q8":
            seed("llama2c", name, joined(ckpt, tok, "the cat sat"))

    # gguf: `attnviz convert` of the checkpoints with a SentencePiece, byte-level BPE and WordPiece vocabulary
    for name, typ in (("tiny", "f32"), ("untied_gqa", "f16"), ("q8", "q8_0")):
        out = os.path.join(tmp, name + ".gguf")
        attnviz("convert", "--model", os.path.join(tmp, name + ".bin"), "--tokenizer", os.path.join(tmp, "tok.bin"),
                "--to", "gguf", "-o", out, "--type", typ, "--force")
        seed("gguf", name + "_" + typ, read(out))
    vocab, merges = bpe_vocab()
    bdir = os.path.join(tmp, "bpe")
    os.makedirs(bdir)
    json.dump(vocab, open(os.path.join(bdir, "vocab.json"), "w"))
    open(os.path.join(bdir, "merges.txt"), "w").write("#version: 0.2\n" + "\n".join(merges) + "\n")
    wdir = os.path.join(tmp, "wp")
    os.makedirs(wdir)
    open(os.path.join(wdir, "vocab.txt"), "w").write("\n".join(
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "##s", "a", "!", "caf", "##e", "\u65e5"]) + "\n")
    for tdir, name, n_vocab in ((bdir, "gpt2_vocab", 32), (wdir, "bert_vocab", 13)):
        out, ckpt = os.path.join(tmp, name + ".gguf"), os.path.join(tmp, name + ".bin")
        open(ckpt, "wb").write(llama2c_model(8, 16, 1, 2, 1, n_vocab, 16, True))
        attnviz("convert", "--model", ckpt, "--tokenizer", tdir, "--to", "gguf", "-o", out, "--force")
        seed("gguf", name, read(out))

    # hf_dir: config | model.safetensors | index | shard 1 | shard 2 | tokenizer | preprocessor | tokenizer_config
    hf = os.path.join(tmp, "hf_llama")
    attnviz("convert", "--model", os.path.join(tmp, "tiny.bin"), "--tokenizer", os.path.join(tmp, "tok.bin"),
            "--to", "hf", "-o", hf, "--type", "f16", "--force")
    tok_json = dict(tokenizer_jsons())
    seed("hf_dir", "llama", joined(read(os.path.join(hf, "config.json")), read(os.path.join(hf, "model.safetensors")),
                                   b"", b"", b"", read(os.path.join(hf, "tokenizer.bin")), b"",
                                   json.dumps({"add_bos_token": True, "add_eos_token": False})))
    llama_cfg = json.load(open(os.path.join(REPO, "tests", "fixtures", "tiny", "mistral", "config.json")))
    llama_cfg.update(model_type="llama", architectures=["LlamaForCausalLM"])  # the mistral fixture's weights fit
    llama_cfg.pop("sliding_window", None)
    seed("config", "llama.json", json.dumps(llama_cfg, indent=2).encode())
    fixtures = os.path.join(REPO, "tests", "fixtures", "tiny")
    for fam in sorted(os.listdir(fixtures)):
        cfg, weights = one_layer_dir(os.path.join(fixtures, fam))
        tokfile = {"gpt2": json.dumps(tok_json["bytelevel_bpe"]), "bert": json.dumps(tok_json["wordpiece_bert"]),
                   "t5": json.dumps(tok_json["unigram_metaspace"])}.get(fam, "")
        prep = json.dumps({"do_resize": True, "size": {"height": 32, "width": 32}, "resample": 2,
                           "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}) if fam == "vit" else ""
        if fam == "gpt2":  # sharded: the index names two files
            wpath = write_tmp(weights)
            t, _ = safetensors_np.read(wpath)
            os.unlink(wpath)
            names = sorted(t)
            half = len(names) // 2
            s1, s2 = write_st({n: t[n] for n in names[:half]}), write_st({n: t[n] for n in names[half:]})
            index = {"metadata": {"total_size": 0},
                     "weight_map": {n: "model-00001-of-00002.safetensors" if i < half else
                                    "model-00002-of-00002.safetensors" for i, n in enumerate(names)}}
            seed("hf_dir", fam, joined(cfg, b"", json.dumps(index), s1, s2, tokfile, prep))
        else:
            seed("hf_dir", fam, joined(cfg, weights, b"", b"", b"", tokfile, prep))
        seed("config", fam + ".json", read(os.path.join(fixtures, fam, "config.json")))
    seed("config", "timm_vit.json", json.dumps({
        "architecture": "vit_tiny_patch16_224", "num_classes": 1000, "num_features": 192, "global_pool": "token",
        "model_args": {"img_size": 224, "patch_size": 16, "embed_dim": 192, "depth": 12, "num_heads": 3},
        "pretrained_cfg": {"input_size": [3, 224, 224], "interpolation": "bicubic", "crop_pct": 0.9,
                           "crop_mode": "center", "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}}).encode())

    # tokenizer_json, vocab_files, spm_model
    for name, j in tok_json.items():
        seed("tokenizer_json", name + ".json", json.dumps(j, ensure_ascii=False).encode())
    seed("tokenizer_json", "demo_fr_en.json", read(os.path.join(REPO, "models", "demo-fr-en", "tokenizer.json")))
    seed("vocab_files", "vocab_txt", joined(read(os.path.join(wdir, "vocab.txt")), b"",
                                            json.dumps({"do_lower_case": False, "unk_token": "[UNK]"})))
    seed("vocab_files", "vocab_json_merges", joined(json.dumps(vocab), "\n".join(merges) + "\n",
                                                    json.dumps({"bos_token": {"content": "a"}, "add_bos_token": True})))
    seed("vocab_files", "encoder_json_bpe", joined(json.dumps(vocab), read(os.path.join(bdir, "merges.txt"))))
    for typ, n in (("bpe", 320), ("unigram", 60)):
        out = os.path.join(tmp, typ + ".model")
        try:
            sp_model(out, typ, n)
            seed("spm_model", typ + ".model", read(out))
        except ImportError:
            print("make_seeds.py: python3-sentencepiece missing: no spm_model seeds")

    # trace: `attnviz run` (full F32 / F16 with logits, lazy) and `attnviz import` (encoder-decoder kinds)
    model = os.path.join(tmp, "tiny.bin")
    for name, extra in (("full_f32", ["--logits"]), ("full_f16", ["--dtype", "f16"]), ("lazy", ["--lazy"])):
        out = os.path.join(tmp, name + ".safetensors")
        attnviz("run", "--model", model, "--tokenizer", os.path.join(tmp, "tok.bin"), "--text", "the cat", "-o", out,
                "--threads", "1", *extra)
        seed("trace", name, read(out))
    out = os.path.join(tmp, "generated.safetensors")  # version 3: log-probabilities, generation metadata
    attnviz("generate", "--model", model, "--tokenizer", os.path.join(tmp, "tok.bin"), "--prompt", "the", "--steps", "3",
            "--top-logprobs", "3", "-o", out, "--threads", "1")
    seed("trace", "generated", read(out))

    def probs(*shape):
        a = rng.random(shape).astype(np.float32) + 0.1
        return a / a.sum(-1, keepdims=True)

    npz = os.path.join(tmp, "encdec.npz")
    open(npz, "wb").write(npz_bytes(False, encoder_attentions=probs(1, 2, 3, 3),
                                    decoder_attentions=probs(1, 2, 2, 2), cross_attentions=probs(1, 2, 2, 3)))
    toks = os.path.join(tmp, "tokens.json")
    json.dump({"source_tokens": ["le", "chat", "</s>"], "target_tokens": ["<pad>", "the"]}, open(toks, "w"))
    out = os.path.join(tmp, "encdec.safetensors")
    attnviz("import", npz, "--tokens", toks, "-o", out)
    seed("trace", "encdec", read(out))

    # npy: .npy in several dtypes and orders, .npz stored and deflated, safetensors arrays
    a = probs(2, 3, 3)
    for name, arr in (("f32", a), ("f16", a.astype(np.float16)), ("f64_be", a.astype(">f8")),
                      ("fortran", np.asfortranarray(a[0])), ("layers4", probs(2, 1, 4, 4)),
                      ("batch5", probs(1, 1, 2, 3, 3))):
        buf = io.BytesIO()
        np.save(buf, arr)
        seed("npy", name + ".npy", buf.getvalue())
    for name, deflate in (("stored", False), ("deflated", True)):
        seed("npy", name + ".npz", npz_bytes(deflate, arr_0=probs(1, 2, 3, 3), arr_1=probs(1, 2, 3, 3),
                                             arr_10=probs(1, 2, 3, 3)))
    seed("npy", "encdec.npz", read(npz))
    seed("npy", "attn.safetensors", write_st({"attn": probs(2, 2, 3, 3)}))

    # image: PNGs written here in every color type, JPEGs through PIL when present
    w, h = 5, 4
    gray = [bytes((x * 40 + y * 9) & 255 for x in range(w)) for y in range(h)]
    rgb = [bytes(v for x in range(w) for v in ((x * 50) & 255, y * 60, 128)) for y in range(h)]
    rgba = [bytes(v for x in range(w) for v in (x * 50, y * 60, 128, 200)) for y in range(h)]
    seed("image", "gray.png", png(w, h, 0, gray))
    seed("image", "rgb.png", png(w, h, 2, rgb))
    seed("image", "rgba.png", png(w, h, 6, rgba))
    seed("image", "palette.png", png(w, h, 3, [bytes(x % 3 for x in range(w)) for _ in range(h)],
                                     palette=bytes([255, 0, 0, 0, 255, 0, 0, 0, 255])))
    seed("image", "gray16.png", png(w, h, 0, [bytes(v for x in range(w) for v in (x * 50, y)) for y in range(h)],
                                    bits=16))
    try:
        from PIL import Image
        im = Image.frombytes("RGB", (w, h), b"".join(rgb)).resize((16, 12))
        for name, kw in (("baseline", {"quality": 75}), ("progressive", {"quality": 50, "progressive": True}),
                         ("q95_444", {"quality": 95, "subsampling": 0})):
            buf = io.BytesIO()
            im.save(buf, "JPEG", **kw)
            seed("image", name + ".jpg", buf.getvalue())
        buf = io.BytesIO()
        im.convert("L").save(buf, "JPEG", quality=60)
        seed("image", "gray.jpg", buf.getvalue())
    except ImportError:
        print("make_seeds.py: PIL missing: no JPEG seeds")

    # http: requests of every endpoint (METHOD TARGET\nbody), several per input
    reqs = ["GET /api/info\n", "GET /api/colormaps\n", "GET /api/traces\n", "GET /api/traces/t0\n",
            "GET /api/traces/t0/row?layer=1&head=1&q=3\n", "GET /api/traces/t0/row?layer=0&head=mean&q=2&format=f32\n",
            "GET /api/traces/t0/tile?layer=1&head=max&q0=0&q1=4&k0=0&k1=4&rows=2&cols=2&pool=mean\n",
            "GET /api/traces/t0/viewer\n", "GET /api/traces/t0/file\n", "GET /\n", "GET /viewer.js\n",
            "POST /api/run\n{\"text\": \"abcabc\"}", "POST /api/run\n{\"ids\": [1, 5, 9, 5]}",
            "GET /api/runs/r1\n", "DELETE /api/traces/t0\n", "GET /api/traces/t0/row?layer=99&head=-7&q=1e9\n",
            "RAW\nGET /api/info HTTP/1.1\r\nHost: evil.example\r\n\r\n", "GET /api/traces/t0/steps\n"]
    for i, r in enumerate(reqs):
        seed("http", "req%02d" % i, r.encode())
    seed("http", "sequence", joined("POST /api/run\n{\"text\": \"ab\", \"add_bos\": false}", "GET /api/runs/r1\n",
                                     "GET /api/traces/r1/tile?layer=0&head=0&q0=0&q1=2&k0=0&k1=2&rows=1&cols=1\n"))
    # the served trace t0 is a generation (fuzz/http.c): its step data, then the same after a run and a delete
    seed("http", "steps", joined("HEAD /api/traces/t0/steps\n", "GET /api/traces/t0/steps?max=2\n",
                                  "GET /api/traces/t0/viewer\n", "GET /api/traces/t0/row?layer=1&head=3&q=8\n"))
    seed("http", "steps_gone", joined("POST /api/run\n{\"text\": \"abab\"}", "GET /api/traces/r1/steps\n",
                                       "DELETE /api/traces/t0\n", "GET /api/traces/t0/steps\n"))
    regressions(tmp)
    shutil.rmtree(tmp)
    other_seeds()
    files = [os.path.join(CORPUS, h, f) for h in HARNESSES for f in os.listdir(os.path.join(CORPUS, h))]
    print("wrote %s: %d files, %d bytes" % (CORPUS, len(files), sum(os.path.getsize(f) for f in files)))


def regressions(tmp):
    """fuzz/regress/<name>/issue19_*: the inputs of issue #19's findings, replayed by make fuzz-smoke."""
    def keep(harness, name, data):
        d = os.path.join(HERE, "regress", harness)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)

    # NaN weights reached a float-to-int conversion in exp_nonpos (clang -fsanitize=float-cast-overflow)
    ckpt = bytearray(llama2c_model(8, 16, 1, 2, 1, 32, 16, True))
    ckpt[28:28 + 4 * 8 * 32] = struct.pack("<f", float("nan")) * (8 * 32)  # the token embedding
    path = os.path.join(tmp, "nan.bin")
    open(path, "wb").write(bytes(ckpt))
    out = os.path.join(tmp, "nan.gguf")
    attnviz("convert", "--model", path, "--tokenizer", os.path.join(tmp, "tok.bin"), "--to", "gguf", "-o", out,
            "--force")
    keep("gguf", "issue19_nan_weights", read(out))
    keep("llama2c", "issue19_nan_weights", joined(bytes(ckpt), read(os.path.join(tmp, "tok.bin")), "ab"))
    # "hidden_size": 1e216 reached an out-of-range double -> int64 cast (av_json_int)
    cfg = json.load(open(os.path.join(REPO, "tests", "fixtures", "tiny", "mistral", "config.json")))
    cfg["hidden_size"] = 1e216
    keep("config", "issue19_hidden_size_1e216.json", json.dumps(cfg).encode())
    # layer 0 with 1024 heads, layer 1 with 1 (F16, last in the file): rows of layer 1 were read past its end
    attn0 = np.full((1024, 3, 3), 1 / 3, np.float16)
    st = write_st({"attn.self.0": attn0, "attn.self.1": attn0[:1]})
    hlen = struct.unpack("<Q", st[:8])[0]
    hdr = json.loads(st[8:8 + hlen])
    hdr["__metadata__"] = {"format": "attnviz-trace", "version": "1", "tokens": '["a","b","c"]'}
    h = json.dumps(hdr).encode()
    keep("trace", "issue19_mixed_heads", struct.pack("<Q", len(h)) + h + st[8 + hlen:])
    # a vocabulary entry with an empty piece gave an unterminated label
    keep("llama2c", "issue19_empty_piece", joined(llama2c_model(8, 16, 1, 2, 1, 32, 16, True),
                                                  llama2c_tokenizer(PIECES[:5] + [""] + PIECES[6:]), "a\ne"))


def other_seeds():
    """The corpora other scripts own, rewritten by them: gguf_quant, chat_template, gguf_tokenizer (a
    tokenizer-test corpus first). api_import's seeds are the response files tests/test_api_import.c checks."""
    py, tests = sys.executable, os.path.join(REPO, "tests")
    subprocess.run([py, os.path.join(HERE, "make_quant_seeds.py"), os.path.join(CORPUS, "gguf_quant")], check=True)
    subprocess.run([py, os.path.join(tests, "chat", "make_fuzz_seeds.py"), os.path.join(CORPUS, "chat_template")],
                   check=True)
    with tempfile.NamedTemporaryFile(suffix=".jsonl") as texts:
        subprocess.run([py, os.path.join(tests, "tok", "gen_gguf_corpus.py")], check=True, stdout=texts)
        subprocess.run([py, os.path.join(tests, "tok", "make_gguf_vocabs.py"), texts.name, "--fuzz-seeds",
                        os.path.join(CORPUS, "gguf_tokenizer")], check=True)


def npz_bytes(deflate, **arrays):
    """An .npz as np.savez / np.savez_compressed write it, with fixed timestamps (reproducible seeds)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, a in arrays.items():
            member = io.BytesIO()
            np.save(member, a)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
            z.writestr(info, member.getvalue())
    return buf.getvalue()


def write_st(tensors):
    """A safetensors file of the tensors, as bytes."""
    path = tempfile.mktemp(suffix=".safetensors")
    safetensors_np.write(path, tensors, {"format": "pt"})
    data = read(path)
    os.unlink(path)
    return data


def write_tmp(data):
    path = tempfile.mktemp(suffix=".safetensors")
    open(path, "wb").write(data)
    return path


if __name__ == "__main__":
    main()
