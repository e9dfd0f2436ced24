"""Fixtures for the inversion tests: a seeded micro EG3D (32² output, 16² rendering), its checkpoint, targets."""

from __future__ import annotations

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _reference_ops(monkeypatch):
    """Pure-PyTorch ops in these tests, set per test so the choice never leaks into tests/ops."""
    monkeypatch.setenv("GAN3DKIT_NO_EXTENSION", "1")


MICRO = ["generator.img_resolution=32", "generator.neural_rendering_resolution=16",
         "generator.triplane_resolution=32", "discriminator.img_resolution=32"]


def micro_config():
    from gan3dkit.train.config import train_preset
    from gan3dkit.utils.config import apply_overrides

    return apply_overrides(train_preset("tiny"), MICRO)


@pytest.fixture(scope="session")
def micro_ckpt(tmp_path_factory):
    """(checkpoint path, generator) of a randomly initialised micro generator (seed 0), saved the trainer's way."""
    from gan3dkit.generate.loading import load_generator
    from gan3dkit.networks import TriPlaneGenerator
    from gan3dkit.train.checkpoint import save_checkpoint

    cfg = micro_config()
    torch.manual_seed(0)
    G = TriPlaneGenerator(cfg.generator).eval()
    path = save_checkpoint(tmp_path_factory.mktemp("gen") / "checkpoint.safetensors", {"G_ema": G}, {},
                           cfg.to_dict(), {"nimg": 0, "step": 0, "tick": 0, "nrr": 16}, include_rng=False)
    G, _ = load_generator(path)
    return path, G


@pytest.fixture()
def G(micro_ckpt):
    return micro_ckpt[1]


def render_target(G, yaw: float, seed: int = 1, pitch: float = 0.0):
    """(image [1, 3, 32, 32], ws, camera [1, 25], depth) of G's own sample at a known pose (const noise)."""
    from gan3dkit.generate.views import view_cameras

    cam = view_cameras(G, [yaw], pitch, "cpu").to_label()
    with torch.no_grad():
        z = torch.from_numpy(__import__("numpy").random.RandomState(seed).randn(1, G.z_dim)).float()
        ws = G.mapping(z, view_cameras(G, [0.0], 0.0, "cpu").to_label())
        out = G.synthesis(ws, cam, noise_mode="const", deterministic_render=True)
    return out["image"], ws, cam, out["image_depth"]
