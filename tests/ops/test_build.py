# SPDX-License-Identifier: Apache-2.0
"""Tests for the JIT build machinery: cache key, stale-lock guard, missing compiler, prebuild skips."""

from __future__ import annotations

import json
import os
import shutil
import socket
import time

import pytest

from gan3dkit.ops import _build, build


def test_key_depends_on_sources(monkeypatch, tmp_path):
    src = tmp_path / "csrc"
    shutil.copytree(_build.CSRC_DIR, src)
    monkeypatch.setattr(_build, "CSRC_DIR", src)
    monkeypatch.setenv(_build.CACHE_ENV, str(tmp_path / "cache"))
    first = _build.build_spec()
    assert first == _build.build_spec()  # deterministic
    assert first.directory.parent == tmp_path / "cache"
    header = src / "ray_march" / "ray_march.h"
    header.write_text(header.read_text() + "\n// edited\n")
    second = _build.build_spec()
    assert second.key != first.key and second.module_name != first.module_name


def test_sources_are_the_binding_plus_cpu_files():
    names = [p.relative_to(_build.CSRC_DIR).as_posix() for p in _build.source_files(with_cuda=False)]
    assert names[0] == "ext.cpp"
    assert {"ray_march/ray_march_cpu.cpp", "sample_pdf/sample_pdf_cpu.cpp"} <= set(names)
    assert all(n.endswith(".cpp") for n in names)


def _write_lock(path, pid, age_s=0.0, host=None):
    path.write_text(json.dumps({"pid": pid, "host": host or socket.gethostname(), "time": time.time() - age_s}))


def test_stale_lock_of_dead_process_is_removed(tmp_path):
    lock = tmp_path / "build.lock"
    dead = 2**22 + 12345  # above the default pid_max; no such process
    _write_lock(lock, dead)
    _build._acquire_lock(lock, wait_s=0)
    assert json.loads(lock.read_text())["pid"] == os.getpid()


def test_old_lock_is_removed_and_live_lock_waits(tmp_path):
    lock = tmp_path / "build.lock"
    _write_lock(lock, os.getpid(), age_s=_build.STALE_LOCK_S + 5, host="elsewhere")
    _build._acquire_lock(lock, wait_s=0)
    _write_lock(lock, os.getpid())  # a live holder (this process)
    with pytest.raises(TimeoutError, match="build lock"):
        _build._acquire_lock(lock, wait_s=0)


def test_missing_compiler_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv(_build.CACHE_ENV, str(tmp_path))
    monkeypatch.setenv("CXX", "definitely-not-a-compiler")
    with pytest.raises(RuntimeError, match="no C\\+\\+ compiler"):
        _build.load()
    result = build.prebuild(timeout_s=5)
    assert not result["built"] and "no C++ compiler" in result["reason"]


def test_recorded_failure_is_not_retried(monkeypatch, tmp_path):
    monkeypatch.setenv(_build.CACHE_ENV, str(tmp_path))
    spec = _build.build_spec()
    spec.directory.mkdir(parents=True)
    (spec.directory / "failed.txt").write_text("CalledProcessError: ninja failed\n\nlog\n")
    with pytest.raises(RuntimeError, match="earlier build failed: CalledProcessError"):
        _build.load()


def test_prebuild_respects_no_extension(monkeypatch, capsys):
    monkeypatch.setenv("GAN3DKIT_NO_EXTENSION", "1")
    assert build.main(["--timeout", "1"]) == 0
    out = json.loads(capsys.readouterr().out)["gan3dkit_ops_build"]
    assert out["built"] is False and "GAN3DKIT_NO_EXTENSION" in out["reason"]
    assert build.main(["--timeout", "1", "--strict"]) == 1


def test_cpu_key_ignores_cuda_sources(monkeypatch, tmp_path):
    """A CPU build never compiles the .cu files, so editing them must not invalidate the CPU core."""
    src = tmp_path / "csrc"
    shutil.copytree(_build.CSRC_DIR, src)
    monkeypatch.setattr(_build, "CSRC_DIR", src)
    monkeypatch.setattr(_build.torch.cuda, "is_available", lambda: False)
    first = _build.build_spec()
    (src / "ray_march" / "extra.cu").write_text("// a CUDA-only edit\n")
    (src / "utils" / "extra.cuh").write_text("// a CUDA-only header\n")
    assert _build.build_spec().key == first.key
    assert all(p.suffix != ".cu" for p in _build.source_files(with_cuda=False))
    assert any(p.suffix == ".cu" for p in _build.source_files(with_cuda=True))
