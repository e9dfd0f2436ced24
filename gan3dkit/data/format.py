"""LMDB format v1: meta records, version checks and per-field codecs, all driven by `data_specs/lmdb_v1.json`."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

import numpy as np

from .. import __version__
from ..specs import FORMAT_NAME, SUPPORTED_MAJOR, load_spec
from ..utils.errors import DataError
from .images import decode_png, encode_png

META_KEY = load_spec()["keys"]["meta"].encode()
PROGRESS_KEY = load_spec()["keys"]["progress"].encode()
_TYPES = {"string": str, "integer": int, "array": list, "object": dict}


class DatasetFormatError(DataError):
    """A dataset whose meta or records do not follow data_specs/lmdb_v1 (a ValueError, exit code 1 in the CLI)."""


class FormatVersionError(DatasetFormatError):
    """A dataset written by an unknown major format version."""


def sample_key(index: int, field: str) -> bytes:
    """LMDB key of one field of one sample: b'{index:08d}/{field}'."""
    return load_spec()["keys"]["sample"].format(index=index, field=field).encode()


def field_specs() -> dict[str, dict[str, Any]]:
    return load_spec()["sample_fields"]


def check_version(meta: dict[str, Any], path: str = "dataset") -> None:
    """Refuse datasets of another format or an unknown major version, saying what to do."""
    if meta.get("format") != FORMAT_NAME:
        raise DatasetFormatError(f"{path} is not a {FORMAT_NAME} dataset (format = {meta.get('format')!r})")
    version = str(meta.get("format_version", ""))
    try:
        major = int(version.split(".")[0])
    except ValueError:
        raise DatasetFormatError(f"{path} has a malformed format_version {version!r}") from None
    if major != SUPPORTED_MAJOR:
        newer = major > SUPPORTED_MAJOR
        raise FormatVersionError(
            f"{path} uses {FORMAT_NAME} format v{version}, "
            f"but this gan3dkit ({__version__}) reads v{SUPPORTED_MAJOR}.x. "
            + (
                "Upgrade gan3dkit (pip install -U gan3dkit) to read it."
                if newer
                else "Re-create it with `gan3dkit prepare ...` or convert it with the gan3dkit release that wrote it."
            )
        )


def validate_meta(meta: dict[str, Any], path: str = "dataset") -> None:
    """Check a meta record against the spec's `meta_fields` (presence, types, enums) and field declarations."""
    check_version(meta, path)
    spec = load_spec()
    for name, rule in spec["meta_fields"].items():
        if name not in meta:
            if rule.get("required", True):
                raise DatasetFormatError(f"{path}: meta record lacks required field {name!r}")
            continue
        value = meta[name]
        if value is None and rule.get("nullable"):
            continue
        if not isinstance(value, _TYPES[rule["type"]]) or isinstance(value, bool):
            raise DatasetFormatError(f"{path}: meta field {name!r} must be {rule['type']}, got {type(value).__name__}")
        if "enum" in rule and value not in rule["enum"]:
            raise DatasetFormatError(f"{path}: meta field {name!r} = {value!r}, expected one of {rule['enum']}")
    if meta["camera_convention"] != spec["camera_convention"]:
        raise DatasetFormatError(f"{path}: unknown camera convention {meta['camera_convention']}")
    unknown = set(meta["fields"]) - set(spec["sample_fields"])
    if unknown:
        raise DatasetFormatError(f"{path}: unknown sample fields {sorted(unknown)}")
    for required in (n for n, f in spec["sample_fields"].items() if f["required"]):
        if required not in meta["fields"]:
            raise DatasetFormatError(f"{path}: required sample field {required!r} missing from meta.fields")
    if meta["count"] < 0 or meta["resolution"] <= 0:
        raise DatasetFormatError(f"{path}: bad count/resolution {meta['count']}/{meta['resolution']}")


def make_meta(
    *,
    count: int,
    resolution: int,
    channels: int,
    fields: list[str],
    latent_dim: int = 0,
    pose_prior: dict[str, Any] | None = None,
    camera_source: str | None = None,
    source: str = "",
    command: str = "",
    provenance_extra: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build a complete v1 meta record (provenance stamped with this gan3dkit version and the UTC time)."""
    spec = load_spec()
    meta: dict[str, Any] = {
        "format": FORMAT_NAME,
        "format_version": spec["version"],
        "count": int(count),
        "resolution": int(resolution),
        "channels": int(channels),
        "fields": sorted(fields, key=list(spec["sample_fields"]).index),
        "latent_dim": int(latent_dim),
        "camera_convention": dict(spec["camera_convention"]),
        "pose_prior": pose_prior,
        "provenance": {
            "source": source,
            "command": command,
            "gan3dkit_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **(provenance_extra or {}),
        },
    }
    if camera_source is not None:
        meta["camera_source"] = camera_source
    if "depth" in fields:
        meta["depth"] = dict(spec["depth_convention"])
    if "ypr" in fields:
        meta["ypr_convention"] = spec["ypr_convention"]["name"]
    if extra:
        meta["extra"] = extra
    return meta


def _shape(field: str, meta: dict[str, Any]) -> tuple[int, ...]:
    dims = {"resolution": meta["resolution"], "channels": meta["channels"], "latent_dim": meta.get("latent_dim", 0)}
    shape = tuple(dims[d] if isinstance(d, str) else int(d) for d in field_specs()[field]["shape"])
    if field == "image" and meta["channels"] == 1:
        shape = shape[:2]
    return shape


def encode_field(field: str, value: Any, meta: dict[str, Any]) -> bytes:
    """Encode one sample field per the spec (PNG, raw little-endian array or UTF-8), checking its shape."""
    rule = field_specs()[field]
    if rule["encoding"] == "utf8":
        return str(value).encode("utf-8")
    shape = _shape(field, meta)
    if rule["encoding"] == "png":
        if isinstance(value, (bytes, bytearray)):
            arr = decode_png(bytes(value))
            if arr.shape != shape or arr.dtype != np.uint8:
                raise DatasetFormatError(f"{field}: PNG is {arr.shape} {arr.dtype}, expected {shape} uint8")
            return bytes(value)
        arr = np.asarray(value)
        if arr.shape != shape or arr.dtype != np.uint8:
            raise DatasetFormatError(f"{field}: expected uint8 array of shape {shape}, got {arr.dtype} {arr.shape}")
        return encode_png(arr)
    arr = np.asarray(value, dtype=np.dtype(rule["dtype"]))
    if arr.shape != shape:
        raise DatasetFormatError(f"{field}: expected shape {shape}, got {arr.shape}")
    return np.ascontiguousarray(arr).tobytes()


def decode_field(field: str, data: bytes, meta: dict[str, Any]) -> Any:
    """Decode one stored field back to a numpy array (or str for utf8 fields)."""
    rule = field_specs()[field]
    if rule["encoding"] == "utf8":
        return data.decode("utf-8")
    shape = _shape(field, meta)
    if rule["encoding"] == "png":
        arr = decode_png(data)
        if arr.shape != shape:
            raise DatasetFormatError(f"{field}: stored PNG is {arr.shape}, meta says {shape}")
        return arr
    dtype = np.dtype(rule["dtype"])
    expected = int(math.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        raise DatasetFormatError(f"{field}: stored {len(data)} bytes, expected {expected} for {shape} {dtype}")
    return np.frombuffer(data, dtype=dtype).reshape(shape)
