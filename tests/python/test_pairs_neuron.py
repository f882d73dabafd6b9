"""Sentence pairs (text_pair=), kept queries and keys (keep_qk=) and every viewer view from Python, checked
against numpy on the trace's own tensors and against the CLI's page choices."""
import json

import numpy as np
import pytest

import attnviz


def test_keep_qk_recomputes_the_attention(induction):
    """keep_qk=True stores q/k next to the matrices; softmax(q k^T * scale) with the causal mask, computed here
    in float64, equals the stored attention of layer 1."""
    m = attnviz.Model(induction)
    t = m.run(text="the cat sat on the mat the cat", keep_qk=True)
    assert not t.is_lazy
    qk = t.queries_keys(1)
    q, k, scale = qk["q"].astype(np.float64), qk["k"].astype(np.float64), qk["scale"]
    assert qk["causal"] and qk["softcap"] == 0 and not qk["has_rel_bias"]
    att = t.attention(1)
    heads, groups = q.shape[0], k.shape[0]
    for h in range(heads):
        s = q[h] @ k[h // (heads // groups)].T * scale
        s[np.triu_indices(len(s), 1)] = -np.inf
        p = np.exp(s - s.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        assert np.abs(p - att[h]).max() < 1e-5


def test_keep_qk_survives_saving(induction, tmp_path):
    t = attnviz.Model(induction).run(text="the cat sat on the mat", keep_qk=True)
    loaded = attnviz.load(t.save(str(tmp_path / "qk.safetensors")))
    assert loaded.meta("qk") == "1"
    assert np.array_equal(loaded.queries_keys(0)["q"], t.queries_keys(0)["q"])


def test_without_keep_qk_there_are_no_queries(induction):
    t = attnviz.Model(induction).run(text="the cat sat")
    with pytest.raises(attnviz.AttnvizError):
        t.queries_keys(0)


def test_neuron_view_page(induction):
    """The neuron view's page carries the queries and keys when the trace kept them, and says how to get them
    when it did not."""
    model = attnviz.Model(induction)
    with_qk = model.run(text="the cat sat on the mat", keep_qk=True).html(view="neuron")
    without = model.run(text="the cat sat on the mat").html(view="neuron")
    note = "this trace keeps no queries and keys"
    assert note not in with_qk and note in without
    assert len(with_qk) > len(without)


def test_qkmap_view_page(induction):
    """The Q/K map opens on traces that keep queries and keys (its data in the page) and is refused without."""
    model = attnviz.Model(induction)
    page = model.run(text="the cat sat on the mat", keep_qk=True).html(view="qkmap", layer=1, head=2)
    assert '"view":"qkmap"' in page and '"qkmap":{' in page
    with pytest.raises(attnviz.AttnvizError, match="--keep-qk"):
        model.run(text="the cat sat on the mat").html(view="qkmap")


def test_every_library_view_is_accepted(induction):
    t = attnviz.Model(induction).run(text="the cat sat")
    for view in ("heatmap", "model", "head", "summary", "rollout", "norm"):
        assert t.html(view=view).startswith("<!DOCTYPE html>") or "<html" in t.html(view=view)[:200]
    with pytest.raises(ValueError):
        t.html(view="no-such-view")


def test_text_pair_has_token_types(root, tmp_path):
    """A BERT sentence pair: [CLS] a [SEP] b [SEP], token types 0 then 1, sentence_b_start at b's first token
    (the head view's sentence A/B filter reads it)."""
    bert = root + "/tests/fixtures/tiny/bert"
    vocab_size = json.load(open(bert + "/config.json"))["vocab_size"]
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + ["w%d" % i for i in range(4, vocab_size)]) +
                     "\n")
    t = attnviz.Model(bert, tokenizer=str(vocab)).run(text="w7 w19 w33", text_pair="w25 w6")
    assert t.tokens == ["[CLS]", "w7", "w19", "w33", "[SEP]", "w25", "w6", "[SEP]"]
    assert json.loads(t.meta("token_type_ids")) == [0] * 5 + [1] * 3 and t.meta("sentence_b_start") == "5"
    with pytest.raises(ValueError):
        attnviz.Model(bert, tokenizer=str(vocab)).run(ids=[2, 7, 3], text_pair="w25")


def test_head_view_sentence_b_start_reaches_the_page():
    att = np.full((1, 2, 4, 4), 0.25, dtype=np.float32)
    html = attnviz.head_view([att], ["a", "b", "c", "d"], sentence_b_start=2, html_action="return")
    assert "sentence_b_start" in html.data and "sentence B" in html.data
