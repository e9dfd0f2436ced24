"""Ko et al.'s pose estimator P and latent encoder E, pre-trained on pseudo pairs rendered by the generator (§A.2)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from torch import Tensor, nn

from ..cameras.camera import Cameras
from ..cameras.rotations import ypr_to_cam2world
from ..generate.views import view_cameras
from ..utils.config import from_dict
from .e4e_train import E4EConfig
from .ko_nets import KoLatentEncoder, KoPoseEstimator

if TYPE_CHECKING:
    from ..networks.generator import TriPlaneGenerator

KO_FORMAT = "gan3dkit-ko-encoder"
KO_VERSION = 1
ARCHS = ("ko-pose", "ko-latent")


@dataclass
class KoDistillConfig:
    """Pseudo-pair pre-training of P / E (seed 002 §A.2-A.3; Ko et al. `scripts/{gen_pseudo_dataset,
    train_pose_estimator}.py`, methods.md §4.2). E trains as e4e does (§A.1: "we follow both the implementation
    and training strategy of e4e"): `e4e` holds e4e's progressive deltas, delta regulariser and latent D."""

    steps: int = 10000
    """Optimiser steps (the code validates every 1k iterations; no step count is published)."""
    batch: int = 32
    """Pseudo pairs per step (the code's batch 32)."""
    lr: float = 1e-4
    """Learning rate (Ko et al.'s P code: Adam 1e-4; e4e: Ranger 1e-4, `e4e.optimizer` for E)."""
    pairs: int = 30000
    """Distinct pseudo pairs (paper: 30,000 human faces, 10,000 cats); pair i is a pure function of (seed, i)."""
    truncation: float = 0.7
    """psi of the pseudo latents (the code: 0.7), mapped with the frontal conditioning camera."""
    max_yaw: float = 0.2
    """yaw = (U - 0.5) * pi * max_yaw (the code's --max_yaw 0.2: +-18 degrees)."""
    max_pitch: float = 0.1
    """pitch = (U - 0.5) * pi * max_pitch (+-9 degrees)."""
    max_roll: float = 0.0
    """roll range likewise (cats: 0.2 with --use_roll; 0 = no roll)."""
    representation: str = "quaternion"
    """P's rotation output: 'euler' (theta, phi as in the paper), 'quaternion' (the code default), '6d' (roll)."""
    lambda_trans: float = 1.0
    """Eq. (6) weight of ||t_ps - t_hat||_2 (the code uses 10 * MSE instead)."""
    lambda_adv: float = 0.1
    """Eq. (1), (5) image adversarial weight with the checkpoint's D (not given; the magnitude of e4e's 0.1)."""
    lambda_reg: float = 2e-4
    """Eq. (2), (5) ||delta w||^2 weight, delta w = w_0 - w_avg (not given; the magnitude of e4e's 2e-4)."""
    lpips_weight: float = 1.0
    """Eq. (5): L_lpips with weight 1 (e4e's own lpips_lambda is 0.8)."""
    l2_weight: float = 1.0
    """Pixel MSE beside LPIPS for E (e4e's l2_lambda 1); the only image term when LPIPS is unavailable offline."""
    e4e: E4EConfig = field(default_factory=E4EConfig)
    """E's e4e training: progressive deltas, delta regulariser, latent discriminator (`encoders/e4e_train.py`)."""
    perceptual: str = "auto"
    """LPIPS for E: auto (e4e's VGG-LPIPS, pretrained: a missing backbone is an error naming `gan3dkit weights add`;
    with `random_init`, a random VGG, noted) or an explicit choice (none, random-vgg-lpips, vgg-lpips, alex-lpips)."""
    resolution: int = 256
    """Input size of P and E (the code: 256; images reach them as [0, 255], area-downsampled)."""
    width: int = 64
    """P: ResNet base width (64 = ResNet34 as released; smaller only for tests)."""
    blocks: tuple[int, int, int, int] = (3, 4, 6, 3)
    """P: residual blocks per stage (ResNet34)."""
    irse_widths: tuple[int, int, int, int] = (64, 128, 256, 512)
    """E: IR-SE-50 stage widths (e4e); smaller only for tests."""
    irse_units: tuple[int, int, int, int] = (3, 4, 14, 3)
    """E: IR-SE-50 units per stage."""
    e4e_styles: int = 18
    """E: e4e style blocks (18: the released files were built for a 1024² StyleGAN); Ko et al. use style 0 only."""
    backbone_weights: str | None = None
    """P: torchvision ResNet34 (ImageNet), E: IR-SE-50 (path or URL); None: package, cache (`gan3dkit weights add`)
    or download. Ko et al. start P from ImageNet and E (e4e) from IR-SE-50."""
    random_init: bool = False
    """Start from random weights instead (said in the checkpoint's notes); without it a missing file is an error."""
    cache_pairs: int = 1024
    """Keep rendered pairs in memory when `pairs` is at most this (small pseudo sets render once)."""
    seed: int = 0
    log_every: int = 50
    """Steps per tick: one stats record (`stats.jsonl`), one progress line."""
    snapshot_every: int = 1000
    """Write the training state (`checkpoint.safetensors`) every this many steps (rounded up to whole ticks of
    `log_every`) and at every stop; resumed exactly."""
    max_minutes: float | None = None
    """Stop this call after so many minutes with a resumable checkpoint (no encoder file until `steps` is reached)."""


def pseudo_pairs(G: TriPlaneGenerator, cfg: KoDistillConfig, indices: list[int]) -> dict[str, Tensor]:
    """Pairs {w [B,1,w_dim], camera [B,25], image [B,3,R,R]}; pair i from RandomState((seed, i)) (z, then yaw,
    pitch, roll), the latent mapped with the frontal conditioning camera at `truncation` (Ko et al.'s generator)."""
    device = next(G.parameters()).device
    r = G.config.rendering
    zs, angles = [], []
    for i in indices:
        rs = np.random.RandomState([cfg.seed, i])
        zs.append(rs.randn(G.z_dim))
        angles.append([(rs.rand() - 0.5) * math.pi * m for m in (cfg.max_yaw, cfg.max_pitch, cfg.max_roll)])
    z = torch.from_numpy(np.stack(zs)).float().to(device)
    a = torch.tensor(angles, dtype=torch.float64)
    c2w = ypr_to_cam2world(a[:, 0], a[:, 1], a[:, 2], r.avg_camera_radius, r.avg_camera_pivot).float()
    cams = Cameras.from_matrices(c2w, r.focal).to_label().to(device)
    with torch.no_grad():
        cond = view_cameras(G, [0.0], 0.0, device).to_label().expand(len(indices), -1)
        w = G.mapping(z, cond, truncation_psi=cfg.truncation)
        img = G.synthesis(w, cams, noise_mode="const", deterministic_render=True)["image"].clamp(-1, 1)
    return {"w": w[:, :1], "camera": cams, "image": img}


def pose_losses(rot: Tensor, pos: Tensor, camera: Tensor, lambda_trans: float) -> tuple[Tensor, dict]:
    """Eq. (3)-(4), (6): ||R_ps^-1 R_hat - I||_F + lambda_trans ||t_ps - t_hat||_2, averaged over the batch."""
    gt = Cameras.from_label(camera)
    eye = torch.eye(3, device=rot.device)
    l_rot = (gt.rotations.transpose(1, 2) @ rot - eye).flatten(1).norm(dim=1).mean()
    l_trans = (gt.origins - pos).norm(dim=1).mean()
    return l_rot + lambda_trans * l_trans, {"rot": float(l_rot.detach()), "trans": float(l_trans.detach())}


def latent_loss(net: KoLatentEncoder, G: TriPlaneGenerator, D: nn.Module | None, perceptual: Any, e4e: Any,
                cfg: KoDistillConfig, step: int, batch: dict[str, Tensor], world: int = 1) -> tuple[Tensor, dict]:
    """One step of E's loss (Eq. 5 trained as e4e): LPIPS + l2 + lambda_reg ||w_0 - w_avg||^2 + lambda_adv image
    adversarial with G's D, and e4e's terms on the staged W+ (latent D, whose own step runs first, and deltas).
    Under torchrun the latent D steps on every process's codes (gathered), so D, its pools and their generator stay
    identical on every process."""
    from ..train.distributed import gather_batch
    from .e4e_train import discriminator_step, encoder_terms, progressive_stage, sample_real_w, staged_codes

    n = min(len(net.encoder.styles), G.num_ws)
    stage = progressive_stage(step, cfg.e4e, n)
    codes = staged_codes(net.wplus(batch["image"])[:, :n], stage)
    w = net.w_avg + codes  # [B, n, w_dim]
    rec: dict[str, Any] = {"stage": stage}
    if e4e is not None:
        fake = gather_batch(w.detach(), world)
        real = sample_real_w(G, len(fake), e4e.gen)
        rec.update(discriminator_step(e4e, cfg.e4e, step, real, fake, stage if cfg.e4e.progressive_start is not None
                                      else None))  # fmt: skip
    ws = torch.cat([w, w[:, :1].expand(-1, G.num_ws - n, -1)], 1)  # layers past E's styles take w_0
    o = G.synthesis(ws, batch["camera"], noise_mode="const", deterministic_render=True)
    mse = F.mse_loss(o["image"], batch["image"])
    lp = perceptual.distance(o["image"], batch["image"]).mean() if perceptual.available else mse * 0
    reg = codes[:, 0].square().sum(-1).mean()
    extra, e4e_rec = encoder_terms(e4e, cfg.e4e, w, stage)
    loss = cfg.lpips_weight * lp + cfg.l2_weight * mse + cfg.lambda_reg * reg + extra
    rec.update(lpips=float(lp.detach()), mse=float(mse.detach()), reg=float(reg.detach()), **e4e_rec)
    if D is not None:
        adv = F.softplus(-D({"image": o["image"], "image_raw": o["image_raw"]}, batch["camera"])).mean()
        loss = loss + cfg.lambda_adv * adv
        rec["adv"] = float(adv.detach())
    return loss, rec


def save_ko_encoder(net: nn.Module, header: dict, path: Path) -> Path:
    """Weights + the JSON header (format, version, arch, config, radius, focal, w_dim, ...) in one safetensors file,
    written atomically."""
    from ..utils.files import atomic_write_safetensors

    return atomic_write_safetensors(path, {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()},
                                    {KO_FORMAT: json.dumps(header)})


def load_ko_encoder(path: str | Path, G: TriPlaneGenerator | None = None, with_w_avg: bool = True) -> nn.Module:
    """P or E from `distill_ko`'s or `convert ko-pose|e4e`'s checkpoint (eval mode); checks format, version and
    w_dim. A converted E carries no w_avg: it is computed from ``G`` as Ko et al.'s projector does (10,000 z of
    RandomState(123), psi 0.7, frontal conditioning); ``with_w_avg=False`` leaves it at zero (tools comparing e4e's
    codes alone)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"encoder checkpoint {path} not found")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    if KO_FORMAT not in meta:
        raise ValueError(f"{path} is not a Ko et al. encoder checkpoint (no {KO_FORMAT} header)")
    header: dict[str, Any] = json.loads(meta[KO_FORMAT])
    if int(header.get("version", -1)) != KO_VERSION:
        raise ValueError(f"{path}: encoder version {header.get('version')} is not supported")
    cfg = from_dict(KoDistillConfig, header["config"])
    if header["arch"] == "ko-pose":
        net: nn.Module = KoPoseEstimator(cfg, header["radius"], header["focal"])
    else:
        if G is not None and G.w_dim != header["w_dim"]:
            raise ValueError(f"{path}: encoder outputs w_dim {header['w_dim']}, the generator uses {G.w_dim}")
        net = KoLatentEncoder(cfg, header["w_dim"])
    from ..train.checkpoint import check_finite

    check_finite(path, tensors, header["arch"])
    net.load_state_dict(tensors)
    if header.get("w_avg") == "generator" and with_w_avg:
        if G is None:
            raise ValueError(f"{path}: this E takes w_avg from the generator; load it with the generator")
        from ..invert.projector import latent_stats

        w_avg = cast(Tensor, net.w_avg)
        w_avg.copy_(latent_stats(G, 10000, 0.7, 123)[0].to(w_avg))
    setattr(net, "header", header)  # noqa: B010 (a plain attribute beside the weights, read by `invert`)
    return net.eval()
