"""The `eg3d` method: TriPlaneGenerator + DualDiscriminator, fake poses drawn from the dataset's cameras."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..cameras import Cameras
from ..networks import DualDiscriminator, TriPlaneGenerator
from .eg3d import EG3DLoss
from .registry import BuildContext


@dataclass
class EG3DMethodConfig:
    """The `eg3d` method's config: EG3D has no settings beyond the shared sections (loss, generator, ...)."""


@dataclass
class EG3DRuntime:
    G: torch.nn.Module
    D: torch.nn.Module
    loss: EG3DLoss
    cameras: Cameras  # the dataset's cameras (mirrored copies included when the dataset is x-flipped)
    pose_prior: None = None

    def fake_cameras(self, n: int) -> Cameras:
        """EG3D: the rendering camera of each fake is a dataset camera drawn uniformly at random."""
        idx = torch.randint(len(self.cameras), (n,))
        return self.cameras[idx]

    def grid_cameras(self, n: int, generator: torch.Generator) -> Cameras:
        return self.cameras[torch.randint(len(self.cameras), (n,), generator=generator)]


def build_eg3d(ctx: BuildContext) -> EG3DRuntime:
    cams = ctx.cameras
    if cams is None or len(cams) == 0:
        raise ValueError("the eg3d method needs a dataset with camera labels")
    G = TriPlaneGenerator(ctx.generator).to(ctx.device)
    D = DualDiscriminator(ctx.discriminator).to(ctx.device)
    return EG3DRuntime(G, D, EG3DLoss(G, D, ctx.loss, ctx.batch), cams.to(ctx.device))
