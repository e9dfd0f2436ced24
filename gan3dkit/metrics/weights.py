"""Pretrained-weight files for metric networks: a user path, an installed package's file, or a checked download."""

from __future__ import annotations

import importlib.util
import os
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from ..utils.files import atomic_output, atomic_write_bytes, sha256_file

CHUNK = 1 << 20


class WeightsUnavailable(FileNotFoundError):
    """No usable weight file: not given, not installed, not cached, and not downloadable (offline)."""


@dataclass(frozen=True)
class WeightSpec:
    """Where one network's weight file can come from.

    Sources are tried in order: an explicit path or URL from the user, package files (`(package, relative path)`,
    located with importlib without importing the package), the cache, then `url`.
    """

    name: str
    """Short identifier, e.g. "inception-2015-12-05"."""
    filename: str
    """File name inside the cache directory."""
    url: str | None = None
    """Standard download URL (None: the file must be supplied)."""
    sha256: str | None = None
    """Full hex digest or a prefix (torch.hub style, e.g. "7be5be79"); None = unpinned (digest recorded on download)."""
    packages: tuple[tuple[str, str], ...] = ()
    """Installed-package files holding the same weights: (import name, path inside the package)."""
    package_sha256: dict[str, str] = field(default_factory=dict)
    """Pinned digests of package files, keyed by import name (checked when the file is used)."""
    hint: str = ""
    """Extra advice for the error message (e.g. the CLI option that supplies the file)."""


def cache_dir() -> Path:
    """`$GAN3DKIT_CACHE`, else `~/.cache/gan3dkit`."""
    env = os.environ.get("GAN3DKIT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "gan3dkit"


def check_sha256(path: str | Path, expected: str | None) -> str:
    """The file's sha256; raises ValueError if it does not start with `expected` (full digest or prefix)."""
    digest = sha256_file(path)
    if expected and not digest.startswith(expected.lower()):
        raise ValueError(f"{path}: sha256 {digest} does not match the expected {expected}; the file is corrupt or a "
                         "different network. Delete it and retry.")
    return digest


def package_file(package: str, relpath: str) -> Path | None:
    """Path of a file inside an installed package (found with importlib.util.find_spec; nothing is imported)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = Path(root) / relpath
        if path.is_file():
            return path
    return None


def download(url: str, dest: Path, sha256: str | None, timeout: float = 60.0) -> Path:
    """Download `url` to `dest` atomically (temp file + fsync + rename) and check its sha256."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(dest) as tmp:  # the project's temp naming: a killed download is removed by the next write
        with open(tmp, "wb") as f, urllib.request.urlopen(url, timeout=timeout) as response:
            shutil.copyfileobj(response, f, CHUNK)
            f.flush()
            os.fsync(f.fileno())
        digest = check_sha256(tmp, sha256)
        if not sha256:  # unpinned: record what was downloaded (before it lands) so later loads are checked
            atomic_write_bytes(dest.parent / f"{dest.name}.sha256", (digest + "\n").encode())
    return dest


def _is_url(source: str) -> bool:
    return source.split("://", 1)[0] in ("http", "https", "file", "ftp") and "://" in source


def fetch(spec: WeightSpec, source: str | Path | None = None, allow_download: bool = True) -> Path:
    """Resolve a weight file for `spec`.

    Args:
        spec: the network's sources.
        source: a user-given local path or URL (overrides everything; a URL is downloaded into the cache and checked
            against `spec.sha256` only when it is the spec's own URL).
        allow_download: try `spec.url` when nothing local is found.

    Raises:
        WeightsUnavailable: with every option listed, when nothing works.
    """
    cache = cache_dir() / "weights"
    if source is not None:
        text = str(source)
        if _is_url(text):
            pinned = spec.sha256 if text == spec.url else None
            dest = cache / (spec.filename if text == spec.url else Path(text.split("?", 1)[0]).name)
            if dest.is_file():
                _check_cached(dest, pinned)
                return dest
            if not allow_download:
                raise WeightsUnavailable(f"{spec.name}: {text} is not cached in {cache} and downloads are disabled.")
            try:
                return download(text, dest, pinned)
            except (urllib.error.URLError, OSError) as exc:
                raise WeightsUnavailable(f"{spec.name}: cannot download {text} ({exc}).") from exc
        path = Path(text).expanduser()
        if not path.is_file():
            raise WeightsUnavailable(f"{spec.name}: weight file {path} not found.")
        return path
    for package, relpath in spec.packages:
        found = package_file(package, relpath)
        if found is not None:
            if package in spec.package_sha256:
                check_sha256(found, spec.package_sha256[package])
            return found
    dest = cache / spec.filename
    if dest.is_file():
        _check_cached(dest, spec.sha256)
        return dest
    error = "no download URL is known"
    if spec.url and allow_download:
        try:
            return download(spec.url, dest, spec.sha256)
        except (urllib.error.URLError, OSError) as exc:
            error = f"download of {spec.url} failed ({exc})"
    elif spec.url:
        error = "downloads are disabled"
    raise WeightsUnavailable(unavailable_message(spec, error))


def _check_cached(path: Path, pinned: str | None) -> None:
    recorded = path.parent / f"{path.name}.sha256"
    expected = pinned or (recorded.read_text().strip() if recorded.is_file() else None)
    check_sha256(path, expected)


def unavailable_message(spec: WeightSpec, error: str) -> str:
    """A message listing every way to provide the weights."""
    options = []
    if spec.hint:
        options.append(spec.hint)
    for package, relpath in spec.packages:
        options.append(f"install the package that ships them (import name {package!r}, file {relpath})")
    if spec.url:
        options.append(f"go online once so {spec.url} downloads into {cache_dir() / 'weights' / spec.filename}")
    options.append(f"or copy the file to {cache_dir() / 'weights' / spec.filename} (set $GAN3DKIT_CACHE to move the "
                   "cache)")
    return f"{spec.name} weights are not available: {error}. Options: " + "; ".join(options) + "."
