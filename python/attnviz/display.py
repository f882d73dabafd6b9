"""Figures and the viewer of a trace: PNG/SVG heatmaps, the standalone viewer page, and inline notebook display.

In a notebook each viewer is the standalone page of `attnviz html` inside a sandboxed iframe (srcdoc): it has
its own document, so several viewers in one notebook never share element ids or data, and the page's
Content-Security-Policy forbids every network request. Traces whose page would pass max_inline_mb show a
pooled overview (the layers x heads grid as a PNG, each thumbnail max-pooled) with a message instead.
"""
import base64
import ctypes
import html as _html

import numpy as np

from . import _capi
from ._capi import call, cstr, lib

VIEWS = ("heatmap", "model", "head", "image", "summary", "rollout", "norm", "steps", "attribution", "lens", "neuron",
         "rows", "qkmap")  # the viewer's views (AV_HTML_VIEWS); the library has the last word (av_html_view_valid)
_ALIASES = {"roles": "summary", "model_view": "model", "head_view": "head"}
max_inline_mb = 20.0  # the default size guard of inline viewers (Trace.show(max_mb=...) overrides it)
IFRAME_HEIGHT = 640
OVERVIEW_CELLS = 256  # the overview pools each head to at most this many cells a side


class HTML:
    """HTML for notebooks when IPython is absent: .data holds the markup (as IPython.display.HTML's does)."""

    def __init__(self, data):
        self.data = data

    def _repr_html_(self):
        return self.data

    def __str__(self):
        return self.data


def html_object(markup):
    """IPython.display.HTML(markup), or the stand-in above without IPython."""
    try:
        from IPython.display import HTML as IPyHTML
    except ImportError:
        return HTML(markup)
    return IPyHTML(markup)


def display_markup(markup):
    try:
        from IPython.display import display
    except ImportError as e:
        raise ImportError("attnviz: showing a viewer needs IPython (a notebook); without one, write the page "
                          "with trace.save_html(path)") from e
    display(html_object(markup))


def iframe(page, height=IFRAME_HEIGHT, title="attnviz viewer"):
    """The page in a sandboxed iframe: scripts run in their own opaque origin, with nothing shared."""
    return ('<div class="attnviz-viewer"><iframe sandbox="allow-scripts" title="%s" style="width:100%%;'
            'height:%dpx;border:1px solid #d0d4da;border-radius:4px" srcdoc="%s"></iframe></div>'
            % (_html.escape(title), int(height), _html.escape(page, quote=True)))


def view_name(view):
    if view is None:
        return None
    view = _ALIASES.get(view, view)
    if view not in VIEWS or not lib.av_html_view_valid(cstr(view)):
        raise ValueError("view must be one of %s, got %r" % (", ".join(VIEWS + ("roles",)), view))
    return view


def _range_labels(n, cells):
    """Axis labels of n tokens pooled into cells: the tokens' indices, or index ranges ("64-127")."""
    if cells == n:
        return [str(i) for i in range(n)]
    return ["%d-%d" % (i * n // cells, (i + 1) * n // cells - 1) for i in range(cells)]


def _heads_arg(heads):
    if heads is None:
        return None, 0
    heads = [int(h) for h in heads]
    return (ctypes.c_int * len(heads))(*heads), len(heads)


class Figures:
    """The figure and viewer methods of attnviz.Trace."""

    def _plot_params(self, layer, head, kind, grid, cmap, log, exclude_first, dpi, cell, vmin, vmax, title):
        kind = self._kind(kind)
        p = lib.av_plot_default_params()
        p.kind, p.layer, p.head, p.grid = _capi.kind_arg(kind), 0 if grid else self._layer(layer, kind), \
            self._head(head), int(bool(grid))
        cm = ctypes.c_int()
        call("av_cmap_parse", cstr(cmap), ctypes.byref(cm))
        p.cmap, p.log_scale, p.exclude_first, p.dpi, p.cell = cm.value, int(log), int(exclude_first), dpi, cell
        if (vmin is None) != (vmax is None):
            raise ValueError("give vmin and vmax together")
        if vmin is not None:
            p.vmin, p.vmax = vmin, vmax
        p.title = cstr(title)
        return p

    def figure(self, format="png", layer=0, head="mean", kind=None, grid=False, cmap="viridis", log=False,
               exclude_first=False, dpi=150, cell=0, vmin=None, vmax=None, title=None):
        """The heatmap of one head (or the mean/max over heads), or grid=True for every layer x head, as PNG
        or SVG bytes (the figures of `attnviz render`, docs/VIEWER.md)."""
        if format not in ("png", "svg"):
            raise ValueError("format must be 'png' or 'svg', got %r" % (format,))
        p = self._plot_params(layer, head, kind, grid, cmap, log, exclude_first, dpi, cell, vmin, vmax, title)
        out, n = ctypes.POINTER(ctypes.c_uint8)(), ctypes.c_size_t()
        call("av_plot_build", self._h, ctypes.byref(p), 0 if format == "png" else 1, ctypes.byref(out),
             ctypes.byref(n), None)
        return _capi.take_bytes(out, n.value)

    def render(self, path, layer=0, head="mean", kind=None, grid=False, cmap="viridis", log=False,
               exclude_first=False, dpi=150, cell=0, vmin=None, vmax=None, title=None):
        """Writes the figure to path (.png or .svg, atomically). Returns path."""
        p = self._plot_params(layer, head, kind, grid, cmap, log, exclude_first, dpi, cell, vmin, vmax, title)
        call("av_plot_render", self._h, ctypes.byref(p), cstr(path), None)
        return path

    def _html_params(self, keep, view, kind, layer, head, heads, theme, precision, analysis, title, roles, image):
        p = lib.av_html_default_params()
        if precision not in ("auto", "f16", "u8"):
            raise ValueError("precision must be 'auto', 'f16' or 'u8', got %r" % (precision,))
        p.precision = ("auto", "f16", "u8").index(precision)
        p.view, p.title, p.roles_path, p.image_path = cstr(view_name(view)), cstr(title), cstr(roles), cstr(image)
        p.analysis = int(bool(analysis))
        p.kind = _capi.kind_opt(None if kind is None else self._kind(kind))  # None: the viewer's choice
        p.layer = self._layer(layer, self._kind(kind) if kind is not None else self._viewer_kind())
        p.head = self._head(head)
        keep.append(_heads_arg(heads))
        p.heads, p.n_heads = keep[-1]
        p.theme = cstr(theme)
        return p

    def html(self, view=None, kind=None, layer=0, head="mean", heads=None, theme=None, precision="auto",
             analysis=True, title=None, roles=None, image=None):
        """The standalone viewer page (`attnviz html`) as a string: one offline file, no network requests.
        view: one of AV_HTML_VIEWS (heatmap, model, head, image, summary or roles, rollout, norm, steps,
        attribution, lens, neuron, rows, qkmap); kind/layer/head/heads: what it
        shows first (heads: the head view's checked heads); theme: "light" or "dark"; roles: the JSON file of
        `attnviz roles --json`; image: a PNG under the patch attention of image traces."""
        keep = []
        p = self._html_params(keep, view, kind, layer, head, heads, theme, precision, analysis, title, roles, image)
        out, n = ctypes.c_void_p(), ctypes.c_size_t()
        call("av_html_build", self._h, ctypes.byref(p), ctypes.byref(out), ctypes.byref(n))
        return _capi.take_bytes(out, n.value).decode("utf-8")

    def save_html(self, path, view=None, **kw):
        """Writes the viewer page to path (atomically). Returns path."""
        keep = []
        p = self._html_params(keep, view, kw.get("kind"), kw.get("layer", 0), kw.get("head", "mean"),
                              kw.get("heads"), kw.get("theme"), kw.get("precision", "auto"),
                              kw.get("analysis", True), kw.get("title"), kw.get("roles"), kw.get("image"))
        call("av_html_write", self._h, ctypes.byref(p), cstr(path), None)
        return path

    def attention_values(self):
        """Number of attention weights the trace holds (what the viewer page embeds)."""
        return sum(self.n_layers(k) * self.n_heads(k) * self.n_query(k) * self.n_key(k) for k in self.kinds)

    def page_mb(self):
        """Estimated size of the viewer page in MiB: the attention and rollout matrices (f16, or 8 bits with
        a scale per row when the page would pass 4 MiB), about 400 bytes of statistics per head, the value
        norms, the labels and about 100 KiB of viewer code."""
        n = self.attention_values() + sum(self.n_query(k) * self.n_key(k) for k in self.kinds)  # + rollout
        rows = sum((self.n_layers(k) * self.n_heads(k) + 1) * self.n_query(k) for k in self.kinds)
        heads = sum(self.n_layers(k) * self.n_heads(k) for k in self.kinds)
        data = n * 2 if n * 2 * 4 / 3 < 4 * 2**20 else n + 4 * rows
        vnorm = 4 * self.heads * len(self) * self.layers if "self" in self.kinds else 0
        return ((data + vnorm) * 4 / 3 + 400 * heads + 24 * len(self) + 100 * 1024) / 2**20

    def pooled(self, kind=None, cells=OVERVIEW_CELLS):
        """The trace max-pooled to at most cells x cells per head (through tiles: exact rows of lazy traces,
        never a whole layer in memory), as a new Trace whose labels are token ranges."""
        from .compat import from_arrays  # compat builds on Trace: imported when needed
        kind = self._kind(kind) if kind is not None else self._viewer_kind()
        nq, nk = self.n_query(kind), self.n_key(kind)
        rq, rk = min(cells, nq), min(cells, nk)
        layers = [np.stack([self.tile(l, h, (0, nq), (0, nk), shape=(rq, rk), pool="max", kind=kind)
                            for h in range(self.n_heads(kind))]) for l in range(self.n_layers(kind))]
        qlab, klab = _range_labels(nq, rq), _range_labels(nk, rk)
        args = {"self": {"attention": layers, "tokens": qlab},
                "enc": {"encoder_attention": layers, "encoder_tokens": qlab},
                "dec": {"decoder_attention": layers, "decoder_tokens": qlab},
                "cross": {"cross_attention": layers, "decoder_tokens": qlab, "encoder_tokens": klab}}[kind]
        return from_arrays(check=False, model=self.model, **args)

    def overview(self, message=None, kind=None):
        """HTML of the pooled overview: every layer x head as one PNG (max-pooled thumbnails) and a message."""
        try:
            png = self.pooled(kind).figure("png", grid=True, dpi=96)
        except (_capi.AttnvizError, MemoryError) as e:
            return '<p class="attnviz-overview">%s (no overview: %s)</p>' % (_html.escape(message or ""),
                                                                          _html.escape(str(e)))
        note = message or "attnviz: pooled overview of every layer x head (max-pooled thumbnails)."
        return ('<div class="attnviz-overview"><p style="font-family:sans-serif">%s</p><img alt="attention '
                'overview" style="max-width:100%%" src="data:image/png;base64,%s"></div>'
                % (_html.escape(note), base64.b64encode(png).decode()))

    def display_html(self, view=None, height=IFRAME_HEIGHT, max_mb=None, **kw):
        """What show() displays: the viewer in a sandboxed iframe, or the pooled overview above max_mb."""
        limit = max_inline_mb if max_mb is None else max_mb
        size = self.page_mb()
        if size > limit:
            return self.overview(
                "attnviz: this trace holds %.3g M attention weights, a viewer page of about %.3g MiB, above the "
                "inline limit of %g MiB: showing a pooled overview of every layer x head instead. Open the full "
                "viewer with trace.save_html('view.html') (or `attnviz serve` for the zoomable map), or raise "
                "the limit: trace.show(max_mb=%d)." % (self.attention_values() / 1e6, size, limit,
                                                        int(size) + 1), kind=kw.get("kind"))
        return iframe(self.html(view, **kw), height, "attnviz viewer: " + (self.model or "trace"))

    def show(self, view=None, height=IFRAME_HEIGHT, max_mb=None, **kw):
        """Displays the viewer inline in a notebook (see display_html); view and kw as html() (view None: the
        heatmap, or the image view of image traces)."""
        display_markup(self.display_html(view, height, max_mb, **kw))

    def _repr_html_(self):
        return self.display_html()
