"""BertViz-compatible entry points, arrays from Hugging Face / TransformerLens, against `attnviz import` of the
same arrays (the CLI) and the arrays themselves."""
import html
import json
import re

import numpy as np
import pytest

import attnviz
import safetensors_np as st

TOKENS = ["[CLS]", "the", "Ġcat", "▁sat", "on", "[SEP]", "it", "[SEP]"]


def softmax_layers(n_layers, heads, q, k, seed=0, causal=False):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_layers):
        x = rng.normal(size=(1, heads, q, k)) * 2
        if causal:
            x = np.where(np.tril(np.ones((q, k))) > 0, x, -np.inf)
        e = np.exp(x - x.max(-1, keepdims=True))
        out.append((e / e.sum(-1, keepdims=True)).astype(np.float32))
    return tuple(out)


def page_of(markup):
    """The viewer page inside the iframe markup show()/head_view produce."""
    m = re.search(r'<iframe sandbox="allow-scripts"[^>]*srcdoc="([^"]*)"></iframe>', markup)
    assert m, "no sandboxed srcdoc iframe in the markup"
    return html.unescape(m.group(1))


def meta_of(page):
    return json.loads(re.search(r'<script type="application/json" id="av-meta">(.*?)</script>', page, re.S).group(1))


def blob_of(page):
    return re.search(r'<script type="text/plain" id="av-data">(.*?)</script>', page, re.S).group(1)


@pytest.fixture(scope="module")
def hf():
    return softmax_layers(3, 4, len(TOKENS), len(TOKENS))


def test_from_arrays_equals_cli_import(tmp_path, cli, hf):
    np.savez(tmp_path / "a.npz", *[a for a in hf])
    (tmp_path / "tok.json").write_text(json.dumps(TOKENS))
    cli("import", tmp_path / "a.npz", "--tokens", tmp_path / "tok.json", "-o", tmp_path / "i.safetensors")
    ref, meta = st.read(str(tmp_path / "i.safetensors"))
    t = attnviz.from_arrays(hf, TOKENS)
    assert t.tokens == TOKENS == json.loads(meta["tokens"])
    for layer in range(3):
        np.testing.assert_array_equal(t.attention(layer), ref["attn.self.%d" % layer])
        np.testing.assert_array_equal(t.attention(layer), hf[layer][0])


def test_head_view_equals_import(tmp_path, cli, hf):
    """head_view on a Hugging Face tuple embeds exactly the data of `attnviz import` + `attnviz html`."""
    np.savez(tmp_path / "a.npz", *hf)
    (tmp_path / "tok.json").write_text(json.dumps([attnviz.compat.prettify([t])[0] for t in TOKENS]))
    cli("import", tmp_path / "a.npz", "--tokens", tmp_path / "tok.json", "-o", tmp_path / "i.safetensors")
    cli("html", tmp_path / "i.safetensors", "--view", "head", "-o", tmp_path / "i.html")
    ref_page = (tmp_path / "i.html").read_text()
    h = attnviz.head_view(hf, TOKENS, html_action="return")
    page = page_of(h.data)
    assert blob_of(page) == blob_of(ref_page)
    m, r = meta_of(page), meta_of(ref_page)
    assert m["sets"] == r["sets"] and m["labels"] == r["labels"] and m["view"] == "head"
    assert m["labels"]["self"]["q"][2] == " cat" and m["labels"]["self"]["q"][3] == " sat"  # prettified


def test_head_view_torch_and_options(hf):
    torch = pytest.importorskip("torch")
    att = tuple(torch.tensor(a) for a in hf)
    h = attnviz.head_view(att, TOKENS, layer=2, heads=[1, 3], html_action="return", prettify_tokens=False)
    m = meta_of(page_of(h.data))
    assert m["state"] == {"layer": 2, "theme": "dark", "heads": [1, 3]}
    assert m["labels"]["self"]["q"][2] == "Ġcat"
    h = attnviz.head_view(att, TOKENS, layer=2, include_layers=[0, 2], html_action="return")
    m = meta_of(page_of(h.data))
    assert [s["layer"] for s in m["sets"]] == [0, 1] and m["state"]["layer"] == 1
    assert "layers 0, 2" in m["title"]
    t = attnviz.from_arrays(att, TOKENS, include_layers=[0, 2], include_heads=[1])
    np.testing.assert_array_equal(t.attention(1), hf[2][0, [1]])
    h = attnviz.head_view(att, TOKENS, sentence_b_start=6, html_action="return")
    m = meta_of(page_of(h.data))
    assert m["meta"]["sentence_b_start"] == "6" and "sentence B from token 6" in m["title"]


def test_model_view(hf):
    h = attnviz.model_view(hf, TOKENS, display_mode="light", include_heads=[0, 2], html_action="return")
    m = meta_of(page_of(h.data))
    assert m["view"] == "model" and m["state"]["theme"] == "light" and m["sets"][0]["heads"] == 2


def test_bertviz_errors(hf):
    with pytest.raises(ValueError, match="'tokens' is required"):
        attnviz.head_view(hf)
    with pytest.raises(ValueError, match="html_action"):
        attnviz.head_view(hf, TOKENS, html_action="show")
    with pytest.raises(ValueError, match="Layer 1 is not in include_layers"):
        attnviz.head_view(hf, TOKENS, layer=1, include_layers=[0, 2], html_action="return")
    with pytest.raises(ValueError, match="at least one attention"):
        attnviz.model_view(html_action="return")
    with pytest.raises(attnviz.AttnvizError, match="gives 4 x 4|tokens give"):
        attnviz.head_view(hf, TOKENS[:4], html_action="return")
    bad = list(hf)
    bad[1] = bad[1] * 0.5
    with pytest.raises(attnviz.AttnvizError, match="attentions.1 head 0 query 0: row sums to 0.5.*check=False"):
        attnviz.head_view(bad, TOKENS, html_action="return")
    t = attnviz.from_arrays(bad, TOKENS, check=False)  # unnormalized weights on request
    np.testing.assert_array_equal(t.attention(1), bad[1][0])
    two = (np.concatenate([hf[0], hf[0]]),)
    with pytest.raises(ValueError, match="batch of 2"):
        attnviz.head_view(two, TOKENS, html_action="return")


def test_encoder_decoder_views():
    src, tgt = ["le", "chat", "noir", "</s>"], ["<pad>", "the", "black", "cat"]
    enc = softmax_layers(2, 4, 4, 4, seed=1)
    dec = softmax_layers(2, 4, 4, 4, seed=2, causal=True)
    cross = softmax_layers(2, 4, 4, 4, seed=3)
    h = attnviz.head_view(encoder_attention=enc, decoder_attention=dec, cross_attention=cross,
                          encoder_tokens=src, decoder_tokens=tgt, html_action="return")
    m = meta_of(page_of(h.data))
    assert {s["kind"] for s in m["sets"]} == {"enc", "dec", "cross"}
    assert m["labels"]["cross"] == {"q": tgt, "k": src}
    t = attnviz.from_arrays(encoder_attention=enc, decoder_attention=dec, cross_attention=cross,
                            encoder_tokens=src, decoder_tokens=tgt)
    np.testing.assert_array_equal(t.attention(1, "cross"), cross[1][0])
    with pytest.raises(ValueError, match="'decoder_tokens' required"):
        attnviz.model_view(decoder_attention=dec, encoder_tokens=src, html_action="return")


def test_from_transformerlens():
    torch = pytest.importorskip("torch")
    pats = softmax_layers(3, 2, 5, 5, seed=4, causal=True)
    cache = {"blocks.%d.attn.hook_pattern" % l: torch.tensor(pats[l]) for l in range(3)}
    cache["blocks.0.attn.hook_z"] = torch.zeros(1)
    t = attnviz.from_transformerlens(cache, ["<|endoftext|>", "A", "B", "A", "B"])
    assert t.layers == 3 and t.heads == 2
    for l in range(3):
        np.testing.assert_array_equal(t.attention(l), pats[l][0])
    ids = attnviz.from_transformerlens(cache, torch.tensor([[50256, 32, 33, 32, 33]]))
    assert ids.tokens == ["50256", "32", "33", "32", "33"]
    with pytest.raises(ValueError, match="hook_pattern"):
        attnviz.from_transformerlens({}, ["a"])


def test_html_object_without_ipython(monkeypatch, hf):
    import builtins
    real = builtins.__import__

    def no_ipython(name, *a, **kw):
        if name.startswith("IPython"):
            raise ImportError(name)
        return real(name, *a, **kw)
    monkeypatch.setattr(builtins, "__import__", no_ipython)
    h = attnviz.head_view(hf, TOKENS, html_action="return")
    assert isinstance(h, attnviz.HTML) and h._repr_html_() == h.data
    with pytest.raises(ImportError, match="needs IPython"):
        attnviz.head_view(hf, TOKENS)
