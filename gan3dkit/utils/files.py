"""Atomic file writes (temp file in the same folder + os.replace) and the removal of temps left by killed writes.

Every temp the project writes is named `.<name>.<pid>.<random>.tmp[.<ext>]` beside its target (the legacy
checkpoint temp `.<name>.tmp<pid>` is still recognised), so a later run can tell a dead writer's litter from a
live writer's file and remove it.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import re
import secrets
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: A temp file without a process id in its name counts as stale once it is this old (seconds).
STALE_TEMP_AGE = 3600.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_temps(path: str | Path) -> list[Path]:
    """Delete temp files left beside `path` by interrupted writes (their writer process is gone); returns them.

    Matches the project's temp names (see `_stale`); a temp of a live process is kept, one without a pid only when
    younger than STALE_TEMP_AGE.
    """
    path = Path(path)
    removed = []
    for cand in Path(path.parent).glob(f".{glob.escape(path.name)}.*tmp*"):
        try:
            if _stale(cand):
                cand.unlink()
                removed.append(cand)
        except OSError:  # vanished meanwhile, or not ours to delete
            continue
    return removed


#: The project's temp names: `.<name>.<pid>.<random>.tmp[.<ext>]` and the legacy `.<name>.tmp<pid>`.
_TEMP_NAME = re.compile(r"\.(?P<name>.+)\.(?:(?P<pid>\d+)\.[A-Za-z0-9_]+\.tmp(?:\.[A-Za-z0-9]+)?|tmp(?P<old>\d+))")
#: What safetensors' own `save_file` (a Rust `tempfile`) left beside a target before gan3dkit wrote its own bytes.
_FOREIGN_TEMP = re.compile(r"\.tmp[A-Za-z0-9]{6}")


def _stale(cand: Path) -> bool:
    """A temp of a dead writer (its pid in the name), or an anonymous one (`.<name>.<x>.tmp`, safetensors'
    `.tmpXXXXXX`) older than STALE_TEMP_AGE."""
    match = _TEMP_NAME.fullmatch(cand.name)
    if match:
        pid = int(match.group("pid") or match.group("old"))
        return pid != os.getpid() and not _alive(pid)
    if _FOREIGN_TEMP.fullmatch(cand.name) or (cand.name.startswith(".") and cand.name.endswith(".tmp")):
        return time.time() - cand.stat().st_mtime > STALE_TEMP_AGE
    return False


def remove_stale_temps_in(folder: str | Path, recursive: bool = False) -> list[Path]:
    """Delete the project's temps of dead writers in `folder` (and below, with `recursive`); returns them.

    Called when a run (re)starts on a folder, so temps of writes killed earlier (checkpoints, samples, outputs)
    never stay behind; a live process's temp is kept.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for cand in folder.rglob(".*") if recursive else folder.glob(".*"):
        try:
            if cand.is_file() and not cand.is_symlink() and _stale(cand):
                cand.unlink()
                removed.append(cand)
        except OSError:  # vanished meanwhile, or not ours to delete
            continue
    return removed


@contextlib.contextmanager
def output_folder(out: str | Path) -> Iterator[Path]:
    """Create `out` (and missing parents) for the block; remove what this created again when the block wrote
    nothing into it, also on an error (a refused or failed command leaves no empty folder behind)."""
    out = Path(out)
    top = out  # the first folder created here
    while not top.parent.exists():
        top = top.parent
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        yield out
    finally:
        folder = out
        while created and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            if folder == top:
                break
            folder = folder.parent


def new_temp_path(path: str | Path, keep_suffix: bool = False) -> Path:
    """A fresh temp name beside `path` that `remove_stale_temps_in` recognises (`keep_suffix`: end in its suffix,
    for writers that choose the format by extension)."""
    path = Path(path)
    tail = path.suffix if keep_suffix and re.fullmatch(r"\.[A-Za-z0-9]+", path.suffix) else ""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp{tail}")


@contextlib.contextmanager
def atomic_output(path: str | Path, keep_suffix: bool = True) -> Iterator[Path]:
    """Yield a temp path to write `path` through (by a library that wants a file name); it replaces `path` when the
    block ends without an error and is removed otherwise."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = new_temp_path(path, keep_suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_safetensors(path: str | Path, tensors: dict[str, Any], metadata: dict[str, str] | None = None) -> Path:
    """Serialise tensors to safetensors bytes in memory and write them with `atomic_write_bytes` (safetensors'
    `save_file` goes through a temp file of its own that a killed process leaves behind under a foreign name)."""
    from safetensors.torch import save

    return atomic_write_bytes(path, save(tensors, metadata=metadata))


def _write_all(f: Any, data: bytes) -> None:
    f.write(data)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` so that readers see either the old file or the complete new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as f:
            _write_all(f, data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


def atomic_save_png(path: str | Path, array: Any) -> Path:
    """Save a uint8 image array as PNG atomically."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return atomic_write_bytes(path, buf.getvalue())
