#!/usr/bin/python3
"""The grammar of attnviz's text-to-image demo data: captioned 32x32 RGB scenes of colored shapes.

Captions (word-level, lowercase, single spaces):
  single   "a [small|big] COLOR SHAPE"                      one object near the middle
  relation "a COLOR SHAPE REL a COLOR SHAPE"                two objects; REL = above | below | left of | right of
  count    "two COLOR SHAPEs"                               two identical objects, side by side or stacked
COLOR: red, green, blue, yellow, purple, white (PALETTE below); SHAPE: circle, square, triangle (pointing up).
Background: always black. Objects never touch (>= 2 background pixels between their bounding boxes).

Geometry, in pixels (pixel (row i, column j) has its center at (x, y) = (j + 0.5, i + 0.5)): an object is an
integer bounding box [x0, x0 + s) x [y0, y0 + s) of side s, center (cx, cy) = (x0 + s/2, y0 + s/2), and covers
the pixels whose centers satisfy
  square    always (the whole box)
  circle    (x - cx)^2 + (y - cy)^2 <= (s/2)^2
  triangle  |x - cx| <= (y - y0) / 2          (apex at the top middle, base = the bottom edge)
Sizes: single objects small 5..7, big 13..16, unsized 8..12; relation and count objects 7..11.
Places (centers, uniform, then rounded to the integer box): a single object at 16 +- 4 on both axes. Two objects
sit in two slots along an axis: centers at 8.5 +- 2 and 23.5 +- 2 along it, and 16 +- 3 across it with the two
centers at most 4 px apart across (redrawn until the boxes are >= 2 px apart). "A above B" puts A in the top
slot, "below" in the bottom one, "left of" / "right of" likewise on the horizontal axis; a count scene picks the
axis at random. So the relation is always the dominant axis between the two centers. The layouts are kept
this regular on purpose: with objects anywhere on the canvas, a 2M-parameter transformer denoiser trained for
an hour on 2 CPU cores only learned scattered patches (two such runs, 1,800 steps each), because it has to learn
to agree on a layout from pure noise; with slots it learns crisp objects in the same time.

Held-out captions: a seed-chosen set of (color, shape, relation) triples of the FIRST object of a relation
caption ("a yellow square left of ..."); no training caption has one. Each relation gets two triples, all eight
(color, shape) pairs differ, and the demo's "red circle above" is never held out. Every color and shape still
occurs in training, also in that relation as the second object.

Deterministic: everything is drawn from numpy's PCG64 seeded by the caller.
"""

import numpy as np

SIZE = 32
PALETTE = {  # RGB of each color word
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (50, 90, 230),
    "yellow": (235, 215, 40),
    "purple": (160, 60, 200),
    "white": (235, 235, 235),
}
BACKGROUND = (0, 0, 0)
COLORS = list(PALETTE)
SHAPES = ["circle", "square", "triangle"]
PLURAL = {"circle": "circles", "square": "squares", "triangle": "triangles"}
RELATIONS = ["above", "below", "left of", "right of"]
SIZE_WORDS = {"small": (5, 7), "big": (13, 16), None: (8, 12)}
PAIR_SIZES = (7, 11)
GAP, MAX_OFFSET = 2, 4
SINGLE_JITTER, SLOT_JITTER, CROSS_JITTER = 4, 2, 3
DEMO_TRIPLE = ("red", "circle", "above")
KIND_P = {"single": 0.2, "relation": 0.65, "count": 0.15}


def vocabulary():
    """Every word a caption can contain, in a fixed order."""
    words = ["a", "two", "small", "big"] + COLORS + SHAPES + [PLURAL[s] for s in SHAPES]
    for r in RELATIONS:
        words += [w for w in r.split() if w not in words]
    return words


def heldout_triples(seed):
    """The seed's eight held-out (color, shape, relation) triples (see the module docstring)."""
    rng = np.random.Generator(np.random.PCG64(seed + 7919))
    pairs = [(c, s) for c in COLORS for s in SHAPES]
    while True:
        pick = rng.permutation(len(pairs))[:2 * len(RELATIONS)]
        out = [pairs[p] + (RELATIONS[i // 2],) for i, p in enumerate(pick)]
        if DEMO_TRIPLE not in out:
            return out


def caption(scene):
    """The caption of a scene dict {kind, objects: [{color, shape, ...}], relation, size_word}."""
    o = scene["objects"]
    if scene["kind"] == "single":
        size = scene["size_word"] + " " if scene["size_word"] else ""
        return "a %s%s %s" % (size, o[0]["color"], o[0]["shape"])
    if scene["kind"] == "count":
        return "two %s %s" % (o[0]["color"], PLURAL[o[0]["shape"]])
    return "a %s %s %s a %s %s" % (o[0]["color"], o[0]["shape"], scene["relation"], o[1]["color"], o[1]["shape"])


def _obj(color, shape, x0, y0, s):
    return {"color": color, "shape": shape, "x0": int(x0), "y0": int(y0), "size": int(s)}


def _box(c, s):
    """integer corner of a box of side s centered near c, inside the canvas"""
    return int(min(max(round(c - s / 2), 0), SIZE - s))


def _place_pair(rng, axis, s1, s2):
    """Top-left corners (x, y) of two objects (sizes s1, s2) in the first and second slot along axis
    ("y": top then bottom, "x": left then right)."""
    while True:
        m1, m2 = _box(8.5 + rng.uniform(-SLOT_JITTER, SLOT_JITTER), s1), _box(23.5 + rng.uniform(-SLOT_JITTER,
                                                                                                  SLOT_JITTER), s2)
        c = 16 + rng.uniform(-CROSS_JITTER, CROSS_JITTER)
        c1, c2 = c, c + rng.uniform(-MAX_OFFSET, MAX_OFFSET)
        x1, x2 = _box(c1, s1), _box(c2, s2)
        if m1 + s1 + GAP <= m2 and abs(x1 + s1 / 2 - x2 - s2 / 2) <= MAX_OFFSET:
            break
    if axis == "y":
        return (x1, m1), (x2, m2)
    return (m1, x1), (m2, x2)


def sample_scene(rng, held=(), kind=None, want_held=False):
    """One random scene. held: held-out triples; want_held False: avoid them, True: the relation caption's
    first object is one of them (kind forced to "relation")."""
    if want_held:
        kind = "relation"
    if kind is None:
        kind = rng.choice(list(KIND_P), p=list(KIND_P.values()))
    if kind == "single":
        size_word = [None, "small", "big"][rng.choice(3, p=[0.5, 0.25, 0.25])]
        lo, hi = SIZE_WORDS[size_word]
        s = int(rng.integers(lo, hi + 1))
        cx, cy = 16 + rng.uniform(-SINGLE_JITTER, SINGLE_JITTER, size=2)
        o = _obj(COLORS[rng.integers(6)], SHAPES[rng.integers(3)], _box(cx, s), _box(cy, s), s)
        return {"kind": kind, "objects": [o], "relation": None, "size_word": size_word}
    if kind == "count":
        color, shape = COLORS[rng.integers(6)], SHAPES[rng.integers(3)]
        s1, s2 = (int(v) for v in rng.integers(PAIR_SIZES[0], PAIR_SIZES[1] + 1, size=2))
        (x1, y1), (x2, y2) = _place_pair(rng, "xy"[rng.integers(2)], s1, s2)
        objs = [_obj(color, shape, x1, y1, s1), _obj(color, shape, x2, y2, s2)]
        return {"kind": kind, "objects": objs, "relation": None, "size_word": None}
    while True:
        if want_held:
            c1, sh1, rel = held[rng.integers(len(held))]
        else:
            c1, sh1, rel = COLORS[rng.integers(6)], SHAPES[rng.integers(3)], RELATIONS[rng.integers(4)]
            if (c1, sh1, rel) in held:
                continue
        c2, sh2 = COLORS[rng.integers(6)], SHAPES[rng.integers(3)]
        if (c1, sh1) != (c2, sh2):
            break
    s1, s2 = (int(v) for v in rng.integers(PAIR_SIZES[0], PAIR_SIZES[1] + 1, size=2))
    axis = "y" if rel in ("above", "below") else "x"
    if rel in ("below", "right of"):  # A takes the second slot
        second, first = _place_pair(rng, axis, s2, s1)
    else:
        first, second = _place_pair(rng, axis, s1, s2)
    return {"kind": kind, "objects": [_obj(c1, sh1, first[0], first[1], s1), _obj(c2, sh2, second[0], second[1], s2)],
            "relation": rel, "size_word": None}


_YY, _XX = np.mgrid[0:SIZE, 0:SIZE] + 0.5  # pixel centers (y, x)


def mask(o):
    """bool (SIZE, SIZE): the pixels object o covers."""
    s, x0, y0 = o["size"], o["x0"], o["y0"]
    cx, cy = x0 + s / 2, y0 + s / 2
    box = (_XX >= x0) & (_XX < x0 + s) & (_YY >= y0) & (_YY < y0 + s)
    if o["shape"] == "circle":
        return box & ((_XX - cx) ** 2 + (_YY - cy) ** 2 <= (s / 2) ** 2)
    if o["shape"] == "triangle":
        return box & (np.abs(_XX - cx) <= (_YY - y0) / 2)
    return box


def render(scene):
    """uint8 (3, SIZE, SIZE) image of a scene."""
    img = np.empty((SIZE, SIZE, 3), np.uint8)
    img[:] = BACKGROUND
    for o in scene["objects"]:
        img[mask(o)] = PALETTE[o["color"]]
    return np.ascontiguousarray(img.transpose(2, 0, 1))


def parse_caption(text):
    """Caption -> (kind, [(color, shape)], relation, size_word); None if the grammar cannot produce it."""
    w = text.split()
    if len(w) in (3, 4) and w[0] == "a" and w[-1] in SHAPES and w[-2] in COLORS:
        size = w[1] if len(w) == 4 else None
        if size is None or size in ("small", "big"):
            return "single", [(w[-2], w[-1])], None, size
    if len(w) == 3 and w[0] == "two" and w[1] in COLORS and w[2] in PLURAL.values():
        shape = [s for s in SHAPES if PLURAL[s] == w[2]][0]
        return "count", [(w[1], shape)] * 2, None, None
    for rel in RELATIONS:
        r = rel.split()
        if len(w) == 6 + len(r) and w[0] == "a" and w[3:3 + len(r)] == r and w[3 + len(r)] == "a":
            (c1, s1), (c2, s2) = (w[1], w[2]), (w[-2], w[-1])
            if c1 in COLORS and c2 in COLORS and s1 in SHAPES and s2 in SHAPES:
                return "relation", [(c1, s1), (c2, s2)], rel, None
    return None
