"""Delta checkpoints of tuned generators: safetensors of changed tensors + the base checkpoint's sha256 (no pickle)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from ..generate.loading import load_generator
from ..train.checkpoint import CheckpointError, check_finite
from ..utils.files import atomic_write_safetensors, remove_stale_temps, sha256_file

DELTA_FORMAT = "gan3dkit-generator-delta"
DELTA_VERSION = 1


def changed_tensors(base: torch.nn.Module, tuned: torch.nn.Module) -> dict[str, torch.Tensor]:
    """State-dict entries of `tuned` that differ (bitwise) from `base`; both must have the same keys and shapes."""
    a, b = base.state_dict(), tuned.state_dict()
    if a.keys() != b.keys():
        raise ValueError("tuned generator has different tensors from the base one")
    return {k: v.detach().cpu().contiguous() for k, v in b.items()
            if a[k].shape != v.shape or a[k].dtype != v.dtype or not torch.equal(a[k].cpu(), v.cpu())}


def save_delta(path: str | Path, base_ckpt: str | Path, base: torch.nn.Module, tuned: torch.nn.Module,
               which: str = "G_ema", extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write `path` atomically: the tensors `tuned` changed relative to `base` (loaded from `base_ckpt`/`which`).

    The header records the base file's sha256 so loading refuses a different base. Returns the header.
    """
    path = Path(path)
    tensors = changed_tensors(base, tuned)
    header = {"format": DELTA_FORMAT, "version": DELTA_VERSION, "base": str(Path(base_ckpt).resolve()),
              "base_sha256": sha256_file(base_ckpt), "which": which, "changed": sorted(tensors),
              "extra": extra or {}}
    if not tensors:  # safetensors needs at least one tensor to carry the header
        tensors = {"__empty__": torch.zeros(0)}
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    atomic_write_safetensors(path, tensors, {DELTA_FORMAT: json.dumps(header)})
    return header


def read_delta_header(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"delta checkpoint {path} not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as exc:
        raise CheckpointError(f"{path} is not a safetensors file ({exc})") from exc
    if DELTA_FORMAT not in meta:
        raise CheckpointError(f"{path} is not a gan3dkit generator delta (no {DELTA_FORMAT} header)")
    header = json.loads(meta[DELTA_FORMAT])
    if int(header.get("version", -1)) != DELTA_VERSION:
        raise CheckpointError(
            f"{path}: delta version {header.get('version')} is not supported (reads v{DELTA_VERSION})"
        )
    return header


def load_delta(path: str | Path, base_ckpt: str | Path | None = None, device: str | torch.device = "cpu"):
    """(tuned generator, its TrainConfig): the base checkpoint (from the header, or `base_ckpt`) + the delta.

    Raises CheckpointError when the base file's sha256 differs from the one recorded.
    """
    header = read_delta_header(path)
    base_ckpt = Path(base_ckpt or header["base"])
    if not base_ckpt.is_file():
        raise FileNotFoundError(f"base checkpoint {base_ckpt} of {path} not found (pass it explicitly)")
    digest = sha256_file(base_ckpt)
    if digest != header["base_sha256"]:
        raise CheckpointError(f"{base_ckpt} (sha256 {digest[:12]}) is not the base of {path} "
                              f"(expects {header['base_sha256'][:12]})")
    G, cfg = load_generator(base_ckpt, device="cpu", which=header["which"])
    with safe_open(str(path), framework="pt") as f:
        delta = {k: f.get_tensor(k) for k in f.keys() if k != "__empty__"}  # noqa: SIM118
    sd = G.state_dict()
    check_finite(path, delta, "the delta's")
    unknown = sorted(set(delta) - set(sd))
    if unknown:
        raise CheckpointError(f"{path}: tensors {unknown[:5]} are not in the base generator")
    with torch.no_grad():
        for k, v in delta.items():
            if sd[k].shape != v.shape:
                raise CheckpointError(f"{path}: {k} has shape {tuple(v.shape)}, base has {tuple(sd[k].shape)}")
            sd[k].copy_(v)
    return G.to(device), cfg
