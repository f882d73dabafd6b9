#!/usr/bin/python3
"""Writes the tokenizer test corpus to stdout: one JSON string per line, deterministic (own PRNG, no
dependence on Python's random module), 10,000+ lines by default.

Usage: gen_corpus.py [N_LINES] [SEED]

Lines mix: English and accented Latin (precomposed and decomposed), Cyrillic, Greek, CJK, kana, Hangul,
Arabic, Hebrew, Devanagari, Thai, emoji (with modifiers and ZWJ sequences), digits and numbers, ASCII and
Unicode punctuation, runs of spaces, tabs, newlines and other whitespace (U+00A0, U+3000, U+0085, U+FEFF...),
C0/C1 control characters including NUL, contractions, special-token look-alikes ([CLS], <s>, <|endoftext|>)
and very long words (hundreds to thousands of characters).

Only characters assigned since Unicode 9 or earlier are used, so every reference (Python's unicodedata,
utf8proc, V8) classifies them the same way.
"""
import json
import sys


class Rng:
    """xorshift64* -- deterministic across Python versions and platforms."""

    def __init__(self, seed):
        self.s = (seed * 0x9E3779B97F4A7C15 + 1) & 0xFFFFFFFFFFFFFFFF or 1

    def next(self):
        x = self.s
        x ^= (x >> 12)
        x ^= (x << 25) & 0xFFFFFFFFFFFFFFFF
        x ^= (x >> 27)
        self.s = x
        return (x * 0x2545F4914F6CDD1D) & 0xFFFFFFFFFFFFFFFF

    def below(self, n):
        return (self.next() >> 11) % n

    def pick(self, seq):
        return seq[self.below(len(seq))]

    def chance(self, num, den):
        return self.below(den) < num


ENGLISH = ("the of and to in is was he for it with as his on be at by had are but from or have an they which "
           "one you were her all she there would their we him been has when who will more no if out so said what "
           "up its about into than them can only other new some could time these two may then do first any my now "
           "such like our over man me even most made after also did many before must through back years where much "
           "your way well down should because each just those people Mr how too little state good very make world "
           "still own see men work long get here between both life being under never day same another know while "
           "last might us great old year off come since against go came right used take three Hello World "
           "Transformer attention Once upon a time there lived a little girl named Lily She loved to play outside "
           "tokenization BERT GPT Llama internationalization antidisestablishmentarianism").split()
ACCENTED = ("café naïve résumé façade jalapeño Zürich Ångström São Paulo Kraków Dvořák Łódź smörgåsbord Gödel "
            "crème brûlée über Straße Ærø Øresund piñata déjà vu coöperate Ελλάδα İstanbul ıi ĳssel œuvre Þingvellir "
            "señor niño Málaga Bogotá Curaçao Reykjavík façon garçon élève Noël naïveté").split()
CYRILLIC = ("привет мир Москва Россия язык программирование внимание модель трансформер Київ Україна ёлка "
            "щука жизнь съезд Беларусь София България Српски").split()
GREEK = "καλημέρα κόσμε Αθήνα λόγος φιλοσοφία ἀρχή ψυχή Ωμέγα".split()
ARABIC = "مرحبا بالعالم اللغة العربية كتاب".split()
HEBREW = "שלום עולם עברית ספר".split()
DEVANAGARI = "नमस्ते दुनिया हिन्दी भाषा".split()
THAI = "สวัสดีชาวโลก ภาษาไทย".split()
CJK_WORDS = "日本語 東京 中文 汉字 你好世界 注意力 機械学習 人工智能 北京 大学".split()
KANA = "こんにちは ありがとう カタカナ ひらがな トークン".split()
HANGUL = "안녕하세요 세계 한국어 토큰".split()
PUNCT = list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~") + ["...", "—", "–", "«", "»", "“", "”", "‘", "’", "…", "¿", "¡",
                                                      "·", "§", "¶", "†", "•", "、", "。", "「", "」", "！", "？"]
EMOJI = ["😀", "😂", "🤗", "👍", "🎉", "🚀", "❤️", "🔥", "🙏", "😊", "👍🏽", "👩‍💻", "👨‍👩‍👧", "🇫🇷", "🇯🇵", "✨", "☕", "⭐",
         "🌍", "🐍", "🦀", "🧠", "🤖", "💡", "✅", "❌", "🙂", "😎"]
SPECIALS = ["[CLS]", "[SEP]", "[MASK]", "[UNK]", "[PAD]", "<s>", "</s>", "<unk>", "<|endoftext|>", "<pad>",
            "[cls]", "<S>", "▁", "##", "Ġ", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T"]
SPACES = [" ", "  ", "   ", "    ", "\t", "\t\t", "\n", "\n\n", "\r\n", " \t ", "\u00a0", "\u3000", "\u2009",
          "\u2003", "\u0085", "\ufeff", "\u200b", "\u2028", "\u202f", "\x0b", "\x0c", " \n ", "\t \t"]
CONTROLS = [chr(c) for c in list(range(0x00, 0x09)) + [0x0E, 0x0F, 0x10, 0x1B, 0x1C, 0x1F, 0x7F]] + \
           [chr(c) for c in (0x80, 0x81, 0x8D, 0x9F, 0xAD)]
COMBINING = ["e\u0301", "a\u0308", "n\u0303", "o\u0302", "u\u0308\u0301", "c\u0327", "A\u030a", "i\u0307"]


def cjk_run(r, n):
    return "".join(chr(0x4E00 + r.below(0x9FA5 - 0x4E00)) for _ in range(n))


def hangul_run(r, n):
    return "".join(chr(0xAC00 + r.below(0xD7A3 - 0xAC00)) for _ in range(n))


def number(r):
    k = r.below(6)
    if k == 0:
        return str(r.below(10))
    if k == 1:
        return str(r.below(100000))
    if k == 2:
        return "%d.%d" % (r.below(1000), r.below(1000))
    if k == 3:
        return "{:,}".format(r.below(10**9))
    if k == 4:
        return "".join(r.pick("0123456789") for _ in range(1 + r.below(40)))
    return r.pick(["١٢٣", "४२", "½", "²", "Ⅻ", "३.१४", "1st", "2nd", "3rd", "10%", "$5", "€20", "1e-5", "0x1F"])


def long_word(r):
    n = 600 + r.below(900) if r.chance(1, 10) else 100 + r.below(300)
    k = r.below(8)
    if k == 0:
        return r.pick("abcxyz") * n
    if k == 1:
        return "".join(r.pick("abcdefghijklmnopqrstuvwxyz") for _ in range(n))
    if k == 2:
        return "".join(r.pick("0123456789") for _ in range(n))
    if k == 3:
        return cjk_run(r, n // 3 + 1)
    if k == 4:
        return "".join(r.pick(EMOJI) for _ in range(n // 20 + 2))
    if k == 5:
        return "".join(r.pick(ACCENTED) for _ in range(n // 12 + 9))
    if k == 6:
        return "".join(r.pick(CYRILLIC) for _ in range(n // 14 + 8))
    return "".join(r.pick("!?.,-_=+*#") for _ in range(n // 4 + 1))


def word(r):
    k = r.below(100)
    if k < 30:
        w = r.pick(ENGLISH)
        c = r.below(10)
        return w.capitalize() if c == 0 else w.upper() if c == 1 else w
    if k < 40:
        return r.pick(ACCENTED)
    if k < 46:
        return r.pick(CYRILLIC)
    if k < 48:
        return r.pick(GREEK)
    if k < 50:
        return r.pick(ARABIC + HEBREW)
    if k < 52:
        return r.pick(DEVANAGARI + THAI)
    if k < 57:
        return r.pick(CJK_WORDS) if r.chance(1, 2) else cjk_run(r, 1 + r.below(6))
    if k < 59:
        return r.pick(KANA) if r.chance(1, 2) else hangul_run(r, 1 + r.below(4))
    if k < 65:
        return number(r)
    if k < 73:
        return r.pick(PUNCT)
    if k < 78:
        return r.pick(EMOJI)
    if k < 81:
        return r.pick(SPECIALS)
    if k < 84:
        return r.pick(COMBINING) + r.pick(ENGLISH)
    if k < 86:
        return r.pick(CONTROLS)
    if k < 88:
        return r.pick(ENGLISH) + r.pick(["'s", "'t", "'re", "n't", "'ll", "'d", "’s"])
    if k < 89 and r.chance(1, 2):
        return long_word(r)
    return r.pick(ENGLISH) + r.pick(PUNCT)


def separator(r):
    k = r.below(20)
    if k < 14:
        return " "
    if k < 16:
        return ""
    return r.pick(SPACES)


def line(r):
    k = r.below(100)
    if k < 3:
        return ""
    if k < 6:
        return "".join(r.pick(SPACES) for _ in range(1 + r.below(4)))
    if k < 9:
        return long_word(r)
    n = 1 + r.below(40) if k < 95 else 50 + r.below(300)
    parts = []
    if r.chance(1, 8):
        parts.append(r.pick(SPACES))
    for i in range(n):
        if i:
            parts.append(separator(r))
        parts.append(word(r))
    if r.chance(1, 8):
        parts.append(r.pick(SPACES))
    return "".join(parts)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10240
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    r = Rng(seed)
    out = sys.stdout
    for _ in range(n):
        out.write(json.dumps(line(r), ensure_ascii=True))
        out.write("\n")


if __name__ == "__main__":
    main()
