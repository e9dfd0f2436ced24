"""Rebuild a generator from a checkpoint: the config from its JSON header, the weights from safetensors."""

from __future__ import annotations

from pathlib import Path

import torch

from ..networks import TriPlaneGenerator
from ..train.checkpoint import CheckpointError, check_finite, expect_kind, load_tensors, read_header
from ..train.config import TrainConfig


def load_generator(
    path: str | Path, device: str | torch.device = "cpu", which: str = "G_ema", option: str = "--ckpt"
) -> tuple[TriPlaneGenerator, TrainConfig]:
    """(generator in eval mode, its TrainConfig) from a gan3dkit checkpoint; code is never unpickled. Another kind
    of file (an encoder, a dataset folder, ...) is a usage error naming `option` and what the file holds."""
    expect_kind(path, "generator", option)
    header = read_header(path)
    cfg = TrainConfig.from_dict(header["config"])
    try:
        cfg.validate()
    except ValueError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    G = TriPlaneGenerator(cfg.generator)
    sd = load_tensors(path, which)
    if not sd:
        raise CheckpointError(f"{path} holds no {which!r} weights (modules: {header['modules']})")
    check_finite(path, sd, which)
    missing, unexpected = G.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: {which} does not match its config: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    return G.to(device).eval().requires_grad_(False), cfg
