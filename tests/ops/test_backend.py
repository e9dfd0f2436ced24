# SPDX-License-Identifier: Apache-2.0
"""Tests for the backend registry: impl selection, loud errors, single warnings and the report."""

from __future__ import annotations

import subprocess
import sys
import types
import warnings

import pytest
import torch

from gan3dkit.ops import _backend, backend_report, bias_act, sample_from_planes
from gan3dkit.ops.triplane import generate_planes


def _fake_cuda_tensor() -> types.SimpleNamespace:
    """Stand-in carrying a CUDA device, so the CUDA branch of resolve_impl runs on a CPU-only machine."""
    return types.SimpleNamespace(device=torch.device("cuda"))


@pytest.fixture
def fresh_state(monkeypatch):
    """Isolate the module caches (loaded core, warned ops) from other tests."""
    monkeypatch.setattr(_backend, "_state", {})
    monkeypatch.setattr(_backend, "_warned_ops", set())


def _fake_core(monkeypatch, module, reason="fake core"):
    monkeypatch.setattr(_backend, "_state", {"module": module, "reason": reason})
    monkeypatch.setattr(_backend, "_warned_ops", set())


@pytest.mark.parametrize(
    "call",
    [
        lambda: sample_from_planes(
            generate_planes(), torch.randn(1, 3, 2, 4, 4), torch.zeros(1, 5, 3), impl="compiled"
        ),
    ],
)
def test_compiled_without_kernel_raises_clear_error(call):
    with pytest.raises(RuntimeError, match=r"compiled core is not available.*no compiled kernel.*impl='ref'"):
        call()


def test_compiled_with_no_extension_env_raises(monkeypatch, fresh_state):
    monkeypatch.setenv(_backend.NO_EXTENSION_ENV, "1")
    with pytest.raises(RuntimeError, match=_backend.NO_EXTENSION_ENV):
        _backend.resolve_impl("mip_ray_march", "compiled", torch.zeros(1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _backend.resolve_impl("mip_ray_march", "auto", torch.zeros(1)) == "ref"
    assert _backend.NO_EXTENSION_ENV in backend_report()["mip_ray_march"]["reason"]


def test_auto_on_cpu_uses_ref_without_warning_for_non_default_ops():
    x = torch.randn(2, 3, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _backend.resolve_impl("sample_from_planes", "auto", x) == "ref"
        out = bias_act(x, act="relu")
    torch.testing.assert_close(out, torch.relu(x) * 2**0.5)


def test_failed_build_warns_once_per_op_with_reason(monkeypatch):
    _fake_core(monkeypatch, None, "build failed: c++: fatal error: boom")
    cpu = torch.zeros(1)
    with pytest.warns(RuntimeWarning, match=r"mip_ray_march.*boom") as record:
        assert _backend.resolve_impl("mip_ray_march", "auto", cpu) == "ref"
        assert _backend.resolve_impl("mip_ray_march", "auto", cpu) == "ref"
    assert len(record) == 1 and "impl='ref'" in str(record[0].message)
    with pytest.warns(RuntimeWarning, match="triplane_decode") as record2:
        _backend.resolve_impl("triplane_decode", "auto", cpu)
        _backend.resolve_impl("mip_ray_march", "auto", cpu)
    assert len(record2) == 1


def test_auto_on_cuda_without_cuda_kernels_warns_once(monkeypatch):
    fake = types.ModuleType("fake_core")
    fake.with_cuda = False
    fake.ray_march_fwd = lambda *a: None
    _fake_core(monkeypatch, fake)
    with pytest.warns(RuntimeWarning, match=r"mip_ray_march.*without CUDA") as record:
        assert _backend.resolve_impl("mip_ray_march", "auto", _fake_cuda_tensor()) == "ref"
        assert _backend.resolve_impl("mip_ray_march", "auto", _fake_cuda_tensor()) == "ref"
    assert len(record) == 1
    assert _backend.resolve_impl("mip_ray_march", "auto", torch.zeros(1)) == "compiled"


def test_invalid_impl_and_op_name():
    with pytest.raises(ValueError, match="impl must be one of"):
        _backend.resolve_impl("bias_act", "cuda", torch.zeros(1))
    with pytest.raises(ValueError, match="Unknown op"):
        _backend.compiled_available("nope")


def test_backend_report_lists_every_op_per_device(monkeypatch):
    fake = types.ModuleType("fake_core")
    fake.with_cuda = True
    fake.triplane_decode_fwd = fake.ray_march_fwd = fake.sample_pdf_fwd = lambda *a: None
    _fake_core(monkeypatch, fake)
    report = backend_report()
    assert set(report) == set(_backend.OP_NAMES)
    for name, entry in report.items():
        assert set(entry) == {"cpu", "cuda", "compiled_available", "reason"}
        has_kernel = name in ("triplane_decode", "mip_ray_march", "sample_pdf")
        assert entry["compiled_available"] is has_kernel
        assert entry["cpu"] == ("compiled" if has_kernel and name in _backend.CPU_DEFAULT else "ref")
        assert entry["cuda"] == ("compiled" if has_kernel else "ref")


def test_report_does_not_compile(monkeypatch, fresh_state, tmp_path):
    monkeypatch.setenv("GAN3DKIT_EXTENSIONS_DIR", str(tmp_path))  # an empty cache
    monkeypatch.setitem(sys.modules, _backend.PREBUILT_MODULE, None)  # no prebuilt core either
    from gan3dkit.ops import _build

    monkeypatch.setattr(_build, "load", lambda *a, **k: pytest.fail("backend_report must not build"))
    report = backend_report()
    assert all(not e["compiled_available"] for e in report.values())
    reason = report["mip_ray_march"]["reason"]
    assert "not built yet" in reason or "no C++ compiler" in reason


def test_import_is_cheap_and_does_not_load_compiled_core():
    code = (
        "import sys, gan3dkit, gan3dkit.ops, gan3dkit.networks; "
        "assert not any(m.startswith('gan3dkit_ops_') for m in sys.modules); "
        "assert 'torch.utils.cpp_extension' not in sys.modules; print('ok')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
