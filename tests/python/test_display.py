"""Notebook display: the viewer in a sandboxed srcdoc iframe, the size guard and its pooled overview."""
import base64
import re

import numpy as np
import pytest

import attnviz
from attnviz import display

from test_compat import TOKENS, page_of, softmax_layers


@pytest.fixture(scope="module")
def trace():
    return attnviz.from_arrays(softmax_layers(2, 3, len(TOKENS), len(TOKENS)), TOKENS, model="tiny")


def test_iframe_is_sandboxed_and_exact(trace):
    markup = trace._repr_html_()
    tag = re.search(r"<iframe[^>]*>", markup).group(0)
    assert 'sandbox="allow-scripts"' in tag and "allow-same-origin" not in tag
    assert page_of(markup) == trace.html()  # the srcdoc attribute round-trips to the exact page
    assert "http://" not in page_of(markup) and "https://" not in page_of(markup)
    assert "default-src 'none'" in page_of(markup)


def test_show_displays_the_chosen_view(trace, monkeypatch):
    shown = []
    monkeypatch.setattr(display, "display_markup", shown.append)
    trace.show("head", layer=1, heads=[2], height=300)
    assert len(shown) == 1 and "height:300px" in shown[0]
    page = page_of(shown[0])
    assert '"view":"head"' in page and '"state":{"layer":1,"heads":[2]}' in page
    trace.show("roles")
    assert '"view":"summary"' in page_of(shown[1])
    trace.show("neuron")  # every viewer view, the neuron view too (its page says when q/k are missing)
    assert '"view":"neuron"' in page_of(shown[2])
    with pytest.raises(ValueError, match="view must be one of"):
        trace.show("no-such-view")


def test_size_guard_shows_a_pooled_overview(trace, monkeypatch):
    assert trace.page_mb() < 1
    markup = trace.display_html(max_mb=trace.page_mb() / 2)
    assert "<iframe" not in markup and "pooled overview" in markup and "trace.show(max_mb=1)" in markup
    png = base64.b64decode(re.search(r'src="data:image/png;base64,([^"]+)"', markup).group(1))
    assert png == trace.figure("png", grid=True, dpi=96)
    monkeypatch.setattr(display, "max_inline_mb", trace.page_mb() / 2)  # the module-wide default
    assert "pooled overview" in trace._repr_html_()
    assert "<iframe" in trace.display_html(max_mb=100)


def test_page_size_estimate(tmp_path):
    """page_mb() is within 10% of the real page above and below the f16 -> u8 switch."""
    for n_tok, layers in [(40, 2), (128, 12)]:
        rng = np.random.default_rng(0)
        x = rng.random((layers, 1, 12, n_tok, n_tok)).astype(np.float32)
        att = tuple(a / a.sum(-1, keepdims=True) for a in x)
        t = attnviz.from_arrays(att, ["t%d" % i for i in range(n_tok)])
        real = len(t.html().encode()) / 2**20
        assert abs(t.page_mb() - real) < 0.1 * real + 0.05, (n_tok, layers, t.page_mb(), real)


def test_two_traces_two_documents(trace):
    other = attnviz.from_arrays(softmax_layers(1, 2, 3, 3, seed=9), ["x", "y", "z"], model="other")
    a, b = trace._repr_html_(), other._repr_html_()
    assert page_of(a) != page_of(b)
    assert a.count("<iframe") == b.count("<iframe") == 1  # each page in its own iframe document
    assert "<title>tiny" in page_of(a) and "<title>other" in page_of(b)


def test_pooled_overview_of_a_lazy_trace(induction, tmp_path, cli):
    """The overview pools through exact tiles (rows recomputed on lazy traces): equal to numpy's block max of
    the full attention."""
    text = " ".join(["Xq7 mZp3 vR8k Lw2"] * 6)
    cli("run", "--model", induction, "--text", text, "-o", tmp_path / "f.safetensors")
    import safetensors_np as st
    ref, _ = st.read(str(tmp_path / "f.safetensors"))
    lazy = attnviz.run(induction, text=text, lazy=True)
    T = len(lazy)
    p = lazy.pooled(cells=16)
    assert p.tokens[0] == "0-%d" % (T // 16 - 1) and len(p.tokens) == 16
    edges = [i * T // 16 for i in range(17)]
    for layer in range(lazy.layers):
        full = ref["attn.self.%d" % layer]
        want = np.array([[[full[h, edges[r]:edges[r + 1], edges[c]:edges[c + 1]].max() for c in range(16)]
                          for r in range(16)] for h in range(full.shape[0])])
        np.testing.assert_allclose(p.attention(layer), want, atol=2e-6)
    markup = lazy.display_html(max_mb=0.001)
    assert "pooled overview" in markup and "data:image/png;base64," in markup
