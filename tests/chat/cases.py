#!/usr/bin/python3
"""cases.py TEMPLATES_DIR MESSAGES_DIR: the chat-template test cases as JSON (every template with every message
list, with and without the generation prompt), for render.mjs and tests/cli/test_chat_ref.sh."""
import json
import os
import sys

# template file -> (bos_token, eos_token) as the model's tokenizer_config.json has them (None: not set)
SPECIALS = {
    "qwen2.5-instruct": (None, "<|im_end|>"), "qwen3": (None, "<|im_end|>"),
    "llama-3.1-instruct": ("<|begin_of_text|>", "<|eot_id|>"), "llama-3.2-instruct": ("<|begin_of_text|>", "<|eot_id|>"),
    "gemma-2-it": ("<bos>", "<eos>"), "gemma-3-it": ("<bos>", "<eos>"),
    "phi-3-mini-instruct": ("<s>", "<|endoftext|>"), "phi-3.5-mini-instruct": ("<s>", "<|endoftext|>"),
    "mistral-v3": ("<s>", "</s>"), "mistral-v7": ("<s>", "</s>"), "mistral-nemo-instruct-2407": ("<s>", "</s>"),
    "mistral-small-3.2-instruct": ("<s>", "</s>"),
    "smollm2-instruct": ("<|im_start|>", "<|im_end|>"), "smollm3": ("<|im_start|>", "<|im_end|>"),
    "attnviz-features": ("<s>", "</s>"),
}

def main():
    tdir, mdir = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    cases = []
    for t in sorted(os.listdir(tdir)):
        if not t.endswith(".jinja"):
            continue
        stem = t[:-6]
        bos, eos = SPECIALS[stem]
        for m in sorted(os.listdir(mdir)):
            for gen in (1, 0):
                cases.append({"name": "%s__%s__%d" % (stem, m[:-5], gen), "template": os.path.join(tdir, t),
                              "messages": os.path.join(mdir, m), "add_generation_prompt": bool(gen),
                              "bos_token": bos, "eos_token": eos})
    json.dump(cases, sys.stdout, indent=1)

if __name__ == "__main__":
    main()
