"""Shared by the released-encoder conversion tests: give a network non-trivial BN statistics, slopes and weights."""

from __future__ import annotations

import torch


def randomize(net: torch.nn.Module, seed: int = 1) -> None:
    """Random BN running statistics and affine, PReLU slopes, and values for any all-zero parameter (gan3dkit starts
    some heads at zero; a converted file must show every tensor)."""
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1, generator=g)
            m.running_var.uniform_(0.5, 1.5, generator=g)
            m.weight.data.uniform_(0.5, 1.5, generator=g)
        elif isinstance(m, torch.nn.PReLU):
            m.weight.data.uniform_(0.05, 0.4, generator=g)
    for p in net.parameters():
        if p.abs().sum() == 0:
            p.data.normal_(0, 0.05, generator=g)
