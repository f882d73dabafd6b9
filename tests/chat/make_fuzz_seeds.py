#!/usr/bin/python3
"""Writes the seed corpus of fuzz/chat_template.c: every template of tests/chat/templates, a NUL byte, and one
message list of tests/chat/messages (taken in turn).

Usage: make_fuzz_seeds.py [OUT_DIR]   (default: fuzz/corpus/chat_template)"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "fuzz", "corpus", "chat_template")
    os.makedirs(out, exist_ok=True)
    tdir, mdir = os.path.join(HERE, "templates"), os.path.join(HERE, "messages")
    msgs = sorted(os.listdir(mdir))
    for i, t in enumerate(sorted(f for f in os.listdir(tdir) if f.endswith(".jinja"))):
        with open(os.path.join(out, t[:-6]), "wb") as f:
            f.write(open(os.path.join(tdir, t), "rb").read() + b"\0" + open(os.path.join(mdir, msgs[i % len(msgs)]), "rb").read())


if __name__ == "__main__":
    main()
