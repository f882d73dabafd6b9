#!/usr/bin/python3
"""Writes vocabulary-only GGUF files for the GGUF tokenizer tests (llama.cpp loads them with vocab_only).

Usage: make_gguf_vocabs.py CORPUS.jsonl OUT_DIR [SHARED_TOKENIZERS_DIR]
       make_gguf_vocabs.py CORPUS.jsonl --fuzz-seeds OUT_DIR   (tiny files: the seeds of fuzz/gguf_tokenizer.c)

Prints one line per file: "NAME PATH". Real vocabularies can't be downloaded here, so:
  - byte-level BPE (tokenizer.ggml.model "gpt2"), one file per tokenizer.ggml.pre variant: merges trained on the
    corpus by a small BPE trainer below, plus whole words no merge reaches (they only come out as one token when
    the variant ignores merges, as Llama 3's and Tekken's do) and the chat tokens of the family that uses the
    variant (CONTROL and USER_DEFINED);
  - SentencePiece style ("llama"): models trained here by python3-sentencepiece (BPE, byte fallback), one with
    Gemma's conventions (<pad> <eos> <bos> <unk> at 0-3, no leading space, user-defined newline and whitespace
    pieces, <start_of_turn>/<end_of_turn>, <unusedN>), one with Llama's (<unk> <s> </s>, leading space);
  - when SHARED_TOKENIZERS_DIR has them: the real GPT-2 vocabulary (with its own pre-tokenizer and with Llama 3's)
    and the real Llama 2 vocabulary, alone and dressed as Phi-3 (its chat tokens, general.name "Phi 3 Mini", so
    llama.cpp's rstrip rule applies) and as Mistral v0.3 ([INST] control tokens).
"""
import heapq
import json
import os
import re
import struct
import sys
from collections import Counter, defaultdict

# ---- GGUF (version 3), metadata only ----
T_U32, T_I32, T_F32, T_BOOL, T_STR, T_ARR = 4, 5, 6, 7, 8, 9


def gguf_str(s):
    b = s.encode("utf-8", "surrogatepass") if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def write_gguf(path, kvs):
    out = [b"GGUF", struct.pack("<IQQ", 3, 0, len(kvs))]
    for key, (typ, val) in kvs.items():
        out.append(gguf_str(key) + struct.pack("<I", typ))
        if typ == T_STR:
            out.append(gguf_str(val))
        elif typ == T_U32:
            out.append(struct.pack("<I", val))
        elif typ == T_BOOL:
            out.append(struct.pack("<B", 1 if val else 0))
        elif typ == T_ARR:
            etyp, items = val
            out.append(struct.pack("<IQ", etyp, len(items)))
            if etyp == T_STR:
                out.extend(gguf_str(x) for x in items)
            elif etyp == T_F32:
                out.append(struct.pack("<%df" % len(items), *items))
            elif etyp == T_I32:
                out.append(struct.pack("<%di" % len(items), *items))
    with open(path, "wb") as f:
        f.write(b"".join(out))


def vocab_kvs(arch, model, tokens, types, scores=None, merges=None, pre=None, **extra):
    kvs = {"general.architecture": (T_STR, arch), "tokenizer.ggml.model": (T_STR, model)}
    if pre is not None:
        kvs["tokenizer.ggml.pre"] = (T_STR, pre)
    kvs["tokenizer.ggml.tokens"] = (T_ARR, (T_STR, tokens))
    kvs["tokenizer.ggml.token_type"] = (T_ARR, (T_I32, types))
    if scores is not None:
        kvs["tokenizer.ggml.scores"] = (T_ARR, (T_F32, scores))
    if merges is not None:
        kvs["tokenizer.ggml.merges"] = (T_ARR, (T_STR, merges))
    for k, v in extra.items():
        key = k if k.startswith("general.") else "tokenizer.ggml." + k
        kvs[key] = (T_STR, v) if isinstance(v, str) else (T_BOOL, v) if isinstance(v, bool) else (T_U32, v)
    return kvs


NORMAL, UNKNOWN, CONTROL, USER, UNUSED, BYTE = 1, 2, 3, 4, 5, 6

# ---- byte-level BPE ----


def byte_alphabet():
    bs = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


BYTE_CHAR = byte_alphabet()
WORD_RE = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d{1,3}| ?[^\s\w]+|\s+(?!\S)|\s+")


def bytelevel(s):
    return "".join(BYTE_CHAR[b] for b in s.encode("utf-8", "surrogatepass"))


def train_bpe(texts, n_merges):
    """Classic BPE on byte-level words: the most frequent pair first (ties: the smallest pair)."""
    counts = Counter(bytelevel(w) for t in texts for w in WORD_RE.findall(t))
    words = [list(w) for w in counts]
    freq = [counts[w] for w in counts]
    pairs, where = Counter(), defaultdict(set)
    for i, w in enumerate(words):
        for a, b in zip(w, w[1:]):
            pairs[(a, b)] += freq[i]
            where[(a, b)].add(i)
    heap = [(-c, p) for p, c in pairs.items()]
    heapq.heapify(heap)
    merges = []
    while heap and len(merges) < n_merges:
        c, p = heapq.heappop(heap)
        if pairs.get(p, 0) != -c or c == 0:
            continue
        merges.append(p)
        joined = p[0] + p[1]
        for i in sorted(where.pop(p, ())):
            w, f = words[i], freq[i]
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] -= f
            k, out = 0, []
            while k < len(w):
                if k + 1 < len(w) and (w[k], w[k + 1]) == p:
                    out.append(joined)
                    k += 2
                else:
                    out.append(w[k])
                    k += 1
            words[i] = out
            for a, b in zip(out, out[1:]):
                pairs[(a, b)] += f
                where[(a, b)].add(i)
                heapq.heappush(heap, (-pairs[(a, b)], (a, b)))
    return merges, counts


# chat tokens (text, type) of the families that use each pre-tokenizer
LLAMA3 = [("<|begin_of_text|>", CONTROL), ("<|end_of_text|>", CONTROL), ("<|start_header_id|>", CONTROL),
          ("<|end_header_id|>", CONTROL), ("<|eot_id|>", CONTROL), ("<|eom_id|>", CONTROL), ("<|python_tag|>", CONTROL)]
QWEN = [("<|endoftext|>", CONTROL), ("<|im_start|>", CONTROL), ("<|im_end|>", NORMAL), ("<|fim_prefix|>", NORMAL),
        ("<|fim_middle|>", CONTROL), ("<|fim_suffix|>", CONTROL), ("<|file_sep|>", NORMAL), ("<think>", USER),
        ("</think>", USER), ("<tool_call>", USER), ("</tool_call>", USER)]
SMOL = [("<|endoftext|>", CONTROL), ("<|im_start|>", CONTROL), ("<|im_end|>", CONTROL), ("<repo_name>", CONTROL)]
TEKKEN = [("<unk>", CONTROL), ("<s>", CONTROL), ("</s>", CONTROL), ("[INST]", CONTROL), ("[/INST]", CONTROL),
          ("[SYSTEM_PROMPT]", CONTROL), ("[/SYSTEM_PROMPT]", CONTROL), ("[TOOL_CALLS]", CONTROL)]
GPT4O = [("<|endoftext|>", CONTROL), ("<|system|>", CONTROL), ("<|user|>", USER), ("<|assistant|>", CONTROL),
         ("<|end|>", NORMAL), ("<|tool_call|>", CONTROL)]
BPE_VARIANTS = [  # (file name, tokenizer.ggml.pre, architecture, specials, extra keys)
    ("bpe_default", "default", "gpt2", [("<|endoftext|>", CONTROL)], {}),
    ("bpe_gpt2", "gpt-2", "gpt2", [("<|endoftext|>", CONTROL)], {}),
    ("bpe_llama3", "llama-bpe", "llama", LLAMA3, {"bos_token_id": 0, "eos_token_id": 4}),
    ("bpe_dbrx", "dbrx", "phi3", GPT4O, {"add_bos_token": False}),
    ("bpe_qwen2", "qwen2", "qwen2", QWEN, {"add_bos_token": False, "eos_token_id": 1}),
    ("bpe_qwen35", "qwen35", "qwen3", QWEN, {"eos_token_id": 1}),
    ("bpe_smollm", "smollm", "llama", SMOL, {"bos_token_id": 1, "eos_token_id": 2, "add_bos_token": False}),
    ("bpe_tekken", "tekken", "llama", TEKKEN, {"bos_token_id": 1, "eos_token_id": 2}),
    ("bpe_gpt4o", "gpt-4o", "phi3", GPT4O, {"add_eos_token": True, "eos_token_id": 0}),
]


def bpe_vocab(merges, counts, specials, n_words):
    """specials first, then the 256 byte characters, the merges' tokens, and whole words no merge builds."""
    tokens = [s for s, _ in specials] + [BYTE_CHAR[b] for b in range(256)]
    types = [t for _, t in specials] + [NORMAL] * 256
    seen = set(tokens)
    for a, b in merges:
        if a + b not in seen:
            seen.add(a + b)
            tokens.append(a + b)
            types.append(NORMAL)
    words = [w for w, _ in counts.most_common() if len(w) > 2 and w not in seen]
    for w in words[:n_words]:
        tokens.append(w)
        types.append(NORMAL)
    return tokens, types, ["%s %s" % m for m in merges]


# ---- SentencePiece style ----


def spm_vocab(sp, user_defined=()):
    tokens, types, scores = [], [], []
    for i in range(sp.get_piece_size()):
        p = sp.id_to_piece(i)
        tokens.append(p)
        scores.append(sp.get_score(i))
        types.append(UNKNOWN if sp.is_unknown(i) else CONTROL if sp.is_control(i) else BYTE if sp.is_byte(i)
                     else UNUSED if sp.is_unused(i) else USER if p in user_defined else NORMAL)
    return tokens, types, scores


def train_spm(texts, out_dir, name, **opts):
    import sentencepiece as spm
    path = os.path.join(out_dir, name + ".txt")
    with open(path, "w", encoding="utf-8") as f:
        for t in texts:
            t = t.replace("\r", " ").replace("\x00", " ")
            if t.strip():
                f.write(t + "\n")
    spm.SentencePieceTrainer.train(input=path, model_prefix=os.path.join(out_dir, name), model_type="bpe",
                                   vocab_size=4000, byte_fallback=True, character_coverage=0.98,
                                   normalization_rule_name="identity", remove_extra_whitespaces=False,
                                   split_digits=True, minloglevel=2, **opts)
    return spm.SentencePieceProcessor(model_file=os.path.join(out_dir, name + ".model"))


GEMMA_USER = ["\n", "\n\n", "\t", "  ", "<h1>", "</h1>", "<table>", "</table>", "<start_of_image>"]
GEMMA_CONTROL = ["<mask>", "[@BOS@]", "<start_of_turn>", "<end_of_turn>"] + ["<unused%d>" % i for i in range(8)]


def fuzz_seeds(texts, out_dir):
    """Small vocabularies (60 merges) of every pre-tokenizer variant, and a hand-made SentencePiece-style one."""
    os.makedirs(out_dir, exist_ok=True)
    merges, counts = train_bpe(texts[:200], 60)
    for name, pre, arch, specials, extra in BPE_VARIANTS:
        tokens, types, merge_strs = bpe_vocab(merges, counts, specials, 10)
        write_gguf(os.path.join(out_dir, name + ".gguf"),
                   vocab_kvs(arch, "gpt2", tokens, types, merges=merge_strs, pre=pre, **extra))
    pieces = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)] + \
             ["\u2581", "a", "b", "c", "\u2581a", "ab", "\u2581ab", "<|im_end|>", "<tool>"]
    types = [UNKNOWN, CONTROL, CONTROL] + [BYTE] * 256 + [NORMAL] * 7 + [CONTROL, USER]
    scores = [0.0] * 259 + [-1.0, -2.0, -2.0, -3.0, -1.5, -2.5, -0.5, 0.0, 0.0]
    write_gguf(os.path.join(out_dir, "spm_tiny.gguf"),
               vocab_kvs("phi3", "llama", pieces, types, scores, add_space_prefix=False, add_eos_token=True,
                         **{"general.name": "Phi-3 tiny"}))


def main():
    if len(sys.argv) == 4 and sys.argv[2] == "--fuzz-seeds":
        return fuzz_seeds([json.loads(line) for line in open(sys.argv[1], encoding="utf-8")], sys.argv[3])
    corpus, out_dir = sys.argv[1], sys.argv[2]
    shared = sys.argv[3] if len(sys.argv) > 3 else None
    os.makedirs(out_dir, exist_ok=True)
    texts = [json.loads(line) for line in open(corpus, encoding="utf-8")]
    train = texts[:3000:2] + texts[-600:]
    made = []

    merges, counts = train_bpe(train, 1500)
    for name, pre, arch, specials, extra in BPE_VARIANTS:
        tokens, types, merge_strs = bpe_vocab(merges, counts, specials, 300)
        path = os.path.join(out_dir, name + ".gguf")
        write_gguf(path, vocab_kvs(arch, "gpt2", tokens, types, merges=merge_strs, pre=pre, **extra))
        made.append((name, path))

    sp = train_spm(train, out_dir, "gemma", pad_id=0, eos_id=1, bos_id=2, unk_id=3, pad_piece="<pad>",
                   eos_piece="<eos>", bos_piece="<bos>", unk_piece="<unk>", add_dummy_prefix=False,
                   allow_whitespace_only_pieces=True, user_defined_symbols=GEMMA_USER, control_symbols=GEMMA_CONTROL)
    tokens, types, scores = spm_vocab(sp, set(p.replace(" ", "\u2581") for p in GEMMA_USER))
    path = os.path.join(out_dir, "spm_gemma.gguf")
    write_gguf(path, vocab_kvs("gemma2", "llama", tokens, types, scores, bos_token_id=2, eos_token_id=1,
                               unknown_token_id=3, padding_token_id=0, add_bos_token=True, add_eos_token=False,
                               add_space_prefix=False))
    made.append(("spm_gemma", path))

    sp = train_spm(train, out_dir, "llamalike", control_symbols=["<|user|>", "<|assistant|>"],
                   user_defined_symbols=["<|end|>", "<tool>"])
    tokens, types, scores = spm_vocab(sp, {"<|end|>", "<tool>"})
    path = os.path.join(out_dir, "spm_llamalike.gguf")
    write_gguf(path, vocab_kvs("llama", "llama", tokens, types, scores))
    made.append(("spm_llamalike", path))

    if shared and os.path.isfile(os.path.join(shared, "gpt2", "encoder.json")):
        enc = json.load(open(os.path.join(shared, "gpt2", "encoder.json"), encoding="utf-8"))
        tokens = [None] * len(enc)
        for piece, i in enc.items():
            tokens[i] = piece
        types = [CONTROL if t == "<|endoftext|>" else NORMAL for t in tokens]
        merge_strs = [l for l in open(os.path.join(shared, "gpt2", "vocab.bpe"), encoding="utf-8").read().split("\n")
                      if l and not l.startswith("#version")]
        for name, pre in (("gpt2_real", "gpt-2"), ("gpt2_real_llama3", "llama-bpe")):
            path = os.path.join(out_dir, name + ".gguf")
            write_gguf(path, vocab_kvs("gpt2", "gpt2", tokens, types, merges=merge_strs, pre=pre,
                                       bos_token_id=50256, eos_token_id=50256))
            made.append((name, path))
    if shared and os.path.isfile(os.path.join(shared, "llama2", "tokenizer.model")):
        import sentencepiece as spm
        sp = spm.SentencePieceProcessor(model_file=os.path.join(shared, "llama2", "tokenizer.model"))
        tokens, types, scores = spm_vocab(sp)
        path = os.path.join(out_dir, "llama2_real.gguf")
        write_gguf(path, vocab_kvs("llama", "llama", tokens, types, scores, bos_token_id=1, eos_token_id=2))
        made.append(("llama2_real", path))
        phi3 = [("<|endoftext|>", CONTROL), ("<|assistant|>", CONTROL), ("<|placeholder1|>", CONTROL),
                ("<|placeholder2|>", CONTROL), ("<|system|>", CONTROL), ("<|end|>", CONTROL),
                ("<|placeholder3|>", CONTROL), ("<|user|>", CONTROL), ("<tool>", USER)]
        path = os.path.join(out_dir, "phi3_llama2.gguf")
        write_gguf(path, vocab_kvs("phi3", "llama", tokens + [p for p, _ in phi3], types + [t for _, t in phi3],
                                   scores + [0.0] * len(phi3), bos_token_id=1, eos_token_id=32000,
                                   add_bos_token=False, **{"general.name": "Phi-3 Mini 4k Instruct"}))
        made.append(("phi3_llama2", path))
        mistral = ["[INST]", "[/INST]", "[TOOL_CALLS]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]",
                   "[TOOL_RESULTS]", "[/TOOL_RESULTS]"]
        path = os.path.join(out_dir, "mistral_llama2.gguf")
        write_gguf(path, vocab_kvs("llama", "llama", tokens + mistral, types + [CONTROL] * len(mistral),
                                   scores + [0.0] * len(mistral), add_bos_token=True, add_eos_token=False))
        made.append(("mistral_llama2", path))
    for name, path in made:
        print(name, path)


if __name__ == "__main__":
    main()
