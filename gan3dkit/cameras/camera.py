"""Typed camera batch (cam2world + normalised intrinsics) and its 25-float EG3D label encoding."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

#: Width of the EG3D camera label (cam2world 16 + normalised intrinsics 9): defined here only.
LABEL_DIM = 25
#: Conjugating a cam2world by S = diag(-1, 1, 1, 1) mirrors world x and camera x (reference eg3d.md §2.5).
_MIRROR = (-1.0, 1.0, 1.0, 1.0)


class CameraError(ValueError):
    """A camera label or matrix that violates the EG3D convention."""


@dataclass(frozen=True)
class Cameras:
    """A batch of pinhole cameras in EG3D's convention.

    Attributes:
        cam2world: [B, 4, 4] camera-to-world matrices, OpenCV axes (x right, y down, z forward), world y-up.
        intrinsics: [B, 3, 3] intrinsics normalised by image size: [[fx/W, s, cx/W], [0, fy/H, cy/H], [0, 0, 1]].
    """

    cam2world: Tensor
    intrinsics: Tensor

    def __post_init__(self) -> None:
        if self.cam2world.ndim != 3 or self.cam2world.shape[1:] != (4, 4):
            raise CameraError(f"cam2world must be [B, 4, 4], got {tuple(self.cam2world.shape)}")
        if self.intrinsics.ndim != 3 or self.intrinsics.shape[1:] != (3, 3):
            raise CameraError(f"intrinsics must be [B, 3, 3], got {tuple(self.intrinsics.shape)}")
        if self.cam2world.shape[0] != self.intrinsics.shape[0]:
            raise CameraError(f"batch sizes differ: {self.cam2world.shape[0]} vs {self.intrinsics.shape[0]}")

    # ----------------------------------------------------------------------------------------------- construction
    @classmethod
    def from_label(cls, label: Tensor | Sequence[float]) -> Cameras:
        """Decode [B, 25] (or [25]) EG3D labels: [0:16] cam2world row-major, [16:25] intrinsics row-major."""
        label = torch.as_tensor(label)
        if label.ndim == 1:
            label = label[None]
        if label.ndim != 2 or label.shape[1] != LABEL_DIM:
            raise CameraError(f"camera label must be [B, {LABEL_DIM}], got {tuple(label.shape)}")
        if not label.is_floating_point():
            label = label.float()
        return cls(label[:, :16].reshape(-1, 4, 4), label[:, 16:].reshape(-1, 3, 3))

    @classmethod
    def from_matrices(
        cls, cam2world: Tensor, focal: float | Tensor, principal: tuple[float, float] = (0.5, 0.5)
    ) -> Cameras:
        """Build from [B, 4, 4] cam2world and a normalised focal (scalar or [B]); principal point normalised."""
        batch = cam2world.shape[0]
        k = torch.zeros(batch, 3, 3, dtype=cam2world.dtype, device=cam2world.device)
        f = torch.as_tensor(focal, dtype=cam2world.dtype, device=cam2world.device).expand(batch)
        k[:, 0, 0] = f
        k[:, 1, 1] = f
        k[:, 0, 2] = principal[0]
        k[:, 1, 2] = principal[1]
        k[:, 2, 2] = 1.0
        return cls(cam2world, k)

    def to_label(self) -> Tensor:
        """Encode as [B, 25] EG3D labels."""
        return torch.cat([self.cam2world.reshape(-1, 16), self.intrinsics.reshape(-1, 9)], dim=1)

    # ------------------------------------------------------------------------------------------------- accessors
    def __len__(self) -> int:
        return self.cam2world.shape[0]

    def __getitem__(self, index: int | slice | Tensor) -> Cameras:
        if isinstance(index, int):
            index = slice(index, index + 1)
        return Cameras(self.cam2world[index], self.intrinsics[index])

    def detach(self) -> Cameras:
        return Cameras(self.cam2world.detach(), self.intrinsics.detach())

    def split(self, size: int) -> tuple[Cameras, ...]:
        """Consecutive batches of `size` cameras (the last may be smaller), like `Tensor.split`."""
        return tuple(self[i : i + size] for i in range(0, len(self), size))

    @staticmethod
    def cat(batches: Sequence[Cameras]) -> Cameras:
        """One batch of the given batches in order."""
        return Cameras(torch.cat([b.cam2world for b in batches]), torch.cat([b.intrinsics for b in batches]))

    def where(self, mask: Tensor, other: Cameras) -> Cameras:
        """Per camera, this one where mask [B] is set, else `other`'s (`torch.where` on both matrices)."""
        return Cameras(torch.where(mask[:, None, None], self.cam2world, other.cam2world),
                       torch.where(mask[:, None, None], self.intrinsics, other.intrinsics))

    def roll(self, shifts: int) -> Cameras:
        """The batch rotated by `shifts` places (`torch.roll` along the batch)."""
        return Cameras(torch.roll(self.cam2world, shifts, 0), torch.roll(self.intrinsics, shifts, 0))

    def to(self, *args, **kwargs) -> Cameras:
        return Cameras(self.cam2world.to(*args, **kwargs), self.intrinsics.to(*args, **kwargs))

    @property
    def device(self) -> torch.device:
        return self.cam2world.device

    @property
    def origins(self) -> Tensor:  # [B, 3]
        return self.cam2world[:, :3, 3]

    @property
    def rotations(self) -> Tensor:  # [B, 3, 3]
        return self.cam2world[:, :3, :3]

    @property
    def forward(self) -> Tensor:  # [B, 3], world direction of camera +z
        return self.cam2world[:, :3, 2]

    @property
    def focal(self) -> Tensor:  # [B, 2] normalised (fx, fy)
        return torch.stack([self.intrinsics[:, 0, 0], self.intrinsics[:, 1, 1]], dim=1)

    @property
    def principal_point(self) -> Tensor:  # [B, 2] normalised (cx, cy)
        return self.intrinsics[:, :2, 2]

    @property
    def radius(self) -> Tensor:  # [B]
        return self.origins.norm(dim=1)

    # ---------------------------------------------------------------------------------------------- operations
    def mirror(self) -> Cameras:
        """Cameras that see the x-mirrored world as the horizontally flipped image.

        cam2world' = S @ cam2world @ S with S = diag(-1, 1, 1, 1) (EG3D's `flip_yaw` entries [0,1], [0,2], [1,0],
        [2,0], [0,3]); the intrinsics follow the flipped image: cx' = 1 - cx and skew' = -skew (EG3D leaves K
        unchanged, which is the same thing for its cx = 0.5, s = 0). Applying it twice is the identity.
        """
        s = torch.tensor(_MIRROR, dtype=self.cam2world.dtype, device=self.cam2world.device)
        c2w = self.cam2world * s[None, :, None] * s[None, None, :]
        k = self.intrinsics.clone()
        k[:, 0, 2] = 1.0 - k[:, 0, 2]
        k[:, 0, 1] = -k[:, 0, 1]
        return Cameras(c2w, k)

    def negate_entries(self, entries: Sequence[tuple[int, int]]) -> Cameras:
        """Cameras with the given (row, column) entries of cam2world negated, intrinsics kept (PoF3D's yaw and pitch
        flips are such sign patterns, `methods.pof3d.flip_cameras`)."""
        sign = torch.ones(4, 4, dtype=self.cam2world.dtype, device=self.cam2world.device)
        for i, j in entries:
            sign[i, j] = -1.0
        return Cameras(self.cam2world * sign, self.intrinsics)

    def problems(self, **limits: float) -> list[list[str]]:
        """Per camera, a list of convention violations (empty when valid). See `label_problems` for limits."""
        return [label_problems(row, **limits) for row in self.to_label().detach().cpu().double()]


def as_cameras(cameras: Cameras | Tensor) -> Cameras:
    """Cameras as given, or a [B, 25] label decoded once (float32): labels enter only at the edges."""
    return cameras if isinstance(cameras, Cameras) else Cameras.from_label(torch.as_tensor(cameras).float())


def mirror_labels(labels: Tensor) -> Tensor:  # [B, 25] -> [B, 25], same dtype and device
    """Labels of the cameras of the horizontally flipped images (`Cameras.mirror`: S P S with cx -> 1 - cx)."""
    return Cameras.from_label(labels).mirror().to_label().to(labels)


def label_problems(
    label: Tensor | np.ndarray | Sequence[float],
    rot_tol: float = 1e-3,
    min_focal: float = 0.05,
    max_focal: float = 100.0,
    min_radius: float = 1e-3,
    max_radius: float = 1e3,
) -> list[str]:
    """Check one 25-float label; return human-readable problems (empty list when it is a valid EG3D camera).

    Checks: finite values; bottom row (0, 0, 0, 1); rotation orthonormal within `rot_tol` (max |R^T R - I|) with
    det +1; intrinsics last row (0, 0, 1) and K[1, 0] = 0; focal lengths in [min_focal, max_focal] (normalised);
    principal point inside the image ([0, 1]); camera distance from the world origin in [min_radius, max_radius].
    """
    if isinstance(label, Tensor):
        x = label.detach().to("cpu", torch.float64).reshape(-1)
    else:
        x = torch.tensor(np.asarray(label, dtype=np.float64)).reshape(-1)
    if x.numel() != LABEL_DIM:
        return [f"label has {x.numel()} values, expected {LABEL_DIM}"]
    if not torch.isfinite(x).all():
        return ["label contains NaN or infinite values"]
    out: list[str] = []
    m = x[:16].reshape(4, 4)
    k = x[16:].reshape(3, 3)
    if (m[3] - torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64)).abs().max() > 1e-4:
        out.append(f"cam2world bottom row is {m[3].tolist()}, expected [0, 0, 0, 1]")
    r = m[:3, :3]
    ortho = (r.T @ r - torch.eye(3, dtype=torch.float64)).abs().max().item()
    if ortho > rot_tol:
        out.append(f"rotation is not orthonormal (max |R^T R - I| = {ortho:.2e} > {rot_tol:.0e})")
    elif torch.linalg.det(r).item() < 0:
        out.append("rotation has determinant -1 (a reflection, not a rotation)")
    if (k[2] - torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)).abs().max() > 1e-4 or abs(k[1, 0].item()) > 1e-4:
        out.append(f"intrinsics must be [[fx, s, cx], [0, fy, cy], [0, 0, 1]], got {k.tolist()}")
    for name, f in (("fx", k[0, 0].item()), ("fy", k[1, 1].item())):
        if not (min_focal <= f <= max_focal):
            out.append(
                f"normalised focal {name} = {f:.4g} outside [{min_focal}, {max_focal}] (is K normalised by image size?)"
            )
    cx, cy = k[0, 2].item(), k[1, 2].item()
    if not (0.0 <= cx <= 1.0 and 0.0 <= cy <= 1.0):
        out.append(f"principal point ({cx:.4g}, {cy:.4g}) outside the image (normalised coordinates in [0, 1])")
    radius = m[:3, 3].norm().item()
    if not (min_radius <= radius <= max_radius):
        out.append(f"camera distance from origin {radius:.4g} outside [{min_radius}, {max_radius}]")
    return out


def check_label(label: Tensor | np.ndarray | Sequence[float], **limits: float) -> None:
    """Raise `CameraError` listing every problem of one label (see `label_problems`)."""
    problems = label_problems(label, **limits)
    if problems:
        raise CameraError("invalid camera label: " + "; ".join(problems))
