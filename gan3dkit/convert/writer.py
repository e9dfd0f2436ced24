"""Write a converted model as a gan3dkit checkpoint (safetensors + JSON header) plus its config.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import torch

from ..methods.schedule import lazy_reg_adjust
from ..train.checkpoint import check_finite, save_checkpoint
from ..utils.errors import UsageError
from ..utils.files import atomic_write_json, sha256_file
from .eg3d import Converted, build_modules


def fresh_optimizers(conv: Converted, modules: dict[str, torch.nn.Module]) -> dict[str, torch.optim.Optimizer]:
    """Adam for G and D exactly as the trainer builds them (lazy-regularisation lr/betas), with empty state, so
    ``train --resume`` accepts the checkpoint and starts the optimiser afresh (EG3D's pickles hold no optimiser)."""
    cfg = conv.config
    opts: dict[str, torch.optim.Optimizer] = {}
    for name, lr, interval in (
        ("G", cfg.optim.glr, cfg.optim.g_reg_interval),
        ("D", cfg.optim.dlr, cfg.optim.d_reg_interval),
    ):
        if name in modules:
            mlr, betas = lazy_reg_adjust(lr, cast("tuple[float, float]", tuple(cfg.optim.betas)), interval)
            opts[name] = torch.optim.Adam(modules[name].parameters(), lr=mlr, betas=betas, eps=cfg.optim.eps)
    return opts


def safetensors_out(out: str | Path) -> Path:
    """`--out` as a Path; anything but a .safetensors name is a usage error (every converter writes one)."""
    out = Path(out)
    if out.suffix != ".safetensors":
        raise UsageError(f"--out must end in .safetensors, got {out}")
    return out


def write_converted(conv: Converted, out: str | Path, source: str | Path) -> dict[str, Any]:
    """Write ``out`` (.safetensors) and ``<out stem>.config.json``; returns a summary for the CLI."""
    out = safetensors_out(out)
    modules = build_modules(conv)
    for name, module in modules.items():  # a model holding NaN/inf is refused, naming the source file
        check_finite(source, module.state_dict(), name)
    resumable = "D" in modules
    opts = fresh_optimizers(conv, modules) if resumable else {}
    src = {**conv.source, "file": Path(source).name, "sha256": sha256_file(source), "notes": conv.notes}
    extra = {"converted_from": src, "optimizer": "fresh (not in the source file)" if resumable else "none"}
    progress = {"nimg": 0, "step": 0, "tick": 0, "nrr": conv.nrr}
    cfg_dict = conv.config.to_dict()
    save_checkpoint(out, modules, opts, cfg_dict, progress, extra=extra, include_rng=False)
    config_path = atomic_write_json(out.with_name(out.stem + ".config.json"), cfg_dict)
    n_params = {k: sum(p.numel() for p in m.parameters()) for k, m in modules.items()}
    return {
        "out": str(out),
        "config": str(config_path),
        "networks": sorted(modules),
        "parameters": n_params,
        "img_resolution": conv.config.generator.img_resolution,
        "neural_rendering_resolution": conv.nrr,
        "plane_axes": conv.config.generator.rendering.plane_axes,
        "preset": conv.config.preset,
        "resumable": resumable,
        "source": src,
        "notes": conv.notes,
    }
