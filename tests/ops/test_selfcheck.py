# SPDX-License-Identifier: Apache-2.0
"""The first-use self-check: a wrong kernel is disabled with one warning, verdicts are cached by key, env table."""

from __future__ import annotations

import functools
import json
import warnings

import pytest
import torch

from gan3dkit import ops
from gan3dkit.ops import _backend, selfcheck
from tests.ops import test_compiled as _compiled

ext = _compiled.ext  # the module-scoped fixture: skips without a C++ compiler, fails if the build fails

FAKE_GPU = selfcheck.DeviceRecord(name="Fake GPU 80GB", capability="sm_90", torch=torch.__version__, cuda="12.8")


def _counting(fn):
    """fn with a call counter (how often the check really ran the kernel under test)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        wrapper.calls += 1
        return fn(*args, **kwargs)

    wrapper.calls = 0
    return wrapper


def _reference_bias_act(*args, **kwargs):
    return ops.bias_act(*args, **{**kwargs, "impl": "ref"})


def _wrong_bias_act(*args, **kwargs):  # off by 1e-3 relative: a subtly wrong kernel
    return _reference_bias_act(*args, **kwargs) * 1.001


def _wrong_second_order_bias_act(x, b, **kwargs):
    """Forward and first-order gradients exact at the probe point; the double backward (R1 through D) is wrong."""
    y = _reference_bias_act(x, b, **kwargs)
    return y + 0.05 * (x - x.detach()) ** 2


def _crashing_bias_act(*args, **kwargs):
    raise RuntimeError("CUDA error: an illegal memory access was encountered")


def _ensure(tmp_path, kernel, record=FAKE_GPU, src="src-a", verdicts=None, warned=None):
    return selfcheck.ensure(
        "bias_act", "cpu", kernel=kernel, record=record, cache_dir=tmp_path, src=src,
        verdicts={} if verdicts is None else verdicts, warned=set() if warned is None else warned,
    )


def test_a_correct_kernel_passes_every_order(tmp_path):
    kernel = _counting(_reference_bias_act)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        verdict = _ensure(tmp_path, kernel)
    assert verdict.ok and verdict.error == ""
    assert verdict.orders == 2
    assert {k.split("[")[0] for k in verdict.max_abs_err} == {"forward", "backward", "double_backward"}
    assert kernel.calls == 1


@pytest.mark.parametrize(
    "kernel,where",
    [(_wrong_bias_act, "forward[0]"), (_wrong_second_order_bias_act, "double_backward"), (_crashing_bias_act, "")],
)
def test_a_wrong_kernel_is_disabled_with_one_warning(tmp_path, kernel, where):
    verdicts, warned = {}, set()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        verdict = _ensure(tmp_path, kernel, verdicts=verdicts, warned=warned)
        again = _ensure(tmp_path, kernel, verdicts=verdicts, warned=warned)
    caught = [w for w in caught if issubclass(w.category, RuntimeWarning)]
    assert not verdict.ok and again is verdict
    assert len(caught) == 1  # exactly one warning for the op on this device
    message = str(caught[0].message)
    assert "gan3dkit.ops.bias_act" in message and "Fake GPU 80GB" in message and "disabled" in message
    assert where in verdict.error and verdict.error in message
    if kernel is _crashing_bias_act:
        assert "illegal memory access" in message


def test_verdicts_are_cached_by_source_device_and_versions(tmp_path):
    kernel = _counting(_wrong_bias_act)
    with pytest.warns(RuntimeWarning):
        _ensure(tmp_path, kernel)
    assert kernel.calls == 1
    files = list(tmp_path.glob("*.json"))
    assert len(files) == 1
    stored = json.loads(files[0].read_text())
    assert stored["ok"] is False and stored["device"]["name"] == "Fake GPU 80GB" and stored["source_hash"] == "src-a"
    # A new process (empty in-memory caches) with the same key reads the verdict from disk: no re-run, one warning.
    with pytest.warns(RuntimeWarning, match="bias_act"):
        _ensure(tmp_path, kernel)
    assert kernel.calls == 1
    # Any part of the key changing runs the check again.
    other_cap = selfcheck.DeviceRecord(name=FAKE_GPU.name, capability="sm_80", torch=FAKE_GPU.torch, cuda="12.8")
    other_cuda = selfcheck.DeviceRecord(name=FAKE_GPU.name, capability="sm_90", torch=FAKE_GPU.torch, cuda="13.0")
    other_name = selfcheck.DeviceRecord(name="Other GPU", capability="sm_90", torch=FAKE_GPU.torch, cuda="12.8")
    other_torch = selfcheck.DeviceRecord(name=FAKE_GPU.name, capability="sm_90", torch="9.9", cuda="12.8")
    for record, src in [(other_cap, "src-a"), (other_cuda, "src-a"), (other_name, "src-a"), (other_torch, "src-a"),
                        (FAKE_GPU, "src-b")]:
        with pytest.warns(RuntimeWarning):
            _ensure(tmp_path, kernel, record=record, src=src)
    assert kernel.calls == 6
    assert len(list(tmp_path.glob("*.json"))) == 6
    keys = {selfcheck.cache_key("bias_act", r, s) for r, s in [(FAKE_GPU, "a"), (FAKE_GPU, "b"), (other_cap, "a")]}
    assert len(keys) == 3 and selfcheck.cache_key("upfirdn2d", FAKE_GPU, "a") not in keys


def test_a_damaged_cache_entry_is_checked_again(tmp_path):
    kernel = _counting(_reference_bias_act)
    _ensure(tmp_path, kernel)
    (path,) = tmp_path.glob("*.json")
    path.write_text("{not json")
    _ensure(tmp_path, kernel)
    assert kernel.calls == 2 and json.loads(path.read_text())["ok"] is True


def test_backend_disables_a_failing_cuda_kernel_for_auto_and_raises_for_compiled(monkeypatch):
    """The dispatch glue, with the device verdict injected (no CUDA tensor can exist here)."""
    failing = selfcheck.Verdict(op="upfirdn2d", ok=False, error="AssertionError: forward[0]: mismatch",
                                device={"name": "Fake GPU 80GB", "capability": "sm_90"})
    monkeypatch.setattr(_backend, "_device_ok", {})
    monkeypatch.setattr(selfcheck, "ensure", lambda op, device: failing)
    ok, message = _backend._passes_selfcheck("upfirdn2d", torch.device("cuda", 0))
    assert not ok and "upfirdn2d" in message and "forward[0]: mismatch" in message
    monkeypatch.setattr(selfcheck, "ensure", lambda op, device: pytest.fail("the verdict is not cached"))
    assert _backend._passes_selfcheck("upfirdn2d", torch.device("cuda", 0))[0] is False


@pytest.mark.parametrize("op", sorted(selfcheck.ORDERS))
def test_every_compiled_cpu_kernel_passes_its_own_check(ext, op):
    verdict = selfcheck.run_check(op, "cpu")
    assert verdict.ok, verdict.error
    assert all(err < 1e-4 for err in verdict.max_abs_err.values())


def test_check_table_lists_every_op_on_every_device(ext, tmp_path):
    rows = selfcheck.check_table(devices=[torch.device("cpu")], cache_dir=tmp_path)
    assert [r["op"] for r in rows] == list(_backend.kernel_names())
    assert all(r["ok"] is True for r in rows), rows
    assert len(list(tmp_path.glob("*.json"))) == len(rows)


def test_env_check_prints_the_table_and_the_backend_policy(ext, monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from gan3dkit.cli.main import app

    monkeypatch.setattr(selfcheck, "default_cache_dir", lambda: tmp_path)
    res = CliRunner().invoke(app, ["env", "--check", "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    rows = info["selfcheck"]
    devices = {r["device"] for r in rows}
    assert len(devices) == 1 + torch.cuda.device_count()
    assert {r["op"] for r in rows} == set(selfcheck.ORDERS) and all(r["ok"] for r in rows)
    policy = info["backend_policy"]
    assert policy["training_policy"] == {"allow_tf32": True, "cudnn_benchmark": True}
    assert policy["pin_memory"] == {"cpu": False, "cuda": True} and policy["dist_backend"]["cpu"] == "gloo"
    text = CliRunner().invoke(app, ["env", "--check"]).stdout
    assert "kernel self-check" in text and "triplane_decode" in text and "backend policy" in text


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("op", sorted(selfcheck.ORDERS))
def test_every_cuda_kernel_passes_its_check(ext, op):
    verdict = selfcheck.run_check(op, "cuda")
    assert verdict.ok, verdict.error
