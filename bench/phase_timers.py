#!/usr/bin/env python3
"""Per-phase wall-clock timers for the forward pass (docs/BENCHMARKS.md, "Forward overhead outside the GEMMs").

Patches a COPY of src/model/forward.c (never the working tree you commit from) so that `attnviz run` with
PHASES=1 in the environment prints, at exit, the main thread's wall time per phase summed over the layers:
qkv, attention, vnorm, o_proj, gate_up, swiglu, down, and other (norms, RoPE, residual adds, captures'
copies, between layers). Usage, e.g. for main against a branch:
    git archive main | tar -x -C /tmp/a && python3 bench/phase_timers.py /tmp/a/src/model/forward.c
    (cd /tmp/a && make -j2 build/attnviz)
    PHASES=1 ATTNVIZ_GEMM=avx512 /tmp/a/build/attnviz run --model M --ids @ids.json -o /tmp/x.safetensors
The shares of one run hold still when the host's speed drifts between runs; the seconds do not."""
import sys

TIMERS = r"""#include <stdio.h>
#include <time.h>
static double ph_t[16], ph_last; /* seconds per phase; the last mark */
static const char *ph_n[16];
static double ph_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}
#define PH(i, name)                                                                                          \
    do {                                                                                                     \
        double _t = ph_now();                                                                                \
        if (ph_last > 0) ph_t[i] += _t - ph_last;                                                            \
        ph_n[i] = name, ph_last = _t;                                                                        \
    } while (0)
__attribute__((destructor)) static void ph_dump(void) {
    if (!getenv("PHASES")) return;
    double tot = 0;
    fprintf(stderr, "PHASES");
    for (int i = 0; i < 16; i++)
        if (ph_n[i]) fprintf(stderr, " %s=%.1f", ph_n[i], 1e3 * ph_t[i]), tot += ph_t[i];
    fprintf(stderr, " total=%.1f\n", 1e3 * tot);
}
"""

# (first text of the statement, its end, phase index, name): the time since the previous mark goes to "other"
PHASES = [
    ("    av_matmul_many((float *[]){s->q, kc, vc}", "nt);", 1, "qkv"),
    ("    attend(s, B, 1, kl, vl, seq_stride, ch->pos0 + n, panels, ch, cap, l);", ";", 2, "attention"),
    ("    if (cap->vnorm && cap->vnorm[l]) {", "return -1;\n    }", 3, "vnorm"),
    ("    av_linear_apply(s->xb, s->att, &A->o, rows, s->wscratch, nt);", ";", 4, "o_proj"),
    ("        av_matmul_many((float *[]){s->h1, s->h2}", "nt);", 5, "gate_up"),
    ("            av_swiglu(s->h1, s->h2, len, nt);", ";", 6, "swiglu"),
    ("    av_linear_apply(out, s->h1, &f->down, rows, s->wscratch, nt);", ";", 7, "down"),
]


def patch(s):
    s = s.replace("#include <string.h>\n", "#include <string.h>\n" + TIMERS, 1)
    for start, end, idx, name in PHASES:
        i = s.index(start)
        j = s.index(end, i) + len(end)
        s = s[:i] + '    PH(0, "other");\n' + s[i:j] + '\n    PH(%d, "%s");' % (idx, name) + s[j:]
    head = "int av_stack_run_layer(av_state *s, int l, int n, int pos0, const av_pass *p, av_err *err) {\n"
    k = s.index(head) + len(head)
    s = s[:k] + '    if (ph_last == 0) ph_last = ph_now();\n    PH(0, "other");\n' + s[k:]
    tail = "    av_stack_final_norm(s, n);\n    return 0;"
    return s.replace(tail, '    av_stack_final_norm(s, n);\n    PH(0, "other");\n    return 0;')


if __name__ == "__main__":
    path = sys.argv[1]
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(patch(text))
