#!/usr/bin/python3
"""Reference ids from libsentencepiece (Debian's python3-sentencepiece): ref_spm.py MODEL CORPUS.jsonl
prints one JSON array of ids per corpus line (no BOS)."""
import json
import sys

import sentencepiece as spm


def main():
    sp = spm.SentencePieceProcessor(model_file=sys.argv[1])
    out = sys.stdout
    with open(sys.argv[2], encoding="utf-8") as f:
        for line in f:
            out.write(json.dumps(sp.encode(json.loads(line))))
            out.write("\n")


if __name__ == "__main__":
    main()
