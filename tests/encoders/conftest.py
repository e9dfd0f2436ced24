"""Fixtures for the encoder tests: a micro generator checkpoint (32² images, 8x32² planes) and a distilled encoder."""

from __future__ import annotations

import pytest
from encoder_helpers import make_generator_ckpt, micro_distill


@pytest.fixture(autouse=True)
def _reference_ops(monkeypatch):
    """Pure-PyTorch ops in these tests, set per test so the choice never leaks into tests/ops."""
    monkeypatch.setenv("GAN3DKIT_NO_EXTENSION", "1")


@pytest.fixture(scope="session")
def micro_gen(tmp_path_factory):
    return make_generator_ckpt(tmp_path_factory.mktemp("gen") / "g.safetensors")


@pytest.fixture(scope="session")
def lp3d_ckpt(micro_gen, tmp_path_factory):
    """An LP3D-LT encoder distilled for 2 steps (enough for the CLI round trips)."""
    from gan3dkit.encoders.distill import distill

    out = tmp_path_factory.mktemp("enc")
    distill(micro_distill("lp3d-lt", micro_gen, out, run__steps=2), resume=False, device="cpu")
    return out / "checkpoint.safetensors"
