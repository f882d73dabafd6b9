#!/usr/bin/python3
"""python3-sentencepiece throughput on the same corpus as tok_bench: tok_ref_spm.py MODEL CORPUS.jsonl [REPEATS]
Prints JSON: tokens/s encoding line by line, and as one batch call (num_threads=1)."""
import json
import sys
import time

import sentencepiece as spm


def main():
    sp = spm.SentencePieceProcessor(model_file=sys.argv[1])
    texts = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8")]
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    best_line = best_batch = 1e30
    tokens = 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        tokens = sum(len(sp.encode(t)) for t in texts)
        best_line = min(best_line, time.perf_counter() - t0)
        t0 = time.perf_counter()
        sp.encode(texts, num_threads=1)
        best_batch = min(best_batch, time.perf_counter() - t0)
    print(json.dumps({"reference": "python3-sentencepiece " + spm.__version__, "texts": len(texts), "bytes": nbytes,
                      "tokens": tokens, "seconds_per_line_calls": round(best_line, 4),
                      "tokens_per_s": round(tokens / best_line), "seconds_batch_1_thread": round(best_batch, 4),
                      "tokens_per_s_batch": round(tokens / best_batch)}))


if __name__ == "__main__":
    main()
