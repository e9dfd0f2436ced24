"""The backend policy: TF32 / cudnn.benchmark are set only while a run lasts and restored after; one place decides."""

from __future__ import annotations

import pytest
import torch

from gan3dkit.utils import backends


def _flags():
    return (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark)


@pytest.fixture
def restore_flags():
    saved = _flags()
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark = saved


@pytest.mark.parametrize("before", [(False, False, False), (True, True, True), (False, True, False)])
def test_scoped_sets_then_restores_even_on_error(restore_flags, before):
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark = before
    with backends.scoped(backends.BackendPolicy(allow_tf32=True, cudnn_benchmark=True)):
        assert _flags() == (True, True, True)
    assert _flags() == before
    with pytest.raises(ZeroDivisionError), backends.scoped(backends.BackendPolicy(allow_tf32=False)):
        assert _flags() == (False, False, True)
        1 / 0  # noqa: B018
    assert _flags() == before


def test_per_device_choices():
    assert backends.pin_memory(torch.device("cpu")) is False
    assert backends.pin_memory(torch.device("cuda", 0)) is True
    assert backends.dist_backend(False) == "gloo"
    assert backends.dist_backend(True) == ("nccl" if torch.distributed.is_nccl_available() else "gloo")
    report = backends.report()
    assert report["current_flags"]["matmul_tf32"] == torch.backends.cuda.matmul.allow_tf32
