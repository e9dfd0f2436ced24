"""torch.save files read without unpickling torch code: legacy streams, zip archives, and module state walks."""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .unpickler import (
    LEGACY_MAGIC,
    LEGACY_PROTOCOL,
    CorruptPickle,
    ObjectStub,
    PersistentRecord,
    RefusedPickle,
    SafeUnpickler,
)


def _flat(data: bytes, dtype: torch.dtype, numel: int, what: str) -> torch.Tensor:
    itemsize = torch.empty((), dtype=dtype).element_size()
    if len(data) < numel * itemsize:
        raise CorruptPickle(f"{what}: {len(data)} bytes, expected {numel * itemsize} (file truncated?)")
    if numel == 0:
        return torch.empty(0, dtype=dtype)
    return torch.frombuffer(bytearray(data[: numel * itemsize]), dtype=dtype)


def read_legacy_torch(f: io.BufferedIOBase) -> Any:
    """Read a legacy (non-zip) ``torch.save`` stream with the refusing unpickler."""

    def plain(stream: Any) -> Any:
        return SafeUnpickler(stream).load()

    start = f.tell()
    size = f.seek(0, io.SEEK_END) - start
    f.seek(start)
    try:
        magic, proto, _sys_info = plain(f), plain(f), plain(f)
    except (EOFError, pickle.UnpicklingError, struct.error) as exc:
        raise CorruptPickle(f"not a torch file or truncated ({exc})") from None
    if magic != LEGACY_MAGIC or proto != LEGACY_PROTOCOL:
        raise CorruptPickle(f"not a legacy torch file (magic {magic!r}, protocol {proto!r})")
    wanted: dict[str, tuple[torch.dtype, int]] = {}
    holders: dict[str, torch.Tensor] = {}

    def lazy(key: str, dtype: torch.dtype, numel: int) -> torch.Tensor:
        if numel * torch.empty((), dtype=dtype).element_size() > size:
            raise CorruptPickle(f"storage {key} declares {numel} elements, more than the file holds (truncated?)")
        wanted[key] = (dtype, numel)
        holders[key] = torch.empty(numel, dtype=dtype)  # filled below, after the key list
        return holders[key]

    unp = SafeUnpickler(f, lazy)
    try:
        obj = unp.load()
        keys = plain(f)
        for key in keys:
            (count,) = struct.unpack("<q", _read_exact(f, 8, "storage size"))
            dtype, numel = wanted[str(key)]
            if count != numel:
                raise CorruptPickle(f"storage {key}: {count} elements on disk, {numel} declared")
            itemsize = holders[str(key)].element_size()
            holders[str(key)].copy_(_flat(_read_exact(f, count * itemsize, f"storage {key}"), dtype, count, "storage"))
    except (EOFError, pickle.UnpicklingError, struct.error) as exc:
        raise CorruptPickle(f"truncated or corrupt torch stream ({exc})") from None
    except KeyError as exc:
        raise CorruptPickle(f"storage {exc} listed but never referenced") from None
    return obj


def _read_exact(f: Any, n: int, what: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise CorruptPickle(f"{what}: file ends after {len(data)} of {n} bytes (truncated)")
    return data


def read_torch_file(path: str | Path) -> Any:
    """Read a ``torch.save`` file (zip with ``<root>/data.pkl`` + ``<root>/data/<key>``, or legacy) safely."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            if f.read(4) == b"PK\x03\x04":  # a zip whose end (the central directory) is missing
                raise CorruptPickle(f"{path}: a torch.save zip without its end: the file is truncated or damaged")
            f.seek(0)
            try:
                return read_legacy_torch(f)
            except (RefusedPickle, CorruptPickle) as exc:
                if str(path) in str(exc):
                    raise
                raise type(exc)(f"{path}: {exc}") from None
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise CorruptPickle(f"{path}: broken zip ({exc})") from None
    with zf:
        names = zf.namelist()
        pkl = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
        if not pkl:
            raise CorruptPickle(f"{path}: a zip without <root>/data.pkl is not a torch file")
        root = pkl[0].split("/")[0]
        if f"{root}/byteorder" in names and zf.read(f"{root}/byteorder").strip() == b"big":
            raise CorruptPickle(f"{path}: big-endian torch files are not supported")

        def load(key: str, dtype: torch.dtype, numel: int) -> torch.Tensor:
            name = f"{root}/data/{key}"
            if name not in names:
                raise CorruptPickle(f"{path}: storage {name} missing from the zip")
            return _flat(zf.read(name), dtype, numel, name)

        try:
            return SafeUnpickler(io.BytesIO(zf.read(pkl[0])), load).load()
        except (RefusedPickle, CorruptPickle):
            raise
        except Exception as exc:  # noqa: BLE001 - anything else from untrusted data is a corrupt file
            raise CorruptPickle(f"{path}: corrupt data.pkl ({type(exc).__name__}: {exc})") from None


@dataclass
class ModuleTree:
    """A module-like node (record or stub) flattened: class names by path, tensors by state-dict key."""

    classes: dict[str, str] = field(default_factory=dict)
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)


def module_state(node: Any, prefix: str = "", tree: ModuleTree | None = None) -> ModuleTree:
    """Walk ``_parameters`` / ``_buffers`` (minus non-persistent ones) / ``_modules`` like ``state_dict()``."""
    tree = tree or ModuleTree()
    if isinstance(node, PersistentRecord):
        state, cls = node.state, node.class_name
    elif isinstance(node, ObjectStub):
        state, cls = node.state, node.qualname
    else:
        raise RefusedPickle(f"{prefix or 'root'} is {type(node).__name__}, not a network module")
    tree.classes[prefix.rstrip(".") or "."] = cls
    skip = set(state.get("_non_persistent_buffers_set", ()) or ())
    for group in ("_parameters", "_buffers"):
        for name, value in (state.get(group) or {}).items():
            if value is None or (group == "_buffers" and name in skip):
                continue
            if not torch.is_tensor(value):
                raise CorruptPickle(f"{prefix}{name} is {type(value).__name__}, expected a tensor")
            tree.tensors[prefix + name] = value.clone()  # own memory (views may share a storage)
    for name, child in (state.get("_modules") or {}).items():
        if child is not None:
            module_state(child, f"{prefix}{name}.", tree)
    return tree
