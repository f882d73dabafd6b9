"""numpy arrays over memory the C library owns, without copying: the array keeps its owner (a Trace) alive,
so the memory stays valid as long as any view of it exists."""
import numpy as np

from . import _capi

_NP_DTYPES = {"F32": "<f4", "F16": "<f2", "I32": "<i4", "I64": "<i8", "U8": "|u1", "BF16": "<u2"}


class _Memory:
    """Exposes (pointer, shape, dtype) through the array interface; holds the owner."""
    __slots__ = ("__array_interface__", "owner")

    def __init__(self, owner, ptr, shape, typestr):
        self.owner = owner
        self.__array_interface__ = {"version": 3, "shape": tuple(int(d) for d in shape), "typestr": typestr,
                                    "data": (ptr, True)}  # read-only: the trace's data is shared


def view(owner, ptr, shape, typestr="<f4"):
    """A read-only numpy array over C memory at ptr, keeping owner alive."""
    if not ptr:
        raise _capi.AttnvizError("the library returned no data")
    return np.asarray(_Memory(owner, ptr, shape, typestr))


def tensor_array(owner, t):
    """A numpy array for an av_tensor: a view for the dtypes numpy has (F32, F16, I32, I64, U8), BF16
    widened to float32 (a copy), other (block-quantized) dtypes as their raw bytes."""
    name = _capi.dtype_name(t.dtype)
    shape = tuple(t.shape[:t.ndim])
    if name in _NP_DTYPES:
        a = view(owner, t.data, shape, _NP_DTYPES[name])
        return (a.astype(np.uint32) << 16).view(np.float32) if name == "BF16" else a
    return view(owner, t.data, (t.nbytes,), "|u1")
