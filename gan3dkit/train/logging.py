"""Training records: JSONL stats per tick, TensorBoard events when installed, sample grids (rgb, raw, depth)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..utils.files import atomic_save_png
from ..utils.visual import depth_to_rgb, make_grid


class StatsLog:
    """Appends one JSON object per tick to stats.jsonl; mirrors numbers to TensorBoard if it is installed."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / "stats.jsonl"
        self.tb = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(run_dir / "tensorboard"))
        except Exception:  # tensorboard not installed: JSONL only
            self.tb = None

    def write(self, record: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if self.tb is not None:
            for k, v in record.items():
                if isinstance(v, (int, float)) and k != "kimg":
                    self.tb.add_scalar(k, v, global_step=int(record["kimg"] * 1000))
            self.tb.flush()


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """[-1, 1] float [C, H, W] -> uint8 [H, W, 3]."""
    x = ((img.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(1, 2, 0).cpu().numpy()


@torch.no_grad()
def render_grid(
    G: torch.nn.Module, z: torch.Tensor, c: torch.Tensor, ncols: int = 4, psi: float = 1.0, nrr: int | None = None
) -> dict[str, np.ndarray]:
    """Render fixed latents at fixed cameras: {'rgb', 'raw', 'depth'} uint8 grids (depth: near = bright).

    Runs under `torch.random.fork_rng` so it never changes the training RNG stream (exact resume).
    """
    with torch.random.fork_rng(devices=[z.device] if z.is_cuda else []):
        torch.manual_seed(0)
        ws = G.mapping(z, c, truncation_psi=psi)
        out = G.synthesis(ws, c, neural_rendering_resolution=nrr)
    size = out["image"].shape[-1]
    rgb = [to_uint8(x) for x in out["image"]]
    raw = [to_uint8(x) for x in F.interpolate(out["image_raw"], size=size, mode="nearest")]
    depth = F.interpolate(out["image_depth"], size=size, mode="nearest")[:, 0].cpu().numpy()
    dep = [depth_to_rgb(d) for d in depth]
    return {"rgb": make_grid(rgb, ncols), "raw": make_grid(raw, ncols), "depth": make_grid(dep, ncols)}


def save_grids(grids: dict[str, np.ndarray], run_dir: Path, kimg: float) -> list[Path]:
    tag = f"{int(round(kimg * 1000)):09d}"
    names = {"rgb": f"fakes{tag}.png", "raw": f"fakes{tag}_raw.png", "depth": f"fakes{tag}_depth.png"}
    return [atomic_save_png(run_dir / "samples" / names[k], v) for k, v in grids.items()]
