# SPDX-License-Identifier: Apache-2.0
"""Compile every CUDA source of the ops core (``gan3dkit/csrc/*/*.cu``) to an object file with nvcc; prints JSON.

This proves the ``.cu`` files are valid CUDA C++ against the installed torch's headers ("built"), not that they
are correct ("verified": that needs a GPU and the parity tests). It works with a CPU-only torch wheel: that wheel
ships the c10/ATen CUDA headers but not the CMake-generated ``c10/cuda/impl/cuda_cmake_macros.h``, so the tool
writes that one-line header (``#define C10_CUDA_BUILD_SHARED_LIBS``, its content in CUDA builds of torch) into a
temporary include directory and says so in the output. Flags follow ``gan3dkit.ops._build`` (``-O3
--use_fast_math -std=c++17 -DWITH_CUDA``). Nothing is linked; no CUDA library or GPU is needed. Files compile in
parallel (``--jobs``, default: the CPU count).

Without nvcc it says so on stderr ("NOT CHECKED") and in the JSON (``"checked": false``) and exits 0, or 3 with
``--require-nvcc`` (for CI machines that are meant to have it). Exit 1 means a ``.cu`` file failed to compile.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CSRC = Path(__file__).resolve().parent.parent / "gan3dkit" / "csrc"
_MACROS = "c10/cuda/impl/cuda_cmake_macros.h"


def nvcc_path() -> str | None:
    """nvcc from ``$CUDA_HOME/bin``, else from PATH, else /usr/local/cuda/bin/nvcc."""
    home = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH")
    for cand in ([str(Path(home) / "bin" / "nvcc")] if home else []) + [
        shutil.which("nvcc") or "",
        "/usr/local/cuda/bin/nvcc",
    ]:
        if cand and Path(cand).exists():
            return cand
    return None


def torch_includes() -> tuple[list[str], int]:
    """Torch's C++ include directories and its ``_GLIBCXX_USE_CXX11_ABI`` value."""
    import torch
    from torch.utils import cpp_extension

    return cpp_extension.include_paths(), int(torch._C._GLIBCXX_USE_CXX11_ABI)


def compile_all(out_dir: Path, arch: str | None = None, timeout_s: int = 600, jobs: int = 0) -> dict[str, object]:
    """Compile each ``.cu`` file separately (``jobs`` at a time, 0 = CPU count); returns a JSON-able report."""
    nvcc = nvcc_path()
    sources = sorted(CSRC.glob("*/*.cu"))
    report: dict[str, object] = {"nvcc": nvcc, "sources": [str(p.relative_to(CSRC)) for p in sources]}
    if nvcc is None:
        report.update(checked=False, error="nvcc not found (looked in $CUDA_HOME/bin, PATH, /usr/local/cuda/bin)")
        return report
    report["checked"] = True
    version = subprocess.run([nvcc, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    report["nvcc_version"] = version.splitlines()[-1] if version else ""
    includes, abi = torch_includes()
    shim = out_dir / "shim"
    report["generated_headers"] = []
    if not any((Path(d) / _MACROS).exists() for d in includes):
        (shim / _MACROS).parent.mkdir(parents=True, exist_ok=True)
        (shim / _MACROS).write_text("#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n")
        report["generated_headers"] = [_MACROS]
    flags = ["-O3", "--use_fast_math", "-std=c++17", "-DWITH_CUDA", f"-D_GLIBCXX_USE_CXX11_ABI={abi}"]
    flags += ["-DTORCH_EXTENSION_NAME=gan3dkit_check", "-diag-suppress=3306"]  # torch's C++20 bit-field warning
    flags += [f"-arch={arch}"] if arch else []
    inc = [f"-I{CSRC}", f"-I{shim}"] + [f"-I{d}" for d in includes]

    def one(src: Path) -> dict[str, object]:
        obj = out_dir / (src.stem + ".o")
        start = time.monotonic()
        try:
            proc = subprocess.run(
                [nvcc, "-c", str(src), "-o", str(obj), *flags, *inc],
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
            ok, log = proc.returncode == 0 and obj.exists(), (proc.stderr or proc.stdout)
        except subprocess.TimeoutExpired:
            ok, log = False, f"timed out after {timeout_s} s"
        entry: dict[str, object] = {"compiled": ok, "seconds": round(time.monotonic() - start, 1)}
        if ok:
            entry["object_bytes"] = obj.stat().st_size
        else:
            entry["log_tail"] = log.strip().splitlines()[-15:]
        return entry

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as pool:
        entries = list(pool.map(one, sources))
    results = {str(src.relative_to(CSRC)): entry for src, entry in zip(sources, entries, strict=False)}
    report["results"] = results
    report["all_compiled"] = bool(results) and all(r["compiled"] for r in results.values())
    report["verified_on_gpu"] = False  # this tool never runs a kernel
    return report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__,
        epilog="example:\n  python tools/check_cuda_sources.py --arch sm_90",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--arch", default=None, help="nvcc -arch value (default: nvcc's own default)")
    parser.add_argument("--keep", default="", help="directory to keep the object files in (default: a temp dir)")
    parser.add_argument("--jobs", type=int, default=0, help="files compiled at once (default: the CPU count)")
    parser.add_argument("--require-nvcc", action="store_true", help="exit 3 instead of 0 when nvcc is missing")
    args = parser.parse_args()
    if args.keep:
        out = Path(args.keep)
        out.mkdir(parents=True, exist_ok=True)
        report = compile_all(out, args.arch, jobs=args.jobs)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            report = compile_all(Path(tmp), args.arch, jobs=args.jobs)
    print(json.dumps(report, indent=1))
    if not report.get("checked"):
        print(f"check_cuda_sources: NOT CHECKED: {report['error']}; the CUDA sources were not compiled.",
              file=sys.stderr)
        sys.exit(3 if args.require_nvcc else 0)
    sys.exit(0 if report.get("all_compiled") else 1)


if __name__ == "__main__":
    main()
