"""Released encoder files -> gan3dkit encoder checkpoints: key maps checked against the file, and the writer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..train.checkpoint import save_checkpoint
from .eg3d import ArchitectureMismatch
from .torchfile import read_torch_file
from .writer import safetensors_out


@dataclass
class ConvertedEncoder:
    """Modules holding the converted weights, the checkpoint config/extra to write, and notes for the user."""

    kind: str
    modules: dict[str, nn.Module]
    config: dict[str, Any]
    extra: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


def read_state(path: str | Path, what: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state dict, the rest of the file) of a ``torch.save``'d checkpoint ``{state_dict: ..., ...}`` or a bare
    state dict, read through the refusing unpickler."""
    data = read_torch_file(path)
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        sd, rest = dict(data["state_dict"]), {k: v for k, v in data.items() if k != "state_dict"}
    elif isinstance(data, dict) and data and all(torch.is_tensor(v) for v in data.values()):
        sd, rest = dict(data), {}
    else:
        got = sorted(map(str, data))[:8] if isinstance(data, dict) else type(data).__name__
        raise ArchitectureMismatch(f"{path}: not a {what} checkpoint (expected {{state_dict: ...}}; got {got})")
    bad = [k for k, v in sd.items() if not torch.is_tensor(v)]
    if bad:
        raise ArchitectureMismatch(f"{path}: state_dict holds non-tensors under {bad[:5]}")
    return sd, rest


def _listing(label: str, items: list[str]) -> str:
    more = f" (+{len(items) - 6} more)" if len(items) > 6 else ""
    return f"{label}: {', '.join(items[:6])}{more}"


def load_mapped(
    module: nn.Module, src: dict[str, torch.Tensor], to_file: Callable[[str], str], what: str, path: str | Path
) -> list[str]:
    """Load ``module`` from ``src`` where gan3dkit key k is ``src[to_file(k)]``; refuses (naming the file's missing,
    unexpected and mis-shaped keys) before anything is loaded. Returns the file keys used."""
    want = module.state_dict()
    names = {k: to_file(k) for k in want}
    used = set(names.values())
    missing = sorted(f for f in used if f not in src)
    extra = sorted(k for k in src if k not in used)
    shapes = [f"{names[k]} {tuple(src[names[k]].shape)} vs {tuple(v.shape)}" for k, v in want.items()
              if names[k] in src and src[names[k]].shape != v.shape]  # fmt: skip
    if missing or extra or shapes:
        parts = [_listing(lbl, items) for lbl, items in (("missing from the file", missing), ("unexpected", extra),
                 ("shape differs (file vs gan3dkit)", shapes)) if items]  # fmt: skip
        raise ArchitectureMismatch(f"{path}: {what} does not match: " + "; ".join(parts))
    module.load_state_dict({k: src[names[k]].to(v.dtype) for k, v in want.items()})
    return sorted(used)


def split_prefix(sd: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}


Four = tuple[int, int, int, int]


def four(values: list[int], what: str) -> Four:
    """Four per-stage numbers as a fixed-length tuple; another count is an ArchitectureMismatch naming `what`."""
    if len(values) != 4:
        raise ArchitectureMismatch(f"{what}: expected four stages, found {values}")
    return values[0], values[1], values[2], values[3]


def irse_layout(sd: dict[str, torch.Tensor], prefix: str) -> tuple[Four, Four]:
    """(stage widths, units per stage) of an IR-SE body from its ``body.N.res_layer.1.weight`` shapes (IR-SE-50:
    (64, 128, 256, 512), (3, 4, 14, 3)); a stage is a run of units of one width."""
    n = len({k[len(prefix) + 5 :].split(".")[0] for k in sd if k.startswith(prefix + "body.")})
    depths = [int(sd[f"{prefix}body.{i}.res_layer.1.weight"].shape[0]) for i in range(n)
              if f"{prefix}body.{i}.res_layer.1.weight" in sd]  # fmt: skip
    widths: list[int] = []
    units: list[int] = []
    for d in depths:
        if widths and widths[-1] == d:
            units[-1] += 1
        else:
            widths.append(d)
            units.append(1)
    return four(widths, f"{prefix}body IR-SE widths"), four(units, f"{prefix}body IR-SE units")


def write_encoder(conv: ConvertedEncoder, out: str | Path, source: str | Path) -> dict[str, Any]:
    """Write ``out`` (.safetensors): the converted modules, config and extra (with the source's name and sha256)."""
    from ..utils.files import sha256_file

    out = safetensors_out(out)
    src = {"kind": conv.kind, "file": Path(source).name, "sha256": sha256_file(source), "notes": conv.notes}
    extra = {**conv.extra, "converted_from": src}
    save_checkpoint(out, conv.modules, {}, conv.config, {"step": 0}, extra=extra, include_rng=False)
    params = {k: sum(p.numel() for p in m.parameters()) for k, m in conv.modules.items()}
    return {"out": str(out), "kind": conv.kind, "parameters": params, "source": src, "notes": conv.notes,
            **conv.summary}  # fmt: skip
