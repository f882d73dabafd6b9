"""Attribution and the logit lens from Python (docs/ATTRIBUTION.md): Model.attribute / Model.lens give the
numbers `attnviz attribute` / `attnviz lens` write (read back here by scripts/safetensors_np.py, an independent
numpy reader), Trace.attribution / attribution_targets / lens are views of them, and the trace contract holds:
occlusion is log p(target) with the input minus log p(target) with the token replaced (checked against log
probabilities the tests compute from the model's own logits, and against the same method computed by hand
through Model.run), every source position including BOS is attributed, the lens's last entry is the model's
output."""
import json

import numpy as np
import pytest

import attnviz
import safetensors_np as st

TEXT, TARGET = "Once upon a time, Lily saw", " a big ball"


@pytest.fixture(scope="module")
def model(stories):
    return attnviz.Model(stories)


def _logp_rows(trace):
    """log-softmax of the trace's logits, float64."""
    z = trace.logits.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def test_attribute_matches_cli(model, stories, cli, tmp_path):
    cli("attribute", "--model", stories, "--text", TEXT, "--target", TARGET, "--method", "occlusion,ig,attn-grad",
        "--steps", "32", "--quiet", "-o", tmp_path / "a.st")
    ref, meta = st.read(str(tmp_path / "a.st"))
    t = model.attribute(text=TEXT, target=TARGET, method=["occlusion", "ig", "attn-grad"], steps=32)
    assert sorted(t.attribution_methods) == ["attn-grad", "ig", "occlusion"]
    S, N = t.source_len, len(t.tokens) - t.source_len
    assert S == int(meta["source_len"]) == 8 and t.tokens[0] == "<s>"
    for m in ("occlusion", "ig", "attn-grad"):
        a = t.attribution(m)
        assert a.shape == (N, S) and a.dtype == np.float32 and not a.flags.writeable
        np.testing.assert_allclose(a, ref["attr." + m], atol=2e-5)
    tg = t.attribution_targets()
    np.testing.assert_array_equal(tg["ids"], ref["attr.target_ids"])
    np.testing.assert_array_equal(tg["rows"], np.arange(S - 1, S - 1 + len(tg["ids"])))
    assert tg["labels"] == json.loads(meta["attr.target_labels"])
    assert ref["attr.attn-grad.heads"].shape == (N, 5, 8, S)
    assert np.abs(tg["ig_delta"]).max() < 0.1  # 32 Gauss-Legendre points on a real model


def test_occlusion_is_logp_difference(model):
    """The trace contract, checked by hand: each column is log p(target | input) minus log p(target | that token
    replaced by the baseline), with log p from the logits of ordinary runs."""
    t = model.attribute(text=TEXT, target=TARGET, baseline=0)
    ids = [int(i) for i in t.token_ids]
    S, tg = t.source_len, t.attribution_targets()
    base = _logp_rows(model.run(ids=ids, logits=True))
    f0 = np.array([base[r, i] for r, i in zip(tg["rows"], tg["ids"])])
    np.testing.assert_allclose(tg["logprobs"], f0, atol=1e-4)
    occ = t.attribution("occlusion")
    for j in range(S):
        pert = list(ids)
        pert[j] = 0
        lp = _logp_rows(model.run(ids=pert, logits=True))
        fj = np.array([lp[r, i] for r, i in zip(tg["rows"], tg["ids"])])
        np.testing.assert_allclose(occ[:, j], f0 - fj, atol=1e-4)


def test_lens_matches_cli_and_output(model, stories, cli, tmp_path):
    cli("lens", "--model", stories, "--text", TEXT, "--k", "4", "-o", tmp_path / "l.st")
    ref, meta = st.read(str(tmp_path / "l.st"))
    t = model.lens(text=TEXT, k=4)
    lens = t.lens()
    for key in ("topk_ids", "topk_logprobs", "target_ids", "target_logprobs", "target_ranks"):
        np.testing.assert_allclose(lens[key], ref["lens." + key], atol=1e-5, equal_nan=True)
    assert lens["topk_ids"].shape == (6, len(t.tokens), 4)
    assert lens["labels"][int(lens["topk_ids"][0, 1, 0])] == t.tokens[1]  # tied embeddings decode themselves
    out = _logp_rows(model.run(text=TEXT, logits=True))  # the last entry is the model's output
    np.testing.assert_array_equal(lens["topk_ids"][-1, :, 0], out.argmax(axis=1))
    np.testing.assert_allclose(lens["topk_logprobs"][-1, :, 0], out.max(axis=1), atol=1e-4)


def test_saved_and_loaded(model, tmp_path):
    t = model.attribute(text=TEXT, target=TARGET, method="shapley", samples=3, seed=5, attention=False)
    assert t.kinds == []
    t.save(tmp_path / "s.st")
    back = attnviz.load(tmp_path / "s.st")
    np.testing.assert_array_equal(back.attribution(), t.attribution("shapley"))
    again = model.attribute(text=TEXT, target=TARGET, method="shapley", samples=3, seed=5, attention=False)
    np.testing.assert_array_equal(again.attribution(), t.attribution())


def test_errors(model):
    with pytest.raises(ValueError, match="method must be"):
        model.attribute(text=TEXT, method="lime")
    with pytest.raises(ValueError, match="group must be"):
        model.attribute(text=TEXT, group="span:0")
    with pytest.raises(attnviz.AttnvizError, match="removal"):
        model.attribute(text=TEXT, target=TARGET, method="ig", baseline="remove")
    t = model.run(text=TEXT)
    with pytest.raises(attnviz.AttnvizError, match="no attribution"):
        t.attribution()
    with pytest.raises(attnviz.AttnvizError, match="no logit lens"):
        t.lens()
