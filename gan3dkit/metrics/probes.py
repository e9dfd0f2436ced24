"""Probes: small image->pose and image->depth estimators trained on datasets with true labels (the role
Deep3DFaceRecon plays for faces), with their held-out accuracy stored beside the weights."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save
from torch import Tensor, nn

from ..data import DatasetReader
from ..utils.files import atomic_write_bytes
from .geometry import depth_nmse, depth_si_errors, pose_errors
from .sampling import dataset_hash, iter_real

PROBE_FORMAT = "gan3dkit-probe"
PROBE_VERSION = 1


@dataclass
class ProbeConfig:
    target: str = "pose"
    """pose: image -> (yaw, pitch) of the orbit_v1 convention; depth: image -> ray distance + foreground mask."""
    resolution: int = 64
    """Input (and depth output) resolution; images are resized to it (antialiased bilinear)."""
    width: int = 32
    steps: int = 1500
    batch: int = 32
    lr: float = 2e-3
    holdout: float = 0.1
    """Share of the dataset held out (a seeded permutation's tail) to measure the probe's own accuracy."""
    seed: int = 0
    hflip: bool = True
    """Mirror augmentation (yaw negated, depth mirrored)."""


def _block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


class PoseNet(nn.Module):
    """[B, 3, R, R] in [-1, 1] -> [B, 3] = (sin yaw, cos yaw, pitch); yaw is wrapped (full-circle objects)."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        w = width
        self.body = nn.Sequential(_block(3, w, 2), _block(w, 2 * w, 2), _block(2 * w, 4 * w, 2),
                                  _block(4 * w, 4 * w, 2))
        self.head = nn.Sequential(nn.Flatten(), nn.LazyLinear(128), nn.SiLU(), nn.Linear(128, 3))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(F.adaptive_avg_pool2d(self.body(x), 4))


class DepthNet(nn.Module):
    """U-Net at half resolution: [B, 3, R, R] -> [B, 2, R, R] = (normalised depth, foreground logit), the half-res
    output upsampled bilinearly (depth maps are smooth; this keeps CPU training to seconds)."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        w = width
        self.e1, self.e2, self.mid = _block(3, w, 2), _block(w, 2 * w, 2), _block(2 * w, 4 * w, 2)
        self.d2, self.d1 = _block(6 * w, 2 * w, 1), _block(3 * w, w, 1)
        self.out = nn.Conv2d(w, 2, 1)

    def forward(self, x: Tensor) -> Tensor:
        def up(t: Tensor, size: Any) -> Tensor:
            return F.interpolate(t, size=size, mode="bilinear", align_corners=False)

        e1 = self.e1(x)
        e2 = self.e2(e1)
        m = self.mid(e2)
        d2 = self.d2(torch.cat([up(m, e2.shape[-2:]), e2], 1))
        d1 = self.d1(torch.cat([up(d2, e1.shape[-2:]), e1], 1))
        return up(self.out(d1), x.shape[-2:])


@dataclass
class Probe:
    """A trained probe: network, config, depth normalisation, provenance and held-out accuracy."""

    config: ProbeConfig
    net: nn.Module
    heldout: dict[str, float]
    data: dict[str, Any]
    depth_norm: tuple[float, float] = (0.0, 1.0)
    """(centre, scale): depth = centre + scale * network output (foreground depths of the training set)."""
    path: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def description(self) -> str:
        return f"probe:{self.config.target}@{self.config.resolution} ({Path(self.path).name or 'in memory'})"

    def _input(self, images: Tensor) -> Tensor:
        x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
        if x.shape[-1] != self.config.resolution or x.shape[-2] != self.config.resolution:
            x = F.interpolate(x, size=(self.config.resolution,) * 2, mode="bilinear", align_corners=False,
                              antialias=True)
        return x * 2 - 1

    @torch.no_grad()
    def predict_pose(self, images: Tensor, batch: int = 64) -> Tensor:  # uint8 [B, 3, H, W] -> [B, 2] (yaw, pitch)
        self.net.eval()
        out = torch.cat([self.net(self._input(images[i:i + batch])) for i in range(0, len(images), batch)])
        return torch.stack([torch.atan2(out[:, 0], out[:, 1]), out[:, 2]], 1)

    @torch.no_grad()
    def predict_depth(self, images: Tensor, batch: int = 64) -> tuple[Tensor, Tensor]:  # -> depth, mask [B, 1, R, R]
        """Ray distance (world units of the training data) and foreground mask (logit > 0)."""
        self.net.eval()
        out = torch.cat([self.net(self._input(images[i:i + batch])) for i in range(0, len(images), batch)])
        return self.depth_norm[0] + self.depth_norm[1] * out[:, :1], out[:, 1:] > 0


def _load_arrays(path: Path, cfg: ProbeConfig) -> dict[str, Tensor]:
    reader = DatasetReader(path)
    need = ("image", "ypr") if cfg.target == "pose" else ("image", "depth", "mask")
    missing = [f for f in need if f not in reader.meta["fields"]]
    if missing:
        raise ValueError(f"{path} has no {missing} field(s): a {cfg.target} probe needs true labels "
                         f"(build one with `gan3dkit prepare synthetic`)")
    batches = list(iter_real(reader, need, batch=256))
    data = {k: torch.cat([b[k] for b in batches]) for k in need}
    r = cfg.resolution
    data["image"] = F.interpolate(data["image"].float() / 255, size=(r, r), mode="bilinear", align_corners=False,
                                  antialias=True) * 2 - 1
    if cfg.target == "depth":
        data["depth"] = F.interpolate(data["depth"].float(), size=(r, r), mode="nearest")
        data["mask"] = F.interpolate(data["mask"].float(), size=(r, r), mode="nearest") > 127
        data["mask"] &= torch.isfinite(data["depth"])
    return data


def _split(n: int, cfg: ProbeConfig) -> tuple[Tensor, Tensor]:
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed))
    n_hold = max(1, round(n * cfg.holdout))
    if n - n_hold < 2:
        raise ValueError(f"dataset too small for a probe ({n} samples)")
    return perm[:-n_hold], perm[-n_hold:]


def _loss(cfg: ProbeConfig, out: Tensor, batch: dict[str, Tensor], norm: tuple[float, float]) -> Tensor:
    if cfg.target == "pose":
        yaw, pitch = batch["ypr"][:, 0], batch["ypr"][:, 1]
        return F.mse_loss(out, torch.stack([torch.sin(yaw), torch.cos(yaw), pitch], 1))
    mask = batch["mask"]
    target = torch.where(mask, (batch["depth"] - norm[0]) / norm[1], torch.zeros_like(batch["depth"]))
    l1 = ((out[:, :1] - target).abs() * mask).sum() / mask.sum().clamp_min(1)
    return l1 + F.binary_cross_entropy_with_logits(out[:, 1:], mask.float())


def _flip(batch: dict[str, Tensor], which: Tensor) -> dict[str, Tensor]:
    out = {}
    for k, v in batch.items():
        if k == "ypr":
            out[k] = torch.where(which[:, None], v * torch.tensor([-1.0, 1.0, -1.0]), v)
        else:
            out[k] = torch.where(which.view(-1, 1, 1, 1), v.flip(-1), v)
    return out


def evaluate_probe(probe: Probe, images: Tensor, labels: dict[str, Tensor]) -> dict[str, float]:
    """Accuracy against truth: pose (MAE/geodesic degrees, Carver rotvec MSE) or depth (SI L1/RMSE and normalised MSE
    over true foreground pixels, mask IoU). `images` are probe inputs in [-1, 1] or uint8."""
    if images.dtype != torch.uint8:
        images = ((images + 1) / 2).clamp(0, 1)
    if probe.config.target == "pose":
        errs = pose_errors(labels["ypr"][:, :2], probe.predict_pose(images))
        return {k.replace("_abs", "_mae"): float(v.mean()) for k, v in errs.items()}
    depth, mask = probe.predict_depth(images)
    valid = labels["mask"]
    l1, rmse = depth_si_errors(depth, labels["depth"], valid)
    inter = (mask & valid).flatten(1).sum(1).float()
    union = (mask | valid).flatten(1).sum(1).float().clamp_min(1)
    return {"si_l1": float(l1.nanmean()), "si_rmse": float(rmse.nanmean()),
            "nmse": float(depth_nmse(depth, labels["depth"], valid).nanmean()),
            "mask_iou": float((inter / union).mean())}


def train_probe(data: str | Path, cfg: ProbeConfig, device: str = "cpu",
                progress: Callable[[int, int], None] | None = None) -> Probe:
    """Train a probe on a dataset with true labels; its accuracy on the held-out split is measured and stored."""
    if cfg.target not in ("pose", "depth"):
        raise ValueError(f"probe target must be 'pose' or 'depth', got {cfg.target!r}")
    t0 = time.time()
    arrays = _load_arrays(Path(data), cfg)
    train_idx, hold_idx = _split(len(arrays["image"]), cfg)
    norm = (0.0, 1.0)
    if cfg.target == "depth":
        fg = arrays["depth"][train_idx][arrays["mask"][train_idx]]
        norm = (float(fg.mean()), float(fg.std().clamp_min(1e-6)))
    torch.manual_seed(cfg.seed)
    net = (PoseNet(cfg.width) if cfg.target == "pose" else DepthNet(cfg.width)).to(device)
    net(torch.zeros(1, 3, cfg.resolution, cfg.resolution, device=device))  # materialise lazy layers
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.1)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    net.train()
    for step in range(cfg.steps):
        idx = train_idx[torch.randint(len(train_idx), (cfg.batch,), generator=gen)]
        batch = {k: v[idx] for k, v in arrays.items()}
        if cfg.hflip:
            batch = _flip(batch, torch.rand(cfg.batch, generator=gen) < 0.5)
        batch = {k: v.to(device) for k, v in batch.items()}
        loss = _loss(cfg, net(batch["image"]), batch, norm)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if progress is not None and (step + 1) % 25 == 0:
            progress(step + 1, cfg.steps)
    net.eval()
    probe = Probe(cfg, net.cpu(), {}, {"path": str(Path(data).resolve()), "sha256": dataset_hash(data),
                                       "count": len(arrays["image"]), "heldout_indices": hold_idx.tolist()}, norm)
    labels = {k: v[hold_idx] for k, v in arrays.items() if k != "image"}
    probe.heldout = evaluate_probe(probe, arrays["image"][hold_idx], labels)
    probe.heldout["count"] = len(hold_idx)
    probe.extra = {"train_seconds": round(time.time() - t0, 2), "final_loss": float(loss.detach())}
    return probe


def save_probe(probe: Probe, path: str | Path) -> Path:
    """safetensors weights + JSON metadata (config, norm, held-out accuracy, data provenance); atomic."""
    meta = {"format": PROBE_FORMAT, "version": PROBE_VERSION, "config": asdict(probe.config),
            "depth_norm": list(probe.depth_norm), "heldout": probe.heldout, "data": probe.data, "extra": probe.extra}
    tensors = {k: v.detach().cpu().contiguous() for k, v in probe.net.state_dict().items()}
    path = atomic_write_bytes(path, save(tensors, metadata={"gan3dkit_probe": json.dumps(meta)}))
    probe.path = str(path)
    return path


def load_probe(path: str | Path, device: str = "cpu") -> Probe:
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"probe {path} not found (train one with `gan3dkit train-probe`)")
    with safe_open(str(path), "pt") as f:
        raw = (f.metadata() or {}).get("gan3dkit_probe")
    if raw is None:
        raise ValueError(f"{path} is not a gan3dkit probe (no gan3dkit_probe metadata)")
    meta = json.loads(raw)
    if meta.get("format") != PROBE_FORMAT or meta.get("version") != PROBE_VERSION:
        raise ValueError(f"{path}: unsupported probe format {meta.get('format')} v{meta.get('version')}")
    cfg = ProbeConfig(**meta["config"])
    net = PoseNet(cfg.width) if cfg.target == "pose" else DepthNet(cfg.width)
    net(torch.zeros(1, 3, cfg.resolution, cfg.resolution))
    net.load_state_dict(load_file(str(path)), strict=True)
    heldout = {k: (v if v is None or math.isfinite(v) else math.nan) for k, v in meta["heldout"].items()}
    return Probe(cfg, net.to(device).eval(), heldout, meta["data"], tuple(meta["depth_norm"]), str(path),
                 meta.get("extra", {}))
