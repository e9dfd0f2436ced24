"""The `eg3d` method: TriPlaneGenerator + DualDiscriminator, fake poses drawn from the dataset's cameras."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..networks import DualDiscriminator, TriPlaneGenerator
from ..networks.config import DiscriminatorConfig, GeneratorConfig
from .eg3d import EG3DLoss, LossConfig


@dataclass
class EG3DRuntime:
    G: torch.nn.Module
    D: torch.nn.Module
    loss: EG3DLoss
    cameras: torch.Tensor  # [N, 25] dataset labels (mirrored copies included when the dataset is x-flipped)

    def fake_cameras(self, n: int) -> torch.Tensor:
        """EG3D: the rendering camera of each fake is a dataset label drawn uniformly at random."""
        idx = torch.randint(len(self.cameras), (n,))
        return self.cameras[idx]


def build_eg3d(
    generator: GeneratorConfig,
    discriminator: DiscriminatorConfig,
    loss: LossConfig,
    batch: int,
    dataset_cameras: torch.Tensor,
    device: torch.device,
) -> EG3DRuntime:
    if dataset_cameras.ndim != 2 or dataset_cameras.shape[1] != 25 or len(dataset_cameras) == 0:
        raise ValueError("the eg3d method needs a dataset with camera labels")
    G = TriPlaneGenerator(generator).to(device)
    D = DualDiscriminator(discriminator).to(device)
    return EG3DRuntime(G, D, EG3DLoss(G, D, loss, batch), dataset_cameras.to(device))
