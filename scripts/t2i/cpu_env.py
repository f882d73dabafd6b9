#!/usr/bin/python3
"""Environment for PyTorch on the CPU, set before torch is imported (OpenBLAS and OpenMP read it when they load).

Debian's OpenBLAS 0.3.21 does not know recent Xeons and falls back to SSE3 kernels (about 2.5x slower here);
OPENBLAS_CORETYPE=SkylakeX selects its AVX-512 kernels, so it is set when the CPU has AVX-512 (and never on
other CPUs, where those kernels would not run). OMP_WAIT_POLICY=PASSIVE: no spinning threads on a shared
machine. Variables already set by the caller win. Results stay deterministic on one machine either way; the
kernel choice can change the last bits of float32 sums, so which one ran is printed.
"""

import os


def setup():
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if "OPENBLAS_CORETYPE" not in os.environ:
        try:
            flags = open("/proc/cpuinfo").read()
        except OSError:
            flags = ""
        if " avx512f " in flags:
            os.environ["OPENBLAS_CORETYPE"] = "SkylakeX"
    return os.environ.get("OPENBLAS_CORETYPE", "(OpenBLAS default)")
