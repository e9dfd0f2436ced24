"""Training records: JSONL stats per tick, TensorBoard events when installed, sample grids (rgb, raw, depth)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F

from ..cameras.camera import Cameras
from ..utils.files import atomic_save_png, atomic_write_bytes
from ..utils.visual import depth_to_rgb, make_grid, to_uint8_hwc


class StatsLog:
    """Appends one JSON object per tick to stats.jsonl; mirrors numbers to TensorBoard if it is installed.

    `keep_until_step`: records of later steps are dropped first (a resumed run trains them again, so the log never
    repeats a step; a fresh run, step 0, starts a new log). A torn last line of a killed run is dropped too.
    """

    def __init__(self, run_dir: Path, keep_until_step: int | None = None) -> None:
        self.path = run_dir / "stats.jsonl"
        if keep_until_step is not None:
            truncate_stats(self.path, keep_until_step)
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


def truncate_stats(path: Path, step: int) -> int:
    """Keep the records of stats.jsonl with step <= `step` (rewritten atomically); returns how many were dropped."""
    if not path.exists():
        return 0
    kept, dropped = [], 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:  # a line torn by a kill
            dropped += 1
            continue
        if isinstance(rec, dict) and int(rec.get("step", 0)) <= step:
            kept.append(line)
        else:
            dropped += 1
    if dropped:
        atomic_write_bytes(path, "".join(line + "\n" for line in kept).encode())
    return dropped


@torch.no_grad()
def render_grid(
    G: torch.nn.Module, z: torch.Tensor, c: Cameras, ncols: int = 4, psi: float = 1.0, nrr: int | None = None
) -> dict[str, np.ndarray]:
    """Render fixed latents at fixed cameras: {'rgb', 'raw', 'depth'} uint8 grids (depth: near = bright).

    Runs under `torch.random.fork_rng` so it never changes the training RNG stream (exact resume).
    """
    with torch.random.fork_rng(devices=[z.device] if z.is_cuda else []):
        torch.manual_seed(0)
        mapping = cast(Callable[..., torch.Tensor], G.mapping)
        synthesis = cast(Callable[..., dict[str, torch.Tensor]], G.synthesis)
        ws = mapping(z, c.to_label(), truncation_psi=psi)
        out = synthesis(ws, c, neural_rendering_resolution=nrr)
    size = out["image"].shape[-1]
    rgb = list(to_uint8_hwc(out["image"]))
    raw = list(to_uint8_hwc(F.interpolate(out["image_raw"], size=size, mode="nearest")))
    depth = F.interpolate(out["image_depth"], size=size, mode="nearest")[:, 0].cpu().numpy()
    dep = [depth_to_rgb(d) for d in depth]
    return {"rgb": make_grid(rgb, ncols), "raw": make_grid(raw, ncols), "depth": make_grid(dep, ncols)}


def save_grids(grids: dict[str, np.ndarray], run_dir: Path, kimg: float) -> list[Path]:
    tag = f"{int(round(kimg * 1000)):09d}"
    names = {"rgb": f"fakes{tag}.png", "raw": f"fakes{tag}_raw.png", "depth": f"fakes{tag}_depth.png"}
    return [atomic_save_png(run_dir / "samples" / names[k], v) for k, v in grids.items()]
