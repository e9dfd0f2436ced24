"""Fixtures for training tests: a small synthetic heads dataset and a reduced tiny config."""

from __future__ import annotations

import pytest
import torch

from gan3dkit.prepare.synthetic import build_synthetic
from gan3dkit.train.config import TrainConfig, train_preset
from gan3dkit.utils.config import apply_overrides


@pytest.fixture(scope="session")
def heads_lmdb(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "heads.lmdb"
    return build_synthetic(path, family="heads", num=16, resolution=64, ssaa=1, resume=False)


def small_config(data, out, method: str = "eg3d", **extra: object) -> TrainConfig:
    """The tiny preset for `method`, made cheaper still (fewer samples, lazy regs every 2/3 steps so every phase
    runs)."""
    overrides = [
        f'data="{data}"',
        f'out="{out}"',
        "run.workers=0",
        "run.cpu_threads=1",
        "run.tick_kimg=0.004",
        "run.snapshot_ticks=1",
        "run.grid_size=4",
        "optim.g_reg_interval=2",
        "optim.d_reg_interval=3",
        "generator.rendering.depth_resolution=6",
        "generator.rendering.depth_resolution_importance=6",
        "loss.density_reg_points=64",
    ]
    overrides += [f"{k.replace('__', '.')}={v}" for k, v in extra.items()]
    return apply_overrides(train_preset("tiny", method), overrides)


@pytest.fixture(scope="session")
def prior_heads(heads_lmdb, tmp_path_factory):
    """The same 16 images imported by `prepare folder` without labels: cameras sampled from a prior."""
    from PIL import Image

    from gan3dkit.data.reader import DatasetReader
    from gan3dkit.prepare.folders import build_folder

    folder = tmp_path_factory.mktemp("pngs")
    reader = DatasetReader(heads_lmdb)
    for i in range(len(reader)):
        Image.fromarray(reader.read(i, ["image"])["image"]).save(folder / f"{i:03d}.png")
    path, _ = build_folder([folder], tmp_path_factory.mktemp("pdata") / "prior.lmdb", resolution=64,
                           prior="synthetic_heads", workers=0)
    return path


@pytest.fixture
def make_config():
    """small_config(data, out, section__key=value, ...) as a fixture (test modules need no package imports)."""
    return small_config


def assert_same_training_state(a_dir, b_dir) -> dict:
    """Two runs' checkpoints hold bit-equal G, D, G_ema and optimiser states; returns the first one's tensors."""
    from gan3dkit.train.checkpoint import load_tensors

    a = load_tensors(a_dir / "checkpoint.safetensors")
    b = load_tensors(b_dir / "checkpoint.safetensors")
    weights = [k for k in a if k.split(".")[0] in ("G", "D", "G_ema") or k.startswith("opt.")]
    assert len(weights) > 50
    for k in weights:
        assert torch.equal(a[k], b[k]), k
    return a


@pytest.fixture
def same_training_state():
    """`assert_same_training_state` as a fixture."""
    return assert_same_training_state
