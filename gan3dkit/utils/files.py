"""Atomic file writes (temp file in the same folder + os.replace)."""

from __future__ import annotations

import glob
import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

#: A temp file without a process id in its name counts as stale once it is this old (seconds).
STALE_TEMP_AGE = 3600.0


def temp_path(path: str | Path) -> Path:
    """The temp name used while `path` is written by this process: `.<name>.tmp<pid>` beside it."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


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

    Matches `.<name>.tmp<pid>` (checkpoints) and `.<name>.<pid>.<random>.tmp` (`atomic_write_bytes`); a temp of a
    live process is kept, one without a pid only when younger than STALE_TEMP_AGE.
    """
    path = Path(path)
    removed = []
    for cand in Path(path.parent).glob(f".{glob.escape(path.name)}.*tmp*"):
        rest = cand.name[len(path.name) + 2:]
        match = re.fullmatch(r"tmp(\d+)", rest) or re.fullmatch(r"(\d+)\..*\.tmp", rest)
        try:
            if match:
                pid = int(match.group(1))
                stale = pid != os.getpid() and not _alive(pid)
            else:
                stale = rest.endswith(".tmp") and time.time() - cand.stat().st_mtime > STALE_TEMP_AGE
            if stale:
                cand.unlink()
                removed.append(cand)
        except OSError:  # vanished meanwhile, or not ours to delete
            continue
    return removed


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
            f.write(data)
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
