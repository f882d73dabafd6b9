#!/usr/bin/python3
"""compare.py ATTNVIZ CASES.json EXPECTED_DIR: renders every case with `attnviz chat` and compares it byte for byte
with what @huggingface/jinja rendered (EXPECTED_DIR/<name>.txt, or .err when the template raised: attnviz must then
fail too). Prints one PASS/FAIL line per template."""
import json
import os
import subprocess
import sys
from collections import defaultdict


def main():
    binary, cases_path, exp_dir = sys.argv[1:4]
    by_template = defaultdict(lambda: [0, 0, []])  # renderings equal, raising in both, failures
    for c in json.load(open(cases_path)):
        stem = c["name"].split("__")[0]
        cmd = [binary, "chat", "--chat-template", c["template"], "--chat-date", "2024-07-26", c["messages"]]
        for key, flag in (("bos_token", "--bos-token"), ("eos_token", "--eos-token")):
            if c[key] is not None:
                cmd[2:2] = [flag, c[key]]
        if not c["add_generation_prompt"]:
            cmd.insert(2, "--no-generation-prompt")
        got = subprocess.run(cmd, capture_output=True, timeout=60)
        exp_txt = os.path.join(exp_dir, c["name"] + ".txt")
        stats = by_template[stem]
        if not os.path.exists(exp_txt):
            if got.returncode != 0:
                stats[1] += 1
            else:
                stats[2].append("%s: the reference raised (%s), attnviz rendered"
                                % (c["name"], open(os.path.join(exp_dir, c["name"] + ".err")).read()[:80]))
            continue
        exp = open(exp_txt, "rb").read()
        if got.returncode != 0:
            stats[2].append("%s: attnviz failed: %s" % (c["name"], got.stderr.decode("utf-8", "replace").strip()[:200]))
        elif got.stdout != exp:
            k = next((i for i in range(min(len(exp), len(got.stdout))) if exp[i] != got.stdout[i]), min(len(exp), len(got.stdout)))
            stats[2].append("%s: differs at byte %d: expected %r got %r" % (c["name"], k, exp[max(0, k - 30):k + 30],
                                                                         got.stdout[max(0, k - 30):k + 30]))
        else:
            stats[0] += 1
    failed = 0
    for stem, (same, raised, bad) in sorted(by_template.items()):
        if bad:
            failed = 1
            print("FAIL chat_ref_%s: %d of %d differ; first: %s" % (stem, len(bad), same + raised + len(bad), bad[0]))
        else:
            print("PASS chat_ref_%s: %d renderings equal @huggingface/jinja's, %d raise in both" % (stem, same, raised))
    return failed


if __name__ == "__main__":
    sys.exit(main())
