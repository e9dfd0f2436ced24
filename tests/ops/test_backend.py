# SPDX-License-Identifier: Apache-2.0
"""Tests for the backend registry: impl selection, loud errors, single warnings and the report."""

from __future__ import annotations

import subprocess
import sys
import types
import warnings

import pytest
import torch

from gan3dkit.ops import _backend, backend_report, bias_act, mip_ray_march, sample_from_planes, sample_pdf, upfirdn2d
from gan3dkit.ops.triplane import generate_planes


def _fake_cuda_tensor() -> types.SimpleNamespace:
    """Stand-in carrying a CUDA device, so the CUDA branch of resolve_impl runs on a CPU-only machine."""
    return types.SimpleNamespace(device=torch.device("cuda"))


@pytest.mark.parametrize(
    "call",
    [
        lambda: bias_act(torch.randn(2, 3), impl="compiled"),
        lambda: upfirdn2d(torch.randn(1, 1, 4, 4), None, impl="compiled"),
        lambda: sample_from_planes(
            generate_planes(), torch.randn(1, 3, 2, 4, 4), torch.zeros(1, 5, 3), impl="compiled"
        ),
        lambda: mip_ray_march(torch.rand(1, 2, 4, 3), torch.randn(1, 2, 4, 1), torch.rand(1, 2, 4, 1), impl="compiled"),
        lambda: sample_pdf(torch.linspace(0, 1, 5).expand(2, 5), torch.rand(2, 4), 3, impl="compiled"),
    ],
)
def test_compiled_raises_clear_error(call):
    with pytest.raises(RuntimeError, match=r"compiled core is not available.*impl='ref'"):
        call()


def test_auto_on_cpu_uses_ref_without_warning():
    x = torch.randn(2, 3, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _backend.resolve_impl("bias_act", "auto", x) == "ref"
        out = bias_act(x, act="relu")
    torch.testing.assert_close(out, torch.relu(x) * 2**0.5)


def test_auto_on_cuda_without_compiled_warns_once_per_op(monkeypatch):
    monkeypatch.setattr(_backend, "_warned_ops", set())
    fake = _fake_cuda_tensor()
    with pytest.warns(RuntimeWarning, match="bias_act") as record:
        assert _backend.resolve_impl("bias_act", "auto", fake) == "ref"
        assert _backend.resolve_impl("bias_act", "auto", fake) == "ref"
    assert len(record) == 1
    assert "impl='ref'" in str(record[0].message)
    with pytest.warns(RuntimeWarning, match="upfirdn2d") as record2:
        _backend.resolve_impl("upfirdn2d", "auto", fake)
        _backend.resolve_impl("bias_act", "auto", fake)
    assert len(record2) == 1


def test_invalid_impl_and_op_name():
    with pytest.raises(ValueError, match="impl must be one of"):
        _backend.resolve_impl("bias_act", "cuda", torch.zeros(1))
    with pytest.raises(ValueError, match="Unknown op"):
        _backend.compiled_available("nope")


def test_backend_report_lists_every_op():
    report = backend_report()
    assert set(report) == set(_backend.OP_NAMES)
    assert {"bias_act", "upfirdn2d", "sample_from_planes", "mip_ray_march", "sample_pdf"} <= set(report)
    for entry in report.values():
        assert entry == {"active": "ref", "compiled_available": False, "reason": entry["reason"]}
        assert "not built" in entry["reason"]


def test_no_extension_env_is_reported(monkeypatch):
    monkeypatch.setenv(_backend.NO_EXTENSION_ENV, "1")
    assert _backend.NO_EXTENSION_ENV in backend_report()["bias_act"]["reason"]


def test_fake_compiled_module_slots_in(monkeypatch):
    """A future gan3dkit._C exposing an op is picked up without touching callers."""
    calls = []
    fake = types.ModuleType(_backend.COMPILED_MODULE)
    fake.bias_act = lambda x, b, dim, act, alpha, gain, clamp: calls.append((act, alpha, gain)) or x * 0 + 7
    monkeypatch.setitem(sys.modules, _backend.COMPILED_MODULE, fake)
    assert _backend.compiled_available("bias_act")
    assert not _backend.compiled_available("upfirdn2d")
    assert _backend.resolve_impl("bias_act", "auto", _fake_cuda_tensor()) == "compiled"
    assert _backend.resolve_impl("bias_act", "auto", torch.zeros(1)) == "ref"
    out = bias_act(torch.zeros(3), act="lrelu", impl="compiled")
    assert torch.equal(out, torch.full((3,), 7.0))
    assert calls == [("lrelu", 0.2, 2**0.5)]
    report = backend_report()
    assert report["bias_act"]["active"] == "compiled" and report["upfirdn2d"]["active"] == "ref"


def test_import_is_cheap_and_does_not_load_compiled_core():
    code = (
        "import sys, gan3dkit.ops; "
        "assert 'gan3dkit._C' not in sys.modules; "
        "assert 'torch.utils.cpp_extension' not in sys.modules; print('ok')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
