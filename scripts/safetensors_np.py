#!/usr/bin/python3
"""Tiny dependency-free (numpy only) safetensors reader/writer.

File format (https://github.com/huggingface/safetensors):
    u64 little-endian N | N bytes of JSON header | data section
The header maps tensor names to {"dtype": "F32", "shape": [...],
"data_offsets": [begin, end]} (offsets relative to the data section start)
plus an optional "__metadata__" object of string -> string.  We pad the
header with spaces to a multiple of 8 bytes, and tensors are stored back to
back with no holes (the official library rejects gaps), ordered by element
size (largest first) so every tensor stays aligned to its element size.

numpy has no bfloat16: BF16 tensors are passed to write() as uint16 arrays
(the raw bit pattern, see f32_to_bf16) together with a dtype override
{"name": "BF16"}.  read() returns BF16 tensors converted to float32 unless
raw_bf16=True, in which case they come back as uint16 bit patterns.

API:
    write(path, tensors, metadata=None, dtypes=None)
    read(path, mmap=False, raw_bf16=False) -> (tensors, metadata)
    read_header(path) -> (header dict without __metadata__, metadata, data_start)
    StreamWriter(path, specs, metadata)  # header first, then tensors one by one
    f32_to_bf16(a) / bf16_to_f32(u16)
"""

import json
import os
import struct

import numpy as np

# safetensors dtype tag -> numpy dtype (little-endian)
_TAG_TO_NP = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),  # raw bit pattern
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"),
    "U32": np.dtype("<u4"),
    "U16": np.dtype("<u2"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_NP_TO_TAG = {
    np.dtype("<f8"): "F64",
    np.dtype("<f4"): "F32",
    np.dtype("<f2"): "F16",
    np.dtype("<i8"): "I64",
    np.dtype("<i4"): "I32",
    np.dtype("<i2"): "I16",
    np.dtype("i1"): "I8",
    np.dtype("<u8"): "U64",
    np.dtype("<u4"): "U32",
    np.dtype("<u2"): "U16",
    np.dtype("u1"): "U8",
    np.dtype("?"): "BOOL",
}

MAX_HEADER = 100 * 1024 * 1024  # same limit as the reference implementation


def dtype_size(tag):
    return _TAG_TO_NP[tag].itemsize


def tag_for(arr):
    dt = np.dtype(arr.dtype).newbyteorder("<") if arr.dtype.byteorder == ">" else np.dtype(arr.dtype)
    if dt not in _NP_TO_TAG:
        raise TypeError("safetensors: unsupported numpy dtype %s" % arr.dtype)
    return _NP_TO_TAG[dt]


def f32_to_bf16(a):
    """float32 array -> uint16 bf16 bit patterns (round to nearest even, NaN kept NaN)."""
    a = np.ascontiguousarray(a, dtype=np.float32)
    u = a.view(np.uint32).astype(np.uint64)
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(a)
    if nan.any():
        rounded[nan] = ((u[nan] >> 16) | 0x40).astype(np.uint16)
    return rounded


def bf16_to_f32(u):
    """uint16 bf16 bit patterns -> float32 array."""
    u = np.asarray(u, dtype=np.uint16)
    return (u.astype(np.uint32) << 16).view(np.float32)


def _nelem(shape):
    n = 1
    for d in shape:
        if int(d) < 0:
            raise ValueError("safetensors: negative dimension in shape %r" % (shape,))
        n *= int(d)
    return n


def _layout(specs):
    """specs: list of (name, tag, shape). Returns ordered list of
    (name, tag, shape, begin, end) with tensors sorted by element size
    (stable, so insertion order is kept within a size class)."""
    order = sorted(range(len(specs)), key=lambda i: -dtype_size(specs[i][1]))
    out = []
    off = 0
    seen = set()
    for i in order:
        name, tag, shape = specs[i]
        if name == "__metadata__" or name in seen:
            raise ValueError("safetensors: bad or duplicate tensor name %r" % name)
        seen.add(name)
        if tag not in _TAG_TO_NP:
            raise ValueError("safetensors: unknown dtype tag %r" % tag)
        nbytes = _nelem(shape) * dtype_size(tag)
        out.append((name, tag, [int(d) for d in shape], off, off + nbytes))
        off += nbytes
    return out


def _header_bytes(layout, metadata):
    hdr = {}
    if metadata:
        md = {}
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError("safetensors: metadata must be str -> str (got %r: %r)" % (k, v))
            md[k] = v
        hdr["__metadata__"] = md
    for name, tag, shape, b, e in layout:
        hdr[name] = {"dtype": tag, "shape": shape, "data_offsets": [b, e]}
    raw = json.dumps(hdr, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    raw += b" " * ((-len(raw)) % 8)
    return struct.pack("<Q", len(raw)) + raw


class StreamWriter:
    """Write a safetensors file without holding all tensors in memory.

    specs is a list of (name, dtype tag, shape).  The header is written
    first; then call write_tensor(name, array) once per tensor, in the order
    given by .order (the on-disk order), and finally close().  The file is
    written to path + '.tmp' and renamed on a successful close().
    """

    def __init__(self, path, specs, metadata=None):
        self.path = path
        self.layout = _layout(specs)
        self.order = [t[0] for t in self.layout]
        self._next = 0
        self._tmp = path + ".tmp"
        self._f = open(self._tmp, "wb")
        self._f.write(_header_bytes(self.layout, metadata))

    @property
    def data_bytes(self):
        return self.layout[-1][4] if self.layout else 0

    def write_tensor(self, name, arr):
        if self._next >= len(self.layout):
            raise ValueError("safetensors: too many tensors (got %r)" % name)
        lname, tag, shape, b, e = self.layout[self._next]
        if name != lname:
            raise ValueError("safetensors: expected tensor %r next, got %r" % (lname, name))
        arr = np.asarray(arr)
        want = _TAG_TO_NP[tag]
        if arr.dtype != want:
            if tag == "BF16" and arr.dtype == np.float32:
                arr = f32_to_bf16(arr)
            elif tag == "BF16" or arr.dtype.kind != want.kind and not (arr.dtype.kind in "iu" and want.kind in "iu"):
                raise TypeError("safetensors: tensor %r has dtype %s, header says %s" % (name, arr.dtype, tag))
            else:
                arr = arr.astype(want)
        if list(arr.shape) != shape:
            raise ValueError("safetensors: tensor %r has shape %r, header says %r" % (name, list(arr.shape), shape))
        data = np.ascontiguousarray(arr).reshape(-1).view(np.uint8)  # no copy when already contiguous
        assert data.size == e - b
        self._f.write(memoryview(data))
        self._next += 1

    def close(self):
        if self._f is None:
            return
        try:
            if self._next != len(self.layout):
                raise ValueError("safetensors: %d of %d tensors written" % (self._next, len(self.layout)))
            self._f.flush()
            os.fsync(self._f.fileno())
        except BaseException:
            self._f.close()
            self._f = None
            os.unlink(self._tmp)
            raise
        self._f.close()
        self._f = None
        os.replace(self._tmp, self.path)

    def abort(self):
        if self._f is not None:
            self._f.close()
            self._f = None
            try:
                os.unlink(self._tmp)
            except FileNotFoundError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False


def write(path, tensors, metadata=None, dtypes=None):
    """Write dict name -> np.ndarray to path (atomically: temp file + rename).

    dtypes: optional dict name -> tag overriding the tag derived from the
    array's dtype; use {"w": "BF16"} with a uint16 (bit pattern) or float32
    array to store bfloat16.
    """
    dtypes = dtypes or {}
    specs = []
    arrays = {}
    for name, arr in tensors.items():
        arr = np.asarray(arr)
        tag = dtypes.get(name) or tag_for(arr)
        if tag == "BF16" and arr.dtype == np.float32:
            arr = f32_to_bf16(arr)
        arrays[name] = arr
        specs.append((name, tag, list(arr.shape)))
    with StreamWriter(path, specs, metadata) as w:
        for name in w.order:
            w.write_tensor(name, arrays[name])


def read_header(path):
    """Return (tensor header dict, metadata dict, data section start offset)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise ValueError("%s: too short for a safetensors file" % path)
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER or 8 + n > size:
            raise ValueError("%s: header length %d out of range (file size %d)" % (path, n, size))
        raw = f.read(n)
    hdr = json.loads(raw.decode("utf-8"))
    if not isinstance(hdr, dict):
        raise ValueError("%s: header is not a JSON object" % path)
    metadata = hdr.pop("__metadata__", None) or {}
    data_start = 8 + n
    data_len = size - data_start
    for name, info in hdr.items():
        tag = info.get("dtype")
        if tag not in _TAG_TO_NP:
            raise ValueError("%s: tensor %r has unknown dtype %r" % (path, name, tag))
        b, e = info["data_offsets"]
        if not (0 <= b <= e <= data_len):
            raise ValueError("%s: tensor %r offsets [%d, %d] outside data (%d bytes)" % (path, name, b, e, data_len))
        if _nelem(info["shape"]) * dtype_size(tag) != e - b:
            raise ValueError("%s: tensor %r size does not match its shape and dtype" % (path, name))
    return hdr, metadata, data_start


def read(path, mmap=False, raw_bf16=False):
    """Read a safetensors file -> (dict name -> np.ndarray, metadata dict).

    With mmap=True the arrays are read-only views into a memory map (BF16 is
    then still converted, which copies).  BF16 tensors are returned as
    float32 unless raw_bf16=True (then uint16 bit patterns).
    """
    hdr, metadata, data_start = read_header(path)
    if mmap:
        size = os.path.getsize(path) - data_start
        buf = np.memmap(path, dtype=np.uint8, mode="r", offset=data_start, shape=(size,)) if size else np.zeros(0, np.uint8)
    else:
        with open(path, "rb") as f:
            f.seek(data_start)
            buf = np.frombuffer(f.read(), dtype=np.uint8)
    out = {}
    for name, info in hdr.items():
        tag = info["dtype"]
        b, e = info["data_offsets"]
        a = buf[b:e].view(_TAG_TO_NP[tag]).reshape(info["shape"])
        if tag == "BF16" and not raw_bf16:
            a = bf16_to_f32(a).reshape(info["shape"])
        out[name] = a
    return out, metadata


if __name__ == "__main__":
    import signal
    import sys

    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # quiet when piped into head
    if len(sys.argv) != 2:
        print("usage: safetensors_np.py FILE   (lists tensors and metadata)", file=sys.stderr)
        sys.exit(2)
    h, md, start = read_header(sys.argv[1])
    for k, v in md.items():
        print("meta %s = %s" % (k, v if len(v) < 200 else v[:200] + "..."))
    for k, v in h.items():
        print("%-48s %-5s %s" % (k, v["dtype"], v["shape"]))
