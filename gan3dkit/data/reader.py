"""Read-only access to gan3dkit LMDB datasets: meta, raw samples, and a worker-safe torch Dataset with x-flip."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import lmdb
import numpy as np
import torch

from ..cameras.camera import Cameras
from ..utils.errors import DataError
from .format import META_KEY, PROGRESS_KEY, DatasetFormatError, decode_field, validate_meta
from .lmdb_check import check_lmdb_file
from .writer import partial_path

# py-lmdb allows one open Environment per path per process, so readers of the same dataset share one (ref-counted).
# LMDB handles must not cross fork(): every cached environment is closed just before a fork (DataLoader workers,
# process pools) and readers reopen lazily; `_GENERATION` tells a reader that its handle went stale.
_ENVS: dict[str, list] = {}
_GENERATION = [0]


def _close_all_envs() -> None:
    for env, _ in _ENVS.values():
        env.close()
    _ENVS.clear()
    _GENERATION[0] += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_close_all_envs)


def _acquire_env(path: Path) -> lmdb.Environment:
    key = str(path.resolve())
    entry = _ENVS.get(key)
    if entry is None:
        check_lmdb_file(path)  # a truncated file would SIGBUS once a page past its end is touched
        try:
            env = lmdb.open(str(path), readonly=True, lock=False, readahead=False, subdir=True, max_readers=512)
        except lmdb.Error as exc:
            raise DataError(
                f"dataset {path}: cannot open the LMDB store ({exc}); it is corrupt: re-create it"
            ) from None
        entry = _ENVS[key] = [env, 0]
    entry[1] += 1
    return entry[0]


def _release_env(path: Path) -> None:
    key = str(path.resolve())
    entry = _ENVS.get(key)
    if entry is not None:
        entry[1] -= 1
        if entry[1] <= 0:
            entry[0].close()
            del _ENVS[key]


def read_meta(path: str | Path) -> dict[str, Any]:
    """Read and validate a dataset's meta record; errors say what is wrong and what to do."""
    path = Path(path)
    if not path.exists():
        if partial_path(path).exists():
            raise DatasetFormatError(
                f"{path} does not exist, but {partial_path(path)} does: an interrupted write. "
                "Rerun the same command to resume it."
            )
        raise FileNotFoundError(f"dataset {path} not found")
    if not (path / "data.mdb").exists():
        raise DatasetFormatError(f"{path} is not an LMDB dataset directory (no data.mdb)")
    env = _acquire_env(path)
    try:
        with env.begin() as txn:
            raw = txn.get(META_KEY)
            interrupted = txn.get(PROGRESS_KEY) is not None
    except lmdb.Error as exc:
        raise DataError(f"dataset {path}: cannot read its meta record ({exc}); the store is corrupt") from None
    finally:
        _release_env(path)
    if raw is None:
        hint = " It holds an unfinished write (interrupted job); rerun the command to resume." if interrupted else ""
        raise DatasetFormatError(f"{path} has no meta record, so it is not a complete gan3dkit dataset.{hint}")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise DatasetFormatError(f"{path}: meta record is not valid JSON ({exc})") from exc
    validate_meta(meta, str(path))
    return meta


class DatasetReader:
    """Raw random access to samples as numpy arrays. Opens LMDB lazily, once per process (safe after fork)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.meta = read_meta(self.path)
        self._env: lmdb.Environment | None = None
        self._gen = -1

    def __len__(self) -> int:
        return int(self.meta["count"])

    def _txn(self) -> lmdb.Transaction:
        if self._env is None or self._gen != _GENERATION[0]:  # first use, or the handle was closed for a fork
            self._env = _acquire_env(self.path)
            self._gen = _GENERATION[0]
        return self._env.begin(buffers=False)

    def read(self, index: int, fields: Sequence[str] | None = None) -> dict[str, Any]:
        """Decode the given fields (default: all) of sample `index` into numpy arrays / str."""
        if not 0 <= index < len(self):
            raise IndexError(f"sample {index} out of range [0, {len(self)})")
        fields = self.meta["fields"] if fields is None else fields
        missing = set(fields) - set(self.meta["fields"])
        if missing:
            raise KeyError(f"{self.path} has no fields {sorted(missing)} (it has {self.meta['fields']})")
        out: dict[str, Any] = {}
        hint = f"`gan3dkit data validate {self.path}` lists every bad sample"
        try:
            with self._txn() as txn:
                raws = {name: txn.get(f"{index:08d}/{name}".encode()) for name in fields}
        except lmdb.Error as exc:
            raise DatasetFormatError(f"{self.path}: sample {index}: LMDB read failed ({exc}); {hint}") from None
        for name, raw in raws.items():
            if raw is None:
                raise DatasetFormatError(f"{self.path}: sample {index} lacks field {name!r}; {hint}")
            try:
                out[name] = decode_field(name, cast(bytes, raw), self.meta)
            except (DataError, UnicodeError) as exc:
                why = str(exc).removeprefix(f"{name}: ")
                raise DatasetFormatError(f"{self.path}: sample {index}, field {name}: {why}; {hint}") from None
        return out

    def read_raw(self, index: int, field: str) -> bytes | None:
        """The stored bytes of one field (None when absent)."""
        with self._txn() as txn:
            return cast("bytes | None", txn.get(f"{index:08d}/{field}".encode()))

    def close(self) -> None:
        if self._env is not None and self._gen == _GENERATION[0]:
            _release_env(self.path)
        self._env = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown
            self.close()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_env"], state["_gen"] = None, -1
        return state


def flip_sample(sample: dict[str, Any]) -> dict[str, Any]:
    """Mirror a tensor sample horizontally: image/mask/depth flipped, camera mirrored, yaw and roll negated."""
    out = dict(sample)
    for name in ("image", "mask", "depth"):
        if name in out:
            out[name] = out[name].flip(-1)
    if "camera" in out:
        out["camera"] = Cameras.from_label(out["camera"]).mirror().to_label()[0]
    if "ypr" in out:
        out["ypr"] = out["ypr"] * torch.tensor([-1.0, 1.0, -1.0])
    out["flipped"] = not out.get("flipped", False)
    return out


class LMDBDataset(torch.utils.data.Dataset):
    """torch Dataset over a gan3dkit LMDB (read-only, opened lazily in each worker).

    Items are dicts: image uint8 [C, H, W]; camera float32 [25]; optional ypr float32 [3], mask uint8 [1, H, W],
    depth float32 [1, H, W], latent float32 [D], name str; plus index (int) and flipped (bool).

    Args:
        path: dataset directory.
        fields: fields to load (default: every field in the dataset).
        xflip: double the dataset with mirrored copies (indices >= count). Unlike EG3D's `--mirror`, the camera is
            mirrored too (see `Cameras.mirror`), so image and pose stay consistent.
    """

    def __init__(self, path: str | Path, fields: Sequence[str] | None = None, xflip: bool = False) -> None:
        self.reader = DatasetReader(path)
        self.meta = self.reader.meta
        self.fields = list(self.meta["fields"] if fields is None else fields)
        self.xflip = xflip

    def __len__(self) -> int:
        return len(self.reader) * (2 if self.xflip else 1)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        base = index % len(self.reader)
        raw = self.reader.read(base, self.fields)
        item: dict[str, Any] = {"index": base, "flipped": False}
        for name, value in raw.items():
            if name == "image":
                arr = value if value.ndim == 3 else value[:, :, None]
                item[name] = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))
            elif name == "mask":
                item[name] = torch.from_numpy(value.copy())[None]
            elif name == "depth":
                item[name] = torch.from_numpy(value.astype(np.float32))[None]
            elif name == "name":
                item[name] = value
            else:
                item[name] = torch.from_numpy(value.astype(np.float32))
        return flip_sample(item) if index >= len(self.reader) else item

    @property
    def resolution(self) -> int:
        return int(self.meta["resolution"])

    @property
    def camera_source(self) -> str:
        """measured | estimated | prior | mixed, or 'unknown' for format 1.0 datasets (see data_specs)."""
        return str(self.meta.get("camera_source", "unknown"))

    def cameras(self) -> torch.Tensor:
        """All camera labels [count, 25] (no flips), e.g. to draw fake-image poses from the dataset like EG3D."""
        if len(self.reader) == 0:
            raise DatasetFormatError(f"{self.reader.path} holds 0 samples; prepare it again with usable inputs")
        return torch.from_numpy(np.stack([self.reader.read(i, ["camera"])["camera"] for i in range(len(self.reader))]))
