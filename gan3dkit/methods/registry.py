"""Method registry: name -> MethodSpec (description + a builder of the method's runtime pieces)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

import torch


class MethodRuntime(Protocol):
    """What the generic trainer needs from a method."""

    G: torch.nn.Module
    D: torch.nn.Module
    loss: Any  # has step_state(nimg) and accumulate_gradients(phase, real, real_c, gen_z, gen_c, gain, state)

    def fake_cameras(self, n: int) -> torch.Tensor:
        """[n, 25] rendering cameras for fake images (the hook pose-free methods override)."""
        ...


@dataclass(frozen=True)
class MethodSpec:
    name: str
    description: str
    build: Callable[..., MethodRuntime]
    """build(generator_cfg, discriminator_cfg, loss_cfg, batch, dataset_cameras [N, 25], device) -> runtime."""


def _eg3d_build(*args: Any, **kwargs: Any) -> MethodRuntime:
    from .eg3d_method import build_eg3d

    return build_eg3d(*args, **kwargs)


METHODS: dict[str, MethodSpec] = {
    "eg3d": MethodSpec(
        "eg3d", "EG3D with known camera poses: fakes rendered at poses drawn from the dataset labels", _eg3d_build
    ),
}


def get_method(name: str) -> MethodSpec:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; available: {', '.join(METHODS)}")
    return METHODS[name]
