"""Where a generator puts its camera: per-seed view centres (learned | prior | frontal) and pose histograms."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..cameras.priors import PosePrior
from ..methods.registry import learned_pose_methods
from .views import seed_latent

if TYPE_CHECKING:
    from ..networks.generator import TriPlaneGenerator

POSE_MODES = ("frontal", "learned", "prior")


@torch.no_grad()
def learned_angles(G: TriPlaneGenerator, z: torch.Tensor) -> torch.Tensor:  # z [B, z_dim] -> (h, v) [B, 2]
    """EG3D angles G's pose mapping picks for z (from the untruncated w)."""
    if getattr(G, "pose_mapping", None) is None:
        raise ValueError("--pose learned needs a generator with a learned pose (a run of "
                         f"{' or '.join(learned_pose_methods())})")
    ws = G.mapping(z, torch.zeros(len(z), G.c_dim, device=z.device))
    return G.pose_mapping(ws[:, 0])


def seed_pose_centers(G: TriPlaneGenerator, seeds: list[int], mode: str, prior: PosePrior | None = None
                      ) -> list[tuple[float, float]] | None:
    """(yaw, pitch) offsets from frontal per seed: G's own pose (learned), a prior draw seeded by the seed, or None
    (frontal)."""
    if mode not in POSE_MODES:
        raise ValueError(f"--pose must be one of {', '.join(POSE_MODES)}, got {mode!r}")
    if mode == "frontal":
        return None
    if mode == "prior":
        if prior is None:
            raise ValueError("--pose prior needs a prior: the checkpoint records none (train a pose-free method)")
        hv = [prior.sample_hv(1, torch.Generator().manual_seed(s)) for s in seeds]
        return [(float(h[0]) - math.pi / 2, float(v[0]) - math.pi / 2) for h, v in hv]
    device = next(G.parameters()).device
    learned = learned_angles(G, torch.cat([seed_latent(G, s) for s in seeds]).to(device)).cpu()
    return [(float(h) - math.pi / 2, float(v) - math.pi / 2) for h, v in learned]


def learned_pose_samples(G: TriPlaneGenerator, n: int = 2000, seed: int = 0, batch: int = 256) -> np.ndarray:
    """[n, 2] (yaw, pitch) offsets from frontal of G's learned pose for z ~ N(0, I)."""
    device = next(G.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for start in range(0, n, batch):
        z = torch.randn(min(batch, n - start), G.z_dim, generator=gen).to(device)
        rows.append(learned_angles(G, z).cpu() - math.pi / 2)
    return torch.cat(rows).numpy()


def pose_histogram(path: str | Path, series: dict[str, np.ndarray]) -> Path:
    """A PNG of yaw and pitch histograms, one line per series ({label: [N, 2] (yaw, pitch) offsets, radians})."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    for ax, k, name in ((axes[0], 0, "yaw"), (axes[1], 1, "pitch")):
        values = np.concatenate([s[:, k] for s in series.values()])
        lo, hi = np.percentile(values, [0.5, 99.5])
        bins = np.linspace(lo - 0.05, hi + 0.05, 41)
        for label, s in series.items():
            ax.hist(s[:, k], bins=bins, density=True, histtype="step", linewidth=1.6, label=label)
        ax.set_xlabel(f"{name} offset from frontal (rad)")
    axes[0].set_ylabel("density")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
    return path


def dataset_pose_samples(data: str | Path) -> tuple[np.ndarray, str]:
    """[N, 2] (yaw, pitch) offsets of a dataset's camera labels, and its camera_source."""
    from ..data.reader import LMDBDataset
    from ..methods.posefree import pose_angles

    ds = LMDBDataset(data, fields=["camera"])
    angles = pose_angles(ds.cameras().double()).numpy()  # (pitch, yaw)
    return np.stack([angles[:, 1], angles[:, 0]], axis=1), ds.camera_source


def prior_pose_samples(prior: PosePrior, n: int = 2000) -> np.ndarray:
    h, v = prior.sample_hv(n, torch.Generator().manual_seed(0))
    return torch.stack([h - math.pi / 2, v - math.pi / 2], dim=1).numpy()


def histogram_series(G: TriPlaneGenerator, prior: dict[str, Any] | None, data: str | Path | None,
                     n: int = 2000) -> dict[str, np.ndarray]:
    """The series a person compares: G's learned poses (if any), the training prior (if any), the dataset's labels."""
    series: dict[str, np.ndarray] = {}
    if getattr(G, "pose_mapping", None) is not None:
        series["learned (G)"] = learned_pose_samples(G, n)
    if prior:
        series[f"prior {prior.get('name', '')}"] = prior_pose_samples(PosePrior.from_dict(prior), n)
    if data is not None:
        samples, source = dataset_pose_samples(data)
        series[f"dataset labels ({source})"] = samples
    if not series:
        raise ValueError("nothing to plot: the model has no learned pose or prior; pass --data for the dataset's")
    return series
