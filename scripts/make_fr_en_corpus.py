#!/usr/bin/python3
"""Synthetic French -> English parallel corpus for attnviz's demo translator (models/demo-fr-en).

A small grammar written here (nothing downloaded):
  sentence   = NP | NP VERB NP
  NP (fr)    = DET [NUM] [PRE-ADJ] NOUN [COLOUR]       "le petit chat noir", "les deux pommes rouges"
  NP (en)    = DET [NUM] [PRE-ADJ] [COLOUR] NOUN       "the small black cat", "the two red apples"
- nouns have a gender (le chat, la pomme) and a number (chat/chats, cheval/chevaux; cat/cats, mouse/mice);
- determiners le/la/les (the), un/une (a/an: "an apple", "an old dog"), des (some; "de" before a pre-nominal
  adjective: "de petits chats"), numbers deux..cinq (two..five), alone or after "les" ("les trois chats");
- pre-nominal adjectives (petit, grand, beau/belle, vieux/vieille, joli) and post-nominal colours (noir,
  blanc/blanche, rouge, vert, bleu, jaune, gris, brun) agree in gender and number; English puts both before
  the noun, in the order size/quality then colour ("le petit chat noir" -> "the small black cat");
- verbs agree with the subject's number (le chat mange / les chats mangent; eats / eat).
Every English word comes from exactly one French word, so the generator also writes the word alignment.

Held-out split: a fixed share of the (noun, colour) pairs -- "the green horse", "the blue cups" -- never
occurs in train/valid; every test sentence contains at least one of them, so the test measures
generalisation to unseen combinations. Pairs used by the demo ("chat" + "noir") are never held out.

Output files in --out (tab-separated, one sentence per line, words separated by single spaces):
  train.tsv, valid.tsv : french <TAB> english <TAB> alignment
  test.tsv             : the held-out sentences, same columns
  heldout_pairs.txt    : the held-out (noun, colour) pairs, one "noun colour" per line
Alignment: Pharaoh format "i-j ..." with i a French (source) word index and j an English (target) word index,
0-based, one pair per English word.

Deterministic: the same --seed gives byte-identical files (numpy PCG64).

Usage: /usr/bin/python3 scripts/make_fr_en_corpus.py --out DIR [--seed 1] [--train 40000] [--valid 1000]
       [--test 500]
"""

import argparse
import os

import numpy as np

# (fr singular, fr plural, gender, en singular, en plural); no noun starts with a vowel (no elision "l'")
NOUNS = [
    ("chat", "chats", "m", "cat", "cats"),
    ("chien", "chiens", "m", "dog", "dogs"),
    ("lapin", "lapins", "m", "rabbit", "rabbits"),
    ("cheval", "chevaux", "m", "horse", "horses"),
    ("livre", "livres", "m", "book", "books"),
    ("vélo", "vélos", "m", "bike", "bikes"),
    ("bateau", "bateaux", "m", "boat", "boats"),
    ("poisson", "poissons", "m", "fish", "fish"),
    ("chapeau", "chapeaux", "m", "hat", "hats"),
    ("ballon", "ballons", "m", "ball", "balls"),
    ("maison", "maisons", "f", "house", "houses"),
    ("voiture", "voitures", "f", "car", "cars"),
    ("fleur", "fleurs", "f", "flower", "flowers"),
    ("pomme", "pommes", "f", "apple", "apples"),
    ("souris", "souris", "f", "mouse", "mice"),
    ("table", "tables", "f", "table", "tables"),
    ("chaise", "chaises", "f", "chair", "chairs"),
    ("lampe", "lampes", "f", "lamp", "lamps"),
    ("robe", "robes", "f", "dress", "dresses"),
    ("tasse", "tasses", "f", "cup", "cups"),
]
# (m sg, f sg, m pl, f pl, en)
PRE_ADJS = [
    ("petit", "petite", "petits", "petites", "small"),
    ("grand", "grande", "grands", "grandes", "big"),
    ("beau", "belle", "beaux", "belles", "beautiful"),
    ("vieux", "vieille", "vieux", "vieilles", "old"),
    ("joli", "jolie", "jolis", "jolies", "pretty"),
]
COLOURS = [
    ("noir", "noire", "noirs", "noires", "black"),
    ("blanc", "blanche", "blancs", "blanches", "white"),
    ("rouge", "rouge", "rouges", "rouges", "red"),
    ("vert", "verte", "verts", "vertes", "green"),
    ("bleu", "bleue", "bleus", "bleues", "blue"),
    ("jaune", "jaune", "jaunes", "jaunes", "yellow"),
    ("gris", "grise", "gris", "grises", "grey"),
    ("brun", "brune", "bruns", "brunes", "brown"),
]
NUMBERS = [("deux", "two"), ("trois", "three"), ("quatre", "four"), ("cinq", "five")]
# (fr 3rd singular, fr 3rd plural, en 3rd singular, en plural)
VERBS = [
    ("mange", "mangent", "eats", "eat"),
    ("voit", "voient", "sees", "see"),
    ("aime", "aiment", "likes", "like"),
    ("suit", "suivent", "follows", "follow"),
    ("regarde", "regardent", "watches", "watch"),
    ("pousse", "poussent", "pushes", "push"),
    ("porte", "portent", "carries", "carry"),
    ("trouve", "trouvent", "finds", "find"),
]
HELDOUT_SHARE = 0.15
KEEP_PAIRS = {("chat", "noir"), ("chien", "blanc"), ("pomme", "rouge")}  # used by the demo and docs


def vocabulary():
    """Every word either language can produce, French first then English, in a fixed order."""
    fr, en = [], []
    fr += ["le", "la", "les", "un", "une", "des", "de"]
    en += ["the", "a", "an", "some"]
    for n in NOUNS:
        fr += [n[0], n[1]]
        en += [n[3], n[4]]
    for a in PRE_ADJS + COLOURS:
        fr += list(a[:4])
        en.append(a[4])
    for f, e in NUMBERS:
        fr.append(f)
        en.append(e)
    for v in VERBS:
        fr += [v[0], v[1]]
        en += [v[2], v[3]]
    out = []
    for w in fr + en:
        if w not in out:
            out.append(w)
    return out


def agree(forms, gender, plural):
    return forms[(2 if plural else 0) + (1 if gender == "f" else 0)]


def noun_phrase(rng, allowed):
    """One noun phrase: (french words, english words, alignment list en_index -> fr_index, (noun, colour)).
    allowed(noun, colour) says whether a (noun, colour) pair may be used."""
    while True:
        noun = NOUNS[rng.integers(len(NOUNS))]
        colour = COLOURS[rng.integers(len(COLOURS))] if rng.random() < 0.7 else None
        if colour is None or allowed(noun[0], colour[0]):
            break
    pre = PRE_ADJS[rng.integers(len(PRE_ADJS))] if rng.random() < 0.4 else None
    plural = rng.random() < 0.45
    g = noun[2]
    fr, en, al = [], [], []  # al[k] = index in fr of the source of en[k]

    def emit(f, e):
        fr.append(f)
        en.append(e)
        al.append(len(fr) - 1)

    if not plural:
        if rng.random() < 0.6:
            emit("le" if g == "m" else "la", "the")
        else:
            emit("un" if g == "m" else "une", "a")
    else:
        r = rng.random()
        if r < 0.35:
            emit("les", "the")
        elif r < 0.6:
            emit("de" if pre else "des", "some")
        else:
            num = NUMBERS[rng.integers(len(NUMBERS))]
            if r < 0.8:
                emit("les", "the")
            emit(num[0], num[1])
    # English order: pre-adjective, colour, noun; French: pre-adjective, noun, colour
    i_pre = i_noun = i_col = None
    if pre:
        fr.append(agree(pre[:4], g, plural))
        i_pre = len(fr) - 1
    fr.append(noun[1] if plural else noun[0])
    i_noun = len(fr) - 1
    if colour:
        fr.append(agree(colour[:4], g, plural))
        i_col = len(fr) - 1
    if pre:
        en.append(pre[4])
        al.append(i_pre)
    if colour:
        en.append(colour[4])
        al.append(i_col)
    en.append(noun[4] if plural else noun[3])
    al.append(i_noun)
    if en[0] == "a" and en[1][0] in "aeiou":  # "an apple", "an old dog"
        en[0] = "an"
    return fr, en, al, (noun[0], colour[0] if colour else None), plural


def sentence(rng, allowed):
    fr1, en1, al1, p1, pl1 = noun_phrase(rng, allowed)
    pairs = [p1]
    if rng.random() < 0.3:
        return fr1, en1, al1, pairs
    verb = VERBS[rng.integers(len(VERBS))]
    fr2, en2, al2, p2, _ = noun_phrase(rng, allowed)
    pairs.append(p2)
    fr = fr1 + [verb[1] if pl1 else verb[0]] + fr2
    en = en1 + [verb[3] if pl1 else verb[2]] + en2
    al = al1 + [len(fr1)] + [len(fr1) + 1 + a for a in al2]
    return fr, en, al, pairs


def fmt(fr, en, al):
    return "%s\t%s\t%s\n" % (" ".join(fr), " ".join(en), " ".join("%d-%d" % (a, j) for j, a in enumerate(al)))


def heldout_pairs(seed):
    rng = np.random.Generator(np.random.PCG64([seed, 7]))
    cands = [(n[0], c[0]) for n in NOUNS for c in COLOURS if (n[0], c[0]) not in KEEP_PAIRS]
    k = int(round(HELDOUT_SHARE * len(NOUNS) * len(COLOURS)))
    pick = rng.permutation(len(cands))[:k]
    return sorted(cands[i] for i in pick)


def generate(seed, n_train, n_valid, n_test):
    held = set(heldout_pairs(seed))
    rng = np.random.Generator(np.random.PCG64([seed, 1]))

    def seen_ok(noun, col):
        return (noun, col) not in held

    train, valid, seen = [], [], set()
    while len(train) + len(valid) < n_train + n_valid:
        fr, en, al, _ = sentence(rng, seen_ok)
        key = " ".join(fr)
        line = fmt(fr, en, al)
        if len(train) < n_train:
            train.append(line)  # duplicates allowed: short phrases are frequent, as in real text
            seen.add(key)
        elif key not in seen:  # valid: sentences not in train
            seen.add(key)
            valid.append(line)
    rng_t = np.random.Generator(np.random.PCG64([seed, 2]))
    test, test_seen = [], set()
    while len(test) < n_test:
        fr, en, al, pairs = sentence(rng_t, lambda n, c: True)
        key = " ".join(fr)
        if not any(p in held for p in pairs) or key in test_seen:
            continue
        test_seen.add(key)
        test.append(fmt(fr, en, al))
    return train, valid, test, sorted(held)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--train", type=int, default=40000)
    ap.add_argument("--valid", type=int, default=1000)
    ap.add_argument("--test", type=int, default=500)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    train, valid, test, held = generate(args.seed, args.train, args.valid, args.test)
    for name, lines in (("train.tsv", train), ("valid.tsv", valid), ("test.tsv", test)):
        with open(os.path.join(args.out, name), "w", encoding="utf-8") as f:
            f.writelines(lines)
    with open(os.path.join(args.out, "heldout_pairs.txt"), "w", encoding="utf-8") as f:
        f.writelines("%s %s\n" % p for p in held)
    print("corpus: %d train, %d valid, %d held-out test sentences, %d held-out (noun, colour) pairs, %d words -> %s"
          % (len(train), len(valid), len(test), len(held), len(vocabulary()), args.out))


if __name__ == "__main__":
    main()
