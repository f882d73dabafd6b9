#!/usr/bin/python3
"""Writes the corpus of the GGUF tokenizer tests to stdout: one JSON string per line, deterministic.

Usage: gen_gguf_corpus.py [N_BASE_LINES] [N_EXTRA_LINES]

The first lines are gen_corpus.py's (mixed scripts, digits, whitespace runs, emoji, control characters, long
words, special-token look-alikes); then lines of code and of chat markup: the special tokens of Llama 3, Qwen,
Gemma, Mistral, Phi-3 and SmolLM written in the text, alone, side by side, cut in half, with spaces and
newlines around them (llama.cpp matches them whole and strips whitespace next to some of them).
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_corpus  # noqa: E402

CHAT_SPECIALS = [
    "<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
    "<|eom_id|>", "<|python_tag|>", "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|fim_prefix|>",
    "<|fim_middle|>", "<|fim_suffix|>", "<|file_sep|>", "<think>", "</think>", "<tool_call>", "</tool_call>",
    "<bos>", "<eos>", "<pad>", "<start_of_turn>", "<end_of_turn>", "<start_of_image>", "<unused0>", "<mask>",
    "[INST]", "[/INST]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]", "[TOOL_CALLS]", "[AVAILABLE_TOOLS]",
    "<|user|>", "<|assistant|>", "<|system|>", "<|end|>", "<|placeholder1|>", "<s>", "</s>", "<unk>",
    "<|im_", "im_end|>", "<start_of", "[/INST", "<|", "|>", "<h1>", "</table>", "\u2581\u2581",
]
CODE = [
    "def main(argv):\n    return 0\n", "for (int i = 0; i < n; i++) {\n\tsum += a[i];\n}", "x = {'a': 1, \"b\": [2, 3]}",
    "if (x != NULL && *x == '\\n') return -1;", "SELECT id, name FROM users WHERE age >= 18;",
    "<div class=\"main\">Hello</div>", "fn add(a: i32, b: i32) -> i32 { a + b }", "#include <stdio.h>",
    "    // indented comment\n        deeper", "console.log(`${name}: ${value}`);", "λx. x + 1  # lambda",
    "print(f'{x:>10.3f}')", "a=b+c*d/e-f%g", "```python\nimport numpy as np\n```", "https://example.com/a?b=1&c=2",
]
SPACES = ["", " ", "  ", "\n", "\n\n", " \n", "\t", "\r\n", "   ", "\u00a0"]


def chat_line(r):
    parts = []
    for _ in range(1 + r.below(12)):
        k = r.below(10)
        if k < 4:
            parts.append(r.pick(CHAT_SPECIALS))
        elif k < 6:
            parts.append(r.pick(CODE))
        elif k < 8:
            parts.append(r.pick(gen_corpus.ENGLISH + gen_corpus.ACCENTED + gen_corpus.CYRILLIC))
        else:
            parts.append(gen_corpus.word(r))
        parts.append(r.pick(SPACES))
    return "".join(parts)


def main():
    n_base = int(sys.argv[1]) if len(sys.argv) > 1 else 4000
    n_extra = int(sys.argv[2]) if len(sys.argv) > 2 else 1500
    r = gen_corpus.Rng(4)
    out = sys.stdout
    for _ in range(n_base):
        out.write(json.dumps(gen_corpus.line(r), ensure_ascii=True) + "\n")
    r = gen_corpus.Rng(13)
    for _ in range(n_extra):
        out.write(json.dumps(chat_line(r), ensure_ascii=True) + "\n")


if __name__ == "__main__":
    main()
