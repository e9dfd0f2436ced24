"""Fixtures for the network tests: one CPU thread (faster on small VMs), tiny presets and camera labels."""

from __future__ import annotations

import pytest
import torch

from gan3dkit.networks import get_preset

from ._helpers import camera_labels


@pytest.fixture(autouse=True)
def _single_thread():
    """Small ops are much faster single-threaded on 2-core CI machines; restore the setting afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_preset():
    return get_preset("tiny")


@pytest.fixture
def labels4() -> torch.Tensor:
    return camera_labels([-0.3, 0.0, 0.2, 0.4], pitch=-0.1)
