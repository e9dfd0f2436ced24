# SPDX-License-Identifier: Apache-2.0
"""Hermetic, hash-keyed JIT build of the compiled ops core (``gan3dkit/csrc``) with a stale-lock guard."""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import torch

#: Root of the C++/CUDA sources shipped with the package.
CSRC_DIR = Path(__file__).resolve().parent.parent / "csrc"
#: Overrides the cache root (default: ``$TORCH_EXTENSIONS_DIR/gan3dkit`` or ``~/.cache/gan3dkit/extensions``).
CACHE_ENV = "GAN3DKIT_EXTENSIONS_DIR"
#: A build lock older than this many seconds (or held by a dead process on this host) is considered stale.
STALE_LOCK_S = 30 * 60
_SOURCE_SUFFIXES = (".h", ".cpp", ".cu", ".cuh")
_CPU_SUFFIXES = (".h", ".cpp")


@dataclass(frozen=True)
class BuildSpec:
    """Everything that determines one build of the extension."""

    key: str
    """Hex digest of sources, headers, compiler, flags, torch/python versions and device."""
    with_cuda: bool
    """Whether the ``.cu`` sources are compiled (CUDA available at build time)."""
    directory: Path
    """Build directory ``<cache>/<key[:16]>``."""

    @property
    def module_name(self) -> str:
        return f"gan3dkit_ops_{self.key[:12]}"


def cache_root() -> Path:
    """Directory holding one sub-directory per build key."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    if os.environ.get("TORCH_EXTENSIONS_DIR"):
        return Path(os.environ["TORCH_EXTENSIONS_DIR"]).expanduser() / "gan3dkit"
    return Path.home() / ".cache" / "gan3dkit" / "extensions"


def source_files(with_cuda: bool) -> list[Path]:
    """The binding file plus every op's CPU source (and its ``.cu`` file when ``with_cuda``)."""
    files = [CSRC_DIR / "ext.cpp", *sorted(CSRC_DIR.glob("*/*_cpu.cpp"))]
    if with_cuda:
        files += sorted(CSRC_DIR.glob("*/*.cu"))
    return files


def compiler() -> str | None:
    """The C++ compiler torch will use (``$CXX`` or ``c++``), or None when none is on PATH."""
    return shutil.which(os.environ.get("CXX", "c++"))


def _compiler_id(cxx: str) -> str:
    try:
        out = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=30, check=False)
        return out.stdout.splitlines()[0] if out.stdout else cxx
    except (OSError, subprocess.SubprocessError):
        return cxx


def _cpu_id() -> str:
    """CPU model and ISA flags (the build uses -march=native, so a different CPU must not reuse it)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    model = next((ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("model name")), "")
    flags = next((ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("flags")), "")
    return f"{platform.machine()} {model} {hashlib.sha256(flags.encode()).hexdigest()[:12]}"


def cflags() -> list[str]:
    """Host compiler flags: optimised, OpenMP (at::parallel_for), native ISA on x86-64/aarch64 Linux.

    ``-fno-trapping-math`` lets GCC turn float selects into blends so the activation loops vectorise; it does not
    change any computed value (only whether floating-point exceptions may be raised speculatively).
    """
    flags = ["-O3", "-fno-trapping-math", "-fopenmp", "-std=c++17"]
    if sys.platform.startswith("linux") and platform.machine() in ("x86_64", "aarch64"):
        flags.append("-march=native")
    return flags


def sources_digest(suffixes: tuple[str, ...] = _SOURCE_SUFFIXES) -> hashlib._Hash:
    """SHA-256 over the ops core's sources with these suffixes (relative names and bytes, sorted), still open."""
    digest = hashlib.sha256()
    for path in sorted(p for p in CSRC_DIR.rglob("*") if p.suffix in suffixes):
        digest.update(str(path.relative_to(CSRC_DIR)).encode())
        digest.update(path.read_bytes())
    return digest


def build_spec() -> BuildSpec:
    """The build this machine needs now (the ``.cu`` sources are included iff CUDA is available and any exist)."""
    with_cuda = torch.cuda.is_available() and any(CSRC_DIR.glob("*/*.cu"))
    suffixes = _SOURCE_SUFFIXES if with_cuda else _CPU_SUFFIXES  # a CPU build never reads the .cu files
    digest = sources_digest(suffixes)
    cxx = compiler()
    device = torch.cuda.get_device_name(0) if with_cuda else "cpu"
    for part in (
        _compiler_id(cxx) if cxx else "no-compiler",
        " ".join(cflags()),
        torch.__version__,
        str(torch.version.cuda),
        platform.python_version(),
        device,
        _cpu_id(),
        str(with_cuda),
    ):
        digest.update(part.encode())
    key = digest.hexdigest()
    return BuildSpec(key=key, with_cuda=with_cuda, directory=cache_root() / key[:16])


# ---------------------------------------------------------------------------------------------- locking
def _lock_is_stale(lock: Path) -> bool:
    try:
        info = json.loads(lock.read_text())
        age = time.time() - float(info["time"])
        pid, host = int(info["pid"]), str(info["host"])
    except (OSError, ValueError, KeyError, TypeError):
        try:
            return time.time() - lock.stat().st_mtime > 60  # unreadable and not just being written
        except OSError:
            return False
    if age > STALE_LOCK_S:
        return True
    if host == socket.gethostname():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
    return False


def _acquire_lock(lock: Path, wait_s: float) -> None:
    """Create ``lock`` exclusively; remove it first if stale (a killed build). Raises TimeoutError."""
    deadline = time.monotonic() + wait_s
    payload = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "time": time.time()})
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if _lock_is_stale(lock):
                lock.unlink(missing_ok=True)
                continue
            if time.monotonic() > deadline:
                raise TimeoutError(f"another process holds the build lock {lock}") from None
            time.sleep(1.0)
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(payload)
        return


# ---------------------------------------------------------------------------------------------- build/load
def _library_path(spec: BuildSpec) -> Path | None:
    marker = spec.directory / "done.json"
    if not marker.exists():
        return None
    try:
        lib = Path(json.loads(marker.read_text())["library"])
    except (OSError, ValueError, KeyError):
        return None
    return lib if lib.exists() else None


def _import_library(name: str, lib: Path) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    loader = importlib.machinery.ExtensionFileLoader(name, str(lib))
    spec = importlib.util.spec_from_file_location(name, str(lib), loader=loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    sys.modules[name] = module
    return module


def is_built(spec: BuildSpec | None = None) -> bool:
    """Whether the cache already holds a finished build for this machine (checks files only)."""
    return _library_path(spec or build_spec()) is not None


def failure_reason(spec: BuildSpec | None = None) -> str | None:
    """The recorded reason of an earlier failed build of the same key (so it is not retried every run)."""
    path = (spec or build_spec()).directory / "failed.txt"
    return path.read_text().strip().splitlines()[0] if path.exists() else None


def load(verbose: bool = False, lock_wait_s: float = 1800.0, retry_failed: bool = False) -> ModuleType:
    """Load the compiled core, compiling it first (ninja, ``MAX_JOBS`` default 2) if the cache lacks it.

    Args:
        verbose: Show the compiler output.
        lock_wait_s: How long to wait for another process that is building the same key.
        retry_failed: Rebuild even if an earlier build of this key failed (``failed.txt`` in the build dir).

    Returns:
        The extension module.

    Raises:
        RuntimeError: No compiler, or the build failed (the message names the reason and the log file).
    """
    spec = build_spec()
    lib = _library_path(spec)
    if lib is not None:
        return _import_library(spec.module_name, lib)
    if compiler() is None:
        raise RuntimeError(f"no C++ compiler found ({os.environ.get('CXX', 'c++')} is not on PATH)")
    failed = spec.directory / "failed.txt"
    if failed.exists() and not retry_failed:
        raise RuntimeError(f"an earlier build failed: {failure_reason(spec)} (log: {failed}; delete it to retry)")
    spec.directory.mkdir(parents=True, exist_ok=True)
    lock = spec.directory / "build.lock"
    _acquire_lock(lock, lock_wait_s)
    try:
        lib = _library_path(spec)  # built by the process we waited for
        if lib is None:
            lib = _compile(spec, verbose)
        return _import_library(spec.module_name, lib)
    finally:
        lock.unlink(missing_ok=True)


def _compile(spec: BuildSpec, verbose: bool) -> Path:
    from torch.utils import cpp_extension

    src_dir = spec.directory / "src"
    if not src_dir.exists():  # hermetic copy: later edits of the checkout do not leak into this build
        tmp = spec.directory / f"src.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(CSRC_DIR, tmp, ignore=shutil.ignore_patterns("__pycache__"))
        os.replace(tmp, src_dir)
    out_dir = spec.directory / "build"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "lock").unlink(missing_ok=True)  # torch's own FileBaton lock: stale, since we hold ours
    sources = [str(src_dir / p.relative_to(CSRC_DIR)) for p in source_files(spec.with_cuda)]
    os.environ.setdefault("MAX_JOBS", "2")
    defines = ["-DWITH_CUDA"] if spec.with_cuda else []
    try:
        module = cpp_extension.load(
            name=spec.module_name,
            sources=sources,
            extra_include_paths=[str(src_dir)],
            extra_cflags=cflags() + defines,
            extra_cuda_cflags=["-O3", "--use_fast_math", "-std=c++17", *defines],
            extra_ldflags=["-fopenmp"],
            build_directory=str(out_dir),
            with_cuda=spec.with_cuda,
            verbose=verbose,
        )
    except Exception as exc:  # recorded, then re-raised with the reason
        reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"
        (spec.directory / "failed.txt").write_text(f"{reason}\n\n{exc}\n")
        raise RuntimeError(f"building the compiled ops core failed ({reason}); full log in {out_dir}") from exc
    lib = Path(module.__file__)
    tmp = spec.directory / "done.json.tmp"
    tmp.write_text(json.dumps({"library": str(lib), "key": spec.key, "with_cuda": spec.with_cuda}))
    os.replace(tmp, spec.directory / "done.json")
    sys.modules.setdefault(spec.module_name, module)
    return lib
