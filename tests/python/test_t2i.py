"""Trace.daam on a text-to-image trace (models/demo-t2i): the maps equal the ones the C engine wrote at run time
(daam.words, read by numpy), a step/layer/head selection equals scripts/t2i/daam.py's (numpy + PyTorch's
F.interpolate) on the trace's daam.raw, word groups and bad selections behave as documented, and a run made in
Python (attnviz.run) gives the same maps as the CLI's."""
import json
import os
import sys

import numpy as np
import pytest

import attnviz
import safetensors_np as st

PROMPT = "a red circle above a blue square"


@pytest.fixture(scope="module")
def t2i_cli(tmp_path_factory, cli, root):
    model = os.path.join(root, "models", "demo-t2i")
    if not os.path.exists(os.path.join(model, "model.safetensors")):
        pytest.skip("models/demo-t2i is missing")
    path = tmp_path_factory.mktemp("t2i") / "t.safetensors"
    cli("run", "--model", model, "--text", PROMPT, "--seed", "1", "--steps", "25", "-o", path)
    tensors, meta = st.read(str(path))
    return model, path, tensors, meta


def reference(tensors, meta, steps, layers, heads):
    """scripts/t2i/daam.py (the training scripts' DAAM) on the trace's daam.raw"""
    pytest.importorskip("torch")
    sys.path.insert(0, os.path.join(os.path.dirname(st.__file__), "t2i"))
    import daam
    g = int(meta["patch_grid"].split("x")[0])
    N, L, H, _ = tensors["daam.raw"].shape
    S = len(json.loads(meta["prompt_tokens"]))
    probs = np.zeros((N, L, H, 1 + g * g, S), np.float32)  # row 0 (the time token) is not stored, not used
    probs[:, :, :, 1:, :] = tensors["daam.raw"].reshape(N, L, H, S, g * g).transpose(0, 1, 2, 4, 3)
    return daam.word_maps(probs, g, tensors["image"].shape[1], steps, layers, heads)


def test_daam_equals_the_runs_maps(t2i_cli):
    _, path, tensors, meta = t2i_cli
    t = attnviz.load(path)
    maps = t.daam()
    assert maps.dtype == np.float32 and maps.shape == tensors["daam.words"].shape
    np.testing.assert_allclose(maps, tensors["daam.words"], atol=1e-6)
    toks = json.loads(meta["prompt_tokens"])
    np.testing.assert_array_equal(t.daam("red"), maps[toks.index("red")])
    np.testing.assert_array_equal(t.daam(toks.index("blue")), maps[toks.index("blue")])


def test_daam_selection_equals_reference(t2i_cli):
    _, path, tensors, meta = t2i_cli
    t = attnviz.load(path)
    L, H = tensors["daam.raw"].shape[1:3]
    cases = [((5, 20), (1, L), None), (range(0, 10), None, 1), (24, 0, (0, H))]
    for steps, layers, heads in cases:
        got = t.daam(steps=steps, layers=layers, heads=heads)
        rng = [as_list(x, n) for x, n in ((steps, 25), (layers, L), (heads, H))]
        want = reference(tensors, meta, *rng)
        assert np.abs(got - want).max() < 1e-5, (steps, layers, heads)
    # one head alone differs from all heads summed (the selection is applied)
    assert np.abs(t.daam("red", heads=1) - t.daam("red")).max() > 1e-3


def as_list(sel, n):
    if sel is None:
        return None
    if isinstance(sel, int):
        return [sel]
    return list(range(sel.start, sel.stop)) if isinstance(sel, range) else list(range(*sel))


def test_daam_word_group_and_errors(t2i_cli):
    _, path, _, meta = t2i_cli
    t = attnviz.load(path)
    toks = json.loads(meta["prompt_tokens"])
    both = [j for j, w in enumerate(toks) if w == "a"]
    m = t.daam().astype(np.float64)[both].sum(axis=0)
    np.testing.assert_allclose(t.daam("a"), (m - m.min()) / (m.max() - m.min() + 1e-8), atol=1e-6)
    with pytest.raises(KeyError, match="banana"):
        t.daam("banana")
    with pytest.raises(attnviz.AttnvizError, match="step range"):
        t.daam(steps=(5, 5))
    with pytest.raises(attnviz.AttnvizError, match="head range"):
        t.daam(heads=(0, 99))
    with pytest.raises(ValueError, match="DAAM layers"):
        t.daam(layers="all")


def test_daam_of_a_python_run(t2i_cli):
    model, _, tensors, _ = t2i_cli
    t = attnviz.run(model, text=PROMPT)  # the model's default seed (1) and steps (25), as the CLI run
    np.testing.assert_allclose(t.daam(), tensors["daam.words"], atol=1e-6)


def test_daam_needs_a_t2i_trace(tmp_path, cli, induction):
    path = tmp_path / "ind.safetensors"
    cli("run", "--model", induction, "--text", "ab ab", "-o", path)
    with pytest.raises(attnviz.AttnvizError, match="no DAAM data"):
        attnviz.load(path).daam()
