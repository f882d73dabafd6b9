#!/usr/bin/python3
"""Trains small SentencePiece models on the test corpus with Debian's python3-sentencepiece, covering what the
Llama 2 model does not: unigram (Viterbi) with the nmt_nfkc and nfkc_cf character maps, user-defined symbols,
extra-whitespace removal, whitespace as suffix, BPE without dummy prefix and with split digits.
train_spm.py CORPUS.jsonl OUTDIR  -> OUTDIR/{uni,uni_cf,bpe}.model"""
import io
import json
import os
import sys

import sentencepiece as spm

MODELS = {
    "uni": dict(model_type="unigram", vocab_size=1200, normalization_rule_name="nmt_nfkc",
                user_defined_symbols=["[MASK]", "@@", "\u00e9t"], character_coverage=0.9995),
    "uni_cf": dict(model_type="unigram", vocab_size=900, normalization_rule_name="nfkc_cf", byte_fallback=True,
                   treat_whitespace_as_suffix=True, character_coverage=0.98),
    "bpe": dict(model_type="bpe", vocab_size=1000, normalization_rule_name="identity", byte_fallback=True,
                remove_extra_whitespaces=False, add_dummy_prefix=False, split_digits=True,
                user_defined_symbols=["[SEP]"], character_coverage=0.9995),
}


# random ideographs and syllables would need thousands of pieces; training keeps only the common ones, so the
# rest of the corpus exercises unknown characters and byte fallback
KEEP = set("日本語東京中文汉字你好世界注意力機械学習人工智能北京大学こんにちはありがとうカタカナひらがなトークン"
           "안녕하세요세계한국어토큰")


def main():
    corpus, outdir = sys.argv[1], sys.argv[2]
    os.makedirs(outdir, exist_ok=True)
    lines = []
    with open(corpus, encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i % 3 == 0:  # a third of the corpus is plenty and keeps training fast
                text = json.loads(line).replace("\n", " ").replace("\r", " ").strip()
                text = "".join(c for c in text if ord(c) < 0x2E80 or c in KEEP)
                if text:
                    lines.append(text[:2000])
    for name, opts in MODELS.items():
        model = io.BytesIO()
        spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_writer=model, num_threads=2,
                                       minloglevel=2, max_sentence_length=8192, hard_vocab_limit=False, **opts)
        with open(os.path.join(outdir, name + ".model"), "wb") as f:
            f.write(model.getvalue())


if __name__ == "__main__":
    main()
