"""attnviz.Trace: the attention of one run (or one imported set of arrays), read without copying.

A trace loaded from a file is memory-mapped by the C library: `attention(layer)` and the arrays of `tensors`
are read-only numpy views into that mapping (F16 attention is widened to float32 once, by the library). A
trace made by `Model.run` lives in the library's buffers, viewed the same way. Either way the views keep the
Trace alive. See docs/PYTHON.md.
"""
import ctypes
import json
import os
from collections.abc import Mapping

import numpy as np

from . import _capi, _views
from ._capi import AttnvizError, call, cstr, kind_arg, lib, text
from .analysis import Analyses
from .display import Figures


class _Tensors(Mapping):
    """Every tensor of the trace by name (read-only numpy arrays, file-backed when loaded from a file)."""

    def __init__(self, trace):
        self._trace = trace
        self._names = trace._tensor_names()

    def __getitem__(self, name):
        return self._trace._tensor(name, self._names)

    def __iter__(self):
        return iter(self._names)

    def __len__(self):
        return len(self._names)

    def __repr__(self):
        return "<attnviz tensors: %s>" % ", ".join(self._names)


class Trace(Analyses, Figures, _capi.Handle):
    """Attention of every layer and head: tokens, kinds, attention arrays, analyses (attnviz.analysis),
    figures and the viewer (attnviz.display)."""

    def __init__(self, handle, path=None, owner=None):
        if not handle:
            raise ValueError("Trace needs a trace handle: use attnviz.load(path) or Model.run(...)")
        self._h = ctypes.c_void_p(handle)
        self.path = os.fspath(path) if path is not None else None
        self._owner = owner  # what the C trace may point into (a Model), kept alive with it
        self._tensor_cache = None

    @classmethod
    def load(cls, path):
        """Opens a trace file (memory-mapped; nothing is read until used)."""
        h = ctypes.c_void_p()
        call("av_trace_load", cstr(path), ctypes.byref(h))
        return cls(h.value, path)

    _free = lib.av_trace_free

    # ---- tokens and shape ----

    def meta(self, key, default=None):
        v = lib.av_trace_meta(self._h, cstr(key))
        return default if v is None else text(v)

    @property
    def metadata(self):
        """All metadata as a dict of strings (tokens and token_ids as JSON text, as in the file)."""
        p = lib.av_trace_meta_json(self._h)
        if not p:
            raise MemoryError("out of memory reading the trace metadata")
        return json.loads(_capi.take_bytes(p).decode())

    @property
    def model(self):
        return self.meta("model")

    @property
    def tokens(self):
        """Display strings, one per position (the decoder's for encoder-decoder traces)."""
        return [text(lib.av_trace_token(self._h, i)) for i in range(lib.av_trace_n_tokens(self._h))]

    @property
    def token_ids(self):
        n = lib.av_trace_n_tokens(self._h)
        return np.array([lib.av_trace_token_id(self._h, i) for i in range(n)], dtype=np.int32)

    def _json_meta(self, key):
        v = self.meta(key)
        return json.loads(v) if v else None

    @property
    def source_tokens(self):
        return self._json_meta("source_tokens")

    @property
    def target_tokens(self):
        return self._json_meta("target_tokens")

    @property
    def predictions(self):
        """Image traces: the classifier's top classes [{"id", "label", "prob"}], best first."""
        return self._json_meta("predictions")

    @property
    def kinds(self):
        """Attention kinds present: ["self"], or some of ["enc", "dec", "cross"]."""
        return [k for k in _capi.KINDS if lib.av_trace_n_layers(self._h, kind_arg(k)) > 0]

    def _kind(self, kind):
        if kind is None:
            kinds = self.kinds
            if "self" in kinds or len(kinds) == 1:
                return "self" if "self" in kinds else kinds[0]
            raise ValueError("this trace has %s attention: give kind=" % ", ".join(kinds))
        if kind not in self.kinds:
            kind_arg(kind)  # an unknown name: ValueError naming the valid ones
            raise ValueError("this trace has no %r attention (it has %s)" % (kind, ", ".join(self.kinds)))
        return kind

    def _viewer_kind(self):
        """The kind the viewer opens with: self, else cross, else the first present."""
        kinds = self.kinds
        return "self" if "self" in kinds else "cross" if "cross" in kinds else kinds[0]

    def n_layers(self, kind=None):
        return lib.av_trace_n_layers(self._h, kind_arg(self._kind(kind)))

    def n_heads(self, kind=None):
        return lib.av_trace_n_heads(self._h, kind_arg(self._kind(kind)))

    def n_query(self, kind=None):
        return lib.av_trace_n_query(self._h, kind_arg(self._kind(kind)))

    def n_key(self, kind=None):
        return lib.av_trace_n_key(self._h, kind_arg(self._kind(kind)))

    @property
    def layers(self):
        """Number of layers of the default kind (self; or the only kind)."""
        return self.n_layers()

    @property
    def heads(self):
        return self.n_heads()

    @property
    def is_lazy(self):
        """True when the trace stores queries and keys; rows and tiles are then recomputed exactly."""
        return bool(lib.av_trace_is_lazy(self._h))

    def __len__(self):
        return lib.av_trace_n_tokens(self._h)

    def __repr__(self):
        parts = ["%s: %d layers x %d heads, %d x %d" % (k, self.n_layers(k), self.n_heads(k), self.n_query(k),
                                                        self.n_key(k)) for k in self.kinds]
        return "<attnviz.Trace %s, %d tokens%s; %s>" % (self.model or "?", len(self), ", lazy" * self.is_lazy,
                                                        "; ".join(parts))

    # ---- attention ----

    def attention(self, layer, kind=None):
        """Attention of one layer, [heads, n_query, n_key] float32, read-only: a view of the mapped file or of
        the library's buffer (lazy traces materialize the layer once, in the library)."""
        kind = self._kind(kind)
        layer = self._layer(layer, kind)
        v = _capi.AttnView()
        call("av_trace_attn", self._h, kind_arg(kind), layer, ctypes.byref(v))
        return _views.view(self, v.data, (v.n_heads, v.n_query, v.n_key))

    def queries_keys(self, layer, kind=None):
        """The queries and keys one layer's scores saw (after q/k norms and RoPE), for lazy traces and traces
        run with keep_qk=True: a dict with q [heads, n_query, head_dim] and k [kv_heads, n_key, head_dim]
        (float32 read-only views; query head h reads key head h // (heads // kv_heads)), and the score's
        scale, softcap (0: none), causal, window (0: none), has_rel_bias, has_key_mask."""
        kind = self._kind(kind)
        v = _capi.QkView()
        call("av_trace_qk", self._h, kind_arg(kind), self._layer(layer, kind), ctypes.byref(v))
        out = {"q": _views.tensor_array(self, v.q), "k": _views.tensor_array(self, v.k)}
        out.update({f: getattr(v, f) for f in ("scale", "softcap", "causal", "window")})
        out.update({f: bool(getattr(v, f)) for f in ("has_rel_bias", "has_key_mask")})
        return out

    def attentions(self, kind=None):
        """Every layer's attention, as Hugging Face's output_attentions tuple (without the batch axis)."""
        return tuple(self.attention(layer, kind) for layer in range(self.n_layers(kind)))

    def _layer(self, layer, kind):
        n = self.n_layers(kind)
        if not -n <= layer < n:
            raise IndexError("layer %d is out of range: %s has layers 0..%d" % (layer, kind, n - 1))
        return layer % n

    @staticmethod
    def _head(head):
        if head in ("mean", "max"):
            return _capi.HEADS_MEAN if head == "mean" else _capi.HEADS_MAX
        if isinstance(head, (int, np.integer)) and head >= 0:
            return int(head)
        raise ValueError("head must be an index, 'mean' or 'max', got %r" % (head,))

    def row(self, layer, head, query, kind=None):
        """Attention row of one query: [n_key] float32 (a copy), recomputed exactly on lazy traces."""
        kind = self._kind(kind)
        out = np.empty(self.n_key(kind), dtype=np.float32)
        call("av_trace_attn_row", self._h, kind_arg(kind), self._layer(layer, kind), self._head(head), int(query),
             out.ctypes.data_as(ctypes.POINTER(ctypes.c_float)))
        return out

    def tile(self, layer, head, queries, keys, shape=None, pool="max", kind=None):
        """The block queries x keys (two (start, stop) pairs) of one head or the mean/max over heads, pooled
        into shape (rows, cols) cells with pool "max" or "mean" (default: exact, one cell per weight)."""
        kind = self._kind(kind)
        (q0, q1), (k0, k1) = queries, keys
        rows, cols = shape if shape is not None else (q1 - q0, k1 - k0)
        if pool not in ("max", "mean"):
            raise ValueError("pool must be 'max' or 'mean', got %r" % (pool,))
        if rows <= 0 or cols <= 0:
            raise ValueError("the tile must have rows and columns, got %r" % ((rows, cols),))
        out = np.empty((rows, cols), dtype=np.float32)
        call("av_trace_attn_tile", self._h, kind_arg(kind), self._layer(layer, kind), self._head(head), int(q0),
             int(q1), int(k0), int(k1), int(rows), int(cols), 0 if pool == "max" else 1,
             out.ctypes.data_as(ctypes.POINTER(ctypes.c_float)))
        return out

    # ---- value norms, logits, other tensors ----

    def value_norms(self, layer):
        """||v_j W_o^h|| of one self-attention layer: [heads, tokens] float32 view (norm-based attention)."""
        t = _capi.Tensor()
        call("av_trace_vnorm", self._h, int(layer), ctypes.byref(t))
        return _views.tensor_array(self, t)

    @property
    def logits(self):
        """[tokens, vocab] float32 view when the run kept them (Model.run(..., logits=True)), else None."""
        t = _capi.Tensor()
        if lib.av_trace_logits(self._h, ctypes.byref(t)) != 0:
            return None
        return _views.tensor_array(self, t)

    def log_probs(self):
        """log-softmax of the logits, [tokens, vocab] (row t: the distribution of the token after t)."""
        z = self.logits
        if z is None:
            raise AttnvizError("the trace has no logits: run with logits=True (attnviz run --logits)")
        z = z.astype(np.float64)
        z -= z.max(axis=1, keepdims=True)
        return (z - np.log(np.exp(z).sum(axis=1, keepdims=True))).astype(np.float32)

    def token_log_probs(self):
        """log p(token t+1 | tokens 0..t) of each next token of the sequence: [tokens - 1]."""
        lp, ids = self.log_probs(), self.token_ids
        return lp[np.arange(len(ids) - 1), ids[1:]]

    def _tensor_names(self):
        n = lib.av_trace_n_file_tensors(self._h)
        if n:
            return [self._file_tensor(i)[0] for i in range(n)]
        names = ["attn.%s.%d" % (k, l) for k in self.kinds for l in range(self.n_layers(k))]
        if not self.is_lazy and "self" in self.kinds:
            t, e = _capi.Tensor(), _capi.Err()
            names += ["vnorm.%d" % l for l in range(self.n_layers("self"))
                      if lib.av_trace_vnorm(self._h, l, ctypes.byref(t), ctypes.byref(e)) == 0]
        return names + (["logits"] if self.logits is not None else [])

    def _file_tensor(self, i):
        name, t = ctypes.c_char_p(), _capi.Tensor()
        call("av_trace_file_tensor", self._h, i, ctypes.byref(name), ctypes.byref(t))
        return text(name.value), t

    def _tensor(self, name, names):
        if name not in names:
            raise KeyError("%s: the trace has no tensor %r (it has %s)" % (self.path or "trace", name,
                                                                          ", ".join(names)))
        if lib.av_trace_n_file_tensors(self._h):
            return _views.tensor_array(self, self._file_tensor(names.index(name))[1])
        parts = name.split(".")
        if parts[0] == "attn":
            return self.attention(int(parts[2]), parts[1])
        return self.value_norms(int(parts[1])) if parts[0] == "vnorm" else self.logits

    @property
    def tensors(self):
        """Every tensor by name, as read-only numpy arrays: for a loaded trace every tensor of its file (also
        those this version does not interpret, e.g. attr.<method> attribution or lens.* logit lens), for a
        trace made in memory its attention, value norms and logits."""
        if self._tensor_cache is None:
            self._tensor_cache = _Tensors(self)
        return self._tensor_cache

    # ---- attribution and the logit lens (docs/ATTRIBUTION.md) ----

    @property
    def attribution_methods(self):
        """Names of the attributions the trace holds (occlusion, shapley, saliency, ixg, ig, attn-grad)."""
        settings = self._json_meta("attribution")
        if settings:
            return list(settings.get("methods", []))
        return [n[5:] for n in self.tensors if n.startswith("attr.") and "." not in n[5:]]

    def _attr_view(self, method):
        v = _capi.AttrView()
        call("av_trace_attribution", self._h, _capi.ATTR_METHODS.index(method), ctypes.byref(v))
        return v

    def attribution(self, method=None):
        """Attribution scores attr.<method> as a read-only float32 view [n_target, source_len]: row i, column j
        is how much source token j matters to log p(target i) (for occlusion: log p with the input minus log p
        with token j replaced by the baseline). method may be omitted when the trace holds one."""
        methods = self.attribution_methods
        if not methods:
            raise AttnvizError("the trace holds no attribution (attr.<method> tensors): make one with "
                               "Model.attribute() or attnviz attribute")
        if method is None:
            if len(methods) > 1:
                raise ValueError("the trace has several attributions: give method= (one of %s)" % ", ".join(methods))
            method = methods[0]
        if method not in _capi.ATTR_METHODS:  # a tensor a later version writes: by name
            return self.tensors["attr." + method]
        v = self._attr_view(method)
        return _views.view(self, v.scores, (v.n_target, v.source_len))

    @property
    def source_len(self):
        """Source tokens of an attribution (tokens[:source_len]; BOS included)."""
        sl = self.meta("source_len")
        return int(sl) if sl is not None else None

    def attribution_targets(self):
        """The attributed targets: dict of ids, rows (the logits row each is predicted at), logprobs (log p with
        the original input), labels, and, with integrated gradients, ig_delta (the completeness error
        sum_j attr - (f(input) - f(baseline)) per target)."""
        v = self._attr_view(self.attribution_methods[0])
        n = v.n_target
        out = {"ids": _views.view(self, v.target_ids, (n,), "<i4"), "rows": _views.view(self, v.target_rows, (n,), "<i4"),
               "logprobs": _views.view(self, v.target_logprobs, (n,)),
               "labels": self._json_meta("attr.target_labels")}
        t = _capi.Tensor()
        if lib.av_trace_tensor(self._h, b"attr.ig.delta", ctypes.byref(t)) == 0:
            out["ig_delta"] = _views.tensor_array(self, t)
        return out

    def lens(self):
        """The logit lens: a dict of read-only views topk_ids / topk_logprobs [n_layers + 1, tokens, k] (entry 0:
        the embeddings, entry l: after layer l, the last: the model's output), target_ids [tokens] (the next
        token, -1 at the end), target_logprobs / target_ranks [n_layers + 1, tokens] (rank 0 = top), and labels
        ({id: display label} of every token named)."""
        v = _capi.LensView()
        call("av_trace_lens", self._h, ctypes.byref(v))
        E, T, k = v.n_entries, v.n_tokens, v.k
        labels = self._json_meta("lens.labels") or {}
        return {"topk_ids": _views.view(self, v.topk_ids, (E, T, k), "<i4"),
                "topk_logprobs": _views.view(self, v.topk_logprobs, (E, T, k)),
                "target_ids": _views.view(self, v.target_ids, (T,), "<i4"),
                "target_logprobs": _views.view(self, v.target_logprobs, (E, T)),
                "target_ranks": _views.view(self, v.target_ranks, (E, T), "<i4"),
                "labels": {int(i): s for i, s in labels.items()}}

    # ---- text-to-image: DAAM word maps (docs/T2I_MODEL.md section 9) ----

    def _daam_dims(self):
        """(steps, layers, heads, tokens, image size) of a text-to-image trace's daam.raw and image"""
        raw, img = _capi.Tensor(), _capi.Tensor()
        if lib.av_trace_tensor(self._h, b"daam.raw", ctypes.byref(raw)) or lib.av_trace_tensor(
                self._h, b"image", ctypes.byref(img)):
            raise AttnvizError("the trace has no DAAM data (daam.raw and image: a text-to-image run)")
        g = int((self.meta("patch_grid") or "0x0").split("x")[0])
        if raw.ndim != 4 or g <= 0 or raw.shape[3] % (g * g) or img.ndim != 3:
            raise AttnvizError("the trace's daam.raw does not match its patch_grid or image")
        return int(raw.shape[0]), int(raw.shape[1]), int(raw.shape[2]), int(raw.shape[3]) // (g * g), int(
            img.shape[1])

    @staticmethod
    def _daam_range(sel, n, what):
        """None (all), an int (that one), a (lo, hi) pair (half-open) or a range of step 1 -> (lo, hi)"""
        if sel is None:
            return 0, n
        if isinstance(sel, int):
            return sel, sel + 1
        if isinstance(sel, range) and sel.step == 1:
            return sel.start, sel.stop
        if isinstance(sel, (tuple, list)) and len(sel) == 2:
            return int(sel[0]), int(sel[1])
        raise ValueError("DAAM %s: give None, an index, a (lo, hi) pair or a range, not %r" % (what, sel))

    def daam(self, word=None, steps=None, layers=None, heads=None):
        """DAAM maps of a text-to-image trace (`attnviz run` on models/demo-t2i), as the C library's
        av_trace_daam computes them: the patches' cross-attention to each prompt token summed over the selected
        sampling steps, denoiser layers and heads, upsampled bilinearly to the image and min-max normalized.
        steps / layers / heads: None (all), an index, or a half-open (lo, hi) pair / range. word None: every
        token's map, float32 [tokens, H, W] (in prompt_tokens order); a word (a display string of
        prompt_tokens, e.g. "red"): its map [H, W], a word that occurs more than once (like "a") as DAAM's word
        group (each token's map, summed, normalized again); an int: that token's map."""
        N, L, H, S, size = self._daam_dims()
        r = _capi.DaamRange(*self._daam_range(steps, N, "steps"), *self._daam_range(layers, L, "layers"),
                            *self._daam_range(heads, H, "heads"))
        out = np.empty((S, size, size), np.float32)
        call("av_trace_daam", self._h, ctypes.byref(r), out.ctypes.data_as(ctypes.POINTER(ctypes.c_float)))
        if word is None:
            return out
        toks = self._json_meta("prompt_tokens")
        if isinstance(word, int):
            return out[word]
        group = [j for j, w in enumerate(toks) if w == word]
        if not group:
            raise KeyError("%r is not a prompt token (the prompt's tokens: %s)" % (word, " ".join(toks)))
        if len(group) == 1:
            return out[group[0]]
        m = out[group].astype(np.float64).sum(axis=0)
        return ((m - m.min()) / (m.max() - m.min() + 1e-8)).astype(np.float32)

    # ---- saving ----

    def save(self, path):
        """Writes the trace file (safetensors; atomic: temp file + rename). Returns path."""
        call("av_trace_save", self._h, cstr(path))
        return path



def load(path):
    """Opens a trace file: attnviz.load("story.safetensors")."""
    return Trace.load(path)

