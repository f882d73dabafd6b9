#!/usr/bin/python3
"""Executes tests/python/viewers.ipynb headless (Debian's python3-nbclient + python3-ipykernel) and prepares
its outputs for the browser test (tests/browser/notebook.test.mjs).

    run_notebook.py NOTEBOOK OUTDIR    (env: AV_NB_TRACE_A, AV_NB_TRACE_B, AV_NB_ARRAYS, AV_NB_TOKENS)

Writes OUTDIR/executed.ipynb; OUTDIR/notebook.html: every HTML output in order in one document, as a notebook
front end shows them; OUTDIR/expect.json: per viewer, the tokens and weights it must show, read from the trace
files and arrays with numpy (scripts/safetensors_np.py), not through attnviz. Prints PASS/FAIL lines."""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import safetensors_np as st  # noqa: E402


def report(name, ok, why=""):
    print("PASS %s" % name if ok else "FAIL %s: %s" % (name, why))
    return ok


def execute(path, out):
    import nbclient
    import nbformat
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": out}})
    try:
        client.execute()
    except Exception as e:  # nbclient raises CellExecutionError with the cell's traceback
        report("python_notebook_executes", False, str(e).strip().splitlines()[-1])
        return None
    nbformat.write(nb, os.path.join(out, "executed.ipynb"))
    report("python_notebook_executes", True)
    return nb


def html_outputs(nb):
    """The text/html of every output of every code cell, in order: [(cell index, html)]."""
    outs = []
    for i, cell in enumerate(nb.cells):
        for o in cell.get("outputs", []):
            if "text/html" in o.get("data", {}):
                outs.append((i, o["data"]["text/html"]))
    return outs


def samples(attn, kind, layer, head):
    """(q, k, weight) of three cells of one head: the first row's first key, and the last row's two largest."""
    a = attn[head]
    last = a.shape[0] - 1
    ks = np.argsort(-a[last])[:2]
    return [{"kind": kind, "layer": layer, "head": head, "q": q, "k": int(k), "value": float(a[q, k])}
            for q, k in [(0, 0), (last, ks[0]), (last, ks[1])]]


def expectations():
    ta, ma = st.read(os.environ["AV_NB_TRACE_A"])
    tb, mb = st.read(os.environ["AV_NB_TRACE_B"])
    arrays = np.load(os.environ["AV_NB_ARRAYS"])
    tokens = json.load(open(os.environ["AV_NB_TOKENS"]))
    last = len(arrays.files) - 1
    return [
        {"name": "trace A (repr)", "view": "heatmap", "kind": "self", "q_labels": json.loads(ma["tokens"]),
         "cells": samples(ta["attn.self.1"], "self", 1, 3)},
        {"name": "trace B (show head)", "view": "head", "kind": "cross", "layer": 1, "heads": [0, 2],
         "q_labels": json.loads(mb["target_tokens"]), "k_labels": json.loads(mb["source_tokens"]),
         "cells": samples(tb["attn.cross.1"], "cross", 1, 2)},
        {"name": "head_view (arrays)", "view": "head", "kind": "self", "q_labels": tokens,
         "cells": samples(arrays["arr_%d" % last], "self", last, 1)},
    ]


def main():
    path, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    nb = execute(path, out)
    if nb is None:
        return 1
    outs = html_outputs(nb)
    viewers = [h for _, h in outs if "<iframe" in h and "srcdoc=" in h and "av-meta" in h]
    overview = [h for _, h in outs if "pooled overview" in h and "data:image/png;base64," in h]
    report("python_notebook_outputs_viewers", len(viewers) == 3 and len(overview) == 1,
           "expected 3 viewers and 1 overview among the outputs, got %d and %d" % (len(viewers), len(overview)))
    body = "\n".join('<div class="output" data-cell="%d">%s</div>' % (i, h) for i, h in outs)
    with open(os.path.join(out, "notebook.html"), "w") as f:
        f.write('<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>attnviz notebook outputs</title>'
                "</head><body>\n%s\n</body></html>\n" % body)
    with open(os.path.join(out, "expect.json"), "w") as f:
        json.dump(expectations(), f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
