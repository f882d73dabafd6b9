"""ctypes bindings of libattnviz.so: finding the library, the C structs of include/attnviz.h, the function
signatures and error handling. Everything that depends on the C declarations lives in this file.

The library is searched in this order:
  1. $ATTNVIZ_LIB: the .so file itself, or a directory holding libattnviz.so.0;
  2. the copy installed inside the package (pip install ./python after `make` bundles it);
  3. the build tree this package sits in (python/attnviz -> build/libattnviz.so.0);
  4. the system's library path (libattnviz.so.0).

Attention kinds: Python names them ("self", "enc", "dec", "cross", the library's av_attn_kind_name); the C
API takes the av_attn_kind enum. `kind_arg` is the one place a Python kind becomes a C argument (`kind_opt`
for the params fields that may stay unset: -1).
"""
import ctypes
import ctypes.util
import os

from ctypes import (POINTER, Structure, c_char, c_char_p, c_double, c_float, c_int, c_int32, c_int64,
                    c_size_t, c_uint, c_uint8, c_uint64, c_void_p, CFUNCTYPE)

LIB_NAME = "libattnviz.so.0"
HEADS_MEAN, HEADS_MAX = -1, -2
DTYPES = ("F32", "F16", "BF16", "Q8_0", "I32", "I64", "U8")  # av_dtype order (new types are added at the end)


class AttnvizError(RuntimeError):
    """A failure reported by libattnviz, carrying its one-line message (file, position, problem)."""


def _candidates():
    env = os.environ.get("ATTNVIZ_LIB")
    if env:
        yield os.path.join(env, LIB_NAME) if os.path.isdir(env) else env
        return
    here = os.path.dirname(os.path.abspath(__file__))
    yield os.path.join(here, LIB_NAME)
    yield os.path.join(os.path.dirname(os.path.dirname(here)), "build", LIB_NAME)
    yield ctypes.util.find_library("attnviz") or LIB_NAME


def _load():
    tried = []
    for path in _candidates():
        if os.sep in path and not os.path.exists(path):
            tried.append(path + " (absent)")
            continue
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            tried.append("%s (%s)" % (path, e))
    raise ImportError("attnviz: cannot load libattnviz: run `make` in the attnviz repository, or set "
                      "ATTNVIZ_LIB to the library (tried: %s)" % "; ".join(tried))


lib, lib_path = _load()

# ---- attention kinds: av_attn_kind values, named by the library (the enum ends where its name is "?") ----
KIND_T = c_int
lib.av_attn_kind_name.restype, lib.av_attn_kind_name.argtypes = c_char_p, [c_int]


def _kind_names():
    names = []
    while lib.av_attn_kind_name(len(names)) != b"?":
        names.append(lib.av_attn_kind_name(len(names)).decode())
    return tuple(names)


KINDS = _kind_names()  # ("self", "enc", "dec", "cross"): index = av_attn_kind value


def kind_arg(kind):
    """A kind name as the C API takes it (the only place kinds cross into C)."""
    if kind not in KINDS:
        raise ValueError("kind must be one of %s, got %r" % (", ".join(KINDS), kind))
    return KINDS.index(kind)


def kind_opt(kind):
    """An optional kind (None: the library's default, -1) for the params fields that may stay unset."""
    return kind_arg(kind) if kind is not None else -1


def cstr(s):
    return None if s is None else os.fsencode(s) if isinstance(s, os.PathLike) else str(s).encode()


def text(p):
    return None if p is None else p.decode("utf-8", "replace")


# ---- structs (include/attnviz.h) ----

class Err(Structure):
    _fields_ = [("msg", c_char * 512)]


class Tensor(Structure):
    _fields_ = [("dtype", c_int), ("ndim", c_int), ("shape", c_int64 * 4), ("data", c_void_p),
                ("nbytes", c_size_t)]


class QkView(Structure):
    _fields_ = [("q", Tensor), ("k", Tensor), ("scale", c_float), ("softcap", c_float), ("causal", c_int),
                ("window", c_int), ("has_rel_bias", c_int), ("has_key_mask", c_int)]


class AttnView(Structure):
    _fields_ = [("n_heads", c_int), ("n_query", c_int), ("n_key", c_int), ("data", c_void_p)]


PROGRESS_FN = CFUNCTYPE(None, c_void_p, c_int, c_int)


class Progress(Structure):
    _fields_ = [("layer", c_int), ("n_layers", c_int), ("tokens", c_int), ("n_tokens", c_int), ("done", c_double),
                ("total", c_double)]


ON_PROGRESS_FN = CFUNCTYPE(None, c_void_p, POINTER(Progress))


class RunParams(Structure):
    _fields_ = [("add_bos", c_int), ("n_threads", c_int), ("dtype", c_int), ("want_logits", c_int),
                ("lazy", c_int), ("progress", PROGRESS_FN), ("progress_ctx", c_void_p),
                ("output_path", c_char_p), ("pool_cells", c_int), ("keep_qk", c_int),
                ("on_progress", ON_PROGRESS_FN), ("on_progress_ctx", c_void_p)]


class ModelParams(Structure):
    _fields_ = [("tokenizer_path", c_char_p), ("n_threads", c_int)]


class ModelInfo(Structure):
    _fields_ = [("name", c_char_p), ("arch", c_char_p), ("format", c_int), ("dim", c_int),
                ("hidden_dim", c_int), ("n_layers", c_int), ("n_heads", c_int), ("n_kv_heads", c_int),
                ("vocab_size", c_int), ("max_seq_len", c_int), ("n_params", c_int64), ("family", c_int),
                ("n_dec_layers", c_int)]


class ClassScore(Structure):
    _fields_ = [("id", c_int), ("prob", c_float), ("label", c_char_p)]


class ImportArray(Structure):
    _fields_ = [("name", c_char_p), ("tensor", Tensor)]


class ImportParams(Structure):
    _fields_ = [("inputs", POINTER(c_char_p)), ("n_inputs", c_int), ("arrays", POINTER(ImportArray)),
                ("n_arrays", c_int), ("tokens_path", c_char_p), ("tokens_json", c_char_p),
                ("kind", KIND_T), ("check_rows", c_int), ("tolerance", c_double),
                ("dtype", c_int), ("model", c_char_p), ("patch_grid", c_char_p), ("prefix_tokens", c_int),
                ("image_path", c_char_p)]


class PlotParams(Structure):
    _fields_ = [("kind", KIND_T), ("layer", c_int), ("head", c_int), ("grid", c_int), ("cmap", c_int),
                ("log_scale", c_int), ("exclude_first", c_int), ("dpi", c_double), ("cell", c_double),
                ("vmin", c_float), ("vmax", c_float), ("title", c_char_p), ("max_label_chars", c_int),
                ("matrix", POINTER(c_float)), ("n_rows", c_int), ("n_cols", c_int),
                ("row_labels", POINTER(c_char_p)), ("col_labels", POINTER(c_char_p))]


class PlotGeom(Structure):
    _fields_ = [("width", c_int), ("height", c_int), ("x0", c_double), ("y0", c_double), ("cell_w", c_double),
                ("cell_h", c_double), ("n_rows", c_int), ("n_cols", c_int), ("pitch_x", c_double),
                ("pitch_y", c_double), ("vmin", c_float), ("vmax", c_float)]


class HtmlParams(Structure):
    _fields_ = [("precision", c_int), ("title", c_char_p), ("view", c_char_p), ("image_path", c_char_p),
                ("analysis", c_int), ("roles_path", c_char_p), ("kind", KIND_T), ("layer", c_int),
                ("head", c_int), ("heads", POINTER(c_int)), ("n_heads", c_int), ("theme", c_char_p),
                ("exclude_first", c_int), ("max_mb", c_double), ("rows_q0", c_int), ("rows_q1", c_int)]


class HeadStats(Structure):
    STATS = ("entropy", "entropy_norm", "distance", "first", "self", "prev", "special", "punct", "uniformity",
             "first_norm")
    _fields_ = [("layer", c_int), ("head", c_int), ("n_rows", c_int)] + [(s, c_double) for s in STATS]


ROLES = ("previous_token", "first_token", "self", "broad", "duplicate_token", "induction")  # av_role order


class HeadRoles(Structure):
    _fields_ = [("layer", c_int), ("head", c_int), ("score", c_double * len(ROLES)), ("best", c_int),
                ("best_score", c_double)]


class RolesParams(Structure):
    _fields_ = [("seq_len", c_int), ("n_samples", c_int), ("seed", c_uint64), ("text", c_char_p)]


class RolesResult(Structure):
    _fields_ = [("n_layers", c_int), ("n_heads", c_int), ("heads", POINTER(HeadRoles)), ("text_tokens", c_int),
                ("text", c_char_p), ("seq_len", c_int), ("n_samples", c_int), ("seed", c_uint64)]


class RolloutParams(Structure):
    _fields_ = [("fusion", c_int), ("residual", c_float), ("normalize", c_int)]


class FlowParams(Structure):
    _fields_ = [("fusion", c_int), ("residual", c_float), ("normalize", c_int), ("max_work", c_double),
                ("n_threads", c_int), ("progress", PROGRESS_FN), ("progress_ctx", c_void_p)]


ATTR_METHODS = ["occlusion", "shapley", "saliency", "ixg", "ig", "attn-grad"]  # av_attr_method order
ATTR_BASELINES = ["token", "zero", "remove"]
ATTR_GROUPS = ["token", "word", "span"]
IG_RULES = ["gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid"]
ATTR_PROGRESS_FN = CFUNCTYPE(None, c_void_p, c_char_p, c_int, c_int)


class AttrParams(Structure):
    _fields_ = [("methods", c_uint), ("baseline", c_int), ("baseline_id", c_int), ("group", c_int),
                ("group_span", c_int), ("samples", c_int), ("seed", c_uint64), ("steps", c_int), ("ig_rule", c_int),
                ("target_rows", POINTER(c_int32)), ("max_batch", c_int), ("with_attention", c_int),
                ("run", RunParams), ("progress", ATTR_PROGRESS_FN), ("progress_ctx", c_void_p)]


class LensParams(Structure):
    _fields_ = [("k", c_int), ("run", RunParams)]


class AttrView(Structure):
    _fields_ = [("n_target", c_int), ("source_len", c_int), ("scores", c_void_p), ("target_ids", c_void_p),
                ("target_rows", c_void_p), ("target_logprobs", c_void_p)]


class LensView(Structure):
    _fields_ = [("n_entries", c_int), ("n_tokens", c_int), ("k", c_int), ("topk_ids", c_void_p),
                ("topk_logprobs", c_void_p), ("target_ids", c_void_p), ("target_logprobs", c_void_p),
                ("target_ranks", c_void_p)]


class DaamRange(Structure):
    _fields_ = [("step0", c_int), ("step1", c_int), ("layer0", c_int), ("layer1", c_int), ("head0", c_int),
                ("head1", c_int)]


ROLES_RUN_FN = CFUNCTYPE(c_int, c_void_p, POINTER(c_int32), c_size_t, POINTER(c_void_p), POINTER(Err))

# ---- functions: name -> (restype, argtypes) ----
H, E, S = c_void_p, POINTER(Err), c_char_p
_SIGS = {
    "av_version": (c_char_p, []),
    "av_free": (None, [c_void_p]),
    "av_dtype_name": (c_char_p, [c_int]),
    "av_model_default_params": (ModelParams, []),
    "av_model_load": (c_int, [S, POINTER(ModelParams), POINTER(c_void_p), E]),
    "av_model_free": (None, [H]),
    "av_model_get_info": (ModelInfo, [H]),
    "av_model_tokenizer": (c_void_p, [H]),
    "av_tokenizer_encode": (c_int, [H, c_char_p, c_size_t, c_int, POINTER(POINTER(c_int32)), POINTER(c_size_t),
                                    E]),
    "av_run_default_params": (RunParams, []),
    "av_trace_from_text": (c_int, [H, S, POINTER(RunParams), POINTER(c_void_p), E]),
    "av_trace_from_text_pair": (c_int, [H, S, S, POINTER(RunParams), POINTER(c_void_p), E]),
    "av_trace_from_ids": (c_int, [H, POINTER(c_int32), c_size_t, POINTER(RunParams), POINTER(c_void_p), E]),
    "av_trace_from_image": (c_int, [H, S, POINTER(RunParams), POINTER(c_void_p), POINTER(ClassScore), c_int, E]),
    "av_trace_from_pixels": (c_int, [H, POINTER(c_float), c_int, c_int, POINTER(RunParams), POINTER(c_void_p),
                                     POINTER(ClassScore), c_int, E]),
    "av_trace_from_pair": (c_int, [H, S, S, c_int, POINTER(RunParams), POINTER(c_void_p), E]),
    "av_trace_from_pair_ids": (c_int, [H, POINTER(c_int32), c_size_t, POINTER(c_int32), c_size_t, c_int,
                                       POINTER(RunParams), POINTER(c_void_p), E]),
    "av_trace_save": (c_int, [H, S, E]),
    "av_trace_load": (c_int, [S, POINTER(c_void_p), E]),
    "av_trace_free": (None, [H]),
    "av_trace_meta": (c_char_p, [H, S]),
    "av_trace_n_tokens": (c_int, [H]),
    "av_trace_token": (c_char_p, [H, c_int]),
    "av_trace_token_id": (c_int, [H, c_int]),
    "av_trace_n_layers": (c_int, [H, KIND_T]),
    "av_trace_attn": (c_int, [H, KIND_T, c_int, POINTER(AttnView), E]),
    "av_trace_vnorm": (c_int, [H, c_int, POINTER(Tensor), E]),
    "av_trace_qk": (c_int, [H, c_int, c_int, POINTER(QkView), E]),
    "av_trace_logits": (c_int, [H, POINTER(Tensor)]),
    "av_trace_is_lazy": (c_int, [H]),
    "av_trace_n_heads": (c_int, [H, KIND_T]),
    "av_trace_n_query": (c_int, [H, KIND_T]),
    "av_trace_n_key": (c_int, [H, KIND_T]),
    "av_trace_attn_row": (c_int, [H, KIND_T, c_int, c_int, c_int, POINTER(c_float), E]),
    "av_trace_attn_tile": (c_int, [H, KIND_T, c_int, c_int, c_int, c_int, c_int, c_int, c_int, c_int, c_int,
                                   POINTER(c_float), E]),
    "av_trace_meta_json": (c_void_p, [H]),
    "av_trace_n_file_tensors": (c_int, [H]),
    "av_trace_file_tensor": (c_int, [H, c_int, POINTER(c_char_p), POINTER(Tensor), E]),
    "av_import_default_params": (ImportParams, []),
    "av_trace_import": (c_int, [POINTER(ImportParams), POINTER(c_void_p), E]),
    "av_cmap_parse": (c_int, [S, POINTER(c_int), E]),
    "av_plot_default_params": (PlotParams, []),
    "av_plot_build": (c_int, [H, POINTER(PlotParams), c_int, POINTER(POINTER(c_uint8)), POINTER(c_size_t),
                              POINTER(PlotGeom), E]),
    "av_plot_render": (c_int, [H, POINTER(PlotParams), S, POINTER(PlotGeom), E]),
    "av_html_default_params": (HtmlParams, []),
    "av_html_view_valid": (c_int, [S]),
    "av_html_build": (c_int, [H, POINTER(HtmlParams), POINTER(c_void_p), POINTER(c_size_t), E]),
    "av_html_write": (c_int, [H, POINTER(HtmlParams), S, POINTER(c_size_t), E]),
    "av_reduce_parse": (c_int, [S, POINTER(c_int), E]),
    "av_trace_head_stats": (c_int, [H, KIND_T, c_int, POINTER(POINTER(HeadStats)), POINTER(c_int), E]),
    "av_roles_from_stats": (None, [POINTER(HeadStats), POINTER(HeadRoles)]),
    "av_role_name": (c_char_p, [c_int]),
    "av_roles_default_params": (RolesParams, []),
    "av_roles_result_free": (None, [POINTER(RolesResult)]),
    "av_rollout_default_params": (RolloutParams, []),
    "av_rollout_trace": (c_int, [H, KIND_T, POINTER(RolloutParams), POINTER(c_float), E]),
    "av_rollout_cross_trace": (c_int, [H, POINTER(RolloutParams), POINTER(c_float), POINTER(c_int),
                                       POINTER(c_int), E]),
    "av_flow_default_params": (FlowParams, []),
    "av_flow_trace": (c_int, [H, KIND_T, POINTER(FlowParams), POINTER(c_float), E]),
    "av_norm_attn_trace": (c_int, [H, c_int, S, c_int, POINTER(c_float), E]),
    "av_model_roles": (c_int, [H, ROLES_RUN_FN, c_void_p, POINTER(RolesParams), POINTER(RolesResult), E]),
    "av_family_name": (c_char_p, [c_int]),
    "av_attr_default_params": (AttrParams, []),
    "av_attribute_ids": (c_int, [H, POINTER(c_int32), c_size_t, POINTER(c_int32), c_size_t, POINTER(AttrParams),
                                 POINTER(c_void_p), E]),
    "av_attribute_text": (c_int, [H, S, S, c_int, POINTER(AttrParams), POINTER(c_void_p), E]),
    "av_lens_default_params": (LensParams, []),
    "av_lens_ids": (c_int, [H, POINTER(c_int32), c_size_t, POINTER(LensParams), POINTER(c_void_p), E]),
    "av_lens_text": (c_int, [H, S, POINTER(LensParams), POINTER(c_void_p), E]),
    "av_trace_attribution": (c_int, [H, c_int, POINTER(AttrView), E]),
    "av_trace_lens": (c_int, [H, POINTER(LensView), E]),
    "av_trace_tensor": (c_int, [H, S, POINTER(Tensor)]),
    "av_trace_daam": (c_int, [H, POINTER(DaamRange), POINTER(c_float), E]),
    "av_model_format_name": (c_char_p, [c_int]),
}

for _name, (_res, _args) in _SIGS.items():
    _f = getattr(lib, _name)
    _f.restype = _res
    _f.argtypes = _args


class Handle:
    """Owns one library object (self._h) and frees it once with the subclass's _free, a class attribute so
    that it is still there when module globals are cleared at interpreter exit."""
    _free = None

    def __del__(self):
        h = getattr(self, "_h", None)
        if h and h.value:
            type(self)._free(h)
            h.value = None


def call(fn, *args):
    """Calls a C function whose last argument is an av_err and which returns 0 or -1; raises AttnvizError."""
    err = Err()
    if getattr(lib, fn)(*args, ctypes.byref(err)) != 0:
        raise AttnvizError(err.msg.decode("utf-8", "replace") or fn + " failed")


def dtype_name(code):
    return DTYPES[code] if 0 <= code < len(DTYPES) else text(lib.av_dtype_name(code))


def take_bytes(ptr, n=-1):
    """Copies n bytes (n = -1: a NUL-terminated string) the library malloc'd into Python bytes, frees them."""
    try:
        return ctypes.string_at(ptr, n)
    finally:
        lib.av_free(ptr)


VERSION = "0.1.0"  # the package's version; the library must have the same major.minor (its soname and ABI)
if text(lib.av_version()).split(".")[:2] != VERSION.split(".")[:2]:
    raise ImportError("attnviz: %s is version %s, this package needs %s.x (rebuild with `make` or set "
                      "ATTNVIZ_LIB)" % (lib_path, text(lib.av_version()), VERSION.rsplit(".", 1)[0]))
