# SPDX-License-Identifier: Apache-2.0
"""The CUDA sources compile with nvcc against torch's headers (built, not verified: no kernel runs here).

Opt-in (about 45 s of CPU per file): set GAN3DKIT_CHECK_NVCC=1; skips without nvcc. On a GPU machine the parity
tests in test_compiled*.py run the kernels themselves.
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
@pytest.mark.skipif(os.environ.get("GAN3DKIT_CHECK_NVCC", "0") != "1", reason="opt-in: GAN3DKIT_CHECK_NVCC=1")
def test_cuda_sources_compile_with_nvcc(tmp_path):
    tool = _tool()
    if tool.nvcc_path() is None:
        pytest.skip("nvcc not found")
    report = tool.compile_all(tmp_path)
    failed = {k: v for k, v in report["results"].items() if not v["compiled"]}
    assert not failed, failed
    assert report["verified_on_gpu"] is False
