#!/usr/bin/python3
"""demo-t2i's tokenizer: BERT-style WordPiece over whole words (no "##" pieces, so every known word is one
token and any other word is [UNK]), lowercase, split on whitespace and punctuation, [CLS] words [SEP].
The same vocabulary is written as vocab.txt (one token per line, id = line number) and as tokenizer.json
(model WordPiece, BertNormalizer, BertPreTokenizer, TemplateProcessing), which Hugging Face and attnviz's C
tokenizer both read. The unconditional (classifier-free guidance) prompt is the empty text: [CLS] [SEP].
"""

import os
import sys
import unicodedata

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shapes  # noqa: E402

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PAD, UNK, CLS, SEP = 0, 1, 2, 3


def vocab():
    return SPECIALS + shapes.vocabulary()


def _is_cjk(cp):
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or 0x2A700 <= cp <= 0x2B73F or
            0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def _words(text):
    """BertNormalizer (drop control characters, CJK characters as words, strip accents: NFD without Mn marks,
    lowercase) then BertPreTokenizer (split on whitespace; every punctuation character is its own word)."""
    text = unicodedata.normalize("NFD", text)
    out, cur = [], ""
    for ch in text:
        cp, cat = ord(ch), unicodedata.category(ch)
        if cp == 0 or cp == 0xFFFD or (cat.startswith("C") and ch not in "\t\n\r") or cat == "Mn":
            continue
        ch = ch.lower()
        if ch.isspace():
            out, cur = out + ([cur] if cur else []), ""
        elif cat.startswith("P") or (ch.isascii() and not ch.isalnum()) or _is_cjk(cp):
            out, cur = out + ([cur] if cur else []) + [ch], ""
        else:
            cur += ch
    return out + ([cur] if cur else [])


def encode(text, w2i=None):
    """text -> ids [CLS] w... [SEP]; a word not in the vocabulary (or over 100 characters) is [UNK], as WordPiece
    does when no "##" continuation exists"""
    if w2i is None:
        w2i = {w: i for i, w in enumerate(vocab())}
    return [CLS] + [w2i.get(w, UNK) if len(w) <= 100 else UNK for w in _words(text)] + [SEP]


def tokenizer_json(words):
    def added(tok, i):
        return {"id": i, "content": tok, "single_word": False, "lstrip": False, "rstrip": False,
                "normalized": False, "special": True}

    def special(name):
        return {"id": name, "ids": [words.index(name)], "tokens": [name]}

    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [added(t, i) for i, t in enumerate(SPECIALS)],
        "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                       "strip_accents": None, "lowercase": True},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {"[CLS]": special("[CLS]"), "[SEP]": special("[SEP]")}},
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": {w: i for i, w in enumerate(words)}},
    }


def tokenizer_config(max_len):
    return {"tokenizer_class": "BertTokenizerFast", "do_lower_case": True, "unk_token": "[UNK]",
            "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]",
            "model_max_length": max_len}
