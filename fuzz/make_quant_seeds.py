#!/usr/bin/python3
"""Seeds of fuzz/gguf_quant.c: tiny GGUF v3 files, one per weight type plus one holding every type, each
tensor a few rows of random block bytes whose f16 scales are finite (so a row expands to ordinary numbers),
with a 1-D, a 2-D and a 3-D tensor per type. Standard library only; deterministic.
Usage: fuzz/make_quant_seeds.py [OUT_DIR]   (default fuzz/corpus/gguf_quant)"""
import os
import random
import struct
import sys

# ggml type id: (name, values per block, bytes per block, byte offsets of the f16 scales in a block)
TYPES = {0: ("f32", 1, 4, []), 1: ("f16", 1, 2, [0]), 30: ("bf16", 1, 2, []), 2: ("q4_0", 32, 18, [0]),
         3: ("q4_1", 32, 20, [0, 2]), 6: ("q5_0", 32, 22, [0]), 7: ("q5_1", 32, 24, [0, 2]),
         8: ("q8_0", 32, 34, [0]), 10: ("q2_k", 256, 84, [80, 82]), 11: ("q3_k", 256, 110, [108]),
         12: ("q4_k", 256, 144, [0, 2]), 13: ("q5_k", 256, 176, [0, 2]), 14: ("q6_k", 256, 210, [208]),
         20: ("iq4_nl", 32, 18, [0]), 23: ("iq4_xs", 256, 136, [0])}


def s_str(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def tensor_bytes(rng, typ, n_values):
    name, block, bbytes, scales = TYPES[typ]
    out = bytearray(rng.getrandbits(8) for _ in range(n_values // block * bbytes))
    for b in range(0, len(out), bbytes):
        for off in scales:  # an f16 of magnitude 2^-8 .. 2^-4 (exponent 7..11), random sign and mantissa
            h = rng.randrange(2) << 15 | rng.randrange(7, 12) << 10 | rng.randrange(1024)
            out[b + off:b + off + 2] = struct.pack("<H", h)
    if typ == 0:
        out = b"".join(struct.pack("<f", rng.uniform(-1, 1)) for _ in range(n_values))
    return bytes(out)


def gguf(rng, types):
    infos, blobs = [], []
    for typ in types:
        name, block = TYPES[typ][:2]
        for suffix, ne in (("vec", [block]), ("mat", [block, 3]), ("cube", [block, 2, 2])):
            infos.append((f"{name}.{suffix}", typ, ne))
    head = b"GGUF" + struct.pack("<IQQ", 3, len(infos), 1) + s_str("general.architecture") + struct.pack("<I", 8)
    head += s_str("llama")
    offset = 0
    for name, typ, ne in infos:
        n = 1
        for d in ne:
            n *= d
        blob = tensor_bytes(rng, typ, n)
        head += s_str(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne)
        head += struct.pack("<IQ", typ, offset)
        blobs.append(blob + b"\0" * ((32 - len(blob) % 32) % 32))
        offset += len(blobs[-1])
    return head + b"\0" * ((32 - len(head) % 32) % 32) + b"".join(blobs)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "gguf_quant")
    os.makedirs(out, exist_ok=True)
    rng = random.Random(20261206)
    for typ, (name, *_) in TYPES.items():
        with open(os.path.join(out, f"{name}.gguf"), "wb") as f:
            f.write(gguf(rng, [typ]))
    with open(os.path.join(out, "all_types.gguf"), "wb") as f:
        f.write(gguf(rng, list(TYPES)))


if __name__ == "__main__":
    main()
