"""Analyses of a trace, computed by the library (src/analysis/, formulas in docs/ANALYSIS.md): per-head
statistics and roles, attention rollout and flow, norm-based attention; and the model probes of head roles."""
import ctypes

import numpy as np

from . import _capi
from ._capi import call, cstr, kind_arg, lib, text

_F32P = ctypes.POINTER(ctypes.c_float)


def _reduce(name):
    v = ctypes.c_int()
    call("av_reduce_parse", cstr(name), ctypes.byref(v))
    return v.value


class HeadStats:
    """Per-head statistics of one attention kind: stats["entropy"] etc. are [layers, heads] arrays (NaN where
    a statistic does not apply), `role` the detected role of each head ("previous_token", "first_token",
    "self", "broad" or "none"), `role_score` its score and `scores[role]` every role's score."""

    def __init__(self, kind, rows, roles):
        self.kind = kind
        self.layers = sorted({r.layer for r in rows})  # the layers the rows cover (one, or all)
        shape = (len(self.layers), max(r.head for r in rows) + 1)
        self.n_rows = np.array([r.n_rows for r in rows], dtype=np.int32).reshape(shape)
        self._stats = {s: np.array([getattr(r, s) for r in rows]).reshape(shape) for s in _capi.HeadStats.STATS}
        self.scores = {name: np.array([r.score[i] for r in roles]).reshape(shape)
                       for i, name in enumerate(_capi.ROLES[:4])}
        self.role = np.array([text(lib.av_role_name(r.best)) for r in roles], dtype=object).reshape(shape)
        self.role_score = np.array([r.best_score for r in roles]).reshape(shape)

    names = _capi.HeadStats.STATS

    def __getitem__(self, name):
        if name not in self._stats:
            raise KeyError("no statistic %r (there are %s)" % (name, ", ".join(self.names)))
        return self._stats[name]

    def __repr__(self):
        return "<attnviz.HeadStats %s: %d layers x %d heads>" % ((self.kind,) + self.role.shape)

    def heads_with_role(self, role):
        """(layer, head) pairs whose detected role is role, best score first."""
        idx = [tuple(int(i) for i in ix) for ix in zip(*np.nonzero(self.role == role))]
        return sorted(idx, key=lambda lh: -self.role_score[lh])


class Analyses:
    """The analysis methods of attnviz.Trace."""

    def stats(self, kind=None, layer=None):
        """Per-head statistics and roles of one kind (every layer, or one): a HeadStats."""
        kind = self._kind(kind)
        lay = -1 if layer is None else self._layer(layer, kind)
        out, n = ctypes.POINTER(_capi.HeadStats)(), ctypes.c_int()
        call("av_trace_head_stats", self._h, kind_arg(kind), lay, ctypes.byref(out), ctypes.byref(n))
        try:
            rows = [_capi.HeadStats.from_buffer_copy(out[i]) for i in range(n.value)]
        finally:
            lib.av_free(out)
        roles = []
        for r in rows:
            roles.append(_capi.HeadRoles())
            lib.av_roles_from_stats(ctypes.byref(r), ctypes.byref(roles[-1]))
        return HeadStats(kind, rows, roles)

    def roles(self, kind=None):
        """Detected role of each head from this trace's statistics: [layers, heads] array of role names."""
        return self.stats(kind).role

    def rollout(self, kind=None, residual=0.5, fusion="mean", normalize=False):
        """Attention rollout (Abnar & Zuidema 2020): [tokens, tokens] for self/enc/dec; for cross the
        encoder-decoder variant [n_target, n_source] (rows sum to the source share unless normalize)."""
        kind = self._kind(kind)
        p = lib.av_rollout_default_params()
        p.fusion, p.residual, p.normalize = _reduce(fusion), residual, int(bool(normalize))
        if kind == "cross":
            out = np.empty((self.n_query("cross"), self.n_key("cross")), dtype=np.float32)
            nt, ns = ctypes.c_int(), ctypes.c_int()
            call("av_rollout_cross_trace", self._h, ctypes.byref(p), out.ctypes.data_as(_F32P), ctypes.byref(nt),
                 ctypes.byref(ns))
            return out
        out = np.empty((self.n_query(kind),) * 2, dtype=np.float32)
        call("av_rollout_trace", self._h, kind_arg(kind), ctypes.byref(p), out.ctypes.data_as(_F32P))
        return out

    def flow(self, kind=None, residual=0.5, fusion="mean", normalize=True, max_work=1e9, threads=0):
        """Attention flow (max-flow through the layers, Abnar & Zuidema 2020): [tokens, tokens]. Refuses above
        max_work = layers x tokens^4 (None: no limit)."""
        kind = self._kind(kind)
        p = lib.av_flow_default_params()
        p.fusion, p.residual, p.normalize = _reduce(fusion), residual, int(bool(normalize))
        p.max_work, p.n_threads = (0 if max_work is None else max_work), threads
        out = np.empty((self.n_query(kind),) * 2, dtype=np.float32)
        call("av_flow_trace", self._h, kind_arg(kind), ctypes.byref(p), out.ctypes.data_as(_F32P))
        return out

    def norm_attention(self, layer, head="mean", normalize_rows=False):
        """Norm-based attention (Kobayashi et al. 2020) of a self-attention layer: alpha_ij * ||v_j W_o^h||
        for one head, or the mean/max/min over heads: [tokens, tokens]."""
        layer = self._layer(layer, "self")
        out = np.empty((self.n_query("self"), self.n_key("self")), dtype=np.float32)
        call("av_norm_attn_trace", self._h, layer, cstr(head), int(bool(normalize_rows)),
             out.ctypes.data_as(_F32P))
        return out


class ModelRoles:
    """Head roles from the model probes (Model.roles): scores[role] [layers, heads] for every role
    (previous_token, first_token, self, broad, duplicate_token, induction), the best role and its score."""

    def __init__(self, res):
        shape = (res.n_layers, res.n_heads)
        heads = [res.heads[i] for i in range(res.n_layers * res.n_heads)]
        self.scores = {name: np.array([h.score[i] for h in heads]).reshape(shape)
                       for i, name in enumerate(_capi.ROLES)}
        self.role = np.array([text(lib.av_role_name(h.best)) for h in heads], dtype=object).reshape(shape)
        self.role_score = np.array([h.best_score for h in heads]).reshape(shape)
        self.text_tokens, self.seq_len, self.n_samples, self.seed = (res.text_tokens, res.seq_len, res.n_samples,
                                                                     res.seed)

    def __repr__(self):
        return "<attnviz.ModelRoles %d layers x %d heads>" % self.role.shape

    heads_with_role = HeadStats.heads_with_role
