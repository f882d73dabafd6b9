"""Attention computed elsewhere: arrays (Hugging Face output_attentions tuples, numpy or torch), BertViz's
head_view / model_view with BertViz's arguments, and TransformerLens caches. Everything goes through the
library's importer (av_trace_import, the code of `attnviz import`): the same shape rules and the same checks
that every row is a probability distribution, with messages naming the layer, head and row."""
import ctypes
import json

import numpy as np

from . import _capi
from ._capi import AttnvizError, call, cstr, lib
from .display import display_markup, html_object, iframe
from .trace import Trace

_DTYPE_CODES = {np.dtype("float32"): 0, np.dtype("float16"): 1}


def to_numpy(x):
    """A numpy array from a numpy array, a torch tensor (any device, bfloat16 widened) or nested lists."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor, without importing torch
        x = x.detach().cpu()
        if str(x.dtype) == "torch.bfloat16":
            x = x.float()
        x = x.numpy()
    a = np.asarray(x)
    if a.dtype not in _DTYPE_CODES:
        a = a.astype(np.float32)
    return np.ascontiguousarray(a)


def _layer_arrays(attention, what, include_layers=None, include_heads=None):
    """A tuple/list/stack of per-layer attention ([batch=1, heads, q, k] or [heads, q, k]) -> [heads, q, k]
    arrays of the chosen layers and heads."""
    if attention is None:
        return []
    if hasattr(attention, "shape") and len(attention.shape) in (4, 5):  # one stacked array [L, (1,) H, q, k]
        attention = [attention[i] for i in range(attention.shape[0])]
    layers = list(attention)
    if not layers:
        raise ValueError("%s has no layers" % what)
    chosen = range(len(layers)) if include_layers is None else include_layers
    out = []
    for i in chosen:
        if not -len(layers) <= i < len(layers):
            raise ValueError("%s: layer %d is not among its %d layers" % (what, i, len(layers)))
        a = to_numpy(layers[i])
        if a.ndim == 4:
            if a.shape[0] != 1:
                raise ValueError("%s layer %d has a batch of %d sequences: pass one (attention[l][i:i+1])"
                                 % (what, i, a.shape[0]))
            a = a[0]
        if a.ndim != 3:
            raise ValueError("%s layer %d: expected [batch, heads, queries, keys], got shape %s"
                             % (what, i, a.shape))
        out.append(np.ascontiguousarray(a if include_heads is None else a[list(include_heads)]))
    return out


def _import_array(name, a, keep):
    t = _capi.Tensor()
    t.dtype, t.ndim = _DTYPE_CODES[a.dtype], a.ndim
    for i, d in enumerate(a.shape):
        t.shape[i] = d
    t.data, t.nbytes = a.ctypes.data, a.nbytes
    keep.append(a)
    return _capi.ImportArray(cstr(name), t)


def from_arrays(attention=None, tokens=None, *, encoder_attention=None, decoder_attention=None,
                cross_attention=None, encoder_tokens=None, decoder_tokens=None, model=None, check=True,
                tolerance=0.0, dtype="f32", metadata=None, include_layers=None, include_heads=None):
    """A Trace from attention arrays: `attention` (self-attention, one array per layer as Hugging Face returns
    with output_attentions=True: [1, heads, T, T], numpy or torch) with `tokens`; or an encoder-decoder's
    encoder/decoder/cross attention with encoder_tokens / decoder_tokens. check=False accepts weights that are
    not probabilities. Layers and heads may be narrowed with include_layers / include_heads."""
    kinds = [("attentions", attention), ("encoder_attentions", encoder_attention),
             ("decoder_attentions", decoder_attention), ("cross_attentions", cross_attention)]
    if attention is not None and any(a is not None for _, a in kinds[1:]):
        raise ValueError("give either attention (self-attention models) or encoder/decoder/cross attention")
    keep, arrays = [], []
    for name, att in kinds:
        for i, a in enumerate(_layer_arrays(att, name, include_layers, include_heads)):
            arrays.append(_import_array("%s.%d" % (name, i), a, keep))
    if not arrays:
        raise ValueError("You must specify at least one attention argument.")
    toks = {"metadata": {k: str(v) for k, v in (metadata or {}).items()}}
    if tokens is not None:
        toks["tokens"] = [str(t) for t in tokens]
    if encoder_tokens is not None:
        toks["source_tokens"] = [str(t) for t in encoder_tokens]
    if decoder_tokens is not None:
        toks["target_tokens"] = [str(t) for t in decoder_tokens]
    p = lib.av_import_default_params()
    arr = (_capi.ImportArray * len(arrays))(*arrays)
    p.arrays, p.n_arrays = arr, len(arrays)
    p.tokens_json = json.dumps(toks).encode() if len(toks) > 1 or toks["metadata"] else None
    p.check_rows, p.tolerance, p.model = int(bool(check)), float(tolerance), cstr(model)
    p.dtype = {"f32": 0, "f16": 1}[dtype]
    out = ctypes.c_void_p()
    try:
        call("av_trace_import", ctypes.byref(p), ctypes.byref(out))
    except AttnvizError as e:  # the importer's hint names the CLI option
        raise AttnvizError(str(e).replace("use --no-check", "pass check=False")) from None
    return Trace(out.value)


def prettify(tokens):
    """BertViz's token clean-up: GPT-2's and SentencePiece's space marks become spaces, '</w>' goes."""
    return None if tokens is None else [str(t).replace("Ġ", " ").replace("▁", " ").replace("</w>", "")
                                        for t in tokens]


def _view(view, kw, *, attention, tokens, sentence_b_start, prettify_tokens, display_mode, encoder_attention,
          decoder_attention, cross_attention, encoder_tokens, decoder_tokens, include_layers, include_heads,
          layer, heads, html_action):
    if html_action not in ("view", "return"):
        raise ValueError("'html_action' parameter must be 'view' or 'return'")
    if attention is not None and tokens is None:
        raise ValueError("'tokens' is required")
    if encoder_attention is not None and encoder_tokens is None:
        raise ValueError("'encoder_tokens' required if 'encoder_attention' is not None")
    if decoder_attention is not None and decoder_tokens is None:
        raise ValueError("'decoder_tokens' required if 'decoder_attention' is not None")
    if cross_attention is not None and (encoder_tokens is None or decoder_tokens is None):
        raise ValueError("'encoder_tokens' and 'decoder_tokens' are required with 'cross_attention'")
    if layer is not None and include_layers is not None and layer not in include_layers:
        raise ValueError("Layer %d is not in include_layers: %s" % (layer, list(include_layers)))
    fix = prettify if prettify_tokens else (lambda t: t)
    meta = {}
    if include_layers is not None:
        meta["layers_included"] = ",".join(str(i) for i in include_layers)
    if sentence_b_start is not None:
        meta["sentence_b_start"] = int(sentence_b_start)
    trace = from_arrays(attention, fix(tokens), encoder_attention=encoder_attention,
                        decoder_attention=decoder_attention, cross_attention=cross_attention,
                        encoder_tokens=fix(encoder_tokens), decoder_tokens=fix(decoder_tokens), metadata=meta,
                        include_layers=include_layers, include_heads=include_heads, model=kw.pop("model", None))
    first = 0 if layer is None else list(include_layers).index(layer) if include_layers is not None else layer
    title = kw.pop("title", None) or _title(include_layers, sentence_b_start)
    height = kw.pop("height", 640)
    page = trace.html(view, layer=first, heads=heads, theme=display_mode, title=title, **kw)
    markup = iframe(page, height, "attnviz %s view" % view)
    if html_action == "return":
        return html_object(markup)
    display_markup(markup)
    return None


def _title(include_layers, sentence_b_start):
    """A page title naming what BertViz's options changed (None: the default title)."""
    parts = ["attention"]
    if include_layers is not None:
        parts.append("layers %s (numbered 0..%d here)" % (", ".join(map(str, include_layers)),
                                                          len(include_layers) - 1))
    if sentence_b_start is not None:
        parts.append("sentence B from token %d (queries/keys %d-)" % (sentence_b_start, sentence_b_start))
    return " · ".join(parts) if len(parts) > 1 else None


def head_view(attention=None, tokens=None, sentence_b_start=None, prettify_tokens=True, layer=None, heads=None,
              encoder_attention=None, decoder_attention=None, cross_attention=None, encoder_tokens=None,
              decoder_tokens=None, include_layers=None, html_action="view", display_mode="dark", **kw):
    """BertViz's head_view with the same arguments, drawn by attnviz's offline viewer (head view first)."""
    return _view("head", kw, attention=attention, tokens=tokens, sentence_b_start=sentence_b_start,
                 prettify_tokens=prettify_tokens, display_mode=display_mode, encoder_attention=encoder_attention,
                 decoder_attention=decoder_attention, cross_attention=cross_attention,
                 encoder_tokens=encoder_tokens, decoder_tokens=decoder_tokens, include_layers=include_layers,
                 include_heads=None, layer=layer, heads=heads, html_action=html_action)


def model_view(attention=None, tokens=None, sentence_b_start=None, prettify_tokens=True, display_mode="dark",
               encoder_attention=None, decoder_attention=None, cross_attention=None, encoder_tokens=None,
               decoder_tokens=None, include_layers=None, include_heads=None, html_action="view", **kw):
    """BertViz's model_view with the same arguments, drawn by attnviz's offline viewer (model view first)."""
    return _view("model", kw, attention=attention, tokens=tokens, sentence_b_start=sentence_b_start,
                 prettify_tokens=prettify_tokens, display_mode=display_mode, encoder_attention=encoder_attention,
                 decoder_attention=decoder_attention, cross_attention=cross_attention,
                 encoder_tokens=encoder_tokens, decoder_tokens=decoder_tokens, include_layers=include_layers,
                 include_heads=include_heads, layer=None, heads=None, html_action=html_action)


def from_transformerlens(cache, tokens, model=None, check=True):
    """A Trace from a TransformerLens ActivationCache (or any mapping) holding blocks.{l}.attn.hook_pattern
    [batch=1, heads, query, key] for l = 0, 1, ...; tokens: model.to_str_tokens(text) (or ids)."""
    keys, layers = set(cache.keys()), []
    while "blocks.%d.attn.hook_pattern" % len(layers) in keys:
        layers.append(cache["blocks.%d.attn.hook_pattern" % len(layers)])
    if not layers:
        raise ValueError("the cache has no blocks.0.attn.hook_pattern: run the model with "
                         "run_with_cache (names_filter must keep the attention patterns)")
    toks = tokens.tolist() if hasattr(tokens, "tolist") else list(tokens)
    if toks and isinstance(toks[0], list):  # a [1, T] batch of ids or strings
        toks = toks[0]
    return from_arrays(layers, [str(t) for t in toks], model=model, check=check)
