"""LMDB files checked before they are mapped: a truncated `data.mdb` becomes a DataError, not a SIGBUS."""

from __future__ import annotations

import struct
from pathlib import Path

from ..utils.errors import DataError

MDB_MAGIC = 0xBEEFC0DE
# Layout of LMDB's two meta pages (lmdb 0.9, 64-bit): a 16-byte page header, then MDB_meta: magic u32, version u32,
# address (8), mapsize (8), two MDB_db records of 48 bytes (the free DB's first u32 holds the page size), last page
# number (8) and transaction id (8).
_HEADER, _META_LEN = 16, 16 + 8 + 8 + 96 + 16


def _read_meta(raw: bytes, offset: int) -> tuple[int, int, int] | None:
    """(page size, last page, txnid) of the meta page at `offset`, or None when it is not a valid meta page."""
    if len(raw) < offset + _META_LEN:
        return None
    magic, _version = struct.unpack_from("<II", raw, offset + _HEADER)
    if magic != MDB_MAGIC:
        return None
    psize = struct.unpack_from("<I", raw, offset + _HEADER + 24)[0]
    last_pg, txnid = struct.unpack_from("<QQ", raw, offset + _HEADER + 24 + 96)
    return psize, last_pg, txnid


def check_lmdb_file(path: str | Path, what: str = "dataset") -> None:
    """Raise DataError if `<path>/data.mdb` is shorter than its own meta pages say (truncated copy or disk).

    LMDB maps the file into memory; reading a page beyond the end of a truncated file kills the process with
    SIGBUS. Both meta pages are read with plain file I/O and the newer one (higher txnid) must fit in the file.
    """
    path = Path(path)
    data = path / "data.mdb" if path.is_dir() else path
    try:
        size = data.stat().st_size
        with open(data, "rb") as f:
            head = f.read(2 * 65536 + _META_LEN)
    except OSError as exc:
        raise DataError(f"{what} {path}: cannot read {data.name} ({exc.strerror or exc})") from None
    first = _read_meta(head, 0)
    if first is None:
        raise DataError(f"{what} {path}: {data.name} is not an LMDB file (no valid meta page; {size} bytes). "
                        "It is corrupt or truncated: re-create it or copy it again")
    second = _read_meta(head, first[0])
    metas = [m for m in (first, second) if m is not None and m[0] == first[0]]
    psize, last_pg, _ = max(metas, key=lambda m: m[2])
    need = (last_pg + 1) * psize
    if size < need:
        raise DataError(f"{what} {path}: {data.name} is truncated ({size} bytes, its header needs {need}); "
                        "the copy or download was cut short: copy it again or re-create it")
