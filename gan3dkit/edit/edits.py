"""Latent edits along GANSpace components (additive or set-coordinate), the tri-plane-offset edit (Bhattarai et al.)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..utils.errors import DataError, UsageError
from .ganspace import GanSpace

if TYPE_CHECKING:
    from ..networks.generator import TriPlaneGenerator

EDIT_MODES = ("additive", "set")


@dataclass(frozen=True)
class Edit:
    """Move along component ``component`` by ``strength`` σ on the w layers ``[start, end)`` (end None = last).

    Modes (methods.md §8.3):
    - ``additive`` (GANSpace viewer): ``w[s:e] += strength · σ_k · v_k``.
    - ``set`` (PTI / e4e ``editings/ganspace.py``): ``w[s:e] += (strength − c_k) · σ_k · v_k`` with
      ``c_k = <w[0] − mean, v_k> / σ_k``, i.e. the coordinate is *set* to ``strength`` σ. As in e4e, the
      coordinate is read from the first w layer (for W-space latents all layers are equal).
    """

    component: int
    strength: float
    start: int = 0
    end: int | None = None
    mode: str = "additive"

    def label(self) -> str:
        layers = f"@{self.start}-{self.end}" if (self.start, self.end) != (0, None) else ""
        op = "=" if self.mode == "set" else ("+" if self.strength >= 0 else "")
        return f"pc{self.component}{op}{self.strength:g}sd{layers}"  # ASCII: the default PIL font has no σ


_EDIT_RE = re.compile(r"^\s*(\d+)\s*:\s*([-+]?[0-9.]+(?:e[-+]?\d+)?)\s*(?:@\s*(\d+)\s*-\s*(\d+)\s*)?$")


def parse_edit(text: str, mode: str = "additive") -> Edit:
    """'COMPONENT:STRENGTH[@START-END]' (END exclusive), e.g. '0:2', '3:-1.5@0-5'."""
    if mode not in EDIT_MODES:
        raise UsageError(f"--mode must be one of {EDIT_MODES}, got {mode!r}")
    m = _EDIT_RE.match(text)
    if not m:
        raise UsageError(f"--edit {text!r}: cannot parse it; use COMPONENT:STRENGTH[@START-END], e.g. 0:2 or "
                         "3:-1.5@0-5")
    start, end = (int(m.group(3)), int(m.group(4))) if m.group(3) else (0, None)
    try:
        strength = float(m.group(2))
    except ValueError:
        raise UsageError(f"--edit {text!r}: bad strength") from None
    return Edit(int(m.group(1)), strength, start, end, mode)


def check_edit(edit: Edit, gs: GanSpace, num_ws: int) -> None:
    if not 0 <= edit.component < gs.num_components:
        raise UsageError(f"edit {edit.label()}: component {edit.component} not in 0..{gs.num_components - 1}")
    end = num_ws if edit.end is None else edit.end
    if not 0 <= edit.start < end <= num_ws:
        raise UsageError(f"edit {edit.label()}: layers {edit.start}-{end} not within 0-{num_ws} (end exclusive)")


def apply_edit(ws: torch.Tensor, gs: GanSpace, edit: Edit) -> torch.Tensor:  # [B, L, D] -> [B, L, D]
    """The edited latents (a new tensor); see :class:`Edit` for the two conventions."""
    check_edit(edit, gs, ws.shape[1])
    v = gs.components[edit.component].to(ws)  # [D]
    sigma = float(gs.stdev[edit.component])
    if edit.mode == "additive":
        step = torch.full((ws.shape[0], 1, 1), edit.strength * sigma, dtype=ws.dtype, device=ws.device)
    else:
        coord = ((ws[:, 0] - gs.mean.to(ws)) @ v) / max(sigma, 1e-12)  # [B]
        step = ((edit.strength - coord) * sigma).view(-1, 1, 1)
    out = ws.clone()
    end = ws.shape[1] if edit.end is None else edit.end
    out[:, edit.start : end] += step * v
    return out


def triplane_offset_edit(G: TriPlaneGenerator, ws: torch.Tensor, ws_edit: torch.Tensor,
                         delta_planes: torch.Tensor | None = None,
                         noise_mode: str = "const") -> torch.Tensor:  # fmt: skip
    """``T_edit = (G(w) + ΔT) + G(w_edit) − G(w)`` (TriPlaneNet, Bhattarai et al., eq. 6): the edit moves the
    tri-planes of an inversion that an encoder refined with offsets ΔT ``[B|1, 3, C, H, W]``. G(·) are the backbone's
    planes ``[B, 3, C, H, W]``; without ΔT this is G(w_edit)."""
    base = G.synthesize_planes(ws, noise_mode=noise_mode)
    edited = G.synthesize_planes(ws_edit, noise_mode=noise_mode)
    if delta_planes is None:
        return base + edited - base
    delta = delta_planes.to(base)
    if delta.ndim == 4:
        delta = delta.view(delta.shape[0], 3, -1, *delta.shape[-2:])
    if delta.shape[1:] != base.shape[1:] or delta.shape[0] not in (1, base.shape[0]):
        raise DataError(f"tri-plane offsets {tuple(delta_planes.shape)} do not fit the planes {tuple(base.shape)}")
    return (base + delta) + edited - base


def load_delta_planes(path: str | Path) -> torch.Tensor:
    """ΔT from an encoder: safetensors key ``delta_planes`` or a .npy array, [B|1, 3, C, H, W] or [B, 3C, H, W]."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"tri-plane offsets {path} not found")
    if path.suffix == ".npy":
        return torch.from_numpy(np.load(path, allow_pickle=False)).float()
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path))
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own types for a damaged or foreign file
        raise DataError(f"{path} is not a safetensors file with 'delta_planes' (or a .npy array): {exc}") from None
    if "delta_planes" not in tensors:
        raise DataError(f"{path} has no 'delta_planes' tensor (keys: {sorted(tensors)[:5]})")
    return tensors["delta_planes"].float()


def load_latent(path: str | Path, num_ws: int, w_dim: int) -> torch.Tensor:
    """w.npy [w_dim] / wplus.npy [num_ws, w_dim] (as `gan3dkit invert` writes) -> ws [1, num_ws, w_dim]."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"latent {path} not found")
    try:
        arr = torch.from_numpy(np.load(path, allow_pickle=False)).float()
    except ValueError as exc:
        raise DataError(f"{path}: not a plain .npy array ({exc})") from None
    if arr.shape == (w_dim,):
        arr = arr.expand(num_ws, -1)
    if arr.shape == (1, num_ws, w_dim):
        arr = arr[0]
    if arr.shape != (num_ws, w_dim):
        raise DataError(f"{path}: latent of shape {tuple(arr.shape)}; expected [{w_dim}] or [{num_ws}, {w_dim}]")
    return arr.unsqueeze(0).clone()
