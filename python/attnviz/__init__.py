"""attnviz: see what every layer and head of a transformer attends to, from Python.

    import attnviz
    trace = attnviz.run("stories260K.bin", text="Once upon a time")   # or attnviz.Model(path).run(...)
    trace.attention(2)            # [heads, T, T] numpy view, no copy
    trace.show("head")            # the offline viewer inline in a notebook
    trace = attnviz.load("story.safetensors")

    from attnviz import head_view, model_view   # BertViz's entry points, same arguments

The package is pure Python over libattnviz.so (ctypes); docs/PYTHON.md has the whole API.
"""
from ._capi import VERSION as __version__
from ._capi import AttnvizError, lib_path
from .analysis import HeadStats, ModelRoles
from .compat import from_arrays, from_transformerlens, head_view, model_view
from .display import HTML
from .model import Model, run
from .trace import Trace, load

__all__ = ["__version__", "AttnvizError", "HTML", "HeadStats", "Model", "ModelRoles", "Trace", "from_arrays",
           "from_transformerlens", "head_view", "load", "model_view", "run", "lib_path"]
