#!/usr/bin/python3
"""compare.py NAME CORPUS EXPECTED ACTUAL: compares two files of JSON id arrays line by line and prints
"PASS NAME: ..." or "FAIL NAME: ..." with the first mismatching line."""
import json
import sys


def main():
    name, corpus, exp_path, act_path = sys.argv[1:5]
    texts = open(corpus, encoding="utf-8").read().splitlines()
    exp = open(exp_path, encoding="utf-8").read().splitlines()
    act = open(act_path, encoding="utf-8").read().splitlines()
    if len(exp) != len(texts) or len(act) != len(texts):
        print("FAIL %s: %d corpus lines, %d expected, %d actual" % (name, len(texts), len(exp), len(act)))
        return 1
    bad = []
    n_ids = 0
    for i, (e, a) in enumerate(zip(exp, act)):
        e, a = json.loads(e), json.loads(a)
        n_ids += len(e)
        if e != a:
            bad.append(i)
    if not bad:
        print("PASS %s: %d lines, %d tokens, 0 mismatches" % (name, len(texts), n_ids))
        return 0
    i = bad[0]
    e, a = json.loads(exp[i]), json.loads(act[i])
    k = next((j for j in range(min(len(e), len(a))) if e[j] != a[j]), min(len(e), len(a)))
    print("FAIL %s: %d of %d lines differ; first: line %d %s: expected ...%s... got ...%s..."
          % (name, len(bad), len(texts), i + 1, json.dumps(json.loads(texts[i])[:120]),
             e[max(0, k - 3):k + 6], a[max(0, k - 3):k + 6]))
    return 1


if __name__ == "__main__":
    sys.exit(main())
