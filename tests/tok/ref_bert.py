#!/usr/bin/python3
"""An independent BERT (uncased) tokenizer written from the published algorithm, used as the reference for
attnviz's WordPiece path: ref_bert.py VOCAB.txt CORPUS.jsonl prints one JSON array of ids per line,
with [CLS] first and [SEP] last.

It follows Hugging Face tokenizers (the semantics of tokenizer.json), using only the standard library:
  1. special tokens written in the text ([PAD] [UNK] [CLS] [SEP] [MASK]) are matched first, on the raw text,
     leftmost-longest;
  2. BertNormalizer on the rest: drop NUL, U+FFFD and control characters (categories Cc Cf Cn Co Cs, except
     tab, newline, carriage return), turn whitespace (Unicode White_Space) into ' ', put spaces around CJK
     ideographs, strip accents (NFD, drop Mn), lowercase character by character;
  3. BertPreTokenizer: split on whitespace (dropped) and punctuation (ASCII punctuation or P*, each its own
     piece);
  4. WordPiece: words over 100 characters are [UNK]; else greedy longest match, "##" for continuations,
     and [UNK] for the whole word when some position has no match.
"""
import json
import sys
import unicodedata

WHITE_SPACE = {0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F,
               0x3000} | set(range(0x2000, 0x200B))
CJK = [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
       (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def is_whitespace(c):
    return ord(c) in WHITE_SPACE


def is_control(c):
    if c in "\t\n\r":
        return False
    return unicodedata.category(c) in ("Cc", "Cf", "Cn", "Co", "Cs")


def is_punct(c):
    o = ord(c)
    if 33 <= o <= 47 or 58 <= o <= 64 or 91 <= o <= 96 or 123 <= o <= 126:
        return True
    return unicodedata.category(c).startswith("P")


def is_cjk(c):
    o = ord(c)
    return any(a <= o <= b for a, b in CJK)


def normalize(text):
    out = []
    for c in text:
        if ord(c) == 0 or ord(c) == 0xFFFD or is_control(c):
            continue
        if is_whitespace(c):
            out.append(" ")
        elif is_cjk(c):
            out.extend((" ", c, " "))
        else:
            out.append(c)
    s = unicodedata.normalize("NFD", "".join(out))
    s = "".join(c for c in s if unicodedata.category(c) != "Mn")
    return "".join(c.lower() for c in s)


def pre_tokenize(s):
    words, cur = [], []
    for c in s:
        if is_whitespace(c):
            if cur:
                words.append("".join(cur))
                cur = []
        elif is_punct(c):
            if cur:
                words.append("".join(cur))
                cur = []
            words.append(c)
        else:
            cur.append(c)
    if cur:
        words.append("".join(cur))
    return words


def wordpiece(word, vocab, unk):
    if len(word) > 100:
        return [unk]
    out, start = [], 0
    while start < len(word):
        end, found = len(word), None
        while start < end:
            sub = word[start:end] if start == 0 else "##" + word[start:end]
            if sub in vocab:
                found = vocab[sub]
                break
            end -= 1
        if found is None:
            return [unk]
        out.append(found)
        start = end
    return out


def split_specials(text, vocab):
    """[(segment, id or None)] with special tokens matched leftmost-longest on the raw text."""
    present = [s for s in SPECIALS if s in vocab]
    parts, i, start = [], 0, 0
    while i < len(text):
        best = None
        for s in present:
            if text.startswith(s, i) and (best is None or len(s) > len(best)):
                best = s
        if best is None:
            i += 1
            continue
        if start < i:
            parts.append((text[start:i], None))
        parts.append((best, vocab[best]))
        i += len(best)
        start = i
    if start < len(text):
        parts.append((text[start:], None))
    return parts


def encode(text, vocab):
    unk = vocab["[UNK]"]
    ids = [vocab["[CLS]"]]
    for seg, sid in split_specials(text, vocab):
        if sid is not None:
            ids.append(sid)
            continue
        for w in pre_tokenize(normalize(seg)):
            ids.extend(wordpiece(w, vocab, unk))
    ids.append(vocab["[SEP]"])
    return ids


def main():
    vocab = {}
    with open(sys.argv[1], encoding="utf-8") as f:
        for i, line in enumerate(f):
            tok = line.rstrip("\n").rstrip("\r")
            vocab.setdefault(tok, i)
    out = sys.stdout
    with open(sys.argv[2], encoding="utf-8") as f:
        for line in f:
            out.write(json.dumps(encode(json.loads(line), vocab)))
            out.write("\n")


if __name__ == "__main__":
    main()
