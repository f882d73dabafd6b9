"""The Python API against the C CLI's outputs and numpy references: runs, loaded files (zero copy), rows and
tiles, value norms, logits, analyses, figures, the viewer page, saving, errors."""
import gc
import json
import os

import numpy as np
import pytest

import attnviz
import safetensors_np as st

TEXT = "Once upon a time, Lily saw a big red ball. She wanted to play with it."
IND_TEXT = "Xq7 mZp3 vR8k Lw2 Xq7 mZp3 vR8k Lw2"


@pytest.fixture(scope="module")
def ind_cli(tmp_path_factory, cli, induction):
    """The induction model's trace made by the CLI (full, with logits), read back by numpy."""
    path = tmp_path_factory.mktemp("ind") / "cli.safetensors"
    cli("run", "--model", induction, "--text", IND_TEXT, "--logits", "--threads", "1", "-o", path)
    tensors, meta = st.read(str(path))
    return path, tensors, meta


@pytest.fixture(scope="module")
def ind_model(induction):
    return attnviz.Model(induction, threads=1)


def test_run_equals_cli(ind_cli, ind_model):
    path, ref, meta = ind_cli
    t = ind_model.run(text=IND_TEXT, logits=True, threads=1)
    assert t.tokens == json.loads(meta["tokens"])
    assert t.token_ids.tolist() == json.loads(meta["token_ids"])
    assert t.kinds == ["self"] and t.layers == int(meta["n_layers"]) and t.heads == int(meta["n_heads"])
    for layer in range(t.layers):
        np.testing.assert_allclose(t.attention(layer), ref["attn.self.%d" % layer], rtol=0, atol=1e-6)
        np.testing.assert_allclose(t.value_norms(layer), ref["vnorm.%d" % layer], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(t.logits, ref["logits"], rtol=1e-5, atol=1e-5)


def test_run_stories_equals_cli(tmp_path, cli, stories):
    path = tmp_path / "s.safetensors"
    cli("run", "--model", stories, "--text", TEXT, "--threads", "1", "-o", path)
    ref, _ = st.read(str(path))
    t = attnviz.run(stories, text=TEXT, threads=1)
    assert len(t) == ref["attn.self.0"].shape[1]
    for layer in range(t.layers):
        np.testing.assert_allclose(t.attention(layer), ref["attn.self.%d" % layer], rtol=0, atol=1e-6)


def _mappings(path):
    """Address ranges at which this process maps path (from /proc/self/maps)."""
    real = os.path.realpath(path)
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and parts[5] == real:
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                yield lo, hi


def test_load_is_zero_copy(ind_cli):
    path, ref, _ = ind_cli
    t = attnviz.load(path)
    a = t.attention(1)
    np.testing.assert_array_equal(a, ref["attn.self.1"])
    assert not a.flags.writeable and not a.flags.owndata
    ranges = list(_mappings(path))
    assert ranges, "the trace file is not mapped"
    assert any(lo <= a.ctypes.data and a.ctypes.data + a.nbytes <= hi for lo, hi in ranges), \
        "attention(1) does not point into the mapped file"
    assert np.shares_memory(a, t.tensors["attn.self.1"])
    assert np.shares_memory(t.logits, t.tensors["logits"])


def test_views_keep_the_trace_alive(ind_cli):
    path, ref, _ = ind_cli
    a = attnviz.load(path).attention(0)  # the Trace object itself is gone
    gc.collect()
    np.testing.assert_array_equal(a, ref["attn.self.0"])


def test_f16_trace(tmp_path, cli, induction):
    path = tmp_path / "h.safetensors"
    cli("run", "--model", induction, "--text", IND_TEXT, "--dtype", "f16", "-o", path)
    ref, _ = st.read(str(path))
    t = attnviz.load(path)
    raw = t.tensors["attn.self.0"]
    assert raw.dtype == np.float16 and np.array_equal(raw, ref["attn.self.0"])
    a = t.attention(0)
    assert a.dtype == np.float32 and np.array_equal(a, ref["attn.self.0"].astype(np.float32))


def test_rows_and_tiles(ind_cli, ind_model):
    _, ref, _ = ind_cli
    full = ref["attn.self.1"]
    lazy = ind_model.run(text=IND_TEXT, lazy=True, threads=1)
    assert lazy.is_lazy and not attnviz.load(ind_cli[0]).is_lazy
    for h, q in [(0, 0), (2, 5), (3, full.shape[1] - 1)]:
        np.testing.assert_allclose(lazy.row(1, h, q), full[h, q], atol=2e-6)
    np.testing.assert_allclose(lazy.row(1, "mean", 4), full[:, 4].mean(0), atol=2e-6)
    np.testing.assert_allclose(lazy.row(1, "max", 4), full[:, 4].max(0), atol=2e-6)
    np.testing.assert_allclose(lazy.tile(1, 2, (3, 9), (0, 7)), full[2, 3:9, 0:7], atol=2e-6)
    pooled = lazy.tile(1, 2, (0, 8), (0, 8), shape=(2, 4), pool="max")
    np.testing.assert_allclose(pooled, full[2, :8, :8].reshape(2, 4, 4, 2).max(axis=(1, 3)), atol=2e-6)
    pooled = lazy.tile(1, 2, (0, 8), (0, 8), shape=(4, 2), pool="mean")
    np.testing.assert_allclose(pooled, full[2, :8, :8].reshape(4, 2, 2, 4).mean(axis=(1, 3)), atol=2e-6)


def test_logprobs(ind_cli):
    path, ref, meta = ind_cli
    t = attnviz.load(path)
    z = ref["logits"].astype(np.float64)
    lp = z - z.max(1, keepdims=True)
    lp -= np.log(np.exp(lp).sum(1, keepdims=True))
    np.testing.assert_allclose(t.log_probs(), lp, atol=1e-5)
    ids = json.loads(meta["token_ids"])
    np.testing.assert_allclose(t.token_log_probs(), [lp[i, ids[i + 1]] for i in range(len(ids) - 1)], atol=1e-5)


def test_norm_attention(ind_cli):
    path, ref, _ = ind_cli
    t = attnviz.load(path)
    a, v = ref["attn.self.1"], ref["vnorm.1"]
    per_head = a * v[:, None, :]
    np.testing.assert_allclose(t.norm_attention(1, "2"), per_head[2], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(t.norm_attention(1, "mean"), per_head.mean(0), rtol=1e-5, atol=1e-7)
    rows = t.norm_attention(1, "max", normalize_rows=True)
    ref_rows = per_head.max(0)
    np.testing.assert_allclose(rows, ref_rows / ref_rows.sum(1, keepdims=True), rtol=1e-5, atol=1e-7)


def test_stats_against_numpy_and_cli(ind_cli, cli):
    path, ref, _ = ind_cli
    t = attnviz.load(path)
    s = t.stats()
    T = ref["attn.self.0"].shape[1]
    for layer in range(t.layers):
        a = ref["attn.self.%d" % layer].astype(np.float64)[:, 1:]  # causal: row 0 is left out
        i = np.arange(1, T)
        ent = -(np.where(a > 0, a * np.log(np.where(a > 0, a, 1)), 0)).sum(-1).mean(-1)
        np.testing.assert_allclose(s["entropy"][layer], ent, rtol=1e-5)
        np.testing.assert_allclose(s["first"][layer], a[:, :, 0].mean(-1), rtol=1e-5)
        np.testing.assert_allclose(s["prev"][layer], a[:, i - 1, i - 1].mean(-1), rtol=1e-5)
        np.testing.assert_allclose(s["self"][layer], a[:, i - 1, i].mean(-1), rtol=1e-5)
    js = json.loads(cli("stats", path, "--json"))
    assert [h["role"] for h in js["heads"]] == s.role.reshape(-1).tolist()
    np.testing.assert_allclose([h["role_score"] for h in js["heads"]], s.role_score.reshape(-1), rtol=1e-5)
    assert (t.roles() == s.role).all()
    one = t.stats(layer=1)
    assert one.role.shape == (1, t.heads) and (one.role[0] == s.role[1]).all()


def _rollout(mats, r=0.5):
    out = np.eye(mats[0].shape[-1])
    for a in mats:
        m = (1 - r) * a.mean(0) + r * np.eye(a.shape[-1])
        out = (m / m.sum(1, keepdims=True)) @ out
    return out


def test_rollout_and_flow(ind_cli):
    path, ref, _ = ind_cli
    t = attnviz.load(path)
    mats = [ref["attn.self.%d" % l].astype(np.float64) for l in range(t.layers)]
    np.testing.assert_allclose(t.rollout(), _rollout(mats), atol=1e-5)
    np.testing.assert_allclose(t.rollout(residual=0.2), _rollout(mats, 0.2), atol=1e-5)
    f = t.flow()
    assert f.shape == (len(t), len(t)) and np.allclose(f.sum(1), 1, atol=1e-4)
    with pytest.raises(attnviz.AttnvizError, match="flow"):
        t.flow(max_work=10)


def test_figures_equal_cli(tmp_path, ind_cli, cli):
    path = ind_cli[0]
    t = attnviz.load(path)
    cli("render", path, "--layer", "1", "--head", "2", "-o", tmp_path / "c.png")
    assert t.figure("png", layer=1, head=2) == (tmp_path / "c.png").read_bytes()
    cli("render", path, "--grid", "--cmap", "magma", "-o", tmp_path / "c.svg")
    assert t.figure("svg", grid=True, cmap="magma") == (tmp_path / "c.svg").read_bytes()
    t.render(tmp_path / "p.png", layer=1, head="max", dpi=300)
    cli("render", path, "--layer", "1", "--head", "max", "--dpi", "300", "-o", tmp_path / "q.png")
    assert (tmp_path / "p.png").read_bytes() == (tmp_path / "q.png").read_bytes()


def test_html_equals_cli(tmp_path, ind_cli, cli):
    path = ind_cli[0]
    t = attnviz.load(path)
    cli("html", path, "--view", "rollout", "-o", tmp_path / "v.html")
    assert t.html("rollout") == (tmp_path / "v.html").read_text()
    t.save_html(tmp_path / "w.html", view="head")
    cli("html", path, "--view", "head", "-o", tmp_path / "x.html")
    assert (tmp_path / "w.html").read_bytes() == (tmp_path / "x.html").read_bytes()


def test_html_first_view(ind_cli):
    t = attnviz.load(ind_cli[0])
    page = t.html("head", layer=1, head=3, heads=[0, 2], theme="dark")
    assert '"state":{"layer":1,"head":3,"theme":"dark","heads":[0,2]}' in page
    with pytest.raises(attnviz.AttnvizError, match="head 7 is out of range"):
        t.html(heads=[7])
    with pytest.raises(ValueError, match="view must be one of"):
        t.html("no-such-view")


def test_save_roundtrip(tmp_path, ind_model):
    t = ind_model.run(text=IND_TEXT, logits=True)
    t.save(tmp_path / "r.safetensors")
    ref, meta = st.read(str(tmp_path / "r.safetensors"))
    for layer in range(t.layers):
        np.testing.assert_array_equal(ref["attn.self.%d" % layer], t.attention(layer))
    assert json.loads(meta["tokens"]) == t.tokens
    assert sorted(t.tensors) == sorted(ref)


def test_tensors_by_name(tmp_path, ind_cli):
    """Tensors this version does not interpret (attribution, logit lens) are exposed by name."""
    _, ref, meta = ind_cli
    T = ref["attn.self.0"].shape[1]
    extra = dict(ref)
    extra["attr.grad"] = np.random.default_rng(0).random((T, T), dtype=np.float32)
    extra["lens.topk_ids"] = np.arange(3 * T * 2, dtype=np.int32).reshape(3, T, 2)
    st.write(str(tmp_path / "x.safetensors"), extra, meta)
    t = attnviz.load(tmp_path / "x.safetensors")
    assert set(t.tensors) == set(extra)
    np.testing.assert_array_equal(t.tensors["lens.topk_ids"], extra["lens.topk_ids"])
    np.testing.assert_array_equal(t.attribution(), extra["attr.grad"])
    np.testing.assert_array_equal(t.attribution("grad"), extra["attr.grad"])
    with pytest.raises(attnviz.AttnvizError, match="no ig attribution"):
        t.attribution("ig")
    with pytest.raises(attnviz.AttnvizError, match="no attribution"):
        attnviz.load(ind_cli[0]).attribution()


def test_encoder_decoder(fr_en, tmp_path, cli):
    cli("run", "--model", fr_en, "--text", "le chat noir", "--target", "the black cat", "-o", tmp_path / "f.st")
    ref, meta = st.read(str(tmp_path / "f.st"))
    t = attnviz.Model(fr_en).run(text="le chat noir", target="the black cat")
    assert t.kinds == ["enc", "dec", "cross"]
    assert t.source_tokens == json.loads(meta["source_tokens"])
    for kind in t.kinds:
        np.testing.assert_allclose(t.attention(1, kind), ref["attn.%s.1" % kind], atol=1e-6)
    assert t.rollout("cross").shape == (t.n_query("cross"), t.n_key("cross"))
    with pytest.raises(ValueError, match="give kind="):
        t.attention(0)


def _lazy_equals_full(lazy, full, tmp_path):
    """Every kind's rows, mean/max rows and a whole-head tile of a lazy trace, and of the same trace saved and
    loaded back (trace format version 2; 3 for an image trace, which keeps the model's crop), equal the full
    trace's (numpy indexing of its matrices)."""
    assert lazy.is_lazy and not full.is_lazy and lazy.kinds == full.kinds
    lazy.save(tmp_path / "lazy.safetensors")
    loaded = attnviz.load(tmp_path / "lazy.safetensors")
    assert loaded.is_lazy and loaded.meta("version") == ("3" if loaded.meta("image_crop") else "2")
    for kind in full.kinds:
        for layer in (0, full.n_layers(kind) - 1):
            a = full.attention(layer, kind)  # [heads, n_query, n_key]
            H, nq, nk = a.shape
            assert (lazy.n_heads(kind), lazy.n_query(kind), lazy.n_key(kind)) == (H, nq, nk)
            for t in (lazy, loaded):
                for h, q in [(0, 0), (H - 1, nq - 1), (H // 2, nq // 2)]:
                    np.testing.assert_allclose(t.row(layer, h, q, kind=kind), a[h, q], atol=2e-6,
                                               err_msg="%s layer %d head %d query %d" % (kind, layer, h, q))
                np.testing.assert_allclose(t.row(layer, "mean", nq - 1, kind=kind), a[:, -1].mean(0), atol=2e-6)
                np.testing.assert_allclose(t.row(layer, "max", 0, kind=kind), a[:, 0].max(0), atol=2e-6)
                np.testing.assert_allclose(t.tile(layer, H - 1, (0, nq), (0, nk), kind=kind), a[H - 1], atol=2e-6)


def test_lazy_encoder_decoder_equals_full(fr_en, tmp_path):
    m = attnviz.Model(fr_en, threads=1)
    full = m.run(text="le chat noir dort", target="the black cat sleeps")
    lazy = m.run(text="le chat noir dort", target="the black cat sleeps", lazy=True)
    assert lazy.kinds == ["enc", "dec", "cross"]
    _lazy_equals_full(lazy, full, tmp_path)


def test_lazy_image_equals_full(shared, tmp_path):
    model, image = os.path.join(shared, "models", "vit-tiny"), os.path.join(shared, "images", "chelsea.png")
    if not os.path.exists(model):
        pytest.skip("%s not found" % model)
    m = attnviz.Model(model, threads=1)
    full, lazy = m.run(image=image), m.run(image=image, lazy=True)
    assert lazy.meta("patch_grid") == "14x14" and lazy.predictions[0] == full.predictions[0]
    _lazy_equals_full(lazy, full, tmp_path)


def test_image(shared, cli, tmp_path):
    model, image = os.path.join(shared, "models", "vit-tiny"), os.path.join(shared, "images", "chelsea.png")
    if not os.path.exists(model):
        pytest.skip("%s not found" % model)
    cli("run", "--model", model, "--image", image, "-o", tmp_path / "v.st")
    ref, meta = st.read(str(tmp_path / "v.st"))
    t = attnviz.run(model, image=image)
    assert t.meta("patch_grid") == meta["patch_grid"] == "14x14"
    assert t.predictions[0]["label"] == json.loads(meta["predictions"])[0]["label"]
    np.testing.assert_allclose(t.attention(11), ref["attn.self.11"], atol=1e-5)


def test_model_roles_equal_cli(cli, induction, ind_model):
    js = json.loads(cli("roles", "--model", induction, "--json"))
    r = ind_model.roles()
    for h in js["heads"]:
        assert r.role[h["layer"], h["head"]] == h["role"]
        for name, v in h["scores"].items():
            assert abs(r.scores[name][h["layer"], h["head"]] - v) < 1e-5
    assert r.heads_with_role("induction")  # the model is trained to have induction heads


def test_errors(tmp_path, ind_cli, ind_model):
    with pytest.raises(attnviz.AttnvizError, match="nope.safetensors: No such file"):
        attnviz.load(tmp_path / "nope.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(attnviz.AttnvizError, match="bad.safetensors"):
        attnviz.load(tmp_path / "bad.safetensors")
    with pytest.raises(attnviz.AttnvizError, match="nope.bin: No such file"):
        attnviz.Model(tmp_path / "nope.bin")
    t = attnviz.load(ind_cli[0])
    with pytest.raises(IndexError, match="layer 5 is out of range"):
        t.attention(5)
    with pytest.raises(ValueError, match="kind must be one of"):
        t.attention(0, "decoder")
    with pytest.raises(ValueError, match="no 'cross' attention"):
        t.attention(0, "cross")
    with pytest.raises(attnviz.AttnvizError, match="head 9 is out of range"):
        t.row(0, 9, 0)
    with pytest.raises(attnviz.AttnvizError, match="no logits"):
        ind_model.run(text="ab").log_probs()
