"""Shared pytest fixtures: tiny datasets with real cameras, built in tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from gan3dkit.cameras import get_prior
from gan3dkit.data import DatasetWriter

# The suite is many small tensor ops: one intra-op thread is fastest, and on a 2-core machine a second OpenMP
# thread busy-waits against any other process (measured 2.5-30x slower under load).
torch.set_num_threads(1)


def make_dataset(path: Path, n: int = 6, resolution: int = 16, fields=("image", "camera"), seed: int = 0,
                 commit_every: int = 4) -> tuple[Path, dict[str, np.ndarray]]:
    """Write a small dataset with random images and cameras from the synthetic_heads prior; return it and its data."""
    rng = np.random.default_rng(seed)
    cams = get_prior("synthetic_heads").sample(n, torch.Generator().manual_seed(seed)).to_label().numpy()
    data = {
        "image": rng.integers(0, 256, (n, resolution, resolution, 3), dtype=np.uint8),
        "camera": cams,
        "ypr": rng.normal(size=(n, 3)).astype(np.float32),
        "mask": (rng.random((n, resolution, resolution)) > 0.5).astype(np.uint8) * 255,
        "depth": rng.uniform(2.0, 3.0, (n, resolution, resolution)).astype(np.float32),
        "latent": rng.normal(size=(n, 5)).astype(np.float32),
        "name": np.array([f"img{i}" for i in range(n)]),
    }
    data["depth"][data["mask"] == 0] = np.inf
    with DatasetWriter(path, resolution=resolution, fields=list(fields), latent_dim=5,
                       pose_prior=get_prior("synthetic_heads").to_dict(), source="test",
                       commit_every=commit_every) as w:
        for i in range(n):
            extra = {f: (str(data[f][i]) if f == "name" else data[f][i])
                     for f in fields if f not in ("image", "camera")}
            w.add(data["image"][i], data["camera"][i], **extra)
    return path, data


@pytest.fixture
def dataset_factory(tmp_path):
    def factory(name: str = "d.lmdb", **kwargs):
        return make_dataset(tmp_path / name, **kwargs)
    return factory
