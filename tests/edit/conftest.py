"""A tiny random-weight generator checkpoint for the edit tests (no training: the tests check mechanics)."""

from __future__ import annotations

import pytest
import torch

from gan3dkit.networks import TriPlaneGenerator
from gan3dkit.train.checkpoint import save_checkpoint
from gan3dkit.train.config import train_preset


@pytest.fixture(autouse=True)
def _reference_ops(monkeypatch):
    """Pure-PyTorch ops in these tests, set per test so the choice never leaks into tests/ops."""
    monkeypatch.setenv("GAN3DKIT_NO_EXTENSION", "1")


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    cfg = train_preset("tiny")
    G = TriPlaneGenerator(cfg.generator).eval()
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    save_checkpoint(path, {"G_ema": G}, {}, cfg.to_dict(), {"nimg": 0, "step": 0, "tick": 0, "nrr": 16},
                    include_rng=False)  # fmt: skip
    return path
