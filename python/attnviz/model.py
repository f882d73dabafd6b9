"""attnviz.Model: load a model once (llama2.c checkpoint, GGUF, Hugging Face directory; docs/MODELS.md) and
run it many times; attnviz.run for one-off runs."""
import ctypes
import os

import numpy as np

from . import _capi
from ._capi import AttnvizError, call, cstr, lib, text
from .analysis import ModelRoles
from .trace import Trace

_I32P = ctypes.POINTER(ctypes.c_int32)


def _ids_array(ids, what="ids"):
    a = np.ascontiguousarray(np.asarray(ids).reshape(-1), dtype=np.int32)
    if a.size == 0:
        raise ValueError("%s: give at least one token id" % what)
    return a


class Model(_capi.Handle):
    """A loaded model. Model(path, tokenizer=None, threads=0); model.run(text=...) -> Trace."""

    def __init__(self, path, tokenizer=None, threads=0):
        p = lib.av_model_default_params()
        p.tokenizer_path, p.n_threads = cstr(tokenizer), int(threads)
        self._h = ctypes.c_void_p()
        self.path = os.fspath(path)
        call("av_model_load", cstr(path), ctypes.byref(p), ctypes.byref(self._h))

    _free = lib.av_model_free

    @property
    def info(self):
        """name, arch, format, family, dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size,
        max_seq_len, n_params, n_dec_layers."""
        i = lib.av_model_get_info(self._h)
        d = {f: getattr(i, f) for f, _ in _capi.ModelInfo._fields_}
        d.update(name=text(i.name), arch=text(i.arch), format=text(lib.av_model_format_name(i.format)),
                 family=text(lib.av_family_name(i.family)))
        return d

    def __repr__(self):
        if not self._h.value:
            return "<attnviz.Model (not loaded)>"
        i = self.info
        return "<attnviz.Model %s (%s, %d layers x %d heads)>" % (i["name"], i["arch"], i["n_layers"], i["n_heads"])

    def tokenize(self, text_, add_bos=True):
        """Token ids of text with the model's tokenizer (add_bos: the special tokens it adds around a text)."""
        tok = lib.av_model_tokenizer(self._h)
        if not tok:
            raise AttnvizError("%s: the model has no tokenizer (give tokenizer= when loading it)" % self.path)
        b = text_.encode("utf-8")
        ids, n = _I32P(), ctypes.c_size_t()
        call("av_tokenizer_encode", tok, b, len(b), int(bool(add_bos)), ctypes.byref(ids), ctypes.byref(n))
        try:
            return [ids[i] for i in range(n.value)]
        finally:
            lib.av_free(ids)

    def _run_params(self, lazy, logits, add_bos, dtype, threads, progress, keep, keep_qk=False):
        p = lib.av_run_default_params()
        if dtype not in ("f32", "f16"):
            raise ValueError("dtype must be 'f32' or 'f16', got %r" % (dtype,))
        p.add_bos, p.n_threads, p.want_logits, p.lazy = int(bool(add_bos)), int(threads), int(bool(logits)), \
            int(bool(lazy))
        p.keep_qk = int(bool(keep_qk))
        p.dtype = 0 if dtype == "f32" else 1
        if progress is not None:
            keep.append(_capi.PROGRESS_FN(lambda ctx, done, total: progress(done, total)))
            p.progress = keep[-1]
        return p

    def run(self, text=None, ids=None, image=None, target=None, target_ids=None, steps=32, lazy=False,
            logits=False, add_bos=True, dtype="f32", threads=0, progress=None, text_pair=None, keep_qk=False):
        """Runs the model and captures every layer's attention: give text, ids, or image (a PNG/JPEG path, or
        preprocessed pixels [3, H, W]); encoder-decoders also take target / target_ids (teacher forcing; else
        greedy decoding for up to steps tokens). lazy=True keeps queries and keys instead of the matrices;
        keep_qk=True keeps them next to the matrices (the neuron view). text_pair: BERT-family sentence pairs
        ([CLS] text [SEP] text_pair [SEP] with token types; the head view's sentence A/B filter).
        logits=True keeps the logits. progress(done, total) is called as tokens are processed."""
        if sum(x is not None for x in (text, ids, image)) != 1:
            raise ValueError("give exactly one of text=, ids= or image=")
        if text_pair is not None and text is None:
            raise ValueError("text_pair= needs text= (the first sentence)")
        keep = []
        p = self._run_params(lazy, logits, add_bos, dtype, threads, progress, keep, keep_qk)
        out = ctypes.c_void_p()
        if text_pair is not None:
            call("av_trace_from_text_pair", self._h, text.encode("utf-8"), text_pair.encode("utf-8"),
                 ctypes.byref(p), ctypes.byref(out))
        elif image is not None:
            self._run_image(image, p, out)
        elif target is not None or target_ids is not None or self.info["family"] == "encoder-decoder":
            self._run_pair(text, ids, target, target_ids, steps, p, out)
        elif text is not None:
            call("av_trace_from_text", self._h, text.encode("utf-8"), ctypes.byref(p), ctypes.byref(out))
        else:
            a = _ids_array(ids)
            call("av_trace_from_ids", self._h, a.ctypes.data_as(_I32P), a.size, ctypes.byref(p), ctypes.byref(out))
        return Trace(out.value, owner=self)

    def _run_image(self, image, p, out):
        top = (_capi.ClassScore * 5)()
        if isinstance(image, (str, os.PathLike)):
            call("av_trace_from_image", self._h, cstr(image), ctypes.byref(p), ctypes.byref(out), top, 5)
            return
        px = np.ascontiguousarray(image, dtype=np.float32)
        if px.ndim != 3 or px.shape[0] != 3:
            raise ValueError("image pixels must be [3, height, width], got shape %s" % (px.shape,))
        call("av_trace_from_pixels", self._h, px.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), px.shape[1],
             px.shape[2], ctypes.byref(p), ctypes.byref(out), top, 5)

    def _run_pair(self, text_, ids, target, target_ids, steps, p, out):
        if text_ is not None:
            if target_ids is not None:
                raise ValueError("give the target as text (target=) with a text source")
            call("av_trace_from_pair", self._h, text_.encode("utf-8"), cstr(target), int(steps), ctypes.byref(p),
                 ctypes.byref(out))
            return
        if target is not None:
            raise ValueError("give the target as ids (target_ids=) with an ids source")
        src = _ids_array(ids)
        tgt = None if target_ids is None else _ids_array(target_ids, "target_ids")
        call("av_trace_from_pair_ids", self._h, src.ctypes.data_as(_I32P), src.size,
             None if tgt is None else tgt.ctypes.data_as(_I32P), 0 if tgt is None else tgt.size, int(steps),
             ctypes.byref(p), ctypes.byref(out))

    def roles(self, seq_len=32, samples=4, seed=1, text=None):
        """Probes every head (a natural text and repeated random sequences; `attnviz roles`): a ModelRoles with
        previous-token, first-token, self, broad, duplicate-token and induction scores."""
        p = lib.av_roles_default_params()
        p.seq_len, p.n_samples, p.seed, p.text = int(seq_len), int(samples), int(seed), cstr(text)
        res = _capi.RolesResult()
        call("av_model_roles", self._h, _capi.ROLES_RUN_FN(self._probe), None, ctypes.byref(p), ctypes.byref(res))
        try:
            return ModelRoles(res)
        finally:
            lib.av_roles_result_free(ctypes.byref(res))

    def _attr_params(self, method, baseline, group, samples, seed, steps, ig_rule, batch, attention, lazy, add_bos,
                     threads, progress, keep):
        p = lib.av_attr_default_params()
        methods = method.split(",") if isinstance(method, str) else list(method)
        bad = [m for m in methods if m not in _capi.ATTR_METHODS]
        if bad or not methods:
            raise ValueError("method must be among %s, got %r" % (", ".join(_capi.ATTR_METHODS), method))
        p.methods = sum(1 << _capi.ATTR_METHODS.index(m) for m in set(methods))
        if isinstance(baseline, int) and not isinstance(baseline, bool):
            p.baseline, p.baseline_id = 0, baseline
        elif baseline in ("pad", "zero", "remove"):
            p.baseline = 0 if baseline == "pad" else _capi.ATTR_BASELINES.index(baseline)
        else:
            raise ValueError("baseline must be 'pad', 'zero', 'remove' or a token id, got %r" % (baseline,))
        if group in ("token", "word"):
            p.group = _capi.ATTR_GROUPS.index(group)
        elif isinstance(group, str) and group.startswith("span:") and group[5:].isdigit() and int(group[5:]) > 0:
            p.group, p.group_span = 2, int(group[5:])
        else:
            raise ValueError("group must be 'token', 'word' or 'span:N', got %r" % (group,))
        if ig_rule not in _capi.IG_RULES:
            raise ValueError("ig_rule must be one of %s, got %r" % (", ".join(_capi.IG_RULES), ig_rule))
        p.samples, p.seed, p.steps, p.ig_rule = int(samples), int(seed), int(steps), _capi.IG_RULES.index(ig_rule)
        p.max_batch, p.with_attention = int(batch), int(bool(attention))
        p.run = self._run_params(lazy, False, add_bos, "f32", threads, None, keep)
        if progress is not None:
            keep.append(_capi.ATTR_PROGRESS_FN(lambda ctx, stage, done, total: progress(text(stage), done, total)))
            p.progress = keep[-1]
        return p

    def attribute(self, text=None, ids=None, target=None, target_ids=None, target_rows=None, method="occlusion",
                  baseline="pad", group="token", samples=25, seed=0, steps=32, ig_rule="gausslegendre", generate=8,
                  batch=0, attention=True, lazy=False, add_bos=True, threads=0, progress=None):
        """Attribution of target tokens to the source tokens (docs/ATTRIBUTION.md): method is one of occlusion,
        shapley, saliency, ixg, ig, attn-grad, or several ("occlusion,ig" or a list). Give the source as text
        (the target as text, or generate greedy tokens) or as ids with target_ids (encoders: target_rows too).
        baseline: 'pad' (the model's pad, else unk, else mask token), a token id, 'zero' or 'remove'; group:
        'token', 'word' or 'span:N'; samples, seed: Shapley sampling; steps, ig_rule: integrated gradients;
        batch: sequences per pass of occlusion, Shapley and IG (0: as fit in about 1 GiB);
        progress(stage, done, total). Returns a Trace (Trace.attribution(method), Trace.attribution_targets())
        with the attention of the sequence unless attention=False."""
        if (text is None) == (ids is None):
            raise ValueError("give exactly one of text= or ids=")
        keep = []
        p = self._attr_params(method, baseline, group, samples, seed, steps, ig_rule, batch, attention, lazy,
                              add_bos, threads, progress, keep)
        out = ctypes.c_void_p()
        if text is not None:
            if target_ids is not None or target_rows is not None:
                raise ValueError("with text=, give the target as text (target=)")
            call("av_attribute_text", self._h, text.encode("utf-8"), cstr(target), int(generate), ctypes.byref(p),
                 ctypes.byref(out))
            return Trace(out.value, owner=self)
        if target is not None or target_ids is None:
            raise ValueError("with ids=, give the target as ids (target_ids=)")
        src, tgt = _ids_array(ids), _ids_array(target_ids, "target_ids")
        rows = None if target_rows is None else _ids_array(target_rows, "target_rows")
        if rows is not None:
            p.target_rows = rows.ctypes.data_as(_I32P)
        call("av_attribute_ids", self._h, src.ctypes.data_as(_I32P), src.size, tgt.ctypes.data_as(_I32P), tgt.size,
             ctypes.byref(p), ctypes.byref(out))
        return Trace(out.value, owner=self)

    def lens(self, text=None, ids=None, k=5, lazy=False, add_bos=True, threads=0):
        """The logit lens of a text or ids (docs/ATTRIBUTION.md): a Trace whose lens() holds, per layer and
        position, the k most probable next tokens when that layer's residual stream is decoded by the final
        norm and the head."""
        if (text is None) == (ids is None):
            raise ValueError("give exactly one of text= or ids=")
        p = lib.av_lens_default_params()
        p.k, p.run = int(k), self._run_params(lazy, False, add_bos, "f32", threads, None, [])
        out = ctypes.c_void_p()
        if text is not None:
            call("av_lens_text", self._h, text.encode("utf-8"), ctypes.byref(p), ctypes.byref(out))
        else:
            a = _ids_array(ids)
            call("av_lens_ids", self._h, a.ctypes.data_as(_I32P), a.size, ctypes.byref(p), ctypes.byref(out))
        return Trace(out.value, owner=self)

    def _probe(self, ctx, ids, n, out, err):
        """The probes' runner (av_roles_run_fn): the ids as given, no BOS added."""
        rp = lib.av_run_default_params()
        rp.add_bos = 0
        return lib.av_trace_from_ids(self._h, ids, n, ctypes.byref(rp), out, err)


def run(model, text=None, ids=None, image=None, **kw):
    """Runs a model (a Model, or a path loaded for this one run) and returns its Trace; kw as Model.run."""
    m = model if isinstance(model, Model) else Model(model, tokenizer=kw.pop("tokenizer", None),
                                                     threads=kw.get("threads", 0))
    return m.run(text=text, ids=ids, image=image, **kw)
