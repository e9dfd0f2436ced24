"""Tiny EG3D-format snapshots built from gan3dkit modules (shared by the convert and edit tests)."""

from __future__ import annotations

import pytest
import torch

from gan3dkit.networks import DualDiscriminator, TriPlaneGenerator, get_preset

from .eg3d_format import snapshot_bytes


@pytest.fixture(autouse=True)
def _reference_ops(monkeypatch):
    """Pure-PyTorch ops in these tests, set per test so the choice never leaks into tests/ops."""
    monkeypatch.setenv("GAN3DKIT_NO_EXTENSION", "1")


@pytest.fixture(scope="session")
def tiny_nets():
    torch.manual_seed(0)
    preset = get_preset("tiny")
    G, D = TriPlaneGenerator(preset.generator).eval(), DualDiscriminator(preset.discriminator).eval()
    with torch.no_grad():  # a non-zero w_avg so a swapped buffer would show
        G.backbone.mapping.w_avg.normal_()
    return G, D


@pytest.fixture(scope="session")
def snapshot_pkl(tiny_nets, tmp_path_factory):
    G, D = tiny_nets
    path = tmp_path_factory.mktemp("pkl") / "network-snapshot-000000.pkl"
    path.write_bytes(snapshot_bytes(G, D))
    return path
