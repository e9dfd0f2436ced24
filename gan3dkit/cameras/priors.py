"""Dataset-level camera pose priors (EG3D (h, v) angles) and the named presets shipped in `data_specs/`."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch

from ..specs import load_spec
from .camera import Cameras
from .samplers import gaussian_angles, lookat_cam2world, uniform_angles

AngleKind = Literal["fixed", "gaussian", "uniform"]


@dataclass(frozen=True)
class AngleDist:
    """One EG3D angle's distribution: gaussian N(mean, std); uniform U[mean - std, mean + std]; fixed = mean."""

    kind: AngleKind
    mean: float = math.pi / 2
    std: float = 0.0
    note: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("fixed", "gaussian", "uniform"):
            raise ValueError(f"angle distribution kind must be fixed|gaussian|uniform, got {self.kind!r}")
        if not (self.std >= 0.0 and math.isfinite(self.mean) and math.isfinite(self.std)):
            raise ValueError(f"angle distribution needs finite mean and std >= 0, got {self.mean}, {self.std}")

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:  # [n] float64
        if self.kind == "gaussian":
            return gaussian_angles(self.mean, self.std, n, generator)
        if self.kind == "uniform":
            return uniform_angles(self.mean, self.std, n, generator)
        return torch.full((n,), self.mean, dtype=torch.float64)


@dataclass(frozen=True)
class PosePrior:
    """Camera pose prior p_xi: EG3D angles h (yaw) and v (pitch), a radius, a focal and a look-at point."""

    name: str
    yaw: AngleDist
    pitch: AngleDist
    radius: float = 2.7
    focal: float = 4.2647
    lookat: tuple[float, float, float] = (0.0, 0.0, 0.0)
    description: str = ""
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def sample_hv(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample EG3D angles (h [n], v [n]); yaw first, then pitch, from the same generator."""
        return self.yaw.sample(n, generator), self.pitch.sample(n, generator)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Cameras:
        """Sample `n` cameras with EG3D's LookAt formula (float32)."""
        h, v = self.sample_hv(n, generator)
        c2w = lookat_cam2world(h, v, self.radius, self.lookat).float()
        return Cameras.from_matrices(c2w, self.focal)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["lookat"] = list(self.lookat)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], name: str | None = None) -> PosePrior:
        """Parse a prior record (data_specs `pose_prior_fields`); unknown keys are an error."""
        known = {"name", "yaw", "pitch", "radius", "focal", "lookat", "description", "source", "extra"}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown pose prior fields: {sorted(unknown)}")
        try:
            return cls(
                name=str(name if name is not None else d["name"]),
                yaw=AngleDist(**d["yaw"]),
                pitch=AngleDist(**d["pitch"]),
                radius=float(d.get("radius", 2.7)),
                focal=float(d.get("focal", 4.2647)),
                lookat=tuple(float(x) for x in d.get("lookat", (0.0, 0.0, 0.0))),  # type: ignore[arg-type]
                description=str(d.get("description", "")),
                source=str(d.get("source", "")),
                extra=dict(d.get("extra", {})),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed pose prior record: {exc}") from exc


def prior_names() -> list[str]:
    """Names of the shipped presets (seed 000 Table C priors and the synthetic families' priors)."""
    return sorted(load_spec()["pose_prior_presets"])


def get_prior(name: str) -> PosePrior:
    """A fresh `PosePrior` for a named preset; raises ValueError listing the valid names."""
    presets = load_spec()["pose_prior_presets"]
    if name not in presets:
        raise ValueError(f"unknown pose prior {name!r}; choose one of: {', '.join(sorted(presets))}")
    return PosePrior.from_dict(presets[name], name=name)
