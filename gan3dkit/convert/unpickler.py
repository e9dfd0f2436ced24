"""A pickle reader that runs nothing: known globals are replaced by inert stand-ins, everything else is refused by name.

What it understands (facts from NVlabs/eg3d ``torch_utils/persistence.py`` and PyTorch's serialisation):

- NVIDIA's persistent classes pickle as ``torch_utils.persistence._reconstruct_persistent_obj(meta)`` with
  ``meta = {type: 'class', version: 6, module_src: <module source text>, class_name: str, state: obj.__dict__}``.
  Here that call builds a :class:`PersistentRecord`; the source text is kept as a string and never executed.
- Plain (non-persistent) classes such as ``torch.nn.Sequential`` or EG3D's ``ImportanceRenderer`` pickle as
  ``NEWOBJ`` + ``BUILD``; a short allow-list of such names becomes :class:`ObjectStub` (name + state, nothing
  imported).
- Tensors pickle as ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, meta])``
  and parameters as ``_rebuild_parameter(tensor, requires_grad, hooks)``. With plain ``pickle.dump`` each storage is
  ``torch.storage._load_from_bytes(blob)`` where ``blob`` is a legacy ``torch.save`` stream (magic number, protocol
  1001, sys info, a pickle whose persistent ids are ``('storage', StorageType, key, location, numel, view)``, the key
  list, then per key an int64 element count and the raw little-endian bytes). Inside ``torch.save`` zip files the
  same persistent ids point at ``<root>/data/<key>``. Both are parsed (``torchfile.py``); no torch code is unpickled.
"""

from __future__ import annotations

import _compat_pickle
import io
import pickle
import struct
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch

from ..utils.errors import DataError


class RefusedPickle(DataError):
    """The file asks for something this reader will not provide (named in the message); nothing was run."""


class CorruptPickle(DataError):
    """The file is truncated or not a pickle / torch file."""


@dataclass
class PersistentRecord:
    """One ``torch_utils.persistence`` object: its class name, module source (text only) and state."""

    class_name: str
    module_src: str
    version: int
    state: dict[str, Any]

    @property
    def init_args(self) -> tuple:
        return tuple(self.state.get("_init_args", ()) or ())

    @property
    def init_kwargs(self) -> dict[str, Any]:
        return dict(self.state.get("_init_kwargs", {}) or {})


class ObjectStub:
    """An instance of an allow-listed plain class: ``qualname``, constructor args and ``BUILD`` state only."""

    qualname = "?"
    args: tuple[Any, ...]
    state: dict[str, Any]

    def __new__(cls, *args: Any) -> ObjectStub:  # NEWOBJ calls cls.__new__(cls, *args)
        obj = object.__new__(cls)
        obj.args, obj.state = args, {}
        return obj

    def __setstate__(self, state: Any) -> None:
        self.state = state if isinstance(state, dict) else {"_state": state}

    def __repr__(self) -> str:
        return f"<{self.qualname} stub>"


class EasyDictStub(dict):
    """``dnnlib.util.EasyDict`` (a dict subclass) as a plain dict."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):
            self.update(state)


@dataclass
class _StorageType:
    name: str
    dtype: torch.dtype


@dataclass
class _Storage:
    data: torch.Tensor  # flat [numel] of the storage dtype


#: PyTorch storage class names (``torch.FloatStorage`` ...) and their dtypes.
STORAGE_DTYPES: dict[str, torch.dtype] = {
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
    "UntypedStorage": torch.uint8,
}
_DTYPE_NAMES = {"float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool"}

#: Plain classes of EG3D networks that become ObjectStub (never imported).
STUB_CLASSES: frozenset[str] = frozenset(
    {
        "torch.nn.modules.container.Sequential",
        "torch.nn.modules.container.ModuleList",
        "torch.nn.modules.container.ModuleDict",
        "torch.nn.modules.activation.Softplus",
        "torch.nn.modules.activation.LeakyReLU",
        "torch.nn.modules.activation.ReLU",
        "training.triplane.OSGDecoder",
        "training.triplane_autopose.OSGDecoder",  # VivianSZF/pof3d
        "training.volumetric_rendering.renderer.ImportanceRenderer",
        "training.volumetric_rendering.ray_sampler.RaySampler",
        "training.volumetric_rendering.ray_marcher.MipRayMarcher2",
    }
)
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001


def _tensor_from(storage: Any, offset: int, size: Any, stride: Any) -> torch.Tensor:
    if not isinstance(storage, _Storage):
        raise CorruptPickle(f"tensor rebuild got {type(storage).__name__} instead of a storage")
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if len(size) != len(stride) or any(s < 0 for s in size) or any(s < 0 for s in stride) or offset < 0:
        raise CorruptPickle(f"bad tensor geometry size={size} stride={stride} offset={offset}")
    extent = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=False)) + 1 if all(size) else 0
    if extent > storage.data.numel():
        raise CorruptPickle(f"tensor of size {size} runs past its storage ({storage.data.numel()} elements)")
    return torch.as_strided(storage.data, size, stride, offset)  # a view: legacy storages are filled after parsing


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    return _tensor_from(storage, int(offset), size, stride)


def _rebuild_parameter(data, requires_grad=False, hooks=None, state=None):
    if not torch.is_tensor(data):
        raise CorruptPickle(f"parameter rebuild got {type(data).__name__} instead of a tensor")
    return data


def _rebuild_from_type_v2(func, new_type, args, state):
    if func not in (_rebuild_tensor_v2, _rebuild_parameter):
        raise RefusedPickle(f"_rebuild_from_type_v2 with {func!r} is not a tensor rebuild")
    return func(*args)


def _reconstruct_persistent_obj(meta: Any) -> PersistentRecord:
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise RefusedPickle(f"persistence record of unknown type {getattr(meta, 'get', lambda k: None)('type')!r}")
    name, src, state = meta.get("class_name"), meta.get("module_src"), meta.get("state")
    if not isinstance(name, str) or not isinstance(src, str) or not isinstance(state, dict):
        raise CorruptPickle("persistence record without class_name/module_src/state")
    return PersistentRecord(name, src, int(meta.get("version", -1)), dict(state))


def _numpy_scalar(dtype: Any, data: bytes = b"") -> Any:
    import numpy as np

    return np.frombuffer(data, dtype=dtype)[0].item()


def _numpy_dtype(name: Any, align: bool = False, copy: bool = False) -> Any:
    import numpy as np

    return np.dtype(str(name))


def _codecs_encode(text: Any, encoding: str = "latin1") -> bytes:
    """Protocol-2 pickles store bytes as ``_codecs.encode(str, 'latin1')``; only that form is allowed."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise RefusedPickle(f"refused: _codecs.encode with {type(text).__name__}/{encoding!r}")
    return text.encode("latin1")


def _reduce_set(items: Any = ()) -> set:
    return set(items)


class _TensorType:
    """Stands for ``torch.Tensor`` / ``Parameter`` as the type argument of ``_rebuild_from_type_v2``."""


def _reconstructor(cls: Any, base: Any, state: Any = None) -> Any:
    """``copyreg._reconstructor`` (pickle protocols 0/1), only for the stand-in classes."""
    if not (isinstance(cls, type) and issubclass(cls, (ObjectStub, EasyDictStub, OrderedDict)) and base is object):
        raise RefusedPickle(f"refused: copyreg._reconstructor of {cls!r}")
    return cast(Any, cls).__new__(cls)


class SafeUnpickler(pickle.Unpickler):
    """``find_class`` maps a fixed set of names to inert functions; ``persistent_load`` reads storages via ``loader``.

    Args:
        file: The pickle stream.
        storage_loader: ``(key, dtype, numel) -> flat tensor`` for storage persistent ids (zip / legacy files).
    """

    def __init__(self, file: Any, storage_loader: Callable[[str, torch.dtype, int], torch.Tensor] | None = None):
        super().__init__(file)
        self._storage_loader = storage_loader
        self._stub_types: dict[str, type] = {}
        self._storage_cache: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _compat_pickle.NAME_MAPPING:  # Python-2 names in protocol <= 2 pickles
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        full = f"{module}.{name}"
        table: dict[str, Any] = {
            "torch_utils.persistence._reconstruct_persistent_obj": _reconstruct_persistent_obj,
            "torch._utils._rebuild_tensor_v2": _rebuild_tensor_v2,
            "torch._utils._rebuild_parameter": _rebuild_parameter,
            "torch._utils._rebuild_parameter_with_state": _rebuild_parameter,
            "torch._tensor._rebuild_from_type_v2": _rebuild_from_type_v2,
            "torch.storage._load_from_bytes": _load_legacy_storage_bytes,
            "collections.OrderedDict": OrderedDict,
            "builtins.set": _reduce_set,
            "_codecs.encode": _codecs_encode,
            "dnnlib.util.EasyDict": EasyDictStub,
            "numpy.core.multiarray.scalar": _numpy_scalar,
            "numpy._core.multiarray.scalar": _numpy_scalar,
            "numpy.dtype": _numpy_dtype,
            "torch.Tensor": _TensorType,
            "torch.nn.parameter.Parameter": _TensorType,
            "copyreg._reconstructor": _reconstructor,
            "builtins.object": object,
        }
        if full in table:
            return table[full]
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name, STORAGE_DTYPES[name])
        if module == "torch" and name in _DTYPE_NAMES:
            return getattr(torch, name)
        if full in STUB_CLASSES:
            if full not in self._stub_types:
                self._stub_types[full] = type(name, (ObjectStub,), {"qualname": full})
            return self._stub_types[full]
        raise RefusedPickle(
            f"refused: the file asks for the global {full!r}, which is not a tensor, a container or an EG3D network "
            "record; nothing from the file was run"
        )

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise RefusedPickle(f"refused: unknown persistent id {str(pid)[:80]!r} (only tensor storages are read)")
        stype, key, _location, numel = pid[1], str(pid[2]), pid[3], int(pid[4])
        if not isinstance(stype, _StorageType):
            raise RefusedPickle(f"refused: storage of type {stype!r}")
        if self._storage_loader is None:
            raise CorruptPickle("a storage reference outside a torch file")
        if key not in self._storage_cache:
            self._storage_cache[key] = _Storage(self._storage_loader(key, stype.dtype, numel))
        st = self._storage_cache[key]
        view = pid[5] if len(pid) > 5 else None
        if view is not None:  # old torch: (view_key, offset, view_size)
            _vk, off, vsize = view
            return _Storage(st.data[int(off) : int(off) + int(vsize)])
        return st


def _load_legacy_storage_bytes(blob: bytes) -> _Storage:
    """Parse a legacy ``torch.save`` stream holding one storage (what ``_load_from_bytes`` would unpickle)."""
    if not isinstance(blob, (bytes, bytearray)):
        raise CorruptPickle("storage blob is not bytes")
    from .torchfile import read_legacy_torch  # the stream format needs this unpickler too

    obj = read_legacy_torch(io.BytesIO(bytes(blob)))
    if not isinstance(obj, _Storage):
        raise RefusedPickle(f"refused: an embedded torch blob holds {type(obj).__name__}, not a storage")
    return obj


def read_pickle(path: str | Path) -> Any:
    """Unpickle a network pickle (``pickle.dump`` of NVIDIA snapshots) with :class:`SafeUnpickler`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    with open(path, "rb") as f:
        try:
            return SafeUnpickler(f).load()
        except (EOFError, pickle.UnpicklingError, struct.error, IndexError, MemoryError, OverflowError) as exc:
            raise CorruptPickle(f"{path}: truncated or not a pickle ({type(exc).__name__}: {exc})") from None
        except (RefusedPickle, CorruptPickle):
            raise
        except Exception as exc:  # noqa: BLE001 - e.g. a REDUCE of a stand-in with wrong arguments
            raise CorruptPickle(f"{path}: malformed pickle ({type(exc).__name__}: {exc})") from None
