# SPDX-License-Identifier: Apache-2.0
"""Prebuild the compiled ops core into its cache, within a time budget: ``python3 -m gan3dkit.ops.build``."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

_CHILD = "from gan3dkit.ops import _build; _build.load(verbose={verbose}, retry_failed={retry})"


def prebuild(timeout_s: float = 900.0, verbose: bool = False, retry_failed: bool = True) -> dict[str, Any]:
    """Compile the extension in a child process (killed with its compiler jobs after ``timeout_s``).

    Never raises: the result says whether the cache now holds a build, and why not. The ops fall back to the
    pure-PyTorch reference (with one warning per op) whenever the core is missing.

    Args:
        timeout_s: Wall-clock budget in seconds.
        verbose: Stream the compiler output.
        retry_failed: Retry even if an earlier build of the same sources failed.

    Returns:
        ``{"built": bool, "seconds": float, "directory": str, "reason": str}``.
    """
    from gan3dkit.ops import _backend, _build

    start = time.monotonic()
    spec = _build.build_spec()
    result: dict[str, Any] = {"built": False, "seconds": 0.0, "directory": str(spec.directory), "reason": ""}
    if os.environ.get(_backend.NO_EXTENSION_ENV, "0") == "1":
        result["reason"] = f"skipped: {_backend.NO_EXTENSION_ENV}=1"
        return result
    if _build.is_built(spec):
        result.update(built=True, reason="already in the cache")
        return result
    if _build.compiler() is None:
        result["reason"] = "skipped: no C++ compiler on PATH (the ops use the pure-PyTorch reference)"
        return result
    code = _CHILD.format(verbose=verbose, retry=retry_failed)
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=None if verbose else subprocess.DEVNULL,
        stderr=None if verbose else subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, so a timeout also stops ninja and the compilers
    )
    try:
        _, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        result["reason"] = f"timed out after {timeout_s:.0f} s (it compiles lazily on first use instead)"
    else:
        if proc.returncode == 0:
            result.update(built=True, reason="built")
        else:
            lines = [ln for ln in (err or "").strip().splitlines() if ln.strip()]
            result["reason"] = f"build failed: {lines[-1] if lines else f'exit code {proc.returncode}'}"
    result["seconds"] = round(time.monotonic() - start, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; exit code 0 unless ``--strict`` and the build is missing."""
    parser = argparse.ArgumentParser(
        prog="python3 -m gan3dkit.ops.build",
        description="Compile gan3dkit's C++/OpenMP ops core into the cache (example: "
        "python3 -m gan3dkit.ops.build --timeout 600).",
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="wall-clock budget in seconds (default 900)")
    parser.add_argument("--verbose", action="store_true", help="show the compiler output")
    parser.add_argument("--strict", action="store_true", help="exit 1 if the core is not built afterwards")
    args = parser.parse_args(argv)
    result = prebuild(args.timeout, args.verbose)
    print(json.dumps({"gan3dkit_ops_build": result}))
    return 1 if args.strict and not result["built"] else 0


if __name__ == "__main__":
    sys.exit(main())
