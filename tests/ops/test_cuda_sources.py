# SPDX-License-Identifier: Apache-2.0
"""The CUDA sources compile with nvcc against torch's headers (built, not verified: no kernel runs here).

Runs whenever nvcc is found (marked slow: about 40-100 s of CPU per file, the files in parallel, so about 2.5 min on
2 cores); skips, saying so, without nvcc. On a GPU machine the parity tests in test_compiled*.py and the self-check
run the kernels themselves.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "check_cuda_sources.py"


def _tool():
    spec = importlib.util.spec_from_file_location("check_cuda_sources", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_op_with_a_cpu_kernel_has_a_cuda_source():
    csrc = Path(_tool().CSRC)
    cpu_ops = {p.parent.name for p in csrc.glob("*/*_cpu.cpp")}
    cuda_ops = {p.parent.name for p in csrc.glob("*/*.cu")}
    assert cpu_ops == cuda_ops


@pytest.mark.slow
def test_cuda_sources_compile_with_nvcc(tmp_path):
    tool = _tool()
    if tool.nvcc_path() is None:
        pytest.skip("nvcc not found: the CUDA sources are NOT compiled by this run")
    report = tool.compile_all(tmp_path, jobs=os.cpu_count() or 1)
    assert report["checked"] is True
    failed = {k: v for k, v in report["results"].items() if not v["compiled"]}
    assert not failed, failed
    assert report["verified_on_gpu"] is False


def test_without_nvcc_the_tool_says_so(tmp_path, monkeypatch):
    tool = _tool()
    monkeypatch.setattr(tool, "nvcc_path", lambda: None)
    report = tool.compile_all(tmp_path)
    assert report["checked"] is False and "nvcc not found" in report["error"] and "results" not in report
