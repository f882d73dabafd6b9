#!/usr/bin/python3
"""The one random number generator of the demo-t2i sampler, written so that C reproduces it bit for bit.

    splitmix64 (Steele, Lea, Flood 2014; the seeding generator of xoshiro):
        state = seed (uint64)
        next(): state += 0x9E3779B97F4A7C15            (mod 2^64)
                z = state
                z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9  (mod 2^64)
                z = (z ^ (z >> 27)) * 0x94D049BB133111EB  (mod 2^64)
                return z ^ (z >> 31)
    uniform(): (next() >> 11) * 2^-53                  a double in [0, 1), exact
    normals, two per pair of uniforms (Box-Muller, every operation in IEEE double):
        u1 = 1.0 - uniform()                           in (0, 1]: log(u1) is finite
        u2 = uniform()
        r  = sqrt(-2.0 * log(u1));  a = 2.0 * pi * u2  (pi = 3.141592653589793, the double nearest pi)
        z0 = r * cos(a);  z1 = r * sin(a)              emitted in this order: z0, then z1
    float32 value = the double rounded to nearest float32 (a C cast).

n normals (n odd: the last pair's z1 is dropped) fill a tensor in C order (row-major). The sampler's initial
noise for seed s is normals(s, 3 * H * W) as x_T [3, H, W]. Test vectors: `rng.py --vectors` and
docs/T2I_MODEL.md.

Python's float is an IEEE double and math.log/cos/sin/sqrt call the C library, so this module and a C
implementation with the same libm agree exactly; across libms they may differ in the last bit of a double,
which the float32 rounding hides (almost always; never by more than 1 float32 ulp).
"""

import math
import sys

import numpy as np

MASK64 = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & MASK64

    def next_u64(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def uniform(self):
        return (self.next_u64() >> 11) * (1.0 / 9007199254740992.0)  # 2^-53

    def normal_pair(self):
        u1 = 1.0 - self.uniform()
        u2 = self.uniform()
        r = math.sqrt(-2.0 * math.log(u1))
        a = 2.0 * math.pi * u2
        return r * math.cos(a), r * math.sin(a)


def normals64(seed, n):
    """n standard normals as float64, in the generator's order."""
    g = SplitMix64(seed)
    out = []
    while len(out) < n:
        out.extend(g.normal_pair())
    return np.array(out[:n], dtype=np.float64)


def normals(seed, shape):
    """A float32 tensor of the given shape filled in C order with the seed's normals."""
    n = int(np.prod(shape))
    return normals64(seed, n).astype(np.float32).reshape(shape)


def vectors():
    """Test vectors printed into docs/T2I_MODEL.md."""
    lines = []
    for seed in (0, 1, 42):
        g = SplitMix64(seed)
        u = [g.next_u64() for _ in range(3)]
        lines.append("seed %d: next_u64 = %s" % (seed, ", ".join("0x%016x" % x for x in u)))
        g = SplitMix64(seed)
        lines.append("seed %d: uniform = %s" % (seed, ", ".join(repr(g.uniform()) for _ in range(2))))
        z = normals(seed, (4,))
        lines.append("seed %d: float32 normals = %s (bits %s)" % (
            seed, ", ".join("%.9g" % v for v in z), ", ".join("0x%08x" % b for b in z.view(np.uint32))))
    return lines


if __name__ == "__main__":
    if sys.argv[1:] != ["--vectors"]:
        sys.exit("usage: rng.py --vectors")
    print("\n".join(vectors()))
